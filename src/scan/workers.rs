//! Reading many headers on all cores.
//!
//! netCDF-C serializes every call behind one process-wide lock, so threads cannot read
//! headers in parallel, but processes can. For large sets of files the `nc2zarr` binary
//! starts copies of itself (`nc2zarr __read-headers`), each reading a contiguous share
//! of the files and sending the headers back as JSON lines, while this process reads
//! the first share. A file a worker could not read is read again here, so errors are
//! the same (and name the same file) as without workers.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

use crate::error::InputError;

use super::header::{FileHeader, read_header};

/// The binary that can serve `__read-headers`, when this process is `nc2zarr`.
static WORKER_EXE: OnceLock<PathBuf> = OnceLock::new();

/// Fewer files than this per process are read in this process alone.
const FILES_PER_PROCESS: usize = 64;

/// The share of the files this process reads, relative to a worker's.
const MAIN_SHARE: f64 = 0.8;

/// The hidden subcommand a worker runs.
pub const WORKER_COMMAND: &str = "__read-headers";

/// Lets scan start worker processes of `exe`, which must be the `nc2zarr` binary
/// (a library user's executable would not understand [`WORKER_COMMAND`]).
pub fn enable_worker_processes(exe: PathBuf) {
    let _ = WORKER_EXE.set(exe);
}

/// One worker's answer for one file.
#[derive(serde::Serialize, serde::Deserialize)]
enum Reply {
    Ok(Box<FileHeader>),
    Err(String),
}

/// How many processes read `files` headers: `NC2ZARR_SCAN_PROCESSES`, else the CPUs,
/// and no more than one per [`FILES_PER_PROCESS`] files.
fn process_count(files: usize) -> usize {
    if WORKER_EXE.get().is_none() {
        return 1;
    }
    let wanted = crate::settings::scan_processes()
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    wanted.min(files.div_ceil(FILES_PER_PROCESS)).max(1)
}

/// Kills the workers still running when a read fails early.
struct Workers(Vec<(Child, std::thread::JoinHandle<Vec<Reply>>)>);

impl Drop for Workers {
    fn drop(&mut self) {
        for (child, _) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Reads the headers of `paths` (from their group `group` down), in order, on as many
/// processes as pays off.
pub(crate) fn read_headers(paths: &[PathBuf], group: &str) -> Result<Vec<FileHeader>, InputError> {
    let procs = process_count(paths.len());
    let names: Option<Vec<&str>> = paths.iter().map(|p| p.to_str()).collect();
    let (Some(exe), Some(names), true) = (WORKER_EXE.get(), names, procs > 1) else {
        return paths.iter().map(|p| read_header(p, group)).collect();
    };
    // This process also merges what the workers send, so it reads a smaller share
    // (measured: equal shares left it a fifth of the time behind the workers).
    let own = (paths.len() as f64 * MAIN_SHARE / (procs as f64 - 1.0 + MAIN_SHARE)) as usize;
    let share = (paths.len() - own).div_ceil(procs - 1);
    let mut workers = Workers(Vec::new());
    for chunk in names[own..].chunks(share) {
        match spawn(exe, chunk, group) {
            Ok(w) => workers.0.push(w),
            Err(_) => break, // fewer workers: the rest is read here
        }
    }
    let mut headers = Vec::with_capacity(paths.len());
    for p in &paths[..own] {
        headers.push(read_header(p, group)?);
    }
    let mut next = own;
    for (mut child, reader) in std::mem::take(&mut workers.0) {
        let replies = reader.join().unwrap_or_default();
        let _ = child.wait();
        let end = (next + share).min(paths.len());
        for (i, p) in paths[next..end].iter().enumerate() {
            match replies.get(i) {
                Some(Reply::Ok(h)) if h.path == *p => headers.push(*h.clone()),
                _ => headers.push(read_header(p, group)?),
            }
        }
        next = end;
    }
    for p in &paths[next..] {
        headers.push(read_header(p, group)?);
    }
    Ok(headers)
}

/// Starts a worker on `paths` (read from `group` down); a thread collects its replies.
fn spawn(
    exe: &std::path::Path,
    paths: &[&str],
    group: &str,
) -> std::io::Result<(Child, std::thread::JoinHandle<Vec<Reply>>)> {
    let mut child = Command::new(exe)
        .arg(WORKER_COMMAND)
        .arg(group)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let list = serde_json::to_vec(paths).map_err(std::io::Error::other)?;
    let mut stdin = child.stdin.take().expect("piped");
    let stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        // Write the list first, from this thread: the worker answers as it reads.
        let _ = stdin.write_all(&list).and_then(|()| stdin.flush());
        drop(stdin);
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .map_while(|line| serde_json::from_str::<Reply>(&line).ok())
            .collect()
    });
    Ok((child, reader))
}

/// The worker side: reads a JSON list of paths on stdin and writes one [`Reply`] per
/// file (its header from `group` down), as a JSON line, on stdout. Returns the exit code.
pub fn serve_worker(group: &str) -> i32 {
    let mut input = Vec::new();
    if std::io::Read::read_to_end(&mut std::io::stdin(), &mut input).is_err() {
        return crate::error::exit_code::USAGE;
    }
    let Ok(paths) = serde_json::from_slice::<Vec<PathBuf>>(&input) else {
        return crate::error::exit_code::USAGE;
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for p in paths {
        let reply = match read_header(&p, group) {
            Ok(h) => Reply::Ok(Box::new(h)),
            Err(e) => Reply::Err(e.to_string()),
        };
        let Ok(line) = serde_json::to_string(&reply) else {
            return crate::error::exit_code::INTERNAL;
        };
        if writeln!(out, "{line}").is_err() {
            return crate::error::exit_code::INTERNAL;
        }
    }
    match out.flush() {
        Ok(()) => crate::error::exit_code::OK,
        Err(_) => crate::error::exit_code::INTERNAL,
    }
}
