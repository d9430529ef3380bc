"""The onnx flavor: outputs by method (and the older single output), ravel, threads sized per worker, text
models delegated to _onnx_text."""

from __future__ import annotations

import sys
import types
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression, Ridge

from shipyard.bundle.manifest import Manifest
from shipyard.config import ServerConfig
from shipyard.errors import BundleError
from shipyard.handler.flavors import onnx as flavor

skl2onnx = pytest.importorskip("skl2onnx")


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_iris(return_X_y=True)
    return X, y


def write(model: Any, directory: Path, X: np.ndarray, **options: Any) -> Manifest:
    from skl2onnx.common.data_types import DoubleTensorType

    onx = skl2onnx.convert_sklearn(
        model, initial_types=[("X", DoubleTensorType([None, X.shape[1]]))], options={id(model): options},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )  # fmt: skip
    (directory / "model").mkdir(exist_ok=True)
    (directory / "model" / "model.onnx").write_bytes(onx.SerializeToString())
    return Manifest(name="m", flavor="onnx", artifact="model/model.onnx")


def test_outputs_by_method_and_the_older_output_option(tmp_path: Path, iris: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = iris
    model = LogisticRegression(max_iter=300).fit(X, y)
    manifest = write(model, tmp_path, X, zipmap=False)
    outputs = {"predict": "label", "predict_proba": "probabilities"}
    labels = flavor.load(tmp_path, replace(manifest, options={"outputs": outputs, "method": "predict"}))
    assert np.array_equal(labels(X), model.predict(X))
    scores = flavor.load(tmp_path, replace(manifest, options={"outputs": outputs, "method": "predict_proba"}))
    answer = scores(X)
    assert answer.dtype == np.float64 and np.allclose(answer, model.predict_proba(X), atol=1e-12)
    assert np.array_equal(flavor.load(tmp_path, manifest)(X), model.predict(X))  # default: the first output
    older = flavor.load(tmp_path, replace(manifest, options={"output": "probabilities"}))
    assert np.allclose(older(X.astype(np.float32)), model.predict_proba(X), atol=1e-6)  # input cast to double
    with pytest.raises(BundleError, match="not method 'decision_function'"):
        flavor.load(tmp_path, replace(manifest, options={"outputs": outputs, "method": "decision_function"}))
    with pytest.raises(BundleError, match="no output 'nope'"):
        flavor.load(tmp_path, replace(manifest, options={"outputs": {"predict": "nope"}}))


def test_ravel_flattens_a_regressor(tmp_path: Path, iris: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = iris
    model = Ridge().fit(X, y.astype(float))
    manifest = write(model, tmp_path, X)
    assert flavor.load(tmp_path, manifest)(X).shape == (len(X), 1)
    flat = flavor.load(tmp_path, replace(manifest, options={"ravel": True}))(X)
    assert flat.shape == (len(X),) and np.allclose(flat, model.predict(X))


def test_threads_come_from_the_worker_config_and_an_explicit_option_wins(
    tmp_path: Path, iris: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxruntime as ort

    X, y = iris
    manifest = write(LogisticRegression(max_iter=300).fit(X, y), tmp_path, X, zipmap=False)
    made: list[Any] = []
    real = ort.InferenceSession

    def session(path: str, options: Any, **kwargs: Any) -> Any:
        made.append(options)
        return real(path, options, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", session)
    monkeypatch.setattr(flavor, "_threads", 0)
    flavor.configure(ServerConfig(model_threads=3))
    flavor.load(tmp_path, manifest)
    flavor.load(tmp_path, replace(manifest, options={"intra_op_threads": 2}))
    assert [o.intra_op_num_threads for o in made] == [3, 2]
    assert all(o.inter_op_num_threads == 1 for o in made)
    assert all(o.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL for o in made)
    assert flavor.PRELOAD is False


def test_a_tokenizer_option_delegates_to_the_text_loader(
    tmp_path: Path, iris: tuple[np.ndarray, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = iris
    manifest = write(LogisticRegression(max_iter=300).fit(X, y), tmp_path, X, zipmap=False)
    calls: list[tuple[Any, Path, Manifest]] = []
    text = types.ModuleType("shipyard.handler.flavors._onnx_text")
    text.load = lambda session, bundle_dir, m: calls.append((session, bundle_dir, m)) or (lambda texts: texts)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "shipyard.handler.flavors._onnx_text", text)
    texted = replace(manifest, options={"tokenizer": "model/tokenizer.json"})
    predict = flavor.load(tmp_path, texted)
    assert predict(["a"]) == ["a"]
    session, bundle_dir, seen = calls[0]
    assert [i.name for i in session.get_inputs()] == ["X"] and bundle_dir == tmp_path and seen is texted
