"""Image tests: real Podman, a Debian base image made with debootstrap (cached in Podman's storage), a real
registry on 127.0.0.1, and the wheelhouse cached in ``~/.cache/shipyard`` between runs.

``scripts/test.sh`` runs ``scripts/system-deps.sh`` first, which installs Podman, the registry and
debootstrap when they are missing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from infra.base_image import ensure_base_image
from infra.registry import local_registry
from shipyard.image import BuildOptions, BuildResult, build

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def podman() -> str:
    binary = shutil.which("podman")
    if binary is None:
        pytest.fail("podman is not installed: run scripts/system-deps.sh as root (scripts/test.sh does)")
    return binary


@pytest.fixture(scope="session")
def base_image(podman: str) -> str:
    return ensure_base_image()


@pytest.fixture(scope="session")
def registry() -> Iterator[str]:
    with local_registry() as address:
        yield address


@pytest.fixture(scope="session")
def digits_image(base_image: str, digits_bundle: Path) -> BuildResult:
    return build(digits_bundle, BuildOptions(tag="shipyard-test/digits:1", base=base_image, engine="podman"))


@pytest.fixture(scope="session")
def tutorial_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """examples/tutorial-handler as a user has it after `python prepare.py`: the model files beside code/."""
    target = tmp_path_factory.mktemp("tutorial") / "tutorial-handler"
    shutil.copytree(REPO / "examples" / "tutorial-handler", target, ignore=shutil.ignore_patterns("*.joblib", "*.pkl"))
    subprocess.run([sys.executable, str(target / "prepare.py"), str(target)], check=True, capture_output=True)
    return target


@pytest.fixture(scope="session")
def derived_image(podman: str, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], str]:
    """Build a small image on top of another one (the broken ones) straight with Podman; returns its tag."""

    def build_it(tag: str, containerfile: str) -> str:
        directory = tmp_path_factory.mktemp("derived")
        (directory / "Containerfile").write_text(containerfile)
        subprocess.run([podman, "build", "-q", "-t", tag, str(directory)], check=True, capture_output=True)
        return tag

    return build_it
