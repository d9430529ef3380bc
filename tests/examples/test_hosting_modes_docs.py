"""docs/hosting-modes.md, run as a reader runs it: every ```bash block of a section, in order, in one shell.

Each section runs in a fresh folder holding what the page says it holds (``bundle/``, ``rows.jsonl``,
``request.json``), with the installed ``shipyard`` first on PATH, the local target, Podman and a state file of its
own. Whatever a section leaves deployed (a failing one may) is cleaned up after it, so a broken example does not
leave a container running. ``console`` blocks (the sagemaker target) are not run; they are commands against AWS.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import orjson
import pytest
from sklearn.datasets import load_digits

from infra.base_image import ensure_base_image
from infra.cli import shipyard
from infra.server import BIN

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "hosting-modes.md"
SECTIONS = ("Multi-model endpoints", "Asynchronous inference", "Batch transform", "Response streaming")
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.M | re.S)


def sections(text: str) -> dict[str, list[str]]:
    """Each ``## `` heading's ```bash blocks, in order."""
    found: dict[str, list[str]] = {}
    for part in re.split(r"^## ", text, flags=re.M)[1:]:
        heading, _, body = part.partition("\n")
        found[heading.strip()] = [code for lang, code in _FENCE.findall(body) if lang == "bash"]
    return found


def test_every_hosting_mode_has_a_runnable_example() -> None:
    found = sections(PAGE.read_text())
    assert list(found) == list(SECTIONS)
    assert {name: len(blocks) for name, blocks in found.items() if not blocks} == {}


def _prepare(folder: Path, bundle: Path) -> None:
    shutil.copytree(bundle, folder / "bundle")
    digits = load_digits()
    rows = np.asarray(digits.data[:200], dtype=float).tolist()
    (folder / "rows.jsonl").write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    (folder / "request.json").write_bytes(orjson.dumps({"instances": rows[:5]}))


def _leftovers(env: dict[str, str]) -> list[str]:
    done = shipyard("status", "--output", "json", env=env, timeout=120)
    if done.returncode != 0:
        return []
    return [d["name"] for d in json.loads(done.stdout)["deployments"]]


@pytest.mark.parametrize("section", SECTIONS)
def test_the_section_runs(section: str, digits_bundle: Path, tmp_path: Path) -> None:
    blocks = sections(PAGE.read_text()).get(section, [])
    assert blocks, f"docs/hosting-modes.md: the section {section!r} has no ```bash example"
    folder = tmp_path / "work"
    folder.mkdir()
    _prepare(folder, digits_bundle)
    env = {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "SHIPYARD_STATE": str(tmp_path / "home" / "state.json"),
        "SHIPYARD_HOME": str(tmp_path / "home"),
        "SHIPYARD_ENGINE": "podman",
        "SHIPYARD_BASE_IMAGE": ensure_base_image(),
        "COLUMNS": "120",
    }
    script = folder.parent / "example.sh"
    script.write_text("set -euo pipefail\n" + "\n".join(blocks))
    try:
        done = subprocess.run(
            ["bash", str(script)], cwd=folder, env={**os.environ, **env}, capture_output=True, text=True, timeout=1800
        )
        assert done.returncode == 0, (
            f"{section}: exit {done.returncode}\n--- script\n{script.read_text()}\n--- stdout\n{done.stdout}\n"
            f"--- stderr\n{done.stderr}"
        )
        left = _leftovers(env)
        assert left == [], f"{section}: the example left {left} deployed; it should clean up what it starts"
    finally:
        for name in _leftovers(env):
            shipyard("cleanup", name, env=env, timeout=600)
