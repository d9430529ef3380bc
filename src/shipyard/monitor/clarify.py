"""SageMaker Clarify's analysis.json: metric entries as smclarify writes them, and the file read back.

    entry = metric_entry("DI", 0.71)          # {"name": "DI", "description": "Disparate Impact (DI)", "value": 0.71}
    metric_entry("TE", math.inf)["value"]     # "Infinity" (smclarify's ``inf_as_str``)
    metric_entry("FT", None, "FlipTest does not support non-numeric columns")   # value null, plus "error"
    document = read_analysis(Path("out/analysis.json"))

A bias analysis holds ``pre_training_bias_metrics`` and/or ``post_training_bias_metrics``, each
``{"label", "label_value_or_threshold", "facets": {column: [{"value_or_threshold", "metrics": [...]}]}}``
with the metrics sorted by name; an explainability analysis holds ``explanations``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from shipyard.errors import MonitorError
from shipyard.monitor.formats import read_json

__all__ = ["DESCRIPTIONS", "facet_metrics", "metric_entry", "metric_value", "read_analysis"]

# the first line of each smclarify 0.5 metric's docstring ("Kullback-Liebler" is its spelling)
DESCRIPTIONS: dict[str, str] = {
    "CI": "Class Imbalance (CI)",
    "DPL": "Difference in Positive Proportions in Labels (DPL)",
    "KL": "Kullback-Liebler Divergence (KL)",
    "JS": "Jensen-Shannon Divergence (JS)",
    "LP": "L-p Norm (LP)",
    "TVD": "Total Variation Distance (TVD)",
    "KS": "Kolmogorov-Smirnov Distance (KS)",
    "CDDL": "Conditional Demographic Disparity in Labels (CDDL)",
    "DPPL": "Difference in Positive Proportions in Predicted Labels (DPPL)",
    "DI": "Disparate Impact (DI)",
    "DCA": "Difference in Conditional Acceptance (DCA)",
    "DCR": "Difference in Conditional Rejection (DCR)",
    "RD": "Recall Difference (RD)",
    "SD": "Specificity Difference (SD)",
    "DAR": "Difference in Acceptance Rates (DAR)",
    "DRR": "Difference in Rejection Rates (DRR)",
    "AD": "Accuracy Difference (AD)",
    "CDDPL": "Conditional Demographic Disparity in Predicted Labels (CDDPL)",
    "TE": "Treatment Equality (TE)",
    "FT": "Flip Test (FT)",
    "GE": "Generalized Entropy (GE)",
}
_SECTIONS = ("pre_training_bias_metrics", "post_training_bias_metrics", "explanations")


def metric_entry(name: str, value: float | None, error: str | None = None) -> dict[str, Any]:
    """One metric as Clarify writes it (±inf as the strings "Infinity"/"-Infinity")."""
    entry: dict[str, Any] = {"name": name, "description": DESCRIPTIONS.get(name, name), "value": None}
    if value is not None and error is None:
        number = float(value)
        entry["value"] = ("Infinity" if number > 0 else "-Infinity") if math.isinf(number) else number
    if error is not None:
        entry["error"] = error
    return entry


def metric_value(entry: dict[str, Any]) -> float | None:
    """The entry's value as a float (None for an error entry)."""
    value = entry.get("value")
    if value is None:
        return None
    if isinstance(value, str):
        try:
            return float(value.replace("Infinity", "inf"))
        except ValueError:
            raise MonitorError(f"metric {entry.get('name')}: value {value!r} is not a number") from None
    return float(value)


def facet_metrics(document: dict[str, Any], section: str) -> list[tuple[str, str, dict[str, Any]]]:
    """``(facet, value_or_threshold, metric entry)`` for every metric of ``section`` in an analysis document."""
    found = []
    for facet, entries in ((document.get(section) or {}).get("facets") or {}).items():
        for entry in entries:
            for metric in entry.get("metrics", []):
                found.append((facet, str(entry.get("value_or_threshold")), metric))
    return found


def read_analysis(path: Path) -> dict[str, Any]:
    """An analysis.json (Clarify's or Shipyard's); MonitorError when the file is not one."""
    document = read_json(Path(path), "analysis")
    if not isinstance(document, dict) or not any(key in document for key in _SECTIONS):
        raise MonitorError(f"{path}: not a Clarify analysis.json (no {', '.join(_SECTIONS)})")
    for section in _SECTIONS[:2]:
        body = document.get(section)
        if body is None:
            continue
        if not isinstance(body, dict) or not isinstance(body.get("facets"), dict):
            raise MonitorError(f"{path}: {section} has no facets map")
        for facet, entries in body["facets"].items():
            if not isinstance(entries, list) or not all(isinstance(e, dict) and "metrics" in e for e in entries):
                raise MonitorError(f"{path}: {section}.facets.{facet} is not a list of value_or_threshold entries")
    return document
