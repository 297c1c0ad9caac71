//! Reads regions of merged variables from the source files.
//!
//! A region along the concat dimension may span several files: each file's part is
//! read with one hyperslab call and placed into the output block; time values are
//! re-encoded per file when the files' units differ.

use std::path::Path;

use crate::error::InputError;
use crate::model::{DType, Scalar};
use crate::nc;
use crate::scan::{GroupInfo, Inventory, VarInfo};
use crate::slab::{At, Block, copy_box, volume};

#[cfg(target_endian = "big")]
compile_error!("nc2zarr assumes a little-endian host");

/// How many files a [`Reader`] keeps open.
const OPEN_FILES: usize = crate::plan::OPEN_FILES as usize;

/// Reads variable regions, keeping a few files open between calls.
pub struct Reader {
    open: Vec<nc::File>,
}

impl Default for Reader {
    fn default() -> Self {
        Self::new()
    }
}

impl Reader {
    /// A reader with no open files.
    pub fn new() -> Reader {
        Reader { open: Vec::new() }
    }

    fn file(&mut self, path: &Path) -> Result<&nc::File, InputError> {
        if let Some(i) = self.open.iter().position(|f| f.path() == path) {
            let f = self.open.remove(i);
            self.open.push(f);
        } else {
            if self.open.len() >= OPEN_FILES {
                self.open.remove(0);
            }
            self.open.push(crate::scan::open(path)?);
        }
        Ok(self.open.last().expect("just pushed"))
    }

    /// Reads the box `start`/`count` of `var` (in merged coordinates) as the output dtype.
    pub fn read(
        &mut self,
        inv: &Inventory,
        group: &GroupInfo,
        var: &VarInfo,
        start: &[u64],
        count: &[u64],
    ) -> Result<Block, InputError> {
        let Some(axis) = var.concat_axis else {
            return self.read_file(&inv.files[0].path, group, var, start, count, None);
        };
        if inv.files.len() == 1 && inv.files[0].concat_start == 0 && var.time_fix.is_none() {
            return self.read_file(&inv.files[0].path, group, var, start, count, None);
        }
        let n = volume(count) as usize;
        let elem = var.dtype.size().unwrap_or(1);
        let mut out = match var.dtype {
            DType::String => Block::Strings(vec![String::new(); n]),
            _ => Block::Fixed(vec![0u8; n * elem]),
        };
        let (lo, hi) = (start[axis], start[axis] + count[axis]);
        // Along the outermost dimension each file's part is a contiguous run of the
        // output: read it in place instead of through a temporary buffer.
        let contiguous = count[..axis].iter().all(|&c| c == 1);
        let inner: u64 = count[axis + 1..].iter().product();
        for (i, f) in inv.files.iter().enumerate() {
            let (f_lo, f_hi) = (f.concat_start, f.concat_start + f.concat_len);
            let (a, b) = (lo.max(f_lo), hi.min(f_hi));
            if a >= b {
                continue;
            }
            let mut local_start = start.to_vec();
            let mut part_count = count.to_vec();
            local_start[axis] = a - f_lo;
            part_count[axis] = b - a;
            let fix = var.time_fix.as_ref().map(|v| v[i]);
            if contiguous && let Block::Fixed(o) = &mut out {
                let range = ((a - lo) * inner) as usize * elem..((b - lo) * inner) as usize * elem;
                self.read_file_into(&f.path, group, var, &local_start, &part_count, fix, &mut o[range])?;
                continue;
            }
            let part = self.read_file(&f.path, group, var, &local_start, &part_count, fix)?;
            let mut dst_start = vec![0u64; count.len()];
            dst_start[axis] = a - lo;
            let zeros = vec![0u64; count.len()];
            let from = At {
                shape: &part_count,
                start: &zeros,
            };
            let to = At {
                shape: count,
                start: &dst_start,
            };
            match (&mut out, &part) {
                (Block::Fixed(o), Block::Fixed(p)) => copy_box(p, from, o, to, &part_count, elem),
                (Block::Strings(o), Block::Strings(p)) => copy_box(p, from, o, to, &part_count, 1),
                _ => unreachable!("blocks of one variable share a kind"),
            }
        }
        Ok(out)
    }

    /// Reads a fixed-size box straight into `out` (already sized for the output dtype).
    #[allow(clippy::too_many_arguments)]
    fn read_file_into(
        &mut self,
        path: &Path,
        group: &GroupInfo,
        var: &VarInfo,
        start: &[u64],
        count: &[u64],
        fix: Option<(f64, f64)>,
        out: &mut [u8],
    ) -> Result<(), InputError> {
        let needs_rescale = fix.is_some_and(|f| f != (1.0, 0.0)) || var.dtype != var.source_dtype;
        if needs_rescale {
            let Block::Fixed(b) = self.read_file(path, group, var, start, count, fix)? else {
                unreachable!("fixed-size variable")
            };
            out.copy_from_slice(&b);
            return Ok(());
        }
        let full = group.var_path(&var.name);
        let read_err = |e: nc::NcError| InputError::Read {
            path: path.to_path_buf(),
            variable: full.clone(),
            message: e.message,
        };
        self.variable(path, group, &var.name)?
            .read_raw(start, count, out)
            .map_err(read_err)
    }

    /// The variable `name` of `group` in the file at `path` (opened if needed).
    fn variable(&mut self, path: &Path, group: &GroupInfo, name: &str) -> Result<nc::Variable<'_>, InputError> {
        let full = group.var_path(name);
        let err = |e: nc::NcError| InputError::Read {
            path: path.to_path_buf(),
            variable: full.clone(),
            message: e.message,
        };
        let file = self.file(path)?;
        let mut g = file.root();
        for part in group.path.split('/').filter(|s| !s.is_empty()) {
            g = g.group(part).map_err(err)?;
        }
        g.variable(name).map_err(err)
    }

    fn read_file(
        &mut self,
        path: &Path,
        group: &GroupInfo,
        var: &VarInfo,
        start: &[u64],
        count: &[u64],
        fix: Option<(f64, f64)>,
    ) -> Result<Block, InputError> {
        let full = group.var_path(&var.name);
        let read_err = |e: nc::NcError| InputError::Read {
            path: path.to_path_buf(),
            variable: full.clone(),
            message: e.message,
        };
        let v = self.variable(path, group, &var.name)?;
        if var.source_dtype == DType::String {
            return Ok(Block::Strings(v.read_strings(start, count).map_err(read_err)?));
        }
        let elem = var.source_dtype.size().expect("fixed size");
        let mut buf = vec![0u8; volume(count) as usize * elem];
        v.read_raw(start, count, &mut buf).map_err(read_err)?;
        Ok(Block::Fixed(match fix {
            Some((scale, offset)) if (scale, offset) != (1.0, 0.0) || var.dtype != var.source_dtype => {
                rescale(&buf, var.source_dtype, var.dtype, scale, offset)
            }
            _ => buf,
        }))
    }
}

/// Re-encodes time values: `value * scale + offset`, written as `to`.
fn rescale(buf: &[u8], from: DType, to: DType, scale: f64, offset: f64) -> Vec<u8> {
    let size = from.size().expect("numeric");
    let mut out = Vec::with_capacity(buf.len() / size * to.size().expect("numeric"));
    for b in buf.chunks_exact(size) {
        let v = Scalar::from_ne_bytes(from, b);
        let new = match v {
            Scalar::F(x) => Scalar::F(x * scale + offset),
            _ if to.is_integer() && scale == 1.0 => Scalar::I((v.as_f64() + offset).round() as i64),
            _ => Scalar::F(v.as_f64() * scale + offset),
        };
        out.extend(new.to_le_bytes(to));
    }
    out
}

/// Bytes per read when hashing a whole variable.
const HASH_BLOCK_BYTES: u64 = 64 << 20;

/// blake3 of a variable's values in one file, read in bounded blocks.
pub fn hash_variable(path: &Path, group: &GroupInfo, var: &VarInfo) -> Result<blake3::Hash, InputError> {
    let mut reader = Reader::new();
    let mut hasher = blake3::Hasher::new();
    let shape = &var.shape;
    if shape.is_empty() {
        hash_block(&mut hasher, &reader.read_file(path, group, var, &[], &[], None)?);
        return Ok(hasher.finalize());
    }
    let row: u64 = shape[1..].iter().product::<u64>() * var.dtype.planning_size();
    let step = (HASH_BLOCK_BYTES / row.max(1)).max(1);
    let mut i = 0;
    while i < shape[0] {
        let n = step.min(shape[0] - i);
        let mut start = vec![0u64; shape.len()];
        let mut count = shape.clone();
        start[0] = i;
        count[0] = n;
        hash_block(&mut hasher, &reader.read_file(path, group, var, &start, &count, None)?);
        i += n;
    }
    Ok(hasher.finalize())
}

fn hash_block(hasher: &mut blake3::Hasher, block: &Block) {
    match block {
        Block::Fixed(b) => {
            hasher.update(b);
        }
        Block::Strings(v) => {
            for s in v {
                hasher.update(&(s.len() as u64).to_le_bytes());
                hasher.update(s.as_bytes());
            }
        }
    }
}
