"""Captured requests, their captured answers and ground truth, joined row by row (quality and bias drift).

    problems = Problems()
    labels = read_ground_truth(Path("labels.jsonl"), problems)
    joined = join_capture(Path("capture/"), labels, Span.parse("24h", None, None), problems, names=features,
                          inputs=True)
    joined.predicted, joined.actual      # one entry per labelled row
    joined.columns()                     # the request's features, one 1-D array per column, same rows

A record joins when its inference id (else its event id) has labels, its answer can be read and holds as
many predictions as there are labels (and, with ``inputs``, its request as many rows). The rest is counted
and reported in ``problems``. ``read_columns`` reads the columns of a data file (or of captured requests)
the same way, so a baseline and a check see the same types.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from shipyard.errors import MonitorError
from shipyard.monitor.answers import answer_rows, decode_values
from shipyard.monitor.payloads import decode_payloads
from shipyard.monitor.problems import Problems
from shipyard.monitor.sources import Span, is_capture, read_capture_envelopes, read_chunks

__all__ = [
    "Joined",
    "column_array",
    "column_kind",
    "conform",
    "join_capture",
    "label_array",
    "read_columns",
    "sample_rows",
    "table_columns",
]


@dataclass
class Joined:
    """Captured predictions matched with their labels (and, if asked, their requests' rows), row by row."""

    predicted: list[Any] = field(default_factory=list)
    actual: list[Any] = field(default_factory=list)
    moments: list[float] = field(default_factory=list)  # the capture time of each row
    captured: int = 0
    matched_records: int = 0
    used: set[str] = field(default_factory=set)
    inputs: list[pa.Table] = field(default_factory=list)  # the requests' rows, in the same order

    def columns(self) -> dict[str, np.ndarray]:
        """The joined requests' features, one array per column (see :func:`table_columns`)."""
        if not self.inputs:
            return {}
        return table_columns(pa.concat_tables(self.inputs, promote_options="permissive"))


def join_capture(
    source: Path,
    labels: dict[str, list[Any]],
    span: Span,
    problems: Problems,
    *,
    names: Sequence[str] = (),
    inputs: bool = False,
) -> Joined:
    """Each captured answer whose inference id (else event id) has labels, one row per label; with
    ``inputs`` also the request's rows (CSV rows carry no names: ``names`` are the features in order)."""
    joined = Joined()
    envelopes = read_capture_envelopes(source, since=span.start, until=span.end, problems=problems, answers=True)
    for envelope, times in envelopes:
        ids = envelope.column("inference_id").to_pylist()
        events = envelope.column("event_id").to_pylist()
        datas = envelope.column("out_data").to_pylist()
        encodings = envelope.column("out_encoding").to_pylist()
        types = envelope.column("out_type").to_pylist()
        joined.captured += len(ids)
        requests = _RequestRows(envelope, names, problems) if inputs else None
        for index, key in enumerate(ids):
            key = key or events[index]
            truth = labels.get(key) if key else None
            if truth is None:
                continue
            guesses = decode_values(datas[index], encodings[index] or "JSON", (types[index] or "").lower())
            if guesses is None:
                problems.add("answer", f"the captured answer of {key} could not be read; skipped")
                continue
            if len(guesses) != len(truth):
                problems.add("join", f"{key}: {len(guesses)} predictions but {len(truth)} labels; skipped")
                continue
            if requests is not None and not requests.keep(index, len(truth)):
                count = requests.count(index)
                shown = "no readable" if count is None else str(count)
                problems.add("join", f"{key}: {shown} request rows but {len(truth)} labels; skipped")
                continue
            joined.used.add(key)
            joined.matched_records += 1
            joined.predicted.extend(guesses)
            joined.actual.extend(truth)
            joined.moments.extend([float(times[index])] * len(truth))
        if requests is not None:
            joined.inputs.extend(requests.kept())
    return joined


class _RequestRows:
    """The decoded rows of each record of one block of capture records (decoded once, per content type)."""

    def __init__(self, envelope: pa.Table, names: Sequence[str], problems: Problems) -> None:
        self.tables: list[pa.Table] = []
        self.where: dict[int, tuple[int, int, int]] = {}  # record → (table, first row, rows)
        encodings = pc.fill_null(envelope.column("in_encoding"), "")
        types = pc.fill_null(envelope.column("in_type"), "application/json")
        kinds = pc.binary_join_element_wise(encodings, types, "|").to_pylist()
        for kind in dict.fromkeys(kinds):
            positions = [i for i, k in enumerate(kinds) if k == kind]
            part = envelope.take(pa.array(positions))
            encoding, _, content_type = kind.partition("|")
            answers = part.select(["out_data", "out_encoding", "out_type"])

            def counts(answers: pa.Table = answers) -> np.ndarray:
                return answer_rows(*(answers.column(c).combine_chunks() for c in answers.column_names))

            table, rows = decode_payloads(
                part.column("in_data").combine_chunks(), encoding, content_type, names, problems, counts
            )
            starts = np.concatenate([[0], np.cumsum(rows)])
            for at, position in enumerate(positions):
                if starts[at + 1] <= table.num_rows:
                    self.where[position] = (len(self.tables), int(starts[at]), int(rows[at]))
            self.tables.append(table)

        self.chosen: list[tuple[int, int, int]] = []

    def count(self, record: int) -> int | None:
        """How many rows the record's request holds (``None``: it could not be read)."""
        place = self.where.get(record)
        return None if place is None else place[2]

    def keep(self, record: int, rows: int) -> bool:
        """Keep the record's rows (in the order asked) if its request holds ``rows`` rows."""
        place = self.where.get(record)
        if place is None or place[2] != rows:
            return False
        self.chosen.append(place)
        return True

    def kept(self) -> list[pa.Table]:
        """The rows kept, in order: one ``take`` per run of records of the same content type."""
        out: list[pa.Table] = []
        run: list[np.ndarray] = []
        for position, (table, first, count) in enumerate(self.chosen):
            run.append(np.arange(first, first + count))
            if position + 1 == len(self.chosen) or self.chosen[position + 1][0] != table:
                out.append(self.tables[table].take(pa.array(np.concatenate(run))))
                run = []
        return out


# -- columns -------------------------------------------------------------------------------------
def read_columns(
    path: Path,
    *,
    columns: Sequence[str] | None = None,
    names: Sequence[str] = (),
    header: bool = True,
    span: Span | None = None,
    problems: Problems,
) -> dict[str, np.ndarray]:
    """The columns of a data file (or of captured requests), one 1-D array each (see :func:`table_columns`);
    ``columns``: only these (a missing one is an error)."""
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq") and not is_capture(path):
        table = _parquet_columns(path, columns)
    else:
        start, end = (span.start, span.end) if span is not None else (None, None)
        chunks = [
            c.table for c in read_chunks(path, names=names, since=start, until=end, header=header, problems=problems)
        ]
        if not chunks:
            raise MonitorError(f"{path}: no rows")
        table = pa.concat_tables(chunks, promote_options="permissive")
    found = table_columns(table)
    if columns is not None:
        missing = [c for c in columns if c not in found]
        if missing:
            raise MonitorError(f"{path} has no column {', '.join(missing)} (it has {', '.join(list(found)[:20])})")
        return {c: found[c] for c in columns}
    return found


def sample_rows(
    path: Path,
    features: Sequence[str],
    limit: int,
    *,
    seed: int = 0,
    header: bool = True,
    span: Span | None = None,
    problems: Problems,
) -> tuple[np.ndarray, int]:
    """A seeded uniform sample of at most ``limit`` rows of ``features`` (a float matrix, in the source's
    order), read in one streaming pass that holds no more than ``limit`` rows; and how many rows there were.

    Each row gets a random key; the ``limit`` smallest keys are kept (the same rows for the same seed).
    """
    rng = np.random.default_rng(seed)
    kept = np.empty((0, len(features)))
    keys = np.empty(0)
    order = np.empty(0, dtype=np.int64)
    seen = 0
    start, end = (span.start, span.end) if span is not None else (None, None)
    if path.suffix.lower() in (".parquet", ".pq") and not is_capture(path):
        # Parquet comes a few columns at a time from read_chunks: take the features' columns whole
        tables: Iterator[pa.Table] = iter([_parquet_columns(path, features)])
    else:
        chunks = read_chunks(path, names=features, since=start, until=end, header=header, problems=problems)
        tables = (chunk.table for chunk in chunks)
    for table in tables:
        missing = [f for f in features if f not in table.column_names]
        if missing:
            raise MonitorError(f"{path}: no column {', '.join(missing[:5])} (the features are {', '.join(features)})")
        try:
            rows = np.column_stack([column_array(table.column(f)).astype(np.float64) for f in features])
        except (TypeError, ValueError) as exc:
            raise MonitorError(f"{path}: SHAP values need numeric features ({exc})") from None
        chunk_keys = rng.random(len(rows))
        kept, keys = np.concatenate([kept, rows]), np.concatenate([keys, chunk_keys])
        order = np.concatenate([order, np.arange(seen, seen + len(rows))])
        seen += len(rows)
        if len(keys) > limit:
            best = np.argpartition(keys, limit - 1)[:limit]
            kept, keys, order = kept[best], keys[best], order[best]
    if not seen:
        raise MonitorError(f"{path}: no rows to explain")
    back = np.argsort(order)
    return kept[back], seen


def _parquet_columns(path: Path, columns: Sequence[str] | None) -> pa.Table:
    try:
        return pq.read_table(path, columns=list(columns) if columns is not None else None)
    except (pa.ArrowInvalid, OSError, KeyError) as exc:
        raise MonitorError(f"{path}: cannot read {list(columns or [])} ({exc})") from None


def table_columns(table: pa.Table) -> dict[str, np.ndarray]:
    """One array per column: int64 for whole numbers without gaps, float64 (NaN: missing) for other
    numbers, object (None: missing) for the rest."""
    return {name: column_array(table.column(name)) for name in table.column_names}


def column_array(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    kind = column.type
    if pa.types.is_boolean(kind) and not column.null_count:
        return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.int64)
    if pa.types.is_integer(kind):
        if column.null_count:
            return np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
        return np.asarray(column.to_numpy(zero_copy_only=False), dtype=np.int64)
    if pa.types.is_floating(kind):
        return np.asarray(pc.fill_null(pc.cast(column, pa.float64()), np.nan).to_numpy(zero_copy_only=False))
    values = column.to_pylist()
    return np.asarray([None if v is None else str(v) for v in values], dtype=object)


def column_kind(values: np.ndarray) -> str:
    """``integer``, ``float`` or ``text``: what :func:`table_columns` made of a column."""
    if values.dtype.kind in "iub":
        return "integer"
    return "float" if values.dtype.kind == "f" else "text"


def conform(values: np.ndarray, kind: str) -> np.ndarray:
    """``values`` as the ``kind`` of column a baseline had, where they can be (so that a facet read as text
    from one source and as numbers from another is grouped the same way); as they are otherwise."""
    if column_kind(values) == kind:
        return values
    if kind == "text":
        flat = values.tolist()
        return np.asarray([None if _missing(v) else _text(v) for v in flat], dtype=object)
    try:
        numbers = np.asarray([np.nan if _missing(v) else float(v) for v in values.tolist()], dtype=np.float64)
    except (TypeError, ValueError):
        return values
    if kind == "integer" and not np.isnan(numbers).any() and np.all(numbers == np.round(numbers)):
        return numbers.astype(np.int64)
    return numbers


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _text(value: Any) -> str:
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def label_array(values: Sequence[Any]) -> np.ndarray:
    """Labels or predictions as one array: int64 when every value is a whole number (``1.0`` too, so a label
    written ``1`` and a prediction written ``1.0`` are the same class), float64 for other numbers, else text.
    A row of scores is its positive-class score (two scores) or the index of its largest (more)."""
    flat = [_score(v) for v in values]
    numbers = [v for v in flat if v is not None]
    if all(isinstance(v, int | float) and not isinstance(v, bool) for v in numbers):
        array = np.asarray([np.nan if v is None else float(v) for v in flat], dtype=np.float64)
        if not np.isnan(array).any() and np.all(array == np.round(array)):
            return array.astype(np.int64)
        return array
    return np.asarray([None if v is None else str(v) for v in flat], dtype=object)


def _score(value: Any) -> Any:
    if isinstance(value, list):
        if len(value) == 2 and all(isinstance(v, int | float) for v in value):
            return value[1]
        return int(np.argmax(value)) if value else None
    if isinstance(value, bool):
        return int(value)
    return value
