"""A data file (or captured requests) as named 1-D numpy columns, and a model's outputs as one prediction a row.

    table = read_table(Path("train.parquet"), ["gender", "y"])       # .csv, .parquet or .jsonl, with pyarrow
    columns = table_columns(table)                                    # {"gender": object array, "y": int64 array}
    columns = read_columns(Path("capture/"), names=features, problems=problems, booleans="int")
    rows = feature_matrix(columns, ["a", "b"], where)                 # one float matrix (rows × features)
    predicted = predicted_labels(outputs)                             # one label or score a row

:func:`column_array` is the one pyarrow → numpy conversion, and Clarify's typing rules
(:mod:`shipyard.monitor.groups`) read the dtypes it gives: integers without gaps as integers, integers with
gaps and other numbers as float64 (NaN: missing), booleans as bool (categorical, matching ``true``/``1``), the
rest as an object array (None: missing; text as ``str``, booleans with gaps as ``True``/``False``). Data and
bias drift compare a baseline with traffic whose booleans may come as ``0``/``1`` (CSV rows), so they read
with ``booleans="int"``: a boolean column is int64 there, typed ``integer`` as the baseline's config says.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shipyard.errors import MonitorError
from shipyard.monitor.problems import Problems
from shipyard.monitor.sources import Span, is_capture, read_chunks

__all__ = [
    "Booleans",
    "column_array",
    "column_kind",
    "conform",
    "feature_matrix",
    "is_numeric",
    "label_array",
    "predicted_labels",
    "read_columns",
    "read_table",
    "row_count",
    "sample_rows",
    "schema_names",
    "table_columns",
]

#: how a boolean column without gaps comes out: ``bool`` (Clarify's categorical) or ``int`` (int64 0/1)
Booleans = Literal["bool", "int"]

_PARQUET = (".parquet", ".pq")


def _is_parquet(path: Path) -> bool:
    return path.suffix.lower() in _PARQUET


# -- files ---------------------------------------------------------------------------------------
def read_table(path: Path, wanted: Sequence[str] | None = None) -> pa.Table:
    """The columns ``wanted`` (None: all) of a .csv, .parquet or .jsonl file, read whole with pyarrow."""
    path = Path(path)
    if not path.is_file():
        raise MonitorError(f"{path}: no such file")
    suffix = "".join(path.suffixes[-2:]).lower() if path.suffix.lower() == ".gz" else path.suffix.lower()
    try:
        if suffix in _PARQUET:
            import pyarrow.parquet as pq

            return pq.read_table(path, columns=list(wanted) if wanted is not None else None)
        if suffix in (".csv", ".csv.gz"):
            import pyarrow.csv as pacsv

            include = list(wanted) if wanted is not None else []
            # an empty cell of a text column is missing (None), as pandas (and so smclarify) reads it
            options = pacsv.ConvertOptions(
                include_columns=include, strings_can_be_null=True, quoted_strings_can_be_null=True
            )
            return _no_null_type(pacsv.read_csv(path, convert_options=options))
        if suffix in (".jsonl", ".ndjson", ".json"):
            import pyarrow.json as pajson

            table = pajson.read_json(path)
            return _no_null_type(table.select(list(wanted)) if wanted is not None else table)
    except (pa.ArrowInvalid, KeyError, OSError) as exc:
        what = f"the columns {', '.join(wanted)}" if wanted else "it"
        raise MonitorError(f"{path}: cannot read {what} ({_reason(exc)})") from None
    raise MonitorError(f"{path}: read .csv, .parquet or .jsonl files, not {suffix or 'this'}")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return "the file is empty" if text.startswith("Empty CSV file") else text


def _no_null_type(table: pa.Table) -> pa.Table:
    """A column with no value at all (pyarrow's null type: an all-empty CSV column) as text, all missing, so
    it is one missing value as in pandas, not ``None`` beside ``nan``."""
    for i, column in enumerate(table.columns):
        if pa.types.is_null(column.type):
            table = table.set_column(i, table.field(i).name, column.cast(pa.string()))
    return table


def schema_names(path: Path) -> list[str]:
    """The columns of a data file, in its order (Parquet's and CSV's without reading the rows)."""
    path = Path(path)
    if not path.is_file():
        raise MonitorError(f"{path}: no such file")
    try:
        if _is_parquet(path):
            import pyarrow.parquet as pq

            return list(pq.read_schema(path).names)
        if path.suffix.lower() == ".csv":
            import pyarrow.csv as pacsv

            with pacsv.open_csv(path) as reader:
                return list(reader.schema.names)
    except (pa.ArrowInvalid, OSError) as exc:
        raise MonitorError(f"{path}: cannot read its columns ({_reason(exc)})") from None
    return list(read_table(path, None).column_names)


def row_count(path: Path) -> int:
    """The rows of a Parquet file, from its footer."""
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def read_columns(
    path: Path,
    *,
    columns: Sequence[str] | None = None,
    names: Sequence[str] = (),
    header: bool = True,
    span: Span | None = None,
    problems: Problems,
    booleans: Booleans = "bool",
) -> dict[str, np.ndarray]:
    """The columns of a data file (or of captured requests, ``names``: the features of CSV rows), one 1-D
    array each (see :func:`column_array`); ``columns``: only these (a missing one is an error)."""
    path = Path(path)
    if _is_parquet(path) and not is_capture(path):
        table = read_table(path, columns)
    else:
        start, end = (span.start, span.end) if span is not None else (None, None)
        chunks = [
            c.table for c in read_chunks(path, names=names, since=start, until=end, header=header, problems=problems)
        ]
        if not chunks:
            raise MonitorError(f"{path}: no rows")
        table = pa.concat_tables(chunks, promote_options="permissive")
    found = table_columns(table, booleans=booleans)
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
    if _is_parquet(path) and not is_capture(path):
        # Parquet comes a few columns at a time from read_chunks: take the features' columns whole
        tables: Iterator[pa.Table] = iter([read_table(path, features)])
    else:
        chunks = read_chunks(path, names=features, since=start, until=end, header=header, problems=problems)
        tables = (chunk.table for chunk in chunks)
    for table in tables:
        missing = [f for f in features if f not in table.column_names]
        if missing:
            raise MonitorError(f"{path}: no column {', '.join(missing[:5])} (the features are {', '.join(features)})")
        rows = feature_matrix({f: column_array(table.column(f)) for f in features}, features, path)
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


# -- the conversion ------------------------------------------------------------------------------
def is_numeric(kind: pa.DataType) -> bool:
    """A type :func:`column_array` gives as numbers (or booleans)."""
    return bool(pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind))


def table_columns(table: pa.Table, *, booleans: Booleans = "bool") -> dict[str, np.ndarray]:
    """One array per column (see :func:`column_array`)."""
    return {name: column_array(table.column(name), booleans=booleans) for name in table.column_names}


def column_array(column: pa.ChunkedArray | pa.Array, *, booleans: Booleans = "bool") -> np.ndarray:
    """One column as numpy: integers without gaps as they are; integers with gaps, floats and decimals as
    float64 (NaN: missing); booleans without gaps as bool (``booleans="int"``: int64); text and booleans with
    gaps as object arrays of ``str``/``bool`` (None: missing); anything else as its text."""
    kind = column.type
    if pa.types.is_integer(kind) and column.null_count == 0:
        return np.asarray(column.to_numpy())
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        return np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
    if pa.types.is_boolean(kind) and column.null_count == 0:
        return np.asarray(column.to_numpy(zero_copy_only=False), dtype=bool if booleans == "bool" else np.int64)
    if pa.types.is_boolean(kind) or pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)
    return np.asarray([None if v is None else str(v) for v in column.to_pylist()], dtype=object)


def feature_matrix(columns: Mapping[str, np.ndarray], features: Sequence[str], where: Path) -> np.ndarray:
    """The ``features`` of ``columns`` as one float matrix (rows × features); numbers written as text are
    read as numbers, a missing value is NaN."""
    missing = [f for f in features if f not in columns]
    if missing:
        raise MonitorError(f"{where} lacks the model's input columns {missing[:5]}{'…' if len(missing) > 5 else ''}")
    if not features:
        return np.empty((0, 0))
    return np.column_stack([_floats(np.asarray(columns[f]), f, where) for f in features])


def _floats(values: np.ndarray, name: str, where: Path) -> np.ndarray:
    if values.dtype.kind in "biuf":
        return values.astype(np.float64, copy=False)
    try:
        numbers = pc.cast(pa.array(values, from_pandas=True), pa.float64())
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        raise MonitorError(f"{where}: feature {name!r} is not numeric; SHAP values need numeric features") from None
    return np.asarray(numbers.to_numpy(zero_copy_only=False), dtype=np.float64)


# -- kinds, labels and predictions ---------------------------------------------------------------
def column_kind(values: np.ndarray) -> str:
    """``integer``, ``float`` or ``text``: what :func:`column_array` made of a column."""
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


def label_array(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Labels or predictions as one array: int64 when every value is a whole number (``1.0`` too, so a label
    written ``1`` and a prediction written ``1.0`` are the same class), float64 for other numbers, else text.
    A row of scores is its positive-class score (two scores) or the index of its largest (more)."""
    if isinstance(values, np.ndarray) and values.ndim == 1 and values.dtype.kind in "biuf":
        array = values.astype(np.float64)
        if not np.isnan(array).any() and np.all(array == np.round(array)):
            return array.astype(np.int64)
        return array
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


def predicted_labels(outputs: Any) -> np.ndarray:
    """A model's outputs as one prediction per row: a single column as it is (see :func:`label_array`), two
    columns the positive class's score, more the index of the largest."""
    outputs = np.asarray(outputs)
    if outputs.ndim == 2 and outputs.shape[1] == 1:
        outputs = outputs[:, 0]
    if outputs.ndim == 1:
        return label_array(outputs if outputs.dtype.kind in "biuf" else outputs.tolist())
    if outputs.ndim == 2 and outputs.shape[1] == 2:
        return np.asarray(outputs[:, 1], dtype=np.float64)
    return np.asarray(np.argmax(outputs.reshape(len(outputs), -1), axis=1), dtype=np.int64)
