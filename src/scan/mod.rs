//! Stage 1: read the headers of all inputs, check they form one dataset, merge them.
//!
//! The result, an [`Inventory`], is plain data: the merged group tree with every
//! variable's shape, type, attributes and source storage, the files in concat order,
//! and per-file time re-encoding where the files' time units differ. Nothing is
//! written anywhere until scan has accepted every input.

mod combine;
mod concat;
mod drift;
mod header;
mod instants;
mod outer;
mod workers;

use std::collections::BTreeSet;
use std::path::PathBuf;

use crate::cftime::{Calendar, TimeUnits};
use crate::error::InputError;
use crate::model::{AttrValue, Attrs, DType, attr, bounds_named, names_as_bounds};
use crate::model::{Decoding, DimInfo, Drift, GroupInfo, Inventory, SourceFile, VarInfo};
use crate::nc::{self, AttrData, VarType};
use crate::packing::{self, CODING_ATTRS};

pub use header::coordinate_hash;
use header::{FileHeader, GroupHeader, VarHeader, convert_attrs};
use instants::StaticTimes;
pub use workers::{WORKER_COMMAND, enable_worker_processes, serve_worker};

/// Options for [`scan`].
#[derive(Debug, Clone, Default)]
pub struct ScanOptions {
    /// The dimension to concatenate along; default: inferred (see [`concat`]).
    pub concat_dim: Option<String>,
    /// Refuse variables whose packing or fill values differ between files, instead of
    /// storing them unpacked.
    pub refuse_encoding_drift: bool,
    /// The group of the input files read as the dataset's root (`/`-separated), as
    /// `xarray.open_mfdataset(group=...)` reads one; default: the files' root.
    pub group: Option<String>,
}

// ---------------------------------------------------------------------------
// Merging
// ---------------------------------------------------------------------------

/// Reads every input's header, checks that they form one dataset and merges them.
pub fn scan(paths: &[PathBuf], options: &ScanOptions) -> Result<Inventory, InputError> {
    let survey = survey(paths, options)?;
    let mut inventory = survey.result?;
    inventory.drift = survey.drift;
    Ok(inventory)
}

/// What `scan` reports: how the files differ, and the merged dataset or why there is none.
#[derive(Debug)]
pub struct Survey {
    /// Aspects that differ between files, with what convert does about each.
    pub drift: Vec<Drift>,
    /// The merged dataset, or the reason the files are refused.
    pub result: Result<Inventory, InputError>,
}

/// Reads every input's header and reports how they differ; merges them where they form
/// one dataset. Unreadable files are an error; inconsistent ones are reported.
pub fn survey(paths: &[PathBuf], options: &ScanOptions) -> Result<Survey, InputError> {
    if paths.is_empty() {
        return Err(InputError::NothingMatched {
            arg: "INPUT".into(),
            hint: "no input files given".into(),
        });
    }
    let group = options.group.as_deref().unwrap_or("").trim_matches('/');
    let headers = workers::read_headers(paths, group)?;
    let sets = combine::variable_sets(&headers);
    let mut survey = if sets.len() > 1 {
        combine::survey_sets(&headers, &sets, options)
    } else {
        let (drift, result) = survey_set(&headers, None, options);
        Survey {
            drift,
            result: result.map(|(inventory, _)| inventory),
        }
    };
    if let Ok(inventory) = &mut survey.result {
        give_later_linked_bounds_their_units(inventory, &headers);
    }
    Ok(survey)
}

/// Time bounds that only later files link to their coordinate (the first file, whose
/// attributes the store keeps, has no `time:bounds`, or names another variable) take
/// that coordinate's units and calendar when they have none: xarray decodes them with
/// those in the files that link them, while the store would leave plain numbers.
fn give_later_linked_bounds_their_units(inv: &mut Inventory, headers: &[FileHeader]) {
    fn links(g: &GroupHeader, path: &str, out: &mut BTreeSet<(String, String, String)>) {
        for v in &g.vars {
            for b in bounds_named(&v.attrs()) {
                out.insert((path.to_string(), b.to_string(), v.name.clone()));
            }
        }
        for c in &g.groups {
            links(c, &join_path(path, &c.name), out);
        }
    }
    let mut found = BTreeSet::new();
    for h in headers {
        links(&h.root, "", &mut found);
    }
    let text = |v: &VarInfo, k: &str| attr(&v.attrs, k).and_then(AttrValue::as_text).map(str::to_string);
    // In concat order, the first file that holds the bounds must link them: xarray keeps
    // an unlinked first copy as plain numbers.
    let in_order: Vec<&FileHeader> = inv
        .files
        .iter()
        .filter_map(|f| headers.iter().find(|h| h.path == f.path))
        .collect();
    let first_holder_links = |gpath: &str, bounds: &str, parent: &str| {
        let parts: Vec<String> = gpath.split('/').filter(|p| !p.is_empty()).map(str::to_string).collect();
        in_order
            .iter()
            .filter_map(|h| group_at(&h.root, &parts))
            .find(|g| g.var(bounds).is_some())
            .and_then(|g| g.var(parent))
            .is_some_and(|p| names_as_bounds(&p.attrs(), bounds))
    };
    for (gpath, bounds, parent) in found {
        if !first_holder_links(&gpath, &bounds, &parent) {
            continue;
        }
        let Some(g) = inv.root.group_mut(&gpath) else { continue };
        let Some(p) = g.vars.iter().find(|v| v.name == parent) else {
            continue;
        };
        let timed = text(p, "units").as_deref().and_then(TimeUnits::parse).is_some();
        if !timed || names_as_bounds(&p.attrs, &bounds) {
            continue; // not time, or the store links them itself
        }
        let inherited: Vec<(String, AttrValue)> = ["units", "calendar"]
            .iter()
            .filter_map(|k| attr(&p.attrs, k).map(|a| (k.to_string(), a.clone())))
            .collect();
        let Some(b) = g
            .vars
            .iter_mut()
            .find(|v| v.name == bounds && attr(&v.attrs, "units").is_none())
        else {
            continue;
        };
        for (k, a) in inherited {
            if attr(&b.attrs, &k).is_none() {
                b.attrs.push((k, a));
            }
        }
        inv.notes.push(format!(
            "variable '{}': bounds of '{parent}' only in some files (the first does not link them); they are given \
             the units and calendar of '{parent}', with which xarray decodes them",
            join_path(&gpath, &bounds)
        ));
    }
}

/// What [`survey_set`] finds: the merged dataset with its headers in concat order.
type SetResult = Result<(Inventory, Vec<FileHeader>), InputError>;

/// Surveys files that hold the same variables: chooses the concat dimension (unless
/// `forced`), orders the files along it and merges them.
fn survey_set(
    headers: &[FileHeader],
    forced: Option<concat::ConcatChoice>,
    options: &ScanOptions,
) -> (Vec<Drift>, SetResult) {
    let choice = match forced {
        Some(c) => c,
        None => match concat::choose(headers, options.concat_dim.as_deref()) {
            Ok(c) => c,
            Err(e) => return (drift::analyze(headers, None, options), Err(e)),
        },
    };
    let order = match &choice.dim {
        Some(dim) if headers.len() > 1 => concat::order_files(headers, dim),
        _ => Ok(concat::FileOrder {
            order: (0..headers.len()).collect(),
            note: None,
        }),
    };
    let order = match order {
        Ok(o) => o,
        Err(e) => return (drift::analyze(headers, choice.dim.as_deref(), options), Err(e)),
    };
    let headers: Vec<FileHeader> = order.order.iter().map(|&i| headers[i].clone()).collect();
    let drift = drift::analyze(&headers, choice.dim.as_deref(), options);
    let result = merge(&headers, choice, order.note, options).map(|inventory| (inventory, headers));
    (drift, result)
}

/// Merges headers (in concat order) into one dataset, or says why they are not one.
fn merge(
    headers: &[FileHeader],
    choice: concat::ConcatChoice,
    order_note: Option<String>,
    options: &ScanOptions,
) -> Result<Inventory, InputError> {
    let concat_dim = choice.dim;
    let mut merger = Merger {
        headers,
        concat_dim: concat_dim.as_deref(),
        refuse_encoding_drift: options.refuse_encoding_drift,
        notes: Vec::new(),
        unsupported_attrs: Vec::new(),
        string_lengths: Vec::new(),
    };
    let mut root = merger.merge_group(&[], "")?;
    let (notes, unsupported_attrs) = (merger.notes, merger.unsupported_attrs);
    // A concat dimension no file has is new: one step per file.
    let new_dim = concat_dim
        .as_deref()
        .filter(|d| headers.iter().all(|h| concat::holds_scalar(h, d)));
    let mut notes = notes;
    if let Some(d) = new_dim {
        let len = headers.len() as u64;
        root.dims.insert(
            0,
            DimInfo {
                name: d.to_string(),
                len,
                unlimited: false,
                concat: true,
            },
        );
        // Each file's scalar of that name is its coordinate, and the data variables run
        // along it, as xarray's nested combine (`data_vars="all"`) makes them; other
        // coordinates do where their values differ between files. Coordinates are named
        // by the variables' `coordinates` attributes and by the global one (where xarray
        // puts a coordinate that no data variable's dimensions cover).
        let named_coordinates: Vec<String> = root
            .vars
            .iter()
            .map(|v| &v.attrs)
            .chain([&root.attrs])
            .filter_map(|attrs| attr(attrs, "coordinates").and_then(AttrValue::as_text))
            .flat_map(|c| c.split_whitespace().map(str::to_string).collect::<Vec<_>>())
            .collect();
        for v in root.vars.iter_mut().filter(|v| v.unsupported.is_none()) {
            let dimension_coordinate = v.dims.len() == 1 && v.dims[0] == v.name;
            let data = !dimension_coordinate && !named_coordinates.contains(&v.name);
            if (v.name == d && v.dims.is_empty()) || data {
                let fixes = re_encoded_along_new_dim(headers, v, d)?;
                v.repeat_along(d, len);
                if let Some(instants::Retimed { fixes, units }) = fixes {
                    v.dtype = instants::stored_type(v.dtype, &fixes);
                    v.time_fix = Some(fixes);
                    notes.push(format!(
                        "variable '{}': time units differ between files; values are re-encoded to {units:?} ({})",
                        v.name,
                        v.dtype.cdl_name()
                    ));
                }
            }
        }
        notes.push(format!(
            "'{d}' is a new dimension, one step per file: data variables run along it, and coordinates whose \
             values differ between files"
        ));
    }
    let mut concat_start = 0;
    let files = headers
        .iter()
        .map(|h| {
            let concat_len = match concat_dim.as_deref() {
                Some(_) if new_dim.is_some() => 1,
                d => d
                    .and_then(|d| h.root.dims.iter().find(|x| x.name == d))
                    .map_or(0, |d| d.len),
            };
            let coordinate_digest = match concat_dim.as_deref() {
                Some(d) => h.coordinate_digest(d)?,
                None => None,
            };
            let f = SourceFile {
                path: h.path.clone(),
                size: h.size,
                format: h.format,
                concat_len,
                concat_start,
                coordinate_digest,
                origin: None,
            };
            concat_start += concat_len;
            Ok(f)
        })
        .collect::<Result<_, InputError>>()?;
    let mut inventory = Inventory {
        files,
        concat_dim,
        concat_reason: choice.reason,
        root,
        notes,
        unsupported_attrs,
        drift: Vec::new(),
    };
    if inventory.files.len() > 1 {
        check_static_variables(&mut inventory, headers)?;
    }
    if let Some(c) = order_note {
        inventory.notes.insert(0, c);
    }
    Ok(inventory)
}

/// How root variable `v`, put along a new concat dimension `dim`, is re-encoded: each
/// file's `(scale, offset)` into the first file's time units (and those units), or
/// `None` when all files' units mean the same. Other units that are not time units, or calendars that
/// disagree, are refused, as are packed times in other units.
fn re_encoded_along_new_dim(
    headers: &[FileHeader],
    v: &VarInfo,
    dim: &str,
) -> Result<Option<instants::Retimed>, InputError> {
    let name = &v.name;
    let encodings: Vec<[Option<String>; 2]> = headers.iter().map(|h| instants::encoding_of(&h.root, name)).collect();
    let odd = instants::first_differing(&encodings);
    let refuse = |why: &str| {
        InputError::inconsistent(format!(
            "'{name}' has other units or calendar in {} than in {} ({} against {}); {why}",
            headers[odd].path.display(),
            headers[0].path.display(),
            instants::shown(&encodings[odd]),
            instants::shown(&encodings[0]),
        ))
        .files([&headers[0].path, &headers[odd].path])
        .about(name)
    };
    let other_units = format!(
        "along the new dimension '{dim}' nc2zarr re-encodes only times into one set of units: convert the files in \
         groups of equal units"
    );
    match instants::re_encoding(&encodings).map_err(|why| refuse(&why))? {
        instants::ReEncoding::Alike => Ok(None),
        instants::ReEncoding::NotTimes => Err(refuse(&other_units)),
        instants::ReEncoding::Fixes(_) if v.attrs.iter().any(|(k, _)| CODING_ATTRS.contains(&k.as_str())) => {
            Err(refuse(
                "nc2zarr does not re-encode packed times, or times with a fill value, along a new dimension: convert the \
             files in groups of equal units",
            ))
        }
        instants::ReEncoding::Fixes(fixes) => Ok(Some(instants::Retimed {
            fixes,
            units: encodings[0][0].clone().unwrap_or_default(),
        })),
    }
}

struct Merger<'a> {
    headers: &'a [FileHeader],
    concat_dim: Option<&'a str>,
    refuse_encoding_drift: bool,
    notes: Vec<String>,
    unsupported_attrs: Vec<(String, String)>,
    /// String-length dimensions whose length differs between files (see
    /// [`GroupHeader::is_string_length`]): their id in the first file, and the longest.
    string_lengths: Vec<(std::ffi::c_int, u64)>,
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
                return Err(InputError::inconsistent(format!(
                    "group '/{}' is in {} but not in {}",
                    join_path(&gpath, extra),
                    h.path.display(),
                    self.headers[0].path.display()
                ))
                .files([&self.headers[0].path, &h.path]));
            }
        }
        self.note_unsupported_attrs(&first.attrs, &shown);
        self.note_differing_attrs(path, None, &shown);
        let is_root = path.is_empty();
        self.note_string_lengths(path, first, &shown);
        let dims = first
            .dims
            .iter()
            .map(|d| {
                let concat = is_root && Some(d.name.as_str()) == self.concat_dim;
                let padded = self
                    .string_lengths
                    .iter()
                    .find(|(id, _)| *id == d.id)
                    .map(|&(_, len)| len);
                let len = if concat {
                    self.concat_len()
                } else {
                    padded.unwrap_or(d.len)
                };
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
                return Err(InputError::inconsistent(format!(
                    "variable '{}' is in {} but not in {}",
                    join_path(&gpath, &extra.name),
                    h.path.display(),
                    self.headers[0].path.display()
                ))
                .files([&self.headers[0].path, &h.path])
                .about(&join_path(&gpath, &extra.name)));
            }
        }
        let mut groups = Vec::new();
        for child in &first.groups {
            let mut p = path.to_vec();
            p.push(child.name.clone());
            groups.push(self.merge_group(&p, &child.name)?);
        }
        let source = match (self.headers[0].group.as_str(), gpath.as_str()) {
            ("", _) => None,
            (top, "") => Some(top.to_string()),
            (top, below) => Some(join_path(top, below)),
        };
        Ok(GroupInfo {
            name: name.to_string(),
            path: gpath,
            attrs: convert_attrs(&first.attrs),
            dims,
            vars,
            groups,
            source,
        })
    }

    /// Finds the dimensions of group `first` (the first file's, at `path`) that give
    /// string lengths and differ in length between files; notes how they are padded.
    fn note_string_lengths(&mut self, path: &[String], first: &GroupHeader, shown: &str) {
        for d in &first.dims {
            let lens: Vec<u64> = self
                .headers
                .iter()
                .map(|h| {
                    group_at(&h.root, path)
                        .and_then(|g| g.dim(&d.name))
                        .map_or(d.len, |x| x.len)
                })
                .collect();
            // Equal lengths need no look at the variables using the dimension.
            if lens.iter().all(|&l| l == d.len)
                || !self
                    .headers
                    .iter()
                    .all(|h| group_at(&h.root, path).is_some_and(|g| g.is_string_length(&d.name)))
            {
                continue;
            }
            let longest = lens.iter().copied().max().unwrap_or(d.len);
            self.string_lengths.push((d.id, longest));
            let shortest = lens.iter().copied().min().unwrap_or(d.len);
            let at = if path.is_empty() {
                String::new()
            } else {
                format!(" of group '{shown}'")
            };
            self.notes.push(format!(
                "dimension '{}'{at} gives string lengths from {shortest} to {longest} between files; char arrays \
                 along it are padded with NUL bytes to {longest}, as xarray pads them (one equal in every file \
                 keeps the first file's width, as xarray keeps it)",
                d.name
            ));
        }
    }

    fn concat_len(&self) -> u64 {
        let dim = self.concat_dim.expect("concat dim");
        self.headers
            .iter()
            .map(|h| h.root.dims.iter().find(|d| d.name == dim).map_or(0, |d| d.len))
            .sum()
    }

    fn missing(&self, what: &str, h: &FileHeader) -> InputError {
        InputError::inconsistent(format!(
            "{what} is in {} but not in {}",
            self.headers[0].path.display(),
            h.path.display()
        ))
        .files([&self.headers[0].path, &h.path])
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
                if var.is_some() && (k == "units" || CODING_ATTRS.contains(&k.as_str())) {
                    continue; // handled by the units and packing checks
                }
                let same = attr(&other, k).is_some_and(|o| o.same(v));
                if !same && !differing.contains(k) {
                    differing.push(k.clone());
                }
            }
            for (k, _) in &other {
                if var.is_some() && CODING_ATTRS.contains(&k.as_str()) {
                    continue;
                }
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
        // A char array whose string length differs between files: each file's length.
        let padded = v
            .dims
            .last()
            .filter(|d| self.string_lengths.iter().any(|(id, _)| *id == d.id))
            .map(|d| {
                let held = |h: &FileHeader| {
                    group_at(&h.root, path)
                        .and_then(|g| g.var(&v.name))
                        .and_then(|x| x.dims.last())
                        .map_or(d.len, |x| x.len)
                };
                self.headers.iter().map(held).collect::<Vec<u64>>()
            });
        // Plain numbers of different types along the concat dimension are promoted (as
        // numpy concatenates them); anything else must have one type.
        let plain = |t: &VarType| matches!(t, VarType::Supported { dtype, enum_name: None } if dtype.is_float() || dtype.is_integer());
        let mut file_dtypes = vec![v.numeric_dtype().unwrap_or(DType::U8)];
        let keeps_first_type = path.is_empty()
            && !self.refuse_encoding_drift
            && header::keeps_first_type(self.headers, &v.name, self.concat_dim);
        for h in &self.headers[1..] {
            let other = group_at(&h.root, path)
                .and_then(|g| g.vars.iter().find(|x| x.name == v.name))
                .ok_or_else(|| self.missing(&format!("variable '{full}'"), h))?;
            file_dtypes.push(other.numeric_dtype().unwrap_or(DType::U8));
            let promotable =
                plain(&v.vartype) && plain(&other.vartype) && concat_axis.is_some() && !self.refuse_encoding_drift;
            if other.vartype != v.vartype && !promotable && !keeps_first_type {
                return Err(InputError::inconsistent(format!(
                    "variable '{full}' has type {} in {} but {} in {}",
                    type_name(&v.vartype),
                    self.headers[0].path.display(),
                    type_name(&other.vartype),
                    h.path.display()
                ))
                .files([&self.headers[0].path, &h.path])
                .about(&full));
            }
            let names = |x: &VarHeader| x.dims.iter().map(|d| d.name.clone()).collect::<Vec<_>>();
            if names(other) != names(v) {
                return Err(InputError::inconsistent(format!(
                    "variable '{full}' has dimensions ({}) in {} but ({}) in {}",
                    names(v).join(", "),
                    self.headers[0].path.display(),
                    names(other).join(", "),
                    h.path.display()
                ))
                .files([&self.headers[0].path, &h.path])
                .about(&full));
            }
            for (axis, (a, b)) in v.dims.iter().zip(&other.dims).enumerate() {
                if Some(axis) == concat_axis {
                    shape[axis] += b.len;
                } else if padded.is_some() && axis + 1 == v.dims.len() {
                    shape[axis] = shape[axis].max(b.len);
                } else if a.len != b.len {
                    return Err(InputError::inconsistent(format!(
                        "dimension '{}' of variable '{full}' has length {} in {} but {} in {}",
                        a.name,
                        a.len,
                        self.headers[0].path.display(),
                        b.len,
                        h.path.display()
                    ))
                    .files([&self.headers[0].path, &h.path])
                    .about(&full));
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
        if unsupported.is_none()
            && dtype == DType::String
            && let Some(h) = self.headers.iter().find(|h| {
                h.format == crate::model::Format::Netcdf4
                    && crate::direct::is_fixed_length_string(&h.path, &join_path(&h.group, &full))
            })
        {
            unsupported = Some(format!(
                "variable '{full}' is an HDF5 string dataset of fixed length in {} (as h5py writes them), which the \
                 netCDF-C release nc2zarr reads with (4.9.0) misreads; skip it with --skip-unsupported, or rewrite it \
                 as variable-length strings",
                h.path.display()
            ));
        }
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
        // xarray's netCDF4 backend moves it to the variable's encoding: not an attribute.
        if let Some(i) = attrs.iter().position(|(k, _)| k == "least_significant_digit") {
            let (_, digits) = attrs.remove(i);
            self.notes.push(format!(
                "variable '{full}': least_significant_digit = {} is not stored as an attribute, as xarray reads it \
                 into the variable's encoding",
                digits.display()
            ));
        }
        let time_fix = match concat_axis {
            Some(_) if self.headers.len() > 1 => self.time_fix(path, v, &full, &mut attrs)?,
            _ => None,
        };
        let types_differ = file_dtypes.iter().any(|&t| t != file_dtypes[0]);
        if types_differ && keeps_first_type && v.is_grid_mapping() {
            self.notes.push(format!(
                "grid mapping '{full}': its type differs between files ({}); CF does not use its value, and the \
                 first file's variable is kept",
                self.type_groups(&self.file_type_names(path, v)),
            ));
        } else if types_differ && keeps_first_type {
            self.notes.push(format!(
                "coordinate '{full}': its type differs between files ({}); its values are equal, and the first \
                 file's type ({}) is kept, as xarray keeps it",
                self.type_groups(&cdl_names(&file_dtypes)),
                dtype.cdl_name()
            ));
        }
        let types_differ = types_differ && !keeps_first_type;
        let file_dtypes = types_differ.then_some(file_dtypes);
        let unpack = self.unpack(
            path,
            v,
            &full,
            file_dtypes.as_deref().unwrap_or(&[dtype]),
            concat_axis.is_some(),
            time_fix.is_some(),
            &mut attrs,
        )?;
        self.refuse_unsigned(path, &v.name, &full, file_dtypes.is_some() || unpack.is_some())?;
        let promoted = file_dtypes.as_deref().map_or(dtype, packing::common_type);
        if let (Some(types), None) = (&file_dtypes, &unpack) {
            self.notes.push(format!(
                "variable '{full}': its type differs between files ({}); it is stored as {}",
                self.type_groups(&cdl_names(types)),
                promoted.cdl_name()
            ));
        }
        // The units re-encoded times are stored in (bounds may take their variable's).
        let target_units = self.units_in(&self.headers[0], path, &v.name).0.unwrap_or_default();
        let out_dtype = match &time_fix {
            _ if unpack.is_some() => {
                packing::common_type(&unpack.iter().flatten().map(|d| d.dtype).collect::<Vec<_>>())
            }
            Some(fix) if promoted == DType::F32 && fix.iter().any(|&f| f != (1.0, 0.0)) => {
                self.notes.push(format!(
                    "variable '{full}': float32 time values re-encoded to '{}' are stored as float64, which holds them \
                     without rounding",
                    target_units
                ));
                DType::F64
            }
            Some(fix)
                if promoted.is_integer()
                    && fix.iter().all(|&(s, o)| s.fract() == 0.0 && o.fract() == 0.0)
                    && fix.iter().any(|&f| f != (1.0, 0.0))
                    && self.re_encoded_type(path, v, promoted, fix) != promoted =>
            {
                // Shifted to another epoch or scaled to a finer unit, integers may not
                // hold the values (int16 days since 2000 as days since 1900, int32 hours
                // since 2060 as seconds since 1990).
                let wide = self.re_encoded_type(path, v, promoted, fix);
                self.notes.push(format!(
                    "variable '{full}': {} time values re-encoded to '{}' are stored as {} so that they fit",
                    promoted.cdl_name(),
                    target_units,
                    wide.cdl_name()
                ));
                wide
            }
            Some(fix) if promoted.is_integer() && self.whole_when_re_encoded(path, v, fix) => {
                // Whole numbers after all (seconds since 1970 as hours since 1900, on
                // the hour): an integer type that holds them.
                let wide = self.re_encoded_type(path, v, promoted, fix);
                if wide != promoted {
                    self.notes.push(format!(
                        "variable '{full}': {} time values re-encoded to '{}' are whole numbers, stored as {}",
                        promoted.cdl_name(),
                        target_units,
                        wide.cdl_name()
                    ));
                }
                wide
            }
            Some(fix) if promoted.is_integer() && fix.iter().any(|&(s, o)| s.fract() != 0.0 || o.fract() != 0.0) => {
                self.notes.push(format!(
                    "variable '{full}': time values re-encoded to '{}' are not whole numbers, so they are stored as float64",
                    target_units
                ));
                DType::F64
            }
            _ => promoted,
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
            unpack,
            file_dtypes,
            files: None,
            gap_fill: None,
            repeated: false,
            string_lens: padded,
        })
    }

    /// Refuses variable `name` when `_Unsigned` changes what its bytes mean (`"true"` on a
    /// signed type, `"false"` on an unsigned one) in some file, and either not in every
    /// file alike or `transformed` (unpacked or promoted because packing, fill value or
    /// type differ between files): nc2zarr's decoding does not apply that attribute, and
    /// copies the first file's, so the values would come out wrong.
    fn refuse_unsigned(&self, path: &[String], name: &str, full: &str, transformed: bool) -> Result<(), InputError> {
        let marks: Vec<bool> = self
            .headers
            .iter()
            .map(|h| {
                let Some(x) = group_at(&h.root, path).and_then(|g| g.var(name)) else {
                    return false;
                };
                let flag = x
                    .attrs()
                    .iter()
                    .find(|(k, _)| k == "_Unsigned")
                    .and_then(|(_, a)| a.as_text().map(|t| t.trim().to_ascii_lowercase()));
                match (x.numeric_dtype(), flag.as_deref()) {
                    (Some(t), Some("true")) => t.is_integer() && t.is_signed(),
                    (Some(t), Some("false")) => t.is_integer() && !t.is_signed(),
                    _ => false,
                }
            })
            .collect();
        let Some(i) = marks.iter().position(|&m| m) else {
            return Ok(());
        };
        if !transformed && marks.iter().all(|&m| m) {
            return Ok(());
        }
        let why = if transformed {
            "its type, packing or fill value differs between files"
        } else {
            "not in every file"
        };
        Err(InputError::Unsupported(format!(
            "variable '{full}' is marked _Unsigned in {} and {why}; nc2zarr cannot yet unpack, promote or mix \
             unsigned-marked values: convert the files that agree into separate stores",
            self.headers[i].path.display()
        )))
    }

    /// `float in a.nc, double in b.nc (and 3 more)`: the types of a variable per file.
    /// The integer type that holds the whole-number times of `v` (stored as `raw`)
    /// re-encoded with each file's `fixes`: `raw` when they fit, else int32 or int64.
    /// Shifted small integers take int32 at least, unsigned int32 int64. A root
    /// coordinate's values are read with the headers; others may span their type.
    fn re_encoded_type(&self, path: &[String], v: &VarHeader, raw: DType, fixes: &[(f64, f64)]) -> DType {
        let shifted = fixes.iter().any(|&(_, o)| o != 0.0);
        let floor = match raw {
            DType::I8 | DType::U8 | DType::I16 | DType::U16 if shifted => DType::I32,
            DType::U32 if shifted => DType::I64,
            other => other,
        };
        let values: Vec<Option<&[f64]>> = self
            .headers
            .iter()
            .map(|h| if path.is_empty() { h.coord(&v.name) } else { None })
            .collect();
        instants::fitting_integer(floor, raw, fixes, &values)
    }

    /// True when every value of root coordinate `v`, re-encoded with each file's `fixes`
    /// that are not all whole, is a whole number (values read with the headers).
    fn whole_when_re_encoded(&self, path: &[String], v: &VarHeader, fixes: &[(f64, f64)]) -> bool {
        let fractional = fixes.iter().any(|&(s, o)| s.fract() != 0.0 || o.fract() != 0.0);
        fractional
            && path.is_empty()
            && self.headers.iter().zip(fixes).all(|(h, &(scale, offset))| {
                h.coord(&v.name)
                    .is_some_and(|values| values.iter().all(|&x| packing::re_encode(x, (scale, offset)).1))
            })
    }

    /// The type of variable `v` (of group `path`) in each file, as CDL names.
    fn file_type_names(&self, path: &[String], v: &VarHeader) -> Vec<String> {
        self.headers
            .iter()
            .map(|h| {
                group_at(&h.root, path)
                    .and_then(|g| g.var(&v.name))
                    .map_or_else(String::new, |x| type_name(&x.vartype))
            })
            .collect()
    }

    /// `types` (one per file) as "TYPE in FILE (and N more)", for each type.
    fn type_groups(&self, types: &[String]) -> String {
        let mut seen: Vec<(&str, usize, &std::path::Path)> = Vec::new();
        for (t, h) in types.iter().zip(self.headers) {
            match seen.iter_mut().find(|(x, _, _)| x == t) {
                Some(e) => e.1 += 1,
                None => seen.push((t, 1, &h.path)),
            }
        }
        seen.iter()
            .map(|(t, n, p)| {
                let more = if *n > 1 {
                    format!(" (and {} more)", n - 1)
                } else {
                    String::new()
                };
                format!("{t} in {}{more}", p.display())
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The per-file decodings of `v` when its packing or fill values differ between
    /// files (then `attrs` become those of the unpacked floats), else `None`.
    #[allow(clippy::too_many_arguments)]
    fn unpack(
        &mut self,
        path: &[String],
        v: &VarHeader,
        full: &str,
        raw_types: &[DType],
        along_concat: bool,
        time_reencoded: bool,
        attrs: &mut Attrs,
    ) -> Result<Option<Vec<Decoding>>, InputError> {
        let raw = raw_types[0];
        let raw_of = |i: usize| raw_types.get(i).copied().unwrap_or(raw);
        let per_file: Vec<Attrs> = self
            .headers
            .iter()
            .map(|h| {
                group_at(&h.root, path)
                    .and_then(|g| g.var(&v.name))
                    .map(|x| x.attrs())
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(k, _)| CODING_ATTRS.contains(&k.as_str()))
                    .collect()
            })
            .collect();
        let same =
            |a: &Attrs, b: &Attrs| a.len() == b.len() && a.iter().all(|(k, x)| attr(b, k).is_some_and(|y| y.same(x)));
        let Some(other) = per_file.iter().position(|a| !same(a, &per_file[0])) else {
            return Ok(None);
        };
        let between = format!(
            "{} ({}) and {} ({})",
            self.headers[0].path.display(),
            packing::describe(&per_file[0]),
            self.headers[other].path.display(),
            packing::describe(&per_file[other])
        );
        if !raw.is_float() && !raw.is_integer() {
            self.notes.push(format!(
                "variable '{full}': fill values differ between files ({between}); the first file's are kept"
            ));
            return Ok(None);
        }
        if self.refuse_encoding_drift {
            return Err(InputError::inconsistent(format!(
                "variable '{full}' is packed differently in {between}; its raw values cannot share one set of \
                 attributes. Without --on-encoding-drift refuse it is stored unpacked (as floats)"
            ))
            .files([&self.headers[0].path, &self.headers[other].path])
            .about(full));
        }
        if !along_concat {
            return Err(InputError::inconsistent(format!(
                "variable '{full}' does not depend on the concat dimension but is packed differently in {between}; \
                 the files do not hold one dataset"
            ))
            .files([&self.headers[0].path, &self.headers[other].path])
            .about(full));
        }
        if time_reencoded {
            return Err(InputError::Unsupported(format!(
                "variable '{full}': both its time units and its packing differ between files ({between}); \
                 unpack the files first"
            )));
        }
        let decodings: Vec<Decoding> = per_file
            .iter()
            .enumerate()
            .map(|(i, a)| Decoding::of(raw_of(i), a))
            .collect();
        let out = packing::common_type(&decodings.iter().map(|d| d.dtype).collect::<Vec<_>>());
        let kinds = per_file
            .iter()
            .enumerate()
            .filter(|(i, a)| per_file[..*i].iter().all(|b| !same(a, b)))
            .count();
        attrs.retain(|(k, _)| !CODING_ATTRS.contains(&k.as_str()));
        attrs.push((
            "_FillValue".into(),
            AttrValue::Numbers(out, vec![crate::model::Scalar::F(f64::NAN)]),
        ));
        self.notes.push(format!(
            "variable '{full}': packing differs between files ({kinds} encodings, e.g. {between}); \
             it is stored unpacked as {}, each file decoded with its own attributes as xarray decodes them",
            out.cdl_name()
        ));
        Ok(Some(decodings))
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
        let parent = g.vars.iter().find(|p| names_as_bounds(&p.attrs(), v));
        let parent_calendar = || parent.and_then(|p| text(&p.attrs, "calendar"));
        match text(&var.attrs, "units") {
            // Bounds without a calendar of their own take their variable's (CF, xarray).
            Some(u) => (Some(u), text(&var.attrs, "calendar").or_else(parent_calendar)),
            None => (parent.and_then(|p| text(&p.attrs, "units")), parent_calendar()),
        }
    }

    /// Refuses times whose calendars differ between files (`standard`, `gregorian` and
    /// none are one): the same numbers would be other dates, and xarray refuses to
    /// combine them too.
    fn same_calendar_in_every_file(
        &self,
        per_file: &[(Option<String>, Option<String>)],
        full: &str,
    ) -> Result<(), InputError> {
        let first = Calendar::parse(per_file[0].1.as_deref());
        for (i, (units, cal)) in per_file.iter().enumerate().skip(1) {
            if cal == &per_file[0].1 {
                continue;
            }
            let this = Calendar::parse(cal.as_deref());
            let since = units.as_deref().and_then(TimeUnits::parse);
            let agree = match (first.clone(), this, since) {
                (Ok(a), Ok(b), Some(u)) => a.agrees_with(b, &u),
                _ => false,
            };
            if !agree {
                return Err(InputError::inconsistent(format!(
                    "variable '{full}' uses calendar {:?} in {} but {:?} in {}: the same numbers are other dates; \
                     set one calendar in every file (e.g. with `ncatted -a calendar,{},o,c,NAME`)",
                    per_file[0].1.as_deref().unwrap_or("standard (none given)"),
                    self.headers[0].path.display(),
                    cal.as_deref().unwrap_or("standard (none given)"),
                    self.headers[i].path.display(),
                    full.rsplit('/').next().unwrap_or(full),
                ))
                .files([&self.headers[0].path, &self.headers[i].path])
                .about(full));
            }
        }
        Ok(())
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
            if first_units.as_deref().and_then(TimeUnits::parse).is_some() {
                self.same_calendar_in_every_file(&per_file, full)?;
            }
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
            return Err(InputError::inconsistent(differ(i))
                .files([&self.headers[0].path, &self.headers[i].path])
                .about(full));
        };
        let calendar = Calendar::parse(first_cal.as_deref())
            .map_err(|e| InputError::Unsupported(format!("variable '{full}': {e}")))?;
        let mut fixes = Vec::new();
        for (i, (u, cal)) in per_file.iter().enumerate() {
            let this_cal = Calendar::parse(cal.as_deref())
                .map_err(|e| InputError::Unsupported(format!("variable '{full}': {e}")))?;
            let this_units = u.as_deref().and_then(TimeUnits::parse);
            let agree = this_units
                .is_some_and(|t| this_cal.agrees_with(calendar, &t) && this_cal.agrees_with(calendar, &target));
            if !agree {
                return Err(InputError::inconsistent(format!(
                    "variable '{full}' uses calendar {calendar} in {} but {this_cal} in {}",
                    self.headers[0].path.display(),
                    self.headers[i].path.display()
                ))
                .files([&self.headers[0].path, &self.headers[i].path])
                .about(full));
            }
            let units = u.as_deref().and_then(TimeUnits::parse).ok_or_else(|| {
                InputError::inconsistent(differ(i))
                    .files([&self.headers[0].path, &self.headers[i].path])
                    .about(full)
            })?;
            let fix = units.transform_to(&target, calendar).map_err(|e| {
                InputError::Unsupported(format!("{}: variable '{full}': {e}", self.headers[i].path.display()))
            })?;
            // A packed time stays packed: the raw values are re-encoded so that they
            // decode, with the attributes every file shares, to the re-encoded times.
            fixes.push(packing::on_packed(fix, attrs));
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

/// The CDL names of `types`.
fn cdl_names(types: &[DType]) -> Vec<String> {
    types.iter().map(|t| t.cdl_name().to_string()).collect()
}

/// Checks that variables without the concat dimension hold the same values in every
/// file. One whose values differ is stored along the concat dimension, each file's
/// values repeated over its steps, as `xarray.open_mfdataset` concatenates it, with a
/// note; a dimension coordinate that differs (another grid) is refused. Small variables
/// compare by the hashes taken with the headers, root coordinates by the values read
/// with them; other variables are read again and hashed.
fn check_static_variables(inv: &mut Inventory, headers: &[FileHeader]) -> Result<(), InputError> {
    // Group, name, two files whose values differ, re-encoding of each file's times.
    type Differing = (String, String, String, String, Option<instants::Retimed>);
    let mut differing: Vec<Differing> = Vec::new();
    let mut inv_notes: Vec<String> = Vec::new();
    let mut narrowed: Vec<(String, String, u64)> = Vec::new();
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<u64>>();
    let path_parts = |g: &GroupInfo| -> Vec<String> {
        g.path
            .split('/')
            .filter(|p| !p.is_empty())
            .map(str::to_string)
            .collect()
    };
    for (g, v) in inv.variables() {
        if v.concat_axis.is_some() || v.unsupported.is_some() {
            continue;
        }
        let full = g.var_path(&v.name);
        let parts = path_parts(g);
        let header_hash = |h: &FileHeader| {
            group_at(&h.root, &parts)
                .and_then(|x| x.var(&v.name))
                .and_then(|x| x.hash.clone())
        };
        // Every file that holds the variable (all of them, unless the inputs split
        // their variables between files).
        let holding: Vec<usize> = (0..headers.len())
            .filter(|&i| group_at(&headers[i].root, &parts).is_some_and(|x| x.var(&v.name).is_some()))
            .collect();
        let hashed = holding.iter().all(|&i| header_hash(&headers[i]).is_some());
        let from_coords = g.path.is_empty() && holding.iter().all(|&i| headers[i].coord(&v.name).is_some());
        let key = |i: usize, f: &SourceFile| -> Result<String, InputError> {
            Ok(if hashed {
                header_hash(&headers[i]).unwrap_or_default()
            } else if from_coords {
                format!("{:?}", bits(headers[i].coord(&v.name).unwrap_or_default()))
            } else {
                // The file's own shape: a string length may be shorter than merged.
                let shape: Vec<u64> = group_at(&headers[i].root, &parts)
                    .and_then(|x| x.var(&v.name))
                    .map_or_else(|| v.shape.clone(), |x| x.dims.iter().map(|d| d.len).collect());
                header::hash_values(&f.path, g.source_path(), &v.name, v.source_dtype, &shape)?
            })
        };
        let Some((&first_index, rest)) = holding.split_first() else {
            continue;
        };
        // Times in other units per file compare as instants.
        let times = instants::compare(headers, &parts, v, &full, &holding)?;
        let other_units = matches!(times, StaticTimes::OtherUnits);
        let retimed = match times {
            StaticTimes::SameUnits | StaticTimes::OtherUnits => None,
            StaticTimes::SameInstants => {
                inv_notes.push(format!(
                    "variable '{full}': its units differ between files but its values are the same instants; the \
                     first file's are kept"
                ));
                continue;
            }
            StaticTimes::Differ(retimed) => Some(retimed),
        };
        // A grid mapping whose type differs: CF does not use its value; the first is kept.
        let vartype_of = |i: usize| {
            group_at(&headers[i].root, &parts)
                .and_then(|x| x.var(&v.name))
                .map(|x| &x.vartype)
        };
        let grid_mapping = g.path.is_empty() && header::keeps_first_type(headers, &v.name, None);
        if grid_mapping && v.dims.is_empty() && rest.iter().any(|&i| vartype_of(i) != vartype_of(first_index)) {
            continue;
        }
        let first_file = &inv.files[first_index];
        let first = key(first_index, first_file)?;
        let mut same = true;
        for &i in rest {
            let f = &inv.files[i];
            if retimed.is_none() && key(i, f)? == first {
                continue;
            }
            same = false;
            let refuse = |why: &str| {
                InputError::inconsistent(format!(
                    "variable '{full}' does not depend on the concat dimension but its values differ between {} and {}; \
                     {why}",
                    first_file.shown(),
                    f.shown()
                ))
                .files([&first_file.path, &f.path])
                .about(&full)
            };
            let coordinate = v.dims.len() == 1 && v.dims[0] == v.name;
            let shadowed = inv
                .concat_dim
                .as_deref()
                .is_some_and(|d| !g.path.is_empty() && g.dims.iter().any(|x| x.name == d));
            if coordinate || inv.concat_dim.is_none() || shadowed {
                let type_of = |i: usize| {
                    group_at(&headers[i].root, &parts)
                        .and_then(|x| x.var(&v.name))
                        .map(|x| type_name(&x.vartype))
                };
                let types = match (type_of(first_index), type_of(i)) {
                    (Some(a), Some(b)) if a != b => {
                        format!(" ({a} in one, {b} in the other: the {a} values are not the {b} ones)")
                    }
                    _ => String::new(),
                };
                return Err(refuse(&format!(
                    "the files do not share one grid{types} (or pass --concat-dim to concatenate along another \
                     dimension)"
                )));
            }
            // Held by only some files (the inputs split their variables): the sets disagree.
            if v.files.is_some() {
                return Err(refuse("the sets of files that hold it do not agree on it"));
            }
            if other_units {
                return Err(refuse(
                    "and so do its units, so its values cannot be stored side by side",
                ));
            }
            differing.push((
                g.path.clone(),
                v.name.clone(),
                first_file.shown(),
                f.shown(),
                retimed.clone(),
            ));
            break;
        }
        if same && let Some(lens) = &v.string_lens {
            // Equal strings: read from the first file, at its length, as xarray keeps
            // the first file's variable (and its width).
            narrowed.push((g.path.clone(), v.name.clone(), lens[0]));
        }
    }
    for (group, name, len) in narrowed {
        let g = inv.root.group_mut(&group).expect("a group of the inventory");
        let v = g
            .vars
            .iter_mut()
            .find(|v| v.name == name)
            .expect("a variable of the group");
        *v.shape.last_mut().expect("a char array has a string length") = len;
        v.string_lens = None;
        // The dimension is as long as the widest array of the group still using it.
        let dim = v.dims.last().cloned().unwrap_or_default();
        g.fit_string_length(&dim);
    }
    inv.notes.extend(inv_notes);
    let Some(dim) = inv.concat_dim.clone() else {
        return Ok(());
    };
    let len = inv.concat_extent();
    for (group, name, a, b, retimed) in differing {
        let g = inv.root.group_mut(&group).expect("a group of the inventory");
        let v = g
            .vars
            .iter_mut()
            .find(|v| v.name == name)
            .expect("a variable of the group");
        v.repeat_along(&dim, len);
        let full = join_path(&group, &name);
        if let Some(instants::Retimed { fixes, units }) = retimed {
            v.dtype = instants::stored_type(v.dtype, &fixes);
            v.time_fix = Some(fixes);
            inv.notes.push(format!(
                "variable '{full}': time units differ between files; values are re-encoded to {units:?} ({})",
                v.dtype.cdl_name()
            ));
        }
        inv.notes.push(format!(
            "variable '{full}' does not depend on '{dim}' but its values differ between files (e.g. {a} and {b}): \
             it is stored along '{dim}', each file's values repeated over its steps, as xarray.open_mfdataset \
             concatenates it"
        ));
    }
    Ok(())
}
