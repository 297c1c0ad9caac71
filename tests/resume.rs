//! Crash safety: `kill -9` part-way leaves a store no reader can open; re-running the
//! same command resumes and ends with the same objects as an uninterrupted run.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use nc2zarr::json::Json;

/// Object hashes by array from a store's manifest.
fn manifest_objects(store: &Path) -> Json {
    read_json(store, ".nc2zarr/manifest.json")
        .get("arrays")
        .unwrap()
        .clone()
}

fn journal_segments(store: &Path) -> usize {
    std::fs::read_dir(store.join(".nc2zarr/journal"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// Starts a slowed-down conversion and kills it (SIGKILL) once its journal shows progress.
fn convert_and_kill(files: &[String], out: &Path, extra: &[&str]) {
    let mut child = Command::new(bin())
        .arg("convert")
        .args(files)
        .args(["-o", &s(out), "--quiet", "--io-concurrency", "1"])
        .args(extra)
        .env("NC2ZARR_TEST_PUT_DELAY_MS", "15")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while journal_segments(out) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no journal segment appeared"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the conversion finished before it could be interrupted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

#[test]
fn a_killed_conversion_resumes_to_identical_objects() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(60), 12, 20)
        .iter()
        .map(|p| s(p))
        .collect();
    let chunks = ["--chunks", "time=1"];
    let reference = dir.path().join("reference.zarr");
    let mut args = vec!["convert".to_string()];
    args.extend(files.iter().cloned());
    args.extend([
        "-o".into(),
        s(&reference),
        "--quiet".into(),
        chunks[0].into(),
        chunks[1].into(),
    ]);
    run(&args).ok();

    let out = dir.path().join("out.zarr");
    convert_and_kill(&files, &out, &chunks);
    // Killed part-way: not openable, and verify says why.
    assert!(
        !out.join("zarr.json").exists(),
        "root metadata must not exist before the commit"
    );
    assert!(out.join(".nc2zarr/in-progress.json").exists());
    let v = run(["verify".to_string(), s(&out)]);
    assert_eq!(v.code, 5, "{}{}", v.stdout, v.stderr);
    assert!(v.stdout.contains("interrupted"), "{}", v.stdout);

    // The same command without --overwrite resumes.
    let mut again = vec!["convert".to_string()];
    again.extend(files.iter().cloned());
    again.extend([
        "-o".into(),
        s(&out),
        "--json".into(),
        chunks[0].into(),
        chunks[1].into(),
    ]);
    let summary = run(&again).ok().json();
    let resumed = summary.get("resumed_objects").and_then(Json::as_u64).unwrap();
    let objects = summary.get("objects").and_then(Json::as_u64).unwrap();
    assert!(resumed > 0 && resumed < objects, "resumed {resumed} of {objects}");
    assert_eq!(
        manifest_objects(&out),
        manifest_objects(&reference),
        "same objects, same hashes"
    );
    assert!(!out.join(".nc2zarr/in-progress.json").exists());
    assert_eq!(journal_segments(&out), 0, "the journal is removed at commit");
    let mut verify = vec!["verify".to_string(), s(&out), "--source".to_string()];
    verify.extend(files.iter().cloned());
    run(&verify).ok();
}

#[test]
fn a_different_plan_does_not_resume_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(40), 10, 16)
        .iter()
        .map(|p| s(p))
        .collect();
    let out = dir.path().join("out.zarr");
    convert_and_kill(&files, &out, &["--chunks", "time=1"]);
    // The killed job's lock is taken over (its process is gone); nothing else may change.
    let content = |dir: &Path| -> Vec<(String, Vec<u8>)> {
        snapshot(dir)
            .into_iter()
            .filter(|(k, _)| k != ".nc2zarr/lock.json")
            .collect()
    };
    let before = content(&out);
    let mut args = vec!["convert".to_string()];
    args.extend(files.iter().cloned());
    args.extend(["-o".into(), s(&out), "--chunks".into(), "time=2".into()]);
    run(&args).fails_with(4, &["interrupted conversion", "plan", "--restart"]);
    assert!(content(&out) == before, "a refused resume changes nothing");
    args.push("--restart".into());
    args.push("--json".into());
    let summary = run(&args).ok().json();
    assert_eq!(summary.get("resumed_objects").and_then(Json::as_u64), Some(0));
    let mut verify = vec!["verify".to_string(), s(&out), "--source".to_string()];
    verify.extend(files.iter().cloned());
    run(&verify).ok();
}
