#!/usr/bin/env bash
# Create .venv (if missing) and install Shipyard with the extras named in $SHIPYARD_EXTRAS (default: dev).
# Idempotent: a second run only checks that everything is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
extras="${SHIPYARD_EXTRAS:-dev}"
python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
    .venv/bin/python -m pip install --quiet --upgrade pip
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$extras]" 2>&1 \
    | grep -v -e "^WARNING: Location" -e "is ignored: it is neither" || true
