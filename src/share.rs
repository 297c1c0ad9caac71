//! A split run's shares: which work units each task writes, and which `prepare` writes
//! itself, and the writing of one share with its journal, session and record.
//!
//! [`plan::split`] gives task I the I-th of N contiguous runs of every array's read
//! blocks, so a task reads only the files of its stretch of the concat dimension. The
//! small arrays whose blocks span more files than a task's share, or that lie along no
//! concat dimension, are written by `prepare` as one more task (numbered N), since it has
//! every input at hand. Everything here follows from the saved job alone, so `prepare`,
//! each task and `commit` find the same shares.

use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::job::{FORK_SESSION_KEY, TASKS_PREFIX};
use crate::manifest::ArrayEntry;
use crate::model::Inventory;
use crate::plan::{self, WorkUnit};
use crate::store::Target;
use crate::write::{self, ConvertOptions, Prepared, TaskShare};

/// What a finished task leaves in the target.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct TaskDone {
    pub(crate) index: usize,
    pub(crate) arrays: BTreeMap<String, ArrayEntry>,
    pub(crate) objects: u64,
    pub(crate) bytes_out: u64,
    /// The hashes of all the bytes of the inputs this task hashed, by index in
    /// `inv.files` (each task hashes its share of the local inputs).
    #[serde(default)]
    pub(crate) content: BTreeMap<usize, String>,
}

pub(crate) fn done_key(index: usize) -> String {
    format!("{TASKS_PREFIX}/{index:05}/done.json")
}

pub(crate) fn journal_prefix(index: usize) -> String {
    format!("{TASKS_PREFIX}/{index:05}/journal")
}

/// Where task `index` saves its session (its fork, with the chunks it wrote).
pub(crate) fn session_key(index: usize) -> String {
    format!("{TASKS_PREFIX}/{index:05}/session.bin")
}

/// Arrays up to this size (uncompressed) whose units read more files than one task's
/// share, or lie along no concat dimension, are written by `prepare`, not by a task (see
/// [`spanning`]).
const SPANNING_ARRAY_BYTES: u64 = 64 << 20;

/// A work unit as the engine knows it: (job, block index), or (job, `None`) for a
/// two-pass array.
pub(crate) type UnitKey = (usize, Option<usize>);

/// Which of `units` `prepare` writes itself: those of small arrays (up to
/// [`SPANNING_ARRAY_BYTES`]) that read more input files than one task's share, as a
/// concat coordinate, its bounds or per-file scalars stacked along it do, and those along
/// no concat dimension (read from the first file). Given to a task, such a unit would make
/// it open, and for remote inputs download, nearly every file or one outside its stretch
/// of the concat dimension; `prepare` has them all at hand. Deterministic, so tasks and
/// `commit` find the same.
pub(crate) fn spanning(inv: &Inventory, prepared: &Prepared, units: &[WorkUnit], tasks: usize) -> Vec<bool> {
    let share = inv.files.len().div_ceil(tasks.max(1)).max(1);
    let groups = inv.root.walk();
    units
        .iter()
        .map(|u| {
            let array = &prepared.jobs[u.array];
            let var = &groups[array.group].vars[array.var];
            var.nbytes() <= SPANNING_ARRAY_BYTES
                && (var.concat_axis.is_none() || files_read(inv, var, u.block.as_ref()).len() > share)
        })
        .collect()
}

/// The units of a split run the tasks share (those `prepare` does not write), with
/// their keys.
pub(crate) fn task_units(inv: &Inventory, prepared: &Prepared, tasks: usize) -> (Vec<UnitKey>, Vec<WorkUnit>) {
    let (keys, units) = live_units(prepared);
    let by_prepare = spanning(inv, prepared, &units, tasks);
    keys.into_iter()
        .zip(units)
        .zip(by_prepare)
        .filter(|(_, p)| !p)
        .map(|(ku, _)| ku)
        .unzip()
}

/// Uncompressed bytes and objects of each task of a split of `prepared` over `tasks`,
/// and last those `prepare` writes itself (see [`spanning`]).
pub fn task_totals(inv: &Inventory, prepared: &Prepared, tasks: usize) -> Vec<(u64, u64)> {
    let (_, units) = live_units(prepared);
    let by_prepare = spanning(inv, prepared, &units, tasks);
    let (own, shared): (Vec<_>, Vec<_>) = units.into_iter().zip(by_prepare).partition(|(_, p)| *p);
    let shared: Vec<WorkUnit> = shared.into_iter().map(|(u, _)| u).collect();
    let mut totals = plan::task_totals(&shared, tasks);
    totals.push(own.iter().fold((0, 0), |(b, o), (u, _)| (b + u.bytes, o + u.objects)));
    totals
}

/// Writes the units `prepare` takes (see [`spanning`]) of the split of `prepared` (planned
/// from the job saved in `store`) over `tasks` tasks, as one more task numbered `tasks`,
/// whose record `commit` requires; the inputs must be at hand (remote ones staged).
/// Returns a note naming the arrays written.
pub(crate) fn write_spanning(
    store: &Target,
    inv: &Inventory,
    prepared: &Prepared,
    opts: &ConvertOptions,
    tasks: usize,
) -> Result<Option<String>> {
    let (keys, units) = live_units(prepared);
    let by_prepare = spanning(inv, prepared, &units, tasks);
    let mut owned = HashSet::new();
    let mut total_bytes = 0;
    let mut arrays = std::collections::BTreeSet::new();
    for ((key, u), _) in keys.iter().zip(&units).zip(&by_prepare).filter(|(_, p)| **p) {
        owned.insert(*key);
        total_bytes += u.bytes;
        arrays.insert(prepared.jobs[u.array].path.clone());
    }
    if owned.is_empty() {
        return Ok(None);
    }
    write_share(store, inv, prepared, opts, (tasks, &[]), owned, total_bytes)?;
    let names: Vec<String> = arrays.into_iter().collect();
    Ok(Some(format!(
        "prepare wrote the small arrays that span the files or lie along no concat dimension ({}), so each \
         task reads only the files of its stretch",
        names.join(", ")
    )))
}

/// The work units of a run that write something, each with the key the engine knows it
/// by: (job, block index) or (job, `None`) for a two-pass array. An append's blocks
/// wholly inside the existing data are left out.
pub(crate) fn live_units(prepared: &Prepared) -> (Vec<UnitKey>, Vec<WorkUnit>) {
    let mut next_block = vec![0usize; prepared.jobs.len()];
    let (mut keys, mut units) = (Vec::new(), Vec::new());
    for u in plan::work_units(&prepared.plan) {
        let key = match &u.block {
            Some(_) => {
                next_block[u.array] += 1;
                (u.array, Some(next_block[u.array] - 1))
            }
            None => (u.array, None),
        };
        let before_append = match (&u.block, prepared.jobs[u.array].append) {
            (Some(b), Some(a)) => b.start[a.axis] + b.count[a.axis] <= a.from,
            _ => false,
        };
        if !before_append {
            keys.push(key);
            units.push(u);
        }
    }
    (keys, units)
}

/// Writes the units `owned` of a split run as task `index`: into its own session on an
/// Icechunk target, journaled under its own prefix, then records what it wrote for
/// `commit`, with the hashes of the inputs `hashed` (indices in `inv.files`), taken
/// beside the writing. Returns the objects written, those resumed, and the bytes written.
pub(crate) fn write_share(
    store: &Target,
    inv: &Inventory,
    prepared: &Prepared,
    opts: &ConvertOptions,
    (index, hashed): (usize, &[usize]),
    owned: HashSet<UnitKey>,
    total_bytes: u64,
) -> Result<(u64, u64, u64)> {
    let share = TaskShare {
        owned,
        journal_prefix: journal_prefix(index),
    };
    // On an Icechunk target the task writes into its own copy of the run's fork, saved
    // before each journal segment: resumed, its journal holds; else it starts again.
    let store = store.with_session_key(&session_key(index));
    if store.is_transactional() {
        store.adopt_session(FORK_SESSION_KEY)?;
        if !store.resume_session()? {
            crate::journal::clear(&store, &share.journal_prefix)?;
        }
    }
    let (done, segments) = crate::journal::load_at(&store, &share.journal_prefix)?;
    let groups = inv.root.walk();
    let (collected, content) = std::thread::scope(|scope| {
        let hashing = scope.spawn(|| {
            hashed
                .iter()
                .map(|&i| {
                    let path = &inv.files[i].path;
                    crate::manifest::content_hash(path)
                        .map(|h| (i, h))
                        .map_err(|e| crate::error::InputError::Io {
                            path: path.clone(),
                            message: e.to_string(),
                        })
                })
                .collect::<std::result::Result<BTreeMap<usize, String>, _>>()
        });
        let collected = write::run_engine(
            inv,
            &groups,
            prepared,
            &store,
            opts,
            done,
            segments,
            total_bytes,
            Some(&share),
        );
        (collected, hashing.join().expect("hashing thread"))
    });
    let collected = collected?;
    let content = content?;
    if crate::settings::failpoint_is(&format!("task-{index}")) {
        return Err(Error::Internal(format!("failpoint task-{index}")));
    }
    store.checkpoint()?; // the task's session, with all it wrote, for the commit
    let mut arrays = BTreeMap::new();
    for (job, mut entry) in prepared.jobs.iter().zip(collected.arrays) {
        if entry.objects.is_empty() && entry.empty.is_empty() {
            continue;
        }
        entry.empty.sort();
        arrays.insert(job.path.clone(), entry);
    }
    let record = TaskDone {
        index,
        arrays,
        objects: collected.objects,
        bytes_out: collected.bytes_out,
        content,
    };
    let text = serde_json::to_vec(&record).map_err(|e| Error::Internal(format!("recording task {index}: {e}")))?;
    store.put(&done_key(index), Bytes::from(text))?;
    Ok((collected.objects, collected.resumed, collected.bytes_out))
}

/// Indices of the files (in `inv.files`) a unit of `var` reads: those whose steps meet
/// its block along the concat axis, all of the variable's for a whole (two-pass) array,
/// the first for a variable without the concat dimension (as [`crate::read::Reader`] reads).
pub(crate) fn files_read(inv: &Inventory, var: &crate::model::VarInfo, block: Option<&plan::ReadBlock>) -> Vec<usize> {
    let of_var: Vec<usize> = var.files.clone().unwrap_or_else(|| (0..inv.files.len()).collect());
    let axis = match var.concat_axis {
        None => return of_var.into_iter().take(1).collect(),
        Some(_) if var.repeated => 0,
        Some(axis) => axis,
    };
    let Some(b) = block else { return of_var };
    let (lo, hi) = (b.start[axis], b.start[axis] + b.count[axis]);
    of_var
        .into_iter()
        .filter(|&i| {
            let f = &inv.files[i];
            f.concat_start < hi && lo < f.concat_start + f.concat_len
        })
        .collect()
}
