"""Data capture: SageMaker's record format, sampling, a bounded queue that drops instead of waiting,
hourly files, flushing on SIGTERM — in process, and from a real server under load (files and S3 on moto)."""

from __future__ import annotations

import base64
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import httpx
import orjson
import pytest

from infra.moto import aws, moto_server  # noqa: F401 - fixtures
from shipyard.config import ServerConfig
from shipyard.errors import ShipyardError
from shipyard.serving.capture import Capture, DirectorySink, S3Sink, _counters, capture_for

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
HOUR_PATH = re.compile(r"^\d{4}/\d{2}/\d{2}/\d{2}/\d{2}-\d{2}-\d{3}-[0-9a-f]{12}\.jsonl$")


def records(root: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted(root.rglob("*.jsonl")):
        assert HOUR_PATH.match(path.relative_to(root).as_posix()), path
        out += [orjson.loads(line) for line in path.read_bytes().splitlines()]
    return out


def test_records_follow_sagemakers_format(tmp_path: Path) -> None:
    capture = Capture(DirectorySink(tmp_path), 100)
    capture.offer(b"id-1", "text/csv", b"1,2,3", b"application/json", b'{"predictions": [1]}')
    capture.offer(None, None, b'{"instances": [[1, 2]]}', b"text/csv", b"0\n")
    capture.offer(None, "application/x-npy", b"\x93NUMPY\x00\xff", b"application/x-npy", b"\x00\x01")
    capture.close()
    first, second, third = records(tmp_path)
    assert first["captureData"] == {
        "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": "1,2,3", "encoding": "CSV"},
        "endpointOutput": {
            "observedContentType": "application/json",
            "mode": "OUTPUT",
            "data": '{"predictions": [1]}',
            "encoding": "JSON",
        },
    }
    assert first["eventVersion"] == "0"
    assert first["eventMetadata"]["inferenceId"] == "id-1"
    assert re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$", first["eventMetadata"]["inferenceTime"])
    assert "inferenceId" not in second["eventMetadata"]
    assert second["captureData"]["endpointInput"]["encoding"] == "JSON"  # no Content-Type: read as JSON
    assert second["captureData"]["endpointOutput"]["encoding"] == "CSV"
    assert third["captureData"]["endpointInput"]["encoding"] == "BASE64"
    assert base64.b64decode(third["captureData"]["endpointInput"]["data"]) == b"\x93NUMPY\x00\xff"
    ids = [r["eventMetadata"]["eventId"] for r in (first, second, third)]
    assert all(UUID.match(i) for i in ids) and len(set(ids)) == 3


def test_sampling_keeps_about_the_asked_share(tmp_path: Path) -> None:
    capture = Capture(DirectorySink(tmp_path), 25, max_queue=100_000)
    for _ in range(8000):
        capture.offer(None, "text/csv", b"1", b"text/csv", b"1")
    capture.close()
    kept = len(records(tmp_path))
    assert abs(kept - 2000) < 5 * (8000 * 0.25 * 0.75) ** 0.5  # within 5 σ of 25 %


def test_a_full_queue_drops_and_counts_instead_of_waiting(tmp_path: Path) -> None:
    dropped = _counters()[1].labels("queue_full")
    before = dropped._value.get()
    capture = Capture(DirectorySink(tmp_path), 100, max_queue=10)  # thread not started: nothing drains
    for i in range(50):  # returns at once: nothing here can wait
        capture.offer(None, "text/csv", str(i).encode(), b"text/csv", b"0")
    assert capture.dropped == 40
    assert dropped._value.get() - before == 40
    capture.close()
    assert [r["captureData"]["endpointInput"]["data"] for r in records(tmp_path)] == [str(i) for i in range(10)]


class Broken:
    def write(self, hour: str, lines: list[bytes]) -> None:
        raise OSError("disk full")

    def flush(self) -> None: ...

    def close(self) -> None: ...


def test_a_failing_destination_counts_drops_and_never_raises() -> None:
    errors = _counters()[1].labels("write_error")
    before = errors._value.get()
    capture = Capture(Broken(), 100)
    capture.start()
    for _ in range(5):
        capture.offer(None, "text/csv", b"1", b"text/csv", b"1")
    capture.close()
    assert capture.dropped == 5
    assert errors._value.get() - before == 5


def test_settings_come_from_the_environment() -> None:
    config = ServerConfig.from_env(
        {"SHIPYARD_CAPTURE_DESTINATION": "s3://bucket/prefix", "SHIPYARD_CAPTURE_PERCENT": "12.5"}
    )
    assert (config.capture_destination, config.capture_percent) == ("s3://bucket/prefix", 12.5)
    capture = capture_for(config.capture_destination, config.capture_percent)
    assert capture is not None and isinstance(capture.sink, S3Sink) and capture.sink.bucket == "bucket"
    assert capture_for(None, 100) is None and capture_for("/tmp/x", 0) is None
    with pytest.raises(ShipyardError, match="between 0 and 100"):
        ServerConfig.from_env({"SHIPYARD_CAPTURE_PERCENT": "150"})


def load(url: str, count: int, concurrency: int = 32) -> list[str]:
    """``count`` CSV requests, ``concurrency`` at a time, each with an inference id; the ids answered 200."""

    def one(client: httpx.Client, index: int) -> str | None:
        key = f"req-{index}"
        row = ",".join(str((index + j) % 17) for j in range(64))
        answer = client.post(
            f"{url}/invocations",
            content=row.encode(),
            headers={"Content-Type": "text/csv", "X-Amzn-SageMaker-Inference-Id": key},
        )
        return key if answer.status_code == 200 else None

    # One client per thread: an httpx.Client shared by many threads once failed with a ReadError (EBADF).
    local = threading.local()
    clients: list[httpx.Client] = []
    lock = threading.Lock()

    def client() -> httpx.Client:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=30)
            with lock:
                clients.append(local.client)
        return local.client  # type: ignore[no-any-return]

    try:
        with ThreadPoolExecutor(concurrency) as pool:
            return [k for k in pool.map(lambda i: one(client(), i), range(count)) if k]
    finally:
        for each in clients:
            each.close()


@pytest.mark.integration
def test_a_real_server_under_load_captures_every_answered_request(
    running_server: Any, digits_bundle: Path, tmp_path: Path
) -> None:
    root = tmp_path / "capture"
    server = running_server(
        digits_bundle, env={"SHIPYARD_CAPTURE_DESTINATION": str(root), "SAGEMAKER_MODEL_SERVER_WORKERS": "2"}
    )
    answered = load(server.url, 600)
    # a worker still loading answers 503 (the fixture waits for one /ping): those are not captured either
    assert len(answered) >= 100
    bad = httpx.post(f"{server.url}/invocations", content=b"1,2", headers={"Content-Type": "text/csv"})
    assert bad.status_code == 400  # errors are not captured
    metrics = httpx.get(f"{server.url}/metrics").text
    assert server.stop() == 0
    captured = records(root)
    assert sorted(r["eventMetadata"]["inferenceId"] for r in captured) == sorted(answered)
    # no Accept header: the answer came in the request's type, one predicted class per line
    assert all(re.match(r"^\d\n?$", r["captureData"]["endpointOutput"]["data"]) for r in captured)
    assert {r["captureData"]["endpointOutput"]["encoding"] for r in captured} == {"CSV"}
    assert len({r["eventMetadata"]["eventId"] for r in captured}) == len(answered)  # unique across both workers
    assert "shipyard_capture_written_total" in metrics


@pytest.mark.integration
def test_capture_to_s3_is_uploaded_on_sigterm(
    running_server: Any,
    digits_bundle: Path,
    aws: Any,  # noqa: F811
) -> None:
    """With an hour between uploads, only the shutdown (SIGTERM) can have written the objects."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="captures")
    env = {
        "SHIPYARD_CAPTURE_DESTINATION": "s3://captures/endpoint/AllTraffic",
        "SHIPYARD_CAPTURE_FLUSH_SECONDS": "3600",
        "AWS_ENDPOINT_URL": aws.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    server = running_server(digits_bundle, env=env)
    answered = load(server.url, 100, concurrency=8)
    time.sleep(0.3)
    assert s3.list_objects_v2(Bucket="captures").get("KeyCount", 0) == 0
    assert server.stop() == 0
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="captures")["Contents"]]
    assert keys and all(re.match(r"^endpoint/AllTraffic/\d{4}/\d{2}/\d{2}/\d{2}/.*\.jsonl$", k) for k in keys)
    lines = [
        orjson.loads(line)
        for key in keys
        for line in s3.get_object(Bucket="captures", Key=key)["Body"].read().splitlines()
    ]
    assert sorted(r["eventMetadata"]["inferenceId"] for r in lines) == sorted(answered)
