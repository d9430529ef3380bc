"""Training tests: the contract pure (test_contract.py) and real Podman containers (test_local.py).

The container tests share one source folder of small scripts (``jobs``, with the digits example's pinned
requirements, so every run's image shares the heavy layers, already cached by the image tests) and one training
image built once per session; a run rebuilds only its ``ENV SAGEMAKER_PROGRAM`` layer when its script differs.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from infra.base_image import ensure_base_image
from shipyard.image import BuildOptions, BuildResult, build_training
from shipyard.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DIGITS = REPO / "examples" / "digits"
JOBS = Path(__file__).resolve().parent / "jobs"


@pytest.fixture(scope="session")
def base_image() -> str:
    if shutil.which("podman") is None:
        pytest.fail("podman is not installed: run scripts/system-deps.sh as root (scripts/test.sh does)")
    return ensure_base_image()


@pytest.fixture(scope="session")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The source folder: the test scripts, the digits example's script and its requirements."""
    folder = tmp_path_factory.mktemp("src") / "jobs"
    shutil.copytree(JOBS, folder)
    shutil.copyfile(DIGITS / "train_job.py", folder / "train_job.py")
    shutil.copyfile(DIGITS / "requirements-train.txt", folder / "requirements.txt")
    return folder


@pytest.fixture(scope="session")
def digits_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("digits-data")
    subprocess.run([sys.executable, str(DIGITS / "make_data.py"), str(root)], check=True, capture_output=True)
    return root


@pytest.fixture(scope="session")
def training_image(base_image: str, jobs: Path) -> BuildResult:
    """The training image of the digits script, built once (the runs' builds then hit its cached layers)."""
    requirements = (jobs / "requirements.txt").read_text().split()
    return build_training(
        jobs, "train_job.py", BuildOptions(tag="shipyard-train/jobs:latest", base=base_image, engine="podman"),
        requirements=requirements,
    )  # fmt: skip


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Shipyard's home in a temporary folder (runs/ under it), Podman as the engine, the shared cache."""
    monkeypatch.setenv("SHIPYARD_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SHIPYARD_STATE", str(tmp_path / "home" / "state.json"))
    monkeypatch.setenv("SHIPYARD_ENGINE", "podman")
    return Settings.from_env()
