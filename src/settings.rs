//! Every default of nc2zarr and every `NC2ZARR_*` environment setting, in one place.
//! A leaf: it uses no other module (the planner's defaults are re-exported from its crate).

use std::time::Duration;

/// Object-store requests in flight at once (`--io-concurrency`).
pub const IO_CONCURRENCY: u16 = 16;

/// What `--input-cache` holds at most once a run ends (`--input-cache-size`).
pub const INPUT_CACHE_SIZE: &str = "50GiB";

/// File extensions taken from a directory (or an object-store prefix).
pub const NETCDF_EXTENSIONS: &[&str] = &["nc", "nc4", "cdf", "netcdf", "h5", "hdf5"];

/// Seconds a failing request is retried before giving up (`--retry-timeout`).
pub const RETRY_TIMEOUT_SECS: u64 = 45;

/// Seconds without a heartbeat after which a target lock counts as stale (`--lock-timeout`).
pub const LOCK_TIMEOUT_SECS: u64 = 6 * 3600;

/// Target size of one uncompressed chunk (`--chunk-size`); the planner crate owns it.
pub use crate::plan::DEFAULT_CHUNK_BYTES as CHUNK_BYTES;

/// The default `--max-mem` is a quarter of the memory available, at most this.
pub const MAX_MEM_CAP: u64 = 4 << 30;

/// `NC2ZARR_DIRECT_READ=0` reads every source through netCDF-C instead of reading
/// netCDF-4 chunks directly.
pub fn direct_reads() -> bool {
    std::env::var("NC2ZARR_DIRECT_READ").map_or(true, |v| v != "0")
}

/// `NC2ZARR_SCAN_PROCESSES=N`: how many processes read headers (default: one per CPU).
pub fn scan_processes() -> Option<usize> {
    std::env::var("NC2ZARR_SCAN_PROCESSES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
}

/// `NC2ZARR_TEST_PUT_DELAY_MS=N` (tests): every store write waits N ms, so a test can
/// interrupt a run part-way.
pub fn test_put_delay() -> Option<Duration> {
    std::env::var("NC2ZARR_TEST_PUT_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_millis)
}

/// `NC2ZARR_FAILPOINT=NAME` (tests): the code at failpoint NAME fails (`encode-panic`
/// panics in an encoding worker; `task-I` fails task I of a split run after its writes;
/// `append-commit` aborts an append's commit after the manifest, before the consolidated
/// metadata; `after-commit` aborts a convert or append right after it commits to an
/// Icechunk repository, before it updates its records beside it).
pub fn failpoint_is(name: &str) -> bool {
    std::env::var("NC2ZARR_FAILPOINT").is_ok_and(|v| v == name)
}

/// The default memory budget: a quarter of the memory this process may use (physical
/// memory, or the cgroup's limit in a container or batch job when lower), at most 4 GiB.
pub fn default_max_mem() -> u64 {
    let physical = crate::os::physical_memory().unwrap_or(8 << 30);
    let limit = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|c| cgroup_memory_limit(&c, |p| std::fs::read_to_string(p).ok()));
    (physical.min(limit.unwrap_or(u64::MAX)) / 4).min(MAX_MEM_CAP)
}

/// The memory limit of this process's cgroup (v2 `memory.max`, or v1
/// `memory.limit_in_bytes`), the lowest along its path, from `/proc/self/cgroup`'s
/// text; `read` reads a file. `None` when there is no limit.
pub fn cgroup_memory_limit(proc_cgroup: &str, read: impl Fn(&std::path::Path) -> Option<String>) -> Option<u64> {
    let parse = |text: Option<String>| -> Option<u64> {
        let t = text?;
        let t = t.trim();
        // v1 writes "no limit" as a huge page-aligned number.
        t.parse::<u64>().ok().filter(|&v| v < 1 << 60)
    };
    let mut lowest: Option<u64> = None;
    for line in proc_cgroup.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        let (root, file) = match controllers {
            "" => ("/sys/fs/cgroup", "memory.max"),
            c if c.split(',').any(|x| x == "memory") => ("/sys/fs/cgroup/memory", "memory.limit_in_bytes"),
            _ => continue,
        };
        // The limit of the cgroup and of every parent up to the root.
        let mut dir = std::path::PathBuf::from(root).join(path.trim_start_matches('/'));
        loop {
            if let Some(v) = parse(read(&dir.join(file))) {
                lowest = Some(lowest.map_or(v, |l| l.min(v)));
            }
            if dir == std::path::Path::new(root) || !dir.pop() {
                break;
            }
        }
    }
    lowest
}

#[cfg(test)]
mod tests {
    use super::cgroup_memory_limit;
    use std::path::Path;

    fn files<'a>(map: &'a [(&'a str, &'a str)]) -> impl Fn(&Path) -> Option<String> + 'a {
        move |p: &Path| map.iter().find(|(k, _)| Path::new(k) == p).map(|(_, v)| v.to_string())
    }

    #[test]
    fn cgroup_v2_limit_is_the_lowest_along_the_path() {
        let read = files(&[
            ("/sys/fs/cgroup/job/step/memory.max", "max\n"),
            ("/sys/fs/cgroup/job/memory.max", "2147483648\n"),
        ]);
        assert_eq!(cgroup_memory_limit("0::/job/step\n", read), Some(2 << 30));
        assert_eq!(cgroup_memory_limit("0::/\n", files(&[])), None);
    }

    #[test]
    fn cgroup_v1_limit_and_no_limit() {
        let proc = "4:memory:/docker/abc\n3:cpu:/docker/abc\n";
        let read = files(&[("/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes", "1073741824")]);
        assert_eq!(cgroup_memory_limit(proc, read), Some(1 << 30));
        let unlimited = files(&[(
            "/sys/fs/cgroup/memory/docker/abc/memory.limit_in_bytes",
            "9223372036854771712",
        )]);
        assert_eq!(cgroup_memory_limit(proc, unlimited), None);
    }
}
