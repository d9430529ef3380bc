"""NPZ requests over real HTTP: the SDK's SparseMatrixSerializer and ``numpy.savez`` bodies, to a native bundle and
to a handler script whose ``input_fn`` is the toolkit's default."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import scipy.sparse

from infra.server import Server, ServerFactory

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")

from sagemaker.serializers import SparseMatrixSerializer
from sagemaker_inference import decoder as toolkit_decoder

pytestmark = pytest.mark.integration


def _post(server: Server, body: bytes, accept: str | None = None) -> httpx.Response:
    headers = {"content-type": "application/x-npz", **({"accept": accept} if accept else {})}
    return httpx.post(f"{server.url}/invocations", content=body, headers=headers, timeout=30)


def _json_predictions(server: Server, rows: list[list[float]]) -> Any:
    answer = httpx.post(f"{server.url}/invocations", content=orjson.dumps({"instances": rows}), timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()["predictions"]


def test_native_bundle_reads_sparse_and_savez_bodies(digits_server: Server, digits_rows: list[list[float]]) -> None:
    expected = _json_predictions(digits_server, digits_rows)
    dense = np.asarray(digits_rows)
    sparse = SparseMatrixSerializer().serialize(scipy.sparse.csr_matrix(dense))
    answer = _post(digits_server, sparse)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/json"  # no NPZ encoder: JSON, as the toolkit answers
    assert answer.json()["predictions"] == expected
    out = io.BytesIO()
    np.savez_compressed(out, dense)
    answer = _post(digits_server, out.getvalue(), accept="text/csv")
    assert answer.status_code == 200, answer.text
    assert [int(v) for v in answer.text.split()] == expected


def test_native_bundle_checks_an_npz_body_against_its_schema(digits_server: Server) -> None:
    answer = _post(digits_server, SparseMatrixSerializer().serialize(scipy.sparse.csr_matrix(np.ones((2, 10)))))
    assert answer.status_code == 400 and "expected 64 features per row, got 10" in answer.json()["message"]
    assert _post(digits_server, b"PK\x03\x04broken").status_code == 400


def test_an_npz_answer_is_refused_with_406(digits_server: Server, digits_rows: list[list[float]]) -> None:
    """NPZ is read, never written: a valid request that asks for an NPZ answer gets 406 Not Acceptable."""
    answer = httpx.post(
        f"{digits_server.url}/invocations",
        content=orjson.dumps({"instances": digits_rows}),
        headers={"content-type": "application/json", "accept": "application/x-npz"},
        timeout=30,
    )
    assert answer.status_code == 406, answer.text
    assert answer.json()["error"] == "NotAcceptable" and "application/x-npz" in answer.json()["message"]


PROBE = """
import numpy as np
import scipy.sparse
from sklearn.linear_model import LogisticRegression


class Probe:
    # what the default input_fn handed the model, and a real scikit-learn model's answer on it
    def __init__(self):
        rng = np.random.default_rng(0)
        X = scipy.sparse.random(40, 5, density=0.5, format="csr", random_state=0)
        self.model = LogisticRegression().fit(X, (X.toarray()[:, 0] > 0.2).astype(int))

    def predict(self, data):
        return {"type": type(data).__name__, "format": getattr(data, "format", None),
                "dense": data.toarray().tolist() if hasattr(data, "toarray") else data.tolist(),
                "labels": self.model.predict(data).tolist()}


def model_fn(model_dir):
    return Probe()
"""


def test_handler_default_input_fn_gives_what_the_toolkit_gives(
    make_handler_bundle: Callable[[str], Path], running_server: ServerFactory
) -> None:
    server = running_server(make_handler_bundle(PROBE))
    matrix = scipy.sparse.random(3, 5, density=0.6, format="csc", random_state=1)
    body = SparseMatrixSerializer().serialize(matrix)
    answer = _post(server, body)
    assert answer.status_code == 200, answer.text
    seen = answer.json()
    toolkit = toolkit_decoder.decode(body, "application/x-npz")
    assert (seen["type"], seen["format"]) == (type(toolkit).__name__, toolkit.format) == ("csc_matrix", "csc")
    np.testing.assert_array_equal(seen["dense"], matrix.toarray())
    assert len(seen["labels"]) == 3
    out = io.BytesIO()
    np.savez(out, rows=np.arange(10.0).reshape(2, 5))
    answer = _post(server, out.getvalue())
    assert answer.status_code == 200, answer.text
    assert answer.json()["type"] == "ndarray" and answer.json()["dense"] == np.arange(10.0).reshape(2, 5).tolist()
