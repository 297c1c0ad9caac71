//! Every file of the shared devset (62 real NetCDF files) either converts to values
//! equal to the source (checked by `verify --source`, and by xarray when
//! `NC2ZARR_PYTHON` is set) or is refused with a clear one-line error. None panics.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use nc2zarr::json::Json;

/// Files xarray cannot compare meaningfully, and why.
const XARRAY_EXCEPTIONS: &[(&str, &str)] = &[(
    "f03tst_open_mem.nc",
    "var2 was written without fill values and is mostly never written: its values are undefined",
)];

/// Logical size above which the xarray comparison is skipped (verify --source still runs).
const XARRAY_MAX_BYTES: u64 = 256 << 20;

fn devset() -> Option<PathBuf> {
    let dir = std::env::var_os("NC2ZARR_DEVSET")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/devset"));
    if dir.is_dir() {
        Some(dir)
    } else if std::env::var_os("NC2ZARR_REQUIRE_DEVSET").is_some() {
        panic!("devset not found at {}", dir.display())
    } else {
        eprintln!("devset not found at {}: skipping", dir.display());
        None
    }
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else if p.file_name().is_some_and(|n| n != "CATALOG.tsv") {
            out.push(p);
        }
    }
}

#[test]
fn every_devset_file_converts_equal_or_is_refused_clearly() {
    let Some(root) = devset() else { return };
    let py = python();
    let mut all = Vec::new();
    files(&root, &mut all);
    all.sort();
    assert!(all.len() >= 60, "expected the 62-file devset, found {}", all.len());
    let tmp = tempfile::tempdir().unwrap();
    let (mut converted, mut refused, mut failures) = (0, 0, Vec::new());
    for (i, f) in all.iter().enumerate() {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        for format in ["3", "2"] {
            let out = tmp.path().join(format!("{i}-{format}.zarr"));
            let r = run([
                "convert".into(),
                s(f),
                "-o".into(),
                s(&out),
                "--zarr-format".into(),
                format.into(),
                "--json".into(),
            ]);
            match r.code {
                0 => {
                    converted += 1;
                    let v = run(["verify".into(), s(&out), "--source".into(), s(f)]);
                    if v.code != 0 {
                        failures.push(format!(
                            "{name} v{format}: verify --source failed:\n{}{}",
                            v.stdout, v.stderr
                        ));
                        continue;
                    }
                    let bytes = r.json().get("bytes_in").and_then(Json::as_u64).unwrap_or(0);
                    let exception = XARRAY_EXCEPTIONS.iter().find(|(n, _)| *n == name);
                    match (&py, exception) {
                        (_, Some((_, why))) => {
                            eprintln!("{name}: xarray comparison skipped: {why}")
                        }
                        (Some(py), None) if bytes <= XARRAY_MAX_BYTES => {
                            if let Err(text) = xarray_compare(py, &out, &[s(f)], &[]) {
                                failures.push(format!("{name} v{format}: xarray differs:\n{text}"));
                            }
                        }
                        _ => {}
                    }
                }
                3 => {
                    refused += 1;
                    let line = r.stderr.trim();
                    let clear = line.lines().count() == 1
                        && line.starts_with("nc2zarr: error: ")
                        && (line.contains(&name) || line.contains("variable '") || line.contains("attribute '"));
                    if !clear {
                        failures.push(format!(
                            "{name} v{format}: refusal is not one clear line naming the file or variable:\n{line}"
                        ));
                    }
                }
                code => failures.push(format!("{name} v{format}: exit {code}:\n{}", r.stderr)),
            }
        }
    }
    eprintln!(
        "devset: {converted} conversions equal to the source, {refused} refusals, {} failures",
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(converted >= 70, "too few devset conversions: {converted}");
}
