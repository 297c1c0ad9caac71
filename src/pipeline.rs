//! The execution engine of a conversion: reads, encodes, stores, journals.
//!
//! Data flows one way. A reader thread (netCDF calls are serialised by the library's
//! global lock) reads blocks, bounded by an in-flight byte budget. Each block's objects
//! are cut, encoded and hashed by rayon tasks while the reader moves on; finished
//! objects go to the uploader (at most `io_concurrency` requests in flight) and every
//! outcome is reported as an [`Event`] to one collector thread, which journals it,
//! builds the manifest entries and moves the progress bar.
//!
//! Two-pass arrays (see [`crate::plan::Strategy::TwoPass`]) are staged by the same
//! reader into intermediate chunks in a local temporary directory; once every block is
//! read, their objects are assembled from those chunks in parallel.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};

use bytes::Bytes;

use crate::error::{Error, InputError, Result};
use crate::journal;
use crate::manifest::{ArrayEntry, ObjectEntry};
use crate::meta::{self, Fill};
use crate::model::DType;
use crate::model::ZarrFormat;
use crate::model::{GroupInfo, Inventory, VarInfo};
use crate::plan::{self, ReadBlock, Strategy};
use crate::progress::Progress;
use crate::read::Reader;
use crate::slab::{At, Block, copy_box, grid_indices, volume};
use crate::store::{Target, Uploader};

/// What happened to one object, reported to the collector.
pub enum Event {
    /// Stored, left out as fill-only, or found done by an earlier run.
    Done {
        /// Index of the array.
        job: usize,
        /// The journal entry.
        entry: journal::Entry,
        /// Uncompressed input bytes it covers (for progress).
        input_bytes: u64,
        /// Found done by an earlier run.
        resumed: bool,
    },
    /// Something failed; the conversion stops.
    Failed(Error),
}

/// One array to write.
pub struct ArrayJob {
    /// Path of the array in the store.
    pub path: String,
    /// Index of its group in `inventory.root.walk()`.
    pub group: usize,
    /// Index of the variable in its group.
    pub var: usize,
    /// Chunks, shards, strategy and predicted memory.
    pub plan: crate::plan::ArrayPlan,
    /// Metadata and object layout.
    pub meta: crate::meta::ArrayMeta,
    /// The codec chain.
    pub codec: crate::codec::ChunkCodec,
    /// For appends: where the new data starts and what already exists.
    pub append: Option<AppendRegion>,
}

/// The part of an array an append rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendRegion {
    /// The concat axis.
    pub axis: usize,
    /// Length along the axis already in the store.
    pub existing_len: u64,
    /// First index rewritten: the start of the object holding `existing_len`.
    pub from: u64,
}

/// What the collector gathered.
#[derive(Default)]
pub struct Collected {
    /// Manifest entries per array.
    pub arrays: Vec<ArrayEntry>,
    /// Objects stored.
    pub objects: u64,
    /// Objects left out as fill-only.
    pub empty: u64,
    /// Objects found done by an earlier run.
    pub resumed: u64,
    /// Bytes stored.
    pub bytes_out: u64,
    /// The first error, if any.
    pub error: Option<Error>,
}

/// Receives events in one thread: journals finished objects (so a crash can resume),
/// builds the manifest entries and advances the progress bar.
pub fn collect(
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

/// State shared by the reader, the encoders and the upload callbacks.
pub struct Shared {
    cancel: AtomicBool,
    events: crossbeam_channel::Sender<Event>,
    done: HashMap<String, journal::Entry>,
}

impl Shared {
    /// Shared state reporting to `events`, skipping objects in `done`.
    pub fn new(events: crossbeam_channel::Sender<Event>, done: HashMap<String, journal::Entry>) -> Shared {
        Shared {
            cancel: AtomicBool::new(false),
            events,
            done,
        }
    }

    fn report(&self, event: Event) {
        if matches!(event, Event::Failed(_)) {
            self.cancel.store(true, Ordering::SeqCst);
        }
        // The collector outlives every sender, so this cannot fail.
        let _ = self.events.send(event);
    }

    fn cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }
}

/// A byte budget for blocks in flight. The buffers of finished blocks are kept as
/// spares for the next reads (their bytes stay counted until one is taken): fresh
/// buffers cost a page fault per page, reused ones do not.
struct Budget {
    state: Mutex<BudgetState>,
    freed: Condvar,
    cap: u64,
}

#[derive(Default)]
struct BudgetState {
    used: u64,
    spares: Vec<(Vec<u8>, u64)>,
}

impl Budget {
    fn new(cap: u64) -> Budget {
        Budget {
            state: Mutex::new(BudgetState::default()),
            freed: Condvar::new(),
            cap,
        }
    }

    /// Waits until `n` more bytes fit, and returns a spare buffer, if there is one
    /// (no longer counted: the caller reuses it for these `n` bytes or drops it).
    /// Spares beyond the one returned are dropped while waiting for room.
    fn acquire(&self, n: u64, cancel: &AtomicBool) -> Vec<u8> {
        let mut state = self.state.lock().expect("budget lock");
        let mut spare = Vec::new();
        loop {
            if let Some((buf, held)) = state.spares.pop() {
                state.used -= held;
                spare = buf; // an earlier one in hand is freed here
            }
            if state.used == 0 || state.used + n <= self.cap || cancel.load(Ordering::Relaxed) {
                break;
            }
            if state.spares.is_empty() {
                state = self.freed.wait(state).expect("budget lock");
            }
        }
        state.used += n;
        spare
    }

    fn release(&self, n: u64) {
        self.state.lock().expect("budget lock").used -= n;
        self.freed.notify_all();
    }

    /// Keeps `buf` (of a block that held `held` bytes, still counted) as a spare.
    fn offer_spare(&self, buf: Vec<u8>, held: u64) {
        self.state.lock().expect("budget lock").spares.push((buf, held));
        self.freed.notify_all();
    }
}

/// A block read from the sources, with the budget it holds.
struct Work<'a> {
    job: usize,
    block: ReadBlock,
    data: Block,
    stage: bool,
    budget: &'a Budget,
    held: u64,
}

impl Drop for Work<'_> {
    fn drop(&mut self) {
        match &mut self.data {
            Block::Fixed(buf) => self.budget.offer_spare(std::mem::take(buf), self.held),
            Block::Strings(_) => self.budget.release(self.held),
        }
    }
}

/// Everything the engine needs.
pub struct Engine<'a> {
    /// The merged inputs.
    pub inv: &'a Inventory,
    /// `inv.root.walk()`.
    pub groups: &'a [&'a GroupInfo],
    /// The arrays.
    pub jobs: &'a [ArrayJob],
    /// Where objects go.
    pub store: &'a Target,
    /// Zarr format (for keys).
    pub format: ZarrFormat,
    /// Encoding threads.
    pub workers: usize,
    /// Object-store requests in flight.
    pub io_concurrency: usize,
    /// Bytes of blocks in memory at once.
    pub inflight_bytes: u64,
    /// Where intermediate chunks of two-pass arrays go.
    pub temp_dir: &'a Path,
    /// For one task of a split run: the work units it owns, as (job, block index) for
    /// direct arrays and (job, `None`) for whole two-pass arrays. `None`: everything.
    pub owned: Option<&'a HashSet<(usize, Option<usize>)>>,
}

impl Engine<'_> {
    fn var(&self, job: &ArrayJob) -> &VarInfo {
        &self.groups[job.group].vars[job.var]
    }

    /// True when this run writes work unit (`job`, `block`).
    fn owns(&self, job: usize, block: Option<usize>) -> bool {
        self.owned.is_none_or(|o| o.contains(&(job, block)))
    }

    /// Runs the conversion's reads, encodes and uploads; outcomes go to `shared`.
    pub fn run(&self, shared: &Arc<Shared>) {
        let pool = match rayon::ThreadPoolBuilder::new().num_threads(self.workers.max(1)).build() {
            Ok(p) => p,
            Err(e) => return shared.report(Event::Failed(Error::Internal(format!("thread pool: {e}")))),
        };
        let staging = match self
            .jobs
            .iter()
            .any(|j| matches!(j.plan.strategy, Strategy::TwoPass { .. }))
        {
            false => None,
            true => match Staging::new(self.temp_dir) {
                Ok(s) => Some(s),
                Err(e) => return shared.report(Event::Failed(e)),
            },
        };
        let uploader = Uploader::with_concurrency(self.store, self.io_concurrency);
        self.read_phase(&pool, &uploader, staging.as_ref(), shared);
        if let Some(staging) = &staging
            && !shared.cancelled()
        {
            self.assemble_phase(&pool, &uploader, staging, shared);
        }
        uploader.wait();
    }

    /// Reads every Direct block (encoding its objects) and every two-pass stage block
    /// (writing its intermediate chunks).
    fn read_phase(
        &self,
        pool: &rayon::ThreadPool,
        uploader: &Uploader,
        staging: Option<&Staging>,
        shared: &Arc<Shared>,
    ) {
        let budget = Budget::new(self.inflight_bytes.max(1));
        let (tx, rx) = crossbeam_channel::bounded::<Work>(1);
        std::thread::scope(|scope| {
            scope.spawn(|| {
                let tx = tx; // owned here: the channel closes when the reader is done
                let mut reader = Reader::new();
                for (ji, job) in self.jobs.iter().enumerate() {
                    let (g, v) = (self.groups[job.group], self.var(job));
                    let (block_shape, stage) = match &job.plan.strategy {
                        Strategy::Direct { block } => (block, false),
                        Strategy::TwoPass { stage_block, .. } => (stage_block, true),
                    };
                    if stage && (!self.owns(ji, None) || self.report_if_all_done(ji, job, shared)) {
                        continue;
                    }
                    for (bi, block) in plan::blocks(&v.shape, block_shape).into_iter().enumerate() {
                        if !stage && !self.owns(ji, Some(bi)) {
                            continue; // another task's
                        }
                        if shared.cancelled() {
                            return;
                        }
                        if let Some(a) = job.append
                            && block.start[a.axis] + block.count[a.axis] <= a.from
                        {
                            continue; // already in the store, untouched by this append
                        }
                        if !stage && self.skip_finished_block(ji, job, &block, shared) {
                            continue;
                        }
                        let held = volume(&block.count) * v.dtype.planning_size();
                        let spare = budget.acquire(held, &shared.cancel);
                        // On the pool: direct chunk reads decode in parallel there.
                        let read = pool
                            .install(|| reader.read_reusing(self.inv, g, v, &block.start, &block.count, spare))
                            .map_err(Error::from)
                            .and_then(|mut data| self.overlay_existing(job, &block, &mut data).map(|()| data));
                        match read {
                            Ok(data) => {
                                let work = Work {
                                    job: ji,
                                    block,
                                    data,
                                    stage,
                                    budget: &budget,
                                    held,
                                };
                                if tx.send(work).is_err() {
                                    return;
                                }
                            }
                            Err(e) => {
                                budget.release(held);
                                shared.report(Event::Failed(e));
                                return;
                            }
                        }
                    }
                }
            });
            pool.in_place_scope(|s| {
                for work in rx.iter() {
                    let work = Arc::new(work);
                    let job = &self.jobs[work.job];
                    let unit = match (&job.plan.strategy, work.stage) {
                        (Strategy::TwoPass { inter, .. }, true) => inter,
                        _ => &job.plan.object_shape,
                    };
                    for idx in objects_in_block(&work.block, unit) {
                        let work = Arc::clone(&work);
                        s.spawn(move |_| {
                            if shared.cancelled() {
                                return;
                            }
                            failpoint("encode-panic");
                            let result = match staging {
                                Some(staging) if work.stage => self.stage_chunk(job, &work, &idx, staging),
                                _ => self.direct_object(job, &work, &idx, uploader, shared),
                            };
                            if let Err(e) = result {
                                shared.report(Event::Failed(e));
                            }
                        });
                    }
                }
            });
        });
    }

    /// Assembles the objects of two-pass arrays from their intermediate chunks; the
    /// pool's workers bound how many objects are in memory at once.
    fn assemble_phase(&self, pool: &rayon::ThreadPool, uploader: &Uploader, staging: &Staging, shared: &Arc<Shared>) {
        for (ji, job) in self.jobs.iter().enumerate() {
            let Strategy::TwoPass { inter, .. } = &job.plan.strategy else {
                continue;
            };
            if !self.owns(ji, None) {
                continue;
            }
            let v = self.var(job);
            let counts: Vec<u64> = v
                .shape
                .iter()
                .zip(&job.plan.object_shape)
                .map(|(n, o)| n.div_ceil(*o))
                .collect();
            pool.in_place_scope(|s| {
                for idx in grid_indices(&counts) {
                    s.spawn(move |_| {
                        if shared.cancelled() {
                            return;
                        }
                        if let Err(e) = self.assembled_object(ji, job, inter, &idx, staging, uploader, shared) {
                            shared.report(Event::Failed(e));
                        }
                    });
                }
            });
        }
    }

    /// For appends: fills the part of a block that lies in the store already (before
    /// `existing_len` along the concat axis) from the stored objects.
    fn overlay_existing(&self, job: &ArrayJob, block: &ReadBlock, data: &mut Block) -> Result<()> {
        let Some(a) = job.append else { return Ok(()) };
        if block.start[a.axis] >= a.existing_len {
            return Ok(());
        }
        let mut part = block.clone();
        part.count[a.axis] = a.existing_len - block.start[a.axis];
        let os = &job.plan.object_shape;
        let elem = self.var(job).dtype.size();
        for idx in objects_in_block(&part, os) {
            let key = meta::chunk_key(self.format, &job.path, &idx);
            let object = match self.store.get(&key)? {
                Some(bytes) => job.codec.decode(&bytes, os),
                None => job.codec.decode_fill(os),
            }
            .map_err(|e| Error::Internal(format!("decoding {key}: {e}")))?;
            let origin: Vec<u64> = idx.iter().zip(os).map(|(i, s)| i * s).collect();
            // The overlap of this object with the stored part of the block.
            let lo: Vec<u64> = origin.iter().zip(&part.start).map(|(o, s)| (*o).max(*s)).collect();
            let count: Vec<u64> = (0..lo.len())
                .map(|d| (origin[d] + os[d]).min(part.start[d] + part.count[d]) - lo[d])
                .collect();
            let from: Vec<u64> = lo.iter().zip(&origin).map(|(l, o)| l - o).collect();
            let to: Vec<u64> = lo.iter().zip(&block.start).map(|(l, s)| l - s).collect();
            let src = At {
                shape: os,
                start: &from,
            };
            let dst = At {
                shape: &block.count,
                start: &to,
            };
            match (&object, &mut *data, elem) {
                (Block::Fixed(o), Block::Fixed(d), Some(elem)) => copy_box(o, src, d, dst, &count, elem),
                (Block::Strings(o), Block::Strings(d), None) => copy_box(o, src, d, dst, &count, 1),
                _ => return Err(Error::Internal(format!("{key}: stored and new data differ in kind"))),
            }
        }
        Ok(())
    }

    /// Key and input bytes of object `idx`, and the resumed entry when it is done.
    fn object_info(&self, job: &ArrayJob, idx: &[u64], shared: &Shared) -> (String, u64, Option<journal::Entry>) {
        let v = self.var(job);
        let valid = valid_extent(idx, &job.plan.object_shape, &v.shape);
        let key = meta::chunk_key(self.format, &job.path, idx);
        let done = shared.done.get(&key).cloned();
        (key, volume(&valid) * v.dtype.planning_size(), done)
    }

    /// Key and input bytes of object `idx`, or `None` (after reporting it) when an
    /// earlier run already finished it.
    fn unless_done(&self, ji: usize, job: &ArrayJob, idx: &[u64], shared: &Shared) -> Option<(String, u64)> {
        let (key, input_bytes, done) = self.object_info(job, idx, shared);
        match done {
            Some(entry) => {
                shared.report(Event::Done {
                    job: ji,
                    entry,
                    input_bytes,
                    resumed: true,
                });
                None
            }
            None => Some((key, input_bytes)),
        }
    }

    /// On resume, reports every object of a two-pass array when all are done (its
    /// intermediate pass is then skipped). Returns whether it did.
    fn report_if_all_done(&self, ji: usize, job: &ArrayJob, shared: &Shared) -> bool {
        if shared.done.is_empty() {
            return false;
        }
        let v = self.var(job);
        let counts: Vec<u64> = v
            .shape
            .iter()
            .zip(&job.plan.object_shape)
            .map(|(n, o)| n.div_ceil(*o))
            .collect();
        let all = grid_indices(&counts);
        let infos: Vec<_> = all.iter().map(|idx| self.object_info(job, idx, shared)).collect();
        if infos.iter().any(|(_, _, done)| done.is_none()) {
            return false;
        }
        for (_, input_bytes, done) in infos {
            let entry = done.expect("checked");
            shared.report(Event::Done {
                job: ji,
                entry,
                input_bytes,
                resumed: true,
            });
        }
        true
    }

    /// On resume, skips reading a Direct block whose objects are all done (reporting them).
    fn skip_finished_block(&self, ji: usize, job: &ArrayJob, block: &ReadBlock, shared: &Shared) -> bool {
        if shared.done.is_empty() {
            return false;
        }
        let infos: Vec<_> = objects_in_block(block, &job.plan.object_shape)
            .iter()
            .map(|idx| self.object_info(job, idx, shared))
            .collect();
        if infos.iter().any(|(_, _, done)| done.is_none()) {
            return false;
        }
        for (_, input_bytes, done) in infos {
            shared.report(Event::Done {
                job: ji,
                entry: done.expect("checked"),
                input_bytes,
                resumed: true,
            });
        }
        true
    }

    /// Pass 1 of a two-pass array: stores one intermediate chunk (its valid part).
    fn stage_chunk(&self, job: &ArrayJob, work: &Work<'_>, idx: &[u64], staging: &Staging) -> Result<()> {
        let Strategy::TwoPass { inter, .. } = &job.plan.strategy else {
            unreachable!("staged arrays are two-pass")
        };
        let v = self.var(job);
        let origin: Vec<u64> = idx.iter().zip(inter).map(|(i, s)| i * s).collect();
        let valid = valid_extent(idx, inter, &v.shape);
        let Block::Fixed(data) = &work.data else {
            unreachable!("two-pass arrays have fixed-size elements")
        };
        let elem = v.dtype.size().expect("fixed size");
        let zeros = vec![0u64; valid.len()];
        let src_start: Vec<u64> = origin.iter().zip(&work.block.start).map(|(o, s)| o - s).collect();
        let mut buf = vec![0u8; volume(&valid) as usize * elem];
        copy_box(
            data,
            At {
                shape: &work.block.count,
                start: &src_start,
            },
            &mut buf,
            At {
                shape: &valid,
                start: &zeros,
            },
            &valid,
            elem,
        );
        staging.write(work.job, idx, &buf)
    }

    /// Cuts a Direct object out of its block and finishes it.
    fn direct_object(
        &self,
        job: &ArrayJob,
        work: &Work<'_>,
        idx: &[u64],
        uploader: &Uploader,
        shared: &Arc<Shared>,
    ) -> Result<()> {
        let Some((key, input_bytes)) = self.unless_done(work.job, job, idx, shared) else {
            return Ok(());
        };
        let v = self.var(job);
        let os = &job.plan.object_shape;
        let origin: Vec<u64> = idx.iter().zip(os).map(|(i, s)| i * s).collect();
        let object = if work.block.count == *os && work.block.start == origin {
            None
        } else {
            let valid = valid_extent(idx, os, &v.shape);
            Some(cut_object(
                &work.data,
                &work.block,
                &origin,
                &valid,
                os,
                &job.meta.fill,
                v.dtype,
            ))
        };
        self.finish_object(
            work.job,
            job,
            key,
            object.as_ref().unwrap_or(&work.data),
            input_bytes,
            uploader,
            shared,
        )
    }

    /// Pass 2 of a two-pass array: assembles one object from its intermediate chunks.
    #[allow(clippy::too_many_arguments)]
    fn assembled_object(
        &self,
        ji: usize,
        job: &ArrayJob,
        inter: &[u64],
        idx: &[u64],
        staging: &Staging,
        uploader: &Uploader,
        shared: &Arc<Shared>,
    ) -> Result<()> {
        let Some((key, input_bytes)) = self.unless_done(ji, job, idx, shared) else {
            return Ok(());
        };
        let v = self.var(job);
        let os = &job.plan.object_shape;
        let elem = v.dtype.size().expect("fixed size");
        let origin: Vec<u64> = idx.iter().zip(os).map(|(i, s)| i * s).collect();
        let valid = valid_extent(idx, os, &v.shape);
        let mut buf = fill_buffer(&job.meta.fill, volume(os) as usize, elem);
        // Intermediate chunks inside this object (objects are unions of whole ones).
        let first: Vec<u64> = origin.iter().zip(inter).map(|(o, i)| o / i).collect();
        let counts: Vec<u64> = valid.iter().zip(inter).map(|(v, i)| v.div_ceil(*i)).collect();
        for rel in grid_indices(&counts) {
            let ii: Vec<u64> = rel.iter().zip(&first).map(|(r, f)| r + f).collect();
            let part = staging.read(ji, &ii)?;
            let extent = valid_extent(&ii, inter, &v.shape);
            let at: Vec<u64> = ii.iter().zip(inter).zip(&origin).map(|((i, s), o)| i * s - o).collect();
            let zeros = vec![0u64; extent.len()];
            copy_box(
                &part,
                At {
                    shape: &extent,
                    start: &zeros,
                },
                &mut buf,
                At { shape: os, start: &at },
                &extent,
                elem,
            );
        }
        self.finish_object(ji, job, key, &Block::Fixed(buf), input_bytes, uploader, shared)
    }

    /// Skips a fill-only object; else encodes, hashes and uploads it. The outcome is
    /// reported once stored, so the journal only ever lists stored objects.
    #[allow(clippy::too_many_arguments)]
    fn finish_object(
        &self,
        ji: usize,
        job: &ArrayJob,
        key: String,
        object: &Block,
        input_bytes: u64,
        uploader: &Uploader,
        shared: &Arc<Shared>,
    ) -> Result<()> {
        if is_all_fill(object, job.meta.fill.as_ref()) {
            let entry = journal::Entry {
                key,
                blake3: None,
                size: 0,
            };
            shared.report(Event::Done {
                job: ji,
                entry,
                input_bytes,
                resumed: false,
            });
            return Ok(());
        }
        let encoded = job
            .codec
            .encode(object, &job.plan.object_shape)
            .map_err(|e| Error::Internal(format!("encoding {key}: {e}")))?;
        let entry = journal::Entry {
            key: key.clone(),
            blake3: Some(blake3::hash(&encoded).to_hex().to_string()),
            size: encoded.len() as u64,
        };
        let shared = Arc::clone(shared);
        // Runs on the I/O runtime: only report, never block.
        uploader.submit(key, Bytes::from(encoded), move |result| {
            shared.report(match result {
                Ok(()) => Event::Done {
                    job: ji,
                    entry,
                    input_bytes,
                    resumed: false,
                },
                Err(e) => Event::Failed(e.into()),
            });
        })?;
        Ok(())
    }
}

/// A local temporary directory for intermediate chunks, removed when dropped.
pub struct Staging {
    dir: tempfile::TempDir,
}

impl Staging {
    fn new(base: &Path) -> Result<Staging> {
        let dir = tempfile::Builder::new()
            .prefix("nc2zarr-")
            .tempdir_in(base)
            .map_err(|e| {
                Error::Input(InputError::Io {
                    path: base.to_path_buf(),
                    message: format!(
                        "cannot create a directory for intermediate data ({e}); choose one with --temp-dir"
                    ),
                })
            })?;
        Ok(Staging { dir })
    }

    fn path(&self, job: usize, idx: &[u64]) -> PathBuf {
        let name: Vec<String> = idx.iter().map(u64::to_string).collect();
        self.dir.path().join(job.to_string()).join(name.join("_"))
    }

    fn io_error(&self, path: &Path, e: std::io::Error) -> Error {
        Error::Input(InputError::Io {
            path: path.to_path_buf(),
            message: format!("intermediate data: {e}; free disk space or choose another --temp-dir"),
        })
    }

    fn write(&self, job: usize, idx: &[u64], bytes: &[u8]) -> Result<()> {
        let path = self.path(job, idx);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| self.io_error(parent, e))?;
        }
        std::fs::write(&path, bytes).map_err(|e| self.io_error(&path, e))
    }

    fn read(&self, job: usize, idx: &[u64]) -> Result<Vec<u8>> {
        let path = self.path(job, idx);
        std::fs::read(&path).map_err(|e| self.io_error(&path, e))
    }
}

/// A buffer of `n` elements holding the fill value (zeros when there is none).
fn fill_buffer(fill: &Option<Fill>, n: usize, elem: usize) -> Vec<u8> {
    match fill {
        Some(Fill::Bytes(f)) if f.iter().any(|&b| b != 0) => f.repeat(n),
        _ => vec![0u8; n * elem],
    }
}

/// Cuts one object out of a block, padding what lies outside the array with the fill value.
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
            let mut buf = fill_buffer(fill, n, elem);
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

/// Indices of the objects (or chunks of `unit` shape) a block covers.
pub fn objects_in_block(block: &ReadBlock, unit: &[u64]) -> Vec<Vec<u64>> {
    let first: Vec<u64> = block.start.iter().zip(unit).map(|(s, o)| s / o).collect();
    let counts: Vec<u64> = block.count.iter().zip(unit).map(|(c, o)| c.div_ceil(*o)).collect();
    grid_indices(&counts)
        .into_iter()
        .map(|idx| idx.iter().zip(&first).map(|(i, f)| i + f).collect())
        .collect()
}

/// The part of unit `idx` (of `unit` shape) that lies inside an array of `shape`.
pub fn valid_extent(idx: &[u64], unit: &[u64], shape: &[u64]) -> Vec<u64> {
    idx.iter()
        .zip(unit)
        .zip(shape)
        .map(|((i, u), n)| (*u).min(n - i * u))
        .collect()
}

/// Panics when `NC2ZARR_FAILPOINT` names `point`: lets tests prove that a bug in a worker
/// thread still releases the lock and removes scratch files on the way out.
fn failpoint(point: &str) {
    if crate::settings::failpoint_is(point) {
        panic!("failpoint {point}");
    }
}
