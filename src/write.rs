//! Stage 3: convert. Read blocks, encode objects in parallel, store them, and commit.
//!
//! Data flows one way: a reader thread (netCDF calls are serialised by the library's
//! global lock) reads blocks into memory, bounded by an in-flight byte budget; each
//! block's objects (chunks or shards) are encoded, hashed and stored by rayon tasks
//! while the reader moves on. Metadata is written only after every object is stored,
//! and consolidated metadata last: until then the target has no root metadata, so no
//! reader can open a partial dataset.

use std::collections::HashMap;
use std::io::Read as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use bytes::Bytes;

use crate::codec::{ChunkCodec, Compression};
use crate::error::{Error, InputError, Result, TargetError};
use crate::journal;
use crate::json::Json;
use crate::manifest::{self, ArrayEntry, InputEntry, Manifest, ObjectEntry};
use crate::meta::{self, ArrayMeta, Fill, NodeDocs, ZarrFormat};
use crate::model::{DType, attrs_json};
use crate::plan::{self, ChunkRequest, ReadBlock};
use crate::read::Reader;
use crate::report::Progress;
use crate::scan::{GroupInfo, Inventory, VarInfo};
use crate::slab::{At, Block, copy_box, grid_indices, volume};
use crate::store::{StoreOptions, Target, Uploader};

/// Options of a conversion.
#[derive(Debug, Clone)]
pub struct ConvertOptions {
    /// Zarr v2 or v3.
    pub format: ZarrFormat,
    /// Compression of every array.
    pub compression: Compression,
    /// Requested chunk lengths.
    pub chunks: ChunkRequest,
    /// Target uncompressed chunk size for dimensions not requested.
    pub target_chunk_bytes: u64,
    /// Replace an existing non-empty target.
    pub overwrite: bool,
    /// Discard an interrupted conversion in the target instead of resuming it.
    pub restart: bool,
    /// How to reach the target.
    pub store: StoreOptions,
    /// Skip variables and attributes Zarr cannot hold instead of failing.
    pub skip_unsupported: bool,
    /// Largest block read at once (when the chunk shape allows).
    pub max_block_bytes: u64,
    /// Bytes of blocks in memory at once (read, waiting or being encoded).
    pub inflight_bytes: u64,
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
            chunks: ChunkRequest::default(),
            target_chunk_bytes: plan::DEFAULT_CHUNK_BYTES,
            overwrite: false,
            restart: false,
            store: StoreOptions::default(),
            skip_unsupported: false,
            max_block_bytes: 256 << 20,
            inflight_bytes: 768 << 20,
            quiet: false,
            json: false,
        }
    }
}

/// One array to write.
pub struct ArrayJob {
    /// Path of the array in the store.
    pub path: String,
    /// Index of its group in `inventory.root.walk()`.
    pub group: usize,
    /// Index of the variable in its group.
    pub var: usize,
    /// Chunk shape.
    pub chunks: Vec<u64>,
    /// Metadata and object layout.
    pub meta: ArrayMeta,
    /// The codec chain.
    pub codec: ChunkCodec,
    /// Read blocks, in order.
    pub blocks: Vec<ReadBlock>,
}

/// The arrays to write and what was left out.
pub struct Prepared {
    /// Arrays in write order.
    pub jobs: Vec<ArrayJob>,
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
        use crate::report::human_bytes;
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

/// Decides chunking, metadata and read blocks of every array. Fails, before anything
/// is written, on unsupported types (unless skipped), bad names or bad chunk requests.
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
            if let Some(reason) = &v.unsupported {
                if opts.skip_unsupported {
                    skipped.push(reason.clone());
                } else {
                    problems.push(reason.clone());
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(Error::Input(InputError::Unsupported(format!(
            "{}; pass --skip-unsupported to convert the rest without them",
            problems.join("; ")
        ))));
    }
    for (dim, _) in &opts.chunks.per_dim {
        let known = groups.iter().any(|g| g.vars.iter().any(|v| v.dims.contains(dim)));
        if !known {
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
    let mut jobs = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        for (vi, v) in g.vars.iter().enumerate() {
            if v.unsupported.is_some() {
                continue;
            }
            meta::check_node_name(&v.name).map_err(|e| {
                Error::Input(InputError::Unsupported(format!(
                    "variable '{}': {e}",
                    g.var_path(&v.name)
                )))
            })?;
            jobs.push(prepare_array(g, gi, vi, v, opts, &mut notes)?);
        }
    }
    Ok(Prepared { jobs, notes, skipped })
}

fn prepare_array(
    g: &GroupInfo,
    gi: usize,
    vi: usize,
    v: &VarInfo,
    opts: &ConvertOptions,
    notes: &mut Vec<String>,
) -> Result<ArrayJob> {
    let is_dim_coord = v.dims.len() == 1 && v.dims[0] == v.name;
    let elem = v.dtype.planning_size();
    let chunks = plan::choose_chunks(
        &v.shape,
        &v.dims,
        elem,
        is_dim_coord,
        &opts.chunks,
        opts.target_chunk_bytes,
    );
    let meta = meta::array_metadata(opts.format, v, &chunks, None, &opts.compression);
    notes.extend(meta.notes.iter().cloned());
    let float32_packing = ["scale_factor", "add_offset"].iter().any(|k| {
        matches!(
            crate::model::attr(&v.attrs, k),
            Some(crate::model::AttrValue::Numbers(DType::F32, _))
        )
    });
    if float32_packing {
        notes.push(format!(
            "variable '{}': scale_factor/add_offset are float32, but Zarr attributes are JSON numbers, so xarray \
             unpacks it as float64 from Zarr (float32 from NetCDF); the packed values are identical",
            g.var_path(&v.name)
        ));
    }
    let codec = ChunkCodec::new(&meta.codec_metadata, v.dtype)
        .map_err(|e| Error::Internal(format!("codec for '{}': {e}", g.var_path(&v.name))))?;
    let blocks = plan::read_blocks(&v.shape, &meta.object_shape, elem, opts.max_block_bytes);
    Ok(ArrayJob {
        path: g.var_path(&v.name),
        group: gi,
        var: vi,
        chunks,
        meta,
        codec,
        blocks,
    })
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
    }
}

/// Decides how to start: refuses a non-empty target (unless `overwrite`), resumes an
/// interrupted run of the same conversion (unless `restart`), and refuses to resume a
/// different one. Touches nothing when it refuses.
fn open_target(target: &str, opts: &ConvertOptions, inputs_fp: &str, plan_fp: &str) -> Result<(Target, Start)> {
    let local_absent = Target::is_absent(target);
    let store = Target::open_for_write(target, &opts.store)?;
    if local_absent {
        return Ok((store, Start::Fresh));
    }
    let listed = store.list("")?;
    if listed.is_empty() {
        return Ok((store, Start::Fresh));
    }
    let interrupted = listed.iter().any(|l| l.key == manifest::IN_PROGRESS_KEY);
    if opts.overwrite || (interrupted && opts.restart) {
        crate::store::check_overwrite_allowed(target)?;
        store.delete_all()?;
        return Ok((store, Start::Fresh));
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
    let (entries, segments) = journal::load(&store)?;
    // Only objects that are still there, at the recorded size, count as done.
    let sizes: HashMap<&str, u64> = listed.iter().map(|l| (l.key.as_str(), l.size)).collect();
    let done = entries
        .into_iter()
        .filter(|(k, e)| e.blake3.is_none() || sizes.get(k.as_str()) == Some(&e.size))
        .collect();
    Ok((store, Start::Resume(done, segments)))
}

/// Fingerprint of the inputs: paths, sizes and the first 64 KiB of every file.
fn inputs_fingerprint(inv: &Inventory) -> Result<String> {
    let mut h = blake3::Hasher::new();
    for f in &inv.files {
        h.update(f.path.to_string_lossy().as_bytes());
        h.update(&f.size.to_le_bytes());
        let mut head = Vec::with_capacity(64 << 10);
        let file = std::fs::File::open(&f.path).map_err(|e| InputError::Io {
            path: f.path.clone(),
            message: e.to_string(),
        })?;
        std::io::Read::take(file, 64 << 10)
            .read_to_end(&mut head)
            .map_err(|e| InputError::Io {
                path: f.path.clone(),
                message: e.to_string(),
            })?;
        h.update(blake3::hash(&head).as_bytes());
    }
    Ok(h.finalize().to_hex().to_string())
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
    if Target::is_absent(target) {
        return Ok(());
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
    let listed = store.list("")?;
    let interrupted = listed.iter().any(|l| l.key == manifest::IN_PROGRESS_KEY);
    if !listed.is_empty() && !interrupted && !opts.overwrite {
        return Err(TargetError::Exists {
            target: store.display().to_string(),
        }
        .into());
    }
    if !listed.is_empty() && (opts.overwrite || opts.restart) {
        crate::store::check_overwrite_allowed(target)?;
    }
    Ok(())
}

/// A byte budget for blocks in flight.
struct Budget {
    used: Mutex<u64>,
    freed: Condvar,
    cap: u64,
}

impl Budget {
    fn acquire(&self, n: u64, cancel: &AtomicBool) {
        let mut used = self.used.lock().expect("budget lock");
        while *used > 0 && *used + n > self.cap && !cancel.load(Ordering::Relaxed) {
            used = self.freed.wait(used).expect("budget lock");
        }
        *used += n;
    }

    fn release(&self, n: u64) {
        *self.used.lock().expect("budget lock") -= n;
        self.freed.notify_all();
    }
}

/// A block read from the sources, with the budget it holds.
struct Work<'a> {
    job: usize,
    block: ReadBlock,
    data: Block,
    budget: &'a Budget,
    held: u64,
}

impl Drop for Work<'_> {
    fn drop(&mut self) {
        self.budget.release(self.held);
    }
}

/// What happened to one object, reported to the collector.
enum Event {
    /// Stored (or left out as fill-only, or found done by an earlier run).
    Done {
        job: usize,
        entry: journal::Entry,
        input_bytes: u64,
        resumed: bool,
    },
    /// Something failed; the conversion stops.
    Failed(Error),
}

/// State shared by the reader, the encoders and the upload callbacks.
struct Shared {
    cancel: AtomicBool,
    events: crossbeam_channel::Sender<Event>,
    done: HashMap<String, journal::Entry>,
}

impl Shared {
    fn report(&self, event: Event) {
        if matches!(event, Event::Failed(_)) {
            self.cancel.store(true, Ordering::SeqCst);
        }
        // The collector outlives every sender, so this cannot fail.
        let _ = self.events.send(event);
    }
}

/// What the collector gathered.
#[derive(Default)]
struct Collected {
    arrays: Vec<ArrayEntry>,
    objects: u64,
    empty: u64,
    resumed: u64,
    bytes_out: u64,
    error: Option<Error>,
}

/// Receives events in one thread: journals finished objects (so a crash can resume),
/// builds the manifest entries and advances the progress bar.
fn collect(
    events: crossbeam_channel::Receiver<Event>,
    journal: &journal::Journal,
    arrays: usize,
    progress: &Progress,
) -> Collected {
    let mut c = Collected {
        arrays: vec![ArrayEntry::default(); arrays],
        ..Default::default()
    };
    for event in events {
        match event {
            Event::Failed(e) => {
                c.error.get_or_insert(e);
            }
            Event::Done {
                job,
                entry,
                input_bytes,
                resumed,
            } => {
                if !resumed && let Err(e) = journal.record(entry.clone()) {
                    c.error.get_or_insert(e.into());
                }
                c.resumed += u64::from(resumed);
                match entry.blake3 {
                    Some(hash) => {
                        c.objects += 1;
                        c.bytes_out += entry.size;
                        c.arrays[job].objects.insert(
                            entry.key,
                            ObjectEntry {
                                blake3: hash,
                                size: entry.size,
                            },
                        );
                    }
                    None => {
                        c.empty += 1;
                        c.arrays[job].empty.push(entry.key);
                    }
                }
                progress.advance(input_bytes, c.objects + c.empty);
            }
        }
    }
    if let Err(e) = journal.flush() {
        c.error.get_or_insert(e.into());
    }
    c
}

/// Converts the inventory into `target`, resuming an interrupted run of the same
/// conversion when the target holds one.
pub fn convert(inv: &Inventory, target: &str, opts: &ConvertOptions) -> Result<Summary> {
    let started = Instant::now();
    let prepared = prepare(inv, opts)?;
    check_target(target, opts)?;
    let inputs_fp = inputs_fingerprint(inv)?;
    let plan_fp = plan_fingerprint(&prepared.jobs, opts.format);
    let (store, start) = open_target(target, opts, &inputs_fp, &plan_fp)?;
    let (done, segments) = match start {
        Start::Fresh => {
            let m = marker(&inputs_fp, &plan_fp, inv.files.len());
            store.put(manifest::IN_PROGRESS_KEY, Bytes::from(m.to_pretty()))?;
            (HashMap::new(), 0)
        }
        Start::Resume(done, segments) => (done, segments),
    };
    let inputs: Vec<InputEntry> = inv
        .files
        .iter()
        .map(|f| InputEntry {
            path: f.path.display().to_string(),
            size: f.size,
        })
        .collect();

    let groups = inv.root.walk();
    let total_bytes: u64 = prepared.jobs.iter().map(|j| groups[j.group].vars[j.var].nbytes()).sum();
    let progress = Progress::new(total_bytes, opts.json, opts.quiet);
    let journal = journal::Journal::new(&store, segments);
    let (tx, rx) = crossbeam_channel::unbounded();
    let shared = Arc::new(Shared {
        cancel: AtomicBool::new(false),
        events: tx,
        done,
    });
    let collected = std::thread::scope(|scope| {
        let collector = scope.spawn(|| collect(rx, &journal, prepared.jobs.len(), &progress));
        run_pipeline(inv, &groups, &prepared.jobs, &store, opts, &shared);
        drop(shared);
        collector.join().expect("collector thread")
    });
    progress.finish();
    if let Some(e) = collected.error {
        return Err(e);
    }

    let mut manifest = Manifest::new(opts.format.number(), inputs);
    for (job, mut entry) in prepared.jobs.iter().zip(collected.arrays) {
        entry.empty.sort();
        manifest.arrays.insert(job.path.clone(), entry);
    }
    let meta_bytes = commit(&groups, &prepared.jobs, &store, opts.format, &manifest)?;
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

fn run_pipeline(
    inv: &Inventory,
    groups: &[&GroupInfo],
    jobs: &[ArrayJob],
    store: &Target,
    opts: &ConvertOptions,
    shared: &Arc<Shared>,
) {
    let budget = Budget {
        used: Mutex::new(0),
        freed: Condvar::new(),
        cap: opts.inflight_bytes,
    };
    let uploader = Uploader::new(store);
    let (tx, rx) = crossbeam_channel::bounded::<Work>(1);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut reader = Reader::new();
            'jobs: for (ji, job) in jobs.iter().enumerate() {
                let (g, v) = (groups[job.group], &groups[job.group].vars[job.var]);
                for block in &job.blocks {
                    if shared.cancel.load(Ordering::Relaxed) {
                        break 'jobs;
                    }
                    if skip_finished_block(ji, job, v, block, opts.format, shared) {
                        continue;
                    }
                    let held = volume(&block.count) * v.dtype.planning_size();
                    budget.acquire(held, &shared.cancel);
                    match reader.read(inv, g, v, &block.start, &block.count) {
                        Ok(data) => {
                            let work = Work {
                                job: ji,
                                block: block.clone(),
                                data,
                                budget: &budget,
                                held,
                            };
                            if tx.send(work).is_err() {
                                break 'jobs;
                            }
                        }
                        Err(e) => {
                            budget.release(held);
                            shared.report(Event::Failed(e.into()));
                            break 'jobs;
                        }
                    }
                }
            }
            drop(tx);
        });
        rayon::in_place_scope(|s| {
            for work in rx.iter() {
                let work = Arc::new(work);
                let job = &jobs[work.job];
                let v = &groups[job.group].vars[job.var];
                for obj in objects_in_block(&work.block, &job.meta.object_shape) {
                    let work = Arc::clone(&work);
                    let uploader = &uploader;
                    s.spawn(move |_| {
                        if !shared.cancel.load(Ordering::Relaxed)
                            && let Err(e) = write_object(job, v, &work, &obj, uploader, opts.format, shared)
                        {
                            shared.report(Event::Failed(e));
                        }
                    });
                }
            }
        });
    });
    uploader.wait();
}

/// On resume, skips reading a block whose objects are all finished (and reports them).
fn skip_finished_block(
    ji: usize,
    job: &ArrayJob,
    v: &VarInfo,
    block: &ReadBlock,
    format: ZarrFormat,
    shared: &Shared,
) -> bool {
    if shared.done.is_empty() {
        return false;
    }
    let objects = objects_in_block(block, &job.meta.object_shape);
    let keys: Vec<String> = objects.iter().map(|o| meta::chunk_key(format, &job.path, o)).collect();
    if !keys.iter().all(|k| shared.done.contains_key(k)) {
        return false;
    }
    for (obj, key) in objects.iter().zip(keys) {
        let input_bytes = volume(&valid_extent(obj, &job.meta.object_shape, &v.shape)) * v.dtype.planning_size();
        shared.report(Event::Done {
            job: ji,
            entry: shared.done[&key].clone(),
            input_bytes,
            resumed: true,
        });
    }
    true
}

/// Indices of the objects a block covers.
fn objects_in_block(block: &ReadBlock, object_shape: &[u64]) -> Vec<Vec<u64>> {
    let first: Vec<u64> = block.start.iter().zip(object_shape).map(|(s, o)| s / o).collect();
    let counts: Vec<u64> = block
        .count
        .iter()
        .zip(object_shape)
        .map(|(c, o)| c.div_ceil(*o))
        .collect();
    grid_indices(&counts)
        .into_iter()
        .map(|idx| idx.iter().zip(&first).map(|(i, f)| i + f).collect())
        .collect()
}

/// The part of object `obj` that lies inside the array.
fn valid_extent(obj: &[u64], object_shape: &[u64], shape: &[u64]) -> Vec<u64> {
    obj.iter()
        .zip(object_shape)
        .zip(shape)
        .map(|((i, s), n)| (*s).min(n - i * s))
        .collect()
}

/// Cuts one object out of a block (padding edges with the fill value), skips it when
/// it holds only fill values, else encodes, hashes and uploads it.
fn write_object(
    job: &ArrayJob,
    v: &VarInfo,
    work: &Arc<Work<'_>>,
    obj: &[u64],
    uploader: &Uploader,
    format: ZarrFormat,
    shared: &Arc<Shared>,
) -> Result<()> {
    let os = &job.meta.object_shape;
    let origin: Vec<u64> = obj.iter().zip(os).map(|(i, s)| i * s).collect();
    let valid = valid_extent(obj, os, &v.shape);
    let input_bytes = volume(&valid) * v.dtype.planning_size();
    let key = meta::chunk_key(format, &job.path, obj);
    if let Some(entry) = shared.done.get(&key) {
        shared.report(Event::Done {
            job: work.job,
            entry: entry.clone(),
            input_bytes,
            resumed: true,
        });
        return Ok(());
    }
    let whole = work.block.count == *os && work.block.start == origin;
    let cut;
    let object = if whole {
        &work.data
    } else {
        cut = cut_object(&work.data, &work.block, &origin, &valid, os, &job.meta.fill, v.dtype);
        &cut
    };
    if is_all_fill(object, job.meta.fill.as_ref()) {
        let entry = journal::Entry {
            key,
            blake3: None,
            size: 0,
        };
        shared.report(Event::Done {
            job: work.job,
            entry,
            input_bytes,
            resumed: false,
        });
        return Ok(());
    }
    let encoded = job
        .codec
        .encode(object, os)
        .map_err(|e| Error::Internal(format!("encoding {key}: {e}")))?;
    let entry = journal::Entry {
        key: key.clone(),
        blake3: Some(blake3::hash(&encoded).to_hex().to_string()),
        size: encoded.len() as u64,
    };
    let (job_index, shared) = (work.job, Arc::clone(shared));
    // Runs on the I/O runtime: only report, never block. An object enters the journal
    // only once stored, so a resume never skips a lost one.
    uploader.submit(key, Bytes::from(encoded), move |result| {
        shared.report(match result {
            Ok(()) => Event::Done {
                job: job_index,
                entry,
                input_bytes,
                resumed: false,
            },
            Err(e) => Event::Failed(e.into()),
        });
    })?;
    Ok(())
}

fn cut_object(
    data: &Block,
    block: &ReadBlock,
    origin: &[u64],
    valid: &[u64],
    os: &[u64],
    fill: &Option<Fill>,
    dtype: DType,
) -> Block {
    let src_start: Vec<u64> = origin.iter().zip(&block.start).map(|(o, s)| o - s).collect();
    let zeros = vec![0u64; os.len()];
    let n = volume(os) as usize;
    let from = At {
        shape: &block.count,
        start: &src_start,
    };
    let to = At {
        shape: os,
        start: &zeros,
    };
    match data {
        Block::Fixed(bytes) => {
            let elem = dtype.size().expect("fixed size");
            let mut buf = match fill {
                Some(Fill::Bytes(f)) if f.iter().any(|&b| b != 0) => f.repeat(n),
                _ => vec![0u8; n * elem],
            };
            copy_box(bytes, from, &mut buf, to, valid, elem);
            Block::Fixed(buf)
        }
        Block::Strings(strings) => {
            let mut buf = vec![String::new(); n];
            copy_box(strings, from, &mut buf, to, valid, 1);
            Block::Strings(buf)
        }
    }
}

fn is_all_fill(block: &Block, fill: Option<&Fill>) -> bool {
    match (block, fill) {
        (Block::Fixed(b), Some(Fill::Bytes(f))) => !f.is_empty() && b.chunks_exact(f.len()).all(|c| c == f.as_slice()),
        (Block::Strings(v), Some(Fill::EmptyString)) => v.iter().all(String::is_empty),
        _ => false,
    }
}

/// Writes array and group metadata, the manifest and, last, consolidated metadata;
/// then removes the in-progress marker and the journal. Returns the bytes written.
fn commit(
    groups: &[&GroupInfo],
    jobs: &[ArrayJob],
    store: &Target,
    format: ZarrFormat,
    manifest: &Manifest,
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
    store.put(manifest::MANIFEST_KEY, Bytes::from(manifest_bytes))?;
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
    store.delete(manifest::IN_PROGRESS_KEY)?;
    for segment in store.list(journal::JOURNAL_PREFIX)? {
        store.delete(&segment.key)?;
    }
    Ok(written + manifest_len)
}
