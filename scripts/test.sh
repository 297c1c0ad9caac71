#!/usr/bin/env bash
# Runs nc2zarr's whole test suite: formatting, lints, unit and integration tests,
# the devset (../shared/data/devset) and the xarray/zarr-python interop tests.
# Installs what it needs first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

export NC2ZARR_PYTHON="$PWD/.venv/bin/python"
export NC2ZARR_REQUIRE_INTEROP=1
if [ -d ../shared/data/devset ]; then export NC2ZARR_REQUIRE_DEVSET=1; fi

cargo fmt --all -- --check
cargo build --release --all-targets
cargo clippy --release --all-targets -- -D warnings
cargo test --release -- --test-threads "$(nproc)"
echo "test.sh: all tests passed"
