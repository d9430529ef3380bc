#!/usr/bin/env bash
# CI job: the `local` deploy target with only the base install (no `aws` extra, so no boto3/botocore).
#
# Makes a fresh venv from requirements/local.txt (Shipyard with [sklearn,test]), checks that boto3 and botocore
# are really absent there, then runs the local deploy tests in it: the real CLI and real Podman containers.
# The selected test files import neither boto3 nor moto (tests/deploy/test_local_base.py also checks that).
# Needs the system tools of scripts/system-deps.sh (Podman, debootstrap for the base image).
#
#   bash scripts/ci-local-base.sh            # the venv goes to $SHIPYARD_BASE_VENV (default: .venv-local-base)
#   bash scripts/ci-local-base.sh -x -q      # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${SHIPYARD_BASE_VENV:-.venv-local-base}"
python="${PYTHON:-python3}"

# requirements/local.txt: the base install plus scikit-learn (the digits model) and the test extra (pytest,
# hypothesis, jsonschema); no boto3, no moto. Installed exactly, as every other venv here (scripts/setup.sh).
rm -rf "$venv"
SHIPYARD_LOCK=local SHIPYARD_VENV="$venv" PYTHON="$python" bash scripts/setup.sh

for module in boto3 botocore moto; do
    if "$venv/bin/python" -c "import $module" 2>/dev/null; then
        echo "ci-local-base: $module is importable in $venv; this job must run without the aws extra" >&2
        exit 1
    fi
done
echo "ci-local-base: boto3, botocore and moto are absent from $venv"

# The local deploy tests; the selection is a list of files, so nothing that needs AWS is collected.
exec "$venv/bin/python" -m pytest -p no:cacheprovider \
    tests/deploy/test_local_base.py \
    tests/deploy/test_deploy_local.py \
    tests/deploy/test_local_cli.py \
    "$@"
