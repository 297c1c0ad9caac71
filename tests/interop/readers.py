#!/usr/bin/env python3
"""Opens a Zarr store with zarr-python and tensorstore and checks they read the same.

    readers.py STORE OUT_DIR

Walks every array of the store with zarr-python 3 (any warning it gives is an error:
a store that makes zarr-python warn is not portable), reads the same array with
tensorstore (driver ``zarr`` for v2, ``zarr3`` for v3) and, for v2 stores, the numeric
arrays with netCDF-C's NCZarr (through netCDF4-python's bundled library, which has the
blosc/zstd filter plugins), and requires equal values, NaN-aware. Writes what zarr-python read to OUT_DIR for the Rust side to compare with
zarrs: ``<path>.bin`` (little-endian C-order bytes) or ``<path>.json`` (strings), and
``index.json`` listing path, dtype and shape. Exits 1 on any difference.
"""
import json
import os
import sys
import warnings
from importlib.metadata import version

import numpy as np
import tensorstore as ts
import zarr

store_path, out_dir = sys.argv[1], sys.argv[2]
os.makedirs(out_dir, exist_ok=True)
problems = []
notes = []

with warnings.catch_warnings():
    warnings.simplefilter("error")
    root = zarr.open_group(store_path, mode="r")
    arrays = []

    def walk(group, prefix):
        for name, member in sorted(group.members()):
            path = f"{prefix}{name}"
            if isinstance(member, zarr.Group):
                walk(member, path + "/")
            else:
                arrays.append((path, member, member[...]))

    walk(root, "")

fmt = root.metadata.zarr_format
# netCDF-C's NCZarr cannot open a v2 store holding variable-length strings at all
# (xarray's own such stores fail the same way): those stores skip it.
nczarr = fmt == 2 and not any(values.dtype.kind in "OT" for _, _, values in arrays)
if fmt == 2 and not nczarr:
    notes.append("netCDF-C (NCZarr) cannot open v2 stores with variable-length strings")
index = []
for path, arr, values in arrays:
    kind = values.dtype.kind
    spec = {"driver": "zarr3" if fmt == 3 else "zarr",
            "kvstore": {"driver": "file", "path": os.path.join(store_path, path)}}
    try:
        other = ts.open(spec, read=True, open=True).result().read().result()
    except Exception as e:  # noqa: BLE001: report any refusal
        # tensorstore has no string types (v3 has none in its core specification either).
        if kind in "OTUS" and any(m in str(e) for m in ("is not one of the supported", "Unsupported zarr dtype")):
            notes.append(f"{path}: tensorstore has no {values.dtype} type")
        else:
            problems.append(f"{path}: tensorstore cannot read it: {e}")
        other = None
    if other is not None and kind == "S" and np.asarray(other).dtype.itemsize == 0:
        # tensorstore opens it (as "char" with an extra dimension) but its Python
        # binding gives no bytes back.
        notes.append(f"{path}: tensorstore's Python binding returns no values for {values.dtype}")
        other = None
    if other is not None:
        a, b = np.asarray(values), np.asarray(other)
        if kind in "OTUS" or b.dtype.kind in "OUS":
            text = lambda x: x.decode() if isinstance(x, bytes) else str(x)  # noqa: E731
            same = a.shape == b.shape and [text(x) for x in a.ravel()] == [text(x) for x in b.ravel()]
        elif kind == "f":
            same = a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))
        else:
            same = a.shape == b.shape and bool(np.all(a == b))
        if not same:
            problems.append(f"{path}: tensorstore reads other values than zarr-python")
    if nczarr and kind in "biuf":
        import netCDF4
        try:
            ds = netCDF4.Dataset(f"file://{os.path.abspath(store_path)}#mode=zarr,file")
            *groups, name = path.split("/")
            node = ds
            for g in groups:
                node = node.groups[g]
            var = node.variables[name]
            var.set_auto_maskandscale(False)
            c = np.asarray(var[...])
            if not (c.shape == values.shape and np.array_equal(c, values, equal_nan=kind == "f")):
                problems.append(f"{path}: netCDF-C (NCZarr) reads other values than zarr-python")
        except Exception as e:  # noqa: BLE001: report any refusal
            problems.append(f"{path}: netCDF-C (NCZarr) cannot read it: {e}")
    file = os.path.join(out_dir, path.replace("/", "__"))
    if kind in "OTU":
        with open(file + ".json", "w") as f:
            json.dump([str(x) for x in values.ravel()], f)
        dtype = "string"
    else:
        values.astype(values.dtype.newbyteorder("<")).tofile(file + ".bin")
        dtype = str(values.dtype)
    index.append({"path": path, "dtype": dtype, "shape": list(values.shape)})

with open(os.path.join(out_dir, "index.json"), "w") as f:
    json.dump(index, f)
for n in notes:
    print(f"note: {n}")
for p in problems:
    print(p)
readers = f"zarr-python {zarr.__version__}, tensorstore {version('tensorstore')}" + (
    f", netCDF-C {__import__('netCDF4').__netcdf4libversion__} (NCZarr)" if nczarr else "")
print(f"{len(arrays)} array(s) read by {readers}")
sys.exit(1 if problems else 0)
