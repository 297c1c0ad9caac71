//! Stage 3: convert. Plan the arrays, open (or resume) the target, run the engine
//! ([`crate::pipeline`]) and commit: array metadata, group metadata, the manifest and,
//! last, consolidated metadata. Until the root metadata exists no reader can open the
//! store, so a reader never sees a partial dataset.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::codec::{ChunkCodec, Compression};
use crate::error::{Error, InputError, Result, TargetError};
use crate::journal;
use crate::json::Json;
use crate::manifest::{self, Manifest};
use crate::meta::{self, NodeDocs};
use crate::model::ZarrFormat;
use crate::model::{AttrValue, DType, attr, attrs_json};
use crate::model::{GroupInfo, Inventory, VarInfo};
use crate::pipeline::{self, ArrayJob, Engine, Shared};
use crate::plan::{self, ArrayInput, ChunkPolicy, JobPlan, Resources};
use crate::preset;
use crate::progress::Progress;
use crate::records;
use crate::settings;
use crate::store::{StoreOptions, Target};

/// Options of a conversion.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// Zarr v2 or v3.
    pub format: ZarrFormat,
    /// Compression of every array.
    pub compression: Compression,
    /// How chunks (and shards) are shaped.
    pub policy: ChunkPolicy,
    /// Peak memory of the whole process must stay at or under this.
    pub max_mem: u64,
    /// Encoding threads.
    pub workers: usize,
    /// Where intermediate data of two-pass arrays goes.
    pub temp_dir: PathBuf,
    /// Replace an existing non-empty target.
    pub overwrite: bool,
    /// Discard an interrupted conversion in the target instead of resuming it.
    pub restart: bool,
    /// Allow --overwrite/--restart to delete a filesystem root, home or whole bucket.
    pub force: bool,
    /// Age after which another job's lock counts as stale and is taken over.
    pub stale_lock_after: std::time::Duration,
    /// How to reach the target.
    pub store: StoreOptions,
    /// Skip variables and attributes Zarr cannot hold instead of failing.
    pub skip_unsupported: bool,
    /// Draw no progress bar.
    pub quiet: bool,
    /// Machine-readable output (also hides the progress bar).
    pub json: bool,
}

impl Default for ConvertOptions {
    fn default() -> Self {
        ConvertOptions {
            format: ZarrFormat::V3,
            compression: Compression::default(),
            policy: ChunkPolicy::default(),
            max_mem: settings::default_max_mem(),
            workers: std::thread::available_parallelism().map_or(2, usize::from),
            temp_dir: std::env::temp_dir(),
            overwrite: false,
            restart: false,
            force: false,
            stale_lock_after: std::time::Duration::from_secs(settings::LOCK_TIMEOUT_SECS),
            store: StoreOptions::default(),
            skip_unsupported: false,
            quiet: false,
            json: false,
        }
    }
}

/// The arrays to write, the job plan, and what was left out.
pub struct Prepared {
    /// Arrays in write order.
    pub jobs: Vec<ArrayJob>,
    /// The whole plan (memory, workers, I/O).
    pub plan: JobPlan,
    /// Notes for the user.
    pub notes: Vec<String>,
    /// Variables skipped (with `--skip-unsupported`), with reasons.
    pub skipped: Vec<String>,
}

/// What a conversion did.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Target (as shown).
    pub target: String,
    /// Number of input files.
    pub files: usize,
    /// Arrays written.
    pub arrays: usize,
    /// Uncompressed bytes of the converted variables.
    pub bytes_in: u64,
    /// Bytes stored (objects and metadata).
    pub bytes_out: u64,
    /// Objects stored.
    pub objects: u64,
    /// Objects left out because they held only fill values.
    pub empty_objects: u64,
    /// Objects found already written by an interrupted run and not written again.
    pub resumed_objects: u64,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Notes and warnings.
    pub notes: Vec<String>,
    /// Variables skipped.
    pub skipped: Vec<String>,
}

impl Summary {
    /// As a JSON object (the `--json` output).
    pub fn to_json(&self) -> Json {
        crate::json_obj! {
            "status" => "ok",
            "target" => self.target.as_str(),
            "files" => self.files,
            "arrays" => self.arrays,
            "bytes_in" => self.bytes_in,
            "bytes_out" => self.bytes_out,
            "compression_ratio" => self.ratio(),
            "objects" => self.objects,
            "empty_objects" => self.empty_objects,
            "resumed_objects" => self.resumed_objects,
            "seconds" => self.seconds,
            "mb_per_s" => self.mb_per_s(),
            "notes" => self.notes.clone(),
            "skipped" => self.skipped.clone(),
        }
    }

    fn ratio(&self) -> f64 {
        if self.bytes_out == 0 {
            0.0
        } else {
            self.bytes_in as f64 / self.bytes_out as f64
        }
    }

    fn mb_per_s(&self) -> f64 {
        self.bytes_in as f64 / 1e6 / self.seconds.max(1e-9)
    }

    /// Human-readable lines.
    pub fn to_text(&self) -> String {
        use crate::units::human_bytes;
        let mut s = format!(
            "converted {} file(s) into {} array(s) at {}\n  in  {} uncompressed\n  out {} in {} object(s) ({} empty, not stored), ratio {:.2}\n  {:.1} s, {:.0} MB/s\n",
            self.files,
            self.arrays,
            self.target,
            human_bytes(self.bytes_in),
            human_bytes(self.bytes_out),
            self.objects,
            self.empty_objects,
            self.ratio(),
            self.seconds,
            self.mb_per_s()
        );
        if self.resumed_objects > 0 {
            s.push_str(&format!(
                "  resumed: {} object(s) from the interrupted run were already stored and were skipped\n",
                self.resumed_objects
            ));
        }
        for n in &self.notes {
            s.push_str(&format!("  note: {n}\n"));
        }
        for n in &self.skipped {
            s.push_str(&format!("  skipped: {n}\n"));
        }
        s
    }
}

/// Plans every array: chunking, metadata, strategy and memory. Fails, before anything
/// is written, on unsupported types (unless skipped), bad names, bad chunk requests or
/// a memory budget no plan fits.
pub fn prepare(inv: &Inventory, opts: &ConvertOptions) -> Result<Prepared> {
    let groups = inv.root.walk();
    let mut notes = inv.notes.clone();
    let mut skipped = Vec::new();
    let mut problems = Vec::new();
    for (location, reason) in &inv.unsupported_attrs {
        if opts.skip_unsupported {
            skipped.push(format!("{location} ({reason})"));
        } else {
            problems.push(format!("{location} {reason}, which Zarr cannot hold"));
        }
    }
    for g in &groups {
        if !g.name.is_empty() {
            meta::check_node_name(&g.name)
                .map_err(|e| Error::Input(InputError::Unsupported(format!("group '/{}': {e}", g.path))))?;
        }
        for v in &g.vars {
            match &v.unsupported {
                Some(reason) if opts.skip_unsupported => skipped.push(reason.clone()),
                Some(reason) => problems.push(reason.clone()),
                None => meta::check_node_name(&v.name).map_err(|e| {
                    Error::Input(InputError::Unsupported(format!(
                        "variable '{}': {e}",
                        g.var_path(&v.name)
                    )))
                })?,
            }
        }
    }
    if !problems.is_empty() {
        return Err(Error::Input(InputError::Unsupported(format!(
            "{}; pass --skip-unsupported to convert the rest without them",
            problems.join("; ")
        ))));
    }
    check_chunk_request(&groups, &opts.policy)?;
    let mut selected = Vec::new();
    let mut inputs = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        for (vi, v) in g.vars.iter().enumerate() {
            if v.unsupported.is_none() {
                inputs.push(array_input(inv, &groups, g, v));
                selected.push((gi, vi));
            }
        }
    }
    let resources = Resources {
        max_mem: opts.max_mem,
        workers: opts.workers,
        io_concurrency: opts.store.io_concurrency,
    };
    let job_plan = plan::plan(&inputs, &opts.policy, resources).map_err(|e| Error::Usage(e.to_string()))?;
    let mut jobs = Vec::new();
    for ((gi, vi), ap) in selected.into_iter().zip(&job_plan.arrays) {
        let (g, v) = (groups[gi], &groups[gi].vars[vi]);
        let meta = meta::array_metadata(opts.format, v, &ap.chunks, ap.shards.as_deref(), &opts.compression)
            .map_err(|e| Error::Internal(format!("metadata of '{}': {e}", g.var_path(&v.name))))?;
        notes.extend(meta.notes.iter().cloned());
        if ["scale_factor", "add_offset"]
            .iter()
            .any(|k| matches!(attr(&v.attrs, k), Some(AttrValue::Numbers(DType::F32, _))))
        {
            notes.push(format!(
                "variable '{}': scale_factor/add_offset are float32, but Zarr attributes are JSON numbers, so xarray \
                 unpacks it as float64 from Zarr (float32 from NetCDF); the packed values are identical",
                g.var_path(&v.name)
            ));
        }
        let codec = ChunkCodec::new(&meta.codec_metadata, v.dtype)
            .map_err(|e| Error::Internal(format!("codec for '{}': {e}", g.var_path(&v.name))))?;
        jobs.push(ArrayJob {
            path: g.var_path(&v.name),
            group: gi,
            var: vi,
            plan: ap.clone(),
            meta,
            codec,
            append: None,
        });
    }
    Ok(Prepared {
        jobs,
        plan: job_plan,
        notes,
        skipped,
    })
}

/// Every dimension named in `--chunks` must belong to some variable.
fn check_chunk_request(groups: &[&GroupInfo], policy: &ChunkPolicy) -> Result<()> {
    for (dim, _) in &policy.request.per_dim {
        if !groups.iter().any(|g| g.vars.iter().any(|v| v.dims.contains(dim))) {
            let mut all: Vec<&str> = groups
                .iter()
                .flat_map(|g| g.vars.iter().flat_map(|v| v.dims.iter().map(String::as_str)))
                .collect();
            all.sort_unstable();
            all.dedup();
            return Err(Error::Usage(format!(
                "--chunks names dimension '{dim}', which no variable has (dimensions: {})",
                all.join(", ")
            )));
        }
    }
    Ok(())
}

/// What the planner needs to know about a variable.
pub fn array_input(inv: &Inventory, groups: &[&GroupInfo], g: &GroupInfo, v: &VarInfo) -> ArrayInput {
    let roles = v
        .dims
        .iter()
        .map(|d| preset::detect_role(d, coordinate_attrs(groups, g, d)))
        .collect();
    ArrayInput {
        path: g.var_path(&v.name),
        dims: v.dims.clone(),
        roles,
        shape: v.shape.clone(),
        elem_bytes: if v.dtype == DType::String {
            48
        } else {
            v.dtype.planning_size()
        },
        is_dim_coordinate: v.dims.len() == 1 && v.dims[0] == v.name,
        concat_axis: v.concat_axis,
        file_lengths: if v.concat_axis.is_some() {
            inv.files_of(v).iter().map(|f| f.concat_len).collect()
        } else {
            Vec::new()
        },
        source_chunks: v.storage.chunks.clone(),
        source_compressed: !v.storage.filters.is_empty(),
        variable_length: v.dtype == DType::String,
        fixed_layout: None,
    }
}

/// Attributes of the coordinate variable of `dim` seen from group `g` (it or an ancestor).
fn coordinate_attrs<'a>(groups: &[&'a GroupInfo], g: &GroupInfo, dim: &str) -> Option<&'a crate::model::Attrs> {
    let mut path = g.path.as_str();
    loop {
        if let Some(group) = groups.iter().find(|x| x.path == path)
            && let Some(c) = group.vars.iter().find(|c| c.name == dim && c.dims.len() == 1)
        {
            return Some(&c.attrs);
        }
        if path.is_empty() {
            return None;
        }
        path = path.rsplit_once('/').map_or("", |(p, _)| p);
    }
}

/// What the target holds when a conversion starts.
enum Start {
    /// Nothing: write from scratch.
    Fresh,
    /// An interrupted run of the same conversion: its journal.
    Resume(HashMap<String, journal::Entry>, u64),
}

/// The in-progress marker: identifies the conversion that is writing the target.
fn marker(inputs_fp: &str, plan_fp: &str, files: usize) -> Json {
    crate::json_obj! {
        "tool" => format!("nc2zarr {}", env!("CARGO_PKG_VERSION")),
        "inputs_fingerprint" => inputs_fp,
        "plan_fingerprint" => plan_fp,
        "inputs" => files,
        "run" => records::new_run(&format!("{inputs_fp}:{plan_fp}")),
    }
}

/// Decides how to start: refuses a non-empty target (unless `overwrite`), resumes an
/// interrupted run of the same conversion (unless `restart`), and refuses to resume a
/// different one. Touches nothing when it refuses.
fn decide_start(store: &Target, target: &str, opts: &ConvertOptions, inputs_fp: &str, plan_fp: &str) -> Result<Start> {
    // An Icechunk target: take up the session an interrupted run saved, before listing
    // what is there (a fresh start below drops it).
    let resumed = store.resume_session()?;
    // The lock (ours, taken before) does not count as content.
    let listed: Vec<_> = store
        .list("")?
        .into_iter()
        .filter(|l| l.key != crate::lock::LOCK_KEY)
        .collect();
    if listed.is_empty() {
        return Ok(Start::Fresh);
    }
    let interrupted = listed.iter().any(|l| l.key == manifest::IN_PROGRESS_KEY);
    if opts.overwrite || (interrupted && opts.restart) {
        if !opts.force {
            crate::store::check_overwrite_allowed(target)?;
        }
        store.delete_all_except(&[crate::lock::LOCK_KEY])?;
        return Ok(Start::Fresh);
    }
    if !interrupted {
        return Err(TargetError::Exists {
            target: store.display().to_string(),
        }
        .into());
    }
    let found = store
        .get(manifest::IN_PROGRESS_KEY)?
        .and_then(|b| Json::parse(&String::from_utf8_lossy(&b)).ok())
        .unwrap_or(Json::Null);
    let same_inputs = found.get("inputs_fingerprint").and_then(Json::as_str) == Some(inputs_fp);
    let same_plan = found.get("plan_fingerprint").and_then(Json::as_str) == Some(plan_fp);
    if !(same_inputs && same_plan) {
        let what = if same_inputs {
            "the plan (chunks, codecs, format or options)"
        } else {
            "the inputs"
        };
        return Err(TargetError::Invalid {
            target: store.display().to_string(),
            message: format!(
                "holds an interrupted conversion, but {what} changed since; pass --restart to discard it and start again"
            ),
        }
        .into());
    }
    if store.is_transactional() && !resumed && !store.committed_by(&records::run_of_marker(&found))? {
        // Nothing the interrupted run wrote was committed, and its saved session is
        // missing or stale: every object its journal lists went with it (the branch may
        // even hold the objects an overwrite was replacing, under the same keys). Start
        // again from an empty tree.
        store.delete_all_except(&[crate::lock::LOCK_KEY, manifest::IN_PROGRESS_KEY])?;
        return Ok(Start::Resume(HashMap::new(), 0));
    }
    let (entries, segments) = journal::load(store)?;
    // Only objects that are still there, at the recorded size, count as done.
    let sizes: HashMap<&str, u64> = listed.iter().map(|l| (l.key.as_str(), l.size)).collect();
    let done = entries
        .into_iter()
        .filter(|(k, e)| e.blake3.is_none() || sizes.get(k.as_str()) == Some(&e.size))
        .collect();
    Ok(Start::Resume(done, segments))
}

/// Fingerprint of the plan: every array's documents (shape, chunks, codecs, attributes).
fn plan_fingerprint(jobs: &[ArrayJob], format: ZarrFormat) -> String {
    let mut h = blake3::Hasher::new();
    h.update(&format.number().to_le_bytes());
    for j in jobs {
        h.update(j.path.as_bytes());
        for (k, doc) in &j.meta.documents {
            h.update(k.as_bytes());
            h.update(doc.to_compact().as_bytes());
        }
    }
    h.finalize().to_hex().to_string()
}

/// Checks a target before anything is read: refuses a non-empty one unless `overwrite`
/// or it holds an interrupted conversion. Touches nothing.
pub fn check_target(target: &str, opts: &ConvertOptions) -> Result<()> {
    if crate::store::icechunk::strip_scheme(target).is_some() && opts.format == ZarrFormat::V2 {
        return Err(TargetError::BadUrl {
            target: crate::secrets::redact(target),
            message: "Icechunk repositories hold Zarr v3 only; drop --zarr-format 2".into(),
        }
        .into());
    }
    // Before anything else (listing a filesystem root would walk the whole disk).
    if (opts.overwrite || opts.restart) && !opts.force {
        crate::store::check_overwrite_allowed(target)?;
    }
    if Target::is_absent(target) {
        return Ok(());
    }
    if let Some(location) = crate::store::icechunk::strip_scheme(target) {
        // No repository yet: the location must hold nothing but nc2zarr's records.
        let plain = Target::open_existing(location, &opts.store)?;
        if plain.get("repo")?.is_none() {
            if plain.holds_more_than_records()? {
                return Err(TargetError::Invalid {
                    target: plain.display().to_string(),
                    message: "is not an Icechunk repository but holds other objects; choose an empty location".into(),
                }
                .into());
            }
            return Ok(());
        }
    }
    if let Ok(crate::store::Location::Local(dir)) = crate::store::parse_location(target)
        && !dir.is_dir()
    {
        return Err(TargetError::Invalid {
            target: target.to_string(),
            message: "exists and is not a directory; choose another target path".into(),
        }
        .into());
    }
    let store = Target::open_existing(target, &opts.store)?;
    let listed: Vec<_> = store
        .list("")?
        .into_iter()
        .filter(|l| l.key != crate::lock::LOCK_KEY)
        .collect();
    let interrupted = listed.iter().any(|l| l.key == manifest::IN_PROGRESS_KEY);
    if !listed.is_empty() && !interrupted && !opts.overwrite {
        return Err(TargetError::Exists {
            target: store.display().to_string(),
        }
        .into());
    }
    Ok(())
}

/// The part of a split run one task writes, and where its journal goes.
pub struct TaskShare {
    /// Work units owned, as (job, block index) or (job, `None`) for a two-pass array.
    pub owned: std::collections::HashSet<(usize, Option<usize>)>,
    /// Prefix of the task's own journal.
    pub journal_prefix: String,
}

/// Runs the engine over `prepared` with a collector thread; returns what it gathered.
#[allow(clippy::too_many_arguments)]
pub fn run_engine(
    inv: &Inventory,
    groups: &[&GroupInfo],
    prepared: &Prepared,
    store: &Target,
    opts: &ConvertOptions,
    done: HashMap<String, journal::Entry>,
    segments: u64,
    total_bytes: u64,
    share: Option<&TaskShare>,
) -> Result<pipeline::Collected> {
    let progress = Progress::new(total_bytes, opts.json, opts.quiet);
    let journal = match share {
        Some(t) => journal::Journal::at(store, &t.journal_prefix, segments),
        None => journal::Journal::new(store, segments),
    };
    let (tx, rx) = crossbeam_channel::unbounded();
    let shared = Arc::new(Shared::new(tx, done));
    let engine = Engine {
        inv,
        groups,
        jobs: &prepared.jobs,
        store,
        format: opts.format,
        workers: prepared.plan.workers,
        io_concurrency: prepared.plan.io_concurrency,
        inflight_bytes: prepared.plan.inflight_bytes,
        temp_dir: &opts.temp_dir,
        owned: share.map(|t| &t.owned),
    };
    let mut collected = std::thread::scope(|scope| {
        let collector = scope.spawn(|| pipeline::collect(rx, &journal, prepared.jobs.len(), &progress));
        engine.run(&shared);
        drop(shared);
        collector.join().expect("collector thread")
    });
    progress.finish();
    match collected.error.take() {
        Some(e) => Err(e),
        None => Ok(collected),
    }
}

/// Converts the inventory into `target`, resuming an interrupted run of the same
/// conversion when the target holds one.
pub fn convert(inv: &Inventory, target: &str, opts: &ConvertOptions) -> Result<Summary> {
    let started = Instant::now();
    let prepared = prepare(inv, opts)?;
    check_target(target, opts)?;
    let mut inputs = records::input_entries(inv)?;
    let inputs_fp = records::inputs_fingerprint(&inputs);
    let plan_fp = plan_fingerprint(&prepared.jobs, opts.format);
    let store = Target::open_for_write(target, &opts.store)?;
    let _lock = crate::lock::acquire(&store, opts.stale_lock_after)?;
    let start = decide_start(&store, target, opts, &inputs_fp, &plan_fp)?;
    let (done, segments) = match start {
        Start::Fresh => {
            let m = marker(&inputs_fp, &plan_fp, inv.files.len());
            store.put(manifest::IN_PROGRESS_KEY, Bytes::from(m.to_pretty()))?;
            (HashMap::new(), 0)
        }
        Start::Resume(done, segments) => (done, segments),
    };

    let groups = inv.root.walk();
    if store.is_transactional() {
        // An Icechunk session takes an array's chunks only once it knows the array.
        write_structure(&groups, &prepared.jobs, &store, opts.format)?;
    }
    let total_bytes: u64 = prepared.jobs.iter().map(|j| groups[j.group].vars[j.var].nbytes()).sum();
    // The inputs' bytes are hashed beside the conversion, for append to tell a
    // re-delivered file from the one converted.
    let (collected, hashes) = std::thread::scope(|scope| {
        let hashing = scope.spawn(|| records::content_hashes(inv));
        let collected = run_engine(inv, &groups, &prepared, &store, opts, done, segments, total_bytes, None);
        (collected, hashing.join().expect("hashing thread"))
    });
    let collected = collected?;
    records::record_content(&mut inputs, hashes?);

    let mut manifest = Manifest::new(opts.format.number(), inputs);
    manifest.concat_dim = inv.concat_dim.clone();
    manifest.group = inv.root.source.clone();
    for (job, mut entry) in prepared.jobs.iter().zip(collected.arrays) {
        entry.empty.sort();
        manifest.arrays.insert(job.path.clone(), entry);
    }
    let run = records::current_run(&store)?;
    let meta_bytes = commit(&groups, &prepared.jobs, &store, opts.format, &manifest, &run)?;
    Ok(Summary {
        target: store.display().to_string(),
        files: inv.files.len(),
        arrays: prepared.jobs.len(),
        bytes_in: total_bytes,
        bytes_out: collected.bytes_out + meta_bytes,
        objects: collected.objects,
        empty_objects: collected.empty,
        resumed_objects: collected.resumed,
        seconds: started.elapsed().as_secs_f64(),
        notes: prepared.notes,
        skipped: prepared.skipped,
    })
}

/// Writes each group's and array's own document that is not there yet, parents
/// first. An Icechunk session needs them before the chunks (plain stores get them in
/// [`commit`]); a re-run of a committed conversion finds them all, and changes nothing.
pub fn write_structure(groups: &[&GroupInfo], jobs: &[ArrayJob], store: &Target, format: ZarrFormat) -> Result<()> {
    let group_docs = groups.iter().flat_map(|g| {
        meta::group_documents(format, attrs_json(&g.attrs))
            .into_iter()
            .map(|(k, doc)| (meta::join(&g.path, &k), doc))
    });
    let array_docs = jobs.iter().flat_map(|j| {
        j.meta
            .documents
            .iter()
            .map(|(k, doc)| (meta::join(&j.path, k), doc.clone()))
    });
    for (key, doc) in group_docs.chain(array_docs) {
        if store.get(&key)?.is_none() {
            store.put(&key, Bytes::from(doc.to_pretty()))?;
        }
    }
    Ok(())
}

/// Writes array and group metadata, the manifest and, last, consolidated metadata;
/// commits an Icechunk target's session (as `run`); then removes the in-progress marker
/// and the journal. Returns the bytes written.
pub fn commit(
    groups: &[&GroupInfo],
    jobs: &[ArrayJob],
    store: &Target,
    format: ZarrFormat,
    manifest: &Manifest,
    run: &str,
) -> Result<u64> {
    let mut written = 0u64;
    let mut put = |key: String, doc: &Json| -> Result<()> {
        let text = doc.to_pretty();
        written += text.len() as u64;
        store.put(&key, Bytes::from(text)).map_err(Error::from)
    };
    let mut nodes: Vec<NodeDocs> = Vec::new();
    for job in jobs {
        for (k, doc) in &job.meta.documents {
            put(meta::join(&job.path, k), doc)?;
        }
        nodes.push(NodeDocs {
            path: job.path.clone(),
            is_group: false,
            documents: job.meta.documents.clone(),
        });
    }
    for g in groups {
        nodes.push(NodeDocs {
            path: g.path.clone(),
            is_group: true,
            documents: meta::group_documents(format, attrs_json(&g.attrs)),
        });
    }
    nodes.sort_by(|a, b| a.path.cmp(&b.path));
    // Plain group documents (v3 group zarr.json are written once, with consolidation).
    if format == ZarrFormat::V2 {
        for n in nodes.iter().filter(|n| n.is_group) {
            for (k, doc) in &n.documents {
                put(meta::join(&n.path, k), doc)?;
            }
        }
    }
    let manifest_bytes = manifest.to_bytes();
    let manifest_len = manifest_bytes.len() as u64;
    // On an Icechunk target the manifest must not list what the branch does not hold
    // yet: it becomes current after the commit.
    let manifest_key = if store.is_transactional() {
        manifest::NEXT_MANIFEST_KEY
    } else {
        manifest::MANIFEST_KEY
    };
    store.put(manifest_key, Bytes::from(manifest_bytes))?;
    // Consolidated metadata: deepest groups first, the root last (the commit point).
    let mut group_paths: Vec<&str> = groups.iter().map(|g| g.path.as_str()).collect();
    group_paths.sort_by_key(|p| std::cmp::Reverse(if p.is_empty() { 0 } else { p.matches('/').count() + 1 }));
    for gp in group_paths {
        let subtree: Vec<NodeDocs> = nodes
            .iter()
            .filter(|n| gp.is_empty() || n.path == gp || n.path.starts_with(&format!("{gp}/")))
            .cloned()
            .collect();
        for (k, doc) in meta::consolidated(format, gp, &subtree) {
            put(meta::join(gp, &k), &doc)?;
        }
    }
    store.commit(&records::commit_message("convert", &manifest.inputs), run)?;
    if crate::settings::failpoint_is("after-commit") {
        std::process::abort(); // a kill after the commit, before the records beside it
    }
    records::finish_records(store)?;
    Ok(written + manifest_len)
}
