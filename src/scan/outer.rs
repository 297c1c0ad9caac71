//! Sets of files that cover different steps of the concat axis, merged as
//! `xarray.open_mfdataset` merges them by default (an outer join): the merged axis is the
//! union of the sets' coordinate values, a variable is read from the files that hold
//! each step, and the steps none of its files hold are filled — NaN for floating-point
//! variables, the `_FillValue` (or `missing_value`) of integer ones.

use std::collections::HashMap;

use crate::cftime::{Calendar, TimeUnits};
use crate::error::InputError;
use crate::model::{AttrValue, DType, GroupInfo, Inventory, Scalar, SourceFile, VarInfo, attr};
use crate::nc::VarType;

use super::concat;
use super::header::{self, FileHeader, VarHeader};

/// Where the sets' files land on the merged axis.
pub(super) struct Alignment {
    /// Steps of the merged axis.
    pub len: u64,
    /// Per set, per file (in the set's order): its first step on the merged axis.
    pub starts: Vec<Vec<u64>>,
}

/// Aligns the sets (each a dataset and its headers in concat order) on the union of their
/// `dim` coordinate values. `None` when every set covers the same steps; an error when
/// the steps cannot be aligned: a set without coordinate values and another extent, or
/// a file whose steps are not consecutive on the merged axis.
pub(super) fn align(
    parts: &[(Inventory, Vec<FileHeader>)],
    dim: &str,
    describe: &dyn Fn(usize) -> String,
) -> Result<Option<Alignment>, InputError> {
    // Per aligned set: the values of each of its files (`None` without a coordinate).
    let mut sets: Vec<(usize, Option<Vec<Vec<f64>>>)> = Vec::new();
    for (s, (inv, headers)) in parts.iter().enumerate() {
        if inv.concat_dim.is_none() {
            continue;
        }
        let values = if headers
            .iter()
            .all(|h| h.root.has_coordinate(dim) || concat::holds_scalar(h, dim))
        {
            let per_file = headers.iter().map(|h| concat::comparable_values(h, dim));
            Some(per_file.collect::<Result<Vec<_>, _>>()?)
        } else {
            None
        };
        sets.push((s, values));
    }
    let Some((first, first_values)) = sets.first() else {
        return Ok(None);
    };
    let extent = |s: usize| parts[s].0.concat_extent();
    let flat = |v: &Option<Vec<Vec<f64>>>| v.as_ref().map(|v| v.concat());
    if sets.iter().any(|(_, v)| v.is_none()) {
        // Without values in every set, sets are matched step by step: same length, and
        // the same values where there are any.
        let valued: Vec<Vec<f64>> = sets.iter().filter_map(|(_, v)| flat(v)).collect();
        let other = sets.iter().find(|(s, v)| {
            extent(*s) != extent(*first) || flat(v).is_some_and(|v| valued.first().is_some_and(|w| *w != v))
        });
        let Some((s, _)) = other else {
            let members: Vec<usize> = sets.iter().map(|(s, _)| *s).collect();
            check_step_labels(parts, &members, dim, describe)?;
            return Ok(None);
        };
        return Err(InputError::inconsistent(format!(
            "the inputs split their variables between files, and the sets cover different '{dim}' steps: \
             {} has {} but {} has {}, and without '{dim}' values in every file they cannot be aligned; \
             give files that cover the same range, or convert each set to its own store",
            describe(*first),
            steps(extent(*first)),
            describe(*s),
            steps(extent(*s))
        )));
    }
    if sets.iter().all(|(_, v)| flat(v) == flat(first_values)) {
        return Ok(None);
    }
    // The direction of the first set with two or more steps.
    let descending = sets
        .iter()
        .filter_map(|(_, v)| flat(v))
        .find(|v| v.len() > 1)
        .is_some_and(|v| v[0] > v[v.len() - 1]);
    let mut union: Vec<f64> = sets.iter().filter_map(|(_, v)| flat(v)).flatten().collect();
    union.sort_by(|a, b| if descending { b.total_cmp(a) } else { a.total_cmp(b) });
    union.dedup();
    let position: HashMap<u64, usize> = union.iter().enumerate().map(|(i, u)| (u.to_bits(), i)).collect();
    let mut starts = vec![Vec::new(); parts.len()];
    for (s, values) in &sets {
        for (k, file_values) in values.iter().flatten().enumerate() {
            let consecutive = file_values
                .first()
                .and_then(|x| position.get(&x.to_bits()).copied())
                .filter(|&p| {
                    union
                        .get(p..p + file_values.len())
                        .is_some_and(|u| u == file_values.as_slice())
                });
            let Some(p) = consecutive.or(file_values.is_empty().then_some(0)) else {
                return Err(InputError::inconsistent(format!(
                    "the inputs split their variables between files, and the '{dim}' steps of {} (of {}) \
                     interleave with those of another set: nc2zarr fills the steps a set lacks, as \
                     xarray.open_mfdataset does, only when each file's steps stay consecutive; convert each set \
                     to its own store",
                    parts[*s].1[k].path.display(),
                    describe(*s),
                ))
                .files([&parts[*s].1[k].path]));
            };
            starts[*s].push(p as u64);
        }
    }
    Ok(Some(Alignment {
        len: union.len() as u64,
        starts,
    }))
}

/// Sets matched step by step (without `dim` values in every file) must agree on what
/// each step is wherever they say it: the variables along `dim` that every set holds and
/// that label its steps (a 1-D number such as WRF's `XTIME`, decoded when in time
/// units, or one string per step such as `Times`). Sets that cover other steps are
/// refused, not paired by position.
fn check_step_labels(
    parts: &[(Inventory, Vec<FileHeader>)],
    sets: &[usize],
    dim: &str,
    describe: &dyn Fn(usize) -> String,
) -> Result<(), InputError> {
    let Some((&first, rest)) = sets.split_first() else {
        return Ok(());
    };
    let is_label = |v: &VarHeader| {
        v.dims.first().is_some_and(|d| d.name == dim)
            && match v.dims.len() {
                1 => v.is_plain_number(),
                2 => matches!(v.vartype, VarType::Supported { dtype: DType::Char, .. }),
                _ => false,
            }
    };
    let held_everywhere = |name: &str| {
        sets.iter()
            .all(|&s| parts[s].1.iter().all(|h| h.root.var(name).is_some_and(is_label)))
    };
    let Some(first_header) = parts[first].1.first() else {
        return Ok(());
    };
    for v in first_header.root.vars.iter().filter(|v| held_everywhere(&v.name)) {
        let expected = step_labels(&parts[first].1, &v.name)?;
        for &s in rest {
            let labels = step_labels(&parts[s].1, &v.name)?;
            let Some(k) = (0..expected.len().max(labels.len())).find(|&k| expected.get(k) != labels.get(k)) else {
                continue;
            };
            let shown = |l: &[String]| l.get(k).map_or_else(|| "nothing".to_string(), |x| format!("{x:?}"));
            return Err(InputError::inconsistent(format!(
                "the inputs split their variables between files and have no '{dim}' coordinate, so the sets are \
                 matched step by step, but '{}' says step {k} is {} in {} and {} in {}: the sets cover other \
                 steps; give files that cover the same steps, or convert each set to its own store",
                v.name,
                shown(&expected),
                describe(first),
                shown(&labels),
                describe(s),
            ))
            .files([&parts[first].1[0].path, &parts[s].1[0].path])
            .about(&v.name));
        }
    }
    Ok(())
}

/// What the files of a set (in concat order) say each step is, from variable `name`: a
/// string per step of a char array, or a number (as an instant when in time units).
fn step_labels(headers: &[FileHeader], name: &str) -> Result<Vec<String>, InputError> {
    let mut out = Vec::new();
    for h in headers {
        let Some(v) = h.root.var(name) else { continue };
        let (bytes, dtype) = header::read_all_raw(h, &[], name)?;
        if dtype == DType::Char {
            let width = v.dims.last().map_or(1, |d| d.len.max(1)) as usize;
            out.extend(
                bytes
                    .chunks(width)
                    .map(|row| String::from_utf8_lossy(row).trim_end_matches(['\0', ' ']).to_string()),
            );
            continue;
        }
        let attrs = v.attrs();
        let text = |k: &str| attr(&attrs, k).and_then(AttrValue::as_text);
        let units = text("units").and_then(TimeUnits::parse);
        let calendar = Calendar::parse(text("calendar")).ok();
        let size = dtype.size().unwrap_or(1);
        for b in bytes.chunks_exact(size) {
            let x = Scalar::from_ne_bytes(dtype, b).as_f64();
            let x = match (&units, calendar) {
                (Some(u), Some(c)) => u.absolute_seconds(x, c).unwrap_or(x),
                _ => x,
            };
            out.push(x.to_string());
        }
    }
    Ok(out)
}

/// `1 step`, `5 steps`.
fn steps(n: u64) -> String {
    format!("{n} step{}", if n == 1 { "" } else { "s" })
}

/// Places the files of a set at their steps of the merged axis and stretches its
/// concat dimension and variables to `len` steps.
pub(super) fn place(inv: &mut Inventory, starts: &[u64], len: u64) {
    for (f, &start) in inv.files.iter_mut().zip(starts) {
        f.concat_start = start;
    }
    let Some(dim) = inv.concat_dim.clone() else { return };
    fn stretch(g: &mut GroupInfo, dim: &str, len: u64) {
        for d in g.dims.iter_mut().filter(|d| d.concat && d.name == dim) {
            d.len = len;
        }
        for v in &mut g.vars {
            if let Some(axis) = v.concat_axis {
                v.shape[axis] = len;
            }
        }
        for c in &mut g.groups {
            stretch(c, dim, len);
        }
    }
    stretch(&mut inv.root, &dim, len);
}

/// The union of `intervals` (`[start, end)`), as sorted disjoint intervals.
fn union_of(intervals: &[(u64, u64)]) -> Vec<(u64, u64)> {
    let mut sorted = intervals.to_vec();
    sorted.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for (lo, hi) in sorted {
        match out.last_mut() {
            Some(last) if lo <= last.1 => last.1 = last.1.max(hi),
            _ => out.push((lo, hi)),
        }
    }
    out
}

/// How many steps of `[a, b)` `intervals` cover.
fn covered_steps(intervals: &[(u64, u64)], a: u64, b: u64) -> u64 {
    union_of(intervals)
        .iter()
        .map(|&(lo, hi)| hi.min(b).saturating_sub(lo.max(a)))
        .sum()
}

/// True when `intervals` leave some step of `[a, b)` uncovered.
fn leaves_gaps(intervals: &[(u64, u64)], a: u64, b: u64) -> bool {
    covered_steps(intervals, a, b) < b.saturating_sub(a)
}

/// The steps `[start, end)` each of `indices` covers.
fn spans(indices: &[usize], files: &[SourceFile]) -> Vec<(u64, u64)> {
    indices
        .iter()
        .map(|&i| (files[i].concat_start, files[i].concat_start + files[i].concat_len))
        .collect()
}

/// A variable `into` that a later set (`from`) holds too: adds the files of `from` that
/// hold steps the files of `into` lack (where both hold a step, the later file's value
/// is read; they are not compared). `same_encoding` says whether both sets store the
/// variable alike (type, string length, packing, fill values, time units of it or its parent
/// coordinate): a later set's files are read under the first set's attributes, so
/// they must. `what` names the variable in errors.
pub(super) fn cover(
    into: &mut VarInfo,
    from: &VarInfo,
    files: &[SourceFile],
    same_encoding: bool,
    what: &str,
) -> Result<(), InputError> {
    let (Some(mine), Some(theirs), Some(_)) = (&into.files, &from.files, into.concat_axis) else {
        return Ok(());
    };
    let covered = spans(mine, files);
    let extra: Vec<usize> = theirs
        .iter()
        .copied()
        .filter(|&i| {
            let f = &files[i];
            leaves_gaps(&covered, f.concat_start, f.concat_start + f.concat_len)
        })
        .collect();
    if extra.is_empty() {
        return Ok(());
    }
    let refuse = |why: &str| {
        InputError::inconsistent(format!(
            "{what} is held by sets of files that cover different steps, {why}; convert each set to its own store"
        ))
    };
    let per_file = |v: &VarInfo| v.unpack.is_some() || v.file_dtypes.is_some() || v.string_lens.is_some();
    if per_file(into) || per_file(from) {
        return Err(refuse("and is packed, typed or sized differently within them"));
    }
    if !same_encoding {
        return Err(refuse(
            "and stored differently in each (type, string length, scale_factor/add_offset, fill value, or time \
             units)",
        ));
    }
    let identity = |n: usize| vec![(1.0, 0.0); n];
    let fixes = into.time_fix.is_some() || from.time_fix.is_some();
    let my_fix = into.time_fix.clone().unwrap_or_else(|| identity(mine.len()));
    let their_fix = from.time_fix.clone().unwrap_or_else(|| identity(theirs.len()));
    let mut merged: Vec<(usize, (f64, f64))> = mine.iter().copied().zip(my_fix).collect();
    merged.extend(theirs.iter().copied().zip(their_fix).filter(|(i, _)| extra.contains(i)));
    merged.sort_by_key(|&(i, _)| i);
    into.files = Some(merged.iter().map(|&(i, _)| i).collect());
    if fixes {
        into.time_fix = Some(merged.into_iter().map(|(_, f)| f).collect());
    }
    Ok(())
}

/// Gives every variable whose files leave steps of the merged axis uncovered the value
/// those steps hold (see the module), with a note; refuses a variable that has none.
pub(super) fn fill_gaps(inv: &mut Inventory) -> Result<(), InputError> {
    let dim = inv.concat_dim.clone().unwrap_or_default();
    let files = inv.files.clone();
    let mut notes = Vec::new();
    fn walk(g: &mut GroupInfo, dim: &str, files: &[SourceFile], notes: &mut Vec<String>) -> Result<(), InputError> {
        let path = g.path.clone();
        for v in &mut g.vars {
            let (Some(indices), Some(axis), None) = (&v.files, v.concat_axis, &v.unsupported) else {
                continue;
            };
            let len = v.shape[axis];
            let held = covered_steps(&spans(indices, files), 0, len);
            if held >= len {
                continue;
            }
            let name = if path.is_empty() {
                v.name.clone()
            } else {
                format!("{path}/{}", v.name)
            };
            let absent = format!("'{name}' is absent from {} of {len} '{dim}' steps", len - held);
            let (fill, shown) = gap_value(v).ok_or_else(|| {
                let why = if v.dtype.is_integer() {
                    format!(
                        "as {} has no _FillValue or missing_value to mark them (xarray would turn it into floats)",
                        v.dtype.cdl_name()
                    )
                } else {
                    format!("and {} values have no missing value to mark them", v.dtype.cdl_name())
                };
                InputError::inconsistent(format!(
                    "{absent} (its files do not cover them), {why}; give files that cover the same range, \
                     or convert each set to its own store"
                ))
            })?;
            v.gap_fill = Some(fill);
            notes.push(format!(
                "{absent}: they hold {shown}, as xarray.open_mfdataset fills the steps a variable's files lack"
            ));
        }
        for c in &mut g.groups {
            walk(c, dim, files, notes)?;
        }
        Ok(())
    }
    walk(&mut inv.root, &dim, &files, &mut notes)?;
    inv.notes.extend(notes);
    Ok(())
}

/// What the steps a variable's files lack hold, and how to say it: NaN for floats, the
/// `_FillValue` (else `missing_value`) of integers; `None` for others.
fn gap_value(v: &VarInfo) -> Option<(Scalar, String)> {
    if v.dtype.is_float() {
        return Some((Scalar::F(f64::NAN), "NaN".into()));
    }
    if !v.dtype.is_integer() {
        return None;
    }
    ["_FillValue", "missing_value"].iter().find_map(|k| {
        let value = attr(&v.attrs, k).and_then(AttrValue::as_scalar)?;
        Some((value, format!("its {k} {}", value.to_json().to_compact())))
    })
}

#[cfg(test)]
mod tests {
    use super::{covered_steps, leaves_gaps};

    #[test]
    fn gaps_are_found_between_and_after_intervals() {
        assert!(!leaves_gaps(&[(3, 5), (0, 3)], 0, 5));
        assert!(leaves_gaps(&[(0, 2), (3, 5)], 0, 5));
        assert!(leaves_gaps(&[(0, 3)], 0, 5));
        assert!(leaves_gaps(&[(1, 5)], 0, 5));
        assert!(!leaves_gaps(&[(0, 4), (2, 6)], 1, 6));
        assert!(!leaves_gaps(&[], 2, 2));
    }

    #[test]
    fn overlapping_intervals_count_each_step_once() {
        assert_eq!(covered_steps(&[(0, 3), (2, 5), (1, 4)], 0, 6), 5);
        assert_eq!(covered_steps(&[(0, 3), (4, 9)], 2, 6), 3);
    }
}
