//! Icechunk repositories as targets (`icechunk+TARGET`, Cargo feature `icechunk`): one
//! commit per convert and per append, with the history and values the `icechunk` package
//! and xarray read (Python ≥ 3.12, `NC2ZARR_PYTHON_CURRENT`); kills that leave the
//! previous snapshot readable and re-runs that commit once; refusals.
#![cfg(feature = "icechunk")]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use nc2zarr::json::Json;

/// The test server's secret (moto accepts any).
const SECRET: &str = "nc2zarr-test-secret-ice";

/// The Python with the `icechunk` package (`NC2ZARR_PYTHON_CURRENT`, set by scripts/test.sh).
fn icechunk_python() -> Option<PathBuf> {
    match std::env::var_os("NC2ZARR_PYTHON_CURRENT") {
        Some(p) => Some(PathBuf::from(p)),
        None if std::env::var_os("NC2ZARR_REQUIRE_INTEROP").is_some() => {
            panic!("NC2ZARR_REQUIRE_INTEROP is set but NC2ZARR_PYTHON_CURRENT is not")
        }
        None => {
            missing_prerequisite("NC2ZARR_PYTHON_CURRENT (Python >= 3.12 with icechunk) not set");
            None
        }
    }
}

/// `n` consecutive 6-hourly files of `steps` steps each, in hours since 1900.
fn months(n: usize, steps: usize) -> Vec<Month> {
    let start = 1_051_896;
    (0..n)
        .map(|m| Month {
            times: (0..steps).map(|i| start + 6 * (m * steps + i) as i32).collect(),
            units: "hours since 1900-01-01 00:00:00",
        })
        .collect()
}

fn inputs(dir: &Path, n: usize) -> Vec<String> {
    era_set(&dir.join("in"), Kind::Netcdf4, &months(n, 8), 6, 10)
        .iter()
        .map(|p| s(p))
        .collect()
}

fn argv(head: &[&str], files: &[String], tail: &[&str]) -> Vec<String> {
    head.iter()
        .map(|a| a.to_string())
        .chain(files.iter().cloned())
        .chain(tail.iter().map(|a| a.to_string()))
        .collect()
}

/// Where a repository is, and how nc2zarr and Python reach it.
struct Repo {
    /// `icechunk+…`
    name: String,
    /// The moto endpoint, for an S3 repository.
    endpoint: Option<String>,
}

impl Repo {
    fn local(dir: &Path) -> Repo {
        Repo {
            name: format!("icechunk+{}", s(dir)),
            endpoint: None,
        }
    }

    /// nc2zarr with `args` (and the endpoint and credentials of an S3 repository).
    fn command(&self, args: &[String]) -> Command {
        let mut cmd = match &self.endpoint {
            Some(_) => s3_command(SECRET),
            None => Command::new(bin()),
        };
        cmd.args(args).env_remove("CI").env_remove("NC2ZARR_FAILPOINT");
        if let Some(e) = &self.endpoint {
            cmd.args(["--endpoint", e]);
        }
        cmd
    }

    fn run(&self, args: &[String]) -> Run {
        Run::from_output(&self.command(args).output().unwrap())
    }

    /// Runs a Python script of tests/interop on the repository.
    fn python(&self, py: &Path, script: &str, args: &[String]) -> String {
        let mut cmd = Command::new(py);
        cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop").join(script))
            .args(args);
        if let Some(e) = &self.endpoint {
            cmd.args(["--s3-endpoint", e])
                .env("AWS_ACCESS_KEY_ID", "nc2zarr-test")
                .env("AWS_SECRET_ACCESS_KEY", SECRET);
        }
        let out = cmd.output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{script}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    }

    /// The history of `main` as the `icechunk` package reads it, newest first.
    fn history(&self, py: &Path) -> Vec<Json> {
        self.python(py, "icechunk_history.py", std::slice::from_ref(&self.name))
            .lines()
            .map(|l| Json::parse(l).unwrap())
            .collect()
    }

    /// xarray on `snapshot` (or the tip) against `open_mfdataset` on `files`.
    fn assert_equals(&self, py: &Path, files: &[String], snapshot: Option<&str>) {
        let mut args = vec![self.name.clone()];
        args.extend(files.iter().cloned());
        if let Some(id) = snapshot {
            args.extend(["--snapshot".to_string(), id.to_string()]);
        }
        let out = self.python(py, "compare.py", &args);
        assert!(out.contains("identical"), "{out}");
    }
}

fn field<'a>(snapshot: &'a Json, key: &str) -> &'a str {
    snapshot.get(key).and_then(Json::as_str).unwrap_or_default()
}

/// Convert two files, append one, append one: three snapshots after the initial one,
/// each equal to `open_mfdataset` on the files it holds, with messages naming them.
fn convert_and_append_twice(repo: &Repo, files: &[String], py: &Path) {
    repo.run(&argv(&["convert"], &files[..2], &["-o", &repo.name, "--quiet"]))
        .ok();
    repo.run(&argv(&["append"], &files[2..3], &["-o", &repo.name])).ok();
    repo.run(&argv(&["append"], &files[3..], &["-o", &repo.name])).ok();

    let history = repo.history(py);
    assert_eq!(history.len(), 4, "{history:?}");
    assert_eq!(field(&history[3], "message"), "Repository initialized");
    assert!(
        field(&history[2], "message").starts_with("nc2zarr convert: 2 files: "),
        "{history:?}"
    );
    assert!(field(&history[2], "message").contains("part_01.nc"));
    assert_eq!(
        field(&history[1], "message"),
        format!("nc2zarr append: 1 file: {}", files[2])
    );
    assert_eq!(
        field(&history[0], "message"),
        format!("nc2zarr append: 1 file: {}", files[3])
    );
    for (i, n) in [(2, 2), (1, 3), (0, 4)] {
        assert!(!field(&history[i], "run").is_empty(), "{history:?}");
        repo.assert_equals(py, &files[..n], Some(field(&history[i], "id")));
    }
    repo.assert_equals(py, files, None);

    // verify reads the tip through nc2zarr and names it.
    let v = repo.run(&argv(&["verify", &repo.name, "--source"], files, &[]));
    v.ok();
    assert!(
        v.stdout
            .contains(&format!("snapshot {} (tip of main)", field(&history[0], "id"))),
        "{}",
        v.stdout
    );
    // Appending what is there commits nothing.
    let again = repo.run(&argv(&["append"], &files[3..], &["-o", &repo.name, "--json"]));
    assert_eq!(
        again.ok().json().get("files_already_present").and_then(Json::as_u64),
        Some(1)
    );
    assert_eq!(repo.history(py).len(), 4);
}

#[test]
fn local_repository_convert_then_two_appends_make_three_snapshots() {
    let Some(py) = icechunk_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let files = inputs(dir.path(), 4);
    convert_and_append_twice(&Repo::local(&dir.path().join("repo")), &files, &py);
}

#[test]
fn s3_repository_convert_then_two_appends_make_three_snapshots() {
    let Some(py) = icechunk_python() else { return };
    let endpoint = match std::env::var("NC2ZARR_TEST_S3_ENDPOINT") {
        Ok(e) => e,
        Err(_) => {
            if std::env::var_os("NC2ZARR_REQUIRE_SERVERS").is_some() {
                panic!("NC2ZARR_TEST_S3_ENDPOINT not set");
            }
            missing_prerequisite("NC2ZARR_TEST_S3_ENDPOINT not set (scripts/test.sh starts moto)");
            return;
        }
    };
    let dir = tempfile::tempdir().unwrap();
    let files = inputs(dir.path(), 4);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let repo = Repo {
        name: format!("icechunk+s3://nc2zarr-test/ice-{}-{nanos}", std::process::id()),
        endpoint: Some(endpoint),
    };
    convert_and_append_twice(&repo, &files, &py);
}

/// Starts `args` slowed down (every write delayed) and SIGKILLs it once its journal
/// shows progress: part of its chunks are in the repository's storage, uncommitted.
fn kill_during(repo: &Repo, dir: &Path, args: &[String]) {
    let mut child = repo
        .command(args)
        .env("NC2ZARR_TEST_PUT_DELAY_MS", "15")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let journal = dir.join(".nc2zarr/journal");
    let started = Instant::now();
    while journal_segments(&journal) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no journal segment appeared"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run finished before it could be interrupted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

#[test]
fn a_killed_append_leaves_the_previous_snapshot_and_the_rerun_commits_once() {
    let Some(py) = icechunk_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let files = inputs(dir.path(), 4);
    let repo_dir = dir.path().join("repo");
    let repo = Repo::local(&repo_dir);
    repo.run(&argv(
        &["convert"],
        &files[..2],
        &["-o", &repo.name, "--quiet", "--chunks", "time=1"],
    ))
    .ok();
    let before = repo.history(&py);
    assert_eq!(before.len(), 2);

    kill_during(
        &repo,
        &repo_dir,
        &argv(
            &["append"],
            &files[2..],
            &["-o", &repo.name, "--quiet", "--io-concurrency", "1"],
        ),
    );
    // Readers see the previous snapshot, whole; verify checks it and says why it passes.
    assert_eq!(repo.history(&py), before);
    repo.assert_equals(&py, &files[..2], None);
    let v = repo.run(&argv(&["verify", &repo.name, "--source"], &files[..2], &[]));
    v.ok();
    assert!(v.stdout.contains("interrupted before its commit"), "{}", v.stdout);

    // The re-run resumes the session the killed run saved, and commits once.
    assert!(repo_dir.join(".nc2zarr/session.bin").is_file());
    let again = repo.run(&argv(&["append"], &files[2..], &["-o", &repo.name, "--json"]));
    let report = again.ok().json();
    assert!(
        report.get("resumed_objects").and_then(Json::as_u64).unwrap() > 0,
        "{report:?}"
    );
    assert!(
        !repo_dir.join(".nc2zarr/session.bin").exists(),
        "the saved session is spent"
    );
    let after = repo.history(&py);
    assert_eq!(after.len(), 3, "{after:?}");
    assert_eq!(after[1..], before[..]);
    assert!(field(&after[0], "message").starts_with("nc2zarr append: 2 files: "));
    repo.assert_equals(&py, &files, None);
    repo.run(&argv(&["verify", &repo.name, "--source"], &files, &[])).ok();
}

/// Converts `converted` (one step per chunk) into `repo`, then kills an append of
/// `appended` part-way (see [`kill_during`]).
fn convert_then_kill_append(repo: &Repo, repo_dir: &Path, converted: &[String], appended: &[String]) {
    repo.run(&argv(
        &["convert"],
        converted,
        &["-o", &repo.name, "--quiet", "--chunks", "time=1"],
    ))
    .ok();
    let append = argv(
        &["append"],
        appended,
        &["-o", &repo.name, "--quiet", "--io-concurrency", "1"],
    );
    kill_during(repo, repo_dir, &append);
}

#[test]
fn a_saved_session_is_not_resumed_once_main_has_moved() {
    let Some(py) = icechunk_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let files = inputs(dir.path(), 3);
    let repo_dir = dir.path().join("repo");
    let repo = Repo::local(&repo_dir);
    convert_then_kill_append(&repo, &repo_dir, &files[..2], &files[2..]);
    assert!(repo_dir.join(".nc2zarr/session.bin").is_file());
    // Another writer commits to main: the saved session is based on an older snapshot.
    repo.python(
        &py,
        "icechunk_commit_group.py",
        &[repo.name.clone(), "elsewhere".into(), "another writer".into()],
    );
    let again = repo.run(&argv(&["append"], &files[2..], &["-o", &repo.name, "--json"]));
    let report = again.ok().json();
    assert_eq!(
        report.get("resumed_objects").and_then(Json::as_u64),
        Some(0),
        "{report:?}"
    );
    let history = repo.history(&py);
    assert_eq!(history.len(), 4, "{history:?}");
    assert_eq!(field(&history[1], "message"), "another writer");
    repo.assert_equals(&py, &files, None);
    repo.run(&argv(&["verify", &repo.name, "--source"], &files, &[])).ok();
}

#[test]
fn restarting_another_append_drops_what_the_killed_one_left_in_its_session() {
    let Some(py) = icechunk_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let files = inputs(dir.path(), 4);
    let repo_dir = dir.path().join("repo");
    let repo = Repo::local(&repo_dir);
    convert_then_kill_append(&repo, &repo_dir, &files[..2], &files[2..3]);
    let other = argv(&["append"], &files[3..], &["-o", &repo.name, "--allow-gaps"]);
    repo.run(&other)
        .fails_with(4, &["interrupted append of other files", "--restart"]);
    let mut restart = other.clone();
    restart.push("--restart".into());
    repo.run(&restart).ok();
    let kept = [files[0].clone(), files[1].clone(), files[3].clone()];
    repo.assert_equals(&py, &kept, None);
    repo.run(&argv(&["verify", &repo.name, "--source"], &kept, &[])).ok();
    assert_eq!(repo.history(&py).len(), 3);
}

#[test]
fn a_killed_conversion_commits_nothing_and_the_rerun_commits_once() {
    let Some(py) = icechunk_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let files = inputs(dir.path(), 3);
    let repo_dir = dir.path().join("repo");
    let repo = Repo::local(&repo_dir);
    kill_during(
        &repo,
        &repo_dir,
        &argv(
            &["convert"],
            &files,
            &[
                "-o",
                &repo.name,
                "--quiet",
                "--io-concurrency",
                "1",
                "--chunks",
                "time=1",
            ],
        ),
    );
    assert_eq!(repo.history(&py).len(), 1, "only the initial snapshot");
    let v = repo.run(&["verify".to_string(), repo.name.clone()]);
    assert_eq!(v.code, 5, "{}", v.stdout);
    assert!(v.stdout.contains("nothing is committed yet"), "{}", v.stdout);

    let again = repo.run(&argv(
        &["convert"],
        &files,
        &["-o", &repo.name, "--json", "--chunks", "time=1"],
    ));
    let report = again.ok().json();
    assert!(
        report.get("resumed_objects").and_then(Json::as_u64).unwrap() > 0,
        "{report:?}"
    );
    let history = repo.history(&py);
    assert_eq!(history.len(), 2, "{history:?}");
    repo.assert_equals(&py, &files, None);
    repo.run(&argv(&["verify", &repo.name, "--source"], &files, &[])).ok();
}

#[test]
fn a_kill_right_after_the_commit_is_settled_without_a_second_commit() {
    let Some(py) = icechunk_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let files = inputs(dir.path(), 3);
    let repo = Repo::local(&dir.path().join("repo"));
    let convert = argv(&["convert"], &files[..2], &["-o", &repo.name, "--quiet"]);
    let killed = repo
        .command(&convert)
        .env("NC2ZARR_FAILPOINT", "after-commit")
        .output()
        .unwrap();
    assert!(!killed.status.success());
    assert_eq!(repo.history(&py).len(), 2, "the convert committed");
    repo.run(&convert).ok();
    assert_eq!(repo.history(&py).len(), 2, "the re-run committed nothing more");
    repo.run(&argv(&["verify", &repo.name, "--source"], &files[..2], &[]))
        .ok();

    let append = argv(&["append"], &files[2..], &["-o", &repo.name]);
    let killed = repo
        .command(&append)
        .env("NC2ZARR_FAILPOINT", "after-commit")
        .output()
        .unwrap();
    assert!(!killed.status.success());
    assert_eq!(repo.history(&py).len(), 3, "the append committed");
    let again = repo.run(&append);
    again.ok();
    assert!(
        again.stdout.contains("its commit was finished first") && again.stdout.contains("already"),
        "{}",
        again.stdout
    );
    assert_eq!(repo.history(&py).len(), 3, "the re-run committed nothing more");
    repo.run(&argv(&["verify", &repo.name, "--source"], &files, &[])).ok();
}

#[test]
fn overwrite_commits_a_new_snapshot_and_keeps_the_old_one_readable() {
    let Some(py) = icechunk_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let files = inputs(dir.path(), 3);
    let repo = Repo::local(&dir.path().join("repo"));
    repo.run(&argv(&["convert"], &files[..1], &["-o", &repo.name, "--quiet"]))
        .ok();
    repo.run(&argv(&["convert"], &files[1..], &["-o", &repo.name, "--quiet"]))
        .fails_with(4, &["already exists", "--overwrite"]);
    repo.run(&argv(
        &["convert"],
        &files[1..],
        &["-o", &repo.name, "--quiet", "--overwrite", "--force"],
    ))
    .ok();
    let history = repo.history(&py);
    assert_eq!(history.len(), 3, "{history:?}");
    repo.assert_equals(&py, &files[1..], None);
    repo.assert_equals(&py, &files[..1], Some(field(&history[1], "id")));

    // An overwrite killed before its commit leaves main, and the manifest describing it.
    let repo_dir = dir.path().join("repo");
    let overwrite = argv(
        &["convert"],
        &files[..2],
        &[
            "-o",
            &repo.name,
            "--quiet",
            "--overwrite",
            "--force",
            "--io-concurrency",
            "1",
            "--chunks",
            "time=1",
        ],
    );
    kill_during(&repo, &repo_dir, &overwrite);
    assert_eq!(repo.history(&py).len(), 3);
    let v = repo.run(&argv(&["verify", &repo.name, "--source"], &files[1..], &[]));
    v.ok();
    assert!(v.stdout.contains("interrupted before its commit"), "{}", v.stdout);
}

#[test]
fn icechunk_targets_refuse_what_they_cannot_hold() {
    let dir = tempfile::tempdir().unwrap();
    let files = inputs(dir.path(), 2);
    let name = |p: &str| format!("icechunk+{}", s(&dir.path().join(p)));
    run(argv(&["convert"], &files, &["-o", &name("v2"), "--zarr-format", "2"]))
        .fails_with(4, &["Icechunk repositories hold Zarr v3 only"]);
    assert!(!dir.path().join("v2").exists(), "nothing written");
    run(argv(
        &["convert"],
        &files,
        &["-o", &name("stac"), "--stac", &s(&dir.path().join("cat"))],
    ))
    .fails_with(2, &["describe plain Zarr stores"]);
    assert!(
        !dir.path().join("stac").exists() && !dir.path().join("cat").exists(),
        "nothing written"
    );

    // A plain store is not a repository, and a repository is not a plain store.
    let plain = dir.path().join("plain.zarr");
    run(argv(&["convert"], &files[..1], &["-o", &s(&plain), "--quiet"])).ok();
    run(argv(
        &["append"],
        &files[1..],
        &["-o", &format!("icechunk+{}", s(&plain))],
    ))
    .fails_with(4, &["is not an Icechunk repository", "drop the icechunk+ prefix"]);
    run(argv(
        &["convert"],
        &files,
        &["-o", &format!("icechunk+{}", s(&plain)), "--overwrite", "--force"],
    ))
    .fails_with(4, &["is not an Icechunk repository"]);
    let other = dir.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    run(argv(&["convert"], &files, &["-o", &format!("icechunk+{}", s(&other))]))
        .fails_with(4, &["is not an Icechunk repository but holds other objects"]);
    assert_eq!(std::fs::read_dir(&other).unwrap().count(), 1, "nothing written");
    let repo = dir.path().join("repo");
    run(argv(&["convert"], &files[..1], &["-o", &name("repo"), "--quiet"])).ok();
    run(argv(&["append"], &files[1..], &["-o", &s(&repo)])).fails_with(4, &["is an Icechunk repository", "icechunk+"]);
    run(argv(&["prepare"], &files[1..], &["-o", &name("tasks"), "--tasks", "2"])).ok();
    run([
        "task".to_string(),
        s(&dir.path().join("tasks")),
        "--index".into(),
        "0".into(),
    ])
    .fails_with(4, &["is an Icechunk repository", "icechunk+"]);
    run(["commit".to_string(), s(&dir.path().join("tasks"))])
        .fails_with(4, &["is an Icechunk repository", "icechunk+"]);
}

/// `task` processes for a split run of `repo`, all at once; each must succeed.
fn run_tasks(repo: &Repo, n: usize) {
    let children: Vec<_> = (0..n)
        .map(|i| {
            repo.command(&[
                "task".into(),
                repo.name.clone(),
                "--quiet".into(),
                "--index".into(),
                i.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    for c in children {
        Run::from_output(&c.wait_with_output().unwrap()).ok();
    }
}

#[test]
fn split_runs_write_forks_that_one_commit_merges() {
    let Some(py) = icechunk_python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let files = inputs(dir.path(), 4);
    let repo = Repo::local(&dir.path().join("repo"));
    let chunks = ["--chunks", "time=2"];

    // prepare, 3 tasks at once, commit: one snapshot, equal to the sources.
    let mut prepare = argv(&["prepare"], &files[..3], &["-o", &repo.name, "--tasks", "3"]);
    prepare.extend(chunks.iter().map(|c| c.to_string()));
    repo.run(&prepare).ok();
    run_tasks(&repo, 3);
    assert_eq!(repo.history(&py).len(), 1, "tasks commit nothing");
    repo.run(&["commit".into(), repo.name.clone()]).ok();
    let history = repo.history(&py);
    assert_eq!(history.len(), 2, "{history:?}");
    assert!(field(&history[0], "message").starts_with("nc2zarr convert: 3 files: "));
    repo.assert_equals(&py, &files[..3], None);
    repo.run(&argv(&["verify", &repo.name, "--source"], &files[..3], &[]))
        .ok();
    // The same chunks as one process writes.
    let single = Repo::local(&dir.path().join("single"));
    let mut convert = argv(&["convert"], &files[..3], &["-o", &single.name, "--quiet"]);
    convert.extend(chunks.iter().map(|c| c.to_string()));
    single.run(&convert).ok();
    assert_eq!(
        nc2zarr_manifest_objects(&dir.path().join("repo")),
        nc2zarr_manifest_objects(&dir.path().join("single"))
    );

    // A split append whose tasks 1 and 2 fail first: the commit waits for them, then
    // commits once. Task 1 resumes its saved session; task 2's is damaged, so it starts
    // again, its journal dropped with it.
    repo.run(&argv(&["append"], &files[3..], &["-o", &repo.name, "--tasks", "3"]))
        .ok();
    for i in ["1", "2"] {
        let failing = repo
            .command(&["task".into(), repo.name.clone(), "--index".into(), i.into()])
            .env("NC2ZARR_FAILPOINT", format!("task-{i}"))
            .output()
            .unwrap();
        assert!(!failing.status.success());
    }
    run_tasks(&repo, 1);
    repo.run(&["commit".into(), repo.name.clone()])
        .fails_with(7, &["task(s) 1, 2 of 3 have not finished"]);
    repo.assert_equals(&py, &files[..3], None);
    std::fs::write(dir.path().join("repo/.nc2zarr/tasks/00002/session.bin"), b"damaged").unwrap();
    for (i, resumed) in [("1", true), ("2", false)] {
        let task = repo.run(&[
            "task".into(),
            repo.name.clone(),
            "--index".into(),
            i.into(),
            "--json".into(),
        ]);
        let report = task.ok().json();
        let n = report.get("resumed_objects").and_then(Json::as_u64).unwrap();
        assert_eq!(n > 0, resumed, "task {i}: {report:?}");
    }
    repo.run(&["commit".into(), repo.name.clone()]).ok();
    let history = repo.history(&py);
    assert_eq!(history.len(), 3, "{history:?}");
    assert!(field(&history[0], "message").starts_with("nc2zarr append: 1 file: "));
    repo.assert_equals(&py, &files, None);
    repo.run(&argv(&["verify", &repo.name, "--source"], &files, &[])).ok();

    // The same job prepared again over it is another run: it commits again.
    let mut again = argv(
        &["prepare"],
        &files[..3],
        &["-o", &repo.name, "--tasks", "3", "--overwrite", "--force"],
    );
    again.extend(chunks.iter().map(|c| c.to_string()));
    repo.run(&again).ok();
    run_tasks(&repo, 3);
    repo.run(&["commit".into(), repo.name.clone()]).ok();
    assert_eq!(repo.history(&py).len(), 4);
    repo.assert_equals(&py, &files[..3], None);
    repo.run(&argv(&["verify", &repo.name, "--source"], &files[..3], &[]))
        .ok();
}

/// Object hashes by array from a store's manifest.
fn nc2zarr_manifest_objects(store: &Path) -> Json {
    read_json(store, ".nc2zarr/manifest.json")
        .get("arrays")
        .unwrap()
        .clone()
}
