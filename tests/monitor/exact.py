"""The exact statistics of a small table, computed in memory with numpy, and the files that hold it.

The property tests write one generated table into every source ``shipyard monitor`` reads (Parquet with a
given row-group size, CSV with and without a header, JSON Lines, a capture file, a directory of hourly
capture files) and compare what ``baseline`` and ``check`` write into ``statistics.json`` with
:func:`expected_statistics` of the same values.

Types follow Model Monitor's rule (Deequ's ``DataType`` analyzer on each value as written): all missing is
``Unknown``, any text makes ``String``, else any value written with a fraction (a float, ``2.0``) makes
``Fractional``, else ``Integral``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from monitor_helpers import T0, write_capture

from shipyard.monitor.sketch import KLLSketch, rank_error, weighted_quantiles

#: mixed: fractional numbers with text among them (Model Monitor calls such a column String)
KINDS = ("fractional", "whole_float", "integer", "text", "mixed")
WORDS = ("red", "green", "blue", "dark red", "teal", "x")  # none of them a number or one of Arrow's null words


@dataclass
class Table:
    """Columns of Python values (``None`` for missing), in order, and the kind each was drawn as."""

    columns: dict[str, list[Any]]
    kinds: dict[str, str]

    @property
    def rows(self) -> int:
        return len(next(iter(self.columns.values())))

    @property
    def names(self) -> list[str]:
        return list(self.columns)


def arrow_type(kind: str) -> pa.DataType:
    numbers = {"fractional": pa.float64(), "whole_float": pa.float64(), "integer": pa.int64()}
    return numbers.get(kind, pa.string())


def text_of(value: Any) -> str:
    """A cell as a client writes it (Python's repr for floats: ``2.0``, ``-0.65``)."""
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


# -- the files ------------------------------------------------------------------------------------
def write_parquet(table: Table, path: Path, row_group_size: int) -> Path:
    def array(name: str, values: list[Any]) -> pa.Array:
        if table.kinds[name] == "mixed":  # Parquet columns have one type: numbers among text are text
            return pa.array([None if v is None else text_of(v) for v in values], pa.string())
        return pa.array(values, type=arrow_type(table.kinds[name]))

    arrays = {n: array(n, v) for n, v in table.columns.items()}
    pq.write_table(pa.table(arrays), path, row_group_size=row_group_size)
    return path


def write_csv(table: Table, path: Path, header: bool) -> Path:
    lines = [",".join(table.names)] if header else []
    for i in range(table.rows):
        lines.append(",".join(text_of(table.columns[n][i]) for n in table.names))
    path.write_text("\n".join(lines) + "\n")
    return path


def write_jsonl(table: Table, path: Path) -> Path:
    rows = [{n: table.columns[n][i] for n in table.names} for i in range(table.rows)]
    path.write_bytes(b"".join(orjson.dumps(row) + b"\n" for row in rows))
    return path


def write_capture_records(table: Table, root: Path, spacing: float, csv: bool = False) -> Path:
    """One request per row, written by the server's own capture encoder (``spacing`` seconds apart)."""
    payloads = []
    for i in range(table.rows):
        if csv:
            body = ",".join(text_of(table.columns[n][i]) for n in table.names).encode()
            payloads.append((T0 + i * spacing, "text/csv", body))
        else:
            body = orjson.dumps({n: table.columns[n][i] for n in table.names})
            payloads.append((T0 + i * spacing, "application/json", body))
    write_capture(root, payloads)
    return root


# -- the exact figures ----------------------------------------------------------------------------
def expected_type(values: list[Any]) -> str:
    present = [v for v in values if v is not None]
    if not present:
        return "Unknown"
    if any(isinstance(v, str) for v in present):
        return "String"
    if any(isinstance(v, float) for v in present):
        return "Fractional"
    return "Integral"


def expected_statistics(table: Table) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, values in table.columns.items():
        present = [v for v in values if v is not None]
        kind = expected_type(values)
        entry: dict[str, Any] = {"type": kind, "present": len(present), "missing": len(values) - len(present)}
        if kind in ("Integral", "Fractional"):
            x = np.array(present, dtype=np.float64)
            entry |= {
                "values": np.sort(x),
                "mean": float(x.mean()),
                "sum": float(x.sum()),
                "std": float(x.std()),  # Model Monitor's (Deequ's) std_dev is the population one
                "min": float(x.min()),
                "max": float(x.max()),
            }
        elif kind == "String":
            counts: dict[str, int] = {}
            for v in present:
                counts[text_of(v)] = counts.get(text_of(v), 0) + 1
            entry["counts"] = counts
        out[name] = entry
    return out


def assert_statistics_equal(document: dict[str, Any], table: Table, where: str) -> None:
    """``statistics.json`` against the exact figures of ``table``: every count, moment and extreme, the types,
    and every percentile of the KLL sketch within the sketch's stated rank error."""
    expected = expected_statistics(table)
    assert document["dataset"]["item_count"] == table.rows, where
    features = {f["name"]: f for f in document["features"]}
    assert set(features) == set(expected), where
    for name, want in expected.items():
        got = features[name]
        label = f"{where}: {name} ({table.kinds[name]})"
        assert got["inferred_type"] == want["type"], label
        stats = got.get("numerical_statistics") or got.get("string_statistics")
        assert stats["common"] == {"num_present": want["present"], "num_missing": want["missing"]}, label
        if want["type"] in ("Integral", "Fractional"):
            scale = max(1.0, abs(want["mean"]), want["std"])
            assert math.isclose(stats["mean"], want["mean"], rel_tol=1e-9, abs_tol=1e-9 * scale), label
            assert math.isclose(stats["sum"], want["sum"], rel_tol=1e-9, abs_tol=1e-9 * scale * want["present"]), label
            assert math.isclose(stats["std_dev"], want["std"], rel_tol=1e-6, abs_tol=1e-7 * scale), label
            assert (stats["min"], stats["max"]) == (want["min"], want["max"]), label
            assert_quantiles(stats["distribution"]["kll"]["sketch"], want["values"], label)
            buckets = stats["distribution"]["kll"]["buckets"]
            assert math.isclose(sum(b["count"] for b in buckets), want["present"], rel_tol=1e-6), label
        elif want["type"] == "String":
            buckets = stats["distribution"]["categorical"]["buckets"]
            assert {b["value"]: b["count"] for b in buckets} == want["counts"], label
            assert stats["distinct_count"] == len(want["counts"]), label


def assert_quantiles(sketch_data: dict[str, Any], exact_sorted: np.ndarray, label: str) -> None:
    """Each percentile the sketch gives has a rank in the exact data within ``rank_error`` of its probability."""
    n = len(exact_sorted)
    sketch = KLLSketch.from_dict(sketch_data)
    probabilities = np.linspace(0.0, 1.0, 101)
    tolerance = rank_error(n, sketch.k)
    for p, q in zip(probabilities, weighted_quantiles(*sketch.items(), probabilities), strict=True):
        below = np.searchsorted(exact_sorted, q, side="left") / n  # share strictly below the answer
        at_or_below = np.searchsorted(exact_sorted, q, side="right") / n
        assert below - tolerance <= p <= at_or_below + tolerance + 1e-12, f"{label}: p={p}, quantile {q}"
