#!/usr/bin/env bash
# Create a venv (if missing) and make it hold exactly one lock of requirements/ plus Shipyard itself (editable).
#
#   SHIPYARD_LOCK   which lock: dev (default: tests, linters, every flavor), demo, local  (see scripts/lock.py)
#   SHIPYARD_VENV   the venv's directory (default: .venv)
#
# The lock pins every package with its hashes (pip's --require-hashes), so a fresh machine installs what this
# one did. A lock made from another pyproject.toml is refused: run `bash scripts/lock.sh`. Idempotent: a second
# run checks the installed versions against the lock and installs nothing when they match.
set -euo pipefail
cd "$(dirname "$0")/.."
lock="requirements/${SHIPYARD_LOCK:-dev}.txt"
venv="${SHIPYARD_VENV:-.venv}"
python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "setup: Shipyard needs Python >= 3.11; $python is $("$python" --version 2>&1). Set PYTHON=python3.11 (or newer)." >&2
    exit 1
fi
"$python" scripts/lock.py check >/dev/null
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" scripts/lock.py sync "$lock"
# Shipyard itself, without touching its dependencies (the lock has them) and with the lock's setuptools; again
# only when pyproject.toml (its entry points, version, dependencies) changed since the last install into this venv.
stamp=$("$python" -c 'import hashlib; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest())')
if [ ! -x "$venv/bin/shipyard" ] || [ "$(cat "$venv/.shipyard-installed" 2>/dev/null)" != "$stamp" ]; then
    "$venv/bin/python" scripts/lock.py pip install --quiet --no-deps --no-build-isolation -e .
    echo "$stamp" > "$venv/.shipyard-installed"
fi
