"""Bundles whose behaviour the serving tests control: slow, failing, slow to load, failing to load."""

from __future__ import annotations

import itertools
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import shipyard


def make_behaviour() -> Callable[[np.ndarray], np.ndarray]:
    """A model steered by its input: column ``seconds`` is how long to compute, ``x`` < 0 makes it raise.

    The wait is CPU-bound numeric work (matrix products, which release the GIL in their kernels as
    scikit-learn's and onnxruntime's do), not a sleep. Returns 2·x per row. Defined inside a function
    so cloudpickle saves it by value: the server does not need this test module.
    """

    def behaviour(batch: np.ndarray) -> np.ndarray:
        batch = np.asarray(batch, dtype=np.float64)
        if (batch[:, 1] < 0).any():
            raise ValueError(f"negative input {batch[:, 1].min():g}")
        deadline = time.perf_counter() + float(batch[:, 0].max())
        work = np.full((128, 128), 0.5)
        while time.perf_counter() < deadline:
            work = np.tanh(work @ work.T / 128)
        return batch[:, 1] * 2

    return behaviour


@pytest.fixture(scope="session")
def behaviour_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A python-flavor bundle of the behaviour model (batchable; records keyed ``seconds``, ``x``)."""
    path = tmp_path_factory.mktemp("behaviour") / "bundle"
    shipyard.save(make_behaviour(), path, example=np.zeros((2, 2)), feature_names=["seconds", "x"], name="behaviour")
    return path


def handler_bundle(directory: Path, script: str) -> Path:
    """A tutorial-style handler directory (code/inference.py only)."""
    (directory / "code").mkdir(parents=True)
    (directory / "code" / "inference.py").write_text(textwrap.dedent(script))
    return directory


@pytest.fixture
def make_handler_bundle(tmp_path: Path) -> Callable[[str], Path]:
    """``make_handler_bundle(SCRIPT)``: a handler bundle of this test's own whose code/inference.py is SCRIPT."""
    made = itertools.count()
    return lambda script: handler_bundle(tmp_path / f"handler-{next(made)}", script)


@pytest.fixture(scope="session")
def slow_loading_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A handler whose model_fn takes 3 s: /ping must say 503 meanwhile, then 200."""
    return handler_bundle(
        tmp_path_factory.mktemp("slow-load"),
        """
        import time

        def model_fn(model_dir):
            time.sleep(3)
            return lambda data: data * 10
        """,
    )


@pytest.fixture(scope="session")
def failing_load_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A handler whose model_fn raises: the server must stop with exit code 3 and say why."""
    return handler_bundle(
        tmp_path_factory.mktemp("bad-load"),
        """
        def model_fn(model_dir):
            raise RuntimeError("weights file model.pth is corrupt")
        """,
    )


@pytest.fixture(scope="session")
def uneven_loading_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A handler where the first worker to load is quick and every later one takes 4 s."""
    directory = tmp_path_factory.mktemp("uneven-load")
    return handler_bundle(
        directory,
        f"""
        import os, time

        def model_fn(model_dir):
            try:
                os.mkdir({str(directory / "first")!r})
            except FileExistsError:
                time.sleep(4)
            return lambda data: data * 10
        """,
    )
