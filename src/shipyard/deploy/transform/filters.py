"""``DataProcessing``'s JSONPath filters, as SageMaker applies them to a record.

A CSV record is read as an array of its columns (``$[1:]`` drops the first one) and written back as CSV; a JSON
record is parsed, filtered and written back as JSON. SageMaker's subset of JSONPath includes unions of indices
and slices (``$[0,5:]``), which jsonpath-ng does not parse: those (top-level brackets of indices and slices) are
applied here directly, every other expression through jsonpath-ng. A selection of one element (``$[0]``,
``$.features``) is that element; a slice, a union or a wildcard is a list.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import orjson

from shipyard.codecs.media import parse_media_type
from shipyard.errors import UsageError

__all__ = ["RecordFilter", "record_filter"]

RecordFilter = Callable[[bytes], bytes]
_BRACKETS = re.compile(r"^\$\[\s*(-?\d*(?::-?\d*)?(?:\s*,\s*-?\d*(?::-?\d*)?)*)\s*\]$")


def _pieces(expression: str) -> list[slice | int] | None:
    """``$[0,5:]`` as indices and slices; None for any other expression."""
    match = _BRACKETS.match(expression.strip())
    if match is None:
        return None
    pieces: list[slice | int] = []
    for part in match.group(1).split(","):
        part = part.strip()
        if ":" in part:
            start, _, stop = part.partition(":")
            pieces.append(slice(int(start) if start else None, int(stop) if stop else None))
        elif part:
            pieces.append(int(part))
        else:
            return None
    return pieces


def _selector(expression: str, option: str) -> Callable[[Any], Any]:
    pieces = _pieces(expression)
    if pieces is not None:
        single = len(pieces) == 1 and isinstance(pieces[0], int)

        def by_index(value: Any) -> Any:
            if not isinstance(value, list):
                raise UsageError(f"{option} {expression}: the record is not an array")
            picked: list[Any] = []
            for piece in pieces:
                if isinstance(piece, slice):
                    picked.extend(value[piece])
                else:
                    try:
                        picked.append(value[piece])
                    except IndexError:
                        raise UsageError(f"{option} {expression}: the record has {len(value)} columns") from None
            return picked[0] if single else picked

        return by_index
    from jsonpath_ng.ext.parser import parse

    try:
        path = parse(expression)
    except Exception as exc:  # JsonPathParserError, and plain Exceptions from its lexer
        raise UsageError(f"{option} {expression!r} is not a JSONPath expression ({exc})") from None
    many = any(token in expression for token in ("*", "..", ":", ",", "?("))

    def by_path(value: Any) -> Any:
        found = [match.value for match in path.find(value)]
        if not found:
            raise UsageError(f"{option} {expression}: selects nothing in the record")
        return found if many or len(found) > 1 else found[0]

    return by_path


def record_filter(expression: str | None, content_type: str, *, option: str) -> RecordFilter | None:
    """A function filtering one record of ``content_type`` by ``expression`` (None: ``$`` or no filter)."""
    if expression is None or expression.strip() in ("", "$"):
        return None
    if not expression.strip().startswith("$"):
        raise UsageError(f"{option} {expression!r}: a JSONPath expression starts with $")
    select = _selector(expression, option)
    parsed = parse_media_type(content_type)
    media = parsed.essence if parsed is not None else ""
    if media == "text/csv":

        def csv_filter(record: bytes) -> bytes:
            picked = select(record.rstrip(b"\r\n").split(b","))
            return b",".join(picked) if isinstance(picked, list) else picked

        return csv_filter
    if media in ("application/json", "application/jsonlines"):

        def json_filter(record: bytes) -> bytes:
            try:
                value = orjson.loads(record)
            except orjson.JSONDecodeError as exc:
                raise UsageError(f"{option}: a record is not JSON ({exc})") from None
            return orjson.dumps(select(value))

        return json_filter
    raise UsageError(f"{option} filters CSV or JSON records only, not {content_type!r}")
