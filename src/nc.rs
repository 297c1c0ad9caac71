//! A small safe wrapper over the netCDF-C library (through `netcdf-sys`).
//!
//! Only what nc2zarr needs: walk the header of an open file (groups, dimensions,
//! variables, attributes, storage settings) and read hyperslabs of raw values.
//! Every call into the library holds `netcdf_sys::libnetcdf_lock`, the process-wide
//! lock that the `netcdf` and `hdf5` crates share, because netCDF-C is not thread-safe.

use std::ffi::{CStr, CString, c_char, c_int};
use std::path::{Path, PathBuf};

use netcdf_sys as sys;

use crate::error::InputError;
use crate::model::{DType, Scalar};
use crate::model::{Format, Storage};

/// An error from the netCDF-C library: its status code and message.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message} (netCDF status {code})")]
pub struct NcError {
    /// The library's status code (`NC_E*`).
    pub code: c_int,
    /// The library's message for the code.
    pub message: String,
}

/// Result of a netCDF call.
pub type NcResult<T> = Result<T, NcError>;

fn check(status: c_int) -> NcResult<()> {
    if status == sys::NC_NOERR {
        return Ok(());
    }
    // SAFETY: nc_strerror returns a pointer to a static string for any code.
    let message = unsafe { CStr::from_ptr(sys::nc_strerror(status)) }
        .to_string_lossy()
        .into_owned();
    Err(NcError { code: status, message })
}

thread_local! {
    /// Turns off HDF5's error-stack printing for this thread (HDF5 keeps that setting
    /// per thread). netCDF-C probes for optional attributes and HDF5 would print a
    /// diagnostic for each miss; real errors still come back as netCDF status codes.
    static HDF5_QUIET: () = {
        // SAFETY: called with the library lock held (see `locked`); null handler = no printing.
        unsafe { hdf5_sys::h5e::H5Eset_auto2(hdf5_sys::h5e::H5E_DEFAULT, None, std::ptr::null_mut()) };
    };
}

/// Takes the global netCDF lock (and silences HDF5 diagnostics on this thread). Every
/// HDF5 call nc2zarr makes itself also holds it: HDF5 is not thread-safe either.
pub(crate) fn lock() -> impl Sized {
    let guard = sys::libnetcdf_lock.lock();
    HDF5_QUIET.with(|_| ());
    guard
}

/// Runs `f` with the global netCDF lock held and turns its status into a result.
fn locked<F: FnOnce() -> c_int>(f: F) -> NcResult<()> {
    let _guard = lock();
    check(f())
}

/// Calls a netCDF "list the ids" function twice: for the count, then to fill the ids.
fn id_list(f: impl Fn(*mut c_int, *mut c_int) -> c_int) -> NcResult<Vec<c_int>> {
    let mut n = 0;
    locked(|| f(&mut n, std::ptr::null_mut()))?;
    let mut ids = vec![0; n.max(0) as usize];
    if n > 0 {
        locked(|| f(&mut n, ids.as_mut_ptr()))?;
    }
    Ok(ids)
}

fn name_buf() -> Vec<u8> {
    vec![0u8; sys::NC_MAX_NAME as usize + 1]
}

fn buf_to_string(buf: &[u8]) -> String {
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn cstring(s: &str) -> NcResult<CString> {
    CString::new(s).map_err(|_| NcError {
        code: sys::NC_EBADNAME,
        message: format!("name {s:?} contains a NUL byte"),
    })
}

/// Sets the default HDF5 chunk cache used for files opened afterwards.
pub fn set_default_chunk_cache(bytes: usize) -> NcResult<()> {
    // SAFETY: plain scalar arguments.
    locked(|| unsafe { sys::nc_set_chunk_cache(bytes, 1009, 0.75) })
}

/// An open netCDF file (read-only). Closed on drop.
#[derive(Debug)]
pub struct File {
    ncid: c_int,
    path: PathBuf,
}

impl File {
    /// Opens `path` read-only.
    pub fn open(path: &Path) -> NcResult<File> {
        let cpath = cstring(&path.to_string_lossy())?;
        let mut ncid = 0;
        // SAFETY: valid C string and out-pointer.
        locked(|| unsafe { sys::nc_open(cpath.as_ptr(), sys::NC_NOWRITE, &mut ncid) })?;
        Ok(File {
            ncid,
            path: path.to_path_buf(),
        })
    }

    /// The path the file was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's format.
    pub fn format(&self) -> NcResult<Format> {
        let mut format = 0;
        // SAFETY: valid out-pointer.
        locked(|| unsafe { sys::nc_inq_format(self.ncid, &mut format) })?;
        Ok(match format {
            sys::NC_FORMAT_CLASSIC => Format::Classic,
            sys::NC_FORMAT_64BIT_OFFSET => Format::Offset64,
            sys::NC_FORMAT_CDF5 => Format::Cdf5,
            sys::NC_FORMAT_NETCDF4_CLASSIC => Format::Netcdf4Classic,
            _ => Format::Netcdf4,
        })
    }

    /// The root group.
    pub fn root(&self) -> Group<'_> {
        Group {
            ncid: self.ncid,
            _file: std::marker::PhantomData,
        }
    }

    /// The group at `path` (`/`-separated names from the root; empty for the root).
    pub fn group_at(&self, path: &str) -> NcResult<Group<'_>> {
        let mut g = self.root();
        for name in path.split('/').filter(|n| !n.is_empty()) {
            g = g.group(name)?;
        }
        Ok(g)
    }
}

impl Drop for File {
    fn drop(&mut self) {
        // SAFETY: ncid came from nc_open and is closed once.
        let _ = locked(|| unsafe { sys::nc_close(self.ncid) });
    }
}

/// A group of an open file.
#[derive(Debug, Clone, Copy)]
pub struct Group<'f> {
    ncid: c_int,
    _file: std::marker::PhantomData<&'f File>,
}

/// A dimension as seen from a group.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Dim {
    /// The library's id (unique within the file).
    pub id: c_int,
    /// Its name.
    pub name: String,
    /// Its current length.
    pub len: u64,
    /// Whether it is unlimited.
    pub unlimited: bool,
}

/// What a variable's netCDF type is, as nc2zarr sees it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum VarType {
    /// A type Zarr can hold (enums are read as their base integer type).
    Supported {
        /// The element type.
        dtype: DType,
        /// The enum type's name, when the variable is an enum.
        enum_name: Option<String>,
    },
    /// A type nc2zarr cannot convert (compound, opaque, non-string vlen).
    Unsupported(String),
}

impl<'f> Group<'f> {
    /// The group's own name (`/` for the root).
    pub fn name(&self) -> NcResult<String> {
        let mut buf = name_buf();
        // SAFETY: buffer holds NC_MAX_NAME+1 bytes.
        locked(|| unsafe { sys::nc_inq_grpname(self.ncid, buf.as_mut_ptr().cast()) })?;
        Ok(buf_to_string(&buf))
    }

    /// Child groups, in library order.
    pub fn groups(&self) -> NcResult<Vec<Group<'f>>> {
        // SAFETY: id_list passes a count pointer and a null or n-sized id buffer.
        let ids = id_list(|n, ids| unsafe { sys::nc_inq_grps(self.ncid, n, ids) })?;
        Ok(ids
            .into_iter()
            .map(|ncid| Group {
                ncid,
                _file: std::marker::PhantomData,
            })
            .collect())
    }

    /// The child group called `name`.
    pub fn group(&self, name: &str) -> NcResult<Group<'f>> {
        let cname = cstring(name)?;
        let mut ncid = 0;
        // SAFETY: valid C string and out-pointer.
        locked(|| unsafe { sys::nc_inq_ncid(self.ncid, cname.as_ptr(), &mut ncid) })?;
        Ok(Group {
            ncid,
            _file: std::marker::PhantomData,
        })
    }

    /// Dimensions defined in this group (not its parents).
    pub fn dims(&self) -> NcResult<Vec<Dim>> {
        // SAFETY: id_list passes a count pointer and a null or n-sized id buffer.
        let mut ids = id_list(|n, ids| unsafe { sys::nc_inq_dimids(self.ncid, n, ids, 0) })?;
        let unlimited = self.unlimited_dim_ids()?;
        ids.sort_unstable();
        ids.into_iter()
            .map(|id| self.dim(id, unlimited.contains(&id)))
            .collect()
    }

    fn unlimited_dim_ids(&self) -> NcResult<Vec<c_int>> {
        // SAFETY: id_list passes a count pointer and a null or n-sized id buffer.
        id_list(|n, ids| unsafe { sys::nc_inq_unlimdims(self.ncid, n, ids) })
    }

    fn dim(&self, id: c_int, unlimited: bool) -> NcResult<Dim> {
        let mut buf = name_buf();
        let mut len = 0usize;
        // SAFETY: buffer of NC_MAX_NAME+1 bytes, valid out-pointer.
        locked(|| unsafe { sys::nc_inq_dim(self.ncid, id, buf.as_mut_ptr().cast(), &mut len) })?;
        Ok(Dim {
            id,
            name: buf_to_string(&buf),
            len: len as u64,
            unlimited,
        })
    }

    /// Variables of this group, in definition order.
    pub fn variables(&self) -> NcResult<Vec<Variable<'f>>> {
        // SAFETY: id_list passes a count pointer and a null or n-sized id buffer.
        let ids = id_list(|n, ids| unsafe { sys::nc_inq_varids(self.ncid, n, ids) })?;
        Ok(ids
            .into_iter()
            .map(|varid| Variable {
                ncid: self.ncid,
                varid,
                _file: std::marker::PhantomData,
            })
            .collect())
    }

    /// The variable called `name`.
    pub fn variable(&self, name: &str) -> NcResult<Variable<'f>> {
        let cname = cstring(name)?;
        let mut varid = 0;
        // SAFETY: valid C string and out-pointer.
        locked(|| unsafe { sys::nc_inq_varid(self.ncid, cname.as_ptr(), &mut varid) })?;
        Ok(Variable {
            ncid: self.ncid,
            varid,
            _file: std::marker::PhantomData,
        })
    }

    /// Global (group) attributes.
    pub fn attributes(&self) -> NcResult<Vec<Attribute>> {
        read_attributes(self.ncid, sys::NC_GLOBAL)
    }
}

/// A variable of an open file.
#[derive(Debug, Clone, Copy)]
pub struct Variable<'f> {
    ncid: c_int,
    varid: c_int,
    _file: std::marker::PhantomData<&'f File>,
}

/// Header facts about a variable.
#[derive(Debug, Clone)]
pub struct VarHeader {
    /// Its name.
    pub name: String,
    /// Its dimensions, outermost first.
    pub dims: Vec<Dim>,
    /// Its type.
    pub vartype: VarType,
}

impl<'f> Variable<'f> {
    /// Name, dimensions and type.
    pub fn header(&self) -> NcResult<VarHeader> {
        let mut buf = name_buf();
        let mut xtype = 0;
        let mut ndims = 0;
        // SAFETY: name buffer of NC_MAX_NAME+1 bytes; other pointers valid or null.
        locked(|| unsafe {
            sys::nc_inq_var(
                self.ncid,
                self.varid,
                buf.as_mut_ptr().cast(),
                &mut xtype,
                &mut ndims,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
            )
        })?;
        let mut dimids = vec![0; ndims as usize];
        if ndims > 0 {
            // SAFETY: room for ndims ids.
            locked(|| unsafe { sys::nc_inq_vardimid(self.ncid, self.varid, dimids.as_mut_ptr()) })?;
        }
        let group = Group {
            ncid: self.ncid,
            _file: std::marker::PhantomData,
        };
        let unlimited = group.unlimited_dim_ids_visible()?;
        let dims = dimids
            .into_iter()
            .map(|id| group.dim(id, unlimited.contains(&id)))
            .collect::<NcResult<Vec<_>>>()?;
        Ok(VarHeader {
            name: buf_to_string(&buf),
            dims,
            vartype: classify_type(self.ncid, xtype)?,
        })
    }

    /// Variable attributes.
    pub fn attributes(&self) -> NcResult<Vec<Attribute>> {
        read_attributes(self.ncid, self.varid)
    }

    /// Chunking and filters (netCDF-4 only; classic files report none).
    pub fn storage(&self) -> NcResult<Storage> {
        let mut storage = Storage::default();
        let mut kind = 0;
        let mut ndims = 0;
        // SAFETY: count of dims for the chunk buffer.
        locked(|| unsafe { sys::nc_inq_varndims(self.ncid, self.varid, &mut ndims) })?;
        let mut chunks = vec![0usize; ndims.max(1) as usize];
        let status = {
            let _g = lock();
            // SAFETY: the chunk buffer has room for ndims sizes; the library lock is held.
            unsafe { sys::nc_inq_var_chunking(self.ncid, self.varid, &mut kind, chunks.as_mut_ptr()) }
        };
        let mut no_fill = 0;
        // SAFETY: valid out-pointer; a null fill-value pointer is allowed.
        locked(|| unsafe { sys::nc_inq_var_fill(self.ncid, self.varid, &mut no_fill, std::ptr::null_mut()) })?;
        storage.no_fill = no_fill != 0;
        if status == sys::NC_ENOTNC4 {
            return Ok(storage);
        }
        check(status)?;
        if kind == sys::NC_CHUNKED && ndims > 0 {
            storage.chunks = Some(chunks.iter().map(|&c| c as u64).collect());
        }
        let (mut shuffle, mut deflate, mut level) = (0, 0, 0);
        // SAFETY: valid out-pointers.
        locked(|| unsafe { sys::nc_inq_var_deflate(self.ncid, self.varid, &mut shuffle, &mut deflate, &mut level) })?;
        if shuffle != 0 {
            storage.filters.push("shuffle".into());
        }
        if deflate != 0 {
            storage.filters.push(format!("zlib({level})"));
        }
        let mut fletcher = 0;
        // SAFETY: valid out-pointer.
        locked(|| unsafe { sys::nc_inq_var_fletcher32(self.ncid, self.varid, &mut fletcher) })?;
        if fletcher != 0 {
            storage.filters.push("fletcher32".into());
        }
        for id in self.filter_ids()? {
            // 1 = deflate, 2 = shuffle, 3 = fletcher32: reported above.
            if id > 3 {
                storage.filters.push(filter_name(id));
                let _g = lock();
                // SAFETY: scalar arguments.
                if unsafe { sys::nc_inq_filter_avail(self.ncid, id) } != sys::NC_NOERR {
                    storage.unavailable_filters.push(filter_name(id));
                }
            }
        }
        Ok(storage)
    }

    fn filter_ids(&self) -> NcResult<Vec<u32>> {
        let mut n = 0usize;
        let status = {
            let _g = lock();
            // SAFETY: count only (a null id buffer is allowed); the library lock is held.
            unsafe { sys::nc_inq_var_filter_ids(self.ncid, self.varid, &mut n, std::ptr::null_mut()) }
        };
        if status != sys::NC_NOERR || n == 0 {
            return Ok(Vec::new());
        }
        let mut ids = vec![0u32; n];
        // SAFETY: room for n ids.
        locked(|| unsafe { sys::nc_inq_var_filter_ids(self.ncid, self.varid, &mut n, ids.as_mut_ptr()) })?;
        Ok(ids)
    }

    /// Sets this variable's HDF5 chunk cache (netCDF-4 only; a no-op elsewhere).
    pub fn set_chunk_cache(&self, bytes: usize) -> NcResult<()> {
        let _g = lock();
        // SAFETY: scalar arguments.
        let status = unsafe { sys::nc_set_var_chunk_cache(self.ncid, self.varid, bytes, 1009, 0.75) };
        if status == sys::NC_ENOTNC4 {
            return Ok(());
        }
        check(status)
    }

    /// Reads the hyperslab `start`/`count` of a fixed-size type into `out` (native
    /// byte order, C order). `out` must hold exactly the slab's bytes, and `start` and
    /// `count` one entry per dimension: anything else is an error, never a C write
    /// past the buffer.
    pub fn read_raw(&self, start: &[u64], count: &[u64], out: &mut [u8]) -> NcResult<()> {
        self.check_slab(start, count)?;
        let elem = self.element_size()?;
        let want = count.iter().try_fold(elem as u64, |n, &c| n.checked_mul(c));
        if want != Some(out.len() as u64) {
            return Err(NcError {
                code: sys::NC_EINVAL,
                message: format!(
                    "a buffer of {} bytes cannot hold a slab of {count:?} elements of {elem} bytes",
                    out.len()
                ),
            });
        }
        let start: Vec<usize> = start.iter().map(|&s| s as usize).collect();
        let count: Vec<usize> = count.iter().map(|&c| c as usize).collect();
        if count.contains(&0) {
            return Ok(());
        }
        // SAFETY: `out` was checked to hold the slab; start/count have one entry per dim.
        locked(|| unsafe {
            sys::nc_get_vara(
                self.ncid,
                self.varid,
                start.as_ptr(),
                count.as_ptr(),
                out.as_mut_ptr().cast(),
            )
        })
    }

    /// Checks that `start`/`count` have one entry per dimension of this variable.
    fn check_slab(&self, start: &[u64], count: &[u64]) -> NcResult<()> {
        let mut ndims = 0;
        // SAFETY: valid out-pointer.
        locked(|| unsafe { sys::nc_inq_varndims(self.ncid, self.varid, &mut ndims) })?;
        if start.len() != ndims as usize || count.len() != ndims as usize {
            return Err(NcError {
                code: sys::NC_EINVAL,
                message: format!(
                    "a slab of {} start and {} count values for a variable of {ndims} dimensions",
                    start.len(),
                    count.len()
                ),
            });
        }
        Ok(())
    }

    /// Bytes per element of this variable's type (as the library stores it in memory).
    fn element_size(&self) -> NcResult<usize> {
        let (mut xtype, mut size) = (0, 0usize);
        // SAFETY: valid out-pointers.
        locked(|| unsafe { sys::nc_inq_vartype(self.ncid, self.varid, &mut xtype) })?;
        // SAFETY: a null name pointer is allowed; valid out-pointer for the size.
        locked(|| unsafe { sys::nc_inq_type(self.ncid, xtype, std::ptr::null_mut(), &mut size) })?;
        Ok(size)
    }

    /// Reads the hyperslab `start`/`count` of an `NC_STRING` variable.
    pub fn read_strings(&self, start: &[u64], count: &[u64]) -> NcResult<Vec<String>> {
        self.check_slab(start, count)?;
        let start: Vec<usize> = start.iter().map(|&s| s as usize).collect();
        let count: Vec<usize> = count.iter().map(|&c| c as usize).collect();
        let n: usize = count.iter().product();
        if n == 0 {
            return Ok(Vec::new());
        }
        let mut ptrs: Vec<*mut c_char> = vec![std::ptr::null_mut(); n];
        let _g = lock();
        // SAFETY: ptrs has room for n pointers; freed below with nc_free_string.
        check(unsafe {
            sys::nc_get_vara_string(self.ncid, self.varid, start.as_ptr(), count.as_ptr(), ptrs.as_mut_ptr())
        })?;
        let strings = ptrs
            .iter()
            .map(|&p| {
                if p.is_null() {
                    String::new()
                } else {
                    // SAFETY: the library returned NUL-terminated strings.
                    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
                }
            })
            .collect();
        // SAFETY: the pointers came from nc_get_vara_string.
        check(unsafe { sys::nc_free_string(n, ptrs.as_mut_ptr()) })?;
        Ok(strings)
    }
}

impl Group<'_> {
    /// Unlimited dimension ids visible from this group (its own and its parents').
    fn unlimited_dim_ids_visible(&self) -> NcResult<Vec<c_int>> {
        let mut ids = self.unlimited_dim_ids()?;
        let mut ncid = self.ncid;
        loop {
            let mut parent = 0;
            let status = {
                let _g = lock();
                // SAFETY: valid out-pointer.
                unsafe { sys::nc_inq_grp_parent(ncid, &mut parent) }
            };
            if status != sys::NC_NOERR {
                break;
            }
            let g = Group {
                ncid: parent,
                _file: std::marker::PhantomData,
            };
            ids.extend(g.unlimited_dim_ids()?);
            ncid = parent;
        }
        Ok(ids)
    }
}

fn filter_name(id: u32) -> String {
    match id {
        4 => "szip".into(),
        307 => "bzip2".into(),
        32000 => "lzf".into(),
        32001 => "blosc".into(),
        32004 => "lz4".into(),
        32013 => "zfp".into(),
        32015 => "zstd".into(),
        32017 => "sz".into(),
        other => format!("filter-{other}"),
    }
}

fn classify_type(ncid: c_int, xtype: c_int) -> NcResult<VarType> {
    let simple = match xtype {
        sys::NC_BYTE => Some(DType::I8),
        sys::NC_UBYTE => Some(DType::U8),
        sys::NC_SHORT => Some(DType::I16),
        sys::NC_USHORT => Some(DType::U16),
        sys::NC_INT => Some(DType::I32),
        sys::NC_UINT => Some(DType::U32),
        sys::NC_INT64 => Some(DType::I64),
        sys::NC_UINT64 => Some(DType::U64),
        sys::NC_FLOAT => Some(DType::F32),
        sys::NC_DOUBLE => Some(DType::F64),
        sys::NC_CHAR => Some(DType::Char),
        sys::NC_STRING => Some(DType::String),
        _ => None,
    };
    if let Some(dtype) = simple {
        return Ok(VarType::Supported { dtype, enum_name: None });
    }
    let mut buf = name_buf();
    let (mut size, mut base, mut nfields, mut class) = (0usize, 0, 0usize, 0);
    // SAFETY: name buffer of NC_MAX_NAME+1 bytes and valid out-pointers.
    locked(|| unsafe {
        sys::nc_inq_user_type(
            ncid,
            xtype,
            buf.as_mut_ptr().cast(),
            &mut size,
            &mut base,
            &mut nfields,
            &mut class,
        )
    })?;
    let name = buf_to_string(&buf);
    Ok(match class {
        sys::NC_ENUM => match classify_type(ncid, base)? {
            VarType::Supported { dtype, .. } => VarType::Supported {
                dtype,
                enum_name: Some(name),
            },
            other => other,
        },
        sys::NC_COMPOUND => VarType::Unsupported(format!("compound type '{name}'")),
        sys::NC_OPAQUE => VarType::Unsupported(format!("opaque type '{name}'")),
        sys::NC_VLEN => VarType::Unsupported(format!("variable-length type '{name}'")),
        _ => VarType::Unsupported(format!("user type '{name}'")),
    })
}

/// An attribute's value as read from the file.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum AttrData {
    /// `NC_CHAR` text.
    Text(String),
    /// `NC_STRING` values.
    Strings(Vec<String>),
    /// Numbers of one type.
    Numbers(DType, Vec<Scalar>),
    /// A type nc2zarr cannot represent; the string says which.
    Unsupported(String),
}

/// A named attribute.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Attribute {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: AttrData,
}

fn read_attributes(ncid: c_int, varid: c_int) -> NcResult<Vec<Attribute>> {
    let mut natts = 0;
    if varid == sys::NC_GLOBAL {
        // SAFETY: valid out-pointer.
        locked(|| unsafe { sys::nc_inq_natts(ncid, &mut natts) })?;
    } else {
        // SAFETY: valid out-pointer.
        locked(|| unsafe { sys::nc_inq_varnatts(ncid, varid, &mut natts) })?;
    }
    (0..natts)
        .map(|i| {
            let mut buf = name_buf();
            // SAFETY: name buffer of NC_MAX_NAME+1 bytes.
            locked(|| unsafe { sys::nc_inq_attname(ncid, varid, i, buf.as_mut_ptr().cast()) })?;
            let name = buf_to_string(&buf);
            let value = read_attribute(ncid, varid, &name)?;
            Ok(Attribute { name, value })
        })
        .collect()
}

fn read_attribute(ncid: c_int, varid: c_int, name: &str) -> NcResult<AttrData> {
    let cname = cstring(name)?;
    let (mut xtype, mut len) = (0, 0usize);
    // SAFETY: valid C string and out-pointers.
    locked(|| unsafe { sys::nc_inq_att(ncid, varid, cname.as_ptr(), &mut xtype, &mut len) })?;
    if xtype == sys::NC_STRING {
        let mut ptrs: Vec<*mut c_char> = vec![std::ptr::null_mut(); len];
        let _g = lock();
        if len > 0 {
            // SAFETY: room for len pointers; freed below.
            check(unsafe { sys::nc_get_att_string(ncid, varid, cname.as_ptr(), ptrs.as_mut_ptr()) })?;
        }
        let strings = ptrs
            .iter()
            .map(|&p| {
                if p.is_null() {
                    String::new()
                } else {
                    // SAFETY: NUL-terminated strings from the library.
                    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
                }
            })
            .collect();
        if len > 0 {
            // SAFETY: pointers from nc_get_att_string.
            check(unsafe { sys::nc_free_string(len, ptrs.as_mut_ptr()) })?;
        }
        return Ok(AttrData::Strings(strings));
    }
    if xtype == sys::NC_CHAR {
        let mut bytes = vec![0u8; len];
        if len > 0 {
            // SAFETY: buffer of len bytes.
            locked(|| unsafe { sys::nc_get_att(ncid, varid, cname.as_ptr(), bytes.as_mut_ptr().cast()) })?;
        }
        return Ok(AttrData::Text(decode_text(&bytes, name == "_FillValue")));
    }
    // An enum attribute (an enum variable's `_FillValue`) reads as its base integers, as
    // the variable does.
    let dtype = match classify_type(ncid, xtype)? {
        VarType::Supported { dtype, .. } => dtype,
        VarType::Unsupported(what) => return Ok(AttrData::Unsupported(what)),
    };
    let size = dtype.size().unwrap_or(1);
    let mut bytes = vec![0u8; len * size];
    if len > 0 {
        // SAFETY: buffer of len elements of the attribute's type.
        locked(|| unsafe { sys::nc_get_att(ncid, varid, cname.as_ptr(), bytes.as_mut_ptr().cast()) })?;
    }
    let values = bytes
        .chunks_exact(size)
        .map(|b| Scalar::from_ne_bytes(dtype, b))
        .collect();
    Ok(AttrData::Numbers(dtype, values))
}

/// Decodes `NC_CHAR` attribute bytes the way netCDF4-python (and so xarray) reads
/// them: UTF-8 (lossy), every NUL byte removed (`"Run 1\0   "` is `"Run 1   "`); a
/// `_FillValue` loses only its trailing NUL padding.
fn decode_text(bytes: &[u8], fill: bool) -> String {
    if fill {
        let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        return String::from_utf8_lossy(&bytes[..end]).into_owned();
    }
    let kept: Vec<u8> = bytes.iter().copied().filter(|&b| b != 0).collect();
    String::from_utf8_lossy(&kept).into_owned()
}

/// Opens an input file, turning the library's complaint into a message that names the
/// file and says what to do.
pub fn open_input(path: &Path) -> Result<File, InputError> {
    File::open(path).map_err(|e| InputError::Unreadable {
        path: path.to_path_buf(),
        message: format!("{}; {}", e.message, diagnose(path)),
    })
}

/// A hint about why a file does not open, from its size and first bytes.
fn diagnose(path: &Path) -> String {
    // The first 8 bytes only: a corrupt file may be of any size.
    let first = std::fs::File::open(path).and_then(|f| {
        let mut bytes = Vec::with_capacity(8);
        std::io::Read::read_to_end(&mut std::io::Read::take(f, 8), &mut bytes).map(|_| bytes)
    });
    let Ok(bytes) = first else {
        return "check that the file is readable".into();
    };
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if size == 0 {
        return "the file is empty".into();
    }
    let netcdf3 = bytes.starts_with(b"CDF") && matches!(bytes.get(3), Some(1 | 2 | 5));
    let hdf5 = bytes.starts_with(b"\x89HDF\r\n\x1a\n");
    if netcdf3 || hdf5 {
        format!("the file ({size} bytes) looks truncated or corrupt; re-download or regenerate it")
    } else if bytes.starts_with(b"\x0e\x03\x13\x01") {
        "this is an HDF4 file, which this netCDF library cannot read; convert it to netCDF-4 first".into()
    } else if bytes.starts_with(b"netcdf") {
        "this looks like CDL text; turn it into NetCDF with `ncgen -k nc4`".into()
    } else {
        "this is not a NetCDF or HDF5 file".into()
    }
}
