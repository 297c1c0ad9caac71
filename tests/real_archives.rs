//! Real archives convert right without flags: the concat dimension is inferred the way
//! `xarray.open_mfdataset` combines by coordinates, and files that pack a variable
//! differently are unpacked rather than mixed under one file's attributes.

mod common;

use std::path::{Path, PathBuf};

use common::*;

fn convert(inputs: &[String], out: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["convert".to_string()];
    args.extend(inputs.iter().cloned());
    args.extend(["-o".to_string(), s(out), "--quiet".to_string()]);
    args.extend(extra.iter().map(|e| e.to_string()));
    run(args)
}

fn scan_json(inputs: &[String]) -> nc2zarr::json::Json {
    let mut args = vec!["scan".to_string(), "--json".to_string()];
    args.extend(inputs.iter().cloned());
    let r = run(args);
    r.ok();
    r.json()
}

fn strings(paths: &[PathBuf]) -> Vec<String> {
    paths.iter().map(|p| s(p)).collect()
}

/// Converts to v3 and v2, verifies against the sources, and (with Python) compares
/// under xarray with `mode` (`both`, or `decoded` where raw values must differ).
fn convert_and_compare(dir: &Path, name: &str, inputs: &[String], mode: &str) {
    for format in ["3", "2"] {
        let out = dir.join(format!("{name}-v{format}.zarr"));
        convert(inputs, &out, &["--zarr-format", format]).ok();
        verify_source(&out, inputs).ok();
        if let Some(py) = python()
            && let Err(text) = xarray_compare(&py, &out, inputs, &["--mode", mode])
        {
            panic!("xarray sees a difference for {name} (v{format}):\n{text}");
        }
    }
}

#[test]
fn files_without_an_unlimited_dimension_concatenate_along_the_differing_coordinate() {
    let dir = tempfile::tempdir().unwrap();
    for kind in [Kind::Netcdf4, Kind::Classic] {
        let d = dir.path().join(format!("{kind:?}"));
        std::fs::create_dir_all(&d).unwrap();
        // Named against time order; the middle file uses other units.
        let files = vec![d.join("a.nc"), d.join("b.nc"), d.join("c.nc")];
        fixed_time_file(&files[0], kind, "days since 2000-01-01", &[730.0, 731.0], -10.0);
        fixed_time_file(&files[1], kind, "days since 2001-01-01", &[0.0, 1.0, 2.0], -10.0);
        fixed_time_file(&files[2], kind, "days since 2000-01-01", &[10.0, 11.0], -10.0);
        let inputs = strings(&files);
        let inv = scan_json(&inputs);
        assert_eq!(inv.get("concat_dim").and_then(|j| j.as_str()), Some("time"));
        let reason = inv.get("concat_reason").and_then(|j| j.as_str()).unwrap();
        assert!(reason.contains("coordinate values differ"), "{reason}");
        assert!(reason.contains("no unlimited dimension"), "{reason}");
        let order: Vec<String> = inv
            .get("files")
            .and_then(|f| f.as_array())
            .unwrap()
            .iter()
            .map(|f| f.get("path").and_then(|p| p.as_str()).unwrap().to_string())
            .collect();
        // 10 days after 2000-01-01, then 2001-01-01.., then 730 days after 2000-01-01.
        assert_eq!(order, vec![s(&files[2]), s(&files[1]), s(&files[0])]);
        // Time units differ, so only the decoded view can be equal.
        convert_and_compare(&d, "cmip", &inputs, "decoded");
    }
}

#[test]
fn tiles_of_one_grid_concatenate_along_their_spatial_coordinate() {
    let dir = tempfile::tempdir().unwrap();
    let files = vec![dir.path().join("north.nc"), dir.path().join("south.nc")];
    fixed_time_file(&files[0], Kind::Netcdf4, "days since 2000-01-01", &[0.0, 1.0], 30.0);
    fixed_time_file(&files[1], Kind::Netcdf4, "days since 2000-01-01", &[0.0, 1.0], 0.0);
    let inputs = strings(&files);
    let inv = scan_json(&inputs);
    assert_eq!(inv.get("concat_dim").and_then(|j| j.as_str()), Some("lat"));
    convert_and_compare(dir.path(), "tiles", &inputs, "both");
}

#[test]
fn ambiguous_or_identical_sets_are_refused_naming_the_candidates() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.zarr");
    // Time and latitude both differ: time wins the tie, then the grids do not match.
    let a = dir.path().join("a.nc");
    let b = dir.path().join("b.nc");
    fixed_time_file(&a, Kind::Netcdf4, "days since 2000-01-01", &[0.0, 1.0], 0.0);
    fixed_time_file(&b, Kind::Netcdf4, "days since 2000-01-01", &[2.0, 3.0], 5.0);
    convert(&[s(&a), s(&b)], &out, &[])
        .fails_with(3, &["'lat' does not depend on the concat dimension", "a.nc", "b.nc"]);
    // Two spatial coordinates differ and neither is time.
    let x = dir.path().join("x.nc");
    let y = dir.path().join("y.nc");
    for (p, x0, y0) in [(&x, 0.0f64, 0.0f64), (&y, 1.0, 1.0)] {
        let mut f = create(p, Kind::Classic);
        f.add_dimension("x", 2).unwrap();
        f.add_dimension("y", 2).unwrap();
        f.add_variable::<f64>("x", &["x"]).unwrap();
        f.add_variable::<f64>("y", &["y"]).unwrap();
        f.add_variable::<f32>("v", &["y", "x"]).unwrap();
        f.enddef().unwrap();
        f.variable_mut("x").unwrap().put_values(&[x0, x0 + 0.5], ..).unwrap();
        f.variable_mut("y").unwrap().put_values(&[y0, y0 + 0.5], ..).unwrap();
        f.variable_mut("v")
            .unwrap()
            .put_values(&[1.0f32, 2.0, 3.0, 4.0], ..)
            .unwrap();
    }
    convert(&[s(&x), s(&y)], &out, &[]).fails_with(
        3,
        &[
            "cannot tell which dimension",
            "'x', 'y'",
            "none is a time axis",
            "--concat-dim",
        ],
    );
    // The user can say which.
    convert(&[s(&x), s(&y)], &out, &["--concat-dim", "x"]).fails_with(3, &["'y' does not depend"]);
    // The same data twice, under two names.
    let copy = dir.path().join("copy.nc");
    std::fs::copy(&a, &copy).unwrap();
    convert(&[s(&a), s(&copy)], &out, &[]).fails_with(
        3,
        &[
            "cannot tell which dimension",
            "no dimension's coordinate values or length differ",
            "duplicate",
        ],
    );
    // Other data for the same steps (orbits of one day) may not be copies: the
    // refusal said "remove one of them".
    convert(&[s(&a), s(&copy)], &out, &["--concat-dim", "time"]).fails_with(
        3,
        &[
            "hold the same steps, and along 'time' each step comes from one file. If one is a copy of the other, \
             remove it; if they hold other data for the same steps (orbits, tiles, members), convert them separately",
        ],
    );
    // Two members × two time blocks (a member dimension of one, as CMIP ensembles
    // hold it): the refusal said "duplicate 'time' values … remove one of them", which
    // would lose a member.
    let cube = |member: f64, t0: f64| {
        let p = dir.path().join(format!("m{member}_t{t0}.nc"));
        let mut f = create(&p, Kind::Classic);
        f.add_dimension("time", 2).unwrap();
        f.add_dimension("member", 1).unwrap();
        f.add_variable::<f64>("time", &["time"])
            .unwrap()
            .put_attribute("units", "days since 2000-01-01")
            .unwrap();
        f.add_variable::<f64>("member", &["member"]).unwrap();
        f.add_variable::<f32>("tas", &["member", "time"]).unwrap();
        f.enddef().unwrap();
        f.variable_mut("time").unwrap().put_values(&[t0, t0 + 1.0], ..).unwrap();
        f.variable_mut("member").unwrap().put_values(&[member], ..).unwrap();
        f.variable_mut("tas").unwrap().put_values(&[1.0f32, 2.0], ..).unwrap();
        s(&p)
    };
    let members = [cube(1.0, 0.0), cube(2.0, 0.0), cube(1.0, 2.0), cube(2.0, 2.0)];
    convert(&members, &out, &[]).fails_with(
        3,
        &[
            "hold the same 'time' steps but differ in 'member': the files vary along more than one dimension",
            "Convert each value of 'member' separately",
        ],
    );
    convert(&members, &out, &["--concat-dim", "member"])
        .fails_with(3, &["hold the same 'member' steps but differ in 'time'"]);
    // A time variable along a dimension without a coordinate variable (NSIDC G02202's
    // `time(tdim)`): the refusal asked whether the files were duplicates.
    let tdim = |day: f64| {
        let p = dir.path().join(format!("tdim{day}.nc"));
        let mut f = create(&p, Kind::Classic);
        f.add_dimension("tdim", 1).unwrap();
        f.add_dimension("x", 2).unwrap();
        f.add_variable::<f64>("time", &["tdim"])
            .unwrap()
            .put_attribute("units", "days since 1601-01-01")
            .unwrap();
        f.add_variable::<f32>("cdr", &["tdim", "x"]).unwrap();
        f.enddef().unwrap();
        f.variable_mut("time").unwrap().put_values(&[day], ..).unwrap();
        f.variable_mut("cdr").unwrap().put_values(&[0.5f32, 0.25], ..).unwrap();
        s(&p)
    };
    let days = [tdim(150_000.0), tdim(150_001.0)];
    convert(&days, &out, &[]).fails_with(
        3,
        &["the values of 'time' (along 'tdim', which has no coordinate variable) do: pass --concat-dim tdim"],
    );
    assert!(!out.exists(), "nothing may be written for refused inputs");
    convert(&days, &out, &["--concat-dim", "tdim"]).ok();
    assert_eq!(array_values::<f64>(&out, "time"), [150_000.0, 150_001.0]);
}

#[test]
fn a_single_file_needs_no_concat_dimension() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("one.nc");
    station_file(&f);
    let inv = scan_json(&[s(&f)]);
    assert!(matches!(inv.get("concat_dim"), Some(nc2zarr::json::Json::Null)));
    assert!(
        inv.get("concat_reason")
            .and_then(|j| j.as_str())
            .unwrap()
            .contains("single file")
    );
    convert_and_compare(dir.path(), "single", &[s(&f)], "both");
    // A time axis without an unlimited dimension is recorded, so the store can grow later.
    let t = dir.path().join("t.nc");
    fixed_time_file(&t, Kind::Classic, "days since 2000-01-01", &[0.0, 1.0], 0.0);
    assert_eq!(
        scan_json(&[s(&t)]).get("concat_dim").and_then(|j| j.as_str()),
        Some("time")
    );
    // So is one counted in months (CF time units xarray decodes in a 360_day calendar).
    let m = dir.path().join("m.nc");
    calendar_file(
        &m,
        Kind::Classic,
        "months since 2000-01-01",
        Some("360_day"),
        &[0.0, 1.0],
    );
    assert_eq!(
        scan_json(&[s(&m)]).get("concat_dim").and_then(|j| j.as_str()),
        Some("time")
    );
    // A store without one names the flag that says along which dimension to append.
    let single = dir.path().join("single-v3.zarr");
    run(["append".to_string(), s(&t), "-o".into(), s(&single), "--quiet".into()])
        .fails_with(4, &["has no concat dimension recorded", "--concat-dim"]);
}

#[test]
fn files_of_different_lengths_without_coordinates_concatenate_in_the_order_given() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, n) in [3usize, 5].iter().enumerate() {
        let p = dir.path().join(format!("obs{i}.nc"));
        let mut f = create(&p, Kind::Classic);
        f.add_dimension("obs", *n).unwrap();
        f.add_variable::<f32>("value", &["obs"]).unwrap();
        f.enddef().unwrap();
        let v: Vec<f32> = (0..*n).map(|j| (i * 10 + j) as f32).collect();
        f.variable_mut("value").unwrap().put_values(&v, ..).unwrap();
        files.push(p);
    }
    let inputs = strings(&files);
    let inv = scan_json(&inputs);
    assert_eq!(inv.get("concat_dim").and_then(|j| j.as_str()), Some("obs"));
    let out = dir.path().join("obs.zarr");
    convert(&inputs, &out, &[]).ok();
    verify_source(&out, &inputs).ok();
}

/// A grid file of its own: `orog(lat, lon)` on the grid of [`cmip_file`] at `lat0`.
fn grid_file(path: &Path, kind: Kind, lat0: f32) {
    let mut f = create(path, kind);
    f.add_dimension("lat", 3).unwrap();
    f.add_dimension("lon", 4).unwrap();
    f.add_variable::<f32>("lat", &["lat"]).unwrap();
    f.add_variable::<f32>("lon", &["lon"]).unwrap();
    f.add_variable::<f32>("orog", &["lat", "lon"])
        .unwrap()
        .put_attribute("units", "m")
        .unwrap();
    f.enddef().unwrap();
    let lat: Vec<f32> = (0..3).map(|i| lat0 + 10.0 * i as f32).collect();
    f.variable_mut("lat").unwrap().put_values(&lat, ..).unwrap();
    let lon: Vec<f32> = (0..4).map(|i| 90.0 * i as f32).collect();
    f.variable_mut("lon").unwrap().put_values(&lon, ..).unwrap();
    let orog: Vec<f32> = (0..12).map(|i| i as f32 * 100.0).collect();
    f.variable_mut("orog").unwrap().put_values(&orog, (0..3, 0..4)).unwrap();
}

/// Notes of a scan, joined.
fn notes(inv: &nc2zarr::json::Json) -> String {
    inv.get("notes")
        .and_then(|n| n.as_array())
        .map(|n| n.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

#[test]
fn files_that_split_variables_between_them_merge_as_open_mfdataset_does() {
    let dir = tempfile::tempdir().unwrap();
    for kind in [Kind::Netcdf4, Kind::Classic] {
        let d = dir.path().join(format!("{kind:?}"));
        std::fs::create_dir_all(&d).unwrap();
        // CMIP6-like: one variable per file, split at different steps per variable, time
        // units differing between files, and the grid's orography in a file of its own.
        let p = |n: &str| d.join(n);
        cmip_file(&p("tas_1.nc"), kind, "tas", "days since 2000-01-01", &[0.0, 1.0], 0.0);
        cmip_file(
            &p("tas_2.nc"),
            kind,
            "tas",
            "days since 2000-01-03",
            &[0.0, 1.0, 2.0],
            0.0,
        );
        cmip_file(&p("tas_3.nc"), kind, "tas", "days since 2000-01-01", &[5.0, 6.0], 0.0);
        cmip_file(
            &p("pr_1.nc"),
            kind,
            "pr",
            "days since 2000-01-01",
            &[0.0, 1.0, 2.0, 3.0],
            0.0,
        );
        cmip_file(
            &p("pr_2.nc"),
            kind,
            "pr",
            "days since 2000-01-01",
            &[4.0, 5.0, 6.0],
            0.0,
        );
        grid_file(&p("orog.nc"), kind, 0.0);
        let names = ["tas_3.nc", "pr_2.nc", "orog.nc", "tas_1.nc", "pr_1.nc", "tas_2.nc"];
        let inputs: Vec<String> = names.iter().map(|n| s(&p(n))).collect();
        let inv = scan_json(&inputs);
        assert_eq!(inv.get("concat_dim").and_then(|j| j.as_str()), Some("time"));
        let text = notes(&inv);
        assert!(text.contains("3 sets of variables"), "{text}");
        assert!(text.contains("'tas' (3 files"), "{text}");
        assert!(text.contains("'orog' (1 file"), "{text}");
        // Each file says which variables are read from it.
        let files = inv.get("files").and_then(|f| f.as_array()).unwrap();
        let supplies = |name: &str| {
            let f = files
                .iter()
                .find(|f| f.get("path").and_then(|p| p.as_str()).unwrap().ends_with(name))
                .unwrap();
            f.get("supplies").unwrap().to_compact()
        };
        assert_eq!(supplies("orog.nc"), r#"["orog"]"#);
        assert_eq!(supplies("pr_2.nc"), r#"["pr"]"#);
        assert!(supplies("tas_1.nc").contains(r#""tas""#), "{}", supplies("tas_1.nc"));
        // scan reports the split as merged; each variable's own drift still shows.
        let present = drift_of(&inv, "variables", "tas");
        assert_eq!(action(present), "merge");
        assert_eq!(file_counts(present), vec![3, 3]);
        assert_eq!(file_counts(drift_of(&inv, "units", "time")), vec![2, 1]);
        // Without the grid file every file holds `time`: each file counts once.
        let without_grid: Vec<String> = inputs.iter().filter(|i| !i.ends_with("orog.nc")).cloned().collect();
        let five = scan_json(&without_grid);
        assert_eq!(file_counts(drift_of(&five, "units", "time")), vec![4, 1]);
        convert_and_compare(&d, "split-vars", &inputs, "decoded");
        // The merged store holds every variable over the 7 steps.
        let out = d.join("split-vars-v3.zarr");
        for (array, shape) in [
            ("tas", "[7, 3, 4]"),
            ("pr", "[7, 3, 4]"),
            ("time", "[7]"),
            ("orog", "[3, 4]"),
        ] {
            let meta = read_json(&out, &format!("{array}/zarr.json"));
            let got = meta.get("shape").map(|j| j.to_compact());
            assert_eq!(got.as_deref(), Some(shape), "{array}");
        }
        // A split run gives the same store.
        let split = d.join("split-run.zarr");
        let mut args = vec!["prepare".to_string()];
        args.extend(inputs.iter().cloned());
        args.extend(["-o".into(), s(&split), "--tasks".into(), "3".into()]);
        run(args).ok();
        for i in 0..3 {
            run(["task", &s(&split), "--index", &i.to_string()]).ok();
        }
        run(["commit", &s(&split)]).ok();
        let strip = |dir: &Path| -> Vec<(String, Vec<u8>)> {
            snapshot(dir)
                .into_iter()
                .filter(|(k, _)| !k.starts_with(".nc2zarr"))
                .collect()
        };
        assert!(strip(&split) == strip(&out), "a split run must write the same store");
    }
}

#[test]
fn split_variable_sets_append_and_mismatched_sets_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let kind = Kind::Netcdf4;
    cmip_file(
        &p("tas_1.nc"),
        kind,
        "tas",
        "days since 2000-01-01",
        &[0.0, 1.0, 2.0],
        0.0,
    );
    cmip_file(
        &p("pr_1.nc"),
        kind,
        "pr",
        "days since 2000-01-01",
        &[0.0, 1.0, 2.0],
        0.0,
    );
    cmip_file(&p("tas_2.nc"), kind, "tas", "days since 2000-01-01", &[3.0, 4.0], 0.0);
    cmip_file(&p("pr_2.nc"), kind, "pr", "hours since 2000-01-01", &[72.0, 96.0], 0.0);
    grid_file(&p("orog.nc"), kind, 0.0);
    let first: Vec<String> = ["orog.nc", "tas_1.nc", "pr_1.nc"].iter().map(|n| s(&p(n))).collect();
    let new: Vec<String> = ["tas_2.nc", "pr_2.nc"].iter().map(|n| s(&p(n))).collect();
    let all: Vec<String> = first.iter().chain(&new).cloned().collect();

    // A cron append of the next files of each variable (the grid file is not repeated).
    let out = p("append.zarr");
    convert(&first, &out, &[]).ok();
    let mut args = vec!["append".to_string()];
    args.extend(new.iter().cloned());
    args.extend(["-o".into(), s(&out), "--quiet".into()]);
    run(args).ok();
    verify_source(&out, &all).ok();
    if let Some(py) = python()
        && let Err(text) = xarray_compare(&py, &out, &all, &["--mode", "decoded"])
    {
        panic!("xarray sees a difference after the append:\n{text}");
    }

    let bad = p("bad.zarr");
    // A grid file on another grid: refused, naming the variable.
    grid_file(&p("orog_shifted.nc"), kind, 5.0);
    let other_grid: Vec<String> = ["orog_shifted.nc", "tas_1.nc", "pr_1.nc"]
        .iter()
        .map(|n| s(&p(n)))
        .collect();
    convert(&other_grid, &bad, &[]).fails_with(3, &["variable 'lat'", "values differ between"]);
    assert!(!bad.exists(), "nothing may be written for refused inputs");
    // Sets that disagree on a variable they share without 'time' (CMIP's 'height': 2 m
    // for tas, 10 m for wind): refused, as xarray's merge refuses it.
    for (name, height) in [("tas_h.nc", 2.0f64), ("uas_h.nc", 10.0)] {
        let var = if name.starts_with("tas") { "tas" } else { "uas" };
        cmip_file(&p(name), kind, var, "days since 2000-01-01", &[0.0, 1.0, 2.0], 0.0);
        let mut f = netcdf::append(p(name)).unwrap();
        f.add_variable::<f64>("height", &[])
            .unwrap()
            .put_value(height, ..)
            .unwrap();
    }
    let heights: Vec<String> = ["tas_h.nc", "uas_h.nc"].iter().map(|n| s(&p(n))).collect();
    convert(&heights, &bad, &[]).fails_with(3, &["variable 'height'", "do not agree on it"]);
    assert!(!bad.exists(), "nothing may be written for refused inputs");
    // Bounds only a later set holds, encoded in other time units than the first set's
    // `time`: refused rather than stored under the wrong units.
    let plain = p("tas_plain.nc");
    {
        let mut f = create(&plain, kind);
        f.add_dimension("time", 3).unwrap();
        f.add_dimension("lat", 3).unwrap();
        f.add_dimension("lon", 4).unwrap();
        let mut t = f.add_variable::<f64>("time", &["time"]).unwrap();
        t.put_attribute("units", "days since 2000-01-01").unwrap();
        t.put_attribute("calendar", "365_day").unwrap();
        t.put_values(&[0.0, 1.0, 2.0], ..).unwrap();
        for (name, values) in [
            ("lat", vec![0.0f32, 10.0, 20.0]),
            ("lon", vec![0.0, 90.0, 180.0, 270.0]),
        ] {
            f.add_variable::<f32>(name, &[name])
                .unwrap()
                .put_values(&values, ..)
                .unwrap();
        }
        f.add_variable::<f32>("tas", &["time", "lat", "lon"])
            .unwrap()
            .put_values(&[1.0f32; 36], ..)
            .unwrap();
    }
    cmip_file(
        &p("pr_hours.nc"),
        kind,
        "pr",
        "hours since 2000-01-01",
        &[0.0, 24.0, 48.0],
        0.0,
    );
    let mixed: Vec<String> = ["tas_plain.nc", "pr_hours.nc"].iter().map(|n| s(&p(n))).collect();
    convert(&mixed, &bad, &[]).fails_with(
        3,
        &[
            "bounds 'time_bnds' only the second set holds",
            "\"hours since 2000-01-01\"",
        ],
    );
    assert!(!bad.exists(), "nothing may be written for refused inputs");
}

/// Model output: `time`, `lat`, `lon` and each of `vars` over (time, lat, lon), with
/// `tas`-like f32 values `10 * time + k` for the k-th variable. `int_fill` adds an int32
/// variable `nobs`, with that `_FillValue` when given.
fn model_file(path: &Path, kind: Kind, times: &[f64], vars: &[&str], int_fill: Option<Option<i32>>) {
    let mut f = create(path, kind);
    f.add_dimension("time", times.len()).unwrap();
    f.add_dimension("lat", 3).unwrap();
    f.add_dimension("lon", 4).unwrap();
    let mut t = f.add_variable::<f64>("time", &["time"]).unwrap();
    t.put_attribute("units", "days since 2000-01-01").unwrap();
    t.put_attribute("calendar", "noleap").unwrap();
    f.add_variable::<f32>("lat", &["lat"]).unwrap();
    f.add_variable::<f32>("lon", &["lon"]).unwrap();
    for name in vars {
        let mut v = f.add_variable::<f32>(name, &["time", "lat", "lon"]).unwrap();
        v.set_fill_value(1.0e20f32).unwrap();
        v.put_attribute("units", "K").unwrap();
    }
    if let Some(fill) = int_fill {
        let mut v = f.add_variable::<i32>("nobs", &["time", "lat", "lon"]).unwrap();
        if let Some(fill) = fill {
            v.set_fill_value(fill).unwrap();
        }
    }
    f.enddef().unwrap();
    f.variable_mut("time").unwrap().put_values(times, ..).unwrap();
    f.variable_mut("lat")
        .unwrap()
        .put_values(&[0.0f32, 10.0, 20.0], ..)
        .unwrap();
    f.variable_mut("lon")
        .unwrap()
        .put_values(&[0.0f32, 90.0, 180.0, 270.0], ..)
        .unwrap();
    for (k, name) in vars.iter().enumerate() {
        let values: Vec<f32> = times
            .iter()
            .flat_map(|t| std::iter::repeat_n((10.0 * t + k as f64) as f32, 12))
            .collect();
        f.variable_mut(name).unwrap().put_values(&values, ..).unwrap();
    }
    if int_fill.is_some() {
        let values: Vec<i32> = (0..times.len() * 12).map(|i| i as i32).collect();
        f.variable_mut("nobs").unwrap().put_values(&values, ..).unwrap();
    }
}

/// The `notes` of a scan that mention `var` being absent from some steps.
fn gap_note(inv: &nc2zarr::json::Json, var: &str) -> String {
    notes(inv)
        .lines()
        .find(|l| l.contains(&format!("'{var}' is absent from")))
        .unwrap_or_else(|| panic!("no note on the steps '{var}' lacks in:\n{}", notes(inv)))
        .to_string()
}

#[test]
fn sets_that_cover_different_steps_are_filled_as_open_mfdataset_does() {
    let dir = tempfile::tempdir().unwrap();
    for kind in [Kind::Netcdf4, Kind::Classic] {
        let d = dir.path().join(format!("{kind:?}"));
        std::fs::create_dir_all(&d).unwrap();
        let p = |n: &str| d.join(n);
        // CMIP-like: 'pr' stops two steps before 'tas' does.
        cmip_file(
            &p("tas_1.nc"),
            kind,
            "tas",
            "days since 2000-01-01",
            &[0.0, 1.0, 2.0],
            0.0,
        );
        cmip_file(&p("tas_2.nc"), kind, "tas", "days since 2000-01-01", &[3.0, 4.0], 0.0);
        cmip_file(
            &p("pr_1.nc"),
            kind,
            "pr",
            "days since 2000-01-01",
            &[0.0, 1.0, 2.0],
            0.0,
        );
        let cmip: Vec<String> = ["tas_2.nc", "pr_1.nc", "tas_1.nc"].iter().map(|n| s(&p(n))).collect();
        let inv = scan_json(&cmip);
        let note = gap_note(&inv, "pr");
        assert!(note.contains("2 of 5 'time' steps") && note.contains("NaN"), "{note}");
        assert_eq!(action(drift_of(&inv, "variables", "tas")), "merge");
        convert_and_compare_outer(&d, "cmip-gap", &cmip, "both");
        for format in ["3", "2"] {
            let out = d.join(format!("cmip-gap-v{format}.zarr"));
            let pr: Vec<f32> = array_values(&out, "pr");
            assert_eq!(pr.len(), 5 * 12);
            assert!(
                pr[..36].iter().all(|x| !x.is_nan()) && pr[36..].iter().all(|x| x.is_nan()),
                "{pr:?}"
            );
            let tas: Vec<f32> = array_values(&out, "tas");
            assert!(tas.iter().all(|x| !x.is_nan()), "{tas:?}");
            let time: Vec<f64> = array_values(&out, "time");
            assert_eq!(time, [0.0, 1.0, 2.0, 3.0, 4.0]);
        }

        // Model output: a diagnostic that starts in the second of three files; 'tas' is
        // read from every file, 'diag' only from the last two.
        model_file(&p("out_1.nc"), kind, &[0.0, 1.0], &["tas"], None);
        model_file(&p("out_2.nc"), kind, &[2.0, 3.0], &["tas", "diag"], None);
        model_file(&p("out_3.nc"), kind, &[4.0, 5.0], &["tas", "diag"], None);
        let model: Vec<String> = ["out_1.nc", "out_2.nc", "out_3.nc"].iter().map(|n| s(&p(n))).collect();
        let note = gap_note(&scan_json(&model), "diag");
        assert!(note.contains("2 of 6 'time' steps"), "{note}");
        convert_and_compare_outer(&d, "model-gap", &model, "both");
        let out = d.join("model-gap-v3.zarr");
        let per_step = |name: &str| -> Vec<f32> { array_values::<f32>(&out, name).into_iter().step_by(12).collect() };
        assert_eq!(per_step("tas"), [0.0, 10.0, 20.0, 30.0, 40.0, 50.0]);
        let diag = per_step("diag");
        assert!(
            diag[..2].iter().all(|x| x.is_nan()) && diag[2..] == [21.0, 31.0, 41.0, 51.0],
            "{diag:?}"
        );
    }
}

#[test]
fn gaps_in_integer_variables_hold_their_fill_value_or_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let kind = Kind::Netcdf4;
    model_file(&p("a.nc"), kind, &[0.0, 1.0], &["tas"], None);
    model_file(&p("b.nc"), kind, &[2.0, 3.0], &["tas"], Some(Some(-1)));
    let inputs: Vec<String> = ["a.nc", "b.nc"].iter().map(|n| s(&p(n))).collect();
    let note = gap_note(&scan_json(&inputs), "nobs");
    assert!(note.contains("its _FillValue -1"), "{note}");
    // Decoded, the steps 'nobs' lacks are NaN on both sides; raw, xarray turns the
    // integers into floats to hold NaN while the store keeps int32 and its _FillValue.
    convert_and_compare_outer(dir.path(), "int-gap", &inputs, "decoded");
    let nobs: Vec<i32> = array_values(&dir.path().join("int-gap-v3.zarr"), "nobs");
    let expected: Vec<i32> = std::iter::repeat_n(-1, 24).chain(0..24).collect();
    assert_eq!(nobs, expected);

    // Without a fill value nothing can mark the gap: refused, naming the variable.
    model_file(&p("c.nc"), kind, &[2.0, 3.0], &["tas"], Some(None));
    let bad = p("bad.zarr");
    let inputs: Vec<String> = ["a.nc", "c.nc"].iter().map(|n| s(&p(n))).collect();
    convert(&inputs, &bad, &[]).fails_with(
        3,
        &["'nobs' is absent from 2 of 4 'time' steps", "int has no _FillValue"],
    );
    assert!(!bad.exists(), "nothing may be written for refused inputs");

    // Steps that interleave (one set daily, the other at noon) cannot be filled in file
    // order: refused, naming a file.
    cmip_file(
        &p("tas_1.nc"),
        kind,
        "tas",
        "days since 2000-01-01",
        &[0.0, 1.0, 2.0],
        0.0,
    );
    cmip_file(&p("pr_1.nc"), kind, "pr", "days since 2000-01-01", &[0.5, 1.5], 0.0);
    let inputs: Vec<String> = ["tas_1.nc", "pr_1.nc"].iter().map(|n| s(&p(n))).collect();
    convert(&inputs, &bad, &[]).fails_with(
        3,
        &[
            "'time' steps of",
            "interleave with those of another set",
            "convert each set to its own store",
        ],
    );
    assert!(!bad.exists(), "nothing may be written for refused inputs");

    // A shared variable whose later set covers more steps, but in other time units:
    // its values cannot be read under the first set's units, so it is refused.
    cmip_file(
        &p("pr_h.nc"),
        kind,
        "pr",
        "hours since 2000-01-01",
        &[0.0, 24.0, 48.0, 72.0],
        0.0,
    );
    let inputs: Vec<String> = ["tas_1.nc", "pr_h.nc"].iter().map(|n| s(&p(n))).collect();
    convert(&inputs, &bad, &[]).fails_with(
        3,
        &[
            "variable 'time' is held by sets of files that cover different steps",
            "time units",
        ],
    );
    assert!(!bad.exists(), "nothing may be written for refused inputs");
}

/// [`convert_and_compare`] against `open_mfdataset` with xarray's outer join.
fn convert_and_compare_outer(dir: &Path, name: &str, inputs: &[String], mode: &str) {
    for format in ["3", "2"] {
        let out = dir.join(format!("{name}-v{format}.zarr"));
        convert(inputs, &out, &["--zarr-format", format]).ok();
        verify_source(&out, inputs).ok();
        if let Some(py) = python()
            && let Err(text) = xarray_compare(&py, &out, inputs, &["--mode", mode, "--join", "outer"])
        {
            panic!("xarray sees a difference for {name} (v{format}):\n{text}");
        }
    }
}

/// A forecast run's output: `n` steps from `t0`, the run's start as a scalar `reftime`,
/// a per-run `members(x)` that differs between runs, a `mask(x)` that does not, `v`.
fn forecast_file(path: &Path, kind: Kind, t0: f64, n: usize) {
    let mut f = create(path, kind);
    f.add_dimension("time", n).unwrap();
    f.add_dimension("x", 2).unwrap();
    f.add_variable::<f64>("time", &["time"])
        .unwrap()
        .put_attribute("units", "days since 2000-01-01")
        .unwrap();
    f.add_variable::<f64>("reftime", &[])
        .unwrap()
        .put_attribute("units", "days since 2000-01-01")
        .unwrap();
    f.add_variable::<i32>("members", &["x"]).unwrap();
    f.add_variable::<i16>("mask", &["x"]).unwrap();
    f.add_variable::<f32>("v", &["time", "x"]).unwrap();
    f.enddef().unwrap();
    let times: Vec<f64> = (0..n).map(|i| t0 + i as f64).collect();
    f.variable_mut("time").unwrap().put_values(&times, ..).unwrap();
    f.variable_mut("reftime").unwrap().put_value(t0, ..).unwrap();
    f.variable_mut("members")
        .unwrap()
        .put_values(&[t0 as i32, 10 + t0 as i32], ..)
        .unwrap();
    f.variable_mut("mask").unwrap().put_values(&[1i16, 0], ..).unwrap();
    let v: Vec<f32> = times.iter().flat_map(|t| [*t as f32, -*t as f32]).collect();
    f.variable_mut("v").unwrap().put_values(&v, ..).unwrap();
}

#[test]
fn variables_without_the_concat_dimension_that_differ_are_concatenated_as_xarray_does() {
    let dir = tempfile::tempdir().unwrap();
    for kind in [Kind::Netcdf4, Kind::Classic] {
        let d = dir.path().join(format!("{kind:?}"));
        std::fs::create_dir_all(&d).unwrap();
        let p = |n: &str| d.join(n);
        forecast_file(&p("run_a.nc"), kind, 0.0, 2);
        forecast_file(&p("run_b.nc"), kind, 2.0, 3);
        forecast_file(&p("run_c.nc"), kind, 5.0, 1);
        let first: Vec<String> = ["run_a.nc", "run_b.nc"].iter().map(|n| s(&p(n))).collect();
        let all: Vec<String> = ["run_a.nc", "run_b.nc", "run_c.nc"].iter().map(|n| s(&p(n))).collect();
        let scanned = scan_json(&first);
        let text = notes(&scanned);
        assert!(
            text.contains("variable 'reftime' does not depend on 'time' but its values differ between files")
                && text.contains("variable 'members'")
                && !text.contains("variable 'mask'"),
            "{text}"
        );
        // `scan --json` marks them, as the README says.
        let vars = scanned
            .get("root")
            .and_then(|r| r.get("variables"))
            .and_then(|v| v.as_array())
            .unwrap();
        let repeated: Vec<&str> = vars
            .iter()
            .filter(|v| matches!(v.get("repeated_per_file"), Some(nc2zarr::json::Json::Bool(true))))
            .filter_map(|v| v.get("name").and_then(|n| n.as_str()))
            .collect();
        assert_eq!(repeated, ["reftime", "members"]);
        for format in ["3", "2"] {
            let out = d.join(format!("runs-v{format}.zarr"));
            convert(&all, &out, &["--zarr-format", format]).ok();
            verify_source(&out, &all).ok();
            let reftime: Vec<f64> = array_values(&out, "reftime");
            assert_eq!(reftime, [0.0, 0.0, 2.0, 2.0, 2.0, 5.0]);
            let members: Vec<i32> = array_values(&out, "members");
            assert_eq!(members, [0, 10, 0, 10, 2, 12, 2, 12, 2, 12, 5, 15]);
            let mask: Vec<i16> = array_values(&out, "mask");
            assert_eq!(mask, [1, 0], "a variable equal in every file stays as it is");
            if let Some(py) = python()
                && let Err(text) = xarray_compare(&py, &out, &all, &["--vars", "different"])
            {
                panic!("xarray sees a difference ({kind:?}, v{format}):\n{text}");
            }
            // A cron append of the next run grows them like the data.
            let appended = d.join(format!("appended-v{format}.zarr"));
            convert(&first, &appended, &["--zarr-format", format]).ok();
            run(["append", &all[2], "-o", &s(&appended), "--quiet"]).ok();
            verify_source(&appended, &all).ok();
            assert_eq!(array_values::<f64>(&appended, "reftime"), reftime);
            assert_eq!(array_values::<i32>(&appended, "members"), members);
            // A store made from one run holds them without 'time': it cannot grow them.
            let single = d.join(format!("single-v{format}.zarr"));
            convert(&all[..1], &single, &["--zarr-format", format]).ok();
            run(["append", &all[1], "-o", &s(&single), "--quiet"])
                .fails_with(3, &["changes from file to file: then convert all the files again"]);
        }
        // Times in other units per file are re-encoded into the first file's (10 hours
        // after 2000-01-01 is 10/24 days).
        forecast_file(&p("run_hours.nc"), kind, 10.0, 1);
        let set_units = |name: &str, units: &str| {
            let mut f = netcdf::append(p(name)).unwrap();
            f.variable_mut("reftime")
                .unwrap()
                .put_attribute("units", units)
                .unwrap();
        };
        set_units("run_hours.nc", "hours since 2000-01-01");
        let mixed: Vec<String> = ["run_a.nc", "run_hours.nc"].iter().map(|n| s(&p(n))).collect();
        let out = d.join("mixed.zarr");
        convert(&mixed, &out, &[]).ok();
        verify_source(&out, &mixed).ok();
        let reftime = array_values::<f64>(&out, "reftime");
        assert_eq!(reftime[..2], [0.0, 0.0]);
        assert!((reftime[2] - 10.0 / 24.0).abs() < 1e-12, "{reftime:?}");
        // Other units that are not time units are refused rather than stored side by side.
        set_units("run_hours.nc", "1");
        convert(&mixed, &d.join("other.zarr"), &[]).fails_with(3, &["'reftime'", "and so do its units"]);
    }
}

/// One time step of a daily product that keeps time as a scalar coordinate (no time
/// dimension): `time` (days since 2000-01-01), `depth` (a scalar coordinate equal in
/// every file), `lat`, `sst(lat)` and a `mask(lat)` equal in every file.
fn scalar_time_file(path: &Path, kind: Kind, day: f64, var: &str) {
    scalar_time_file_with(path, kind, day, var, &[]);
}

/// [`scalar_time_file`] with global text attributes.
fn scalar_time_file_with(path: &Path, kind: Kind, day: f64, var: &str, global: &[(&str, &str)]) {
    let mut f = create(path, kind);
    for (name, value) in global {
        f.add_attribute(name, *value).unwrap();
    }
    f.add_dimension("lat", 3).unwrap();
    f.add_variable::<f64>("time", &[])
        .unwrap()
        .put_attribute("units", "days since 2000-01-01")
        .unwrap();
    f.add_variable::<f32>("depth", &[]).unwrap();
    f.add_variable::<f32>("lat", &["lat"]).unwrap();
    f.add_variable::<f32>(var, &["lat"])
        .unwrap()
        .put_attribute("coordinates", "time depth")
        .unwrap();
    f.add_variable::<i16>("mask", &["lat"]).unwrap();
    f.enddef().unwrap();
    f.variable_mut("time").unwrap().put_value(day, ..).unwrap();
    f.variable_mut("depth").unwrap().put_value(0.5f32, ..).unwrap();
    f.variable_mut("lat")
        .unwrap()
        .put_values(&[-10.0f32, 0.0, 10.0], ..)
        .unwrap();
    let sst = [day as f32, day as f32 + 0.25, day as f32 + 0.5];
    f.variable_mut(var).unwrap().put_values(&sst, ..).unwrap();
    f.variable_mut("mask").unwrap().put_values(&[1i16, 1, 0], ..).unwrap();
}

#[test]
fn files_holding_one_scalar_time_step_each_concatenate_along_a_new_dimension() {
    let dir = tempfile::tempdir().unwrap();
    for kind in [Kind::Netcdf4, Kind::Classic] {
        let d = dir.path().join(format!("{kind:?}"));
        std::fs::create_dir_all(&d).unwrap();
        let p = |n: &str| d.join(n);
        for day in 0..4 {
            scalar_time_file(&p(&format!("day{day}.nc")), kind, day as f64, "sst");
        }
        let days: Vec<String> = (0..4).map(|i| s(&p(&format!("day{i}.nc")))).collect();
        // Given out of order: ordered by each file's time.
        let shuffled: Vec<String> = [2, 0, 3, 1].iter().map(|&i| days[i].clone()).collect();
        let inv = scan_json(&shuffled);
        assert_eq!(inv.get("concat_dim").and_then(|j| j.as_str()), Some("time"));
        let reason = inv.get("concat_reason").map(|j| j.to_compact()).unwrap_or_default();
        assert!(reason.contains("scalar time coordinate"), "{reason}");
        for format in ["3", "2"] {
            let out = d.join(format!("days-v{format}.zarr"));
            convert(&shuffled, &out, &["--zarr-format", format]).ok();
            verify_source(&out, &days).ok();
            assert_eq!(array_values::<f64>(&out, "time"), [0.0, 1.0, 2.0, 3.0]);
            let sst: Vec<f32> = array_values(&out, "sst");
            assert_eq!(sst[..6], [0.0, 0.25, 0.5, 1.0, 1.25, 1.5]);
            assert_eq!(
                array_values::<i16>(&out, "mask").len(),
                12,
                "data variables run along 'time'"
            );
            assert_eq!(
                array_values::<f32>(&out, "depth"),
                [0.5],
                "an equal scalar coordinate stays one"
            );
            // Decoded only: undecoded, xarray does not read `coordinates`, so it takes
            // 'depth' for a data variable and concatenates it too.
            if let Some(py) = python()
                && let Err(text) = xarray_compare(&py, &out, &days, &["--vars", "all", "--mode", "decoded"])
            {
                panic!("xarray sees a difference ({kind:?}, v{format}):\n{text}");
            }
            // A cron job that starts with one day and appends the next ones.
            let cron = d.join(format!("cron-v{format}.zarr"));
            convert(&days[..1], &cron, &["--zarr-format", format, "--concat-dim", "time"]).ok();
            run(["append", &days[1], &days[2], "-o", &s(&cron), "--quiet"]).ok();
            run(["append", &days[3], "-o", &s(&cron), "--quiet"]).ok();
            verify_source(&cron, &days).ok();
            assert_eq!(array_values::<f64>(&cron, "time"), array_values::<f64>(&out, "time"));
            assert_eq!(array_values::<f32>(&cron, "sst"), sst);
            assert_eq!(array_values::<i16>(&cron, "mask"), array_values::<i16>(&out, "mask"));
            assert_eq!(array_values::<f32>(&cron, "depth"), [0.5]);
        }
        // Files in other time units: re-encoded into the first file's (96 hours is day 4).
        scalar_time_file(&p("hours.nc"), kind, 96.0, "sst");
        {
            let mut f = netcdf::append(p("hours.nc")).unwrap();
            f.variable_mut("time")
                .unwrap()
                .put_attribute("units", "hours since 2000-01-01")
                .unwrap();
        }
        let mixed = [days[0].clone(), s(&p("hours.nc"))];
        let out = d.join("mixed.zarr");
        convert(&mixed, &out, &[]).ok();
        verify_source(&out, &mixed).ok();
        assert_eq!(array_values::<f64>(&out, "time"), [0.0, 4.0]);
        // A misspelt --concat-dim is an error, not a new dimension.
        convert(&days, &d.join("typo.zarr"), &["--concat-dim", "tiem"]).fails_with(3, &["has no dimension 'tiem'"]);
        // Sets of files one day apart (sst from day 0, ice from day 1) are joined on time.
        for day in 1..4 {
            scalar_time_file(&p(&format!("ice{day}.nc")), kind, day as f64, "ice");
        }
        let sets: Vec<String> = (0..3)
            .map(|i| days[i].clone())
            .chain((1..4).map(|i| s(&p(&format!("ice{i}.nc")))))
            .collect();
        let joined = d.join("joined.zarr");
        convert(&sets, &joined, &[]).ok();
        assert_eq!(array_values::<f64>(&joined, "time"), [0.0, 1.0, 2.0, 3.0]);
        let first_lat =
            |name: &str| -> Vec<f32> { array_values::<f32>(&joined, name).into_iter().step_by(3).collect() };
        let sst = first_lat("sst");
        assert!(sst[..3] == [0.0, 1.0, 2.0] && sst[3].is_nan(), "{sst:?}");
        let ice = first_lat("ice");
        assert!(ice[0].is_nan() && ice[1..] == [1.0, 2.0, 3.0], "{ice:?}");
    }
}

#[test]
fn variables_a_global_coordinates_attribute_names_are_coordinates_as_xarray_reads_them() {
    // xarray writes a coordinate that no data variable's dimensions cover into the global
    // `coordinates` attribute, and reads it back as a coordinate: along a new concat
    // dimension such a variable stays static where it is equal in every file.
    let dir = tempfile::tempdir().unwrap();
    for kind in [Kind::Netcdf4, Kind::Classic] {
        let d = dir.path().join(format!("{kind:?}"));
        std::fs::create_dir_all(&d).unwrap();
        let days: Vec<String> = (0..3)
            .map(|day| {
                let p = d.join(format!("day{day}.nc"));
                scalar_time_file_with(&p, kind, day as f64, "sst", &[("coordinates", "mask")]);
                s(&p)
            })
            .collect();
        for format in ["3", "2"] {
            let out = d.join(format!("days-v{format}.zarr"));
            convert(&days, &out, &["--zarr-format", format]).ok();
            verify_source(&out, &days).ok();
            assert_eq!(
                array_values::<i16>(&out, "mask"),
                [1, 1, 0],
                "a coordinate equal in every file is not repeated per file"
            );
            assert_eq!(array_values::<f32>(&out, "sst").len(), 9);
            if let Some(py) = python()
                && let Err(text) = xarray_compare(&py, &out, &days, &["--vars", "all", "--mode", "decoded"])
            {
                panic!("xarray sees a difference ({kind:?}, v{format}):\n{text}");
            }
        }
    }
}

/// Model output whose `time` has `units` and, if given, a `calendar`, with bounds that
/// carry their own units but no calendar (as post-processing often leaves them).
fn calendar_file(path: &Path, kind: Kind, units: &str, calendar: Option<&str>, times: &[f64]) {
    time_bounds_file(path, kind, (units, calendar), times, "v", false);
}

/// One variable `var` along `time` in `units` and `calendar`, with bounds `time_bnds`
/// in the same units that name the calendar too if `bounds_calendar`.
fn time_bounds_file(
    path: &Path,
    kind: Kind,
    (units, calendar): (&str, Option<&str>),
    times: &[f64],
    var: &str,
    bounds_calendar: bool,
) {
    let mut f = create(path, kind);
    f.add_dimension("time", times.len()).unwrap();
    f.add_dimension("nv", 2).unwrap();
    {
        let mut t = f.add_variable::<f64>("time", &["time"]).unwrap();
        t.put_attribute("units", units).unwrap();
        t.put_attribute("bounds", "time_bnds").unwrap();
        if let Some(c) = calendar {
            t.put_attribute("calendar", c).unwrap();
        }
    }
    {
        let mut b = f.add_variable::<f64>("time_bnds", &["time", "nv"]).unwrap();
        b.put_attribute("units", units).unwrap();
        if let (Some(c), true) = (calendar, bounds_calendar) {
            b.put_attribute("calendar", c).unwrap();
        }
    }
    f.add_variable::<f32>(var, &["time"]).unwrap();
    f.enddef().unwrap();
    f.variable_mut("time").unwrap().put_values(times, ..).unwrap();
    let bounds: Vec<f64> = times.iter().flat_map(|t| [*t, t + 1.0]).collect();
    f.variable_mut("time_bnds").unwrap().put_values(&bounds, ..).unwrap();
    let v: Vec<f32> = times.iter().map(|t| *t as f32).collect();
    f.variable_mut(var).unwrap().put_values(&v, ..).unwrap();
}

#[test]
fn calendars_that_differ_are_refused_and_bounds_take_their_variables_calendar() {
    let dir = tempfile::tempdir().unwrap();
    for kind in [Kind::Netcdf4, Kind::Classic] {
        let d = dir.path().join(format!("{kind:?}"));
        std::fs::create_dir_all(&d).unwrap();
        let p = |n: &str| s(&d.join(n));
        let days = "days since 2000-01-01";
        // The same units in another calendar: day 59 is 1 March in one and 29 February
        // in the other. xarray decodes them to a mix of cftime dates and timestamps that
        // it cannot write to Zarr; nc2zarr refuses them, naming both.
        calendar_file(&d.join("noleap.nc"), kind, days, Some("noleap"), &[58.0, 59.0]);
        calendar_file(&d.join("plain.nc"), kind, days, None, &[60.0, 61.0]);
        calendar_file(&d.join("gregorian.nc"), kind, days, Some("Gregorian"), &[62.0, 63.0]);
        convert(&[p("noleap.nc"), p("plain.nc")], &d.join("mixed.zarr"), &[]).fails_with(
            3,
            &[
                "variable 'time' uses calendar",
                "noleap",
                "plain.nc",
                "standard (none given)",
            ],
        );
        assert!(!d.join("mixed.zarr").exists());
        // No calendar is the standard one, as `Gregorian` is; from 1582-10-15 on,
        // `proleptic_gregorian` counts the same dates (xarray's default when it writes).
        calendar_file(
            &d.join("proleptic.nc"),
            kind,
            days,
            Some("proleptic_gregorian"),
            &[64.0, 65.0],
        );
        let same = d.join("same.zarr");
        convert(&[p("plain.nc"), p("gregorian.nc"), p("proleptic.nc")], &same, &[]).ok();
        assert_eq!(array_values::<f64>(&same, "time"), [60.0, 61.0, 62.0, 63.0, 64.0, 65.0]);
        // ... and so does an append of such files onto a store without a calendar.
        let plain_store = d.join("plain.zarr");
        convert(&[p("plain.nc")], &plain_store, &[]).ok();
        run([
            "append",
            &p("gregorian.nc"),
            &p("proleptic.nc"),
            "-o",
            &s(&plain_store),
            "--quiet",
        ])
        .ok();
        assert_eq!(
            array_values::<f64>(&plain_store, "time"),
            [60.0, 61.0, 62.0, 63.0, 64.0, 65.0]
        );
        // Bounds without a calendar take their variable's (noleap) when a later file's
        // units are re-encoded: 2001-01-01 is day 365 of a noleap calendar, not 366.
        calendar_file(&d.join("y0.nc"), kind, days, Some("noleap"), &[0.0, 1.0]);
        calendar_file(
            &d.join("y1.nc"),
            kind,
            "days since 2001-01-01",
            Some("noleap"),
            &[0.0, 1.0],
        );
        let years = d.join("years.zarr");
        convert(&[p("y0.nc"), p("y1.nc")], &years, &[]).ok();
        assert_eq!(array_values::<f64>(&years, "time"), [0.0, 1.0, 365.0, 366.0]);
        assert_eq!(
            array_values::<f64>(&years, "time_bnds"),
            [0.0, 1.0, 1.0, 2.0, 365.0, 366.0, 366.0, 367.0]
        );
        verify_source(&years, &[p("y0.nc"), p("y1.nc")]).ok();
        // An append in another calendar than the store's is refused, and leaves it as it was.
        let cron = d.join("cron.zarr");
        convert(&[p("noleap.nc")], &cron, &[]).ok();
        run(["append", &p("plain.nc"), "-o", &s(&cron), "--quiet"])
            .fails_with(3, &["variable 'time' uses calendar", "in the store"]);
        assert_eq!(array_values::<f64>(&cron, "time"), [58.0, 59.0]);
        calendar_file(&d.join("noleap2.nc"), kind, days, Some("365_day"), &[60.0, 61.0]);
        run(["append", &p("noleap2.nc"), "-o", &s(&cron), "--quiet"]).ok();
        assert_eq!(array_values::<f64>(&cron, "time"), [58.0, 59.0, 60.0, 61.0]);
    }
}

/// A climatology in a 360_day calendar: `time` in `units` names its bounds
/// `climatology_bnds` (which carry no units) through CF's `climatology` attribute.
fn climatology_file(path: &Path, units: &str, times: &[f64]) {
    let mut f = create(path, Kind::Classic);
    f.add_dimension("time", times.len()).unwrap();
    f.add_dimension("nv", 2).unwrap();
    {
        let mut t = f.add_variable::<f64>("time", &["time"]).unwrap();
        t.put_attribute("units", units).unwrap();
        t.put_attribute("calendar", "360_day").unwrap();
        t.put_attribute("climatology", "climatology_bnds").unwrap();
    }
    f.add_variable::<f64>("climatology_bnds", &["time", "nv"]).unwrap();
    f.add_variable::<f32>("tas", &["time"])
        .unwrap()
        .put_attribute("cell_methods", "time: mean within years time: mean over years")
        .unwrap();
    f.enddef().unwrap();
    f.variable_mut("time").unwrap().put_values(times, ..).unwrap();
    // Each mean spans 30 years: from its start to the end of its month 29 years on.
    let bounds: Vec<f64> = times.iter().flat_map(|t| [t - 15.0, t + 15.0 + 29.0 * 360.0]).collect();
    f.variable_mut("climatology_bnds")
        .unwrap()
        .put_values(&bounds, ..)
        .unwrap();
    let v: Vec<f32> = times.iter().map(|t| *t as f32).collect();
    f.variable_mut("tas").unwrap().put_values(&v, ..).unwrap();
}

#[test]
fn climatology_bounds_are_re_encoded_with_their_time_coordinate() {
    // Climatologies with a per-file reference date (WOA, CRU, CMIP climatologies): the
    // second file's bounds must be re-encoded into the store's units as its times are.
    // Before, only `time` was re-encoded; the bounds kept their raw numbers, so under
    // the store's units 1991's bounds meant 1961 (verify passed).
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |n: &str| s(&d.join(n));
    climatology_file(&d.join("c0.nc"), "days since 1961-01-01", &[15.0, 45.0]);
    climatology_file(&d.join("c1.nc"), "days since 1991-01-01", &[75.0, 105.0]);
    // 1991-01-01 is day 30 * 360 = 10800 since 1961-01-01 in a 360_day calendar.
    let shift = 10800.0;
    let want_bounds: Vec<f64> = [15.0, 45.0, 75.0 + shift, 105.0 + shift]
        .iter()
        .flat_map(|t| [t - 15.0, t + 15.0 + 29.0 * 360.0])
        .collect();
    let store = d.join("clim.zarr");
    convert(&[p("c0.nc"), p("c1.nc")], &store, &[]).ok();
    assert_eq!(
        array_values::<f64>(&store, "time"),
        [15.0, 45.0, 75.0 + shift, 105.0 + shift]
    );
    assert_eq!(array_values::<f64>(&store, "climatology_bnds"), want_bounds);
    verify_source(&store, &[p("c0.nc"), p("c1.nc")]).ok();
    // The same through a cron append.
    let cron = d.join("cron.zarr");
    convert(&[p("c0.nc")], &cron, &[]).ok();
    run(["append", &p("c1.nc"), "-o", &s(&cron), "--allow-gaps", "--quiet"]).ok();
    assert_eq!(array_values::<f64>(&cron, "climatology_bnds"), want_bounds);
    verify_source(&cron, &[p("c0.nc"), p("c1.nc")]).ok();
}

/// A byte variable `q` along `time`, two steps from `t0`, packed with `scale` if given.
/// `ty`: `marked` (signed bytes with `_Unsigned = "true"`, as classic files hold unsigned
/// bytes), `plain` (signed bytes), `false` (signed bytes with `_Unsigned = "false"`),
/// `ubyte` (netCDF-4 unsigned bytes) or `short` (16-bit integers).
fn unsigned_file(path: &Path, t0: f64, scale: Option<f32>, ty: &str) {
    let netcdf4 = matches!(ty, "ubyte" | "short");
    let mut f = create(path, if netcdf4 { Kind::Netcdf4 } else { Kind::Classic });
    f.add_dimension("time", 2).unwrap();
    f.add_variable::<f64>("time", &["time"])
        .unwrap()
        .put_attribute("units", "days since 2000-01-01")
        .unwrap();
    let mut q = match ty {
        "ubyte" => f.add_variable::<u8>("q", &["time"]).unwrap(),
        "short" => f.add_variable::<i16>("q", &["time"]).unwrap(),
        _ => f.add_variable::<i8>("q", &["time"]).unwrap(),
    };
    match ty {
        "marked" => q.put_attribute("_Unsigned", "true").map(|_| ()).unwrap(),
        "false" => q.put_attribute("_Unsigned", "false").map(|_| ()).unwrap(),
        _ => {}
    }
    if let Some(scale) = scale {
        q.put_attribute("scale_factor", scale).unwrap();
    }
    f.enddef().unwrap();
    f.variable_mut("time").unwrap().put_values(&[t0, t0 + 1.0], ..).unwrap();
    let mut q = f.variable_mut("q").unwrap();
    match ty {
        "ubyte" => q.put_values(&[200u8, 10], ..).unwrap(),
        "short" => q.put_values(&[300i16, 10], ..).unwrap(),
        // -112 is 144 as an unsigned byte.
        _ => q.put_values(&[-112i8, 10], ..).unwrap(),
    }
}

#[test]
fn unsigned_marked_bytes_are_not_unpacked_promoted_or_mixed_into_wrong_values() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| s(&dir.path().join(n));
    let file = |n: &str, t0: f64, scale: Option<f32>, ty: &str| unsigned_file(&dir.path().join(n), t0, scale, ty);
    file("a.nc", 0.0, Some(0.5), "marked");
    file("b.nc", 2.0, Some(0.25), "marked");
    file("c.nc", 2.0, Some(0.5), "marked");
    file("m.nc", 0.0, None, "marked");
    file("u.nc", 2.0, None, "ubyte");
    file("s.nc", 2.0, None, "plain");
    file("f.nc", 0.0, None, "false");
    file("h.nc", 2.0, None, "short");
    // Packed differently: xarray decodes -112 as 144 * 0.5 = 72; unpacking the signed
    // byte would give -56. Refused rather than wrong.
    let out = dir.path().join("out.zarr");
    convert(&[p("a.nc"), p("b.nc")], &out, &[]).fails_with(3, &["variable 'q' is marked _Unsigned", "a.nc"]);
    assert!(!out.exists());
    // Signed bytes marked unsigned next to netCDF-4 unsigned bytes (same packing): no promotion.
    convert(&[p("m.nc"), p("u.nc")], &out, &[]).fails_with(3, &["variable 'q' is marked _Unsigned", "differs"]);
    // Marked in one file, not in the next: xarray reads 144 and -112; one attribute cannot say both.
    convert(&[p("m.nc"), p("s.nc")], &out, &[]).fails_with(3, &["marked _Unsigned", "not in every file"]);
    // `_Unsigned = "false"` on signed bytes changes nothing: promoted next to shorts.
    let promoted = dir.path().join("promoted.zarr");
    convert(&[p("f.nc"), p("h.nc")], &promoted, &[]).ok();
    assert_eq!(array_values::<i16>(&promoted, "q"), [-112, 10, 300, 10]);
    // Packed alike, the bytes and their attributes are copied: readers apply them.
    convert(&[p("a.nc"), p("c.nc")], &out, &[]).ok();
    verify_source(&out, &[p("a.nc"), p("c.nc")]).ok();
    assert_eq!(array_values::<i8>(&out, "q"), [-112, 10, -112, 10]);
    if let Some(py) = python()
        && let Err(text) = xarray_compare(&py, &out, &[p("a.nc"), p("c.nc")], &["--mode", "decoded"])
    {
        panic!("xarray sees a difference:\n{text}");
    }
}

#[test]
fn append_tells_apart_scalar_time_files_of_equal_size_and_head() {
    // Two days of a product whose first 64 KiB are the same (a long `lat` written first,
    // equal fields) and whose scalar `time` alone differs, written last.
    let dir = tempfile::tempdir().unwrap();
    for kind in [Kind::Netcdf4, Kind::Classic] {
        let day = |n: f64| {
            let path = dir.path().join(format!("{kind:?}-{n}.nc"));
            let mut f = create(&path, kind);
            f.add_dimension("lat", 20_000).unwrap();
            f.add_variable::<f32>("lat", &["lat"]).unwrap();
            f.add_variable::<f64>("time", &[])
                .unwrap()
                .put_attribute("units", "days since 2000-01-01")
                .unwrap();
            f.add_variable::<f32>("flag", &["lat"]).unwrap();
            f.enddef().unwrap();
            let lat: Vec<f32> = (0..20_000).map(|i| i as f32).collect();
            f.variable_mut("lat").unwrap().put_values(&lat, ..).unwrap();
            f.variable_mut("flag")
                .unwrap()
                .put_values(&vec![1.0f32; 20_000], ..)
                .unwrap();
            f.variable_mut("time").unwrap().put_value(n, ..).unwrap();
            drop(f);
            path
        };
        let (a, b) = (day(0.0), day(1.0));
        let head = |p: &Path| std::fs::read(p).unwrap()[..65_536].to_vec();
        assert_eq!(
            std::fs::metadata(&a).unwrap().len(),
            std::fs::metadata(&b).unwrap().len()
        );
        assert!(head(&a) == head(&b), "the fixture must share its first 64 KiB");
        let out = dir.path().join(format!("{kind:?}.zarr"));
        convert(&[s(&a)], &out, &["--concat-dim", "time"]).ok();
        run(["append", &s(&b), "-o", &s(&out), "--quiet"]).ok();
        assert_eq!(
            array_values::<f64>(&out, "time"),
            [0.0, 1.0],
            "{kind:?}: the second day was taken for the first"
        );
    }
}

const HOURS: [f64; 2] = [0.0, 6.0];

fn packing(scale: f64, offset: f64, single: bool) -> Packing {
    Packing {
        scale,
        offset,
        fill: -32767,
        single,
    }
}

fn packed_set(dir: &Path, kind: Kind, packings: &[Packing]) -> Vec<String> {
    std::fs::create_dir_all(dir).unwrap();
    packings
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let path = dir.join(format!("packed_{i}.nc"));
            let times: Vec<f64> = HOURS.iter().map(|h| h + 12.0 * i as f64).collect();
            packed_file(&path, kind, &times, *p, &[10, 20, -32767, 110, 30, 40, 50, -5]);
            s(&path)
        })
        .collect()
}

#[test]
fn files_packed_differently_are_unpacked_to_the_values_xarray_decodes() {
    let dir = tempfile::tempdir().unwrap();
    for kind in [Kind::Netcdf4, Kind::Classic] {
        let d = dir.path().join(format!("{kind:?}"));
        let inputs = packed_set(&d, kind, &[packing(0.5, 200.0, false), packing(0.25, 240.0, false)]);
        let out = d.join("tp.zarr");
        let r = convert(&inputs, &out, &[]);
        r.ok();
        assert!(r.stdout.contains("stored unpacked as double"), "{}", r.stdout);
        let meta = read_json(&out, "tp/zarr.json");
        assert_eq!(meta.get("data_type").and_then(|j| j.as_str()), Some("float64"));
        let attrs = meta.get("attributes").unwrap();
        assert!(attrs.get("scale_factor").is_none() && attrs.get("add_offset").is_none());
        verify_source(&out, &inputs).ok();
        convert_and_compare(&d, "tp", &inputs, "decoded");
        // Single-precision factors unpack to float32, as xarray does.
        let single = packed_set(
            &d.join("single"),
            kind,
            &[
                packing(0.1, 5.0, true),
                packing(0.3, -2.0, true),
                packing(0.1, 5.0, true),
            ],
        );
        let out32 = d.join("tp32.zarr");
        convert(&single, &out32, &[]).ok();
        let meta = read_json(&out32, "tp/zarr.json");
        assert_eq!(meta.get("data_type").and_then(|j| j.as_str()), Some("float32"));
        convert_and_compare(&d.join("single"), "tp32", &single, "decoded");
        // The note says what happened.
        let r = run(["scan".to_string(), single[0].clone(), single[1].clone()]);
        r.ok();
        assert!(
            r.stdout.contains("packing differs between files") && r.stdout.contains("unpacked as float"),
            "{}",
            r.stdout
        );
    }
}

#[test]
fn packing_drift_can_be_refused() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = packed_set(
        dir.path(),
        Kind::Netcdf4,
        &[packing(0.5, 200.0, false), packing(0.25, 240.0, false)],
    );
    let out = dir.path().join("out.zarr");
    convert(&inputs, &out, &["--on-encoding-drift", "refuse"]).fails_with(
        3,
        &[
            "variable 'tp' is packed differently",
            "packed_0.nc (scale_factor=0.5",
            "packed_1.nc (scale_factor=0.25",
        ],
    );
    assert!(!out.exists());
    // Files that agree are copied raw, packed as they are.
    let same = packed_set(
        &dir.path().join("same"),
        Kind::Netcdf4,
        &[packing(0.5, 200.0, false); 2],
    );
    convert(&same, &out, &["--on-encoding-drift", "refuse"]).ok();
    let meta = read_json(&out, "tp/zarr.json");
    assert_eq!(meta.get("data_type").and_then(|j| j.as_str()), Some("int16"));
    assert_eq!(
        meta.get("attributes")
            .and_then(|a| a.get("scale_factor"))
            .and_then(|j| j.as_f64()),
        Some(0.5)
    );
}

#[test]
fn verify_compares_decoded_values_and_catches_mixed_packing() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = packed_set(
        dir.path(),
        Kind::Netcdf4,
        &[packing(0.5, 200.0, false), packing(0.25, 240.0, false)],
    );
    // What earlier versions wrote: the second file's raw values under the first file's
    // packing (the same raw values, relabelled).
    let relabelled = packed_set(&dir.path().join("old"), Kind::Netcdf4, &[packing(0.5, 200.0, false); 2]);
    let old = dir.path().join("old.zarr");
    convert(&relabelled, &old, &[]).ok();
    let r = verify_source(&old, &inputs);
    assert_eq!(
        r.code, 5,
        "verify must fail on mixed packing:\n{}{}",
        r.stdout, r.stderr
    );
    assert!(r.stdout.contains("decoded values differ"), "{}", r.stdout);
    // raw 10 decodes to 205 under the first file's packing but 242.5 under its own.
    assert!(r.stdout.contains("205") && r.stdout.contains("242.5"), "{}", r.stdout);
    // A store holding the decoded values passes.
    let good = dir.path().join("good.zarr");
    convert(&inputs, &good, &[]).ok();
    verify_source(&good, &inputs).ok();
}

#[test]
fn a_float_missing_value_on_an_integer_variable_converts() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("int.nc");
    {
        let mut nc = create(&f, Kind::Classic);
        nc.add_dimension("x", 3).unwrap();
        {
            let mut v = nc.add_variable::<i32>("flag", &["x"]).unwrap();
            v.put_attribute("missing_value", -9999.9f32).unwrap();
        }
        nc.enddef().unwrap();
        nc.variable_mut("flag")
            .unwrap()
            .put_values(&[1i32, -9999, 3], ..)
            .unwrap();
    }
    convert_and_compare(dir.path(), "int", &[s(&f)], "both");
}

#[test]
fn char_fill_values_keep_masking_in_zarr_v2() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("chars.nc");
    {
        let mut nc = create(&f, Kind::Netcdf4);
        nc.add_dimension("x", 3).unwrap();
        let mut v = nc.add_variable::<NcChar>("c", &["x"]).unwrap();
        v.set_fill_value(NcChar(b'b')).unwrap();
        v.put_values(&[NcChar(b'a'), NcChar(b'b'), NcChar(b'c')], ..).unwrap();
    }
    // xarray 2026.9 cannot read a char array's _FillValue from Zarr v3 (its own writer's
    // stores fail to open), so v3 keeps it as the Zarr fill_value only, with a note.
    let v3 = dir.path().join("chars-v3.zarr");
    let r = run(["convert".to_string(), s(&f), "-o".into(), s(&v3)]);
    r.ok();
    assert!(
        r.stdout
            .contains("xarray cannot read the _FillValue attribute of a char array"),
        "{}",
        r.stdout
    );
    assert_eq!(
        read_json(&v3, "c/zarr.json").get("fill_value").and_then(|j| j.as_str()),
        Some("Yg==")
    );
    verify_source(&v3, &[s(&f)]).ok();
    let out = dir.path().join("chars-v2.zarr");
    convert(&[s(&f)], &out, &["--zarr-format", "2"]).ok();
    verify_source(&out, &[s(&f)]).ok();
    if let Some(py) = python() {
        xarray_compare(&py, &out, &[s(&f)], &[]).unwrap();
    }
    let zarray = read_json(&out, "c/.zarray");
    assert_eq!(zarray.get("fill_value").and_then(|j| j.as_str()), Some("Yg=="));
    let Some(py) = python() else { return };
    let script = format!(
        "import xarray as xr, warnings\nwarnings.simplefilter('ignore')\n\
         z = xr.open_dataset({:?}, engine='zarr', concat_characters=False).c.values\n\
         n = xr.open_dataset({:?}, concat_characters=False).c.values\n\
         print(list(map(repr, z)), list(map(repr, n)))\nassert repr(list(z)) == repr(list(n)), (z, n)\n",
        s(&out),
        s(&f)
    );
    let o = std::process::Command::new(py).arg("-c").arg(script).output().unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("nan"));
}

#[test]
fn appends_respect_how_the_store_packs_a_variable() {
    let dir = tempfile::tempdir().unwrap();
    let p = [
        packing(0.5, 200.0, false),
        packing(0.25, 240.0, false),
        packing(0.1, 250.0, true),
    ];
    let all = packed_set(dir.path(), Kind::Netcdf4, &p);
    // An unpacked store takes new packed files by decoding them.
    let out = dir.path().join("unpacked.zarr");
    convert(&all[..2], &out, &[]).ok();
    let r = run(["append".to_string(), all[2].clone(), "-o".into(), s(&out)]);
    r.ok();
    assert!(
        r.stdout.contains("the store holds it unpacked (double)"),
        "{}",
        r.stdout
    );
    verify_source(&out, &all).ok();
    if let Some(py) = python() {
        xarray_compare(&py, &out, &all, &["--mode", "decoded"]).unwrap();
    }
    // A packed store refuses new files packed otherwise, and stays as it was.
    let same = packed_set(&dir.path().join("same"), Kind::Netcdf4, &[p[0], p[0]]);
    let packed = dir.path().join("packed.zarr");
    convert(&same, &packed, &[]).ok();
    let before = snapshot(&packed);
    run(["append".to_string(), all[2].clone(), "-o".into(), s(&packed)]).fails_with(
        3,
        &[
            "variable 'tp' is stored packed (scale_factor=0.5",
            "packed_2.nc packs it otherwise",
            "Convert the store again",
        ],
    );
    assert!(
        before == snapshot(&packed),
        "a refused append must leave the store untouched"
    );
}

/// How one file of a drifting archive differs from the others.
#[derive(Clone)]
struct Flavour {
    chunk: usize,
    level: i32,
    scale: f64,
    fill: f32,
    units: &'static str,
    times: Vec<f64>,
    history: &'static str,
    precip_is_double: bool,
    with_extra: bool,
    lat0: f32,
    calendar: &'static str,
}

fn base_flavour(times: Vec<f64>) -> Flavour {
    Flavour {
        chunk: 2,
        level: 1,
        scale: 0.5,
        fill: -999.0,
        units: "days since 2000-01-01",
        times,
        history: "made by model v1",
        precip_is_double: false,
        with_extra: false,
        lat0: 0.0,
        calendar: "standard",
    }
}

fn drifting_file(path: &Path, f: &Flavour) {
    let n = f.times.len();
    let mut nc = create(path, Kind::Netcdf4);
    nc.add_dimension("time", n).unwrap();
    nc.add_dimension("lat", 2).unwrap();
    nc.add_attribute("history", f.history).unwrap();
    {
        let mut v = nc.add_variable::<f64>("time", &["time"]).unwrap();
        v.put_attribute("units", f.units).unwrap();
        v.put_attribute("calendar", f.calendar).unwrap();
        v.put_values(&f.times, [..n]).unwrap();
    }
    nc.add_variable::<f32>("lat", &["lat"])
        .unwrap()
        .put_values(&[f.lat0, f.lat0 + 1.0], ..)
        .unwrap();
    {
        let mut v = nc.add_variable::<f32>("t", &["time", "lat"]).unwrap();
        v.set_chunking(&[f.chunk, 2]).unwrap();
        v.set_compression(f.level, true).unwrap();
        v.set_fill_value(f.fill).unwrap();
        let data: Vec<f32> = (0..n * 2).map(|i| if i == 1 { f.fill } else { i as f32 }).collect();
        v.put_values(&data, (0..n, 0..2)).unwrap();
    }
    {
        let mut v = nc.add_variable::<i16>("q", &["time", "lat"]).unwrap();
        v.put_attribute("scale_factor", f.scale).unwrap();
        let data: Vec<i16> = (0..n * 2).map(|i| i as i16).collect();
        v.put_values(&data, (0..n, 0..2)).unwrap();
    }
    if f.precip_is_double {
        nc.add_variable::<f64>("p", &["time"])
            .unwrap()
            .put_values(&vec![1.0f64; n], ..)
            .unwrap();
    } else {
        nc.add_variable::<f32>("p", &["time"])
            .unwrap()
            .put_values(&vec![1.0f32; n], ..)
            .unwrap();
    }
    if f.with_extra {
        nc.add_variable::<f32>("extra", &["time"])
            .unwrap()
            .put_values(&vec![2.0f32; n], ..)
            .unwrap();
    }
}

fn drift_of<'a>(scan: &'a nc2zarr::json::Json, category: &str, location: &str) -> &'a nc2zarr::json::Json {
    scan.get("drift")
        .and_then(|d| d.as_array())
        .unwrap()
        .iter()
        .find(|d| {
            d.get("category").and_then(|c| c.as_str()) == Some(category)
                && d.get("location").and_then(|c| c.as_str()) == Some(location)
        })
        .unwrap_or_else(|| panic!("no {category} drift at {location} in {}", scan.to_pretty()))
}

fn action(d: &nc2zarr::json::Json) -> &str {
    d.get("action").and_then(|a| a.as_str()).unwrap()
}

fn file_counts(d: &nc2zarr::json::Json) -> Vec<u64> {
    d.get("groups")
        .and_then(|g| g.as_array())
        .unwrap()
        .iter()
        .map(|g| g.get("files").and_then(|f| f.as_u64()).unwrap())
        .collect()
}

#[test]
fn scan_reports_what_drifts_between_files_and_what_convert_does() {
    let dir = tempfile::tempdir().unwrap();
    // Four files that convert: chunking, compression, packing, fill values, time units,
    // a descriptive attribute and a gap drift between them.
    let mut flavours: Vec<Flavour> = (0..4)
        .map(|i| base_flavour(vec![3.0 * i as f64, 3.0 * i as f64 + 1.0]))
        .collect();
    flavours[1].chunk = 1;
    flavours[2].level = 5;
    flavours[3].scale = 0.25;
    flavours[3].fill = -1.0;
    flavours[2].units = "hours since 2000-01-01";
    flavours[2].times = vec![6.0 * 24.0, 7.0 * 24.0];
    flavours[1].history = "made by model v2";
    flavours[3].times = vec![30.0, 31.0]; // a gap after the third file
    let files: Vec<String> = flavours
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let p = dir.path().join(format!("d{i}.nc"));
            drifting_file(&p, f);
            s(&p)
        })
        .collect();
    let scan = scan_json(&files);
    let chunking = drift_of(&scan, "chunking", "t");
    assert_eq!(action(chunking), "no effect");
    assert_eq!(file_counts(chunking), vec![3, 1]);
    assert_eq!(action(drift_of(&scan, "compression", "t")), "no effect");
    assert_eq!(action(drift_of(&scan, "packing", "q")), "unpack");
    assert_eq!(action(drift_of(&scan, "fill value", "t")), "unpack");
    assert_eq!(action(drift_of(&scan, "units", "time")), "re-encode");
    let history = drift_of(&scan, "attribute", "/");
    assert_eq!(action(history), "keep first");
    let examples = history.get("groups").unwrap().as_array().unwrap()[1]
        .get("examples")
        .unwrap();
    assert!(examples.to_compact().contains("d1.nc"), "{}", examples.to_compact());
    let gap = drift_of(&scan, "concat axis", "time");
    assert_eq!(action(gap), "no effect");
    assert!(gap.to_compact().contains("gap before this file"));
    // The same archive converts, and xarray reads what open_mfdataset reads.
    convert_and_compare(dir.path(), "drift", &files, "decoded");
    // Text output names the same.
    let r = run(["scan".to_string(), files[0].clone(), files[3].clone()]);
    r.ok();
    assert!(
        r.stdout.contains("q packing scale_factor, add_offset  [unpack]"),
        "{}",
        r.stdout
    );

    // Files that cannot form one dataset: scan still reports every difference and exits 3.
    let bad_dir = dir.path().join("bad");
    std::fs::create_dir_all(&bad_dir).unwrap();
    let mut bad: Vec<Flavour> = (0..3)
        .map(|i| base_flavour(vec![3.0 * i as f64, 3.0 * i as f64 + 1.0]))
        .collect();
    bad[1].precip_is_double = true;
    bad[2].with_extra = true;
    bad[2].lat0 = 5.0;
    bad[1].calendar = "noleap";
    let bad_files: Vec<String> = bad
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let p = bad_dir.join(format!("b{i}.nc"));
            drifting_file(&p, f);
            s(&p)
        })
        .collect();
    let mut args = vec![
        "scan".to_string(),
        "--json".to_string(),
        "--concat-dim".to_string(),
        "time".to_string(),
    ];
    args.extend(bad_files.iter().cloned());
    let r = run(args);
    assert_eq!(r.code, 3, "{}{}", r.stdout, r.stderr);
    let report = r.json();
    assert!(report.get("error").and_then(|e| e.as_str()).is_some());
    // Plain numbers along the concat dimension are promoted, as numpy concatenates them.
    assert_eq!(action(drift_of(&report, "type", "p")), "re-encode");
    assert_eq!(action(drift_of(&report, "variables", "extra")), "refuse");
    assert_eq!(action(drift_of(&report, "coordinate values", "lat")), "refuse");
    assert_eq!(action(drift_of(&report, "calendar", "time")), "refuse");
    assert!(!r.stderr.is_empty(), "the reason goes to stderr");
}

#[test]
fn headers_of_many_files_are_read_by_worker_processes_with_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let months: Vec<Month> = (0..150)
        .map(|m| Month {
            times: vec![1_051_896 + 6 * m],
            units: if m % 2 == 0 {
                "hours since 1900-01-01"
            } else {
                "hours since 1950-01-01"
            },
        })
        .map(|mut m| {
            if m.units.contains("1950") {
                m.times[0] -= 438_288; // the same instant in hours since 1950
            }
            m
        })
        .collect();
    let files = era_set(dir.path(), Kind::Netcdf4, &months, 2, 3);
    let scan_with = |procs: &str, inputs: &[String]| {
        let mut args = vec!["scan".to_string(), "--json".to_string()];
        args.extend(inputs.iter().cloned());
        let out = std::process::Command::new(bin())
            .args(&args)
            .env("NC2ZARR_SCAN_PROCESSES", procs)
            .output()
            .unwrap();
        Run::from_output(&out)
    };
    let dir_arg = vec![s(dir.path())];
    let one = scan_with("1", &dir_arg);
    let two = scan_with("3", &dir_arg);
    one.ok();
    two.ok();
    assert_eq!(one.stdout, two.stdout, "worker processes must not change the result");
    assert_eq!(
        two.json().get("files").and_then(|f| f.as_array()).map(|a| a.len()),
        Some(150)
    );
    // A damaged file read by a worker is reported as it is without workers.
    std::fs::write(&files[120], b"CDF\x01garbage").unwrap();
    let bad = scan_with("3", &dir_arg);
    bad.fails_with(3, &["part_120.nc"]);
    assert_eq!(bad.stderr, scan_with("1", &dir_arg).stderr);
}

/// A file whose `time` and `tas(time, x)` have the given types.
fn typed_file(path: &Path, double_time: bool, wide_tas: bool, t0: i32) {
    let mut f = create(path, Kind::Netcdf4);
    f.add_unlimited_dimension("time").unwrap();
    f.add_dimension("x", 3).unwrap();
    let times = [t0, t0 + 6];
    if double_time {
        let mut v = f.add_variable::<f64>("time", &["time"]).unwrap();
        v.put_attribute("units", "hours since 2000-01-01").unwrap();
        v.put_values(&times.map(f64::from), [..2]).unwrap();
    } else {
        let mut v = f.add_variable::<i32>("time", &["time"]).unwrap();
        v.put_attribute("units", "hours since 2000-01-01").unwrap();
        v.put_values(&times, [..2]).unwrap();
    }
    let values: Vec<i32> = (0..6).map(|i| t0 * 100 + i).collect();
    if wide_tas {
        let mut v = f.add_variable::<i32>("tas", &["time", "x"]).unwrap();
        v.put_values(&values, (0..2, 0..3)).unwrap();
    } else {
        let mut v = f.add_variable::<i16>("tas", &["time", "x"]).unwrap();
        let narrow: Vec<i16> = values.iter().map(|&x| x as i16).collect();
        v.put_values(&narrow, (0..2, 0..3)).unwrap();
    }
}

#[test]
fn types_that_differ_between_files_are_promoted_as_numpy_does() {
    let dir = tempfile::tempdir().unwrap();
    let files = vec![
        dir.path().join("a.nc"),
        dir.path().join("b.nc"),
        dir.path().join("c.nc"),
    ];
    typed_file(&files[0], false, false, 0);
    typed_file(&files[1], true, true, 12);
    typed_file(&files[2], false, false, 24);
    let inputs = strings(&files);
    let out = dir.path().join("typed.zarr");
    let r = convert(&inputs, &out, &[]);
    r.ok();
    assert!(
        r.stdout.contains("variable 'tas': its type differs between files"),
        "{}",
        r.stdout
    );
    assert_eq!(
        read_json(&out, "tas/zarr.json")
            .get("data_type")
            .and_then(|j| j.as_str()),
        Some("int32")
    );
    assert_eq!(
        read_json(&out, "time/zarr.json")
            .get("data_type")
            .and_then(|j| j.as_str()),
        Some("float64")
    );
    verify_source(&out, &inputs).ok();
    convert_and_compare(dir.path(), "typed", &inputs, "both");
    // Appending narrower types to a store converts them; wider ones are refused.
    let wide = dir.path().join("wide.zarr");
    convert(&inputs[1..2], &wide, &[]).ok();
    run(["append".to_string(), inputs[2].clone(), "-o".into(), s(&wide)]).ok();
    verify_source(&wide, &inputs[1..]).ok();
    let narrow = dir.path().join("narrow.zarr");
    convert(&inputs[..1], &narrow, &[]).ok();
    run(["append".to_string(), inputs[1].clone(), "-o".into(), s(&narrow)])
        .fails_with(3, &["is int in the new files but short in the store"]);
    // A static field of another type is refused (types are promoted only along the
    // concat dimension).
    let mask = |path: &Path, float: bool, t: f64| {
        let mut f = create(path, Kind::Classic);
        f.add_unlimited_dimension("time").unwrap();
        f.add_dimension("x", 2).unwrap();
        f.add_variable::<f64>("time", &["time"]).unwrap();
        if float {
            f.add_variable::<f32>("mask", &["x"]).unwrap();
        } else {
            f.add_variable::<i32>("mask", &["x"]).unwrap();
        }
        f.enddef().unwrap();
        f.variable_mut("time").unwrap().put_values(&[t], [..1]).unwrap();
    };
    let (m1, m2) = (dir.path().join("m1.nc"), dir.path().join("m2.nc"));
    mask(&m1, false, 0.0);
    mask(&m2, true, 1.0);
    convert(&[s(&m1), s(&m2)], &dir.path().join("mask.zarr"), &[])
        .fails_with(3, &["variable 'mask' has type int in", "m1.nc but float in", "m2.nc"]);
    // --on-encoding-drift refuse refuses type drift too.
    convert(
        &inputs,
        &dir.path().join("refused.zarr"),
        &["--on-encoding-drift", "refuse"],
    )
    .fails_with(3, &["variable 'time' has type int in", "double in"]);
}

#[test]
fn user_attributes_named_like_reserved_ones_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("attrs.nc");
    {
        let mut nc = create(&f, Kind::Netcdf4);
        nc.add_dimension("x", 2).unwrap();
        nc.add_attribute("_NCPROPERTIES", "a user's value").unwrap();
        nc.add_attribute("_IsNetcdf4_note", "also data").unwrap();
        nc.add_variable::<f32>("v", &["x"])
            .unwrap()
            .put_values(&[1.0f32, 2.0], ..)
            .unwrap();
    }
    for format in ["3", "2"] {
        let out = dir.path().join(format!("attrs-{format}.zarr"));
        convert(&[s(&f)], &out, &["--zarr-format", format]).ok();
        let attrs = if format == "3" {
            read_json(&out, "zarr.json").get("attributes").unwrap().clone()
        } else {
            read_json(&out, ".zattrs")
        };
        assert_eq!(
            attrs.get("_NCPROPERTIES").and_then(|j| j.as_str()),
            Some("a user's value")
        );
        assert_eq!(attrs.get("_IsNetcdf4_note").and_then(|j| j.as_str()), Some("also data"));
    }
}

#[test]
fn sets_whose_bounds_name_their_calendar_or_inherit_it_merge_over_different_steps() {
    let dir = tempfile::tempdir().unwrap();
    for kind in [Kind::Netcdf4, Kind::Classic] {
        let d = dir.path().join(format!("{kind:?}"));
        std::fs::create_dir_all(&d).unwrap();
        let p = |n: &str| s(&d.join(n));
        // 'tas' files leave the bounds' calendar to 'time' (noleap) and end a step early;
        // the 'pr' file names it. Both read as the same instants, so the step 'tas' lacks
        // takes its bounds from 'pr' (was refused as "stored differently").
        let noleap = ("days since 2000-01-01", Some("noleap"));
        time_bounds_file(&d.join("tas_1.nc"), kind, noleap, &[0.0, 1.0], "tas", false);
        time_bounds_file(&d.join("tas_2.nc"), kind, noleap, &[2.0], "tas", false);
        time_bounds_file(&d.join("pr_1.nc"), kind, noleap, &[0.0, 1.0, 2.0, 3.0], "pr", true);
        let inputs = [p("tas_1.nc"), p("tas_2.nc"), p("pr_1.nc")];
        convert_and_compare_outer(&d, "bounds-calendar", &inputs, "both");
        let out = d.join("bounds-calendar-v3.zarr");
        assert_eq!(array_values::<f64>(&out, "time"), [0.0, 1.0, 2.0, 3.0]);
        assert_eq!(
            array_values::<f64>(&out, "time_bnds"),
            [0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0]
        );
        let tas = array_values::<f32>(&out, "tas");
        assert!(tas[..3] == [0.0, 1.0, 2.0] && tas[3].is_nan(), "{tas:?}");
    }
}

/// A file whose `time` is stored as `ty` (`f32`, `f64` or `i32`) in `units`, packed with
/// `scale_factor` when `scale` is given (the raw values are `times / scale`), with an
/// auxiliary time `obs_time(time, x)` in the same units (`_FillValue` -999, one hole per
/// step) and an int `obs_minutes(time, x)` in minutes (`missing_value` -1).
fn time_file(path: &Path, units: &str, times: &[f64], ty: &str, scale: Option<f64>) {
    let mut f = create(path, Kind::Netcdf4);
    f.add_unlimited_dimension("time").unwrap();
    f.add_dimension("x", 2).unwrap();
    let n = times.len();
    let raw: Vec<f64> = times.iter().map(|t| t / scale.unwrap_or(1.0)).collect();
    {
        match ty {
            "f32" => f.add_variable::<f32>("time", &["time"]).unwrap(),
            "f64" => f.add_variable::<f64>("time", &["time"]).unwrap(),
            "i16" => f.add_variable::<i16>("time", &["time"]).unwrap(),
            _ => f.add_variable::<i32>("time", &["time"]).unwrap(),
        };
        let mut t = f.variable_mut("time").unwrap();
        t.put_attribute("units", units).unwrap();
        if let Some(sf) = scale {
            t.put_attribute("scale_factor", sf).unwrap();
        }
        match ty {
            "f32" => t.put_values(&raw.iter().map(|v| *v as f32).collect::<Vec<_>>(), [..n]),
            "f64" => t.put_values(&raw, [..n]),
            "i16" => t.put_values(&raw.iter().map(|v| *v as i16).collect::<Vec<_>>(), [..n]),
            _ => t.put_values(&raw.iter().map(|v| *v as i32).collect::<Vec<_>>(), [..n]),
        }
        .unwrap();
    }
    let hours = units.starts_with("hours");
    let obs: Vec<f64> = times
        .iter()
        .enumerate()
        .flat_map(|(i, t)| {
            if i % 2 == 0 {
                [*t + 1.0, -999.0]
            } else {
                [-999.0, *t + 2.0]
            }
        })
        .collect();
    let mut o = f.add_variable::<f64>("obs_time", &["time", "x"]).unwrap();
    o.put_attribute("units", units).unwrap();
    o.put_attribute("_FillValue", -999.0).unwrap();
    o.put_values(&obs, (0..n, 0..2)).unwrap();
    let since = units.split_once(" since ").unwrap().1;
    let per_unit = if hours { 60.0 } else { 1440.0 };
    let minutes: Vec<i32> = times.iter().flat_map(|t| [(*t * per_unit) as i32 + 5, -1]).collect();
    let mut m = f.add_variable::<i32>("obs_minutes", &["time", "x"]).unwrap();
    m.put_attribute("units", format!("minutes since {since}")).unwrap();
    m.put_attribute("missing_value", -1i32).unwrap();
    m.put_values(&minutes, (0..n, 0..2)).unwrap();
}

/// Decoded times of one variable: `values * scale_factor` in hours since 2000-01-01
/// (`epoch_hours` after it), missing values left out as `None`.
fn stored_hours(store: &Path, var: &str, missing: f64) -> Vec<Option<f64>> {
    let attrs = read_json(store, &format!("{var}/zarr.json"));
    let attrs = attrs.get("attributes").unwrap();
    let units = attrs.get("units").and_then(|u| u.as_str()).unwrap().to_string();
    let scale = attrs.get("scale_factor").and_then(|s| s.as_f64()).unwrap_or(1.0);
    let per_hour = match units.split(' ').next().unwrap() {
        "minutes" => 60.0,
        "days" => 1.0 / 24.0,
        _ => 1.0,
    };
    let since: f64 = match units.split_once(" since ").unwrap().1 {
        "2001-01-01" => 8784.0,
        _ => 0.0,
    };
    let values: Vec<f64> = match read_json(store, &format!("{var}/zarr.json"))
        .get("data_type")
        .and_then(|d| d.as_str())
    {
        Some("int32") => array_values::<i32>(store, var).into_iter().map(f64::from).collect(),
        // Auxiliary int32 times shifted to another epoch, whose values the scan does not
        // read, are widened to int64.
        Some("int64") => array_values::<i64>(store, var).into_iter().map(|v| v as f64).collect(),
        Some("float32") => array_values::<f32>(store, var).into_iter().map(f64::from).collect(),
        _ => array_values::<f64>(store, var),
    };
    values
        .into_iter()
        .map(|v| (v != missing).then(|| v * scale / per_hour + since))
        .collect()
}

#[test]
fn times_re_encoded_between_files_keep_their_packing_missing_values_and_precision() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    // Packed int time (scale_factor 0.5) in hours since 2000 and since 2001.
    time_file(&p("a.nc"), "hours since 2000-01-01", &[1.0, 3.0, 5.0], "i32", Some(0.5));
    time_file(&p("b.nc"), "hours since 2001-01-01", &[1.0, 3.0], "i32", Some(0.5));
    let inputs = strings(&[p("a.nc"), p("b.nc")]);
    let out = p("packed.zarr");
    convert(&inputs, &out, &[]).ok();
    // Before: the 8784 h shift was added to the packed numbers, half a year off.
    assert_eq!(
        stored_hours(&out, "time", f64::NAN),
        [1.0, 3.0, 5.0, 8785.0, 8787.0].map(Some).to_vec()
    );
    // Missing values of auxiliary times stay missing (they became real dates before).
    let obs = stored_hours(&out, "obs_time", -999.0);
    assert_eq!(
        obs,
        vec![
            Some(2.0),
            None,
            None,
            Some(5.0),
            Some(6.0),
            None,
            Some(8786.0),
            None,
            None,
            Some(8789.0)
        ]
    );
    let minutes = stored_hours(&out, "obs_minutes", -1.0);
    assert_eq!(minutes.iter().filter(|m| m.is_none()).count(), 5);
    assert_eq!(minutes[6], Some(8785.0 + 5.0 / 60.0));
    verify_source(&out, &inputs).ok();
    if let Some(py) = python() {
        xarray_compare(&py, &out, &inputs, &["--mode", "decoded"]).unwrap();
    }
    // float32 time moved to another epoch is stored as float64: 515504.03125 h after 2001
    // is 524288.03125 h after 2000, which float32 rounds to 524288.0 (2 minutes off).
    time_file(&p("c.nc"), "hours since 2000-01-01", &[515504.5], "f32", None);
    time_file(&p("d.nc"), "hours since 2001-01-01", &[515504.03125], "f32", None);
    let inputs = strings(&[p("c.nc"), p("d.nc")]);
    let out = p("f32.zarr");
    convert(&inputs, &out, &[]).ok();
    assert_eq!(
        read_json(&out, "time/zarr.json")
            .get("data_type")
            .and_then(|d| d.as_str()),
        Some("float64")
    );
    assert_eq!(
        stored_hours(&out, "time", f64::NAN),
        vec![Some(515504.5), Some(515504.03125 + 8784.0)]
    );
    if let Some(py) = python() {
        xarray_compare(&py, &out, &inputs, &["--mode", "decoded"]).unwrap();
    }
}

#[test]
fn appends_store_re_encoded_times_exactly_or_refuse_them() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    time_file(&p("a.nc"), "days since 2000-01-01", &[0.0, 1.0, 2.0], "i32", None);
    let store = p("s.zarr");
    convert(&[s(&p("a.nc"))], &store, &[]).ok();
    // Hours that are whole days append (they were refused as "not whole numbers").
    time_file(&p("b.nc"), "hours since 2000-01-01", &[72.0, 96.0], "i32", None);
    run(["append", &s(&p("b.nc")), "-o", &s(&store), "--quiet"]).ok();
    assert_eq!(array_values::<i32>(&store, "time"), vec![0, 1, 2, 3, 4]);
    // Fractions of a day into the int32 store: refused, the store unchanged (they were
    // truncated to 5 and 6 before).
    time_file(&p("c.nc"), "days since 2000-01-01", &[5.5, 6.5], "f64", None);
    let before = snapshot(&store);
    run(["append", &s(&p("c.nc")), "-o", &s(&store), "--quiet"]).fails_with(
        3,
        &["c.nc", "'time'", "the value 5.5", "cannot be stored exactly as int"],
    );
    assert!(snapshot(&store) == before, "a refused append changed the store");
    verify_source(&store, &strings(&[p("a.nc"), p("b.nc")])).ok();
    // A float32 store takes no value float32 would round.
    time_file(&p("e.nc"), "hours since 2000-01-01", &[438290.5], "f32", None);
    let f32_store = p("f32.zarr");
    convert(&[s(&p("e.nc"))], &f32_store, &[]).ok();
    time_file(&p("f.nc"), "hours since 2000-01-01", &[438291.015625], "f64", None);
    run(["append", &s(&p("f.nc")), "-o", &s(&f32_store), "--quiet"]).fails_with(
        3,
        &["f.nc", "the value 438291.015625", "cannot be stored exactly as float"],
    );
    verify_source(&f32_store, &[s(&p("e.nc"))]).ok();
    // A fraction below any rounding error is still a fraction (5.0000005 days is 43 ms
    // after day 5): refused, not rounded.
    time_file(&p("g.nc"), "days since 2000-01-01", &[5.0000005], "f64", None);
    run(["append", &s(&p("g.nc")), "-o", &s(&store), "--quiet"]).fails_with(3, &["the value 5.0000005"]);
    // An auxiliary time the store cannot hold (seconds that are no whole minutes) is
    // refused before anything is written (it failed mid-append, leaving it interrupted).
    time_file(&p("k.nc"), "days since 2000-01-01", &[5.0, 6.0], "i32", None);
    netcdf::append(p("k.nc"))
        .unwrap()
        .variable_mut("obs_minutes")
        .unwrap()
        .put_attribute("units", "seconds since 2000-01-01")
        .unwrap();
    let before = snapshot(&store);
    run(["append", &s(&p("k.nc")), "-o", &s(&store), "--quiet"])
        .fails_with(3, &["'obs_minutes'", "cannot be stored exactly as int"]);
    assert!(snapshot(&store) == before, "the refused append wrote to the store");
    // Other units and other coding at once (a missing_value the store's unpacked
    // obs_time lacks): refused; the new values were unpacked without the re-encoding.
    time_file(&p("h.nc"), "hours since 2000-01-02", &[48.0, 72.0], "i32", None);
    netcdf::append(p("h.nc"))
        .unwrap()
        .variable_mut("obs_time")
        .unwrap()
        .put_attribute("missing_value", -998.0)
        .unwrap();
    run(["append", &s(&p("h.nc")), "-o", &s(&store), "--quiet"])
        .fails_with(3, &["'obs_time'", "does not unpack and re-encode times at once"]);
    verify_source(&store, &strings(&[p("a.nc"), p("b.nc")])).ok();
}

#[test]
fn small_integer_times_shifted_to_an_earlier_epoch_are_widened() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    // int16 days since 2000 as days since 1900 overflow int16 (36524 + 10 > 32767).
    time_file(&p("a.nc"), "days since 1900-01-01", &[100.0, 101.0], "i16", None);
    time_file(&p("b.nc"), "days since 2000-01-01", &[10.0, 11.0], "i16", None);
    let inputs = strings(&[p("a.nc"), p("b.nc")]);
    let out = p("s.zarr");
    convert(&inputs, &out, &[]).ok();
    assert_eq!(array_values::<i32>(&out, "time"), vec![100, 101, 36534, 36535]);
    verify_source(&out, &inputs).ok();
}

#[test]
fn sets_of_files_that_split_variables_merge_when_one_re_encodes_float32_time() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let file = |path: &Path, var: &str, units: &str, times: &[f32]| {
        let mut f = create(path, Kind::Netcdf4);
        f.add_unlimited_dimension("time").unwrap();
        f.add_variable::<f32>("time", &["time"])
            .unwrap()
            .put_attribute("units", units)
            .unwrap();
        f.add_variable::<f32>(var, &["time"]).unwrap();
        let n = times.len();
        f.variable_mut("time").unwrap().put_values(times, [..n]).unwrap();
        let v: Vec<f32> = (0..n).map(|i| i as f32).collect();
        f.variable_mut(var).unwrap().put_values(&v, [..n]).unwrap();
    };
    // tas in one file per year (its time re-encoded, so float64); pr in one file.
    file(&p("tas_2000.nc"), "tas", "hours since 2000-01-01", &[0.0, 1.0]);
    file(&p("tas_2001.nc"), "tas", "hours since 2001-01-01", &[0.0, 1.0]);
    file(&p("pr.nc"), "pr", "hours since 2000-01-01", &[0.0, 1.0, 8784.0, 8785.0]);
    let inputs = strings(&[p("tas_2000.nc"), p("tas_2001.nc"), p("pr.nc")]);
    let out = p("s.zarr");
    // Refused before: "variable 'time' is double in the files of … but float in those of …".
    convert(&inputs, &out, &[]).ok();
    assert_eq!(array_values::<f64>(&out, "time"), vec![0.0, 1.0, 8784.0, 8785.0]);
    verify_source(&out, &inputs).ok();
    if let Some(py) = python() {
        xarray_compare(&py, &out, &inputs, &["--mode", "decoded"]).unwrap();
    }
}

#[test]
fn a_file_whose_steps_are_out_of_order_is_refused_with_its_own_values() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    time_file(&p("a.nc"), "days since 2000-01-01", &[2.0, 0.0, 1.0], "i32", None);
    time_file(&p("b.nc"), "days since 2000-01-01", &[5.0, 6.0], "i32", None);
    // Before: "values 946857600 then 946684800", seconds since 1970 the file never held.
    run(["scan", &s(&p("b.nc")), &s(&p("a.nc"))]).fails_with(
        3,
        &[
            "a.nc: coordinate 'time' is not strictly monotonic: it goes down after going up",
            "positions 0 and 1: 2 then 0 days since 2000-01-01",
        ],
    );
    time_file(&p("c.nc"), "hours since 2000-01-01", &[1.0, 1.0], "f64", None);
    run(["scan", &s(&p("c.nc")), &s(&p("b.nc"))]).fails_with(
        3,
        &[
            "c.nc: coordinate 'time' is not strictly monotonic: it repeats a value",
            "1 then 1 hours",
        ],
    );
}

/// A GPM IMERG-like half-hourly file: everything in group `/Grid` (time, lat, lon,
/// precipitation), its `time_bnds` using the root's `nv`, and a root attribute. The
/// root also holds a chunked `precipitation` of the same shape, with other values.
fn grid_group_file(path: &Path, step: usize) {
    let mut f = create(path, Kind::Netcdf4);
    f.add_attribute("FileHeader", "AlgorithmID=3IMERGHH").unwrap();
    f.add_dimension("nv", 2).unwrap();
    for (d, n) in [("one", 1), ("two", 2), ("three", 3)] {
        f.add_dimension(d, n).unwrap();
    }
    {
        let mut decoy = f
            .add_variable::<f32>("precipitation", &["one", "two", "three"])
            .unwrap();
        decoy.set_chunking(&[1, 2, 3]).unwrap();
        decoy.set_compression(1, true).unwrap();
        let values: Vec<f32> = (0..6).map(|i| -1000.0 - i as f32).collect();
        decoy.put_values(&values, ..).unwrap();
    }
    let mut g = f.add_group("Grid").unwrap();
    g.add_attribute("GridHeader", "LatitudeResolution=0.1").unwrap();
    g.add_unlimited_dimension("time").unwrap();
    g.add_dimension("lat", 3).unwrap();
    g.add_dimension("lon", 2).unwrap();
    let t0 = step as f64 * 1800.0;
    let mut t = g.add_variable::<f64>("time", &["time"]).unwrap();
    t.put_attribute("units", "seconds since 1970-01-01 00:00:00 UTC")
        .unwrap();
    t.put_attribute("bounds", "time_bnds").unwrap();
    t.put_values(&[t0], [..1]).unwrap();
    g.add_variable::<f64>("time_bnds", &["time", "nv"])
        .unwrap()
        .put_values(&[t0, t0 + 1800.0], (..1, ..2))
        .unwrap();
    g.add_variable::<f32>("lat", &["lat"])
        .unwrap()
        .put_values(&[-0.05f32, 0.05, 0.15], ..)
        .unwrap();
    g.add_variable::<f32>("lon", &["lon"])
        .unwrap()
        .put_values(&[10.05f32, 10.15], ..)
        .unwrap();
    let mut p = g.add_variable::<f32>("precipitation", &["time", "lon", "lat"]).unwrap();
    p.set_chunking(&[1, 2, 3]).unwrap();
    p.set_compression(1, true).unwrap();
    p.put_attribute("units", "mm/hr").unwrap();
    let rain: Vec<f32> = (0..6).map(|i| step as f32 + i as f32 * 0.25).collect();
    p.put_values(&rain, (..1, ..2, ..3)).unwrap();
}

#[test]
fn files_whose_time_is_in_a_group_convert_with_group_as_xarray_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (0..3).map(|i| dir.path().join(format!("3B-HHR.{i}.nc"))).collect();
    // Named in time order but given out of order: ordered by their time values.
    for (i, path) in files.iter().enumerate() {
        grid_group_file(path, i);
    }
    let inputs = strings(&[files[2].clone(), files[0].clone(), files[1].clone()]);
    // Before: "the files have no unlimited dimension", though each has one, in /Grid.
    let mut a = vec!["scan".to_string()];
    a.extend(inputs.iter().cloned());
    run(&a).fails_with(3, &["'time' in group /Grid", "pass --group GROUP"]);
    a.extend(["--group".to_string(), "/Missing".to_string()]);
    run(&a).fails_with(3, &["has no group '/Missing' (--group); its groups: /Grid"]);
    for format in ["3", "2"] {
        let out = dir.path().join(format!("imerg-v{format}.zarr"));
        convert(&inputs, &out, &["--group", "Grid", "--zarr-format", format]).ok();
        // Its time_bnds use the root's 'nv', which the group sees.
        let tb = if format == "3" {
            read_json(&out, "time_bnds/zarr.json")
                .get("dimension_names")
                .map(|j| j.to_compact())
        } else {
            read_json(&out, "time_bnds/.zattrs")
                .get("_ARRAY_DIMENSIONS")
                .map(|j| j.to_compact())
        };
        assert_eq!(tb.as_deref(), Some(r#"["time", "nv"]"#));
        let time: Vec<f64> = array_values(&out, "time");
        assert_eq!(time, [0.0, 1800.0, 3600.0]);
        // verify reads the sources from the group the store records (or the one given).
        verify_source(&out, &inputs).ok();
        let mut given = vec![
            "verify".to_string(),
            s(&out),
            "--group".into(),
            "/Grid".into(),
            "--source".into(),
        ];
        given.extend(inputs.iter().cloned());
        run(&given).ok();
        given[3] = "Missing".into();
        run(&given).fails_with(3, &["has no group '/Missing' (--group)"]);
        if let Some(py) = python() {
            xarray_compare(&py, &out, &inputs, &["--source-group", "Grid"]).unwrap();
        }
    }
    // A cron append reads new files from the same group, and refuses another.
    let out = dir.path().join("grown.zarr");
    convert(&strings(&files[..2]), &out, &["--group", "/Grid/"]).ok();
    let next = dir.path().join("3B-HHR.next.nc");
    grid_group_file(&next, 2);
    run(["append", &s(&next), "-o", &s(&out), "--group", "Other"])
        .fails_with(2, &["was made from the inputs' group 'Grid', not their group 'Other'"]);
    run(["append", &s(&next), "-o", &s(&out), "--quiet"]).ok();
    let mut all = strings(&files[..2]);
    all.push(s(&next));
    verify_source(&out, &all).ok();
    let rain: Vec<f32> = array_values(&out, "precipitation");
    assert_eq!(rain[12..], [2.0, 2.25, 2.5, 2.75, 3.0, 3.25]);
    // Appending the same file again is recognised by its coordinate in the group.
    let r = run(["append", &s(&next), "-o", &s(&out), "--json"]);
    r.ok();
    assert_eq!(r.json().get("files_already_present").and_then(|j| j.as_u64()), Some(1));
}

#[test]
fn verify_decodes_re_encoded_times_with_each_files_own_units() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    time_file(&p("a.nc"), "hours since 2000-01-01", &[1.0, 3.0], "i32", Some(0.5));
    time_file(&p("b.nc"), "hours since 2001-01-01", &[1.0, 3.0], "i32", Some(0.5));
    let inputs = strings(&[p("a.nc"), p("b.nc")]);
    for format in ["3", "2"] {
        let out = p(&format!("s{format}.zarr"));
        convert(&inputs, &out, &["--zarr-format", format]).ok();
        verify_source(&out, &inputs).ok();
        // A store whose time units disagree with its numbers, as a re-encoding bug
        // leaves it: the numbers still equal what the conversion's own re-encoding gives,
        // so only decoding each side with its own units tells (verify passed before).
        shift_time_units(&out);
        let r = verify_source(&out, &inputs);
        r.fails_with(5, &[]);
        for needle in ["'time' element 0", "in the store but", "hours since 2000-01-01"] {
            assert!(r.stdout.contains(needle), "{needle:?} not in:\n{}", r.stdout);
        }
    }
}

/// Rewrites every "hours since 2000-01-01" in the store's documents to a day later,
/// leaving the numbers: time units that disagree with the stored values.
fn shift_time_units(store: &Path) {
    for entry in walk(store) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        if text.contains("hours since 2000-01-01") {
            std::fs::write(&entry, text.replace("hours since 2000-01-01", "hours since 2000-01-02")).unwrap();
        }
    }
}

/// Every file under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let path = e.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn nul_bytes_inside_char_attributes_are_dropped_as_netcdf4_python_drops_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nul.nc");
    {
        let mut f = create(&path, Kind::Classic);
        f.add_attribute("title", "Run 1\0   ").unwrap();
        f.add_attribute("padded", "tail\0\0").unwrap();
        f.add_dimension("x", 2).unwrap();
        f.add_variable::<f32>("v", &["x"])
            .unwrap()
            .put_attribute("comment", "a\0b")
            .unwrap();
        f.enddef().unwrap();
        f.variable_mut("v").unwrap().put_values(&[1.0f32, 2.0], ..).unwrap();
    }
    let out = dir.path().join("nul.zarr");
    convert(&[s(&path)], &out, &[]).ok();
    let root = read_json(&out, "zarr.json");
    let attrs = root.get("attributes").unwrap();
    // Kept with the NUL before ("Run 1\u0000   "): xarray then differed from the source.
    assert_eq!(attrs.get("title").and_then(|t| t.as_str()), Some("Run 1   "));
    assert_eq!(attrs.get("padded").and_then(|t| t.as_str()), Some("tail"));
    let v = read_json(&out, "v/zarr.json");
    assert_eq!(
        v.get("attributes")
            .and_then(|a| a.get("comment"))
            .and_then(|t| t.as_str()),
        Some("ab")
    );
    if let Some(py) = python() {
        xarray_compare(&py, &out, &[s(&path)], &[]).unwrap();
    }
}

#[test]
fn time_units_that_cannot_be_converted_and_differ_are_refused_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    time_file(&p("a.nc"), "years since 2000-01-01", &[0.0, 1.0], "f64", None);
    time_file(&p("b.nc"), "years since 2002-01-01", &[0.0, 1.0], "f64", None);
    // Before: "duplicate 'time' values: … both cover the same coordinate range".
    run(["scan", &s(&p("a.nc")), &s(&p("b.nc"))]).fails_with(
        3,
        &[
            "coordinate 'time' has units \"years since 2000-01-01\"",
            "\"years since 2002-01-01\"",
            "cannot convert between them",
        ],
    );
}

#[test]
fn packed_time_coordinates_order_files_by_their_decoded_values() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    // Raw values 0 and 16000 (scale 0.5) are hours 0 and 8000 of 2000: before 2001.
    time_file(&p("a.nc"), "hours since 2000-01-01", &[0.0, 8000.0], "i32", Some(0.5));
    time_file(&p("b.nc"), "hours since 2001-01-01", &[0.0, 1.0], "i32", Some(0.5));
    let inputs = strings(&[p("b.nc"), p("a.nc")]);
    let out = p("s.zarr");
    // Refused before as "overlapping": the raw 16000 was taken for hour 16000.
    convert(&inputs, &out, &[]).ok();
    assert_eq!(
        stored_hours(&out, "time", f64::NAN),
        [0.0, 8000.0, 8784.0, 8785.0].map(Some).to_vec()
    );
    verify_source(&out, &inputs).ok();
}

#[test]
fn a_long_coordinate_out_of_order_is_reported_with_its_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.nc");
    // More steps than scan keeps with the header (2^20): the message read them again.
    let n = (1usize << 20) + 2;
    let mut times: Vec<f64> = (0..n).map(|i| i as f64).collect();
    times.swap(n - 2, n - 1);
    let write = |path: &Path, units: &str, times: &[f64]| {
        let mut f = create(path, Kind::Netcdf4);
        f.add_unlimited_dimension("time").unwrap();
        let mut t = f.add_variable::<f64>("time", &["time"]).unwrap();
        t.put_attribute("units", units).unwrap();
        t.put_values(times, [..times.len()]).unwrap();
    };
    write(&path, "seconds since 2000-01-01", &times);
    let other = dir.path().join("b.nc");
    write(&other, "seconds since 2001-01-01", &[0.0, 1.0]);
    // Before: "(positions 1048576 and 1048577: ? then ? seconds since 2000-01-01)".
    run(["scan", &s(&path), &s(&other)]).fails_with(
        3,
        &["goes down after going up (positions 1048576 and 1048577: 1048577 then 1048576 seconds since 2000-01-01)"],
    );
}

/// A station time series for one year, as CF discrete-sampling files are written one
/// per period: `station_name(station, name_strlen)` with `strlen` of the file's own
/// choosing, a char `qc_flag(time, flag_len)` along time, and `temp(time, station)`.
fn station_year_file(path: &Path, kind: Kind, day0: f64, names: &[&str], strlen: usize, flags: &[&str]) {
    station_var_file(path, kind, "temp", day0, names, strlen, flags);
}

/// [`station_year_file`] with `var` in place of `temp`.
fn station_var_file(path: &Path, kind: Kind, var: &str, day0: f64, names: &[&str], strlen: usize, flags: &[&str]) {
    let mut f = create(path, kind);
    let flag_len = flags.iter().map(|w| w.len()).max().unwrap_or(1).max(2);
    f.add_dimension("station", names.len()).unwrap();
    f.add_dimension("name_strlen", strlen).unwrap();
    f.add_dimension("time", flags.len()).unwrap();
    f.add_dimension("flag_len", flag_len).unwrap();
    let text = |words: &[&str], len: usize| {
        let mut data = vec![NcChar(0); words.len() * len];
        for (i, w) in words.iter().enumerate() {
            for (j, b) in w.bytes().enumerate() {
                data[i * len + j] = NcChar(b);
            }
        }
        data
    };
    // Classic files take every definition before any data.
    f.add_variable::<NcChar>("station_name", &["station", "name_strlen"])
        .unwrap()
        .put_attribute("cf_role", "timeseries_id")
        .unwrap();
    f.add_variable::<NcChar>("qc_flag", &["time", "flag_len"]).unwrap();
    f.add_variable::<f64>("time", &["time"])
        .unwrap()
        .put_attribute("units", "days since 2000-01-01")
        .unwrap();
    f.add_variable::<f32>(var, &["time", "station"])
        .unwrap()
        .put_attribute("coordinates", "station_name")
        .unwrap();
    f.enddef().unwrap();
    let put = |f: &mut netcdf::FileMut, name: &str, data: &[NcChar]| {
        f.variable_mut(name).unwrap().put_values(data, ..).unwrap();
    };
    put(&mut f, "station_name", &text(names, strlen));
    put(&mut f, "qc_flag", &text(flags, flag_len));
    let days: Vec<f64> = (0..flags.len()).map(|i| day0 + i as f64).collect();
    f.variable_mut("time").unwrap().put_values(&days, ..).unwrap();
    let temps: Vec<f32> = (0..flags.len() * names.len())
        .map(|i| day0 as f32 + i as f32 * 0.5)
        .collect();
    f.variable_mut(var).unwrap().put_values(&temps, ..).unwrap();
}

#[test]
fn char_arrays_whose_string_length_differs_between_files_are_padded_as_xarray_pads_them() {
    let dir = tempfile::tempdir().unwrap();
    for kind in [Kind::Classic, Kind::Netcdf4] {
        let d = dir.path().join(format!("{kind:?}"));
        std::fs::create_dir_all(&d).unwrap();
        let files = [d.join("y2000.nc"), d.join("y2001.nc"), d.join("y2002.nc")];
        let names = ["ABERDEEN", "OBAN"];
        station_year_file(&files[0], kind, 0.0, &names, 8, &["ok", "ok", "bad"]);
        station_year_file(&files[1], kind, 3.0, &names, 12, &["ok", "suspect"]);
        station_year_file(&files[2], kind, 5.0, &names, 10, &["ok", "ok"]);
        let inputs = strings(&files);
        let inv = scan_json(&inputs);
        let text = notes(&inv);
        assert!(
            text.contains("dimension 'name_strlen' gives string lengths from 8 to 12 between files"),
            "{text}"
        );
        assert!(
            text.contains("dimension 'flag_len' gives string lengths from 2 to 7"),
            "{text}"
        );
        let report = run(["scan".to_string()].into_iter().chain(inputs.iter().cloned()));
        report.ok();
        assert!(report.stdout.contains("pad"), "{}", report.stdout);
        // xarray cannot open the raw files together (their 'name_strlen' differ), only
        // decoded: char arrays become strings, concatenated at the widest along time
        // ('qc_flag'), or the first file's where equal in every file ('station_name').
        convert_and_compare(&d, "stations", &inputs, "decoded");
        let out = d.join("stations-v3.zarr");
        let shape = |key: &str| read_json(&out, key).get("shape").map(|j| j.to_compact());
        assert_eq!(shape("station_name/zarr.json").as_deref(), Some("[2, 8]"));
        assert_eq!(shape("qc_flag/zarr.json").as_deref(), Some("[7, 7]"));
        // The store's 'name_strlen' is its arrays' widest.
        let dims = inv
            .get("root")
            .and_then(|r| r.get("dimensions"))
            .map(|d| d.to_compact())
            .unwrap_or_default();
        assert!(dims.contains(r#""name": "name_strlen", "length": 8"#), "{dims}");
        // Names that change between files are stored along time, each padded.
        let renamed = d.join("renamed.nc");
        station_year_file(&renamed, kind, 7.0, &["ABERDEEN", "OBAN-2"], 9, &["ok"]);
        let mut changed = inputs.clone();
        changed.push(s(&renamed));
        for format in ["3", "2"] {
            let out = d.join(format!("renamed-v{format}.zarr"));
            convert(&changed, &out, &["--zarr-format", format]).ok();
            verify_source(&out, &changed).ok();
            let extra = ["--mode", "decoded", "--vars", "different"];
            if let Some(py) = python()
                && let Err(text) = xarray_compare(&py, &out, &changed, &extra)
            {
                panic!("xarray sees a difference ({kind:?}, v{format}):\n{text}");
            }
        }
    }
}

#[test]
fn appends_pad_shorter_strings_and_refuse_longer_ones() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let names = ["ABERDEEN", "OBAN"];
    let files = [d.join("a.nc"), d.join("b.nc"), d.join("c.nc")];
    station_year_file(&files[0], Kind::Netcdf4, 0.0, &names, 10, &["ok", "suspect"]);
    station_year_file(&files[1], Kind::Netcdf4, 2.0, &names, 8, &["ok"]);
    station_year_file(&files[2], Kind::Netcdf4, 3.0, &names, 10, &["ok", "questionable"]);
    let out = d.join("store.zarr");
    convert(&[s(&files[0])], &out, &[]).ok();
    let r = run(["append".to_string(), s(&files[1]), "-o".into(), s(&out)]);
    r.ok();
    assert!(
        r.stdout.contains("padded with NUL bytes to the store's 10"),
        "{}",
        r.stdout
    );
    let two = [s(&files[0]), s(&files[1])];
    verify_source(&out, &two).ok();
    if let Some(py) = python() {
        xarray_compare(&py, &out, &two, &["--mode", "decoded"]).unwrap();
    }
    let before = snapshot(&out);
    run(["append".to_string(), s(&files[2]), "-o".into(), s(&out)]).fails_with(
        3,
        &[
            "variable 'qc_flag' holds strings longer than the store's 7 characters ('flag_len')",
            "a string there is longer than 7 characters",
        ],
    );
    assert!(before == snapshot(&out), "a refused append changed the store");
    // Wider declared strings holding the same names (and short flags) append: what lies
    // beyond the store's width is NUL padding.
    let wide = d.join("wide.nc");
    station_year_file(&wide, Kind::Netcdf4, 3.0, &names, 16, &["ok", "bad"]);
    run(["append".to_string(), s(&wide), "-o".into(), s(&out)]).ok();
    let three = [s(&files[0]), s(&files[1]), s(&wide)];
    verify_source(&out, &three).ok();
    if let Some(py) = python() {
        xarray_compare(&py, &out, &three, &["--mode", "decoded"]).unwrap();
    }
}

/// An Argo-like profile file: `N_PROF` profiles (no coordinate variable), an unlimited
/// `N_HISTORY` without a record, `PRES(N_PROF, N_LEVELS)` and `JULD(N_PROF)`.
fn argo_file(path: &Path, day0: f64) {
    let mut f = create(path, Kind::Classic);
    f.add_dimension("N_PROF", 2).unwrap();
    f.add_dimension("N_LEVELS", 4).unwrap();
    f.add_dimension("STRING4", 4).unwrap();
    f.add_unlimited_dimension("N_HISTORY").unwrap();
    f.add_variable::<f32>("PRES", &["N_PROF", "N_LEVELS"]).unwrap();
    f.add_variable::<f64>("JULD", &["N_PROF"])
        .unwrap()
        .put_attribute("units", "days since 1950-01-01 00:00:00 UTC")
        .unwrap();
    f.add_variable::<NcChar>("HISTORY_INSTITUTION", &["N_HISTORY", "N_PROF", "STRING4"])
        .unwrap();
    f.enddef().unwrap();
    let pres: Vec<f32> = (0..8).map(|i| day0 as f32 + i as f32 * 10.0).collect();
    f.variable_mut("PRES").unwrap().put_values(&pres, ..).unwrap();
    f.variable_mut("JULD")
        .unwrap()
        .put_values(&[day0, day0 + 0.5], ..)
        .unwrap();
}

#[test]
fn an_unlimited_dimension_without_steps_is_not_taken_for_the_concat_dimension() {
    let dir = tempfile::tempdir().unwrap();
    let files = [dir.path().join("R001.nc"), dir.path().join("R002.nc")];
    argo_file(&files[0], 25000.0);
    argo_file(&files[1], 25010.0);
    let inputs = strings(&files);
    // It was chosen, and every profile variable stored along it with no step: all the
    // data lost, with exit 0 (xarray.open_mfdataset refuses these files).
    convert(&inputs, &dir.path().join("lost.zarr"), &[]).fails_with(
        3,
        &[
            "their unlimited dimension 'N_HISTORY' has no steps in any file",
            "--concat-dim",
        ],
    );
    let out = dir.path().join("profiles.zarr");
    convert(&inputs, &out, &["--concat-dim", "N_PROF"]).ok();
    assert_eq!(
        read_json(&out, "PRES/zarr.json")
            .get("shape")
            .map(|j| j.to_compact())
            .as_deref(),
        Some("[4, 4]")
    );
    let pres: Vec<f32> = array_values(&out, "PRES");
    assert_eq!(pres[8..12], [25010.0, 25020.0, 25030.0, 25040.0]);
    verify_source(&out, &inputs).ok();
    if let Some(py) = python() {
        xarray_compare(&py, &out, &inputs, &["--concat-dim", "N_PROF"]).unwrap();
    }
    // One such file alone does not grow along its empty N_HISTORY either: a store made
    // from it takes the next file along the dimension appended along.
    let grown = dir.path().join("grown.zarr");
    convert(&inputs[..1], &grown, &[]).ok();
    run([
        "append",
        &inputs[1],
        "-o",
        &s(&grown),
        "--concat-dim",
        "N_PROF",
        "--quiet",
    ])
    .ok();
    assert_eq!(array_values::<f32>(&grown, "PRES"), pres);
    verify_source(&grown, &inputs).ok();
}

/// A monthly file whose `time` links bounds `bounds` (or none).
fn monthly_file(path: &Path, months: &[f64], bounds: Option<&str>) {
    let mut f = create(path, Kind::Netcdf4);
    f.add_unlimited_dimension("time").unwrap();
    f.add_dimension("bnds", 2).unwrap();
    {
        let mut t = f.add_variable::<f64>("time", &["time"]).unwrap();
        t.put_attribute("units", "days since 1979-1-1 00:00:00").unwrap();
        t.put_attribute("calendar", "standard").unwrap();
        if let Some(b) = bounds {
            t.put_attribute("bounds", b).unwrap();
        }
    }
    if let Some(b) = bounds {
        f.add_variable::<f64>(b, &["time", "bnds"]).unwrap();
    }
    f.add_variable::<f32>("t2m", &["time"]).unwrap();
    let days: Vec<f64> = months.iter().map(|m| m * 30.0 + 15.0).collect();
    f.variable_mut("time").unwrap().put_values(&days, ..).unwrap();
    if let Some(b) = bounds {
        let edges: Vec<f64> = months.iter().flat_map(|m| [m * 30.0, m * 30.0 + 30.0]).collect();
        f.variable_mut(b).unwrap().put_values(&edges, ..).unwrap();
    }
    let t2m: Vec<f32> = months.iter().map(|m| 280.0 + *m as f32).collect();
    f.variable_mut("t2m").unwrap().put_values(&t2m, ..).unwrap();
}

#[test]
fn time_bounds_only_later_files_link_keep_their_time_units() {
    let dir = tempfile::tempdir().unwrap();
    // CDO/NCO output: the first file has no bounds; later ones name them another way.
    for (name, links) in [
        ("later", [None, Some("time_bnds"), Some("time_bnds")]),
        ("renamed", [Some("time_bnds"), Some("time_bnds"), Some("time_bounds")]),
    ] {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        let files: Vec<PathBuf> = (0..3).map(|i| d.join(format!("m{i}.nc"))).collect();
        for (i, (f, link)) in files.iter().zip(links).enumerate() {
            let m = 2.0 * i as f64;
            monthly_file(f, &[m, m + 1.0], link);
        }
        let inputs = strings(&files);
        let late = if name == "later" { "time_bnds" } else { "time_bounds" };
        let text = notes(&scan_json(&inputs));
        assert!(
            text.contains(&format!("variable '{late}': bounds of 'time' only in some files")),
            "{text}"
        );
        for format in ["3", "2"] {
            let out = d.join(format!("v{format}.zarr"));
            convert(&inputs, &out, &["--zarr-format", format]).ok();
            let attrs = if format == "3" {
                read_json(&out, &format!("{late}/zarr.json"))
                    .get("attributes")
                    .cloned()
                    .unwrap()
            } else {
                read_json(&out, &format!("{late}/.zattrs"))
            };
            // Stored without units, xarray read them as plain numbers of days.
            assert_eq!(
                attrs.get("units").and_then(|j| j.as_str()),
                Some("days since 1979-1-1 00:00:00")
            );
            assert_eq!(attrs.get("calendar").and_then(|j| j.as_str()), Some("standard"));
            verify_source(&out, &inputs).ok();
            if let Some(py) = python() {
                xarray_compare(&py, &out, &inputs, &["--mode", "decoded", "--join", "outer"]).unwrap();
            }
        }
    }
}

#[test]
fn string_fill_values_and_least_significant_digit_read_in_xarray_as_from_netcdf() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("obs.nc");
    {
        let mut nc = create(&f, Kind::Netcdf4);
        nc.add_dimension("x", 3).unwrap();
        let mut v = nc.add_string_variable("site", &["x"]).unwrap();
        v.put_attribute("_FillValue", vec!["N/A".to_string()]).unwrap();
        for (i, n) in ["Mace Head", "N/A", "Zeppelin"].iter().enumerate() {
            v.put_string(n, [i]).unwrap();
        }
        let mut t = nc.add_variable::<f32>("t", &["x"]).unwrap();
        t.put_attribute("least_significant_digit", 2i32).unwrap();
        t.put_values(&[1.25f32, 2.5, 3.75], ..).unwrap();
    }
    let v3 = dir.path().join("v3.zarr");
    let r = run(["convert".to_string(), s(&f), "-o".into(), s(&v3)]);
    r.ok();
    for needle in [
        "xarray cannot read the _FillValue attribute of a string array from Zarr v3 (it fails to open the store)",
        "least_significant_digit = 2 is not stored as an attribute",
    ] {
        assert!(r.stdout.contains(needle), "{}", r.stdout);
    }
    verify_source(&v3, &[s(&f)]).ok();
    let v2 = dir.path().join("v2.zarr");
    convert(&[s(&f)], &v2, &["--zarr-format", "2"]).ok();
    assert!(read_json(&v2, "t/.zattrs").get("least_significant_digit").is_none());
    let Some(py) = python() else { return };
    xarray_compare(&py, &v2, &[s(&f)], &["--mode", "both"]).unwrap();
    // xarray 2026.9 failed to open the whole v3 store ("Failed to decode fill_value").
    let script = format!(
        "import xarray as xr\nds = xr.open_zarr({:?}).load()\nprint(list(ds.site.values), dict(ds.t.attrs))\n",
        s(&v3)
    );
    let o = std::process::Command::new(py).arg("-c").arg(script).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("['Mace Head', 'N/A', 'Zeppelin'] {}"), "{out}");
}

/// Daily files on a `step`-degree grid whose `lat` is double or float.
fn lat_typed_file(path: &Path, double: bool, step: f64, day: f64) {
    let mut f = create(path, Kind::Netcdf4);
    f.add_unlimited_dimension("time").unwrap();
    f.add_dimension("lat", 4).unwrap();
    f.add_variable::<f64>("time", &["time"])
        .unwrap()
        .put_attribute("units", "days since 2000-01-01")
        .unwrap();
    let lat: Vec<f64> = (0..4).map(|i| -45.0 + step * i as f64).collect();
    if double {
        f.add_variable::<f64>("lat", &["lat"])
            .unwrap()
            .put_values(&lat, ..)
            .unwrap();
    } else {
        let lat: Vec<f32> = lat.iter().map(|&x| x as f32).collect();
        f.add_variable::<f32>("lat", &["lat"])
            .unwrap()
            .put_values(&lat, ..)
            .unwrap();
    }
    f.variable_mut("time").unwrap().put_values(&[day], ..).unwrap();
    let sst: Vec<f32> = (0..4).map(|i| day as f32 + i as f32).collect();
    f.add_variable::<f32>("sst", &["time", "lat"])
        .unwrap()
        .put_values(&sst, ..)
        .unwrap();
}

#[test]
fn a_coordinate_of_another_float_type_in_some_files_keeps_the_first_files_type() {
    let dir = tempfile::tempdir().unwrap();
    for (name, first_double) in [("float-first", false), ("double-first", true)] {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        let files: Vec<PathBuf> = (0..3).map(|i| d.join(format!("sst_{i}.nc"))).collect();
        for (i, f) in files.iter().enumerate() {
            lat_typed_file(f, (i == 0) == first_double, 0.25, i as f64);
        }
        let inputs = strings(&files);
        let inv = scan_json(&inputs);
        let (kept, other) = if first_double {
            ("double", "float")
        } else {
            ("float", "double")
        };
        let text = notes(&inv);
        assert!(
            text.contains(&format!("coordinate 'lat': its type differs between files ({kept} in")),
            "{text}"
        );
        assert!(
            text.contains(&format!("the first file's type ({kept}) is kept")),
            "{text}"
        );
        assert!(text.contains(&format!("{other} in")), "{text}");
        convert_and_compare(&d, name, &inputs, "both");
        let dtype = read_json(&d.join(format!("{name}-v3.zarr")), "lat/zarr.json")
            .get("data_type")
            .and_then(|j| j.as_str())
            .map(str::to_string);
        assert_eq!(dtype.as_deref(), Some(if first_double { "float64" } else { "float32" }));
        // A store made from the first file takes the others by append, as one conversion.
        let grown = d.join("grown.zarr");
        convert(&inputs[..1], &grown, &[]).ok();
        run(["append", &inputs[1], &inputs[2], "-o", &s(&grown), "--quiet"]).ok();
        verify_source(&grown, &inputs).ok();
        let sst = |store: &Path| array_values::<f32>(store, "sst");
        assert_eq!(sst(&grown), sst(&d.join(format!("{name}-v3.zarr"))));
    }
    // A 0.1-degree grid: the float values are not the double ones, so not one grid.
    let d = dir.path().join("tenth");
    std::fs::create_dir_all(&d).unwrap();
    let files = [d.join("a.nc"), d.join("b.nc")];
    lat_typed_file(&files[0], false, 0.1, 0.0);
    lat_typed_file(&files[1], true, 0.1, 1.0);
    convert(&strings(&files), &d.join("x.zarr"), &[]).fails_with(
        3,
        &[
            "variable 'lat' does not depend on the concat dimension but its values differ",
            "(float in one, double in the other",
        ],
    );
}

#[test]
fn verify_decodes_re_encoded_times_of_variables_split_between_files() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    time_file(&p("a.nc"), "hours since 2000-01-01", &[1.0, 3.0], "f64", None);
    time_file(&p("b.nc"), "hours since 2001-01-01", &[1.0, 3.0], "f64", None);
    // The same steps again with a variable of their own: two sets of files (CMIP-style),
    // which both hold the re-encoded 'obs_time'.
    for (from, to) in [("a.nc", "a_extra.nc"), ("b.nc", "b_extra.nc")] {
        std::fs::copy(p(from), p(to)).unwrap();
        let mut f = netcdf::append(p(to)).unwrap();
        f.add_variable::<f32>("extra", &["time"])
            .unwrap()
            .put_values(&[1.0f32, 2.0], ..)
            .unwrap();
    }
    let inputs = strings(&[p("a.nc"), p("b.nc"), p("a_extra.nc"), p("b_extra.nc")]);
    let out = p("split.zarr");
    convert(&inputs, &out, &[]).ok();
    verify_source(&out, &inputs).ok();
    // Time units that disagree with the stored numbers: only decoding each side with its
    // own units tells (verify skipped variables of split sets before).
    shift_time_units(&out);
    let r = verify_source(&out, &inputs);
    r.fails_with(5, &[]);
    assert!(r.stdout.contains("'obs_time' element"), "{}", r.stdout);
}

#[test]
fn an_enum_variables_fill_value_is_kept_as_its_base_integer() {
    // The netcdf crate cannot write enum attributes: netCDF4-python makes the files.
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let script = "import sys, numpy as np, netCDF4 as nc\n\
        for i, path in enumerate(sys.argv[1:]):\n\
        \x20   d = nc.Dataset(path, 'w')\n\
        \x20   t = d.createEnumType(np.uint8, 'cloud_t', {'clear': 0, 'cloudy': 1, 'missing': 255})\n\
        \x20   d.createDimension('time', None)\n\
        \x20   v = d.createVariable('time', 'f8', ('time',))\n\
        \x20   v.units = 'days since 2000-01-01'\n\
        \x20   v[:] = [2 * i, 2 * i + 1]\n\
        \x20   c = d.createVariable('cloud', t, ('time',), fill_value=255)\n\
        \x20   c[:] = np.array([i % 2, 255], np.uint8)\n\
        \x20   d.close()\n";
    let files = [dir.path().join("a.nc"), dir.path().join("b.nc")];
    let o = std::process::Command::new(&py)
        .arg("-c")
        .arg(script)
        .args(&files)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let inputs = strings(&files);
    // It was refused: "attribute '_FillValue' has enum type 'cloud_t'".
    for format in ["3", "2"] {
        let out = dir.path().join(format!("v{format}.zarr"));
        convert(&inputs, &out, &["--zarr-format", format]).ok();
        verify_source(&out, &inputs).ok();
        xarray_compare(&py, &out, &inputs, &["--mode", "both"]).unwrap();
    }
    let cloud: Vec<u8> = array_values(&dir.path().join("v3.zarr"), "cloud");
    assert_eq!(cloud, [0, 255, 1, 255]);
}

#[test]
fn bounds_the_first_file_holds_without_linking_them_stay_as_it_has_them() {
    let dir = tempfile::tempdir().unwrap();
    let files = [dir.path().join("m0.nc"), dir.path().join("m1.nc")];
    for (i, path) in files.iter().enumerate() {
        let mut f = create(path, Kind::Netcdf4);
        f.add_unlimited_dimension("member").unwrap();
        f.add_dimension("time", 2).unwrap();
        f.add_dimension("nv", 2).unwrap();
        let mut m = f.add_variable::<i32>("member", &["member"]).unwrap();
        m.put_values(&[i as i32], ..).unwrap();
        let mut t = f.add_variable::<f64>("time", &["time"]).unwrap();
        t.put_attribute("units", "days since 2000-01-01").unwrap();
        if i == 1 {
            t.put_attribute("bounds", "time_bnds").unwrap();
        }
        t.put_values(&[0.5, 1.5], ..).unwrap();
        f.add_variable::<f64>("time_bnds", &["time", "nv"])
            .unwrap()
            .put_values(&[0.0, 1.0, 1.0, 2.0], ..)
            .unwrap();
        f.add_variable::<f32>("x", &["member", "time"])
            .unwrap()
            .put_values(&[i as f32, 1.0], ..)
            .unwrap();
    }
    let inputs = strings(&files);
    // xarray keeps the first file's unlinked time_bnds: plain numbers, no units given.
    let text = notes(&scan_json(&inputs));
    assert!(!text.contains("bounds of 'time' only in some files"), "{text}");
    let out = dir.path().join("members.zarr");
    convert(&inputs, &out, &[]).ok();
    let attrs = read_json(&out, "time_bnds/zarr.json")
        .get("attributes")
        .cloned()
        .unwrap();
    assert!(attrs.get("units").is_none(), "{}", attrs.to_compact());
    if let Some(py) = python() {
        xarray_compare(&py, &out, &inputs, &["--concat-dim", "member"]).unwrap();
    }
}

#[test]
fn appends_continue_a_decreasing_time_axis_downwards_only() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let hours = |store: &Path| array_values::<f64>(store, "time");
    // Each file runs backwards; together they are [5, 4, 3, 2, 1, 0] h, as xarray orders them.
    time_file(&p("early.nc"), "hours since 2000-01-01", &[2.0, 1.0, 0.0], "f64", None);
    time_file(&p("late.nc"), "hours since 2000-01-01", &[5.0, 4.0, 3.0], "f64", None);
    time_file(&p("up.nc"), "hours since 2000-01-01", &[6.0, 7.0, 8.0], "f64", None);
    let all = strings(&[p("early.nc"), p("late.nc")]);
    let whole = p("whole.zarr");
    convert(&all, &whole, &[]).ok();
    assert_eq!(hours(&whole), [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]);
    // It stored [2, 1, 0, 5, 4, 3] with exit 0.
    let early = p("early.zarr");
    convert(&all[..1], &early, &[]).ok();
    let before = snapshot(&early);
    run(["append", &all[1], "-o", &s(&early)]).fails_with(
        3,
        &[
            "the new files start at 5, hours since 2000-01-01 (in ",
            "before the store's first step 2 (it runs from 2 to 0): an append only adds steps after the last one",
        ],
    );
    assert!(before == snapshot(&early));
    // The continuation downwards appends, as one conversion.
    let late = p("late.zarr");
    convert(&all[1..], &late, &[]).ok();
    run(["append", &all[0], "-o", &s(&late), "--quiet"]).ok();
    assert_eq!(hours(&late), hours(&whole));
    verify_source(&late, &all).ok();
    // New files running the other way are refused.
    run(["append", &s(&p("up.nc")), "-o", &s(&late), "--allow-gaps"])
        .fails_with(3, &["decreases (1 then 0", "but the new files' increases (6 then 7"]);
}

/// A CORDEX-like file whose grid mapping `rotated_pole` is a char scalar or an int one.
fn rotated_pole_file(path: &Path, char_pole: bool, day: f64) {
    let mut f = create(path, Kind::Classic);
    f.add_unlimited_dimension("time").unwrap();
    f.add_dimension("rlat", 2).unwrap();
    f.add_variable::<f64>("time", &["time"])
        .unwrap()
        .put_attribute("units", "days since 2000-01-01")
        .unwrap();
    let mut pole = if char_pole {
        f.add_variable::<NcChar>("rotated_pole", &[]).unwrap()
    } else {
        f.add_variable::<i32>("rotated_pole", &[]).unwrap()
    };
    pole.put_attribute("grid_mapping_name", "rotated_latitude_longitude")
        .unwrap();
    pole.put_attribute("grid_north_pole_latitude", 39.25).unwrap();
    f.add_variable::<f32>("tas", &["time", "rlat"])
        .unwrap()
        .put_attribute("grid_mapping", "rotated_pole")
        .unwrap();
    f.enddef().unwrap();
    f.variable_mut("time").unwrap().put_values(&[day], ..).unwrap();
    let tas = [day as f32, day as f32 + 0.5];
    f.variable_mut("tas").unwrap().put_values(&tas, ..).unwrap();
}

#[test]
fn a_grid_mapping_of_another_type_in_some_files_keeps_the_first_files_variable() {
    let dir = tempfile::tempdir().unwrap();
    for (name, char_first) in [("char-first", true), ("int-first", false)] {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        let files: Vec<PathBuf> = (0..3).map(|i| d.join(format!("tas_{i}.nc"))).collect();
        for (i, f) in files.iter().enumerate() {
            rotated_pole_file(f, (i == 0) == char_first, i as f64);
        }
        let inputs = strings(&files);
        let (kept, other) = if char_first { ("char", "int") } else { ("int", "char") };
        let text = notes(&scan_json(&inputs));
        assert!(
            text.contains(&format!(
                "grid mapping 'rotated_pole': its type differs between files ({kept} in"
            )),
            "{text}"
        );
        assert!(text.contains(&format!("{other} in")), "{text}");
        convert_and_compare(&d, name, &inputs, "both");
        let store = d.join(format!("{name}-v3.zarr"));
        let pole = read_json(&store, "rotated_pole/zarr.json");
        assert_eq!(pole.get("shape").and_then(|s| s.as_array()).map(<[_]>::len), Some(0));
        assert_eq!(
            pole.get("attributes")
                .and_then(|a| a.get("grid_mapping_name"))
                .and_then(|j| j.as_str()),
            Some("rotated_latitude_longitude")
        );
        assert_eq!(array_values::<f32>(&store, "tas"), vec![0.0, 0.5, 1.0, 1.5, 2.0, 2.5]);
    }
}

#[test]
fn sets_of_files_whose_string_lengths_differ_merge_each_at_its_width() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let names = ["ABERDEEN", "OBAN"];
    // Temperature files name their stations in 8 characters, pressure files in 12; the
    // flags along time differ between the sets too.
    let files = [
        d.join("temp_0.nc"),
        d.join("temp_1.nc"),
        d.join("pres_0.nc"),
        d.join("pres_1.nc"),
    ];
    station_var_file(&files[0], Kind::Netcdf4, "temp", 0.0, &names, 8, &["ok", "ok"]);
    station_var_file(&files[1], Kind::Netcdf4, "temp", 2.0, &names, 8, &["ok", "bad"]);
    station_var_file(&files[2], Kind::Netcdf4, "pres", 0.0, &names, 12, &["ok", "ok"]);
    station_var_file(&files[3], Kind::Netcdf4, "pres", 2.0, &names, 12, &["ok", "suspect"]);
    let inputs = strings(&files);
    // Before: "dimension 'name_strlen' is 8 long in the files of 'temp' … but 12 long in
    // those of 'pres'".
    let report = run(["scan".to_string()].into_iter().chain(inputs.iter().cloned()));
    report.ok();
    assert!(
        report.stdout.contains("name_strlen dimension length  [pad]"),
        "{}",
        report.stdout
    );
    convert_and_compare(d, "sets", &inputs, "decoded");
    let out = d.join("sets-v3.zarr");
    let shape = |key: &str| read_json(&out, key).get("shape").map(|j| j.to_compact());
    // Both sets hold the names and the flags: the first set's are kept (xarray's
    // compat="override"), each at its own width, the widest within the set.
    assert_eq!(shape("station_name/zarr.json").as_deref(), Some("[2, 8]"));
    assert_eq!(shape("qc_flag/zarr.json").as_deref(), Some("[4, 3]"));
    assert_eq!(array_values::<f32>(&out, "pres"), array_values::<f32>(&out, "temp"));
    // A later set that adds steps to flags of another width would need them padded
    // across sets: refused, not truncated.
    let later = d.join("pres_2.nc");
    station_var_file(&later, Kind::Netcdf4, "pres", 4.0, &names, 12, &["ok", "suspect"]);
    let mut more = inputs.clone();
    more.push(s(&later));
    convert(&more, &d.join("more.zarr"), &[]).fails_with(
        3,
        &[
            "variable 'qc_flag' is held by sets of files that cover different steps",
            "sized differently",
        ],
    );
}

/// One forecast cycle of a THREDDS (NCSS) subset: `time(time)` and a scalar `reftime`,
/// both in hours since the cycle (`cycle` hours after 2022-05-01), `reftime` = `ref_raw`,
/// listed in `t2m`'s `coordinates`.
fn cycle_file(path: &Path, cycle: u32, ref_units_cycle: u32, ref_raw: f64) {
    let units = |h: u32| format!("hours since 2022-05-01 {h:02}:00:00");
    let mut f = create(path, Kind::Netcdf4);
    f.add_unlimited_dimension("time").unwrap();
    f.add_dimension("x", 2).unwrap();
    f.add_variable::<f64>("time", &["time"])
        .unwrap()
        .put_attribute("units", units(cycle))
        .unwrap();
    let mut r = f.add_variable::<f64>("reftime", &[]).unwrap();
    r.put_attribute("units", units(ref_units_cycle)).unwrap();
    r.put_attribute("standard_name", "forecast_reference_time").unwrap();
    r.put_values(&[ref_raw], ..).unwrap();
    f.variable_mut("time").unwrap().put_values(&[0.0, 3.0], ..).unwrap();
    let mut t = f.add_variable::<f32>("t2m", &["time", "x"]).unwrap();
    t.put_attribute("coordinates", "reftime").unwrap();
    t.put_values(&[cycle as f32, 1.0, 2.0, 3.0], ..).unwrap();
}

/// `reftime` of a local store as hours since 2022-05-01 (it is stored in its first
/// file's units: `first_cycle` hours later).
fn reftime_hours(store: &Path, first_cycle: f64) -> Vec<f64> {
    array_values::<f64>(store, "reftime")
        .iter()
        .map(|h| h + first_cycle)
        .collect()
}

#[test]
fn times_without_the_concat_dimension_compare_and_are_stored_as_instants() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Each cycle's reference time is 0 hours since the cycle: equal raw values, other
    // instants. Before: stored once, as the first cycle's, for every step (verify OK).
    let cycles: Vec<PathBuf> = (0..3).map(|i| d.join(format!("gfs_{i}.nc"))).collect();
    for (i, p) in cycles.iter().enumerate() {
        cycle_file(p, 6 * i as u32, 6 * i as u32, 0.0);
    }
    let inputs = strings(&cycles);
    let text = notes(&scan_json(&inputs));
    assert!(
        text.contains("variable 'reftime': time units differ between files; values are re-encoded"),
        "{text}"
    );
    for format in ["3", "2"] {
        let out = d.join(format!("cycles-v{format}.zarr"));
        convert(&inputs, &out, &["--zarr-format", format]).ok();
        verify_source(&out, &inputs).ok();
        assert_eq!(reftime_hours(&out, 0.0), vec![0.0, 0.0, 6.0, 6.0, 12.0, 12.0]);
        if let Some(py) = python() {
            xarray_compare(&py, &out, &inputs, &["--mode", "decoded", "--vars", "different"]).unwrap();
        }
    }
    // Files after the first that differ from it in other units are re-encoded too.
    // Before: the third file's 0 hours since 12:00 was stored as 0 hours since 1970.
    let mixed: Vec<PathBuf> = (0..3).map(|i| d.join(format!("mixed_{i}.nc"))).collect();
    cycle_file(&mixed[0], 0, 0, 0.0);
    cycle_file(&mixed[1], 6, 0, 6.0);
    cycle_file(&mixed[2], 12, 12, 0.0);
    let out = d.join("mixed.zarr");
    convert(&strings(&mixed), &out, &[]).ok();
    assert_eq!(reftime_hours(&out, 0.0), vec![0.0, 0.0, 6.0, 6.0, 12.0, 12.0]);
    // The same instant in other units in every file stays one value.
    let same: Vec<PathBuf> = (0..3).map(|i| d.join(format!("same_{i}.nc"))).collect();
    for (i, p) in same.iter().enumerate() {
        cycle_file(p, 6 * i as u32, 6 * i as u32, -6.0 * i as f64);
    }
    let out = d.join("same.zarr");
    let r = convert(&strings(&same), &out, &[]);
    r.ok();
    assert!(
        r.stdout
            .contains("its values are the same instants; the first file's are kept"),
        "{}",
        r.stdout
    );
    assert_eq!(array_values::<f64>(&out, "reftime"), vec![0.0]);
    // One second apart is another instant (before the review: within a relative
    // tolerance of about 4 s, kept once); missing in both files is the same.
    let close: Vec<PathBuf> = (0..2).map(|i| d.join(format!("close_{i}.nc"))).collect();
    cycle_file(&close[0], 0, 0, 6.0);
    cycle_file(&close[1], 6, 6, 1.0 / 3600.0);
    let out = d.join("close.zarr");
    convert(&strings(&close), &out, &[]).ok();
    assert_eq!(
        array_values::<f64>(&out, "reftime"),
        [6.0, 6.0, 6.0 + 1.0 / 3600.0, 6.0 + 1.0 / 3600.0]
    );
    let missing: Vec<PathBuf> = (0..2).map(|i| d.join(format!("missing_{i}.nc"))).collect();
    cycle_file(&missing[0], 0, 0, f64::NAN);
    cycle_file(&missing[1], 6, 6, f64::NAN);
    let out = d.join("missing.zarr");
    convert(&strings(&missing), &out, &[]).ok();
    assert!(array_values::<f64>(&out, "reftime").iter().all(|x| x.is_nan()));
    assert_eq!(array_values::<f64>(&out, "reftime").len(), 1);
    // An append whose reference time is another instant in the same raw value is refused
    // (before: accepted, the store kept the first cycle's).
    let grown = d.join("grown.zarr");
    convert(&inputs[..1], &grown, &[]).ok();
    let before = snapshot(&grown);
    run(["append", &inputs[1], "-o", &s(&grown), "--quiet"]).fails_with(
        3,
        &[
            "variable 'reftime' does not depend on 'time' but",
            "holds other values than the store",
        ],
    );
    assert!(before == snapshot(&grown), "a refused append changed the store");
    // The same instant, in the new file's units, appends.
    run(["append", &s(&same[1]), "-o", &s(&grown), "--quiet"]).ok();
    verify_source(&grown, &[inputs[0].clone(), s(&same[1])]).ok();
}

/// One step of model output with no time dimension (Iris-saved UM fields): a scalar
/// `time` and its bounds in hours since the step itself (`hour` after midnight), and a
/// scalar forecast reference time in the same units.
fn scalar_step_file(path: &Path, hour: u32) {
    let mut f = create(path, Kind::Netcdf4);
    f.add_dimension("bnds", 2).unwrap();
    f.add_dimension("x", 3).unwrap();
    let units = format!("hours since 2022-01-01 {hour:02}:00:00");
    let mut t = f.add_variable::<f64>("time", &[]).unwrap();
    t.put_attribute("units", units.as_str()).unwrap();
    t.put_attribute("standard_name", "time").unwrap();
    t.put_attribute("bounds", "time_bnds").unwrap();
    t.put_attribute("calendar", "standard").unwrap();
    t.put_values(&[-0.5], ..).unwrap();
    f.add_variable::<f64>("time_bnds", &["bnds"])
        .unwrap()
        .put_values(&[-1.0, 0.0], ..)
        .unwrap();
    let mut r = f.add_variable::<f64>("forecast_reference_time", &[]).unwrap();
    r.put_attribute("units", units.as_str()).unwrap();
    r.put_values(&[-(hour as f64)], ..).unwrap();
    let mut a = f.add_variable::<f32>("air_temperature", &["x"]).unwrap();
    a.put_attribute("coordinates", "forecast_reference_time time").unwrap();
    a.put_values(&[hour as f32, 1.0, 2.0], ..).unwrap();
}

#[test]
fn scalar_times_in_each_files_own_units_are_re_encoded_along_a_new_dimension() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let files: Vec<PathBuf> = (1..4).map(|h| d.join(format!("um_{h}.nc"))).collect();
    for (i, p) in files.iter().enumerate() {
        scalar_step_file(p, 3 * (i as u32 + 1));
    }
    let inputs = strings(&files);
    // Before: refused ("'time' has other units or calendar in … convert the files in
    // groups of equal units"). Of the two scalar times, the CF time axis is the
    // dimension (before: "cannot tell which dimension … are some files duplicates?").
    for format in ["3", "2"] {
        let out = d.join(format!("um-v{format}.zarr"));
        convert(&inputs, &out, &["--zarr-format", format]).ok();
        verify_source(&out, &inputs).ok();
        // Hours since 03:00, the first file's units.
        assert_eq!(array_values::<f64>(&out, "time"), vec![-0.5, 2.5, 5.5]);
        assert_eq!(
            array_values::<f64>(&out, "time_bnds"),
            vec![-1.0, 0.0, 2.0, 3.0, 5.0, 6.0]
        );
        // The reference time is one instant (midnight) in every file: one value.
        assert_eq!(array_values::<f64>(&out, "forecast_reference_time"), vec![-3.0]);
        if let Some(py) = python() {
            xarray_compare(&py, &out, &inputs, &["--mode", "decoded", "--vars", "different"]).unwrap();
        }
    }
    // Another calendar in a later file: refused, naming that file and both calendars
    // (the message named the first file spelt otherwise, showing two equal units).
    let other = d.join("um_360.nc");
    scalar_step_file(&other, 12);
    {
        let mut f = netcdf::append(&other).unwrap();
        f.variable_mut("time")
            .unwrap()
            .put_attribute("calendar", "360_day")
            .unwrap();
    }
    let mut mixed = inputs.clone();
    mixed.push(s(&other));
    convert(&mixed, &d.join("mixed.zarr"), &[]).fails_with(
        3,
        &[
            "um_360.nc",
            "(calendar standard)",
            "(calendar 360_day)",
            "and so do their calendars",
        ],
    );
}

/// A WRF output file without a `Time` coordinate: `Times(Time, DateStrLen)` and `XTIME`
/// label its `n` hourly steps from hour `h0`; `var` holds the field.
fn wrf_file(path: &Path, var: &str, h0: u32, n: usize) {
    let mut f = create(path, Kind::Netcdf4);
    f.add_unlimited_dimension("Time").unwrap();
    f.add_dimension("DateStrLen", 19).unwrap();
    f.add_dimension("west_east", 2).unwrap();
    f.add_variable::<NcChar>("Times", &["Time", "DateStrLen"]).unwrap();
    f.add_variable::<f32>("XTIME", &["Time"])
        .unwrap()
        .put_attribute("units", "minutes since 2021-07-01 00:00:00")
        .unwrap();
    f.add_variable::<f32>(var, &["Time", "west_east"]).unwrap();
    let hours: Vec<u32> = (0..n as u32).map(|i| h0 + i).collect();
    let times: Vec<NcChar> = hours
        .iter()
        .flat_map(|h| format!("2021-07-01_{h:02}:00:00").into_bytes())
        .map(NcChar)
        .collect();
    f.variable_mut("Times")
        .unwrap()
        .put_values(&times, [..n, ..19])
        .unwrap();
    let minutes: Vec<f32> = hours.iter().map(|h| *h as f32 * 60.0).collect();
    f.variable_mut("XTIME").unwrap().put_values(&minutes, [..n]).unwrap();
    let values: Vec<f32> = hours.iter().flat_map(|h| [*h as f32, *h as f32 + 0.5]).collect();
    f.variable_mut(var).unwrap().put_values(&values, [..n, ..2]).unwrap();
}

#[test]
fn sets_without_a_time_coordinate_that_cover_other_steps_are_refused_not_paired_by_position() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = |n: &str| d.join(n);
    wrf_file(&p("wrfout_00"), "T2", 0, 4);
    wrf_file(&p("wrfout_04"), "T2", 4, 4);
    // The same steps: matched step by step.
    wrf_file(&p("wrfxtrm_00"), "T2MAX", 0, 4);
    wrf_file(&p("wrfxtrm_04"), "T2MAX", 4, 4);
    let aligned = strings(&[p("wrfout_00"), p("wrfout_04"), p("wrfxtrm_00"), p("wrfxtrm_04")]);
    let out = p("aligned.zarr");
    convert(&aligned, &out, &[]).ok();
    verify_source(&out, &aligned).ok();
    assert_eq!(array_values::<f32>(&out, "T2MAX"), array_values::<f32>(&out, "T2"));
    // Four hours later: before, T2MAX of 04–11 h was stored as 00–07 h (exit 0, verify OK).
    wrf_file(&p("wrfxtrm_08"), "T2MAX", 8, 4);
    let shifted = strings(&[p("wrfout_00"), p("wrfout_04"), p("wrfxtrm_04"), p("wrfxtrm_08")]);
    convert(&shifted, &p("shifted.zarr"), &[]).fails_with(
        3,
        &[
            "have no 'Time' coordinate, so the sets are matched step by step",
            "'Times' says step 0 is \"2021-07-01_00:00:00\" in 'T2'",
            "and \"2021-07-01_04:00:00\" in 'T2MAX'",
        ],
    );
    assert!(!p("shifted.zarr").exists());
}

#[test]
fn a_step_of_a_new_dimension_that_lacks_a_variable_is_filled_as_xarray_fills_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The middle scan's statistic has another name (GOES ABI files of one product).
    let files = [d.join("s0.nc"), d.join("s1.nc"), d.join("s2.nc")];
    scalar_time_file(&files[0], Kind::Netcdf4, 0.0, "sst");
    scalar_time_file(&files[1], Kind::Netcdf4, 1.0, "ice");
    scalar_time_file(&files[2], Kind::Netcdf4, 2.0, "sst");
    let inputs = strings(&files);
    // Before: "variable 'mask' is (time, lat) in the files of 'sst' … but (lat) in those
    // of 'ice'", though every file holds mask(lat).
    let out = d.join("scans.zarr");
    convert(&inputs, &out, &[]).ok();
    verify_source(&out, &inputs).ok();
    let sst = array_values::<f32>(&out, "sst");
    assert_eq!(sst[..3], [0.0, 0.25, 0.5]);
    assert!(sst[3..6].iter().all(|x| x.is_nan()), "{sst:?}");
    assert_eq!(array_values::<f64>(&out, "time"), [0.0, 1.0, 2.0]);
    if let Some(py) = python() {
        xarray_compare(&py, &out, &inputs, &["--mode", "decoded", "--join", "outer"]).unwrap();
    }
}

#[test]
fn int32_times_re_encoded_beyond_int32_are_stored_as_int64() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.nc"), dir.path().join("b.nc"));
    time_file(&a, "seconds since 1990-01-01", &[0.0, 3600.0], "i32", None);
    time_file(&b, "hours since 2060-01-01", &[0.0, 1.0], "i32", None);
    let inputs = strings(&[a, b]);
    // Before: scan passed, and convert failed half way ("cannot be stored exactly as int"),
    // leaving an interrupted store.
    let out = dir.path().join("t.zarr");
    let r = convert(&inputs, &out, &[]);
    r.ok();
    assert!(
        r.stdout.contains("are stored as int64 so that they fit"),
        "{}",
        r.stdout
    );
    verify_source(&out, &inputs).ok();
    // 2060-01-01 is 25,567 days (70 years, 17 of them leap) after 1990-01-01.
    let start = 25_567 * 86_400;
    assert_eq!(array_values::<i64>(&out, "time"), [0, 3600, start, start + 3600]);
}

#[test]
fn whole_times_re_encoded_by_a_fractional_factor_stay_integers() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.nc"), dir.path().join("b.nc"));
    // 1970-01-01 is 613,608 hours after 1900-01-01; b's seconds fall on the hour.
    time_file(&a, "hours since 1900-01-01", &[613_600.0, 613_601.0], "i32", None);
    time_file(&b, "seconds since 1970-01-01", &[0.0, 3600.0], "i32", None);
    let inputs = strings(&[a, b]);
    let out = dir.path().join("t.zarr");
    let r = convert(&inputs, &out, &[]);
    r.ok();
    // Before: "time values re-encoded to … are not whole numbers, so they are stored as
    // float64", judged from the 1/3600 factor, not the values.
    assert!(!r.stdout.contains("not whole numbers"), "{}", r.stdout);
    assert_eq!(array_values::<i32>(&out, "time"), [613_600, 613_601, 613_608, 613_609]);
    verify_source(&out, &inputs).ok();
}

#[test]
fn a_text_scalar_coordinate_concatenates_members_in_the_order_given() {
    // CMIP-style ensemble members, each file naming its member in a scalar string
    // `member_id`. It was refused ("coordinate 'member_id' is not numeric, so files
    // cannot be ordered by it"); xarray's nested combine takes them in the order given.
    let dir = tempfile::tempdir().unwrap();
    let member = |name: &str, offset: f32| {
        let p = dir.path().join(format!("tas_{name}.nc"));
        let mut f = create(&p, Kind::Netcdf4);
        f.add_dimension("time", 2).unwrap();
        f.add_variable::<f64>("time", &["time"])
            .unwrap()
            .put_attribute("units", "days since 2015-01-01")
            .unwrap();
        f.add_string_variable("member_id", &[])
            .unwrap()
            .put_string(name, ..)
            .unwrap();
        let mut tas = f.add_variable::<f32>("tas", &["time"]).unwrap();
        tas.put_attribute("coordinates", "member_id").unwrap();
        tas.put_values(&[280.0 + offset, 281.0 + offset], ..).unwrap();
        f.variable_mut("time").unwrap().put_values(&[0.0, 1.0], ..).unwrap();
        s(&p)
    };
    let files = [
        member("r2i1p1f1", 2.0),
        member("r1i1p1f1", 1.0),
        member("r10i1p1f1", 10.0),
    ];
    let out = dir.path().join("ens.zarr");
    let r = convert(&files, &out, &["--concat-dim", "member_id", "--zarr-format", "2"]);
    r.ok();
    assert!(
        r.stdout
            .contains("'member_id' holds text, not numbers: files are concatenated in the order given"),
        "{}",
        r.stdout
    );
    assert_eq!(
        array_values::<f32>(&out, "tas"),
        [282.0, 283.0, 281.0, 282.0, 290.0, 291.0]
    );
    verify_source(&out, &files).ok();
    let Some(py) = python() else { return };
    // One mode per process: netCDF4-python 1.7.5 crashes (SIGSEGV) reading these
    // scalar strings a second time in one process, before any comparison.
    for mode in ["decoded", "raw"] {
        xarray_compare(&py, &out, &files, &["--concat-dim", "member_id", "--mode", mode]).unwrap();
    }
}

/// A pressure-level file of old-CDS ERA5: one `level`, the same unlimited `time` steps.
fn level_file(path: &Path, level: i32) {
    let mut f = create(path, Kind::Classic);
    f.add_unlimited_dimension("time").unwrap();
    f.add_dimension("level", 1).unwrap();
    f.add_dimension("lat", 2).unwrap();
    f.add_variable::<i32>("time", &["time"])
        .unwrap()
        .put_attribute("units", "hours since 1900-01-01 00:00:00.0")
        .unwrap();
    f.add_variable::<i32>("level", &["level"])
        .unwrap()
        .put_attribute("units", "millibars")
        .unwrap();
    f.add_variable::<f32>("lat", &["lat"]).unwrap();
    f.add_variable::<f32>("z", &["time", "level", "lat"]).unwrap();
    f.enddef().unwrap();
    f.variable_mut("time")
        .unwrap()
        .put_values(&[1_000_000i32, 1_000_006, 1_000_012], 0..3)
        .unwrap();
    f.variable_mut("level").unwrap().put_values(&[level], ..).unwrap();
    f.variable_mut("lat").unwrap().put_values(&[10.0f32, 20.0], ..).unwrap();
    let z: Vec<f32> = (0..6).map(|i| level as f32 + i as f32).collect();
    f.variable_mut("z").unwrap().put_values(&z, (0..3, 0..1, 0..2)).unwrap();
}

#[test]
fn per_level_files_with_the_same_unlimited_times_concatenate_along_the_level() {
    // Old-CDS ERA5 pressure-level downloads: one file per level, each with the same
    // unlimited `time`. The unlimited dimension won, then "duplicate 'time' values …
    // remove one of them"; xarray concatenates along `level`, whose values differ.
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = [1000, 500, 850]
        .iter()
        .map(|l| {
            let p = dir.path().join(format!("era5_pl_{l}hPa.nc"));
            level_file(&p, *l);
            s(&p)
        })
        .collect();
    let out = dir.path().join("pl.zarr");
    let scan = scan_json(&files);
    assert_eq!(scan.get("concat_dim").and_then(|d| d.as_str()), Some("level"));
    let reason = scan.get("concat_reason").and_then(|d| d.as_str()).unwrap();
    assert!(
        reason.contains("their unlimited dimension 'time' holds the same values in every file"),
        "{reason}"
    );
    convert(&files, &out, &["--zarr-format", "2"]).ok();
    assert_eq!(array_values::<i32>(&out, "level"), [500, 850, 1000]);
    assert_eq!(array_values::<i32>(&out, "time"), [1_000_000, 1_000_006, 1_000_012]);
    verify_source(&out, &files).ok();
    let Some(py) = python() else { return };
    xarray_compare(&py, &out, &files, &["--concat-dim", "level"]).unwrap();
}

/// A paleo file: `time` in ka BP, decreasing, from `start` in steps of 0.01.
fn paleo_file(path: &Path, start: f64) {
    let mut f = create(path, Kind::Classic);
    f.add_dimension("time", 3).unwrap();
    f.add_variable::<f64>("time", &["time"])
        .unwrap()
        .put_attribute("units", "ka BP")
        .unwrap();
    f.add_variable::<f32>("ts", &["time"]).unwrap();
    f.enddef().unwrap();
    let t: Vec<f64> = (0..3).map(|i| start - 0.01 * i as f64).collect();
    f.variable_mut("time").unwrap().put_values(&t, ..).unwrap();
    f.variable_mut("ts")
        .unwrap()
        .put_values(&[1.0f32, 2.0, 3.0], ..)
        .unwrap();
}

#[test]
fn scan_reports_a_decreasing_axis_in_sequence_not_as_overlaps() {
    // TraCE-21ka-like "ka BP" files: scan said "overlaps the previous file [refuse]"
    // although convert stores the set correctly.
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = [22.0, 21.97]
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let p = dir.path().join(format!("trace.{i:02}.nc"));
            paleo_file(&p, *t);
            s(&p)
        })
        .collect();
    let scan = scan_json(&files).to_pretty();
    assert!(!scan.contains("overlaps the previous file"), "{scan}");
    assert!(!scan.contains("\"refuse\""), "{scan}");
    // A real overlap on such an axis is still reported.
    let p = dir.path().join("trace.02.nc");
    paleo_file(&p, 21.99);
    run(["scan", &files[0], &s(&p)]).fails_with(3, &["duplicate 'time' values", "share"]);
}
