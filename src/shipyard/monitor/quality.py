"""``shipyard monitor quality``: captured predictions joined with ground-truth labels, metrics over time.

    result = run_quality(Path("capture/"), Path("labels.jsonl"), Path("monitoring/"), thresholds={"accuracy": 0.9})

Ground truth is JSON Lines, either SageMaker's ground-truth records::

    {"groundTruthData": {"data": "1", "encoding": "CSV"},
     "eventMetadata": {"eventId": "<inference id>"}, "eventVersion": "0"}

or plain ``{"inference_id": "…", "label": 1}`` (``labels`` for a list, one per row of a multi-row request).
Records join on the capture's ``inferenceId`` (the ``X-Amzn-SageMaker-Inference-Id`` the client sent), or
on its ``eventId`` when the request carried none. Writes ``quality.json`` (Model Monitor's model-quality
statistics layout, plus per-window metrics) and ``quality_violations.json``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from shipyard.errors import MonitorError
from shipyard.monitor.answers import decode_values
from shipyard.monitor.formats import write_json
from shipyard.monitor.joined import join_capture
from shipyard.monitor.problems import ArgumentError, Problems
from shipyard.monitor.sources import Span, iso_time, json_values

__all__ = ["HIGHER_IS_BETTER", "QualityResult", "read_ground_truth", "run_quality"]

HIGHER_IS_BETTER = frozenset({"accuracy", "precision", "recall", "f1", "weighted_f1", "macro_f1", "r2"})
LOWER_IS_BETTER = frozenset({"mae", "mse", "rmse"})
_MAX_CLASSES = 50


@dataclass
class QualityResult:
    metrics: dict[str, float]
    document: dict[str, Any]
    violations: list[dict[str, Any]]
    out: Path
    problems: Problems = field(default_factory=Problems)


def read_ground_truth(path: Path, problems: Problems) -> dict[str, list[Any]]:
    """Inference id → labels (one per row of the request), from a JSON Lines file; bad lines are reported."""
    if not path.is_file():
        raise ArgumentError("ground_truth", str(path), "no such file")
    labels: dict[str, list[Any]] = {}
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise MonitorError(f"{path}: UTF-16 text; ground truth must be UTF-8 JSON Lines (iconv -f UTF-16 -t UTF-8)")
    lines = ((f"{path}:{number}", line) for number, line in enumerate(raw.splitlines(), 1) if line.strip())
    for where, record in json_values(lines, problems, "ground truth"):
        key, values = _label_record(record)
        if key is None or values is None:
            problems.add("ground truth", f"{where}: no inference id and label in this record; line skipped")
            continue
        labels[key] = values
    return labels


def _label_record(record: Any) -> tuple[str | None, list[Any] | None]:
    if not isinstance(record, dict):
        return None, None
    if "groundTruthData" in record:
        data = record.get("groundTruthData") or {}
        meta = record.get("eventMetadata") or {}
        key = meta.get("inferenceId") or meta.get("eventId")
        return (str(key) if key else None), decode_values(data.get("data"), data.get("encoding") or "CSV")
    key = record.get("inference_id") or record.get("inferenceId") or record.get("id")
    if "labels" in record and isinstance(record["labels"], list):
        return (str(key) if key else None), record["labels"]
    if "label" in record:
        return (str(key) if key else None), [record["label"]]
    return None, None


def run_quality(
    source: Path,
    ground_truth: Path,
    out: Path,
    *,
    since: str | None = None,
    until: str | None = None,
    window: str | None = "1h",
    problem: str | None = None,
    thresholds: Mapping[str, float] | None = None,
    probability_threshold: float = 0.5,
    now: float | None = None,
) -> QualityResult:
    """The steps: read the labels → join them with the captured answers → metrics overall and per window →
    judge them against ``thresholds`` → write quality.json and quality_violations.json."""
    problems = Problems()
    labels = read_ground_truth(ground_truth, problems)
    if not labels:
        raise MonitorError(f"{ground_truth}: no usable labels" + (f" ({problems.summary()[0]})" if problems else ""))
    span = Span.parse(since, until, window, now)
    joined = join_capture(source, labels, span, problems)
    if not joined.predicted:
        raise MonitorError(
            f"no captured prediction in {source} matches a label in {ground_truth} "
            f"({joined.captured} captured records, {len(labels)} labels; they join on inferenceId, else eventId)"
        )
    kind, y_true, y_pred = _prepare(joined.actual, joined.predicted, problem, probability_threshold)
    metrics_fn = _classification if kind == "classification" else _regression
    overall = metrics_fn(y_true, y_pred)
    windows = _windows(metrics_fn, y_true, y_pred, joined.moments, span.window_s)
    flat = _flat(overall)
    violations = _thresholds(flat, windows, thresholds or {})
    document = {
        "version": 0.0,
        "dataset": {"item_count": len(y_true)},
        "problem_type": kind,
        ("multiclass_classification_metrics" if kind == "classification" else "regression_metrics"): overall,
        "windows": windows,
        "thresholds": dict(thresholds or {}),
        "join": {
            "captured_records": joined.captured,
            "labels": len(labels),
            "matched_records": joined.matched_records,
            "matched_rows": len(y_true),
            "labels_without_capture": len(labels) - len(joined.used),
        },
        "problems": problems.to_dict(),
    }
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "quality.json", document)
    write_json(out / "quality_violations.json", {"violations": violations})
    return QualityResult(flat, document, violations, out, problems)


def _windows(
    metrics_fn: Callable[[np.ndarray, np.ndarray], dict[str, Any]],
    y_true: np.ndarray,
    y_pred: np.ndarray,
    moments: list[float],
    window_s: float | None,
) -> list[dict[str, Any]]:
    """The metrics of each window of ``window_s`` seconds that holds labelled rows."""
    if not window_s:
        return []
    windows = []
    slots = np.floor(np.asarray(moments) / window_s)
    for slot in np.unique(slots[np.isfinite(slots)]):
        mask = slots == slot
        windows.append(
            {
                "start": iso_time(slot * window_s),
                "rows": int(mask.sum()),
                "metrics": _flat(metrics_fn(y_true[mask], y_pred[mask])),
            }
        )
    return windows


def _prepare(
    actual: list[Any], predicted: list[Any], problem: str | None, cut: float
) -> tuple[str, np.ndarray, np.ndarray]:
    # a row of scores per prediction: the class is the index of the largest
    predicted = [int(np.argmax(p)) if isinstance(p, list) and p else p for p in predicted]
    numeric_truth = all(isinstance(v, int | float) and not isinstance(v, bool) for v in actual)
    numeric_pred = all(isinstance(v, int | float) and not isinstance(v, bool) for v in predicted)
    if problem is None:
        if not numeric_truth:
            problem = "classification"
        else:
            truth = np.asarray(actual, dtype=float)
            pred = np.asarray(predicted, dtype=float) if numeric_pred else None
            few = bool(np.all(truth == np.round(truth))) and len(np.unique(truth)) <= _MAX_CLASSES
            probabilities = (
                pred is not None and set(np.unique(truth)) <= {0.0, 1.0} and bool(((pred >= 0) & (pred <= 1)).all())
            )
            integral = pred is not None and bool(np.all(pred == np.round(pred)))
            problem = "classification" if few and (integral or probabilities or pred is None) else "regression"
    if problem == "regression":
        if not (numeric_truth and numeric_pred):
            raise ArgumentError(
                "problem", None, "regression metrics need numeric labels and predictions; ask for classification"
            )
        return problem, np.asarray(actual, dtype=float), np.asarray(predicted, dtype=float)
    if problem != "classification":
        raise ArgumentError("problem", repr(problem), "use classification or regression")
    if numeric_pred and numeric_truth:
        truth = np.asarray(actual, dtype=float)
        pred = np.asarray(predicted, dtype=float)
        if set(np.unique(truth)) <= {0.0, 1.0} and not np.all(pred == np.round(pred)):
            pred = (pred >= cut).astype(float)  # probabilities of the positive class
        return problem, truth.astype(np.int64).astype(str), pred.astype(np.int64).astype(str)
    return problem, np.asarray([str(v) for v in actual]), np.asarray([str(v) for v in predicted])


def _classification(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    classes = sorted(set(y_true.tolist()) | set(y_pred.tolist()))
    index = {c: i for i, c in enumerate(classes)}
    t = np.fromiter((index[v] for v in y_true.tolist()), dtype=np.int64, count=len(y_true))
    p = np.fromiter((index[v] for v in y_pred.tolist()), dtype=np.int64, count=len(y_pred))
    k = len(classes)
    matrix = np.bincount(t * k + p, minlength=k * k).reshape(k, k)
    n = len(t)
    correct = np.diag(matrix).astype(float)
    support = matrix.sum(axis=1).astype(float)
    predicted = matrix.sum(axis=0).astype(float)
    precision = np.divide(correct, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(correct, support, out=np.zeros(k), where=support > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=(precision + recall) > 0)
    weights = support / n if n else support
    accuracy = float(correct.sum() / n) if n else math.nan

    def metric(value: float, proportion_of: float | None = None) -> dict[str, float | None]:
        # a proportion's binomial standard error; None where no closed form applies
        deviation = math.sqrt(max(value * (1 - value), 0.0) / proportion_of) if proportion_of else None
        return {"value": float(value), "standard_deviation": deviation}

    out: dict[str, Any] = {
        "accuracy": metric(accuracy, n),
        "precision": metric(float(np.dot(weights, precision))),
        "recall": metric(float(np.dot(weights, recall))),
        "weighted_f1": metric(float(np.dot(weights, f1))),
        "macro_f1": metric(float(f1.mean()) if k else math.nan),
        "per_class": {
            str(c): {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, c in enumerate(classes)
        },
        "confusion_matrix": {
            str(a): {str(b): int(matrix[i, j]) for j, b in enumerate(classes)} for i, a in enumerate(classes)
        },
    }
    out["f1"] = out["weighted_f1"]
    return out


def _regression(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    errors = y_pred - y_true
    mse = float(np.mean(errors**2)) if len(errors) else math.nan
    spread = float(np.sum((y_true - y_true.mean()) ** 2)) if len(y_true) else 0.0
    r2 = 1.0 - float(np.sum(errors**2)) / spread if spread > 0 else math.nan

    def metric(value: float) -> dict[str, float | None]:
        return {"value": value, "standard_deviation": None}

    return {
        "mae": metric(float(np.mean(np.abs(errors))) if len(errors) else math.nan),
        "mse": metric(mse),
        "rmse": metric(math.sqrt(mse) if mse == mse else math.nan),
        "r2": metric(r2),
    }


def _flat(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: v["value"] for k, v in metrics.items() if isinstance(v, dict) and "value" in v}


def _thresholds(
    overall: dict[str, float], windows: list[dict[str, Any]], thresholds: Mapping[str, float]
) -> list[dict[str, Any]]:
    found = []
    for name, limit in thresholds.items():
        if name not in HIGHER_IS_BETTER and name not in LOWER_IS_BETTER:
            metrics = ", ".join(sorted(HIGHER_IS_BETTER | LOWER_IS_BETTER))
            raise ArgumentError("thresholds", name, f"not a metric (use {metrics})")
        scopes = [("overall", overall)] + [(f"window {w['start']}", w["metrics"]) for w in windows]
        for scope, values in scopes:
            value = values.get(name)
            if value is None or value != value:
                continue
            if name in HIGHER_IS_BETTER and value < limit:
                check = "LessThanThreshold"
            elif name in LOWER_IS_BETTER and value > limit:
                check = "GreaterThanThreshold"
            else:
                continue
            found.append(
                {
                    "metric_name": name,
                    "constraint_check_type": check,
                    "description": f"Metric {name} with {value:.4g} was {check} '{limit:g}' ({scope})",
                }
            )
    if not overall:
        raise MonitorError("no metrics could be computed")
    return found
