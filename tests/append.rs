//! Scheduled appends: idempotent, crash-safe, locked, equal to converting all at once.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use nc2zarr::json::Json;

/// Six consecutive "months" of 5 six-hourly steps, one file each (hours since 1900).
fn months(dir: &Path, kind: Kind) -> Vec<String> {
    let start = 1_051_896;
    let ms: Vec<Month> = (0..6)
        .map(|m| Month {
            times: (0..5).map(|i| start + 6 * (m * 5 + i)).collect(),
            units: "hours since 1900-01-01 00:00:00",
        })
        .collect();
    era_set(dir, kind, &ms, 6, 10).iter().map(|p| s(p)).collect()
}

fn argv(head: &[&str], files: &[String], tail: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = head.iter().map(|s| s.to_string()).collect();
    a.extend(files.iter().cloned());
    a.extend(tail.iter().map(|s| s.to_string()));
    a
}

fn objects(store: &Path) -> Json {
    read_json(store, ".nc2zarr/manifest.json")
        .get("arrays")
        .unwrap()
        .clone()
}

#[test]
fn appending_month_by_month_equals_converting_all_at_once() {
    let dir = tempfile::tempdir().unwrap();
    for (kind, format) in [(Kind::Netcdf4, "3"), (Kind::Classic, "2")] {
        let files = months(&dir.path().join(format!("{kind:?}")), kind);
        let chunks = "time=4,lat=full,lon=full";
        let all = dir.path().join(format!("all-{format}.zarr"));
        run(argv(
            &["convert"],
            &files,
            &["-o", &s(&all), "--chunks", chunks, "--zarr-format", format, "--quiet"],
        ))
        .ok();
        let grown = dir.path().join(format!("grown-{format}.zarr"));
        run(argv(
            &["convert"],
            &files[..1],
            &["-o", &s(&grown), "--chunks", chunks, "--zarr-format", format, "--quiet"],
        ))
        .ok();
        for n in 2..=files.len() {
            let summary = run(argv(&["append"], &files[..n], &["-o", &s(&grown), "--json"]))
                .ok()
                .json();
            assert_eq!(summary.get("files_appended").unwrap().as_array().unwrap().len(), 1);
            assert_eq!(
                summary.get("files_already_present").and_then(Json::as_u64),
                Some(n as u64 - 1)
            );
            assert_eq!(summary.get("length_after").and_then(Json::as_u64), Some(5 * n as u64));
        }
        run(argv(&["verify", &s(&grown), "--source"], &files, &[])).ok();
        // Data variables have the same chunks, so the same objects; only the 1-D time
        // coordinate differs (it keeps the single-file chunk it was created with).
        let (a, b) = (objects(&all), objects(&grown));
        for var in ["t2m", "tp", "orog", "lat", "lon"] {
            assert_eq!(a.get(var), b.get(var), "{var} objects differ (v{format})");
        }
        if let Some(py) = python() {
            let out = xarray_compare(&py, &grown, &files, &[]);
            assert!(out.is_ok(), "xarray differs: {}", out.unwrap_err());
        }
    }
}

#[test]
fn a_second_identical_append_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let files = months(&dir.path().join("in"), Kind::Netcdf4);
    let out = dir.path().join("out.zarr");
    run(argv(&["convert"], &files[..2], &["-o", &s(&out), "--quiet"])).ok();
    run(argv(&["append"], &files, &["-o", &s(&out), "--quiet"])).ok();
    let before = snapshot(&out);
    let r = run(argv(&["append"], &files, &["-o", &s(&out)]));
    r.ok();
    assert!(r.stdout.contains("nothing to append"), "{}", r.stdout);
    assert!(snapshot(&out) == before, "a no-op append changed the store");
    let j = run(argv(&["append"], &files, &["-o", &s(&out), "--json"])).ok().json();
    assert_eq!(j.get("status").and_then(Json::as_str), Some("nothing to append"));
    // A job file runs the same append.
    let job = dir.path().join("job.toml");
    let glob = format!("{}/*.nc", dir.path().join("in").display());
    std::fs::write(
        &job,
        format!(
            "mode = \"append\"\ninputs = [\"{glob}\"]\ntarget = \"{}\"\n[options]\njson = true\n",
            s(&out)
        ),
    )
    .unwrap();
    let j = run(["run".to_string(), s(&job)]).ok().json();
    assert_eq!(j.get("status").and_then(Json::as_str), Some("nothing to append"));
    std::fs::write(&job, "mode = \"delete\"\ninputs = []\ntarget = \"x\"\n").unwrap();
    run(["run".to_string(), s(&job)]).fails_with(2, &["mode must be"]);
}

#[test]
fn a_killed_append_leaves_the_old_store_readable_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let ms: Vec<Month> = (0..3)
        .map(|m| Month {
            times: (0..40).map(|i| 1_051_896 + 6 * (m * 40 + i)).collect(),
            units: "hours since 1900-01-01",
        })
        .collect();
    let files: Vec<String> = era_set(&dir.path().join("in"), Kind::Netcdf4, &ms, 12, 20)
        .iter()
        .map(|p| s(p))
        .collect();
    let out = dir.path().join("out.zarr");
    run(argv(
        &["convert"],
        &files[..1],
        &["-o", &s(&out), "--chunks", "time=1", "--quiet"],
    ))
    .ok();
    let root_before = std::fs::read(out.join("zarr.json")).unwrap();
    let mut child = Command::new(bin())
        .args(argv(
            &["append"],
            &files,
            &["-o", &s(&out), "--quiet", "--io-concurrency", "1"],
        ))
        .env("NC2ZARR_TEST_PUT_DELAY_MS", "15")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::fs::read_dir(out.join(".nc2zarr/journal"))
        .map(|d| d.count())
        .unwrap_or(0)
        == 0
    {
        assert!(started.elapsed() < Duration::from_secs(60), "no journal appeared");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the append finished before it could be interrupted"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Readers still see the old store, consistent.
    assert_eq!(
        std::fs::read(out.join("zarr.json")).unwrap(),
        root_before,
        "consolidated metadata untouched"
    );
    let v = run(argv(&["verify", &s(&out)], &[], &[]));
    assert_eq!(v.code, 5, "{}", v.stdout);
    assert!(v.stdout.contains("interrupted"), "{}", v.stdout);
    let again = run(argv(&["append"], &files, &["-o", &s(&out), "--json"])).ok().json();
    assert!(again.get("resumed_objects").and_then(Json::as_u64).unwrap() > 0);
    run(argv(&["verify", &s(&out), "--source"], &files, &[])).ok();
}

#[test]
fn lock_units_overlap_and_gaps() {
    let dir = tempfile::tempdir().unwrap();
    let files = months(&dir.path().join("in"), Kind::Netcdf4);
    let out = dir.path().join("out.zarr");
    run(argv(&["convert"], &files[..2], &["-o", &s(&out), "--quiet"])).ok();
    // Another live job holds the lock: exit 6, nothing changes.
    let lock = format!(
        "{{\"pid\": {}, \"host\": \"{}\", \"started\": 4102444800, \"token\": \"t\"}}",
        std::process::id(),
        std::fs::read_to_string("/etc/hostname").unwrap_or_default().trim()
    );
    std::fs::write(out.join(".nc2zarr/lock.json"), lock).unwrap();
    let before = snapshot(&out);
    run(argv(&["append"], &files, &["-o", &s(&out)])).fails_with(6, &["is locked by pid"]);
    assert!(snapshot(&out) == before);
    std::fs::remove_file(out.join(".nc2zarr/lock.json")).unwrap();
    // A gap (month 4 missing) is refused unless allowed.
    run(argv(&["append"], &[files[3].clone()], &["-o", &s(&out)])).fails_with(3, &["missing", "--allow-gaps"]);
    // Overlap: a file covering steps already in the store.
    let overlap = dir.path().join("overlap.nc");
    era_file(
        &overlap,
        Kind::Netcdf4,
        &Month {
            times: vec![1_051_896 + 6 * 9, 1_051_896 + 6 * 10],
            units: "hours since 1900-01-01",
        },
        6,
        10,
    );
    // It said "they overlap it or come before it; remove the files", which would lose
    // the new step; the shared first step can be dropped instead.
    run(argv(&["append"], &[s(&overlap)], &["-o", &s(&out)])).fails_with(
        3,
        &[
            "the first 1 step(s) of",
            "overlap.nc (1051950 .. 1051950, hours since 1900-01-01 00:00:00) are already in the store, which ends at \
             1051950",
            "ncks -d time,1,",
        ],
    );
    // A file holding only steps the store has (a renamed copy).
    let copy = dir.path().join("copy.nc");
    era_file(
        &copy,
        Kind::Netcdf4,
        &Month {
            times: vec![1_051_896 + 6 * 3, 1_051_896 + 6 * 4],
            units: "hours since 1900-01-01",
        },
        6,
        10,
    );
    run(argv(&["append"], &[s(&copy)], &["-o", &s(&out)])).fails_with(
        3,
        &["every step of the new files (1051914 .. 1051920, hours since 1900-01-01 00:00:00) is already in the store"],
    );
    run(argv(&["append"], &[files[2].clone()], &["-o", &s(&out), "--quiet"])).ok();
    let store_units = read_json(&out, "time/zarr.json")
        .get("attributes")
        .unwrap()
        .get("units")
        .unwrap()
        .clone();
    assert_eq!(store_units.as_str(), Some("hours since 1900-01-01 00:00:00"));
    // A wrong-grid file is refused before anything is written.
    let grid = dir.path().join("grid.nc");
    era_file(
        &grid,
        Kind::Netcdf4,
        &Month {
            times: vec![2_000_000],
            units: "hours since 1900-01-01",
        },
        6,
        11,
    );
    let before = snapshot(&out);
    run(argv(&["append"], &[s(&grid)], &["-o", &s(&out)])).fails_with(3, &["dimension 'lon'", "11", "10"]);
    assert!(snapshot(&out) == before);
    // Same shape, other values of a static field (orography): another grid.
    let orog = dir.path().join("orog.nc");
    era_file(
        &orog,
        Kind::Netcdf4,
        &Month {
            times: vec![1_051_896 + 6 * 15],
            units: "hours since 1900-01-01",
        },
        6,
        10,
    );
    {
        let mut f = netcdf::append(&orog).unwrap();
        f.variable_mut("orog")
            .unwrap()
            .put_values(&[-1.0f64], (0..1, 0..1))
            .unwrap();
    }
    run(argv(&["append"], &[s(&orog)], &["-o", &s(&out)]))
        .fails_with(3, &["'orog' does not depend on 'time'", "another grid"]);
    assert!(snapshot(&out) == before);
    // A late file for a gap left by --allow-gaps: not "already in the store" (it said
    // "they overlap it or come before it; remove the files whose data is already in the
    // store"), but a gap an append cannot fill.
    run(argv(
        &["append"],
        &[files[4].clone()],
        &["-o", &s(&out), "--allow-gaps", "--quiet"],
    ))
    .ok();
    let before = snapshot(&out);
    run(argv(&["append"], &[files[3].clone()], &["-o", &s(&out)])).fails_with(
        3,
        &[
            "the new files' 'time' value 1051986, hours since 1900-01-01 00:00:00 (in ",
            "lies inside the store's range (1051896 .. 1052040) at a step the store does not hold (a gap left by \
             --allow-gaps?)",
            "--overwrite",
        ],
    );
    assert!(snapshot(&out) == before);
}

#[test]
fn appended_time_in_other_units_is_reencoded() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.nc");
    let b = dir.path().join("b.nc");
    calendar_file(&a, "standard", "days since 2000-01-01", &[0.0, 1.0, 2.0]);
    calendar_file(&b, "standard", "hours since 2000-01-04", &[0.0, 24.0]);
    let out = dir.path().join("out.zarr");
    run([
        "convert".to_string(),
        s(&a),
        "-o".into(),
        s(&out),
        "--compression".into(),
        "none".into(),
        "--quiet".into(),
    ])
    .ok();
    let j = run(["append".to_string(), s(&b), "-o".into(), s(&out), "--json".into()])
        .ok()
        .json();
    assert!(
        j.get("notes").unwrap().to_compact().contains("re-encoded"),
        "{}",
        j.to_compact()
    );
    // time keeps its single chunk of 3 steps; the new steps are in a second chunk.
    let raw = std::fs::read(out.join("time/c/1")).unwrap();
    let t: Vec<f64> = raw
        .chunks_exact(8)
        .map(|x| f64::from_le_bytes(x.try_into().unwrap()))
        .collect();
    assert_eq!(&t[..2], &[3.0, 4.0]);
    if let Some(py) = python() {
        let r = xarray_compare(&py, &out, &[s(&a), s(&b)], &["--mode", "decoded"]);
        assert!(r.is_ok(), "{}", r.unwrap_err());
    }
}

/// A classic file whose first 64 KiB (header and a static grid) and size are the same for
/// every `t`: only the record variables at the end differ.
fn same_layout_file(path: &Path, t: f64) {
    let mut f = create(path, Kind::Classic);
    f.add_dimension("x", 20_000).unwrap();
    f.add_unlimited_dimension("time").unwrap();
    f.add_variable::<f32>("grid", &["x"]).unwrap();
    f.add_variable::<f64>("time", &["time"])
        .unwrap()
        .put_attribute("units", "hours since 2000-01-01")
        .unwrap();
    f.add_variable::<f32>("v", &["time"]).unwrap();
    f.enddef().unwrap();
    let grid: Vec<f32> = (0..20_000).map(|i| i as f32).collect();
    f.variable_mut("grid").unwrap().put_values(&grid, ..).unwrap();
    f.variable_mut("time").unwrap().put_values(&[t], [..1]).unwrap();
    f.variable_mut("v")
        .unwrap()
        .put_values(&[t as f32 * 2.0], [..1])
        .unwrap();
}

#[test]
fn files_of_equal_size_and_head_are_told_apart_by_their_time() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.nc");
    let b = dir.path().join("b.nc");
    same_layout_file(&a, 0.0);
    same_layout_file(&b, 6.0);
    let (da, db) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_eq!(da.len(), db.len());
    assert_eq!(
        da[..64 << 10],
        db[..64 << 10],
        "the fixture must collide on size and head"
    );
    let out = dir.path().join("store.zarr");
    run(argv(&["convert"], &[s(&a)], &["-o", &s(&out)])).ok();
    let r = run(argv(&["append", "--json"], &[s(&a), s(&b)], &["-o", &s(&out)]));
    r.ok();
    let j = r.json();
    assert_eq!(j.get("files_appended").unwrap().to_compact(), format!("[{:?}]", s(&b)));
    assert_eq!(j.get("length_after").and_then(|v| v.as_u64()), Some(2));
    verify_source(&out, &[s(&a), s(&b)]).ok();
}

/// Hourly observations: `time` (hours since 2024-01-01) and a byte field `q` in
/// `units`, marked `_Unsigned = "true"` when `unsigned`.
fn obs_file(path: &Path, times: &[f64], units: &str, unsigned: bool) {
    let mut f = create(path, Kind::Netcdf4);
    f.add_unlimited_dimension("time").unwrap();
    f.add_dimension("x", 2).unwrap();
    f.add_variable::<f64>("time", &["time"])
        .unwrap()
        .put_attribute("units", "hours since 2024-01-01")
        .unwrap();
    let mut q = f.add_variable::<i8>("q", &["time", "x"]).unwrap();
    q.put_attribute("units", units).unwrap();
    if unsigned {
        q.put_attribute("_Unsigned", "true").unwrap();
    }
    let n = times.len();
    f.variable_mut("time").unwrap().put_values(times, [..n]).unwrap();
    let values: Vec<i8> = (0..2 * n).map(|i| i as i8 - 3).collect();
    f.variable_mut("q").unwrap().put_values(&values, [..n, ..2]).unwrap();
}

#[test]
fn appends_refuse_what_convert_refuses_units_signedness_and_a_disordered_axis() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |n: &str| d.join(n);
    obs_file(&p("a.nc"), &[0.0, 6.0], "K", false);
    let store = p("store.zarr");
    run(["convert", &s(&p("a.nc")), "-o", &s(&store), "--quiet"]).ok();
    let before = snapshot(&store);
    // Each was appended before (exit 0): values in degC read as K, bytes read with the
    // other sign, an axis that goes back or ends in a fill value.
    /// A new file's name, times, units, `_Unsigned` marking, and what the refusal says.
    type Refused<'a> = (&'a str, &'a [f64], &'a str, bool, &'a [&'a str]);
    let refused: [Refused; 5] = [
        (
            "celsius.nc",
            &[12.0, 18.0],
            "degC",
            false,
            &["variable 'q' has units \"degC\"", "but \"K\" in the store"],
        ),
        (
            "unsigned.nc",
            &[12.0, 18.0],
            "K",
            true,
            &["variable 'q' is marked _Unsigned", "not marked _Unsigned in the store"],
        ),
        (
            "back.nc",
            &[24.0, 36.0, 30.0],
            "K",
            false,
            &["'time' is not strictly increasing at steps 1 and 2 (36 then 30"],
        ),
        (
            "fill.nc",
            &[24.0, 30.0, -9999.0],
            "K",
            false,
            &["not strictly increasing at steps 1 and 2 (30 then -9999"],
        ),
        (
            "nan.nc",
            &[f64::NAN, 30.0],
            "K",
            false,
            &["'time' holds a missing (NaN) value at step 0 (in"],
        ),
    ];
    for (name, times, units, unsigned, needles) in refused {
        obs_file(&p(name), times, units, unsigned);
        run(["append", &s(&p(name)), "-o", &s(&store), "--quiet"]).fails_with(3, needles);
        assert!(
            before == snapshot(&store),
            "a refused append ({name}) changed the store"
        );
    }
    obs_file(&p("b.nc"), &[12.0, 18.0], "K", false);
    run(["append", &s(&p("b.nc")), "-o", &s(&store), "--quiet"]).ok();
    verify_source(&store, &[s(&p("a.nc")), s(&p("b.nc"))]).ok();
}

#[test]
fn a_re_delivered_file_with_other_values_beyond_its_head_is_refused_not_skipped() {
    // Uncompressed classic files keep their size when values change; a correction
    // beyond the first 64 KiB (ERA5T replaced by ERA5) left the fingerprint as it was,
    // and append said "nothing to append" while the store kept the old values.
    let dir = tempfile::tempdir().unwrap();
    let ms: Vec<Month> = (0..2)
        .map(|m| Month {
            times: (0..3).map(|i| 1_051_896 + 6 * (m * 3 + i)).collect(),
            units: "hours since 1900-01-01",
        })
        .collect();
    let files: Vec<String> = era_set(&dir.path().join("in"), Kind::Classic, &ms, 60, 100)
        .iter()
        .map(|p| s(p))
        .collect();
    let out = dir.path().join("out.zarr");
    run(argv(&["convert"], &files[..1], &["-o", &s(&out), "--quiet"])).ok();
    run(argv(&["append"], &files, &["-o", &s(&out), "--quiet"])).ok();
    let before = snapshot(&out);
    let last_step = |value: Option<f32>| {
        let mut f = netcdf::append(&files[1]).unwrap();
        let mut v = f.variable_mut("t2m").unwrap();
        let old: Vec<f32> = v.get_values((2..3, 0..60, 0..100)).unwrap();
        let new: Vec<f32> = old.iter().map(|x| value.unwrap_or(*x)).collect();
        v.put_values(&new, (2..3, 0..60, 0..100)).unwrap();
    };
    // Written again with the same values: still the file in the store.
    last_step(None);
    let again = run(argv(&["append"], &files, &["-o", &s(&out), "--json"])).ok().json();
    assert_eq!(again.get("files_already_present").and_then(Json::as_u64), Some(2));
    // It said 0 and 0 for a store of 6 steps.
    assert_eq!(again.get("length_before").and_then(Json::as_u64), Some(6));
    assert_eq!(again.get("length_after").and_then(Json::as_u64), Some(6));
    assert!(
        again.to_pretty().contains(
            "1 file(s) already in the store were modified since they were converted, but hold the same bytes"
        )
    );
    assert!(snapshot(&out) == before);
    // Corrected values in its last step: refused, the store as it was.
    last_step(Some(273.15));
    assert_eq!(
        std::fs::metadata(&files[1]).unwrap().len(),
        std::fs::metadata(&files[0]).unwrap().len()
    );
    run(argv(&["append"], &files, &["-o", &s(&out)])).fails_with(
        3,
        &["is already in the store but its contents changed since", "--overwrite"],
    );
    assert!(snapshot(&out) == before);
    // verify --source tells the same story.
    let verified = run(argv(&["verify", &s(&out), "--source"], &files, &[]));
    verified.fails_with(5, &[]);
    assert!(
        verified.stdout.contains("t2m/c/1/0/0: values differ"),
        "{}",
        verified.stdout
    );
}

/// An ICON day: two steps in CDI's absolute time units `day as %Y%m%d.%f`.
fn icon_day(path: &Path, day: f64) {
    let mut f = netcdf::create(path).unwrap();
    f.add_unlimited_dimension("time").unwrap();
    f.add_dimension("ncells", 3).unwrap();
    f.add_variable::<f64>("time", &["time"])
        .unwrap()
        .put_attribute("units", "day as %Y%m%d.%f")
        .unwrap();
    f.add_variable::<f32>("tas", &["time", "ncells"]).unwrap();
    f.variable_mut("time")
        .unwrap()
        .put_values(&[day, day + 0.5], 0..2)
        .unwrap();
    let v: Vec<f32> = (0..6).map(|i| day as f32 + i as f32).collect();
    f.variable_mut("tas").unwrap().put_values(&v, (0..2, 0..3)).unwrap();
}

#[test]
fn dates_written_as_numbers_continue_across_a_month_without_a_false_gap() {
    // ICON output counts time as dates (20200131.5 is noon of 31 January): a daily
    // append at the month's end was refused with "138 step(s) are missing".
    let dir = tempfile::tempdir().unwrap();
    let p = |d: &str| dir.path().join(format!("icon_{d}.nc"));
    for d in ["20200131", "20200201", "20200204"] {
        icon_day(&p(d), d.parse().unwrap());
    }
    let out = dir.path().join("icon.zarr");
    run(["convert", &s(&p("20200131")), "-o", &s(&out), "--quiet"]).ok();
    run(["append", &s(&p("20200201")), "-o", &s(&out), "--quiet"]).ok();
    let times = read_json(&out, "time/zarr.json");
    assert_eq!(
        times.get("shape").unwrap().to_pretty().replace(char::is_whitespace, ""),
        "[4]"
    );
    // A real gap (2 and 3 February) is still one: 4 steps of half a day.
    run(["append", &s(&p("20200204")), "-o", &s(&out)]).fails_with(3, &["4 step(s) are missing"]);
    let scan = run(["scan", &s(&p("20200131")), &s(&p("20200201")), "--json"])
        .ok()
        .json()
        .to_pretty();
    assert!(!scan.contains("gap before this file"), "{scan}");
}

#[test]
fn an_explicit_chunk_length_along_time_survives_a_cron_store_started_from_one_step() {
    // `--chunks time=3` on a first file of one step made one-step chunks, which every
    // append then kept: not the store asked for.
    let dir = tempfile::tempdir().unwrap();
    let days: Vec<Month> = (0..5)
        .map(|d| Month {
            times: vec![1_051_896 + 24 * d],
            units: "hours since 1900-01-01",
        })
        .collect();
    let files: Vec<String> = era_set(&dir.path().join("in"), Kind::Netcdf4, &days, 6, 10)
        .iter()
        .map(|p| s(p))
        .collect();
    let chunks = "time=3,lat=full,lon=full";
    let cron = dir.path().join("cron.zarr");
    run(argv(
        &["convert"],
        &files[..1],
        &["-o", &s(&cron), "--chunks", chunks, "--quiet"],
    ))
    .ok();
    for f in &files[1..] {
        run(argv(
            &["append"],
            std::slice::from_ref(f),
            &["-o", &s(&cron), "--quiet"],
        ))
        .ok();
    }
    let whole = dir.path().join("whole.zarr");
    run(argv(
        &["convert"],
        &files,
        &["-o", &s(&whole), "--chunks", chunks, "--quiet"],
    ))
    .ok();
    let chunk_shape = |store: &Path| {
        read_json(store, "t2m/zarr.json")
            .get("chunk_grid")
            .unwrap()
            .to_pretty()
            .replace(char::is_whitespace, "")
    };
    assert!(chunk_shape(&cron).contains("[3,6,10]"), "{}", chunk_shape(&cron));
    assert_eq!(chunk_shape(&cron), chunk_shape(&whole));
    assert_eq!(
        common::array_values::<f32>(&cron, "t2m")
            .iter()
            .map(|x| x.to_bits())
            .collect::<Vec<_>>(),
        common::array_values::<f32>(&whole, "t2m")
            .iter()
            .map(|x| x.to_bits())
            .collect::<Vec<_>>()
    );
    run(argv(&["verify", &s(&cron), "--source"], &files, &[])).ok();
}
