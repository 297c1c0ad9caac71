#!/usr/bin/env bash
# Installs what nc2zarr needs to build and test, idempotently:
#   - Debian packages: libnetcdf-dev (netCDF-C + HDF5), pkg-config, GNU time, and Slurm
#     (slurmctld, slurmd, sbatch, munge) for a one-node test cluster;
#   - a Python venv at .venv with xarray, zarr, netCDF4, moto, s3fs (scripts/requirements.txt);
#   - a Python 3.12 venv at .venv-current with the newest zarr-python (requirements-current.txt);
#   - Azurite (npm) in .tools/ for the Azure tests.
# Usage: scripts/setup.sh [--no-python]
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v nc-config >/dev/null 2>&1 || need_apt+=(libnetcdf-dev netcdf-bin)
dpkg -s libhdf5-dev >/dev/null 2>&1 || need_apt+=(libhdf5-dev)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
[ -x /usr/bin/time ] || need_apt+=(time)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
# A one-node Slurm cluster for the split-run tests (scripts/slurm-cluster.sh).
need_slurm=()
command -v slurmctld >/dev/null 2>&1 || need_slurm+=(slurmctld)
command -v slurmd >/dev/null 2>&1 || need_slurm+=(slurmd)
command -v sbatch >/dev/null 2>&1 || need_slurm+=(slurm-client)
dpkg -s slurm-wlm-basic-plugins >/dev/null 2>&1 || need_slurm+=(slurm-wlm-basic-plugins)
if [ $((${#need_apt[@]} + ${#need_slurm[@]})) -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} ${need_slurm[*]}" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  if [ ${#need_apt[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
  fi
  if [ ${#need_slurm[@]} -gt 0 ]; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_slurm[@]}" >/dev/null
  fi
fi

if [ "${1:-}" != "--no-python" ]; then
  stamp=.venv/.requirements.sha
  want=$(sha256sum scripts/requirements.txt | cut -c1-64)
  if [ ! -x .venv/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: creating the Python venv in .venv" >&2
    python3 -m venv .venv
    .venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements.txt
    echo "$want" > "$stamp"
  fi
  # The newest zarr-python needs Python >= 3.12 (Debian's is 3.11): a second venv, for
  # the reader matrix and the xarray interop tests (scripts/test.sh).
  py312=""
  for p in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python python3.12; do
    if "$p" -c 'import sys; assert sys.version_info >= (3, 12)' >/dev/null 2>&1; then
      py312=$p
      break
    fi
  done
  stamp=.venv-current/.requirements.sha
  want=$(sha256sum scripts/requirements-current.txt | cut -c1-64)
  if [ -z "$py312" ]; then
    echo "setup: no Python 3.12 found: the current zarr-python is not tested" >&2
  elif [ ! -x .venv-current/bin/python ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: creating the Python 3.12 venv in .venv-current" >&2
    rm -rf .venv-current
    "$py312" -m venv .venv-current
    .venv-current/bin/pip install -q --disable-pip-version-check -r scripts/requirements-current.txt
    echo "$want" > "$stamp"
  fi
  if [ ! -x .tools/node_modules/.bin/azurite-blob ]; then
    echo "setup: installing Azurite in .tools" >&2
    mkdir -p .tools
    (cd .tools && npm install --silent --no-audit --no-fund azurite@3.35.0 >/dev/null)
  fi
fi
