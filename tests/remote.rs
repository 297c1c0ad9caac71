//! Remote inputs: NetCDF files in S3 (moto on 127.0.0.1) and on an HTTP server convert,
//! append and verify as the same files do locally, byte for byte; errors name the URL.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::*;
use nc2zarr::json::Json;

fn store_files(store: &Path) -> Vec<(String, Vec<u8>)> {
    snapshot(store)
        .into_iter()
        .filter(|(k, _)| !k.starts_with(".nc2zarr"))
        .collect()
}

fn endpoint() -> Option<String> {
    match std::env::var("NC2ZARR_TEST_S3_ENDPOINT") {
        Ok(e) => Some(e),
        Err(_) => {
            missing_prerequisite("NC2ZARR_TEST_S3_ENDPOINT not set (scripts/test.sh starts moto)");
            None
        }
    }
}

/// Uploads `files` under `s3://nc2zarr-test/PREFIX/` (boto3 from the test venv).
fn upload(endpoint: &str, prefix: &str, files: &[PathBuf]) {
    let py = python().expect("python with boto3 (NC2ZARR_PYTHON)");
    let mut c = Command::new(py);
    c.args([
        "-c",
        "import os, sys, boto3\n\
         c = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='nc2zarr-test', \
         aws_secret_access_key='secret', region_name='us-east-1')\n\
         for f in sys.argv[3:]:\n\
         \x20   c.upload_file(f, 'nc2zarr-test', sys.argv[2] + '/' + os.path.basename(f))\n",
        endpoint,
        prefix,
    ]);
    c.args(files);
    let o = c.output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

fn s3(args: &[String]) -> Run {
    Run::from_output(&s3_command("secret").args(args).output().unwrap())
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

#[test]
fn inputs_in_s3_convert_append_and_verify_as_local_files_do() {
    let Some(endpoint) = endpoint() else { return };
    let dir = tempfile::tempdir().unwrap();
    let months = three_months(6);
    let nc4 = era_set(&dir.path().join("nc4"), Kind::Netcdf4, &months, 7, 9);
    let classic = era_set(&dir.path().join("classic"), Kind::Classic, &months, 7, 9);
    let prefix = format!("remote-{}", nanos());
    upload(&endpoint, &format!("{prefix}/nc4"), &nc4[..2]);
    upload(&endpoint, &format!("{prefix}/classic"), &classic);
    let staging = dir.path().join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    for (name, local, url) in [
        ("nc4", &nc4[..2], format!("s3://nc2zarr-test/{prefix}/nc4/*.nc")),
        (
            "classic",
            &classic[..],
            format!("s3://nc2zarr-test/{prefix}/classic/part_*.nc"),
        ),
    ] {
        let here = dir.path().join(format!("{name}-local.zarr"));
        let mut a = strings(&["convert", "-o", &s(&here), "--quiet", "--chunks", "time=4"]);
        a.extend(local.iter().map(|p| s(p)));
        run(&a).ok();
        let there = dir.path().join(format!("{name}-remote.zarr"));
        let r = s3(&strings(&[
            "convert",
            &url,
            "-o",
            &s(&there),
            "--chunks",
            "time=4",
            "--input-endpoint",
            &endpoint,
            "--temp-dir",
            &s(&staging),
        ]));
        r.ok();
        assert!(store_files(&here) == store_files(&there), "{name}: the stores differ");
        assert!(!r.stdout.contains("nc2zarr-inputs-"), "staged paths leak: {}", r.stdout);
        let inputs = read_json(&there, ".nc2zarr/manifest.json")
            .get("inputs")
            .unwrap()
            .clone();
        let inputs = inputs.as_array().unwrap();
        assert_eq!(inputs.len(), local.len());
        for (i, f) in inputs.iter().zip(local) {
            let url = f.file_name().unwrap().to_string_lossy();
            assert!(
                i.get("path")
                    .and_then(Json::as_str)
                    .unwrap()
                    .ends_with(&format!("{prefix}/{name}/{url}")),
                "{i:?}"
            );
            assert!(
                i.get("etag").and_then(Json::as_str).is_some_and(|e| !e.is_empty()),
                "{i:?}"
            );
        }
        // Staged copies are gone when the run ends.
        assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0, "staging left behind");
        // verify --source reads the same remote inputs, from the input store its flags
        // name, downloaded under its --temp-dir (a file there cannot hold them).
        let verify = |temp_dir: &Path| {
            s3(&strings(&[
                "verify",
                &s(&there),
                "--source",
                &url,
                "--input-endpoint",
                &endpoint,
                "--io-concurrency",
                "2",
                "--temp-dir",
                &s(temp_dir),
            ]))
        };
        let v = verify(&staging);
        v.ok();
        assert!(v.stdout.contains("values equal to the source"), "{}", v.stdout);
        assert_eq!(std::fs::read_dir(&staging).unwrap().count(), 0, "staging left behind");
        let not_a_dir = dir.path().join("not-a-dir");
        std::fs::write(&not_a_dir, b"").unwrap();
        verify(&not_a_dir).fails_with(3, &[&s(&not_a_dir), "staging remote inputs"]);
    }
    // A cron append over a prefix that grew: the files already in the store are listed,
    // not downloaded; the new one is appended, as locally.
    upload(&endpoint, &format!("{prefix}/nc4"), &nc4[2..]);
    let there = dir.path().join("nc4-remote.zarr");
    let url = format!("s3://nc2zarr-test/{prefix}/nc4/*.nc");
    let r = s3(&strings(&[
        "append",
        &url,
        "-o",
        &s(&there),
        "--input-endpoint",
        &endpoint,
        "--json",
    ]));
    r.ok();
    let j = r.json();
    assert_eq!(
        j.get("files_already_present").and_then(Json::as_u64),
        Some(2),
        "{}",
        r.stdout
    );
    let appended = j.get("files_appended").and_then(Json::as_array).unwrap();
    assert_eq!(appended.len(), 1);
    assert!(appended[0].as_str().unwrap().starts_with("s3://"), "{appended:?}");
    let here = dir.path().join("nc4-local.zarr");
    run(strings(&["append", &s(&nc4[2]), "-o", &s(&here), "--quiet"])).ok();
    assert!(store_files(&here) == store_files(&there), "the appended stores differ");
    let again = s3(&strings(&[
        "append",
        &url,
        "-o",
        &s(&there),
        "--input-endpoint",
        &endpoint,
        "--json",
    ]));
    again.ok();
    assert_eq!(
        again.json().get("status").and_then(Json::as_str),
        Some("nothing to append")
    );
}

#[test]
fn remote_errors_name_the_url_and_a_replaced_input_is_refused() {
    let Some(endpoint) = endpoint() else { return };
    let dir = tempfile::tempdir().unwrap();
    let files = era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(2), 3, 4);
    let prefix = format!("remote-errors-{}", nanos());
    upload(&endpoint, &prefix, &files[..1]);
    let out = s(&dir.path().join("out.zarr"));
    let missing = format!("s3://nc2zarr-test/{prefix}/nope.nc");
    s3(&strings(&["scan", &missing, "--input-endpoint", &endpoint])).fails_with(3, &[&missing, "no such object"]);
    let nothing = format!("s3://nc2zarr-test/{prefix}/*.nc4");
    s3(&strings(&["scan", &nothing, "--input-endpoint", &endpoint])).fails_with(3, &["matched no objects"]);
    // Not a netCDF file: the error names the URL, not the staged copy.
    let junk = dir.path().join("junk.nc");
    std::fs::write(&junk, b"not netcdf at all").unwrap();
    upload(&endpoint, &prefix, &[junk]);
    let junk_url = format!("s3://nc2zarr-test/{prefix}/junk.nc");
    let r = s3(&strings(&[
        "convert",
        &junk_url,
        "-o",
        &out,
        "--input-endpoint",
        &endpoint,
    ]));
    r.fails_with(3, &[&junk_url]);
    assert!(!r.stderr.contains("nc2zarr-inputs-"), "{}", r.stderr);
    assert!(!Path::new(&out).join("zarr.json").exists());
    // --json keeps the error's fields, naming the URL (it kept only the text).
    let r = s3(&strings(&["scan", &junk_url, "--input-endpoint", &endpoint, "--json"]));
    r.fails_with(3, &[]);
    assert_eq!(r.json().get("file").and_then(|j| j.as_str()), Some(junk_url.as_str()));
    assert_eq!(r.json().get("kind").and_then(|j| j.as_str()), Some("input"));
    // Wrong credentials: refused, and the secret is not printed.
    let r = Run::from_output(
        &s3_command("wrong-secret-value")
            .args(strings(&[
                "scan",
                &format!("s3://nc2zarr-test/{prefix}/*.nc"),
                "--input-endpoint",
                &endpoint,
            ]))
            .output()
            .unwrap(),
    );
    // moto accepts any secret; the run must at least not leak it.
    assert!(!r.stderr.contains("wrong-secret-value") && !r.stdout.contains("wrong-secret-value"));
    // A public bucket: no credentials, unsigned requests (--input-storage-option); without
    // the option the missing credentials are named.
    let public = format!("s3://nc2zarr-test/{prefix}/part_*.nc");
    let anonymous = |extra: &[&str]| {
        let mut c = Command::new(bin());
        c.env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_ENDPOINT_URL")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .args(["scan", &public, "--input-endpoint", &endpoint])
            .args(extra);
        Run::from_output(&c.output().unwrap())
    };
    let py = python().unwrap();
    let acl = Command::new(py)
        .args([
            "-c",
            "import sys, boto3; boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='nc2zarr-test', \
             aws_secret_access_key='secret', region_name='us-east-1').put_object_acl(Bucket='nc2zarr-test', \
             Key=sys.argv[2], ACL='public-read')",
            &endpoint,
            &format!("{prefix}/part_00.nc"),
        ])
        .output()
        .unwrap();
    assert!(acl.status.success(), "{}", String::from_utf8_lossy(&acl.stderr));
    anonymous(&["--input-storage-option", "aws_skip_signature=true"]).ok();
    anonymous(&[]).fails_with(3, &["no S3 credentials"]);
    // A file replaced after it was listed is refused, not mixed.
    let options = nc2zarr::store::StoreOptions {
        endpoint: Some(endpoint.clone()),
        ..Default::default()
    };
    // SAFETY of the environment: the library reads credentials from it; set for this process.
    let url = format!("s3://nc2zarr-test/{prefix}/part_00.nc");
    let listed = with_s3_env(|| nc2zarr::remote::list(std::slice::from_ref(&url), &options).unwrap());
    upload(&endpoint, &prefix, &files[1..2]); // a different file under another name…
    let twin = dir.path().join("twin");
    std::fs::create_dir_all(&twin).unwrap();
    std::fs::copy(&files[1], twin.join("part_00.nc")).unwrap();
    upload(&endpoint, &prefix, &[twin.join("part_00.nc")]); // …and over part_00.nc
    let e = with_s3_env(|| nc2zarr::remote::stage(&listed, dir.path(), None, &options, 4).unwrap_err());
    assert!(e.to_string().contains("changed since it was listed"), "{e}");
    assert!(e.to_string().contains(&url), "{e}");
}

/// Azurite's well-known development key (not a secret).
const AZURITE_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// Uploads `files` to Azurite's `nc2zarr` container under PREFIX (azure-storage-blob).
fn upload_azure(prefix: &str, files: &[PathBuf]) {
    let py = python().expect("python with azure-storage-blob (NC2ZARR_PYTHON)");
    let url = std::env::var("AZURITE_BLOB_STORAGE_URL").expect("AZURITE_BLOB_STORAGE_URL (scripts/test-servers.sh)");
    let o = Command::new(py)
        .args([
            "-c",
            "import os, sys\n\
             from azure.storage.blob import BlobServiceClient\n\
             conn = ('DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=' + sys.argv[2] + \
             ';BlobEndpoint=' + sys.argv[1] + '/devstoreaccount1;')\n\
             c = BlobServiceClient.from_connection_string(conn, api_version='2021-08-06').get_container_client('nc2zarr')\n\
             for f in sys.argv[4:]:\n\
             \x20   c.upload_blob(sys.argv[3] + '/' + os.path.basename(f), open(f, 'rb').read(), overwrite=True)\n",
            &url,
            AZURITE_KEY,
            prefix,
        ])
        .args(files)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn inputs_in_azure_blob_storage_convert_and_append_as_local_files_do() {
    if std::env::var_os("NC2ZARR_TEST_AZURITE").is_none() {
        if std::env::var_os("NC2ZARR_REQUIRE_SERVERS").is_some() {
            panic!("NC2ZARR_TEST_AZURITE not set");
        }
        missing_prerequisite("NC2ZARR_TEST_AZURITE not set (scripts/test.sh starts Azurite)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let files = era_set(&dir.path().join("in"), Kind::Netcdf4, &three_months(4), 5, 6);
    let prefix = format!("inputs-{}", nanos());
    upload_azure(&prefix, &files[..2]);
    let az = |args: &[String]| {
        let out = Command::new(bin())
            .args(args)
            .env("AZURITE", "1")
            .env("AZURE_STORAGE_ACCOUNT_NAME", "devstoreaccount1")
            .env("AZURE_STORAGE_ACCOUNT_KEY", AZURITE_KEY)
            .output()
            .unwrap();
        Run::from_output(&out)
    };
    let url = format!("az://nc2zarr/{prefix}/*.nc");
    let here = dir.path().join("local.zarr");
    let mut a = strings(&["convert", "-o", &s(&here), "--quiet"]);
    a.extend(files[..2].iter().map(|p| s(p)));
    run(&a).ok();
    let there = dir.path().join("azure.zarr");
    az(&strings(&["convert", &url, "-o", &s(&there), "--quiet"])).ok();
    assert!(store_files(&here) == store_files(&there), "the stores differ");
    let v = az(&strings(&["verify", &s(&there), "--source", &url]));
    v.ok();
    assert!(v.stdout.contains("values equal to the source"), "{}", v.stdout);
    // The container grows; a cron append takes only the new file.
    upload_azure(&prefix, &files[2..]);
    let r = az(&strings(&["append", &url, "-o", &s(&there), "--json"]));
    r.ok();
    assert_eq!(r.json().get("files_already_present").and_then(Json::as_u64), Some(2));
    run(strings(&["append", &s(&files[2]), "-o", &s(&here), "--quiet"])).ok();
    assert!(store_files(&here) == store_files(&there), "the appended stores differ");
    // A missing blob is named by its URL.
    let missing = format!("az://nc2zarr/{prefix}/nothing-*.nc");
    az(&strings(&["scan", &missing])).fails_with(3, &[&missing]);
}

/// Runs `f` with the test credentials in this process's environment (the tests in this
/// file that need them run one at a time through this lock).
fn with_s3_env<T>(f: impl FnOnce() -> T) -> T {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _g = LOCK.lock().unwrap();
    // SAFETY: set_var is unsafe because other threads may read the environment at once;
    // every test thread of this binary that touches it holds LOCK.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "nc2zarr-test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", "secret");
        std::env::set_var("AWS_REGION", "us-east-1");
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    }
    f()
}

/// A local HTTP server for `dir`, killed on drop.
struct Http {
    child: Child,
    port: u16,
}

impl Drop for Http {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn http_server(dir: &Path, honour_range: bool) -> Option<Http> {
    http_server_with(dir, honour_range, &[])
}

/// [`http_server`] with more options of `http_server.py` (`--log FILE`, `--delay-ms MS`).
fn http_server_with(dir: &Path, honour_range: bool, options: &[&str]) -> Option<Http> {
    let py = python()?;
    static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    // Beside the served directory's files, not among them (it may be read-only).
    let port_file = std::env::temp_dir().join(format!("nc2zarr-http-port-{}-{n}", std::process::id()));
    let _ = std::fs::remove_file(&port_file);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/http_server.py");
    let mut c = Command::new(py);
    c.arg(script).arg(dir).arg(&port_file).args(options);
    if !honour_range {
        c.arg("--no-range");
    }
    let child = c.spawn().unwrap();
    let started = Instant::now();
    while !port_file.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the HTTP server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let port = std::fs::read_to_string(&port_file).unwrap().trim().parse().unwrap();
    Some(Http { child, port })
}

#[test]
fn inputs_on_an_http_server_convert_as_local_files_do() {
    let dir = tempfile::tempdir().unwrap();
    let files = era_set(&dir.path().join("in"), Kind::Classic, &three_months(5), 6, 8);
    let Some(server) = http_server(&dir.path().join("in"), true) else {
        missing_prerequisite("python (NC2ZARR_PYTHON) for the HTTP server");
        return;
    };
    let here = dir.path().join("local.zarr");
    let mut a = strings(&["convert", "-o", &s(&here), "--quiet"]);
    a.extend(files.iter().map(|p| s(p)));
    run(&a).ok();
    let there = dir.path().join("http.zarr");
    let mut a = strings(&["convert", "-o", &s(&there), "--quiet"]);
    let urls = served_urls(&server, &files);
    a.extend(urls.iter().cloned());
    run(&a).ok();
    assert!(store_files(&here) == store_files(&there), "the stores differ");
    // A password in a URL is used but never stored (the manifest is part of the store)
    // nor printed; a later append still recognises the files by their URLs.
    let secret = "pw-not-stored";
    let with_password: Vec<String> = urls
        .iter()
        .map(|u| u.replace("http://", &format!("http://reader:{secret}@")))
        .collect();
    let protected = dir.path().join("password.zarr");
    let mut a = strings(&["convert", "-o", &s(&protected)]);
    a.extend(with_password[..2].iter().cloned());
    let r = run(&a);
    r.ok();
    let mut a = strings(&["append", "-o", &s(&protected), "--json"]);
    a.extend(with_password.iter().cloned());
    let appended = run(&a);
    appended.ok();
    assert_eq!(
        appended.json().get("files_already_present").and_then(|j| j.as_u64()),
        Some(2)
    );
    for (key, bytes) in snapshot(&protected) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(secret),
            "{key} holds the password"
        );
    }
    for out in [&r.stdout, &r.stderr, &appended.stdout, &appended.stderr] {
        assert!(!out.contains(secret), "{out}");
    }
    // Presigned URLs: the `?` starts a query, not a glob; the server answers signed GETs
    // only (no HEAD). The signature is used but neither stored nor printed, and a URL
    // signed again later names the same file for append.
    let signature = "sig0123456789abcdef";
    let signed_server = http_server_with(&dir.path().join("in"), true, &["--signed", signature]).unwrap();
    let signed = |extra: &str| -> Vec<String> {
        served_urls(&signed_server, &files)
            .iter()
            .map(|u| format!("{u}?X-Amz-Expires=60&X-Amz-Signature={signature}{extra}"))
            .collect()
    };
    let presigned = dir.path().join("presigned.zarr");
    let mut a = strings(&["convert", "-o", &s(&presigned), "--quiet"]);
    a.extend(signed("")[..2].iter().cloned());
    let r = run(&a);
    r.ok();
    let mut a = strings(&["append", "-o", &s(&presigned), "--json"]);
    a.extend(signed("&X-Amz-Date=later"));
    let appended = run(&a);
    appended.ok();
    assert_eq!(
        appended.json().get("files_already_present").and_then(|j| j.as_u64()),
        Some(2)
    );
    assert!(store_files(&protected) == store_files(&presigned), "the stores differ");
    for (key, bytes) in snapshot(&presigned) {
        assert!(
            !String::from_utf8_lossy(&bytes).contains(signature),
            "{key} holds the signature"
        );
    }
    for out in [&r.stdout, &r.stderr, &appended.stdout, &appended.stderr] {
        assert!(!out.contains(signature), "{out}");
    }
    // A query that names the file (a download endpoint) tells files apart, with no ETag
    // to do it either: the second URL of the same path is a new file, not one present.
    let by_query = http_server_with(&dir.path().join("in"), true, &["--by-query", "--no-etag"]).unwrap();
    let downloads: Vec<String> = files
        .iter()
        .map(|f| {
            format!(
                "http://127.0.0.1:{}/download?file={}&X-Amz-Signature=x",
                by_query.port,
                f.file_name().unwrap().to_string_lossy()
            )
        })
        .collect();
    let downloaded = dir.path().join("downloaded.zarr");
    let mut a = strings(&["convert", "-o", &s(&downloaded), "--quiet"]);
    a.extend(downloads[..2].iter().cloned());
    run(&a).ok();
    let mut a = strings(&["append", "-o", &s(&downloaded), "--json"]);
    a.extend(downloads.iter().map(|u| u.replace("=x", "=renewed")));
    let appended = run(&a);
    appended.ok();
    assert_eq!(
        appended.json().get("files_already_present").and_then(|j| j.as_u64()),
        Some(2),
        "{}",
        appended.stdout
    );
    assert!(store_files(&protected) == store_files(&downloaded), "the stores differ");
    let unsigned = signed("")[0].replace(signature, "forged");
    let refused = run(strings(&["scan", &unsigned]));
    refused.fails_with(3, &["403", "?[redacted]", "may have expired"]);
    // An empty object answers a one-byte GET with 416: it is an empty file, not a server
    // that ignores Range.
    std::fs::write(dir.path().join("in/empty.nc"), b"").unwrap();
    let empty = format!(
        "http://127.0.0.1:{}/empty.nc?X-Amz-Signature={signature}",
        signed_server.port
    );
    let r = run(strings(&["scan", &empty]));
    r.fails_with(3, &["empty.nc", "the file is empty"]);
    assert!(!r.stderr.contains("Range"), "{}", r.stderr);
    assert!(!refused.stderr.contains("forged"), "{}", refused.stderr);
    // Globs need a listing, which HTTP servers do not have.
    let glob = format!("http://127.0.0.1:{}/*.nc", server.port);
    run(strings(&["scan", &glob])).fails_with(3, &["name each file"]);
    // A server that ignores Range is reported as such (files above one part are read in parts).
    let big = dir.path().join("big");
    std::fs::create_dir_all(&big).unwrap();
    let big_file = era_set(&big, Kind::Classic, &three_months(100), 90, 180).remove(0);
    assert!(std::fs::metadata(&big_file).unwrap().len() > 8 << 20);
    let plain = http_server(&big, false).unwrap();
    let url = format!(
        "http://127.0.0.1:{}/{}",
        plain.port,
        big_file.file_name().unwrap().to_string_lossy()
    );
    run(strings(&["scan", &url])).fails_with(3, &[&url, "Range"]);
    // This server ignores If-Match, as many do: a file replaced after it was listed is
    // still refused, by the ETag and size of the answer.
    let served = served_urls(&server, &files);
    let listed = nc2zarr::remote::list(&served[..1], &Default::default()).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::copy(&files[1], &files[0]).unwrap();
    let e = nc2zarr::remote::stage(&listed, dir.path(), None, &Default::default(), 4).unwrap_err();
    assert!(e.to_string().contains("changed since it was listed"), "{e}");
    assert!(e.to_string().contains(&served[0]), "{e}");
}

#[test]
fn names_with_spaces_percent_signs_and_reserved_characters_are_read_as_named() {
    let Some(endpoint) = endpoint() else { return };
    let dir = tempfile::tempdir().unwrap();
    let made = era_set(&dir.path().join("made"), Kind::Netcdf4, &three_months(5), 6, 8);
    // Keys S3 allows and object_store's `Path::from` would percent-encode into other keys.
    let odd = dir.path().join("odd");
    std::fs::create_dir_all(&odd).unwrap();
    let names = ["a b.nc", "c~d=1.nc", "e%41#.nc"];
    let files: Vec<PathBuf> = made
        .iter()
        .zip(names)
        .map(|(f, n)| {
            std::fs::copy(f, odd.join(n)).unwrap();
            odd.join(n)
        })
        .collect();
    let here = dir.path().join("local.zarr");
    let mut a = strings(&["convert", "-o", &s(&here), "--quiet"]);
    a.extend(files.iter().map(|p| s(p)));
    run(&a).ok();
    let prefix = format!("odd-{}/year=2020~x#1", nanos());
    upload(&endpoint, &prefix, &files);
    // A prefix gives the NetCDF files right under it, as a local directory does: not
    // other objects, not those further down.
    let readme = dir.path().join("README.txt");
    std::fs::write(&readme, "not netCDF").unwrap();
    upload(&endpoint, &prefix, &[readme]);
    upload(&endpoint, &format!("{prefix}/deeper"), &files[..1]);
    let url = |n: &str| format!("s3://nc2zarr-test/{prefix}/{n}");
    let by_glob = vec![url("*.nc")];
    let by_name: Vec<String> = names.iter().map(|n| url(n)).collect();
    let by_prefix = vec![format!("s3://nc2zarr-test/{prefix}")];
    let by_prefix_slash = vec![url("")];
    for (i, args) in [by_glob, by_name, by_prefix, by_prefix_slash].into_iter().enumerate() {
        let there = dir.path().join(format!("s3-{i}.zarr"));
        let mut a = strings(&["convert", "-o", &s(&there), "--quiet", "--input-endpoint", &endpoint]);
        a.extend(args);
        s3(&a).ok();
        assert!(store_files(&here) == store_files(&there), "{i}: the stores differ");
    }
    let empty = format!("s3://nc2zarr-test/{prefix}/deeper-not");
    s3(&strings(&["scan", &empty, "--input-endpoint", &endpoint]))
        .fails_with(3, &[&empty, "no such object, and no objects ending in .nc, .nc4"]);
    // HTTP URLs are percent-encoded, as browsers show them; a space may also be written as is.
    let server = http_server(&odd, true).unwrap();
    let http = |n: &str| format!("http://127.0.0.1:{}/{n}", server.port);
    let there = dir.path().join("http.zarr");
    let mut a = strings(&["convert", "-o", &s(&there), "--quiet"]);
    a.extend([http("a b.nc"), http("c~d=1.nc"), http("e%2541%23.nc")]);
    run(&a).ok();
    assert!(store_files(&here) == store_files(&there), "http: the stores differ");
}

#[test]
fn every_devset_file_converts_from_an_http_server_as_from_disk() {
    let Some(root) = devset_dir() else { return };
    let Some(server) = http_server(&root, true) else {
        missing_prerequisite("python (NC2ZARR_PYTHON) for the HTTP server");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (mut same, mut refused) = (0, 0);
    for (i, f) in devset_files(&root).iter().enumerate() {
        let rel = f.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
        let url = format!("http://127.0.0.1:{}/{rel}", server.port);
        let (here, there) = (
            dir.path().join(format!("{i}-local.zarr")),
            dir.path().join(format!("{i}-http.zarr")),
        );
        let local = run(strings(&["convert", &s(f), "-o", &s(&here), "--quiet"]));
        let remote = run(strings(&["convert", &url, "-o", &s(&there), "--quiet"]));
        assert_eq!(local.code, remote.code, "{rel}: {}\n{}", local.stderr, remote.stderr);
        match local.code {
            0 => {
                assert!(store_files(&here) == store_files(&there), "{rel}: the stores differ");
                same += 1;
            }
            3 => {
                // The same refusal, naming the URL instead of the path.
                assert_eq!(local.stderr, remote.stderr.replace(&url, &s(f)), "{rel}");
                refused += 1;
            }
            code => panic!("{rel}: exit {code}: {}", local.stderr),
        }
    }
    eprintln!("{same} devset files converted identically over HTTP, {refused} refused both ways");
    assert!(same >= 40, "{same} converted");
}

/// The URLs under which `server` serves `files` (by their names).
fn served_urls(server: &Http, files: &[PathBuf]) -> Vec<String> {
    files
        .iter()
        .map(|f| {
            format!(
                "http://127.0.0.1:{}/{}",
                server.port,
                f.file_name().unwrap().to_string_lossy()
            )
        })
        .collect()
}

/// One request as `http_server.py --log` records it.
struct Logged {
    method: String,
    path: String,
    bytes: u64,
    start: f64,
    end: f64,
}

fn request_log(path: &Path) -> Vec<Logged> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            Logged {
                method: f[0].to_string(),
                path: f[1].to_string(),
                bytes: f[2].parse().unwrap(),
                start: f[3].parse().unwrap(),
                end: f[4].parse().unwrap(),
            }
        })
        .collect()
}

/// The most requests of `method` that were being answered at one moment.
fn most_at_once(log: &[Logged], method: &str) -> usize {
    let spans: Vec<(f64, f64)> = log
        .iter()
        .filter(|r| r.method == method)
        .map(|r| (r.start, r.end))
        .collect();
    spans
        .iter()
        .map(|&(t, _)| spans.iter().filter(|&&(a, b)| a <= t && t < b).count())
        .max()
        .unwrap_or(0)
}

/// Eight ERA5-like months of four 6-hourly steps each, from 2020-01-01.
fn eight_months() -> Vec<Month> {
    (0..8)
        .map(|m| Month {
            times: (0..4).map(|i| 1_051_896 + 6 * (m * 4 + i)).collect(),
            units: "hours since 1900-01-01 00:00:00",
        })
        .collect()
}

#[test]
fn each_remote_input_costs_one_head_and_one_get_per_part_and_heads_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let months = eight_months();
    let served = dir.path().join("in");
    let files = era_set(&served, Kind::Netcdf4, &months, 6, 8);
    let log_path = dir.path().join("requests.log");
    // Every request takes 150 ms: eight HEADs one after another would not overlap.
    let Some(server) = http_server_with(&served, true, &["--log", &s(&log_path), "--delay-ms", "150"]) else {
        missing_prerequisite("python (NC2ZARR_PYTHON) for the HTTP server");
        return;
    };
    let urls = served_urls(&server, &files);
    let out = dir.path().join("out.zarr");
    let mut a = strings(&["convert", "-o", &s(&out), "--quiet"]);
    a.extend(urls.iter().cloned());
    run(&a).ok();
    let log = request_log(&log_path);
    for f in &files {
        let name = format!("/{}", f.file_name().unwrap().to_string_lossy());
        let size = std::fs::metadata(f).unwrap().len();
        let of_file: Vec<&Logged> = log.iter().filter(|r| r.path == name).collect();
        let heads = of_file.iter().filter(|r| r.method == "HEAD").count();
        let gets = of_file.iter().filter(|r| r.method == "GET").count() as u64;
        let fetched: u64 = of_file.iter().map(|r| r.bytes).sum();
        assert_eq!(heads, 1, "{name}: HEAD requests");
        assert!(gets <= size.div_ceil(8 << 20), "{name}: {gets} GETs for {size} bytes");
        assert_eq!(fetched, size, "{name}: bytes fetched");
    }
    let overlapping = most_at_once(&log, "HEAD");
    assert!(
        overlapping >= 4,
        "at most {overlapping} HEAD requests ran at once: listing is sequential"
    );
    // `--io-concurrency N` bounds the requests in flight; 1 sends them one by one.
    let limited = dir.path().join("limited.zarr");
    let convert_limited = ["convert", "-o", &s(&limited), "--quiet"];
    for (command, n, allowed) in [
        (&["scan"][..], "1", 1..=1),
        (&["scan"], "3", 2..=3),
        (&convert_limited, "1", 1..=1),
    ] {
        let before = request_log(&log_path).len();
        let mut a = strings(command);
        a.extend(["--io-concurrency".to_string(), n.to_string()]);
        a.extend(urls.iter().cloned());
        run(&a).ok();
        let log = request_log(&log_path);
        for method in ["HEAD", "GET"] {
            let most = most_at_once(&log[before..], method);
            assert!(
                allowed.contains(&most),
                "{command:?} --io-concurrency {n}: {most} {method}s at once"
            );
        }
    }
}

#[test]
fn listing_keeps_argument_order_finds_duplicates_and_names_the_first_bad_url() {
    let Some(endpoint) = endpoint() else { return };
    let dir = tempfile::tempdir().unwrap();
    let prefix = format!("remote-list-{}", nanos());
    let names = ["a1.nc", "a2.nc", "b.nc", "c.nc"];
    let files: Vec<PathBuf> = names.iter().map(|n| dir.path().join(n)).collect();
    for (f, n) in files.iter().zip(1..) {
        std::fs::write(f, vec![b'x'; n]).unwrap();
    }
    upload(&endpoint, &prefix, &files);
    let url = |n: &str| format!("s3://nc2zarr-test/{prefix}/{n}");
    let options = nc2zarr::store::StoreOptions {
        endpoint: Some(endpoint.clone()),
        ..Default::default()
    };
    let listed = with_s3_env(|| nc2zarr::remote::list(&[url("c.nc"), url("a*.nc"), url("b.nc")], &options).unwrap());
    let got: Vec<(String, u64)> = listed.iter().map(|f| (f.url.clone(), f.size)).collect();
    assert_eq!(
        got,
        [(url("c.nc"), 4), (url("a1.nc"), 1), (url("a2.nc"), 2), (url("b.nc"), 3)],
        "argument order, a glob's matches sorted in its place"
    );
    assert!(listed.iter().all(|f| f.etag.is_some()), "{listed:?}");
    let err = with_s3_env(|| nc2zarr::remote::list(&[url("a*.nc"), url("a2.nc")], &options).unwrap_err());
    assert!(
        err.to_string().contains("more than once") && err.to_string().contains("a2.nc"),
        "{err}"
    );
    // Of several missing files, the first named is reported, however the HEADs finish.
    for _ in 0..3 {
        let args: Vec<String> = [url("b.nc"), url("gone1.nc")]
            .into_iter()
            .chain((2..10).map(|i| url(&format!("gone{i}.nc"))))
            .collect();
        let err = with_s3_env(|| nc2zarr::remote::list(&args, &options).unwrap_err()).to_string();
        assert!(err.contains("gone1.nc") && err.contains("no such object"), "{err}");
    }
}

/// Runs the tasks of the split run prepared in `store` one by one (no endpoint given:
/// the job says where the inputs are); returns the inputs each one downloaded, after
/// checking that the bytes it reports downloading are the sizes of that many of `files`.
fn run_tasks(store: &Path, tasks: usize, files: &[PathBuf]) -> Vec<u64> {
    let sizes: Vec<u64> = files.iter().map(|f| std::fs::metadata(f).unwrap().len()).collect();
    // The sums of the sizes of `n` of the files.
    let sums = |n: u64| -> Vec<u64> {
        (0u32..1 << sizes.len())
            .filter(|m| u64::from(m.count_ones()) == n)
            .map(|m| (0..sizes.len()).filter(|i| m >> i & 1 == 1).map(|i| sizes[i]).sum())
            .collect()
    };
    (0..tasks)
        .map(|i| {
            let r = s3(&strings(&["task", &s(store), "--index", &i.to_string(), "--json"]));
            r.ok();
            let j = r.json();
            let inputs = j.get("inputs_staged").and_then(|j| j.as_u64()).unwrap();
            let bytes = j.get("bytes_staged").and_then(|j| j.as_u64()).unwrap();
            assert!(
                sums(inputs).contains(&bytes),
                "task {i}: {inputs} files, {bytes} bytes: {sizes:?}"
            );
            inputs
        })
        .collect()
}

#[test]
fn split_runs_over_remote_inputs_download_in_each_task_only_the_files_it_reads() {
    let Some(endpoint) = endpoint() else { return };
    let dir = tempfile::tempdir().unwrap();
    let months = eight_months();
    let files = era_set(&dir.path().join("in"), Kind::Netcdf4, &months, 6, 8);
    let prefix = format!("remote-split-{}", nanos());
    upload(&endpoint, &prefix, &files);
    let urls: Vec<String> = files
        .iter()
        .map(|f| {
            format!(
                "s3://nc2zarr-test/{prefix}/{}",
                f.file_name().unwrap().to_string_lossy()
            )
        })
        .collect();
    let layout = ["--chunks", "time=4"];
    let single = dir.path().join("single.zarr");
    let mut a = strings(&["convert", "-o", &s(&single), "--quiet"]);
    a.extend(files.iter().map(|f| s(f)).chain(strings(&layout)));
    run(&a).ok();

    // prepare lists and scans the inputs; each task downloads what its blocks read,
    // reaching the inputs by the endpoint the job saved.
    let split = dir.path().join("split.zarr");
    let glob = format!("s3://nc2zarr-test/{prefix}/part_*.nc");
    let prepare = |out: &Path, tasks: &str, extra: &[&str]| {
        let mut a = strings(&[
            "prepare",
            &glob,
            "-o",
            &s(out),
            "--tasks",
            tasks,
            "--input-endpoint",
            &endpoint,
        ]);
        a.extend(strings(&layout).into_iter().chain(strings(extra)));
        s3(&a)
    };
    prepare(&split, "4", &[]).ok();
    let staged = run_tasks(&split, 4, &files);
    // Each task takes a quarter of the time axis of every array: 2 files, 3 where its
    // stretch straddles two files (8, 3, 5 and 6 before tasks took stretches and prepare
    // the coordinates).
    assert!(
        staged.iter().all(|&n| n <= 3) && staged.iter().sum::<u64>() <= 8 + 3,
        "tasks download the files of their own stretch, not every input (prepare writes the coordinates \
         that span them): {staged:?}"
    );
    s3(&strings(&["commit", &s(&split)])).ok();
    assert!(store_files(&single) == store_files(&split), "the stores differ");
    let mut v = strings(&["verify", &s(&split), "--endpoint", &endpoint, "--source"]);
    v.extend(urls.iter().cloned());
    s3(&v).ok();

    // Credentials in the input options would be saved in the job: refused, nothing written.
    let refused = dir.path().join("refused.zarr");
    prepare(
        &refused,
        "2",
        &["--input-storage-option", "aws_secret_access_key=not-for-a-file"],
    )
    .fails_with(2, &["in clear", "AWS_SECRET_ACCESS_KEY"]);
    assert!(!refused.exists());
    let with_password = endpoint.replace("http://", "http://user:pw@");
    let mut a = strings(&["prepare", &glob, "-o", &s(&refused), "--tasks", "2"]);
    a.extend(strings(&["--input-endpoint", &with_password]));
    s3(&a).fails_with(2, &["carries credentials", "in clear"]);
    assert!(!refused.exists());
    // prepare downloads the inputs to scan them under --temp-dir.
    let not_a_dir = dir.path().join("file");
    std::fs::write(&not_a_dir, "").unwrap();
    prepare(&refused, "2", &["--temp-dir", &s(&not_a_dir.join("sub"))]).fails_with(3, &[&s(&not_a_dir)]);
    assert!(!refused.exists());

    // An input replaced after prepare is refused by the task that reads it.
    let pinned = dir.path().join("pinned.zarr");
    prepare(&pinned, "2", &[]).ok();
    let twin = dir.path().join("twin");
    std::fs::create_dir_all(&twin).unwrap();
    std::fs::copy(&files[0], twin.join("part_07.nc")).unwrap();
    upload(&endpoint, &prefix, &[twin.join("part_07.nc")]);
    let last = s3(&strings(&["task", &s(&pinned), "--index", "1", "--quiet"]));
    last.fails_with(3, &["changed since it was listed", &urls[7]]);
    upload(&endpoint, &prefix, &files[7..]);

    // A split append over remote inputs writes what one append writes.
    let appended = dir.path().join("appended.zarr");
    let plain = dir.path().join("plain.zarr");
    let append = |out: &Path, extra: &[&str]| {
        let mut a = strings(&["convert", "-o", &s(out), "--quiet", "--input-endpoint", &endpoint]);
        a.extend(urls[..6].iter().cloned().chain(strings(&layout)));
        s3(&a).ok();
        let mut a = strings(&["append", &glob, "-o", &s(out), "--quiet", "--input-endpoint", &endpoint]);
        a.extend(strings(extra));
        s3(&a).ok();
    };
    append(&plain, &[]);
    append(&appended, &["--tasks", "2"]);
    let staged = run_tasks(&appended, 2, &files);
    assert!(staged.iter().all(|&n| (1..=2).contains(&n)), "{staged:?}");
    s3(&strings(&["commit", &s(&appended)])).ok();
    let before = snapshot(&appended);
    let mut a = strings(&[
        "append",
        &glob,
        "-o",
        &s(&appended),
        "--tasks",
        "2",
        "--input-endpoint",
        &endpoint,
    ]);
    a.extend(strings(&[
        "--input-storage-option",
        "aws_secret_access_key=not-for-a-file",
    ]));
    s3(&a).fails_with(2, &["in clear"]);
    assert!(snapshot(&appended) == before, "a refused append --tasks writes nothing");
    let (a, b) = (store_files(&plain), store_files(&appended));
    let differ: Vec<&String> = a.iter().zip(&b).filter(|(x, y)| x != y).map(|(x, _)| &x.0).collect();
    assert!(
        a == b,
        "the appended store differs: {} vs {} keys, {differ:?}",
        a.len(),
        b.len()
    );

    // A server that sends no ETag cannot pin a file: a replacement of the same size is
    // caught by the fingerprint (size, first 64 KiB) prepare recorded.
    let served = dir.path().join("served");
    let served_files = era_set(&served, Kind::Classic, &eight_months()[..2], 6, 8);
    let server = http_server_with(&served, true, &["--no-etag"]).unwrap();
    let unpinned = dir.path().join("unpinned.zarr");
    let mut a = strings(&["prepare", "-o", &s(&unpinned), "--tasks", "1"]);
    a.extend(served_urls(&server, &served_files));
    run(&a).ok();
    std::fs::copy(&served_files[1], &served_files[0]).unwrap();
    run(strings(&["task", &s(&unpinned), "--index", "0"])).fails_with(
        3,
        &[
            "changed since it was listed at prepare time",
            &served_urls(&server, &served_files)[0],
        ],
    );
}

/// Bytes of file data the server sent (GET answers) since `from` requests were logged;
/// returns them and the new count.
fn got_since(log: &Path, from: usize) -> (u64, usize) {
    let all = request_log(log);
    let bytes = all[from..].iter().filter(|r| r.method == "GET").map(|r| r.bytes).sum();
    (bytes, all.len())
}

/// The copies an input cache holds (its lock file and unfinished downloads left out).
fn cached(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| r.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    out.retain(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'));
    out.sort();
    out
}

#[test]
fn an_input_cache_keeps_downloads_between_runs_by_url_and_etag() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("in");
    let files = era_set(&served, Kind::Classic, &three_months(5), 6, 8);
    let size = |f: &Path| std::fs::metadata(f).unwrap().len();
    let total: u64 = files.iter().map(|f| size(f)).sum();
    let log = dir.path().join("requests.log");
    let Some(server) = http_server_with(&served, true, &["--log", &s(&log)]) else {
        missing_prerequisite("python (NC2ZARR_PYTHON) for the HTTP server");
        return;
    };
    let urls = served_urls(&server, &files);
    let cache = dir.path().join("cache");
    let convert = |out: &str, extra: &[&str]| {
        let mut a = strings(&["convert", "-o", &s(&dir.path().join(out)), "--quiet"]);
        a.extend(urls.iter().cloned().chain(strings(extra)));
        run(&a).ok();
        dir.path().join(out)
    };
    let local = dir.path().join("local.zarr");
    let mut a = strings(&["convert", "-o", &s(&local), "--quiet"]);
    a.extend(files.iter().map(|f| s(f)));
    run(&a).ok();
    // The first run downloads every file and keeps it; the second downloads nothing.
    let first = convert("first.zarr", &["--input-cache", &s(&cache)]);
    let (bytes, seen) = got_since(&log, 0);
    assert_eq!(bytes, total);
    assert_eq!(cached(&cache).len(), files.len());
    let second = convert("second.zarr", &["--input-cache", &s(&cache)]);
    let (bytes, seen) = got_since(&log, seen);
    assert_eq!(bytes, 0, "the cached copies are read, nothing downloaded");
    assert!(store_files(&first) == store_files(&local) && store_files(&second) == store_files(&local));
    // A file replaced on the server (another ETag) is downloaded again, not read stale.
    std::thread::sleep(Duration::from_millis(20));
    let mut bytes0 = std::fs::read(&files[0]).unwrap();
    // Same size and layout, other values: the last 8 data bytes flipped.
    let n = bytes0.len();
    bytes0[n - 8..].iter_mut().for_each(|b| *b ^= 0x5a);
    std::fs::write(&files[0], &bytes0).unwrap();
    let third = convert("third.zarr", &["--input-cache", &s(&cache)]);
    let (bytes, seen) = got_since(&log, seen);
    assert_eq!(bytes, size(&files[0]), "only the replaced file is downloaded");
    let mut a = strings(&["convert", "-o", &s(&dir.path().join("local2.zarr")), "--quiet"]);
    a.extend(files.iter().map(|f| s(f)));
    run(&a).ok();
    assert!(store_files(&third) == store_files(&dir.path().join("local2.zarr")));
    assert!(store_files(&third) != store_files(&local));
    // Trimmed to its size when a run ends, least recently used first: 1 KiB keeps none.
    convert(
        "fourth.zarr",
        &["--input-cache", &s(&cache), "--input-cache-size", "1KiB"],
    );
    let (_, seen) = got_since(&log, seen);
    assert!(cached(&cache).is_empty(), "{:?}", cached(&cache));
    run(strings(&["scan", &urls[0], "--input-cache-size", "1GiB"])).fails_with(2, &["--input-cache"]);
    // A split run on one machine: prepare downloads and keeps the inputs, its tasks read
    // them from the cache.
    let split = dir.path().join("split.zarr");
    let mut a = strings(&["prepare", "-o", &s(&split), "--tasks", "2", "--input-cache", &s(&cache)]);
    a.extend(urls.iter().cloned());
    run(&a).ok();
    let (bytes, seen) = got_since(&log, seen);
    assert_eq!(bytes, total);
    for i in 0..2 {
        let mut a = strings(&["task", &s(&split), "--index", &i.to_string(), "--json"]);
        a.extend(strings(&["--input-cache", &s(&cache)]));
        let r = run(&a);
        r.ok();
        assert_eq!(
            r.json().get("bytes_staged").and_then(|j| j.as_u64()),
            Some(0),
            "{}",
            r.stdout
        );
    }
    let (bytes, _) = got_since(&log, seen);
    assert_eq!(bytes, 0);
    run(strings(&["commit", &s(&split)])).ok();
    assert!(store_files(&split) == store_files(&third));
    // Without an ETag nothing tells a new version from the copy: nothing is kept.
    let no_etag = http_server_with(&served, true, &["--no-etag"]).unwrap();
    let bare = dir.path().join("bare-cache");
    let mut a = strings(&["convert", "-o", &s(&dir.path().join("bare.zarr")), "--quiet"]);
    a.extend(
        served_urls(&no_etag, &files)
            .into_iter()
            .chain(strings(&["--input-cache", &s(&bare)])),
    );
    run(&a).ok();
    assert!(cached(&bare).is_empty());
}

#[test]
fn runs_sharing_an_input_cache_at_once_read_whole_copies_and_keep_it_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("in");
    let files = era_set(&served, Kind::Netcdf4, &eight_months(), 6, 8);
    let Some(server) = http_server(&served, true) else {
        missing_prerequisite("python (NC2ZARR_PYTHON) for the HTTP server");
        return;
    };
    let urls = served_urls(&server, &files);
    let local = dir.path().join("local.zarr");
    let mut a = strings(&["convert", "-o", &s(&local), "--quiet"]);
    a.extend(files.iter().map(|f| s(f)));
    run(&a).ok();
    let cache = dir.path().join("cache");
    // Rounds of four runs at once on one cache, started empty: they download the same
    // files side by side, and the ones given a tiny size trim the cache when they end
    // while the others still read from it.
    for round in 0..3 {
        let children: Vec<_> = (0..4)
            .map(|i| {
                let out = dir.path().join(format!("r{round}-{i}.zarr"));
                let mut a = strings(&["convert", "-o", &s(&out), "--quiet", "--input-cache", &s(&cache)]);
                if i % 2 == 1 {
                    a.extend(strings(&["--input-cache-size", "1KiB"]));
                }
                a.extend(urls.iter().cloned());
                let child = std::process::Command::new(bin())
                    .args(&a)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                (out, child)
            })
            .collect();
        for (out, child) in children {
            let output = child.wait_with_output().unwrap();
            Run::from_output(&output).ok();
            assert!(
                store_files(&out) == store_files(&local),
                "{} differs from the local conversion",
                out.display()
            );
        }
        // Whatever the cache kept is a whole copy of one of the files.
        let originals: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
        for copy in cached(&cache) {
            let bytes = std::fs::read(&copy).unwrap();
            assert!(
                originals.contains(&bytes),
                "{} is no whole copy of an input",
                copy.display()
            );
        }
    }
    // No unfinished download is left behind.
    let partial: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with(".partial"))
        .collect();
    assert!(partial.is_empty(), "{partial:?}");
}
