"""Fixtures for the experiments tests: Shipyard homes in tmp with MLflow's real SQLite store, and run records.

MLflow builds a new store's tables with its migrations (seconds on a small machine), so the session builds one
empty store and each test gets its own copy of it (``sy_home``)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from experiment_runs import Home

from shipyard.experiments.store import client_for
from shipyard.settings import Settings


@pytest.fixture(scope="session")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("mlflow") / "mlflow.db"
    client_for(f"sqlite:///{path}").search_experiments()  # builds the tables
    return path


@pytest.fixture
def sy_home(tmp_path: Path, empty_store: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    """A Shipyard home whose default tracking store (HOME/mlflow.db) is a fresh, empty MLflow store."""
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(empty_store, home / "mlflow.db")
    settings = Settings.from_env({"HOME": str(tmp_path), "SHIPYARD_HOME": str(home)})
    assert settings.tracking == f"sqlite:///{home / 'mlflow.db'}"
    yield Home(home, settings)
