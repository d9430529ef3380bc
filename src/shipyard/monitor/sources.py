"""Read what the monitor compares: training data (CSV, Parquet, JSON Lines) and captured traffic, in chunks.

Everything streams: Parquet by row groups/batches, CSV with Arrow's streaming reader, JSON Lines (tabular
or SageMaker capture records) in blocks of whole lines parsed by Arrow's JSON reader. A block Arrow
refuses (a corrupt line, bytes that are not UTF-8) is re-read line by line with orjson so the bad lines
are named (``file:line``) in :class:`Problems` and the rest of the block still counts.

Capture directories are laid out ``YYYY/MM/DD/HH/*.jsonl``; with ``since`` the hours before it are not even
opened, and records are filtered by ``eventMetadata.inferenceTime``.
"""

from __future__ import annotations

import calendar
import functools
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq

from shipyard.errors import MonitorError
from shipyard.monitor.answers import answer_rows
from shipyard.monitor.payloads import csv_conversion, decode_payloads, positional_name
from shipyard.monitor.problems import ArgumentError, Problems

__all__ = [
    "CAPTURE_SCHEMA",
    "INPUT_SCHEMA",
    "Chunk",
    "Span",
    "capture_files",
    "coalesced",
    "is_capture",
    "iso_time",
    "json_values",
    "parse_duration",
    "parse_since",
    "prefetched",
    "read_capture_envelopes",
    "read_chunks",
]

# read sizes (module settings, so tests can make them small enough to split a small file many ways)
BATCH_ROWS = 65_536
BLOCK_BYTES = 8 << 20
CSV_BLOCK_BYTES = 8 << 20
_COLUMN_GROUP_BYTES = 16 << 20
_HOUR_PATH = re.compile(r"(\d{4})/(\d{2})/(\d{2})/(\d{2})(?:/|$)")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

_PAYLOAD = pa.struct(
    [("observedContentType", pa.string()), ("mode", pa.string()), ("data", pa.string()), ("encoding", pa.string())]
)
CAPTURE_SCHEMA = pa.schema(
    [
        ("captureData", pa.struct([("endpointInput", _PAYLOAD), ("endpointOutput", _PAYLOAD)])),
        (
            "eventMetadata",
            pa.struct([("eventId", pa.string()), ("inferenceId", pa.string()), ("inferenceTime", pa.string())]),
        ),
    ]
)
# what a drift check needs: the requests, their times, and the answers' data (how many rows an ambiguous
# request held, see payloads.py); Arrow's parser skips the rest without building it
_ANSWER = pa.struct([("observedContentType", pa.string()), ("data", pa.string()), ("encoding", pa.string())])
INPUT_SCHEMA = pa.schema(
    [
        ("captureData", pa.struct([("endpointInput", _PAYLOAD), ("endpointOutput", _ANSWER)])),
        ("eventMetadata", pa.struct([("inferenceTime", pa.string())])),
    ]
)
_SHORT_NAMES = {
    "captureData.endpointInput.observedContentType": "in_type",
    "captureData.endpointInput.mode": "in_mode",
    "captureData.endpointInput.data": "in_data",
    "captureData.endpointInput.encoding": "in_encoding",
    "captureData.endpointOutput.observedContentType": "out_type",
    "captureData.endpointOutput.mode": "out_mode",
    "captureData.endpointOutput.data": "out_data",
    "captureData.endpointOutput.encoding": "out_encoding",
    "eventMetadata.eventId": "event_id",
    "eventMetadata.inferenceId": "inference_id",
    "eventMetadata.inferenceTime": "time",
}


@dataclass
class Chunk:
    """Feature rows, and for captured traffic the time (epoch seconds) of each row."""

    table: pa.Table
    times: np.ndarray | None = None
    #: more columns of rows already counted (Parquet is read a few columns at a time, to bound memory)
    continuation: bool = False
    #: every column these rows have, when the source delivers some of them in other chunks (Parquet's
    #: column groups): a column named here but absent from ``table`` is not missing, it comes elsewhere
    columns: frozenset[str] | None = None


# -- time ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Span:
    """The period a check or a quality run reads (epoch seconds; ``None``: open) and its window width."""

    start: float | None
    end: float | None
    window_s: float | None

    @classmethod
    def parse(cls, since: str | None, until: str | None, window: str | None, now: float | None = None) -> Span:
        return cls(
            parse_since(since, now),
            parse_since(until, now, argument="until"),
            parse_duration(window) if window else None,
        )


def iso_time(seconds: float | None) -> str | None:
    """Epoch seconds as ``2026-11-23T10:00:00Z`` (``None`` for none, or a time that is not finite)."""
    if seconds is None or not math.isfinite(seconds):
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def parse_since(text: str | None, now: float | None = None, *, argument: str = "since") -> float | None:
    """``24h``, ``30m``, ``7d`` (back from now) or an ISO 8601 time, as epoch seconds."""
    if not text:
        return None
    now = time.time() if now is None else now
    match = _DURATION.match(text)
    if match:
        return now - float(match.group(1)) * _UNITS[match.group(2)]
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ArgumentError(
            argument, repr(text), "give a duration (24h, 30m, 7d) or an ISO time (2026-11-23T10:00Z)"
        ) from None
    if moment.tzinfo is None:
        return float(calendar.timegm(moment.timetuple()))
    return moment.timestamp()


def parse_duration(text: str, *, argument: str = "window") -> float:
    match = _DURATION.match(text)
    if not match:
        raise ArgumentError(argument, repr(text), "not a duration: use a number and s, m, h, d or w (1h, 30m, 1d)")
    return float(match.group(1)) * _UNITS[match.group(2)]


# -- what a path holds ---------------------------------------------------------------------------
def is_capture(path: Path) -> bool:
    """A directory (of capture files) or a JSON Lines file whose first record is a capture record."""
    if path.is_dir():
        return True
    if path.suffix.lower() not in (".jsonl", ".json", ".ndjson"):
        return False
    with path.open("rb") as stream:
        for line in stream:
            if line.strip():
                try:
                    first = orjson.loads(line)
                except orjson.JSONDecodeError:
                    return b'"captureData"' in line
                return isinstance(first, dict) and "captureData" in first
    return False


def capture_files(root: Path, since: float | None = None, until: float | None = None) -> list[Path]:
    """Capture files under ``root`` in time order, without the hours wholly outside [since, until)."""
    if root.is_file():
        return [root]
    if not root.exists():
        raise MonitorError(f"{root}: no such file or directory")
    selected = []
    for path in sorted(root.rglob("*.jsonl")):
        match = _HOUR_PATH.search(path.relative_to(root).as_posix())
        if match and (since is not None or until is not None):
            year, month, day, hour = (int(g) for g in match.groups())
            start = calendar.timegm((year, month, day, hour, 0, 0, 0, 0, 0))
            if (since is not None and start + 3600 <= since) or (until is not None and start >= until):
                continue
        selected.append(path)
    return selected


def coalesced(chunks: Iterator[Chunk], min_rows: int | None = None) -> Iterator[Chunk]:
    """Consecutive small chunks joined (no copy) into ones of at least ``min_rows``.

    Captured traffic is parsed in small blocks to bound memory (and Parquet's small row groups come as
    small batches), but profiling pays per chunk and feature, so it is fed fewer, larger chunks. Only chunks
    alike join: the same columns, and the same part of the rows (a Parquet column group joins only the next
    batch of the same group, which holds the next rows).
    """
    min_rows = BATCH_ROWS if min_rows is None else min_rows
    pending: list[Chunk] = []
    rows = 0

    def alike(a: Chunk, b: Chunk) -> bool:
        return a.continuation == b.continuation and a.columns == b.columns and a.table.schema == b.table.schema

    def flush() -> Chunk:
        first = pending[0]
        if len(pending) == 1:
            return first
        times = None
        if all(c.times is not None for c in pending):
            times = np.concatenate([c.times for c in pending if c.times is not None])
        joined = pa.concat_tables([c.table for c in pending])
        return Chunk(joined, times, continuation=first.continuation, columns=first.columns)

    for chunk in chunks:
        if pending and not alike(chunk, pending[0]):
            yield flush()
            pending, rows = [], 0
        pending.append(chunk)
        rows += chunk.table.num_rows
        if rows >= min_rows:
            yield flush()
            pending, rows = [], 0
    if pending:
        yield flush()


def prefetched(chunks: Iterator[Chunk], depth: int = 1) -> Iterator[Chunk]:
    """``chunks``, read one step ahead in a thread: Arrow parses the next block while numpy profiles this one."""
    import queue
    import threading

    done = object()
    slots: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for chunk in chunks:
                while not stop.is_set():
                    try:
                        slots.put(chunk, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(done)
        except BaseException as exc:  # handed to the consumer, raised there
            slots.put(exc)

    thread = threading.Thread(target=produce, name="shipyard-read", daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def read_chunks(
    path: Path,
    *,
    names: Sequence[str] = (),
    since: float | None = None,
    until: float | None = None,
    header: bool = True,
    text_columns: frozenset[str] = frozenset(),
    problems: Problems,
) -> Iterator[Chunk]:
    """Feature chunks from a data file or from captured traffic (a capture directory or file).

    ``text_columns`` are read as text where the file format has no types of its own (CSV: the cells as
    written, not as Arrow would convert them).
    """
    path = Path(path)
    if not path.exists():
        raise MonitorError(f"{path}: no such file or directory")
    if is_capture(path):
        for envelope, times in read_capture_envelopes(path, since=since, until=until, problems=problems):
            yield from _inputs(envelope, times, names, problems)
        return
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix.lower() == ".gz" else path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        yield from _parquet(path)
    elif suffix in (".csv", ".csv.gz"):
        yield from _csv(path, header, names, text_columns)
    elif suffix in (".jsonl", ".json", ".ndjson"):
        for block, offset in _line_blocks(path, problems):
            table = _json_block(block, offset, path, problems, None)
            if table.num_rows:
                yield Chunk(table)
    else:
        raise MonitorError(
            f"{path}: read .csv, .parquet or .jsonl files (or a capture directory), not {suffix or 'this'}"
        )


# -- tabular files -------------------------------------------------------------------------------
def _parquet(path: Path) -> Iterator[Chunk]:
    try:
        reader = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise MonitorError(f"{path}: not a readable Parquet file ({exc})") from None
    # Read a group of columns at a time, over every row group: a row group holds all its rows in memory,
    # so a file written with one 1 M-row group would otherwise cost 1 M × all columns at once.
    # Every chunk names all the file's columns, so a column of another group is not taken for a missing one.
    names = reader.schema_arrow.names
    everything = frozenset(names)
    largest = max((reader.metadata.row_group(i).num_rows for i in range(reader.num_row_groups)), default=0)
    per_group = max(1, (_COLUMN_GROUP_BYTES // 8) // max(1, largest))
    for first in range(0, len(names), per_group):
        columns = names[first : first + per_group]
        for batch in reader.iter_batches(batch_size=BATCH_ROWS, columns=columns):
            yield Chunk(pa.Table.from_batches([batch]), continuation=first > 0, columns=everything)


def _csv(path: Path, header: bool, names: Sequence[str], text_columns: frozenset[str]) -> Iterator[Chunk]:
    read = pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES, autogenerate_column_names=not header)
    text = _text_types(path, read, header, names, text_columns)
    done = 0
    try:
        for batch in pacsv.open_csv(path, read_options=read, convert_options=csv_conversion(text)):
            done += batch.num_rows
            yield Chunk(_named(pa.Table.from_batches([batch]), header, names))
        return
    except pa.ArrowInvalid as exc:
        if "CSV parse error" in str(exc) or "Empty CSV" in str(exc):
            raise MonitorError(f"{path}: not a readable CSV file ({exc})") from None
    # A later block did not fit the types Arrow inferred from the first one (text in a number column, or
    # 2.5 after a block of whole numbers): read the rest as text, skipping the rows already read, and let
    # the profiles read the numbers (and count the mismatches) from the text.
    first = next(iter(pacsv.open_csv(path, read_options=read)))
    everything = csv_conversion({name: pa.string() for name in first.schema.names})
    skip = done
    for batch in pacsv.open_csv(path, read_options=read, convert_options=everything):
        if skip >= batch.num_rows:
            skip -= batch.num_rows
            continue
        table = pa.Table.from_batches([batch]).slice(skip)
        skip = 0
        yield Chunk(_named(table, header, names))


def _text_types(
    path: Path, read: pacsv.ReadOptions, header: bool, names: Sequence[str], text_columns: frozenset[str]
) -> dict[str, pa.DataType]:
    """Arrow's column names of ``text_columns`` (``f0``, ``f1``… in a file without a header), as strings."""
    if not text_columns:
        return {}
    with pacsv.open_csv(path, read_options=read) as reader:
        raw = reader.schema.names
    renamed = raw if header else [positional_name(i, names) for i in range(len(raw))]
    return {arrow: pa.string() for arrow, ours in zip(raw, renamed, strict=True) if ours in text_columns}


def _named(table: pa.Table, header: bool, names: Sequence[str]) -> pa.Table:
    """Without a header, columns are named by position: the baseline's names, else Model Monitor's ``_cN``."""
    if header:
        return table
    return table.rename_columns([positional_name(i, names) for i in range(table.num_columns)])


def _line_blocks(path: Path, problems: Problems) -> Iterator[tuple[bytes, int]]:
    """Blocks of whole lines (about 32 MiB) and each block's byte offset in the file."""
    with path.open("rb") as stream:
        head = stream.read(4)
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            problems.add(
                "encoding",
                f"{path}: UTF-16 text; JSON Lines must be UTF-8 (re-encode it: iconv -f UTF-16 -t UTF-8); skipped",
            )
            return
        carry = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
        offset = len(head) - len(carry)
        while True:
            data = stream.read(BLOCK_BYTES)
            if not data:
                break
            data = carry + data
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                carry = data
                continue
            block, carry = data[:cut], data[cut:]
            yield block, offset
            offset += len(block)
        if carry.strip():
            yield carry + b"\n", offset


def _line_number(path: Path, offset: int) -> int:
    """The number of the line starting at byte ``offset`` (counted only when a problem must be named)."""
    count = 1
    with path.open("rb") as stream:
        while offset > 0:
            data = stream.read(min(offset, 1 << 24))
            if not data:
                break
            count += data.count(b"\n")
            offset -= len(data)
    return count


def json_values(lines: Iterable[tuple[str, bytes]], problems: Problems, kind: str) -> Iterator[tuple[str, Any]]:
    """Each ``(where, line)`` that is JSON, parsed; a line that is not is reported as a problem of ``kind``."""
    for where, raw in lines:
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            problems.add(kind, f"{where}: not valid JSON ({exc}); line skipped")
            continue
        yield where, value


def _utf8_lines(block: bytes, path: Path, first_line: int, problems: Problems) -> Iterator[tuple[str, bytes]]:
    """The block's lines that are not blank, as ``(path:line, line)``; one that is not UTF-8 is reported."""
    for index, raw in enumerate(block.split(b"\n")):
        if not raw.strip():
            continue
        where = f"{path}:{first_line + index}"
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.add("encoding", f"{where}: not UTF-8 text (byte {exc.start}); line skipped")
            continue
        yield where, raw


def _json_block(block: bytes, offset: int, path: Path, problems: Problems, schema: pa.Schema | None) -> pa.Table:
    """Arrow reads the block; if it refuses, name the bad lines and read the good ones."""
    parse = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore" if schema else "infer")
    read = pajson.ReadOptions(block_size=max(4 << 20, min(len(block) + 1, 16 << 20)))
    try:
        return pajson.read_json(pa.BufferReader(block), read_options=read, parse_options=parse)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    good: list[Any] = []
    for where, value in json_values(_utf8_lines(block, path, _line_number(path, offset), problems), problems, "json"):
        if not isinstance(value, dict):
            problems.add("json", f"{where}: a JSON {type(value).__name__}, not an object; line skipped")
            continue
        if schema is not None and not isinstance(value.get("captureData"), dict):
            problems.add("json", f"{where}: not a capture record (no captureData); line skipped")
            continue
        good.append(value)
    if not good:
        return pa.table({}) if schema is None else schema.empty_table()
    if schema is not None:
        return _envelopes_from_python(good, schema)
    try:
        return pa.Table.from_pylist(good)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        from shipyard.monitor.payloads import _array

        keys = list(dict.fromkeys(key for row in good for key in row))
        return pa.table({key: _array([row.get(key) for row in good]) for key in keys})


def _envelopes_from_python(records: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    def text(value: Any) -> str | None:
        return value if isinstance(value, str) or value is None else orjson.dumps(value).decode()

    def payload(record: dict[str, Any], side: str) -> dict[str, Any]:
        part = record.get("captureData", {}).get(side) or {}
        return {key: text(part.get(key)) for key in ("observedContentType", "mode", "data", "encoding")}

    rows = [
        {
            "captureData": {
                "endpointInput": payload(r, "endpointInput"),
                "endpointOutput": payload(r, "endpointOutput"),
            },
            "eventMetadata": {
                k: text((r.get("eventMetadata") or {}).get(k)) for k in ("eventId", "inferenceId", "inferenceTime")
            },
        }
        for r in records
    ]
    full = pa.Table.from_pylist(rows, schema=CAPTURE_SCHEMA).flatten().flatten()
    wanted = schema.empty_table().flatten().flatten().column_names
    return _nest(full.select(wanted), schema)


def _nest(flat: pa.Table, schema: pa.Schema) -> pa.Table:
    """A flattened table back in ``schema``'s nesting (so both parse paths return the same shape)."""
    columns = {name: flat.column(name).combine_chunks() for name in flat.column_names}

    def build(prefix: str, kind: pa.DataType) -> pa.Array:
        if pa.types.is_struct(kind):
            children = [build(f"{prefix}.{kind.field(i).name}", kind.field(i).type) for i in range(kind.num_fields)]
            return pa.StructArray.from_arrays(children, fields=list(kind))
        return columns[prefix]

    return pa.table({field.name: build(field.name, field.type) for field in schema})


# -- captured traffic ----------------------------------------------------------------------------
def read_capture_envelopes(
    path: Path, *, since: float | None, until: float | None, problems: Problems, answers: bool = False
) -> Iterator[tuple[pa.Table, np.ndarray]]:
    """Capture records as flat tables (``in_data``, ``time``, … see :data:`_SHORT_NAMES`) and their times.

    Only records in [since, until) are returned. The requests (``in_*``), their times and the answers' data,
    type and encoding (``out_data``, ``out_type``, ``out_encoding``: a drift check counts an ambiguous
    request's rows by its answer) are always read (:data:`INPUT_SCHEMA`); ``answers`` adds the answers' mode
    and the event and inference ids (:data:`CAPTURE_SCHEMA`).
    """
    schema = CAPTURE_SCHEMA if answers else INPUT_SCHEMA
    for file in capture_files(path, since, until):
        for block, offset in _line_blocks(file, problems):
            table = _json_block(block, offset, file, problems, schema)
            del block
            if not table.num_rows:
                continue
            flat = table.flatten().flatten()
            flat = flat.rename_columns([_SHORT_NAMES[name] for name in flat.column_names])
            times = _epoch_seconds(flat.column("time"), problems)
            keep = np.ones(len(times), dtype=bool)
            if since is not None:
                keep &= times >= since
            if until is not None:
                keep &= times < until
            if since is not None or until is not None:
                unknown = int(np.count_nonzero(np.isnan(times)))
                if unknown:
                    problems.add(
                        "time", f"{file}: {unknown} records without a readable inferenceTime left out of the window"
                    )
            if not keep.all():
                flat, times = flat.filter(pa.array(keep)), times[keep]
            if flat.num_rows:
                yield flat, times


def _epoch_seconds(column: pa.ChunkedArray, problems: Problems) -> np.ndarray:
    try:
        stamps = pc.cast(column, pa.timestamp("ms", tz="UTC"))
        values = pc.cast(stamps, pa.int64()).to_numpy(zero_copy_only=False)
        nulls = np.asarray(pc.is_null(stamps).to_numpy(zero_copy_only=False), dtype=bool)
        seconds: np.ndarray = values.astype(np.float64) / 1000.0
        seconds[nulls] = np.nan
        return seconds
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    out = np.full(len(column), np.nan)
    for index, value in enumerate(column.to_pylist()):
        if value is None:
            continue
        try:
            out[index] = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            problems.add("time", f"inferenceTime {value!r} is not an ISO 8601 time")
    return out


def _inputs(envelope: pa.Table, times: np.ndarray, names: Sequence[str], problems: Problems) -> Iterator[Chunk]:
    encodings = envelope.column("in_encoding")
    types = pc.fill_null(envelope.column("in_type"), "application/json")
    kinds = pc.unique(pc.binary_join_element_wise(pc.fill_null(encodings, ""), types, "|"))
    for kind in kinds.to_pylist():
        encoding, _, content_type = kind.partition("|")
        if len(kinds) == 1:
            part, part_times = envelope, times
        else:
            mask = pc.and_(pc.equal(pc.fill_null(encodings, ""), encoding), pc.equal(types, content_type))
            part, part_times = envelope.filter(mask), times[np.asarray(mask.to_numpy(zero_copy_only=False), bool)]
        data = part.column("in_data").combine_chunks()
        table, counts = decode_payloads(data, encoding, content_type, names, problems, _answers_of(part))
        if table.num_rows:
            row_times = np.repeat(part_times, counts)[: table.num_rows]
            yield Chunk(table, row_times)


def _answers_of(envelope: pa.Table) -> Callable[[], np.ndarray]:
    """Rows per captured answer, read (once) only if a payload's shape needs it."""

    def rows() -> np.ndarray:
        if "out_data" not in envelope.column_names:
            return np.full(envelope.num_rows, -1, dtype=np.int64)
        return answer_rows(*(envelope.column(c).combine_chunks() for c in ("out_data", "out_encoding", "out_type")))

    return functools.cache(rows)
