"""``shipyard monitor explain``: Kernel SHAP of a bundle's predictions, in SageMaker Clarify's file formats.

    result = run_explain(Path("bundle/"), Path("rows.parquet"), Path("explain/"), baseline=1, samples=500)
    result.document["explanations"]["kernel_shap"]["label0"]["global_shap_values"]

The bundle is loaded in this process (its handler, as a server worker runs it) and explained on the rows of
a data file (the bundle's input features, in the schema's order; a schema without names takes the file's
first columns). The baseline is ``k`` K-means centres of those rows (the mean row for ``k = 1``) or the rows
of a file. Writes, as a Clarify explainability job does:

- ``analysis.json``: ``{"version": "1.0", "explanations": {"kernel_shap": {label: {"global_shap_values":
  {feature: value}, "expected_value": x}}}}``, one label per model output (``label0``… or ``label_headers``);
- ``explanations_shap/out.csv``: the local SHAP values, one line per row in input order, columns
  ``<feature>_<label>``;
- ``explanations_shap/baseline.csv``: the baseline rows used (a header of feature names);
- ``global_shap.png``: the global values of the top 20 features of each label, as bars;
- ``report.html`` (and ``report/``): the HTML report ``shipyard monitor report OUT`` writes.

SHAP values are computed by :mod:`shipyard.monitor.shapley` (Kernel SHAP as shap's ``KernelExplainer``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.errors import MonitorError, ShipyardError
from shipyard.monitor.columns import column_array, feature_matrix, schema_names
from shipyard.monitor.formats import write_json
from shipyard.monitor.problems import ArgumentError, Problems
from shipyard.monitor.shapley import Progress, coalition_count, kernel_shap
from shipyard.monitor.sources import read_chunks

__all__ = [
    "AGG_METHODS",
    "ExplainResult",
    "aggregate",
    "bundle_predictor",
    "choose_baseline",
    "explain_analysis",
    "run_explain",
]

AGG_METHODS = ("mean_abs", "median", "mean_sq")
_PLOT_FEATURES = 20

Predict = Callable[[np.ndarray], np.ndarray]


@dataclass
class ExplainResult:
    document: dict[str, Any]
    local: np.ndarray  # (rows, features, labels)
    features: list[str]
    labels: list[str]
    baseline: np.ndarray
    rows: int
    samples: int
    out: Path
    files: dict[str, Path]
    problems: Problems = field(default_factory=Problems)


# -- the analysis --------------------------------------------------------------------------------
def aggregate(local: np.ndarray, agg: str) -> np.ndarray:
    """Clarify's ``agg_method`` over rows: ``mean_abs`` mean|φ|, ``median`` median φ (signed), ``mean_sq`` mean φ²."""
    if agg == "mean_abs":
        return np.asarray(np.abs(local).mean(axis=0))
    if agg == "median":
        return np.asarray(np.median(local, axis=0))
    if agg == "mean_sq":
        return np.asarray((local**2).mean(axis=0))
    raise ArgumentError("agg", repr(agg), f"use one of {', '.join(AGG_METHODS)}")


def _labels(count: int, label_headers: Sequence[str] | None) -> list[str]:
    if not label_headers:
        return [f"label{i}" for i in range(count)]
    if len(label_headers) != count:
        raise ArgumentError(
            "label_headers", ",".join(label_headers), f"the model gives {count} outputs per row, so name {count}"
        )
    return [str(h) for h in label_headers]


def _check_settings(agg: str, samples: int | None) -> None:
    if agg not in AGG_METHODS:
        raise ArgumentError("agg", repr(agg), f"use one of {', '.join(AGG_METHODS)}")
    if samples is not None and samples < 1:
        raise ArgumentError("samples", str(samples), "give a positive number of coalitions per row")


def explain_analysis(
    predict: Predict,
    rows: np.ndarray,
    features: Sequence[str],
    baseline: np.ndarray,
    *,
    samples: int | None = None,
    agg: str = "mean_abs",
    use_logit: bool = False,
    seed: int = 0,
    label_headers: Sequence[str] | None = None,
    progress: Progress | None = None,
) -> tuple[dict[str, Any], np.ndarray]:
    """Clarify's explainability ``analysis.json`` document and the local SHAP values (rows, M, K)."""
    _check_settings(agg, samples)
    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim != 2 or rows.shape[1] != len(features) or not len(rows):
        raise MonitorError(f"rows {rows.shape}: expected a non-empty (rows, {len(features)}) array")
    local, expected = kernel_shap(
        predict, rows, baseline, samples=samples, use_logit=use_logit, seed=seed, progress=progress
    )
    if use_logit and not (np.isfinite(expected).all() and np.isfinite(local).all()):
        raise ArgumentError("use_logit", None, "the logit needs model outputs strictly between 0 and 1 (probabilities)")
    labels = _labels(local.shape[2], label_headers)
    globals_ = aggregate(local, agg)  # (M, K)
    explanations = {
        label: {
            "global_shap_values": {name: float(globals_[j, k]) for j, name in enumerate(features)},
            "expected_value": float(expected[k]),
        }
        for k, label in enumerate(labels)
    }
    return {"version": "1.0", "explanations": {"kernel_shap": explanations}}, local


# -- the model and the baseline ------------------------------------------------------------------
def bundle_predictor(bundle: Path) -> tuple[Predict, list[str]]:
    """``predict(rows) -> outputs`` of the bundle loaded in this process, and its input feature names.

    The rows go through the bundle's input schema (its checks and dtype) as a request's would; a schema
    without names gives ``[]`` (the data's first columns are then the features).
    """
    from shipyard.bundle import Bundle
    from shipyard.config import ServerConfig
    from shipyard.handler import handler_for

    try:
        opened = Bundle.open(bundle)
        handler = handler_for(opened, ServerConfig.from_env({}))
        handler.load()
    except ShipyardError as exc:
        raise MonitorError(f"{bundle}: cannot load the bundle ({exc})") from exc
    schema = opened.manifest.input
    cast = np.dtype(schema.dtype) if schema.kind == "tensor" and schema.dtype.startswith("float") else None

    def predict(rows: np.ndarray) -> np.ndarray:
        batch: Any = (
            rows.astype(cast, copy=False) if cast is not None else (rows if schema.kind == "tensor" else rows.tolist())
        )
        try:
            inputs, _ = schema.coerce(batch)
            answer = handler.predict(inputs)
        except ShipyardError as exc:
            raise MonitorError(f"the model refused the rows to explain: {exc}") from exc
        if hasattr(answer, "to_numpy"):
            answer = answer.to_numpy()
        return np.asarray(answer)

    return predict, list(schema.names)


def choose_baseline(rows: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """``k`` K-means centres of ``rows`` (scipy's ``kmeans2``, k-means++ seeded with ``seed``); k = 1: the mean row.

    Rows with no more than ``k`` distinct values are their own baseline (the distinct rows).
    """
    rows = np.asarray(rows, dtype=np.float64)
    if k < 1:
        raise ArgumentError("baseline", str(k), "give a number of baseline rows ≥ 1, or a file of baseline rows")
    if k == 1 or len(rows) <= 1:
        return np.asarray(rows.mean(axis=0, keepdims=True))
    if k >= len(np.unique(rows, axis=0)):
        return np.asarray(np.unique(rows, axis=0))
    from scipy.cluster.vq import kmeans2

    centres, _ = kmeans2(rows, k, minit="++", seed=np.random.default_rng(seed))
    return np.asarray(centres, dtype=np.float64)


# -- reading the rows ----------------------------------------------------------------------------
def _read_rows(
    path: Path, names: list[str], width: int, problems: Problems, limit: int | None = None, header: bool = True
) -> tuple[np.ndarray, list[str]]:
    """The feature columns of a data file as a float array, and the features' names."""
    columns: dict[str, list[np.ndarray]] = {}
    counts: dict[str, int] = {}
    wanted = list(names)
    seen = 0
    for chunk in read_chunks(path, names=names, header=header, problems=problems):
        seen += chunk.table.num_rows
        if not wanted:  # the schema has no names: the file's first `width` columns, in the file's order
            # (Parquet is read a group of columns at a time: its order is its schema's)
            order = schema_names(path) if path.suffix.lower() in (".parquet", ".pq") else chunk.table.column_names
            wanted = list(order)[: width or None]
        for name in wanted:
            if name not in chunk.table.column_names:
                continue
            if limit is not None and counts.get(name, 0) >= limit:
                continue
            values = feature_matrix({name: column_array(chunk.table.column(name))}, [name], path)[:, 0]
            columns.setdefault(name, []).append(values)
            counts[name] = counts.get(name, 0) + len(values)
        if limit is not None and wanted and all(counts.get(n, 0) >= limit for n in wanted):
            break
    if not seen:
        raise MonitorError(f"{path}: holds no rows")
    missing = [n for n in wanted if n not in columns]
    if missing or not wanted:
        detail = f"lacks the model's input columns {missing[:5]}{'…' if len(missing) > 5 else ''}" if missing else ""
        raise MonitorError(f"{path}: {detail or 'holds no rows'}")
    if width and len(wanted) < width:
        raise MonitorError(f"{path}: {len(wanted)} columns, but the model takes {width} features")
    stacked = [np.concatenate(columns[n])[:limit] for n in wanted]
    if len({len(c) for c in stacked}) != 1:
        raise MonitorError(f"{path}: the feature columns hold different numbers of rows")
    matrix = np.column_stack(stacked)
    _check_finite(matrix, wanted, path, header)
    return matrix, wanted


def _check_finite(rows: np.ndarray, features: Sequence[str], path: Path, header: bool) -> None:
    """Refuse a missing or infinite feature value, naming its data row (1-based, after a header) and column."""
    bad = ~np.isfinite(rows)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        count = int(bad.sum())
        more = f" ({count:,} such values in all)" if count > 1 else ""
        raise MonitorError(
            f"{path}: data row {row + 1}{' (after the header)' if header else ''}, column {features[column]!r}: "
            f"{float(rows[row, column])} is not a finite number (a missing value?); SHAP values need every "
            f"feature present{more}"
        )


def _baseline_rows(baseline: int | Path, rows: np.ndarray, features: list[str], seed: int) -> np.ndarray:
    if isinstance(baseline, int):
        return choose_baseline(rows, baseline, seed)
    path = Path(baseline)
    if not path.is_file():
        raise ArgumentError("baseline", str(path), "no such file (give a number of K-means rows, or a file)")
    problems = Problems()
    try:
        found, _ = _read_rows(path, features, len(features), problems)
    except MonitorError as first:  # a CSV of baseline rows without a header (as Clarify takes them)
        try:
            found, _ = _read_rows(path, features, len(features), problems, header=False)
        except MonitorError:
            raise first from None
    return found


# -- the job -------------------------------------------------------------------------------------
def run_explain(
    bundle: Path,
    data: Path,
    out: Path,
    *,
    baseline: int | Path = 1,
    samples: int | None = None,
    agg: str = "mean_abs",
    use_logit: bool = False,
    seed: int = 0,
    label_headers: Sequence[str] | None = None,
    max_rows: int | None = None,
    progress: Progress | None = None,
    report: bool = True,
) -> ExplainResult:
    """The steps: load the bundle → read the rows → pick the baseline → Kernel SHAP → write Clarify's files
    (and, with ``report``, ``report.html``: :func:`shipyard.monitor.report.make_report` of ``out``)."""
    if max_rows is not None and max_rows < 1:
        raise ArgumentError("max_rows", str(max_rows), "explain at least one row")
    _check_settings(agg, samples)
    if not isinstance(baseline, int) and not Path(baseline).is_file():
        raise ArgumentError("baseline", str(baseline), "no such file (give a number of K-means rows, or a file)")
    from shipyard.monitor.baseline import schema_features

    predict, names = bundle_predictor(bundle)
    _, width = schema_features(bundle)
    problems = Problems()
    rows, features = _read_rows(data, names, width, problems)
    base = _baseline_rows(baseline, rows, features, seed)
    explained = rows[:max_rows] if max_rows is not None else rows
    document, local = explain_analysis(
        predict, explained, features, base, samples=samples, agg=agg, use_logit=use_logit, seed=seed,
        label_headers=label_headers, progress=progress,
    )  # fmt: skip
    labels = list(document["explanations"]["kernel_shap"])
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "analysis": write_json(out / "analysis.json", document),
        "local": _write_csv(out / "explanations_shap" / "out.csv", _local_header(features, labels), _flat(local)),
        "baseline": _write_csv(out / "explanations_shap" / "baseline.csv", features, base),
        "plot": _plot(document, out / "global_shap.png", agg),
    }
    varying = (explained[:, None, :] != base[None, :, :]).any(axis=1).sum(axis=1)
    used = max((coalition_count(int(m), samples) for m in varying), default=0)
    _few_coalitions(varying, samples, problems)
    if report:
        from shipyard.monitor.report import make_report

        files["report"] = make_report(out).html_path
    return ExplainResult(document, local, features, labels, base, len(explained), used, out, files, problems)


def _few_coalitions(varying: np.ndarray, samples: int | None, problems: Problems) -> None:
    """A problem where ``samples`` coalitions (fewer than M + 1) cannot determine every feature's value of a row
    with M varying features (some then come out as 0 whatever the model does)."""
    if samples is None:
        return
    short = [int(m) for m in varying if coalition_count(int(m), samples) < min(int(m) + 1, 2 ** int(m) - 2)]
    if short:
        m = max(short)
        problems.add(
            "few coalitions",
            f"--samples {samples} is under M + 1 = {m + 1} for {len(short):,} of {len(varying):,} rows "
            f"({m} varying features): too few coalitions to determine every feature's SHAP value "
            "(some come out 0); give at least M + 1, or leave --samples out",
        )


def _local_header(features: Sequence[str], labels: Sequence[str]) -> list[str]:
    return [f"{feature}_{label}" for label in labels for feature in features]


def _flat(local: np.ndarray) -> np.ndarray:
    """(rows, M, K) → (rows, K·M): each label's features side by side, label by label."""
    return local.transpose(0, 2, 1).reshape(len(local), -1)


def _write_csv(path: Path, header: Sequence[str], values: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerow(header)
    body = "\n".join(",".join(repr(float(v)) for v in row) for row in values)
    path.write_text(text.getvalue() + body + ("\n" if len(values) else ""), encoding="utf-8")
    return path


def _plot(document: dict[str, Any], path: Path, agg: str) -> Path:
    """Bars of the global SHAP values of each label's top features (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    explanations = document["explanations"]["kernel_shap"]
    shown = list(explanations.items())[:4]
    height = max(2.5, 0.25 * _PLOT_FEATURES + 1)
    figure, axes = plt.subplots(1, len(shown), figsize=(5 * len(shown), height), squeeze=False)
    for axis, (label, entry) in zip(axes[0], shown, strict=True):
        ranked = sorted(entry["global_shap_values"].items(), key=lambda item: abs(item[1]), reverse=True)
        top = list(reversed(ranked[:_PLOT_FEATURES]))
        axis.barh([name for name, _ in top], [value for _, value in top], color="#5d8aa8")
        axis.set_title(f"{label} (expected value {entry['expected_value']:.4g})", fontsize=9)
        axis.set_xlabel(f"global SHAP ({agg})")
        axis.tick_params(axis="y", labelsize=7)
    figure.savefig(path, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return path
