//! Command-line arguments (clap) and their translation into stage options.

use clap::{Args, Parser, Subcommand};

use crate::codec::Compression;
use crate::meta::ZarrFormat;
use crate::plan::ChunkRequest;

/// Convert NetCDF archives into cloud-optimised Zarr, memory-bounded and verifiable.
#[derive(Debug, Parser)]
#[command(name = "nc2zarr", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

const EXIT_CODES: &str = "Exit codes: 0 success; 1 internal error; 2 bad usage; 3 input problem; \
4 target problem; 5 verification failed; 6 target locked by another job.";

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Read the headers of the inputs, check they form one dataset, and describe it.
    #[command(
        after_help = "Examples:\n  nc2zarr scan data/era5_2020-*.nc\n  nc2zarr scan 'data/*.nc' --concat-dim time --json"
    )]
    Scan(ScanArgs),
    /// Convert NetCDF inputs into a Zarr store.
    #[command(after_help = "Examples:\n  nc2zarr convert data/ -o out.zarr\n  \
nc2zarr convert 'data/*.nc' -o out.zarr --zarr-format 2 --chunks time=24 --compression blosc-zstd:3\n  \
nc2zarr convert a.nc b.nc -o out.zarr --overwrite --json")]
    Convert(ConvertArgs),
    /// Check that a store is complete and intact (and, with --source, equal to the inputs).
    #[command(after_help = "Examples:\n  nc2zarr verify out.zarr\n  nc2zarr verify out.zarr --source 'data/*.nc'")]
    Verify(VerifyArgs),
}

/// Inputs and how to merge them.
#[derive(Debug, Args)]
pub struct InputArgs {
    /// Input files, directories (their *.nc, *.nc4, *.cdf, *.h5 files) or quoted globs.
    #[arg(required = true, value_name = "INPUT")]
    pub inputs: Vec<String>,
    /// Dimension to concatenate files along [default: the unlimited dimension].
    #[arg(long, value_name = "DIM")]
    pub concat_dim: Option<String>,
}

/// `scan` arguments.
#[derive(Debug, Args)]
pub struct ScanArgs {
    /// Inputs.
    #[command(flatten)]
    pub input: InputArgs,
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
    /// Target: a local directory, file://, s3://bucket/prefix, gs://…, az://container/prefix, abfs://…
    #[arg(short = 'o', long = "output", value_name = "TARGET")]
    pub target: String,
    /// Zarr format to write.
    #[arg(long, default_value = "3", value_parser = parse_format, value_name = "3|2")]
    pub zarr_format: ZarrFormat,
    /// Chunk lengths per dimension, e.g. time=24,lat=full; other dimensions aim at --chunk-size.
    #[arg(long, value_parser = parse_chunks, value_name = "DIM=N,...")]
    pub chunks: Option<ChunkRequest>,
    /// Target uncompressed chunk size for dimensions not given in --chunks.
    #[arg(long, default_value = "16MiB", value_parser = parse_size_arg, value_name = "SIZE")]
    pub chunk_size: u64,
    /// Compression: none, zstd:LEVEL, gzip:LEVEL, blosc-zstd:LEVEL, blosc-lz4:LEVEL.
    #[arg(long, default_value = "zstd:3", value_parser = parse_compression, value_name = "CODEC")]
    pub compression: Compression,
    /// Replace an existing non-empty target.
    #[arg(long)]
    pub overwrite: bool,
    /// Discard an interrupted conversion found in the target instead of resuming it.
    #[arg(long)]
    pub restart: bool,
    /// Object-store settings.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Skip variables and attributes whose types Zarr cannot hold (compound, opaque, vlen), with a warning.
    #[arg(long)]
    pub skip_unsupported: bool,
    /// Print a JSON summary instead of text (and no progress bar).
    #[arg(long)]
    pub json: bool,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
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
    /// Object-store requests in flight at once.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1024), value_name = "N")]
    pub io_concurrency: u16,
    /// Give up on a failing request after retrying for this many seconds.
    #[arg(long, default_value_t = 45, value_name = "SECONDS")]
    pub retry_timeout: u64,
}

impl StoreArgs {
    /// The store options these arguments ask for.
    pub fn options(&self) -> crate::store::StoreOptions {
        crate::store::StoreOptions {
            endpoint: self.endpoint.clone(),
            options: self.storage_options.clone(),
            io_concurrency: usize::from(self.io_concurrency),
            retry_timeout: std::time::Duration::from_secs(self.retry_timeout),
            ..Default::default()
        }
    }
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_ascii_lowercase(), v.to_string())),
        _ => Err(format!("storage option {s:?} is not KEY=VALUE")),
    }
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
    /// Concat dimension of the sources [default: the unlimited dimension].
    #[arg(long, value_name = "DIM")]
    pub concat_dim: Option<String>,
    /// Object-store settings.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
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
    crate::report::parse_size(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn parses_convert() {
        let cli = Cli::try_parse_from([
            "nc2zarr",
            "convert",
            "a.nc",
            "b.nc",
            "-o",
            "out.zarr",
            "--zarr-format",
            "2",
            "--chunks",
            "time=24",
            "--compression",
            "gzip:5",
        ])
        .unwrap();
        let Command::Convert(c) = cli.command else {
            panic!("not convert")
        };
        assert_eq!(c.input.inputs, vec!["a.nc", "b.nc"]);
        assert_eq!(c.zarr_format, ZarrFormat::V2);
        assert_eq!(c.compression, Compression::Gzip(5));
        assert_eq!(c.chunk_size, 16 << 20);
    }

    #[test]
    fn rejects_bad_values() {
        for args in [
            vec!["nc2zarr", "convert", "a.nc", "-o", "x", "--chunks", "time=0"],
            vec!["nc2zarr", "convert", "a.nc", "-o", "x", "--compression", "lzma"],
            vec!["nc2zarr", "convert", "a.nc", "-o", "x", "--zarr-format", "4"],
            vec!["nc2zarr", "convert", "a.nc"],
        ] {
            assert!(Cli::try_parse_from(&args).is_err(), "{args:?}");
        }
    }
}
