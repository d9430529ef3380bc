"""Shared fixtures: a trained digits bundle, a running server on a free port."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import settings

from infra.server import Server, ServerFactory

ROOT = Path(__file__).resolve().parents[1]
DIGITS_EXAMPLE = ROOT / "examples" / "digits"

# Hypothesis' per-example deadline (200 ms) measures the machine, not the code: on a shared 2-core CI box a
# slow example would fail a correct property. Properties are checked; speed is measured in bench/.
settings.register_profile("shipyard", deadline=None)
settings.load_profile("shipyard")


@pytest.fixture
def running_server(tmp_path: Path) -> Iterator[ServerFactory]:
    """``running_server(bundle, env={...})`` starts a server for one test and always stops it."""
    factory = ServerFactory(tmp_path)
    yield factory
    factory.close()


@pytest.fixture(scope="session")
def session_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """Like ``running_server``, for servers shared by many tests (stopped at the end of the session)."""
    factory = ServerFactory(tmp_path_factory.mktemp("servers"))
    yield factory
    factory.close()


@pytest.fixture(scope="session")
def digits_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits example's bundle: LogisticRegression on scikit-learn's digits, saved by examples/digits/train.py."""
    sys.path.insert(0, str(DIGITS_EXAMPLE))
    try:
        from train import main as train
    finally:
        sys.path.remove(str(DIGITS_EXAMPLE))
    return Path(train(str(tmp_path_factory.mktemp("digits") / "bundle")))


@pytest.fixture(scope="session")
def digits_rows(digits_bundle: Path) -> list[list[float]]:
    """The example rows saved in the digits bundle (64 floats each)."""
    rows: list[list[float]] = orjson.loads((digits_bundle / "example.json").read_bytes())["instances"]
    return rows


@pytest.fixture(scope="session")
def digits_server(session_servers: ServerFactory, digits_bundle: Path) -> Server:
    """One server for the digits bundle, shared by the tests that do not stop or break it (1 worker)."""
    return session_servers(digits_bundle)
