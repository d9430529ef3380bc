"""Streaming per-column profiles: the statistics of one feature, accumulated chunk by chunk with numpy.

:class:`NumericProfile` sorts each chunk once; from the sorted values it takes the moments, the KLL sketch,
and — when the baseline's bin edges are given (a drift check) — the count of values at or below every edge,
the exact tail mass beyond the baseline's range and, for small samples, the raw values. Nothing is kept per
row, so memory is the same for a thousand rows or a billion.

:class:`StringProfile` keeps value counts (capped at :data:`MAX_CATEGORIES` distinct values).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from shipyard.monitor.sketch import KLLSketch, weighted_cdf

__all__ = ["MAX_CATEGORIES", "NumericProfile", "StringProfile", "all_numbers", "to_float", "to_text"]

MAX_CATEGORIES = 10_000
_OTHER = "__other__"
_NUMBER = r"(?i)^[+-]?(\d+\.?\d*(e[+-]?\d+)?|\.\d+(e[+-]?\d+)?|inf|infinity|nan)$"


def to_float(column: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, int, int]:
    """A float64 array (NaN where missing), the number of values that are not numbers at all (text), and
    the number written with a fraction (Model Monitor's ``Fractional``: every value of a float column,
    ``2.0`` too; in text, a decimal point or an exponent)."""
    kind = column.type
    if pa.types.is_null(kind):
        return np.full(len(column), np.nan), 0, 0
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_boolean(kind):
        values = column if pa.types.is_float64(kind) else pc.cast(column, pa.float64())
        array = np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)  # nulls become NaN
        fractional = len(column) - column.null_count if pa.types.is_floating(kind) else 0
        return array, 0, fractional
    if pa.types.is_decimal(kind):
        array = np.asarray(pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
        return array, 0, (len(column) - column.null_count) if kind.scale > 0 else 0
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text = pc.utf8_trim_whitespace(column)
        numeric = pc.match_substring_regex(text, _NUMBER)
        empty = pc.equal(text, "")
        bad = pc.and_(pc.invert(numeric), pc.invert(empty))
        mismatched = _count(bad)
        fractional = _count(pc.and_(numeric, pc.match_substring_regex(text, r"[.eE]")))
        numbers = pc.cast(pc.if_else(numeric, text, pa.scalar(None, pa.string())), pa.float64())
        return np.asarray(numbers.to_numpy(zero_copy_only=False), dtype=np.float64), mismatched, fractional
    # lists, structs, binary: present, but not a number
    return np.full(len(column), np.nan), len(column) - column.null_count, 0


def all_numbers(column: pa.Array | pa.ChunkedArray) -> bool:
    """Whether every value of a text column that is not empty is a number."""
    text = pc.utf8_trim_whitespace(column)
    numeric = pc.or_(pc.match_substring_regex(text, _NUMBER), pc.equal(text, ""))
    return bool(pc.all(pc.fill_null(numeric, True)).as_py())


def _count(mask: pa.Array | pa.ChunkedArray) -> int:
    return int(pc.sum(pc.cast(pc.fill_null(mask, False), pa.int64())).as_py() or 0)


def to_text(column: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """The column as strings (numbers as Python writes them: ``2.0``, ``1e-05``); nulls stay null."""
    kind = column.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return column
    if pa.types.is_null(kind):
        return pa.nulls(len(column), pa.string())
    if pa.types.is_floating(kind):  # Arrow would write 2.0 as "2": a number in a text feature is rare, be exact
        return pa.array([None if v is None else repr(float(v)) for v in column.to_pylist()], pa.string())
    try:
        return pc.cast(column, pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
        return pa.array([None if v is None else str(v) for v in column.to_pylist()], pa.string())


class NumericProfile:
    """Moments, extremes, a KLL sketch and (for a check) counts at the baseline's edges, per window."""

    def __init__(
        self, edges: np.ndarray | None = None, *, keep_small: int = 0, k: int = 2048, track_integers: bool = False
    ) -> None:
        self.count = 0  # finite numbers
        self.missing = 0  # nulls, empty cells, NaN
        self.text = 0  # present but not a number: text in a numeric column
        self.infinite = 0  # ±inf: a number, but none the moments or the sketch can hold
        self.fractional = 0  # numbers written with a fraction (2.0 too): Model Monitor's Fractional
        # numbers that are not whole (2.5, not 2.0): what a check of an Integral feature rejects. Counted only
        # with track_integers (a check of a feature its constraints type Integral): a pass over every chunk
        # that nothing else reads (a baseline types a feature by how its values are written: ``fractional``).
        self.track_integers = track_integers
        self.non_integer = 0
        self.total = 0.0
        self._shift = 0.0
        self._s1 = 0.0
        self._s2 = 0.0
        self.min = np.inf
        self.max = -np.inf
        self.sketch = KLLSketch(k)
        self.edges = edges
        self.le = np.zeros(0 if edges is None else len(edges), dtype=np.int64)
        self.below = 0.0  # Σ (edges[0] - x) over x < edges[0]: the exact Wasserstein mass of the left tail
        self.above = 0.0
        self.windows: dict[int, list[Any]] = {}  # window -> [n, le, below, above]
        self._keep_small = keep_small
        self._small: list[np.ndarray] = []
        self._small_n = 0

    @property
    def mismatched(self) -> int:
        """Values present that are not finite numbers (text, ±inf): what a ``data_type_check`` counts."""
        return self.text + self.infinite

    def add(self, values: np.ndarray, text: int = 0, window: int | None = None, fractional: int = 0) -> None:
        """Add a chunk (float64, NaN for missing) whose ``text`` non-numbers are already NaN, of which
        ``fractional`` numbers were written with a fraction."""
        finite = np.isfinite(values)
        n = int(np.count_nonzero(finite))
        self.fractional += fractional
        if n == len(values):
            x = values
        else:
            nan = int(np.count_nonzero(np.isnan(values)))
            self.missing += nan - text
            self.text += text
            self.infinite += len(values) - n - nan
            x = values[finite]
        if n == 0:
            return
        xs = np.sort(x)
        # moments around a fixed shift (the first chunk's median) keep the variance exact for large offsets
        if not self.count:
            self._shift = float(xs[n // 2])
        shifted = xs - self._shift
        s1 = float(shifted.sum())
        s2 = float(np.dot(shifted, shifted))
        self._s1 += s1
        self._s2 += s2
        self.count += n
        self.total += s1 + n * self._shift
        self.min = min(self.min, float(xs[0]))
        self.max = max(self.max, float(xs[-1]))
        if self.track_integers:
            self.non_integer += int(np.count_nonzero(xs != np.floor(xs)))
        self.sketch.update_sorted(xs)
        if self.edges is not None:
            le, below, above = self._against_edges(xs)
            self.le += le
            self.below += below
            self.above += above
            if window is not None:
                slot = self.windows.get(window)
                if slot is None:
                    self.windows[window] = [n, le, below, above]
                else:
                    slot[0] += n
                    slot[1] = slot[1] + le
                    slot[2] += below
                    slot[3] += above
        if self._small_n < self._keep_small:
            self._small.append(xs[: self._keep_small - self._small_n])
            self._small_n += min(n, self._keep_small - self._small_n)

    def _against_edges(self, xs: np.ndarray) -> tuple[np.ndarray, float, float]:
        assert self.edges is not None
        le = np.searchsorted(xs, self.edges, side="right").astype(np.int64)
        lo, hi = self.edges[0], self.edges[-1]
        n_below = int(np.searchsorted(xs, lo, side="left"))
        n_above = len(xs) - int(le[-1])
        below = float(n_below * lo - xs[:n_below].sum()) if n_below else 0.0
        above = float(xs[len(xs) - n_above :].sum() - n_above * hi) if n_above else 0.0
        return le, below, above

    @property
    def mean(self) -> float:
        return self._shift + self._s1 / self.count if self.count else float("nan")

    @property
    def std(self) -> float:
        if not self.count:
            return float("nan")
        centred = self._s1 / self.count
        return float(np.sqrt(max(self._s2 / self.count - centred * centred, 0.0)))

    def small_sample(self) -> np.ndarray | None:
        """All values, sorted, when there were at most ``keep_small`` of them; else ``None``."""
        if self.count > self._keep_small or not self._keep_small:
            return None
        return np.sort(np.concatenate(self._small)) if self._small else np.empty(0)

    def buckets(self, count: int = 10) -> list[dict[str, float]]:
        """``count`` equal-width buckets between min and max, counted from the sketch (Model Monitor's layout)."""
        if not self.count:
            return []
        values, weights = self.sketch.items()
        if self.min == self.max:
            return [{"lower_bound": self.min, "upper_bound": self.max, "count": float(self.count)}]
        bounds = np.linspace(self.min, self.max, count + 1)
        cdf = weighted_cdf(values, weights, bounds)
        cdf[0], cdf[-1] = 0.0, 1.0
        counts = np.diff(cdf) * self.count
        return [
            {"lower_bound": float(bounds[i]), "upper_bound": float(bounds[i + 1]), "count": float(round(counts[i], 3))}
            for i in range(count)
        ]


class StringProfile:
    """Value counts of a categorical feature, overall and per window."""

    def __init__(self) -> None:
        self.count = 0
        self.missing = 0
        self.counts: dict[str, int] = {}
        self.windows: dict[int, dict[str, int]] = {}
        self.overflow = 0  # values not counted individually once MAX_CATEGORIES were seen

    def add(self, column: pa.Array | pa.ChunkedArray, window: int | None = None) -> None:
        text = to_text(column)
        nulls = text.null_count
        self.missing += nulls
        present = len(text) - nulls
        if not present:
            return
        self.count += present
        tally = pc.value_counts(text.drop_null() if nulls else text)
        chunk = dict(zip(tally.field("values").to_pylist(), tally.field("counts").to_pylist(), strict=True))
        counts = self.counts
        for value, n in chunk.items():
            if value in counts:
                counts[value] += n
            elif len(counts) < MAX_CATEGORIES:
                counts[value] = n
            else:
                counts[_OTHER] = counts.get(_OTHER, 0) + n
                self.overflow += n
        if window is not None:
            slot = self.windows.setdefault(window, {})
            for value, n in chunk.items():
                slot[value] = slot.get(value, 0) + n
