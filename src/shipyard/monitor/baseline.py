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
from shipyard.monitor.problems import ArgumentError, Problems
from shipyard.monitor.profile import NumericProfile
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
    names, width = schema_features(schema) if schema is not None else ([], 0)
    problems, profiler = _profile(data, names, width, exclude, header, frozenset())
    # Model Monitor's rule: a column with any text in it is a String feature. When text turned up only after
    # the column's first numbers, read the data again with those columns as text (a baseline is made once;
    # the second pass costs only then).
    texts = frozenset(n for n, p in profiler.profiles.items() if isinstance(p, NumericProfile) and p.text)
    if texts:
        problems, profiler = _profile(data, names, width, exclude, header, texts)
    names = list(profiler.include or [])  # the schema's names, or its first `width` columns
    if not profiler.rows:
        detail = "; ".join(problems.summary()) if problems else "it holds no rows"
        raise MonitorError(f"{data}: nothing to make a baseline from ({detail})")
    if names:
        missing = [n for n in names if n not in profiler.profiles and n not in profiler.unknown()]
        if missing:
            raise ArgumentError(
                "schema",
                None,
                f"{data} lacks the model's input columns {missing[:5]}{'…' if len(missing) > 5 else ''}; "
                "pass the training data the model was fitted on, or leave the schema out",
            )
    unknown = profiler.unknown()
    # the source's column order: captured CSV rows (no names) line up with the features by position
    order = names or [n for n in profiler.seen if n in profiler.profiles or n in unknown]
    features = [feature_statistics(n, profiler.profiles.get(n), profiler.rows) for n in order]
    statistics = statistics_document(features, profiler.rows)
    out.mkdir(parents=True, exist_ok=True)
    statistics_path = write_json(out / "statistics.json", statistics, indent=False)
    constraints_path = write_json(out / "constraints.json", constraints_document(statistics))
    return BaselineResult(statistics_path, constraints_path, profiler.rows, features, problems)


def _profile(
    data: Path, names: list[str], width: int, exclude: Sequence[str], header: bool, texts: frozenset[str]
) -> tuple[Problems, Profiler]:
    """One pass over ``data``: the profile of every feature (``texts`` profiled as strings)."""
    problems = Problems()
    profiler = Profiler(include=names or None, exclude=exclude, forced=dict.fromkeys(texts, "string"))
    for chunk in read_chunks(data, names=names, header=header, text_columns=texts, problems=problems):
        if width and not names:
            # the schema gives a width but no names: the first `width` columns are the model's inputs
            columns = [c for c in chunk.table.column_names if c not in set(exclude)]
            names = columns[:width]
            profiler.include = names
        profiler.add(chunk)
    return problems, profiler
