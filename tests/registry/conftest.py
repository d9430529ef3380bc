"""The registry's tests: a private Shipyard home per test, a training run's record with the digits bundle."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.moto import aws, moto_server  # noqa: F401 - fixtures
from infra.train_runs import save_run
from shipyard.experiments.record import TrainRun


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """SHIPYARD_HOME and SHIPYARD_STATE in this test's folder (the console scripts inherit them)."""
    folder = tmp_path / "home"
    monkeypatch.setenv("SHIPYARD_HOME", str(folder))
    monkeypatch.setenv("SHIPYARD_STATE", str(folder / "state.json"))
    monkeypatch.setenv("SHIPYARD_CACHE_DIR", str(tmp_path / "cache"))
    return folder


@pytest.fixture
def digits_run(home: Path, digits_bundle: Path) -> TrainRun:
    return save_run("digits-7", digits_bundle)
