#!/usr/bin/env bash
# Regenerate the lock files under requirements/ from pyproject.toml (pip-compile, with hashes).
#
#   bash scripts/lock.sh              keep every pin that still satisfies pyproject.toml, resolve only what changed
#   bash scripts/lock.sh --upgrade    resolve everything anew (newest releases allowed by pyproject.toml)
#   bash scripts/lock.sh -P NAME      upgrade one package (pip-compile's --upgrade-package)
#
# dev.txt is resolved first; the other locks (scripts/lock.py names them and their extras) are constrained to
# dev.txt's pins, so a package has the same version in every lock. pip-tools runs from its own venv (.venv-lock/),
# never from the project's. Needs the package index; takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
tools="pip-tools==7.6.2"  # one version for everyone who makes the locks
if [ "$(.venv-lock/bin/pip-compile --version 2>/dev/null)" != "pip-compile, version ${tools#*==}" ]; then
    rm -rf .venv-lock
    "$python" -m venv .venv-lock
    .venv-lock/bin/python -m pip install --quiet --disable-pip-version-check "$tools"
fi
compile=(.venv-lock/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras --all-build-deps
         --no-emit-index-url --no-emit-find-links --no-header "$@")
mkdir -p requirements
constraints=.venv-lock/dev-pins.txt
while read -r name extras; do
    args=()
    for extra in ${extras//,/ }; do args+=(--extra "$extra"); done
    if [ "$name" = dev ]; then
        "${compile[@]}" "${args[@]}" -o "requirements/$name.txt" pyproject.toml
        # the other locks take dev's versions (names and pins only: a constraint carries no hashes)
        grep -E '^[A-Za-z0-9][A-Za-z0-9._-]*==' requirements/dev.txt | sed 's/ .*//' > "$constraints"
    else
        "${compile[@]}" "${args[@]}" -c "$constraints" -o "requirements/$name.txt" pyproject.toml
        "$python" - "requirements/$name.txt" "-c $constraints" <<'PY'  # portable, unlike sed -i
import sys, pathlib
path = pathlib.Path(sys.argv[1])
path.write_text(path.read_text().replace(sys.argv[2], "dev.txt's version"))
PY
    fi
    echo "lock: requirements/$name.txt ($(grep -cE '^[A-Za-z0-9]' "requirements/$name.txt") packages)" >&2
done < <("$python" scripts/lock.py names)
"$python" scripts/lock.py stamp
"$python" scripts/lock.py check
