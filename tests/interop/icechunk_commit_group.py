#!/usr/bin/env python3
"""Commits an empty group NAME to branch ``main`` of an Icechunk repository, as another
writer would, with MESSAGE as the commit message.

    icechunk_commit_group.py icechunk+LOCATION NAME MESSAGE [--s3-endpoint URL]
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import compare  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("repo")
    p.add_argument("name")
    p.add_argument("message")
    p.add_argument("--s3-endpoint", default=None)
    a = p.parse_args()
    compare.S3_ENDPOINT = a.s3_endpoint
    import icechunk
    import zarr
    repo = icechunk.Repository.open(compare.icechunk_storage(a.repo.removeprefix("icechunk+")))
    session = repo.writable_session("main")
    zarr.open_group(session.store, mode="r+").create_group(a.name)
    session.commit(a.message)


if __name__ == "__main__":
    main()
