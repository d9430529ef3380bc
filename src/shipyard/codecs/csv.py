"""``text/csv``: one row per line, no header (a header row equal to the schema's names is skipped).

A leading byte order mark (what Excel writes at the start of a "CSV UTF-8" file) is dropped, in any charset.

Answers carry one prediction per line; multi-output predictions are comma-separated.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import numpy as np

from shipyard.codecs.base import to_python
from shipyard.codecs.media import MediaType
from shipyard.errors import RequestError

__all__ = ["CSVCodec"]


class CSVCodec:
    media_type = "text/csv"

    def decode(self, body: bytes, media: MediaType) -> Any:
        try:
            text = body.decode(media.charset)
        except (LookupError, UnicodeDecodeError) as exc:
            raise RequestError(f"body is not valid {media.charset} text: {exc}") from None
        if text.startswith("\ufeff"):  # a byte order mark: Excel starts its "CSV UTF-8" files with one
            text = text[1:]
        if '"' in text:
            try:
                rows = [row for row in csv.reader(io.StringIO(text, newline="")) if row]
            except csv.Error as exc:
                raise RequestError(f"body is not valid CSV: {exc}") from None
        else:  # the common numeric case, several times faster than the csv module
            if "\r" in text:
                text = text.replace("\r\n", "\n").replace("\r", "\n")
            # split("\n"), not splitlines(): that also breaks on \x1c-\x1e, \x85, \u2028… inside cells
            rows = [line.split(",") for line in text.split("\n") if line.strip()]
        if not rows:
            raise RequestError("body holds no CSV rows")
        return CSVRows(rows)

    def encode(self, predictions: Any, *, envelope: bool = True) -> bytes:
        if isinstance(predictions, np.ndarray) and predictions.dtype.kind in "biuf":
            if predictions.ndim <= 1:
                return ("\n".join(map(str, np.atleast_1d(predictions).tolist())) + "\n").encode()
            # str() of Python floats is the shortest text that reads back exactly (0.1, not savetxt's
            # "%.17g" 0.10000000000000001), and the same spelling the one-column case uses.
            rows = predictions.reshape(len(predictions), -1).tolist()
            return ("\n".join(",".join(map(str, row)) for row in rows) + "\n").encode()
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        values = to_python(predictions)
        if not isinstance(values, list):
            values = [values]
        for row in values:
            writer.writerow(row if isinstance(row, list | tuple) else [row])
        return out.getvalue().encode()


class CSVRows(list[list[str]]):
    """Rows of CSV cells, still text: the schema converts them (and knows whether a header is there)."""
