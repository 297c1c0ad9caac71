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
    verify_source(&out, &files).ok();
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
    verify_source(&out, &files).ok();
}

/// A deterministic kill delay in `0..max_ms` for `seed` (xorshift).
fn kill_delay(seed: u64, max_ms: u64) -> Duration {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).max(1);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    Duration::from_millis(x % max_ms.max(1))
}

/// Runs `args` slowed down (every PUT delayed) and SIGKILLs it after `after`.
fn run_and_kill(args: &[String], after: Duration) {
    let mut child = Command::new(bin())
        .args(args)
        .env("NC2ZARR_TEST_PUT_DELAY_MS", "10")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let _ = child.kill(); // SIGKILL (it may have finished already)
    child.wait().unwrap();
}

/// How long `args` takes when slowed down as in [`run_and_kill`].
fn slowed_duration(args: &[String]) -> Duration {
    let started = Instant::now();
    let out = Command::new(bin())
        .args(args)
        .env("NC2ZARR_TEST_PUT_DELAY_MS", "10")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    started.elapsed()
}

/// What a reader can see after a kill: either no root metadata, or a store that is
/// complete and equal to the sources.
fn readers_see_nothing_or_everything(out: &Path, files: &[String], root_before: Option<&[u8]>) {
    let root = std::fs::read(out.join("zarr.json")).ok();
    if root.as_deref() == root_before {
        return; // unchanged (or still absent): readers see the old dataset or none
    }
    let v = verify_source(out, files);
    // Killed between the root metadata (written last of the data) and the removal of
    // the in-progress marker: readers see the whole new dataset; verify still names
    // the marker, so that a re-run finishes the records.
    let problems: Vec<&str> = v
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with("problem:"))
        .collect();
    let only_the_marker = problems.len() == 1
        && problems[0].contains("in-progress.json exists")
        && v.stdout.contains("values equal to the source");
    assert!(
        v.code == 0 || only_the_marker,
        "new root metadata over an incomplete store:\n{}{}",
        v.stdout,
        v.stderr
    );
}

#[test]
fn kills_at_random_points_of_a_conversion_never_lose_or_expose_data() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(16), 6, 8)
        .iter()
        .map(|p| s(p))
        .collect();
    let argv = |out: &Path, extra: &[&str]| {
        let mut a = vec!["convert".to_string()];
        a.extend(files.iter().cloned());
        a.extend([
            "-o".into(),
            s(out),
            "--chunks".into(),
            "time=1".into(),
            "--io-concurrency".into(),
            "1".into(),
        ]);
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let reference = dir.path().join("reference.zarr");
    run(argv(&reference, &["--quiet"])).ok();
    let span = slowed_duration(&argv(&dir.path().join("timed.zarr"), &["--quiet"]));
    let mut interrupted = 0;
    for seed in 1..=5u64 {
        let out = dir.path().join(format!("killed-{seed}.zarr"));
        let after = kill_delay(seed, span.as_millis() as u64 + 200);
        run_and_kill(&argv(&out, &["--quiet"]), after);
        interrupted += usize::from(out.join(".nc2zarr/in-progress.json").exists());
        readers_see_nothing_or_everything(&out, &files, None);
        let r = run(argv(&out, &["--quiet"]));
        let complete_before = r.code == 4 && r.stderr.contains("already");
        assert!(
            r.code == 0 || complete_before,
            "seed {seed} (killed after {after:?}): rerun failed\n{}{}",
            r.stdout,
            r.stderr
        );
        assert_eq!(
            manifest_objects(&out),
            manifest_objects(&reference),
            "seed {seed} (killed after {after:?}): objects differ"
        );
        verify_source(&out, &files).ok();
    }
    assert!(
        interrupted >= 1,
        "no kill landed while the conversion was running: the test proved nothing"
    );
}

#[test]
fn kills_at_random_points_of_an_append_never_lose_or_expose_data() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(16), 6, 8)
        .iter()
        .map(|p| s(p))
        .collect();
    let chunks = ["--chunks".to_string(), "time=1".to_string()];
    let reference = dir.path().join("reference.zarr");
    let mut one_shot = vec!["convert".to_string()];
    one_shot.extend(files.iter().cloned());
    one_shot.extend(["-o".into(), s(&reference), "--quiet".into()]);
    one_shot.extend(chunks.iter().cloned());
    run(&one_shot).ok();
    let base = |out: &Path| {
        let mut a = vec![
            "convert".to_string(),
            files[0].clone(),
            "-o".into(),
            s(out),
            "--quiet".into(),
        ];
        a.extend(chunks.iter().cloned());
        run(&a).ok();
    };
    let append = |out: &Path| {
        let mut a = vec!["append".to_string()];
        a.extend(files.iter().cloned());
        a.extend([
            "-o".into(),
            s(out),
            "--quiet".into(),
            "--io-concurrency".into(),
            "1".into(),
        ]);
        a
    };
    let timed = dir.path().join("timed.zarr");
    base(&timed);
    let span = slowed_duration(&append(&timed));
    let mut interrupted = 0;
    for seed in 11..=15u64 {
        let out = dir.path().join(format!("killed-{seed}.zarr"));
        base(&out);
        let root_before = std::fs::read(out.join("zarr.json")).unwrap();
        let after = kill_delay(seed, span.as_millis() as u64 + 200);
        run_and_kill(&append(&out), after);
        interrupted += usize::from(out.join(".nc2zarr/in-progress.json").exists());
        readers_see_nothing_or_everything(&out, &files, Some(&root_before));
        run(append(&out)).ok();
        verify_source(&out, &files).ok();
        // The 1-D time coordinate grows by one chunk per append (a documented
        // difference); every other array holds the one-shot conversion's objects.
        let without_time = |j: Json| match j {
            Json::Obj(fields) => Json::Obj(fields.into_iter().filter(|(k, _)| k != "time").collect()),
            other => other,
        };
        let (got, want) = (
            without_time(manifest_objects(&out)),
            without_time(manifest_objects(&reference)),
        );
        assert!(
            got == want,
            "seed {seed} (killed after {after:?}): objects differ from a one-shot conversion"
        );
    }
    assert!(
        interrupted >= 1,
        "no kill landed while the append was running: the test proved nothing"
    );
}

#[test]
fn an_append_killed_during_its_commit_is_finished_by_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(4), 6, 8)
        .iter()
        .map(|p| s(p))
        .collect();
    let out = dir.path().join("store.zarr");
    run([
        "convert".to_string(),
        files[0].clone(),
        "-o".into(),
        s(&out),
        "--quiet".into(),
    ])
    .ok();
    let root_before = std::fs::read(out.join("zarr.json")).unwrap();
    let mut append = vec!["append".to_string()];
    append.extend(files[1..].iter().cloned());
    append.extend(["-o".into(), s(&out), "--json".into()]);
    // Killed after the new manifest is written, before the consolidated metadata.
    let killed = Command::new(bin())
        .args(&append)
        .env("NC2ZARR_FAILPOINT", "append-commit")
        .output()
        .unwrap();
    assert!(!killed.status.success());
    assert!(out.join(".nc2zarr/in-progress.json").exists());
    assert_eq!(
        std::fs::read(out.join("zarr.json")).unwrap(),
        root_before,
        "readers still see the old store"
    );
    // The next run finishes that commit (the files are in by then) and says so.
    let r = run(&append);
    r.ok();
    let j = r.json();
    assert_eq!(
        j.get("status").and_then(Json::as_str),
        Some("nothing to append"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("interrupted during its commit"), "{}", r.stdout);
    assert!(!out.join(".nc2zarr/in-progress.json").exists());
    assert!(!out.join(".nc2zarr/commit.json").exists());
    verify_source(&out, &files).ok();
}
