"""The local target's asynchronous inference: the queue process (deploy/queue/) in front of a real server
(tests/infra/server.py, the digits bundle), over real HTTP, with a directory as its bucket; and the same flow
through the Deployer, the Python API (``predict_async``) and the console script (``invoke --async``, ``results``)
on a local deployment whose container is that server (the record made as LocalTarget.deploy makes it, minus the
engine: the one podman test of the feature is tests/deploy/test_deploy_local.py::test_async_deploy_...)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import orjson
import pytest

from infra.cli import shipyard
from infra.server import Server
from shipyard.deploy import Deployer, DeployOptions
from shipyard.deploy.asynchronous import DONE, FAILED, RUNNING, AsyncHandle, AsyncInvocation
from shipyard.deploy.base import SilentReporter
from shipyard.deploy.options import AsyncInference
from shipyard.deploy.queue import LocalAsyncChannel, is_queue, path_of, start_queue, stop_queue
from shipyard.deploy.queue import local as queue_steps
from shipyard.deploy.state import Deployment, StateStore, now_utc
from shipyard.errors import InvokeError

SCHEMAS = Path(__file__).resolve().parents[2] / "docs" / "schemas"


def _request(rows: list[list[float]]) -> bytes:
    return orjson.dumps({"instances": rows})


@pytest.fixture
def queue(digits_server: Server, tmp_path: Path) -> Iterator[tuple[LocalAsyncChannel, Path, int]]:
    bucket = tmp_path / "bucket"
    process = start_queue(
        "digits", digits_server.url, bucket, log_path=tmp_path / "queue.log", concurrency=2, timeout_s=600,
        notify_success=True, notify_error=True,
    )  # fmt: skip
    yield LocalAsyncChannel("digits", bucket, process.url), bucket, process.pid
    assert stop_queue(process.pid, process.port)
    assert not is_queue(process.pid)


def test_each_request_is_answered_at_its_output_location_as_the_container_answers_it(
    queue: tuple[LocalAsyncChannel, Path, int], digits_server: Server, digits_rows: list[list[float]]
) -> None:
    channel, bucket, _pid = queue
    n = len(digits_rows)
    bodies = [_request([digits_rows[(i + k) % n] for k in range(i % 3 + 1)]) for i in range(5)]
    handles = [
        AsyncHandle(
            channel,
            channel.submit(body, content_type="application/json", accept=None, inference_id=f"req-{i}", timeout_s=60),
            poll_s=0.05,
        )
        for i, body in enumerate(bodies)
    ]
    for i, handle in enumerate(handles):
        assert handle.inference_id == f"req-{i}"
        assert path_of(handle.invocation.input_location) == (bucket / "input" / f"req-{i}.json").resolve()
        assert path_of(handle.output_location) == (bucket / "output" / f"req-{i}.out").resolve()
        assert handle.failure_location is not None
        assert path_of(handle.failure_location) == (bucket / "failure" / f"req-{i}-error.out").resolve()
    for handle, body in zip(handles, bodies, strict=True):
        answer = handle.result(timeout=30)
        direct = httpx.post(
            f"{digits_server.url}/invocations", content=body, headers={"Content-Type": "application/json"}
        )
        assert answer == direct.content  # byte for byte what the container answers
        assert handle.done() and handle.poll().status == DONE
    notes = [orjson.loads(line) for line in (bucket / "notifications" / "success.jsonl").read_bytes().splitlines()]
    assert sorted(n["inferenceId"] for n in notes) == [f"req-{i}" for i in range(5)]
    first = next(n for n in notes if n["inferenceId"] == "req-0")
    assert first["invocationStatus"] == "Completed" and first["eventName"] == "InferenceResult"
    assert first["requestParameters"] == {
        "contentType": "application/json",
        "endpointName": "digits",
        "inputLocation": handles[0].invocation.input_location,
    }
    assert first["responseParameters"]["outputLocation"] == handles[0].output_location
    assert first["responseParameters"]["contentType"].startswith("application/json")
    counts = httpx.get(f"{channel.queue_url}/ping").json()
    assert (counts["received"], counts["done"], counts["failed"], counts["queued"]) == (5, 5, 0, 0)
    assert not (bucket / "notifications" / "error.jsonl").exists()


def test_a_model_error_lands_at_the_failure_location_with_its_message(
    queue: tuple[LocalAsyncChannel, Path, int],
) -> None:
    channel, bucket, _ = queue
    invocation = channel.submit(
        _request([[1.0, 2.0]]), content_type="application/json", accept=None, inference_id="bad", timeout_s=60
    )
    handle = AsyncHandle(channel, invocation, poll_s=0.05)
    outcome = handle.wait(30)
    assert outcome.status == FAILED
    assert outcome.message.startswith("ModelError: Received error (400) from the model")
    assert (bucket / "failure" / "bad-error.out").is_file() and not (bucket / "output" / "bad.out").exists()
    with pytest.raises(InvokeError, match="inference bad failed: ModelError"):
        handle.result(timeout=1)
    (note,) = [orjson.loads(x) for x in (bucket / "notifications" / "error.jsonl").read_bytes().splitlines()]
    assert note["invocationStatus"] == "Failed" and note["failureReason"] == outcome.message


def test_the_queue_refuses_what_invoke_endpoint_async_refuses(queue: tuple[LocalAsyncChannel, Path, int]) -> None:
    channel, _, _ = queue
    url = f"{channel.queue_url}/endpoints/digits/async-invocations"
    web = httpx.post(url, headers={"X-Amzn-SageMaker-InputLocation": "https://b/k"})
    assert web.status_code == 400 and "a file:// or s3:// location" in web.json()["message"]
    too_long = httpx.post(
        url,
        headers={"X-Amzn-SageMaker-InputLocation": "file:///x", "X-Amzn-SageMaker-InvocationTimeoutSeconds": "3601"},
    )
    assert too_long.status_code == 400 and "3600" in too_long.json()["message"]
    assert httpx.post(f"{channel.queue_url}/endpoints/other/async-invocations").status_code == 404


class _Slow(BaseHTTPRequestHandler):
    """/invocations that takes 0.3 s and counts how many are in flight at once."""

    lock = threading.Lock()
    in_flight = 0
    most = 0
    delay_s = 0.3

    def do_POST(self) -> None:
        cls = type(self)
        self.rfile.read(int(self.headers["Content-Length"]))
        with cls.lock:
            cls.in_flight += 1
            cls.most = max(cls.most, cls.in_flight)
        time.sleep(cls.delay_s)
        with cls.lock:
            cls.in_flight -= 1
        body = b'{"predictions": [1]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_the_queue_works_at_most_its_concurrency_at_once_and_times_out_a_slow_answer(tmp_path: Path) -> None:
    """A stand-in container (http.server) that sleeps, so the in-flight count can be read: 8 requests, 2 at once."""
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    process = start_queue(
        "slow", f"http://127.0.0.1:{upstream.server_port}", tmp_path / "b", log_path=tmp_path / "q.log",
        concurrency=2, timeout_s=600,
    )  # fmt: skip
    try:
        channel = LocalAsyncChannel("slow", tmp_path / "b", process.url)
        started = time.monotonic()
        handles = [
            AsyncHandle(channel, channel.submit(b"{}", content_type="application/json", accept=None,
                                                inference_id=f"s{i}", timeout_s=60), poll_s=0.02)
            for i in range(8)
        ]  # fmt: skip
        assert handles[-1].poll().status == RUNNING  # queued behind the others
        assert [h.result(timeout=30) for h in handles] == [b'{"predictions": [1]}'] * 8
        assert _Slow.most == 2
        assert time.monotonic() - started >= 4 * _Slow.delay_s  # 8 requests, 2 at a time
        _Slow.delay_s = 2.0
        late = AsyncHandle(
            channel, channel.submit(b"{}", content_type="application/json", accept=None, inference_id="late",
                                    timeout_s=1), poll_s=0.05,
        )  # fmt: skip
        outcome = late.wait(10)
        assert outcome.status == FAILED and outcome.message == "ModelError: the model did not answer within 1 s"
    finally:
        _Slow.delay_s = 0.3
        stop_queue(process.pid, process.port)
        upstream.shutdown()


# -- the whole flow on a local deployment: Deployer, predict_async, the console script ------------------------
@pytest.fixture
def async_deployment(digits_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Deployer]:
    """A local --async deployment whose container is ``digits_server``: the queue started by the same step
    LocalTarget.deploy runs after its container is InService."""
    state_path = tmp_path / "state.json"
    monkeypatch.setenv("SHIPYARD_STATE", str(state_path))
    deployer = Deployer(StateStore(state_path))
    spec = DeployOptions(source="bundle", name="digits", asynchronous=AsyncInference(max_concurrent=2))
    now = now_utc().isoformat()
    record = Deployment("digits", "local", "InService", "bundle", now, now, url=digits_server.url, options=spec)
    queue_steps.ensure(record, spec, tmp_path / "local", deployer.state.put, SilentReporter())
    deployer.state.put(record)
    yield deployer
    deployer.cleanup("digits")


def test_predict_async_and_results_through_the_deployer(
    async_deployment: Deployer, digits_server: Server, digits_rows: list[list[float]]
) -> None:
    deployer = async_deployment
    endpoint = deployer.get("digits")
    handle = endpoint.predict_async(digits_rows[:2])
    expected = httpx.post(f"{digits_server.url}/invocations", json={"instances": digits_rows[:2]}).json()
    assert handle.result(timeout=30) == expected["predictions"]
    again = deployer.async_handle("digits", handle.inference_id)  # from the journal, as `results` finds it
    assert again.output_location == handle.output_location and again.poll().status == DONE
    with pytest.raises(InvokeError, match="no asynchronous invocation 'nope' of digits"):
        deployer.async_handle("digits", "nope")
    record = deployer.record("digits")
    bucket = Path(record.one(queue_steps.QUEUE_BUCKET) or "")
    assert bucket.is_dir()
    report = deployer.cleanup("digits")
    assert any(item.startswith("async queue ") for item in report.deleted)
    assert f"async directory {bucket}" in report.deleted and not bucket.exists()
    assert report.forgotten and not deployer.journal("digits").directory.exists()
    pid = int((record.one(queue_steps.QUEUE) or "0@0").split("@")[0])
    assert not is_queue(pid)


def _parse(stdout: str, schema: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(stdout)
    jsonschema.validate(document, json.loads((SCHEMAS / schema).read_text()))
    return document


def test_the_cli_queues_waits_and_fetches_results(
    async_deployment: Deployer, digits_server: Server, digits_rows: list[list[float]], tmp_path: Path
) -> None:
    request = tmp_path / "request.json"
    request.write_bytes(_request(digits_rows[:5]))
    expected = httpx.post(f"{digits_server.url}/invocations", content=request.read_bytes(),
                          headers={"Content-Type": "application/json"}).content  # fmt: skip

    queued = shipyard("invoke", "digits", "--async", "--data", str(request), "--json", "--inference-id", "cli-1")
    assert queued.returncode == 0, queued.stderr
    document = _parse(queued.stdout, "invoke-async.v1.json")
    assert (document["schema"], document["name"], document["inference_id"]) == (
        "shipyard.invoke-async/1",
        "digits",
        "cli-1",
    )
    assert document["status"] == "queued" and document["output_location"].endswith("/output/cli-1.out")

    answer = tmp_path / "answer.json"
    waited = shipyard("invoke", "digits", "--async", "--data", str(request), "--wait", "-o", str(answer))
    assert waited.returncode == 0, waited.stderr
    assert answer.read_bytes() == expected
    assert "inference id" not in waited.stdout and "wrote" in waited.stderr

    done = shipyard("results", "digits", "cli-1", "--wait", "--timeout", "30", "--output", "json")
    assert done.returncode == 0, done.stderr
    fetched = _parse(done.stdout, "results.v1.json")
    assert fetched["status"] == "done" and fetched["output_location"] == document["output_location"]
    saved = tmp_path / "saved.json"
    written = shipyard("results", "digits", "cli-1", "--file", str(saved))
    assert written.returncode == 0 and saved.read_bytes() == expected
    table = shipyard("results", "digits", "cli-1")
    assert table.returncode == 0 and "5 predictions" in table.stdout

    bad = tmp_path / "bad.json"
    bad.write_bytes(_request([[1.0]]))
    failing = shipyard("invoke", "digits", "--async", "--data", str(bad), "--wait", "--inference-id", "cli-bad")
    assert failing.returncode == 4 and "inference cli-bad failed: ModelError" in failing.stderr
    again = shipyard("results", "digits", "cli-bad")
    assert again.returncode == 4 and "Received error (400)" in again.stderr
    unknown = shipyard("results", "digits", "never")
    assert unknown.returncode == 4 and "no asynchronous invocation 'never'" in unknown.stderr

    status = shipyard("status", "--output", "json")
    assert status.returncode == 0, status.stderr
    (row,) = json.loads(status.stdout)["deployments"]
    assert row["name"] == "digits" and row["status"] == "InService"

    sync_flag = shipyard("invoke", "digits", "--data", str(request), "--wait")
    assert sync_flag.returncode == 4 and "--wait is for asynchronous requests" in sync_flag.stderr


def test_results_says_still_running_with_its_own_exit_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An invocation whose answer is not there yet: exit 75 (EX_TEMPFAIL), as text and as JSON."""
    state_path = tmp_path / "state.json"
    monkeypatch.setenv("SHIPYARD_STATE", str(state_path))
    deployer = Deployer(StateStore(state_path))
    spec = DeployOptions(source="bundle", name="slow", asynchronous=AsyncInference())
    now = now_utc().isoformat()
    record = Deployment("slow", "local", "InService", "bundle", now, now, url="http://127.0.0.1:9", options=spec)
    record.add(queue_steps.QUEUE, "999999@9")
    record.add(queue_steps.QUEUE_BUCKET, str(tmp_path / "bucket"))
    deployer.state.put(record)
    out = (tmp_path / "bucket" / "output" / "r1.out").as_uri()
    deployer.journal("slow").record(AsyncInvocation("slow", "r1", "file:///in", out, out + ".err", time.time()))
    text = shipyard("results", "slow", "r1")
    assert text.returncode == 75 and "still running" in text.stderr
    document = shipyard("results", "slow", "r1", "--output", "json")
    assert document.returncode == 75 and _parse(document.stdout, "results.v1.json")["status"] == "running"


def test_with_async_limits_the_server_takes_a_request_over_the_real_time_limit(
    running_server: Any, digits_bundle: Path, digits_rows: list[list[float]], tmp_path: Path
) -> None:
    """The environment ``deploy --async`` gives the container (async_environment) on a real server: a 9 MB
    request, which the real-time default (6 MB) refuses with 413, is answered through the queue."""
    from shipyard.deploy.asynchronous import async_environment

    env = async_environment(DeployOptions(source="b", name="d", asynchronous=AsyncInference(invocation_timeout_s=900)))
    assert env == {"SAGEMAKER_MODEL_SERVER_TIMEOUT": "900", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "1024"}
    big = _request([digits_rows[i % len(digits_rows)] for i in range(36000)])
    assert len(big) > 9 * 1024 * 1024  # well over 6 MB
    server = running_server(digits_bundle, env=env)
    plain = running_server(digits_bundle)
    refused = httpx.post(f"{plain.url}/invocations", content=big, headers={"Content-Type": "application/json"})
    assert refused.status_code == 413
    process = start_queue("d", server.url, tmp_path / "b", log_path=tmp_path / "q.log", concurrency=1, timeout_s=900)
    try:
        channel = LocalAsyncChannel("d", tmp_path / "b", process.url)
        invocation = channel.submit(
            big, content_type="application/json", accept=None, inference_id="big", timeout_s=900
        )
        answer = orjson.loads(AsyncHandle(channel, invocation, poll_s=0.1).result(timeout=120))
        assert len(answer["predictions"]) == 36000
    finally:
        stop_queue(process.pid, process.port)


def test_with_s3_locations_and_aws_endpoint_url_the_local_queue_uses_moto_s3(
    aws: Any, digits_server: Server, digits_rows: list[list[float]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``deploy --async --async-output s3://...`` on local with AWS_ENDPOINT_URL (moto): the input is uploaded
    to S3, the queue reads it from there and writes the answer beside the output prefix; without the variable the
    option is refused."""
    import boto3

    from shipyard.errors import SpecError

    boto3.client("s3").create_bucket(Bucket="async-answers")
    deployer = Deployer(StateStore(tmp_path / "state.json"))
    settings = AsyncInference(output_path="s3://async-answers/digits/out")
    spec = DeployOptions(source="bundle", name="digits", asynchronous=settings)
    queue_steps.check(spec)  # allowed: AWS_ENDPOINT_URL is set
    now = now_utc().isoformat()
    record = Deployment("digits", "local", "InService", "bundle", now, now, url=digits_server.url, options=spec)
    queue_steps.ensure(record, spec, tmp_path / "local", deployer.state.put, SilentReporter())
    deployer.state.put(record)
    try:
        handle = deployer.get("digits").predict_async(digits_rows[:3], inference_id="s3-1")
        assert handle.invocation.input_location == "s3://async-answers/async/digits/input/s3-1.json"
        assert handle.output_location == "s3://async-answers/digits/out/s3-1.out"
        expected = httpx.post(f"{digits_server.url}/invocations", json={"instances": digits_rows[:3]}).json()
        assert handle.result(timeout=30) == expected["predictions"]
        stored = boto3.client("s3").get_object(Bucket="async-answers", Key="digits/out/s3-1.out")
        assert stored["ContentType"].startswith("application/json")
    finally:
        deployer.cleanup("digits")
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    with pytest.raises(SpecError, match="S3 locations need AWS_ENDPOINT_URL"):
        queue_steps.check(spec)


# -- review fixes: restarts lose nothing, ids are checked, updates reconfigure, time limits ---------------------
class _Sleepy(BaseHTTPRequestHandler):
    """/invocations that takes ``delay_s`` (its own class: _Slow's counters stay _Slow's)."""

    delay_s = 0.4

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        time.sleep(type(self).delay_s)
        body = b'{"predictions": [2]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def sleepy() -> Iterator[str]:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), _Sleepy)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{upstream.server_port}"
    _Sleepy.delay_s = 0.4
    upstream.shutdown()


def _submit(channel: LocalAsyncChannel, inference_id: str, timeout_s: int = 60) -> AsyncHandle:
    invocation = channel.submit(
        b"{}", content_type="application/json", accept=None, inference_id=inference_id, timeout_s=timeout_s
    )
    return AsyncHandle(channel, invocation, poll_s=0.05)


def test_a_killed_queue_takes_up_its_waiting_and_running_requests_again_when_restarted(
    sleepy: str, tmp_path: Path
) -> None:
    import os
    import signal

    bucket = tmp_path / "b"
    process = start_queue("k", sleepy, bucket, log_path=tmp_path / "q.log", concurrency=1, timeout_s=60)
    channel = LocalAsyncChannel("k", bucket, process.url)
    handles = [_submit(channel, f"k{i}") for i in range(4)]
    time.sleep(0.1)  # k0 running, the others waiting
    os.kill(process.pid, signal.SIGKILL)
    while is_queue(process.pid):
        time.sleep(0.02)
    assert all(h.poll().status == RUNNING for h in handles)  # nothing was written: killed mid-way
    again = start_queue("k", sleepy, bucket, log_path=tmp_path / "q.log", concurrency=1, timeout_s=60)
    try:
        assert [h.result(timeout=30) for h in handles] == [b'{"predictions": [2]}'] * 4
        assert list((bucket / "queue").glob("*.json")) == []  # each job forgotten once answered
    finally:
        stop_queue(again.pid, again.port)


def test_a_stopped_queue_gives_its_running_requests_the_grace_period_then_an_error(sleepy: str, tmp_path: Path) -> None:
    bucket = tmp_path / "b"
    _Sleepy.delay_s = 0.5
    process = start_queue("g", sleepy, bucket, log_path=tmp_path / "q.log", concurrency=1, timeout_s=60, grace_s=2)
    channel = LocalAsyncChannel("g", bucket, process.url)
    quick, waiting = _submit(channel, "quick"), _submit(channel, "waiting")
    time.sleep(0.1)
    assert stop_queue(process.pid, process.port)  # quick finishes within the grace; waiting stays queued
    assert quick.poll().status == DONE and waiting.poll().status == RUNNING
    _Sleepy.delay_s = 5.0
    process = start_queue("g", sleepy, bucket, log_path=tmp_path / "q.log", concurrency=1, timeout_s=60, grace_s=0.5)
    time.sleep(0.3)  # waiting is taken up again, and runs past the grace
    assert stop_queue(process.pid, process.port)
    outcome = waiting.poll()
    assert outcome.status == FAILED
    assert outcome.message.startswith("ModelError: the queue stopped before the model answered")


class _Asgi:
    """The queue app called in-process: its answer to one request, and what it queued."""

    def __init__(self, tmp_path: Path, timeout_s: float = 3600.0) -> None:
        from shipyard.deploy.queue import QueueConfig, file_uri

        self.config = QueueConfig(
            endpoint="e", upstream="http://127.0.0.1:9", output_prefix=file_uri(tmp_path / "output"),
            failure_prefix=file_uri(tmp_path / "failure"), timeout_s=timeout_s, jobs_dir=tmp_path / "queue",
        )  # fmt: skip
        from shipyard.deploy.queue import AsyncQueue

        self.app = AsyncQueue(self.config)

    def post(self, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        import asyncio

        sent: list[dict[str, Any]] = []
        raw = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        scope = {"type": "http", "path": "/endpoints/e/async-invocations", "method": "POST", "headers": raw}

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(dict(message))

        asyncio.run(self.app(scope, receive, send))
        return int(sent[0]["status"]), orjson.loads(sent[1]["body"])


def test_the_queue_refuses_an_inference_id_outside_sagemakers_rule_or_taken(tmp_path: Path) -> None:
    queue = _Asgi(tmp_path)
    where = {"X-Amzn-SageMaker-InputLocation": (tmp_path / "in.json").as_uri()}
    for bad in ("../x", "a/b", " lead", "x" * 65):
        status, document = queue.post({**where, "X-Amzn-SageMaker-Inference-Id": bad})
        assert status == 400 and document["message"].startswith("InferenceId: inference id"), bad
    assert not (tmp_path.parent / "x.out").exists() and queue.app.queue.qsize() == 0
    assert queue.post({**where, "X-Amzn-SageMaker-Inference-Id": "one"})[0] == 202
    status, document = queue.post({**where, "X-Amzn-SageMaker-Inference-Id": "one"})  # still queued
    assert status == 400 and "InferenceId 'one' is taken" in document["message"]
    (tmp_path / "output").mkdir()
    (tmp_path / "output" / "done.out").write_bytes(b"{}")  # answered long ago
    status, document = queue.post({**where, "X-Amzn-SageMaker-Inference-Id": "done"})
    assert status == 400 and "has its answer or error already" in document["message"]
    assert queue.app.queue.qsize() == 1


def test_a_reused_inference_id_is_refused_before_its_input_is_overwritten(
    queue: tuple[LocalAsyncChannel, Path, int],
) -> None:
    channel, bucket, _ = queue
    first = _submit(channel, "again")
    first.wait(30)
    before = (bucket / "input" / "again.json").read_bytes()
    with pytest.raises(InvokeError, match="inference id 'again' is taken"):
        channel.submit(b'{"other": 1}', content_type="application/json", accept=None, inference_id="again",
                       timeout_s=60)  # fmt: skip
    assert (bucket / "input" / "again.json").read_bytes() == before
    with pytest.raises(InvokeError, match="1 to 64 printable characters"):
        channel.submit(b"{}", content_type="application/json", accept=None, inference_id="../x", timeout_s=60)


def test_a_request_without_invocation_timeout_gets_sagemakers_15_minutes_at_most(tmp_path: Path) -> None:
    where = {"X-Amzn-SageMaker-InputLocation": (tmp_path / "in.json").as_uri()}
    default = _Asgi(tmp_path / "a")  # the deployment allows 3600 s
    assert default.post(where)[0] == 202 and default.app.queue.get_nowait().timeout_s == 900
    asked = default.post({**where, "X-Amzn-SageMaker-InvocationTimeoutSeconds": "1800"})
    assert asked[0] == 202 and default.app.queue.get_nowait().timeout_s == 1800
    short = _Asgi(tmp_path / "b", timeout_s=300)  # a deployment with --invocation-timeout 300
    assert short.post(where)[0] == 202 and short.app.queue.get_nowait().timeout_s == 300
    channel = LocalAsyncChannel("e", tmp_path / "c", "http://127.0.0.1:9", timeout_s=1200)
    assert channel.timeout_s == 1200  # what shipyard's own requests send, as the SageMaker target does


def test_an_update_restarts_the_queue_when_its_settings_change_and_stops_it_when_not_async(tmp_path: Path) -> None:
    from shipyard.deploy.queue.process import running_command

    saved: list[Deployment] = []
    now = now_utc().isoformat()
    spec = DeployOptions(source="b", name="u", asynchronous=AsyncInference(max_concurrent=2))
    record = Deployment("u", "local", "InService", "b", now, now, url="http://127.0.0.1:9", options=spec)
    queue_steps.ensure(record, spec, tmp_path, saved.append, SilentReporter())
    first = record.one(queue_steps.QUEUE) or ""
    pid, port = (int(x) for x in first.split("@"))
    try:
        queue_steps.ensure(record, spec, tmp_path, saved.append, SilentReporter())
        assert record.one(queue_steps.QUEUE) == first  # the same settings: left running
        changed = DeployOptions(
            source="b", name="u", asynchronous=AsyncInference(max_concurrent=3, invocation_timeout_s=120)
        )
        queue_steps.ensure(record, changed, tmp_path, saved.append, SilentReporter())
        now_running = record.one(queue_steps.QUEUE) or ""
        new_pid, new_port = (int(x) for x in now_running.split("@"))
        assert new_pid != pid and new_port == port and not is_queue(pid) and record.of(queue_steps.QUEUE)[1:] == []
        assert httpx.get(f"http://127.0.0.1:{port}/ping").json()["concurrency"] == 3
        argv = running_command(new_pid) or []
        assert argv[argv.index("--timeout") + 1] == "120"
        real_time = DeployOptions(source="b", name="u")
        queue_steps.ensure(record, real_time, tmp_path, saved.append, SilentReporter())
        assert not is_queue(new_pid) and record.of(queue_steps.QUEUE) == [] and saved[-1] is record
        assert record.one(queue_steps.QUEUE_BUCKET) is not None  # its directory goes at cleanup
    finally:
        for resource in record.of(queue_steps.QUEUE):
            stop_queue(*(int(x) for x in resource.id.split("@")))


def test_wait_gives_up_at_the_users_timeout_not_the_invocation_timeout(
    sleepy: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``invoke --async --wait --timeout 1`` on a request that takes 4 s: still running (75) after about 1 s; with
    no --timeout it waits for the answer however long it was queued."""
    _Sleepy.delay_s = 4.0
    state_path = tmp_path / "state.json"
    monkeypatch.setenv("SHIPYARD_STATE", str(state_path))
    deployer = Deployer(StateStore(state_path))
    spec = DeployOptions(source="bundle", name="w", asynchronous=AsyncInference(max_concurrent=1,
                                                                             invocation_timeout_s=30))  # fmt: skip
    now = now_utc().isoformat()
    record = Deployment("w", "local", "InService", "bundle", now, now, url=sleepy, options=spec)
    queue_steps.ensure(record, spec, tmp_path / "local", deployer.state.put, SilentReporter())
    deployer.state.put(record)
    request = tmp_path / "r.json"
    request.write_bytes(b"{}")
    try:
        started = time.monotonic()
        short = shipyard("invoke", "w", "--async", "--data", str(request), "--wait", "--timeout", "1")
        assert short.returncode == 75 and "still running" in short.stderr, short.stderr
        assert time.monotonic() - started < 4
        _Sleepy.delay_s = 0.2
        waited = shipyard("invoke", "w", "--async", "--data", str(request), "--wait")  # queued behind the first
        assert waited.returncode == 0, waited.stderr
    finally:
        deployer.cleanup("w")
