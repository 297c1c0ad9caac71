//! A split run's job, saved in its target by `prepare` or `append --tasks` for the tasks
//! and the commit to pick up: the settings that shape the plan, the merged inventory and
//! the inputs' manifest entries, with the in-progress marker that keeps other writers out.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::codec::Compression;
use crate::error::{Error, Result, TargetError};
use crate::manifest::{self, InputEntry};
use crate::model::{Inventory, ZarrFormat};
use crate::plan::ChunkPolicy;
use crate::store::{StoreOptions, Target};
use crate::write::ConvertOptions;

/// Prefix of a split run's files in the target.
pub const TASKS_PREFIX: &str = ".nc2zarr/tasks";
/// The saved job.
const JOB_KEY: &str = ".nc2zarr/tasks/job.json";

/// The settings that shape the plan, fixed by `prepare` so every task makes the same one.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PlanSettings {
    pub(crate) format: ZarrFormat,
    pub(crate) compression: Compression,
    pub(crate) policy: ChunkPolicy,
    pub(crate) max_mem: u64,
    pub(crate) workers: usize,
    pub(crate) io_concurrency: usize,
    pub(crate) skip_unsupported: bool,
}

/// What a split run writes.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum JobKind {
    /// A new store.
    Convert,
    /// New files appended behind the `existing_len` steps of the store.
    Append { existing_len: u64 },
}

/// What `prepare` (or `append --tasks`) saves in the target.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct SavedJob {
    pub(crate) tasks: usize,
    pub(crate) kind: JobKind,
    pub(crate) settings: PlanSettings,
    /// The merged inventory; for an append, of the new files, shifted behind the store's data.
    pub(crate) inventory: Inventory,
    /// The manifest's entries of the inputs, taken at prepare time (the commit reads no input).
    pub(crate) inputs: Vec<InputEntry>,
    /// How the tasks reach remote inputs, when there are any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) input_store: Option<InputStore>,
    /// True when `prepare` writes the small arrays that span the files itself (see
    /// `share::spanning`); false in jobs saved before it did, whose tasks share every unit.
    #[serde(default)]
    pub(crate) prepare_writes: bool,
}

/// The store settings a split run's tasks reach its remote inputs with: the endpoint and
/// backend options given at prepare time, never a secret (credentials reach the tasks
/// through their environment, as for the target).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InputStore {
    endpoint: Option<String>,
    options: Vec<(String, String)>,
}

impl InputStore {
    /// What the tasks of a run over the INPUT arguments `args` need to reach its remote
    /// inputs, read with `options`: `None` when every input is local. Refuses what would
    /// put credentials in the saved job in clear: backend options that carry them (the
    /// inputs' own, or the target's they inherit), an endpoint or URL with a
    /// `user:password@` part or a (signed) query string. Checked before anything is read.
    pub fn for_inputs(args: &[String], options: &StoreOptions) -> Result<Option<InputStore>> {
        let urls: Vec<&String> = args.iter().filter(|a| crate::remote::is_remote(a)).collect();
        if urls.is_empty() {
            return Ok(None);
        }
        let refuse = |what: String| {
            Error::Usage(format!(
                "{what} would be saved in the split run's job in clear; pass credentials through the environment \
                 instead (AWS_SECRET_ACCESS_KEY, AZURE_STORAGE_ACCOUNT_KEY, …), which reaches the tasks"
            ))
        };
        if let Some((k, _)) = options.options.iter().find(|(k, _)| crate::store::is_secret_option(k)) {
            return Err(refuse(format!(
                "storage option {k}=… (used for the remote inputs: --input-storage-option, else the target's \
                 --storage-option)"
            )));
        }
        let with_credentials = |u: &str| crate::secrets::without_secrets(u) != u;
        if let Some(e) = options.endpoint.as_deref().filter(|e| with_credentials(e)) {
            return Err(refuse(format!(
                "the endpoint {}, which carries credentials,",
                crate::secrets::redact(e)
            )));
        }
        if let Some(u) = urls.into_iter().find(|u| with_credentials(u)) {
            return Err(refuse(format!(
                "the input URL {}, which carries credentials,",
                crate::secrets::redact(u)
            )));
        }
        Ok(Some(InputStore {
            endpoint: options.endpoint.clone(),
            options: options.options.clone(),
        }))
    }

    /// Store options for a task: these settings, with the task's retry timeout and the
    /// run's requests in flight.
    pub(crate) fn options(&self, retry_timeout: std::time::Duration, io_concurrency: usize) -> StoreOptions {
        StoreOptions {
            endpoint: self.endpoint.clone(),
            options: self.options.clone(),
            retry_timeout,
            io_concurrency,
            ..Default::default()
        }
    }
}

/// An Icechunk target's session as `prepare` left it: the structure of the arrays, on
/// `main`. The commit merges the tasks' changes into it.
pub(crate) const BASE_SESSION_KEY: &str = ".nc2zarr/tasks/base.session";
/// The fork of the base session that every task starts from.
pub(crate) const FORK_SESSION_KEY: &str = ".nc2zarr/tasks/fork.session";

/// Saves a split append of `inv` (new files, shifted behind the `existing_len` steps of
/// the store, checked by the caller, who holds the store's lock): the marker that keeps
/// other writers out, then the job. `opts.format` is the store's format.
pub(crate) fn save_append(
    store: &Target,
    inv: &Inventory,
    inputs: Vec<InputEntry>,
    existing_len: u64,
    opts: &ConvertOptions,
    tasks: usize,
    input_store: Option<InputStore>,
) -> Result<()> {
    for f in store.list(TASKS_PREFIX)? {
        store.delete(&f.key)?;
    }
    crate::journal::clear(store, crate::journal::JOURNAL_PREFIX)?;
    save(
        store,
        JobKind::Append { existing_len },
        inv,
        inputs,
        opts,
        tasks,
        input_store,
    )
}

/// Saves the job of a split run of `inv` for `tasks` tasks, with the marker that keeps
/// other writers out; `input_store` says how the tasks reach remote inputs.
pub(crate) fn save(
    store: &Target,
    kind: JobKind,
    inv: &Inventory,
    inputs: Vec<InputEntry>,
    opts: &ConvertOptions,
    tasks: usize,
    input_store: Option<InputStore>,
) -> Result<()> {
    let settings = PlanSettings {
        format: opts.format,
        compression: opts.compression.clone(),
        policy: opts.policy.clone(),
        max_mem: opts.max_mem,
        workers: opts.workers,
        io_concurrency: opts.store.io_concurrency,
        skip_unsupported: opts.skip_unsupported,
    };
    let job = SavedJob {
        tasks,
        kind,
        settings,
        inventory: inv.clone(),
        inputs,
        input_store,
        prepare_writes: true,
    };
    let text = serde_json::to_vec(&job).map_err(|e| Error::Internal(format!("saving the job: {e}")))?;
    let marker = crate::json_obj! {
        "tool" => format!("nc2zarr {}", env!("CARGO_PKG_VERSION")),
        "mode" => "tasks",
        "kind" => match kind { JobKind::Convert => "convert", JobKind::Append { .. } => "append" },
        "tasks" => tasks,
        // What names the run in an Icechunk commit.
        "run" => crate::records::new_run(&format!("tasks:{}", blake3::hash(&text).to_hex())),
    };
    store.put(manifest::IN_PROGRESS_KEY, Bytes::from(marker.to_pretty()))?;
    store.put(JOB_KEY, Bytes::from(text))?;
    // On an Icechunk target, the tasks write into forks of the session that holds the
    // arrays' structure; the commit merges them back into it.
    store.with_session_key(BASE_SESSION_KEY).checkpoint()?;
    store.fork_session(FORK_SESSION_KEY)?;
    Ok(())
}

/// The job `prepare` (or `append --tasks`) saved in `store`.
pub(crate) fn load_job(store: &Target) -> Result<SavedJob> {
    crate::existing::refuse_repository_as_plain(store)?;
    let bytes = store.get(JOB_KEY)?.ok_or_else(|| TargetError::Invalid {
        target: store.display().to_string(),
        message: "holds no prepared split run; run `nc2zarr prepare INPUT... -o TARGET --tasks N` first".into(),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| {
        TargetError::Invalid {
            target: store.display().to_string(),
            message: format!("the saved job ({JOB_KEY}) is damaged: {e}"),
        }
        .into()
    })
}
