#!/usr/bin/env bash
# Benchmarks inputs that split their variables between files (CMIP6-style) against the
# same data with every variable in each file: the ERA5-like set (examples/make_era5like.rs)
# is cut by nccopy into one file per variable and month (the grid's `orog` in its own
# file), and both layouts are converted, medians of several runs. Reports wall, MB/s of
# uncompressed input and peak RSS (/usr/bin/time -v), with xarray + dask (open_mfdataset,
# to_zarr) on the split files as the peer, and checks that the stores hold the
# same arrays with the same chunk bytes.
# Usage: scripts/bench-sets.sh [small|medium|full] [--reps N]
set -euo pipefail
cd "$(dirname "$0")/.."
variant=${1:-medium}
reps=3
if [ "${2:-}" = --reps ]; then reps=$3; fi
scripts/setup.sh --no-python
cargo build --release --quiet --bin nc2zarr --example make_era5like
data="data/era5like_$variant"
if [ ! -d "$data" ] || [ "$(ls "$data"/*.nc 2>/dev/null | wc -l)" -lt 3 ]; then
  target/release/examples/make_era5like "$variant" "$data"
fi
bin=$PWD/target/release/nc2zarr
scratch=$(mktemp -d "$PWD/target/bench-sets.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# One file per variable and month; the static orography once.
split="$scratch/split"
mkdir -p "$split"
vars=$("$bin" scan "$data"/*.nc --json | python3 -c '
import json, sys
inv = json.load(sys.stdin)
names = {v["name"] for v in inv["root"]["variables"]}
concat = inv["concat_dim"]
for v in inv["root"]["variables"]:
    if v["dimensions"] != [v["name"]]:
        coords = [d for d in v["dimensions"] if d in names]
        print(",".join([v["name"]] + coords), int(concat in v["dimensions"]))')
first=1
for f in "$data"/*.nc; do
  base=$(basename "$f" .nc)
  while read -r v along; do
    name=${v%%,*}
    if [ "$along" = 1 ]; then
      nccopy -V "$v" "$f" "$split/${name}_$base.nc"
    elif [ "$first" = 1 ]; then
      nccopy -V "$v" "$f" "$split/$name.nc"
    fi
  done <<< "$vars"
  first=0
done
mb=$("$bin" plan "$data" -o "$scratch/x.zarr" --json | python3 -c 'import json, sys; p = json.load(sys.stdin); print(round(sum(v["bytes"] for v in p["variables"]) / 1e6, 1))')
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }

run() { # name inputs...
  local name=$1; shift
  local out="$scratch/$name.zarr"
  rm -rf "$out"
  local start end rss
  start=$(date +%s.%N)
  /usr/bin/time -v "$bin" convert "$@" -o "$out" --json 2>"$scratch/time.txt" >"$scratch/report.json"
  end=$(date +%s.%N)
  rss=$(awk -F: '/Maximum resident set size/ {print int($2 / 1024)}' "$scratch/time.txt")
  echo "$(awk -v a="$start" -v b="$end" 'BEGIN {print b - a}') $rss"
}

# The peer: xarray + dask, open_mfdataset (which merges the sets) then to_zarr.
xarray_run() { # inputs...
  local out="$scratch/xarray.zarr"
  rm -rf "$out"
  local start end
  start=$(date +%s.%N)
  /usr/bin/time -v .venv/bin/python -c '
import sys, warnings
import xarray as xr
warnings.simplefilter("ignore")
ds = xr.open_mfdataset(sys.argv[2:], data_vars="minimal", coords="minimal", compat="override",
                       join="exact", combine_attrs="override")
ds.to_zarr(sys.argv[1], consolidated=True, zarr_format=3)' "$out" "$@" 2>"$scratch/time.txt" >/dev/null
  end=$(date +%s.%N)
  echo "$(awk -v a="$start" -v b="$end" 'BEGIN {print b - a}') $(awk -F: '/Maximum resident set size/ {print int($2 / 1024)}' "$scratch/time.txt")"
}

echo "# Variables split between files: $data ($mb MB uncompressed), $(nproc) CPUs, medians of $reps" | tee target/bench-sets.md
echo | tee -a target/bench-sets.md
echo "| what | files | wall (s) | MB/s | peak RSS (MiB) |" | tee -a target/bench-sets.md
echo "|---|---|---|---|---|" | tee -a target/bench-sets.md
measure() { # label command inputs...
  local label=$1 command=$2; shift 2
  local walls=() rsss=() w r
  for _ in $(seq "$reps"); do
    read -r w r < <("$command" "$@")
    walls+=("$w") rsss+=("$r")
  done
  w=$(printf '%s\n' "${walls[@]}" | median)
  r=$(printf '%s\n' "${rsss[@]}" | median)
  printf '| %s | %s | %.2f | %.0f | %s |\n' "$label" "$#" "$w" "$(awk -v mb="$mb" -v w="$w" 'BEGIN {print mb / w}')" "$r" \
    | tee -a target/bench-sets.md
}
together() { run together "$@"; }
split_sets() { run split "$@"; }
measure "nc2zarr, variables together" together "$data"/*.nc
measure "nc2zarr, variables split" split_sets "$split"/*.nc
if [ -x .venv/bin/python ]; then
  measure "xarray + dask, variables split" xarray_run "$split"/*.nc
fi
# The two stores hold the same chunks (metadata differs only in what the files differ in).
python3 - "$scratch/together.zarr" "$scratch/split.zarr" <<'PY' | tee -a target/bench-sets.md
import os, sys
def chunks(root):
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            rel = os.path.relpath(p, root)
            if not rel.startswith(".nc2zarr") and not rel.endswith("zarr.json") and not rel.startswith("."):
                out[rel] = open(p, "rb").read()
    return out
a, b = chunks(sys.argv[1]), chunks(sys.argv[2])
same = a == b
print(f"\nchunk objects: {len(a)} vs {len(b)}, identical: {same}")
sys.exit(0 if same else 1)
PY
