//! xarray cannot tell the Zarr from the NetCDF: `open_zarr == open_mfdataset`, decoded
//! and raw, v2 and v3, on multi-file fixtures. Needs `NC2ZARR_PYTHON` (scripts/test.sh).

mod common;

use common::*;

fn convert_ok(inputs: &[String], out: &std::path::Path, format: &str) {
    let mut args = vec!["convert".to_string()];
    args.extend(inputs.iter().cloned());
    args.extend([
        "-o".into(),
        s(out),
        "--zarr-format".into(),
        format.into(),
        "--quiet".into(),
    ]);
    run(args).ok();
}

fn check(py: &std::path::Path, store: &std::path::Path, inputs: &[String], extra: &[&str]) {
    match xarray_compare(py, store, inputs, extra) {
        Ok(text) => eprintln!("{}", text.trim()),
        Err(text) => panic!("xarray sees a difference for {}:\n{text}", store.display()),
    }
}

#[test]
fn multi_file_sets_open_identically_in_xarray() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut months = three_months(6);
    months.swap(0, 2); // names do not follow time
    for kind in [Kind::Netcdf4, Kind::Classic, Kind::Cdf5] {
        let files: Vec<String> = era_set(&dir.path().join(format!("{kind:?}")), kind, &months, 9, 16)
            .iter()
            .map(|p| s(p))
            .collect();
        for format in ["3", "2"] {
            let out = dir.path().join(format!("{kind:?}-{format}.zarr"));
            convert_ok(&files, &out, format);
            check(&py, &out, &files, &[]);
        }
    }
}

#[test]
fn calendars_and_differing_units_decode_identically() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    for calendar in [
        "standard",
        "noleap",
        "360_day",
        "julian",
        "all_leap",
        "proleptic_gregorian",
    ] {
        let a = dir.path().join(format!("{calendar}_a.nc"));
        let b = dir.path().join(format!("{calendar}_b.nc"));
        calendar_file(&a, calendar, "days since 2000-01-01", &[0.0, 1.0, 2.0]);
        calendar_file(&b, calendar, "days since 2000-01-01", &[3.0, 4.0]);
        let files = vec![s(&b), s(&a)];
        for format in ["3", "2"] {
            let out = dir.path().join(format!("{calendar}-{format}.zarr"));
            convert_ok(&files, &out, format);
            check(&py, &out, &files, &[]);
        }
        // Different units per file: values are re-encoded, so only the decoded view is equal.
        let c = dir.path().join(format!("{calendar}_c.nc"));
        calendar_file(&c, calendar, "days since 1990-01-01", &[7000.0, 7001.0]);
        let files = vec![s(&a), s(&c)];
        let out = dir.path().join(format!("{calendar}-units.zarr"));
        convert_ok(&files, &out, "3");
        check(&py, &out, &files, &["--mode", "decoded"]);
    }
}

#[test]
fn groups_strings_and_chars_open_identically() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("rich.nc");
    rich_nc4(&f);
    for format in ["3", "2"] {
        let out = dir.path().join(format!("rich-{format}.zarr"));
        convert_ok(&[s(&f)], &out, format);
        for group in [None, Some("forecast"), Some("forecast/members")] {
            let mut extra = vec![];
            if let Some(g) = group {
                extra.extend(["--group", g]);
            }
            check(&py, &out, &[s(&f)], &extra);
        }
    }
}
