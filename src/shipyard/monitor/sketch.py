"""A KLL-style quantile sketch, fed with sorted chunks, in the layout of Model Monitor's ``kll.sketch``.

Items at level ``h`` stand for ``2**h`` values each. A sorted chunk of ``n`` values enters at the level whose
stride keeps it within ``k`` items (every ``2**h``-th value from a random offset), so feeding a chunk costs a
slice of an array that is sorted anyway; a level holding more than ``2k`` items is compacted into the next
one (sort, keep every other item from a random offset). The whole sketch is a few thousand floats whatever
the input size, and its rank error has a deterministic bound, :func:`rank_error`: every quantile it answers
lies between the exact ones at ``p - ε`` and ``p + ε``.

Model Monitor writes the same shape (``{"parameters": {"c": …, "k": …}, "data": [[level 0], [level 1], …]}``),
so a baseline made by SageMaker reads back through :meth:`KLLSketch.from_dict` too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["KLLSketch", "rank_error", "weighted_cdf", "weighted_quantiles"]


def rank_error(n: int, k: int = 2048) -> float:
    """The most a quantile of ``n`` values can be off, as a share of ``n`` (0 while nothing was compacted).

    Why: sampling a sorted chunk of ``c`` values at stride ``2**h`` moves any rank by less than ``2**h``, and
    ``2**h < 2c/k`` (the smallest stride that keeps the chunk within ``k`` items), so all chunks together move
    ranks by less than ``2n/k``. A compaction at level ``h`` moves ranks by at most ``2**h`` and happens only
    after more than ``2k`` items of weight ``2**h`` arrived, so each level adds at most ``n/(2k)``; levels that
    compact satisfy ``2k·2**h <= n``. Hence ``ε <= (2 + levels/2) / k``: 0.27 % for a million values at
    ``k = 2048``, 0.51 % for a billion. (Random offsets make the typical error far smaller.)
    """
    if n <= k:
        return 0.0
    levels = (n // (2 * k)).bit_length()  # the h with 2k·2**h <= n
    return (2.0 + levels / 2.0) / k


class KLLSketch:
    def __init__(self, k: int = 2048, seed: int = 0) -> None:
        self.k = k
        self.levels: list[np.ndarray] = []
        self._pending: list[list[np.ndarray]] = []
        self._rng = np.random.default_rng(seed)

    def update_sorted(self, values: np.ndarray) -> None:
        """Add a sorted chunk of finite values."""
        n = len(values)
        if n == 0:
            return
        level = 0
        while (n >> level) > self.k:
            level += 1
        if level:
            stride = 1 << level
            values = values[int(self._rng.integers(stride)) :: stride]
        self._add(level, np.array(values, dtype=np.float64, copy=True))

    def _add(self, level: int, items: np.ndarray) -> None:
        while len(self._pending) <= level:
            self._pending.append([])
            self.levels.append(np.empty(0))
        self._pending[level].append(items)
        if sum(map(len, self._pending[level])) + len(self.levels[level]) > 2 * self.k:
            merged = np.sort(np.concatenate([self.levels[level], *self._pending[level]]))
            self._pending[level] = []
            self.levels[level] = np.empty(0)
            self._add(level + 1, merged[int(self._rng.integers(2)) :: 2])

    def _settle(self) -> None:
        for level, chunks in enumerate(self._pending):
            if chunks:
                self.levels[level] = np.sort(np.concatenate([self.levels[level], *chunks]))
                self._pending[level] = []

    def items(self) -> tuple[np.ndarray, np.ndarray]:
        """Sorted values and their weights."""
        self._settle()
        values = [lvl for lvl in self.levels if len(lvl)]
        if not values:
            return np.empty(0), np.empty(0)
        weights = [np.full(len(lvl), float(1 << h)) for h, lvl in enumerate(self.levels) if len(lvl)]
        v, w = np.concatenate(values), np.concatenate(weights)
        order = np.argsort(v, kind="stable")
        return v[order], w[order]

    def to_dict(self) -> dict[str, Any]:
        self._settle()
        return {"parameters": {"c": 0.5, "k": float(self.k)}, "data": [lvl.tolist() for lvl in self.levels]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KLLSketch:
        params = data.get("parameters") or {}
        sketch = cls(k=int(params.get("k", 2048)))
        sketch.levels = [np.sort(np.asarray(level, dtype=np.float64)) for level in data.get("data") or []]
        sketch._pending = [[] for _ in sketch.levels]
        return sketch


def weighted_cdf(values: np.ndarray, weights: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The right-continuous empirical CDF of weighted sorted ``values`` at ``points``: P(X <= point)."""
    if len(values) == 0:
        return np.zeros(len(points))
    cumulative = np.concatenate([[0.0], np.cumsum(weights)])
    index = np.searchsorted(values, points, side="right")
    return np.asarray(cumulative[index] / cumulative[-1])


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """The quantiles of weighted sorted ``values`` (a sketch's :meth:`KLLSketch.items`) at ``probabilities``:
    for each ``p`` the first value whose cumulative weight reaches ``p`` of the total (NaN where empty)."""
    if len(values) == 0:
        return np.full(len(probabilities), np.nan)
    cumulative = np.cumsum(weights)
    ranks = np.asarray(probabilities) * cumulative[-1]
    index = np.minimum(np.searchsorted(cumulative, ranks, side="left"), len(values) - 1)
    return np.asarray(values[index], dtype=np.float64)
