//! One writer at a time: a lock object in the target, created only if absent
//! (O_EXCL locally, a conditional put on object stores), removed when the job ends.
//! A lock older than the stale timeout (a crashed job) is taken over.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::json::Json;
use crate::json_obj;
use crate::store::Target;

/// Key of the lock object.
pub const LOCK_KEY: &str = ".nc2zarr/lock.json";

/// Default age after which a lock counts as left behind by a crashed job.
pub const DEFAULT_STALE_AFTER: Duration = Duration::from_secs(6 * 3600);

/// A held lock; released on drop.
pub struct Lock<'t> {
    target: &'t Target,
    token: String,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Takes the target's lock, or fails with [`Error::Locked`] naming the holder.
pub fn acquire(target: &Target, stale_after: Duration) -> Result<Lock<'_>> {
    static TAKEN: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let n = TAKEN.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let token = format!("{}-{nanos}-{n}", std::process::id());
    let host = std::fs::read_to_string("/etc/hostname")
        .unwrap_or_default()
        .trim()
        .to_string();
    let body = json_obj! {"pid" => u64::from(std::process::id()), "host" => host.as_str(), "started" => now(), "token" => token.as_str()};
    for _ in 0..2 {
        if target.create_exclusive(LOCK_KEY, Bytes::from(body.to_pretty()))? {
            return Ok(Lock { target, token });
        }
        let held = target
            .get(LOCK_KEY)?
            .and_then(|b| Json::parse(&String::from_utf8_lossy(&b)).ok());
        let started = held
            .as_ref()
            .and_then(|h| h.get("started"))
            .and_then(Json::as_u64)
            .unwrap_or(0);
        let age = now().saturating_sub(started);
        let holder_gone = held.as_ref().is_some_and(|h| {
            let same_host = h.get("host").and_then(Json::as_str) == Some(host.as_str());
            let pid = h.get("pid").and_then(Json::as_u64).unwrap_or(0);
            same_host && !process_alive(pid)
        });
        if age >= stale_after.as_secs() || holder_gone {
            // Left behind by a job that died: take it over.
            target.delete(LOCK_KEY)?;
            continue;
        }
        let who = held
            .map(|h| {
                format!(
                    "pid {} on {}",
                    h.get("pid").and_then(Json::as_u64).unwrap_or(0),
                    h.get("host").and_then(Json::as_str).unwrap_or("?")
                )
            })
            .unwrap_or_else(|| "another job".into());
        return Err(Error::Locked(format!(
            "target {} is locked by {who} since {age} s ago; wait for it to finish (a lock older than {} s is taken over), \
             or delete {LOCK_KEY} in the target if that job is gone",
            target.display(),
            stale_after.as_secs()
        )));
    }
    Err(Error::Locked(format!(
        "target {}: could not take the lock",
        target.display()
    )))
}

/// Whether process `pid` exists on this host.
fn process_alive(pid: u64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

impl Drop for Lock<'_> {
    fn drop(&mut self) {
        // Remove only our own lock (a stale-lock takeover may have replaced it).
        let ours = self
            .target
            .get(LOCK_KEY)
            .ok()
            .flatten()
            .and_then(|b| Json::parse(&String::from_utf8_lossy(&b)).ok())
            .and_then(|h| h.get("token").and_then(Json::as_str).map(|t| t == self.token))
            .unwrap_or(false);
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
        assert_eq!(e.exit_code(), crate::error::exit_code::LOCKED);
        // A zero timeout makes any existing lock stale.
        let taken = acquire(&t, Duration::ZERO).unwrap();
        assert!(!process_alive(u64::from(u32::MAX)));
        assert!(process_alive(u64::from(std::process::id())));
        drop(lock); // not ours any more: must not remove the new holder's lock
        assert!(t.get(LOCK_KEY).unwrap().is_some());
        drop(taken);
        assert!(t.get(LOCK_KEY).unwrap().is_none());
    }
}
