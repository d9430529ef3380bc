#!/usr/bin/env bash
# The demo, end to end on this machine and the embedded default target (`local`: the real image under Podman or
# Docker, with SageMaker's lifecycle): train → save → build → verify → deploy → invoke → bench → status → cleanup.
#
#   bash scripts/demo.sh            the whole path (installs Podman & co. as root through apt when missing)
#   bash scripts/demo.sh --quick    only save, serve and invoke: no container engine needed
#
# It installs what it needs as the test command does: the demo lock into .venv-demo/ (scripts/setup.sh), the
# container tools (scripts/system-deps.sh) and, where no registry can be reached, a local Python base image made
# with debootstrap (tests/infra/base_image.py; set SHIPYARD_DEMO_BASE=python:3.11-slim to build on Docker Hub's).
set -euo pipefail
cd "$(dirname "$0")/.."
export SHIPYARD_VENV="${SHIPYARD_DEMO_VENV:-.venv-demo}"
SHIPYARD_LOCK=demo bash scripts/setup.sh
if [ "${1:-}" = --quick ]; then
    exec "$SHIPYARD_VENV/bin/python" examples/digits/demo.py "$@"
fi
bash scripts/system-deps.sh
base="${SHIPYARD_DEMO_BASE:-}"
if [ -z "$base" ] && { command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ]; } \
        && command -v podman >/dev/null 2>&1; then
    echo "demo: the local base image (debootstrap; about a minute the first time, then cached)" >&2
    base=$("$SHIPYARD_VENV/bin/python" tests/infra/base_image.py)
fi
exec "$SHIPYARD_VENV/bin/python" examples/digits/demo.py ${base:+--base "$base"} "$@"
