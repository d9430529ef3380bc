"""Turn captured request payloads (a column of strings) into a table of feature rows, without a loop per row.

The common cases are vectorised with Arrow: CSV payloads are joined into one CSV text and read by Arrow's
multithreaded CSV reader; JSON payloads are wrapped as ``{"d": PAYLOAD}`` lines and read by Arrow's JSON
reader, whose inferred type says which shape the payloads have (rows, one row, ``{"instances": …}``,
records, one record). Payloads Arrow cannot read as one batch (mixed shapes, base64) go through a
per-record fallback with orjson, which is slower but reads everything the server itself accepts.

Every function returns the feature table and the number of rows each payload held (to spread the
payload's time over its rows).

One shape is ambiguous: a flat list of N numbers or strings (``[1.0, 2.0, 5.0]``, or TF Serving's
``{"instances": [1.0, 2.0, 5.0]}``) is one row of N features to a model that takes N features, and N rows
of one feature to a model that takes one. The captured answer says which: N predictions mean N rows, one
prediction means one row. When the answer holds neither (none captured, unreadable, another count), the
baseline decides: N rows when it has exactly one feature, else one row. (A list of lists, of records, or
JSON Lines is never ambiguous.)
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson

from shipyard.monitor.problems import Problems

__all__ = ["csv_conversion", "decode_payloads", "positional_name"]

_WRAPPED_KEYS = ("instances", "inputs")

#: rows per captured answer, for each payload (``-1``: unknown); computed only when a payload is ambiguous
AnswerRows = Callable[[], np.ndarray]


def positional_name(index: int, names: Sequence[str]) -> str:
    """Feature ``index`` of a payload without names: the baseline's name there, else Model Monitor's ``_cN``."""
    return names[index] if index < len(names) else f"_c{index}"


def decode_payloads(
    data: pa.Array,
    encoding: str,
    content_type: str,
    names: Sequence[str],
    problems: Problems,
    answers: AnswerRows | None = None,
) -> tuple[pa.Table, np.ndarray]:
    """Feature rows from captured payloads that share one ``encoding`` and base ``content_type``.

    ``answers`` gives the number of rows each payload's captured answer holds (for the ambiguous shape).
    """
    base = content_type.partition(";")[0].strip().lower()
    if encoding == "BASE64":
        return _from_base64(data, base, names, problems, answers)
    if encoding == "CSV" or base == "text/csv":
        return _csv(data, names, problems)
    if base in ("application/jsonlines", "application/jsonl", "application/x-ndjson"):
        return _json_lines(data, names, problems)
    if encoding == "JSON" or base == "application/json":
        return _json(data, names, problems, answers)
    problems.add("content type", f"{len(data)} records with Content-Type {content_type!r} ({encoding}) were skipped")
    return pa.table({}), np.zeros(len(data), dtype=np.int64)


# -- CSV -----------------------------------------------------------------------------------------
def _csv(data: pa.Array, names: Sequence[str], problems: Problems) -> tuple[pa.Table, np.ndarray]:
    data = pc.fill_null(data, "") if data.null_count else data
    # One payload per line: Arrow's CSV reader skips the blank lines a payload's own trailing newline makes.
    buffer = _joined(pc.binary_join_element_wise(data, pa.scalar(""), "\n"))
    nonempty = np.asarray(pc.greater(pc.binary_length(data), 0).to_numpy(zero_copy_only=False), dtype=bool)
    if not len(buffer) or not nonempty.any():
        return pa.table({}), np.zeros(len(data), dtype=np.int64)
    skipped = 0

    def invalid(row: Any) -> str:
        nonlocal skipped
        skipped += 1
        return "skip"

    def read(types: dict[str, pa.DataType] | None) -> pa.Table:
        return pacsv.read_csv(
            pa.BufferReader(buffer),
            read_options=pacsv.ReadOptions(autogenerate_column_names=True, block_size=max(1 << 20, len(buffer) // 4)),
            parse_options=pacsv.ParseOptions(invalid_row_handler=invalid),
            convert_options=csv_conversion(types or {}),
        )

    first_line = bytes(buffer[: min(len(buffer), 1 << 16)]).lstrip(b"\r\n").split(b"\n", 1)[0]
    width = first_line.count(b",") + 1
    # Arrow infers each column's type over all the payloads (int64 for whole numbers as written, float64
    # when one has a fraction, text when one is not a number): what Model Monitor's types are made from.
    try:
        table = read(None)
    except pa.ArrowInvalid:
        skipped = 0
        table = read({f"f{i}": pa.string() for i in range(width)})
    counts = nonempty.astype(np.int64)
    if table.num_rows != int(counts.sum()):  # some payloads hold several rows: count them (one more scan)
        text = pc.utf8_rtrim(data, characters="\r\n")
        counts = np.array(pc.add(pc.count_substring(text, "\n"), 1).to_numpy(zero_copy_only=False), dtype=np.int64)
        counts[~nonempty] = 0
    if skipped:
        problems.add(
            "csv rows", f"{skipped} CSV rows had a different number of fields than the first row ({width}); skipped"
        )
    if int(counts.sum()) != table.num_rows:
        counts = _fit_counts(counts, table.num_rows)
    renamed = [positional_name(i, names) for i in range(table.num_columns)]
    return table.rename_columns(renamed), counts


def csv_conversion(types: dict[str, pa.DataType]) -> pacsv.ConvertOptions:
    """How CSV cells become values: only an empty cell is missing, as Spark's CSV reader (Model Monitor's)
    reads it; ``NA``, ``null`` and the like are text."""
    return pacsv.ConvertOptions(column_types=types, null_values=[""], strings_can_be_null=True)


def _joined(array: pa.Array | pa.ChunkedArray) -> pa.Buffer:
    """The bytes of a string array's values, end to end (no copy for a single chunk)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    _, offsets_buffer, values = array.buffers()
    width = np.int64 if pa.types.is_large_string(array.type) else np.int32
    offsets = np.frombuffer(offsets_buffer, dtype=width)[array.offset : array.offset + len(array) + 1]
    start, end = int(offsets[0]), int(offsets[-1])
    assert values is not None
    return values.slice(start, end - start)


def _fit_counts(counts: np.ndarray, rows: int) -> np.ndarray:
    """Row counts per record trimmed so they add up to ``rows`` (after a reader skipped bad rows)."""
    cumulative = np.minimum(np.cumsum(counts), rows)
    return np.diff(np.concatenate([[0], cumulative])).astype(np.int64)


# -- JSON ----------------------------------------------------------------------------------------
def _json(
    data: pa.Array, names: Sequence[str], problems: Problems, answers: AnswerRows | None
) -> tuple[pa.Table, np.ndarray]:
    text = pc.replace_substring(pc.fill_null(data, "null"), "\n", " ")  # JSON whitespace; keeps one payload per line
    wrapped = _joined(pc.binary_join_element_wise(pa.scalar('{"d":'), text, pa.scalar("}\n"), ""))
    try:
        column = pajson.read_json(pa.BufferReader(wrapped)).column("d").combine_chunks()
        return _shaped(column, names, answers)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, _Irregular):
        return _json_fallback(data.to_pylist(), names, problems, answers)


class _Irregular(Exception):
    """The payloads share a type but not a shape (rows of different lengths): take the slow path."""


def _shaped(column: pa.Array, names: Sequence[str], answers: AnswerRows | None) -> tuple[pa.Table, np.ndarray]:
    kind = column.type
    if pa.types.is_struct(kind):
        fields = [kind.field(i).name for i in range(kind.num_fields)]
        for key in _WRAPPED_KEYS:
            if fields == [key]:
                return _shaped(column.field(key), names, answers)
        return _records(column, np.ones(len(column), dtype=np.int64))
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        counts = np.asarray(pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False), np.int64)
        inner = kind.value_type
        if pa.types.is_struct(inner):
            return _records(pc.list_flatten(column), counts)
        if pa.types.is_list(inner) or pa.types.is_large_list(inner):
            rows = pc.list_flatten(column)
            return _matrix(rows, names), counts
        # a flat list per payload: one row of N features, or N rows of one feature (see the module doc)
        as_rows = _as_rows(counts, _rows_or_unknown(answers, len(column)), len(names))
        if as_rows.all():
            return pa.table({positional_name(0, names): pc.list_flatten(column)}), counts
        if as_rows.any():
            raise _Irregular
        return _matrix(column, names), np.ones(len(column), dtype=np.int64)
    # a scalar per payload: a one-feature model
    return pa.table({positional_name(0, names): column}), np.ones(len(column), dtype=np.int64)


def _records(structs: pa.Array, counts: np.ndarray) -> tuple[pa.Table, np.ndarray]:
    kind = structs.type
    columns = {kind.field(i).name: structs.field(i) for i in range(kind.num_fields)}
    return pa.table(columns), counts


def _matrix(rows: pa.Array, names: Sequence[str]) -> pa.Table:
    lengths = pc.list_value_length(rows)
    low, high = pc.min_max(lengths).values()
    if low.as_py() != high.as_py():
        raise _Irregular
    width = int(high.as_py() or 0)
    values = pc.list_flatten(rows)
    if not width:
        return pa.table({})
    if (pa.types.is_floating(values.type) or pa.types.is_integer(values.type)) and not values.null_count:
        # whole numbers stay int64: Model Monitor's Integral is how the values were written
        matrix = values.to_numpy(zero_copy_only=False).reshape(-1, width)
        return pa.table({positional_name(i, names): matrix[:, i] for i in range(width)})
    as_list = values.to_pylist()  # rows of text or mixed cells: rare, and small
    return pa.table({positional_name(i, names): _array(as_list[i::width]) for i in range(width)})


def _json_lines(data: pa.Array, names: Sequence[str], problems: Problems) -> tuple[pa.Table, np.ndarray]:
    text = pc.utf8_rtrim(pc.fill_null(data, ""), characters="\r\n")
    lines = pc.split_pattern(text, "\n")
    counts = np.asarray(pc.list_value_length(lines).to_numpy(zero_copy_only=False), dtype=np.int64)
    flat = pc.list_flatten(lines)
    wrapped = _joined(pc.binary_join_element_wise(pa.scalar('{"d":'), flat, pa.scalar("}\n"), ""))
    try:
        column = pajson.read_json(pa.BufferReader(wrapped)).column("d").combine_chunks()
        if pa.types.is_struct(column.type):
            return _records(column, counts)[0], counts
        if pa.types.is_list(column.type):
            return _matrix(column, names), counts
        return pa.table({positional_name(0, names): column}), counts
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, _Irregular):
        payloads = [
            "[" + ",".join(line for line in (p or "").splitlines() if line.strip()) + "]" for p in data.to_pylist()
        ]
        return _json_fallback(payloads, names, problems)


def _as_rows(lengths: np.ndarray, answers: np.ndarray, width: int) -> np.ndarray:
    """Which flat lists are N rows of one feature: their answers hold N predictions (N > 1), or, when the
    answer holds neither N nor one, the baseline has a single feature."""
    undecided = (answers != lengths) & (answers != 1)
    return np.asarray((lengths > 1) & ((answers == lengths) | (undecided & (width == 1))), dtype=bool)


def _rows_or_unknown(answers: AnswerRows | None, n: int) -> np.ndarray:
    return answers() if answers is not None else np.full(n, -1, dtype=np.int64)


def _json_fallback(
    payloads: list[Any], names: Sequence[str], problems: Problems, answers: AnswerRows | None = None
) -> tuple[pa.Table, np.ndarray]:
    """Per-record parsing for payloads Arrow cannot read as one batch."""
    columns: dict[str, list[Any]] = {}
    counts = np.zeros(len(payloads), dtype=np.int64)
    total = 0
    for index, payload in enumerate(payloads):
        try:
            value = orjson.loads(payload) if isinstance(payload, str | bytes) else payload
        except orjson.JSONDecodeError as exc:
            problems.add("payload", f"a JSON payload could not be parsed ({exc}); skipped")
            continue
        rows = _rows_of(value, functools.partial(_answer_at, answers, index), len(names))
        if rows is None:
            problems.add("payload", f"a JSON payload has an unsupported shape ({type(value).__name__}); skipped")
            continue
        for row in rows:
            items = (
                row.items() if isinstance(row, dict) else ((positional_name(i, names), v) for i, v in enumerate(row))
            )
            for key, cell in items:
                column = columns.get(key)
                if column is None:
                    column = columns[key] = [None] * total
                column.append(cell)
            total += 1
            for column in columns.values():
                if len(column) < total:
                    column.append(None)
        counts[index] = len(rows)
    return pa.table({key: _array(values) for key, values in columns.items()}), counts


def _answer_at(answers: AnswerRows | None, index: int) -> int:
    return -1 if answers is None else int(answers()[index])


def _rows_of(value: Any, answer: Callable[[], int], width: int) -> list[Any] | None:
    """The rows a parsed payload holds; ``answer`` gives its answer's row count (asked only if ambiguous)."""
    if isinstance(value, dict):
        for key in _WRAPPED_KEYS:
            if key in value and len(value) == 1:
                return _rows_of(value[key], answer, width)
        return [value]
    if isinstance(value, list):
        if not value:
            return []
        if all(isinstance(row, list | dict) for row in value):
            return value
        if len(value) > 1 and _as_rows(np.array([len(value)]), np.array([answer()]), width)[0]:
            return [[cell] for cell in value]
        return [value]
    if isinstance(value, int | float | str | bool):
        return [[value]]
    return None


def _array(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed numbers and text: keep it as text, the check counts it
        return pa.array([None if v is None else str(v) for v in values], pa.string())


# -- base64 --------------------------------------------------------------------------------------
def _from_base64(
    data: pa.Array,
    base: str,
    names: Sequence[str],
    problems: Problems,
    answers: AnswerRows | None,
) -> tuple[pa.Table, np.ndarray]:
    raw: list[bytes | None] = []
    for value in data.to_pylist():
        try:
            raw.append(base64.b64decode(value or "", validate=True))
        except (binascii.Error, ValueError):
            problems.add("payload", "a BASE64 payload is not valid base64; skipped")
            raw.append(None)
    if base == "application/x-npy":
        return _npy(raw, names, problems)
    texts: list[str | None] = []
    for blob in raw:
        try:
            texts.append(None if blob is None else blob.decode("utf-8"))
        except UnicodeDecodeError:
            problems.add("payload", f"a {base} payload is not UTF-8 text; skipped")
            texts.append(None)
    array = pa.array(texts, pa.string())
    encoding = (
        "CSV" if base == "text/csv" else "JSON" if base.endswith(("json", "jsonl", "jsonlines", "ndjson")) else ""
    )
    if not encoding:
        problems.add("content type", f"{len(data)} records with Content-Type {base!r} cannot be read; skipped")
        return pa.table({}), np.zeros(len(data), dtype=np.int64)
    return decode_payloads(array, encoding, base, names, problems, answers)


def _npy(raw: list[bytes | None], names: Sequence[str], problems: Problems) -> tuple[pa.Table, np.ndarray]:
    blocks: list[np.ndarray] = []
    counts = np.zeros(len(raw), dtype=np.int64)
    for index, blob in enumerate(raw):
        if blob is None:
            continue
        try:
            array = np.load(io.BytesIO(blob), allow_pickle=False)
        except (ValueError, OSError) as exc:
            problems.add("payload", f"an NPY payload could not be read ({exc}); skipped")
            continue
        array = np.atleast_2d(array).reshape(len(np.atleast_2d(array)), -1)
        blocks.append(array.astype(np.float64))
        counts[index] = len(array)
    if not blocks or len({b.shape[1] for b in blocks}) != 1:
        if blocks:
            problems.add("payload", "NPY payloads have different widths; skipped")
        return pa.table({}), np.zeros(len(raw), dtype=np.int64)
    matrix = np.concatenate(blocks)
    return pa.table({positional_name(i, names): matrix[:, i] for i in range(matrix.shape[1])}), counts
