//! The parsers nc2zarr owns never panic, whatever they are given, and round-trip what
//! they accept.

use nc2zarr::codec::Compression;
use nc2zarr::json::Json;
use nc2zarr::plan::ChunkRequest;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn chunk_specs(s in ".{0,40}", dims in "[a-z]{1,6}(=[0-9a-z-]{0,5})?(,[a-z]{1,6}=[0-9]{1,4}){0,3}") {
        let _ = s.parse::<ChunkRequest>();
        if let Ok(r) = dims.parse::<ChunkRequest>() {
            for (name, _) in &r.per_dim {
                prop_assert!(!name.is_empty());
            }
        }
    }

    #[test]
    fn sizes(s in ".{0,20}", n in 1u64..1_000_000, unit in "(|B|k|KiB|MiB|GiB|GB|TB)") {
        let _ = nc2zarr::units::parse_size(&s);
        let parsed = nc2zarr::units::parse_size(&format!("{n}{unit}")).unwrap();
        prop_assert!(parsed >= n);
    }

    #[test]
    fn compression_specs(s in ".{0,20}", level in -10i32..30) {
        let _ = s.parse::<Compression>();
        for name in ["zstd", "gzip", "shuffle-zstd", "blosc-lz4"] {
            if let Ok(c) = format!("{name}:{level}").parse::<Compression>() {
                prop_assert_eq!(c.to_string().parse::<Compression>().unwrap(), c);
            }
        }
    }

    #[test]
    fn targets_and_redaction(s in ".{0,60}", secret in "[A-Za-z0-9]{8,20}") {
        let _ = nc2zarr::store::parse_location(&s);
        let _ = nc2zarr::secrets::redact(&s);
        let url = format!("s3://user:{secret}@bucket/x?sig={secret}");
        prop_assert!(!nc2zarr::secrets::redact(&url).contains(&secret));
    }

    #[test]
    fn json(s in ".{0,80}", n in any::<f64>(), k in "[ -~]{0,10}") {
        let _ = Json::parse(&s);
        let doc = nc2zarr::json_obj! {k.as_str() => n, "list" => vec![Json::Float(n), Json::Null]};
        let back = Json::parse(&doc.to_pretty()).unwrap();
        let got = back.get(&k).and_then(Json::as_f64).unwrap();
        prop_assert!(got == n || (got.is_nan() && n.is_nan()));
    }

    #[test]
    fn classic_headers(version in prop::sample::select(vec![1u8, 2, 5]), body in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut bytes = b"CDF".to_vec();
        bytes.push(version);
        bytes.extend(body);
        let _ = nc2zarr::cdf::required_size(&bytes);
    }

    #[test]
    fn job_files(s in ".{0,120}", key in "[a-z-]{1,12}", value in ".{0,20}") {
        let dir = tempfile::tempdir().unwrap();
        let job = dir.path().join("job.toml");
        std::fs::write(&job, &s).unwrap();
        let _ = nc2zarr::cli::job_command_line(&job);
        let text = format!("mode = \"append\"\ninputs = [\"a.nc\"]\ntarget = \"t\"\n[options]\n{key} = {value:?}\n");
        std::fs::write(&job, text).unwrap();
        let _ = nc2zarr::cli::job_command_line(&job);
    }

    #[test]
    fn presets(s in ".{0,80}") {
        let _ = nc2zarr::preset::parse("fuzz", &s);
        let text = format!("description = \"x\"\n[dims]\ntime = {{ chunk = {s:?} }}\n");
        let _ = nc2zarr::preset::parse("fuzz", &text);
    }
}

#[test]
fn job_files_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    for bad in [
        "",
        "mode = 3",
        "mode = \"append\"\ninputs = []\n",
        "mode = \"append\"\ninputs = [\"a\"]\ntarget = \"t\"\nextra = 1\n",
    ] {
        std::fs::write(&job, bad).unwrap();
        assert!(nc2zarr::cli::job_command_line(&job).is_err(), "{bad:?}");
    }
    std::fs::write(&job, "mode = \"convert\"\ninputs = [\"a.nc\"]\ntarget = \"t\"\n[options]\njson = true\nchunks = \"time=1\"\nstorage-option = [\"a=1\", \"b=2\"]\n").unwrap();
    let argv = nc2zarr::cli::job_command_line(&job).unwrap();
    assert_eq!(
        argv,
        [
            "nc2zarr",
            "convert",
            "a.nc",
            "-o",
            "t",
            "--chunks",
            "time=1",
            "--json",
            "--storage-option",
            "a=1",
            "--storage-option",
            "b=2"
        ]
    );
}
