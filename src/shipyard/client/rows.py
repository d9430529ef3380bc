"""Rows in and out of the chunking client: reading an input into items, encoding a chunk, writing answers.

An input file becomes a list of *items* (one per row) in its own format, so a chunk is sent in the format
the user chose: JSON (a list, or ``{"instances": [...]}`` / ``{"inputs": [...]}``), JSON Lines (one row per
line) or CSV (one row per line, sent as written). Answers are written one prediction per line, in input
order, as JSON Lines or CSV, flushed as soon as they are known; an existing output file is resumed.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import orjson

from shipyard.errors import InvokeError

__all__ = ["CSVRows", "JSONLinesRows", "JSONRows", "ResultWriter", "RowFormat", "format_for", "read_items"]


class RowFormat(Protocol):
    content_type: str
    accept: str

    def item_size(self, item: Any) -> int: ...

    def encode(self, items: Sequence[Any]) -> bytes: ...

    def decode(self, body: bytes, count: int) -> list[Any]: ...


class JSONRows:
    content_type = accept = "application/json"
    overhead = len(b'{"instances":[]}')

    def item_size(self, item: Any) -> int:
        return len(orjson.dumps(item, option=orjson.OPT_SERIALIZE_NUMPY)) + 1  # the comma

    def encode(self, items: Sequence[Any]) -> bytes:
        return orjson.dumps({"instances": list(items)}, option=orjson.OPT_SERIALIZE_NUMPY)

    def decode(self, body: bytes, count: int) -> list[Any]:
        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvokeError(f"the endpoint answered something that is not JSON: {exc}") from None
        predictions = document.get("predictions") if isinstance(document, dict) else document
        return _checked(predictions, count)


class JSONLinesRows:
    content_type = accept = "application/jsonlines"
    overhead = 0

    def item_size(self, item: Any) -> int:
        return len(orjson.dumps(item, option=orjson.OPT_SERIALIZE_NUMPY)) + 1

    def encode(self, items: Sequence[Any]) -> bytes:
        return b"".join(orjson.dumps(item, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n" for item in items)

    def decode(self, body: bytes, count: int) -> list[Any]:
        try:
            values = [orjson.loads(line) for line in body.splitlines() if line.strip()]
        except orjson.JSONDecodeError as exc:
            raise InvokeError(f"the endpoint answered a line that is not JSON: {exc}") from None
        return _checked(values, count)


class CSVRows:
    """Items are CSV lines (text, sent as written); answers are CSV lines, one per row."""

    content_type = accept = "text/csv"
    overhead = 0

    def item_size(self, item: Any) -> int:
        return len(str(item).encode()) + 1

    def encode(self, items: Sequence[Any]) -> bytes:
        return ("\n".join(items) + "\n").encode()

    def decode(self, body: bytes, count: int) -> list[Any]:
        rows = [row if len(row) != 1 else row[0] for row in csv.reader(io.StringIO(body.decode())) if row]
        return _checked(rows, count)


_FORMATS: dict[str, type[JSONRows] | type[JSONLinesRows] | type[CSVRows]] = {
    "application/json": JSONRows,
    "application/jsonlines": JSONLinesRows,
    "application/jsonl": JSONLinesRows,
    "application/x-ndjson": JSONLinesRows,
    "text/csv": CSVRows,
}


def format_for(content_type: str) -> JSONRows | JSONLinesRows | CSVRows:
    essence = content_type.split(";", 1)[0].strip().lower()
    kind = _FORMATS.get(essence)
    if kind is None:
        raise InvokeError(f"cannot split {content_type} into rows; send JSON, JSON Lines or CSV")
    return kind()


def read_items(body: bytes, content_type: str) -> list[Any]:
    """The rows of an input file, in the file's own format (CSV rows stay text)."""
    essence = content_type.split(";", 1)[0].strip().lower()
    if essence == "text/csv":
        return [line for line in body.decode().splitlines() if line.strip()]
    if essence in ("application/jsonlines", "application/jsonl", "application/x-ndjson"):
        try:
            return [orjson.loads(line) for line in body.splitlines() if line.strip()]
        except orjson.JSONDecodeError as exc:
            raise InvokeError(f"the input has a line that is not JSON: {exc}") from None
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvokeError(f"the input is not valid JSON: {exc}") from None
    if isinstance(document, dict):
        for key in ("instances", "inputs"):
            if key in document:
                document = document[key]
                break
    if not isinstance(document, list):
        raise InvokeError('the input must be a list of rows, or {"instances": [...]}, to be split into requests')
    return document


def _checked(values: Any, count: int) -> list[Any]:
    if not isinstance(values, list):
        raise InvokeError(f"the endpoint answered {type(values).__name__}, not a list of predictions")
    if len(values) != count:
        raise InvokeError(f"the endpoint answered {len(values)} predictions for {count} rows")
    return values


class ResultWriter:
    """Appends predictions to ``path`` (``.csv``: CSV, else JSON Lines), one line per input row, flushed at once.

    With ``resume=True`` an existing file's complete lines count as answered (a torn last line is cut off),
    so a run that crashed continues where it stopped.
    """

    def __init__(self, path: str | os.PathLike[str], *, resume: bool = True, kind: str | None = None) -> None:
        self.path = Path(path)
        self.kind = kind or ("csv" if self.path.suffix.lower() == ".csv" else "jsonl")
        self.done = _complete_lines(self.path) if resume and self.path.exists() else 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("ab" if self.done else "wb")

    def write(self, predictions: Sequence[Any]) -> None:
        if self.kind == "csv":
            text = io.StringIO()
            writer = csv.writer(text, lineterminator="\n")
            for value in predictions:
                writer.writerow(value if isinstance(value, list) else [value])
            self._file.write(text.getvalue().encode())
        else:
            self._file.write(b"".join(orjson.dumps(value) + b"\n" for value in predictions))
        self._file.flush()
        self.done += len(predictions)

    def close(self) -> None:
        self._file.close()


def _complete_lines(path: Path) -> int:
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):  # the process died mid-line: drop the torn line
        with path.open("r+b") as handle:
            handle.truncate(end)
    return data.count(b"\n", 0, end)
