"""Clarify's bias metrics, from counts: smclarify 0.5's formulas and its errors, in numpy.

    tables = count_tables(codes, groups=3, label=y, predicted=p)   # one np.bincount for every group at once
    counts = tables.versus(0)                                      # group 0 (d) against all other rows (a)
    values = pre_training(counts) | post_training(counts)          # {"CI": 0.2, "DPL": …, "DI": Unavailable(…)}

``Counts.n[d, y, p]`` holds the rows of the facet group (d = 1) or of the others (d = 0) with label y and
prediction p (1 = positive). Every metric is a function of those eight numbers, except CDDL/CDDPL (per
group of the group variable), FT (k-nearest neighbours over the features) and GE (the whole data set).
A metric that cannot be computed is an :class:`Unavailable` with smclarify's message (Clarify writes it as
``"value": null, "error": message``). ``divide(a, b)`` is smclarify's: 0 when a = b = 0, ±inf when b = 0.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = [
    "POST_TRAINING",
    "PRE_TRAINING",
    "CountTables",
    "Counts",
    "Evidence",
    "Unavailable",
    "Value",
    "cdd",
    "count_tables",
    "divide",
    "evidence",
    "flip_test",
    "generalized_entropy",
    "post_training",
    "pre_training",
]

PRE_TRAINING = ("CDDL", "CI", "DPL", "JS", "KL", "KS", "LP", "TVD")
POST_TRAINING = ("AD", "CDDPL", "DAR", "DCA", "DCR", "DI", "DPPL", "DRR", "FT", "GE", "RD", "SD", "TE")
_FT_NEIGHBOURS, _FT_FEW_NEIGHBOURS, _FT_FEW_ROWS = 5, 1, 9  # smclarify's constants


@dataclass(frozen=True)
class Unavailable:
    """A metric that cannot be computed, and why (smclarify's wording)."""

    error: str


Value = float | Unavailable


def divide(a: float, b: float) -> float:
    if b == 0:
        return 0.0 if a == 0 else (-math.inf if a < 0 else math.inf)
    return a / b


@dataclass(frozen=True)
class Counts:
    """``n[d, y, p]``: rows of the facet group (d=1) or the rest (d=0), by label y and prediction p."""

    n: np.ndarray

    def rows(self, d: int) -> int:
        return int(self.n[d].sum())

    def labels(self, d: int, y: int) -> int:
        return int(self.n[d, y].sum())

    def predictions(self, d: int, p: int) -> int:
        return int(self.n[d, :, p].sum())

    def cell(self, d: int, y: int, p: int) -> int:
        return int(self.n[d, y, p])


@dataclass(frozen=True)
class CountTables:
    """Counts of every facet group at once: ``table[k + 1]`` is group k, ``table[0]`` the rows in no group;
    ``by_group[k + 1, g + 1, v]`` the same by group-variable value g (0: missing) and label or prediction v."""

    table: np.ndarray
    label_by_group: np.ndarray | None
    predicted_by_group: np.ndarray | None

    def versus(self, k: int) -> Counts:
        d = self.table[k + 1]
        return Counts(np.stack([self.table.sum(axis=0) - d, d]))

    def cdd_tables(self, k: int, predicted: bool) -> np.ndarray | None:
        """``[d, g, v]`` for group k (g over the group variable's present values)."""
        by = self.predicted_by_group if predicted else self.label_by_group
        if by is None:
            return None
        d = by[k + 1]
        return np.stack([by.sum(axis=0) - d, d])


def count_tables(
    codes: np.ndarray,
    groups: int,
    label: np.ndarray,
    predicted: np.ndarray | None = None,
    group_codes: np.ndarray | None = None,
    group_count: int = 0,
) -> CountTables:
    """``codes``: the facet group of each row (−1: none); ``group_codes``: the group variable's (−1: missing)."""
    shifted = codes.astype(np.int64) + 1
    y = label.astype(np.int64)
    p = np.zeros_like(y) if predicted is None else predicted.astype(np.int64)
    table = np.bincount(shifted * 4 + y * 2 + p, minlength=(groups + 1) * 4).reshape(groups + 1, 2, 2)
    by_label = by_predicted = None
    if group_codes is not None:
        width = group_count + 1
        base = (shifted * width + group_codes.astype(np.int64) + 1) * 2
        size = (groups + 1) * width * 2
        by_label = np.bincount(base + y, minlength=size).reshape(groups + 1, width, 2)
        if predicted is not None:
            by_predicted = np.bincount(base + p, minlength=size).reshape(groups + 1, width, 2)
    return CountTables(table, by_label, by_predicted)


# -- pre-training ------------------------------------------------------------------------------------
def _ci(c: Counts) -> Value:
    pos, neg = c.rows(1), c.rows(0)
    if neg == 0:
        return Unavailable("CI: negated facet set is empty. Check that x[~facet] has non-zero length.")
    if pos == 0:
        return Unavailable("CI: facet set is empty. Check that x[facet] has non-zero length.")
    return float(neg - pos) / (pos + neg)


def _dpl(c: Counts, positives: Callable[[int], int]) -> Value:
    na, nd = c.rows(0), c.rows(1)
    if na == 0:
        return Unavailable("Negative facet set is empty.")
    if nd == 0:
        return Unavailable("Facet set is empty.")
    return positives(0) / na - positives(1) / nd


def _aligned(c: Counts) -> tuple[np.ndarray, np.ndarray] | None:
    """smclarify's ``pdfs_aligned_nonzero`` of the binary label: the label values present in both groups, in
    order (negative, positive), their shares within each group, *not* renormalised."""
    a = np.array([c.labels(0, 0), c.labels(0, 1)], np.float64)
    d = np.array([c.labels(1, 0), c.labels(1, 1)], np.float64)
    keep = (a > 0) & (d > 0)
    if not keep.any():
        return None
    return (a / a.sum())[keep], (d / d.sum())[keep]


_NO_COMMON = "No instance of common facet found, dataset may be too small"


def _kl(c: Counts) -> Value:
    pdfs = _aligned(c)
    if pdfs is None:
        return Unavailable(_NO_COMMON)
    pa, pd = pdfs
    return float(np.sum(pa * np.log(pa / pd)))


def _js(c: Counts) -> Value:
    pdfs = _aligned(c)
    if pdfs is None:
        return Unavailable(_NO_COMMON)
    pa, pd = pdfs
    p = 1 / 2 * (pa + pd)
    return float(0.5 * (np.sum(pa * np.log(pa / p)) + np.sum(pd * np.log(pd / p))))


def _norm(c: Counts, order: float) -> Value:
    pdfs = _aligned(c)
    if pdfs is None:
        return Unavailable(_NO_COMMON)
    return float(np.linalg.norm(pdfs[0] - pdfs[1], order))


def _tvd(c: Counts) -> Value:
    value = _norm(c, 1)
    return value if isinstance(value, Unavailable) else 0.5 * value


def cdd(by_group: np.ndarray | None) -> Value:
    """Conditional demographic disparity from ``[d, g, v]`` (g = 0: rows whose group is missing; they count
    towards 'no positives in the set' but weigh nothing, as in smclarify where ``NaN == NaN`` is false)."""
    if by_group is None:
        return Unavailable("Group variable is empty or not provided")
    everything = by_group.sum(axis=(0, 1))
    if everything[1] == 0:
        return Unavailable("No positive labels in set")
    if everything[0] == 0:
        return Unavailable("No negative labels in set")
    present = by_group[:, 1:, :]
    per_group = present.sum(axis=0)  # [g, v]
    sizes = per_group.sum(axis=1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        accepted = np.where(per_group[:, 1] != 0, present[1, :, 1] / np.maximum(per_group[:, 1], 1), 0.0)
        rejected = np.where(per_group[:, 0] != 0, present[1, :, 0] / np.maximum(per_group[:, 0], 1), 0.0)
    return divide(float(np.sum(sizes * (rejected - accepted))), float(np.sum(sizes)))


def pre_training(c: Counts, by_group: np.ndarray | None = None) -> dict[str, Value]:
    return {
        "CDDL": cdd(by_group),
        "CI": _ci(c),
        "DPL": _dpl(c, lambda d: c.labels(d, 1)),
        "JS": _js(c),
        "KL": _kl(c),
        "KS": _norm(c, math.inf),
        "LP": _norm(c, 2),
        "TVD": _tvd(c),
    }


# -- post-training -----------------------------------------------------------------------------------
def _di(c: Counts) -> Value:
    na, nd = c.rows(0), c.rows(1)
    if na == 0:
        return Unavailable("Negated facet set is empty")
    if nd == 0:
        return Unavailable("Facet set is empty")
    return divide(c.predictions(1, 1) / nd, c.predictions(0, 1) / na)


def _empty(c: Counts, prefix: str = "") -> Unavailable | None:
    if c.rows(1) == 0:
        return Unavailable(f"{prefix}Facet set is empty")
    if c.rows(0) == 0:
        return Unavailable(f"{prefix}Negated Facet set is empty")
    return None


def _difference(first: float, second: float) -> float:
    """``first − second``, 0 when both are +inf (smclarify's rule for the rate differences)."""
    return 0.0 if first == second == math.inf else first - second


def _dco(c: Counts) -> tuple[Value, Value]:
    error = _empty(c, "DCO: ")
    if error:
        return error, error
    ca, cd = (divide(c.labels(d, 1), c.predictions(d, 1)) for d in (0, 1))
    ra, rd = (divide(c.labels(d, 0), c.predictions(d, 0)) for d in (0, 1))
    return _difference(ca, cd), _difference(rd, ra)


def _dlr(c: Counts) -> tuple[Value, Value]:
    error = _empty(c, "DLR: ")
    if error:
        return error, error
    aa, ad = (divide(c.cell(d, 1, 1), c.predictions(d, 1)) for d in (0, 1))
    ra, rd = (divide(c.cell(d, 0, 0), c.predictions(d, 0)) for d in (0, 1))
    return _difference(aa, ad), _difference(rd, ra)


def _dla(c: Counts) -> tuple[Value, Value]:
    error = _empty(c, "DLA: ")
    if error:
        return error, error
    reca, recd = (divide(c.cell(d, 1, 1), c.cell(d, 1, 1) + c.cell(d, 1, 0)) for d in (0, 1))
    spa, spd = (divide(c.cell(d, 0, 0), c.cell(d, 0, 0) + c.cell(d, 0, 1)) for d in (0, 1))
    return _difference(reca, recd), _difference(spd, spa)


def _ad(c: Counts) -> Value:
    error = _empty(c)
    if error:
        return error
    acc_a, acc_d = (divide(c.cell(d, 1, 1) + c.cell(d, 0, 0), c.rows(d)) for d in (0, 1))
    return _difference(acc_a, acc_d)


def _te(c: Counts) -> Value:
    error = _empty(c)
    if error:
        return error
    tau_a, tau_d = (divide(c.cell(d, 1, 0), c.cell(d, 0, 1)) for d in (0, 1))
    return _difference(tau_d, tau_a)


def generalized_entropy(overall: np.ndarray) -> Value:
    """GE (α = 2) of the benefit ŷ − y + 1, from the whole set's ``[y, p]`` counts."""
    n = int(overall.sum())
    if n == 0:
        return Unavailable("dataset must be non-empty")
    counts = np.array([overall[1, 0], overall[0, 0] + overall[1, 1], overall[0, 1]], np.float64)  # b = 0, 1, 2
    mean = (counts[1] + 2 * counts[2]) / n
    if mean == 0:
        return Unavailable(
            "All predicted labels are false negatives. There should be at least one prediction that is not "
            "false negative."
        )
    ratios = np.array([0.0, 1.0, 2.0]) / mean
    return float(np.sum(counts * (ratios**2 - 1)) / (n * 2 * (2 - 1)))


def post_training(
    c: Counts, by_group: np.ndarray | None = None, ge: Value | None = None, ft: Value | None = None
) -> dict[str, Value]:
    """The post-training metrics but FT (pass it as ``ft``) and GE (the same for every group: pass ``ge``)."""
    dca, dcr = _dco(c)
    dar, drr = _dlr(c)
    rd, sd = _dla(c)
    values: dict[str, Value] = {
        "AD": _ad(c),
        "CDDPL": cdd(by_group),
        "DAR": dar,
        "DCA": dca,
        "DCR": dcr,
        "DI": _di(c),
        "DPPL": _dpl(c, lambda d: c.predictions(d, 1)),
        "DRR": drr,
        "GE": ge if ge is not None else generalized_entropy(c.n.sum(axis=0)),
        "RD": rd,
        "SD": sd,
        "TE": _te(c),
    }
    if ft is not None:
        values["FT"] = ft
    return dict(sorted(values.items()))


# -- sampling error ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Evidence:
    """What judging a group's metrics needs besides their values: its rows (``rows``: n_d, ``rest``: n_a) and
    the standard error of each rate metric (``errors``; DI's is of ln DI), from the counts the metrics use.
    ``log_di`` is ln DI of the smoothed rates (stands in where DI is 0)."""

    rows: int
    rest: int
    errors: dict[str, float]
    log_di: float


def _smoothed(x: float, n: float) -> float:
    """(x + 1) / (n + 2): a rate of 0 or 1 still has a variance."""
    return (x + 1) / (n + 2)


def _variance(x: float, n: float) -> float:
    """The variance of the rate x / n (smoothed; n = 0 counts as 1, so an empty side is never precise)."""
    p = _smoothed(x, n)
    return p * (1 - p) / max(n, 1)


def _difference_error(c: Counts, hits: Callable[[int], float], of: Callable[[int], float]) -> float:
    return math.sqrt(sum(_variance(hits(d), of(d)) for d in (0, 1)))


def _cdd_error(by_group: np.ndarray) -> float:
    """SE of CDD = Σ w_i (D_i − A_i): √Σ w_i² [D_i(1 − D_i)/n⁽⁰⁾_i + A_i(1 − A_i)/n⁽¹⁾_i]."""
    present = by_group[:, 1:, :].astype(np.float64)
    per_group = present.sum(axis=0)
    sizes = per_group.sum(axis=1)
    total = float(sizes.sum())
    if total == 0:
        return math.inf
    w = sizes / total
    d = (present[1, :, 0] + 1) / (per_group[:, 0] + 2)
    a = (present[1, :, 1] + 1) / (per_group[:, 1] + 2)
    var = d * (1 - d) / np.maximum(per_group[:, 0], 1) + a * (1 - a) / np.maximum(per_group[:, 1], 1)
    return float(np.sqrt(np.sum(w**2 * var)))


def evidence(
    c: Counts, label_by_group: np.ndarray | None = None, predicted_by_group: np.ndarray | None = None
) -> Evidence:
    """The standard errors of DPL, DPPL, AD, RD, DAR, DRR (differences of two independent proportions), DI
    (of ln DI, by the delta method: (1 − q̂_d)/(n_d q̂_d) + (1 − q̂_a)/(n_a q̂_a)) and CDDL/CDDPL."""
    errors = {
        "DPL": _difference_error(c, lambda d: c.labels(d, 1), c.rows),
        "DPPL": _difference_error(c, lambda d: c.predictions(d, 1), c.rows),
        "AD": _difference_error(c, lambda d: c.cell(d, 1, 1) + c.cell(d, 0, 0), c.rows),
        "RD": _difference_error(c, lambda d: c.cell(d, 1, 1), lambda d: c.labels(d, 1)),
        "DAR": _difference_error(c, lambda d: c.cell(d, 1, 1), lambda d: c.predictions(d, 1)),
        "DRR": _difference_error(c, lambda d: c.cell(d, 0, 0), lambda d: c.predictions(d, 0)),
    }
    q = [_smoothed(c.predictions(d, 1), c.rows(d)) for d in (0, 1)]
    errors["DI"] = math.sqrt(sum((1 - q[d]) / (max(c.rows(d), 1) * q[d]) for d in (0, 1)))
    if label_by_group is not None:
        errors["CDDL"] = _cdd_error(label_by_group)
    if predicted_by_group is not None:
        errors["CDDPL"] = _cdd_error(predicted_by_group)
    return Evidence(c.rows(1), c.rows(0), errors, math.log(q[1] / q[0]))


# -- flip test ---------------------------------------------------------------------------------------
def flip_test(features: np.ndarray | None, sensitive: np.ndarray, predicted: np.ndarray) -> Value:
    """FT: a k-NN (k = 5, or 1 when group a has 9 rows or fewer) fitted on group a's features and predictions,
    asked about group d: (# the model says 1 and k-NN 0 − # the model 0 and k-NN 1) / n_d.

    ``features`` is None when a column is not numeric (smclarify's error). Needs scikit-learn, as smclarify.
    """
    nd = int(sensitive.sum())
    if nd == 0:
        return Unavailable("Facet set is empty")
    if nd == len(sensitive):
        return Unavailable("Negated Facet set is empty")
    if features is None:
        return Unavailable("FlipTest does not support non-numeric columns")
    try:
        from sklearn.neighbors import KNeighborsClassifier
    except ImportError:
        return Unavailable("FT needs scikit-learn: pip install shipyard[sklearn]")
    a = ~sensitive
    neighbours = _FT_NEIGHBOURS if int(a.sum()) > _FT_FEW_ROWS else _FT_FEW_NEIGHBOURS
    knn = KNeighborsClassifier(n_neighbors=neighbours, weights="uniform", algorithm="auto", leaf_size=30, p=2)
    try:
        knn.fit(features[a], predicted[a])
        if_a = np.asarray(knn.predict(features[sensitive]), bool)
    except ValueError as exc:  # NaN in the features, one class only, …
        return Unavailable(str(exc))
    model = predicted[sensitive]
    return divide(int(np.sum(model & ~if_a)) - int(np.sum(~model & if_a)), nd)
