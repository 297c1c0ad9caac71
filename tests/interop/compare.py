#!/usr/bin/env python3
"""Checks that xarray cannot tell a Zarr store from the NetCDF files it came from.

    compare.py ZARR NETCDF... [--group G] [--concat-dim DIM] [--mode decoded|raw|both]

Opens the store with ``xarray.open_zarr`` and the sources with ``xarray.open_dataset``
(one file) or ``xarray.open_mfdataset`` (several, combined by coordinates), once with
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
    combine = dict(combine="by_coords") if decode else dict(combine="nested", concat_dim=concat_dim)
    return xr.open_mfdataset(
        files, data_vars="minimal", coords="minimal", compat="override",
        join="exact", combine_attrs="override", **combine, **kw).load()


def open_store(path, group, decode):
    kw = dict(decode_cf=decode, consolidated=True, group=group)
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
    if isinstance(a, float) and isinstance(b, (float, np.floating)) and np.isnan(a) and np.isnan(b):
        return True
    if isinstance(b, float) and isinstance(a, (float, np.floating)) and np.isnan(a) and np.isnan(b):
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


def compare(z, n, label):
    out = []
    if set(z.variables) != set(n.variables):
        out.append(f"{label}: variables differ: only zarr {sorted(set(z.variables) - set(n.variables))}, "
                   f"only netcdf {sorted(set(n.variables) - set(z.variables))}")
    if set(z.coords) != set(n.coords):
        out.append(f"{label}: coordinates differ: zarr {sorted(z.coords)} vs netcdf {sorted(n.coords)}")
    if dict(z.sizes) != dict(n.sizes):
        out.append(f"{label}: dimensions differ: zarr {dict(z.sizes)} vs netcdf {dict(n.sizes)}")
    diff_attrs(f"{label} global", z.attrs, n.attrs, out)
    for name in sorted(set(z.variables) & set(n.variables)):
        zv, nv = z[name].variable, n[name].variable
        where = f"{label} {name!r}"
        if zv.dims != nv.dims:
            out.append(f"{where}: dims {zv.dims} vs {nv.dims}")
            continue
        zd, zt = norm_values(zv)
        nd, nt = norm_values(nv)
        if zt != nt:
            out.append(f"{where}: dtype {zt} vs {nt}")
        if zd.shape != nd.shape:
            out.append(f"{where}: shape {zd.shape} vs {nd.shape}")
        elif zt == "str" or nt == "str":
            if not np.array_equal(zd, nd):
                out.append(f"{where}: string values differ")
        elif zd.dtype.kind in "fc":
            if not np.array_equal(zd, nd, equal_nan=True):
                out.append(f"{where}: values differ (max abs diff {np.nanmax(np.abs(zd - nd))})")
        elif not np.array_equal(zd, nd):
            out.append(f"{where}: values differ")
        diff_attrs(where, zv.attrs, nv.attrs, out)
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("zarr")
    p.add_argument("netcdf", nargs="+")
    p.add_argument("--group", default=None)
    p.add_argument("--concat-dim", default="time")
    p.add_argument("--mode", choices=["decoded", "raw", "both"], default="both")
    a = p.parse_args()
    problems = []
    modes = ["decoded", "raw"] if a.mode == "both" else [a.mode]
    for mode in modes:
        decode = mode == "decoded"
        n = open_netcdf(a.netcdf, a.group, decode, a.concat_dim)
        z = open_store(a.zarr, a.group, decode)
        problems += compare(z, n, mode)
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"identical ({', '.join(modes)}): {a.zarr}" + (f" group {a.group}" if a.group else ""))


if __name__ == "__main__":
    main()
