"""``shipyard monitor baseline``: statistics and suggested constraints of the training data, in one pass.

    result = make_baseline(Path("train.parquet"), Path("baseline/"), exclude=["label"])
    result.statistics_path, result.constraints_path

The features are the data's columns, less ``exclude``; with a bundle (``schema=``) they are the model's
inputs, in the model's order, so that captured CSV rows (which carry no names) line up with them.

``bias=BiasOptions(...)`` adds ``out/bias/{analysis.json,analysis_config.json}`` (the post-training bias
metrics of the data, the constraints of a bias-drift check), and ``explain=ExplainOptions(bundle)`` adds
``out/explain/{analysis.json,analysis_config.json,explanations_shap/…}`` (global SHAP values of a seeded
sample of rows, the constraints of an attribution-drift check). Both come on top of the statistics:

    make_baseline(Path("train.parquet"), Path("baseline/"), schema=bundle,
                  bias=BiasOptions(label="y", facets=["gender=1"], bundle=bundle),
                  explain=ExplainOptions(bundle, baseline=1, samples=200))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.errors import MonitorError
from shipyard.monitor.bias import bias_analysis
from shipyard.monitor.clarify_drift import bias_config, explain_config, facet_config
from shipyard.monitor.columns import column_kind, feature_matrix, label_array, predicted_labels, read_columns
from shipyard.monitor.explain import bundle_predictor, run_explain
from shipyard.monitor.formats import constraints_document, feature_statistics, statistics_document, write_json
from shipyard.monitor.problems import ArgumentError, Problems
from shipyard.monitor.profile import NumericProfile
from shipyard.monitor.profiler import Profiler
from shipyard.monitor.sources import read_chunks

__all__ = [
    "EXPLAIN_ROWS",
    "PREDICTED",
    "BaselineResult",
    "BiasOptions",
    "ExplainOptions",
    "make_baseline",
    "schema_features",
]

#: the most rows SHAP values are computed for, in a baseline and in a check (a seeded sample of them)
EXPLAIN_ROWS = 500
#: the name of the column of the model's predictions when a bundle makes them (and in a check)
PREDICTED = "_predicted"


@dataclass
class BiasOptions:
    """What ``--bias`` measures: as ``shipyard monitor bias`` (post-training metrics: the predictions come from
    ``predicted``, a column of the data, or from ``bundle``, run in process)."""

    label: str
    facets: Sequence[str]
    positive: Sequence[str] = ("1",)
    predicted: str | None = None
    bundle: Path | None = None
    group_by: str | None = None
    probability_threshold: float = 0.5


@dataclass
class ExplainOptions:
    """What ``--explain`` measures: as ``shipyard monitor explain`` (``baseline``: K-means K, or a CSV of rows)."""

    bundle: Path
    baseline: int | Path = 1
    samples: int | None = None
    agg: str = "mean_abs"
    use_logit: bool = False
    seed: int = 0
    label_headers: Sequence[str] | None = None
    max_rows: int = EXPLAIN_ROWS


@dataclass
class BaselineResult:
    statistics_path: Path
    constraints_path: Path
    rows: int
    features: list[dict[str, Any]]
    problems: Problems = field(default_factory=Problems)
    bias: dict[str, Any] | None = None  # out/bias/analysis.json's document
    explain: dict[str, Any] | None = None  # out/explain/analysis.json's document


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
    bias: BiasOptions | None = None,
    explain: ExplainOptions | None = None,
) -> BaselineResult:
    """Profile ``data`` and write ``out/statistics.json`` and ``out/constraints.json`` (and the bias and
    explainability baselines asked for). With ``bias``, the label and prediction columns are not features."""
    if bias is not None:
        exclude = [*exclude, *(c for c in (bias.label, bias.predicted) if c and c not in exclude)]
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
    result = BaselineResult(statistics_path, constraints_path, profiler.rows, features, problems)
    if bias is not None:
        result.bias = _bias_baseline(data, out / "bias", bias, order, header, problems)
    if explain is not None:
        result.explain = _explain_baseline(data, out / "explain", explain)
    return result


def _bias_baseline(
    data: Path, out: Path, options: BiasOptions, features: list[str], header: bool, problems: Problems
) -> dict[str, Any]:
    """The post-training bias metrics of ``data`` (the model's predictions from a column or from the bundle)."""
    if options.predicted is None and options.bundle is None:
        raise ArgumentError("predicted", None, "a bias baseline needs predictions: a column of them, or a bundle")
    columns = read_columns(data, header=header, problems=problems, booleans="int")
    if options.label not in columns:
        raise ArgumentError("label", options.label, f"{data} has no such column")
    columns[options.label] = label_array(columns[options.label])
    predicted = options.predicted
    if predicted is not None:
        if predicted not in columns:
            raise ArgumentError("predicted", predicted, f"{data} has no such column")
        columns[predicted] = label_array(columns[predicted])
    else:
        assert options.bundle is not None
        predicted = PREDICTED
        columns[predicted] = _predict(options.bundle, columns, data)
    grouping = [f["name_or_index"] for f in map(facet_config, options.facets)]
    grouping += [options.group_by] if options.group_by else []
    missing = [name for name in grouping if name not in columns]
    if missing:
        raise ArgumentError("facets", ", ".join(missing), f"{data} has no such column")
    document = bias_analysis(
        columns,
        label=options.label,
        facets=list(options.facets),
        positive=list(options.positive),
        predicted=predicted,
        group_by=options.group_by,
        probability_threshold=options.probability_threshold,
        pre_training=False,
        post_training=True,
    )
    config = bias_config(
        headers=[*features, options.label],
        features=features,
        label=options.label,
        facets=options.facets,
        positive=options.positive,
        predicted=options.predicted,
        group_by=options.group_by,
        probability_threshold=options.probability_threshold,
        bundle=options.bundle,
        types={name: column_kind(columns[name]) for name in grouping},
    )
    write_json(out / "analysis.json", document)
    write_json(out / "analysis_config.json", config)
    return document


def _predict(bundle: Path, columns: dict[str, np.ndarray], data: Path) -> np.ndarray:
    """The bundle's predictions for the rows of ``columns`` (its input features, in its order)."""
    predict, features = bundle_predictor(bundle)
    return predicted_labels(predict(feature_matrix(columns, features, data)))


def _explain_baseline(data: Path, out: Path, options: ExplainOptions) -> dict[str, Any]:
    """Global SHAP values of a seeded sample of ``data`` (via ``monitor.explain.run_explain``), and the
    monitoring config holding the SHAP baseline rows a check explains traffic against."""
    result = run_explain(
        options.bundle,
        data,
        out,
        baseline=options.baseline,
        samples=options.samples,
        agg=options.agg,
        use_logit=options.use_logit,
        seed=options.seed,
        label_headers=list(options.label_headers) if options.label_headers else None,
        max_rows=options.max_rows,
        report=False,
    )
    config = explain_config(
        features=result.features,
        baseline=np.asarray(result.baseline).tolist(),
        samples=options.samples,
        agg=options.agg,
        use_logit=options.use_logit,
        seed=options.seed,
        label_headers=options.label_headers,
        bundle=options.bundle,
        max_rows=options.max_rows,
    )
    document: dict[str, Any] = result.document
    write_json(out / "analysis_config.json", config)
    return document


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
