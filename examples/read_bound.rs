//! Benchmark lower bound: read and inflate every variable of the given NetCDF files
//! through netCDF-C (one thread), one file-sized slab per variable; prints seconds.
//!
//! `cargo run --release --example read_bound -- FILE...`

use std::time::Instant;

fn main() {
    let files: Vec<std::path::PathBuf> = std::env::args().skip(1).map(Into::into).collect();
    nc2zarr::nc::set_default_chunk_cache(nc2zarr::plan::HDF5_CHUNK_CACHE_BYTES).expect("chunk cache");
    let started = Instant::now();
    let mut bytes = 0u64;
    for path in &files {
        let file = nc2zarr::nc::File::open(path).expect("open");
        for v in file.root().variables().expect("variables") {
            let h = v.header().expect("header");
            let nc2zarr::nc::VarType::Supported { dtype, .. } = h.vartype else {
                continue;
            };
            let Some(size) = dtype.size() else { continue };
            let count: Vec<u64> = h.dims.iter().map(|d| d.len).collect();
            let n: u64 = count.iter().product();
            let mut buf = vec![0u8; n as usize * size];
            v.read_raw(&vec![0; count.len()], &count, &mut buf).expect("read");
            bytes += buf.len() as u64;
        }
    }
    let s = started.elapsed().as_secs_f64();
    println!("{{\"seconds\": {s}, \"bytes\": {bytes}}}");
}
