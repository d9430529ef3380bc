"""``shipyard bench`` against a real running server (the digits bundle), and the recommendation's arithmetic."""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from shipyard.bench import run_bench
from shipyard.bench.load import LoadResult, Sample, percentile
from shipyard.bench.recommend import INSTANCE_VCPUS, recommend
from shipyard.cli import app
from shipyard.pricing import prices


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height of a PNG, after checking its signature and the IHDR chunk's CRC."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    header = data[16 : 16 + length]
    (crc,) = struct.unpack(">I", data[16 + length : 20 + length])
    assert crc == zlib.crc32(kind + header), "corrupt PNG header"
    assert b"IEND" in data[-12:], "truncated PNG"
    width, height = struct.unpack(">II", header[:8])
    return width, height


def _non_blank(path: Path) -> int:
    """Distinct colours in the image: a plot with axes, lines and text has many; a blank canvas has one."""
    import matplotlib.image

    pixels = matplotlib.image.imread(path)
    return len({tuple(p) for p in pixels.reshape(-1, pixels.shape[-1])[::7].tolist()})


@pytest.mark.integration
def test_bench_cli_against_a_running_server(digits_server: Any, digits_rows: list[list[float]], tmp_path: Path) -> None:
    data = tmp_path / "rows.json"
    data.write_bytes(orjson.dumps(digits_rows))
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app,
        [
            "bench",
            digits_server.url,
            "--data",
            str(data),
            "--sizes",
            "1,10,50",
            "--repeats",
            "3",
            "--concurrency",
            "1,4,16",
            "--duration",
            "1",
            "--server-vcpus",
            "2",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "One request with N items" in result.output and "Concurrency sweep" in result.output
    report = orjson.loads((out / "report.json").read_bytes())
    assert [row["items"] for row in report["sizes"]] == [1, 10, 50]
    assert all(row["median_ms"] > 0 and row["errors"] == {} for row in report["sizes"])
    assert [row["level"] for row in report["sweep"]] == [1, 4, 16]
    for row in report["sweep"]:
        assert row["req_per_s"] > 0 and row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
    rec = report["recommendation"]
    assert rec["items_per_request"] in (1, 10, 50)
    assert rec["max_rps"] == max(row["req_per_s"] for row in report["sweep"] if row["p99_ms"] <= rec["slo_p99_ms"])
    assert rec["instance_type"] in INSTANCE_VCPUS and rec["instance_count"] >= 1
    assert rec["autoscaling_target"] == int(rec["capacity_rps_per_instance"] * 0.5 * 60)
    assert math.isclose(rec["hourly_usd"], prices().hourly(rec["instance_type"], rec["instance_count"]), rel_tol=1e-3)
    width, height = _png_size(out / "bench.png")
    assert width > 1000 and height > 300
    assert _non_blank(out / "bench.png") > 20
    markdown = (out / "report.md").read_text()
    assert "![latency and throughput](bench.png)" in markdown and "InvocationsPerInstance" in markdown
    assert "<table>" in (out / "report.html").read_text()


@pytest.mark.integration
def test_open_loop_sweep_and_errors_by_code(digits_server: Any, tmp_path: Path) -> None:
    # Rows of the wrong width: every request is a 400, counted by code, and nothing is recommended from it.
    report = run_bench(digits_server.url, [[1.0, 2.0]], sizes=(1,), repeats=2, rates=(20.0,), duration=1.0)
    (open_level,) = report.sweep
    assert open_level.mode == "open" and open_level.level == 20.0
    assert open_level.errors == {"400": len(open_level.samples)} and len(open_level.samples) >= 15
    assert report.recommendation.max_rps is None and report.recommendation.items_per_request is None
    assert any("failed" in note for note in report.recommendation.notes)
    paths = report.write(tmp_path, plot=True)
    assert _png_size(paths["png"])[0] > 0


def _level(level: int, rps: float, latency_s: float, errors: int = 0) -> LoadResult:
    samples = [Sample(0.0, latency_s, 200)] * int(rps * 10) + [Sample(0.0, latency_s, 503)] * errors
    return LoadResult("closed", level, 1, 10.0, samples)


def test_recommendation_arithmetic() -> None:
    sizes = [
        LoadResult("single", 1, n, 1.0, [Sample(0.0, seconds, 200)] * 3)
        for n, seconds in ((1, 0.02), (10, 0.08), (50, 0.3), (500, 40.0))
    ]
    sweep = [_level(1, 50, 0.02), _level(8, 180, 0.05), _level(32, 200, 0.2), _level(64, 260, 3.0, errors=5)]
    rec = recommend(sizes, sweep, server_vcpus=2, peak_rps=500, safety=0.5, slo_p99_ms=1000)
    assert rec.items_per_request == 50  # 500 items take 40 s, over the 30 s budget
    assert any("500 items per request" in note for note in rec.notes)
    assert rec.max_rps == 200 and rec.concurrency == 32  # c=64 had errors and a 3 s p99
    per_vcpu = 100.0
    table = prices()
    costs = {
        t: table.hourly(t, max(1, math.ceil(500 / (per_vcpu * v * 0.5))))
        for t, v in INSTANCE_VCPUS.items()
        if table.hourly(t) is not None
    }
    cheapest = min(costs.values())
    assert rec.hourly_usd == pytest.approx(cheapest)
    assert rec.instance_type is not None
    vcpus = INSTANCE_VCPUS[rec.instance_type]
    assert rec.instance_count == math.ceil(500 / (per_vcpu * vcpus * 0.5))
    assert rec.autoscaling_target == int(per_vcpu * vcpus * 0.5 * 60)
    assert rec.deploy_command is not None
    assert f"--instance-type {rec.instance_type} --instance-count {rec.instance_count}" in rec.deploy_command
    assert f"--max-rps {per_vcpu * vcpus:g}" in rec.deploy_command


def test_percentile_matches_numpy() -> None:
    import numpy as np

    values = sorted(np.random.default_rng(1).exponential(size=101).tolist())
    for q in (0, 50, 95, 99, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_unknown_target_name_is_a_clear_error(tmp_path: Path) -> None:
    from shipyard.errors import InvokeError

    data = tmp_path / "rows.json"
    data.write_bytes(b"[[1.0]]")
    result = CliRunner().invoke(app, ["bench", "no-such-deployment-xyz", "--data", str(data)])
    assert isinstance(result.exception, InvokeError)
    assert "neither a URL nor a deployment" in str(result.exception)


def _printed_tables(text: str) -> dict[str, list[dict[str, str]]]:
    """Rich's tables as printed: ``{first header cell: [{header: cell}, ...]}``, one dict per body line."""
    tables: dict[str, list[dict[str, str]]] = {}
    header: list[str] = []
    for line in text.splitlines():
        if line.startswith("┃"):
            header = [cell.strip() for cell in line.strip("┃").split("┃")]
            tables[header[0]] = []
        elif line.startswith("│") and header:
            cells = [cell.strip() for cell in line.strip("│").split("│")]
            assert len(cells) == len(header), line
            tables[header[0]].append(dict(zip(header, cells, strict=True)))
    return tables


def _shows(cell: str, value: float) -> bool:
    """``cell`` is ``value`` printed whole: the same number to six significant digits.

    report.json keeps two decimals, so below 10,000 every digit it holds must be printed; a larger figure may
    lose a hundredth to the table's six significant digits, never more (1465.05 printed as 1.47e+03 fails).
    """
    return math.isclose(float(cell), value, rel_tol=5e-6, abs_tol=1e-12)


@pytest.mark.integration
@pytest.mark.parametrize("columns", ["80", None])
def test_bench_tables_keep_every_figure_whole(
    digits_server: Any, digits_rows: list[list[float]], tmp_path: Path, columns: str | None
) -> None:
    """In an 80-column terminal and in a pipe, no cell ends in "…" and every rate and latency is printed whole.

    The printed cells are read back as numbers and compared with report.json (not with the report's own
    formatting function, so a formatting bug that cuts or rounds a figure fails here).
    """
    from infra.cli import shipyard

    data = tmp_path / "rows.json"
    data.write_bytes(orjson.dumps(digits_rows))
    run = shipyard(
        "bench", digits_server.url, "--data", str(data), "--sizes", "1,5", "--repeats", "2", "--concurrency", "1,4",
        "--duration", "0.5", "--no-plot", "--out", str(tmp_path / "r"),
        env={"COLUMNS": columns} if columns else None, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    tables = run.stdout.split("•")[0]  # the tables, before the recommendation's bullet points
    assert "…" not in tables
    report = orjson.loads((tmp_path / "r" / "report.json").read_bytes())
    printed = _printed_tables(tables)
    sweep, sizes = printed["concurrency"], printed["items per request"]
    assert [int(row["concurrency"]) for row in sweep] == [row["level"] for row in report["sweep"]], tables
    for shown, row in zip(sweep, report["sweep"], strict=True):
        for header, key in (("req/s", "req_per_s"), ("p50 ms", "p50_ms"), ("p99 ms", "p99_ms")):
            assert _shows(shown[header], row[key]), (header, shown[header], row[key])
    assert [int(row["items per request"]) for row in sizes] == [row["items"] for row in report["sizes"]], tables
    for shown, row in zip(sizes, report["sizes"], strict=True):
        assert _shows(shown["median ms"], row["median_ms"]), (shown["median ms"], row["median_ms"])
    if columns:
        assert all(len(line) <= 80 for line in tables.splitlines())
