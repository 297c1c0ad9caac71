//! `plan`, presets and the memory contract, through the real binary.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use nc2zarr::json::Json;

/// A 100 MB float32 field over 4 files, HDF5-chunked one map per step, zlib-compressed.
fn field(dir: &Path) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    (0..4)
        .map(|f| {
            let path = dir.join(format!("field_{f}.nc"));
            let mut nc = create(&path, Kind::Netcdf4);
            nc.add_unlimited_dimension("time").unwrap();
            nc.add_dimension("lat", 250).unwrap();
            nc.add_dimension("lon", 500).unwrap();
            {
                let mut t = nc.add_variable::<i32>("time", &["time"]).unwrap();
                t.put_attribute("units", "hours since 2000-01-01").unwrap();
            }
            {
                let mut v = nc.add_variable::<f32>("field", &["time", "lat", "lon"]).unwrap();
                v.set_chunking(&[1, 250, 500]).unwrap();
                v.set_compression(1, true).unwrap();
            }
            let steps = 50usize;
            let times: Vec<i32> = (0..steps as i32).map(|i| (f * steps as i32 + i) * 6).collect();
            nc.variable_mut("time").unwrap().put_values(&times, [..steps]).unwrap();
            let data: Vec<f32> = (0..steps * 250 * 500)
                .map(|i| ((i * 7919) % 10007) as f32 * 0.25)
                .collect();
            nc.variable_mut("field")
                .unwrap()
                .put_values(&data, (0..steps, 0..250, 0..500))
                .unwrap();
            s(&path)
        })
        .collect()
}

/// Runs nc2zarr under GNU time; returns the run and the peak RSS in bytes.
fn run_measured(args: &[String]) -> (Run, u64) {
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("PEAK_RSS_KB=%M")
        .arg(bin())
        .args(args)
        .output()
        .unwrap();
    let run = Run::from_output(&out);
    let kb: u64 = run
        .stderr
        .lines()
        .find_map(|l| l.strip_prefix("PEAK_RSS_KB="))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no RSS in:\n{}", run.stderr));
    (run, kb * 1024)
}

fn args(first: &[&str], files: &[String], rest: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = first.iter().map(|s| s.to_string()).collect();
    a.extend(files.iter().cloned());
    a.extend(rest.iter().map(|s| s.to_string()));
    a
}

#[test]
fn a_full_rechunk_stays_within_max_mem_and_is_exact() {
    if !Path::new("/usr/bin/time").exists() {
        panic!("/usr/bin/time is needed (scripts/setup.sh installs it)");
    }
    let dir = tempfile::tempdir().unwrap();
    let files = field(&dir.path().join("in"));
    let out = dir.path().join("ts.zarr");
    let chunking = ["--chunks", "time=full,lat=50,lon=100", "--max-mem", "128MiB"];
    // The plan: a two-pass rechunk (direct reads would inflate each map 5 times).
    let plan = run(args(
        &["plan"],
        &files,
        &[&["-o", &s(&out), "--json"][..], &chunking[..]].concat(),
    ))
    .ok()
    .json();
    let field = plan
        .get("variables")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v.get("name").and_then(Json::as_str) == Some("field"))
        .unwrap()
        .clone();
    assert_eq!(field.get("strategy").and_then(Json::as_str), Some("two-pass"));
    assert_eq!(field.get("chunks"), Some(&Json::from(vec![200u64, 50, 100])));
    for key in ["peak_memory_bytes", "objects", "put_requests"] {
        assert!(plan.get(key).and_then(Json::as_u64).is_some(), "{key} missing");
    }
    assert!(plan.get("peak_memory_bytes").and_then(Json::as_u64).unwrap() <= 128 << 20);
    assert!(!out.exists(), "plan writes nothing");
    // The conversion keeps its promise and writes exact values.
    let temp = dir.path().join("scratch");
    std::fs::create_dir_all(&temp).unwrap();
    let (r, peak) = run_measured(&args(
        &["convert"],
        &files,
        &[&["-o", &s(&out), "--quiet", "--temp-dir", &s(&temp)][..], &chunking[..]].concat(),
    ));
    r.ok();
    assert!(peak <= 128 << 20, "peak RSS {peak} exceeds --max-mem 128MiB");
    assert_eq!(
        std::fs::read_dir(&temp).unwrap().count(),
        0,
        "intermediate data is removed"
    );
    run(args(&["verify", &s(&out), "--source"], &files, &[])).ok();
    // The same data ingested (maps whole): direct, also within budget.
    let ingest = dir.path().join("ingest.zarr");
    let (r, peak) = run_measured(&args(
        &["convert"],
        &files,
        &[
            "-o",
            &s(&ingest),
            "--quiet",
            "--chunks",
            "time=10,lat=full,lon=full",
            "--max-mem",
            "128MiB",
        ],
    ));
    r.ok();
    assert!(peak <= 128 << 20, "peak RSS {peak} exceeds --max-mem 128MiB");
}

#[test]
fn an_impossible_budget_is_refused_with_the_one_that_works() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(20), 200, 400)
        .iter()
        .map(|p| s(p))
        .collect();
    let out = dir.path().join("out.zarr");
    let r = run(args(
        &["convert"],
        &files,
        &[
            "-o",
            &s(&out),
            "--chunks",
            "time=full,lat=full,lon=full",
            "--max-mem",
            "64MiB",
        ],
    ));
    r.fails_with(2, &["cannot be converted within --max-mem 64.0 MiB", "pass --max-mem"]);
    assert!(!out.exists());
    let needed = r
        .stderr
        .split("pass --max-mem ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_string();
    run(args(
        &["plan"],
        &files,
        &[
            "-o",
            &s(&out),
            "--chunks",
            "time=full,lat=full,lon=full",
            "--max-mem",
            &needed,
        ],
    ))
    .ok();
}

#[test]
fn presets_are_listed_loaded_and_overridden() {
    let listed = run(["presets"]).ok().stdout.clone();
    for name in ["timeseries", "spatial", "balanced", "era5", "cmip6"] {
        assert!(listed.contains(name), "{listed}");
    }
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(30), 40, 80)
        .iter()
        .map(|p| s(p))
        .collect();
    let out = s(&dir.path().join("out.zarr"));
    let chunks_of = |plan: &Json, name: &str| -> Json {
        plan.get("variables")
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v.get("name").and_then(Json::as_str) == Some(name))
            .unwrap()
            .get("chunks")
            .unwrap()
            .clone()
    };
    let ts = run(args(
        &["plan"],
        &files,
        &["-o", &out, "--preset", "timeseries", "--json", "--chunk-size", "1MiB"],
    ))
    .ok()
    .json();
    let c = chunks_of(&ts, "t2m");
    let c: Vec<u64> = c.as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
    assert_eq!(c[0], 90, "all time steps: {c:?}");
    assert!(c[1] < 40 && c[2] < 80, "spatial tiles: {c:?}");
    let era5 = run(args(&["plan"], &files, &["-o", &out, "--preset", "era5", "--json"]))
        .ok()
        .json();
    assert_eq!(chunks_of(&era5, "t2m"), Json::from(vec![24u64, 40, 80]));
    let over = run(args(
        &["plan"],
        &files,
        &["-o", &out, "--preset", "era5", "--chunks", "time=6", "--json"],
    ))
    .ok()
    .json();
    assert_eq!(chunks_of(&over, "t2m"), Json::from(vec![6u64, 40, 80]));
    // A user's preset file.
    let mine = dir.path().join("mine.toml");
    std::fs::write(
        &mine,
        "description = \"mine\"\n[dims]\ntime = { chunk = 5 }\ny = { chunk = 8 }\n",
    )
    .unwrap();
    let p = run(args(&["plan"], &files, &["-o", &out, "--preset", &s(&mine), "--json"]))
        .ok()
        .json();
    assert_eq!(chunks_of(&p, "t2m"), Json::from(vec![5u64, 8, 80]));
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "description = \"bad\"\n[dims]\ntime = { chunk = -3 }\n").unwrap();
    run(args(&["plan"], &files, &["-o", &out, "--preset", &s(&bad)]))
        .fails_with(2, &["preset bad", "positive integer"]);
    run(args(&["plan"], &files, &["-o", &out, "--preset", "nope"])).fails_with(2, &["unknown preset 'nope'"]);
    // --dry-run is plan.
    let dry = run(args(&["convert"], &files, &["-o", &out, "--dry-run"]))
        .ok()
        .stdout
        .clone();
    assert!(dry.contains("predicted peak"), "{dry}");
    assert!(!Path::new(&out).exists());
}

#[test]
fn plan_shows_how_a_run_splits_over_tasks() {
    let dir = tempfile::tempdir().unwrap();
    let files = field(&dir.path().join("in"));
    let plan = |tasks: &str| {
        let mut args = vec!["plan".to_string()];
        args.extend(files.iter().cloned());
        args.extend([
            "-o".into(),
            "out.zarr".into(),
            "--chunks".into(),
            "time=10".into(),
            "--json".into(),
        ]);
        args.extend(["--tasks".into(), tasks.to_string()]);
        let r = run(&args);
        r.ok();
        r.json()
    };
    for n in [1usize, 3, 4, 7] {
        let p = plan(&n.to_string());
        let tasks = p.get("tasks").and_then(Json::as_array).unwrap();
        assert_eq!(tasks.len(), n);
        let field = |t: &Json, k: &str| t.get(k).and_then(Json::as_u64).unwrap();
        // The coordinates span the files: prepare writes them (with more than one task).
        let by_prepare = p.get("written_by_prepare").unwrap();
        let objects: u64 = tasks.iter().map(|t| field(t, "objects")).sum::<u64>() + field(by_prepare, "objects");
        assert_eq!(
            objects,
            p.get("objects").and_then(Json::as_u64).unwrap(),
            "every object in one task"
        );
        assert_eq!(field(by_prepare, "objects") > 0, n > 1, "{by_prepare:?}");
        let total: u64 = p
            .get("variables")
            .and_then(Json::as_array)
            .unwrap()
            .iter()
            .map(|v| field(v, "bytes"))
            .sum();
        let bytes: Vec<u64> = tasks.iter().map(|t| field(t, "bytes")).collect();
        assert_eq!(bytes.iter().sum::<u64>() + field(by_prepare, "bytes"), total);
        // 20 blocks of 10 steps (50 MB each): shares within one block of equal.
        let block = 10 * 250 * 500 * 4;
        for b in &bytes {
            assert!(b.abs_diff(total / n as u64) <= block, "unbalanced split {bytes:?}");
        }
        assert!(
            tasks
                .iter()
                .all(|t| field(t, "peak_memory_bytes") == field(&p, "peak_memory_bytes"))
        );
    }
}
