"""When a bias metric outside its band is a violation: only when it is outside beyond sampling error.

    z = beyond("DPPL", 0.18, -0.1, 0.1, evidence) / evidence.errors["DPPL"]    # distance past the edge, in SEs
    z > critical_z(pairs)                                                      # Bonferroni over the run

A rate metric (DPL, DPPL, AD, RD, DAR, DRR, DI, CDDL, CDDPL: :func:`shipyard.monitor.bias_metrics.evidence`
gives their standard errors) is tested one-sided at the edge of its band: the null hypothesis is that the
true value lies on the edge; the value is a violation when it is more than ``critical_z(m)`` standard errors
past the edge, ``critical_z(m) = Φ⁻¹(1 − α/m)``, α = 0.05 (the data-drift check's family-wise level) and m
the number of (facet value, metric) pairs with a standard error judged in the run (Bonferroni). DI is tested
on the log scale (the delta method's SE of ln DI). A metric without a standard error keeps the plain band
test. A group with fewer than :data:`MIN_GROUP_ROWS` rows, in it or outside it, is never judged.
"""

from __future__ import annotations

import math
from statistics import NormalDist

from shipyard.monitor.bias_metrics import Evidence

__all__ = ["DRIFT_METRICS", "MIN_GROUP_ROWS", "SIGNIFICANCE", "beyond", "critical_z", "z_score"]

SIGNIFICANCE = 0.05  # family-wise, as the data-drift check's tests (formats.py: shipyard_test_alpha)
MIN_GROUP_ROWS = 50
# the metrics bias drift judges by default: those with a default band (and a standard error)
DRIFT_METRICS = ("AD", "CDDL", "CDDPL", "DAR", "DI", "DPL", "DPPL", "DRR", "RD")


def critical_z(pairs: int, alpha: float = SIGNIFICANCE) -> float:
    """Φ⁻¹(1 − α/m): the one-sided critical value of each of m tests (Bonferroni)."""
    return NormalDist().inv_cdf(1 - alpha / max(pairs, 1))


def _scale(name: str, value: float, log_di: float) -> float:
    if name != "DI":
        return value
    return math.log(value) if value > 0 else log_di


def beyond(name: str, value: float, low: float, high: float, evidence: Evidence) -> float:
    """How far ``value`` is past the nearest edge of ``[low, high]`` (≤ 0: inside), on the metric's scale
    (ln for DI; a DI of 0 is taken as the smoothed rates' ratio, an edge ≤ 0 as −∞)."""
    x = _scale(name, value, evidence.log_di)
    if name == "DI":
        low = math.log(low) if low > 0 else -math.inf
        high = math.log(high) if high > 0 else -math.inf
    return max(low - x, x - high)


def z_score(name: str, value: float, low: float, high: float, evidence: Evidence) -> float:
    """The distance past the edge in standard errors (``+inf`` for an infinite value)."""
    distance = beyond(name, value, low, high, evidence)
    error = evidence.errors[name]
    if math.isinf(distance):
        return distance
    return distance / error if error > 0 else math.copysign(math.inf, distance)
