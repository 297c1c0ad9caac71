//! Inputs that split their variables between files, as CMIP6 and most model archives
//! do (`tas_2000.nc`, `pr_2000.nc`, `tas_2001.nc`, …): files holding the same
//! variables form a set, each set is concatenated on its own, and the sets are merged,
//! as `xarray.open_mfdataset` (`combine_by_coords`) does. Sets that cover different
//! steps of the concat axis are joined as xarray joins them (see [`super::outer`]);
//! the sets must agree on everything they both hold.

use std::collections::BTreeSet;

use crate::cftime::{Calendar, TimeUnits};
use crate::error::InputError;
use crate::model::{
    Action, AttrValue, DType, Drift, GroupInfo, Inventory, SourceFile, VarInfo, attr, bounds_named, names_as_bounds,
};
use crate::packing;

use super::concat::{self, ConcatChoice};
use super::header::{FileHeader, GroupHeader};
use super::outer;
use super::{ScanOptions, SetResult, Survey, check_static_variables, join_path, survey_set};

/// The variables that tell sets apart: every variable (by full path) except the 1-D
/// coordinate variables, which the sets share.
fn variable_key(h: &FileHeader) -> BTreeSet<String> {
    fn walk(g: &GroupHeader, path: &str, out: &mut BTreeSet<String>) {
        for v in g
            .vars
            .iter()
            .filter(|v| !(v.dims.len() == 1 && v.dims[0].name == v.name))
        {
            out.insert(join_path(path, &v.name));
        }
        for c in &g.groups {
            walk(c, &join_path(path, &c.name), out);
        }
    }
    let mut out = BTreeSet::new();
    walk(&h.root, "", &mut out);
    out
}

/// Indices of the headers grouped by the variables they hold, in order of first
/// appearance. One set when every file holds the same variables.
pub(super) fn variable_sets(headers: &[FileHeader]) -> Vec<Vec<usize>> {
    let mut keys: Vec<BTreeSet<String>> = Vec::new();
    let mut sets: Vec<Vec<usize>> = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        let key = variable_key(h);
        match keys.iter().position(|k| *k == key) {
            Some(s) => sets[s].push(i),
            None => {
                keys.push(key);
                sets.push(vec![i]);
            }
        }
    }
    sets
}

/// How a set is named in messages: the variables only it holds, and its files.
fn describe(sets: &[Vec<&FileHeader>], s: usize) -> String {
    let keys: Vec<BTreeSet<String>> = sets.iter().map(|set| variable_key(set[0])).collect();
    let own: Vec<String> = keys[s]
        .iter()
        .filter(|v| keys.iter().enumerate().all(|(o, k)| o == s || !k.contains(*v)))
        .map(|v| format!("'{v}'"))
        .collect();
    let vars = if own.is_empty() {
        let lacking: BTreeSet<&String> = keys.iter().flatten().filter(|v| !keys[s].contains(*v)).collect();
        let lacking: Vec<String> = lacking.iter().map(|v| format!("'{v}'")).collect();
        format!("the files lacking {}", lacking.join(", "))
    } else {
        own.join(", ")
    };
    let n = sets[s].len();
    format!(
        "{vars} ({n} file{}, e.g. {})",
        if n == 1 { "" } else { "s" },
        sets[s][0].path.display()
    )
}

/// Surveys inputs whose files hold different sets of variables.
pub(super) fn survey_sets(headers: &[FileHeader], sets: &[Vec<usize>], options: &ScanOptions) -> Survey {
    let members: Vec<Vec<&FileHeader>> = sets.iter().map(|s| s.iter().map(|&i| &headers[i]).collect()).collect();
    let owned = |s: usize| -> Vec<FileHeader> { members[s].iter().map(|&h| h.clone()).collect() };
    // One concat dimension for all sets: given, or chosen on the first set with several
    // files (a set of one file cannot tell its concat dimension from its others), else
    // the first lone file's time axis.
    let choice = match &options.concat_dim {
        Some(dim) => Ok(ConcatChoice {
            dim: Some(dim.clone()),
            reason: "given with --concat-dim".into(),
        }),
        None => match (0..sets.len()).find(|&s| sets[s].len() > 1) {
            Some(s) => concat::choose(&owned(s), None),
            None => (0..sets.len())
                .map(|s| concat::choose(&owned(s), None))
                .find(|c| c.as_ref().map_or(true, |c| c.dim.is_some()))
                .unwrap_or_else(|| concat::choose(&owned(0), None)),
        },
    };
    let choice = match choice {
        Ok(c) => c,
        Err(e) => {
            return Survey {
                drift: Vec::new(),
                result: Err(e),
            };
        }
    };
    let mut drift: Vec<Drift> = Vec::new();
    let mut parts = Vec::new();
    for s in 0..sets.len() {
        let set = owned(s);
        // A lone file without the concat dimension (a grid or mask file) is merged as is;
        // where the dimension is new (every file holds it as a scalar), it is a step.
        let new_dim = |d: &str| headers.iter().all(|h| h.root.dim(d).is_none());
        let lacks_dim = choice.dim.as_deref().is_some_and(|d| {
            set.len() == 1 && set[0].root.dim(d).is_none() && !(new_dim(d) && concat::holds_scalar(&set[0], d))
        });
        let forced = ConcatChoice {
            dim: if lacks_dim { None } else { choice.dim.clone() },
            reason: choice.reason.clone(),
        };
        let (set_drift, result): (Vec<Drift>, SetResult) = survey_set(&set, Some(forced), options);
        drift.extend(set_drift);
        match result {
            Ok(part) => parts.push(part),
            Err(e) => {
                // Every difference is still reported, across the sets too.
                let drift = drift_across_sets(headers, drift, choice.dim.as_deref(), options, false);
                return Survey { drift, result: Err(e) };
            }
        }
    }
    if let Some(dim) = choice.dim.as_deref() {
        match outer::align(&parts, dim, &|s| describe(&members, s)) {
            Ok(None) => {}
            Ok(Some(aligned)) => {
                for ((inv, _), starts) in parts.iter_mut().zip(&aligned.starts) {
                    if inv.concat_dim.is_some() {
                        outer::place(inv, starts, aligned.len);
                    }
                }
            }
            Err(e) => {
                let drift = drift_across_sets(headers, drift, choice.dim.as_deref(), options, false);
                return Survey { drift, result: Err(e) };
            }
        }
    }
    let result = combine(parts, &members);
    let drift = drift_across_sets(headers, drift, choice.dim.as_deref(), options, result.is_ok());
    Survey { drift, result }
}

/// How all the files differ: every aspect compared across all files, except what only
/// the files of one set can tell (a variable's own aspects, the concat axis), taken
/// from each set's survey. Variables or groups missing from some files are merged
/// (`merged`) or the reason for refusing.
fn drift_across_sets(
    headers: &[FileHeader],
    per_set: Vec<Drift>,
    dim: Option<&str>,
    options: &ScanOptions,
    merged: bool,
) -> Vec<Drift> {
    let mut out: Vec<Drift> = super::drift::analyze(headers, dim, options)
        .into_iter()
        .filter(|d| d.category != "concat axis")
        .map(|mut d| {
            if merged && d.item == "present" {
                d.action = Action::Merge;
            }
            d
        })
        .collect();
    // Aspects the comparison of all files covers are not counted again per set.
    let global: Vec<(&'static str, String, String)> = out
        .iter()
        .map(|d| (d.category, d.location.clone(), d.item.clone()))
        .collect();
    for d in per_set {
        if global.contains(&(d.category, d.location.clone(), d.item.clone())) {
            continue;
        }
        // Sets hold disjoint files, so their counts add up.
        let same = |o: &&mut Drift| {
            (o.category, &o.location, &o.item, o.action) == (d.category, &d.location, &d.item, d.action)
        };
        match out.iter_mut().find(|o| same(o)) {
            Some(o) => {
                for g in d.groups {
                    match o.groups.iter_mut().find(|x| x.value == g.value) {
                        Some(x) => {
                            x.files += g.files;
                            x.examples.extend(g.examples);
                            x.examples.truncate(super::drift::EXAMPLES);
                        }
                        None => o.groups.push(g),
                    }
                }
                o.groups.sort_by_key(|g| std::cmp::Reverse(g.files));
            }
            None => out.push(d),
        }
    }
    out
}

/// Merges the sets' datasets into one: files of all sets in concat order, every
/// variable pointing to the files that hold it.
fn combine(parts: Vec<(Inventory, Vec<FileHeader>)>, members: &[Vec<&FileHeader>]) -> Result<Inventory, InputError> {
    let mut slots: Vec<(u64, usize, usize)> = Vec::new();
    for (s, (inv, _)) in parts.iter().enumerate() {
        slots.extend(inv.files.iter().enumerate().map(|(k, f)| (f.concat_start, s, k)));
    }
    slots.sort_unstable();
    let mut global: Vec<Vec<usize>> = parts.iter().map(|(inv, _)| vec![0; inv.files.len()]).collect();
    for (g, &(_, s, k)) in slots.iter().enumerate() {
        global[s][k] = g;
    }
    let files: Vec<SourceFile> = slots.iter().map(|&(_, s, k)| parts[s].0.files[k].clone()).collect();
    let headers: Vec<FileHeader> = slots.iter().map(|&(_, s, k)| parts[s].1[k].clone()).collect();

    let mut parts = parts.into_iter().map(|(inv, _)| inv).enumerate();
    let (_, mut first) = parts.next().expect("at least two sets");
    point_to_files(&mut first.root, &global[0]);
    let mut notes = std::mem::take(&mut first.notes);
    let mut unsupported_attrs = std::mem::take(&mut first.unsupported_attrs);
    for (s, mut inv) in parts {
        point_to_files(&mut inv.root, &global[s]);
        merge_group(&mut first.root, inv.root, members, s, &files)?;
        for n in inv.notes {
            if !notes.contains(&n) {
                notes.push(n);
            }
        }
        for u in inv.unsupported_attrs {
            if !unsupported_attrs.contains(&u) {
                unsupported_attrs.push(u);
            }
        }
        if first.concat_dim.is_none() {
            first.concat_dim = inv.concat_dim;
        }
    }
    let sets: Vec<String> = (0..members.len()).map(|s| describe(members, s)).collect();
    notes.insert(
        0,
        format!(
            "the files hold {} sets of variables: {}; each set is concatenated on its own and the sets are merged, \
             as xarray.open_mfdataset does",
            sets.len(),
            sets.join("; ")
        ),
    );
    let mut inventory = Inventory {
        files,
        notes,
        unsupported_attrs,
        ..first
    };
    check_static_variables(&mut inventory, &headers)?;
    outer::fill_gaps(&mut inventory)?;
    Ok(inventory)
}

/// Points every variable of `g` (and below) at the files of its set.
fn point_to_files(g: &mut GroupInfo, files: &[usize]) {
    for v in &mut g.vars {
        v.files = Some(files.to_vec());
    }
    for c in &mut g.groups {
        point_to_files(c, files);
    }
}

/// Merges group `from` of set `s` into `into`: new dimensions, variables and groups are
/// added; shared ones must agree (the first set's are kept, read from the files of
/// `from` where those of `into` lack steps). `files` are all the files, in concat order.
fn merge_group(
    into: &mut GroupInfo,
    from: GroupInfo,
    members: &[Vec<&FileHeader>],
    s: usize,
    files: &[SourceFile],
) -> Result<(), InputError> {
    let differ = |what: String, a: String, b: String| {
        InputError::inconsistent(format!(
            "{what} is {a} in the files of {} but {b} in those of {}; the files do not hold one dataset",
            describe(members, 0),
            describe(members, s)
        ))
        .files([&members[0][0].path, &members[s][0].path])
    };
    // A string-length dimension may differ between sets: each array keeps its own
    // width (one both sets hold, the first set's), the dimension the widest.
    let string_dims: Vec<String> = from
        .dims
        .iter()
        .filter(|d| gives_string_lengths(into, &d.name) && gives_string_lengths(&from, &d.name))
        .map(|d| d.name.clone())
        .collect();
    for d in from.dims {
        match into.dims.iter().find(|x| x.name == d.name) {
            Some(_) if string_dims.contains(&d.name) => {}
            Some(x) if x.len != d.len => {
                return Err(differ(
                    format!("dimension '{}'", join_path(&into.path, &d.name)),
                    format!("{} long", x.len),
                    format!("{} long", d.len),
                ));
            }
            Some(_) => {}
            None => into.dims.push(d),
        }
    }
    // A bounds variable only a later set holds was encoded in that set's units for its
    // coordinate; under the first set's other units it would mean other instants.
    let text = |v: &VarInfo, k: &str| attr(&v.attrs, k).and_then(AttrValue::as_text).map(str::to_string);
    for v in &from.vars {
        let Some(x) = into.vars.iter().find(|x| x.name == v.name) else {
            continue;
        };
        let bounds = bounds_named(&v.attrs).find(|b| !into.vars.iter().any(|x| x.name == *b));
        let encoded_alike = ["units", "calendar"].iter().all(|k| text(x, k) == text(v, k));
        if let (Some(b), false) = (bounds, encoded_alike) {
            return Err(differ(
                format!(
                    "the encoding of '{}', whose bounds '{b}' only the second set holds,",
                    join_path(&into.path, &v.name)
                ),
                format!("{:?}", text(x, "units").unwrap_or_default()),
                format!("{:?}", text(v, "units").unwrap_or_default()),
            ));
        }
    }
    let alike: Vec<bool> = from
        .vars
        .iter()
        .map(|v| {
            into.vars
                .iter()
                .find(|x| x.name == v.name)
                .is_none_or(|x| encoding(&into.vars, x) == encoding(&from.vars, v))
        })
        .collect();
    for (v, alike) in from.vars.into_iter().zip(alike) {
        match into.vars.iter_mut().find(|x| x.name == v.name) {
            Some(x) => {
                agree(x, &v, &into.path, &differ)?;
                let what = format!("variable '{}'", join_path(&into.path, &v.name));
                outer::cover(x, &v, files, alike, &what)?;
            }
            None => into.vars.push(v),
        }
    }
    for c in from.groups {
        match into.groups.iter_mut().find(|x| x.name == c.name) {
            Some(x) => merge_group(x, c, members, s, files)?,
            None => into.groups.push(c),
        }
    }
    for name in string_dims {
        into.fit_string_length(&name);
    }
    Ok(())
}

/// True when dimension `dim` of `g` only gives the length of strings: every variable
/// of `g` and its subgroups using it is a char array with it as its last dimension.
fn gives_string_lengths(g: &GroupInfo, dim: &str) -> bool {
    fn uses(g: &GroupInfo, dim: &str) -> bool {
        let own = g.vars.iter().all(|v| {
            !v.dims.iter().any(|d| d == dim) || (v.dtype == DType::Char && v.dims.last().is_some_and(|d| d == dim))
        });
        own && g.groups.iter().all(|c| uses(c, dim))
    }
    g.dims.iter().any(|d| d.name == dim && !d.unlimited && !d.concat) && uses(g, dim)
}

/// What decides how the stored values of a variable read (see [`encoding`]).
#[derive(PartialEq)]
struct Encoding {
    dtype: DType,
    /// The string length of a char array.
    width: Option<u64>,
    /// Packing and fill attributes, as `name=value`.
    coding: Vec<String>,
    time: Option<TimeUnits>,
    /// Units other than time units, as text.
    units: Option<String>,
    calendar: Option<Calendar>,
}

/// What decides how the stored values of `v` (one of `vars`) read: its stored type (and
/// string length), its packing and fill attributes, and the time units and calendar of
/// it or, for bounds, of the coordinate it bounds.
fn encoding(vars: &[VarInfo], v: &VarInfo) -> Encoding {
    let text = |v: &VarInfo, k: &str| attr(&v.attrs, k).and_then(AttrValue::as_text).map(str::to_string);
    let parent = vars.iter().find(|p| names_as_bounds(&p.attrs, &v.name));
    let timed = if text(v, "units").is_some() {
        v
    } else {
        parent.unwrap_or(v)
    };
    let coding = packing::coding_attrs(&v.attrs)
        .iter()
        .map(|(k, a)| format!("{k}={}", a.display()))
        .collect();
    // Time units compare by meaning ("hours since 1900-01-01 00:00:00" is "hours since
    // 1900-01-01"), other units as text.
    let units = text(timed, "units");
    let time = units.as_deref().and_then(TimeUnits::parse);
    // Bounds without a calendar of their own take their variable's (CF, xarray).
    let calendar = text(timed, "calendar").or_else(|| parent.and_then(|p| text(p, "calendar")));
    let calendar = Calendar::parse(calendar.as_deref()).ok();
    let units = if time.is_some() { None } else { units };
    Encoding {
        dtype: v.source_dtype,
        width: (v.dtype == DType::Char).then(|| v.shape.last().copied()).flatten(),
        coding,
        time,
        units,
        calendar,
    }
}

/// A variable both sets hold must have the same dimensions and type in both.
fn agree(
    a: &mut VarInfo,
    b: &VarInfo,
    gpath: &str,
    differ: &dyn Fn(String, String, String) -> InputError,
) -> Result<(), InputError> {
    let what = format!("variable '{}'", join_path(gpath, &a.name));
    if a.dims != b.dims {
        return Err(differ(
            what,
            format!("({})", a.dims.join(", ")),
            format!("({})", b.dims.join(", ")),
        ));
    }
    if a.dtype != b.dtype {
        // A float32 time that one set re-encodes (and so stores as float64) and another
        // does not: float64 holds both.
        let floats = matches!((a.dtype, b.dtype), (DType::F32, DType::F64) | (DType::F64, DType::F32));
        if floats && (a.time_fix.is_some() || b.time_fix.is_some()) {
            a.dtype = DType::F64;
            return Ok(());
        }
        return Err(differ(what, a.dtype.cdl_name().into(), b.dtype.cdl_name().into()));
    }
    Ok(())
}
