"""Model Monitor's file formats: ``statistics.json``, ``constraints.json``, ``constraint_violations.json``.

The layouts are those AWS documents for Model Monitor's prebuilt container ("Schema for Statistics",
"Schema for Constraints", "Schema for Violations"), so tools that read Model Monitor's output read ours.
Shipyard's own settings ride along in keys Model Monitor does not use (``shipyard_*`` in
``monitoring_config.distribution_constraints``, ``comparison_method`` / ``comparison_threshold`` in a
feature's ``monitoring_config_overrides``, see :mod:`constraints`); the JSON Schemas in ``docs/monitor/``
describe every file.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import orjson

from shipyard.errors import MonitorError
from shipyard.monitor.profile import NumericProfile, StringProfile

__all__ = [
    "DEFAULTS",
    "DOMAIN_MAX_VALUES",
    "constraints_document",
    "feature_statistics",
    "read_json",
    "statistics_document",
    "write_json",
]

#: the values ``shipyard monitor baseline`` writes into ``monitoring_config`` (see docs/monitor.md for why)
DEFAULTS: dict[str, Any] = {
    "evaluate_constraints": "Enabled",
    "emit_metrics": "Enabled",
    # Model Monitor's meaning (its baseline jobs write 1.0; its violations say "Expected match: 100.0%"):
    "datatype_check_threshold": 1.0,  # share of a feature's values that must be of its type
    "domain_content_threshold": 1.0,  # share of a string feature's values that must be in its domain
    "distribution_constraints": {
        "perform_comparison": "Enabled",
        "comparison_threshold": 0.1,  # numeric: Wasserstein distance / baseline standard deviation
        "comparison_method": "Robust",
        "categorical_comparison_threshold": 0.1,  # categorical: Jensen–Shannon distance (base 2)
        "categorical_drift_method": "LInfinity",
        "shipyard_numerical_method": "auto",  # ks under shipyard_small_sample_rows rows, else wasserstein
        "shipyard_categorical_method": "auto",  # chi_squared under it, else jensen_shannon
        "shipyard_small_sample_rows": 1000,
        "shipyard_test_alpha": 0.05,  # family-wise (Holm) significance of the small-sample tests
        "shipyard_psi_threshold": 0.2,  # reported; decides only where a feature's method is psi
        "shipyard_completeness_slack_sigmas": 4.0,
    },
}
DOMAIN_MAX_VALUES = 50


def _number(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


def inferred_type(profile: NumericProfile | StringProfile | None) -> str:
    """Model Monitor's type of a feature: Deequ's ``DataType`` rule on each value as it was written.

    Nothing but missing values: ``Unknown``; any text: ``String``; else any number written with a fraction
    (a float, ``2.0`` included): ``Fractional``; else ``Integral``. A numeric feature keeps its numeric type
    in a check's statistics even when text came in (that is what its ``data_type_check`` reports).
    """
    if profile is None:
        return "Unknown"
    if isinstance(profile, StringProfile):
        return "String" if profile.count else "Unknown"
    if not profile.count:
        return "Unknown" if not profile.mismatched else "Fractional"
    return "Fractional" if profile.fractional else "Integral"


def feature_statistics(name: str, profile: NumericProfile | StringProfile | None, rows: int) -> dict[str, Any]:
    """One entry of ``statistics.json``'s ``features``."""
    kind = inferred_type(profile)
    if isinstance(profile, NumericProfile) and kind != "Unknown":
        return {
            "name": name,
            "inferred_type": kind,
            "numerical_statistics": {
                "common": {"num_present": profile.count + profile.mismatched, "num_missing": profile.missing},
                "mean": _number(profile.mean),
                "sum": _number(profile.total),
                "std_dev": _number(profile.std),
                "min": _number(profile.min),
                "max": _number(profile.max),
                "distribution": {"kll": {"buckets": profile.buckets(), "sketch": profile.sketch.to_dict()}},
            },
        }
    if isinstance(profile, StringProfile) and kind != "Unknown":
        ranked = sorted(profile.counts.items(), key=lambda item: (-item[1], item[0]))
        return {
            "name": name,
            "inferred_type": "String",
            "string_statistics": {
                "common": {"num_present": profile.count, "num_missing": profile.missing},
                "distinct_count": float(len(profile.counts)),
                "distribution": {"categorical": {"buckets": [{"value": v, "count": c} for v, c in ranked]}},
            },
        }
    missing = rows if profile is None else profile.missing
    return {
        "name": name,
        "inferred_type": "Unknown",
        "string_statistics": {"common": {"num_present": 0, "num_missing": missing}, "distinct_count": 0.0},
    }


def statistics_document(features: list[dict[str, Any]], rows: int) -> dict[str, Any]:
    return {"version": 0.0, "dataset": {"item_count": rows}, "features": features}


def constraints_document(statistics: dict[str, Any]) -> dict[str, Any]:
    """The constraints a baseline suggests: types, completeness, non-negativity, small domains, drift thresholds."""
    features = []
    for feature in statistics["features"]:
        kind = feature["inferred_type"]
        stats = feature.get("numerical_statistics") or feature.get("string_statistics") or {}
        common = stats.get("common", {})
        present, missing = common.get("num_present", 0), common.get("num_missing", 0)
        entry: dict[str, Any] = {
            "name": feature["name"],
            "inferred_type": kind,
            "completeness": present / (present + missing) if present + missing else 0.0,
        }
        if kind in ("Integral", "Fractional"):
            low = stats.get("min")
            entry["num_constraints"] = {"is_non_negative": low is not None and low >= 0}
        elif kind == "String":
            buckets = stats.get("distribution", {}).get("categorical", {}).get("buckets", [])
            if 0 < len(buckets) <= DOMAIN_MAX_VALUES:
                entry["string_constraints"] = {"domains": sorted(b["value"] for b in buckets)}
        features.append(entry)
    return {"version": 0.0, "features": features, "monitoring_config": orjson.loads(orjson.dumps(DEFAULTS))}


def write_json(path: Path, document: Any, *, indent: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    option = orjson.OPT_SERIALIZE_NUMPY | (orjson.OPT_INDENT_2 if indent else 0)
    path.write_bytes(orjson.dumps(document, option=option) + b"\n")
    return path


def read_json(path: Path, what: str) -> Any:
    try:
        return orjson.loads(path.read_bytes())
    except FileNotFoundError:
        raise MonitorError(f"{path}: no {what} here (run `shipyard monitor baseline` first?)") from None
    except orjson.JSONDecodeError as exc:
        raise MonitorError(f"{path}: not valid JSON ({exc})") from None
