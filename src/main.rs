//! The `nc2zarr` binary: parse arguments, run, map errors to exit codes.

#![deny(unsafe_code)]

use std::io::Write;

use clap::Parser;

fn main() {
    // Both before any thread starts or HDF5 call is made.
    // SAFETY: the process has one thread here.
    #[allow(unsafe_code)]
    unsafe {
        nc2zarr::os::disable_hdf5_file_locking()
    };
    nc2zarr::os::tune_allocator();
    // A panic is a bug: say so in one line, without a backtrace. The panic then unwinds
    // (from a worker thread to the thread that waits for it, up to `main`), so the lock
    // and staging directories are cleaned up on the way, and `main` exits 1.
    static REPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    std::panic::set_hook(Box::new(|info| {
        if !REPORTED.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let payload = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown cause".into());
            let at = info
                .location()
                .map(|l| format!(" at {}:{}", l.file(), l.line()))
                .unwrap_or_default();
            let msg = nc2zarr::secrets::redact(&format!("{payload}{at}").replace('\n', " "));
            eprintln!("nc2zarr: internal error (a bug, please report it): {msg}");
        }
    }));
    let cli = nc2zarr::cli::Cli::parse();
    // Many headers are read by copies of this binary (netCDF-C is one lock per process).
    if let Ok(exe) = std::env::current_exe() {
        nc2zarr::scan::enable_worker_processes(exe);
    }
    let Ok(result) = std::panic::catch_unwind(|| nc2zarr::run(cli)) else {
        std::process::exit(nc2zarr::error::exit_code::INTERNAL);
    };
    let code = match result {
        Ok(outcome) => {
            let mut out = std::io::stdout().lock();
            // A closed pipe (e.g. `| head`) is not an error.
            let _ = out.write_all(outcome.stdout.as_bytes()).and_then(|()| out.flush());
            if let Some(e) = &outcome.error {
                eprintln!("{}", nc2zarr::describe_error(e).0);
            }
            outcome.code
        }
        Err(e) => {
            let (message, code) = nc2zarr::describe_error(&e);
            eprintln!("{message}");
            code
        }
    };
    std::process::exit(code);
}
