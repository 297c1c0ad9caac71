//! Stage 2: plan. Choose chunk (and shard) shapes and a memory-bounded schedule.
//!
//! Pure functions of shapes, sizes and a memory budget: no I/O, no netCDF, no zarrs.
//!
//! For every array the planner picks one of two strategies and predicts its peak
//! memory (the whole process: base, open files, blocks in flight, encoders, uploads):
//!
//! - **Direct**: read blocks of whole output objects straight from the sources. Cheap
//!   when objects follow the source layout (ingest: `time=24 × full grid`); when they
//!   cut across source chunks, every block re-inflates the source chunks it touches
//!   (*read amplification*).
//! - **Two-pass** (rechunker's idea): pass 1 reads the sources in their own layout and
//!   writes intermediate chunks to a local temporary directory; pass 2 assembles each
//!   output object from them. Reads every source byte once, costs temporary disk.
//!
//! It chooses the cheapest strategy that fits the budget, and refuses, naming the
//! smallest budget that would work, when none fits.

use std::str::FromStr;

/// Largest uncompressed source chunk the direct reader reads. Each reading thread holds
/// up to three buffers of a chunk's size (stored bytes, inflated, unshuffled), which
/// the plan counts per worker.
pub const DIRECT_READ_MAX_CHUNK_BYTES: u64 = 4 << 20;

/// Default target size of one uncompressed chunk.
pub const DEFAULT_CHUNK_BYTES: u64 = 16 << 20;

/// Memory of the process before any data: code, libraries, runtimes, HDF5 state.
pub const BASE_BYTES: u64 = 56 << 20;
/// Per open source file: HDF5 metadata cache and the (small) chunk cache nc2zarr sets.
pub const OPEN_FILE_BYTES: u64 = 8 << 20;
/// Source files kept open at once by a reader.
pub const OPEN_FILES: u64 = 2;
/// HDF5 chunk cache per variable and open file (set small: blocks cover whole chunks).
pub const HDF5_CHUNK_CACHE_BYTES: usize = 2 << 20;
/// Per encoding worker: compressor state and scratch.
pub const CODEC_BYTES: u64 = 8 << 20;
/// Most memory spent on extra blocks in flight beyond the minimum the plan needs.
pub const EXTRA_INFLIGHT_BYTES: u64 = 256 << 20;
/// Largest block read at once, even when memory would allow more.
pub const MAX_BLOCK_BYTES: u64 = 512 << 20;
/// Preferred largest pass-1 block of a two-pass rechunk (more saves nothing).
pub const STAGE_BLOCK_BYTES: u64 = 64 << 20;
/// Relative cost of writing and reading back one byte of intermediate data, against
/// inflating one byte of compressed source (measured: local disk/page cache vs zlib).
const TEMP_IO_COST: f64 = 0.2;
/// Relative cost of re-reading one byte of an uncompressed source.
const RAW_READ_COST: f64 = 0.25;

/// What a dimension means, from CF attributes and names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Role {
    /// Time (`axis = "T"`, `units = "… since …"`).
    Time,
    /// Vertical levels.
    Vertical,
    /// Latitude / projection y.
    Y,
    /// Longitude / projection x.
    X,
    /// Anything else (bounds, stations, …).
    Other,
}

impl Role {
    /// Default shrink priority of `auto` chunks: lower shrinks first.
    pub fn default_priority(self) -> u8 {
        match self {
            Role::Time => 0,
            Role::Vertical | Role::Other => 1,
            Role::Y | Role::X => 2,
        }
    }
}

/// How to size chunks along a dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DimRule {
    /// Exactly this many elements (capped by the dimension).
    Size(u64),
    /// The whole dimension.
    Full,
    /// Shrunk as needed to reach the target chunk size; lower priorities shrink first,
    /// dimensions of equal priority shrink together (tiles).
    Auto(u8),
}

/// A [`DimRule`] per role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RoleRules {
    rules: [DimRule; 5],
}

impl Default for RoleRules {
    /// Everything `auto`, time shrinking first, then vertical/other, then y/x together.
    fn default() -> Self {
        let r = |role: Role| DimRule::Auto(role.default_priority());
        RoleRules {
            rules: [r(Role::Time), r(Role::Vertical), r(Role::Y), r(Role::X), r(Role::Other)],
        }
    }
}

impl RoleRules {
    fn index(role: Role) -> usize {
        match role {
            Role::Time => 0,
            Role::Vertical => 1,
            Role::Y => 2,
            Role::X => 3,
            Role::Other => 4,
        }
    }

    /// The rule for `role`.
    pub fn get(&self, role: Role) -> DimRule {
        self.rules[Self::index(role)]
    }

    /// Sets the rule for `role`.
    pub fn set(&mut self, role: Role, rule: DimRule) {
        self.rules[Self::index(role)] = rule;
    }
}

/// A chunk length requested for one dimension on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum DimChunk {
    /// This many elements.
    Size(u64),
    /// The whole dimension.
    Full,
}

/// Chunk lengths requested per dimension name (`--chunks time=24,lat=full`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChunkRequest {
    /// Requested lengths by dimension name.
    pub per_dim: Vec<(String, DimChunk)>,
}

impl FromStr for ChunkRequest {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let mut per_dim: Vec<(String, DimChunk)> = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, value) = item
                .rsplit_once('=')
                .ok_or_else(|| format!("chunk spec {item:?} is not DIM=N (e.g. time=24)"))?;
            let name = name.trim();
            if name.is_empty() {
                return Err(format!("chunk spec {item:?} has no dimension name"));
            }
            let value = value.trim();
            let chunk = match value {
                "full" | "all" | "-1" => DimChunk::Full,
                _ => match value.parse::<u64>() {
                    Ok(0) => {
                        return Err(format!(
                            "chunk length for '{name}' must be at least 1 (use 'full' for the whole dimension)"
                        ));
                    }
                    Ok(n) => DimChunk::Size(n),
                    Err(_) => {
                        return Err(format!(
                            "chunk length {value:?} for '{name}' is not a positive integer or 'full'"
                        ));
                    }
                },
            };
            if per_dim.iter().any(|(n, _)| n == name) {
                return Err(format!("dimension '{name}' is given twice in --chunks"));
            }
            per_dim.push((name.to_string(), chunk));
        }
        Ok(ChunkRequest { per_dim })
    }
}

impl ChunkRequest {
    /// The request for `dim`, if any.
    pub fn get(&self, dim: &str) -> Option<DimChunk> {
        self.per_dim.iter().find(|(n, _)| n == dim).map(|(_, c)| *c)
    }
}

/// How chunks should be shaped.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChunkPolicy {
    /// Explicit `--chunks`, which win over the rules.
    pub request: ChunkRequest,
    /// Per-role rules (from a preset, or the defaults).
    pub rules: RoleRules,
    /// Target uncompressed chunk size for `auto` dimensions.
    pub target_chunk_bytes: u64,
    /// Target uncompressed shard size (Zarr v3); `None` for no sharding.
    pub shard_bytes: Option<u64>,
}

impl Default for ChunkPolicy {
    fn default() -> Self {
        ChunkPolicy {
            request: ChunkRequest::default(),
            rules: RoleRules::default(),
            target_chunk_bytes: DEFAULT_CHUNK_BYTES,
            shard_bytes: None,
        }
    }
}

/// What the planner needs to know about one array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArrayInput {
    /// Path in the store (for messages).
    pub path: String,
    /// Dimension names.
    pub dims: Vec<String>,
    /// Dimension roles.
    pub roles: Vec<Role>,
    /// Shape.
    pub shape: Vec<u64>,
    /// Bytes per element in memory.
    pub elem_bytes: u64,
    /// A 1-D coordinate of its own dimension (always one chunk).
    pub is_dim_coordinate: bool,
    /// Position of the concat dimension.
    pub concat_axis: Option<usize>,
    /// Lengths of the files along the concat dimension, in order.
    pub file_lengths: Vec<u64>,
    /// Source chunk shape (netCDF-4 chunked), `None` for contiguous storage.
    pub source_chunks: Option<Vec<u64>>,
    /// Whether source chunks are compressed (inflating costs CPU).
    pub source_compressed: bool,
    /// Whether elements are variable-length (strings: never two-pass).
    pub variable_length: bool,
    /// Chunk and shard shapes fixed beforehand (an existing store on append).
    pub fixed_layout: Option<(Vec<u64>, Option<Vec<u64>>)>,
}

impl ArrayInput {
    /// Per worker: buffers of direct chunk reads (the direct reader): the stored,
    /// inflated and unshuffled bytes of one source chunk.
    fn read_scratch_bytes(&self) -> u64 {
        let chunk = self
            .source_chunks
            .as_ref()
            .map_or(0, |c| c.iter().product::<u64>() * self.elem_bytes);
        if chunk <= DIRECT_READ_MAX_CHUNK_BYTES {
            3 * chunk
        } else {
            0
        }
    }

    /// Uncompressed bytes.
    pub fn bytes(&self) -> u64 {
        self.shape.iter().product::<u64>() * self.elem_bytes
    }
}

/// Chooses the chunk shape of an array: explicit requests first, then the role rules.
/// `auto` dimensions start whole and shrink, lowest priority first (equal priorities
/// together, so they form tiles), until a chunk holds at most the target size; a shrunk
/// dimension is split into equal parts (361 → 2 × 181). 1-D dimension coordinates are
/// one chunk.
pub fn choose_chunks(a: &ArrayInput, policy: &ChunkPolicy) -> Vec<u64> {
    let mut chunks: Vec<u64> = a.shape.iter().map(|&n| n.max(1)).collect();
    if a.is_dim_coordinate {
        return chunks;
    }
    let mut priority: Vec<Option<u8>> = vec![None; chunks.len()];
    for (k, dim) in a.dims.iter().enumerate() {
        let rule = match policy.request.get(dim) {
            Some(DimChunk::Size(n)) => DimRule::Size(n),
            Some(DimChunk::Full) => DimRule::Full,
            None => policy.rules.get(a.roles[k]),
        };
        match rule {
            // Along the concat dimension the length asked for is kept, even beyond the
            // array's: appends fill the chunk (a cron store started from one file).
            DimRule::Size(n) if a.concat_axis == Some(k) => chunks[k] = n.max(1),
            DimRule::Size(n) => chunks[k] = n.min(a.shape[k]).max(1),
            DimRule::Full => {}
            DimRule::Auto(p) => priority[k] = Some(p),
        }
    }
    let mut levels: Vec<u8> = priority.iter().flatten().copied().collect();
    levels.sort_unstable();
    levels.dedup();
    let bytes = |c: &[u64]| c.iter().product::<u64>() * a.elem_bytes;
    for level in levels {
        let group: Vec<usize> = (0..chunks.len()).filter(|&k| priority[k] == Some(level)).collect();
        // Shrink the group's dimensions by a common factor until the chunk fits.
        while bytes(&chunks) > policy.target_chunk_bytes && group.iter().any(|&k| chunks[k] > 1) {
            let shrinkable: Vec<usize> = group.iter().copied().filter(|&k| chunks[k] > 1).collect();
            let ratio = policy.target_chunk_bytes as f64 / bytes(&chunks) as f64;
            let factor = ratio.powf(1.0 / shrinkable.len() as f64);
            for &k in &shrinkable {
                let fit = ((chunks[k] as f64 * factor).floor() as u64).clamp(1, chunks[k] - 1);
                chunks[k] = equal_split(a.shape[k], fit);
            }
        }
        if bytes(&chunks) <= policy.target_chunk_bytes {
            break;
        }
    }
    chunks
}

/// The chunk length that splits `n` into equal parts of at most `fit`.
fn equal_split(n: u64, fit: u64) -> u64 {
    let n = n.max(1);
    n.div_ceil(n.div_ceil(fit.max(1)))
}

/// A shard shape (multiple of `chunks`) of about `shard_bytes`, growing along the
/// outermost dimensions first; `None` when a shard would hold a single chunk.
pub fn choose_shards(shape: &[u64], chunks: &[u64], elem_bytes: u64, shard_bytes: u64) -> Option<Vec<u64>> {
    let mut shard = chunks.to_vec();
    let bytes = |s: &[u64]| s.iter().product::<u64>() * elem_bytes;
    for k in 0..shard.len() {
        let room = shard_bytes / bytes(&shard).max(1);
        if room < 2 {
            break;
        }
        let chunks_in_dim = shape[k].max(1).div_ceil(chunks[k]);
        let mult = room.min(chunks_in_dim);
        shard[k] = chunks[k] * mult;
    }
    (shard != chunks).then_some(shard)
}

/// Resources a conversion may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resources {
    /// Peak memory of the whole process must stay at or under this.
    pub max_mem: u64,
    /// Encoding threads available.
    pub workers: usize,
    /// Object-store requests wanted in flight.
    pub io_concurrency: usize,
}

/// How an array is produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Strategy {
    /// Read blocks of whole objects from the sources.
    Direct {
        /// Block extents (a block covers whole objects).
        block: Vec<u64>,
    },
    /// Pass 1: read `stage_block`s and store intermediate chunks of shape `inter`
    /// locally; pass 2: assemble each object from its intermediate chunks.
    TwoPass {
        /// Pass-1 block extents.
        stage_block: Vec<u64>,
        /// Intermediate chunk shape; every object is a union of whole intermediate chunks.
        inter: Vec<u64>,
    },
}

/// The plan of one array.
#[derive(Debug, Clone, PartialEq)]
pub struct ArrayPlan {
    /// Path in the store.
    pub path: String,
    /// Chunk shape.
    pub chunks: Vec<u64>,
    /// Shard shape (v3 sharding).
    pub shards: Option<Vec<u64>>,
    /// Shape of one stored object (shard or chunk).
    pub object_shape: Vec<u64>,
    /// How it is produced.
    pub strategy: Strategy,
    /// Predicted peak memory while producing it.
    pub peak_memory: u64,
    /// Source bytes inflated per output byte.
    pub read_amplification: f64,
    /// Bytes of intermediate data (two-pass).
    pub intermediate_bytes: u64,
    /// Stored objects (upper bound: fill-only objects are skipped).
    pub objects: u64,
    /// Uncompressed bytes.
    pub bytes: u64,
    /// The array's shape.
    pub shape: Vec<u64>,
}

/// The plan of a whole conversion.
#[derive(Debug, Clone, PartialEq)]
pub struct JobPlan {
    /// Per array, in input order.
    pub arrays: Vec<ArrayPlan>,
    /// Encoding threads to use.
    pub workers: usize,
    /// Object-store requests in flight.
    pub io_concurrency: usize,
    /// Bytes of read blocks allowed in memory at once.
    pub inflight_bytes: u64,
    /// Predicted peak memory of the process.
    pub peak_memory: u64,
    /// The budget.
    pub max_mem: u64,
    /// Source bytes inflated per output byte, over all arrays.
    pub read_amplification: f64,
    /// Intermediate bytes over all arrays.
    pub intermediate_bytes: u64,
    /// Objects over all arrays.
    pub objects: u64,
}

/// Why no plan fits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "array '{path}' cannot be converted within --max-mem {}: with its {} objects it needs {} (pass --max-mem {}MiB or more, or smaller --chunks)",
    crate::units::human_bytes(*max_mem),
    crate::units::human_bytes(*object_bytes),
    crate::units::human_bytes(*needed),
    needed.div_ceil(1 << 20)
)]
pub struct PlanError {
    /// The array.
    pub path: String,
    /// Size of one of its objects.
    pub object_bytes: u64,
    /// The smallest budget that would work.
    pub needed: u64,
    /// The budget given.
    pub max_mem: u64,
}

/// Memory of the Direct strategy with blocks of `block_bytes`.
/// Blocks alive at once: one being read and one per encoding worker.
fn blocks_in_flight(workers: u64) -> u64 {
    workers + 1
}

fn direct_memory(block_bytes: u64, object_bytes: u64, whole: bool, workers: u64, io: u64, scratch: u64) -> u64 {
    let per_worker = CODEC_BYTES + scratch + object_bytes + if whole { 0 } else { object_bytes };
    BASE_BYTES
        + OPEN_FILES * OPEN_FILE_BYTES
        + blocks_in_flight(workers) * block_bytes
        + workers * per_worker
        + io * object_bytes
}

/// Memory of the two-pass strategy (the larger of its passes).
fn two_pass_memory(stage_bytes: u64, inter_bytes: u64, object_bytes: u64, workers: u64, io: u64, scratch: u64) -> u64 {
    let pass1 = BASE_BYTES
        + OPEN_FILES * OPEN_FILE_BYTES
        + blocks_in_flight(workers) * stage_bytes
        + workers * (scratch + inter_bytes);
    let pass2 = BASE_BYTES + workers * (CODEC_BYTES + 2 * object_bytes + inter_bytes) + io * object_bytes;
    pass1.max(pass2)
}

/// Block extents that hold one object along dims `< k` and whole dims from `k`.
fn block_at(shape: &[u64], object: &[u64], k: usize) -> Vec<u64> {
    (0..shape.len())
        .map(|d| {
            if d < k {
                object[d].min(shape[d])
            } else {
                shape[d].max(1)
            }
        })
        .collect()
}

/// Source bytes inflated per array byte when reading blocks of `block` extents.
pub fn read_amplification(a: &ArrayInput, block: &[u64]) -> f64 {
    let Some(src) = &a.source_chunks else { return 1.0 };
    let mut amp = 1.0;
    for d in 0..a.shape.len() {
        let n = a.shape[d];
        if n == 0 {
            continue;
        }
        // Source chunks restart in every file along the concat dimension.
        let segments: Vec<u64> = if Some(d) == a.concat_axis && !a.file_lengths.is_empty() {
            a.file_lengths.clone()
        } else {
            vec![n]
        };
        let mut inflated = 0u64;
        let mut seg_start = 0u64;
        for len in segments {
            let c = src[d].clamp(1, len.max(1));
            let mut b0 = seg_start - seg_start % block[d];
            while b0 < seg_start + len {
                let lo = b0.max(seg_start) - seg_start;
                let hi = (b0 + block[d]).min(seg_start + len) - seg_start;
                // Every source chunk the block touches is inflated whole.
                for k in lo / c..hi.div_ceil(c) {
                    inflated += c.min(len - k * c);
                }
                b0 += block[d];
            }
            seg_start += len;
        }
        amp *= inflated as f64 / n as f64;
    }
    amp
}

/// Plans every array within `resources`.
pub fn plan(inputs: &[ArrayInput], policy: &ChunkPolicy, resources: Resources) -> Result<JobPlan, PlanError> {
    let shaped: Vec<(Vec<u64>, Option<Vec<u64>>)> = inputs
        .iter()
        .map(|a| {
            if let Some(fixed) = &a.fixed_layout {
                return fixed.clone();
            }
            let chunks = choose_chunks(a, policy);
            let shards = policy.shard_bytes.and_then(|sb| {
                // A shard never takes more than an eighth of the budget.
                let cap = sb.min(resources.max_mem / 8);
                if a.is_dim_coordinate || a.variable_length {
                    None
                } else {
                    choose_shards(&a.shape, &chunks, a.elem_bytes, cap)
                }
            });
            (chunks, shards)
        })
        .collect();
    // Refuse up front, naming the budget the most demanding array needs.
    let mut worst: Option<PlanError> = None;
    for (a, (chunks, shards)) in inputs.iter().zip(&shaped) {
        let object = shards.as_ref().unwrap_or(chunks);
        let needed = minimal_memory(a, object, resources.max_mem);
        if needed > resources.max_mem && worst.as_ref().is_none_or(|w| needed > w.needed) {
            let object_bytes = object.iter().product::<u64>() * a.elem_bytes;
            worst = Some(PlanError {
                path: a.path.clone(),
                object_bytes,
                needed,
                max_mem: resources.max_mem,
            });
        }
    }
    if let Some(e) = worst {
        return Err(e);
    }
    let mut arrays = Vec::new();
    let mut workers = resources.workers.max(1);
    let mut io = resources.io_concurrency.max(1);
    for (a, (chunks, shards)) in inputs.iter().zip(shaped) {
        let object_shape = shards.clone().unwrap_or_else(|| chunks.clone());
        let planned = plan_array(a, &chunks, shards, &object_shape, resources, &mut workers, &mut io)?;
        arrays.push(planned);
    }
    let peak = arrays.iter().map(|p| p.peak_memory).max().unwrap_or(BASE_BYTES);
    let total: u64 = arrays.iter().map(|p| p.bytes).sum();
    let amp = if total == 0 {
        1.0
    } else {
        arrays
            .iter()
            .map(|p| p.read_amplification * p.bytes as f64)
            .sum::<f64>()
            / total as f64
    };
    let largest_block = arrays
        .iter()
        .map(|p| match &p.strategy {
            Strategy::Direct { block } | Strategy::TwoPass { stage_block: block, .. } => {
                block.iter().product::<u64>() * elem_of(inputs, &p.path)
            }
        })
        .max()
        .unwrap_or(0);
    // Where memory allows, up to 2 more blocks per worker (at most EXTRA_INFLIGHT_BYTES)
    // keep the workers busy while a read waits its turn on the pool (measured on 2
    // cores: 1.74 -> 1.80-1.94 CPUs busy).
    let extra = (resources.max_mem.saturating_sub(peak).min(EXTRA_INFLIGHT_BYTES) / largest_block.max(1))
        .min(2 * workers as u64);
    let peak = peak + extra * largest_block;
    let inflight = (blocks_in_flight(workers as u64) + extra) * largest_block;
    Ok(JobPlan {
        workers,
        io_concurrency: io,
        inflight_bytes: inflight,
        peak_memory: peak,
        max_mem: resources.max_mem,
        read_amplification: amp,
        intermediate_bytes: arrays.iter().map(|p| p.intermediate_bytes).sum(),
        objects: arrays.iter().map(|p| p.objects).sum(),
        arrays,
    })
}

fn elem_of(inputs: &[ArrayInput], path: &str) -> u64 {
    inputs.iter().find(|a| a.path == path).map_or(1, |a| a.elem_bytes)
}

/// One feasible way to produce an array.
struct Candidate {
    strategy: Strategy,
    memory: u64,
    amplification: f64,
    intermediate: u64,
    cost: f64,
}

/// Every way to produce `a` with `w` workers and `io` requests in flight.
fn candidates(a: &ArrayInput, object_shape: &[u64], w: u64, io: u64, max_mem: u64) -> Vec<Candidate> {
    let bytes = a.bytes();
    let object_bytes = object_shape.iter().product::<u64>() * a.elem_bytes;
    let decode_cost = if a.source_compressed { 1.0 } else { RAW_READ_COST };
    let mut out = Vec::new();
    for k in 0..=a.shape.len() {
        let block = block_at(&a.shape, object_shape, k);
        let block_bytes = block.iter().product::<u64>() * a.elem_bytes;
        if block_bytes > MAX_BLOCK_BYTES.max(object_bytes) {
            continue;
        }
        let whole = block == object_shape;
        let memory = direct_memory(block_bytes, object_bytes, whole, w, io, a.read_scratch_bytes());
        let amplification = read_amplification(a, &block);
        // Among equal costs, prefer smaller blocks: memory is only spent where it saves reads.
        let cost = amplification * bytes as f64 * decode_cost - k as f64 * 1e-3;
        out.push(Candidate {
            strategy: Strategy::Direct { block },
            memory,
            amplification,
            intermediate: 0,
            cost,
        });
    }
    // A fixed layout means an append of new data: reading it once is all there is.
    if a.fixed_layout.is_none() {
        out.extend(two_pass(a, object_shape, w, io, bytes, decode_cost, max_mem));
    }
    out
}

/// The least memory any strategy needs for `a` (one worker, one request in flight).
fn minimal_memory(a: &ArrayInput, object_shape: &[u64], max_mem: u64) -> u64 {
    candidates(a, object_shape, 1, 1, max_mem.max(u64::MAX / 4))
        .iter()
        .map(|c| c.memory)
        .min()
        .unwrap_or(u64::MAX)
}

fn plan_array(
    a: &ArrayInput,
    chunks: &[u64],
    shards: Option<Vec<u64>>,
    object_shape: &[u64],
    resources: Resources,
    workers: &mut usize,
    io: &mut usize,
) -> Result<ArrayPlan, PlanError> {
    let objects: u64 = a.shape.iter().zip(object_shape).map(|(n, o)| n.div_ceil(*o)).product();
    // The wanted workers first, then fewer. With a number of workers, the cheapest
    // candidate at any I/O concurrency that fits, preferring more I/O on equal costs
    // (less I/O concurrency is cheaper than reading data twice).
    for w in (1..=*workers).rev() {
        let mut best: Option<(Candidate, usize)> = None;
        let mut i = *io;
        loop {
            let fitting = candidates(a, object_shape, w as u64, i as u64, resources.max_mem)
                .into_iter()
                .filter(|c| c.memory <= resources.max_mem)
                .min_by(|x, y| x.cost.total_cmp(&y.cost));
            if let Some(c) = fitting
                && best.as_ref().is_none_or(|(b, _)| c.cost < b.cost)
            {
                best = Some((c, i));
            }
            if i == 1 {
                break;
            }
            i = (i / 2).max(1);
        }
        if let Some((c, i)) = best {
            *workers = w;
            *io = i;
            return Ok(ArrayPlan {
                path: a.path.clone(),
                chunks: chunks.to_vec(),
                shards,
                object_shape: object_shape.to_vec(),
                strategy: c.strategy,
                peak_memory: c.memory,
                read_amplification: c.amplification,
                intermediate_bytes: c.intermediate,
                objects,
                bytes: a.bytes(),
                shape: a.shape.clone(),
            });
        }
    }
    let object_bytes = object_shape.iter().product::<u64>() * a.elem_bytes;
    let needed = minimal_memory(a, object_shape, resources.max_mem);
    Err(PlanError {
        path: a.path.clone(),
        object_bytes,
        needed,
        max_mem: resources.max_mem,
    })
}

/// Two-pass candidates: intermediate chunks `(t, object[1..])` for every divisor `t` of
/// `object[0]` whose pass-1 block fits, largest first.
fn two_pass(
    a: &ArrayInput,
    object: &[u64],
    w: u64,
    io: u64,
    bytes: u64,
    decode_cost: f64,
    max_mem: u64,
) -> Vec<Candidate> {
    if a.variable_length || a.shape.is_empty() || a.is_dim_coordinate || a.shape.contains(&0) {
        return Vec::new();
    }
    let row: u64 = a.shape[1..].iter().product::<u64>() * a.elem_bytes;
    let object_bytes = object.iter().product::<u64>() * a.elem_bytes;
    let inter_row: u64 = object[1..].iter().product::<u64>() * a.elem_bytes;
    let o0 = object[0].min(a.shape[0]);
    let mut out = Vec::new();
    // Divisors of o0, largest first, from the largest whose block stays under the
    // preferred size (or the smallest, when even one row is larger).
    let divisors: Vec<u64> = (1..=o0).rev().filter(|t| o0.is_multiple_of(*t)).collect();
    let first = divisors
        .iter()
        .position(|t| t * row <= STAGE_BLOCK_BYTES)
        .unwrap_or(divisors.len() - 1);
    for &t in &divisors[first..] {
        let stage_bytes = t * row;
        let memory = two_pass_memory(stage_bytes, t * inter_row, object_bytes, w, io, a.read_scratch_bytes());
        if memory > max_mem {
            continue;
        }
        let mut stage_block = a.shape.clone();
        stage_block[0] = t;
        let amplification = read_amplification(a, &stage_block);
        let cost = amplification * bytes as f64 * decode_cost + 2.0 * TEMP_IO_COST * bytes as f64;
        let mut inter = object.to_vec();
        inter[0] = t;
        out.push(Candidate {
            strategy: Strategy::TwoPass { stage_block, inter },
            memory,
            amplification,
            intermediate: bytes,
            cost,
        });
    }
    out
}

/// A piece of a conversion that one task of a split run writes alone: a read block of
/// a direct array (it covers whole objects), or a whole two-pass array (its objects
/// are assembled from intermediate chunks of the whole array).
#[derive(Debug, Clone, PartialEq)]
pub struct WorkUnit {
    /// Index of the array in [`JobPlan::arrays`].
    pub array: usize,
    /// The block, for direct arrays; `None` for a whole two-pass array.
    pub block: Option<ReadBlock>,
    /// Uncompressed bytes.
    pub bytes: u64,
    /// Objects written.
    pub objects: u64,
}

/// Every unit of work of `plan`, in the order the engine runs them.
pub fn work_units(plan: &JobPlan) -> Vec<WorkUnit> {
    let mut out = Vec::new();
    for (i, a) in plan.arrays.iter().enumerate() {
        let elements: u64 = a.shape.iter().product();
        if elements == 0 {
            continue;
        }
        let elem = a.bytes / elements;
        match &a.strategy {
            Strategy::TwoPass { .. } => out.push(WorkUnit {
                array: i,
                block: None,
                bytes: a.bytes,
                objects: a.objects,
            }),
            Strategy::Direct { block } => {
                for b in blocks(&a.shape, block) {
                    let objects = b
                        .count
                        .iter()
                        .zip(&a.object_shape)
                        .map(|(c, o)| c.div_ceil(*o))
                        .product();
                    out.push(WorkUnit {
                        array: i,
                        bytes: b.count.iter().product::<u64>() * elem,
                        block: Some(b),
                        objects,
                    });
                }
            }
        }
    }
    out
}

/// The task (0..`tasks`) of each unit. Each array's units are cut into `tasks`
/// contiguous runs balanced by its bytes, run `t` to task `t`: every task writes the same
/// stretch of every array, so it reads the same few source files for all of them (the
/// files of its part of the concat dimension), and no task takes more than its share of
/// an array plus one unit. An array of fewer units than tasks (a two-pass array, a
/// coordinate) goes unit by unit to the task with the fewest bytes so far.
/// Deterministic: every task computes the same split.
pub fn split(units: &[WorkUnit], tasks: usize) -> Vec<usize> {
    let tasks = tasks.max(1);
    let mut of_array: std::collections::BTreeMap<usize, Vec<usize>> = std::collections::BTreeMap::new();
    for (i, u) in units.iter().enumerate() {
        of_array.entry(u.array).or_default().push(i);
    }
    let mut owner = vec![0; units.len()];
    let mut load = vec![0u128; tasks];
    let (spread, few): (Vec<_>, Vec<_>) = of_array.into_values().partition(|idx| idx.len() >= tasks);
    for idx in spread {
        let total: u128 = idx.iter().map(|&i| u128::from(units[i].bytes)).sum::<u128>().max(1);
        let mut before = 0u128;
        for i in idx {
            // The task whose share of the array holds the unit's middle byte.
            let bytes = u128::from(units[i].bytes);
            let middle = before + bytes / 2;
            before += bytes;
            let t = ((middle * tasks as u128 / total) as usize).min(tasks - 1);
            owner[i] = t;
            load[t] += bytes;
        }
    }
    for i in few.into_iter().flatten() {
        let t = (0..tasks).min_by_key(|&t| load[t]).unwrap_or(0);
        owner[i] = t;
        load[t] += u128::from(units[i].bytes);
    }
    owner
}

/// Uncompressed bytes and objects of each task when `units` are split between `tasks`
/// (see [`split`]).
pub fn task_totals(units: &[WorkUnit], tasks: usize) -> Vec<(u64, u64)> {
    let owner = split(units, tasks);
    let mut out = vec![(0u64, 0u64); tasks.max(1)];
    for (u, t) in units.iter().zip(owner) {
        out[t].0 += u.bytes;
        out[t].1 += u.objects;
    }
    out
}

/// A box of an array read in one go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadBlock {
    /// First element.
    pub start: Vec<u64>,
    /// Elements per dimension.
    pub count: Vec<u64>,
}

/// The blocks of extents `block` that tile an array of `shape`, in C order.
pub fn blocks(shape: &[u64], block: &[u64]) -> Vec<ReadBlock> {
    if shape.contains(&0) {
        return Vec::new();
    }
    let counts: Vec<u64> = shape.iter().zip(block).map(|(n, b)| n.div_ceil((*b).max(1))).collect();
    crate::slab::grid_indices(&counts)
        .into_iter()
        .map(|idx| {
            let start: Vec<u64> = idx.iter().zip(block).map(|(i, b)| i * b).collect();
            let count = start
                .iter()
                .zip(block)
                .zip(shape)
                .map(|((s, b), n)| (*b).min(n - s))
                .collect();
            ReadBlock { start, count }
        })
        .collect()
}

/// Splits an array into read blocks of whole objects of at most `max_bytes` when
/// possible: blocks span the inner dimensions whole and step over outer ones one object
/// at a time, from the outermost dimension that makes them fit.
pub fn read_blocks(shape: &[u64], object_shape: &[u64], elem_bytes: u64, max_bytes: u64) -> Vec<ReadBlock> {
    let k = (0..=shape.len())
        .find(|&k| block_at(shape, object_shape, k).iter().product::<u64>() * elem_bytes <= max_bytes)
        .unwrap_or(shape.len());
    blocks(shape, &block_at(shape, object_shape, k))
}

#[cfg(test)]
mod tests {
    use super::Strategy;
    use super::*;
    use proptest::prelude::*;

    fn input(shape: &[u64], roles: &[Role], elem: u64) -> ArrayInput {
        ArrayInput {
            path: "v".into(),
            dims: (0..shape.len()).map(|i| format!("d{i}")).collect(),
            roles: roles.to_vec(),
            shape: shape.to_vec(),
            elem_bytes: elem,
            is_dim_coordinate: false,
            concat_axis: Some(0),
            file_lengths: vec![],
            source_chunks: None,
            source_compressed: false,
            variable_length: false,
            fixed_layout: None,
        }
    }

    /// The full ERA5-like benchmark variable: 12 monthly files, chunks of one step.
    fn era5() -> ArrayInput {
        let mut a = input(&[1464, 361, 720], &[Role::Time, Role::Y, Role::X], 4);
        a.dims = vec!["time".into(), "latitude".into(), "longitude".into()];
        a.file_lengths = vec![124, 116, 124, 120, 124, 120, 124, 124, 120, 124, 120, 124];
        a.source_chunks = Some(vec![1, 361, 720]);
        a.source_compressed = true;
        a
    }

    fn res(max_mem: u64) -> Resources {
        Resources {
            max_mem,
            workers: 2,
            io_concurrency: 16,
        }
    }

    #[test]
    fn parses_chunk_requests() {
        let r: ChunkRequest = "time=24, lat=full,lon=-1".parse().unwrap();
        assert_eq!(r.get("time"), Some(DimChunk::Size(24)));
        assert_eq!(r.get("lat"), Some(DimChunk::Full));
        assert_eq!(r.get("lon"), Some(DimChunk::Full));
        assert!("time=0".parse::<ChunkRequest>().unwrap_err().contains("at least 1"));
        assert!("time".parse::<ChunkRequest>().unwrap_err().contains("not DIM=N"));
        assert!(
            "time=x"
                .parse::<ChunkRequest>()
                .unwrap_err()
                .contains("not a positive integer")
        );
        assert!("time=1,time=2".parse::<ChunkRequest>().unwrap_err().contains("twice"));
        assert!("=3".parse::<ChunkRequest>().unwrap_err().contains("no dimension name"));
    }

    #[test]
    fn default_chunks_keep_whole_maps_and_shrink_time() {
        assert_eq!(choose_chunks(&era5(), &ChunkPolicy::default()), vec![16, 361, 720]);
    }

    #[test]
    fn chunk_rules_from_requests_presets_and_coordinates() {
        let a = era5();
        let mut p = ChunkPolicy {
            request: "time=24".parse().unwrap(),
            ..Default::default()
        };
        // time pinned: the maps (priority 2, together) shrink into equal tiles.
        assert_eq!(choose_chunks(&a, &p), vec![24, 181, 360]);
        p.request = "time=24,latitude=full,longitude=full".parse().unwrap();
        assert_eq!(choose_chunks(&a, &p), vec![24, 361, 720]);
        let mut coord = input(&[1464], &[Role::Time], 4);
        coord.is_dim_coordinate = true;
        assert_eq!(
            choose_chunks(
                &coord,
                &ChunkPolicy {
                    target_chunk_bytes: 16,
                    ..Default::default()
                }
            ),
            vec![1464]
        );
        // Zero-length and scalar arrays.
        let z = input(&[0, 5], &[Role::Time, Role::Other], 4);
        assert_eq!(
            choose_chunks(
                &z,
                &ChunkPolicy {
                    target_chunk_bytes: 16,
                    ..Default::default()
                }
            ),
            vec![1, 3]
        );
        let s = input(&[], &[], 4);
        assert_eq!(choose_chunks(&s, &ChunkPolicy::default()), Vec::<u64>::new());
    }

    #[test]
    fn shards_grow_along_outer_dimensions() {
        assert_eq!(
            choose_shards(&[1464, 361, 720], &[24, 361, 720], 4, 256 << 20),
            Some(vec![240, 361, 720])
        );
        assert_eq!(choose_shards(&[10, 4], &[10, 4], 4, 1 << 20), None);
        assert_eq!(choose_shards(&[100, 100], &[10, 10], 1, 1000), Some(vec![100, 10]));
    }

    #[test]
    fn ingest_chunks_read_each_source_chunk_once() {
        let a = era5();
        let p = ChunkPolicy {
            request: "time=24,latitude=full,longitude=full".parse().unwrap(),
            ..Default::default()
        };
        let plan = plan(std::slice::from_ref(&a), &p, res(256 << 20)).unwrap();
        let ap = &plan.arrays[0];
        assert_eq!(
            ap.strategy,
            Strategy::Direct {
                block: vec![24, 361, 720]
            }
        );
        assert_eq!(ap.read_amplification, 1.0);
        assert!(plan.peak_memory <= 256 << 20, "{}", plan.peak_memory);
        assert_eq!(ap.objects, 61);
    }

    #[test]
    fn time_series_chunks_go_through_an_intermediate_store() {
        // Regression: the full rechunk, time=all x 46 x 90, at 256 MiB.
        let a = era5();
        let p = ChunkPolicy {
            request: "time=full,latitude=46,longitude=90".parse().unwrap(),
            ..Default::default()
        };
        for budget in [256u64 << 20, 512 << 20, 1 << 30] {
            let plan = plan(std::slice::from_ref(&a), &p, res(budget)).unwrap();
            let ap = &plan.arrays[0];
            assert!(
                matches!(ap.strategy, Strategy::TwoPass { .. }),
                "{budget}: {:?}",
                ap.strategy
            );
            assert_eq!(ap.read_amplification, 1.0);
            assert_eq!(ap.intermediate_bytes, a.bytes());
            assert!(plan.peak_memory <= budget);
        }
        // Reading latitude bands directly would inflate each map ~8 times.
        let band = read_amplification(&a, &[1464, 46, 720]);
        assert!(band > 7.0 && band < 9.0, "{band}");
    }

    #[test]
    fn refuses_with_the_smallest_budget_that_works() {
        let a = era5();
        let p = ChunkPolicy {
            request: "time=full,latitude=full,longitude=full".parse().unwrap(),
            ..Default::default()
        };
        let e = plan(std::slice::from_ref(&a), &p, res(512 << 20)).unwrap_err();
        assert!(e.needed > a.bytes() && e.needed < 8 * a.bytes(), "{e:?}");
        assert!(
            e.to_string().contains("cannot be converted within --max-mem 512.0 MiB"),
            "{e}"
        );
        // ... and the budget it names (rounded up to MiB) does work.
        let named = e.needed.div_ceil(1 << 20) << 20;
        assert!(
            e.to_string().contains(&format!("pass --max-mem {}MiB", named >> 20)),
            "{e}"
        );
        assert!(plan(std::slice::from_ref(&a), &p, res(named)).is_ok());
    }

    #[test]
    fn amplification_counts_partial_source_chunks_per_file() {
        let mut a = input(&[10], &[Role::Time], 1);
        a.source_chunks = Some(vec![4]);
        a.file_lengths = vec![5, 5];
        // Blocks of 5 match the files: chunks [0,4) [4,5) per file: no waste.
        assert_eq!(read_amplification(&a, &[5]), 1.0);
        // Blocks of 2: each file's chunk of 4 is inflated twice.
        assert!(read_amplification(&a, &[2]) > 1.5);
        a.source_chunks = None;
        assert_eq!(read_amplification(&a, &[2]), 1.0);
    }

    #[test]
    fn read_blocks_pick_the_outermost_fitting_split() {
        let b = read_blocks(&[10, 4, 6], &[3, 4, 6], 1, 100);
        assert_eq!(b.len(), 4);
        assert_eq!(
            b[3],
            ReadBlock {
                start: vec![9, 0, 0],
                count: vec![1, 4, 6]
            }
        );
        let b = read_blocks(&[10, 4, 6], &[10, 2, 6], 1, 130);
        assert_eq!(b.len(), 2);
        assert_eq!(
            b[1],
            ReadBlock {
                start: vec![0, 2, 0],
                count: vec![10, 2, 6]
            }
        );
        assert!(read_blocks(&[0, 3], &[1, 3], 1, 100).is_empty());
        assert_eq!(
            read_blocks(&[], &[], 8, 100),
            vec![ReadBlock {
                start: vec![],
                count: vec![]
            }]
        );
    }

    fn objects_of(block: &ReadBlock, object: &[u64]) -> Vec<Vec<u64>> {
        let first: Vec<u64> = block.start.iter().zip(object).map(|(s, o)| s / o).collect();
        let counts: Vec<u64> = block.count.iter().zip(object).map(|(c, o)| c.div_ceil(*o)).collect();
        crate::slab::grid_indices(&counts)
            .into_iter()
            .map(|i| i.iter().zip(&first).map(|(a, b)| a + b).collect())
            .collect()
    }

    proptest! {
        #[test]
        fn plans_fit_the_budget_and_write_every_object_once(
            shape in proptest::collection::vec(1u64..40, 1..4),
            seed in proptest::collection::vec(1u64..12, 3),
            source in proptest::collection::vec(1u64..10, 3),
            files in 1usize..4,
            budget_mib in 60u64..400,
            compressed in any::<bool>(),
        ) {
            let n = shape.len();
            let mut a = input(&shape, &vec![Role::Other; n], 4096);
            let request = (0..n).map(|i| format!("d{i}={}", seed[i])).collect::<Vec<_>>().join(",");
            let per = (shape[0] as usize).div_ceil(files) as u64;
            a.file_lengths = (0..shape[0]).step_by(per as usize).map(|s| per.min(shape[0] - s)).collect();
            a.source_chunks = Some(source[..n].to_vec());
            a.source_compressed = compressed;
            let policy = ChunkPolicy { request: request.parse().unwrap(), ..Default::default() };
            let budget = budget_mib << 20;
            match plan(std::slice::from_ref(&a), &policy, res(budget)) {
                Ok(p) => {
                    prop_assert!(p.peak_memory <= budget);
                    let ap = &p.arrays[0];
                    let obj = &ap.object_shape;
                    let mut seen = std::collections::HashSet::new();
                    match &ap.strategy {
                        Strategy::Direct { block } => {
                            for b in blocks(&shape, block) {
                                for o in objects_of(&b, obj) {
                                    prop_assert!(seen.insert(o), "object written twice");
                                }
                            }
                        }
                        Strategy::TwoPass { stage_block, inter } => {
                            // Every object is a union of whole intermediate chunks.
                            for d in 0..n {
                                prop_assert!(obj[d] % inter[d] == 0 || inter[d] >= shape[d]);
                            }
                            let mut inter_seen = std::collections::HashSet::new();
                            for b in blocks(&shape, stage_block) {
                                for i in objects_of(&b, inter) {
                                    prop_assert!(inter_seen.insert(i), "intermediate chunk written twice");
                                }
                            }
                            let counts: Vec<u64> = shape.iter().zip(inter).map(|(s, i)| s.div_ceil(*i)).collect();
                            prop_assert_eq!(inter_seen.len() as u64, counts.iter().product::<u64>());
                            // Pass 2, checked by geometry alone: each object gathers the
                            // intermediate chunks inside its box; together the objects must
                            // take every chunk pass 1 wrote, each exactly once.
                            let mut gathered = std::collections::HashSet::new();
                            let grid: Vec<u64> = shape.iter().zip(obj).map(|(s, o)| s.div_ceil(*o)).collect();
                            for idx in crate::slab::grid_indices(&grid) {
                                let lo: Vec<u64> = idx.iter().zip(obj).map(|(i, o)| i * o).collect();
                                let hi: Vec<u64> = lo.iter().zip(obj).zip(&shape).map(|((l, o), s)| (l + o).min(*s)).collect();
                                let first: Vec<u64> = lo.iter().zip(inter).map(|(l, i)| l / i).collect();
                                let span: Vec<u64> = (0..n).map(|d| hi[d].div_ceil(inter[d]) - first[d]).collect();
                                for rel in crate::slab::grid_indices(&span) {
                                    let chunk: Vec<u64> = rel.iter().zip(&first).map(|(r, f)| r + f).collect();
                                    prop_assert!(gathered.insert(chunk), "an intermediate chunk goes into two objects");
                                }
                                seen.insert(idx);
                            }
                            prop_assert!(gathered == inter_seen, "objects do not gather exactly the chunks pass 1 wrote");
                        }
                    }
                    let expected: u64 = shape.iter().zip(obj).map(|(s, o)| s.div_ceil(*o)).product();
                    prop_assert_eq!(seen.len() as u64, expected, "objects cover the array");
                    prop_assert_eq!(ap.objects, expected);
                }
                Err(e) => {
                    // Refused: then the named budget must work.
                    prop_assert!(e.needed > budget);
                    prop_assert!(plan(std::slice::from_ref(&a), &policy, res(e.needed)).is_ok());
                }
            }
        }

        #[test]
        fn a_split_writes_every_object_once_and_balances_bytes(
            shape in proptest::collection::vec(1u64..30, 1..4),
            seed in proptest::collection::vec(1u64..8, 3),
            budget_mib in 60u64..400,
            tasks in 1usize..=64,
        ) {
            let n = shape.len();
            let a = input(&shape, &vec![Role::Other; n], 4096);
            let request = (0..n).map(|i| format!("d{i}={}", seed[i])).collect::<Vec<_>>().join(",");
            let policy = ChunkPolicy { request: request.parse().unwrap(), ..Default::default() };
            let Ok(p) = plan(&[a.clone(), a], &policy, res(budget_mib << 20)) else { return Ok(()) };
            let units = work_units(&p);
            let owner = split(&units, tasks);
            prop_assert_eq!(owner.len(), units.len());
            // Contiguous within an array spread over every task: task numbers never go down.
            for ai in 0..p.arrays.len() {
                let mine: Vec<usize> = units.iter().zip(&owner).filter(|(u, _)| u.array == ai).map(|(_, t)| *t).collect();
                if mine.len() >= tasks {
                    prop_assert!(mine.windows(2).all(|w| w[0] <= w[1]));
                }
            }
            // Every object of every array in exactly one task, checked by geometry.
            for (ai, ap) in p.arrays.iter().enumerate() {
                let mut seen = std::collections::HashMap::new();
                for (u, t) in units.iter().zip(&owner).filter(|(u, _)| u.array == ai) {
                    let objects = match &u.block {
                        Some(b) => objects_of(b, &ap.object_shape),
                        None => crate::slab::grid_indices(
                            &ap.shape.iter().zip(&ap.object_shape).map(|(s, o)| s.div_ceil(*o)).collect::<Vec<_>>(),
                        ),
                    };
                    for o in objects {
                        prop_assert!(seen.insert(o, *t).is_none(), "an object in two units");
                    }
                }
                prop_assert_eq!(seen.len() as u64, ap.objects);
            }
            // Balanced: no task over its share by more than one unit of each array.
            let total: u64 = units.iter().map(|u| u.bytes).sum();
            let slack: u64 = (0..p.arrays.len())
                .map(|ai| units.iter().filter(|u| u.array == ai).map(|u| u.bytes).max().unwrap_or(0))
                .sum();
            for t in 0..tasks {
                let mine: u64 = units.iter().zip(&owner).filter(|(_, o)| **o == t).map(|(u, _)| u.bytes).sum();
                prop_assert!(mine <= total / tasks as u64 + slack + 1, "task {t}: {mine} of {total}");
            }
        }

        #[test]
        fn chunks_fit_the_target_unless_pinned(
            shape in proptest::collection::vec(1u64..5000, 1..4),
            target in 64u64..(64 << 20),
        ) {
            let a = input(&shape, &vec![Role::Time; shape.len()], 8);
            let c = choose_chunks(&a, &ChunkPolicy { target_chunk_bytes: target, ..Default::default() });
            for (ci, si) in c.iter().zip(&shape) {
                prop_assert!(*ci >= 1 && ci <= si);
            }
            prop_assert!(c.iter().product::<u64>() * 8 <= target);
        }
    }

    #[test]
    fn task_totals_add_up_each_tasks_units() {
        let units: Vec<WorkUnit> = [10u64, 30, 20, 40, 5]
            .iter()
            .enumerate()
            .map(|(i, &bytes)| WorkUnit {
                array: 0,
                block: None,
                bytes,
                objects: i as u64 + 1,
            })
            .collect();
        // Middle bytes 5, 25, 50, 80, 102 of 105 over 2 tasks: the first three go to task 0.
        assert_eq!(task_totals(&units, 2), vec![(60, 6), (45, 9)]);
        assert_eq!(task_totals(&units, 1), vec![(105, 15)]);
        assert_eq!(task_totals(&[], 3), vec![(0, 0); 3]);
    }
}
