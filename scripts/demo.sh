#!/usr/bin/env bash
# The demo, end to end on this machine and the embedded default target (`local`: the real image under Podman or
# Docker, with SageMaker's lifecycle): train → save → build → verify → deploy → invoke → bench → status → cleanup.
#
#   bash scripts/demo.sh            the whole path
#   bash scripts/demo.sh --quick    only save, serve and invoke: no container engine needed
#
# It installs what it needs as the test command does: the demo lock into .venv-demo/ (scripts/setup.sh) and, for
# Podman, the container tools (scripts/system-deps.sh: apt, as root). The engine is SHIPYARD_ENGINE, else Docker
# when its daemon answers, else Podman. The base image is SHIPYARD_DEMO_BASE, else `shipyard build`'s default
# (python:3.11-slim) when the registry serves it, else (Podman, as root) a local Python base image made with
# debootstrap from the machine's own Debian mirror (tests/infra/base_image.py; about a minute, then cached).
set -euo pipefail
cd "$(dirname "$0")/.."
export SHIPYARD_VENV="${SHIPYARD_DEMO_VENV:-.venv-demo}"
SHIPYARD_LOCK=demo bash scripts/setup.sh
engine="${SHIPYARD_ENGINE:-}"
previous=
for arg in "$@"; do
    if [ "$arg" = --quick ]; then
        exec "$SHIPYARD_VENV/bin/python" examples/digits/demo.py "$@"
    fi
    if [ "$previous" = --engine ]; then engine="$arg"; fi
    case "$arg" in --engine=*) engine="${arg#--engine=}" ;; esac
    previous="$arg"
done

if [ -z "$engine" ]; then
    if command -v docker >/dev/null 2>&1 && docker version --format '{{.Server.Version}}' >/dev/null 2>&1; then
        engine=docker
    else
        engine=podman
    fi
fi
export SHIPYARD_ENGINE="$engine"  # every shipyard command and the demo's own engine checks use it
if [ "$engine" = podman ]; then
    bash scripts/system-deps.sh   # Podman, runc, debootstrap (installs nothing when they are there)
fi

base="${SHIPYARD_DEMO_BASE:-}"
if [ -z "$base" ] && [ "$engine" = podman ]; then
    default=docker.io/library/python:3.11-slim
    if podman image exists "$default" 2>/dev/null \
            || timeout 30 skopeo inspect --retry-times 0 "docker://$default" >/dev/null 2>&1; then
        :  # the registry serves the default base: build on it, as a user would
    elif [ "$(id -u)" = 0 ] && { command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ]; }; then
        echo "demo: $default is not reachable; making a local base image with debootstrap (once, then cached)" >&2
        base=$("$SHIPYARD_VENV/bin/python" tests/infra/base_image.py)
    else
        echo "demo: $default is not reachable and no local base image can be made here (debootstrap needs root);" \
             "set SHIPYARD_DEMO_BASE to a base image with CPython 3.11" >&2
    fi
fi
exec "$SHIPYARD_VENV/bin/python" examples/digits/demo.py ${base:+--base "$base"} "$@"
