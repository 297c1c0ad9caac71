//! Command-line arguments (clap), and their resolution into stage options
//! (flags over preset over built-in defaults).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::codec::Compression;
use crate::model::ZarrFormat;
use crate::plan::{ChunkPolicy, ChunkRequest};
use crate::settings;
use crate::write::ConvertOptions;

/// Convert NetCDF archives into cloud-optimised Zarr, memory-bounded and verifiable.
#[derive(Debug, Parser)]
#[command(name = "nc2zarr", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

const EXIT_CODES: &str = "Exit codes: 0 success; 1 internal error; 2 bad usage (or no plan fits --max-mem); \
3 input problem; 4 target problem; 5 verification failed; 6 target locked by another job; \
7 commit of a split run with unfinished tasks.";

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read the headers of the inputs, check they form one dataset, and describe it.
    #[command(
        after_help = "Examples:\n  nc2zarr scan data/era5_2020-*.nc\n  nc2zarr scan 'data/*.nc' --concat-dim time --json"
    )]
    Scan(ScanArgs),
    /// Show the plan of a conversion: chunks, shards, objects, memory, requests. Writes nothing.
    #[command(
        after_help = "Examples:\n  nc2zarr plan data/ -o s3://bucket/era5.zarr --preset timeseries --max-mem 1GiB\n  \
nc2zarr plan 'data/*.nc' -o out.zarr --chunks time=24 --json"
    )]
    Plan(PlanArgs),
    /// Convert NetCDF inputs into a Zarr store.
    #[command(after_help = "Examples:\n  nc2zarr convert data/ -o out.zarr\n  \
nc2zarr convert 'data/*.nc' -o out.zarr --zarr-format 2 --chunks time=24 --compression blosc-zstd:3\n  \
nc2zarr convert 'data/*.nc' -o s3://bucket/era5.zarr --preset era5 --max-mem 2GiB\n  \
nc2zarr convert a.nc b.nc -o out.zarr --overwrite --json")]
    Convert(ConvertArgs),
    /// Append new input files to a store along its concat dimension (files already in it are skipped).
    #[command(
        after_help = "Examples:\n  nc2zarr append data/2021-*.nc -o s3://bucket/era5.zarr\n  \
nc2zarr append 'incoming/*.nc' -o era5.zarr --json   # cron: quiet, exit 0 when there is nothing new"
    )]
    Append(AppendArgs),
    /// Check that a store is complete and intact (and, with --source, equal to the inputs).
    #[command(after_help = "Examples:\n  nc2zarr verify out.zarr\n  nc2zarr verify out.zarr --source 'data/*.nc'")]
    Verify(VerifyArgs),
    /// Describe a store for catalogs: a STAC Collection and Item (datacube extension).
    #[command(after_help = "Example:\n  nc2zarr stac s3://bucket/era5.zarr --dir catalog/era5 --id era5-single-levels")]
    Stac(StacArgs),
    /// Split run, step 1: scan and plan once, save the job for N tasks in the target.
    #[command(
        after_help = "Example (4 tasks):\n  nc2zarr prepare 'data/*.nc' -o s3://bucket/era5.zarr --tasks 4\n  \
nc2zarr task s3://bucket/era5.zarr --index 0   # ... to 3, anywhere, in any order (or SLURM_ARRAY_TASK_ID)\n  \
nc2zarr commit s3://bucket/era5.zarr"
    )]
    Prepare(PrepareArgs),
    /// Split run, step 2: write one task's share (index from --index or the job array's variable).
    Task(TaskArgs),
    /// Split run, step 3: check every task finished, then write the metadata (consolidated last).
    Commit(CommitArgs),
    /// List the built-in chunking presets.
    Presets,
    /// Run a job file (TOML): mode, inputs, target and options, for cron.
    #[command(
        after_help = "Example job file:\n  mode = \"append\"            # or \"convert\", \"prepare\" (split runs: tasks = 16, slurm = \"jobs/\")\n  \
inputs = [\"/data/incoming/*.nc\"]\n  target = \"s3://bucket/era5.zarr\"\n  [options]                  # any flag of that command, without the dashes\n  \
max-mem = \"2GiB\"\n  json = true"
    )]
    Run(RunArgs),
    /// Internal: read headers for a parent `nc2zarr` (paths as JSON on stdin), from the
    /// group given (empty: the files' root).
    #[command(name = "__read-headers", hide = true)]
    ReadHeaders {
        /// The group read as root.
        #[arg(default_value = "")]
        group: String,
    },
}

impl Command {
    /// True when the command reports as JSON (`--json`); a job file (`run`) says so in
    /// its own options.
    pub fn json(&self) -> bool {
        match self {
            Command::Scan(a) => a.json,
            Command::Plan(a) => a.json,
            Command::Convert(a) => a.write.json,
            Command::Append(a) => a.write.json,
            Command::Verify(a) => a.json,
            Command::Stac(a) => a.json,
            Command::Prepare(a) => a.json,
            Command::Task(a) => a.json,
            Command::Commit(a) => a.json,
            Command::Presets | Command::Run(_) | Command::ReadHeaders { .. } => false,
        }
    }
}

/// Inputs and how to merge them.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// Input files, directories (their *.nc, *.nc4, *.cdf, *.h5 files) or quoted globs.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,
    /// Dimension to concatenate files along [default: inferred like xarray's open_mfdataset:
    /// the shared unlimited dimension, else the one whose coordinate values differ between files].
    #[arg(long, value_name = "DIM")]
    pub concat_dim: Option<String>,
    /// Files that pack a variable differently (scale_factor, add_offset, _FillValue,
    /// missing_value): `unpack` stores it as floats, each file decoded with its own
    /// attributes (as xarray does); `refuse` stops with an error.
    #[arg(long, value_enum, default_value_t = EncodingDrift::Unpack, value_name = "unpack|refuse")]
    pub on_encoding_drift: EncodingDrift,
    /// Group of the input files to read as the dataset, e.g. Grid for GPM IMERG's /Grid
    /// (as xarray's open_mfdataset(group=...)) [default: the files' root and all groups].
    #[arg(long, value_name = "PATH")]
    pub group: Option<String>,
    /// Where remote inputs are.
    #[command(flatten)]
    pub remote: RemoteInputArgs,
}

/// The store remote inputs are in, when it is not the target's.
#[derive(Debug, Args)]
pub struct RemoteInputArgs {
    /// Endpoint of the object store remote inputs (s3://…) are in [default: the target's --endpoint].
    #[arg(long, value_name = "URL")]
    pub input_endpoint: Option<String>,
    /// Backend setting for the store remote inputs are in, e.g. aws_skip_signature=true for a
    /// public bucket (repeatable) [default: the target's --storage-option].
    #[arg(long = "input-storage-option", value_parser = parse_key_value, value_name = "KEY=VALUE")]
    pub input_storage_options: Vec<(String, String)>,
    /// Where downloaded remote inputs are kept between runs.
    #[command(flatten)]
    pub cache: InputCacheArgs,
}

/// A directory that keeps downloaded remote inputs between runs.
#[derive(Debug, Args)]
pub struct InputCacheArgs {
    /// Keep downloaded remote inputs in DIR, found again by URL and ETag, so a later run
    /// over them (convert after plan, a resumed run, split tasks on one machine) downloads
    /// nothing again; inputs whose server sends no ETag are not kept [default: not kept].
    #[arg(long, value_name = "DIR")]
    pub input_cache: Option<PathBuf>,
    /// The most --input-cache holds once a run ends; the least recently used copies go first.
    #[arg(long, value_parser = parse_size_arg, value_name = "SIZE", default_value = settings::INPUT_CACHE_SIZE, requires = "input_cache")]
    pub input_cache_size: u64,
}

impl InputCacheArgs {
    /// The cache these flags name, if any.
    pub fn cache(&self) -> Option<crate::remote::InputCache> {
        self.input_cache.as_ref().map(|dir| crate::remote::InputCache {
            dir: dir.clone(),
            max_bytes: self.input_cache_size,
        })
    }
}

impl RemoteInputArgs {
    /// How to reach remote inputs: these flags, else the target's store settings.
    pub fn store_options(&self, target: Option<&StoreArgs>) -> crate::store::StoreOptions {
        let mut o = target.map(StoreArgs::options).unwrap_or_default();
        if self.input_endpoint.is_some() || !self.input_storage_options.is_empty() {
            o.endpoint = self.input_endpoint.clone();
            o.options = self.input_storage_options.clone();
        }
        o
    }
}

/// What to do with a variable whose packing differs between files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum EncodingDrift {
    /// Store it unpacked, as floats.
    Unpack,
    /// Stop with an error.
    Refuse,
}

impl InputArgs {
    /// The scan settings these arguments ask for.
    pub fn scan_options(&self) -> crate::scan::ScanOptions {
        crate::scan::ScanOptions {
            concat_dim: self.concat_dim.clone(),
            refuse_encoding_drift: self.on_encoding_drift == EncodingDrift::Refuse,
            group: self.group.clone(),
        }
    }
}

/// `scan` arguments.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Inputs.
    #[command(flatten)]
    pub input: InputArgs,
    /// Requests in flight at once to remote inputs (listing, downloads).
    #[arg(long, default_value_t = settings::IO_CONCURRENCY, value_parser = clap::value_parser!(u16).range(1..=1024), value_name = "N")]
    pub io_concurrency: u16,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Where the store goes.
#[derive(Debug, Args)]
pub struct TargetArg {
    /// Target: a local directory, file://, s3://bucket/prefix, gs://…, az://container/prefix, abfs://…;
    /// prefixed with icechunk+ (icechunk+s3://bucket/era5), an Icechunk repository (feature `icechunk`)
    #[arg(short = 'o', long = "output", value_name = "TARGET")]
    pub target: String,
}

/// The layout of a new store: chunks, shards, codecs, format.
#[derive(Debug, Args)]
pub struct LayoutArgs {
    /// Chunking preset: a built-in name (see `nc2zarr presets`) or a .toml file. Flags override it.
    #[arg(long, value_name = "NAME|PATH")]
    pub preset: Option<String>,
    /// Zarr format to write [default: 3].
    #[arg(long, value_parser = parse_format, value_name = "3|2")]
    pub zarr_format: Option<ZarrFormat>,
    /// Chunk lengths per dimension, e.g. time=24,lat=full; others follow the preset or aim at --chunk-size.
    #[arg(long, value_parser = parse_chunks, value_name = "DIM=N,...")]
    pub chunks: Option<ChunkRequest>,
    /// Target uncompressed chunk size for dimensions not given in --chunks [default: 16MiB].
    #[arg(long, value_parser = parse_size_arg, value_name = "SIZE")]
    pub chunk_size: Option<u64>,
    /// Target uncompressed shard size (Zarr v3 sharding); 0 turns sharding off [default: from the preset, else off].
    #[arg(long, value_parser = parse_size_or_zero, value_name = "SIZE")]
    pub shard_size: Option<u64>,
    /// Compression: blosc-lz4:LEVEL, blosc-zstd:LEVEL, shuffle-zstd:LEVEL (v3: zarr-python only), zstd:LEVEL, gzip:LEVEL, none [default: blosc-lz4:9].
    #[arg(long, value_parser = parse_compression, value_name = "CODEC")]
    pub compression: Option<Compression>,
    /// Skip variables and attributes whose types Zarr cannot hold (compound, opaque, vlen), with a warning.
    #[arg(long)]
    pub skip_unsupported: bool,
}

/// What a run may use: memory, threads, scratch space, requests in flight.
#[derive(Debug, Args)]
pub struct ResourceArgs {
    /// Peak memory of the whole process, e.g. 512MiB, 2GiB, 1GB [default: a quarter of the memory available (RAM or the cgroup limit), at most 4GiB].
    #[arg(long, value_parser = parse_size_arg, value_name = "SIZE")]
    pub max_mem: Option<u64>,
    /// Encoding threads [default: the number of CPUs].
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024), value_name = "N")]
    pub workers: Option<u16>,
    /// Object-store requests in flight at once (each holds an encoded object in memory).
    #[arg(long, default_value_t = settings::IO_CONCURRENCY, value_parser = clap::value_parser!(u16).range(1..=1024), value_name = "N")]
    pub io_concurrency: u16,
}

/// Settings of a run that writes: scratch space, lock, progress, report.
#[derive(Debug, Args)]
pub struct WriteArgs {
    /// Directory for intermediate data of full rechunks [default: the system temp directory].
    #[arg(long, value_name = "DIR")]
    pub temp_dir: Option<PathBuf>,
    /// Discard an interrupted run found in the target instead of resuming it.
    #[arg(long)]
    pub restart: bool,
    /// Seconds after which another job's lock on the target counts as stale and is taken over.
    #[arg(long, default_value_t = settings::LOCK_TIMEOUT_SECS, value_name = "SECONDS")]
    pub lock_timeout: u64,
    /// Object-store settings.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print a JSON summary instead of text (and no progress bar).
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// After writing, describe the store in DIR/collection.json and DIR/item.json (STAC
    /// with the datacube extension; see `nc2zarr stac`).
    #[arg(long, value_name = "DIR")]
    pub stac: Option<PathBuf>,
}

/// `plan` arguments: everything that shapes a conversion, nothing that only writing uses.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Inputs.
    #[command(flatten)]
    pub input: InputArgs,
    /// Target (its kind decides request counts).
    #[command(flatten)]
    pub target: TargetArg,
    /// Layout.
    #[command(flatten)]
    pub layout: LayoutArgs,
    /// Resources.
    #[command(flatten)]
    pub resources: ResourceArgs,
    /// Also show how the conversion splits over N tasks (bytes and objects per task).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000), value_name = "N")]
    pub tasks: Option<u32>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `convert` arguments.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Inputs.
    #[command(flatten)]
    pub input: InputArgs,
    /// Target.
    #[command(flatten)]
    pub target: TargetArg,
    /// Layout.
    #[command(flatten)]
    pub layout: LayoutArgs,
    /// Resources.
    #[command(flatten)]
    pub resources: ResourceArgs,
    /// Writing.
    #[command(flatten)]
    pub write: WriteArgs,
    /// Replace an existing non-empty target.
    #[arg(long)]
    pub overwrite: bool,
    /// With --overwrite or --restart: allow deleting a filesystem root, the home
    /// directory or a whole bucket/container (refused otherwise).
    #[arg(long)]
    pub force: bool,
    /// Show the plan and what the target holds, and exit without writing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `prepare` arguments: what shapes the plan, the number of tasks, and the target.
#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// Inputs.
    #[command(flatten)]
    pub input: InputArgs,
    /// Target.
    #[command(flatten)]
    pub target: TargetArg,
    /// Layout.
    #[command(flatten)]
    pub layout: LayoutArgs,
    /// Resources of each task.
    #[command(flatten)]
    pub resources: ResourceArgs,
    /// Number of tasks to split the run into.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000), value_name = "N")]
    pub tasks: u32,
    /// Directory to download remote inputs to while they are scanned [default: the system temp directory].
    #[arg(long, value_name = "DIR")]
    pub temp_dir: Option<PathBuf>,
    /// Replace an existing non-empty target.
    #[arg(long)]
    pub overwrite: bool,
    /// With --overwrite or --restart: allow deleting a filesystem root, the home directory or a whole bucket.
    #[arg(long)]
    pub force: bool,
    /// Discard an interrupted run found in the target and prepare again.
    #[arg(long)]
    pub restart: bool,
    /// Seconds after which another job's lock on the target counts as stale.
    #[arg(long, default_value_t = settings::LOCK_TIMEOUT_SECS, value_name = "SECONDS")]
    pub lock_timeout: u64,
    /// Object-store settings.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Slurm scripts.
    #[command(flatten)]
    pub slurm: SlurmArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Slurm batch scripts for a split run (`prepare`, `append --tasks`).
#[derive(Debug, Args)]
pub struct SlurmArgs {
    /// Write Slurm batch scripts into DIR: tasks.sbatch (a job array of the tasks) and commit.sbatch.
    #[arg(long, value_name = "DIR")]
    pub slurm: Option<PathBuf>,
    /// With --slurm: submit them with sbatch, the commit after every task succeeded (afterok).
    #[arg(long, requires = "slurm")]
    pub submit: bool,
    /// With --slurm: an extra #SBATCH option for both scripts, e.g. --sbatch=--partition=compute (repeatable).
    #[arg(
        long = "sbatch",
        value_name = "OPTION",
        requires = "slurm",
        allow_hyphen_values = true
    )]
    pub sbatch_options: Vec<String>,
    /// With --slurm: the tasks' --temp-dir (scratch for two-pass arrays, the remote inputs a task reads) [default: each node's temp directory].
    #[arg(long, value_name = "DIR", requires = "slurm")]
    pub task_temp_dir: Option<PathBuf>,
}

impl PrepareArgs {
    /// The conversion settings of the split run.
    pub fn options(&self) -> Result<ConvertOptions, String> {
        let mut opts = ConvertOptions::default();
        self.layout.apply(&mut opts)?;
        self.resources.apply(&mut opts)?;
        let io = opts.store.io_concurrency;
        opts.store = self.store.options();
        opts.store.io_concurrency = io;
        opts.overwrite = self.overwrite;
        opts.force = self.force;
        opts.restart = self.restart;
        opts.stale_lock_after = std::time::Duration::from_secs(self.lock_timeout);
        Ok(opts)
    }
}

/// `task` arguments.
#[derive(Debug, Args)]
pub struct TaskArgs {
    /// The target a split run was prepared in.
    #[arg(value_name = "TARGET")]
    pub target: String,
    /// Task index [default: SLURM_ARRAY_TASK_ID, JOB_COMPLETION_INDEX or AWS_BATCH_JOB_ARRAY_INDEX].
    #[arg(long, value_name = "I")]
    pub index: Option<usize>,
    /// Directory for intermediate data of two-pass arrays and the remote inputs the task
    /// reads [default: the system temp directory].
    #[arg(long, value_name = "DIR")]
    pub temp_dir: Option<PathBuf>,
    /// Where downloaded remote inputs are kept between runs.
    #[command(flatten)]
    pub cache: InputCacheArgs,
    /// Object-store settings.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print a JSON summary instead of text (and no progress bar).
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `commit` arguments.
#[derive(Debug, Args)]
pub struct CommitArgs {
    /// The target a split run was prepared in.
    #[arg(value_name = "TARGET")]
    pub target: String,
    /// Object-store settings.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `append` arguments: the store keeps its layout, so there are no layout flags.
#[derive(Debug, Args)]
pub struct AppendArgs {
    /// Inputs.
    #[command(flatten)]
    pub input: InputArgs,
    /// The store to append to.
    #[command(flatten)]
    pub target: TargetArg,
    /// Resources.
    #[command(flatten)]
    pub resources: ResourceArgs,
    /// Writing.
    #[command(flatten)]
    pub write: WriteArgs,
    /// Accept a gap between the store's last time and the first new one.
    #[arg(long)]
    pub allow_gaps: bool,
    /// Show which files would be appended and the new length, and exit without writing.
    #[arg(long, conflicts_with = "tasks")]
    pub dry_run: bool,
    /// Check the new files and prepare the append as a split run of N tasks (`nc2zarr task`,
    /// `nc2zarr commit`) instead of writing it.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000), value_name = "N")]
    pub tasks: Option<u32>,
    /// Slurm scripts (with --tasks).
    #[command(flatten)]
    pub slurm: SlurmArgs,
}

impl LayoutArgs {
    /// Resolves flags over the preset over the built-in defaults into `opts`.
    fn apply(&self, opts: &mut ConvertOptions) -> Result<(), String> {
        let preset = self.preset.as_deref().map(crate::preset::load).transpose()?;
        let format = match (self.zarr_format, preset.as_ref().and_then(|p| p.zarr_format)) {
            (Some(f), _) => f,
            (None, Some(2)) => ZarrFormat::V2,
            (None, _) => ZarrFormat::V3,
        };
        let compression = match (
            &self.compression,
            preset.as_ref().and_then(|p| p.compression.as_deref()),
        ) {
            (Some(c), _) => c.clone(),
            (None, Some(c)) => c.parse()?,
            (None, None) => opts.compression.clone(),
        };
        let shard_bytes = match (self.shard_size, preset.as_ref().and_then(|p| p.shard_bytes)) {
            (Some(0), _) => None,
            (Some(s), _) => Some(s),
            (None, s) => s,
        };
        if shard_bytes.is_some() && format == ZarrFormat::V2 && self.shard_size.is_some() {
            return Err("--shard-size needs Zarr v3 (sharding does not exist in v2)".into());
        }
        opts.policy = ChunkPolicy {
            request: self.chunks.clone().unwrap_or_default(),
            rules: preset.as_ref().map(|p| p.rules).unwrap_or_default(),
            target_chunk_bytes: self
                .chunk_size
                .or(preset.as_ref().and_then(|p| p.target_chunk_bytes))
                .unwrap_or(crate::plan::DEFAULT_CHUNK_BYTES),
            shard_bytes: if format == ZarrFormat::V3 { shard_bytes } else { None },
        };
        opts.format = format;
        opts.compression = compression;
        opts.skip_unsupported = self.skip_unsupported;
        Ok(())
    }
}

impl ResourceArgs {
    /// Sets memory, threads and requests in flight in `opts`.
    fn apply(&self, opts: &mut ConvertOptions) -> Result<(), String> {
        let max_mem = self.max_mem.unwrap_or(opts.max_mem);
        if max_mem < 64 << 20 {
            return Err(format!(
                "--max-mem {} is below the 64 MiB nc2zarr itself needs",
                crate::units::human_bytes(max_mem)
            ));
        }
        opts.max_mem = max_mem;
        opts.workers = self.workers.map_or(opts.workers, usize::from);
        opts.store.io_concurrency = usize::from(self.io_concurrency);
        Ok(())
    }
}

impl WriteArgs {
    /// Sets scratch space, restart, lock, store and output settings in `opts`.
    fn apply(&self, opts: &mut ConvertOptions) {
        if let Some(d) = &self.temp_dir {
            opts.temp_dir = d.clone();
        }
        opts.restart = self.restart;
        opts.stale_lock_after = std::time::Duration::from_secs(self.lock_timeout);
        let io = opts.store.io_concurrency;
        opts.store = self.store.options();
        opts.store.io_concurrency = io;
        opts.quiet = self.quiet;
        opts.json = self.json;
    }
}

impl PlanArgs {
    /// The conversion settings the plan is made for.
    pub fn options(&self) -> Result<ConvertOptions, String> {
        let mut opts = ConvertOptions::default();
        self.layout.apply(&mut opts)?;
        self.resources.apply(&mut opts)?;
        Ok(opts)
    }
}

impl ConvertArgs {
    /// Resolves flags over the preset over the built-in defaults.
    pub fn options(&self) -> Result<ConvertOptions, String> {
        let mut opts = ConvertOptions::default();
        self.layout.apply(&mut opts)?;
        self.resources.apply(&mut opts)?;
        self.write.apply(&mut opts);
        opts.overwrite = self.overwrite;
        opts.force = self.force;
        Ok(opts)
    }
}

impl AppendArgs {
    /// The settings of the append (chunks and codecs come from the store).
    pub fn options(&self) -> Result<ConvertOptions, String> {
        let mut opts = ConvertOptions::default();
        self.resources.apply(&mut opts)?;
        self.write.apply(&mut opts);
        Ok(opts)
    }
}

/// How to reach an object-store target.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Endpoint URL of an S3-compatible service or emulator (e.g. http://127.0.0.1:9000).
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Backend setting passed to object_store, e.g. aws_region=eu-west-1 (repeatable).
    #[arg(long = "storage-option", value_parser = parse_key_value, value_name = "KEY=VALUE")]
    pub storage_options: Vec<(String, String)>,
    /// Give up on a failing request after retrying for this many seconds.
    #[arg(long, default_value_t = settings::RETRY_TIMEOUT_SECS, value_name = "SECONDS")]
    pub retry_timeout: u64,
}

impl StoreArgs {
    /// The store options these arguments ask for.
    pub fn options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            endpoint: self.endpoint.clone(),
            options: self.storage_options.clone(),
            retry_timeout: std::time::Duration::from_secs(self.retry_timeout),
            ..Default::default()
        }
    }
}

/// `run` arguments.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The job file.
    #[arg(value_name = "JOB.toml")]
    pub job: PathBuf,
}

/// A job file: the command line of a `convert` or `append`, as TOML.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Job {
    mode: String,
    inputs: Vec<String>,
    target: String,
    #[serde(default)]
    options: toml::Table,
}

/// Reads a job file and turns it into the command line it stands for.
pub fn job_command_line(path: &std::path::Path) -> Result<Vec<String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("job file {}: {e}", path.display()))?;
    let job: Job = toml::from_str(&text).map_err(|e| format!("job file {}: {}", path.display(), e.message()))?;
    if !matches!(job.mode.as_str(), "convert" | "append" | "prepare") {
        return Err(format!(
            "job file {}: mode must be \"convert\", \"append\" or \"prepare\", not {:?}",
            path.display(),
            job.mode
        ));
    }
    let mut argv = vec!["nc2zarr".to_string(), job.mode.clone()];
    argv.extend(job.inputs);
    argv.extend(["-o".to_string(), job.target]);
    for (key, value) in job.options {
        let flag = format!("--{key}");
        match value {
            toml::Value::Boolean(true) => argv.push(flag),
            toml::Value::Boolean(false) => {}
            toml::Value::String(v) => argv.extend([flag, v]),
            toml::Value::Integer(v) => argv.extend([flag, v.to_string()]),
            toml::Value::Array(items) => {
                for item in items {
                    let v = match item {
                        toml::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    argv.extend([flag.clone(), v]);
                }
            }
            other => {
                return Err(format!(
                    "job file {}: option {key} = {other} is not a string, number, bool or list",
                    path.display()
                ));
            }
        }
    }
    Ok(argv)
}

/// `stac` arguments.
#[derive(Debug, Args)]
pub struct StacArgs {
    /// The store to describe.
    #[arg(value_name = "TARGET")]
    pub target: String,
    /// Directory for collection.json and item.json (created if needed).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// The Collection's and Item's id [default: the store's name without .zarr].
    #[arg(long)]
    pub id: Option<String>,
    /// Object-store settings.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `verify` arguments.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The store to check.
    #[arg(value_name = "TARGET")]
    pub target: String,
    /// Also compare values with these inputs (files, directories or globs).
    #[arg(long, num_args = 1.., value_name = "INPUT")]
    pub source: Vec<String>,
    /// Concat dimension of the sources [default: the store's, else inferred as for convert].
    #[arg(long, value_name = "DIM")]
    pub concat_dim: Option<String>,
    /// Group of the sources the store was made from [default: the store's --group].
    #[arg(long, value_name = "PATH")]
    pub group: Option<String>,
    /// Where remote sources are.
    #[command(flatten)]
    pub remote: RemoteInputArgs,
    /// Requests in flight at once to remote sources (listing, downloads).
    #[arg(long, default_value_t = settings::IO_CONCURRENCY, value_parser = clap::value_parser!(u16).range(1..=1024), value_name = "N")]
    pub io_concurrency: u16,
    /// Directory remote sources are downloaded to [default: the system temp directory].
    #[arg(long, value_name = "DIR")]
    pub temp_dir: Option<PathBuf>,
    /// Object-store settings.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_ascii_lowercase(), v.to_string())),
        _ => Err(format!("storage option {s:?} is not KEY=VALUE")),
    }
}

fn parse_format(s: &str) -> Result<ZarrFormat, String> {
    match s {
        "3" | "v3" => Ok(ZarrFormat::V3),
        "2" | "v2" => Ok(ZarrFormat::V2),
        _ => Err(format!("zarr format must be 2 or 3, not {s:?}")),
    }
}

fn parse_chunks(s: &str) -> Result<ChunkRequest, String> {
    s.parse()
}

fn parse_compression(s: &str) -> Result<Compression, String> {
    s.parse()
}

fn parse_size_arg(s: &str) -> Result<u64, String> {
    crate::units::parse_size(s)
}

fn parse_size_or_zero(s: &str) -> Result<u64, String> {
    if s.trim() == "0" {
        Ok(0)
    } else {
        crate::units::parse_size(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    fn convert_args(args: &[&str]) -> ConvertArgs {
        let mut all = vec!["nc2zarr", "convert", "a.nc", "-o", "out.zarr"];
        all.extend(args);
        match Cli::try_parse_from(all).unwrap().command {
            Command::Convert(c) => c,
            _ => panic!("not convert"),
        }
    }

    #[test]
    fn flags_override_presets_override_defaults() {
        let o = convert_args(&[]).options().unwrap();
        assert_eq!(o.format, ZarrFormat::V3);
        assert_eq!(
            o.compression,
            Compression::Blosc {
                cname: "lz4".into(),
                level: 9
            }
        );
        assert_eq!(o.policy.shard_bytes, None);
        assert_eq!(o.policy.target_chunk_bytes, 16 << 20);
        let o = convert_args(&["--preset", "era5"]).options().unwrap();
        assert_eq!(o.policy.shard_bytes, Some(256 << 20));
        assert_eq!(o.policy.target_chunk_bytes, 32 << 20);
        let o = convert_args(&[
            "--preset",
            "era5",
            "--shard-size",
            "0",
            "--chunk-size",
            "8MiB",
            "--compression",
            "gzip:5",
        ])
        .options()
        .unwrap();
        assert_eq!(o.policy.shard_bytes, None);
        assert_eq!(o.policy.target_chunk_bytes, 8 << 20);
        assert_eq!(
            o.compression,
            Compression::Gzip {
                level: 5,
                shuffle: false
            }
        );
        // v2 never shards; asking for it explicitly is an error.
        assert_eq!(
            convert_args(&["--preset", "era5", "--zarr-format", "2"])
                .options()
                .unwrap()
                .policy
                .shard_bytes,
            None
        );
        assert!(
            convert_args(&["--zarr-format", "2", "--shard-size", "64MiB"])
                .options()
                .is_err()
        );
        let o = convert_args(&["--max-mem", "512MiB", "--workers", "1"])
            .options()
            .unwrap();
        assert_eq!((o.max_mem, o.workers), (512 << 20, 1));
        assert!(
            convert_args(&["--max-mem", "1MiB"])
                .options()
                .unwrap_err()
                .contains("64 MiB")
        );
        assert!(
            convert_args(&["--preset", "nope"])
                .options()
                .unwrap_err()
                .contains("unknown preset")
        );
    }

    #[test]
    fn rejects_bad_values() {
        for args in [
            vec!["nc2zarr", "convert", "a.nc", "-o", "x", "--chunks", "time=0"],
            vec!["nc2zarr", "convert", "a.nc", "-o", "x", "--compression", "lzma"],
            vec!["nc2zarr", "convert", "a.nc", "-o", "x", "--zarr-format", "4"],
            vec!["nc2zarr", "convert", "a.nc", "-o", "x", "--max-mem", "lots"],
            vec!["nc2zarr", "convert", "a.nc"],
        ] {
            assert!(Cli::try_parse_from(&args).is_err(), "{args:?}");
        }
    }
}
