//! Direct reads of netCDF-4 chunks, bypassing netCDF-C's data path.
//!
//! netCDF-C serialises every call behind one process-wide lock, so reading through it
//! caps inflation at one core. For a chunked netCDF-4 variable whose filters are only
//! shuffle and deflate, nc2zarr asks HDF5 once (under that lock) where each stored chunk
//! lives, then reads the chunks with positioned reads and inflates them (libdeflate)
//! and unshuffles them in parallel, outside the lock.
//!
//! Anything else — contiguous or compact storage, other filters (fletcher32, szip,
//! plugins), big-endian data, chunks never written (read as fill), a user block —
//! makes [`ChunkedVar::open`] answer `None`, and the caller reads through netCDF-C.

use std::cell::RefCell;
use std::ffi::CString;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use hdf5_sys::{h5, h5d, h5f, h5i::hid_t, h5l, h5p, h5s, h5t, h5z};
use rayon::prelude::*;

use crate::slab::{At, copy_box};

/// Largest uncompressed source chunk read directly (the planner counts its buffers).
pub use crate::plan::DIRECT_READ_MAX_CHUNK_BYTES as MAX_CHUNK_BYTES;

/// Where one stored chunk is and which of its filters were skipped.
#[derive(Debug, Clone, Copy)]
struct StoredChunk {
    addr: u64,
    size: u64,
    filter_mask: u32,
}

/// A filter of a dataset's pipeline that nc2zarr can undo.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Filter {
    Shuffle,
    Deflate,
}

/// A chunked netCDF-4 variable of one file whose chunks can be read directly.
#[derive(Debug)]
pub struct ChunkedVar {
    file: Arc<File>,
    shape: Vec<u64>,
    chunk: Vec<u64>,
    elem: usize,
    /// The pipeline in write order (decoding runs it backwards).
    filters: Vec<Filter>,
    /// Every chunk of the grid, in C order of chunk indices.
    chunks: Vec<StoredChunk>,
    /// Why the chunk index cannot be trusted, when it cannot (every read then fails
    /// with this, instead of allocating or reading what a corrupt index asks for).
    damage: Option<String>,
}

/// The most bytes a stored chunk of `chunk_bytes` may take: deflate can grow
/// incompressible data, by far less than this margin.
fn max_stored_bytes(chunk_bytes: u64) -> u64 {
    chunk_bytes + chunk_bytes / 16 + 4096
}

/// Owns an HDF5 identifier and closes it on drop.
struct Id(hid_t, unsafe extern "C" fn(hid_t) -> h5::herr_t);

impl Drop for Id {
    fn drop(&mut self) {
        if self.0 >= 0 {
            // SAFETY: a valid identifier of the kind the closer expects, closed once.
            unsafe { (self.1)(self.0) };
        }
    }
}

/// `Some(Id)` for a valid identifier, `None` for HDF5's failure value.
fn id(raw: hid_t, close: unsafe extern "C" fn(hid_t) -> h5::herr_t) -> Option<Id> {
    (raw >= 0).then_some(Id(raw, close))
}

impl ChunkedVar {
    /// Inspects `var_path` (a `/`-separated netCDF path) in the file at `path`, opened
    /// for reads as `file`. `shape` is the variable's shape in this file and `elem` its
    /// element size. `None` when the variable cannot be read directly.
    pub fn open(path: &Path, file: &Arc<File>, var_path: &str, shape: &[u64], elem: usize) -> Option<ChunkedVar> {
        let _guard = crate::nc::lock();
        // SAFETY: every HDF5 call below runs with the library lock held; identifiers
        // are closed by `Id`, buffers are sized as the calls require.
        unsafe { Self::inspect(path, file, var_path, shape, elem) }
    }

    /// [`ChunkedVar::open`]'s HDF5 queries; the caller holds the library lock.
    unsafe fn inspect(path: &Path, file: &Arc<File>, var_path: &str, shape: &[u64], elem: usize) -> Option<ChunkedVar> {
        if shape.is_empty() || shape.contains(&0) {
            return None;
        }
        // SAFETY: the caller holds the library lock.
        let h5file = unsafe { open_read_only(path) }?;
        // SAFETY: `h5file` is an open file identifier.
        let fcpl = id(unsafe { h5f::H5Fget_create_plist(h5file.0) }, h5p::H5Pclose)?;
        let mut userblock = 0;
        // SAFETY: `fcpl` is an open property list; `userblock` is a valid out-pointer.
        if unsafe { h5p::H5Pget_userblock(fcpl.0, &mut userblock) } < 0 || userblock != 0 {
            return None;
        }
        // SAFETY: `h5file` is an open file; the caller holds the library lock.
        let dset = unsafe { open_dataset(h5file.0, var_path) }?;
        // SAFETY: `dset` is an open dataset.
        let dcpl = id(unsafe { h5d::H5Dget_create_plist(dset.0) }, h5p::H5Pclose)?;
        // SAFETY: `dcpl` is an open property list.
        if unsafe { h5p::H5Pget_layout(dcpl.0) } != h5d::H5D_layout_t::H5D_CHUNKED {
            return None;
        }
        let mut chunk = vec![0u64; shape.len()];
        // SAFETY: `chunk` has room for `chunk.len()` extents.
        if unsafe { h5p::H5Pget_chunk(dcpl.0, chunk.len() as i32, chunk.as_mut_ptr()) } != shape.len() as i32 {
            return None;
        }
        let chunk_bytes = chunk.iter().product::<u64>() * elem as u64;
        if chunk.contains(&0) || chunk_bytes > MAX_CHUNK_BYTES {
            return None;
        }
        // SAFETY: `dcpl` is an open property list; the caller holds the library lock.
        let filters = unsafe { filters(dcpl.0) }?;
        // SAFETY: `dset` is an open dataset.
        let dtype = id(unsafe { h5d::H5Dget_type(dset.0) }, h5t::H5Tclose)?;
        // SAFETY: `dtype` is an open datatype.
        let class = unsafe { h5t::H5Tget_class(dtype.0) };
        if !matches!(class, h5t::H5T_class_t::H5T_INTEGER | h5t::H5T_class_t::H5T_FLOAT)
            // SAFETY: `dtype` is an open datatype.
            || unsafe { h5t::H5Tget_size(dtype.0) } != elem
        {
            return None;
        }
        // SAFETY: `dtype` is an open datatype.
        let order = unsafe { h5t::H5Tget_order(dtype.0) };
        if order != h5t::H5T_order_t::H5T_ORDER_LE && !(elem == 1 && order == h5t::H5T_order_t::H5T_ORDER_NONE) {
            return None;
        }
        // SAFETY: `dset` is an open dataset.
        let space = id(unsafe { h5d::H5Dget_space(dset.0) }, h5s::H5Sclose)?;
        let mut dims = vec![0u64; shape.len()];
        // SAFETY: `dims` has room for `shape.len()` extents; a null max-dims pointer is allowed.
        let rank = unsafe { h5s::H5Sget_simple_extent_dims(space.0, dims.as_mut_ptr(), std::ptr::null_mut()) };
        if rank != shape.len() as i32 || dims != shape {
            return None;
        }
        let grid: Vec<u64> = shape.iter().zip(&chunk).map(|(s, c)| s.div_ceil(*c)).collect();
        let mut chunks = Vec::with_capacity(grid.iter().product::<u64>() as usize);
        for index in crate::slab::grid_indices(&grid) {
            let offset: Vec<u64> = index.iter().zip(&chunk).map(|(i, c)| i * c).collect();
            let (mut filter_mask, mut addr, mut size) = (0u32, 0u64, 0u64);
            // SAFETY: `offset` has one entry per dimension; the out-pointers are valid.
            let status = unsafe {
                h5d::H5Dget_chunk_info_by_coord(dset.0, offset.as_ptr(), &mut filter_mask, &mut addr, &mut size)
            };
            if status < 0 || addr == h5::HADDR_UNDEF || size == 0 {
                return None; // never written: netCDF-C supplies the fill value
            }
            chunks.push(StoredChunk {
                addr,
                size,
                filter_mask,
            });
        }
        let file_len = file.metadata().map_or(u64::MAX, |m| m.len());
        let damage = chunks.iter().find_map(|c| {
            if c.size > max_stored_bytes(chunk_bytes) {
                Some(format!(
                    "corrupt chunk index: a chunk of {chunk_bytes} bytes is said to take {} bytes at byte {}; \
                     re-download or regenerate the file",
                    c.size, c.addr
                ))
            } else if c.addr.checked_add(c.size).is_none_or(|end| end > file_len) {
                Some(format!(
                    "corrupt chunk index or truncated file: a chunk at byte {} of {} bytes ends past the file's end \
                     ({file_len} bytes); re-download or regenerate the file",
                    c.addr, c.size
                ))
            } else {
                None
            }
        });
        Some(ChunkedVar {
            file: Arc::clone(file),
            shape: shape.to_vec(),
            chunk,
            elem,
            filters,
            chunks,
            damage,
        })
    }

    /// Bytes of one uncompressed chunk.
    fn chunk_bytes(&self) -> usize {
        self.chunk.iter().product::<u64>() as usize * self.elem
    }

    /// Reads the box `start`/`count` into `out` (C order, sized for the box). Bands of
    /// chunk rows along the first dimension are decoded in parallel on the current
    /// rayon pool.
    pub fn read_into(&self, start: &[u64], count: &[u64], out: &mut [u8]) -> Result<(), String> {
        if let Some(d) = &self.damage {
            return Err(d.clone());
        }
        let n = self.shape.len();
        if start.len() != n
            || count.len() != n
            || start.iter().zip(count).zip(&self.shape).any(|((s, c), d)| s + c > *d)
        {
            return Err("region outside the variable".into());
        }
        if count.contains(&0) {
            return Ok(());
        }
        let row_bytes = count[1..].iter().product::<u64>() as usize * self.elem;
        // Split `out` at chunk boundaries of the first dimension: each band is a
        // contiguous run of rows and is decoded by one task.
        let mut bands = Vec::new();
        let mut rest = out;
        let (mut row, end) = (start[0], start[0] + count[0]);
        while row < end {
            let next = ((row / self.chunk[0] + 1) * self.chunk[0]).min(end);
            let (band, tail) = rest.split_at_mut((next - row) as usize * row_bytes);
            bands.push((row, next, band));
            rest = tail;
            row = next;
        }
        bands
            .into_par_iter()
            .try_for_each(|(lo, hi, band)| self.read_band(start, count, lo, hi, band))
    }

    /// Decodes every chunk of the chunk row holding rows `lo..hi` (all in one chunk
    /// row) that meets the box, into `band`.
    fn read_band(&self, start: &[u64], count: &[u64], lo: u64, hi: u64, band: &mut [u8]) -> Result<(), String> {
        let n = self.shape.len();
        let mut band_start = start.to_vec();
        let mut band_count = count.to_vec();
        band_start[0] = lo;
        band_count[0] = hi - lo;
        // Chunk index ranges meeting the band, per dimension.
        let first: Vec<u64> = (0..n).map(|d| band_start[d] / self.chunk[d]).collect();
        let last: Vec<u64> = (0..n)
            .map(|d| (band_start[d] + band_count[d] - 1) / self.chunk[d])
            .collect();
        let grid: Vec<u64> = self
            .shape
            .iter()
            .zip(&self.chunk)
            .map(|(s, c)| s.div_ceil(*c))
            .collect();
        let span: Vec<u64> = (0..n).map(|d| last[d] - first[d] + 1).collect();
        let strides = crate::slab::strides(&grid);
        let row_bytes = band_count[1..].iter().product::<u64>() as usize * self.elem;
        SCRATCH.with_borrow_mut(|scratch| {
            scratch.fit(self.chunk_bytes());
            for rel in crate::slab::grid_indices(&span) {
                let index: Vec<u64> = rel.iter().zip(&first).map(|(r, f)| r + f).collect();
                let linear = index.iter().zip(&strides).map(|(i, s)| i * s).sum::<u64>();
                let stored = &self.chunks[linear as usize];
                let origin: Vec<u64> = index.iter().zip(&self.chunk).map(|(i, c)| i * c).collect();
                let from: Vec<u64> = (0..n).map(|d| band_start[d].max(origin[d])).collect();
                let to: Vec<u64> = (0..n)
                    .map(|d| (band_start[d] + band_count[d]).min(origin[d] + self.chunk[d]))
                    .collect();
                // A chunk that is the band's rows in full is decoded straight into it.
                let whole = (0..n).all(|d| from[d] == origin[d] && to[d] == origin[d] + self.chunk[d])
                    && (1..n).all(|d| band_count[d] == self.chunk[d]);
                if whole {
                    let at = (from[0] - lo) as usize * row_bytes;
                    self.decode(stored, scratch, Some(&mut band[at..at + self.chunk_bytes()]))?;
                    continue;
                }
                let decoded = self.decode(stored, scratch, None)?;
                let in_chunk: Vec<u64> = (0..n).map(|d| from[d] - origin[d]).collect();
                let in_band: Vec<u64> = (0..n).map(|d| from[d] - band_start[d]).collect();
                let extent: Vec<u64> = (0..n).map(|d| to[d] - from[d]).collect();
                copy_box(
                    decoded,
                    At {
                        shape: &self.chunk,
                        start: &in_chunk,
                    },
                    band,
                    At {
                        shape: &band_count,
                        start: &in_band,
                    },
                    &extent,
                    self.elem,
                );
            }
            Ok(())
        })
    }

    /// Reads and decodes one stored chunk: into `dst` when given (its result is then
    /// empty), else into `scratch`, which the result borrows.
    fn decode<'s>(
        &self,
        stored: &StoredChunk,
        scratch: &'s mut Scratch,
        mut dst: Option<&mut [u8]>,
    ) -> Result<&'s [u8], String> {
        let want = self.chunk_bytes();
        let at = stored.addr;
        scratch.raw.resize(stored.size as usize, 0);
        self.file
            .read_exact_at(&mut scratch.raw, at)
            .map_err(|e| format!("reading a chunk at byte {at}: {e}"))?;
        let steps: Vec<Filter> = (0..self.filters.len())
            .rev()
            .filter(|&i| stored.filter_mask & (1 << i) == 0) // else skipped when written
            .map(|i| self.filters[i])
            .collect();
        if steps.is_empty() {
            if scratch.raw.len() != want {
                return Err(format!(
                    "a chunk at byte {at} has {} bytes, not {want}",
                    scratch.raw.len()
                ));
            }
            return Ok(match dst {
                Some(d) => {
                    d.copy_from_slice(&scratch.raw);
                    &[]
                }
                None => &scratch.raw,
            });
        }
        // Buffers: 0 raw, 1 a, 2 b, 3 dst. Each step reads one and writes the next.
        let mut current = 0;
        for (k, filter) in steps.iter().enumerate() {
            let last = k + 1 == steps.len();
            let target = if last && dst.is_some() {
                3
            } else if current == 1 {
                2
            } else {
                1
            };
            let Scratch { raw, a, b, inflater } = &mut *scratch;
            let (input, output): (&[u8], &mut [u8]) = match (current, target) {
                (0, 1) => (raw, resized(a, want)),
                (1, 2) => (a, resized(b, want)),
                (2, 1) => (b, resized(a, want)),
                (0, _) => (raw, dst.as_deref_mut().expect("dst given")),
                (1, _) => (a, dst.as_deref_mut().expect("dst given")),
                _ => (b, dst.as_deref_mut().expect("dst given")),
            };
            match filter {
                Filter::Deflate => {
                    let got = inflater
                        .zlib_decompress(input, output)
                        .map_err(|e| format!("a chunk at byte {at} does not inflate: {e}"))?;
                    if got != want {
                        return Err(format!("a chunk at byte {at} inflates to {got} bytes, not {want}"));
                    }
                }
                Filter::Shuffle => {
                    if input.len() != want {
                        return Err(format!("a shuffled chunk at byte {at} has {} bytes", input.len()));
                    }
                    unshuffle(input, output, self.elem);
                }
            }
            current = target;
        }
        Ok(match current {
            1 => &scratch.a,
            2 => &scratch.b,
            _ => &[],
        })
    }
}

/// `buf` resized to `len` bytes (contents are about to be overwritten).
fn resized(buf: &mut Vec<u8>, len: usize) -> &mut [u8] {
    buf.resize(len, 0);
    buf
}

/// Opens the HDF5 dataset of a netCDF variable. netCDF-4 stores a variable that shares
/// its name with a dimension (without being its coordinate) under a prefixed name.
unsafe fn open_dataset(file: hid_t, var_path: &str) -> Option<Id> {
    let (group, name) = match var_path.rsplit_once('/') {
        Some((g, n)) => (format!("/{g}/"), n),
        None => ("/".to_string(), var_path),
    };
    for candidate in [format!("{group}_nc4_non_coord_{name}"), format!("{group}{name}")] {
        let c = CString::new(candidate).ok()?;
        // SAFETY: `file` is an open file and `c` a NUL-terminated link name.
        if unsafe { h5l::H5Lexists(file, c.as_ptr(), h5p::H5P_DEFAULT) } > 0 {
            return id(
                // SAFETY: the link exists (checked above).
                unsafe { h5d::H5Dopen2(file, c.as_ptr(), h5p::H5P_DEFAULT) },
                h5d::H5Dclose,
            );
        }
    }
    None
}

/// True when the netCDF-4 variable at `var_path` (a `/`-separated netCDF path) of the
/// file at `path` is an HDF5 string dataset of fixed length (as h5py and h5netcdf write
/// `S` arrays). The netCDF-C release nc2zarr links (4.9.0) misreads those as NC_STRING:
/// wrong strings, or heap corruption.
pub fn is_fixed_length_string(path: &Path, var_path: &str) -> bool {
    let _guard = crate::nc::lock();
    // SAFETY: every HDF5 call below runs with the library lock held; identifiers are
    // closed by `Id`.
    unsafe { fixed_length_string(path, var_path) }.unwrap_or(false)
}

/// Opens the file at `path` with HDF5, read-only and without HDF5's file lock: a lock
/// another process holds (or one the filesystem refuses) must not keep nc2zarr from
/// looking into a file netCDF-C opens. The caller holds the library lock.
unsafe fn open_read_only(path: &Path) -> Option<Id> {
    use std::os::unix::ffi::OsStrExt;
    let cpath = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: the class identifier is HDF5's.
    let fapl = id(unsafe { h5p::H5Pcreate(*h5p::H5P_CLS_FILE_ACCESS) }, h5p::H5Pclose)?;
    // SAFETY: `fapl` is an open file-access property list.
    unsafe { h5p::H5Pset_file_locking(fapl.0, 0, 1) };
    id(
        // SAFETY: a NUL-terminated path and an open property list.
        unsafe { h5f::H5Fopen(cpath.as_ptr(), h5f::H5F_ACC_RDONLY, fapl.0) },
        h5f::H5Fclose,
    )
}

/// [`is_fixed_length_string`]'s HDF5 queries; the caller holds the library lock.
unsafe fn fixed_length_string(path: &Path, var_path: &str) -> Option<bool> {
    // SAFETY: the caller holds the library lock.
    let h5file = unsafe { open_read_only(path) }?;
    // SAFETY: `h5file` is an open file; the caller holds the library lock.
    let dset = unsafe { open_dataset(h5file.0, var_path) }?;
    // SAFETY: `dset` is an open dataset.
    let dtype = id(unsafe { h5d::H5Dget_type(dset.0) }, h5t::H5Tclose)?;
    // SAFETY: `dtype` is an open datatype.
    if unsafe { h5t::H5Tget_class(dtype.0) } != h5t::H5T_class_t::H5T_STRING {
        return Some(false);
    }
    // SAFETY: `dtype` is an open string datatype.
    Some(unsafe { h5t::H5Tis_variable_str(dtype.0) } == 0)
}

/// The dataset's filter pipeline, if every filter is one nc2zarr can undo.
unsafe fn filters(dcpl: hid_t) -> Option<Vec<Filter>> {
    // SAFETY: `dcpl` is an open property list.
    let n = unsafe { h5p::H5Pget_nfilters(dcpl) };
    if n < 0 {
        return None;
    }
    let mut out = Vec::new();
    for i in 0..n as u32 {
        let (mut flags, mut nelems, mut config) = (0u32, 8usize, 0u32);
        let mut values = [0u32; 8];
        let mut name = [0 as std::ffi::c_char; 64];
        // SAFETY: the out-pointers are valid; `values` holds `nelems` (8) and `name` 64 entries.
        let filter = unsafe {
            h5p::H5Pget_filter2(
                dcpl,
                i,
                &mut flags,
                &mut nelems,
                values.as_mut_ptr(),
                name.len(),
                name.as_mut_ptr(),
                &mut config,
            )
        };
        out.push(match filter {
            h5z::H5Z_FILTER_DEFLATE => Filter::Deflate,
            h5z::H5Z_FILTER_SHUFFLE => Filter::Shuffle,
            _ => return None,
        });
    }
    Some(out)
}

/// Undoes HDF5's byte shuffle: byte `j` of element `i` was stored at `j * n + i`.
fn unshuffle(src: &[u8], dst: &mut [u8], elem: usize) {
    match elem {
        2 => unshuffle_n::<2>(src, dst),
        4 => unshuffle_n::<4>(src, dst),
        8 => unshuffle_n::<8>(src, dst),
        _ => {
            let n = src.len() / elem;
            for (i, out) in dst[..n * elem].chunks_exact_mut(elem).enumerate() {
                for (j, b) in out.iter_mut().enumerate() {
                    *b = src[j * n + i];
                }
            }
            dst[n * elem..].copy_from_slice(&src[n * elem..]);
        }
    }
}

/// [`unshuffle`] for elements of `E` bytes: gathers each element from the `E` byte
/// planes (sequential reads and writes, which the compiler vectorises).
fn unshuffle_n<const E: usize>(src: &[u8], dst: &mut [u8]) {
    let n = src.len() / E;
    let planes: [&[u8]; E] = std::array::from_fn(|j| &src[j * n..(j + 1) * n]);
    for (i, out) in dst[..n * E].chunks_exact_mut(E).enumerate() {
        for j in 0..E {
            out[j] = planes[j][i];
        }
    }
    // HDF5 leaves a trailing partial element as it is.
    dst[n * E..].copy_from_slice(&src[n * E..]);
}

/// Per-thread buffers of the decoding tasks, reused between chunks.
struct Scratch {
    raw: Vec<u8>,
    a: Vec<u8>,
    b: Vec<u8>,
    inflater: libdeflater::Decompressor,
}

impl Scratch {
    /// Releases buffers much larger than chunks of `bytes` need (left by a variable
    /// with larger chunks), so that scratch stays within what the plan counts.
    fn fit(&mut self, bytes: usize) {
        for buf in [&mut self.raw, &mut self.a, &mut self.b] {
            if buf.capacity() > 2 * bytes {
                *buf = Vec::new();
            }
        }
    }
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch {
        raw: Vec::new(),
        a: Vec::new(),
        b: Vec::new(),
        inflater: libdeflater::Decompressor::new(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unshuffle_inverts_the_byte_shuffle() {
        let elems: Vec<u32> = (0..1000u32).map(|i| i.wrapping_mul(2_654_435_761)).collect();
        let plain: Vec<u8> = elems.iter().flat_map(|e| e.to_le_bytes()).collect();
        for elem in [1, 2, 3, 4, 8] {
            let n = plain.len() / elem;
            let mut shuffled = plain.clone();
            for i in 0..n {
                for j in 0..elem {
                    shuffled[j * n + i] = plain[i * elem + j];
                }
            }
            let mut back = vec![0u8; plain.len()];
            unshuffle(&shuffled, &mut back, elem);
            assert_eq!(back, plain, "element size {elem}");
        }
    }
}
