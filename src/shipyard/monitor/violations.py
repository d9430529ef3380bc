"""Model Monitor's violations, worded as its prebuilt container words them, with Shipyard's figures alongside.

``constraint_violations.json`` entries have Model Monitor's three keys (``feature_name``,
``constraint_check_type``, ``description``); readers such as AWS's own notebooks parse the description, e.g.
``re.search("distance: (.+) exceeds threshold: (.+)", description)`` followed by ``float()`` of both groups.
So the description holds exactly Model Monitor's sentence, numbers written as its JVM writes a ``double``
(``100.0``, ``99.64592817400101``, ``1.0E-4``), and everything else Shipyard knows (the method, the
p-value, counts) goes in extra keys next to them.

Wording, and where it comes from:

* ``data_type_check`` — ``Data type match requirement is not met. Expected data type: Integral, Expected
  match: 100.0%. Observed: Only 99.64592817400101% of data is Integral.`` (an execution's output in
  amazon-sagemaker-examples' Model Monitor introduction notebook);
* ``baseline_drift_check`` — ``Baseline drift distance: 0.6 exceeds threshold: 0.1`` (the sentence AWS's
  post-processing and CloudWatch examples parse);
* ``bias_drift_check`` (and Shipyard's own ``bias_threshold_check``) — ``Value 0.0751544567666083 does not
  meet the constraint requirement``, with the keys ``facet``, ``facet_value`` and ``metric_name`` (AWS's bias
  drift violations page); ``feature_attribution_drift_check`` is written by :mod:`shipyard.monitor.clarify_drift`;
* ``completeness_check``, ``categorical_values_check``, ``missing_column_check``, ``extra_column_check`` —
  the same pattern (requirement, expected, observed); no published execution output was found to check
  these four against word for word.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "bias_metric",
    "categorical_values",
    "completeness",
    "data_type",
    "drift",
    "extra_column",
    "java_double",
    "missing_column",
]


def java_double(value: float) -> str:
    """``value`` as Java's ``Double.toString`` writes it: ``0.1``, ``100.0``, ``1.0E7``, ``1.0E-4``."""
    x = float(value)
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    if 1e-3 <= abs(x) < 1e7:
        text = np.format_float_positional(x, unique=True, trim="0")  # shortest digits that read back as x
        return text if "." in text and not text.endswith(".") else text.rstrip(".") + ".0"
    mantissa, _, exponent = np.format_float_scientific(x, unique=True, trim="0").partition("e")
    if mantissa.endswith("."):
        mantissa += "0"
    elif "." not in mantissa:
        mantissa += ".0"
    return f"{mantissa}E{int(exponent)}"


def _percent(share: float) -> str:
    return java_double(100.0 * share)


def _entry(name: str, check: str, description: str, **extra: Any) -> dict[str, Any]:
    return {"feature_name": name, "constraint_check_type": check, "description": description, **extra}


def data_type(
    name: str, expected_type: str, required: float, observed: float, wrong: int, checked: int
) -> dict[str, Any]:
    """A share ``observed`` of the ``checked`` values is of ``expected_type``; at least ``required`` must be."""
    return _entry(
        name,
        "data_type_check",
        f"Data type match requirement is not met. Expected data type: {expected_type}, "
        f"Expected match: {_percent(required)}%. Observed: Only {_percent(observed)}% of data is {expected_type}.",
        values_checked=checked,
        values_mismatched=wrong,
    )


def completeness(name: str, expected: float, observed: float, missing: int, total: int) -> dict[str, Any]:
    return _entry(
        name,
        "completeness_check",
        f"Data completeness requirement is not met. Expected completeness: {_percent(expected)}%. "
        f"Observed: Only {_percent(observed)}% of data is complete.",
        values_missing=missing,
        values_total=total,
    )


def categorical_values(
    name: str, required: float, observed: float, domain_size: int, outside: list[str]
) -> dict[str, Any]:
    """A share ``observed`` of the values is in the baseline's domain; at least ``required`` must be."""
    return _entry(
        name,
        "categorical_values_check",
        f"Categorical values requirement is not met. Expected match: {_percent(required)}%. "
        f"Observed: Only {_percent(observed)}% of data is within the baseline domain.",
        domain_size=domain_size,
        values_outside_domain=outside,
    )


def drift(name: str, distance: float, threshold: float, **extra: Any) -> dict[str, Any]:
    """``distance`` (the method's score, or its test statistic) above ``threshold``; ``extra``: the method,
    the p-value and the significance level for a test."""
    return _entry(
        name,
        "baseline_drift_check",
        f"Baseline drift distance: {java_double(distance)} exceeds threshold: {java_double(threshold)}",
        distance=distance,
        threshold=threshold,
        **extra,
    )


def missing_column(name: str, current: int, baseline: int) -> dict[str, Any]:
    return _entry(
        name,
        "missing_column_check",
        f"There are missing columns in current dataset. Number of columns in current dataset: {current}, "
        f"Number of columns in baseline constraints: {baseline}",
    )


def extra_column(name: str, current: int, baseline: int, rows: int) -> dict[str, Any]:
    return _entry(
        name,
        "extra_column_check",
        f"There are extra columns in current dataset. Number of columns in current dataset: {current}, "
        f"Number of columns in baseline constraints: {baseline}",
        rows=rows,
    )


def bias_metric(facet: str, facet_value: str, metric: str, value: float, check: str) -> dict[str, Any]:
    """A bias metric that does not meet its constraint: ``bias_drift_check`` against a baseline, or
    ``bias_threshold_check`` against a band (Shipyard's own type); exactly the five keys of AWS's entries."""
    return {
        "facet": facet,
        "facet_value": facet_value,
        "metric_name": metric,
        "constraint_check_type": check,
        "description": f"Value {java_double(value)} does not meet the constraint requirement",
    }
