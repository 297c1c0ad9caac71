#!/usr/bin/env bash
# Demo: builds nc2zarr, generates a small ERA5-like dataset (3 monthly NetCDF-4 files),
# converts it to Zarr v3 in demo/era5like.zarr, and verifies it against the sources.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --no-python
cargo build --release --quiet --bin nc2zarr --example make_demo
mkdir -p demo
./target/release/examples/make_demo demo/netcdf
./target/release/nc2zarr scan demo/netcdf | head -n 4
./target/release/nc2zarr convert demo/netcdf -o demo/era5like.zarr --overwrite
./target/release/nc2zarr verify demo/era5like.zarr --source demo/netcdf
