//! Benchmark lower bound: read and decode every variable of the given NetCDF files on
//! one thread, one file-sized slab per variable; prints seconds and bytes as JSON.
//! By default through netCDF-C; with `--direct`, through nc2zarr's direct chunk reader
//! (HDF5 chunk index, positioned reads, libdeflate), falling back to netCDF-C for
//! variables it cannot read directly.
//!
//! `cargo run --release --example read_bound -- [--direct] FILE...`

use std::sync::Arc;
use std::time::Instant;

fn main() {
    let mut direct = false;
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--direct" => direct = true,
            _ => files.push(arg.into()),
        }
    }
    nc2zarr::nc::set_default_chunk_cache(nc2zarr::plan::HDF5_CHUNK_CACHE_BYTES).expect("chunk cache");
    let one_thread = rayon::ThreadPoolBuilder::new().num_threads(1).build().expect("pool");
    let started = Instant::now();
    let mut bytes = 0u64;
    for path in &files {
        let file = nc2zarr::nc::File::open(path).expect("open");
        let raw = Arc::new(std::fs::File::open(path).expect("open"));
        for v in file.root().variables().expect("variables") {
            let h = v.header().expect("header");
            let nc2zarr::nc::VarType::Supported { dtype, .. } = h.vartype else {
                continue;
            };
            let Some(size) = dtype.size() else { continue };
            let count: Vec<u64> = h.dims.iter().map(|d| d.len).collect();
            let start = vec![0; count.len()];
            let n: u64 = count.iter().product();
            let mut buf = vec![0u8; n as usize * size];
            let chunked = direct
                .then(|| nc2zarr::direct::ChunkedVar::open(path, &raw, &h.name, &count, size))
                .flatten();
            match chunked {
                Some(c) => one_thread
                    .install(|| c.read_into(&start, &count, &mut buf))
                    .expect("direct read"),
                None => v.read_raw(&start, &count, &mut buf).expect("read"),
            }
            bytes += buf.len() as u64;
        }
    }
    let s = started.elapsed().as_secs_f64();
    println!("{{\"seconds\": {s}, \"bytes\": {bytes}}}");
}
