"""The statistics ``baseline`` and ``check`` write equal an exact in-memory computation, for every source.

Hypothesis draws a table (rows, columns, each column's kind: fractional floats, whole-number floats,
integers or text, and its share of nulls), the reading block sizes (Parquet batch rows and column-group
bytes, JSON Lines block bytes, CSV block bytes) and the Parquet row-group size; the table is written as
Parquet, CSV with and without a header, JSON Lines, a capture file and a directory of hourly capture files,
and each is read by ``make_baseline`` (its code path: every column becomes a feature, types inferred) and by
``run_check`` against a baseline of the same features (its code path: fixed features, numbers checked
against the baseline's bins, rows split into hourly windows). Their ``statistics.json`` must equal
:func:`exact.expected_statistics` of the table.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from exact import (
    KINDS,
    WORDS,
    Table,
    assert_statistics_equal,
    write_capture_records,
    write_csv,
    write_jsonl,
    write_parquet,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shipyard.monitor import make_baseline, run_check, sources

EXAMPLES = settings(
    max_examples=20,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def tables(draw: st.DrawFn, max_columns: int = 6, kinds: tuple[str, ...] = KINDS) -> Table:
    # mostly small tables (every shape and block split), some past the sketch's k = 2048 (its compactions)
    rows = draw(st.one_of(st.integers(1, 300), st.integers(1, 300), st.integers(2049, 5000)))
    width = draw(st.integers(1, max_columns))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    columns: dict[str, list[Any]] = {}
    drawn: dict[str, str] = {}
    for index in range(width):
        kind = draw(st.sampled_from(kinds))
        nulls = draw(st.sampled_from([0.0, 0.0, 0.05, 0.5, 1.0]))
        offset = draw(st.sampled_from([0.0, 3.0, -250.0, 1e6]))
        if kind == "fractional":
            values: list[Any] = [float(round(v, 3)) for v in rng.normal(offset, 2.0, rows)]
        elif kind == "whole_float":
            values = [float(v) for v in rng.integers(-5, 20, rows) + int(offset)]
        elif kind == "integer":
            values = [int(v) for v in rng.integers(-5, 20, rows) + int(offset)]
        elif kind == "text":
            values = [str(v) for v in rng.choice(WORDS, rows)]
        else:  # mixed: numbers, and text in a fifth of the rows
            values = [float(round(v, 2)) for v in rng.normal(offset, 2.0, rows)]
            values = [str(rng.choice(WORDS)) if rng.random() < 0.2 else v for v in values]
        missing = rng.random(rows) < nulls
        name = f"c{index}_{kind}"
        columns[name] = [None if gone else value for value, gone in zip(values, missing, strict=True)]
        drawn[name] = kind
    # a row with no value at all is a blank line in CSV, which no CSV reader counts as a row: keep one cell
    first = next(iter(columns))
    filler = {"fractional": 0.5, "whole_float": 0.0, "integer": 0, "text": "x", "mixed": "x"}[drawn[first]]
    for i in range(rows):
        if all(values[i] is None for values in columns.values()):
            columns[first][i] = filler
    return Table(columns, drawn)


@st.composite
def block_sizes(draw: st.DrawFn) -> dict[str, int]:
    return {
        "BATCH_ROWS": draw(st.sampled_from([7, 64, 1000, sources.BATCH_ROWS])),
        "BLOCK_BYTES": draw(st.sampled_from([512, 4096, 1 << 20])),
        "CSV_BLOCK_BYTES": draw(st.sampled_from([1 << 10, 1 << 14, 1 << 20])),
        "_COLUMN_GROUP_BYTES": draw(st.sampled_from([8, 800, 8000, 16 << 20])),
    }


def set_blocks(monkeypatch: pytest.MonkeyPatch, sizes: dict[str, int]) -> None:
    for name, value in sizes.items():
        monkeypatch.setattr(sources, name, value)


def sources_of(table: Table, root: Path, row_group: int) -> dict[str, tuple[Path, bool]]:
    """Every file kind holding ``table``: name -> (path, whether a CSV's first line is a header)."""
    root.mkdir(parents=True, exist_ok=True)
    return {
        "parquet": (write_parquet(table, root / "data.parquet", row_group), True),
        "csv": (write_csv(table, root / "data.csv", header=True), True),
        "jsonl": (write_jsonl(table, root / "data.jsonl"), True),
        "capture file": (next(write_capture_records(table, root / "one", spacing=0.01).rglob("*.jsonl")), True),
        # rows spread over several hours: one file per hour, YYYY/MM/DD/HH
        "capture hours": (write_capture_records(table, root / "hours", spacing=4 * 3600 / table.rows), True),
    }


def statistics(directory: Path) -> dict[str, Any]:
    return orjson.loads((directory / "statistics.json").read_bytes())


@EXAMPLES
@given(table=tables(), sizes=block_sizes(), row_group=st.integers(1, 500))
def test_baseline_statistics_are_exact_for_every_source(
    table: Table, sizes: dict[str, int], row_group: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("baseline")
    with pytest.MonkeyPatch.context() as patch:
        set_blocks(patch, sizes)
        for name, (path, header) in sources_of(table, root / "data", row_group).items():
            result = make_baseline(path, root / name, header=header)
            assert_statistics_equal(statistics(root / name), table, f"baseline of {name}")
            assert result.rows == table.rows


@EXAMPLES
@given(table=tables(), sizes=block_sizes(), row_group=st.integers(1, 500))
def test_check_statistics_are_exact_for_every_source(
    table: Table, sizes: dict[str, int], row_group: int, tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("check")
    files = sources_of(table, root / "data", row_group)
    make_baseline(files["jsonl"][0], root / "baseline")  # the features and their types, from the same rows
    with pytest.MonkeyPatch.context() as patch:
        set_blocks(patch, sizes)
        for name, (path, header) in files.items():
            result = run_check(path, root / "baseline", root / name, header=header)
            assert_statistics_equal(statistics(root / name), table, f"check of {name}")
            assert result.rows == table.rows
            assert not [v for v in result.violations if v["constraint_check_type"] != "baseline_drift_check"], name


@EXAMPLES
@given(
    table=tables(kinds=("fractional", "whole_float", "integer")),
    sizes=block_sizes(),
)
def test_headerless_csv_and_captured_csv_rows_are_exact(
    table: Table, sizes: dict[str, int], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """CSV without a header (Model Monitor's ``_c0``, ``_c1``, … names) and captured CSV rows (by position)."""
    root = tmp_path_factory.mktemp("csv")
    positional = Table(
        {f"_c{i}": v for i, v in enumerate(table.columns.values())},
        {f"_c{i}": k for i, k in enumerate(table.kinds.values())},
    )
    bare = write_csv(positional, root / "bare.csv", header=False)
    with pytest.MonkeyPatch.context() as patch:
        set_blocks(patch, sizes)
        make_baseline(bare, root / "baseline", header=False)
        assert_statistics_equal(statistics(root / "baseline"), positional, "baseline of a CSV without header")
        captured = write_capture_records(positional, root / "capture", spacing=2 * 3600 / table.rows, csv=True)
        for name, path in (("bare csv", bare), ("captured csv", captured)):
            run_check(path, root / "baseline", root / name, header=False)
            assert_statistics_equal(statistics(root / name), positional, f"check of {name}")


def test_the_issue_shape_parquet_check_counts_nothing_missing(tmp_path: Path) -> None:
    """Issue 11 §3: 64 fractional columns, 100 k rows in one row group. ``check`` read columns 20–63 as
    missing (a Parquet column group of rows counted absent columns as nulls) and typed them ``Integral``."""
    rng = np.random.default_rng(0)
    table = pa.table({f"f{i:02d}": np.round(rng.normal(0.0, 1.0, 100_000), 2) for i in range(64)})
    pq.write_table(table, tmp_path / "train.parquet", row_group_size=100_000)
    make_baseline(tmp_path / "train.parquet", tmp_path / "baseline")
    result = run_check(tmp_path / "train.parquet", tmp_path / "baseline", tmp_path / "out", window=None)
    current = statistics(tmp_path / "out")["features"]
    assert [f["numerical_statistics"]["common"]["num_missing"] for f in current] == [0] * 64
    assert {f["inferred_type"] for f in current} == {"Fractional"}
    assert result.violations == []
    baseline = {f["name"]: f for f in statistics(tmp_path / "baseline")["features"]}
    for feature in current:
        ours, theirs = feature["numerical_statistics"], baseline[feature["name"]]["numerical_statistics"]
        assert math.isclose(ours["mean"], theirs["mean"], rel_tol=1e-12, abs_tol=1e-12)
        assert ours["common"] == theirs["common"] == {"num_present": 100_000, "num_missing": 0}
