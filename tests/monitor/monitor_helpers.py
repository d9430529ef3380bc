"""Helpers shared by the monitor tests (a module of its own: every test folder has a conftest)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

from shipyard.serving.capture import DirectorySink, _EventIds, _hour_of, encode_record

HOUR = 3600
T0 = 1_790_000_000 - 1_790_000_000 % HOUR  # a fixed hour boundary, so windows and paths are predictable


@dataclass
class Digits:
    x_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    names: list[str]


@dataclass
class Captured:
    root: Path
    ids: list[str]
    predictions: dict[str, int]  # inference id -> predicted class
    rows: np.ndarray


def send_rows(url: str, rows: np.ndarray, prefix: str, concurrency: int = 16) -> dict[str, int]:
    """POST each row as CSV with an inference id, ``concurrency`` at a time; id -> predicted class."""

    def one(client: httpx.Client, index: int) -> tuple[str, int]:
        key = f"{prefix}-{index}"
        body = ",".join(f"{v:g}" for v in rows[index]).encode()
        answer = client.post(
            f"{url}/invocations",
            content=body,
            headers={"Content-Type": "text/csv", "Accept": "application/json", "X-Amzn-SageMaker-Inference-Id": key},
        )
        assert answer.status_code == 200, answer.text
        return key, int(answer.json()["predictions"][0])

    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(concurrency) as pool:
        return dict(pool.map(lambda i: one(client, i), range(len(rows))))


def capture_from_server(running_server: Any, bundle: Path, root: Path, rows: np.ndarray, prefix: str) -> Captured:
    server = running_server(bundle, env={"SHIPYARD_CAPTURE_DESTINATION": str(root), "SHIPYARD_CAPTURE_PERCENT": "100"})
    predictions = send_rows(server.url, rows, prefix)
    assert server.stop() == 0
    return Captured(root, list(predictions), predictions, rows)


def write_capture(
    root: Path,
    payloads: Iterable[tuple[float, str, bytes]],
    *,
    answer: bytes = b'{"predictions": [0]}',
    inference_ids: Sequence[str] | None = None,
) -> int:
    """Write capture files with the server's encoder: (time, content type, body) per record; returns the count."""
    sink = DirectorySink(root)
    ids = _EventIds()
    count = 0
    for index, (moment, content_type, body) in enumerate(payloads):
        key = inference_ids[index].encode() if inference_ids else None
        item = (moment, key, content_type, body, b"application/json", answer)
        sink.write(_hour_of(int(moment)), [encode_record(item, ids.next()) + b"\n"])
        count += 1
    sink.close()
    return count


def records_payloads(table: dict[str, list[Any]], start: float, spacing: float = 1.0) -> list[tuple[float, str, bytes]]:
    """One JSON record per request: ``{"name": value, …}`` (None becomes JSON null)."""
    names = list(table)
    rows = len(table[names[0]])
    payloads = []
    for i in range(rows):
        record = {n: table[n][i] for n in names}
        payloads.append((start + i * spacing, "application/json", orjson.dumps(record)))
    return payloads


def now_hour() -> float:
    return time.time() - time.time() % HOUR
