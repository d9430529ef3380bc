#!/usr/bin/env bash
# CI job: the `local` deploy target with only the base install (no `aws` extra, so no boto3/botocore).
#
# Makes a fresh venv with `pip install -e '.[sklearn]'` and the test tools, checks that boto3 and botocore
# are really absent there, then runs the local deploy tests in it: the real CLI and real Podman containers.
# The selected test files import neither boto3 nor moto (tests/deploy/test_local_base.py also checks that).
# Needs the system tools of scripts/system-deps.sh (Podman, debootstrap for the base image).
#
#   bash scripts/ci-local-base.sh            # the venv goes to $SHIPYARD_BASE_VENV (default: a temp dir)
#   bash scripts/ci-local-base.sh -x -q      # extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${SHIPYARD_BASE_VENV:-${TMPDIR:-/tmp}/shipyard-ci-local-base}"
python="${PYTHON:-python3}"

rm -rf "$venv"
"$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)
"${pip[@]}" --upgrade pip 2>&1 | grep -v -e "^WARNING: Location" -e "is ignored: it is neither" || true
# The base install plus scikit-learn (the digits model), and what the tests themselves use: pytest,
# hypothesis (tests/conftest.py) and jsonschema (the --output json schemas). No boto3, no moto.
"${pip[@]}" -e ".[sklearn]" "pytest>=8" "hypothesis>=6.100" "jsonschema>=4.20" 2>&1 \
    | grep -v -e "^WARNING: Location" -e "is ignored: it is neither" || true

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
