//! The merged dataset that scan produces and every later stage reads: files in concat
//! order, the group tree with each variable's shape, type, attributes and source
//! storage, per-file recodings, and how the files differ.

use std::path::PathBuf;

use super::{Attrs, DType, Decoding, Drift, Format, Scalar, Storage};

/// One input file in the merged dataset.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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
    /// Digest of its concat coordinate's values and units (recorded in the manifest,
    /// so that append tells apart files of equal size and layout).
    pub coordinate_digest: Option<String>,
    /// For a remote input (staged at `path`): its URL and the ETag it was read at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<(String, Option<String>)>,
}

impl SourceFile {
    /// How the file is named to users: its URL when it is a staged remote input.
    pub fn shown(&self) -> String {
        match &self.origin {
            Some((url, _)) => crate::secrets::without_secrets(url),
            None => self.path.display().to_string(),
        }
    }
}

/// A dimension of the merged dataset.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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
    pub storage: Storage,
    /// Position of the concat dimension in `dims`.
    pub concat_axis: Option<usize>,
    /// Per-file `(scale, offset)` re-encoding into the first file's time units.
    pub time_fix: Option<Vec<(f64, f64)>>,
    /// Per-file decoding, when files pack the variable differently: it is stored
    /// unpacked (as `dtype`, a float type), each file decoded with its own attributes.
    pub unpack: Option<Vec<Decoding>>,
    /// Per-file stored types, when they differ between files (values are then
    /// converted to `dtype`, numpy's promotion of them, or decoded via `unpack`).
    pub file_dtypes: Option<Vec<DType>>,
    /// The files that hold the variable, as indices into [`Inventory::files`] in concat
    /// order, when the inputs split their variables between files (merged as
    /// `xarray.open_mfdataset` does); `None` when every file holds it. The per-file
    /// lists above (`time_fix`, `unpack`, `file_dtypes`) follow this list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<usize>>,
    /// What the steps of the concat axis that none of [`VarInfo::files`] holds read as
    /// (NaN, or an integer's fill value), when the files leave such steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap_fill: Option<Scalar>,
    /// The files hold the variable without the concat dimension, with values that
    /// differ between them: it is stored with the concat dimension first, each file's
    /// values repeated over its steps (as `xarray.open_mfdataset` concatenates such
    /// variables). See [`VarInfo::repeat_along`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub repeated: bool,
    /// Per file holding the variable (following [`VarInfo::files`]), the length of its
    /// last axis, when that axis is a string length that differs between files (a char
    /// array such as `station_name(station, name_strlen)`). Each file's strings are
    /// padded with NUL bytes to the merged length, as xarray pads them when it decodes
    /// char arrays to fixed-width strings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_lens: Option<Vec<u64>>,
}

impl VarInfo {
    /// The type the values of the `file`-th file holding the variable are stored in.
    pub fn file_dtype(&self, file: usize) -> DType {
        self.file_dtypes.as_ref().map_or(self.source_dtype, |t| t[file])
    }

    /// Makes a variable the files hold without the concat dimension `dim` (of `len`
    /// steps) [`VarInfo::repeated`] along it, as its first dimension.
    pub fn repeat_along(&mut self, dim: &str, len: u64) {
        self.dims.insert(0, dim.to_string());
        self.shape.insert(0, len);
        self.concat_axis = Some(0);
        // The source chunking is that of the files' variable, without the new axis.
        self.storage.chunks = None;
        self.repeated = true;
    }

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
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
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
    /// Its path in the input files, when not `path`: the inputs' group read as the
    /// dataset's root (`--group`) comes first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl GroupInfo {
    /// Its path in the input files, `/`-separated, empty for their root.
    pub fn source_path(&self) -> &str {
        self.source.as_deref().unwrap_or(&self.path)
    }

    /// This group and all descendants, depth first.
    pub fn walk(&self) -> Vec<&GroupInfo> {
        let mut out = vec![self];
        for g in &self.groups {
            out.extend(g.walk());
        }
        out
    }

    /// The group at `path` (this group or a descendant), mutably.
    pub fn group_mut(&mut self, path: &str) -> Option<&mut GroupInfo> {
        if self.path == path {
            return Some(self);
        }
        self.groups
            .iter_mut()
            .find(|g| path == g.path || path.starts_with(&format!("{}/", g.path)))?
            .group_mut(path)
    }

    /// Sets string-length dimension `dim` as long as the widest array of the group
    /// whose last dimension it is (arrays along it may keep narrower widths).
    pub fn fit_string_length(&mut self, dim: &str) {
        let widest = self
            .vars
            .iter()
            .filter(|v| v.dims.last().is_some_and(|d| d == dim))
            .filter_map(|v| v.shape.last().copied())
            .max();
        if let (Some(d), Some(widest)) = (self.dims.iter_mut().find(|d| d.name == dim), widest) {
            d.len = widest;
        }
    }

    /// Full path of a variable of this group.
    pub fn var_path(&self, var: &str) -> String {
        if self.path.is_empty() {
            var.to_string()
        } else {
            format!("{}/{}", self.path, var)
        }
    }

    /// The path of variable `var` of this group in the input files (see
    /// [`GroupInfo::source_path`]), which direct reads open.
    pub fn source_var_path(&self, var: &str) -> String {
        match self.source_path() {
            "" => var.to_string(),
            group => format!("{group}/{var}"),
        }
    }
}

/// The merged view of all inputs.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Inventory {
    /// Files in concat order.
    pub files: Vec<SourceFile>,
    /// The concat dimension, if any.
    pub concat_dim: Option<String>,
    /// Why that dimension (or none) was chosen.
    pub concat_reason: String,
    /// The group tree.
    pub root: GroupInfo,
    /// Things the user should know (attributes that differ, enums stored as integers).
    pub notes: Vec<String>,
    /// Attributes that cannot be written, as (location, reason).
    pub unsupported_attrs: Vec<(String, String)>,
    /// How the files differ, and what the conversion does about each difference
    /// (not saved with a split run's inventory: only `scan` reports it).
    #[serde(skip)]
    pub drift: Vec<Drift>,
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

    /// The files that hold `var`, in concat order (see [`VarInfo::files`]).
    pub fn files_of<'a>(&'a self, var: &VarInfo) -> Vec<&'a SourceFile> {
        match &var.files {
            Some(indices) => indices.iter().map(|&i| &self.files[i]).collect(),
            None => self.files.iter().collect(),
        }
    }

    /// When the inputs split their variables between files: for each file, the variables
    /// (full paths, dimension coordinates left out) whose values are read from it.
    pub fn supplied(&self) -> Option<Vec<Vec<String>>> {
        let vars = self.variables();
        if vars.iter().all(|(_, v)| v.files.is_none()) {
            return None;
        }
        let mut out = vec![Vec::new(); self.files.len()];
        for (g, v) in vars {
            if v.dims.len() == 1 && v.dims[0] == v.name {
                continue;
            }
            for i in v.files.clone().unwrap_or_else(|| (0..self.files.len()).collect()) {
                out[i].push(g.var_path(&v.name));
            }
        }
        Some(out)
    }

    /// How many steps the files cover along the concat dimension (0 without one).
    pub fn concat_extent(&self) -> u64 {
        let start = self.files.iter().map(|f| f.concat_start).min().unwrap_or(0);
        let end = self
            .files
            .iter()
            .map(|f| f.concat_start + f.concat_len)
            .max()
            .unwrap_or(0);
        end - start
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
