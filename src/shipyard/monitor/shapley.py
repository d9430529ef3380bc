"""Kernel SHAP in numpy, computed the way ``shap.KernelExplainer`` (and so SageMaker Clarify) computes it.

    phi, expected = kernel_shap(model.predict, rows, baseline, samples=500, use_logit=False, seed=0)
    # phi: (rows, features, outputs); phi[i].sum(axis=0) == link(f(rows[i])) - expected

For each row ``x``:

- a feature whose value equals every baseline row's value cannot change the output: its φ is 0 and it is
  left out of the coalitions (shap's ``varyingInds``); ``m`` is the number of features left;
- coalitions ``z ∈ {0,1}^m`` are enumerated size by size from both ends (size 1 and m−1, then 2 and m−2, …)
  while the budget of ``samples`` coalitions lasts (shap's scheme; ``samples ≥ 2^m − 2`` enumerates them all),
  and the rest are drawn at random, by size with the remaining kernel weight, with
  ``np.random.default_rng([seed, m])``: the coalitions depend on ``seed`` and ``m`` only, so rows with the same
  number of varying features share them (and one matrix solves them all);
- each coalition's value is the mean model output over the baseline rows with the coalition's features set
  to ``x``'s, taken through the link (identity, or logit for ``use_logit``);
- φ is the weighted least-squares fit of those values with the kernel weights
  ``w(s) = (m−1) / (C(m,s)·s·(m−s))``, the efficiency constraint ``Σφ = link(f(x)) − link(E f(baseline))``
  eliminated (the last varying feature's φ is what is left), without the l1 feature selection.

The model is called once per chunk of rows on all their synthetic rows (rows × coalitions × baseline rows),
the chunk sized so those stay under :data:`MEMORY_BYTES` (a single row's are never split). When the
coalitions cannot determine every φ (fewer than m − 1 of them, or a rank-deficient set), the fit is the
least-norm least-squares one, where shap would solve singular normal equations.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from math import comb

import numpy as np

from shipyard.errors import MonitorError

__all__ = ["MEMORY_BYTES", "Coalitions", "auto_samples", "coalition_count", "coalitions", "kernel_shap"]

#: the synthetic rows of one model call stay under this many bytes (module setting, so tests can split)
MEMORY_BYTES = 256 << 20
#: shap's largest coalition count for wide rows (2^30; with m ≤ 30 it is 2^m − 2)
_MAX_SAMPLES = 2**30

Predict = Callable[[np.ndarray], np.ndarray]
Progress = Callable[[int, int], None]


@dataclass
class Coalitions:
    """The coalitions of ``m`` varying features: ``masks`` (S, m) of 0/1 and their kernel ``weights`` (S,)."""

    masks: np.ndarray
    weights: np.ndarray

    @property
    def design(self) -> np.ndarray:
        """(S, m−1): the masks with the efficiency constraint eliminating the last varying feature."""
        design: np.ndarray = self.masks[:, :-1] - self.masks[:, -1:]
        return design


def auto_samples(m: int) -> int:
    """shap's ``nsamples="auto"``: 2m + 2048, at most 2^m − 2 (every coalition but the empty and the full one)."""
    return min(2 * m + 2048, _max_samples(m))


def _max_samples(m: int) -> int:
    return 2**m - 2 if m <= 30 else _MAX_SAMPLES


def coalitions(m: int, samples: int | None, seed: int) -> Coalitions:
    """The coalitions and kernel weights shap's ``KernelExplainer.explain`` builds for ``m`` varying features.

    Sizes are enumerated fully from both ends while ``samples`` lasts; the remaining budget is drawn at
    random (a drawn coalition met again adds to its weight instead of taking a sample), and the drawn
    coalitions share the kernel weight the enumerated sizes left.
    """
    if m < 2:
        raise ValueError("coalitions are sampled for two or more varying features")
    budget = auto_samples(m) if samples is None else min(int(samples), _max_samples(m))
    sizes = int(np.ceil((m - 1) / 2.0))
    paired = int(np.floor((m - 1) / 2.0))
    weight_vector = np.array([(m - 1.0) / (i * (m - i)) for i in range(1, sizes + 1)])
    weight_vector[:paired] *= 2
    weight_vector /= weight_vector.sum()

    masks: list[np.ndarray] = []
    weights: list[float] = []
    full = 0
    left = budget
    remaining = weight_vector.copy()
    for size in range(1, sizes + 1):
        count = comb(m, size) * (2 if size <= paired else 1)
        if left * remaining[size - 1] / count < 1.0 - 1e-8:
            break
        full += 1
        left -= count
        if remaining[size - 1] < 1.0:
            remaining /= 1 - remaining[size - 1]
        w = weight_vector[size - 1] / comb(m, size)
        if size <= paired:
            w /= 2.0
        chosen = _combinations(m, size)
        if size <= paired:
            both = np.empty((2 * len(chosen), m))
            both[0::2], both[1::2] = chosen, 1.0 - chosen  # each subset, then its complement (shap's order)
            chosen = both
        masks.append(chosen)
        weights.extend([w] * len(chosen))
    fixed = sum(len(c) for c in masks)
    if full != sizes:
        drawn, counts = _drawn(m, budget - fixed, weight_vector, full, paired, seed)
        if len(drawn):
            left_weight = weight_vector[full:].sum()
            masks.append(drawn)
            weights.extend((counts * (left_weight / counts.sum())).tolist())
    return Coalitions(np.concatenate(masks) if masks else np.zeros((0, m)), np.asarray(weights, dtype=np.float64))


def _combinations(m: int, size: int) -> np.ndarray:
    """Every subset of ``size`` of ``m`` features as 0/1 rows, in ``itertools.combinations`` order."""
    index = np.fromiter(itertools.chain.from_iterable(itertools.combinations(range(m), size)), dtype=np.int64)
    index = index.reshape(-1, size)
    masks = np.zeros((len(index), m))
    np.put_along_axis(masks, index, 1.0, axis=1)
    return masks


def _drawn(
    m: int, samples_left: int, weight_vector: np.ndarray, full: int, paired: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Random coalitions of the sizes not enumerated (shap's loop, on ``default_rng([seed, m])``), with counts."""
    rng = np.random.default_rng([seed, m])
    remaining = weight_vector.copy()
    remaining[:paired] /= 2  # two samples (a subset and its complement) are drawn each time
    remaining = remaining[full:]
    remaining /= remaining.sum()
    draws = rng.choice(len(remaining), 4 * samples_left, p=remaining)
    seen: dict[bytes, int] = {}
    rows: list[np.ndarray] = []
    counts: list[float] = []
    position = 0
    while samples_left > 0 and position < len(draws):
        size = int(draws[position]) + full + 1
        position += 1
        mask = np.zeros(m)
        mask[rng.permutation(m)[:size]] = 1.0
        key = mask.tobytes()
        new = key not in seen
        if new:
            seen[key] = len(rows)
            rows.append(mask)
            counts.append(1.0)
            samples_left -= 1
        else:
            counts[seen[key]] += 1.0
        if samples_left > 0 and size <= paired:
            if new:
                rows.append(1.0 - mask)
                counts.append(1.0)
                samples_left -= 1
            else:
                counts[seen[key] + 1] += 1.0
    if not rows:
        return np.zeros((0, m)), np.zeros(0)
    return np.asarray(rows), np.asarray(counts)


def _link(values: np.ndarray, use_logit: bool) -> np.ndarray:
    if not use_logit:
        return values
    with np.errstate(divide="ignore", invalid="ignore"):
        result: np.ndarray = np.log(values / (1.0 - values))
    return result


def _outputs(predict: Predict, rows: np.ndarray) -> np.ndarray:
    """The model's outputs as a (rows, K) float array."""
    answer = predict(rows)
    try:
        values = np.asarray(answer, dtype=np.float64)
    except (TypeError, ValueError):
        raise MonitorError("SHAP needs numeric model outputs (numbers or vectors of numbers per row)") from None
    if values.ndim == 1:
        values = values[:, np.newaxis]
    if values.ndim != 2 or len(values) != len(rows):
        raise MonitorError(f"the model answered {values.shape} for {len(rows)} rows: expected one value or vector each")
    return values


def kernel_shap(
    predict: Predict,
    rows: np.ndarray,
    baseline: np.ndarray,
    *,
    samples: int | None = None,
    use_logit: bool = False,
    seed: int = 0,
    progress: Progress | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The SHAP values (rows, M, K) of every row and the expected value (K,), both in link space."""
    rows = np.asarray(rows, dtype=np.float64)
    baseline = np.asarray(baseline, dtype=np.float64)
    if rows.ndim != 2 or baseline.ndim != 2 or baseline.shape[1] != rows.shape[1] or not len(baseline):
        raise MonitorError(f"rows {rows.shape} and baseline {baseline.shape} must be 2-D with the same features")
    fnull = _outputs(predict, baseline).mean(axis=0)
    null = _link(fnull, use_logit)
    n, width = rows.shape
    phi = np.zeros((n, width, len(fnull)))
    if not n:
        return phi, null
    varying = (rows[:, np.newaxis, :] != baseline[np.newaxis, :, :]).any(axis=1)  # (n, M)
    cache: dict[int, Coalitions] = {}
    per_row = [coalition_count(int(v.sum()), samples) for v in varying]
    done = 0
    for chunk in _chunks(per_row, len(baseline), width):
        _explain_chunk(
            predict, rows[chunk], varying[chunk], baseline, phi, chunk, null, use_logit, samples, seed, cache
        )
        done += len(chunk)
        if progress is not None:
            progress(done, n)
    return phi, null


def coalition_count(m: int, samples: int | None) -> int:
    """The coalitions a row with ``m`` varying features is explained with (0: none needed, m < 2)."""
    if m < 2:
        return 0
    return auto_samples(m) if samples is None else min(int(samples), _max_samples(m))


def _chunks(per_row: list[int], base_rows: int, width: int) -> list[np.ndarray]:
    """Row indices in runs whose synthetic rows (coalitions × baseline rows × features × 8 bytes) fit the budget."""
    limit = max(1, MEMORY_BYTES // (8 * width * base_rows))
    chunks: list[np.ndarray] = []
    start, total = 0, 0
    for index, count in enumerate(per_row):
        if index > start and total + count > limit:
            chunks.append(np.arange(start, index))
            start, total = index, 0
        total += count
    chunks.append(np.arange(start, len(per_row)))
    return chunks


def _explain_chunk(
    predict: Predict,
    rows: np.ndarray,
    varying: np.ndarray,
    baseline: np.ndarray,
    phi: np.ndarray,
    chunk: np.ndarray,
    null: np.ndarray,
    use_logit: bool,
    samples: int | None,
    seed: int,
    cache: dict[int, Coalitions],
) -> None:
    """φ of the rows of one chunk: one model call on the rows and one on all their synthetic rows."""
    fx = _link(_outputs(predict, rows), use_logit)  # (c, K)
    gap = fx - null  # what the φ of a row add up to
    counts = varying.sum(axis=1)
    groups = [(int(m), np.flatnonzero(counts == m)) for m in np.unique(counts)]
    pieces: list[np.ndarray] = []
    plans: list[tuple[np.ndarray, Coalitions, np.ndarray]] = []
    for m, members in groups:
        if m == 0:
            continue
        if m == 1:
            for member in members:  # one feature varies: it has all the effect
                phi[chunk[member], np.flatnonzero(varying[member])[0]] = gap[member]
            continue
        if m not in cache:
            cache[m] = coalitions(m, samples, seed)
        plan = cache[m]
        index = np.stack([np.flatnonzero(varying[i]) for i in members])  # (g, m): the varying features
        pieces.append(_synthetic(rows[members], index, plan.masks, baseline))
        plans.append((members, plan, index))
    if not pieces:
        return
    outputs = _outputs(predict, pieces[0] if len(pieces) == 1 else np.concatenate(pieces))
    del pieces
    base_rows, offset = len(baseline), 0
    for members, plan, index in plans:
        size = len(members) * len(plan.masks) * base_rows
        values = outputs[offset : offset + size].reshape(len(members), len(plan.masks), base_rows, -1)
        offset += size
        ey = _link(values.mean(axis=2), use_logit) - null  # (g, S, K)
        solved = _solve(plan, ey, gap[members])  # (g, m, K)
        phi[chunk[members][:, np.newaxis], index] = solved


def _determined(normal: np.ndarray, count: int) -> bool:
    """Whether ``count`` coalitions determine every φ: as many as the unknowns, and a well-conditioned fit."""
    if count < len(normal):
        return False
    eigen = np.linalg.eigvalsh(normal)  # XᵀWX with W > 0: its rank is X's
    return bool(eigen[0] > eigen[-1] * len(normal) * 1e-12)


def _synthetic(rows: np.ndarray, index: np.ndarray, masks: np.ndarray, baseline: np.ndarray) -> np.ndarray:
    """(g·S·b, M) rows: each baseline row with each coalition's features set to the row's values."""
    g, width = rows.shape
    keep = np.zeros((g, len(masks), width), dtype=bool)
    keep[np.arange(g)[:, None, None], np.arange(len(masks))[None, :, None], index[:, None, :]] = masks[None] > 0
    data = np.where(keep[:, :, None, :], rows[:, None, None, :], baseline[None, None, :, :])
    return data.reshape(-1, width)


def _solve(plan: Coalitions, ey: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """``KernelExplainer.solve`` for every row of a group and every output at once (no l1 selection).

    ``ey`` (g, S, K): the coalitions' values less the expected value; ``gap`` (g, K): link(f(x)) − expected.
    """
    w, x = plan.weights, plan.design  # x: (S, m−1), the constraint eliminates the last varying feature
    g, s, k = ey.shape
    y = ey - plan.masks[None, :, -1, None] * gap[:, None, :]  # (g, S, K)
    targets = y.transpose(1, 0, 2).reshape(s, g * k)
    solved = None
    wx = w[:, None] * x
    normal = x.T @ wx
    if _determined(normal, s):
        try:
            solved = np.linalg.solve(normal, wx.T @ targets)  # the normal equations, as shap solves them
        except np.linalg.LinAlgError:
            solved = None
    if solved is None:  # underdetermined (too few coalitions for the features): the least-norm fit
        root = np.sqrt(w)[:, None]
        solved = np.linalg.lstsq(root * x, root * targets, rcond=None)[0]
    head = solved.reshape(-1, g, k).transpose(1, 0, 2)  # (g, m−1, K)
    tail = gap - head.sum(axis=1)
    result = np.concatenate([head, tail[:, None, :]], axis=1)
    result[np.abs(result) < 1e-10] = 0.0  # shap's clean-up of rounding errors
    return result
