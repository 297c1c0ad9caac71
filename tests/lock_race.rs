//! The target lock under a race: several processes find the same stale lock at once
//! (a crashed job's), against a local directory and against moto's S3. At every moment
//! at most one holds the lock, and the takeover goes to exactly one of them at a time.
//!
//! Each contender is this test binary run again with `--ignored --exact lock_holder`:
//! it takes the lock, records when it held it, and releases it.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nc2zarr::lock::{LOCK_KEY, acquire};
use nc2zarr::store::{StoreOptions, Target};

const SECRET: &str = "race-secret";

fn micros() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros()
}

fn open(target: &str, endpoint: Option<&str>) -> Target {
    let opts = StoreOptions {
        endpoint: endpoint.map(str::to_string),
        ..Default::default()
    };
    Target::open_for_write(target, &opts).unwrap()
}

/// One contender: waits for the start time, takes the lock (retrying while it is held),
/// holds it 150 ms, writes `start end` to its record file.
#[test]
#[ignore = "a child process of the lock race tests"]
fn lock_holder() {
    let target = std::env::var("RACE_TARGET").unwrap();
    let endpoint = std::env::var("RACE_ENDPOINT").ok();
    let record = std::env::var("RACE_RECORD").unwrap();
    let start_at: u128 = std::env::var("RACE_START").unwrap().parse().unwrap();
    let t = open(&target, endpoint.as_deref());
    while micros() < start_at {
        std::thread::sleep(Duration::from_micros(200));
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match acquire(&t, Duration::from_secs(30)) {
            Ok(lock) => {
                let begin = micros();
                std::thread::sleep(Duration::from_millis(150));
                let end = micros();
                drop(lock);
                std::fs::write(&record, format!("{begin} {end}")).unwrap();
                return;
            }
            Err(e) if e.exit_code() == nc2zarr::error::exit_code::LOCKED && std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// Plants a stale lock (a dead job's, heartbeat an hour old), starts `n` contenders at
/// once, and checks that their holding intervals never overlap.
fn race(target: &str, endpoint: Option<&str>, n: usize) {
    let t = open(target, endpoint);
    let stale = format!(
        "{{\"pid\": 1, \"host\": \"gone.example\", \"started\": 1, \"heartbeat\": {}, \"token\": \"dead\"}}",
        micros() / 1_000_000 - 3600
    );
    t.put(LOCK_KEY, bytes::Bytes::from(stale)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let start_at = micros() + 1_500_000;
    let children: Vec<_> = (0..n)
        .map(|i| {
            let mut c = Command::new(std::env::current_exe().unwrap());
            c.args([
                "--ignored",
                "--exact",
                "lock_holder",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env("RACE_TARGET", target)
            .env("RACE_RECORD", dir.path().join(format!("{i}.txt")))
            .env("RACE_START", start_at.to_string())
            .env("AWS_ACCESS_KEY_ID", "nc2zarr-test")
            .env("AWS_SECRET_ACCESS_KEY", SECRET)
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_ENDPOINT_URL")
            .stdout(std::process::Stdio::null());
            if let Some(e) = endpoint {
                c.env("RACE_ENDPOINT", e);
            }
            c.spawn().unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success(), "a contender failed");
    }
    let mut spans: Vec<(u128, u128)> = (0..n)
        .map(|i| {
            let text = std::fs::read_to_string(dir.path().join(format!("{i}.txt"))).unwrap();
            let mut it = text.split_whitespace().map(|x| x.parse::<u128>().unwrap());
            (it.next().unwrap(), it.next().unwrap())
        })
        .collect();
    spans.sort();
    for w in spans.windows(2) {
        assert!(
            w[0].1 <= w[1].0,
            "two processes held the lock at once: {:?} and {:?}",
            w[0],
            w[1]
        );
    }
    assert!(t.get(LOCK_KEY).unwrap().is_none(), "the last holder released the lock");
}

#[test]
fn only_one_process_takes_over_a_stale_lock_in_a_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    race(&dir.path().join("store").to_string_lossy(), None, 6);
    assert!(Path::new(&dir.path().join("store")).is_dir());
}

#[test]
fn only_one_process_takes_over_a_stale_lock_on_s3() {
    let endpoint = match std::env::var("NC2ZARR_TEST_S3_ENDPOINT") {
        Ok(e) => e,
        Err(_) if std::env::var_os("NC2ZARR_REQUIRE_SERVERS").is_some() => panic!("NC2ZARR_TEST_S3_ENDPOINT not set"),
        Err(_) => {
            common::missing_prerequisite("NC2ZARR_TEST_S3_ENDPOINT not set (scripts/test.sh starts moto)");
            return;
        }
    };
    // SAFETY: set before any thread of this test reads them; the same for every test here.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", "nc2zarr-test");
        std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET);
        std::env::set_var("AWS_REGION", "us-east-1");
    }
    let prefix = format!("lock-race-{}-{}", std::process::id(), micros());
    race(&format!("s3://nc2zarr-test/{prefix}"), Some(&endpoint), 6);
}
