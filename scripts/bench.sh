#!/usr/bin/env bash
# Benchmarks nc2zarr against xarray+dask, rechunker and the netCDF-C/zstd lower bounds
# on the ERA5-like dataset (generated with ../shared/bench/make_dataset.py if missing).
# Usage: scripts/bench.sh [medium|full] [--reps N] [--only throughput|memory]
set -euo pipefail
cd "$(dirname "$0")/.."
variant=${1:-medium}
shift || true
scripts/setup.sh
if [ ! -x .venv-rechunker/bin/python ]; then
  python3 -m venv .venv-rechunker
  .venv-rechunker/bin/pip install -q --disable-pip-version-check numpy==2.4.6 netCDF4==1.7.5.1.post1 \
    xarray==2026.9.0 dask==2026.8.0 rechunker==0.5.4 'zarr<3'
fi
cargo build --release --quiet --bin nc2zarr --example read_bound --example encode_bound
data="data/era5like_$variant"
if [ ! -d "$data" ] || [ "$(ls "$data"/*.nc 2>/dev/null | wc -l)" -lt 3 ]; then
  generator=../shared/bench/make_dataset.py
  [ -f "$generator" ] || { echo "bench.sh: $generator not found" >&2; exit 2; }
  .venv/bin/python "$generator" --variant "$variant" --outdir "$data"
fi
mkdir -p target/bench
exec .venv/bin/python scripts/bench.py --data "$data" --scratch target/bench/scratch --out "target/bench/report-$variant.md" "$@"
