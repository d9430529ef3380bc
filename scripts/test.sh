#!/usr/bin/env bash
# Set up and run every check: ruff, mypy, then the whole pytest suite (unit and integration).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/system-deps.sh   # Podman, a local registry, debootstrap (the image tests need them)
.venv/bin/ruff check src tests bench examples
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
