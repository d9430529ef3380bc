"""Baseline files in the exact shape a SageMaker Model Monitor baseline job writes them.

The shape is that of a real job's output (amazon-sagemaker-examples, ``sagemaker_model_monitor/introduction``,
``baseline_job.baseline_statistics()`` and ``suggested_constraints()``): ``"version": 0.0``; numeric features
with ``numerical_statistics`` (``common``, ``mean``, ``sum``, ``std_dev``, ``min``, ``max``) and a Deequ KLL
distribution (``buckets``: ten equal-width ``lower_bound``/``upper_bound``/``count``; ``sketch``:
``parameters`` ``{"c": 0.64, "k": 2048.0}`` and ``data``, a list of compactor levels whose items weigh 2^level,
in no particular order); string features with ``string_statistics`` and ``categorical`` buckets;
constraints without ``monitoringConfigOverrides``, and ``monitoring_config`` with Model Monitor's own keys
(``datatype_check_threshold`` and ``domain_content_threshold`` at 1.0, ``comparison_method`` ``Robust``).
The values are this test's own (drawn from known distributions), not copied from any job.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _kll(values: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
    """A KLL sketch as Deequ serialises it: level h holds items standing for 2^h values each, unordered."""
    items = rng.permutation(values)
    levels: list[list[float]] = []
    while len(items):
        levels.append([float(v) for v in items[:1024]])
        compacted = np.sort(items[1024:])[rng.integers(2) :: 2]  # the rest, halved into the next level
        items = rng.permutation(compacted)
    return {"parameters": {"c": 0.64, "k": 2048.0}, "data": levels}


def _buckets(values: np.ndarray) -> list[dict[str, float]]:
    low, high = float(values.min()), float(values.max())
    edges = np.linspace(low, high, 11)
    counts, _ = np.histogram(values, edges)
    return [
        {"lower_bound": float(edges[i]), "upper_bound": float(edges[i + 1]), "count": float(counts[i])}
        for i in range(10)
    ]


def numeric_feature(name: str, kind: str, values: np.ndarray, rng: np.random.Generator) -> dict[str, Any]:
    return {
        "name": name,
        "inferred_type": kind,
        "numerical_statistics": {
            "common": {"num_present": len(values), "num_missing": 0},
            "mean": float(values.mean()),
            "sum": float(values.sum()),
            "std_dev": float(values.std()),
            "min": float(values.min()),
            "max": float(values.max()),
            "distribution": {"kll": {"buckets": _buckets(values), "sketch": _kll(values, rng)}},
        },
    }


def string_feature(name: str, values: list[str]) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return {
        "name": name,
        "inferred_type": "String",
        "string_statistics": {
            "common": {"num_present": len(values), "num_missing": 0},
            "distinct_count": float(len(counts)),
            "distribution": {"categorical": {"buckets": [{"value": v, "count": float(c)} for v, c in counts.items()]}},
        },
    }


def baseline_job_files(
    columns: dict[str, np.ndarray | list[str]], seed: int = 0
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(statistics.json, constraints.json)`` of ``columns`` as a Model Monitor baseline job writes them."""
    rng = np.random.default_rng(seed)
    features, constraints = [], []
    for name, values in columns.items():
        if isinstance(values, list):
            features.append(string_feature(name, values))
            constraints.append(
                {
                    "name": name,
                    "inferred_type": "String",
                    "completeness": 1.0,
                    "string_constraints": {"domains": sorted(set(values))},
                }
            )
            continue
        kind = "Integral" if np.issubdtype(values.dtype, np.integer) else "Fractional"
        x = values.astype(np.float64)
        features.append(numeric_feature(name, kind, x, rng))
        constraints.append(
            {
                "name": name,
                "inferred_type": kind,
                "completeness": 1.0,
                "num_constraints": {"is_non_negative": bool(x.min() >= 0)},
            }
        )
    rows = len(next(iter(columns.values())))
    statistics = {"version": 0.0, "dataset": {"item_count": rows}, "features": features}
    monitoring = {
        "evaluate_constraints": "Enabled",
        "emit_metrics": "Enabled",
        "datatype_check_threshold": 1.0,
        "domain_content_threshold": 1.0,
        "distribution_constraints": {
            "perform_comparison": "Enabled",
            "comparison_threshold": 0.1,
            "comparison_method": "Robust",
            "categorical_comparison_threshold": 0.1,
            "categorical_drift_method": "LInfinity",
        },
    }
    return statistics, {"version": 0.0, "features": constraints, "monitoring_config": monitoring}
