#!/usr/bin/env bash
# Set up and run every check: the locks against pyproject.toml, ruff, mypy, then the whole pytest suite.
#
#   SHIPYARD_VENV   the venv to set up and test in (default: .venv); .ci/run uses a fresh one
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${SHIPYARD_VENV:-.venv}"
bash scripts/setup.sh         # the dev lock, exactly (refuses a lock made from another pyproject.toml)
bash scripts/system-deps.sh   # Podman, a local registry, debootstrap (the image tests need them)
bash scripts/clarify-ref.sh   # smclarify, the bias metrics' reference, in a directory of its own
"$venv/bin/python" scripts/lock.py check --deep
"$venv/bin/ruff" check src tests bench examples scripts
"$venv/bin/mypy"
exec "$venv/bin/python" -m pytest "$@"
