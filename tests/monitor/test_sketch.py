"""The KLL sketch's stated rank error (:func:`rank_error`) holds at the sizes a check sees."""

from __future__ import annotations

import numpy as np
import pytest

from shipyard.monitor.sketch import KLLSketch, rank_error, weighted_quantiles


@pytest.mark.parametrize(("n", "chunk"), [(2048, 2048), (50_000, 7), (300_000, 65_536), (1_000_000, 100_000)])
def test_every_percentile_is_within_the_stated_rank_error(n: int, chunk: int) -> None:
    rng = np.random.default_rng(n)
    values = np.concatenate([rng.lognormal(0, 1, n // 2), rng.integers(0, 5, n - n // 2).astype(float)])
    rng.shuffle(values)  # ties (the integers) and a long tail
    sketch = KLLSketch()
    for start in range(0, n, chunk):
        sketch.update_sorted(np.sort(values[start : start + chunk]))
    exact = np.sort(values)
    probabilities = np.linspace(0, 1, 1001)
    stored = KLLSketch.from_dict(sketch.to_dict())  # as statistics.json holds it
    answers = weighted_quantiles(*stored.items(), probabilities)
    below = np.searchsorted(exact, answers, side="left") / n
    at_or_below = np.searchsorted(exact, answers, side="right") / n
    bound = rank_error(n)
    assert np.all(below - bound <= probabilities) and np.all(probabilities <= at_or_below + bound + 1e-12)
    assert bound < 0.003  # 0.27 % at a million values (k = 2048)
    if n <= 2048:  # nothing sampled or compacted: the exact order statistics
        ranks = np.maximum(np.ceil(probabilities * n).astype(int) - 1, 0)
        assert bound == 0.0 and np.array_equal(answers, exact[ranks])
