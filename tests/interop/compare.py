#!/usr/bin/env python3
"""Checks that xarray cannot tell a Zarr store from the NetCDF files it came from.

    compare.py ZARR NETCDF... [--group G] [--source-group G] [--concat-dim DIM] [--mode decoded|raw|both]
               [--join exact|outer] [--vars minimal|different|all] [--s3-endpoint URL]
               [--snapshot ID]

ZARR may be an Icechunk repository, named as nc2zarr names it (``icechunk+PATH`` or
``icechunk+s3://bucket/prefix``); it is read through an ``icechunk`` session at the tip
of ``main`` or at ``--snapshot``.

Opens the store with ``xarray.open_zarr`` and the sources with ``xarray.open_dataset``
(one file) or ``xarray.open_mfdataset`` (several, combined by coordinates; ``--join outer`` combines
files whose variables cover different steps the way xarray's defaults do, filling the
gaps with NaN; ``--vars different`` concatenates the variables without the concat
dimension whose values differ between files, as xarray's default does; ``--vars all``
concatenates every data variable, as a nested combine along a new dimension does), once with
CF decoding and once raw (``decode_cf=False``), and requires the same variables,
coordinates, dimensions, dtypes, attributes (global and per variable) and values.
Prints what differs and exits 1 on any difference.
"""
import argparse
import sys
import warnings

import numpy as np
import xarray as xr

warnings.simplefilter("ignore")


def open_netcdf(files, group, decode, concat_dim):
    kw = dict(decode_cf=decode, engine="netcdf4", group=group)
    if decode:
        kw["decode_times"] = xr.coders.CFDatetimeCoder(use_cftime=None)
    if len(files) == 1:
        return xr.open_dataset(files[0], **kw).load()
    # Ordered by coordinate values (raw values sort the same when files share units).
    # An outer join fills the steps a variable's files lack with NaN; merging the
    # partial copies of shared variables then needs "no_conflicts".
    compat = "no_conflicts" if JOIN == "outer" else "override"
    if VARS != "minimal":
        compat = "equals"
    coords = "different" if VARS == "all" else VARS
    mf = dict(data_vars=VARS, coords=coords, compat=compat, join=JOIN, combine_attrs="override")
    try:
        return xr.open_mfdataset(files, combine="by_coords", **mf, **kw).load()
    except ValueError:  # no coordinate to order by: the order given
        return xr.open_mfdataset(files, combine="nested", concat_dim=concat_dim, **mf, **kw).load()


S3_ENDPOINT = None
SNAPSHOT = None
JOIN = "exact"
VARS = "minimal"


def icechunk_storage(location):
    """Icechunk storage for a repository nc2zarr names ``icechunk+LOCATION``."""
    import os
    import icechunk
    if location.startswith("s3://"):
        bucket, _, prefix = location[len("s3://"):].partition("/")
        return icechunk.s3_storage(
            bucket=bucket, prefix=prefix, endpoint_url=S3_ENDPOINT, allow_http=True,
            force_path_style=True, region="us-east-1",
            access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
            secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"])
    return icechunk.local_filesystem_storage(location.removeprefix("file://"))


def open_icechunk(location):
    """A read-only session's store at the tip of main, or at SNAPSHOT."""
    import icechunk
    repo = icechunk.Repository.open(icechunk_storage(location))
    if SNAPSHOT:
        return repo.readonly_session(snapshot_id=SNAPSHOT).store
    return repo.readonly_session(branch="main").store


def open_store(path, group, decode):
    kw = dict(decode_cf=decode, consolidated=True, group=group)
    if path.startswith("icechunk+"):
        # Icechunk keeps its own index of nodes: no consolidated metadata.
        kw["consolidated"] = False
        if decode:
            kw["decode_times"] = xr.coders.CFDatetimeCoder(use_cftime=None)
        return xr.open_zarr(open_icechunk(path[len("icechunk+"):]), **kw).load()
    if path.startswith("s3://"):
        import os
        kw["storage_options"] = dict(
            key=os.environ["AWS_ACCESS_KEY_ID"], secret=os.environ["AWS_SECRET_ACCESS_KEY"],
            client_kwargs=dict(endpoint_url=S3_ENDPOINT, region_name="us-east-1"))
    if decode:
        kw["decode_times"] = xr.coders.CFDatetimeCoder(use_cftime=None)
    return xr.open_zarr(path, **kw).load()


def norm_values(v):
    data = np.asarray(v.values)
    if data.dtype.kind in "OTU":
        return data.astype(object), "str"
    return data, str(data.dtype)


def same_attr(a, b):
    if isinstance(a, (list, tuple, np.ndarray)) or isinstance(b, (list, tuple, np.ndarray)):
        a, b = np.atleast_1d(np.asarray(a)), np.atleast_1d(np.asarray(b))
        if a.shape != b.shape:
            return False
        if a.dtype.kind in "fc" or b.dtype.kind in "fc":
            return bool(np.all((a == b) | (np.isnan(a.astype(float)) & np.isnan(b.astype(float)))))
        return bool(np.all(a == b))
    floats = (float, np.floating)
    if isinstance(a, floats) and isinstance(b, floats) and np.isnan(a) and np.isnan(b):
        return True
    return bool(a == b)


def diff_attrs(where, za, na, out):
    for k in sorted(set(za) | set(na)):
        if k not in za:
            out.append(f"{where}: attribute {k!r} missing in zarr (netcdf: {na[k]!r})")
        elif k not in na:
            out.append(f"{where}: attribute {k!r} only in zarr ({za[k]!r})")
        elif not same_attr(za[k], na[k]):
            out.append(f"{where}: attribute {k!r} differs: zarr {za[k]!r} vs netcdf {na[k]!r}")


def float32_packed(var):
    """True when CF packing attributes are float32: JSON cannot keep that type, so
    xarray unpacks Zarr as float64 (a documented difference, not a conversion error)."""
    return any(isinstance(var.encoding.get(k), np.float32) for k in ("scale_factor", "add_offset"))


def compare(z, n, label):
    out = []
    if set(z.variables) != set(n.variables):
        out.append(f"{label}: variables differ: only zarr {sorted(set(z.variables) - set(n.variables))}, "
                   f"only netcdf {sorted(set(n.variables) - set(z.variables))}")
    if set(z.coords) != set(n.coords):
        out.append(f"{label}: coordinates differ: zarr {sorted(z.coords)} vs netcdf {sorted(n.coords)}")
    if dict(z.sizes) != dict(n.sizes):
        out.append(f"{label}: dimensions differ: zarr {dict(z.sizes)} vs netcdf {dict(n.sizes)}")
    # xarray's Zarr backend hides global attributes whose names start with "_nc".
    n_attrs = {k: v for k, v in n.attrs.items() if not k.lower().startswith("_nc")}
    diff_attrs(f"{label} global", z.attrs, n_attrs, out)
    for name in sorted(set(z.variables) & set(n.variables)):
        zv, nv = z[name].variable, n[name].variable
        where = f"{label} {name!r}"
        if zv.dims != nv.dims:
            out.append(f"{where}: dims {zv.dims} vs {nv.dims}")
            continue
        zd, zt = norm_values(zv)
        nd, nt = norm_values(nv)
        if zt == "float64" and nt == "float32" and float32_packed(nv):
            zd, zt = zd.astype(np.float32), nt
            scale = float(np.nanmax(np.abs(nd))) if nd.size and not np.all(np.isnan(nd)) else 0.0
            if not np.allclose(zd, nd, rtol=1e-6, atol=1e-6 * scale, equal_nan=True):
                out.append(f"{where}: float32-packed values differ beyond float32 rounding")
            diff_attrs(where, zv.attrs, nv.attrs, out)
            continue
        if zt != nt:
            out.append(f"{where}: dtype {zt} vs {nt}")
        if zd.shape != nd.shape:
            out.append(f"{where}: shape {zd.shape} vs {nd.shape}")
        elif zt != nt and zd.dtype.kind != nd.dtype.kind:
            pass  # reported above as a dtype difference; the values cannot be compared
        elif zt == "str" or nt == "str":
            # Masked strings read as NaN, which equals nothing: compare them as missing.
            def missing(a):
                return np.array([x is None or (isinstance(x, float) and np.isnan(x)) for x in a.ravel()], bool)

            zm, nm = missing(zd), missing(nd)
            same = np.array_equal(zm, nm) and all(
                a == b for a, b, m in zip(zd.ravel(), nd.ravel(), zm) if not m
            )
            if not same:
                out.append(f"{where}: string values differ")
        elif zd.dtype.kind in "fc":
            if not np.array_equal(zd, nd, equal_nan=True):
                out.append(f"{where}: values differ (max abs diff {np.nanmax(np.abs(zd - nd))})")
        elif zd.dtype.kind in "mM":
            # Missing times (NaT) are equal; decoded times may differ by xarray's own
            # float64 rounding of large offsets (under a microsecond).
            missing = np.isnat(zd) | np.isnat(nd)
            if (np.isnat(zd) != np.isnat(nd)).any():
                out.append(f"{where}: missing times differ")
            elif (np.abs((zd[~missing] - nd[~missing]).astype("timedelta64[ns]").astype(np.int64)) > 1000).any():
                out.append(f"{where}: values differ")
        elif not np.array_equal(zd, nd):
            out.append(f"{where}: values differ")
        diff_attrs(where, zv.attrs, nv.attrs, out)
    return out


def run_one(zarr, netcdf, group=None, concat_dim="time", mode="both", source_group=None):
    """Compares one store (at `group`) with its sources (at `source_group`, default
    `group`); returns (problems, notes)."""
    problems, notes = [], []
    source_group = source_group or group
    modes = ["decoded", "raw"] if mode == "both" else [mode]
    for m in modes:
        decode = m == "decoded"
        try:
            n = open_netcdf(netcdf, source_group, decode, concat_dim)
        except Exception as e:  # xarray itself cannot open the source this way
            try:
                open_store(zarr, group, decode)
            except Exception as f:
                if type(e) is type(f) and str(e).split("\n")[0] == str(f).split("\n")[0]:
                    notes.append(f"{m}: both sides fail the same way: {str(e).splitlines()[0]}")
                    continue
                problems.append(f"{m}: netcdf fails with {e!r}, zarr with {f!r}")
                continue
            problems.append(f"{m}: netcdf fails with {e!r} but zarr opens")
            continue
        z = open_store(zarr, group, decode)
        problems += compare(z, n, m)
    return problems, notes


def batch(path):
    """Runs one comparison per JSON line of `path` ({"zarr", "netcdf", "group"?}); prints
    one JSON line per job ({"zarr", "problems", "notes"}). Saves interpreter start-ups."""
    import json
    for line in open(path):
        if not line.strip():
            continue
        job = json.loads(line)
        try:
            problems, notes = run_one(job["zarr"], job["netcdf"], job.get("group"))
        except Exception as e:
            problems, notes = [f"comparison crashed: {e!r}"], []
        print(json.dumps({"zarr": job["zarr"], "problems": problems, "notes": notes}), flush=True)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--batch":
        return batch(sys.argv[2])
    p = argparse.ArgumentParser()
    p.add_argument("zarr")
    p.add_argument("netcdf", nargs="+")
    p.add_argument("--group", default=None)
    p.add_argument("--source-group", default=None, help="the sources' group the store's --group was (default: --group)")
    p.add_argument("--concat-dim", default="time")
    p.add_argument("--mode", choices=["decoded", "raw", "both"], default="both")
    p.add_argument("--join", choices=["exact", "outer"], default="exact",
                   help="how xarray aligns the files (outer: NaN where a variable's files lack steps)")
    p.add_argument("--vars", choices=["minimal", "different", "all"], default="minimal",
                   help="which variables without the concat dimension xarray concatenates")
    p.add_argument("--s3-endpoint", default=None, help="endpoint of an S3-compatible server for s3:// stores")
    p.add_argument("--snapshot", default=None, help="the snapshot of an Icechunk repository to read")
    a = p.parse_args()
    global S3_ENDPOINT, SNAPSHOT, JOIN, VARS
    S3_ENDPOINT = a.s3_endpoint
    JOIN = a.join
    VARS = a.vars
    SNAPSHOT = a.snapshot
    problems, notes = run_one(a.zarr, a.netcdf, a.group, a.concat_dim, a.mode, a.source_group)
    for n in notes:
        print(n)
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"identical ({a.mode}): {a.zarr}" + (f" group {a.group}" if a.group else ""))


if __name__ == "__main__":
    main()
