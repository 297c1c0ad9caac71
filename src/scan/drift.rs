//! What differs between the input files, and what convert does about each difference.
//!
//! Before a migration of thousands of files, users need to know where the archive is
//! not uniform: source chunking, compression, packing, fill values, types, units,
//! calendars, missing variables, grids, gaps along the concat dimension. Each aspect
//! that takes more than one value across the files becomes a [`Drift`]: the values,
//! how many files hold each (with a few names), and the [`Action`] convert takes.
//! Headers only: the data read is the root coordinates that scan reads anyway.

use crate::cftime::{Calendar, TimeUnits};
use crate::model::{Action, Drift, DriftGroup};
use crate::model::{AttrValue, Attrs, attr};
use crate::packing::CODING_ATTRS;

use super::concat;
use super::header::{FileHeader, GroupHeader, convert_attrs};
use super::{ScanOptions, group_at, type_name};

/// File names shown per value.
pub(super) const EXAMPLES: usize = 3;

/// Groups `values` (one per file, in file order) by value; `None` when all are equal.
fn group(headers: &[FileHeader], values: &[String]) -> Option<Vec<DriftGroup>> {
    let mut groups: Vec<DriftGroup> = Vec::new();
    for (h, v) in headers.iter().zip(values) {
        let name = h.path.display().to_string();
        match groups.iter_mut().find(|g| &g.value == v) {
            Some(g) => {
                g.files += 1;
                if g.examples.len() < EXAMPLES {
                    g.examples.push(name);
                }
            }
            None => groups.push(DriftGroup {
                value: v.clone(),
                files: 1,
                examples: vec![name],
            }),
        }
    }
    if groups.len() < 2 {
        return None;
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.files));
    Some(groups)
}

struct Collector<'a> {
    headers: &'a [FileHeader],
    out: Vec<Drift>,
}

impl Collector<'_> {
    fn add(&mut self, category: &'static str, location: &str, item: &str, values: &[String], action: Action) {
        if let Some(groups) = group(self.headers, values) {
            self.out.push(Drift {
                category,
                location: location.to_string(),
                item: item.to_string(),
                groups,
                action,
            });
        }
    }
}

const ABSENT: &str = "(absent)";

fn shown(a: Option<&AttrValue>) -> String {
    a.map_or_else(|| ABSENT.to_string(), AttrValue::display)
}

fn shown_set(attrs: &Attrs, names: &[&str]) -> String {
    let parts: Vec<String> = names
        .iter()
        .filter_map(|k| attr(attrs, k).map(|v| format!("{k}={}", v.display())))
        .collect();
    if parts.is_empty() {
        "(none)".into()
    } else {
        parts.join(", ")
    }
}

/// Every drift among `headers` (in concat order) with concat dimension `concat_dim`.
pub(crate) fn analyze(headers: &[FileHeader], concat_dim: Option<&str>, options: &ScanOptions) -> Vec<Drift> {
    if headers.len() < 2 {
        return Vec::new();
    }
    let mut c = Collector {
        headers,
        out: Vec::new(),
    };
    let mut paths: Vec<Vec<String>> = Vec::new();
    for h in headers {
        collect_group_paths(&h.root, &mut Vec::new(), &mut paths);
    }
    for path in &paths {
        group_drift(&mut c, path, concat_dim, options);
    }
    if let Some(dim) = concat_dim {
        concat_axis_drift(&mut c, dim);
    }
    c.out
}

fn collect_group_paths(g: &GroupHeader, path: &mut Vec<String>, out: &mut Vec<Vec<String>>) {
    if !out.contains(path) {
        out.push(path.clone());
    }
    for child in &g.groups {
        path.push(child.name.clone());
        collect_group_paths(child, path, out);
        path.pop();
    }
}

fn group_drift(c: &mut Collector<'_>, path: &[String], concat_dim: Option<&str>, options: &ScanOptions) {
    let headers = c.headers;
    let gpath = path.join("/");
    let location = format!("/{gpath}");
    let groups: Vec<Option<&GroupHeader>> = headers.iter().map(|h| group_at(&h.root, path)).collect();
    if groups.iter().any(Option::is_none) {
        let values: Vec<String> = groups
            .iter()
            .map(|g| if g.is_some() { "present" } else { ABSENT }.to_string())
            .collect();
        c.add("group", &location, "present", &values, Action::Refuse);
        return;
    }
    let groups: Vec<&GroupHeader> = groups.into_iter().flatten().collect();
    // Global / group attributes: descriptive, the first file's are kept.
    let attrs: Vec<Attrs> = groups.iter().map(|g| convert_attrs(&g.attrs)).collect();
    for name in attr_names(&attrs) {
        let values: Vec<String> = attrs.iter().map(|a| shown(attr(a, &name))).collect();
        c.add("attribute", &location, &name, &values, Action::KeepFirst);
    }
    // Dimensions other than the concat dimension must agree.
    let mut dims: Vec<String> = Vec::new();
    for g in &groups {
        for d in &g.dims {
            if !dims.contains(&d.name) {
                dims.push(d.name.clone());
            }
        }
    }
    for d in &dims {
        if path.is_empty() && Some(d.as_str()) == concat_dim {
            continue;
        }
        let values: Vec<String> = groups
            .iter()
            .map(|g| g.dim(d).map_or_else(|| ABSENT.to_string(), |x| x.len.to_string()))
            .collect();
        // Only lengths that differ are reported; only they need the variables looked at.
        let differ = values.iter().any(|v| *v != values[0]);
        let action = if differ && groups.iter().all(|g| g.is_string_length(d)) {
            Action::Pad
        } else {
            Action::Refuse
        };
        c.add("dimension", d, "length", &values, action);
        if path.is_empty() {
            let values: Vec<String> = headers
                .iter()
                .map(|h| match h.coord(d) {
                    Some(v) => coordinate_summary(v),
                    None => ABSENT.to_string(),
                })
                .collect();
            if values.iter().all(|v| v != ABSENT) {
                c.add("coordinate values", d, "values", &values, Action::Refuse);
            }
        }
    }
    // Variables.
    let mut names: Vec<String> = Vec::new();
    for g in &groups {
        for v in &g.vars {
            if !names.contains(&v.name) {
                names.push(v.name.clone());
            }
        }
    }
    for name in &names {
        let full = if gpath.is_empty() {
            name.clone()
        } else {
            format!("{gpath}/{name}")
        };
        let vars: Vec<Option<&super::header::VarHeader>> = groups.iter().map(|g| g.var(name)).collect();
        if vars.iter().any(Option::is_none) {
            let values: Vec<String> = vars
                .iter()
                .map(|v| if v.is_some() { "present" } else { ABSENT }.to_string())
                .collect();
            c.add("variables", &full, "present", &values, Action::Refuse);
            continue;
        }
        let vars: Vec<&super::header::VarHeader> = vars.into_iter().flatten().collect();
        let along_concat = path.is_empty() && concat_dim.is_some_and(|d| vars[0].dims.iter().any(|x| x.name == d));
        let types: Vec<String> = vars.iter().map(|v| type_name(&v.vartype)).collect();
        // Plain numbers along the concat dimension are promoted to one type, as numpy does.
        let promotable = along_concat
            && !options.refuse_encoding_drift
            && vars
                .iter()
                .all(|v| v.numeric_dtype().is_some_and(|t| t.is_float() || t.is_integer()));
        let keep_first = path.is_empty()
            && !options.refuse_encoding_drift
            && super::header::keeps_first_type(headers, name, concat_dim);
        let type_action = match (promotable, keep_first) {
            (true, _) => Action::ReEncode,
            (false, true) => Action::KeepFirst,
            (false, false) => Action::Refuse,
        };
        c.add("type", &full, "type", &types, type_action);
        let chunks: Vec<String> = vars
            .iter()
            .map(|v| match &v.storage.chunks {
                Some(ch) => format!("({})", ch.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")),
                None => "contiguous".into(),
            })
            .collect();
        c.add("chunking", &full, "source chunks", &chunks, Action::NoEffect);
        let filters: Vec<String> = vars
            .iter()
            .map(|v| {
                if v.storage.filters.is_empty() {
                    "none".into()
                } else {
                    v.storage.filters.join(", ")
                }
            })
            .collect();
        c.add("compression", &full, "filters", &filters, Action::NoEffect);
        let attrs: Vec<Attrs> = vars.iter().map(|v| v.attrs()).collect();
        let numeric = vars[0].numeric_dtype().is_some();
        let recode = match () {
            _ if options.refuse_encoding_drift || !along_concat => Action::Refuse,
            _ if !numeric => Action::KeepFirst,
            _ => Action::Unpack,
        };
        let packing: Vec<String> = attrs
            .iter()
            .map(|a| shown_set(a, &["scale_factor", "add_offset"]))
            .collect();
        c.add("packing", &full, "scale_factor, add_offset", &packing, recode);
        let fills: Vec<String> = attrs
            .iter()
            .map(|a| shown_set(a, &["_FillValue", "missing_value"]))
            .collect();
        c.add("fill value", &full, "_FillValue, missing_value", &fills, recode);
        let units: Vec<String> = attrs.iter().map(|a| shown(attr(a, "units"))).collect();
        let all_time = attrs.iter().all(|a| {
            attr(a, "units")
                .and_then(AttrValue::as_text)
                .and_then(TimeUnits::parse)
                .is_some()
        });
        // Times compare as instants, and are re-encoded where they differ, also without
        // the concat dimension (a forecast reference time counted from each file's cycle).
        let units_action = match () {
            _ if all_time => Action::ReEncode,
            _ if !along_concat => Action::KeepFirst,
            _ => Action::Refuse,
        };
        c.add("units", &full, "units", &units, units_action);
        let calendars: Vec<String> = attrs
            .iter()
            .map(|a| {
                let text = attr(a, "calendar").and_then(AttrValue::as_text);
                match Calendar::parse(text) {
                    Ok(cal) => cal.to_string(),
                    Err(_) => text.unwrap_or(ABSENT).to_string(),
                }
            })
            .collect();
        c.add("calendar", &full, "calendar", &calendars, Action::Refuse);
        for k in attr_names(&attrs) {
            if CODING_ATTRS.contains(&k.as_str()) || k == "units" || k == "calendar" {
                continue;
            }
            let values: Vec<String> = attrs.iter().map(|a| shown(attr(a, &k))).collect();
            c.add("attribute", &full, &k, &values, Action::KeepFirst);
        }
    }
}

/// Every attribute name used in any of `attrs`, in first-seen order.
fn attr_names(attrs: &[Attrs]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for a in attrs {
        for (k, _) in a {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    names
}

/// `first .. last (n values)`, or the values themselves when few.
fn coordinate_summary(v: &[f64]) -> String {
    match v {
        [] => "(empty)".into(),
        _ if v.len() <= 4 => format!("{v:?}"),
        _ => format!(
            "{} .. {} ({} values, hash {})",
            v[0],
            v[v.len() - 1],
            v.len(),
            &blake3::hash(&v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()).to_hex()[..8]
        ),
    }
}

/// Gaps and overlaps between consecutive files along the concat coordinate.
fn concat_axis_drift(c: &mut Collector<'_>, dim: &str) {
    let headers = c.headers;
    let Ok(mut values) = headers
        .iter()
        .map(|h| concat::values(h, dim))
        .collect::<Result<Vec<_>, _>>()
    else {
        return;
    };
    // Dates written as numbers (`day as %Y%m%d.%f`) are measured in days.
    let units = headers[0]
        .root
        .var(dim)
        .and_then(|v| {
            attr(&v.attrs(), "units")
                .and_then(AttrValue::as_text)
                .map(str::to_string)
        })
        .unwrap_or_default();
    for v in values.iter_mut().flatten() {
        *v = crate::cftime::absolute_day(&units, *v).unwrap_or(*v);
    }
    // The way the axis runs (paleo axes in "ka BP" decrease): most of its steps' sign.
    let all: Vec<f64> = values.iter().flatten().copied().collect();
    let rising = all.windows(2).filter(|w| w[1] > w[0]).count();
    let falling = all.windows(2).filter(|w| w[1] < w[0]).count();
    let direction = if falling > rising { -1.0 } else { 1.0 };
    let mut steps: Vec<f64> = values
        .iter()
        .flat_map(|v| v.windows(2).map(|w| (w[1] - w[0]).abs()))
        .filter(|s| *s > 0.0)
        .collect();
    if steps.is_empty() {
        return;
    }
    steps.sort_by(f64::total_cmp);
    let step = steps[steps.len() / 2];
    let mut joins = vec!["in sequence".to_string()];
    for w in values.windows(2) {
        let (Some(last), Some(first)) = (w[0].last(), w[1].first()) else {
            joins.push("(empty file)".into());
            continue;
        };
        let d = (first - last) * direction;
        joins.push(if d <= 0.0 {
            "overlaps the previous file".into()
        } else if d > 1.5 * step {
            "gap before this file".into()
        } else {
            "in sequence".into()
        });
    }
    let overlap = joins.iter().any(|j| j.starts_with("overlaps"));
    // Overlaps are refused; a gap changes no value (the coordinate records it).
    let action = if overlap { Action::Refuse } else { Action::NoEffect };
    c.add("concat axis", dim, "continuity", &joins, action);
}
