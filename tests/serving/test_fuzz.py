"""1,000 malformed requests against the real server: never a 5xx, never a dead worker, every error in JSON.

Every codec is fuzzed: JSON, CSV, JSON Lines, NPY and NPZ bodies, malformed outright (only 4xx answers), or
valid ones with bytes changed (a change may leave a valid body: 200 is allowed for those kinds), NPY headers
(a Python literal numpy parses) included.
"""

from __future__ import annotations

import io
import random
import string
from collections import Counter
from collections.abc import Callable

import httpx
import numpy as np
import orjson
import pytest

from infra.server import Server
from shipyard.codecs import DECODERS
from shipyard.codecs.media import canonical, parse_media_type

pytestmark = pytest.mark.integration

Body = tuple[str, bytes, str | None, str | None]  # (kind, body, content type, accept)


def fuzz_cases(rows: list[list[float]], count: int = 1000, seed: int = 20261123) -> list[Body]:
    rng = random.Random(seed)
    valid = orjson.dumps({"instances": rows})
    row = rows[0]

    def random_bytes() -> Body:
        return "random-bytes", rng.randbytes(rng.randint(0, 3000)), "application/json", None

    def random_text() -> Body:
        text = "".join(rng.choice(string.printable) for _ in range(rng.randint(1, 500)))
        return "random-text", text.encode(), rng.choice(["application/json", "text/csv", "application/jsonlines"]), None

    def truncated() -> Body:
        return "truncated-json", valid[: rng.randint(0, len(valid) - 1)], "application/json", None

    def wrong_shape() -> Body:
        width = rng.choice([0, 1, 2, 63, 65, 128])
        shapes = [
            [[rng.random() for _ in range(width)]],
            [row, row[: rng.choice([0, 1, 2, 63])]],  # ragged
            [[row]],  # one level too deep
            rng.random(),
            "text",
            None,
            {"instances": rng.random()},
            {"inputs": {"a": 1}},
            [{"f": 1}],
            [[str(v) for v in row]],
            [[bool(v) for v in row]],
            [],
            {},
        ]
        return "wrong-shape", orjson.dumps(rng.choice(shapes)), "application/json", None

    def non_finite() -> Body:
        token = rng.choice(["NaN", "Infinity", "-Infinity", "nan", "inf"])
        values = [str(v) for v in row]
        values[rng.randrange(len(values))] = token
        if rng.random() < 0.5:
            return "non-finite", ("[" + ",".join(values) + "]").encode(), "application/json", None
        return "non-finite", (",".join(values) + "\n").encode(), "text/csv", None

    def huge_number() -> Body:
        values = [str(v) for v in row]
        values[rng.randrange(len(values))] = rng.choice(["1e400", "-1e999", "9" * 400, "1" + "0" * 5000])
        if rng.random() < 0.5:
            return "huge-number", ("[" + ",".join(values) + "]").encode(), "application/json", None
        return "huge-number", (",".join(values) + "\n").encode(), "text/csv", None

    def deep_nesting() -> Body:
        depth = rng.choice([65, 200, 1000, 5000, 100_000])
        if rng.random() < 0.5:
            return "deep-nesting", b"[" * depth + b"]" * depth, "application/json", None
        return "deep-nesting", b'{"a":' * depth + b"1" + b"}" * depth, "application/json", None

    def wrong_content_type() -> Body:
        content_type = rng.choice(
            [
                "text/plain",
                "image/png",
                "application/xml",
                "multipart/form-data",
                "garbage",
                "application/json; charset=no-such",
            ]
        )
        return "wrong-content-type", valid, content_type, None

    def wrong_accept() -> Body:
        accept = rng.choice(["text/html", "image/*", "application/xml;q=1, text/plain", "*/*;q=0", "video/mp4"])
        return "wrong-accept", valid, "application/json", accept

    def bad_npy() -> Body:
        out = io.BytesIO()
        np.save(out, np.asarray(rng.choice([[row[:10]], [[float("nan")] * 64], ["text"] * 64, [[[1.0] * 64]]])))
        body = out.getvalue()
        if rng.random() < 0.5:
            body = body[: rng.randint(0, len(body) - 1)]
        return "bad-npy", body, "application/x-npy", None

    def mutate(body: bytes, start: int = 0, end: int | None = None) -> bytes:
        mutable = bytearray(body)
        stop = len(mutable) if end is None else min(end, len(mutable))
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(start, stop)
            choice = rng.random()
            if choice < 0.6:
                mutable[at] = rng.randrange(256)
            elif choice < 0.8:
                mutable[at:at] = rng.randbytes(rng.randint(1, 4))
            else:
                del mutable[at : at + rng.randint(1, 4)]
        return bytes(mutable)

    def npy_of(array: np.ndarray) -> bytes:
        out = io.BytesIO()
        np.save(out, array)
        return out.getvalue()

    valid_npy = npy_of(np.asarray([row]))

    def mutated_npy_header() -> Body:  # the header is bytes 10 to ~128: a dict literal numpy tokenizes
        return "mutated-npy", mutate(valid_npy, 8, 128), "application/x-npy", None

    def mutated_npz() -> Body:
        out = io.BytesIO()
        if rng.random() < 0.5:
            np.savez(out, x=np.asarray([row]))
        else:
            np.savez_compressed(out, x=np.asarray([row]))
        body = out.getvalue()
        header_at = body.find(b"\x93NUMPY")  # the member's .npy header, when stored uncompressed
        if header_at > 0 and rng.random() < 0.5:
            return "mutated-npz", mutate(body, header_at + 8, header_at + 128), "application/x-npz", None
        return "mutated-npz", mutate(body), "application/x-npz", None

    def bad_npz() -> Body:
        out = io.BytesIO()
        choice = rng.randrange(4)
        if choice == 0:
            np.savez(out, a=np.asarray([row]), b=np.asarray([row]))  # two arrays: which is the input?
        elif choice == 1:
            np.savez(out, x=np.asarray([row[:10]]))  # the wrong width
        elif choice == 2:
            np.savez(out, x=np.asarray(["text"] * 64))
        else:
            out.write(b"PK\x03\x04" + rng.randbytes(rng.randint(0, 500)))
        return "bad-npz", out.getvalue(), "application/x-npz", None

    def mutated_csv() -> Body:
        body = (",".join(map(str, row)) + "\n").encode()
        return "mutated-csv", mutate(body), rng.choice(["text/csv", "text/csv; charset=utf-8"]), None

    def mutated_jsonlines() -> Body:
        return "mutated-jsonlines", mutate(orjson.dumps(row) + b"\n"), "application/jsonlines", None

    def mutated_json() -> Body:
        return "mutated-json", mutate(valid), "application/json", None

    def bad_jsonlines() -> Body:
        lines = [orjson.dumps(row), b"{", orjson.dumps(row[:3]), b"null", b"[1e999]"]
        rng.shuffle(lines)
        return "bad-jsonlines", b"\n".join(lines), "application/jsonlines", None

    makers: list[Callable[[], Body]] = [
        random_bytes,
        random_text,
        truncated,
        wrong_shape,
        non_finite,
        huge_number,
        deep_nesting,
        wrong_content_type,
        wrong_accept,
        bad_npy,
        bad_jsonlines,
        mutated_npy_header,
        mutated_npz,
        bad_npz,
        mutated_csv,
        mutated_jsonlines,
        mutated_json,
    ]
    return [makers[i % len(makers)]() for i in range(count)]


# A mutation may leave a valid body (a digit changed for another): these kinds may also be answered 200.
MAY_BE_VALID = {"mutated-npy", "mutated-npz", "mutated-csv", "mutated-jsonlines", "mutated-json"}


def test_every_codec_is_fuzzed(digits_rows: list[list[float]]) -> None:
    sent = {parse_media_type(content_type).essence for _, _, content_type, _ in fuzz_cases(digits_rows) if content_type}
    assert set(DECODERS) <= {canonical(essence) for essence in sent}


def test_fuzzed_bodies_get_no_5xx_and_every_error_in_json(
    digits_server: Server, digits_rows: list[list[float]]
) -> None:
    cases = fuzz_cases(digits_rows)
    assert len(cases) == 1000
    workers = digits_server.worker_pids()
    statuses: Counter[tuple[str, int]] = Counter()
    failures = []
    with httpx.Client(timeout=30) as client:
        for kind, body, content_type, accept in cases:
            headers = {}
            if content_type is not None:
                headers["content-type"] = content_type
            if accept is not None:
                headers["accept"] = accept
            response = client.post(f"{digits_server.url}/invocations", content=body, headers=headers)
            statuses[(kind, response.status_code)] += 1
            if response.status_code == 200 and kind in MAY_BE_VALID:
                continue
            if not 400 <= response.status_code < 500:
                failures.append((kind, response.status_code, body[:200], response.text[:300]))
            else:
                assert response.headers["content-type"] == "application/json", (kind, response.headers)
                assert set(response.json()) == {"error", "message"}
    assert not failures, f"{len(failures)} answers outside 4xx, e.g. {failures[:5]}"
    assert {kind for kind, _ in statuses} == {case[0] for case in cases}
    assert statuses[("wrong-content-type", 415)] + statuses[("wrong-content-type", 400)] > 0
    assert statuses[("wrong-accept", 406)] > 0

    # Never a dead server: the same worker answers a good request, and no 5xx was ever counted.
    assert digits_server.worker_pids() == workers
    good = client_post_valid(digits_server, digits_rows)
    assert good.status_code == 200
    metrics = httpx.get(f"{digits_server.url}/metrics").text.splitlines()
    assert not [m for m in metrics if 'route="invocations"' in m and 'code="5' in m and not m.startswith("#")]


def client_post_valid(server: Server, rows: list[list[float]]) -> httpx.Response:
    return httpx.post(
        f"{server.url}/invocations", content=orjson.dumps(rows), headers={"content-type": "application/json"}
    )
