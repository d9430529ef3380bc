"""Fixtures for the monitor tests: real captured traffic from a running digits server, and capture files.

``digits_capture`` starts the real server (``serve`` subprocess, data capture on) and sends it the digits
test split concurrently, one CSV row per request with an inference id; SIGTERM then flushes the capture.
Scenarios a server cannot produce (a missing column, nulls, a new category: the server answers those
with 400, so they are never captured) are written with the server's own record encoder
(:func:`write_capture`), the same code the server's capture thread runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from monitor_helpers import Captured, Digits, capture_from_server

from shipyard.monitor import make_baseline


@pytest.fixture(scope="session")
def digits() -> Digits:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_train, x_test, _, y_test = train_test_split(x, y, test_size=0.25, random_state=0)  # as examples/digits/train.py
    return Digits(x_train, x_test, y_test, [f"pixel_{i}" for i in range(64)])


@pytest.fixture(scope="session")
def digits_capture(
    session_servers: Any, digits_bundle: Path, digits: Digits, tmp_path_factory: pytest.TempPathFactory
) -> Captured:
    """The digits test split, captured by a real server under concurrent load."""
    root = tmp_path_factory.mktemp("capture") / "same"
    return capture_from_server(session_servers, digits_bundle, root, digits.x_test, "same")


@pytest.fixture(scope="session")
def shifted_capture(
    session_servers: Any, digits_bundle: Path, digits: Digits, tmp_path_factory: pytest.TempPathFactory
) -> Captured:
    """The digits test split with pixels 20, 21 and 22 shifted up by 4, captured by a real server."""
    rows = digits.x_test.copy()
    rows[:, 20:23] += 4
    root = tmp_path_factory.mktemp("capture") / "shifted"
    return capture_from_server(session_servers, digits_bundle, root, rows, "shifted")


@pytest.fixture(scope="session")
def digits_baseline(digits: Digits, digits_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A baseline of the digits training split (Parquet with a label column the schema leaves out)."""
    directory = tmp_path_factory.mktemp("digits-baseline")
    table = pa.table({name: digits.x_train[:, i] for i, name in enumerate(digits.names)})
    table = table.append_column("label", pa.array(np.zeros(len(digits.x_train), dtype=np.int64)))
    pq.write_table(table, directory / "train.parquet")
    make_baseline(directory / "train.parquet", directory / "baseline", schema=digits_bundle)
    return directory / "baseline"
