//! Stage 1: read the headers of all inputs, check they form one dataset, merge them.
//!
//! The result, an [`Inventory`], is plain data: the merged group tree with every
//! variable's shape, type, attributes and source storage, the files in concat order,
//! and per-file time re-encoding where the files' time units differ. Nothing is
//! written anywhere until scan has accepted every input.

use std::path::{Path, PathBuf};

use crate::cftime::{Calendar, TimeUnits};
use crate::error::InputError;
use crate::model::{AttrValue, Attrs, DType, Scalar, attr};
use crate::nc::{self, AttrData, Format, VarType};

/// Options for [`scan`].
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// The dimension to concatenate along; default: the root group's unlimited dimension.
    pub concat_dim: Option<String>,
}

/// One input file in the merged dataset.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Its path.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its netCDF format.
    pub format: Format,
    /// Its length along the concat dimension (0 when there is none).
    pub concat_len: u64,
    /// Where its first step lands along the concat dimension.
    pub concat_start: u64,
}

/// A dimension of the merged dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DimInfo {
    /// Its name.
    pub name: String,
    /// Its merged length.
    pub len: u64,
    /// Unlimited in the source.
    pub unlimited: bool,
    /// The dimension files are concatenated along.
    pub concat: bool,
}

/// A variable of the merged dataset.
#[derive(Debug, Clone)]
pub struct VarInfo {
    /// Its name.
    pub name: String,
    /// Its dimension names, outermost first.
    pub dims: Vec<String>,
    /// Its merged shape.
    pub shape: Vec<u64>,
    /// The type written to Zarr.
    pub dtype: DType,
    /// The type read from the files (differs only when re-encoded time becomes float64).
    pub source_dtype: DType,
    /// Why it cannot be converted, when it cannot.
    pub unsupported: Option<String>,
    /// The enum type name, for enum variables (written as their base integer type).
    pub enum_name: Option<String>,
    /// Attributes (of the first file, time `units` possibly unified).
    pub attrs: Attrs,
    /// Source chunking and filters (of the first file).
    pub storage: nc::Storage,
    /// Position of the concat dimension in `dims`.
    pub concat_axis: Option<usize>,
    /// Per-file `(scale, offset)` re-encoding into the first file's time units.
    pub time_fix: Option<Vec<(f64, f64)>>,
}

impl VarInfo {
    /// Elements in the whole variable.
    pub fn len(&self) -> u64 {
        self.shape.iter().product()
    }

    /// True when the variable holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Uncompressed bytes (strings count 16 bytes each).
    pub fn nbytes(&self) -> u64 {
        self.len() * self.dtype.planning_size()
    }
}

/// A group of the merged dataset.
#[derive(Debug, Clone)]
pub struct GroupInfo {
    /// Its name (empty for the root).
    pub name: String,
    /// Its path from the root, `/`-separated, empty for the root.
    pub path: String,
    /// Group attributes (of the first file).
    pub attrs: Attrs,
    /// Dimensions defined in this group.
    pub dims: Vec<DimInfo>,
    /// Variables, in definition order.
    pub vars: Vec<VarInfo>,
    /// Child groups.
    pub groups: Vec<GroupInfo>,
}

impl GroupInfo {
    /// This group and all descendants, depth first.
    pub fn walk(&self) -> Vec<&GroupInfo> {
        let mut out = vec![self];
        for g in &self.groups {
            out.extend(g.walk());
        }
        out
    }

    /// Full path of a variable of this group.
    pub fn var_path(&self, var: &str) -> String {
        if self.path.is_empty() {
            var.to_string()
        } else {
            format!("{}/{}", self.path, var)
        }
    }
}

/// The merged view of all inputs.
#[derive(Debug, Clone)]
pub struct Inventory {
    /// Files in concat order.
    pub files: Vec<SourceFile>,
    /// The concat dimension, if any.
    pub concat_dim: Option<String>,
    /// The group tree.
    pub root: GroupInfo,
    /// Things the user should know (attributes that differ, enums stored as integers).
    pub notes: Vec<String>,
    /// Attributes that cannot be written, as (location, reason).
    pub unsupported_attrs: Vec<(String, String)>,
}

impl Inventory {
    /// Every variable with its group, depth first.
    pub fn variables(&self) -> Vec<(&GroupInfo, &VarInfo)> {
        self.root
            .walk()
            .into_iter()
            .flat_map(|g| g.vars.iter().map(move |v| (g, v)))
            .collect()
    }

    /// Total bytes of all convertible variables.
    pub fn nbytes(&self) -> u64 {
        self.variables()
            .iter()
            .filter(|(_, v)| v.unsupported.is_none())
            .map(|(_, v)| v.nbytes())
            .sum()
    }
}

// ---------------------------------------------------------------------------
// Per-file headers
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct FileHeader {
    path: PathBuf,
    size: u64,
    format: Format,
    root: GroupHeader,
}

#[derive(Debug, Clone)]
struct GroupHeader {
    name: String,
    attrs: Vec<nc::Attribute>,
    dims: Vec<nc::Dim>,
    vars: Vec<VarHeader>,
    groups: Vec<GroupHeader>,
}

#[derive(Debug, Clone)]
struct VarHeader {
    name: String,
    dims: Vec<nc::Dim>,
    vartype: VarType,
    attrs: Vec<nc::Attribute>,
    storage: nc::Storage,
}

/// Opens a file, turning the library's complaint into a message that says what to do.
pub fn open(path: &Path) -> Result<nc::File, InputError> {
    nc::File::open(path).map_err(|e| InputError::Unreadable {
        path: path.to_path_buf(),
        message: format!("{}; {}", e.message, diagnose(path)),
    })
}

/// A hint about why a file does not open, from its size and first bytes.
fn diagnose(path: &Path) -> String {
    let Ok(bytes) = std::fs::read(path).map(|b| b.into_iter().take(8).collect::<Vec<u8>>()) else {
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

fn io_err(path: &Path, e: nc::NcError) -> InputError {
    InputError::Unreadable {
        path: path.to_path_buf(),
        message: e.message,
    }
}

fn read_header(path: &Path) -> Result<FileHeader, InputError> {
    let size = std::fs::metadata(path)
        .map_err(|e| InputError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?
        .len();
    let file = open(path)?;
    crate::cdf::check_complete(path).map_err(|message| InputError::Unreadable {
        path: path.to_path_buf(),
        message,
    })?;
    let format = file.format().map_err(|e| io_err(path, e))?;
    let root = read_group(file.root()).map_err(|e| io_err(path, e))?;
    Ok(FileHeader {
        path: path.to_path_buf(),
        size,
        format,
        root,
    })
}

fn read_group(group: nc::Group<'_>) -> nc::NcResult<GroupHeader> {
    let mut vars = Vec::new();
    for v in group.variables()? {
        let h = v.header()?;
        vars.push(VarHeader {
            name: h.name,
            dims: h.dims,
            vartype: h.vartype,
            attrs: v.attributes()?,
            storage: v.storage()?,
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

// ---------------------------------------------------------------------------
// Merging
// ---------------------------------------------------------------------------

/// Reads every input's header, checks that they form one dataset and merges them.
pub fn scan(paths: &[PathBuf], options: &ScanOptions) -> Result<Inventory, InputError> {
    if paths.is_empty() {
        return Err(InputError::NothingMatched {
            arg: "INPUT".into(),
            hint: "no input files given".into(),
        });
    }
    let headers = paths.iter().map(|p| read_header(p)).collect::<Result<Vec<_>, _>>()?;
    let concat_dim = find_concat_dim(&headers, options)?;
    let order = match &concat_dim {
        Some(dim) if headers.len() > 1 => order_files(&headers, dim)?,
        _ => FileOrder {
            order: (0..headers.len()).collect(),
            coordinate: None,
        },
    };
    let headers: Vec<FileHeader> = order.order.iter().map(|&i| headers[i].clone()).collect();
    let mut merger = Merger {
        headers: &headers,
        concat_dim: concat_dim.as_deref(),
        notes: Vec::new(),
        unsupported_attrs: Vec::new(),
    };
    let root = merger.merge_group(&[], "")?;
    let (notes, unsupported_attrs) = (merger.notes, merger.unsupported_attrs);
    let mut concat_start = 0;
    let files = headers
        .iter()
        .map(|h| {
            let concat_len = concat_dim
                .as_deref()
                .and_then(|d| h.root.dims.iter().find(|x| x.name == d))
                .map_or(0, |d| d.len);
            let f = SourceFile {
                path: h.path.clone(),
                size: h.size,
                format: h.format,
                concat_len,
                concat_start,
            };
            concat_start += concat_len;
            f
        })
        .collect();
    let mut inventory = Inventory {
        files,
        concat_dim,
        root,
        notes,
        unsupported_attrs,
    };
    if inventory.files.len() > 1 {
        check_static_variables(&inventory)?;
    }
    if let Some(c) = order.coordinate {
        inventory.notes.insert(0, c);
    }
    Ok(inventory)
}

fn find_concat_dim(headers: &[FileHeader], options: &ScanOptions) -> Result<Option<String>, InputError> {
    if let Some(dim) = &options.concat_dim {
        for h in headers {
            if !h.root.dims.iter().any(|d| &d.name == dim) {
                let have: Vec<&str> = h.root.dims.iter().map(|d| d.name.as_str()).collect();
                return Err(InputError::Inconsistent(format!(
                    "{}: has no dimension '{dim}' to concatenate along (root dimensions: {})",
                    h.path.display(),
                    if have.is_empty() {
                        "none".into()
                    } else {
                        have.join(", ")
                    }
                )));
            }
        }
        return Ok(Some(dim.clone()));
    }
    let unlimited = |h: &FileHeader| -> Vec<String> {
        h.root
            .dims
            .iter()
            .filter(|d| d.unlimited)
            .map(|d| d.name.clone())
            .collect()
    };
    let first = unlimited(&headers[0]);
    if headers.len() == 1 {
        return Ok(if first.len() == 1 {
            first.into_iter().next()
        } else {
            None
        });
    }
    if first.len() != 1 {
        return Err(InputError::Inconsistent(format!(
            "{}: {} unlimited dimensions, so the dimension to concatenate {} files along is unclear; pass --concat-dim DIM",
            headers[0].path.display(),
            if first.is_empty() {
                "has no".to_string()
            } else {
                format!("has {}", first.len())
            },
            headers.len()
        )));
    }
    for h in &headers[1..] {
        if unlimited(h) != first {
            return Err(InputError::Inconsistent(format!(
                "{} has unlimited dimension '{}' but {} has {:?}; pass --concat-dim DIM",
                headers[0].path.display(),
                first[0],
                h.path.display(),
                unlimited(h)
            )));
        }
    }
    Ok(first.into_iter().next())
}

struct FileOrder {
    order: Vec<usize>,
    coordinate: Option<String>,
}

/// Values of the concat coordinate of one file, as absolute seconds (time) or raw values.
struct CoordRange {
    values: Vec<f64>,
}

/// Orders files by their concat coordinate values and checks that the values are
/// strictly monotonic within and across files.
fn order_files(headers: &[FileHeader], dim: &str) -> Result<FileOrder, InputError> {
    let has_coord = headers[0]
        .root
        .vars
        .iter()
        .any(|v| v.name == dim && v.dims.len() == 1 && v.dims[0].name == dim);
    if !has_coord {
        return Ok(FileOrder {
            order: (0..headers.len()).collect(),
            coordinate: Some(format!(
                "no coordinate variable '{dim}': files are concatenated in the order given"
            )),
        });
    }
    let ranges = headers
        .iter()
        .map(|h| read_coordinate(h, dim))
        .collect::<Result<Vec<_>, _>>()?;
    let mut direction = 0.0f64;
    for (h, r) in headers.iter().zip(&ranges) {
        for w in r.values.windows(2) {
            let step = w[1] - w[0];
            let bad = step == 0.0 || step.is_nan() || (direction != 0.0 && step.signum() != direction);
            if bad {
                return Err(InputError::Inconsistent(format!(
                    "{}: coordinate '{dim}' is not strictly monotonic (values {} then {})",
                    h.path.display(),
                    w[0],
                    w[1]
                )));
            }
            direction = step.signum();
        }
    }
    let direction = if direction == 0.0 { 1.0 } else { direction };
    let mut order: Vec<usize> = (0..headers.len()).collect();
    order.sort_by(|&a, &b| {
        let key = |i: usize| ranges[i].values.first().copied().unwrap_or(f64::INFINITY) * direction;
        key(a).total_cmp(&key(b))
    });
    let non_empty: Vec<usize> = order
        .iter()
        .copied()
        .filter(|&i| !ranges[i].values.is_empty())
        .collect();
    for w in non_empty.windows(2) {
        let (a, b) = (&ranges[w[0]].values, &ranges[w[1]].values);
        let (last_a, first_b) = (a[a.len() - 1], b[0]);
        if (first_b - last_a) * direction <= 0.0 {
            let what = if a.contains(&first_b) {
                "duplicate"
            } else {
                "overlapping"
            };
            return Err(InputError::Inconsistent(format!(
                "{what} '{dim}' values: {} and {} both cover the same coordinate range; remove one of them",
                headers[w[0]].path.display(),
                headers[w[1]].path.display()
            )));
        }
    }
    Ok(FileOrder {
        order,
        coordinate: None,
    })
}

fn read_coordinate(h: &FileHeader, dim: &str) -> Result<CoordRange, InputError> {
    let var = h
        .root
        .vars
        .iter()
        .find(|v| v.name == dim)
        .ok_or_else(|| InputError::Inconsistent(format!("{}: no coordinate variable '{dim}'", h.path.display())))?;
    let dtype = match &var.vartype {
        VarType::Supported { dtype, .. } if dtype.size().is_some() && *dtype != DType::Char => *dtype,
        _ => {
            return Err(InputError::Unsupported(format!(
                "{}: coordinate '{dim}' is not numeric, so files cannot be ordered by it",
                h.path.display()
            )));
        }
    };
    let len = var.dims[0].len;
    let file = open(&h.path)?;
    let v = file.root().variable(dim).map_err(|e| io_err(&h.path, e))?;
    let size = dtype.size().unwrap_or(1);
    let mut buf = vec![0u8; len as usize * size];
    v.read_raw(&[0], &[len], &mut buf).map_err(|e| InputError::Read {
        path: h.path.clone(),
        variable: dim.into(),
        message: e.message,
    })?;
    let mut values: Vec<f64> = buf
        .chunks_exact(size)
        .map(|b| Scalar::from_ne_bytes(dtype, b).as_f64())
        .collect();
    let attrs = convert_attrs(&var.attrs);
    if let Some(units) = attr(&attrs, "units")
        .and_then(AttrValue::as_text)
        .and_then(TimeUnits::parse)
    {
        let calendar = Calendar::parse(attr(&attrs, "calendar").and_then(AttrValue::as_text))
            .map_err(|e| InputError::Unsupported(format!("{}: '{dim}': {e}", h.path.display())))?;
        for v in &mut values {
            *v = units
                .absolute_seconds(*v, calendar)
                .map_err(|e| InputError::Unsupported(format!("{}: '{dim}' units: {e}", h.path.display())))?;
        }
    }
    Ok(CoordRange { values })
}

/// Converts library attributes into written form, keeping unsupported ones aside.
fn convert_attrs(attrs: &[nc::Attribute]) -> Attrs {
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

struct Merger<'a> {
    headers: &'a [FileHeader],
    concat_dim: Option<&'a str>,
    notes: Vec<String>,
    unsupported_attrs: Vec<(String, String)>,
}

fn group_at<'h>(root: &'h GroupHeader, path: &[String]) -> Option<&'h GroupHeader> {
    let mut g = root;
    for name in path {
        g = g.groups.iter().find(|c| &c.name == name)?;
    }
    Some(g)
}

impl Merger<'_> {
    fn merge_group(&mut self, path: &[String], name: &str) -> Result<GroupInfo, InputError> {
        let first = group_at(&self.headers[0].root, path).expect("group exists in first file");
        let gpath = path.join("/");
        let shown = if gpath.is_empty() {
            "/".to_string()
        } else {
            format!("/{gpath}")
        };
        for h in &self.headers[1..] {
            let Some(g) = group_at(&h.root, path) else {
                return Err(self.missing(&format!("group '{shown}'"), h));
            };
            let names = |g: &GroupHeader| g.groups.iter().map(|c| c.name.clone()).collect::<Vec<_>>();
            if let Some(extra) = names(g).iter().find(|n| !names(first).contains(n)) {
                return Err(InputError::Inconsistent(format!(
                    "group '/{}' is in {} but not in {}",
                    join_path(&gpath, extra),
                    h.path.display(),
                    self.headers[0].path.display()
                )));
            }
        }
        self.note_unsupported_attrs(&first.attrs, &shown);
        self.note_differing_attrs(path, None, &shown);
        let is_root = path.is_empty();
        let dims = first
            .dims
            .iter()
            .map(|d| {
                let concat = is_root && Some(d.name.as_str()) == self.concat_dim;
                let len = if concat { self.concat_len() } else { d.len };
                DimInfo {
                    name: d.name.clone(),
                    len,
                    unlimited: d.unlimited,
                    concat,
                }
            })
            .collect();
        let mut vars = Vec::new();
        for v in &first.vars {
            vars.push(self.merge_var(path, v, &gpath)?);
        }
        for h in &self.headers[1..] {
            let g = group_at(&h.root, path).expect("checked above");
            if let Some(extra) = g.vars.iter().find(|v| !first.vars.iter().any(|f| f.name == v.name)) {
                return Err(InputError::Inconsistent(format!(
                    "variable '{}' is in {} but not in {}",
                    join_path(&gpath, &extra.name),
                    h.path.display(),
                    self.headers[0].path.display()
                )));
            }
        }
        let mut groups = Vec::new();
        for child in &first.groups {
            let mut p = path.to_vec();
            p.push(child.name.clone());
            groups.push(self.merge_group(&p, &child.name)?);
        }
        Ok(GroupInfo {
            name: name.to_string(),
            path: gpath,
            attrs: convert_attrs(&first.attrs),
            dims,
            vars,
            groups,
        })
    }

    fn concat_len(&self) -> u64 {
        let dim = self.concat_dim.expect("concat dim");
        self.headers
            .iter()
            .map(|h| h.root.dims.iter().find(|d| d.name == dim).map_or(0, |d| d.len))
            .sum()
    }

    fn missing(&self, what: &str, h: &FileHeader) -> InputError {
        InputError::Inconsistent(format!(
            "{what} is in {} but not in {}",
            self.headers[0].path.display(),
            h.path.display()
        ))
    }

    fn note_unsupported_attrs(&mut self, attrs: &[nc::Attribute], location: &str) {
        for a in attrs {
            if let AttrData::Unsupported(what) = &a.value {
                self.unsupported_attrs
                    .push((format!("{location} attribute '{}'", a.name), format!("has {what}")));
            }
        }
    }

    /// Notes attributes whose values differ between files (the first file's are kept).
    fn note_differing_attrs(&mut self, path: &[String], var: Option<&str>, location: &str) {
        let attrs_of = |h: &FileHeader| -> Option<Attrs> {
            let g = group_at(&h.root, path)?;
            Some(match var {
                None => convert_attrs(&g.attrs),
                Some(v) => convert_attrs(&g.vars.iter().find(|x| x.name == v)?.attrs),
            })
        };
        let Some(first) = attrs_of(&self.headers[0]) else {
            return;
        };
        let mut differing: Vec<String> = Vec::new();
        for h in &self.headers[1..] {
            let Some(other) = attrs_of(h) else { continue };
            for (k, v) in &first {
                if k == "units" && var.is_some() {
                    continue; // handled by the units check
                }
                let same = attr(&other, k).is_some_and(|o| o.same(v));
                if !same && !differing.contains(k) {
                    differing.push(k.clone());
                }
            }
            for (k, _) in &other {
                if attr(&first, k).is_none() && !differing.contains(k) {
                    differing.push(k.clone());
                }
            }
        }
        if !differing.is_empty() {
            self.notes.push(format!(
                "{location}: attribute(s) {} differ between files; the first file's values are kept",
                differing.join(", ")
            ));
        }
    }

    fn merge_var(&mut self, path: &[String], v: &VarHeader, gpath: &str) -> Result<VarInfo, InputError> {
        let full = join_path(gpath, &v.name);
        let concat_dim_id = self
            .concat_dim
            .and_then(|d| self.headers[0].root.dims.iter().find(|x| x.name == d))
            .map(|d| d.id);
        let concat_axis = v.dims.iter().position(|d| Some(d.id) == concat_dim_id);
        let mut shape: Vec<u64> = v.dims.iter().map(|d| d.len).collect();
        for h in &self.headers[1..] {
            let other = group_at(&h.root, path)
                .and_then(|g| g.vars.iter().find(|x| x.name == v.name))
                .ok_or_else(|| self.missing(&format!("variable '{full}'"), h))?;
            if other.vartype != v.vartype {
                return Err(InputError::Inconsistent(format!(
                    "variable '{full}' has type {} in {} but {} in {}",
                    type_name(&v.vartype),
                    self.headers[0].path.display(),
                    type_name(&other.vartype),
                    h.path.display()
                )));
            }
            let names = |x: &VarHeader| x.dims.iter().map(|d| d.name.clone()).collect::<Vec<_>>();
            if names(other) != names(v) {
                return Err(InputError::Inconsistent(format!(
                    "variable '{full}' has dimensions ({}) in {} but ({}) in {}",
                    names(v).join(", "),
                    self.headers[0].path.display(),
                    names(other).join(", "),
                    h.path.display()
                )));
            }
            for (axis, (a, b)) in v.dims.iter().zip(&other.dims).enumerate() {
                if Some(axis) == concat_axis {
                    shape[axis] += b.len;
                } else if a.len != b.len {
                    return Err(InputError::Inconsistent(format!(
                        "dimension '{}' of variable '{full}' has length {} in {} but {} in {}",
                        a.name,
                        a.len,
                        self.headers[0].path.display(),
                        b.len,
                        h.path.display()
                    )));
                }
            }
        }
        self.note_unsupported_attrs(&v.attrs, &format!("variable '{full}'"));
        self.note_differing_attrs(path, Some(&v.name), &format!("variable '{full}'"));
        let (dtype, enum_name, mut unsupported) = match &v.vartype {
            VarType::Supported { dtype, enum_name } => (*dtype, enum_name.clone(), None),
            VarType::Unsupported(what) => (
                DType::U8,
                None,
                Some(format!(
                    "variable '{full}' has {what}, which Zarr and xarray cannot hold"
                )),
            ),
        };
        if unsupported.is_none() && !v.storage.unavailable_filters.is_empty() {
            unsupported = Some(format!(
                "variable '{full}' is compressed with HDF5 filter(s) {} that this netCDF library cannot decode; \
                 install the filter plugin and set HDF5_PLUGIN_PATH",
                v.storage.unavailable_filters.join(", ")
            ));
        }
        if v.storage.no_fill && unsupported.is_none() {
            self.notes.push(format!(
                "variable '{full}' was written without fill values (NOFILL): any part never written holds undefined values in the source"
            ));
        }
        if let Some(name) = &enum_name {
            self.notes.push(format!(
                "variable '{full}': enum type '{name}' is written as its base integer type ({})",
                dtype.cdl_name()
            ));
        }
        let mut attrs = convert_attrs(&v.attrs);
        let time_fix = match concat_axis {
            Some(_) if self.headers.len() > 1 => self.time_fix(path, v, &full, &mut attrs)?,
            _ => None,
        };
        let out_dtype = match &time_fix {
            Some(fix) if dtype.is_integer() && fix.iter().any(|&(s, o)| s.fract() != 0.0 || o.fract() != 0.0) => {
                self.notes.push(format!(
                    "variable '{full}': time values re-encoded to '{}' are not whole numbers, so they are stored as float64",
                    attr(&attrs, "units").and_then(AttrValue::as_text).unwrap_or("")
                ));
                DType::F64
            }
            _ => dtype,
        };
        Ok(VarInfo {
            name: v.name.clone(),
            dims: v.dims.iter().map(|d| d.name.clone()).collect(),
            shape,
            dtype: out_dtype,
            source_dtype: dtype,
            unsupported,
            enum_name,
            attrs,
            storage: v.storage.clone(),
            concat_axis,
            time_fix,
        })
    }

    /// Effective units of `v` in one file: its own, or those of the variable naming it as `bounds`.
    fn units_in(&self, h: &FileHeader, path: &[String], v: &str) -> (Option<String>, Option<String>) {
        let Some(g) = group_at(&h.root, path) else {
            return (None, None);
        };
        let text = |attrs: &[nc::Attribute], name: &str| {
            convert_attrs(attrs)
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, a)| a.as_text().map(str::to_string))
        };
        let Some(var) = g.vars.iter().find(|x| x.name == v) else {
            return (None, None);
        };
        if let Some(u) = text(&var.attrs, "units") {
            return (Some(u), text(&var.attrs, "calendar"));
        }
        for parent in &g.vars {
            if text(&parent.attrs, "bounds").as_deref() == Some(v) {
                return (text(&parent.attrs, "units"), text(&parent.attrs, "calendar"));
            }
        }
        (None, None)
    }

    fn time_fix(
        &mut self,
        path: &[String],
        v: &VarHeader,
        full: &str,
        attrs: &mut Attrs,
    ) -> Result<Option<Vec<(f64, f64)>>, InputError> {
        let per_file: Vec<(Option<String>, Option<String>)> =
            self.headers.iter().map(|h| self.units_in(h, path, &v.name)).collect();
        let (first_units, first_cal) = &per_file[0];
        if per_file.iter().all(|(u, _)| u == first_units) {
            return Ok(None);
        }
        let differ = |i: usize| {
            format!(
                "variable '{full}' has units {:?} in {} but {:?} in {}",
                first_units.as_deref().unwrap_or("(none)"),
                self.headers[0].path.display(),
                per_file[i].0.as_deref().unwrap_or("(none)"),
                self.headers[i].path.display()
            )
        };
        let target = first_units.as_deref().and_then(TimeUnits::parse);
        let Some(target) = target else {
            let i = per_file.iter().position(|(u, _)| u != first_units).unwrap_or(0);
            return Err(InputError::Inconsistent(differ(i)));
        };
        let calendar = Calendar::parse(first_cal.as_deref())
            .map_err(|e| InputError::Unsupported(format!("variable '{full}': {e}")))?;
        let mut fixes = Vec::new();
        for (i, (u, cal)) in per_file.iter().enumerate() {
            let this_cal = Calendar::parse(cal.as_deref())
                .map_err(|e| InputError::Unsupported(format!("variable '{full}': {e}")))?;
            if this_cal != calendar {
                return Err(InputError::Inconsistent(format!(
                    "variable '{full}' uses calendar {calendar} in {} but {this_cal} in {}",
                    self.headers[0].path.display(),
                    self.headers[i].path.display()
                )));
            }
            let units = u
                .as_deref()
                .and_then(TimeUnits::parse)
                .ok_or_else(|| InputError::Inconsistent(differ(i)))?;
            let fix = units.transform_to(&target, calendar).map_err(|e| {
                InputError::Unsupported(format!("{}: variable '{full}': {e}", self.headers[i].path.display()))
            })?;
            fixes.push(fix);
        }
        if attr(attrs, "units").is_some() {
            self.notes.push(format!(
                "variable '{full}': time units differ between files; values are re-encoded to {:?}",
                first_units.as_deref().unwrap_or("")
            ));
        }
        Ok(Some(fixes))
    }
}

fn join_path(gpath: &str, name: &str) -> String {
    if gpath.is_empty() {
        name.to_string()
    } else {
        format!("{gpath}/{name}")
    }
}

fn type_name(t: &VarType) -> String {
    match t {
        VarType::Supported { dtype, enum_name: None } => dtype.cdl_name().into(),
        VarType::Supported { enum_name: Some(n), .. } => format!("enum {n}"),
        VarType::Unsupported(what) => what.clone(),
    }
}

/// Checks that variables without the concat dimension hold the same values in every file.
fn check_static_variables(inv: &Inventory) -> Result<(), InputError> {
    for (g, v) in inv.variables() {
        if v.concat_axis.is_some() || v.unsupported.is_some() {
            continue;
        }
        let full = g.var_path(&v.name);
        let first = crate::read::hash_variable(&inv.files[0].path, g, v)?;
        for f in &inv.files[1..] {
            if crate::read::hash_variable(&f.path, g, v)? != first {
                return Err(InputError::Inconsistent(format!(
                    "variable '{full}' does not depend on the concat dimension but its values differ between {} and {}; \
                     the files do not share one grid (or pass --concat-dim to concatenate along another dimension)",
                    inv.files[0].path.display(),
                    f.path.display()
                )));
            }
        }
    }
    Ok(())
}
