"""Captured requests, their captured answers and ground truth, joined row by row (quality and bias drift).

    problems = Problems()
    labels = read_ground_truth(Path("labels.jsonl"), problems)
    joined = join_capture(Path("capture/"), labels, Span.parse("24h", None, None), problems, names=features,
                          inputs=True)
    joined.predicted, joined.actual      # one entry per labelled row
    joined.columns()                     # the request's features, one 1-D array per column, same rows

A record joins when its inference id (else its event id) has labels, its answer can be read and holds as
many predictions as there are labels (and, with ``inputs``, its request as many rows). The rest is counted
and reported in ``problems``. The requests' columns are read as
:func:`shipyard.monitor.columns.read_columns` reads a data file's (``booleans="int"``), so a baseline and a
check see the same types.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shipyard.monitor.answers import answer_rows, decode_values
from shipyard.monitor.columns import table_columns
from shipyard.monitor.payloads import decode_payloads
from shipyard.monitor.problems import Problems
from shipyard.monitor.sources import Span, read_capture_envelopes

__all__ = ["Joined", "join_capture"]


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
        """The joined requests' features, one array per column (as a baseline reads its data: booleans as 0/1)."""
        if not self.inputs:
            return {}
        return table_columns(pa.concat_tables(self.inputs, promote_options="permissive"), booleans="int")


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
