//! Split runs on a real Slurm cluster: `prepare --slurm DIR --submit` writes and submits
//! a job array of tasks and an `afterok` commit job, and the result is the store one
//! process writes, object for object. `scripts/test.sh` starts a one-node cluster
//! (`scripts/slurm-cluster.sh`) and sets `SLURM_CONF`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use nc2zarr::json::Json;

/// True when a cluster is up; otherwise the test skips (or fails under CI).
fn cluster() -> bool {
    if std::env::var_os("NC2ZARR_TEST_SLURM").is_some() && std::env::var_os("SLURM_CONF").is_some() {
        return true;
    }
    missing_prerequisite("no Slurm cluster (scripts/test.sh starts one with scripts/slurm-cluster.sh)");
    false
}

/// Every file of a store but nc2zarr's own bookkeeping, with its bytes.
fn store_files(store: &Path) -> Vec<(String, Vec<u8>)> {
    snapshot(store)
        .into_iter()
        .filter(|(k, _)| !k.starts_with(".nc2zarr"))
        .collect()
}

fn args(head: &[&str], files: &[String], tail: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = head.iter().map(|s| s.to_string()).collect();
    a.extend(files.iter().cloned());
    a.extend(tail.iter().map(|s| s.to_string()));
    a
}

/// The state of each job (array elements included) of `ids`, from `scontrol`.
fn states(ids: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    for id in ids {
        let o = Command::new("scontrol")
            .args(["-o", "show", "job", id])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout);
        for line in text.lines() {
            if let Some(state) = line.split_whitespace().find_map(|w| w.strip_prefix("JobState=")) {
                out.push(state.to_string());
            }
        }
    }
    out
}

/// Waits until none of `ids` is pending or running (a job that can never run because
/// of its dependency counts as finished); returns their final states.
fn wait(ids: &[&str], logs: &Path) -> Vec<String> {
    let started = Instant::now();
    loop {
        let st = states(ids);
        let active = st
            .iter()
            .any(|s| matches!(s.as_str(), "PENDING" | "RUNNING" | "CONFIGURING" | "COMPLETING"));
        if !st.is_empty() && !active {
            return st;
        }
        if started.elapsed() > Duration::from_secs(240) {
            let mut logs_text = String::new();
            for (name, bytes) in snapshot(logs) {
                logs_text.push_str(&format!("--- {name}\n{}\n", String::from_utf8_lossy(&bytes)));
            }
            panic!("jobs {ids:?} still {st:?} after 240 s\n{logs_text}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `sbatch --parsable ARGS` from the test; returns the job id.
fn sbatch(args: &[&str]) -> String {
    let o = Command::new("sbatch").arg("--parsable").args(args).output().unwrap();
    assert!(
        o.status.success(),
        "sbatch {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout)
        .trim()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

/// The array and commit job ids of a `--submit` report.
fn submitted(r: &Run) -> (String, String) {
    let j = r.json();
    let slurm = j.get("slurm").unwrap_or_else(|| panic!("no slurm part: {}", r.stdout));
    let id = |k: &str| {
        slurm
            .get(k)
            .and_then(Json::as_str)
            .unwrap_or_else(|| panic!("{k}: {}", r.stdout))
            .to_string()
    };
    (id("array_job"), id("commit_job"))
}

fn single(files: &[String], out: &Path, extra: &[&str]) {
    let mut a = args(&["convert"], files, &["-o", &s(out), "--quiet"]);
    a.extend(extra.iter().map(|e| e.to_string()));
    run(&a).ok();
}

/// `prepare … --tasks n --slurm DIR --submit --json`, run with `env`; waits for both jobs.
fn submit_and_wait(
    files: &[String],
    out: &str,
    n: usize,
    extra: &[&str],
    scripts: &Path,
    env: &[(&str, &str)],
) -> (Run, Vec<String>) {
    let mut a = args(
        &["prepare"],
        files,
        &["-o", out, "--tasks", &n.to_string(), "--workers", "1", "--json"],
    );
    a.extend(["--slurm".into(), s(scripts), "--submit".into()]);
    a.extend(extra.iter().map(|e| e.to_string()));
    let mut c = s3_command("secret");
    c.args(&a);
    for (k, v) in env {
        c.env(k, v);
    }
    let r = Run::from_output(&c.output().unwrap());
    r.ok();
    let (array, commit) = submitted(&r);
    let st = wait(&[&array, &commit], scripts);
    (r, st)
}

#[test]
fn a_four_task_array_writes_what_one_process_writes() {
    if !cluster() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let nc4: Vec<String> = era_set(&dir.path().join("nc4"), Kind::Netcdf4, &three_months(24), 19, 36)
        .iter()
        .map(|p| s(p))
        .collect();
    let classic: Vec<String> = era_set(&dir.path().join("classic"), Kind::Classic, &three_months(8), 6, 8)
        .iter()
        .map(|p| s(p))
        .collect();
    for (name, files, extra) in [
        ("nc4", &nc4, vec!["--chunks", "time=6"]),
        ("classic-v2", &classic, vec!["--chunks", "time=4", "--zarr-format", "2"]),
        // A time-series layout over many files: its arrays are rechunked in two passes.
        ("timeseries", &nc4, vec!["--preset", "timeseries", "--max-mem", "96MiB"]),
    ] {
        let one = dir.path().join(format!("{name}-single.zarr"));
        single(files, &one, &extra);
        let out = dir.path().join(format!("{name}-slurm.zarr"));
        let scripts = dir.path().join(format!("{name}-jobs"));
        let (r, st) = submit_and_wait(files, &s(&out), 4, &extra, &scripts, &[]);
        assert!(st.iter().all(|s| s == "COMPLETED"), "{name}: {st:?}\n{}", r.stdout);
        assert_eq!(st.len(), 5, "four tasks and the commit: {st:?}");
        assert!(store_files(&one) == store_files(&out), "{name}: the stores differ");
        verify_source(&out, files).ok();
        for i in 0..4 {
            assert!(scripts.join(format!("task-{i}.out")).exists(), "task {i} left its log");
        }
        if let Some(py) = python() {
            xarray_compare(&py, &out, files, &[]).unwrap_or_else(|e| panic!("{name}: xarray: {e}"));
        } else {
            missing_prerequisite("python with xarray (NC2ZARR_PYTHON)");
        }
    }
    // An append over 2 tasks, through the same scripts.
    let (old, new) = classic.split_at(1);
    let plain = dir.path().join("append-plain.zarr");
    let split = dir.path().join("append-slurm.zarr");
    for out in [&plain, &split] {
        single(old, out, &["--chunks", "time=3"]);
    }
    run(args(&["append"], new, &["-o", &s(&plain), "--quiet"])).ok();
    let scripts = dir.path().join("append-jobs");
    let mut a = args(
        &["append"],
        new,
        &["-o", &s(&split), "--tasks", "2", "--workers", "1", "--json"],
    );
    a.extend(["--slurm".into(), s(&scripts), "--submit".into()]);
    let r = run(&a);
    r.ok();
    let (array, commit) = submitted(&r);
    let st = wait(&[&array, &commit], &scripts);
    assert!(st.iter().all(|s| s == "COMPLETED"), "{st:?}");
    assert!(store_files(&plain) == store_files(&split), "the appended stores differ");
    verify_source(&split, &classic).ok();
}

#[test]
fn a_failed_task_cancels_the_commit_and_reruns_alone() {
    if !cluster() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(8), 6, 8)
        .iter()
        .map(|p| s(p))
        .collect();
    let one = dir.path().join("single.zarr");
    single(&files, &one, &["--chunks", "time=2"]);
    let out = dir.path().join("slurm.zarr");
    let scripts = dir.path().join("jobs");
    // Task 2 fails after writing its objects (a failpoint in that run's environment).
    let (_, st) = submit_and_wait(
        &files,
        &s(&out),
        4,
        &["--chunks", "time=2"],
        &scripts,
        &[("NC2ZARR_FAILPOINT", "task-2")],
    );
    assert_eq!(st.iter().filter(|s| *s == "FAILED").count(), 1, "{st:?}");
    assert_eq!(st.iter().filter(|s| *s == "COMPLETED").count(), 3, "{st:?}");
    assert_eq!(
        st.last().map(String::as_str),
        Some("CANCELLED"),
        "the commit job is cancelled: {st:?}"
    );
    assert!(!out.join("zarr.json").exists(), "readers see no dataset");
    let log = std::fs::read_to_string(scripts.join("task-2.out")).unwrap();
    assert!(log.contains("failpoint task-2"), "{log}");
    run(["commit".to_string(), s(&out)]).fails_with(7, &["task(s) 2 of 4 have not finished", "sbatch --array=2"]);
    // The re-run the report describes: that index alone, then the commit after it.
    let tasks = scripts.join("tasks.sbatch");
    let rerun = sbatch(&["--array=2", &s(&tasks)]);
    let commit = sbatch(&[
        &format!("--dependency=afterok:{rerun}"),
        &s(&scripts.join("commit.sbatch")),
    ]);
    let st = wait(&[&rerun, &commit], &scripts);
    assert_eq!(st, ["COMPLETED", "COMPLETED"]);
    let log = std::fs::read_to_string(scripts.join("task-2.out")).unwrap();
    assert!(log.contains("resumed"), "the re-run resumes from the journal: {log}");
    assert!(store_files(&one) == store_files(&out), "the stores differ");
    verify_source(&out, &files).ok();
}

#[test]
fn a_task_killed_with_sigkill_resumes_when_resubmitted() {
    if !cluster() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(16), 6, 8)
        .iter()
        .map(|p| s(p))
        .collect();
    let one = dir.path().join("single.zarr");
    single(&files, &one, &["--chunks", "time=1"]);
    let out = dir.path().join("slurm.zarr");
    let scripts = dir.path().join("jobs");
    let r = run(args(
        &["prepare"],
        &files,
        &[
            "-o",
            &s(&out),
            "--tasks",
            "2",
            "--workers",
            "1",
            "--chunks",
            "time=1",
            "--json",
            "--slurm",
            &s(&scripts),
        ],
    ));
    r.ok();
    // Submitted by hand from the written scripts, task 0 slowed down, then killed.
    let tasks = s(&scripts.join("tasks.sbatch"));
    let slow = Command::new("sbatch")
        .args(["--parsable", "--array=0", &tasks])
        .env("NC2ZARR_TEST_PUT_DELAY_MS", "100")
        .output()
        .unwrap();
    assert!(slow.status.success());
    let array = String::from_utf8_lossy(&slow.stdout).trim().to_string();
    let journal = out.join(".nc2zarr/tasks/00000/journal");
    let started = Instant::now();
    while journal_segments(&journal) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "task 0 never wrote: {:?}",
            states(&[&array])
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let k = Command::new("scancel")
        .args(["--signal=KILL", "--full", &array])
        .output()
        .unwrap();
    assert!(k.status.success(), "{}", String::from_utf8_lossy(&k.stderr));
    let st = wait(&[&array], &scripts);
    assert!(
        st.iter().all(|s| s != "COMPLETED"),
        "the kill must interrupt the task: {st:?}"
    );
    assert!(!out.join(".nc2zarr/tasks/00000/done.json").exists());
    let again = sbatch(&[&tasks]);
    let commit = sbatch(&[
        &format!("--dependency=afterok:{again}"),
        &s(&scripts.join("commit.sbatch")),
    ]);
    let st = wait(&[&again, &commit], &scripts);
    assert!(st.iter().all(|s| s == "COMPLETED"), "{st:?}");
    let log = std::fs::read_to_string(scripts.join("task-0.out")).unwrap();
    assert!(log.contains("resumed"), "{log}");
    assert!(store_files(&one) == store_files(&out), "the stores differ");
}

#[test]
fn a_four_task_array_on_s3_writes_what_one_process_writes() {
    if !cluster() {
        return;
    }
    let Ok(endpoint) = std::env::var("NC2ZARR_TEST_S3_ENDPOINT") else {
        missing_prerequisite("NC2ZARR_TEST_S3_ENDPOINT not set (scripts/test.sh starts moto)");
        return;
    };
    let Some(py) = python() else {
        missing_prerequisite("python with boto3 (NC2ZARR_PYTHON)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(8), 6, 8)
        .iter()
        .map(|p| s(p))
        .collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let one = format!("s3://nc2zarr-test/slurm-{nanos}/single.zarr");
    let split = format!("s3://nc2zarr-test/slurm-{nanos}/split.zarr");
    let ep = ["--endpoint", endpoint.as_str()];
    let mut a = args(&["convert"], &files, &["-o", &one, "--chunks", "time=2", "--quiet"]);
    a.extend(ep.iter().map(|e| e.to_string()));
    Run::from_output(&s3_command("secret").args(&a).output().unwrap()).ok();
    let scripts = dir.path().join("jobs");
    let (r, st) = submit_and_wait(&files, &split, 4, &["--chunks", "time=2", ep[0], ep[1]], &scripts, &[]);
    assert!(st.iter().all(|s| s == "COMPLETED"), "{st:?}\n{}", r.stdout);
    // The scripts carry the endpoint but no credentials: those come from the environment.
    let script = std::fs::read_to_string(scripts.join("tasks.sbatch")).unwrap();
    assert!(script.contains(&endpoint) && !script.contains("secret"), "{script}");
    let download = |url: &str| -> PathBuf {
        let to = dir.path().join(format!("dl-{}", url.rsplit('/').next().unwrap()));
        let o = Command::new(&py)
            .args([
                "-c",
                "import os, sys, boto3\n\
                 c = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='nc2zarr-test', \
                 aws_secret_access_key='secret', region_name='us-east-1')\n\
                 b, prefix = sys.argv[2][5:].split('/', 1)\n\
                 for page in c.get_paginator('list_objects_v2').paginate(Bucket=b, Prefix=prefix + '/'):\n\
                 \x20   for o in page.get('Contents', []):\n\
                 \x20       p = os.path.join(sys.argv[3], o['Key'][len(prefix) + 1:])\n\
                 \x20       os.makedirs(os.path.dirname(p), exist_ok=True)\n\
                 \x20       open(p, 'wb').write(c.get_object(Bucket=b, Key=o['Key'])['Body'].read())\n",
                &endpoint,
                url,
                &s(&to),
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        to
    };
    let (a, b) = (store_files(&download(&one)), store_files(&download(&split)));
    assert!(a.len() > 10, "{} objects", a.len());
    assert!(a == b, "the stores differ");
}

/// A split run into an Icechunk repository on Slurm: the tasks write forks of one
/// session, the commit job merges them into one commit holding what one process writes.
#[cfg(feature = "icechunk")]
#[test]
fn a_three_task_array_commits_once_to_an_icechunk_repository() {
    if !cluster() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(24), 19, 36)
        .iter()
        .map(|p| s(p))
        .collect();
    let extra = ["--chunks", "time=6"];
    let one = dir.path().join("single");
    single(&files, Path::new(&format!("icechunk+{}", s(&one))), &extra);
    let repo = dir.path().join("slurm");
    let name = format!("icechunk+{}", s(&repo));
    let scripts = dir.path().join("jobs");
    let (r, st) = submit_and_wait(&files, &name, 3, &extra, &scripts, &[]);
    assert!(st.iter().all(|s| s == "COMPLETED"), "{st:?}\n{}", r.stdout);
    assert_eq!(st.len(), 4, "three tasks and the commit: {st:?}");
    let objects = |p: &Path| read_json(p, ".nc2zarr/manifest.json").get("arrays").unwrap().clone();
    assert_eq!(
        objects(&one),
        objects(&repo),
        "the tasks wrote other chunks than one process"
    );
    run(args(&["verify", &name, "--source"], &files, &[])).ok();
    assert!(
        snapshot(&repo.join(".nc2zarr/tasks")).is_empty(),
        "the commit cleaned up the tasks' records"
    );
    // One commit on main after the initial snapshot, as the icechunk package reads it.
    let Some(py) = std::env::var_os("NC2ZARR_PYTHON_CURRENT") else {
        missing_prerequisite("NC2ZARR_PYTHON_CURRENT (Python >= 3.12 with icechunk) not set");
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/icechunk_history.py");
    let out = Command::new(py).arg(script).arg(&name).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let history = String::from_utf8_lossy(&out.stdout);
    assert_eq!(history.lines().count(), 2, "{history}");
    assert!(
        history.lines().next().unwrap().contains("nc2zarr convert: 3 files"),
        "{history}"
    );
}
