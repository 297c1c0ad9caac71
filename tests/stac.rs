//! STAC documents describe the store (datacube extension): written by `--stac DIR`
//! after a convert or an append, or by `nc2zarr stac`; valid for pystac, and the Zarr
//! asset opens in xarray with the listed dimensions and variables.

mod common;

use std::path::Path;

use common::*;
use nc2zarr::json::Json;

fn doc(dir: &Path, name: &str) -> Json {
    Json::parse(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap()).unwrap()
}

fn at<'a>(j: &'a Json, path: &[&str]) -> &'a Json {
    path.iter().fold(j, |j, k| {
        j.get(k).unwrap_or_else(|| panic!("no {k} in {}", j.to_pretty()))
    })
}

/// pystac (offline core schemas, datacube model) and xarray on the asset, when Python is set up.
fn python_check(dir: &Path) {
    let Some(py) = python() else { return };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/stac_check.py");
    let out = std::process::Command::new(py).arg(script).arg(dir).output().unwrap();
    assert!(
        out.status.success(),
        "stac_check.py: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn convert_and_append_describe_the_store_in_stac() {
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = era_set(dir.path(), Kind::Netcdf4, &three_months(4), 5, 8)
        .iter()
        .map(|p| s(p))
        .collect();
    for format in ["3", "2"] {
        let out = dir.path().join(format!("era5-v{format}.zarr"));
        let cat = dir.path().join(format!("catalog-v{format}"));
        let mut args = vec!["convert".to_string()];
        args.extend(files[..2].iter().cloned());
        args.extend(["-o", &s(&out), "--zarr-format", format, "--stac", &s(&cat), "--json"].map(String::from));
        let r = run(args);
        r.ok();
        assert_eq!(
            r.json()
                .get("stac")
                .and_then(|j| j.get("collection"))
                .and_then(Json::as_str),
            Some(s(&cat.join("collection.json")).as_str())
        );
        let c = doc(&cat, "collection");
        assert_eq!(at(&c, &["type"]).as_str(), Some("Collection"));
        assert_eq!(at(&c, &["id"]).as_str(), Some(format!("era5-v{format}").as_str()));
        assert_eq!(at(&c, &["title"]).as_str(), Some("nc2zarr test dataset"));
        // 8 six-hourly steps from 2020-01-01.
        let interval = at(&c, &["extent", "temporal", "interval"]).to_compact();
        assert_eq!(interval, r#"[["2020-01-01T00:00:00Z", "2020-01-02T18:00:00Z"]]"#);
        let time = at(&c, &["cube:dimensions", "time"]);
        assert_eq!(at(time, &["type"]).as_str(), Some("temporal"));
        assert_eq!(at(time, &["step"]).as_str(), Some("PT6H"));
        let lat = at(&c, &["cube:dimensions", "lat"]);
        assert_eq!(at(lat, &["axis"]).as_str(), Some("y"));
        assert_eq!(at(lat, &["extent"]).to_compact(), "[-90.0, 90.0]");
        assert_eq!(at(lat, &["step"]).as_f64(), Some(-45.0));
        assert_eq!(at(&c, &["cube:dimensions", "lon", "axis"]).as_str(), Some("x"));
        let t2m = at(&c, &["cube:variables", "t2m"]);
        assert_eq!(at(t2m, &["type"]).as_str(), Some("data"));
        assert_eq!(at(t2m, &["unit"]).as_str(), Some("K"));
        assert_eq!(at(t2m, &["description"]).as_str(), Some("2 metre temperature"));
        assert_eq!(at(t2m, &["dimensions"]).to_compact(), r#"["time", "lat", "lon"]"#);
        // Longitudes 0..315 cannot be one west-east box below 180: the whole globe.
        assert_eq!(
            at(&c, &["extent", "spatial", "bbox"]).to_compact(),
            "[[-180.0, -90.0, 180.0, 90.0]]"
        );
        let href = std::fs::canonicalize(&out).unwrap();
        assert_eq!(at(&c, &["assets", "zarr", "href"]).as_str(), Some(s(&href).as_str()));
        assert_eq!(
            at(&c, &["assets", "zarr", "zarr:zarr_format"]).as_u64(),
            Some(format.parse().unwrap())
        );
        let item = doc(&cat, "item");
        assert_eq!(at(&item, &["type"]).as_str(), Some("Feature"));
        assert_eq!(
            at(&item, &["properties", "start_datetime"]).as_str(),
            Some("2020-01-01T00:00:00Z")
        );
        python_check(&cat);

        // An append grows the extent; the documents follow the store.
        let mut args = vec!["append".to_string(), files[2].clone()];
        args.extend(["-o", &s(&out), "--stac", &s(&cat), "--quiet"].map(String::from));
        let r = run(args);
        r.ok();
        assert!(r.stdout.contains("STAC: "), "{}", r.stdout);
        let c = doc(&cat, "collection");
        assert_eq!(
            at(&c, &["extent", "temporal", "interval"]).to_compact(),
            r#"[["2020-01-01T00:00:00Z", "2020-01-03T18:00:00Z"]]"#
        );
        assert_eq!(
            at(&doc(&cat, "item"), &["properties", "end_datetime"]).as_str(),
            Some("2020-01-03T18:00:00Z")
        );
        python_check(&cat);
    }
}

#[test]
fn the_stac_command_describes_any_store_and_refuses_what_is_not_one() {
    let dir = tempfile::tempdir().unwrap();
    // A file without time or CF attributes: index dimensions, and the catalogue time.
    let f = dir.path().join("plain.nc");
    station_file(&f);
    let out = dir.path().join("plain.zarr");
    run(["convert", &s(&f), "-o", &s(&out), "--quiet"]).ok();
    let cat = dir.path().join("cat");
    let r = run(["stac", &s(&out), "--dir", &s(&cat), "--id", "stations", "--json"]);
    r.ok();
    assert!(r.json().get("item").is_some());
    let c = doc(&cat, "collection");
    assert_eq!(at(&c, &["id"]).as_str(), Some("stations"));
    assert_eq!(
        at(&c, &["cube:dimensions", "station"]).to_compact(),
        r#"{"type": "index", "extent": [0, 2], "step": 1, "description": "position along the dimension (no coordinate values)"}"#
    );
    assert_eq!(
        at(&c, &["extent", "temporal", "interval"]).to_compact(),
        "[[null, null]]"
    );
    let item = doc(&cat, "item");
    assert!(
        at(&item, &["properties", "datetime"])
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    python_check(&cat);

    // A projected grid (x/y in metres): spatial axes, but not WGS 84 and no bbox from them.
    let p = dir.path().join("projected.nc");
    {
        let mut nc = create(&p, Kind::Netcdf4);
        nc.add_dimension("y", 2).unwrap();
        nc.add_dimension("x", 3).unwrap();
        for (name, n) in [("y", 2usize), ("x", 3)] {
            let mut v = nc.add_variable::<f64>(name, &[name]).unwrap();
            v.put_attribute("axis", name.to_uppercase()).unwrap();
            v.put_attribute("units", "m").unwrap();
            v.put_attribute("standard_name", format!("projection_{name}_coordinate"))
                .unwrap();
            let values: Vec<f64> = (0..n).map(|i| 1000.0 * i as f64 - 5e5).collect();
            v.put_values(&values, ..).unwrap();
        }
        nc.add_variable::<f32>("z", &["y", "x"])
            .unwrap()
            .put_values(&[1.0f32; 6], ..)
            .unwrap();
    }
    let projected = dir.path().join("projected.zarr");
    run(["convert", &s(&p), "-o", &s(&projected), "--quiet"]).ok();
    let pcat = dir.path().join("pcat");
    run(["stac", &s(&projected), "--dir", &s(&pcat)]).ok();
    let c = doc(&pcat, "collection");
    assert_eq!(
        at(&c, &["cube:dimensions", "x"]).to_compact(),
        r#"{"type": "spatial", "axis": "x", "extent": [-500000.0, -498000.0], "step": 1000.0, "unit": "m"}"#
    );
    assert_eq!(
        at(&c, &["extent", "spatial", "bbox"]).to_compact(),
        "[[-180.0, -90.0, 180.0, 90.0]]"
    );
    python_check(&pcat);
    // A STAC directory that cannot be made: the convert's report is still printed, with
    // the error; the store is complete.
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"x").unwrap();
    let out2 = dir.path().join("plain2.zarr");
    let r = run([
        "convert",
        &s(&f),
        "-o",
        &s(&out2),
        "--stac",
        &s(&blocker.join("stac")),
        "--quiet",
    ]);
    r.fails_with(2, &["--stac"]);
    assert!(r.stdout.contains("converted 1 file(s)"), "{}", r.stdout);
    run(["verify", &s(&out2)]).ok();

    // Not a store: exit 4, naming it; nothing written.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let none = dir.path().join("none");
    run(["stac", &s(&empty), "--dir", &s(&none)]).fails_with(4, &["no Zarr metadata", "empty"]);
    assert!(!none.exists());
}
