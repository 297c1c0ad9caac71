//! Object-store targets against real servers on 127.0.0.1, started by scripts/test.sh:
//! an S3-API server (moto) at `NC2ZARR_TEST_S3_ENDPOINT` with bucket `nc2zarr-test`,
//! and Azurite (`NC2ZARR_TEST_AZURITE=1`) with container `nc2zarr`.

mod common;

use std::time::{Duration, Instant};

use common::*;
use nc2zarr::json::Json;
use nc2zarr::store::{StoreOptions, Target};

const BUCKET: &str = "nc2zarr-test";
const SECRET: &str = "nc2zarr-test-secret-value";
/// Azurite's well-known development account key.
const AZURITE_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

fn s3_endpoint() -> Option<String> {
    match std::env::var("NC2ZARR_TEST_S3_ENDPOINT") {
        Ok(e) => Some(e),
        Err(_) if std::env::var_os("NC2ZARR_REQUIRE_SERVERS").is_some() => panic!("NC2ZARR_TEST_S3_ENDPOINT not set"),
        Err(_) => {
            missing_prerequisite("NC2ZARR_TEST_S3_ENDPOINT not set (scripts/test.sh starts moto)");
            None
        }
    }
}

fn azurite() -> bool {
    let on = std::env::var_os("NC2ZARR_TEST_AZURITE").is_some();
    if !on && std::env::var_os("NC2ZARR_REQUIRE_SERVERS").is_some() {
        panic!("NC2ZARR_TEST_AZURITE not set");
    }
    if !on {
        missing_prerequisite("NC2ZARR_TEST_AZURITE not set (scripts/test.sh starts Azurite)");
    }
    on
}

/// Runs nc2zarr with S3 credentials for the test server.
fn run_s3(args: &[String]) -> Run {
    let out = s3_command(SECRET).args(args).output().unwrap();
    Run::from_output(&out)
}

/// A prefix no other test (or run) uses.
fn unique(name: &str) -> String {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{name}-{}-{nanos}-{n}", std::process::id())
}

fn s3_target(endpoint: &str, url: &str) -> Target {
    // SAFETY: tests in this file only read these variables.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "nc2zarr-test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET);
        std::env::set_var("AWS_REGION", "us-east-1");
    }
    Target::open_existing(
        url,
        &StoreOptions {
            endpoint: Some(endpoint.into()),
            ..Default::default()
        },
    )
    .unwrap()
}

#[test]
fn s3_convert_verify_and_open_with_xarray() {
    let Some(endpoint) = s3_endpoint() else { return };
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(8), 9, 12)
        .iter()
        .map(|p| s(p))
        .collect();
    for format in ["3", "2"] {
        let url = format!("s3://{BUCKET}/{}/era.zarr", unique("convert"));
        let mut args = vec!["convert".to_string()];
        args.extend(files.iter().cloned());
        args.extend([
            "-o".into(),
            url.clone(),
            "--endpoint".into(),
            endpoint.clone(),
            "--zarr-format".into(),
        ]);
        args.extend([format.to_string(), "--chunks".into(), "time=4".into(), "--json".into()]);
        let summary = run_s3(&args).ok().json();
        assert_eq!(summary.get("objects").and_then(Json::as_u64), Some(6 * 2 + 4));
        let mut verify = vec![
            "verify".to_string(),
            url.clone(),
            "--endpoint".into(),
            endpoint.clone(),
            "--source".into(),
        ];
        verify.extend(files.iter().cloned());
        run_s3(&verify).ok();
        if let Some(py) = python() {
            let out = std::process::Command::new(py)
                .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/compare.py"))
                .arg(&url)
                .args(&files)
                .args(["--s3-endpoint", &endpoint])
                .env("AWS_ACCESS_KEY_ID", "nc2zarr-test")
                .env("AWS_SECRET_ACCESS_KEY", SECRET)
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(out.status.success(), "xarray through s3fs differs:\n{text}");
        }
    }
}

#[test]
fn s3_verify_names_a_corrupt_object() {
    let Some(endpoint) = s3_endpoint() else { return };
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(4), 5, 6)
        .iter()
        .map(|p| s(p))
        .collect();
    let url = format!("s3://{BUCKET}/{}/c.zarr", unique("corrupt"));
    let mut args = vec!["convert".to_string()];
    args.extend(files.iter().cloned());
    args.extend([
        "-o".into(),
        url.clone(),
        "--endpoint".into(),
        endpoint.clone(),
        "--chunks".into(),
        "time=4".into(),
    ]);
    run_s3(&args).ok();
    let target = s3_target(&endpoint, &url);
    let key = "t2m/c/1/0/0";
    let mut bytes = target.get(key).unwrap().expect("chunk exists").to_vec();
    let n = bytes.len();
    bytes[n - 1] ^= 0x55;
    target.put(key, bytes.into()).unwrap();
    let r = run_s3(&["verify".into(), url, "--endpoint".into(), endpoint, "--json".into()]);
    assert_eq!(r.code, 5, "{}{}", r.stdout, r.stderr);
    let problems = r.json().get("problems").unwrap().to_compact();
    assert!(problems.contains("t2m/c/1/0/0: corrupt"), "{problems}");
}

#[test]
fn s3_errors_are_clear_fast_and_never_show_secrets() {
    let Some(endpoint) = s3_endpoint() else { return };
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(2), 3, 4)
        .iter()
        .map(|p| s(p))
        .collect();
    let base = |url: &str, extra: &[&str]| {
        let mut a = vec!["convert".to_string()];
        a.extend(files.iter().cloned());
        a.extend(["-o".into(), url.to_string()]);
        a.extend(extra.iter().map(|x| x.to_string()));
        a
    };
    // Missing bucket.
    let r = run_s3(&base("s3://no-such-bucket-nc2zarr/x.zarr", &["--endpoint", &endpoint]));
    r.fails_with(4, &["bucket/container does not exist", "create it first"]);
    // Unreachable endpoint: refused connections fail within the retry budget.
    let started = Instant::now();
    let r = run_s3(&base(
        &format!("s3://{BUCKET}/x.zarr"),
        &["--endpoint", "http://127.0.0.1:9", "--retry-timeout", "5"],
    ));
    r.fails_with(4, &["endpoint cannot be reached"]);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
    // Missing credentials (instance metadata off) fail before any request.
    let out = std::process::Command::new(bin())
        .args(base(&format!("s3://{BUCKET}/x.zarr"), &["--endpoint", &endpoint]))
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no S3 credentials"));
    // Secrets in the environment and in URLs never appear in any output.
    for r in [
        run_s3(&base(
            "s3://no-such-bucket-nc2zarr/x.zarr",
            &["--endpoint", &endpoint, "--json"],
        )),
        run_s3(&base(
            &format!("s3://user:{SECRET}@{BUCKET}/y.zarr"),
            &["--endpoint", "http://127.0.0.1:9", "--retry-timeout", "2"],
        )),
        run_s3(&[
            "verify".into(),
            format!("s3://{BUCKET}/missing.zarr?token={SECRET}"),
            "--endpoint".into(),
            endpoint.clone(),
        ]),
    ] {
        assert_ne!(r.code, 0);
        assert!(
            !r.stdout.contains(SECRET) && !r.stderr.contains(SECRET),
            "secret leaked:\n{}{}",
            r.stdout,
            r.stderr
        );
    }
}

#[test]
fn azure_convert_verify_and_wrong_key() {
    if !azurite() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(4), 5, 6)
        .iter()
        .map(|p| s(p))
        .collect();
    let url = format!("az://nc2zarr/{}/a.zarr", unique("azure"));
    let run_az = |args: Vec<String>, key: &str| {
        let out = std::process::Command::new(bin())
            .args(args)
            .env("AZURITE", "1")
            .env("AZURE_STORAGE_ACCOUNT_NAME", "devstoreaccount1")
            .env("AZURE_STORAGE_ACCOUNT_KEY", key)
            .output()
            .unwrap();
        Run::from_output(&out)
    };
    let mut args = vec!["convert".to_string()];
    args.extend(files.iter().cloned());
    args.extend(["-o".into(), url.clone(), "--zarr-format".into(), "2".into()]);
    run_az(args.clone(), AZURITE_KEY).ok();
    let mut verify = vec!["verify".to_string(), url.clone(), "--source".into()];
    verify.extend(files.iter().cloned());
    run_az(verify, AZURITE_KEY).ok();
    let wrong = "d3Jvbmcta2V5LXRoYXQtaXMtbG9uZy1lbm91Z2g=";
    let r = run_az(args, wrong);
    r.fails_with(4, &["credentials were rejected"]);
    assert!(!r.stderr.contains(wrong), "secret leaked: {}", r.stderr);
}

/// Every way the README says an S3 endpoint can be configured, used exactly as written
/// there: `AWS_ENDPOINT_URL` (with and without `AWS_ALLOW_HTTP=true`), `AWS_ENDPOINT`,
/// `--endpoint`, `--storage-option aws_endpoint=…`, and a job file's `[options]`.
#[test]
fn every_documented_s3_configuration_path_works() {
    let Some(endpoint) = s3_endpoint() else { return };
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<String> = era_set(&dir.path().join("in"), Kind::Classic, &three_months(2), 3, 4)
        .iter()
        .map(|p| s(p))
        .collect();
    let convert = |url: &str, extra: &[String], env: &[(&str, &str)]| {
        let mut cmd = s3_command(SECRET);
        cmd.arg("convert").args(&files).args(["-o", url]).args(extra);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let r = Run::from_output(&cmd.output().unwrap());
        r.ok();
        // ... and the store is there, complete.
        let mut verify = s3_command(SECRET);
        verify
            .args(["verify", url, "--endpoint", &endpoint, "--source"])
            .args(&files);
        Run::from_output(&verify.output().unwrap()).ok();
    };
    let url = |name: &str| format!("s3://{BUCKET}/{}/era.zarr", unique(name));
    convert(
        &url("env-url"),
        &[],
        &[("AWS_ENDPOINT_URL", &endpoint), ("AWS_ALLOW_HTTP", "true")],
    );
    convert(&url("env-url-plain"), &[], &[("AWS_ENDPOINT_URL", &endpoint)]);
    convert(
        &url("env-legacy"),
        &[],
        &[("AWS_ENDPOINT", &endpoint), ("AWS_ALLOW_HTTP", "true")],
    );
    convert(&url("flag"), &["--endpoint".into(), endpoint.clone()], &[]);
    convert(
        &url("storage-option"),
        &[
            "--storage-option".into(),
            format!("aws_endpoint={endpoint}"),
            "--storage-option".into(),
            "aws_allow_http=true".into(),
        ],
        &[],
    );
    // A job file, as in the README.
    let job = dir.path().join("job.toml");
    let target = url("job");
    std::fs::write(
        &job,
        format!(
            "mode = \"convert\"\ninputs = {:?}\ntarget = {target:?}\n[options]\nendpoint = {endpoint:?}\njson = true\n",
            files
        ),
    )
    .unwrap();
    let r = Run::from_output(&s3_command(SECRET).args(["run", &s(&job)]).output().unwrap());
    r.ok();
    let mut verify = s3_command(SECRET);
    verify.args(["verify", &target, "--endpoint", &endpoint]);
    Run::from_output(&verify.output().unwrap()).ok();
}
