#!/usr/bin/env bash
# The demo, end to end on this machine: train → save a bundle → serve it → invoke → print → stop.
set -euo pipefail
cd "$(dirname "$0")/.."
SHIPYARD_EXTRAS=sklearn,python bash scripts/setup.sh
exec .venv/bin/python examples/digits/demo.py "$@"
