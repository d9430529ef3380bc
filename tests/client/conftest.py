"""The scripted HTTP server fixture (tests/infra/scripted_http.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from infra.moto import aws, moto_server  # noqa: F401 - fixtures
from infra.scripted_http import Running, Script, start_scripted


@pytest.fixture
def scripted_server() -> Iterator[Callable[[Script], Running]]:
    """``scripted_server(Script(...))`` serves one scripted app on a free port until the test ends."""
    stops: list[Callable[[], None]] = []

    def start(script: Script) -> Running:
        running, stop = start_scripted(script)
        stops.append(stop)
        return running

    yield start
    for stop in stops:
        stop()
