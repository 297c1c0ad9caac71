#!/usr/bin/env python3
"""Prints the history of branch ``main`` of an Icechunk repository, newest first, as
one JSON line per snapshot: {"id", "message", "run"} (``run`` is the ``nc2zarr_run``
snapshot property, null for snapshots nc2zarr did not write).

    icechunk_history.py icechunk+LOCATION [--s3-endpoint URL]

Reads with the ``icechunk`` package from PyPI, not with nc2zarr: the history a user sees.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import compare  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("repo")
    p.add_argument("--s3-endpoint", default=None)
    a = p.parse_args()
    compare.S3_ENDPOINT = a.s3_endpoint
    import icechunk
    repo = icechunk.Repository.open(compare.icechunk_storage(a.repo.removeprefix("icechunk+")))
    for s in repo.ancestry(branch="main"):
        print(json.dumps({"id": s.id, "message": s.message, "run": s.metadata.get("nc2zarr_run")}))


if __name__ == "__main__":
    main()
