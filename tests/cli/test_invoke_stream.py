"""``shipyard invoke NAME --stream`` and ``shipyard.endpoint(name).predict_stream``: a local deployment's record
pointing at a real streaming server (chunked HTTP), and a sagemaker deployment's record read through
InvokeEndpointWithResponseStream.

The sagemaker side is scripted, not moto: moto 5.2.5 does not implement InvokeEndpointWithResponseStream (404);
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` points botocore's sagemaker-runtime client at tests/infra/event_stream.py,
a real HTTP server answering with AWS's event-stream framing."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

import shipyard
from infra.cli import SHIPYARD
from infra.cli import shipyard as run_shipyard
from infra.event_stream import EventStreamServer
from infra.server import Server, ServerFactory
from shipyard.cli.deploy import deployer_for
from shipyard.deploy.endpoint import destination
from shipyard.deploy.state import Deployment, StateStore, now_utc
from shipyard.errors import InvokeError, UsageError

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "invoke-stream.v1.json"

SCRIPT = """
import json
import time


def model_fn(model_dir):
    return None


def input_fn(body, content_type):
    return json.loads(body)


def predict_fn(data, model):
    for i in range(data["n"]):
        if data.get("fail_at") == i:
            raise ValueError(f"chunk {i} failed")
        time.sleep(data.get("gap", 0.0))
        yield {"i": i, "t": time.time()}
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    directory = tmp_path_factory.mktemp("invoke-stream")
    (directory / "bundle" / "code").mkdir(parents=True)
    (directory / "bundle" / "code" / "inference.py").write_text(SCRIPT)
    factory = ServerFactory(directory)
    yield factory(directory / "bundle", env={"SHIPYARD_MODEL_PROCESS": "0"})
    factory.close()


@pytest.fixture
def state(tmp_path: Path, server: Server) -> StateStore:
    store = StateStore(tmp_path / "state.json")
    now = now_utc().isoformat()
    store.put(Deployment("talker", "local", "InService", "bundle/", now, now, url=server.url))
    store.put(Deployment("cloud-talker", "sagemaker", "InService", "bundle/", now, now, region="us-east-1"))
    return store


def _env(state: StateStore, **extra: str) -> dict[str, str]:
    return {"SHIPYARD_STATE": str(state.path), **extra}


def test_invoke_stream_prints_each_chunk_as_it_arrives(state: StateStore) -> None:
    started = time.time()
    process = subprocess.Popen(
        [SHIPYARD, "invoke", "talker", "--stream", "-d", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **_env(state)},
    )
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(json.dumps({"n": 4, "gap": 0.5}).encode())
    process.stdin.close()
    lines = [(time.time(), line) for line in process.stdout]
    assert process.wait(30) == 0, process.stderr.read() if process.stderr else ""
    records = [json.loads(line) for _, line in lines]
    assert [record["i"] for record in records] == [0, 1, 2, 3]
    assert lines[0][0] < records[-1]["t"] - 1.0  # printed ~1.5 s before the last chunk was made
    assert lines[-1][0] - started < 20


def test_invoke_stream_to_a_file_with_a_json_summary(state: StateStore, tmp_path: Path) -> None:
    out = tmp_path / "chunks.jsonl"
    done = run_shipyard(
        "invoke", "talker", "--stream", "-o", str(out), "--json", "-d", "-",
        stdin=json.dumps({"n": 3, "gap": 0.4}), env=_env(state),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)  # all of stdout: one document
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    assert document["schema"] == "shipyard.invoke-stream/1"
    assert (document["target"], document["output"], document["error"]) == ("talker", str(out), None)
    assert document["content_type"] == "application/jsonlines"
    assert document["chunks"] == 3 and document["bytes"] == out.stat().st_size
    assert [json.loads(line)["i"] for line in out.read_text().splitlines()] == [0, 1, 2]
    assert 0.3 < document["first_byte_s"] < document["total_s"] - 0.6


def test_invoke_stream_error_mid_stream_exits_4_after_the_chunks_before(state: StateStore) -> None:
    done = run_shipyard(
        "invoke", "talker", "--stream", "-d", "-", stdin=json.dumps({"n": 4, "fail_at": 2}), env=_env(state)
    )
    assert done.returncode == 4
    assert [json.loads(line)["i"] for line in done.stdout.splitlines()] == [0, 1]
    assert "ModelStreamError ModelError" in done.stderr and "chunk 2 failed" in done.stderr


def test_json_without_stream_is_a_usage_error(state: StateStore) -> None:
    done = run_shipyard("invoke", "talker", "--json", "-d", "-", stdin="{}", env=_env(state))
    assert done.returncode != 0
    assert "--json goes with --async or --stream" in done.stdout + done.stderr


def test_predict_stream_decodes_the_records_as_they_come(state: StateStore) -> None:
    endpoint = shipyard.endpoint("talker", state=state.path)
    records = endpoint.predict_stream({"n": 3, "gap": 0.4})
    first = next(records)
    arrived = time.time()
    rest = list(records)
    assert [first["i"], *[record["i"] for record in rest]] == [0, 1, 2]
    assert arrived < rest[-1]["t"] - 0.6  # the first was ours before the last was made
    with pytest.raises(InvokeError, match="chunk 1 failed"):
        list(endpoint.predict_stream({"n": 3, "fail_at": 1}))


def test_invoke_stream_on_sagemaker_reads_the_response_stream(state: StateStore) -> None:
    scripted = EventStreamServer(script=[b'{"i": 0}\n', ("sleep", 0.3), b'{"i": 1}\n']).start()
    try:
        env = _env(
            state,
            AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME=scripted.url,
            AWS_ACCESS_KEY_ID="testing",
            AWS_SECRET_ACCESS_KEY="testing",
            AWS_DEFAULT_REGION="us-east-1",
            AWS_MAX_ATTEMPTS="1",
        )
        done = run_shipyard(
            "invoke", "cloud-talker", "--stream", "--accept", "application/jsonlines", "-d", "-",
            stdin='{"n": 2}', env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout == '{"i": 0}\n{"i": 1}\n'
        (request,) = scripted.requests
        assert request["path"] == "/endpoints/cloud-talker/invocations-response-stream"
        headers = {key.lower(): value for key, value in request["headers"].items()}
        assert headers["x-amzn-sagemaker-accept"] == "application/jsonlines"
        assert headers["content-type"] == "application/json"
        assert request["body"] == b'{"n": 2}'
    finally:
        scripted.stop()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--stream", "--async"], "--stream and --async are two ways to answer: choose one"),
        (["--async", "--target-model", "a.tar.gz"], "--target-model does not go with --async: InvokeEndpointAsync"),
        (["--async", "--chunk"], "--chunk does not go with --async"),
        (["--async", "--via", "api"], "--via api does not go with --async"),
        (["--stream", "--target-model", "a.tar.gz"], "--stream does not go with --target-model"),
    ],
)
@pytest.mark.parametrize("name", ["talker", "cloud-talker"])
def test_options_that_do_not_go_together_are_refused(
    state: StateStore, name: str, flags: list[str], message: str
) -> None:
    """Refused before anything is read or sent (the data file does not even exist)."""
    done = run_shipyard("invoke", name, *flags, "-d", "no-such-file.json", env=_env(state, AWS_MAX_ATTEMPTS="1"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in " ".join((done.stdout + done.stderr).split())


def test_a_target_model_cannot_be_streamed_from_the_library(state: StateStore) -> None:
    """Destination.stream on either target: InvokeEndpointWithResponseStream has no TargetModel, so the local
    server is not sent the header either."""
    for name in ("talker", "cloud-talker"):
        where = dataclasses.replace(destination(name, lambda: deployer_for(state.path)), target_model="a.tar.gz")
        with pytest.raises(UsageError, match=r"a\.tar\.gz\) cannot be streamed: InvokeEndpointWithResponseStream"):
            where.stream(b"{}", content_type="application/json", accept=None, timeout_s=5)
