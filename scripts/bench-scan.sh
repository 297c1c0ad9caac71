#!/usr/bin/env bash
# Header-scanning benchmark: `nc2zarr scan` of N small netCDF-4 files (default 10,000),
# on one process and on all CPUs (worker processes), medians of --reps runs (default 3).
# Generates the files with the project's own code (examples/make_many.rs).
# Usage: scripts/bench-scan.sh [N] [--reps R]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}
reps=3
if [ "${2:-}" = "--reps" ]; then reps=${3:-3}; fi
scripts/setup.sh --no-python
cargo build --release --quiet --bin nc2zarr --example make_many
data="data/many_$n"
if [ "$(ls "$data" 2>/dev/null | wc -l)" -ne "$n" ]; then
  rm -rf "$data"
  target/release/examples/make_many "$data" "$n"
fi
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
run() {
  for _ in $(seq "$reps"); do
    /usr/bin/time -f "%e %M" env NC2ZARR_SCAN_PROCESSES="$1" target/release/nc2zarr scan "$data" 2>&1 >/dev/null | tail -1
  done
}
echo "| processes | wall (s), median of $reps | headers/s | peak RSS of the parent (MiB) |"
echo "|---|---|---|---|"
for procs in 1 "$(nproc)"; do
  out=$(run "$procs")
  wall=$(echo "$out" | awk '{print $1}' | median)
  rss=$(echo "$out" | awk '{print $2}' | median)
  echo "| $procs | $wall | $(awk -v n="$n" -v w="$wall" 'BEGIN {printf "%d", n / w}') | $((rss / 1024)) |"
done
