#!/usr/bin/env python3
"""nc2zarr benchmark harness: throughput and peak memory against peers, in one run.

Runs every command under GNU `/usr/bin/time -v` several times and reports medians:
wall time, MB/s of *uncompressed input*, peak RSS, and ratios against the peer
measured in the same run. Prints a markdown table (and writes it to --out).

Cases
  throughput  ingest chunks time=24 x full grid, zstd level 3, Zarr v3:
              nc2zarr vs xarray+dask `open_mfdataset().to_zarr()` (2 threads, same
              chunks and codec, packed dtypes kept), plus the lower bounds: read+inflate
              through netCDF-C (1 process, 2 processes) and zstd-3 encode (1 thread).
  memory      ingest and time-series chunks (time=all x 46 x 90) with nc2zarr at
              --max-mem 256MiB, 512MiB, 1GiB; rechunker (max_mem=1GB) and xarray+dask
              on the same chunks.

Run it through scripts/bench.sh, which builds nc2zarr, prepares the Python
environments and generates the ERA5-like data with examples/make_era5like.rs.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NC2ZARR = os.path.join(ROOT, "target/release/nc2zarr")
READ_BOUND = os.path.join(ROOT, "target/release/examples/read_bound")
ENCODE_BOUND = os.path.join(ROOT, "target/release/examples/encode_bound")
PY = os.path.join(ROOT, ".venv/bin/python")
# zarrs_tools 0.6 (the last with zarrs_ncvar2zarr), if installed with
# `cargo install zarrs_tools@0.6.2 --features ncvar2zarr --root ../zarrs-tools-0.6`.
NCVAR2ZARR = os.environ.get("NCVAR2ZARR", os.path.join(ROOT, "../zarrs-tools-0.6/bin/zarrs_ncvar2zarr"))
PY_RECHUNKER = os.path.join(ROOT, ".venv-rechunker/bin/python")
TS_CHUNKS = {"time": -1, "latitude": 46, "longitude": 90}

XARRAY_TO_ZARR = r'''
import sys, dask, xarray as xr, zarr
from zarr.codecs import BloscCodec, ZstdCodec
files, out, chunks, codec = sys.argv[1:-3], sys.argv[-3], eval(sys.argv[-2]), sys.argv[-1]
dask.config.set(scheduler="threads", num_workers=2)
ds = xr.open_mfdataset(files, chunks={"time": 24}, combine="by_coords", data_vars="minimal",
                       coords="minimal", compat="override", parallel=False)
if chunks == "ingest":
    ds = ds.chunk({"time": 24})  # per-file chunks of 24 leave ragged ones at file ends
else:
    ds = ds.chunk({k: (ds.sizes[k] if v == -1 else v) for k, v in chunks.items()})
enc = {}
for name, v in ds.data_vars.items():
    e = {k: v.encoding[k] for k in ("dtype", "scale_factor", "add_offset", "_FillValue") if k in v.encoding}
    if codec == "blosc":
        e["compressors"] = [BloscCodec(cname="zstd", clevel=3, shuffle="shuffle")]
    else:
        e["compressors"] = [ZstdCodec(level=3)]
    e["chunks"] = tuple(c[0] for c in v.chunks)
    enc[name] = e
ds.to_zarr(out, mode="w", zarr_format=3, encoding=enc, consolidated=True)
'''

RECHUNKER = r'''
import sys, dask, xarray as xr
from rechunker import rechunk
files, out, tmp = sys.argv[1:-2], sys.argv[-2], sys.argv[-1]
dask.config.set(scheduler="threads", num_workers=2)
ds = xr.open_mfdataset(files, chunks={"time": 24}, combine="by_coords", data_vars="minimal",
                       coords="minimal", compat="override").chunk({"time": 24})
for v in ds.variables.values():
    v.encoding.pop("chunks", None); v.encoding.pop("preferred_chunks", None)
target = {name: {"time": ds.sizes["time"], "latitude": 46, "longitude": 90} for name in ds.data_vars}
for c in ds.coords:
    target[c] = None
plan = rechunk(ds, target, max_mem="1GB", target_store=out, temp_store=tmp)
plan.execute()
'''


def timed(cmd, env=None):
    """Runs cmd under GNU time; returns (seconds, peak RSS bytes, stdout)."""
    full = ["/usr/bin/time", "-v"] + cmd
    t0 = time.time()
    p = subprocess.run(full, capture_output=True, text=True, env=env)
    wall = time.time() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])}... failed:\n{p.stderr[-3000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", p.stderr).group(1)) * 1024
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", p.stderr)
    parts = [float(x) for x in m.group(1).split(":")]
    secs = sum(v * 60 ** i for i, v in enumerate(reversed(parts))) if m else wall
    return secs, rss, p.stdout


def dir_size(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            total += os.path.getsize(os.path.join(root, f))
    return total


def repeat(label, reps, make_cmd, cleanup=None, env=None, output=None):
    walls, rsss = [], []
    for _ in range(reps):
        if cleanup:
            cleanup()
        s, r, _ = timed(make_cmd(), env)
        walls.append(s)
        rsss.append(r)
    stored = dir_size(output) if output and os.path.exists(output) else 0
    print(f"  {label}: median {statistics.median(walls):.1f} s, peak RSS {max(rsss) / 2**20:.0f} MiB "
          f"(runs: {', '.join(f'{w:.1f}' for w in walls)})", file=sys.stderr, flush=True)
    return {"label": label, "seconds": statistics.median(walls), "rss": max(rsss), "runs": walls, "stored": stored}


def t2m_only(files, dst):
    """Copies t2m and its coordinates out of each file (same chunking, shuffle, deflate)."""
    import netCDF4
    os.makedirs(dst, exist_ok=True)
    out = []
    for f in files:
        target = os.path.join(dst, os.path.basename(f))
        out.append(target)
        if os.path.exists(target):
            continue
        with netCDF4.Dataset(f) as src, netCDF4.Dataset(target + ".tmp", "w", format="NETCDF4") as d:
            src.set_auto_maskandscale(False)
            d.setncatts(src.__dict__)
            for name, dim in src.dimensions.items():
                d.createDimension(name, None if dim.isunlimited() else len(dim))
            for name in ("longitude", "latitude", "time", "t2m"):
                v = src[name]
                filters = v.filters() or {}
                chunks = v.chunking()
                fill = v.getncattr("_FillValue") if "_FillValue" in v.ncattrs() else None
                n = d.createVariable(name, v.dtype, v.dimensions, zlib=bool(filters.get("zlib")),
                                     complevel=filters.get("complevel", 0), shuffle=bool(filters.get("shuffle")),
                                     chunksizes=None if chunks == "contiguous" else chunks, fill_value=fill)
                n.set_auto_maskandscale(False)
                n.setncatts({k: v.getncattr(k) for k in v.ncattrs() if k != "_FillValue"})
                n[:] = v[:]
        os.rename(target + ".tmp", target)
    return out


def two_process_read(files):
    half = len(files) // 2
    t0 = time.time()
    procs = [subprocess.Popen([READ_BOUND] + part, stdout=subprocess.DEVNULL) for part in (files[:half], files[half:])]
    for p in procs:
        p.wait()
    return time.time() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="directory of the ERA5-like NetCDF files")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--only", choices=["throughput", "memory", "t2m", "all"], default="all")
    ap.add_argument("--scratch", default=None, help="directory for outputs (default: a temp dir)")
    ap.add_argument("--out", default=None, help="also write the markdown report here")
    a = ap.parse_args()
    files = sorted(os.path.join(a.data, f) for f in os.listdir(a.data) if f.endswith(".nc"))
    scratch = a.scratch or tempfile.mkdtemp(prefix="nc2zarr-bench-")
    os.makedirs(scratch, exist_ok=True)
    inv = json.loads(subprocess.run([NC2ZARR, "scan", "--json"] + files, capture_output=True, text=True, check=True).stdout)
    nbytes = inv["bytes"]
    mb = nbytes / 1e6
    out = os.path.join(scratch, "out.zarr")
    rm = lambda: shutil.rmtree(out, ignore_errors=True)  # noqa: E731
    lines = [f"# nc2zarr benchmark ({a.data}, {len(files)} files, {mb:.0f} MB uncompressed, "
             f"{os.cpu_count()} CPUs, {a.reps} runs, medians)", ""]
    ingest = ["--chunks", "time=24,latitude=full,longitude=full", "--compression", "zstd:3"]
    timeseries = ["--chunks", "time=full,latitude=46,longitude=90", "--compression", "zstd:3"]

    if a.only in ("throughput", "all"):
        print("throughput (ingest, zstd:3):", file=sys.stderr)
        res = {}
        res["nc2zarr"] = repeat("nc2zarr, zstd:3", a.reps,
                                lambda: [NC2ZARR, "convert"] + files + ["-o", out, "--quiet"] + ingest, rm, output=out)
        default_codec = ingest[:2]
        res["nc2zarr_default"] = repeat("nc2zarr, default blosc-lz4:9 (shuffle)", a.reps,
                                        lambda: [NC2ZARR, "convert"] + files + ["-o", out, "--quiet"] + default_codec, rm, output=out)
        res["nc2zarr_shuffle_zstd"] = repeat("nc2zarr, shuffle-zstd:3 (numcodecs.shuffle)", a.reps,
                                             lambda: [NC2ZARR, "convert"] + files + ["-o", out, "--quiet", "--compression",
                                                      "shuffle-zstd:3"] + default_codec, rm, output=out)
        res["xarray"] = repeat("xarray+dask, zstd:3", a.reps,
                               lambda: [PY, "-c", XARRAY_TO_ZARR] + files + [out, "'ingest'", "zstd"], rm, output=out)
        blosc = ["--chunks", "time=24,latitude=full,longitude=full", "--compression", "blosc-zstd:3"]
        res["nc2zarr_blosc"] = repeat("nc2zarr, blosc-zstd:3 (shuffle)", a.reps,
                                      lambda: [NC2ZARR, "convert"] + files + ["-o", out, "--quiet"] + blosc, rm, output=out)
        res["xarray_blosc"] = repeat("xarray+dask, blosc-zstd:3 (shuffle)", a.reps,
                                     lambda: [PY, "-c", XARRAY_TO_ZARR] + files + [out, "'ingest'", "blosc"], rm, output=out)
        res["nc2zarr_w1"] = repeat("nc2zarr, zstd:3, 1 worker", a.reps,
                                   lambda: [NC2ZARR, "convert"] + files + ["-o", out, "--quiet", "--workers", "1"] + ingest,
                                   rm, output=out)
        netcdf_c = dict(os.environ, NC2ZARR_DIRECT_READ="0")
        res["nc2zarr_netcdf_c"] = repeat("nc2zarr, zstd:3, reading through netCDF-C", a.reps,
                                         lambda: [NC2ZARR, "convert"] + files + ["-o", out, "--quiet"] + ingest, rm,
                                         output=out, env=netcdf_c)
        res["direct1"] = repeat("direct read+inflate (nc2zarr's path), 1 thread", a.reps,
                                lambda: [READ_BOUND, "--direct"] + files)
        res["read1"] = repeat("read+inflate through netCDF-C, 1 process", a.reps, lambda: [READ_BOUND] + files)
        walls = [two_process_read(files) for _ in range(a.reps)]
        res["read2"] = {"label": "read+inflate through netCDF-C, 2 processes", "seconds": statistics.median(walls), "rss": 0}
        print(f"  read2: {statistics.median(walls):.1f} s", file=sys.stderr)
        enc = []
        for f in files:
            for var in ("t2m", "u10", "tp"):
                s, _, o = timed([ENCODE_BOUND, "zstd:3", f, var])
                enc.append(json.loads(o)["seconds"])
        res["encode"] = {"label": "zstd-3 encode, 1 thread", "seconds": sum(enc), "rss": 0}
        x = res["xarray"]
        lines += ["## Throughput: ingest (time=24 x full grid), zstd level 3, Zarr v3", "",
                  "| what | wall (s) | MB/s | peak RSS (MiB) | compression ratio | MB/s vs peer | RSS vs peer |",
                  "|---|---|---|---|---|---|---|"]
        if NCVAR2ZARR and os.path.exists(NCVAR2ZARR):
            # zarrs_tools 0.6 converts one variable of a directory of files; t2m, same chunks and codec.
            zstd3 = '[{"name": "zstd", "configuration": {"level": 3, "checksum": false}}]'
            res["ncvar2zarr"] = repeat("zarrs_ncvar2zarr 0.6.2, t2m only, zstd:3", a.reps,
                                       lambda: [NCVAR2ZARR, "-f", '"NaN"', "-c", "24,0,0", "--bytes-to-bytes-codecs",
                                                zstd3, a.data, "t2m", out], rm, output=out)
            res["ncvar2zarr"]["mb"] = next(v["bytes"] for v in inv["root"]["variables"] if v["name"] == "t2m") / 1e6
        rows = [("nc2zarr", "xarray"), ("nc2zarr_w1", "nc2zarr"), ("nc2zarr_default", "xarray"),
                ("nc2zarr_shuffle_zstd", "xarray"), ("nc2zarr_netcdf_c", "xarray"),
                ("xarray", "xarray"), ("nc2zarr_blosc", "xarray_blosc"), ("xarray_blosc", "xarray_blosc"),
                ("direct1", "xarray"), ("read1", "xarray"), ("read2", "xarray"), ("encode", "xarray")]
        if "ncvar2zarr" in res:
            rows.insert(1, ("nc2zarr", "ncvar2zarr"))
            rows.insert(2, ("ncvar2zarr", "ncvar2zarr"))
        for key, peer in rows:
            r, x = res[key], res[peer]
            r_mb, x_mb = r.get("mb", mb), x.get("mb", mb)
            rss = f"{r['rss'] / 2**20:.0f}" if r["rss"] else "-"
            ratio = f"{r_mb * 1e6 / r['stored']:.2f}" if r.get("stored") else "-"
            ratio_t = f"{(r_mb / r['seconds']) / (x_mb / x['seconds']):.2f}x"
            ratio_m = f"{r['rss'] / x['rss']:.3f}" if r["rss"] and x["rss"] else "-"
            peer_name = {"xarray_blosc": "xarray blosc", "nc2zarr": "nc2zarr (2 workers)"}.get(peer, x["label"].split(",")[0])
            lines.append(f"| {r['label']} | {r['seconds']:.1f} | {r_mb / r['seconds']:.0f} | {rss} | {ratio} | "
                         f"{ratio_t} vs {peer_name} | {ratio_m} |")
        bound = (res["direct1"]["seconds"] + res["encode"]["seconds"]) / 2
        lines += ["", "Ratios compare with the xarray run of the same codec (blosc rows with xarray's blosc).",
                  f"Two-core bound of nc2zarr's read path, (direct read+inflate + zstd-3 encode CPU) / 2 = {bound:.1f} s; "
                  f"nc2zarr (zstd:3) reaches {100 * bound / res['nc2zarr']['seconds']:.0f}% of it.", ""]

    if a.only in ("t2m", "all") and NCVAR2ZARR and os.path.exists(NCVAR2ZARR):
        # zarrs_ncvar2zarr converts one variable; compare like for like on files that hold
        # only t2m (and its coordinates), with the same HDF5 chunking, shuffle and deflate.
        print("t2m only, against zarrs_ncvar2zarr:", file=sys.stderr)
        t2m_dir = os.path.join(scratch, "t2m-only")
        t2m_files = t2m_only(files, t2m_dir)
        t2m_mb = next(v["bytes"] for v in inv["root"]["variables"] if v["name"] == "t2m") / 1e6
        zstd3 = '[{"name": "zstd", "configuration": {"level": 3, "checksum": false}}]'
        ours = repeat("nc2zarr, zstd:3", a.reps,
                      lambda: [NC2ZARR, "convert"] + t2m_files + ["-o", out, "--quiet"] + ingest, rm, output=out)
        theirs = repeat("zarrs_ncvar2zarr 0.6.2, zstd:3", a.reps,
                        lambda: [NCVAR2ZARR, "-f", '"NaN"', "-c", "24,0,0", "--bytes-to-bytes-codecs", zstd3,
                                 t2m_dir, "t2m", out], rm, output=out)
        lines += ["## t2m only (same files for both), ingest chunks, zstd level 3", "",
                  "| what | wall (s) | MB/s | peak RSS (MiB) | compression ratio | MB/s vs zarrs_ncvar2zarr |",
                  "|---|---|---|---|---|---|"]
        for r in (ours, theirs):
            lines.append(f"| {r['label']} | {r['seconds']:.1f} | {t2m_mb / r['seconds']:.0f} | {r['rss'] / 2**20:.0f} | "
                         f"{t2m_mb * 1e6 / r['stored']:.2f} | {theirs['seconds'] / r['seconds']:.2f}x |")
        lines.append("")

    if a.only in ("memory", "all"):
        print("memory:", file=sys.stderr)
        lines += ["## Peak memory", "", "| case | tool | budget | wall (s) | MB/s | peak RSS (MiB) | within budget |",
                  "|---|---|---|---|---|---|---|"]
        for case, chunks, xchunks in (("ingest", ingest, "'ingest'"), ("time series", timeseries, repr(TS_CHUNKS))):
            for budget in ("256MiB", "512MiB", "1GiB"):
                r = repeat(f"nc2zarr {case} {budget}", a.reps,
                           lambda: [NC2ZARR, "convert"] + files + ["-o", out, "--quiet", "--max-mem", budget,
                                                                   "--temp-dir", scratch] + chunks, rm)
                limit = {"256MiB": 256, "512MiB": 512, "1GiB": 1024}[budget] * 2**20
                ok = "yes" if r["rss"] <= limit else "**NO**"
                lines.append(f"| {case} | nc2zarr | {budget} | {r['seconds']:.1f} | {mb / r['seconds']:.0f} | "
                             f"{r['rss'] / 2**20:.0f} | {ok} |")
            r = repeat(f"xarray+dask {case}", 1, lambda: [PY, "-c", XARRAY_TO_ZARR] + files + [out, xchunks, "zstd"], rm)
            lines.append(f"| {case} | xarray+dask | - | {r['seconds']:.1f} | {mb / r['seconds']:.0f} | {r['rss'] / 2**20:.0f} | - |")
            if case == "time series":
                tmp = os.path.join(scratch, "rechunker-tmp.zarr")
                def clean():
                    rm()
                    shutil.rmtree(tmp, ignore_errors=True)
                r = repeat("rechunker", 1, lambda: [PY_RECHUNKER, "-c", RECHUNKER] + files + [out, tmp], clean)
                lines.append(f"| {case} | rechunker | 1GB | {r['seconds']:.1f} | {mb / r['seconds']:.0f} | "
                             f"{r['rss'] / 2**20:.0f} | {'yes' if r['rss'] <= 1e9 else '**NO**'} |")
        lines.append("")
    rm()
    report = "\n".join(lines)
    print(report)
    if a.out:
        with open(a.out, "w") as f:
            f.write(report + "\n")


if __name__ == "__main__":
    main()
