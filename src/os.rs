//! The operating-system calls that the standard library does not wrap, behind safe
//! functions. With [`nc`](crate::nc) (netCDF-C) and [`direct`](crate::direct) (HDF5's
//! chunk index), this is one of the three modules allowed `unsafe` code: the crate
//! denies it everywhere else.

use std::fs::File;
use std::path::Path;

/// This host's name (gethostname(2)); empty if the call fails.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Whether process `pid` exists on this host (signal 0).
pub fn process_alive(pid: u64) -> bool {
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

/// Free bytes on the file system holding `dir` (statvfs(3)).
pub fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: `st` is a plain C struct, valid when zeroed.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path; statvfs only writes into `st`.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut st) };
    (rc == 0).then(|| st.f_bavail as u64 * st.f_frsize as u64)
}

/// Physical memory in bytes (sysconf(3)), if the system says.
pub fn physical_memory() -> Option<u64> {
    // SAFETY: sysconf has no preconditions.
    let (pages, page) = unsafe { (libc::sysconf(libc::_SC_PHYS_PAGES), libc::sysconf(libc::_SC_PAGESIZE)) };
    (pages > 0 && page > 0).then(|| pages as u64 * page as u64)
}

/// Takes an exclusive `flock` on `file`, waiting for it; released when `file` closes.
pub fn lock_exclusive(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor that `file` keeps open for the call.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Takes a shared `flock` on `file`, waiting while someone holds it exclusively;
/// released when `file` closes.
pub fn lock_shared(file: &File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor that `file` keeps open for the call.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Keeps freed memory from lingering: glibc raises its mmap threshold after large frees,
/// after which multi-megabyte blocks come from arenas that keep their pages. A fixed
/// threshold makes every block buffer an mmap that goes back to the OS when dropped,
/// so peak RSS follows what is live (the `--max-mem` contract depends on it).
///
/// Call it first thing in `main`, before other threads exist.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

/// Turns HDF5's file locking off unless the user set `HDF5_USE_FILE_LOCKING`: nc2zarr
/// only reads NetCDF files, and the locks only get in the way of that (network
/// filesystems, files still open elsewhere).
///
/// # Safety
///
/// It changes the process environment: call it while the process has one thread
/// (first thing in `main`), before HDF5 is used.
pub unsafe fn disable_hdf5_file_locking() {
    if std::env::var_os("HDF5_USE_FILE_LOCKING").is_none() {
        // SAFETY: the caller guarantees no other thread reads the environment now.
        unsafe { std::env::set_var("HDF5_USE_FILE_LOCKING", "FALSE") };
    }
}
