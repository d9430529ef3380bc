"""The chunking client against a real HTTP server that throttles, refuses sizes and enforces a payload limit."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from infra.scripted_http import Running, Script, answer
from shipyard.cli import app
from shipyard.client.chunked import ChunkedInvoker, Limits, invoke_all
from shipyard.client.rows import CSVRows, JSONLinesRows, ResultWriter, read_items
from shipyard.client.transport import HTTPTransport, retry_after_seconds
from shipyard.errors import InvokeError

pytestmark = pytest.mark.integration

Start = Callable[[Script], Running]


def test_10000_items_come_back_in_order_through_503s_and_a_413(scripted_server: Start) -> None:
    # Requests 2, 5 and 9 are throttled (503), request 4 is refused as too large (413): the client retries
    # the first, splits the second, and every row is answered exactly once, in order.
    server = scripted_server(Script(fail={2: 503, 4: 413, 5: 503, 9: 503}, seconds_per_row=0.0001))
    items = list(range(10_000))
    transport = HTTPTransport(server.url)
    invoker = ChunkedInvoker(transport, limits=Limits(6 * 1024 * 1024, 2.0), concurrency=4, backoff_s=0.01)
    results: list[int] = []
    firsts: list[int] = []

    def on_results(first: int, predictions: list[int]) -> None:
        assert first == len(results), "results must be handed over in input order"
        firsts.append(first)
        results.extend(predictions)

    summary = invoker.run(items, on_results=on_results)
    transport.close()
    assert results == [answer(i) for i in items]
    statuses = server.app.statuses()
    assert statuses.count(503) == 3 and statuses.count(413) == 1
    assert summary.retries == 3 and summary.splits >= 1
    assert server.app.ok_rows() == 10_000  # nothing answered twice
    assert len(firsts) > 4  # the time limit cut the input into several chunks


def test_chunks_respect_the_payload_limit(scripted_server: Start) -> None:
    # 1 KB texts, a 100 KB limit on both sides: chunks are cut by bytes and none is refused.
    server = scripted_server(Script(max_body=100_000))
    texts = [f"{i:05d} " + "x" * 1000 for i in range(600)]
    results = invoke_all(server.url, texts, limits=Limits(100_000, 60.0), concurrency=3)
    assert results == [t.upper() for t in texts]
    assert 413 not in server.app.statuses()
    assert max(r["bytes"] for r in server.app.requests) <= 100_000
    assert len(server.app.requests) >= 7


def test_a_server_limit_lower_than_announced_is_learned_from_413s(scripted_server: Start) -> None:
    server = scripted_server(Script(max_body=30_000))
    texts = [f"{i:05d} " + "y" * 500 for i in range(400)]
    results = invoke_all(server.url, texts, limits=Limits(1_000_000, 60.0), concurrency=2)
    assert results == [t.upper() for t in texts]
    assert 413 in server.app.statuses()
    ok = [r for r in server.app.requests if r["status"] == 200]
    assert all(r["bytes"] <= 30_000 for r in ok)
    # after learning, later chunks go out small enough at once: far fewer 413s than chunks
    assert server.app.statuses().count(413) < len(ok)


def test_retry_after_is_honoured(scripted_server: Start) -> None:
    server = scripted_server(Script(fail={1: 503}, retry_after="0.4"))
    assert invoke_all(server.url, [1, 2, 3], concurrency=1, backoff_s=0.001) == [2, 4, 6]
    first, second = server.app.requests[:2]
    assert second["at"] - first["at"] >= 0.39


def test_retries_give_up_with_the_status_and_progress(scripted_server: Start) -> None:
    server = scripted_server(Script(fail_all=503))
    with pytest.raises(InvokeError) as caught:
        invoke_all(server.url, list(range(50)), max_retries=2, backoff_s=0.001)
    assert caught.value.status == 503
    assert "0 of 50 rows were answered" in str(caught.value) or "scripted 503" in str(caught.value)
    assert len(server.app.requests) == 3  # one try and two retries


def test_a_client_error_is_not_retried(scripted_server: Start) -> None:
    server = scripted_server(Script(fail={1: 400}))
    with pytest.raises(InvokeError, match="400"):
        invoke_all(server.url, list(range(10)), backoff_s=0.001)
    assert len(server.app.requests) == 1


def test_cli_writes_results_as_jsonl_and_resumes(scripted_server: Start, tmp_path: Path) -> None:
    server = scripted_server(Script(fail={3: 503}, seconds_per_row=0.00005))
    texts = [f"text number {i}" for i in range(10_000)]
    data = tmp_path / "texts.json"
    data.write_bytes(orjson.dumps(texts))
    output = tmp_path / "out.jsonl"
    runner = CliRunner()
    result = runner.invoke(app, ["invoke", server.url, "--data", str(data), "--output", str(output)])
    assert result.exit_code == 0, result.output
    lines = output.read_bytes().splitlines()
    assert [orjson.loads(line) for line in lines] == [t.upper() for t in texts]

    # A crash after 3000 answers, mid-line: the rerun sends only the rest and repairs the torn line.
    output.write_bytes(b"".join(line + b"\n" for line in lines[:3000]) + b'"TEXT NUM')
    before = server.app.ok_rows()
    result = runner.invoke(app, ["invoke", server.url, "--data", str(data), "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert server.app.ok_rows() - before == 7000
    assert [orjson.loads(line) for line in output.read_bytes().splitlines()] == [t.upper() for t in texts]


def test_cli_small_input_keeps_the_single_request_path(scripted_server: Start, tmp_path: Path) -> None:
    server = scripted_server(Script())
    data = tmp_path / "three.json"
    data.write_bytes(orjson.dumps({"instances": [1, 2, 3]}))
    result = CliRunner().invoke(app, ["invoke", server.url, "--data", str(data), "--raw"])
    assert result.exit_code == 0, result.output
    assert orjson.loads(result.stdout) == {"predictions": [2, 4, 6]}
    assert len(server.app.requests) == 1


def test_rows_formats_round_trip() -> None:
    assert read_items(b'{"instances": [1, [2, 3]]}', "application/json") == [1, [2, 3]]
    assert read_items(b'"a"\n\n{"b": 1}\n', "application/jsonlines") == ["a", {"b": 1}]
    assert read_items(b"1,2\n3,4\n", "text/csv; charset=utf-8") == ["1,2", "3,4"]
    with pytest.raises(InvokeError, match="list of rows"):
        read_items(b'{"x": 1}', "application/json")
    assert JSONLinesRows().decode(b"1\n2\n", 2) == [1, 2]
    assert CSVRows().decode(b"a\n1,2\n", 2) == ["a", ["1", "2"]]
    with pytest.raises(InvokeError, match="3 predictions for 2 rows"):
        JSONLinesRows().decode(b"1\n2\n3\n", 2)


def test_result_writer_csv_and_torn_lines(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    writer = ResultWriter(path)
    writer.write(["a", [1, 2]])
    writer.close()
    assert path.read_text() == "a\n1,2\n"
    path.write_bytes(path.read_bytes() + b"torn")
    writer = ResultWriter(path)
    assert writer.done == 2
    writer.write(["b"])
    writer.close()
    assert path.read_text() == "a\n1,2\nb\n"
    assert ResultWriter(path, resume=False).done == 0


def test_retry_after_parsing() -> None:
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past


def test_cli_never_splits_a_bare_row_of_numbers_unless_asked(scripted_server: Start, tmp_path: Path) -> None:
    server = scripted_server(Script())
    data = tmp_path / "row.json"
    data.write_bytes(orjson.dumps(list(range(100))))  # may be one 100-feature row sent bare
    result = CliRunner().invoke(app, ["invoke", server.url, "--data", str(data), "--raw"])
    assert result.exit_code == 0, result.output
    assert len(server.app.requests) == 1
    result = CliRunner().invoke(app, ["invoke", server.url, "--data", str(data), "--chunk", "--max-items", "30"])
    assert result.exit_code == 0, result.output
    assert sorted(r["rows"] for r in server.app.requests[1:]) == [16, 24, 30, 30]
