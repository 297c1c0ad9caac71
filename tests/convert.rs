//! End-to-end conversions through the real binary, checked with `verify --source`
//! (bit-exact values) and by reading the written metadata.

mod common;

use common::*;
use nc2zarr::json::Json;

fn convert(inputs: &[String], out: &std::path::Path, extra: &[&str]) -> Run {
    let mut args = vec!["convert".to_string()];
    args.extend(inputs.iter().cloned());
    args.extend(["-o".to_string(), s(out), "--json".to_string()]);
    args.extend(extra.iter().map(|x| x.to_string()));
    run(args)
}

fn verify_against(out: &std::path::Path, inputs: &[String]) -> Run {
    let mut args = vec![
        "verify".to_string(),
        s(out),
        "--json".to_string(),
        "--source".to_string(),
    ];
    args.extend(inputs.iter().cloned());
    run(args)
}

fn strings(paths: &[std::path::PathBuf]) -> Vec<String> {
    paths.iter().map(|p| s(p)).collect()
}

#[test]
fn every_netcdf_kind_converts_to_v2_and_v3_bit_exact() {
    let dir = tempfile::tempdir().unwrap();
    for kind in Kind::ALL {
        let files = strings(&era_set(
            &dir.path().join(format!("{kind:?}")),
            kind,
            &three_months(5),
            7,
            12,
        ));
        for format in ["2", "3"] {
            let out = dir.path().join(format!("{kind:?}-v{format}.zarr"));
            let summary = convert(&files, &out, &["--zarr-format", format]).ok().json();
            assert_eq!(summary.get("files").and_then(Json::as_u64), Some(3));
            assert_eq!(summary.get("arrays").and_then(Json::as_u64), Some(6), "{kind:?}");
            let report = verify_against(&out, &files).ok().json();
            assert_eq!(
                report.get("status").and_then(Json::as_str),
                Some("ok"),
                "{kind:?} v{format}"
            );
            assert_eq!(report.get("compared_with_source"), Some(&Json::Bool(true)));
        }
    }
}

#[test]
fn v3_metadata_is_what_xarray_expects() {
    let dir = tempfile::tempdir().unwrap();
    let files = strings(&era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(4), 5, 8));
    let out = dir.path().join("out.zarr");
    convert(&files, &out, &["--chunks", "time=5"]).ok();
    let root = read_json(&out, "zarr.json");
    assert_eq!(root.get("node_type").and_then(Json::as_str), Some("group"));
    let attrs = root.get("attributes").unwrap();
    assert_eq!(attrs.get("title").and_then(Json::as_str), Some("nc2zarr test dataset"));
    assert_eq!(attrs.get("version"), Some(&Json::Int(3)));
    let consolidated = root.get("consolidated_metadata").unwrap();
    assert_eq!(consolidated.get("kind").and_then(Json::as_str), Some("inline"));
    let entries = consolidated.get("metadata").unwrap();
    for name in ["time", "lat", "lon", "t2m", "tp", "orog"] {
        assert!(entries.get(name).is_some(), "{name} missing from consolidated metadata");
    }
    let t2m = read_json(&out, "t2m/zarr.json");
    assert_eq!(
        &t2m,
        entries.get("t2m").unwrap(),
        "consolidated copy equals the array document"
    );
    assert_eq!(
        t2m.get("dimension_names"),
        Some(&Json::from(vec!["time", "lat", "lon"]))
    );
    assert_eq!(t2m.get("shape"), Some(&Json::from(vec![12u64, 5, 8])));
    let grid = t2m
        .get("chunk_grid")
        .unwrap()
        .get("configuration")
        .unwrap()
        .get("chunk_shape")
        .unwrap();
    assert_eq!(grid, &Json::from(vec![5u64, 5, 8]));
    assert_eq!(t2m.get("fill_value"), Some(&Json::from("NaN")));
    let t2m_attrs = t2m.get("attributes").unwrap();
    assert_eq!(
        t2m_attrs.get("_FillValue"),
        Some(&Json::from("AAAAAAAA+H8=")),
        "xarray's base64 float fill"
    );
    assert!(t2m_attrs.get("_zarrs").is_none());
    assert_eq!(t2m_attrs.get("valid_range"), Some(&Json::from(vec![150.0f64, 350.0])));
    let tp = read_json(&out, "tp/zarr.json");
    assert_eq!(
        tp.get("data_type").and_then(Json::as_str),
        Some("int16"),
        "packed ints stay packed"
    );
    assert_eq!(tp.get("fill_value"), Some(&Json::Int(-32767)));
    assert_eq!(
        tp.get("attributes").unwrap().get("scale_factor"),
        Some(&Json::Float(0.001))
    );
    // Dimension coordinates are one chunk.
    let time = read_json(&out, "time/zarr.json");
    let grid = time
        .get("chunk_grid")
        .unwrap()
        .get("configuration")
        .unwrap()
        .get("chunk_shape")
        .unwrap();
    assert_eq!(grid, &Json::from(vec![12u64]));
    assert!(out.join("time/c/0").is_file());
    // Manifest, and no in-progress marker after a completed write.
    let manifest = read_json(&out, ".nc2zarr/manifest.json");
    assert_eq!(manifest.get("zarr_format").and_then(Json::as_u64), Some(3));
    assert!(!out.join(".nc2zarr/in-progress.json").exists());
}

#[test]
fn v2_metadata_is_what_xarray_expects() {
    let dir = tempfile::tempdir().unwrap();
    let files = strings(&era_set(&dir.path().join("in"), Kind::Classic, &three_months(3), 4, 6));
    let out = dir.path().join("out.zarr");
    convert(&files, &out, &["--zarr-format", "2", "--compression", "gzip:4"]).ok();
    let zmeta = read_json(&out, ".zmetadata");
    assert_eq!(zmeta.get("zarr_consolidated_format").and_then(Json::as_u64), Some(1));
    let entries = zmeta.get("metadata").unwrap();
    let tp = entries.get("tp/.zarray").unwrap();
    assert_eq!(tp.get("dtype").and_then(Json::as_str), Some("<i2"));
    assert_eq!(tp.get("fill_value"), Some(&Json::Int(-32767)));
    assert_eq!(
        tp.get("compressor").unwrap().get("id").and_then(Json::as_str),
        Some("gzip")
    );
    let tp_attrs = entries.get("tp/.zattrs").unwrap();
    assert_eq!(
        tp_attrs.get("_ARRAY_DIMENSIONS"),
        Some(&Json::from(vec!["time", "lat", "lon"]))
    );
    assert!(
        tp_attrs.get("_FillValue").is_none(),
        "v2 keeps _FillValue in fill_value only"
    );
    // Without _FillValue, v2 fill_value is null (xarray would mask with it otherwise).
    let orog = entries.get("orog/.zarray").unwrap();
    assert_eq!(orog.get("fill_value"), Some(&Json::Null));
    assert_eq!(
        entries
            .get(".zattrs")
            .unwrap()
            .get("Conventions")
            .and_then(Json::as_str),
        Some("CF-1.8")
    );
    assert!(out.join(".zgroup").is_file());
    assert!(out.join("t2m/0.0.0").is_file());
}

#[test]
fn files_are_ordered_by_time_not_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut months = three_months(2);
    months.reverse(); // part_00 now holds the last month
    let files = strings(&era_set(&dir.path().join("in"), Kind::Netcdf4, &months, 3, 4));
    let scan = run([
        "scan".to_string(),
        "--json".to_string(),
        files[0].clone(),
        files[1].clone(),
        files[2].clone(),
    ]);
    let inv = scan.ok().json();
    let order: Vec<String> = inv
        .get("files")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.get("path").and_then(Json::as_str).unwrap().to_string())
        .collect();
    assert_eq!(order, vec![files[2].clone(), files[1].clone(), files[0].clone()]);
    let out = dir.path().join("out.zarr");
    convert(&files, &out, &["--compression", "none"]).ok();
    verify_against(&out, &files).ok();
    // Raw bytes of the uncompressed time chunk: ascending hours.
    let raw = std::fs::read(out.join("time/c/0")).unwrap();
    let times: Vec<i32> = raw
        .chunks_exact(4)
        .map(|b| i32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(times, vec![1051896, 1051902, 1051908, 1051914, 1051920, 1051926]);
}

#[test]
fn differing_time_units_are_reencoded_to_the_first_files() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.nc");
    let b = dir.path().join("b.nc");
    calendar_file(&a, "standard", "days since 1940-01-01", &[0.0, 1.0, 2.0]);
    calendar_file(&b, "standard", "days since 1955-01-01", &[0.0, 1.0]);
    let files = vec![s(&b), s(&a)];
    let out = dir.path().join("out.zarr");
    let summary = convert(&files, &out, &["--compression", "none"]).ok().json();
    let notes = summary.get("notes").unwrap().to_compact();
    assert!(notes.contains("re-encoded to \\\"days since 1940-01-01\\\""), "{notes}");
    let raw = std::fs::read(out.join("time/c/0")).unwrap();
    let times: Vec<f64> = raw
        .chunks_exact(8)
        .map(|x| f64::from_le_bytes(x.try_into().unwrap()))
        .collect();
    assert_eq!(times, vec![0.0, 1.0, 2.0, 5479.0, 5480.0]);
    // Bounds have no units of their own: they follow time's.
    let raw = std::fs::read(out.join("time_bnds/c/0/0")).unwrap();
    let bnds: Vec<f64> = raw
        .chunks_exact(8)
        .map(|x| f64::from_le_bytes(x.try_into().unwrap()))
        .collect();
    assert_eq!(&bnds[6..], &[5478.5, 5479.5, 5479.5, 5480.5]);
    let time = read_json(&out, "time/zarr.json");
    assert_eq!(
        time.get("attributes").unwrap().get("units").and_then(Json::as_str),
        Some("days since 1940-01-01")
    );
}

#[test]
fn calendars_convert_and_units_differ_by_calendar_days() {
    let dir = tempfile::tempdir().unwrap();
    for (calendar, offset) in [
        ("noleap", 5475.0),
        ("360_day", 5400.0),
        ("all_leap", 5490.0),
        ("julian", 5479.0),
        ("proleptic_gregorian", 5479.0),
    ] {
        let a = dir.path().join(format!("{calendar}_a.nc"));
        let b = dir.path().join(format!("{calendar}_b.nc"));
        calendar_file(&a, calendar, "days since 1940-01-01", &[0.0, 10.0]);
        calendar_file(&b, calendar, "days since 1955-01-01", &[0.0, 10.0]);
        let out = dir.path().join(format!("{calendar}.zarr"));
        convert(&[s(&a), s(&b)], &out, &["--compression", "none"]).ok();
        let raw = std::fs::read(out.join("time/c/0")).unwrap();
        let times: Vec<f64> = raw
            .chunks_exact(8)
            .map(|x| f64::from_le_bytes(x.try_into().unwrap()))
            .collect();
        assert_eq!(times, vec![0.0, 10.0, offset, offset + 10.0], "{calendar}");
    }
}

#[test]
fn groups_strings_chars_and_scalars_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("rich.nc");
    rich_nc4(&f);
    for format in ["2", "3"] {
        let out = dir.path().join(format!("rich{format}.zarr"));
        convert(&[s(&f)], &out, &["--zarr-format", format]).ok();
        verify_against(&out, &[s(&f)]).ok();
    }
    let out = dir.path().join("rich3.zarr");
    let names = read_json(&out, "names/zarr.json");
    assert_eq!(names.get("data_type").and_then(Json::as_str), Some("string"));
    let codes = read_json(&out, "codes/zarr.json");
    assert_eq!(
        codes.get("data_type").unwrap().get("name").and_then(Json::as_str),
        Some("null_terminated_bytes")
    );
    assert_eq!(codes.get("dimension_names"), Some(&Json::from(vec!["x", "strlen"])));
    let temp = read_json(&out, "forecast/temp/zarr.json");
    assert_eq!(temp.get("fill_value"), Some(&Json::Float(-999.0)));
    let group = read_json(&out, "forecast/zarr.json");
    assert_eq!(
        group.get("attributes").unwrap().get("source").and_then(Json::as_str),
        Some("model")
    );
    assert!(
        group
            .get("consolidated_metadata")
            .unwrap()
            .get("metadata")
            .unwrap()
            .get("members/member")
            .is_some()
    );
    let scalar = read_json(&out, "scalar/zarr.json");
    assert_eq!(scalar.get("shape"), Some(&Json::Arr(vec![])));
    assert!(out.join("scalar/c").is_file());
    let v2 = dir.path().join("rich2.zarr");
    let names = read_json(&v2, "names/.zarray");
    assert_eq!(names.get("dtype").and_then(Json::as_str), Some("|O"));
    assert_eq!(
        names.get("filters"),
        Some(&Json::Arr(vec![nc2zarr::json_obj! {"id" => "vlen-utf8"}]))
    );
    assert_eq!(
        read_json(&v2, "codes/.zarray").get("dtype").and_then(Json::as_str),
        Some("|S1")
    );
    assert!(v2.join("forecast/members/.zmetadata").is_file());
    let root_attrs = read_json(&v2, ".zattrs");
    assert_eq!(root_attrs.get("tags"), Some(&Json::from(vec!["a", "b"])));
}

#[test]
fn chunks_that_hold_only_fill_values_are_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("sparse.nc");
    {
        let mut nc = create(&f, Kind::Netcdf4);
        nc.add_dimension("t", 8).unwrap();
        nc.add_dimension("x", 4).unwrap();
        let mut v = nc.add_variable::<f32>("sparse", &["t", "x"]).unwrap();
        v.set_fill_value(-1.0f32).unwrap();
        // Only the first two rows are written; the rest stay at the fill value.
        v.put_values(&[1.0f32; 8], (0..2, 0..4)).unwrap();
    }
    let out = dir.path().join("out.zarr");
    let summary = convert(&[s(&f)], &out, &["--chunks", "t=2"]).ok().json();
    assert_eq!(summary.get("objects").and_then(Json::as_u64), Some(1));
    assert_eq!(summary.get("empty_objects").and_then(Json::as_u64), Some(3));
    assert!(out.join("sparse/c/0/0").is_file());
    assert!(!out.join("sparse/c/1/0").exists());
    let report = verify_against(&out, &[s(&f)]).ok().json();
    assert_eq!(report.get("empty_objects").and_then(Json::as_u64), Some(3));
}

#[test]
fn edge_chunks_are_padded_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let files = strings(&era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(5), 7, 9));
    for chunks in ["time=4,lat=3,lon=4", "time=7,lat=full,lon=2", "time=1"] {
        let out = dir.path().join(format!("{chunks}.zarr"));
        convert(&files, &out, &["--chunks", chunks]).ok();
        verify_against(&out, &files).ok();
    }
}

#[test]
fn an_existing_target_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let files = strings(&era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(2), 3, 4));
    let out = dir.path().join("out.zarr");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("precious.txt"), b"keep me").unwrap();
    let before = snapshot(&out);
    convert(&files, &out, &[]).fails_with(4, &["already exists", "--overwrite"]);
    assert_eq!(snapshot(&out), before);
    convert(&files, &out, &["--overwrite"]).ok();
    assert!(!out.join("precious.txt").exists());
    verify_against(&out, &files).ok();
    // A regular file as target.
    let file_target = dir.path().join("plain-file");
    std::fs::write(&file_target, b"x").unwrap();
    convert(&files, &file_target, &[]).fails_with(4, &["not a directory"]);
    assert_eq!(std::fs::read(&file_target).unwrap(), b"x");
}

#[test]
fn inconsistent_inputs_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let base = era_set(&dir.path().join("good"), Kind::Netcdf4, &three_months(2), 3, 4);
    let out = dir.path().join("out.zarr");
    // A different grid.
    let other_grid = dir.path().join("grid.nc");
    era_file(
        &other_grid,
        Kind::Netcdf4,
        &Month {
            times: vec![2_000_000],
            units: "hours since 1900-01-01",
        },
        3,
        5,
    );
    convert(&[s(&base[0]), s(&other_grid)], &out, &[])
        .fails_with(3, &["dimension 'lon'", "length 4", "but 5", "grid.nc"]);
    // Overlapping times.
    let overlap = dir.path().join("overlap.nc");
    era_file(
        &overlap,
        Kind::Netcdf4,
        &Month {
            times: vec![1051896 + 6],
            units: "hours since 1900-01-01",
        },
        3,
        4,
    );
    convert(&[s(&base[0]), s(&overlap)], &out, &[]).fails_with(
        3,
        &[
            "duplicate 'time' values",
            "part_00.nc",
            "overlap.nc share 1 step(s) (of 2 and 1)",
            "`ncks -d time,1,`",
        ],
    );
    // A file that lacks the variables (only a time step)
    let missing = dir.path().join("missing.nc");
    {
        let mut f = create(&missing, Kind::Netcdf4);
        f.add_unlimited_dimension("time").unwrap();
        let mut v = f.add_variable::<i32>("time", &["time"]).unwrap();
        v.put_attribute("units", "hours since 1900-01-01 00:00:00").unwrap();
        v.put_values(&[2_000_000], [..1]).unwrap();
    }
    // is not inconsistent: as in xarray's outer join, its step is a gap of the others.
    let joined = dir.path().join("joined.zarr");
    let r = convert(&[s(&base[0]), s(&missing)], &joined, &[]);
    r.ok();
    for needle in ["the files lacking 'orog', 't2m', 'tp'", "'t2m' is absent from 1 of"] {
        assert!(r.stdout.contains(needle), "{needle}: {}", r.stdout);
    }
    // A different grid (other 'lat' values) is refused; a static field that differs
    // between files (orog) is stored along 'time', as xarray concatenates it.
    let orog = dir.path().join("orog.nc");
    era_file(
        &orog,
        Kind::Netcdf4,
        &Month {
            times: vec![3_000_000],
            units: "hours since 1900-01-01",
        },
        3,
        4,
    );
    {
        let mut f = netcdf::append(&orog).unwrap();
        let mut v = f.variable_mut("orog").unwrap();
        v.put_values(&[1.0f64], (0..1, 0..1)).unwrap();
    }
    let repeated = dir.path().join("repeated.zarr");
    let r = convert(&[s(&base[0]), s(&orog)], &repeated, &[]);
    r.ok();
    assert!(
        r.stdout
            .contains("variable 'orog' does not depend on 'time' but its values differ between files"),
        "{}",
        r.stdout
    );
    {
        let mut f = netcdf::append(&orog).unwrap();
        let mut v = f.variable_mut("lat").unwrap();
        v.put_values(&[-5.0f32], 0..1).unwrap();
    }
    convert(&[s(&base[0]), s(&orog)], &out, &[]).fails_with(3, &["'lat' does not depend on the concat dimension"]);
    // The same file twice.
    convert(&[s(&base[0]), s(&base[0])], &out, &[]).fails_with(3, &["more than once"]);
    assert!(!out.exists(), "nothing may be written for refused inputs");
}

#[test]
fn bad_and_missing_inputs_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.zarr");
    let empty = dir.path().join("empty.nc");
    std::fs::write(&empty, b"").unwrap();
    convert(&[s(&empty)], &out, &[]).fails_with(3, &["empty.nc", "the file is empty"]);
    let text = dir.path().join("cdl.nc");
    std::fs::write(&text, b"netcdf x {\ndimensions:\n d = 1 ;\n}\n").unwrap();
    convert(&[s(&text)], &out, &[]).fails_with(3, &["cdl.nc", "CDL text"]);
    let junk = dir.path().join("junk.nc");
    std::fs::write(&junk, [7u8; 100]).unwrap();
    convert(&[s(&junk)], &out, &[]).fails_with(3, &["junk.nc", "not a NetCDF or HDF5 file"]);
    let good = era_set(&dir.path().join("good"), Kind::Netcdf4, &three_months(2), 3, 4);
    let bytes = std::fs::read(&good[0]).unwrap();
    let truncated = dir.path().join("truncated.nc");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let r = convert(&[s(&good[1]), s(&truncated)], &out, &[]);
    r.fails_with(3, &["truncated.nc"]);
    convert(&[s(&dir.path().join("nope.nc"))], &out, &[]).fails_with(3, &["nope.nc", "does not exist"]);
    convert(&[format!("{}/*.zz", dir.path().display())], &out, &[]).fails_with(3, &["matched no files"]);
    assert!(!out.exists());
}

#[test]
fn bad_options_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let files = strings(&era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(2), 3, 4));
    let out = dir.path().join("out.zarr");
    let r = convert(&files, &out, &["--chunks", "time=0"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("at least 1"));
    let r = convert(&files, &out, &["--compression", "lzma:3"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("unknown compression"));
    convert(&files, &out, &["--chunks", "height=3"]).fails_with(2, &["'height'", "no variable has"]);
    let r = run([
        "convert".to_string(),
        files[0].clone(),
        "-o".to_string(),
        "ftp://host/x".to_string(),
    ]);
    r.fails_with(4, &["unsupported URL scheme 'ftp'"]);
    assert!(!out.exists());
}

#[test]
fn unsupported_types_are_refused_or_skipped_with_a_warning() {
    let devset = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/devset/netcdf-c/ncdump/ref_tst_compounds3.nc");
    if !devset.exists() {
        missing_devset(&devset);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.zarr");
    convert(&[s(&devset)], &out, &[]).fails_with(3, &["variable 'var'", "compound type", "--skip-unsupported"]);
    assert!(!out.exists());
    let summary = convert(&[s(&devset)], &out, &["--skip-unsupported"]).ok().json();
    let skipped = summary.get("skipped").unwrap().to_compact();
    assert!(skipped.contains("variable 'var' has compound type"), "{skipped}");
}

#[test]
fn verify_detects_corrupt_and_missing_objects() {
    let dir = tempfile::tempdir().unwrap();
    let files = strings(&era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(3), 4, 5));
    let out = dir.path().join("out.zarr");
    convert(&files, &out, &["--chunks", "time=3"]).ok();
    run(["verify".to_string(), s(&out)]).ok();
    let chunk = out.join("t2m/c/1/0/0");
    let mut bytes = std::fs::read(&chunk).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0xff;
    std::fs::write(&chunk, &bytes).unwrap();
    let r = run(["verify".to_string(), s(&out)]);
    assert_eq!(r.code, 5, "{}", r.stdout);
    assert!(r.stdout.contains("t2m/c/1/0/0: corrupt"), "{}", r.stdout);
    std::fs::remove_file(&chunk).unwrap();
    let r = run(["verify".to_string(), s(&out), "--json".to_string()]);
    assert_eq!(r.code, 5);
    assert!(
        r.json()
            .get("problems")
            .unwrap()
            .to_compact()
            .contains("t2m/c/1/0/0: missing"),
        "{}",
        r.stdout
    );
}

#[test]
fn verify_source_detects_different_values() {
    let dir = tempfile::tempdir().unwrap();
    let files = strings(&era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(2), 3, 4));
    let out = dir.path().join("out.zarr");
    convert(&files, &out, &[]).ok();
    // Change one value in a source file after conversion.
    {
        let mut f = netcdf::append(&files[1]).unwrap();
        let mut v = f.variable_mut("t2m").unwrap();
        v.put_values(&[1.0f32], (0..1, 0..1, 0..1)).unwrap();
    }
    let r = verify_against(&out, &files);
    assert_eq!(r.code, 5);
    assert!(
        r.stdout.contains("t2m/c/0/0/0: values differ from the source"),
        "{}",
        r.stdout
    );
}

#[test]
fn scan_reports_the_merged_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let files = strings(&era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(4), 3, 4));
    let inv = run(["scan".to_string(), s(&dir.path().join("in")), "--json".to_string()])
        .ok()
        .json();
    assert_eq!(inv.get("concat_dim").and_then(Json::as_str), Some("time"));
    let root = inv.get("root").unwrap();
    let t2m = root
        .get("variables")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v.get("name").and_then(Json::as_str) == Some("t2m"))
        .unwrap();
    assert_eq!(t2m.get("shape"), Some(&Json::from(vec![12u64, 3, 4])));
    assert_eq!(t2m.get("source_chunks"), Some(&Json::from(vec![1u64, 3, 4])));
    assert_eq!(t2m.get("source_filters"), Some(&Json::from(vec!["shuffle", "zlib(1)"])));
    let text = run(["scan".to_string(), files[0].clone(), files[1].clone()])
        .ok()
        .stdout
        .clone();
    assert!(text.contains("2 file(s)"), "{text}");
    assert!(text.contains("dim time = 8 (unlimited) (concat)"), "{text}");
    assert!(text.contains("attribute(s) history differ"), "{text}");
}

#[test]
fn json_runs_that_fail_print_the_error_as_json_with_its_kind_and_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let files = era_set(dir.path(), Kind::Classic, &three_months(2), 3, 4);
    let out = dir.path().join("out.zarr");
    let field = |r: &Run, key: &str| r.json().get(key).and_then(|j| j.as_str()).map(str::to_string);
    // A missing input: kind, exit code and the file.
    let missing = dir.path().join("missing.nc");
    let r = run(["convert", &s(&missing), "-o", &s(&out), "--json"]);
    r.fails_with(3, &["does not exist"]);
    assert_eq!(field(&r, "kind").as_deref(), Some("input"), "{}", r.stdout);
    assert_eq!(r.json().get("exit_code").and_then(|j| j.as_u64()), Some(3));
    assert_eq!(field(&r, "file"), Some(s(&missing)));
    assert!(field(&r, "error").unwrap().contains("does not exist"));
    // An existing target.
    run(["convert", &s(&files[0]), "-o", &s(&out), "--quiet"]).ok();
    let r = run([
        "append",
        &s(&files[1]),
        "-o",
        &s(&dir.path().join("none.zarr")),
        "--json",
    ]);
    assert_eq!(field(&r, "kind").as_deref(), Some("target"), "{}", r.stdout);
    let r = run(["convert", &s(&files[1]), "-o", &s(&out), "--json"]);
    r.fails_with(4, &["already exists"]);
    assert_eq!(field(&r, "kind").as_deref(), Some("target"));
    // A bad option value, and inputs that do not form one dataset (scan keeps its drift).
    let r = run(["plan", &s(&files[1]), "-o", &s(&out), "--max-mem", "1KiB", "--json"]);
    r.fails_with(2, &["--max-mem"]);
    assert_eq!(field(&r, "kind").as_deref(), Some("usage"));
    let other = dir.path().join("other.nc");
    fixed_time_file(&other, Kind::Classic, "days since 2000-01-01", &[0.0, 1.0], 0.0);
    let r = run(["scan", &s(&files[0]), &s(&other), "--json"]);
    r.fails_with(3, &["inconsistent inputs"]);
    assert_eq!(field(&r, "kind").as_deref(), Some("input"));
    assert!(r.json().get("drift").is_some(), "{}", r.stdout);
    let named: Vec<String> = r
        .json()
        .get("files")
        .and_then(|f| {
            f.as_array()
                .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_string)).collect())
        })
        .unwrap_or_default();
    assert_eq!(named.len(), 2, "the files that differ: {}", r.stdout);
    assert!(named.contains(&s(&other)), "{}", r.stdout);
    // An inconsistency in one variable names it.
    let (a, b) = (dir.path().join("cal_a.nc"), dir.path().join("cal_b.nc"));
    calendar_file(&a, "noleap", "days since 2000-01-01", &[0.0, 1.0]);
    calendar_file(&b, "360_day", "days since 2000-01-01", &[2.0, 3.0]);
    let r = run(["scan", &s(&a), &s(&b), "--json"]);
    r.fails_with(3, &["calendar"]);
    assert_eq!(field(&r, "variable").as_deref(), Some("time"), "{}", r.stdout);
    // Without --json, stdout stays empty.
    let r = run(["convert", &s(&missing), "-o", &s(&out)]);
    r.fails_with(3, &["does not exist"]);
    assert_eq!(r.stdout, "");
}
