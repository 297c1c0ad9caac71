//! Split runs: `prepare`, N `task`s (in any order, in parallel, on any machine) and
//! `commit` write the same store, object for object, as one `convert`.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use nc2zarr::json::Json;

/// Every file of a store but nc2zarr's own bookkeeping, with its bytes.
fn store_files(store: &Path) -> Vec<(String, Vec<u8>)> {
    snapshot(store)
        .into_iter()
        .filter(|(k, _)| !k.starts_with(".nc2zarr"))
        .collect()
}

fn manifest_arrays(store: &Path) -> Json {
    read_json(store, ".nc2zarr/manifest.json")
        .get("arrays")
        .unwrap()
        .clone()
}

fn args(head: &[&str], files: &[String], tail: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = head.iter().map(|s| s.to_string()).collect();
    a.extend(files.iter().cloned());
    a.extend(tail.iter().map(|s| s.to_string()));
    a
}

/// Runs task `i` of `store` as its own process: by `--index`, or through one of the
/// schedulers' variables.
fn task(store: &Path, i: usize, how: usize) -> Command {
    let mut c = Command::new(bin());
    c.args(["task", &s(store), "--quiet"]);
    match how % 4 {
        0 => {
            c.args(["--index", &i.to_string()]);
        }
        1 => {
            c.env("SLURM_ARRAY_TASK_ID", i.to_string());
        }
        2 => {
            c.env("JOB_COMPLETION_INDEX", i.to_string());
        }
        _ => {
            c.env("AWS_BATCH_JOB_ARRAY_INDEX", i.to_string());
        }
    }
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

/// Prepares `n` tasks, runs them all at once, commits; returns the split store.
fn split_run(dir: &Path, name: &str, files: &[String], extra: &[&str], n: usize) -> std::path::PathBuf {
    let out = dir.join(name);
    let mut a = args(&["prepare"], files, &["-o", &s(&out), "--tasks", &n.to_string()]);
    a.extend(extra.iter().map(|e| e.to_string()));
    run(&a).ok();
    let children: Vec<_> = (0..n).map(|i| task(&out, i, i).spawn().unwrap()).collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        Run::from_output(&o).ok();
    }
    run(["commit".to_string(), s(&out)]).ok();
    out
}

#[test]
fn four_parallel_tasks_write_the_store_one_process_writes() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(120), 37, 72)
        .iter()
        .map(|p| s(p))
        .collect();
    for (name, extra) in [
        ("ingest", vec!["--chunks", "time=12"]),
        ("v2", vec!["--chunks", "time=40", "--zarr-format", "2"]),
        // A time-series layout over many files: its arrays are rechunked in two passes.
        ("timeseries", vec!["--preset", "timeseries", "--max-mem", "96MiB"]),
    ] {
        let single = dir.path().join(format!("{name}-single.zarr"));
        let mut a = args(&["convert"], &files, &["-o", &s(&single), "--quiet"]);
        a.extend(extra.iter().map(|e| e.to_string()));
        run(&a).ok();
        let split = split_run(dir.path(), &format!("{name}-split.zarr"), &files, &extra, 4);
        assert!(store_files(&single) == store_files(&split), "{name}: the stores differ");
        assert_eq!(
            manifest_arrays(&single),
            manifest_arrays(&split),
            "{name}: the manifests differ"
        );
        verify_source(&split, &files).ok();
        assert!(
            snapshot(&split.join(".nc2zarr/tasks")).is_empty(),
            "commit removes the tasks' files"
        );
        assert!(!split.join(".nc2zarr/in-progress.json").exists());
    }
    // The time-series case really rechunks in two passes.
    let mut a = args(&["plan"], &files, &["-o", "x.zarr", "--json", "--preset", "timeseries"]);
    a.extend(["--max-mem", "96MiB"].map(String::from));
    let plan = run(&a);
    plan.ok();
    assert!(plan.stdout.contains("two-pass"), "{}", plan.stdout);
}

#[test]
fn commit_waits_for_every_task_and_a_failed_task_reruns_alone() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(8), 6, 8)
        .iter()
        .map(|p| s(p))
        .collect();
    let single = dir.path().join("single.zarr");
    run(args(
        &["convert"],
        &files,
        &["-o", &s(&single), "--chunks", "time=2", "--quiet"],
    ))
    .ok();
    let out = dir.path().join("split.zarr");
    let r = run(args(
        &["prepare"],
        &files,
        &["-o", &s(&out), "--tasks", "3", "--chunks", "time=2", "--json"],
    ));
    r.ok();
    assert_eq!(r.json().get("tasks").and_then(Json::as_array).map(|t| t.len()), Some(3));
    for i in [0, 2] {
        Run::from_output(&task(&out, i, 0).output().unwrap()).ok();
    }
    // Task 1 fails (a bug, simulated): it is not recorded as done.
    let failed = task(&out, 1, 0)
        .env("NC2ZARR_FAILPOINT", "encode-panic")
        .output()
        .unwrap();
    Run::from_output(&failed).fails_with(1, &["internal error"]);
    let r = run(["commit".to_string(), s(&out)]);
    r.fails_with(
        7,
        &["task(s) 1 of 3 have not finished", "--index I", "sbatch --array=1"],
    );
    assert!(
        !out.join("zarr.json").exists(),
        "before the commit readers see no dataset"
    );
    // Re-running finished tasks does nothing; the failed one runs alone.
    let again = Run::from_output(&task(&out, 0, 0).output().unwrap());
    again.ok();
    assert!(again.stdout.contains("already finished"), "{}", again.stdout);
    Run::from_output(&task(&out, 1, 1).output().unwrap()).ok();
    run(["commit".to_string(), s(&out)]).ok();
    assert!(store_files(&single) == store_files(&out), "the stores differ");
    verify_source(&out, &files).ok();
    // A prepare killed after saving the job but before writing the arrays that span
    // the files (the coordinates, which it writes itself): its tasks run, the commit
    // says to prepare again, and prepare --restart recovers.
    let killed = dir.path().join("killed.zarr");
    let prepare = args(
        &["prepare"],
        &files,
        &["-o", &s(&killed), "--tasks", "3", "--chunks", "time=2"],
    );
    let mut c = Command::new(bin());
    c.args(&prepare).env("NC2ZARR_FAILPOINT", "task-3");
    Run::from_output(&c.output().unwrap()).fails_with(1, &["failpoint task-3"]);
    for i in 0..3 {
        Run::from_output(&task(&killed, i, 0).output().unwrap()).ok();
    }
    run(["commit".to_string(), s(&killed)]).fails_with(4, &["prepare was interrupted", "--restart"]);
    assert!(!killed.join("zarr.json").exists());
    let mut again = prepare.clone();
    again.push("--restart".into());
    run(&again).ok();
    for i in 0..3 {
        Run::from_output(&task(&killed, i, 0).output().unwrap()).ok();
    }
    run(["commit".to_string(), s(&killed)]).ok();
    assert!(store_files(&single) == store_files(&killed), "the stores differ");
    // A job saved before prepare wrote those arrays itself (no `prepare_writes`, no
    // record of prepare's): its tasks share every unit, and its commit needs no more.
    let older = dir.path().join("older.zarr");
    let a: Vec<String> = prepare
        .iter()
        .map(|x| if x == &s(&killed) { s(&older) } else { x.clone() })
        .collect();
    run(&a).ok();
    let job = older.join(".nc2zarr/tasks/job.json");
    let text = std::fs::read_to_string(&job).unwrap();
    assert!(text.contains(",\"prepare_writes\":true"), "{text}");
    std::fs::write(&job, text.replace(",\"prepare_writes\":true", "")).unwrap();
    std::fs::remove_dir_all(older.join(".nc2zarr/tasks/00003")).unwrap();
    for i in 0..3 {
        Run::from_output(&task(&older, i, 0).output().unwrap()).ok();
    }
    run(["commit".to_string(), s(&older)]).ok();
    assert!(store_files(&single) == store_files(&older), "the stores differ");
    // A bad index is a usage error naming the range.
    let r = run(args(
        &["prepare"],
        &files,
        &["-o", &s(&dir.path().join("x.zarr")), "--tasks", "2"],
    ));
    r.ok();
    let bad = Run::from_output(&task(&dir.path().join("x.zarr"), 5, 0).output().unwrap());
    bad.fails_with(2, &["task index 5 is out of range", "2 tasks"]);
    // A task of a target nobody prepared says what to do.
    let plain = Run::from_output(&task(&single, 0, 0).output().unwrap());
    plain.fails_with(4, &["holds no prepared split run", "nc2zarr prepare"]);
}

#[test]
fn a_killed_task_resumes_from_its_own_journal() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(16), 6, 8)
        .iter()
        .map(|p| s(p))
        .collect();
    let single = dir.path().join("single.zarr");
    run(args(
        &["convert"],
        &files,
        &["-o", &s(&single), "--chunks", "time=1", "--quiet"],
    ))
    .ok();
    let out = dir.path().join("split.zarr");
    run(args(
        &["prepare"],
        &files,
        &["-o", &s(&out), "--tasks", "2", "--chunks", "time=1"],
    ))
    .ok();
    // Slowed writes, killed part-way: some objects are journaled, the task is not done.
    let mut child = task(&out, 0, 0).env("NC2ZARR_TEST_PUT_DELAY_MS", "20").spawn().unwrap();
    let journal = out.join(".nc2zarr/tasks/00000/journal");
    let started = std::time::Instant::now();
    while journal_segments(&journal) == 0 && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    child.wait().unwrap();
    assert!(
        !out.join(".nc2zarr/tasks/00000/done.json").exists(),
        "the kill must interrupt the task"
    );
    let r = Run::from_output(&task(&out, 0, 0).output().unwrap());
    r.ok();
    assert!(r.stdout.contains("resumed"), "{}", r.stdout);
    Run::from_output(&task(&out, 1, 2).output().unwrap()).ok();
    run(["commit".to_string(), s(&out)]).ok();
    assert!(store_files(&single) == store_files(&out), "the stores differ");
    verify_source(&out, &files).ok();
}

#[test]
fn a_split_run_on_s3_writes_what_one_process_writes() {
    let endpoint = match std::env::var("NC2ZARR_TEST_S3_ENDPOINT") {
        Ok(e) => e,
        Err(_) => {
            missing_prerequisite("NC2ZARR_TEST_S3_ENDPOINT not set (scripts/test.sh starts moto)");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = era_set(&dir.path().join("in"), Kind::Classic, &three_months(6), 6, 8)
        .iter()
        .map(|p| s(p))
        .collect();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let single = format!("s3://nc2zarr-test/split-{nanos}/single.zarr");
    let split = format!("s3://nc2zarr-test/split-{nanos}/split.zarr");
    let s3 = |a: Vec<String>| Run::from_output(&s3_command("secret").args(a).output().unwrap());
    let ep = ["--endpoint".to_string(), endpoint.clone()];
    let with = |mut a: Vec<String>| {
        a.extend(ep.iter().cloned());
        a
    };
    s3(with(args(
        &["convert"],
        &files,
        &["-o", &single, "--chunks", "time=3", "--quiet"],
    )))
    .ok();
    s3(with(args(
        &["prepare"],
        &files,
        &["-o", &split, "--tasks", "4", "--chunks", "time=3"],
    )))
    .ok();
    for i in (0..4).rev() {
        s3(with(vec![
            "task".into(),
            split.clone(),
            "--index".into(),
            i.to_string(),
            "--quiet".into(),
        ]))
        .ok();
    }
    s3(with(vec!["commit".into(), split.clone()])).ok();
    let verify = s3(with(args(&["verify", &split, "--json", "--source"], &files, &[])));
    verify.ok();
    // Same objects, by the blake3 hashes of both manifests.
    let manifest = |url: &str| {
        let dl = dir
            .path()
            .join(format!("m-{}.json", url.len() + url.find("single").unwrap_or(0)));
        let out = Command::new(std::env::var("NC2ZARR_PYTHON").unwrap_or_else(|_| "python3".into()))
            .args([
                "-c",
                "import sys, boto3; c = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='nc2zarr-test', \
                 aws_secret_access_key='secret', region_name='us-east-1'); b, k = sys.argv[2][5:].split('/', 1); \
                 open(sys.argv[3], 'wb').write(c.get_object(Bucket=b, Key=k + '/.nc2zarr/manifest.json')['Body'].read())",
                &endpoint,
                url,
                &s(&dl),
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        Json::parse(&std::fs::read_to_string(&dl).unwrap())
            .unwrap()
            .get("arrays")
            .unwrap()
            .clone()
    };
    assert_eq!(manifest(&single), manifest(&split));
}

#[test]
fn an_append_split_over_two_tasks_writes_what_one_append_writes() {
    let dir = tempfile::tempdir().unwrap();
    // 3 files of 10 steps; chunks of 4 steps: the store's last object is partly filled
    // and is rewritten by the append.
    let files: Vec<String> = era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(10), 6, 8)
        .iter()
        .map(|p| s(p))
        .collect();
    let (old, new) = files.split_at(1);
    for v in ["3", "2"] {
        let plain = dir.path().join(format!("plain-v{v}.zarr"));
        let split = dir.path().join(format!("split-v{v}.zarr"));
        for out in [&plain, &split] {
            run(args(
                &["convert"],
                old,
                &["-o", &s(out), "--chunks", "time=4", "--zarr-format", v, "--quiet"],
            ))
            .ok();
        }
        run(args(&["append"], new, &["-o", &s(&plain), "--quiet"])).ok();
        let before = store_files(&split);
        let r = run(args(&["append"], new, &["-o", &s(&split), "--tasks", "2", "--json"]));
        r.ok();
        let j = r.json();
        assert_eq!(j.get("status").and_then(Json::as_str), Some("prepared"), "{}", r.stdout);
        assert_eq!(j.get("length_after").and_then(Json::as_u64), Some(30));
        assert!(store_files(&split) == before, "preparing writes no data");
        // While prepared, a plain append is refused; so is preparing again without --restart.
        run(args(&["append"], new, &["-o", &s(&split)])).fails_with(4, &["prepared split run", "nc2zarr commit"]);
        for i in [1, 0] {
            Run::from_output(&task(&split, i, i).output().unwrap()).ok();
        }
        // The tasks wrote new objects and the rewritten last one, but readers still see
        // the old store: its metadata has not changed.
        let meta = if v == "3" { "zarr.json" } else { ".zmetadata" };
        let meta_before = &before.iter().find(|(k, _)| k == meta).unwrap().1;
        assert!(
            &std::fs::read(split.join(meta)).unwrap() == meta_before,
            "v{v}: metadata changed before the commit"
        );
        let c = run(["commit".to_string(), s(&split), "--json".to_string()]);
        c.ok();
        assert!(store_files(&plain) == store_files(&split), "v{v}: the stores differ");
        assert_eq!(
            manifest_arrays(&plain),
            manifest_arrays(&split),
            "v{v}: the manifests differ"
        );
        assert_eq!(
            read_json(&plain, ".nc2zarr/manifest.json").get("inputs"),
            read_json(&split, ".nc2zarr/manifest.json").get("inputs")
        );
        verify_source(&split, &files).ok();
        assert!(snapshot(&split.join(".nc2zarr/tasks")).is_empty());
        // Everything is in: the same append again has nothing to do.
        let again = run(args(&["append"], new, &["-o", &s(&split), "--tasks", "2", "--json"]));
        again.ok();
        assert_eq!(
            again.json().get("status").and_then(Json::as_str),
            Some("nothing to append")
        );
    }
    // --dry-run and --tasks do not go together; --slurm needs --tasks.
    let r = run(args(&["append"], new, &["-o", "x.zarr", "--tasks", "2", "--dry-run"]));
    r.fails_with(2, &["--dry-run"]);
    let r = run(args(&["append"], new, &["-o", "x.zarr", "--slurm", "jobs"]));
    r.fails_with(2, &["--slurm needs --tasks"]);
}

#[test]
fn a_job_file_prepares_a_split_run_and_writes_its_slurm_scripts() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(6), 6, 8)
        .iter()
        .map(|p| s(p))
        .collect();
    let single = dir.path().join("single.zarr");
    run(args(
        &["convert"],
        &files,
        &["-o", &s(&single), "--chunks", "time=3", "--quiet"],
    ))
    .ok();
    let out = dir.path().join("split.zarr");
    let jobs = dir.path().join("jobs");
    let job = dir.path().join("job.toml");
    let inputs: Vec<String> = files.iter().map(|f| format!("{f:?}")).collect();
    std::fs::write(
        &job,
        format!(
            "mode = \"prepare\"\ninputs = [{}]\ntarget = {:?}\n[options]\ntasks = 3\nchunks = \"time=3\"\n\
             slurm = {:?}\nsbatch = [\"--partition=compute\"]\njson = true\n",
            inputs.join(", "),
            s(&out),
            s(&jobs)
        ),
    )
    .unwrap();
    let r = run(["run".to_string(), s(&job)]);
    r.ok();
    assert_eq!(r.json().get("tasks").and_then(Json::as_array).map(|t| t.len()), Some(3));
    let script = std::fs::read_to_string(jobs.join("tasks.sbatch")).unwrap();
    assert!(
        script.contains("#SBATCH --array=0-2") && script.contains("#SBATCH --partition=compute"),
        "{script}"
    );
    for i in 0..3 {
        Run::from_output(&task(&out, i, i).output().unwrap()).ok();
    }
    run(["commit".to_string(), s(&out)]).ok();
    assert!(store_files(&single) == store_files(&out), "the stores differ");
}
