//! The dimension to concatenate files along, and the files' order along it.
//!
//! Like `xarray.open_mfdataset(files)` (which combines by coordinates), the concat
//! dimension is inferred when not given: the unlimited dimension when every file has
//! the same single one; otherwise the one dimension whose coordinate values differ
//! between files (a CF time axis wins a tie); otherwise the one dimension whose length
//! differs; otherwise, when every file holds a scalar time coordinate (of several, the
//! CF time axis), a new dimension of its name (one step per file). Anything else is ambiguous and refused with the
//! candidates named.

use crate::cftime::{Calendar, TimeUnits};
use crate::error::InputError;
use crate::model::{AttrValue, DType, attr};

use super::header::{self, FileHeader};

/// The concat dimension chosen for a set of files, and why.
#[derive(Debug, Clone)]
pub(crate) struct ConcatChoice {
    /// The dimension, if any.
    pub dim: Option<String>,
    /// Why it was chosen (for `scan`'s report).
    pub reason: String,
}

fn choice(dim: Option<&str>, reason: impl Into<String>) -> ConcatChoice {
    ConcatChoice {
        dim: dim.map(str::to_string),
        reason: reason.into(),
    }
}

/// Chooses the concat dimension of `headers` (`explicit` is `--concat-dim`).
pub(crate) fn choose(headers: &[FileHeader], explicit: Option<&str>) -> Result<ConcatChoice, InputError> {
    if let Some(dim) = explicit {
        // Every file holds it as a scalar, none as a dimension: a new dimension, one step
        // per file, the scalars its coordinate (xarray's nested combine along a scalar
        // coordinate). A name no file holds stays an error, so a typo does not create one.
        if headers.iter().all(|h| holds_scalar(h, dim)) {
            return Ok(choice(
                Some(dim),
                "given with --concat-dim: a new dimension, one step per file",
            ));
        }
        for h in headers {
            if h.root.dim(dim).is_none() {
                let have: Vec<&str> = h.root.dims.iter().map(|d| d.name.as_str()).collect();
                return Err(InputError::inconsistent(format!(
                    "{}: has no dimension '{dim}' to concatenate along (root dimensions: {}){}",
                    h.path.display(),
                    if have.is_empty() {
                        "none".into()
                    } else {
                        have.join(", ")
                    },
                    subgroup_hint(h, Some(dim))
                ))
                .files([&h.path]));
            }
        }
        return Ok(choice(Some(dim), "given with --concat-dim"));
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
    // An unlimited dimension without a step in any file (Argo's N_HISTORY) has nothing
    // to concatenate: chosen, it would leave every other variable that differs between
    // files with no step to be stored along. A single file's still grows by appends when
    // it has a coordinate (a time axis with no record yet).
    let has_steps = |d: &str| headers.iter().any(|h| h.root.dim(d).is_some_and(|x| x.len > 0));
    if headers.len() == 1 {
        return Ok(match first.as_slice() {
            [one] if has_steps(one) || headers[0].root.has_coordinate(one) => {
                choice(Some(one), "the file's unlimited dimension")
            }
            _ => match time_dims(&headers[0]).as_slice() {
                [one] => choice(Some(one), "the file's time coordinate (no single unlimited dimension)"),
                _ => choice(None, "a single file: nothing to concatenate"),
            },
        });
    }
    if first.len() == 1 && headers.iter().all(|h| unlimited(h) == first) && has_steps(&first[0]) {
        // Unless every file holds the same values along it, and another dimension's
        // differ (old CDS ERA5 pressure levels: one file per level, each with the same
        // unlimited times), as xarray concatenates along that one.
        if equal_in_every_file(headers, &first[0])
            && let Ok(other) = infer_from_coordinates(headers)
            && other.dim.as_deref() != Some(first[0].as_str())
        {
            return Ok(other);
        }
        return Ok(choice(Some(&first[0]), "the unlimited dimension of every file"));
    }
    // Only files that share every dimension (none tells them apart) may be steps of a
    // new one.
    let same_dims = |h: &FileHeader| {
        h.root.dims.len() == headers[0].root.dims.len()
            && h.root.dims.iter().all(|d| {
                headers[0].root.dim(&d.name).is_some_and(|x| x.len == d.len)
                    && h.coord(&d.name) == headers[0].coord(&d.name)
            })
    };
    infer_from_coordinates(headers).or_else(|e| match headers.iter().all(same_dims) {
        true => scalar_time(headers).ok_or(e),
        false => Err(e),
    })
}

/// True when every file has a coordinate variable `dim` with the same values.
fn equal_in_every_file(headers: &[FileHeader], dim: &str) -> bool {
    let Some(first) = headers[0]
        .root
        .has_coordinate(dim)
        .then(|| comparable_values(&headers[0], dim).ok())
        .flatten()
    else {
        return false;
    };
    headers[1..]
        .iter()
        .all(|h| h.root.has_coordinate(dim) && comparable_values(h, dim).is_ok_and(|v| same_values(&first, &v)))
}

/// True when `h` holds a scalar variable `name` and no dimension of that name.
pub(crate) fn holds_scalar(h: &FileHeader, name: &str) -> bool {
    h.root.dim(name).is_none() && h.root.var(name).is_some_and(|v| v.dims.is_empty())
}

/// Files that each hold one time step as a scalar time coordinate (no such dimension):
/// that name, as a new dimension, one step per file.
fn scalar_time(headers: &[FileHeader]) -> Option<ConcatChoice> {
    let candidates = |h: &FileHeader| -> Vec<String> {
        h.root
            .vars
            .iter()
            .filter(|v| v.dims.is_empty() && v.numeric_dtype().is_some() && h.root.dim(&v.name).is_none())
            .filter(|v| {
                let attrs = v.attrs();
                let text = |k: &str| attr(&attrs, k).and_then(AttrValue::as_text).map(str::trim);
                text("units").and_then(TimeUnits::parse).is_some()
            })
            .map(|v| v.name.clone())
            .collect()
    };
    // Several scalar times (UM fields' `time` and `forecast_reference_time`): the one
    // that is a CF time axis.
    let time_axis = |h: &FileHeader, name: &str| {
        h.root.var(name).is_some_and(|v| {
            let attrs = v.attrs();
            let text = |k: &str| attr(&attrs, k).and_then(AttrValue::as_text).map(str::trim);
            text("axis") == Some("T") || text("standard_name") == Some("time")
        })
    };
    let mut first = candidates(&headers[0]);
    if first.len() > 1 {
        first.retain(|n| time_axis(&headers[0], n));
    }
    let [name] = first.as_slice() else { return None };
    headers.iter().all(|h| candidates(h).contains(name)).then(|| {
        choice(
            Some(name),
            "each file's scalar time coordinate: a new dimension, one step per file",
        )
    })
}

/// Dimensions of the root group whose coordinate is a CF time axis.
fn time_dims(h: &FileHeader) -> Vec<String> {
    h.root
        .dims
        .iter()
        .filter(|d| is_time_axis(h, &d.name))
        .map(|d| d.name.clone())
        .collect()
}

/// True when root coordinate `dim` is a time axis (`axis = "T"`, `standard_name = "time"`
/// or CF time units, `<unit> since <date>` in any unit: months and years count too).
fn is_time_axis(h: &FileHeader, dim: &str) -> bool {
    if !h.root.has_coordinate(dim) {
        return false;
    }
    let attrs = h.root.var(dim).expect("coordinate").attrs();
    let text = |k: &str| attr(&attrs, k).and_then(AttrValue::as_text).map(str::trim);
    text("axis").is_some_and(|a| a.eq_ignore_ascii_case("T"))
        || text("standard_name") == Some("time")
        || text("units").is_some_and(|u| u.to_ascii_lowercase().contains(" since "))
}

fn infer_from_coordinates(headers: &[FileHeader]) -> Result<ConcatChoice, InputError> {
    let n = headers.len();
    let shared: Vec<&str> = headers[0]
        .root
        .dims
        .iter()
        .map(|d| d.name.as_str())
        .filter(|d| headers.iter().all(|h| h.root.dim(d).is_some()))
        .collect();
    let mut differing = Vec::new();
    for &d in &shared {
        if !headers
            .iter()
            .all(|h| h.root.has_coordinate(d) && h.root.var(d).and_then(|v| v.numeric_dtype()).is_some())
        {
            continue;
        }
        let first = comparable_values(&headers[0], d)?;
        for h in &headers[1..] {
            if !same_values(&first, &comparable_values(h, d)?) {
                differing.push(d);
                break;
            }
        }
    }
    let unlimited_note = describe_unlimited(headers);
    match differing.as_slice() {
        [one] => {
            return Ok(choice(
                Some(one),
                format!("the only dimension whose coordinate values differ between the files; {unlimited_note}"),
            ));
        }
        [] => {}
        several => {
            let time: Vec<&str> = several
                .iter()
                .copied()
                .filter(|d| is_time_axis(&headers[0], d))
                .collect();
            if let [one] = time.as_slice() {
                return Ok(choice(
                    Some(one),
                    format!(
                        "the time axis among the dimensions whose coordinate values differ, {}; {unlimited_note}",
                        quoted(several)
                    ),
                ));
            }
            return Err(InputError::inconsistent(format!(
                "cannot tell which dimension to concatenate the {n} files along: the coordinate values of {} all differ \
                 between files and {}; pass --concat-dim DIM",
                quoted(several),
                if time.is_empty() {
                    "none is a time axis".to_string()
                } else {
                    format!("{} are time axes", quoted(&time))
                }
            )));
        }
    }
    let len_differs: Vec<&str> = shared
        .iter()
        .copied()
        .filter(|d| {
            headers
                .iter()
                .any(|h| h.root.dim(d).map(|x| x.len) != headers[0].root.dim(d).map(|x| x.len))
        })
        .collect();
    if let [one] = len_differs.as_slice() {
        return Ok(choice(
            Some(one),
            format!(
                "the only dimension whose length differs between the files, without a coordinate to order by; {unlimited_note}"
            ),
        ));
    }
    if shared.is_empty() {
        return Err(InputError::inconsistent(format!(
            "the {n} files share no dimension, so they are not parts of one dataset; convert them separately{}",
            subgroup_hint(&headers[0], None)
        )));
    }
    Err(InputError::inconsistent(format!(
        "cannot tell which dimension to concatenate the {n} files along: {unlimited_note}, and {}; pass --concat-dim DIM{}",
        if let (true, Some((var, along))) = (len_differs.is_empty(), auxiliary_that_differs(headers, &shared)) {
            format!(
                "no dimension's coordinate values or length differ between them, but the values of '{var}' (along \
                 '{along}', which has no coordinate variable) do: pass --concat-dim {along} to concatenate along it, \
                 in the order the files are given"
            )
        } else if len_differs.is_empty() {
            format!(
                "no dimension's coordinate values or length differ between them (shared dimensions: {}); \
                 are some files duplicates?",
                quoted(&shared)
            )
        } else {
            format!(
                "the lengths of {} differ and none has coordinate values",
                quoted(&len_differs)
            )
        },
        subgroup_hint(&headers[0], None)
    )))
}

/// A 1-D variable along one of the `shared` dimensions, not its coordinate variable,
/// whose values differ between files (`time(tdim)` without a `tdim` variable), and
/// that dimension.
fn auxiliary_that_differs<'a>(headers: &'a [FileHeader], shared: &[&str]) -> Option<(&'a str, &'a str)> {
    headers[0].root.vars.iter().find_map(|v| {
        let [d] = v.dims.as_slice() else { return None };
        let candidate = d.name != v.name && shared.contains(&d.name.as_str()) && v.numeric_dtype().is_some();
        let first = candidate.then(|| values(&headers[0], &v.name).ok()).flatten()?;
        headers[1..]
            .iter()
            .any(|h| values(h, &v.name).is_ok_and(|x| x != first))
            .then_some((v.name.as_str(), d.name.as_str()))
    })
}

/// A hint for files whose dimension to concatenate along is defined in a group below
/// the root (`want`, or any unlimited one): nc2zarr concatenates along root dimensions
/// only. Empty when there is none.
fn subgroup_hint(h: &FileHeader, want: Option<&str>) -> String {
    fn walk(g: &header::GroupHeader, path: &str, want: Option<&str>, out: &mut Vec<String>) {
        for c in &g.groups {
            let here = format!("{path}/{}", c.name);
            for d in &c.dims {
                if want.map_or(d.unlimited, |w| d.name == w) {
                    out.push(format!("'{}' in group {here}", d.name));
                }
            }
            walk(c, &here, want, out);
        }
    }
    let mut found = Vec::new();
    walk(&h.root, "", want, &mut found);
    if found.is_empty() {
        return String::new();
    }
    format!(
        " ({} of {}: files concatenate along dimensions of the group read as root; pass --group GROUP to read \
         that group as the dataset, as xarray's open_mfdataset(group=...) does)",
        found.join(", "),
        h.path.display()
    )
}

/// "no unlimited dimension", "unlimited dimensions differ between files", …
fn describe_unlimited(headers: &[FileHeader]) -> String {
    let of = |h: &FileHeader| h.root.dims.iter().filter(|d| d.unlimited).count();
    let shared: Vec<&str> = headers[0]
        .root
        .dims
        .iter()
        .filter(|d| d.unlimited)
        .map(|d| d.name.as_str())
        .collect();
    let same = |h: &FileHeader| {
        h.root
            .dims
            .iter()
            .filter(|d| d.unlimited)
            .map(|d| d.name.as_str())
            .eq(shared.iter().copied())
    };
    if headers.iter().all(|h| of(h) == 0) {
        "the files have no unlimited dimension".into()
    } else if let ([one], true) = (shared.as_slice(), headers.iter().all(same)) {
        match equal_in_every_file(headers, one) && headers.iter().any(|h| h.root.dim(one).is_some_and(|d| d.len > 0)) {
            true => format!("their unlimited dimension '{one}' holds the same values in every file"),
            false => format!("their unlimited dimension '{one}' has no steps in any file"),
        }
    } else {
        "the files do not share one unlimited dimension".into()
    }
}

fn quoted(names: &[&str]) -> String {
    names.iter().map(|n| format!("'{n}'")).collect::<Vec<_>>().join(", ")
}

/// Equal values, NaN equal to NaN.
fn same_values(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
}

/// [`values`] for telling whether files differ: a time axis whose units or calendar
/// cannot be decoded compares by its raw values (the error is reported if that
/// dimension is chosen and its files must be ordered).
pub(crate) fn comparable_values(h: &FileHeader, dim: &str) -> Result<Vec<f64>, InputError> {
    match values(h, dim) {
        Err(InputError::Unsupported(_)) => Ok(h.coord(dim).map(<[f64]>::to_vec).unwrap_or_default()),
        other => other,
    }
}

/// The values of root coordinate `dim` of one file as the file stores them.
fn raw_values(h: &FileHeader, dim: &str) -> Result<Vec<f64>, InputError> {
    let var = h
        .root
        .var(dim)
        .and_then(|v| Some((v.numeric_dtype()?, v.dims.first().map(|d| d.len))));
    let Some((dtype, len)) = var else {
        return Ok(Vec::new());
    };
    read_raw_values(h, dim, dtype, len)
}

fn read_raw_values(h: &FileHeader, dim: &str, dtype: DType, len: Option<u64>) -> Result<Vec<f64>, InputError> {
    let err = |e: crate::nc::NcError| InputError::Read {
        path: h.path.clone(),
        variable: dim.into(),
        region: String::new(),
        message: e.message,
    };
    let file = crate::nc::open_input(&h.path)?;
    header::read_numbers(file.group_at(&h.group).map_err(err)?, dim, dtype, len).map_err(err)
}

/// Values of root coordinate `dim` of one file: time as absolute seconds (so files
/// with different time units compare and sort right), anything else as read.
pub(crate) fn values(h: &FileHeader, dim: &str) -> Result<Vec<f64>, InputError> {
    let var = h.root.var(dim).ok_or_else(|| {
        InputError::inconsistent(format!("{}: no coordinate variable '{dim}'", h.path.display()))
            .files([&h.path])
            .about(dim)
    })?;
    let Some(dtype) = var.numeric_dtype() else {
        return Err(InputError::Unsupported(format!(
            "{}: coordinate '{dim}' is not numeric, so files cannot be ordered by it",
            h.path.display()
        )));
    };
    let mut values = match h.coord(dim) {
        Some(v) => v.to_vec(),
        None => read_raw_values(h, dim, dtype, var.dims.first().map(|d| d.len))?,
    };
    let attrs = var.attrs();
    // A packed coordinate orders by its decoded values.
    let number = |k: &str| attr(&attrs, k).and_then(AttrValue::as_scalar).map(|x| x.as_f64());
    if let (scale, offset) = (number("scale_factor"), number("add_offset"))
        && (scale.is_some() || offset.is_some())
    {
        for v in &mut values {
            *v = *v * scale.unwrap_or(1.0) + offset.unwrap_or(0.0);
        }
    }
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
    Ok(values)
}

/// Why the `dim` values of `h` are not strictly monotonic at positions `i`, `i + 1`
/// (`step` between them; `direction` the sign of the steps before): the values as the
/// file stores them, with its units.
fn not_monotonic(h: &FileHeader, dim: &str, i: usize, step: f64, direction: f64) -> String {
    let raw = h.coord(dim).map(<[f64]>::to_vec).or_else(|| raw_values(h, dim).ok());
    let units = h
        .root
        .var(dim)
        .and_then(|v| {
            attr(&v.attrs(), "units")
                .and_then(AttrValue::as_text)
                .map(str::to_string)
        })
        .map(|u| format!(" {u}"))
        .unwrap_or_default();
    let shown = |k: usize| {
        raw.as_ref()
            .and_then(|v| v.get(k))
            .map_or("?".into(), |x| x.to_string())
    };
    let what = match () {
        _ if step == 0.0 => "repeats a value".to_string(),
        _ if step.is_nan() => "holds a missing (NaN) value".to_string(),
        _ if direction > 0.0 => "goes down after going up".to_string(),
        _ => "goes up after going down".to_string(),
    };
    format!(
        "{}: coordinate '{dim}' is not strictly monotonic: it {what} (positions {i} and {}: {} then {}{units}); \
         files may be given in any order, but each must hold its steps in order",
        h.path.display(),
        i + 1,
        shown(i),
        shown(i + 1),
    )
}

/// Refuses time coordinates whose units differ between files when nc2zarr cannot
/// convert between them (`years since`, `months since`: not fixed lengths, and xarray
/// does not decode them either): their numbers cannot be compared or ordered.
fn refuse_units_that_cannot_be_compared(headers: &[FileHeader], dim: &str) -> Result<(), InputError> {
    let units = |h: &FileHeader| {
        h.root.var(dim).and_then(|v| {
            attr(&v.attrs(), "units")
                .and_then(AttrValue::as_text)
                .map(str::to_string)
        })
    };
    let first = units(&headers[0]);
    for h in &headers[1..] {
        let this = units(h);
        if this == first {
            continue;
        }
        let convertible = |u: &Option<String>| u.as_deref().and_then(TimeUnits::parse).is_some();
        let time = |u: &Option<String>| u.as_deref().is_some_and(|u| u.to_ascii_lowercase().contains(" since "));
        if (time(&first) || time(&this)) && !(convertible(&first) && convertible(&this)) {
            return Err(InputError::inconsistent(format!(
                "coordinate '{dim}' has units {:?} in {} but {:?} in {}, and nc2zarr cannot convert between them \
                 (only time units of fixed length, from microseconds to weeks, are converted); give the files one set of units",
                first.as_deref().unwrap_or("(none)"),
                headers[0].path.display(),
                this.as_deref().unwrap_or("(none)"),
                h.path.display()
            ))
            .files([&headers[0].path, &h.path])
            .about(dim));
        }
    }
    Ok(())
}

/// The root dimensions other than `dim` whose coordinate values differ between files
/// `a` and `b` (a member, level or tile coordinate): the files vary along them too.
fn other_differing_coordinates<'a>(a: &'a FileHeader, b: &FileHeader, dim: &str) -> Vec<&'a str> {
    a.root
        .dims
        .iter()
        .map(|d| d.name.as_str())
        .filter(|d| *d != dim && a.root.has_coordinate(d) && b.root.has_coordinate(d))
        .filter(|d| matches!((values(a, d), values(b, d)), (Ok(x), Ok(y)) if x != y))
        .collect()
}

/// Files in concat order, and a note when there is no coordinate to order them by.
pub(crate) struct FileOrder {
    pub order: Vec<usize>,
    pub note: Option<String>,
}

/// Orders files by their concat coordinate values and checks that the values are
/// strictly monotonic within and across files.
pub(crate) fn order_files(headers: &[FileHeader], dim: &str) -> Result<FileOrder, InputError> {
    // A new dimension is ordered by each file's scalar coordinate of its name.
    if !headers[0].root.has_coordinate(dim) && !headers.iter().all(|h| holds_scalar(h, dim)) {
        return Ok(FileOrder {
            order: (0..headers.len()).collect(),
            note: Some(format!(
                "no coordinate variable '{dim}': files are concatenated in the order given"
            )),
        });
    }
    // Text labels (an ensemble's `member_id = "r1i1p1f1"`) have no order of their own:
    // the files keep the order given, as xarray's nested combine takes them.
    if headers.iter().any(|h| h.root.var(dim).is_some_and(|v| v.is_text())) {
        return Ok(FileOrder {
            order: (0..headers.len()).collect(),
            note: Some(format!(
                "'{dim}' holds text, not numbers: files are concatenated in the order given"
            )),
        });
    }
    refuse_units_that_cannot_be_compared(headers, dim)?;
    let ranges = headers.iter().map(|h| values(h, dim)).collect::<Result<Vec<_>, _>>()?;
    let mut direction = 0.0f64;
    for (h, r) in headers.iter().zip(&ranges) {
        for (i, w) in r.windows(2).enumerate() {
            let step = w[1] - w[0];
            let bad = step == 0.0 || step.is_nan() || (direction != 0.0 && step.signum() != direction);
            if bad {
                return Err(InputError::inconsistent(not_monotonic(h, dim, i, step, direction))
                    .files([&h.path])
                    .about(dim));
            }
            direction = step.signum();
        }
    }
    let direction = if direction == 0.0 { 1.0 } else { direction };
    let mut order: Vec<usize> = (0..headers.len()).collect();
    order.sort_by(|&a, &b| {
        let key = |i: usize| ranges[i].first().copied().unwrap_or(f64::INFINITY) * direction;
        key(a).total_cmp(&key(b))
    });
    let non_empty: Vec<usize> = order.iter().copied().filter(|&i| !ranges[i].is_empty()).collect();
    for w in non_empty.windows(2) {
        let (a, b) = (&ranges[w[0]], &ranges[w[1]]);
        let (last_a, first_b) = (a[a.len() - 1], b[0]);
        if (first_b - last_a) * direction <= 0.0 {
            let (pa, pb) = (headers[w[0]].path.display(), headers[w[1]].path.display());
            let shared = b.iter().filter(|x| a.contains(x)).count();
            let other = other_differing_coordinates(&headers[w[0]], &headers[w[1]], dim);
            let message = if shared == a.len() && shared == b.len() && !other.is_empty() {
                format!(
                    "{pa} and {pb} hold the same '{dim}' steps but differ in {}: the files vary along more than one \
                     dimension, and nc2zarr concatenates along one. Convert each value of {} separately, or along it \
                     (--concat-dim) with one '{dim}' range per run",
                    quoted(&other),
                    quoted(&other)
                )
            } else if shared == a.len() && shared == b.len() {
                format!(
                    "duplicate '{dim}' values: {pa} and {pb} hold the same steps, and along '{dim}' each step comes \
                     from one file. If one is a copy of the other, remove it; if they hold other data for the same \
                     steps (orbits, tiles, members), convert them separately"
                )
            } else if shared > 0 {
                format!(
                    "duplicate '{dim}' values: {pa} and {pb} share {shared} step(s) (of {} and {}); each step must \
                     come from one file: remove the shared steps from one of them (e.g. `ncks -d {dim},{shared},` \
                     drops the first {shared} of {pb})",
                    a.len(),
                    b.len()
                )
            } else {
                format!("overlapping '{dim}' values: {pb} starts before {pa} ends; remove the overlap from one of them")
            };
            return Err(InputError::inconsistent(message)
                .files([&headers[w[0]].path, &headers[w[1]].path])
                .about(dim));
        }
    }
    Ok(FileOrder { order, note: None })
}
