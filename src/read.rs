//! Reads regions of merged variables from the source files.
//!
//! A region along the concat dimension may span several files: each file's part is
//! read with one hyperslab call and placed into the output block; time values are
//! re-encoded per file when the files' units differ.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use crate::direct::ChunkedVar;
use crate::error::InputError;
use crate::model::Decoding;
use crate::model::{DType, Scalar};
use crate::model::{GroupInfo, Inventory, SourceFile, VarInfo};
use crate::nc;
use crate::packing;
use crate::slab::{At, Block, copy_box, volume};

#[cfg(target_endian = "big")]
compile_error!("nc2zarr assumes a little-endian host");

/// How many files a [`Reader`] keeps open.
const OPEN_FILES: usize = crate::plan::OPEN_FILES as usize;

/// How one file's values of a variable change on the way to the store.
#[derive(Debug, Clone, Copy)]
enum Recode<'a> {
    /// Stored as read.
    Raw,
    /// Converted from the file's type (given) to the variable's, exactly (numpy's
    /// promotion of types that differ between files).
    Convert(DType),
    /// Time values re-encoded into other units: `value * scale + offset`, from the
    /// file's type (given).
    Time(f64, f64, DType),
    /// Unpacked with the file's own packing attributes, from the file's type (given).
    Unpack(&'a Decoding, DType),
}

impl<'a> Recode<'a> {
    /// The recoding of the `file`-th file holding `var` (in concat order).
    fn of(var: &'a VarInfo, file: usize) -> Recode<'a> {
        let raw = var.file_dtype(file);
        if let Some(u) = &var.unpack {
            return Recode::Unpack(&u[file], raw);
        }
        match &var.time_fix {
            Some(f) => Recode::Time(f[file].0, f[file].1, raw),
            // Never the raw bytes of another type: converted exactly (numpy's promotion).
            None if raw != var.dtype => Recode::Convert(raw),
            None => Recode::Raw,
        }
    }

    /// The type the file stores the values in.
    fn raw(self, var: &VarInfo) -> DType {
        match self {
            Recode::Raw => var.source_dtype,
            Recode::Convert(t) | Recode::Time(_, _, t) | Recode::Unpack(_, t) => t,
        }
    }

    /// True when values are stored exactly as read.
    fn is_raw(self, var: &VarInfo) -> bool {
        match self {
            Recode::Raw => true,
            Recode::Time(s, o, t) => (s, o) == (1.0, 0.0) && var.dtype == t,
            Recode::Convert(_) | Recode::Unpack(..) => false,
        }
    }
}

/// Reads variable regions, keeping a few files open between calls.
///
/// Chunked netCDF-4 variables are read directly where [`ChunkedVar`] can (decoded in
/// parallel on the current rayon pool); everything else goes through netCDF-C.
/// Setting `NC2ZARR_DIRECT_READ=0` sends every read through netCDF-C.
pub struct Reader {
    open: Vec<OpenFile>,
    direct: bool,
}

/// A source file kept open by a [`Reader`].
struct OpenFile {
    nc: nc::File,
    /// The same file for positioned reads of chunks, opened on first use.
    raw: Option<Arc<std::fs::File>>,
    /// Direct-read state per variable path (`None`: read through netCDF-C).
    chunked: HashMap<String, Option<Arc<ChunkedVar>>>,
}

impl Default for Reader {
    fn default() -> Self {
        Self::new()
    }
}

impl Reader {
    /// A reader with no open files.
    pub fn new() -> Reader {
        Reader {
            open: Vec::new(),
            direct: crate::settings::direct_reads(),
        }
    }

    /// A reader that reads everything through netCDF-C, never directly: `verify
    /// --source` uses it, so that it checks the conversion's reader instead of sharing it.
    pub fn through_netcdf_c() -> Reader {
        Reader {
            open: Vec::new(),
            direct: false,
        }
    }

    fn file(&mut self, path: &Path) -> Result<&mut OpenFile, InputError> {
        if let Some(i) = self.open.iter().position(|f| f.nc.path() == path) {
            let f = self.open.remove(i);
            self.open.push(f);
        } else {
            if self.open.len() >= OPEN_FILES {
                self.open.remove(0);
            }
            self.open.push(OpenFile {
                nc: crate::nc::open_input(path)?,
                raw: None,
                chunked: HashMap::new(),
            });
        }
        Ok(self.open.last_mut().expect("just pushed"))
    }

    /// The direct reader of `var` in the file at `path`, if it can be read directly.
    fn chunked(
        &mut self,
        path: &Path,
        group: &GroupInfo,
        var: &VarInfo,
        elem: usize,
    ) -> Result<Option<Arc<ChunkedVar>>, InputError> {
        // Opened by its path in the file, which `--group` puts below the store's.
        let full = group.source_var_path(&var.name);
        if let Some(found) = self.file(path)?.chunked.get(&full) {
            return Ok(found.clone());
        }
        let shape: Vec<u64> = match self.variable(path, group, &var.name)?.header() {
            Ok(h) => h.dims.iter().map(|d| d.len).collect(),
            Err(_) => Vec::new(),
        };
        let open = self.file(path)?;
        if open.raw.is_none() {
            open.raw = std::fs::File::open(path).ok().map(Arc::new);
        }
        let found = match &open.raw {
            Some(raw) if elem > 0 => ChunkedVar::open(path, raw, &full, &shape, elem).map(Arc::new),
            _ => None,
        };
        open.chunked.insert(full, found.clone());
        Ok(found)
    }

    /// Reads the box `start`/`count` of a fixed-size variable of one file, in its
    /// stored type (of `elem` bytes), into `out`.
    #[allow(clippy::too_many_arguments)]
    fn read_raw(
        &mut self,
        path: &Path,
        group: &GroupInfo,
        var: &VarInfo,
        elem: usize,
        start: &[u64],
        count: &[u64],
        out: &mut [u8],
    ) -> Result<(), InputError> {
        let read_err = |message: String| InputError::Read {
            path: path.to_path_buf(),
            variable: group.var_path(&var.name),
            region: region(var, start, count),
            message,
        };
        if self.direct
            && var.storage.chunks.is_some()
            && let Some(chunked) = self.chunked(path, group, var, elem)?
        {
            return chunked.read_into(start, count, out).map_err(read_err);
        }
        self.variable(path, group, &var.name)?
            .read_raw(start, count, out)
            .map_err(|e| read_err(e.message))
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
        self.read_reusing(inv, group, var, start, count, Vec::new())
    }

    /// [`Reader::read`], into `spare` where it fits (its contents are overwritten).
    pub fn read_reusing(
        &mut self,
        inv: &Inventory,
        group: &GroupInfo,
        var: &VarInfo,
        start: &[u64],
        count: &[u64],
        spare: Vec<u8>,
    ) -> Result<Block, InputError> {
        let files = inv.files_of(var);
        let Some(axis) = var.concat_axis else {
            return self.read_file(&files[0].path, group, var, start, count, 0, spare);
        };
        if var.repeated {
            return self.read_repeated(&files, group, var, start, count, spare);
        }
        let (lo, hi) = (start[axis], start[axis] + count[axis]);
        if files.len() == 1 && files[0].concat_start == 0 && files[0].concat_len >= hi {
            return self.read_file(&files[0].path, group, var, start, count, 0, spare);
        }
        let elem = var.dtype.size().unwrap_or(1);
        let mut out = output_block(var, count, spare);
        // Along the outermost dimension each file's part is a contiguous run of the
        // output: read it in place instead of through a temporary buffer.
        let contiguous = count[..axis].iter().all(|&c| c == 1);
        let inner: u64 = count[axis + 1..].iter().product();
        for (i, f) in files.into_iter().enumerate() {
            let (f_lo, f_hi) = (f.concat_start, f.concat_start + f.concat_len);
            let (a, b) = (lo.max(f_lo), hi.min(f_hi));
            if a >= b {
                continue;
            }
            let mut local_start = start.to_vec();
            let mut part_count = count.to_vec();
            local_start[axis] = a - f_lo;
            part_count[axis] = b - a;
            if contiguous && let Block::Fixed(o) = &mut out {
                let range = ((a - lo) * inner) as usize * elem..((b - lo) * inner) as usize * elem;
                self.read_file_into(&f.path, group, var, &local_start, &part_count, i, &mut o[range])?;
                continue;
            }
            let part = self.read_file(&f.path, group, var, &local_start, &part_count, i, Vec::new())?;
            let mut dst_start = vec![0u64; count.len()];
            dst_start[axis] = a - lo;
            place(&mut out, &part, &part_count, count, &dst_start, elem);
        }
        Ok(out)
    }

    /// Reads the box `start`/`count` of a [`VarInfo::repeated`] variable: each file's
    /// values (read without the concat axis, the first) repeated over the steps it covers.
    fn read_repeated(
        &mut self,
        files: &[&SourceFile],
        group: &GroupInfo,
        var: &VarInfo,
        start: &[u64],
        count: &[u64],
        spare: Vec<u8>,
    ) -> Result<Block, InputError> {
        let elem = var.dtype.size().unwrap_or(1);
        let mut out = output_block(var, count, spare);
        let (lo, hi) = (start[0], start[0] + count[0]);
        let mut one_step = count.to_vec();
        one_step[0] = 1;
        for (i, f) in files.iter().enumerate() {
            let (a, b) = (lo.max(f.concat_start), hi.min(f.concat_start + f.concat_len));
            if a >= b {
                continue;
            }
            let part = self.read_file(&f.path, group, var, &start[1..], &count[1..], i, Vec::new())?;
            for step in a..b {
                let mut dst_start = vec![0u64; count.len()];
                dst_start[0] = step - lo;
                place(&mut out, &part, &one_step, count, &dst_start, elem);
            }
        }
        Ok(out)
    }

    /// Reads a fixed-size box of the `file`-th file holding `var` straight into `out`
    /// (already sized for the output dtype).
    #[allow(clippy::too_many_arguments)]
    fn read_file_into(
        &mut self,
        path: &Path,
        group: &GroupInfo,
        var: &VarInfo,
        start: &[u64],
        count: &[u64],
        file: usize,
        out: &mut [u8],
    ) -> Result<(), InputError> {
        let fix = Recode::of(var, file);
        if !fix.is_raw(var) || held_strings(var, file, start, count).is_some() {
            let Block::Fixed(b) = self.read_file(path, group, var, start, count, file, Vec::new())? else {
                unreachable!("fixed-size variable")
            };
            out.copy_from_slice(&b);
            return Ok(());
        }
        let elem = fix.raw(var).size().expect("fixed size");
        self.read_raw(path, group, var, elem, start, count, out)
    }

    /// The variable `name` of `group` in the file at `path` (opened if needed).
    fn variable(&mut self, path: &Path, group: &GroupInfo, name: &str) -> Result<nc::Variable<'_>, InputError> {
        let full = group.var_path(name);
        let err = |e: nc::NcError| InputError::Read {
            path: path.to_path_buf(),
            variable: full.clone(),
            region: String::new(),
            message: e.message,
        };
        let file = &self.file(path)?.nc;
        file.group_at(group.source_path())
            .map_err(err)?
            .variable(name)
            .map_err(err)
    }

    /// Reads the box `start`/`count` (in the file's coordinates, apart from a padded
    /// string length) of the `file`-th file holding `var`.
    #[allow(clippy::too_many_arguments)]
    fn read_file(
        &mut self,
        path: &Path,
        group: &GroupInfo,
        var: &VarInfo,
        start: &[u64],
        count: &[u64],
        file: usize,
        spare: Vec<u8>,
    ) -> Result<Block, InputError> {
        if let Some(held) = held_strings(var, file, start, count) {
            // Strings shorter in this file than the merged length: the part it holds,
            // NUL-padded (a box wholly past its strings is all padding).
            let mut out = Block::Fixed(vec![0u8; volume(count) as usize]);
            if volume(&held) > 0 {
                let part = self.read_file(path, group, var, start, &held, file, Vec::new())?;
                place(&mut out, &part, &held, count, &vec![0; count.len()], 1);
            }
            return Ok(out);
        }
        let fix = Recode::of(var, file);
        let full = group.var_path(&var.name);
        let read_err = |e: nc::NcError| InputError::Read {
            path: path.to_path_buf(),
            variable: full.clone(),
            region: region(var, start, count),
            message: e.message,
        };
        if var.source_dtype == DType::String {
            let v = self.variable(path, group, &var.name)?;
            return Ok(Block::Strings(v.read_strings(start, count).map_err(read_err)?));
        }
        let recode_err = |message: String| InputError::Read {
            path: path.to_path_buf(),
            variable: full.clone(),
            region: region(var, start, count),
            message,
        };
        let raw = fix.raw(var);
        let elem = raw.size().expect("fixed size");
        let mut buf = buffer(spare, volume(count) as usize * elem, var.storage.no_fill);
        self.read_raw(path, group, var, elem, start, count, &mut buf)?;
        Ok(Block::Fixed(match fix {
            _ if fix.is_raw(var) => buf,
            Recode::Unpack(d, raw) => packing::decode_buffer(&buf, raw, d, var.dtype),
            Recode::Time(scale, offset, raw) => rescale(
                &buf,
                raw,
                var.dtype,
                (scale, offset),
                &Decoding::of(raw, &var.attrs).missing,
            )
            .map_err(recode_err)?,
            Recode::Convert(raw) => rescale(&buf, raw, var.dtype, (1.0, 0.0), &[]).map_err(recode_err)?,
            Recode::Raw => buf,
        }))
    }
}

/// The part of the box `start`/`count` that the `file`-th file holding `var` has,
/// when that file's strings are shorter than the box reaches (see
/// [`VarInfo::string_lens`]); `None` when it has the whole box.
fn held_strings(var: &VarInfo, file: usize, start: &[u64], count: &[u64]) -> Option<Vec<u64>> {
    let len = var.string_lens.as_ref()?[file];
    let last = count.len().checked_sub(1)?;
    if start[last] + count[last] <= len {
        return None;
    }
    let mut held = count.to_vec();
    held[last] = len.saturating_sub(start[last]);
    Some(held)
}

/// Copies `part` (a whole box of shape `part_shape`) into `out` (of shape `count`) at
/// `dst_start`.
fn place(out: &mut Block, part: &Block, part_shape: &[u64], count: &[u64], dst_start: &[u64], elem: usize) {
    let zeros = vec![0u64; count.len()];
    let from = At {
        shape: part_shape,
        start: &zeros,
    };
    let to = At {
        shape: count,
        start: dst_start,
    };
    match (out, part) {
        (Block::Fixed(o), Block::Fixed(p)) => copy_box(p, from, o, to, part_shape, elem),
        (Block::Strings(o), Block::Strings(p)) => copy_box(p, from, o, to, part_shape, 1),
        _ => unreachable!("blocks of one variable share a kind"),
    }
}

/// The block a read of `count` elements of `var` from several files fills: the steps
/// none of the variable's files hold (sets joined as xarray joins them) hold its gap
/// fill value, NaN once it is stored as floats (an append may unpack it).
fn output_block(var: &VarInfo, count: &[u64], spare: Vec<u8>) -> Block {
    let n = volume(count) as usize;
    let elem = var.dtype.size().unwrap_or(1);
    let mut out = match var.dtype {
        DType::String => return Block::Strings(vec![String::new(); n]),
        _ => buffer(spare, n * elem, var.storage.no_fill),
    };
    if let Some(fill) = var.gap_fill {
        let fill = if var.dtype.is_float() {
            Scalar::F(f64::NAN)
        } else {
            fill
        };
        let one = fill.to_le_bytes(var.dtype);
        for element in out.chunks_exact_mut(elem) {
            element.copy_from_slice(&one);
        }
    }
    Block::Fixed(out)
}

/// A buffer of `len` bytes: `spare` when its capacity fits `len` closely, else a new
/// zeroed one. A much larger spare is dropped: the memory budget counts only `len`.
/// A reused buffer keeps its old contents for the read to overwrite, unless `zeroed`:
/// parts of a variable written without fill values are never written by netCDF-C,
/// and must not show an earlier block's values.
fn buffer(mut spare: Vec<u8>, len: usize, zeroed: bool) -> Vec<u8> {
    if spare.capacity() >= len && spare.capacity() <= len + len / 8 {
        if zeroed {
            spare.clear();
        }
        spare.resize(len, 0);
        spare
    } else {
        vec![0u8; len]
    }
}

/// Re-encodes time values: `value * scale + offset`, written as `to`. A value equal to
/// one of `missing` (the variable's `_FillValue` and `missing_value`) marks a missing
/// time, not a time: it is written unchanged. A result `to` cannot hold exactly (a
/// fraction in an integer type, a float64 that float32 would round) is an error naming
/// the value: a store must not silently hold other times than its sources.
fn rescale(
    buf: &[u8],
    from: DType,
    to: DType,
    (scale, offset): (f64, f64),
    missing: &[f64],
) -> Result<Vec<u8>, String> {
    let size = from.size().expect("numeric");
    let mut out = Vec::with_capacity(buf.len() / size * to.size().expect("numeric"));
    for b in buf.chunks_exact(size) {
        let v = Scalar::from_ne_bytes(from, b);
        let x = v.as_f64();
        let new = match v {
            _ if missing.iter().any(|m| *m == x || m.is_nan() && x.is_nan()) => v,
            Scalar::I(i) if scale == 1.0 && offset.fract() == 0.0 && offset.abs() < 2f64.powi(53) => {
                match i.checked_add(offset as i64) {
                    Some(sum) => Scalar::I(sum),
                    None => Scalar::F(x + offset),
                }
            }
            _ => match packing::re_encode(x, (scale, offset)) {
                (y, true) if to.is_integer() => Scalar::F(y),
                _ => Scalar::F(x * scale + offset),
            },
        };
        if !holds(to, new) {
            return Err(format!(
                "the value {x}, re-encoded as {}, cannot be stored exactly as {}, the variable's type in the store",
                new.as_f64(),
                to.cdl_name()
            ));
        }
        out.extend(new.to_le_bytes(to));
    }
    Ok(out)
}

/// True when `to` holds `v` exactly.
fn holds(to: DType, v: Scalar) -> bool {
    match (to, v) {
        (DType::F64, _) => true,
        (DType::F32, Scalar::F(x)) => !x.is_finite() || f64::from(x as f32) == x,
        (DType::F32, _) => f64::from(v.as_f64() as f32) == v.as_f64(),
        (t, Scalar::F(x)) if t.is_integer() => {
            x.fract() == 0.0 && holds(t, Scalar::I(x as i64)) && x.abs() < 2f64.powi(63)
        }
        (t, Scalar::I(i)) if t.is_integer() => match t {
            DType::I8 => i8::try_from(i).is_ok(),
            DType::U8 | DType::Char => u8::try_from(i).is_ok(),
            DType::I16 => i16::try_from(i).is_ok(),
            DType::U16 => u16::try_from(i).is_ok(),
            DType::I32 => i32::try_from(i).is_ok(),
            DType::U32 => u32::try_from(i).is_ok(),
            DType::U64 => i >= 0,
            _ => true,
        },
        (t, Scalar::U(u)) if t.is_integer() => {
            holds(t, Scalar::I(i64::try_from(u).unwrap_or(i64::MAX))) || t == DType::U64
        }
        _ => false,
    }
}

/// The box `start`/`count` of `var` for messages: ` (time 24..48, lat 0..721)`.
fn region(var: &VarInfo, start: &[u64], count: &[u64]) -> String {
    if start.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = start
        .iter()
        .zip(count)
        .enumerate()
        .map(|(i, (s, c))| {
            // A repeated variable is read from the files without its first dimension.
            let name = var
                .dims
                .get(i + var.dims.len().saturating_sub(start.len()))
                .map_or("?", String::as_str);
            format!("{name} {s}..{}", s + c)
        })
        .collect();
    format!(" ({})", parts.join(", "))
}
