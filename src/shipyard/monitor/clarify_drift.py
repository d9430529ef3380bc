"""Bias drift and feature-attribution drift, judged and written as SageMaker Model Monitor (Clarify) does.

    ndcg({"SAT": 0.70, "GPA": 0.50, "rank": 0.05}, {"rank": 0.9, "GPA": 0.5, "SAT": 0.1})    # 0.69
    bias_drift_violations(baseline_analysis, current_analysis)         # [{"facet": …, "metric_name": "DPPL", …}]
    attribution_drift_violations(baseline_analysis, current_analysis)  # [{"label": "label0", …}]
    write_violations(Path("results/bias/constraint_violations.json"), found)

The constraints of a bias or an explainability monitor are the baseline's Clarify ``analysis.json`` itself.

* Bias drift: a metric is a violation when its current value is *worse* than the baseline's, i.e. farther
  from the ideal — 1 for DI (Disparate Impact), 0 for every other metric — by more than sampling error.
  With a DPPL baseline of 0.2, a current 0.1 is fine and -0.3 is a violation if 0.1 past the allowed edge is
  beyond ``critical_z`` standard errors of the current value (the baseline's value taken as fixed; DI on the
  log scale; Bonferroni over the pairs judged: :mod:`shipyard.monitor.bias_judge`). By default only the rate
  metrics with a default band are judged (:data:`~shipyard.monitor.bias_judge.DRIFT_METRICS`); others named
  in ``metrics`` get Model Monitor's plain rule. ``tolerance`` widens the allowed distance; a metric that is
  an error, or absent on either side, is not judged, nor a group of fewer than 50 current rows on a side.
  The entries hold Model Monitor's keys only; the values judged go to ``record`` (drift.json).
* Attribution drift: per label, the nDCG of the current global SHAP ranking against the baseline's, with the
  baseline's attributions as the gains; below ``threshold`` (0.9) it is a violation.

The monitoring ``analysis_config.json`` files (Clarify's, for a bias and for an explainability monitor) are
written by :func:`bias_config` / :func:`explain_config` and read back by :func:`read_config`; Shipyard's own
settings (the facet specs as given on the command line, the bundle, the row limit) ride in a ``shipyard`` key.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from shipyard.errors import MonitorError
from shipyard.monitor.bias_judge import DRIFT_METRICS, MIN_GROUP_ROWS, SIGNIFICANCE, critical_z, z_score
from shipyard.monitor.bias_metrics import Evidence
from shipyard.monitor.clarify import facet_metrics, metric_value
from shipyard.monitor.formats import read_json, write_json
from shipyard.monitor.problems import Problems
from shipyard.monitor.violations import bias_metric, java_double

__all__ = [
    "ATTRIBUTION_THRESHOLD",
    "attribution_drift_violations",
    "attribution_scores",
    "bias_config",
    "bias_drift_violations",
    "bias_metrics",
    "explain_config",
    "facet_config",
    "global_shap",
    "ideal",
    "ndcg",
    "read_config",
    "write_violations",
]

ATTRIBUTION_THRESHOLD = 0.9
_EPSILON = 1e-9  # float noise: the same data summed in another order is not a drift
_SECTIONS = ("pre_training_bias_metrics", "post_training_bias_metrics")


# -- nDCG ----------------------------------------------------------------------------------------
def ndcg(baseline: Mapping[str, float], current: Mapping[str, float]) -> float:
    """How well the current ranking of features keeps the baseline's: Σ a(F′ᵢ)/log2(i+1) ÷ Σ a(Fᵢ)/log2(i+1),
    F the features by baseline attribution, F′ by current, a the *baseline* attribution (|value|).

    A feature absent from one side counts as 0 there; ties rank in the baseline's order (then by name).
    Without any baseline attribution (all zero) there is no ranking to lose: 1.0.
    """
    features = list(dict.fromkeys([*baseline, *current]))
    gain = {f: abs(float(baseline.get(f, 0.0))) for f in features}
    order = {f: i for i, f in enumerate(sorted(features, key=lambda f: (-gain[f], f)))}
    ideal_order = sorted(features, key=lambda f: order[f])
    current_order = sorted(features, key=lambda f: (-abs(float(current.get(f, 0.0))), order[f]))
    best = sum(gain[f] / math.log2(i + 2) for i, f in enumerate(ideal_order))
    if best <= 0:
        return 1.0
    return sum(gain[f] / math.log2(i + 2) for i, f in enumerate(current_order)) / best


def global_shap(document: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """label → feature → global SHAP value, from an explainability analysis.json."""
    labels = ((document.get("explanations") or {}).get("kernel_shap")) or {}
    if not isinstance(labels, dict):
        raise MonitorError("analysis.json: explanations.kernel_shap is not an object")
    return {
        str(label): {str(k): float(v) for k, v in (entry.get("global_shap_values") or {}).items()}
        for label, entry in labels.items()
        if isinstance(entry, dict)
    }


def attribution_scores(baseline_doc: Mapping[str, Any], current_doc: Mapping[str, Any]) -> dict[str, float]:
    """label → nDCG of the current ranking against the baseline's (labels on both sides only)."""
    base, now = global_shap(baseline_doc), global_shap(current_doc)
    return {label: ndcg(base[label], now[label]) for label in base if label in now}


def attribution_drift_violations(
    baseline_doc: Mapping[str, Any], current_doc: Mapping[str, Any], threshold: float = ATTRIBUTION_THRESHOLD
) -> list[dict[str, Any]]:
    """Model Monitor's ``feature_attribution_drift_check`` entries: one per label whose nDCG < ``threshold``."""
    return [
        {
            "label": label,
            "metric_name": "shap",
            "constraint_check_type": "feature_attribution_drift_check",
            "description": f"Feature attribution drift {java_double(score)} exceeds threshold {java_double(threshold)}",
        }
        for label, score in attribution_scores(baseline_doc, current_doc).items()
        if score < threshold
    ]


# -- bias drift ----------------------------------------------------------------------------------
def ideal(metric: str) -> float:
    """The value of no bias: 1 for DI (a ratio), 0 for every other metric."""
    return 1.0 if metric == "DI" else 0.0


def bias_metrics(document: Mapping[str, Any]) -> Iterator[tuple[str, str, str, str, float | None]]:
    """``(stage, facet, facet value, metric, value)`` of every metric of a bias analysis.json."""
    for stage in _SECTIONS:
        for facet, value_or_threshold, metric in facet_metrics(dict(document), stage):
            yield stage, facet, value_or_threshold, str(metric.get("name")), metric_value(metric)


def bias_drift_violations(
    baseline_doc: Mapping[str, Any],
    current_doc: Mapping[str, Any],
    *,
    tolerance: float = 0.0,
    evidence: Mapping[tuple[str, str], Evidence] | None = None,
    metrics: Sequence[str] | None = None,
    problems: Problems | None = None,
    record: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Model Monitor's ``bias_drift_check`` entries: each judged metric whose current value is farther from
    the ideal than the baseline's (by more than ``tolerance``), matched on stage, facet, facet value and name.

    ``metrics``: those judged (default :data:`DRIFT_METRICS`). With ``evidence`` (the current analysis'), a
    metric with a standard error is a violation only when it is past the allowed edge by more than
    ``critical_z(m)`` of them, and a group under 50 rows is not judged (a problem). ``record`` receives the
    judgement: the significance level, the pairs tested, the critical z and every metric past its edge."""
    chosen = set(DRIFT_METRICS if metrics is None else metrics)
    problems = problems if problems is not None else Problems()
    baseline = {key[:4]: key[4] for key in bias_metrics(baseline_doc)}
    found: list[dict[str, Any]] = []
    tested: list[tuple[str, str, str, float, float, float]] = []
    flagged: list[dict[str, Any]] = []
    small: set[tuple[str, str]] = set()
    pairs = 0
    for stage, facet, value_or_threshold, name, value in bias_metrics(current_doc):
        if name not in chosen:
            continue
        reference = baseline.get((stage, facet, value_or_threshold, name))
        if value is None or reference is None or math.isnan(value) or math.isnan(reference):
            continue
        known = evidence.get((facet, value_or_threshold)) if evidence is not None else None
        if known is not None and min(known.rows, known.rest) < MIN_GROUP_ROWS:
            if (facet, value_or_threshold) not in small:
                small.add((facet, value_or_threshold))
                problems.add(
                    "too few rows to judge",
                    f"facet {facet} = {value_or_threshold}: {known.rows:,} rows in the group, {known.rest:,} "
                    f"outside (< {MIN_GROUP_ROWS} on one side); not judged",
                )
            continue
        target = ideal(name)
        allowed, distance = abs(reference - target) + tolerance, abs(value - target)
        if math.isinf(allowed):
            continue
        with_error = known is not None and name in known.errors
        pairs += with_error
        if distance <= allowed + _EPSILON:
            continue
        if known is not None and with_error:
            z = z_score(name, value, target - allowed, target + allowed, known)
            tested.append((facet, value_or_threshold, name, value, reference, z))
        else:
            found.append(bias_metric(facet, value_or_threshold, name, value, "bias_drift_check"))
            flagged.append(_judged(facet, value_or_threshold, name, value, reference, None, True))
    critical = critical_z(pairs)
    for facet, group, name, value, reference, z in tested:
        significant = z > critical
        if significant:
            found.append(bias_metric(facet, group, name, value, "bias_drift_check"))
        else:
            problems.add(
                "not significant",
                f"facet {facet} = {group}: {name} {value:.4g} is farther from {ideal(name):g} than the baseline's "
                f"{reference:.4g}, but within sampling error (z = {z:.2f} ≤ {critical:.2f}, Bonferroni over "
                f"{pairs} tests); not a violation",
            )
        flagged.append(_judged(facet, group, name, value, reference, z, significant))
    if record is not None:
        record.update(
            {
                "metrics": sorted(chosen),
                "alpha": SIGNIFICANCE,
                "tests": pairs,
                "critical_z": critical,
                "past_the_edge": flagged,
            }
        )
    return found


def _judged(
    facet: str, group: str, name: str, value: float, reference: float, z: float | None, violation: bool
) -> dict[str, Any]:
    return {
        "facet": facet,
        "facet_value": group,
        "metric_name": name,
        "baseline_value": reference,
        "value": value if math.isfinite(value) else java_double(value),
        "z": None if z is None or not math.isfinite(z) else z,
        "violation": violation,
    }


def write_violations(path: Path, violations: Sequence[Mapping[str, Any]]) -> Path:
    """``constraint_violations.json`` as Clarify's monitors write it: ``{"version": "1.0", "violations": […]}``."""
    return write_json(path, {"version": "1.0", "violations": list(violations)})


# -- analysis_config.json ------------------------------------------------------------------------
def _literal(text: str) -> Any:
    """``"1"`` → 1, ``"0.5"`` → 0.5, anything else stays text (how Clarify's configs hold label values)."""
    try:
        number = float(text)
    except ValueError:
        return text
    return int(number) if number.is_integer() and "." not in text and "e" not in text.lower() else number


def facet_config(spec: str) -> dict[str, Any]:
    """A facet as given on the command line (``gender``, ``gender=female,other``, ``age>40``) in Clarify's
    ``facet`` entry: ``{"name_or_index": …, "value_or_threshold": […]}``."""
    if ">" in spec:
        name, _, threshold = spec.partition(">")
        return {"name_or_index": name.strip(), "value_or_threshold": [_literal(threshold.strip())]}
    name, sep, values = spec.partition("=")
    entry: dict[str, Any] = {"name_or_index": name.strip()}
    if sep:
        entry["value_or_threshold"] = [_literal(v.strip()) for v in values.split(",") if v.strip()]
    return entry


def bias_config(
    *,
    headers: Sequence[str],
    features: Sequence[str],
    label: str,
    facets: Sequence[str],
    positive: Sequence[str],
    predicted: str | None,
    group_by: str | None,
    probability_threshold: float,
    bundle: Path | None,
    types: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A bias monitor's analysis_config.json (Clarify's ``BiasAnalysisConfig``), plus what Shipyard needs to
    redo the analysis on captured traffic exactly as on the baseline."""
    config: dict[str, Any] = {
        "version": "1.0",
        "headers": list(headers),
        "label": label,
        "label_values_or_threshold": [_literal(v.lstrip(">")) for v in positive],
        "facet": [facet_config(spec) for spec in facets],
        "methods": {"post_training_bias": {"methods": "all"}},
        "probability_threshold": probability_threshold,
    }
    if group_by:
        config["group_variable"] = group_by
    config["shipyard"] = {
        "features": list(features),
        "facets": list(facets),
        "positive": list(positive),
        "predicted": predicted,
        "group_by": group_by,
        "bundle": None if bundle is None else str(bundle.resolve()),
        "types": dict(types or {}),  # the facet and group columns' kinds: integer, float or text
    }
    return config


def explain_config(
    *,
    features: Sequence[str],
    baseline: Sequence[Sequence[float]],
    samples: int | None,
    agg: str,
    use_logit: bool,
    seed: int,
    label_headers: Sequence[str] | None,
    bundle: Path,
    max_rows: int,
) -> dict[str, Any]:
    """An explainability monitor's analysis_config.json (Clarify's ``ExplainabilityAnalysisConfig``); the
    SHAP baseline rows are written out, so a check explains traffic against the very same rows."""
    shap: dict[str, Any] = {
        "baseline": [[float(v) for v in row] for row in baseline],
        "agg_method": agg,
        "use_logit": use_logit,
        "save_local_shap_values": True,
        "seed": seed,
    }
    if samples is not None:
        shap["num_samples"] = samples
    predictor: dict[str, Any] = {"model_name": bundle.resolve().name, "content_type": "text/csv"}
    predictor["accept_type"] = "application/json"
    if label_headers:
        predictor["label_headers"] = list(label_headers)
    return {
        "version": "1.0",
        "headers": list(features),
        "methods": {"shap": shap},
        "predictor": predictor,
        "shipyard": {"bundle": str(bundle.resolve()), "max_rows": max_rows},
    }


def read_config(path: Path) -> dict[str, Any]:
    """An analysis_config.json written by ``shipyard monitor baseline --bias`` or ``--explain``."""
    config = read_json(path, "analysis_config.json")
    if not isinstance(config, dict) or "methods" not in config or "headers" not in config:
        raise MonitorError(f"{path}: not a Clarify analysis_config.json (no methods or headers)")
    return config
