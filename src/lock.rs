//! One writer at a time: a lock object in the target, created only if absent
//! (O_EXCL locally, a conditional put on object stores), kept fresh by a heartbeat
//! while the job runs, and removed when the job ends.
//!
//! A lock whose heartbeat is older than the stale timeout (a crashed job), or whose
//! process is gone (same host), is taken over with a conditional replace of exactly the
//! version that was judged stale (If-Match on object stores, a compare and rewrite under
//! `flock` locally): of several jobs that find the same stale lock, one wins.

use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::json::Json;
use crate::json_obj;
use crate::os::hostname;
use crate::store::Target;

/// Key of the lock object.
pub const LOCK_KEY: &str = ".nc2zarr/lock.json";

/// Default age of the last heartbeat after which a lock counts as left behind by a
/// crashed job.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(crate::settings::LOCK_TIMEOUT_SECS);

/// A held lock; its heartbeat stops and it is released on drop.
pub struct Lock<'t> {
    target: &'t Target,
    token: String,
    stop: Option<mpsc::Sender<()>>,
    heartbeat: Option<JoinHandle<()>>,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// How often a held lock is refreshed: a quarter of the stale timeout, 1 s to 60 s.
fn heartbeat_interval(stale_after: Duration) -> Duration {
    (stale_after / 4).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// The lock document of this process.
fn body(token: &str, host: &str, started: u64) -> Bytes {
    Bytes::from(
        json_obj! {
            "pid" => u64::from(std::process::id()),
            "host" => host,
            "started" => started,
            "heartbeat" => now(),
            "token" => token,
        }
        .to_pretty(),
    )
}

/// Takes the target's lock, or fails with [`Error::Locked`] naming the holder.
pub fn acquire(target: &Target, stale_after: Duration) -> Result<Lock<'_>> {
    static TAKEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let n = TAKEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let host = hostname();
    let token = format!("{host}-{}-{nanos}-{n}", std::process::id());
    let started = now();
    for _ in 0..8 {
        if target.create_exclusive(LOCK_KEY, body(&token, &host, started))? {
            return Ok(Lock::held(target, token, host, started, stale_after));
        }
        let Some((bytes, version)) = target.get_versioned(LOCK_KEY)? else {
            continue; // released meanwhile: try to create it again
        };
        let held = Json::parse(&String::from_utf8_lossy(&bytes)).ok();
        let field = |k: &str| held.as_ref().and_then(|h| h.get(k)).and_then(Json::as_u64);
        let beat = field("heartbeat").or(field("started")).unwrap_or(0);
        let age = now().saturating_sub(beat);
        let holder_host = held
            .as_ref()
            .and_then(|h| h.get("host"))
            .and_then(Json::as_str)
            .unwrap_or("?");
        let pid = field("pid").unwrap_or(0);
        let holder_gone = holder_host == host && !crate::os::process_alive(pid);
        if age >= stale_after.as_secs() || holder_gone {
            // Left behind by a job that died: take over exactly the version judged stale.
            if target.replace_if_unchanged(LOCK_KEY, &version, body(&token, &host, started))? {
                return Ok(Lock::held(target, token, host, started, stale_after));
            }
            continue; // another job changed it first: look again
        }
        return Err(Error::Locked(format!(
            "target {} is locked by pid {pid} on {holder_host} (last heartbeat {age} s ago); wait for it to finish \
             (a lock without a heartbeat for {} s is taken over), or delete {LOCK_KEY} in the target if that job is gone",
            target.display(),
            stale_after.as_secs()
        )));
    }
    Err(Error::Locked(format!(
        "target {}: could not take the lock (it keeps changing hands); try again",
        target.display()
    )))
}

impl<'t> Lock<'t> {
    /// A lock just taken: starts its heartbeat.
    fn held(target: &'t Target, token: String, host: String, started: u64, stale_after: Duration) -> Lock<'t> {
        let (stop, stopped) = mpsc::channel::<()>();
        let (t, tok) = (target.clone(), token.clone());
        let every = heartbeat_interval(stale_after);
        let heartbeat = std::thread::Builder::new()
            .name("nc2zarr-lock-heartbeat".into())
            .spawn(move || {
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    if !refresh(&t, &tok, &host, started) {
                        break; // not ours any more (taken over): nothing left to refresh
                    }
                }
            })
            .ok();
        Lock {
            target,
            token,
            stop: Some(stop),
            heartbeat,
        }
    }
}

/// Renews the heartbeat of the lock with `token`; false when it is no longer ours.
fn refresh(target: &Target, token: &str, host: &str, started: u64) -> bool {
    let Ok(Some((bytes, version))) = target.get_versioned(LOCK_KEY) else {
        return true; // a failed read: try again at the next beat
    };
    if !is_ours(&bytes, token) {
        return false;
    }
    // A failure to write is retried at the next beat; a lost race means it is not ours.
    target
        .replace_if_unchanged(LOCK_KEY, &version, body(token, host, started))
        .unwrap_or(true)
}

fn is_ours(bytes: &[u8], token: &str) -> bool {
    Json::parse(&String::from_utf8_lossy(bytes))
        .ok()
        .and_then(|h| h.get("token").and_then(Json::as_str).map(|t| t == token))
        .unwrap_or(false)
}

impl Drop for Lock<'_> {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.heartbeat.take() {
            let _ = h.join();
        }
        // Remove only our own lock (a stale-lock takeover may have replaced it).
        let ours = self
            .target
            .get_versioned(LOCK_KEY)
            .ok()
            .flatten()
            .is_some_and(|(b, _)| is_ours(&b, &self.token));
        if ours {
            let _ = self.target.delete(LOCK_KEY);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoreOptions;

    #[test]
    fn one_holder_at_a_time_and_stale_locks_are_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let t = Target::open_for_write(dir.path().to_str().unwrap(), &StoreOptions::default()).unwrap();
        let lock = acquire(&t, DEFAULT_STALE_AFTER).unwrap();
        let e = acquire(&t, DEFAULT_STALE_AFTER).err().unwrap();
        assert!(e.to_string().contains("is locked by pid"), "{e}");
        assert!(e.to_string().contains(&hostname()), "{e}");
        assert_eq!(e.exit_code(), crate::error::exit_code::LOCKED);
        // A zero timeout makes any existing lock stale.
        let taken = acquire(&t, Duration::ZERO).unwrap();
        assert!(!crate::os::process_alive(u64::from(u32::MAX)));
        assert!(crate::os::process_alive(u64::from(std::process::id())));
        drop(lock); // not ours any more: must not remove the new holder's lock
        assert!(t.get(LOCK_KEY).unwrap().is_some());
        drop(taken);
        assert!(t.get(LOCK_KEY).unwrap().is_none());
    }

    #[test]
    fn a_live_holder_keeps_its_lock_past_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let t = Target::open_for_write(dir.path().to_str().unwrap(), &StoreOptions::default()).unwrap();
        let stale_after = Duration::from_secs(2);
        let lock = acquire(&t, stale_after).unwrap();
        // Older than the timeout, but its heartbeat (every second) keeps it fresh.
        std::thread::sleep(Duration::from_millis(3500));
        let e = acquire(&t, stale_after).err().expect("a live lock is not taken over");
        assert!(e.to_string().contains("last heartbeat"), "{e}");
        drop(lock);
        assert!(t.get(LOCK_KEY).unwrap().is_none());
    }

    #[test]
    fn hostname_is_the_kernels() {
        let h = hostname();
        assert!(!h.is_empty());
        assert!(!h.contains('\0'));
    }
}
