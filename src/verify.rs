//! Stage 4: verify. Re-read a target and prove it complete (and, with sources, equal).
//!
//! Every object the metadata implies is checked: present objects must match the
//! manifest's blake3 and decode; absent ones are fine only where the array has a fill
//! value and the manifest recorded them as empty. With `--source`, decoded values are
//! compared with the NetCDF inputs bit for bit (NaN equal to NaN).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use rayon::prelude::*;

use crate::error::Result;
use crate::existing::{FoundArray, invalid, read_arrays};
use crate::json::Json;
use crate::manifest::{self, Manifest};
use crate::meta;
use crate::model::Decoding;
use crate::model::ZarrFormat;
use crate::model::{DType, Scalar};
use crate::model::{GroupInfo, Inventory, VarInfo};
use crate::packing;
use crate::plan;
use crate::read::Reader;
use crate::slab::{At, Block, copy_box, grid_indices, volume};
use crate::store::{StoreOptions, Target};

/// Problems found are capped in the report (the count is exact).
const MAX_LISTED: usize = 50;

/// What `verify` found.
#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    /// Target as shown.
    pub target: String,
    /// Zarr format found.
    pub zarr_format: u64,
    /// Arrays checked.
    pub arrays: usize,
    /// Objects read, hashed and decoded.
    pub objects_checked: u64,
    /// Absent objects accepted as fill-only.
    pub empty_objects: u64,
    /// Whether values were compared with sources.
    pub compared_with_source: bool,
    /// Problems (first [`MAX_LISTED`]).
    pub problems: Vec<String>,
    /// Total number of problems.
    pub problem_count: usize,
    /// The snapshot checked, for an Icechunk target (the tip of `main`).
    pub snapshot: Option<String>,
    /// Things the user should know that are not problems.
    pub notes: Vec<String>,
    /// Wall time.
    pub seconds: f64,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn ok(&self) -> bool {
        self.problem_count == 0
    }

    fn problem(&mut self, p: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_LISTED {
            self.problems.push(p);
        }
    }

    /// The `--json` form.
    pub fn to_json(&self) -> Json {
        crate::json_obj! {
            "status" => if self.ok() { "ok" } else { "failed" },
            "target" => self.target.as_str(),
            "zarr_format" => self.zarr_format,
            "arrays" => self.arrays,
            "objects_checked" => self.objects_checked,
            "empty_objects" => self.empty_objects,
            "compared_with_source" => self.compared_with_source,
            "problem_count" => self.problem_count,
            "problems" => self.problems.clone(),
            "snapshot" => self.snapshot.clone().map_or(Json::Null, Json::from),
            "notes" => self.notes.clone(),
            "seconds" => self.seconds,
        }
    }

    /// Human-readable lines.
    pub fn to_text(&self) -> String {
        let mut s = format!(
            "{}: {} array(s), {} object(s) checked, {} empty{}\n",
            self.target,
            self.arrays,
            self.objects_checked,
            self.empty_objects,
            match (self.compared_with_source, self.ok()) {
                (true, true) => ", values equal to the source",
                (true, false) => ", values compared with the source",
                (false, _) => "",
            }
        );
        if let Some(id) = &self.snapshot {
            s.push_str(&format!("  snapshot {id} (tip of main)\n"));
        }
        for n in &self.notes {
            s.push_str(&format!("  note: {n}\n"));
        }
        if self.ok() {
            s.push_str("verify: OK\n");
        } else {
            for p in &self.problems {
                s.push_str(&format!("  problem: {p}\n"));
            }
            if self.problem_count > self.problems.len() {
                s.push_str(&format!(
                    "  ... and {} more\n",
                    self.problem_count - self.problems.len()
                ));
            }
            s.push_str(&format!("verify: FAILED ({} problem(s))\n", self.problem_count));
        }
        s
    }
}

/// Verifies `target`; with `source`, also compares values with the inputs.
pub fn verify(target: &str, store_options: &StoreOptions, source: Option<&Inventory>) -> Result<VerifyReport> {
    let started = Instant::now();
    let store = Target::open_existing(target, store_options)?;
    let mut report = VerifyReport {
        target: store.display().to_string(),
        ..Default::default()
    };
    report.snapshot = store.snapshot()?;
    let marker = crate::existing::read_json(&store, manifest::IN_PROGRESS_KEY)?;
    // On an Icechunk target, a run that did not commit changed nothing readers see.
    let uncommitted = match &marker {
        Some(m) if store.is_transactional() => !store.committed_by(&crate::records::run_of_marker(m))?,
        _ => false,
    };
    let interrupted = marker.is_some() && !uncommitted;
    if uncommitted {
        report.notes.push(
            "a write was interrupted before its commit (or is running): the repository does not hold any of it; \
             the last snapshot is what was checked. Re-run the command to finish it"
                .into(),
        );
    }
    if interrupted {
        report.problem(
            "a write is in progress or was interrupted (.nc2zarr/in-progress.json exists); re-run the conversion to finish it"
                .into(),
        );
    }
    let (format, arrays) = match read_arrays(&store) {
        Ok(found) => found,
        // An unfinished conversion has no root metadata yet: that is the problem to report.
        Err(_) if uncommitted => {
            report.problem("nothing is committed yet: the conversion was interrupted; re-run it to finish it".into());
            report.seconds = started.elapsed().as_secs_f64();
            return Ok(report);
        }
        Err(_) if interrupted => {
            report.seconds = started.elapsed().as_secs_f64();
            return Ok(report);
        }
        Err(e) => return Err(e),
    };
    report.zarr_format = format.number();
    report.arrays = arrays.len();
    let manifest = match store.get(manifest::MANIFEST_KEY)? {
        Some(b) => Some(Manifest::from_bytes(&b).map_err(|e| invalid(target, format!("manifest is damaged: {e}")))?),
        None => {
            report.problem("no nc2zarr manifest (.nc2zarr/manifest.json): hashes cannot be checked".into());
            None
        }
    };
    let present: HashMap<String, u64> = store.list("")?.into_iter().map(|l| (l.key, l.size)).collect();
    let sources = source.map(|inv| {
        inv.variables()
            .into_iter()
            .map(|(g, v)| (g.var_path(&v.name), (g, v)))
            .collect::<HashMap<String, (&GroupInfo, &VarInfo)>>()
    });
    report.compared_with_source = source.is_some();
    if let Some(m) = &manifest {
        for path in m.arrays.keys() {
            if !arrays.iter().any(|a| &a.path == path) {
                report.problem(format!("array '{path}' is in the manifest but not in the metadata"));
            }
        }
    }
    let mut reader = Reader::through_netcdf_c();
    for a in &arrays {
        let entry = manifest.as_ref().and_then(|m| m.arrays.get(&a.path));
        if manifest.is_some() && entry.is_none() {
            report.problem(format!("array '{}' is not in the manifest", a.path));
        }
        let src = match (&sources, source) {
            (Some(map), Some(inv)) => match map.get(&a.path) {
                Some(&(g, v)) => Some((inv, g, v)),
                None => {
                    report.problem(format!("array '{}' has no variable in the source", a.path));
                    None
                }
            },
            _ => None,
        };
        check_array(&store, format, a, entry, &present, src, &mut reader, &mut report)?;
    }
    if let Some(map) = &sources {
        for path in map.keys() {
            let (_, v) = map[path];
            if v.unsupported.is_none() && !arrays.iter().any(|a| &a.path == path) {
                report.problem(format!("source variable '{path}' is missing from the target"));
            }
        }
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Compares the stored values of array `a` with `source` (bit for bit, NaN equal to
/// NaN); returns the problems found (none when equal).
pub fn compare_with_source(
    store: &Target,
    format: ZarrFormat,
    a: &FoundArray,
    source: (&Inventory, &GroupInfo, &VarInfo),
) -> Result<Vec<String>> {
    let present: HashMap<String, u64> = store.list(&a.path)?.into_iter().map(|l| (l.key, l.size)).collect();
    let mut report = VerifyReport::default();
    check_array(
        store,
        format,
        a,
        None,
        &present,
        Some(source),
        &mut Reader::through_netcdf_c(),
        &mut report,
    )?;
    Ok(report.problems)
}

/// Checks one array's objects, and its values against the source when given.
#[allow(clippy::too_many_arguments)]
fn check_array(
    store: &Target,
    format: ZarrFormat,
    a: &FoundArray,
    entry: Option<&manifest::ArrayEntry>,
    present: &HashMap<String, u64>,
    source: Option<(&Inventory, &GroupInfo, &VarInfo)>,
    reader: &mut Reader,
    report: &mut VerifyReport,
) -> Result<()> {
    if let Some((_, _, v)) = source
        && v.shape != a.shape
    {
        report.problem(format!(
            "array '{}' has shape {:?} but the source has {:?}",
            a.path, a.shape, v.shape
        ));
        return Ok(());
    }
    let decoded = source.and_then(|(_, _, v)| decoded_comparison(format, a, v));
    if let (None, Some((_, _, v))) = (&decoded, source)
        && v.dtype != a.dtype
    {
        report.problem(format!(
            "array '{}' has type {} but the source has {}",
            a.path,
            a.dtype.cdl_name(),
            v.dtype.cdl_name()
        ));
        return Ok(());
    }
    // Without sources, walk the object grid in blocks of a bounded size anyway, so the
    // same code checks both ways.
    let blocks = plan::read_blocks(&a.shape, &a.object_shape, a.dtype.planning_size(), 256 << 20);
    let problems = Mutex::new(Vec::new());
    let (checked, empty) = (
        std::sync::atomic::AtomicU64::new(0),
        std::sync::atomic::AtomicU64::new(0),
    );
    for block in blocks {
        let expected = match source {
            Some((inv, g, v)) => Some(reader.read(inv, g, v, &block.start, &block.count)?),
            None => None,
        };
        let first: Vec<u64> = block.start.iter().zip(&a.object_shape).map(|(s, o)| s / o).collect();
        let counts: Vec<u64> = block
            .count
            .iter()
            .zip(&a.object_shape)
            .map(|(c, o)| c.div_ceil(*o))
            .collect();
        grid_indices(&counts).into_par_iter().for_each(|rel| {
            let idx: Vec<u64> = rel.iter().zip(&first).map(|(r, f)| r + f).collect();
            let key = meta::chunk_key(format, &a.path, &idx);
            let outcome = check_object(
                store,
                a,
                entry,
                present,
                &key,
                &idx,
                &block,
                expected.as_ref().map(|e| (e, decoded.as_ref())),
            );
            match outcome {
                Ok(ObjectCheck::Checked) => {
                    checked.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Ok(ObjectCheck::Empty) => {
                    empty.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Err(p) => problems.lock().expect("lock").push(p),
            }
        });
    }
    report.objects_checked += checked.into_inner();
    report.empty_objects += empty.into_inner();
    let mut problems = problems.into_inner().expect("lock");
    if let Some((inv, g, v)) = source
        && v.time_fix.is_some()
    {
        problems.extend(check_times(store, format, a, inv, g, v)?);
    }
    problems.sort();
    for p in problems {
        report.problem(p);
    }
    Ok(())
}

enum ObjectCheck {
    Checked,
    Empty,
}

/// Where object `idx` of `a` starts, and how much of it lies inside the array (edge
/// objects are cut off by the shape).
fn object_box(a: &FoundArray, idx: &[u64]) -> (Vec<u64>, Vec<u64>) {
    let origin: Vec<u64> = idx.iter().zip(&a.object_shape).map(|(i, o)| i * o).collect();
    let valid = origin
        .iter()
        .zip(&a.object_shape)
        .zip(&a.shape)
        .map(|((o, s), n)| (*s).min(n - o))
        .collect();
    (origin, valid)
}

/// Elements of a re-encoded time variable that [`check_times`] reads whole at most.
const TIME_CHECK_ELEMENTS: u64 = 16 << 20;

/// Checks a time variable whose values were re-encoded between units (files with other
/// units, or an append into the store's) as instants, independently of the conversion:
/// each source file's values are decoded with that file's own units, calendar, packing
/// and missing values, read from the file itself (not from the scan that planned the
/// re-encoding); the store's with the store's attributes. Values compare within a
/// millisecond; a missing value must stay missing. Bounds take the units and calendar of
/// the variable naming them when they have none.
fn check_times(
    store: &Target,
    format: ZarrFormat,
    a: &FoundArray,
    inv: &Inventory,
    g: &GroupInfo,
    v: &VarInfo,
) -> Result<Vec<String>> {
    let total: u64 = a.shape.iter().product();
    // Bounds without units or calendar take their variable's (CF, xarray).
    let parent = g.vars.iter().find(|p| crate::model::names_as_bounds(&p.attrs, &v.name));
    let (Some(axis), Some(stored)) = (v.concat_axis, Instants::of_store(a, format, parent)) else {
        return Ok(Vec::new());
    };
    if total > TIME_CHECK_ELEMENTS || v.repeated {
        return Ok(Vec::new());
    }
    let mut values = vec![f64::NAN; total as usize];
    let grid: Vec<u64> = a
        .shape
        .iter()
        .zip(&a.object_shape)
        .map(|(n, o)| n.div_ceil(*o))
        .collect();
    for idx in grid_indices(&grid) {
        let key = meta::chunk_key(format, &a.path, &idx);
        let block = match store.get(&key)? {
            Some(b) => a.codec.decode(&b, &a.object_shape),
            None => a.codec.decode_fill(&a.object_shape),
        }
        .map_err(|e| invalid(store.display(), format!("cannot decode {key}: {e}")))?;
        let (origin, valid) = object_box(a, &idx);
        let zeros = vec![0u64; a.shape.len()];
        let part = crate::existing::numbers(&block, a.dtype);
        let from = At {
            shape: &a.object_shape,
            start: &zeros,
        };
        let to = At {
            shape: &a.shape,
            start: &origin,
        };
        copy_box(&part, from, &mut values, to, &valid, 1);
    }
    let outer: u64 = a.shape[..axis].iter().product();
    let inner: u64 = a.shape[axis + 1..].iter().product();
    let mut problems = Vec::new();
    // Each file holding the variable (inputs may split variables between files; steps
    // none of them holds are gaps, not compared).
    for f in inv.files_of(v).into_iter().filter(|f| f.concat_len > 0) {
        let (raw, source) = match source_times(&f.path, g, v) {
            Ok(x) => x,
            Err(p) => {
                problems.push(format!("{}: {p}", f.shown()));
                continue;
            }
        };
        let per_outer = f.concat_len * inner;
        if raw.len() as u64 != outer * per_outer {
            problems.push(format!(
                "{}: '{}' does not hold the steps the store gives it",
                f.shown(),
                a.path
            ));
            continue;
        }
        for (k, &x) in raw.iter().enumerate() {
            let k = k as u64;
            let (o, rest) = (k / per_outer, k % per_outer);
            let at = (o * a.shape[axis] + f.concat_start) * inner + rest;
            let (want, got) = (source.instant(x), stored.instant(values[at as usize]));
            let same = match (&want, &got) {
                (Ok(None), Ok(None)) => true,
                (Ok(Some(p)), Ok(Some(q))) => (p - q).abs() <= 1e-3_f64.max(1e-12 * p.abs()),
                _ => false,
            };
            if !same {
                problems.push(format!(
                    "'{}' element {at} is {} in the store but {} in {} (raw value {x}, units '{}')",
                    a.path,
                    stored.shown(values[at as usize]),
                    source.shown(x),
                    f.shown(),
                    source.units_text
                ));
                break;
            }
        }
    }
    Ok(problems)
}

/// The raw values of `v` in the file at `path`, and how that file's own attributes
/// decode them into instants.
fn source_times(
    path: &std::path::Path,
    g: &GroupInfo,
    v: &VarInfo,
) -> std::result::Result<(Vec<f64>, Instants), String> {
    let file = crate::nc::open_input(path).map_err(|e| e.to_string())?;
    let group = file.group_at(g.source_path()).map_err(|e| e.message)?;
    let var = group.variable(&v.name).map_err(|e| e.message)?;
    let header = var.header().map_err(|e| e.message)?;
    let crate::nc::VarType::Supported { dtype, .. } = header.vartype else {
        return Err(format!("'{}' has an unsupported type", v.name));
    };
    let size = dtype.size().ok_or_else(|| format!("'{}' is not numeric", v.name))?;
    let count: Vec<u64> = header.dims.iter().map(|d| d.len).collect();
    let mut buf = vec![0u8; count.iter().product::<u64>() as usize * size];
    var.read_raw(&vec![0; count.len()], &count, &mut buf)
        .map_err(|e| e.message)?;
    let raw = buf
        .chunks_exact(size)
        .map(|b| Scalar::from_ne_bytes(dtype, b).as_f64())
        .collect();
    let attrs = var.attributes().map_err(|e| e.message)?;
    let text_of = |attrs: &[crate::nc::Attribute], k: &str| {
        attrs.iter().find(|a| a.name == k).and_then(|a| match &a.value {
            crate::nc::AttrData::Text(t) => Some(t.clone()),
            crate::nc::AttrData::Strings(s) if s.len() == 1 => Some(s[0].clone()),
            _ => None,
        })
    };
    // Bounds without units or calendar take those of the variable naming them.
    let mut parent = Vec::new();
    for p in group.variables().map_err(|e| e.message)? {
        let p_attrs = p.attributes().map_err(|e| e.message)?;
        if crate::model::BOUNDS_LINKS
            .iter()
            .any(|k| text_of(&p_attrs, k).as_deref() == Some(v.name.as_str()))
        {
            parent = p_attrs;
        }
    }
    let text = |k: &str| text_of(&attrs, k).or_else(|| text_of(&parent, k));
    let numbers = |k: &str| -> Vec<f64> {
        attrs
            .iter()
            .find(|a| a.name == k)
            .map(|a| match &a.value {
                crate::nc::AttrData::Numbers(_, v) => v.iter().map(|s| s.as_f64()).collect(),
                _ => Vec::new(),
            })
            .unwrap_or_default()
    };
    let instants = Instants::new(text("units").as_deref(), text("calendar").as_deref(), &numbers)
        .ok_or_else(|| format!("'{}' has no time units", v.name))?;
    Ok((raw, instants))
}

/// How raw values of one time variable decode into instants (seconds since
/// 1970-01-01): its units, calendar, packing and missing values.
struct Instants {
    units: crate::cftime::TimeUnits,
    units_text: String,
    calendar: crate::cftime::Calendar,
    scale: f64,
    offset: f64,
    missing: Vec<f64>,
}

impl Instants {
    /// From the units, the calendar and the numeric attributes (`number(name)`);
    /// `None` without time units or with a calendar nc2zarr does not know.
    fn new(units: Option<&str>, calendar: Option<&str>, number: &dyn Fn(&str) -> Vec<f64>) -> Option<Instants> {
        let units_text = units?.to_string();
        Some(Instants {
            units: crate::cftime::TimeUnits::parse(&units_text)?,
            units_text,
            calendar: crate::cftime::Calendar::parse(calendar).ok()?,
            scale: number("scale_factor").first().copied().unwrap_or(1.0),
            offset: number("add_offset").first().copied().unwrap_or(0.0),
            missing: [number("_FillValue"), number("missing_value")].concat(),
        })
    }

    /// The store's decoding of array `a` (bounds of `parent`, whose units and calendar
    /// they take when they have none: the store's are the first source file's).
    fn of_store(a: &FoundArray, format: ZarrFormat, parent: Option<&VarInfo>) -> Option<Instants> {
        let coding = a.coding_attrs(format);
        let number = |k: &str| -> Vec<f64> {
            match crate::model::attr(&coding, k) {
                Some(crate::model::AttrValue::Numbers(_, v)) => v.iter().map(|s| s.as_f64()).collect(),
                _ => Vec::new(),
            }
        };
        let text = |k: &str| {
            a.attrs.get(k).and_then(Json::as_str).map(str::to_string).or_else(|| {
                parent
                    .and_then(|p| crate::model::attr(&p.attrs, k))
                    .and_then(crate::model::AttrValue::as_text)
                    .map(str::to_string)
            })
        };
        Instants::new(text("units").as_deref(), text("calendar").as_deref(), &number)
    }

    /// `raw` as a date (or "missing"), for messages.
    fn shown(&self, raw: f64) -> String {
        if raw.is_nan() || self.missing.contains(&raw) {
            return "missing".into();
        }
        let value = raw * self.scale + self.offset;
        self.units
            .timestamp(value, self.calendar)
            .unwrap_or_else(|e| format!("{value} ({e})"))
    }

    /// The instant `raw` stands for; `None` when it marks a missing value.
    fn instant(&self, raw: f64) -> std::result::Result<Option<f64>, String> {
        if raw.is_nan() || self.missing.contains(&raw) {
            return Ok(None);
        }
        self.units
            .absolute_seconds(raw * self.scale + self.offset, self.calendar)
            .map(Some)
    }
}

#[allow(clippy::too_many_arguments)]
fn check_object(
    store: &Target,
    a: &FoundArray,
    entry: Option<&manifest::ArrayEntry>,
    present: &HashMap<String, u64>,
    key: &str,
    idx: &[u64],
    block: &plan::ReadBlock,
    expected: Option<(&Block, Option<&Decodings>)>,
) -> std::result::Result<ObjectCheck, String> {
    let recorded = entry.and_then(|e| e.objects.get(key));
    let decoded = if present.contains_key(key) {
        let bytes = store
            .get(key)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{key}: listed but cannot be read"))?;
        if let Some(r) = recorded {
            let hash = blake3::hash(&bytes).to_hex().to_string();
            if hash != r.blake3 || bytes.len() as u64 != r.size {
                return Err(format!("{key}: corrupt (blake3 or size differs from the manifest)"));
            }
        } else if entry.is_some() {
            return Err(format!("{key}: present but not in the manifest"));
        }
        Some(
            a.codec
                .decode(&bytes, &a.object_shape)
                .map_err(|e| format!("{key}: does not decode: {e}"))?,
        )
    } else {
        if recorded.is_some() {
            return Err(format!("{key}: missing (recorded in the manifest)"));
        }
        if !a.has_fill {
            return Err(format!("{key}: missing and the array has no fill value"));
        }
        if entry.is_some_and(|e| !e.empty.iter().any(|k| k == key)) {
            return Err(format!("{key}: missing (not recorded as empty)"));
        }
        None
    };
    let Some((expected, decodings)) = expected else {
        return Ok(if decoded.is_some() {
            ObjectCheck::Checked
        } else {
            ObjectCheck::Empty
        });
    };
    let os = &a.object_shape;
    let (origin, valid) = object_box(a, idx);
    let src_start: Vec<u64> = origin.iter().zip(&block.start).map(|(o, s)| o - s).collect();
    let zeros = vec![0u64; os.len()];
    let source_dtype = decodings.map_or(a.dtype, |d| d.source_dtype);
    let want = extract(expected, &block.count, &src_start, &valid, source_dtype);
    let absent = decoded.is_none();
    let got = match decoded {
        Some(d) => extract(&d, os, &zeros, &valid, a.dtype),
        None => {
            let fill = a.codec.decode_fill(&valid);
            fill.map_err(|e| format!("{key}: {e}"))?
        }
    };
    match decodings {
        None if !same_values(&want, &got, a.dtype) => {
            return Err(format!("{key}: values differ from the source"));
        }
        Some(d) => {
            if let Some((i, x, y)) = first_decoded_difference(&want, &got, d, a.dtype) {
                return Err(format!(
                    "{key}: decoded values differ from the source (element {i}: {x} in the store, {y} in the source)"
                ));
            }
        }
        None => {}
    }
    Ok(if absent {
        ObjectCheck::Empty
    } else {
        ObjectCheck::Checked
    })
}

/// How to compare an array whose type or packing differs from its source variable's:
/// both sides decoded (CF scale, offset and missing values) the way xarray reads them.
struct Decodings {
    store: Decoding,
    source: Decoding,
    source_dtype: DType,
}

/// `Some` when the store holds `v` in another type or with other coding attributes, so
/// that only decoded values can be compared.
fn decoded_comparison(format: ZarrFormat, a: &FoundArray, v: &VarInfo) -> Option<Decodings> {
    let numeric = |t: DType| t.is_float() || t.is_integer();
    if !numeric(a.dtype) || !numeric(v.dtype) {
        return None;
    }
    let source_attrs = packing::coding_attrs(&v.attrs);
    let store_attrs = a.coding_attrs(format);
    let same_coding = packing::same_coding(&source_attrs, &store_attrs);
    if same_coding && a.dtype == v.dtype {
        return None;
    }
    Some(Decodings {
        store: Decoding::of(a.dtype, &store_attrs),
        source: Decoding::of(v.dtype, &source_attrs),
        source_dtype: v.dtype,
    })
}

/// The first element whose decoded values differ (beyond the rounding of single
/// precision, which JSON attributes cannot keep): `(index, store value, source value)`.
fn first_decoded_difference(
    source: &Block,
    store: &Block,
    d: &Decodings,
    store_dtype: DType,
) -> Option<(usize, f64, f64)> {
    let (Block::Fixed(src), Block::Fixed(st)) = (source, store) else {
        return Some((0, f64::NAN, f64::NAN));
    };
    let values = |b: &[u8], t: DType, dec: &Decoding| -> Vec<f64> {
        let size = t.size().expect("numeric");
        b.chunks_exact(size)
            .map(|e| dec.decode(Scalar::from_ne_bytes(t, e).as_f64()))
            .collect()
    };
    let (x, y) = (
        values(st, store_dtype, &d.store),
        values(src, d.source_dtype, &d.source),
    );
    if x.len() != y.len() {
        return Some((0, f64::NAN, f64::NAN));
    }
    x.iter().zip(&y).enumerate().find_map(|(i, (&p, &q))| {
        let same = (p.is_nan() && q.is_nan()) || p == q || (p - q).abs() <= 2.0f64.powi(-21) * p.abs().max(q.abs());
        (!same).then_some((i, p, q))
    })
}

fn extract(block: &Block, shape: &[u64], start: &[u64], count: &[u64], dtype: DType) -> Block {
    let zeros = vec![0u64; count.len()];
    let n = volume(count) as usize;
    let from = At { shape, start };
    let to = At {
        shape: count,
        start: &zeros,
    };
    match block {
        Block::Fixed(b) => {
            let elem = dtype.size().expect("fixed");
            let mut out = vec![0u8; n * elem];
            copy_box(b, from, &mut out, to, count, elem);
            Block::Fixed(out)
        }
        Block::Strings(v) => {
            let mut out = vec![String::new(); n];
            copy_box(v, from, &mut out, to, count, 1);
            Block::Strings(out)
        }
    }
}

/// Bitwise equality, except that any NaN equals any NaN.
fn same_values(a: &Block, b: &Block, dtype: DType) -> bool {
    match (a, b) {
        (Block::Fixed(x), Block::Fixed(y)) if x == y => true,
        (Block::Fixed(x), Block::Fixed(y)) if x.len() == y.len() => match dtype {
            DType::F32 => x.chunks_exact(4).zip(y.chunks_exact(4)).all(|(p, q)| {
                let (p, q) = (
                    f32::from_le_bytes(p.try_into().unwrap()),
                    f32::from_le_bytes(q.try_into().unwrap()),
                );
                p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan())
            }),
            DType::F64 => x.chunks_exact(8).zip(y.chunks_exact(8)).all(|(p, q)| {
                let (p, q) = (
                    f64::from_le_bytes(p.try_into().unwrap()),
                    f64::from_le_bytes(q.try_into().unwrap()),
                );
                p.to_bits() == q.to_bits() || (p.is_nan() && q.is_nan())
            }),
            _ => false,
        },
        (Block::Strings(x), Block::Strings(y)) => x == y,
        _ => false,
    }
}
