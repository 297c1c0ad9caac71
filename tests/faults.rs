//! Faults between nc2zarr and a real S3-API server (moto, started by scripts/test.sh at
//! `NC2ZARR_TEST_S3_ENDPOINT`): a fault-injecting HTTP proxy on 127.0.0.1 answers a
//! share of requests with 500/503, resets connections, delays responses or truncates
//! their bodies. With 10% faults a conversion succeeds and verifies; with every
//! request failing it stops cleanly (no consolidated metadata, `verify` says
//! interrupted) and the same command resumes once the faults stop.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

const BUCKET: &str = "nc2zarr-test";

/// What the proxy does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Action {
    Forward,
    Status500,
    Status503,
    Reset,
    Slow,
    Truncate,
}

/// A one-request-per-connection HTTP proxy that injects faults.
struct FaultProxy {
    addr: SocketAddr,
    /// Share of requests (in percent) that get a fault.
    fault_percent: Arc<AtomicU32>,
    /// Requests after which every request fails with 503 (`u64::MAX`: never).
    fail_after: Arc<AtomicU64>,
    counts: Arc<Mutex<HashMap<Action, u64>>>,
}

impl FaultProxy {
    fn start(upstream: SocketAddr, seed: u64) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let fault_percent = Arc::new(AtomicU32::new(0));
        let fail_after = Arc::new(AtomicU64::new(u64::MAX));
        let counts = Arc::new(Mutex::new(HashMap::new()));
        let rng = Arc::new(Mutex::new(seed.max(1)));
        let served = Arc::new(AtomicU64::new(0));
        let (fp, fa, c) = (Arc::clone(&fault_percent), Arc::clone(&fail_after), Arc::clone(&counts));
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let (fp, fa, c, rng, served) = (
                    Arc::clone(&fp),
                    Arc::clone(&fa),
                    Arc::clone(&c),
                    Arc::clone(&rng),
                    Arc::clone(&served),
                );
                std::thread::spawn(move || {
                    let n = served.fetch_add(1, Ordering::SeqCst);
                    let action = if n >= fa.load(Ordering::SeqCst) {
                        Action::Status503
                    } else {
                        pick(&mut rng.lock().unwrap(), fp.load(Ordering::SeqCst))
                    };
                    *c.lock().unwrap().entry(action).or_insert(0) += 1;
                    let _ = serve(client, upstream, action);
                });
            }
        });
        FaultProxy {
            addr,
            fault_percent,
            fail_after,
            counts,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn faults(&self) -> u64 {
        let counts = self.counts.lock().unwrap();
        counts
            .iter()
            .filter(|(a, _)| **a != Action::Forward)
            .map(|(_, n)| n)
            .sum()
    }
}

/// xorshift64: a deterministic fault sequence per seed.
fn next(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

fn pick(state: &mut u64, percent: u32) -> Action {
    if next(state) % 100 >= percent as u64 {
        return Action::Forward;
    }
    match next(state) % 10 {
        0..=2 => Action::Status503,
        3..=4 => Action::Status500,
        5..=6 => Action::Reset,
        7..=8 => Action::Slow,
        _ => Action::Truncate,
    }
}

/// Reads one HTTP message head and its body (Content-Length or chunked).
fn read_message(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 64 * 1024];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut tmp)?;
        if n == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = head.contains("transfer-encoding: chunked");
    loop {
        let done = match length {
            Some(len) => buf.len() >= head_end + len,
            None if chunked => buf.ends_with(b"0\r\n\r\n"),
            None => true,
        };
        if done {
            return Ok(Some(buf));
        }
        let n = stream.read(&mut tmp)?;
        if n == 0 {
            return Ok(Some(buf));
        }
        buf.extend_from_slice(&tmp[..n]);
    }
}

/// Sets or replaces the `Connection` header of a message with `close`.
fn connection_close(message: &[u8]) -> Vec<u8> {
    let end = message
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(message.len(), |i| i + 4);
    let head = String::from_utf8_lossy(&message[..end]);
    let mut lines: Vec<&str> = head
        .split("\r\n")
        .filter(|l| !l.is_empty() && !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    lines.push("Connection: close");
    let mut out = lines.join("\r\n").into_bytes();
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(&message[end..]);
    out
}

fn serve(mut client: TcpStream, upstream: SocketAddr, action: Action) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(30)))?;
    let Some(request) = read_message(&mut client)? else {
        return Ok(());
    };
    let error = |code: &str| {
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>InternalError</Code><Message>injected {code}</Message></Error>"
        );
        format!(
            "HTTP/1.1 {code}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    match action {
        Action::Status500 => return client.write_all(error("500 Internal Server Error").as_bytes()),
        Action::Status503 => return client.write_all(error("503 Service Unavailable").as_bytes()),
        Action::Reset => {
            // SO_LINGER {on, 0}: close() sends a RST instead of a FIN.
            let linger = libc::linger {
                l_onoff: 1,
                l_linger: 0,
            };
            // SAFETY: a valid socket and a correctly sized option value.
            unsafe {
                libc::setsockopt(
                    client.as_raw_fd(),
                    libc::SOL_SOCKET,
                    libc::SO_LINGER,
                    (&linger as *const libc::linger).cast(),
                    std::mem::size_of::<libc::linger>() as libc::socklen_t,
                )
            };
            return Ok(());
        }
        Action::Slow => std::thread::sleep(Duration::from_millis(1500)),
        Action::Forward | Action::Truncate => {}
    }
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(&connection_close(&request))?;
    let mut response = Vec::new();
    up.read_to_end(&mut response)?;
    let response = connection_close(&response);
    if action == Action::Truncate {
        let end = response.windows(4).position(|w| w == b"\r\n\r\n").map_or(0, |i| i + 4);
        let body = response.len() - end;
        if body > 1 {
            // The headers promise the whole body; half of it arrives, then the connection closes.
            return client.write_all(&response[..end + body / 2]);
        }
    }
    client.write_all(&response)
}

fn moto() -> Option<SocketAddr> {
    match std::env::var("NC2ZARR_TEST_S3_ENDPOINT") {
        Ok(e) => {
            let hostport = e.trim_start_matches("http://").trim_end_matches('/');
            Some(
                hostport
                    .parse()
                    .expect("NC2ZARR_TEST_S3_ENDPOINT is http://127.0.0.1:PORT"),
            )
        }
        Err(_) if std::env::var_os("NC2ZARR_REQUIRE_SERVERS").is_some() => panic!("NC2ZARR_TEST_S3_ENDPOINT not set"),
        Err(_) => {
            missing_prerequisite("NC2ZARR_TEST_S3_ENDPOINT not set (scripts/test.sh starts moto)");
            None
        }
    }
}

/// Runs nc2zarr with S3 credentials for the test server and `endpoint`.
fn run_s3(args: &[&str], endpoint: &str) -> Run {
    run_s3_env(args, endpoint, &[])
}

/// [`run_s3`] with extra environment variables.
fn run_s3_env(args: &[&str], endpoint: &str, env: &[(&str, &str)]) -> Run {
    let out = s3_command("nc2zarr-test-secret")
        .envs(env.iter().copied())
        .args(args)
        .args(["--endpoint", endpoint])
        .output()
        .unwrap();
    Run::from_output(&out)
}

fn prefix(name: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("s3://{BUCKET}/faults/{name}-{}-{nanos}", std::process::id())
}

fn inputs(dir: &std::path::Path) -> Vec<String> {
    era_set(dir, Kind::Netcdf4, &three_months(60), 6, 8)
        .iter()
        .map(|p| p.display().to_string())
        .collect()
}

#[test]
fn ten_percent_faults_still_convert_and_verify() {
    let Some(upstream) = moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let files = inputs(dir.path());
    let proxy = FaultProxy::start(upstream, 0x5eed_0001);
    proxy.fault_percent.store(10, Ordering::SeqCst);
    let url = prefix("ten");
    let mut args = vec!["convert"];
    args.extend(files.iter().map(String::as_str));
    // Small chunks: many requests, so the 10% share means dozens of faults.
    args.extend(["-o", &url, "--chunks", "time=1", "--retry-timeout", "60"]);
    let r = run_s3(&args, &proxy.endpoint());
    r.ok();
    let faults = proxy.faults();
    eprintln!("faults injected during convert: {:?}", proxy.counts.lock().unwrap());
    assert!(faults >= 20, "only {faults} faults were injected");
    // verify through the faulty proxy, then straight against the server with values.
    run_s3(&["verify", &url], &proxy.endpoint()).ok();
    let mut verify = vec!["verify", url.as_str(), "--source"];
    verify.extend(files.iter().map(String::as_str));
    let r = run_s3(&verify, &format!("http://{upstream}"));
    r.ok();
    assert!(r.stdout.contains("values equal to the source"), "{}", r.stdout);
}

#[test]
fn faults_beyond_the_retry_budget_stop_cleanly_and_the_rerun_resumes() {
    let Some(upstream) = moto() else { return };
    let dir = tempfile::tempdir().unwrap();
    let files = inputs(dir.path());
    let proxy = FaultProxy::start(upstream, 0x5eed_0002);
    // The first requests go through (slowed, so that the write journal is flushed
    // every 2 s meanwhile), then the server "goes down" for good.
    proxy.fail_after.store(300, Ordering::SeqCst);
    let url = prefix("down");
    let mut args = vec!["convert"];
    args.extend(files.iter().map(String::as_str));
    args.extend([
        "-o",
        &url,
        "--chunks",
        "time=1",
        "--retry-timeout",
        "3",
        "--io-concurrency",
        "2",
    ]);
    let started = std::time::Instant::now();
    let r = run_s3_env(&args, &proxy.endpoint(), &[("NC2ZARR_TEST_PUT_DELAY_MS", "20")]);
    assert_eq!(r.code, 4, "stdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        r.stderr.contains("503") && r.stderr.contains("run the same command again"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains("panicked") && !r.stderr.contains("internal error"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.lines().count() <= 3, "not a short error:\n{}", r.stderr);
    // A reader never sees the partial dataset as complete: verify says interrupted.
    let moto_endpoint = format!("http://{upstream}");
    let v = run_s3(&["verify", &url], &moto_endpoint);
    assert_eq!(v.code, 5, "stdout:\n{}\nstderr:\n{}", v.stdout, v.stderr);
    // The server is back: the same command resumes and finishes.
    proxy.fail_after.store(u64::MAX, Ordering::SeqCst);
    let r = run_s3(&args, &proxy.endpoint());
    r.ok();
    assert!(r.stdout.contains("resum"), "the rerun did not resume:\n{}", r.stdout);
    let mut verify = vec!["verify", url.as_str(), "--source"];
    verify.extend(files.iter().map(String::as_str));
    run_s3(&verify, &moto_endpoint).ok();
}

#[test]
fn ten_percent_faults_on_remote_inputs_still_give_the_same_store() {
    let Some(upstream) = moto() else { return };
    let Some(py) = python() else {
        missing_prerequisite("python with boto3 (NC2ZARR_PYTHON)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // 40 one-step files: a listing and 40 ranged GETs, so 10% means a few faults.
    let months: Vec<Month> = (0..40)
        .map(|m| Month {
            times: vec![1_051_896 + 6 * m],
            units: "hours since 1900-01-01 00:00:00",
        })
        .collect();
    let files = era_set(&dir.path().join("in"), Kind::Netcdf4, &months, 6, 8);
    let key = prefix("inputs")
        .trim_start_matches(&format!("s3://{BUCKET}/"))
        .to_string();
    let up = std::process::Command::new(py)
        .args([
            "-c",
            "import os, sys, boto3\n\
             c = boto3.client('s3', endpoint_url=sys.argv[1], aws_access_key_id='nc2zarr-test', \
             aws_secret_access_key='secret', region_name='us-east-1')\n\
             for f in sys.argv[3:]:\n\
             \x20   c.upload_file(f, 'nc2zarr-test', sys.argv[2] + '/' + os.path.basename(f))\n",
            &format!("http://{upstream}"),
            &key,
        ])
        .args(&files)
        .output()
        .unwrap();
    assert!(up.status.success(), "{}", String::from_utf8_lossy(&up.stderr));
    let local = dir.path().join("local.zarr");
    let mut args = vec!["convert".to_string()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    args.extend(["-o".into(), local.display().to_string(), "--quiet".into()]);
    run(&args).ok();
    let proxy = FaultProxy::start(upstream, 0x5eed_0003);
    proxy.fault_percent.store(10, Ordering::SeqCst);
    let remote = dir.path().join("remote.zarr");
    let url = format!("s3://{BUCKET}/{key}/*.nc");
    let r = Run::from_output(
        &s3_command("nc2zarr-test-secret")
            .args(["convert", &url, "-o", &remote.display().to_string(), "--quiet"])
            .args(["--input-endpoint", &proxy.endpoint(), "--retry-timeout", "60"])
            .output()
            .unwrap(),
    );
    r.ok();
    eprintln!("faults injected on the input side: {:?}", proxy.counts.lock().unwrap());
    assert!(proxy.faults() >= 1, "no fault was injected");
    // Requests that got through: one listing and one ranged GET per (small) file, never
    // a second pass over a file.
    let forwarded = proxy.counts.lock().unwrap().get(&Action::Forward).copied().unwrap_or(0);
    assert!(
        forwarded <= 1 + 40,
        "{forwarded} requests reached the server for 40 files"
    );
    let own = |p: &std::path::Path| -> Vec<(String, Vec<u8>)> {
        snapshot(p)
            .into_iter()
            .filter(|(k, _)| !k.starts_with(".nc2zarr"))
            .collect()
    };
    assert!(own(&local) == own(&remote), "the stores differ");
}
