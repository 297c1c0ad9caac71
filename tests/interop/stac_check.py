"""Checks the STAC documents nc2zarr wrote: usage ``stac_check.py DIR``.

The core Collection and Item are validated against the STAC 1.1.0 JSON schemas that pystac
ships (offline); the datacube fields are read through pystac's datacube extension model and
checked against the extension's rules; the Zarr asset is opened with xarray as a catalog
user would, and its dimensions and variables must be those the documents list.
"""

import json
import sys

import pystac
import pystac.validation
import xarray as xr
from pystac.extensions.datacube import DatacubeExtension

folder = sys.argv[1]
docs = {name: json.load(open(f"{folder}/{name}.json")) for name in ("collection", "item")}
problems = []

for name, doc in docs.items():
    # Core schema only: the extension schema would be fetched from the network.
    pystac.validation.validate_dict(doc, extensions=[])

collection = pystac.Collection.from_dict(docs["collection"])
item = pystac.Item.from_dict(docs["item"])
for owner in (collection, item):
    cube = DatacubeExtension.ext(owner)
    for name, dim in cube.dimensions.items():
        kind = dim.dim_type
        extent = dim.to_dict().get("extent")
        if kind == "spatial":
            if dim.to_dict().get("axis") not in ("x", "y", "z"):
                problems.append(f"{name}: spatial dimension without axis x/y/z")
            if not (isinstance(extent, list) and len(extent) == 2 and all(isinstance(v, (int, float)) for v in extent)):
                problems.append(f"{name}: spatial extent {extent!r}")
        elif kind == "temporal":
            if not (isinstance(extent, list) and len(extent) == 2):
                problems.append(f"{name}: temporal extent {extent!r}")
            else:
                for v in extent:
                    pystac.utils.str_to_datetime(v)
        elif not (extent or dim.to_dict().get("values")):
            problems.append(f"{name}: a {kind} dimension needs an extent or values")
    for name, var in cube.variables.items():
        if var.var_type not in ("data", "auxiliary"):
            problems.append(f"{name}: variable type {var.var_type}")
        missing = [d for d in var.dimensions if d not in cube.dimensions]
        if missing:
            problems.append(f"{name}: dimensions {missing} are not cube dimensions")

asset = collection.assets["zarr"]
if asset.media_type != "application/vnd+zarr" or "data" not in (asset.roles or []):
    problems.append(f"zarr asset: type {asset.media_type}, roles {asset.roles}")
if item.assets["zarr"].href != asset.href:
    problems.append("the Item's asset is not the Collection's")
ds = xr.open_zarr(asset.href, **asset.extra_fields["xarray:open_kwargs"])
cube = DatacubeExtension.ext(collection)
if set(cube.dimensions) != set(ds.sizes):
    problems.append(f"dimensions {sorted(cube.dimensions)} but the store has {sorted(ds.sizes)}")
listed = set(ds.variables) - set(ds.sizes)
if set(cube.variables) != listed:
    problems.append(f"variables {sorted(cube.variables)} but the store has {sorted(listed)}")
for name, dim in cube.dimensions.items():
    if dim.dim_type == "temporal":
        first, last = (str(v)[:19].replace(" ", "T") for v in ds[name].values[[0, -1]])
        if dim.to_dict()["extent"] != [first + "Z", last + "Z"]:
            problems.append(f"{name}: extent {dim.to_dict()['extent']} but the store spans {first} .. {last}")
interval = collection.extent.temporal.intervals[0]
print(json.dumps({"interval": [v.isoformat() if v else None for v in interval]}))
if problems:
    print("\n".join(problems))
    sys.exit(1)
