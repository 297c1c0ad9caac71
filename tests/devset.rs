//! Every file of the shared devset (62 real NetCDF files) either converts to values
//! equal to the source (checked by `verify --source`, and by xarray when
//! `NC2ZARR_PYTHON` is set) or is refused with a clear one-line error. None panics.

mod common;

use std::path::Path;

use common::*;
use nc2zarr::json::Json;

/// Files xarray cannot compare meaningfully, and why.
const XARRAY_EXCEPTIONS: &[(&str, &str)] = &[(
    "f03tst_open_mem.nc",
    "var2 was written without fill values and is mostly never written: its values are undefined",
)];

/// Logical size above which the xarray comparison is skipped (verify --source still runs).
const XARRAY_MAX_BYTES: u64 = 256 << 20;

/// Runs all xarray comparisons in one Python process; returns the differences found.
fn xarray_batch(py: &Path, tmp: &Path, jobs: &[String]) -> Vec<String> {
    let list = tmp.join("compare-jobs.jsonl");
    std::fs::write(&list, jobs.join("\n")).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/compare.py");
    let out = std::process::Command::new(py)
        .arg(script)
        .arg("--batch")
        .arg(&list)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "compare.py --batch failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let results: Vec<Json> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| Json::parse(l).unwrap())
        .collect();
    assert_eq!(results.len(), jobs.len(), "one result per comparison");
    results
        .iter()
        .zip(jobs)
        .filter(|(r, _)| !r.get("problems").and_then(Json::as_array).unwrap().is_empty())
        .map(|(r, job)| {
            format!(
                "{}: xarray differs: {}",
                Json::parse(job).unwrap().get("label").unwrap().to_compact(),
                r.get("problems").unwrap().to_compact()
            )
        })
        .collect()
}

#[test]
fn every_devset_file_converts_equal_or_is_refused_clearly() {
    let Some(root) = devset_dir() else { return };
    let py = python();
    let all = devset_files(&root);
    assert!(all.len() >= 60, "expected the 62-file devset, found {}", all.len());
    let tmp = tempfile::tempdir().unwrap();
    let (mut converted, mut refused, mut failures) = (0, 0, Vec::new());
    let mut batch: Vec<String> = Vec::new();
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
                    match XARRAY_EXCEPTIONS.iter().find(|(n, _)| *n == name) {
                        Some((_, why)) => eprintln!("{name}: xarray comparison skipped: {why}"),
                        None if bytes <= XARRAY_MAX_BYTES => {
                            let label = format!("{name} v{format}");
                            let job = nc2zarr::json_obj! {"zarr" => s(&out), "netcdf" => vec![s(f)], "label" => label};
                            batch.push(job.to_compact());
                        }
                        None => {}
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
    if let Some(py) = &py {
        failures.extend(xarray_batch(py, tmp.path(), &batch));
    }
    eprintln!(
        "devset: {converted} conversions equal to the source, {refused} refusals, {} failures",
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert!(converted >= 70, "too few devset conversions: {converted}");
}
