//! Writes a small ERA5-like dataset (3 monthly NetCDF-4 files) for the README demo.
//!
//! `cargo run --example make_demo -- DIR`

#[path = "../tests/common/fixtures.rs"]
#[allow(dead_code, missing_docs)]
mod fixtures;

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "demo/netcdf".into());
    let dir = std::path::Path::new(&dir);
    let files = fixtures::era_set(dir, fixtures::Kind::Netcdf4, &fixtures::three_months(124), 73, 144);
    for f in files {
        println!("wrote {}", f.display());
    }
}
