//! Reading one input's header: its group tree, dimensions, variables, attributes,
//! source storage, and the values of its small root coordinates (the only data scan
//! reads from every file: they decide the concat dimension and the file order).

use std::path::{Path, PathBuf};

use crate::error::InputError;
use crate::model::Format;
use crate::model::{AttrValue, Attrs, DType, Scalar};
use crate::nc::{self, AttrData, VarType};

/// Root coordinates longer than this are not read with the header (a 1-D coordinate
/// that long is never a concat candidate worth reading from every file).
const COORD_VALUES_LIMIT: u64 = 1 << 20;

/// Variables without an unlimited dimension up to this size are hashed with the header,
/// so that checking that static fields (grids, masks) agree between files needs no
/// second pass over the files.
const STATIC_HASH_LIMIT: u64 = 1 << 20;

/// Everything scan knows about one input file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct FileHeader {
    pub path: PathBuf,
    pub size: u64,
    pub format: Format,
    /// The group of the file read as its root (`--group`), `/`-separated; empty for the
    /// file's own root.
    #[serde(default)]
    pub group: String,
    pub root: GroupHeader,
    /// Values of the root group's numeric 1-D coordinate variables (`x(x)`), as read.
    pub coords: Vec<CoordValues>,
}

/// The raw values of one coordinate variable of one file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct CoordValues {
    pub name: String,
    #[serde(with = "crate::model::f64s_bits")]
    pub values: Vec<f64>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct GroupHeader {
    pub name: String,
    pub attrs: Vec<nc::Attribute>,
    pub dims: Vec<nc::Dim>,
    pub vars: Vec<VarHeader>,
    pub groups: Vec<GroupHeader>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct VarHeader {
    pub name: String,
    pub dims: Vec<nc::Dim>,
    pub vartype: VarType,
    pub attrs: Vec<nc::Attribute>,
    pub storage: crate::model::Storage,
    /// blake3 of the raw values, for small variables without an unlimited dimension.
    pub hash: Option<String>,
}

impl FileHeader {
    /// The raw values of root coordinate `name`, when they were read with the header.
    pub fn coord(&self, name: &str) -> Option<&[f64]> {
        self.coords.iter().find(|c| c.name == name).map(|c| c.values.as_slice())
    }
}

/// True when root variable `name` may have another type in some files, the first
/// file's variable being kept, as xarray keeps it:
/// - a coordinate (not along `concat_dim`) that is a plain number in every file, with
///   values read with every header (`lat` float in one file, double in another): the
///   values are compared as read;
/// - a CF grid mapping (a scalar with a `grid_mapping_name` attribute in every file,
///   `rotated_pole` char in one file, int in another): CF does not use its value.
pub(crate) fn keeps_first_type(headers: &[FileHeader], name: &str, concat_dim: Option<&str>) -> bool {
    let coordinate = |h: &FileHeader| {
        h.root
            .var(name)
            .is_some_and(|v| v.is_coordinate() && v.is_plain_number() && Some(v.dims[0].name.as_str()) != concat_dim)
            && h.coord(name).is_some()
    };
    headers.iter().all(coordinate)
        || headers
            .iter()
            .all(|h| h.root.var(name).is_some_and(VarHeader::is_grid_mapping))
}

impl GroupHeader {
    /// The variable `name` of this group.
    pub fn var(&self, name: &str) -> Option<&VarHeader> {
        self.vars.iter().find(|v| v.name == name)
    }

    /// The dimension `name` defined in this group.
    pub fn dim(&self, name: &str) -> Option<&nc::Dim> {
        self.dims.iter().find(|d| d.name == name)
    }

    /// True when dimension `name` of this group only gives the length of strings: every
    /// variable that uses it (here or in a subgroup) is a char array with it as its last
    /// dimension, and one at least does. xarray decodes such arrays to fixed-width
    /// strings, so files may differ in that length: shorter strings are padded.
    pub fn is_string_length(&self, name: &str) -> bool {
        fn uses(g: &GroupHeader, id: std::ffi::c_int, used: &mut bool) -> bool {
            for v in &g.vars {
                if let Some(axis) = v.dims.iter().position(|d| d.id == id) {
                    let char_array = matches!(v.vartype, VarType::Supported { dtype: DType::Char, .. });
                    if !char_array || axis + 1 != v.dims.len() {
                        return false;
                    }
                    *used = true;
                }
            }
            g.groups.iter().all(|c| uses(c, id, used))
        }
        let Some(dim) = self.dim(name) else { return false };
        let mut used = false;
        !dim.unlimited && uses(self, dim.id, &mut used) && used
    }

    /// True when `name(name)` is a 1-D coordinate variable of this group.
    pub fn has_coordinate(&self, name: &str) -> bool {
        self.var(name)
            .is_some_and(|v| v.dims.len() == 1 && v.dims[0].name == name)
    }
}

impl VarHeader {
    /// The element type, when it is a plain number (not char, string or compound).
    pub fn numeric_dtype(&self) -> Option<DType> {
        match &self.vartype {
            VarType::Supported { dtype, enum_name: None } if dtype.size().is_some() && *dtype != DType::Char => {
                Some(*dtype)
            }
            _ => None,
        }
    }

    /// True for a variable of strings or characters.
    pub fn is_text(&self) -> bool {
        matches!(
            self.vartype,
            VarType::Supported {
                dtype: DType::String | DType::Char,
                ..
            }
        )
    }

    /// True for a plain integer or float variable (not char, string, enum or compound).
    pub fn is_plain_number(&self) -> bool {
        self.numeric_dtype().is_some_and(|t| t.is_float() || t.is_integer())
            && matches!(self.vartype, VarType::Supported { enum_name: None, .. })
    }

    /// True for a CF grid mapping: a scalar with a `grid_mapping_name` attribute.
    pub fn is_grid_mapping(&self) -> bool {
        self.dims.is_empty() && self.attrs.iter().any(|a| a.name == "grid_mapping_name")
    }

    /// True for a 1-D coordinate variable (`x(x)`).
    pub fn is_coordinate(&self) -> bool {
        self.dims.len() == 1 && self.dims[0].name == self.name
    }

    /// Attributes in written form.
    pub fn attrs(&self) -> Attrs {
        convert_attrs(&self.attrs)
    }
}

pub(crate) fn io_err(path: &Path, e: nc::NcError) -> InputError {
    InputError::Unreadable {
        path: path.to_path_buf(),
        message: e.message,
    }
}

/// Reads the header of the file at `path`, from its group `group` down (`/`-separated;
/// empty for the whole file).
pub(crate) fn read_header(path: &Path, group: &str) -> Result<FileHeader, InputError> {
    let size = std::fs::metadata(path)
        .map_err(|e| InputError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?
        .len();
    let file = nc::open_input(path)?;
    crate::cdf::check_complete(path).map_err(|message| InputError::Unreadable {
        path: path.to_path_buf(),
        message,
    })?;
    let format = file.format().map_err(|e| io_err(path, e))?;
    let top = match file.group_at(group) {
        Ok(g) => g,
        Err(_) => return Err(no_such_group(path, &file, group)),
    };
    let mut root = read_group(top).map_err(|e| io_err(path, e))?;
    if !group.is_empty() {
        take_enclosing_dims(&file, group, &mut root).map_err(|e| io_err(path, e))?;
    }
    let coords = read_coords(top, &root).map_err(|(name, e)| InputError::Read {
        path: path.to_path_buf(),
        variable: name,
        region: String::new(),
        message: e.message,
    })?;
    Ok(FileHeader {
        path: path.to_path_buf(),
        size,
        format,
        group: group.to_string(),
        root,
        coords,
    })
}

/// The error for a `--group` the file at `path` lacks, listing the groups it has.
fn no_such_group(path: &Path, file: &nc::File, group: &str) -> InputError {
    fn list(g: nc::Group<'_>, prefix: &str, out: &mut Vec<String>) {
        for c in g.groups().unwrap_or_default() {
            let name = format!("{prefix}/{}", c.name().unwrap_or_default());
            out.push(name.clone());
            list(c, &name, out);
        }
    }
    let mut groups = Vec::new();
    list(file.root(), "", &mut groups);
    let have = if groups.is_empty() {
        "it has no groups".to_string()
    } else {
        format!("its groups: {}", groups.join(", "))
    };
    InputError::inconsistent(format!(
        "{} has no group '/{}' (--group); {have}",
        path.display(),
        group.trim_matches('/')
    ))
    .files([path])
}

/// A group read as the root sees the dimensions of the groups enclosing it: those its
/// variables (or its subgroups') use become its own, unless one of its own shadows them.
fn take_enclosing_dims(file: &nc::File, group: &str, root: &mut GroupHeader) -> nc::NcResult<()> {
    fn uses(g: &GroupHeader, id: std::ffi::c_int) -> bool {
        g.vars.iter().any(|v| v.dims.iter().any(|d| d.id == id)) || g.groups.iter().any(|c| uses(c, id))
    }
    let mut enclosing: Vec<nc::Dim> = Vec::new();
    let mut g = file.root();
    for name in group.split('/').filter(|n| !n.is_empty()) {
        let own = g.dims()?;
        enclosing.retain(|d| !own.iter().any(|o| o.name == d.name));
        enclosing.extend(own);
        g = g.group(name)?;
    }
    enclosing.retain(|d| !root.dims.iter().any(|o| o.name == d.name) && uses(root, d.id));
    root.dims.splice(0..0, enclosing);
    root.name = "/".into();
    Ok(())
}

fn read_group(group: nc::Group<'_>) -> nc::NcResult<GroupHeader> {
    let mut vars = Vec::new();
    for v in group.variables()? {
        let h = v.header()?;
        // Coordinates (`x(x)`) compare by their values, read below for the root group.
        let coordinate = h.dims.len() == 1 && h.dims[0].name == h.name;
        let growing = h.dims.iter().any(|d| d.unlimited);
        let hash = match &h.vartype {
            VarType::Supported { dtype, .. } if !coordinate && !growing => {
                let count: Vec<u64> = h.dims.iter().map(|d| d.len).collect();
                match dtype.size() {
                    Some(size) if count.iter().product::<u64>() * size as u64 <= STATIC_HASH_LIMIT => {
                        // Unreadable data (a missing filter plugin, …) is reported later,
                        // where the variable is read; the header itself is fine.
                        let mut buf = vec![0u8; count.iter().product::<u64>() as usize * size];
                        v.read_raw(&vec![0; count.len()], &count, &mut buf).ok().map(|()| {
                            let mut hasher = blake3::Hasher::new();
                            feed(&mut hasher, &buf, *dtype, count.last().copied().unwrap_or(1));
                            hasher.finalize().to_hex().to_string()
                        })
                    }
                    _ => None,
                }
            }
            _ => None,
        };
        vars.push(VarHeader {
            name: h.name,
            dims: h.dims,
            vartype: h.vartype,
            attrs: v.attributes()?,
            storage: v.storage()?,
            hash,
        });
    }
    Ok(GroupHeader {
        name: group.name()?,
        attrs: group.attributes()?,
        dims: group.dims()?,
        vars,
        groups: group
            .groups()?
            .into_iter()
            .map(read_group)
            .collect::<nc::NcResult<_>>()?,
    })
}

/// blake3 (hex) of a coordinate's values (as read, widened to `f64`) and its `units`:
/// tells apart input files of equal size and layout that hold different steps.
fn coordinate_digest(values: &[f64], attrs: &Attrs) -> String {
    let mut hasher = blake3::Hasher::new();
    for v in values {
        hasher.update(&v.to_le_bytes());
    }
    if let Some(units) = attrs.iter().find(|(k, _)| k == "units") {
        hasher.update(units.1.display().as_bytes());
    }
    hasher.finalize().to_hex().to_string()
}

impl FileHeader {
    /// The digest of root coordinate `dim` from the values read with the header (the
    /// file is read again only for a coordinate too long to be read with it); `None`
    /// when the file has no such numeric coordinate.
    pub(crate) fn coordinate_digest(&self, dim: &str) -> Result<Option<String>, InputError> {
        let scalar = |v: &&VarHeader| v.dims.is_empty() && self.root.dim(dim).is_none();
        let Some(var) = self
            .root
            .var(dim)
            .filter(|v| self.root.has_coordinate(dim) || scalar(v))
        else {
            return Ok(None);
        };
        if var.numeric_dtype().is_none() {
            return Ok(None);
        }
        match self.coord(dim) {
            Some(values) => Ok(Some(coordinate_digest(values, &var.attrs()))),
            None => coordinate_hash(&self.path, &self.group, dim),
        }
    }
}

/// The digest of coordinate `dim` of group `group` (the one read as root; empty for the
/// file's root) of the file at `path` (see [`FileHeader::coordinate_digest`]), for files
/// not scanned yet (append recognises the files it already has by it).
pub fn coordinate_hash(path: &Path, group: &str, dim: &str) -> Result<Option<String>, InputError> {
    let file = nc::open_input(path)?;
    let Ok(root) = file.group_at(group) else {
        return Err(no_such_group(path, &file, group));
    };
    let Ok(var) = root.variable(dim) else {
        return Ok(None);
    };
    let read = |e: nc::NcError| InputError::Read {
        path: path.to_path_buf(),
        variable: dim.to_string(),
        region: String::new(),
        message: e.message,
    };
    let h = var.header().map_err(read)?;
    let dtype = match h.vartype {
        // A 1-D coordinate, or the scalar one of a file that holds one step of a new
        // concat dimension.
        VarType::Supported { dtype, enum_name: None }
            if (dtype.is_float() || dtype.is_integer())
                && (h.dims.is_empty() || (h.dims.len() == 1 && h.dims[0].name == dim)) =>
        {
            dtype
        }
        _ => return Ok(None),
    };
    let values = read_numbers(root, dim, dtype, h.dims.first().map(|d| d.len)).map_err(read)?;
    let attrs = convert_attrs(&var.attributes().map_err(read)?);
    Ok(Some(coordinate_digest(&values, &attrs)))
}

/// Feeds values of type `dtype` to `hasher`. Char arrays go string by string (rows of
/// `row` bytes) without their trailing NUL bytes, so that strings padded to other
/// lengths in other files hash alike, as xarray compares them.
fn feed(hasher: &mut blake3::Hasher, buf: &[u8], dtype: DType, row: u64) {
    if dtype != DType::Char {
        hasher.update(buf);
        return;
    }
    for string in buf.chunks(row.max(1) as usize) {
        let end = string.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        hasher.update(&(end as u64).to_le_bytes());
        hasher.update(&string[..end]);
    }
}

/// Bytes per read when hashing a whole variable.
const HASH_BLOCK_BYTES: u64 = 64 << 20;

/// blake3 (hex) of all values of variable `name` in group `group_path` (`/`-separated,
/// empty for the root) of the file at `path`, of type `dtype` and shape `shape`, read
/// through netCDF-C in bounded blocks along the first dimension.
pub(crate) fn hash_values(
    path: &Path,
    group_path: &str,
    name: &str,
    dtype: DType,
    shape: &[u64],
) -> Result<String, InputError> {
    let full = if group_path.is_empty() {
        name.to_string()
    } else {
        format!("{group_path}/{name}")
    };
    let read = |e: nc::NcError| InputError::Read {
        path: path.to_path_buf(),
        variable: full.clone(),
        region: String::new(),
        message: e.message,
    };
    let file = nc::open_input(path)?;
    let var = file.group_at(group_path).map_err(read)?.variable(name).map_err(read)?;
    let mut hasher = blake3::Hasher::new();
    let mut hash_block = |start: &[u64], count: &[u64]| -> Result<(), InputError> {
        match dtype.size() {
            Some(size) => {
                let mut buf = vec![0u8; count.iter().product::<u64>() as usize * size];
                var.read_raw(start, count, &mut buf).map_err(read)?;
                feed(&mut hasher, &buf, dtype, count.last().copied().unwrap_or(1));
            }
            None => {
                for s in var.read_strings(start, count).map_err(read)? {
                    hasher.update(&(s.len() as u64).to_le_bytes());
                    hasher.update(s.as_bytes());
                }
            }
        }
        Ok(())
    };
    if shape.is_empty() {
        hash_block(&[], &[])?;
    } else {
        let row = shape[1..].iter().product::<u64>() * dtype.planning_size();
        let step = (HASH_BLOCK_BYTES / row.max(1)).max(1);
        let mut i = 0;
        while i < shape[0] {
            let n = step.min(shape[0] - i);
            let mut start = vec![0u64; shape.len()];
            let mut count = shape.to_vec();
            start[0] = i;
            count[0] = n;
            hash_block(&start, &count)?;
            i += n;
        }
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// All values of fixed-size variable `name` of group `parts` (below the group read as
/// root) in the file of `header`, as the file stores them, and their type.
pub(crate) fn read_all_raw(header: &FileHeader, parts: &[String], name: &str) -> Result<(Vec<u8>, DType), InputError> {
    let read = |message: String| InputError::Read {
        path: header.path.clone(),
        variable: name.to_string(),
        region: String::new(),
        message,
    };
    let mut g = &header.root;
    for p in parts {
        g = g
            .groups
            .iter()
            .find(|c| &c.name == p)
            .ok_or_else(|| read(format!("no group '{p}'")))?;
    }
    let var = g.var(name).ok_or_else(|| read("not in the file".into()))?;
    let dtype = match &var.vartype {
        VarType::Supported { dtype, .. } if dtype.size().is_some() => *dtype,
        _ => return Err(read("not of a fixed-size type".into())),
    };
    let shape: Vec<u64> = var.dims.iter().map(|d| d.len).collect();
    let mut buf = vec![0u8; shape.iter().product::<u64>() as usize * dtype.size().unwrap_or(1)];
    let source = [header.group.as_str()]
        .into_iter()
        .chain(parts.iter().map(String::as_str))
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("/");
    let file = nc::open_input(&header.path)?;
    file.group_at(&source)
        .and_then(|g| g.variable(name))
        .and_then(|v| v.read_raw(&vec![0; shape.len()], &shape, &mut buf))
        .map_err(|e| read(e.message))?;
    Ok((buf, dtype))
}

/// Reads the values of the numeric 1-D coordinate variables of `top` (the group read
/// as root), whose header is `root`.
fn read_coords(top: nc::Group<'_>, root: &GroupHeader) -> Result<Vec<CoordValues>, (String, nc::NcError)> {
    let mut out = Vec::new();
    for v in &root.vars {
        let Some(dtype) = v.numeric_dtype() else { continue };
        if !root.has_coordinate(&v.name) || v.dims[0].len > COORD_VALUES_LIMIT {
            continue;
        }
        let values = read_numbers(top, &v.name, dtype, Some(v.dims[0].len)).map_err(|e| (v.name.clone(), e))?;
        out.push(CoordValues {
            name: v.name.clone(),
            values,
        });
    }
    Ok(out)
}

/// Reads all `len` values of the 1-D numeric variable `name` as `f64` (`None`: the one
/// value of a scalar variable).
pub(crate) fn read_numbers(group: nc::Group<'_>, name: &str, dtype: DType, len: Option<u64>) -> nc::NcResult<Vec<f64>> {
    let size = dtype.size().expect("numeric");
    let mut buf = vec![0u8; len.unwrap_or(1) as usize * size];
    match len {
        Some(len) => group.variable(name)?.read_raw(&[0], &[len], &mut buf)?,
        None => group.variable(name)?.read_raw(&[], &[], &mut buf)?,
    }
    Ok(buf
        .chunks_exact(size)
        .map(|b| Scalar::from_ne_bytes(dtype, b).as_f64())
        .collect())
}

/// Converts library attributes into written form, leaving out unsupported ones.
pub(crate) fn convert_attrs(attrs: &[nc::Attribute]) -> Attrs {
    attrs
        .iter()
        .filter_map(|a| {
            let v = match &a.value {
                AttrData::Text(s) => AttrValue::Text(s.clone()),
                AttrData::Strings(v) if v.len() == 1 => AttrValue::Text(v[0].clone()),
                AttrData::Strings(v) => AttrValue::Strings(v.clone()),
                AttrData::Numbers(t, v) => AttrValue::Numbers(*t, v.clone()),
                AttrData::Unsupported(_) => return None,
            };
            Some((a.name.clone(), v))
        })
        .collect()
}
