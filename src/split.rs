//! Split runs: one conversion written by N independent tasks, on the schedulers users
//! already have (Slurm job arrays, Kubernetes Indexed Jobs, AWS Batch array jobs, or
//! plain processes).
//!
//! `prepare` scans the inputs once, plans, and saves what every task needs in the
//! target: the settings that shape the plan and the merged inventory, so tasks read no
//! headers. `task I` rebuilds the same plan (planning is pure and deterministic), takes
//! the work units [`plan::split`] gives it (the I-th run of contiguous read blocks of each
//! array, balanced by bytes; a two-pass array whole), and writes their objects, journaling
//! under its own prefix, so it resumes after a crash and can be re-run alone. No object
//! is written by two tasks. Every task takes the same stretch of the concat dimension in
//! every array, and so reads only the files of that stretch; the small arrays whose
//! blocks span more files than one task's share (the concat coordinate, its bounds) or
//! that lie along no concat dimension `prepare` writes itself, as one more task, since it
//! has every input at hand.
//! `commit` checks that every task finished, merges their manifests and writes the
//! metadata, consolidated metadata last: until then readers see no dataset.

use std::collections::HashSet;

use crate::error::{Error, Result, TargetError};
use crate::job::{self, BASE_SESSION_KEY, JobKind, PlanSettings, SavedJob, TASKS_PREFIX};
use crate::manifest::{self, ArrayEntry, InputEntry, Manifest};
use crate::model::Inventory;
use crate::plan::{self, WorkUnit};
use crate::share::{self, TaskDone, done_key, files_read, live_units, session_key, spanning, task_units};
use crate::store::{StoreOptions, Target};
use crate::write::{self, ConvertOptions, Prepared};

/// The task index from `--index`, else from the scheduler: `SLURM_ARRAY_TASK_ID`,
/// `JOB_COMPLETION_INDEX` (Kubernetes) or `AWS_BATCH_JOB_ARRAY_INDEX`. `env` reads a
/// variable.
pub fn task_index(given: Option<usize>, env: impl Fn(&str) -> Option<String>) -> Result<usize> {
    if let Some(i) = given {
        return Ok(i);
    }
    for var in [
        "SLURM_ARRAY_TASK_ID",
        "JOB_COMPLETION_INDEX",
        "AWS_BATCH_JOB_ARRAY_INDEX",
    ] {
        if let Some(v) = env(var) {
            return v
                .trim()
                .parse()
                .map_err(|_| Error::Usage(format!("{var}={v:?} is not a task index")));
        }
    }
    Err(Error::Usage(
        "no task index: pass --index I, or run under a job array (SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX, \
         AWS_BATCH_JOB_ARRAY_INDEX)"
            .into(),
    ))
}

/// What `prepare` did: the target and, per task, uncompressed bytes and objects.
#[derive(Debug, Clone)]
pub struct PrepareSummary {
    /// The target as shown.
    pub target: String,
    /// Per task: uncompressed bytes and objects.
    pub tasks: Vec<(u64, u64)>,
    /// Predicted peak memory of each task.
    pub peak_memory: u64,
    /// Notes.
    pub notes: Vec<String>,
}

/// Scans nothing more: plans `inv` for `target` and saves the job for `tasks` tasks.
/// `input_store` says how the tasks reach remote inputs (see [`job::InputStore::for_inputs`]).
pub fn prepare(
    inv: &Inventory,
    target: &str,
    opts: &ConvertOptions,
    tasks: usize,
    input_store: Option<job::InputStore>,
) -> Result<PrepareSummary> {
    let prepared = write::prepare(inv, opts)?;
    write::check_target(target, opts)?;
    let store = Target::open_for_write(target, &opts.store)?;
    let _lock = crate::lock::acquire(&store, opts.stale_lock_after)?;
    let listed: Vec<_> = store
        .list("")?
        .into_iter()
        .filter(|l| l.key != crate::lock::LOCK_KEY)
        .collect();
    if !listed.is_empty() {
        if !(opts.overwrite || opts.restart) {
            return Err(TargetError::Invalid {
                target: store.display().to_string(),
                message: "holds an interrupted run; pass --restart to discard it and prepare again".into(),
            }
            .into());
        }
        store.delete_all_except(&[crate::lock::LOCK_KEY])?;
    }
    if store.is_transactional() {
        // The tasks' Icechunk sessions take chunks only of arrays they know.
        write::write_structure(&inv.root.walk(), &prepared.jobs, &store, opts.format)?;
    }
    job::save(
        &store,
        JobKind::Convert,
        inv,
        crate::records::input_entries(inv)?,
        opts,
        tasks,
        input_store,
    )?;
    // As the tasks will: the plan made again from the settings saved.
    let job = job::load_job(&store)?;
    let local = TaskOptions {
        store: opts.store.clone(),
        temp_dir: Some(opts.temp_dir.clone()),
        input_cache: None,
        quiet: opts.quiet,
        json: opts.json,
    };
    let task_opts = options(&job.settings, &local);
    let saved = replan(&job, &store, &task_opts)?;
    let mut notes = prepared.notes.clone();
    notes.extend(share::write_spanning(&store, inv, &saved, &task_opts, tasks)?);
    Ok(PrepareSummary {
        target: store.display().to_string(),
        tasks: share::task_totals(inv, &prepared, tasks)[..tasks].to_vec(),
        peak_memory: prepared.plan.peak_memory,
        notes,
    })
}

/// The plan of the saved job, made again (planning is deterministic).
fn replan(job: &SavedJob, store: &Target, opts: &ConvertOptions) -> Result<Prepared> {
    match job.kind {
        JobKind::Convert => write::prepare(&job.inventory, opts),
        JobKind::Append { existing_len } => {
            crate::append::prepare_from_store(&job.inventory, store, existing_len, opts)
        }
    }
}

/// Settings of one task's run that are not part of the plan.
#[derive(Debug, Clone, Default)]
pub struct TaskOptions {
    /// How to reach the target.
    pub store: StoreOptions,
    /// Scratch space for two-pass arrays (default: the system temp directory).
    pub temp_dir: Option<std::path::PathBuf>,
    /// Where downloaded inputs are kept between runs, if anywhere.
    pub input_cache: Option<crate::remote::InputCache>,
    /// No progress bar.
    pub quiet: bool,
    /// Machine-readable output.
    pub json: bool,
}

fn options(settings: &PlanSettings, local: &TaskOptions) -> ConvertOptions {
    let mut opts = ConvertOptions {
        format: settings.format,
        compression: settings.compression.clone(),
        policy: settings.policy.clone(),
        max_mem: settings.max_mem,
        workers: settings.workers,
        skip_unsupported: settings.skip_unsupported,
        store: local.store.clone(),
        quiet: local.quiet,
        json: local.json,
        ..ConvertOptions::default()
    };
    opts.store.io_concurrency = settings.io_concurrency;
    if let Some(d) = &local.temp_dir {
        opts.temp_dir = d.clone();
    }
    opts
}

/// What one task did.
#[derive(Debug, Clone)]
pub struct TaskSummary {
    /// The task index and the number of tasks.
    pub index: usize,
    /// Tasks in the run.
    pub tasks: usize,
    /// False when the task had finished before (nothing done now).
    pub ran: bool,
    /// Objects written (or recorded as fill-only).
    pub objects: u64,
    /// Objects found written by an interrupted run of this task.
    pub resumed: u64,
    /// Bytes written.
    pub bytes_out: u64,
    /// Remote inputs this task downloaded (those its units read), and their bytes.
    pub staged: (usize, u64),
}

/// Runs task `index` of the split run prepared in `target`.
pub fn run_task(target: &str, index: usize, local: &TaskOptions) -> Result<TaskSummary> {
    let store = Target::open_existing(target, &local.store)?;
    let mut job = job::load_job(&store)?;
    if index >= job.tasks {
        return Err(Error::Usage(format!(
            "task index {index} is out of range: the run was prepared for {} tasks (0..{})",
            job.tasks,
            job.tasks - 1
        )));
    }
    if let Some(bytes) = store.get(&done_key(index))? {
        let done: TaskDone = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Internal(format!("the record of task {index} is damaged: {e}")))?;
        return Ok(TaskSummary {
            index,
            tasks: job.tasks,
            ran: false,
            objects: done.objects,
            resumed: 0,
            bytes_out: 0,
            staged: (0, 0),
        });
    }
    let opts = options(&job.settings, local);
    let prepared = replan(&job, &store, &opts)?;
    let (keys, units) = match job.prepare_writes {
        true => task_units(&job.inventory, &prepared, job.tasks),
        false => live_units(&prepared),
    };
    let owner = plan::split(&units, job.tasks);
    let mut owned = HashSet::new();
    let mut owned_units = Vec::new();
    let mut total_bytes = 0;
    for ((key, u), t) in keys.iter().zip(&units).zip(&owner) {
        if *t == index {
            owned.insert(*key);
            owned_units.push(u);
            total_bytes += u.bytes;
        }
    }
    let staged = stage_inputs(&mut job, &prepared, &owned_units, local)?;
    let staged_summary = staged.as_ref().map_or((0, 0), |r| {
        (
            r.files.len(),
            r.staging.as_ref().map_or(0, crate::remote::Staging::bytes),
        )
    });
    let explain = |e: Error| match &staged {
        Some(r) => r.explain(e),
        None => e,
    };
    // Each task hashes every `tasks`-th local input (a remote one is pinned by its ETag).
    let hashed: Vec<usize> = (index..job.inventory.files.len())
        .step_by(job.tasks)
        .filter(|&i| job.inventory.files[i].origin.is_none())
        .collect();
    let (objects, resumed, bytes_out) = share::write_share(
        &store,
        &job.inventory,
        &prepared,
        &opts,
        (index, &hashed),
        owned,
        total_bytes,
    )
    .map_err(explain)?;
    Ok(TaskSummary {
        index,
        tasks: job.tasks,
        ran: true,
        objects,
        resumed,
        bytes_out,
        staged: staged_summary,
    })
}

/// Downloads the remote inputs that `units` (this task's) read, each pinned to the ETag
/// seen at prepare time, and points the job's inventory at the copies (removed when the
/// result is dropped); `None` when the run's inputs are local.
fn stage_inputs(
    job: &mut SavedJob,
    prepared: &Prepared,
    units: &[&WorkUnit],
    local: &TaskOptions,
) -> Result<Option<crate::inputs::Resolved>> {
    let Some(input_store) = &job.input_store else {
        return Ok(None);
    };
    let inv = &job.inventory;
    let groups = inv.root.walk();
    let mut needed = std::collections::BTreeSet::new();
    for u in units {
        let array = &prepared.jobs[u.array];
        let var = &groups[array.group].vars[array.var];
        needed.extend(files_read(inv, var, u.block.as_ref()));
    }
    let wanted: Vec<(usize, crate::remote::RemoteFile)> = needed
        .into_iter()
        .filter_map(|i| {
            let f = &inv.files[i];
            let (url, etag) = f.origin.clone()?;
            Some((
                i,
                crate::remote::RemoteFile {
                    url,
                    size: f.size,
                    etag,
                },
            ))
        })
        .collect();
    let remote: Vec<_> = wanted.iter().map(|(_, r)| r.clone()).collect();
    let options = input_store.options(local.store.retry_timeout, job.settings.io_concurrency);
    let parent = local.temp_dir.clone().unwrap_or_else(std::env::temp_dir);
    let cache = local.input_cache.as_ref();
    let (staging, files) = crate::remote::stage(&remote, &parent, cache, &options, options.io_concurrency)?;
    // Pinned by ETag where the server gives one; the fingerprint taken at prepare time
    // (size and first 64 KiB) also catches a replacement on servers that give none.
    for ((_, r), path) in wanted.iter().zip(&files) {
        let recorded = job
            .inputs
            .iter()
            .find(|e| e.path == crate::remote::identity(&r.url) && !e.fingerprint.is_empty());
        let now = manifest::file_fingerprint(path).map_err(|e| crate::error::InputError::Io {
            path: path.clone(),
            message: format!("reading the downloaded input: {e}"),
        })?;
        if recorded.is_some_and(|e| e.fingerprint != now) {
            return Err(crate::error::InputError::Io {
                path: crate::secrets::redact(&r.url).into(),
                message: "it changed since it was listed at prepare time (its first bytes differ); prepare the run \
                          again to convert the new version"
                    .into(),
            }
            .into());
        }
    }
    for ((i, _), path) in wanted.iter().zip(&files) {
        job.inventory.files[*i].path = path.clone();
    }
    Ok(Some(crate::inputs::Resolved {
        files,
        staging: Some(staging),
    }))
}

/// What the commit did.
#[derive(Debug, Clone)]
pub struct CommitSummary {
    /// The target as shown.
    pub target: String,
    /// Tasks merged.
    pub tasks: usize,
    /// Arrays committed.
    pub arrays: usize,
    /// Objects in the manifest.
    pub objects: u64,
}

/// The error for an Icechunk split run whose branch moved since `prepare`.
fn existing_moved(store: &Target) -> Error {
    TargetError::Invalid {
        target: store.display().to_string(),
        message: "main has a new commit since this split run was prepared (or its saved session is gone); \
                  prepare it again with --restart"
            .into(),
    }
    .into()
}

/// Commits the split run in `target` once every task has finished.
pub fn commit(target: &str, store_options: &StoreOptions) -> Result<CommitSummary> {
    let store = Target::open_existing(target, store_options)?;
    let job = job::load_job(&store)?;
    let local = TaskOptions {
        store: store_options.clone(),
        ..Default::default()
    };
    let opts = options(&job.settings, &local);
    let prepared = replan(&job, &store, &opts)?;
    // Task `tasks` is the part prepare wrote itself, when there is one.
    let (_, units) = live_units(&prepared);
    let by_prepare = job.prepare_writes && spanning(&job.inventory, &prepared, &units, job.tasks).contains(&true);
    let writers = job.tasks + usize::from(by_prepare);
    let mut records = Vec::new();
    let mut missing = Vec::new();
    for i in 0..writers {
        match store.get(&done_key(i))? {
            Some(b) => records.push(
                serde_json::from_slice::<TaskDone>(&b)
                    .map_err(|e| Error::Internal(format!("the record of task {i} is damaged: {e}")))?,
            ),
            None if i == job.tasks => {
                return Err(TargetError::Invalid {
                    target: store.display().to_string(),
                    message: "its prepare was interrupted before it wrote the arrays that span the files; prepare \
                              the run again with --restart (`prepare … --restart`, or `append … --tasks N --restart`)"
                        .into(),
                }
                .into());
            }
            None => missing.push(i),
        }
    }
    if !missing.is_empty() {
        let list = missing.iter().map(usize::to_string).collect::<Vec<_>>().join(", ");
        let csv = missing.iter().map(usize::to_string).collect::<Vec<_>>().join(",");
        return Err(Error::TasksUnfinished(format!(
            "{}: task(s) {list} of {} have not finished; run `nc2zarr task {target} --index I` for each \
             (on Slurm: sbatch --array={csv} …), then commit again",
            store.display(),
            job.tasks
        )));
    }
    let _lock = crate::lock::acquire(&store, crate::lock::DEFAULT_STALE_AFTER)?;
    // An append's commit killed part-way left its intent: finishing it is the commit.
    if matches!(job.kind, JobKind::Append { .. }) {
        crate::append::finish_commit(&store)?;
    }
    let marker = crate::existing::read_json(&store, manifest::IN_PROGRESS_KEY)?;
    let run = marker.as_ref().map(crate::records::run_of_marker).unwrap_or_default();
    let committed_before = marker.is_some() && store.committed_by(&run)?;
    if committed_before {
        // An Icechunk commit that was killed after it committed: only its records are left.
        crate::records::finish_records(&store)?;
    }
    let committed = marker.is_none() || committed_before;
    if !committed && store.is_transactional() {
        // The session prepare left, with every task's changes merged into it.
        if !store.with_session_key(BASE_SESSION_KEY).resume_session()? {
            return Err(existing_moved(&store));
        }
        for i in 0..writers {
            store.merge_session(&session_key(i))?;
        }
    }
    let mut objects = 0;
    if !committed {
        objects = match job.kind {
            JobKind::Convert => commit_convert(&store, &job, &prepared, records, &run)?,
            JobKind::Append { .. } => commit_append(&store, &job, &prepared, records, &run)?,
        };
    }
    // A commit interrupted after its metadata (the marker gone) only cleans up when run again.
    for f in store.list(TASKS_PREFIX)? {
        store.delete(&f.key)?;
    }
    Ok(CommitSummary {
        target: store.display().to_string(),
        tasks: job.tasks,
        arrays: prepared.jobs.len(),
        objects,
    })
}

/// Writes a new store's manifest and metadata from the tasks' records; returns the objects.
fn commit_convert(
    store: &Target,
    job: &SavedJob,
    prepared: &Prepared,
    records: Vec<TaskDone>,
    run: &str,
) -> Result<u64> {
    let inv = &job.inventory;
    let mut manifest = Manifest::new(job.settings.format.number(), with_content(&job.inputs, &records));
    manifest.concat_dim = inv.concat_dim.clone();
    manifest.group = inv.root.source.clone();
    for j in &prepared.jobs {
        manifest.arrays.insert(j.path.clone(), ArrayEntry::default());
    }
    for r in records {
        for (path, entry) in r.arrays {
            let m = manifest.arrays.entry(path).or_default();
            m.objects.extend(entry.objects);
            m.empty.extend(entry.empty);
        }
    }
    for m in manifest.arrays.values_mut() {
        m.empty.sort();
    }
    let groups = inv.root.walk();
    write::commit(&groups, &prepared.jobs, store, job.settings.format, &manifest, run)?;
    Ok(manifest.arrays.values().map(|a| a.objects.len() as u64).sum())
}

/// Grows the store by the appended data: its manifest takes the tasks' objects and the
/// new inputs, then the metadata is rewritten, consolidated last; returns the objects
/// written by the tasks.
fn commit_append(
    store: &Target,
    job: &SavedJob,
    prepared: &Prepared,
    records: Vec<TaskDone>,
    run: &str,
) -> Result<u64> {
    let mut manifest = crate::existing::read_manifest(store)?;
    let inputs = with_content(&job.inputs, &records);
    let mut objects = 0;
    for r in records {
        objects += r.objects;
        for (path, entry) in r.arrays {
            crate::append::merge_entry(&mut manifest, &path, entry);
        }
    }
    manifest.inputs.extend(inputs);
    // A store made from one file records the dimension it was first appended along.
    manifest.concat_dim = manifest.concat_dim.clone().or_else(|| job.inventory.concat_dim.clone());
    crate::append::commit(store, job.settings.format, &job.inventory, prepared, &manifest, run)?;
    Ok(objects)
}

/// The run's inputs with the hashes of their bytes the tasks recorded.
fn with_content(inputs: &[InputEntry], records: &[TaskDone]) -> Vec<InputEntry> {
    let mut inputs = inputs.to_vec();
    for (&i, hash) in records.iter().flat_map(|r| &r.content) {
        if let Some(entry) = inputs.get_mut(i) {
            entry.content = Some(hash.clone());
        }
    }
    inputs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_comes_from_the_flag_or_the_scheduler() {
        let none = |_: &str| None;
        assert_eq!(task_index(Some(3), none).unwrap(), 3);
        for var in [
            "SLURM_ARRAY_TASK_ID",
            "JOB_COMPLETION_INDEX",
            "AWS_BATCH_JOB_ARRAY_INDEX",
        ] {
            let env = |k: &str| (k == var).then(|| "7".to_string());
            assert_eq!(task_index(None, env).unwrap(), 7, "{var}");
        }
        let bad = |k: &str| (k == "SLURM_ARRAY_TASK_ID").then(|| "x".to_string());
        assert!(
            task_index(None, bad)
                .unwrap_err()
                .to_string()
                .contains("not a task index")
        );
        assert!(task_index(None, none).unwrap_err().to_string().contains("--index"));
    }
}
