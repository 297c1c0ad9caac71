#!/usr/bin/env bash
# Runs nc2zarr's whole test suite: formatting, lints, unit and integration tests,
# the devset (../shared/data/devset), the xarray/zarr-python interop tests and the
# object-store tests against moto (S3 API) and Azurite on 127.0.0.1, and the split-run
# tests against a one-node Slurm cluster on 127.0.0.1.
# Installs what it needs first (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

export NC2ZARR_PYTHON="$PWD/.venv/bin/python"
export NC2ZARR_REQUIRE_INTEROP=1 NC2ZARR_REQUIRE_SERVERS=1
if [ -d ../shared/data/devset ]; then export NC2ZARR_REQUIRE_DEVSET=1; fi

# Icechunk targets are a Cargo feature: test with it, and check that the default build
# (without it) still compiles.
cargo fmt --all -- --check
cargo check --release --workspace --all-targets
cargo build --release --workspace --all-targets --features icechunk
cargo clippy --release --workspace --all-targets --features icechunk -- -D warnings

slurm_dir=$(mktemp -d /tmp/nc2zarr-slurm.XXXXXX)
trap 'kill $(cat target/test-servers.pids 2>/dev/null) 2>/dev/null || true; scripts/slurm-cluster.sh stop "$slurm_dir"' EXIT
eval "$(scripts/test-servers.sh)"
eval "$(scripts/slurm-cluster.sh start "$slurm_dir")"
# The Icechunk tests read repositories with the icechunk package, which needs Python 3.12.
if [ -x .venv-current/bin/python ]; then export NC2ZARR_PYTHON_CURRENT="$PWD/.venv-current/bin/python"; fi
cargo test --release --workspace --features icechunk -- --test-threads "$(nproc)"
# The reader matrix and the xarray interop tests again, with the newest zarr-python.
if [ -x .venv-current/bin/python ]; then
  NC2ZARR_PYTHON="$PWD/.venv-current/bin/python" cargo test --release --features icechunk --test readers --test interop -- --test-threads "$(nproc)"
elif [ -n "${CI:-}" ]; then
  echo "test.sh: no .venv-current (Python 3.12, see scripts/setup.sh): required under CI" >&2
  exit 1
fi
echo "test.sh: all tests passed"
