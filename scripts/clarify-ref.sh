#!/usr/bin/env bash
# Install smclarify, the reference the bias metrics are tested against, into .clarify-ref/ (a directory of its own:
# requirements/clarify-ref.txt says why). Idempotent: nothing is installed when .clarify-ref/ holds this lock.
#
#   SHIPYARD_VENV   the venv whose pip installs it (default: .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${SHIPYARD_VENV:-.venv}"
lock=requirements/clarify-ref.txt
if [ -f .clarify-ref/.installed ] && cmp -s "$lock" .clarify-ref/.installed; then
    exit 0
fi
rm -rf .clarify-ref
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --only-binary :all: \
    --require-hashes --target .clarify-ref -r "$lock"
cp "$lock" .clarify-ref/.installed
echo "clarify-ref: smclarify installed into .clarify-ref/" >&2
