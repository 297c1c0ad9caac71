//! Test helpers: run the real binary, build NetCDF fixtures with the netcdf crate,
//! and read back what nc2zarr wrote.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use nc2zarr::json::Json;

pub mod fixtures;
#[allow(unused_imports)]
pub use fixtures::*;

/// Path of the binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_nc2zarr"))
}

/// Result of one run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The outcome of a finished process.
    pub fn from_output(out: &Output) -> Run {
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    pub fn fails_with(&self, code: i32, needles: &[&str]) -> &Self {
        assert_eq!(
            self.code, code,
            "expected exit {code}\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        for n in needles {
            assert!(self.stderr.contains(n), "stderr lacks {n:?}:\n{}", self.stderr);
        }
        assert!(!self.stderr.contains("panicked"), "panic:\n{}", self.stderr);
        self
    }

    pub fn json(&self) -> Json {
        Json::parse(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", self.stdout))
    }
}

/// Runs nc2zarr with `args` and a clean environment.
pub fn run<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    let out: Output = Command::new(bin())
        .args(args)
        .env_remove("CI")
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("run nc2zarr");
    Run::from_output(&out)
}

/// `nc2zarr verify STORE --source INPUT...`: the store's values against the sources.
pub fn verify_source(store: &Path, inputs: &[String]) -> Run {
    let mut args = vec!["verify".to_string(), s(store), "--source".to_string()];
    args.extend(inputs.iter().cloned());
    run(args)
}

/// The binary with S3 credentials for the test server (moto) in its environment and
/// no endpoint or instance-metadata lookups from the outside environment.
pub fn s3_command(secret: &str) -> Command {
    let mut cmd = Command::new(bin());
    cmd.env("AWS_ACCESS_KEY_ID", "nc2zarr-test")
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_ENDPOINT_URL");
    cmd
}

/// `p` as an argument.
pub fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Reads a JSON document from a store directory.
pub fn read_json(store: &Path, key: &str) -> Json {
    let text = std::fs::read_to_string(store.join(key)).unwrap_or_else(|e| panic!("{key}: {e}"));
    Json::parse(&text).unwrap()
}

/// A prerequisite of a test is missing (a server, the devset, Python, root): under CI
/// (`CI` set) the test fails loudly, so a green run never hides an untested part;
/// elsewhere it is skipped with a message.
pub fn missing_prerequisite(what: &str) {
    if std::env::var_os("CI").is_some() {
        panic!("{what}: every prerequisite is required under CI");
    }
    eprintln!("{what}: skipping");
}

/// The shared devset's directory (`NC2ZARR_DEVSET`, else `../shared/data/devset`), or
/// `None` when it is absent (see [`missing_devset`]).
pub fn devset_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("NC2ZARR_DEVSET")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/devset"));
    if dir.is_dir() {
        Some(dir)
    } else {
        missing_devset(&dir);
        None
    }
}

/// The files under `dir`, recursively, sorted (the devset's `CATALOG.tsv` left out).
pub fn devset_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                pending.push(p);
            } else if p.file_name().is_some_and(|n| n != "CATALOG.tsv") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// The shared devset is optional (a user's clone has none): its tests skip without it,
/// unless `NC2ZARR_REQUIRE_DEVSET` is set (scripts/test.sh sets it when the devset is there).
pub fn missing_devset(dir: &Path) {
    if std::env::var_os("NC2ZARR_REQUIRE_DEVSET").is_some() {
        panic!(
            "devset not found at {} but NC2ZARR_REQUIRE_DEVSET is set",
            dir.display()
        );
    }
    eprintln!("devset not found at {}: skipping", dir.display());
}

/// Finished segments in a write journal directory (object_store writes a temporary
/// file first, then renames it, so a listed file may not be a segment yet).
pub fn journal_segments(journal: &Path) -> usize {
    std::fs::read_dir(journal).map_or(0, |d| {
        d.flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".jsonl"))
            .count()
    })
}

/// A snapshot of every file under `dir`: relative path and contents.
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push((
                    p.strip_prefix(base).unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The Python that has xarray, zarr and netCDF4 (`NC2ZARR_PYTHON`), if configured.
/// When `NC2ZARR_REQUIRE_INTEROP` is set, a missing interpreter is a failure, not a skip.
pub fn python() -> Option<PathBuf> {
    match std::env::var_os("NC2ZARR_PYTHON") {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var_os("NC2ZARR_REQUIRE_INTEROP").is_some() => {
            panic!("NC2ZARR_REQUIRE_INTEROP is set but NC2ZARR_PYTHON is not")
        }
        None => {
            missing_prerequisite("NC2ZARR_PYTHON not set, no xarray comparison (scripts/test.sh sets it)");
            None
        }
    }
}

/// Runs `tests/interop/compare.py` (xarray.open_zarr vs open_mfdataset); returns its output.
pub fn xarray_compare(py: &Path, store: &Path, inputs: &[String], extra: &[&str]) -> Result<String, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/compare.py");
    let out = Command::new(py)
        .arg(script)
        .arg(store)
        .args(inputs)
        .args(extra)
        .output()
        .expect("run python");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() { Ok(text) } else { Err(text) }
}

/// The values of array `array` of the local store `store` as `T` (its stored type),
/// read with zarrs: values checked without Python.
pub fn array_values<T: zarrs::array::ElementOwned>(store: &Path, array: &str) -> Vec<T> {
    use zarrs::array::Array;
    let fs = std::sync::Arc::new(zarrs::filesystem::FilesystemStore::new(store).unwrap());
    let a = Array::open(fs, &format!("/{array}")).unwrap_or_else(|e| panic!("open {array}: {e}"));
    a.retrieve_array_subset::<Vec<T>>(&a.subset_all())
        .unwrap_or_else(|e| panic!("read {array}: {e}"))
}
