"""``shipyard monitor baseline``: statistics and suggested constraints of the training data, in one pass.

    result = make_baseline(Path("train.parquet"), Path("baseline/"), exclude=["label"])
    result.statistics_path, result.constraints_path

The features are the data's columns, less ``exclude``; with a bundle (``schema=``) they are the model's
inputs, in the model's order, so that captured CSV rows (which carry no names) line up with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shipyard.errors import MonitorError
from shipyard.monitor.formats import constraints_document, feature_statistics, statistics_document, write_json
from shipyard.monitor.problems import Problems
from shipyard.monitor.profiler import Profiler
from shipyard.monitor.sources import read_chunks

__all__ = ["BaselineResult", "make_baseline", "schema_features"]


@dataclass
class BaselineResult:
    statistics_path: Path
    constraints_path: Path
    rows: int
    features: list[dict[str, Any]]
    problems: Problems = field(default_factory=Problems)


def schema_features(bundle: Path) -> tuple[list[str], int]:
    """The model's input feature names (may be empty) and its width (0 when unknown), from a bundle."""
    from shipyard.bundle import Bundle

    schema = Bundle.open(bundle).manifest.input
    width = len(schema.names)
    if schema.kind == "tensor" and len(schema.shape) == 2 and schema.shape[1] > 0:
        width = schema.shape[1]
    return list(schema.names), width


def make_baseline(
    data: Path,
    out: Path,
    *,
    schema: Path | None = None,
    exclude: Sequence[str] = (),
    header: bool = True,
) -> BaselineResult:
    """Profile ``data`` and write ``out/statistics.json`` and ``out/constraints.json``."""
    problems = Problems()
    names, width = schema_features(schema) if schema is not None else ([], 0)
    profiler = Profiler(include=names or None, exclude=exclude)
    for chunk in read_chunks(data, names=names, header=header, problems=problems):
        if width and not names:
            # the schema gives a width but no names: the first `width` columns are the model's inputs
            columns = [c for c in chunk.table.column_names if c not in set(exclude)]
            names = columns[:width]
            profiler.include = names
        profiler.add(chunk)
    if not profiler.rows:
        detail = "; ".join(problems.summary()) if problems else "it holds no rows"
        raise MonitorError(f"{data}: nothing to make a baseline from ({detail})")
    if names:
        missing = [n for n in names if n not in profiler.profiles and n not in profiler.unknown()]
        if missing:
            raise MonitorError(
                f"{data} lacks the model's input columns {missing[:5]}{'…' if len(missing) > 5 else ''}; "
                "pass the training data the model was fitted on (or drop --schema)"
            )
    unknown = profiler.unknown()
    order = names or [*profiler.profiles, *unknown]
    features = [feature_statistics(n, profiler.profiles.get(n), profiler.rows) for n in order]
    statistics = statistics_document(features, profiler.rows)
    out.mkdir(parents=True, exist_ok=True)
    statistics_path = write_json(out / "statistics.json", statistics, indent=False)
    constraints_path = write_json(out / "constraints.json", constraints_document(statistics))
    return BaselineResult(statistics_path, constraints_path, profiler.rows, features, problems)
