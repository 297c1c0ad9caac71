//! Variables without the concat dimension whose time units differ between files, such
//! as a forecast reference time counted from each file's own cycle
//! (`reftime = 0 "hours since 2022-05-01T06:00"`): xarray decodes them before it
//! compares them, so they compare, and are stored, as instants.

use crate::cftime::{Calendar, TimeUnits};
use crate::error::InputError;
use crate::model::{AttrValue, DType, Scalar, VarInfo, attr, names_as_bounds};
use crate::packing::CODING_ATTRS;

use super::group_at;
use super::header::{FileHeader, GroupHeader, VarHeader, read_all_raw};

/// Values read to compare a variable as instants, at most.
const VALUES_LIMIT: u64 = 1 << 20;

/// How the files holding a variable without the concat dimension encode its times.
#[derive(Debug)]
pub(super) enum StaticTimes {
    /// Units that mean the same in every file: the values compare as stored.
    SameUnits,
    /// Other units, not all time units: equal values are kept, others refused.
    OtherUnits,
    /// Other units, the same instants in every file: the first file's values are kept.
    SameInstants,
    /// Other instants: how each file's values are re-encoded.
    Differ(Retimed),
}

/// Times re-encoded into one set of units.
#[derive(Debug, Clone)]
pub(super) struct Retimed {
    /// Each file's `(scale, offset)` into `units`.
    pub fixes: Vec<(f64, f64)>,
    /// The first file's units.
    pub units: String,
}

/// Compares variable `v` (of group `parts`) in the files
/// `holding` (indices into `headers`), whose units or calendars may differ.
pub(super) fn compare(
    headers: &[FileHeader],
    parts: &[String],
    v: &VarInfo,
    full: &str,
    holding: &[usize],
) -> Result<StaticTimes, InputError> {
    let encodings: Vec<[Option<String>; 2]> = holding
        .iter()
        .map(|&i| group_at(&headers[i].root, parts).map_or([None, None], |g| encoding_of(g, &v.name)))
        .collect();
    let odd = first_differing(&encodings);
    let (first, other) = (&headers[holding[0]], &headers[holding[odd]]);
    let refuse = |why: String| {
        InputError::inconsistent(format!(
            "variable '{full}' does not depend on the concat dimension but its units differ between {} and {} \
             ({}, {}); {why}",
            first.path.display(),
            other.path.display(),
            shown(&encodings[0]),
            shown(&encodings[odd]),
        ))
        .files([&first.path, &other.path])
        .about(full)
    };
    let fixes = match re_encoding(&encodings).map_err(refuse)? {
        ReEncoding::Alike => return Ok(StaticTimes::SameUnits),
        ReEncoding::NotTimes => return Ok(StaticTimes::OtherUnits),
        ReEncoding::Fixes(fixes) => fixes,
    };
    let numeric = v.dtype.is_float() || v.dtype.is_integer();
    if !numeric || v.len() > VALUES_LIMIT || v.attrs.iter().any(|(k, _)| CODING_ATTRS.contains(&k.as_str())) {
        return Err(refuse(
            "nc2zarr re-encodes only plain numbers of up to a million values, not packed or with fill values".into(),
        ));
    }
    let values: Vec<Vec<f64>> = holding
        .iter()
        .zip(&fixes)
        .map(|(&i, &(scale, offset))| {
            let raw = read_all(&headers[i], parts, &v.name)?;
            Ok(raw.iter().map(|x| x * scale + offset).collect())
        })
        .collect::<Result<_, InputError>>()?;
    // Equal after re-encoding, up to its rounding error (never seconds apart), or both
    // missing (NaN), as xarray's comparison treats them.
    let close = |a: f64, b: f64| {
        (a.is_nan() && b.is_nan()) || (a - b).abs() <= 8.0 * f64::EPSILON * a.abs().max(b.abs()).max(1.0)
    };
    let same = values
        .iter()
        .all(|x| x.len() == values[0].len() && x.iter().zip(&values[0]).all(|(a, b)| close(*a, *b)));
    Ok(if same {
        StaticTimes::SameInstants
    } else {
        StaticTimes::Differ(Retimed {
            fixes,
            units: encodings[0][0].clone().unwrap_or_default(),
        })
    })
}

/// The `[units, calendar]` of variable `name` of group `g`; bounds without their own
/// take those of the variable they bound, as CF says and xarray decodes them.
pub(super) fn encoding_of(g: &GroupHeader, name: &str) -> [Option<String>; 2] {
    let text = |v: &VarHeader, k: &str| attr(&v.attrs(), k).and_then(AttrValue::as_text).map(str::to_string);
    let parent = g.vars.iter().find(|p| names_as_bounds(&p.attrs(), name));
    let own = g.var(name);
    ["units", "calendar"].map(|k| own.and_then(|v| text(v, k)).or_else(|| parent.and_then(|p| text(p, k))))
}

/// The first of `encodings` (`[units, calendar]` per file) that means other than the
/// first one (not only spelt otherwise), else the first spelt otherwise, else 0.
pub(super) fn first_differing(encodings: &[[Option<String>; 2]]) -> usize {
    let parse = |e: &[Option<String>; 2]| {
        let units = e[0].as_deref().and_then(TimeUnits::parse);
        (units, Calendar::parse(e[1].as_deref()).ok())
    };
    let means_same = |e: &[Option<String>; 2]| parse(e).0.is_some() && parse(e) == parse(&encodings[0]);
    let spelt_otherwise = |e: &[Option<String>; 2]| *e != encodings[0];
    encodings
        .iter()
        .position(|e| spelt_otherwise(e) && !means_same(e))
        .or_else(|| encodings.iter().position(spelt_otherwise))
        .unwrap_or(0)
}

/// `[units, calendar]` for messages: `"days since 2000-01-01" (calendar 360_day)`.
pub(super) fn shown(e: &[Option<String>; 2]) -> String {
    let units = format!("{:?}", e[0].as_deref().unwrap_or("none"));
    match &e[1] {
        Some(c) => format!("{units} (calendar {c})"),
        None => units,
    }
}

/// How the values of files with these units (`[units, calendar]` per file) are brought
/// into the first file's units.
pub(super) enum ReEncoding {
    /// Every file's units mean the same.
    Alike,
    /// Other units, not all time units: the values cannot be brought together.
    NotTimes,
    /// Each file's `(scale, offset)` into the first file's units.
    Fixes(Vec<(f64, f64)>),
}

/// [`ReEncoding`] of files with these units; refused (why) when calendars disagree.
pub(super) fn re_encoding(encodings: &[[Option<String>; 2]]) -> Result<ReEncoding, String> {
    let parse = |e: &[Option<String>; 2]| {
        let units = e[0].as_deref().and_then(TimeUnits::parse);
        (units, Calendar::parse(e[1].as_deref()).ok())
    };
    if encodings.iter().all(|e| *e == encodings[0]) {
        return Ok(ReEncoding::Alike);
    }
    let (Some(target), Some(calendar)) = parse(&encodings[0]) else {
        return Ok(ReEncoding::NotTimes);
    };
    let mut fixes = Vec::new();
    for e in encodings {
        let (Some(units), Some(cal)) = parse(e) else {
            return Ok(ReEncoding::NotTimes);
        };
        if !cal.agrees_with(calendar, &units) || !cal.agrees_with(calendar, &target) {
            return Err("and so do their calendars, so the same numbers are other dates".into());
        }
        fixes.push(units.transform_to(&target, calendar)?);
    }
    Ok(match fixes.iter().all(|&f| f == (1.0, 0.0)) {
        true => ReEncoding::Alike,
        false => ReEncoding::Fixes(fixes),
    })
}

/// All values of variable `name` of group `parts` in the file of `header`, as `f64`.
fn read_all(header: &FileHeader, parts: &[String], name: &str) -> Result<Vec<f64>, InputError> {
    let (bytes, dtype) = read_all_raw(header, parts, name)?;
    let size = dtype.size().unwrap_or(1);
    Ok(bytes
        .chunks_exact(size)
        .map(|b| Scalar::from_ne_bytes(dtype, b).as_f64())
        .collect())
}

/// The type a variable of type `dtype` re-encoded with `fixes` is stored as: float64
/// unless every value stays a whole number in an integer type wide enough.
pub(super) fn stored_type(dtype: DType, fixes: &[(f64, f64)]) -> DType {
    let whole = fixes.iter().all(|&(s, o)| s.fract() == 0.0 && o.fract() == 0.0);
    if dtype.is_integer() && whole {
        DType::I64
    } else {
        DType::F64
    }
}

/// The narrowest of `floor`, int32 and int64 (not narrower than `floor`) that holds the
/// values of type `raw` re-encoded with each file's `fixes`: each file's `values` where
/// known, else all its type can hold.
pub(super) fn fitting_integer(floor: DType, raw: DType, fixes: &[(f64, f64)], values: &[Option<&[f64]>]) -> DType {
    let (type_lo, type_hi) = integer_range(raw);
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (i, &(scale, offset)) in fixes.iter().enumerate() {
        let (a, b) = match values.get(i).copied().flatten() {
            Some(v) if !v.is_empty() => v
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &x| (l.min(x), h.max(x))),
            _ => (type_lo, type_hi),
        };
        for x in [a * scale + offset, b * scale + offset] {
            lo = lo.min(x);
            hi = hi.max(x);
        }
    }
    let fits = |t: DType| {
        let (l, h) = integer_range(t);
        lo >= l && hi <= h
    };
    [floor, DType::I32, DType::I64]
        .into_iter()
        .filter(|t| t.size() >= floor.size())
        .find(|&t| fits(t))
        .unwrap_or(DType::I64)
}

/// The smallest and largest values of integer type `t`.
fn integer_range(t: DType) -> (f64, f64) {
    match t {
        DType::I8 => (i8::MIN as f64, i8::MAX as f64),
        DType::U8 => (0.0, u8::MAX as f64),
        DType::I16 => (i16::MIN as f64, i16::MAX as f64),
        DType::U16 => (0.0, u16::MAX as f64),
        DType::I32 => (i32::MIN as f64, i32::MAX as f64),
        DType::U32 => (0.0, u32::MAX as f64),
        DType::U64 => (0.0, u64::MAX as f64),
        _ => (i64::MIN as f64, i64::MAX as f64),
    }
}
