"""Shipyard's answers read with the SageMaker Python SDK: ``sagemaker.predictor.Predictor`` and its serializers and
deserializers, over InvokeEndpoint, against the real server.

The Predictor's runtime client (real boto3: signing, serialisation, the response stream) is pointed at
tests/infra/sagemaker_front.py, which speaks InvokeEndpoint on the wire and forwards the body, its ContentType
and the Accept to the real server, as SageMaker does. Every serializer the server reads is paired with every
deserializer it can answer, for a bundle with the default ``{"predictions": [...]}`` envelope and for one saved
with ``json_envelope=False``; each pair must give back the predictions the model made in process (or, where the
SDK itself loses information, exactly what docs/serving.md says it does).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import orjson
import pytest
import scipy.sparse

from infra.sagemaker_front import FrontScript, SageMakerFront
from infra.scripted_http import serve_asgi
from infra.server import Server, ServerFactory

os.environ.setdefault("SAGEMAKER_SUPPRESS_V2_WARNING", "1")

from sagemaker import deserializers, serializers
from sagemaker.predictor import Predictor
from sagemaker.session import Session

import shipyard

pytestmark = pytest.mark.integration

ENDPOINT = "digits"


@pytest.fixture(scope="module")
def bare_bundle(digits_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The digits model saved again with json_envelope=False."""
    import joblib

    model = joblib.load(digits_bundle / "model" / "model.joblib")
    rows = np.asarray(orjson.loads((digits_bundle / "example.json").read_bytes())["instances"])
    bundle = shipyard.save(model, tmp_path_factory.mktemp("bare") / "bundle", example=rows, json_envelope=False)
    assert "json_envelope = false" in (bundle.path / "shipyard.toml").read_text()
    return bundle.path


@pytest.fixture(scope="module")
def servers(session_servers: ServerFactory, digits_server: Server, bare_bundle: Path) -> dict[str, Server]:
    return {"envelope": digits_server, "bare": session_servers(bare_bundle)}


MakePredictor = Callable[[Server, Any, Any], Predictor]


@pytest.fixture(scope="module")
def predictor() -> Iterator[MakePredictor]:
    """``predictor(server, serializer, deserializer)``: a real SDK Predictor whose endpoint is ``server``."""
    stops: list[Callable[[], None]] = []
    fronts: dict[str, str] = {}
    boto = boto3.Session(region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")

    def make(server: Server, serializer: Any, deserializer: Any) -> Predictor:
        if server.url not in fronts:
            url, stop = serve_asgi(SageMakerFront(FrontScript(server.url, endpoint=ENDPOINT)))
            stops.append(stop)
            fronts[server.url] = url
        runtime = boto.client("sagemaker-runtime", endpoint_url=fronts[server.url])
        session = Session(boto_session=boto, sagemaker_runtime_client=runtime)
        return Predictor(ENDPOINT, sagemaker_session=session, serializer=serializer, deserializer=deserializer)

    yield make
    for stop in stops:
        stop()


# -- what each serializer is given: the example rows, in the form the serializer takes ---------------------------
def _inputs(rows: np.ndarray) -> dict[str, tuple[Any, Any]]:
    return {
        "csv": (serializers.CSVSerializer(), rows),
        "npy": (serializers.NumpySerializer(), rows),
        "json": (serializers.JSONSerializer(), rows),
        "json-instances": (serializers.JSONSerializer(), {"instances": rows}),
        "jsonlines": (serializers.JSONLinesSerializer(), rows.tolist()),
        "npz-sparse": (serializers.SparseMatrixSerializer(), scipy.sparse.csr_matrix(rows)),
    }


# -- what each deserializer gives back, turned into the list of labels (or None where the SDK cannot read it) ----
def _from_json_deserializer(value: Any, envelope: bool) -> Any:
    return value["predictions"] if envelope else value


def _from_numpy_json(value: Any, envelope: bool) -> Any:
    if envelope:
        # the SDK's np.array(json.load(...)) of an object: a 0-d object array holding the dict, not the predictions
        assert value.shape == () and value.dtype == object
        return value.item()["predictions"]
    return value.tolist()


def _from_pandas_json(value: Any, envelope: bool) -> Any:
    return value["predictions"].tolist() if envelope else value[0].tolist()


def _from_pandas_default(value: Any, envelope: bool) -> Any:
    # PandasDeserializer's default Accept is "text/csv, application/json": the server answers CSV (the first
    # type), and pandas.read_csv takes the first line for a header, so the first prediction is a column name.
    return [int(value.columns[0]), *value.iloc[:, 0].tolist()]


def _from_stream(value: Any, envelope: bool) -> Any:
    stream, content_type = value
    try:
        return _decode_body(stream.read(), content_type, envelope)
    finally:
        stream.close()


def _decode_body(body: bytes, content_type: str, envelope: bool) -> Any:
    if content_type == "application/json":
        document = orjson.loads(body)
        return document["predictions"] if envelope else document
    if content_type == "text/csv":
        return [int(line) for line in body.decode().split()]
    if content_type == "application/x-npy":
        return np.load(io.BytesIO(body)).tolist()
    if content_type == "application/jsonlines":
        return [orjson.loads(line) for line in body.splitlines()]
    raise AssertionError(f"unexpected answer type {content_type}")


_JSON = "application/json"  # StringDeserializer's default Accept
READERS: dict[str, tuple[Any, Callable[[Any, bool], Any]]] = {
    "JSONDeserializer": (deserializers.JSONDeserializer(), _from_json_deserializer),
    "NumpyDeserializer-npy": (deserializers.NumpyDeserializer(), lambda v, e: v.tolist()),
    "NumpyDeserializer-json": (deserializers.NumpyDeserializer(accept="application/json"), _from_numpy_json),
    "NumpyDeserializer-csv": (deserializers.NumpyDeserializer(accept="text/csv"), lambda v, e: v.astype(int).tolist()),
    "CSVDeserializer": (deserializers.CSVDeserializer(), lambda v, e: [int(row[0]) for row in v]),
    "PandasDeserializer-json": (deserializers.PandasDeserializer(accept="application/json"), _from_pandas_json),
    "PandasDeserializer-default": (deserializers.PandasDeserializer(), _from_pandas_default),
    "JSONLinesDeserializer": (deserializers.JSONLinesDeserializer(), lambda v, e: v),
    "StringDeserializer": (
        deserializers.StringDeserializer(),
        lambda v, e: _decode_body(v.encode(), "application/json", e),
    ),
    "StreamDeserializer": (deserializers.StreamDeserializer(), _from_stream),
}


@pytest.mark.parametrize("shape", ["envelope", "bare"])
@pytest.mark.parametrize("reader", list(READERS))
def test_every_sdk_serializer_and_deserializer_pair_round_trips(
    servers: dict[str, Server], predictor: MakePredictor, digits_rows: list[list[float]], digits_bundle: Path,
    reader: str, shape: str,
) -> None:  # fmt: skip
    expected = orjson.loads((digits_bundle / "example.json").read_bytes())["predictions"]
    deserializer, convert = READERS[reader]
    rows = np.asarray(digits_rows)
    for name, (serializer, data) in _inputs(rows).items():
        answer = predictor(servers[shape], serializer, deserializer).predict(data)
        assert convert(answer, shape == "envelope") == expected, (name, reader, shape)


def test_numpy_deserializer_with_json_needs_the_bare_shape(
    servers: dict[str, Server], predictor: MakePredictor, digits_rows: list[list[float]]
) -> None:
    """The case that needed the setting: with the envelope the SDK's NumpyDeserializer(accept=JSON) gives an
    object array of the dict, and with a dtype it cannot read the answer at all."""
    reader = deserializers.NumpyDeserializer(dtype="int64", accept="application/json")
    rows = np.asarray(digits_rows)
    with pytest.raises((TypeError, ValueError)):
        predictor(servers["envelope"], serializers.JSONSerializer(), reader).predict(rows)
    labels = predictor(servers["bare"], serializers.JSONSerializer(), reader).predict(rows)
    assert labels.dtype == np.int64 and labels.shape == (len(rows),)


def test_the_server_setting_overrides_the_bundle(
    running_server: ServerFactory, digits_bundle: Path, bare_bundle: Path, digits_rows: list[list[float]]
) -> None:
    import httpx

    # servers of this test's own (stopped when it ends): no other test needs these settings
    body = orjson.dumps({"instances": digits_rows})
    bare = running_server(digits_bundle, env={"SHIPYARD_JSON_ENVELOPE": "0"})
    assert isinstance(httpx.post(f"{bare.url}/invocations", content=body, timeout=30).json(), list)
    wrapped = running_server(bare_bundle, env={"SHIPYARD_JSON_ENVELOPE": "1"})
    assert set(httpx.post(f"{wrapped.url}/invocations", content=body, timeout=30).json()) == {"predictions"}


def test_csv_answers_read_with_the_csv_module_and_the_sdk_agree(
    servers: dict[str, Server], predictor: MakePredictor, digits_rows: list[list[float]]
) -> None:
    rows = np.asarray(digits_rows)
    text = predictor(servers["bare"], serializers.CSVSerializer(), deserializers.StringDeserializer(accept="text/csv"))
    parsed = list(csv.reader(io.StringIO(text.predict(rows))))
    via_sdk = predictor(servers["bare"], serializers.CSVSerializer(), deserializers.CSVDeserializer()).predict(rows)
    assert parsed == via_sdk


def test_bytes_and_stream_answer_in_the_requests_own_type(
    servers: dict[str, Server], predictor: MakePredictor, digits_rows: list[list[float]]
) -> None:
    rows = np.asarray(digits_rows)
    own = {"csv": "text/csv", "npy": "application/x-npy", "json": "application/json", "json-instances": _JSON,
           "jsonlines": "application/jsonlines", "npz-sparse": _JSON}  # fmt: skip
    for name, (serializer, data) in _inputs(rows).items():
        stream, content_type = predictor(servers["bare"], serializer, deserializers.StreamDeserializer()).predict(data)
        with stream:
            body = stream.read()
        assert content_type == own[name], name
        assert predictor(servers["bare"], serializer, deserializers.BytesDeserializer()).predict(data) == body


@pytest.mark.parametrize(
    ("serializer", "deserializer", "status"),
    [
        (serializers.IdentitySerializer(), deserializers.BytesDeserializer(), 415),
        (serializers.StringSerializer(), deserializers.BytesDeserializer(), 415),
        (serializers.JSONSerializer(), deserializers.TorchTensorDeserializer(), 406),
    ],
)
def test_types_no_bundle_reads_or_answers_are_refused(
    servers: dict[str, Server], predictor: MakePredictor, serializer: Any, deserializer: Any, status: int
) -> None:
    from botocore.exceptions import ClientError

    data: Any = b"[[1.0]]" if isinstance(serializer, serializers.IdentitySerializer) else "[[1.0]]"
    with pytest.raises(ClientError) as info:
        predictor(servers["envelope"], serializer, deserializer).predict(data)
    assert info.value.response["Error"]["Code"] == "ModelError"
    assert info.value.response["OriginalStatusCode"] == status
