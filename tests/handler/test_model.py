"""The handler of saved bundles (codecs and schema around a flavor), and how a bundle picks its handler."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import orjson
import pytest

import shipyard
from shipyard.bundle import Bundle
from shipyard.config import ServerConfig
from shipyard.errors import ModelNotReady, NotAcceptable, SchemaMismatch, UnsupportedMediaType
from shipyard.handler import handler_for
from shipyard.handler.model import ModelHandler
from shipyard.handler.toolkit import ToolkitHandler


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    path = tmp_path_factory.mktemp("model") / "bundle"
    return shipyard.save(lambda batch: batch.sum(axis=1), path, example=np.ones((2, 3)), feature_names=["a", "b", "c"])


def answer(
    handler: ModelHandler, body: bytes, content_type: str | None, accept: str | None = None
) -> tuple[bytes, str]:
    prepared = handler.prepare(body, content_type, accept)
    return handler.finish(handler.predict(prepared.inputs), prepared)


def test_saved_bundle_gets_the_model_handler(bundle: Bundle) -> None:
    handler = handler_for(bundle, ServerConfig.from_env({}))
    assert isinstance(handler, ModelHandler)
    assert handler.batchable is True
    assert handler.description == "bundle v1 (python)"


def test_predict_before_load_is_not_ready(bundle: Bundle) -> None:
    handler = handler_for(bundle, ServerConfig.from_env({}))
    with pytest.raises(ModelNotReady):
        handler.predict(np.ones((1, 3)))


def test_codecs_in_and_out(bundle: Bundle) -> None:
    handler = handler_for(bundle, ServerConfig.from_env({}))
    assert isinstance(handler, ModelHandler)
    handler.load()
    assert answer(handler, b"[[1, 2, 3]]", "application/json") == (b'{"predictions":[6]}', "application/json")
    assert answer(handler, b'{"a": 1, "b": 2, "c": 4}', None) == (b'{"predictions":[7]}', "application/json")
    assert answer(handler, b"1,2,3\n4,5,6\n", "text/csv; charset=utf-8") == (b"6.0\n15.0\n", "text/csv")
    assert answer(handler, b"[1,1,1]\n", "application/jsonlines", "application/json") == (
        b'{"predictions":[3]}',
        "application/json",
    )
    body, content_type = answer(handler, b"[[1, 2, 3]]", "application/json", "application/x-npy")
    assert content_type == "application/x-npy"
    np.testing.assert_array_equal(np.load(io.BytesIO(body)), [6])


def test_default_accept(bundle: Bundle) -> None:
    handler = handler_for(bundle, ServerConfig.from_env({"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"}))
    assert isinstance(handler, ModelHandler)
    handler.load()
    assert answer(handler, b"[[1, 2, 3]]", "application/json", "*/*") == (b"6\n", "text/csv")
    assert orjson.loads(answer(handler, b"[[1, 2, 3]]", "application/json", "application/json")[0]) == {
        "predictions": [6]
    }


def test_errors_before_the_model_runs(bundle: Bundle) -> None:
    handler = handler_for(bundle, ServerConfig.from_env({}))
    with pytest.raises(UnsupportedMediaType):
        handler.prepare(b"x", "text/plain", None)
    with pytest.raises(NotAcceptable):
        handler.prepare(b"[[1, 2, 3]]", "application/json", "text/html")
    with pytest.raises(SchemaMismatch, match="expected 3 features per row, got 2"):
        handler.prepare(b"[[1, 2]]", "application/json", None)


def test_handler_script_wins_over_the_flavor(bundle: Bundle, tmp_path: Path) -> None:
    """A saved bundle with a code/inference.py is served by that script, as SageMaker would."""
    copy = tmp_path / "copy"
    copy.mkdir()
    for path in bundle.path.rglob("*"):
        target = copy / path.relative_to(bundle.path)
        target.mkdir(parents=True, exist_ok=True) if path.is_dir() else target.write_bytes(path.read_bytes())
    (copy / "code" / "inference.py").write_text("def model_fn(d):\n    return None\n")
    assert isinstance(handler_for(Bundle.open(copy), ServerConfig.from_env({})), ToolkitHandler)
