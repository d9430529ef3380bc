"""Drift scores between a baseline feature and the current data, from fixed bins set by the baseline.

Numeric features: the baseline's KLL sketch gives 1,000 quantile bins (edges at probabilities 0, 0.001, …, 1,
with the exact min and max at the ends). The current data is only counted against those edges, so every
score below comes from two CDFs evaluated at the same ~1,000 points:

* ``wasserstein`` — W1 (area between the CDFs, trapezoids between edges plus the exact tail mass outside
  the baseline's range) divided by the baseline's standard deviation: "how many σ did the mass move".
  A shift of 0.3 σ scores 0.3 whatever the shape; sampling noise at 200 k vs 1 M rows scores ~0.005.
* ``ks`` — the largest CDF gap and its two-sample p-value (computed exactly from the raw values for
  small samples, which are kept).
* ``psi`` — population stability index over the baseline's deciles.
* ``jensen_shannon`` — Jensen–Shannon distance (base 2, in [0, 1]) over the baseline's 20 quantile bins.

Categorical features: value shares against the baseline's — ``jensen_shannon`` distance, ``linf`` (largest
share change, Model Monitor's LInfinity), ``chi_squared`` (goodness of fit to the baseline shares) and ``psi``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from shipyard.monitor.sketch import KLLSketch, weighted_cdf, weighted_quantiles

__all__ = [
    "TEST_METHODS",
    "CategoricalReference",
    "NumericReference",
    "categorical_scores",
    "critical_value",
    "holm",
    "holm_levels",
    "numeric_scores",
]

TEST_METHODS = frozenset({"ks", "chi_squared"})
_EPS = 1e-4


@dataclass
class NumericReference:
    edges: np.ndarray
    cdf: np.ndarray  # P(X <= edge) in the baseline
    values: np.ndarray  # the sketch's items and weights (exact small-sample KS)
    weights: np.ndarray
    std: float
    count: int
    deciles: np.ndarray  # indexes into edges
    twentieths: np.ndarray

    @classmethod
    def from_statistics(cls, feature: dict[str, Any], bins: int = 1000) -> NumericReference:
        stats = feature["numerical_statistics"]
        kll = stats.get("distribution", {}).get("kll", {})
        if kll.get("sketch", {}).get("data"):
            values, weights = KLLSketch.from_dict(kll["sketch"]).items()
        else:  # a statistics file with buckets only: their midpoints stand for their counts
            buckets = kll.get("buckets") or []
            values = np.array([(b["lower_bound"] + b["upper_bound"]) / 2 for b in buckets], dtype=np.float64)
            weights = np.array([b["count"] for b in buckets], dtype=np.float64)
        if not len(values):
            raise ValueError(f"feature {feature['name']}: the baseline has no numeric distribution")
        low = stats.get("min")
        high = stats.get("max")
        probabilities = np.linspace(0.0, 1.0, bins + 1)
        grid = weighted_quantiles(values, weights, probabilities)
        grid[0] = values[0] if low is None else min(low, values[0])
        grid[-1] = values[-1] if high is None else max(high, values[-1])
        grid = np.maximum.accumulate(grid)
        edges = np.unique(grid)
        cdf = weighted_cdf(values, weights, edges)
        cdf[-1] = 1.0
        deciles = np.searchsorted(edges, grid[bins // 10 : bins : bins // 10])
        twentieths = np.searchsorted(edges, grid[bins // 20 : bins : bins // 20])
        std = stats.get("std_dev")
        count = stats.get("common", {}).get("num_present") or int(np.cumsum(weights)[-1])
        return cls(
            edges, cdf, values, weights, float(std or 0.0), int(count), np.unique(deciles), np.unique(twentieths)
        )


def numeric_scores(
    ref: NumericReference, le: np.ndarray, n: int, below: float, above: float, small: np.ndarray | None = None
) -> dict[str, float]:
    """Every numeric score for a current sample summarised as counts at ``ref.edges`` (see the module doc)."""
    if n == 0:
        return {}
    current = le / n
    gap = np.abs(ref.cdf - current)
    widths = np.diff(ref.edges)
    w1 = float(np.dot((gap[:-1] + gap[1:]) * 0.5, widths)) + (below + above) / n
    # a constant baseline feature: any movement at all is drift
    normalised = w1 / ref.std if ref.std > 0 else (0.0 if w1 <= 1e-12 else math.inf)
    ks = float(gap.max())
    if small is not None and len(small):
        ks = _exact_ks(ref, small)
    scores = {
        "wasserstein": normalised,
        "wasserstein_raw": w1,
        "ks": ks,
        "ks_pvalue": _ks_pvalue(ks, n, ref.count),
        "psi": _psi(_shares(ref.cdf, ref.deciles), _shares(current, ref.deciles)),
        "jensen_shannon": _js(_shares(ref.cdf, ref.twentieths), _shares(current, ref.twentieths)),
    }
    return scores


def _shares(cdf: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    points = np.concatenate([[0.0], cdf[cuts], [1.0]])
    return np.clip(np.diff(points), 0.0, None)


def _exact_ks(ref: NumericReference, sample: np.ndarray) -> float:
    points = np.unique(np.concatenate([sample, ref.edges]))
    ref_right = weighted_cdf(ref.values, ref.weights, points)
    cur_right = np.searchsorted(sample, points, side="right") / len(sample)
    # left limits: P(X < point)
    ref_left = np.concatenate([[0.0], ref_right[:-1]])
    cur_left = np.searchsorted(sample, points, side="left") / len(sample)
    return float(max(np.abs(ref_right - cur_right).max(), np.abs(ref_left - cur_left).max()))


def _ks_scale(n: int, m: int) -> float:
    """Stephens' factor: the KS statistic times it follows Kolmogorov's distribution (good from n ≈ 5)."""
    effective = n * m / (n + m) if m else float(n)
    root = math.sqrt(max(effective, 1.0))
    return root + 0.12 + 0.11 / root


def _ks_pvalue(d: float, n: int, m: int) -> float:
    """Two-sample KS p-value: Kolmogorov's limit with Stephens' small-sample correction."""
    from scipy.special import kolmogorov

    return float(kolmogorov(_ks_scale(n, m) * d))


def critical_value(method: str, level: float, *, rows: int, baseline_rows: int, categories: int) -> float:
    """The test statistic above which ``method``'s p-value is below ``level`` (the inverse of the p-values
    :func:`numeric_scores` and :func:`categorical_scores` give, so the two always agree)."""
    from scipy.special import chdtri, kolmogi

    level = min(max(level, 1e-300), 1.0)
    if method == "ks":
        return float(kolmogi(level)) / _ks_scale(rows, baseline_rows)
    if method == "chi_squared":
        return float(chdtri(max(1, categories), level))
    raise ValueError(f"{method} is not a test")


def _psi(expected: np.ndarray, actual: np.ndarray) -> float:
    e = np.maximum(expected, _EPS)
    a = np.maximum(actual, _EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def _js(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon distance, base 2 (0: same shares, 1: disjoint)."""
    if p.sum() <= 0 or q.sum() <= 0:
        return 0.0
    p, q = p / p.sum(), q / q.sum()
    mixture = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        present = a > 0
        return float(np.sum(a[present] * np.log2(a[present] / mixture[present])))

    return float(math.sqrt(max(0.0, (kl(p) + kl(q)) / 2)))


@dataclass
class CategoricalReference:
    counts: dict[str, float]
    total: float

    @classmethod
    def from_statistics(cls, feature: dict[str, Any]) -> CategoricalReference:
        buckets = feature["string_statistics"].get("distribution", {}).get("categorical", {}).get("buckets", [])
        counts = {str(b["value"]): float(b["count"]) for b in buckets}
        return cls(counts, sum(counts.values()))


def categorical_scores(ref: CategoricalReference, current: dict[str, int]) -> dict[str, float]:
    n = sum(current.values())
    if n == 0 or ref.total == 0:
        return {}
    categories = list(ref.counts)
    unseen = [value for value in current if value not in ref.counts]
    p = np.array([ref.counts[c] / ref.total for c in categories] + [0.0] * len(unseen))
    q = np.array([current.get(c, 0) / n for c in categories] + [current[c] / n for c in unseen])
    # chi-squared against the baseline shares, with every unseen value pooled in one "other" cell
    observed = np.array([current.get(c, 0) for c in categories] + [sum(current[c] for c in unseen)], dtype=float)
    smoothed = np.array([ref.counts[c] for c in categories] + [0.0]) + 0.5
    expected = smoothed / smoothed.sum() * n
    statistic = float(np.sum((observed - expected) ** 2 / expected))
    from scipy.special import chdtrc

    return {
        "jensen_shannon": _js(p, q),
        "linf": float(np.abs(p - q).max()),
        "chi_squared": statistic,
        "chi_squared_pvalue": float(chdtrc(max(1, len(observed) - 1), statistic)),
        "psi": _psi(p, q),
    }


def holm_levels(pvalues: dict[str, float]) -> dict[str, float]:
    """Each feature's share of alpha under Holm's step-down, ``1 / (m - rank)``: the level its p-value is held
    to is its threshold times this (each feature may have its own threshold)."""
    ordered = sorted(pvalues.items(), key=lambda item: item[1])
    m = len(ordered)
    return {name: 1.0 / (m - rank) for rank, (name, _) in enumerate(ordered)}


def holm(pvalues: dict[str, float]) -> dict[str, float]:
    """Holm–Bonferroni adjusted p-values (family-wise error control across the features tested)."""
    ordered = sorted(pvalues.items(), key=lambda item: item[1])
    m = len(ordered)
    adjusted: dict[str, float] = {}
    running = 0.0
    for rank, (name, p) in enumerate(ordered):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[name] = running
    return adjusted
