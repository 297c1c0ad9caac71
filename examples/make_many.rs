//! Writes N small netCDF-4 files (one 6-hourly time step each, on an 8 x 8 grid) for the
//! header-scanning benchmark: archives of one small file per step are where scanning
//! thousands of headers dominates.
//!
//! `cargo run --release --example make_many -- DIR N`

#[path = "../tests/common/fixtures.rs"]
#[allow(dead_code, missing_docs)]
mod fixtures;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "data/many".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let dir = std::path::Path::new(&dir);
    std::fs::create_dir_all(dir).expect("create the output directory");
    for i in 0..n {
        let month = fixtures::Month {
            times: vec![1_051_896 + 6 * i as i32],
            units: "hours since 1900-01-01 00:00:00",
        };
        fixtures::era_file(
            &dir.join(format!("step_{i:06}.nc")),
            fixtures::Kind::Netcdf4,
            &month,
            8,
            8,
        );
    }
    println!("wrote {n} files to {}", dir.display());
}
