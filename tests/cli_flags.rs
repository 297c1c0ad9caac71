//! Every flag of every command means what it says: a command accepts exactly the flags
//! it honours, and each of `plan`'s flags changes the plan. `append --dry-run` and
//! `convert --dry-run` write nothing.

mod common;

use clap::CommandFactory;
use common::*;

/// The long flags of `command`, sorted.
fn flags(command: &str) -> Vec<String> {
    let cli = nc2zarr::cli::Cli::command();
    let sub = cli
        .find_subcommand(command)
        .unwrap_or_else(|| panic!("no subcommand {command}"));
    let mut out: Vec<String> = sub
        .get_arguments()
        .filter_map(|a| a.get_long().map(str::to_string))
        .collect();
    out.sort();
    out
}

fn sorted(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn each_command_has_exactly_the_flags_it_honours() {
    // --input-cache(-size): tests/remote.rs counts what a second run downloads.
    let cache = ["input-cache", "input-cache-size"];
    // --group: tests/real_archives.rs converts, verifies and appends IMERG-like files.
    let input = [
        "group",
        "concat-dim",
        "on-encoding-drift",
        "input-endpoint",
        "input-storage-option",
        "input-cache",
        "input-cache-size",
    ];
    let layout = [
        "preset",
        "zarr-format",
        "chunks",
        "chunk-size",
        "shard-size",
        "compression",
        "skip-unsupported",
    ];
    let resources = ["max-mem", "workers", "io-concurrency"];
    let write = [
        "temp-dir",
        "restart",
        "lock-timeout",
        "endpoint",
        "storage-option",
        "retry-timeout",
        "json",
        "quiet",
        "stac",
    ];
    let cat = |parts: &[&[&str]]| sorted(&parts.concat());
    // scan --io-concurrency: tests/remote.rs counts the requests in flight.
    assert_eq!(flags("scan"), cat(&[&input, &["io-concurrency", "json"]]));
    assert_eq!(
        flags("plan"),
        cat(&[&input, &["output"], &layout, &resources, &["tasks", "json"]])
    );
    assert_eq!(
        flags("convert"),
        cat(&[
            &input,
            &["output"],
            &layout,
            &resources,
            &write,
            &["overwrite", "force", "dry-run"]
        ])
    );
    let slurm = ["slurm", "submit", "sbatch", "task-temp-dir"];
    let store = ["endpoint", "storage-option", "retry-timeout"];
    assert_eq!(
        flags("append"),
        cat(&[
            &input,
            &["output"],
            &resources,
            &write,
            &["allow-gaps", "dry-run", "tasks"],
            &slurm
        ])
    );
    assert_eq!(
        flags("prepare"),
        cat(&[
            &input,
            &["output"],
            &layout,
            &resources,
            &store,
            &slurm,
            // --temp-dir: where prepare stages remote inputs (tests/remote.rs).
            &[
                "tasks",
                "temp-dir",
                "overwrite",
                "force",
                "restart",
                "lock-timeout",
                "json"
            ]
        ])
    );
    assert_eq!(
        flags("task"),
        cat(&[&store, &cache, &["index", "temp-dir", "json", "quiet"]])
    );
    assert_eq!(flags("commit"), cat(&[&store, &["json"]]));
    assert_eq!(flags("stac"), cat(&[&store, &["dir", "id", "json"]]));
    assert_eq!(
        flags("verify"),
        sorted(&[
            "source",
            "concat-dim",
            "group",
            "input-endpoint",
            "input-storage-option",
            "input-cache",
            "input-cache-size",
            "io-concurrency",
            "temp-dir",
            "endpoint",
            "storage-option",
            "retry-timeout",
            "json"
        ])
    );
}

#[test]
fn flags_a_command_would_ignore_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let files = era_set(dir.path(), Kind::Netcdf4, &three_months(2), 3, 4);
    let out = s(&dir.path().join("out.zarr"));
    let cases: &[(&str, &[&str])] = &[
        ("plan", &["--append"]),
        ("plan", &["--restart"]),
        ("plan", &["--overwrite"]),
        ("plan", &["--force"]),
        ("plan", &["--lock-timeout", "5"]),
        ("plan", &["--endpoint", "http://127.0.0.1:9"]),
        ("plan", &["--quiet"]),
        ("convert", &["--allow-gaps"]),
        ("convert", &["--append"]),
        ("append", &["--compression", "zstd:1"]),
        ("append", &["--chunks", "time=1"]),
        ("append", &["--preset", "era5"]),
        ("append", &["--zarr-format", "2"]),
        ("append", &["--overwrite"]),
        ("append", &["--force"]),
    ];
    for (command, extra) in cases {
        let mut args = vec![command.to_string(), s(&files[0]), "-o".into(), out.clone()];
        args.extend(extra.iter().map(|e| e.to_string()));
        let r = run(&args);
        assert_eq!(
            r.code, 2,
            "{command} {extra:?} must be refused:\n{}{}",
            r.stdout, r.stderr
        );
        assert!(r.stderr.contains("unexpected argument"), "{}", r.stderr);
    }
    // A split append finishes at its commit, so it cannot describe the store yet.
    let stac = s(&dir.path().join("stac"));
    run(["append", &s(&files[0]), "-o", &out, "--tasks", "2", "--stac", &stac])
        .fails_with(2, &["--stac describes a finished store", "nc2zarr stac TARGET"]);
    assert!(!dir.path().join("out.zarr").exists());
}

#[test]
fn every_plan_flag_changes_the_plan() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = era_set(dir.path(), Kind::Netcdf4, &three_months(40), 180, 360)
        .iter()
        .map(|p| s(p))
        .collect();
    let plan = |extra: &[&str]| -> Run {
        let mut args = vec!["plan".to_string()];
        args.extend(files.iter().cloned());
        args.extend(["-o".to_string(), "s3://bucket/x.zarr".into(), "--json".into()]);
        args.extend(extra.iter().map(|e| e.to_string()));
        run(&args)
    };
    let base = plan(&[]);
    base.ok();
    let variants: &[&[&str]] = &[
        &["--concat-dim", "lat"],
        &["--preset", "timeseries"],
        &["--zarr-format", "2"],
        &["--chunks", "time=2"],
        &["--chunk-size", "4KiB"],
        &["--shard-size", "1MiB", "--chunk-size", "4KiB"],
        &["--compression", "zstd:1"],
        &["--max-mem", "64MiB", "--preset", "timeseries"],
        &["--workers", "1"],
        &["--io-concurrency", "1"],
        &["--tasks", "4"],
        &["--group", "Missing"],
    ];
    for v in variants {
        let r = plan(v);
        assert!(r.code == 0 || r.code == 2 || r.code == 3, "{v:?}: {}", r.stderr);
        assert_ne!((r.code, &r.stdout), (0, &base.stdout), "{v:?} did not change the plan");
    }
    // --json: text otherwise.
    let mut args = vec!["plan".to_string()];
    args.extend(files.iter().cloned());
    args.extend(["-o".to_string(), "out.zarr".into()]);
    let text = run(&args);
    text.ok();
    assert!(!text.stdout.trim_start().starts_with('{'));
}

#[test]
fn dry_runs_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = era_set(dir.path(), Kind::Netcdf4, &three_months(2), 3, 4)
        .iter()
        .map(|p| s(p))
        .collect();
    let out = dir.path().join("store.zarr");
    run(["convert".to_string(), files[0].clone(), "-o".into(), s(&out)]).ok();
    let before = snapshot(&out);
    // append --dry-run: says what it would append, writes nothing, takes no lock.
    let r = run([
        "append".to_string(),
        files[1].clone(),
        files[2].clone(),
        "-o".into(),
        s(&out),
        "--dry-run".into(),
        "--json".into(),
    ]);
    r.ok();
    let j = r.json();
    assert_eq!(j.get("status").and_then(|v| v.as_str()), Some("dry run"));
    assert_eq!(j.get("length_before").and_then(|v| v.as_u64()), Some(2));
    assert_eq!(j.get("length_after").and_then(|v| v.as_u64()), Some(6));
    assert_eq!(
        j.get("files_appended").and_then(|v| v.as_array()).map(|a| a.len()),
        Some(2)
    );
    assert!(before == snapshot(&out), "append --dry-run must not change the store");
    // convert --dry-run refuses an existing target as convert would, and with
    // --overwrite shows the plan without touching it.
    run([
        "convert".to_string(),
        files[1].clone(),
        "-o".into(),
        s(&out),
        "--dry-run".into(),
    ])
    .fails_with(4, &["already exists"]);
    let r = run([
        "convert".to_string(),
        files[1].clone(),
        "-o".into(),
        s(&out),
        "--dry-run".into(),
        "--overwrite".into(),
    ]);
    r.ok();
    assert!(before == snapshot(&out), "convert --dry-run must not change the store");
    // The real append then does what the dry run said.
    let r = run([
        "append".to_string(),
        files[1].clone(),
        files[2].clone(),
        "-o".into(),
        s(&out),
        "--json".into(),
    ]);
    r.ok();
    assert_eq!(r.json().get("length_after").and_then(|v| v.as_u64()), Some(6));
}
