#!/usr/bin/env bash
# Benchmarks Icechunk targets against plain Zarr targets on the same data: the ERA5-like
# set (examples/make_era5like.rs), all months but the last converted, then the last month
# appended, into a local plain store and a local Icechunk repository. The peer is the
# Pangeo path to Icechunk: xarray + dask (open_mfdataset, to_zarr into an icechunk
# session, commit; the `icechunk` package, from .venv-current). Reports wall, MB/s of
# uncompressed input and peak RSS (/usr/bin/time -v), medians of several runs, and
# checks that the repository reads back equal to the plain store.
# Usage: scripts/bench-icechunk.sh [small|medium|full] [--reps N]
set -euo pipefail
cd "$(dirname "$0")/.."
variant=${1:-full}
reps=3
if [ "${2:-}" = --reps ]; then reps=$3; fi
scripts/setup.sh
cargo build --release --quiet --features icechunk --bin nc2zarr --example make_era5like
data="data/era5like_$variant"
if [ ! -d "$data" ] || [ "$(ls "$data"/*.nc 2>/dev/null | wc -l)" -lt 3 ]; then
  target/release/examples/make_era5like "$variant" "$data"
fi
bin=$PWD/target/release/nc2zarr
py=$PWD/.venv-current/bin/python
scratch=$(mktemp -d "$PWD/target/bench-icechunk.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
files=("$data"/*.nc)
first=("${files[@]:0:${#files[@]}-1}")
last=${files[-1]}
mb_of() { "$bin" plan "$@" -o "$scratch/x.zarr" --json | python3 -c 'import json, sys; p = json.load(sys.stdin); print(round(sum(v["bytes"] for v in p["variables"]) / 1e6, 1))'; }
mb_convert=$(mb_of "${first[@]}")
mb_append=$(mb_of "$last")
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR + 1) / 2)]}'; }

timed() { # command...: prints "wall rss"
  local start end
  start=$(date +%s.%N)
  /usr/bin/time -v "$@" 2>"$scratch/time.txt" >/dev/null || { cat "$scratch/time.txt" >&2; exit 1; }
  end=$(date +%s.%N)
  echo "$(awk -v a="$start" -v b="$end" 'BEGIN {print b - a}') $(awk -F: '/Maximum resident set size/ {print int($2 / 1024)}' "$scratch/time.txt")"
}

nc2zarr_pair() { # target: converts then appends; prints "wall rss wall rss"
  rm -rf "${1#icechunk+}"
  echo "$(timed "$bin" convert "${first[@]}" -o "$1" --quiet) $(timed "$bin" append "$last" -o "$1" --quiet)"
}
plain() { nc2zarr_pair "$scratch/plain.zarr"; }
icechunk() { nc2zarr_pair "icechunk+$scratch/repo"; }
xarray_icechunk() {
  rm -rf "$scratch/xrepo"
  local script='
import sys, warnings
import icechunk, xarray as xr
warnings.simplefilter("ignore")
path, mode, files = sys.argv[1], sys.argv[2], sys.argv[3:]
storage = icechunk.local_filesystem_storage(path)
repo = (icechunk.Repository.create if mode == "convert" else icechunk.Repository.open)(storage)
session = repo.writable_session("main")
ds = xr.open_mfdataset(files, data_vars="minimal", coords="minimal", compat="override",
                       join="exact", combine_attrs="override")
if mode == "convert":
    ds.to_zarr(session.store, zarr_format=3, consolidated=False)
else:
    ds.to_zarr(session.store, append_dim="time", consolidated=False)
session.commit(f"xarray {mode}")'
  echo "$(timed "$py" -c "$script" "$scratch/xrepo" convert "${first[@]}") $(timed "$py" -c "$script" "$scratch/xrepo" append "$last")"
}

out=target/bench-icechunk.md
echo "# Icechunk vs plain Zarr: $data, convert ${#first[@]} files ($mb_convert MB) then append 1 ($mb_append MB), $(nproc) CPUs, medians of $reps" | tee "$out"
echo | tee -a "$out"
echo "| target | convert (s) | MB/s | peak RSS (MiB) | append (s) | MB/s | peak RSS (MiB) |" | tee -a "$out"
echo "|---|---|---|---|---|---|---|" | tee -a "$out"
measure() { # label command
  local cw=() cr=() aw=() ar=() a b c d
  for _ in $(seq "$reps"); do
    read -r a b c d < <("$2")
    cw+=("$a") cr+=("$b") aw+=("$c") ar+=("$d")
  done
  a=$(printf '%s\n' "${cw[@]}" | median) b=$(printf '%s\n' "${cr[@]}" | median)
  c=$(printf '%s\n' "${aw[@]}" | median) d=$(printf '%s\n' "${ar[@]}" | median)
  printf '| %s | %.2f | %.0f | %s | %.2f | %.0f | %s |\n' "$1" "$a" "$(awk -v m="$mb_convert" -v w="$a" 'BEGIN {print m / w}')" "$b" \
    "$c" "$(awk -v m="$mb_append" -v w="$c" 'BEGIN {print m / w}')" "$d" | tee -a "$out"
}
measure "nc2zarr, plain Zarr v3 (local)" plain
measure "nc2zarr, Icechunk (local)" icechunk
measure "xarray + dask, Icechunk (local)" xarray_icechunk
# The repository holds what the plain store holds.
"$py" - "$scratch/plain.zarr" "$scratch/repo" <<'PY' | tee -a "$out"
import sys, warnings
import icechunk, numpy as np, xarray as xr
warnings.simplefilter("ignore")
plain = xr.open_zarr(sys.argv[1])
repo = icechunk.Repository.open(icechunk.local_filesystem_storage(sys.argv[2]))
ice = xr.open_zarr(repo.readonly_session("main").store, consolidated=False)
same = all(np.array_equal(plain[v].values, ice[v].values, equal_nan=True) for v in plain.variables)
print(f"\nIcechunk repository equal to the plain store: {same}; snapshots: {len(list(repo.ancestry(branch='main')))}")
sys.exit(0 if same else 1)
PY
du -sh "$scratch/plain.zarr" "$scratch/repo" "$scratch/xrepo" | tee -a "$out"
