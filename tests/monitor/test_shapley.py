"""Kernel SHAP (monitor/shapley.py) against its properties and against shap's own KernelExplainer.

- efficiency: Σφ = link(f(x)) − expected value, for any model, coalition budget and baseline;
- a linear model's SHAP values are exact: φ = (x − mean baseline) · coef, whatever the coalitions, and
  equal to shap's KernelExplainer on it (every coalition enumerated);
- with every coalition enumerated (samples ≥ 2^M − 2, M ≤ 10) there is no randomness left, and the values
  equal shap 0.51's ``KernelExplainer(...).shap_values(X, nsamples=N, l1_reg=0)`` within 1e-9: identity and
  logit links, one and several baseline rows, one output and several;
- features equal to every baseline value get 0 (shap's varyingInds), rows where one or none vary too.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from shipyard.monitor import shapley
from shipyard.monitor.shapley import auto_samples, coalitions, kernel_shap


def _model(rng: np.random.Generator, width: int, outputs: int = 1) -> Callable[[np.ndarray], np.ndarray]:
    """A random nonlinear model with interactions, outputs in (0, 1) (so the logit link applies)."""
    a = rng.normal(size=(width, outputs))
    b = rng.normal(size=(width, outputs))
    pairs = rng.integers(0, width, size=(3, 2))

    def predict(x: np.ndarray) -> np.ndarray:
        z = x @ a + np.sin(x) @ b
        for i, j in pairs:
            z = z + (x[:, i] * x[:, j])[:, None]
        p = 1.0 / (1.0 + np.exp(-z))
        return p[:, 0] if outputs == 1 else p

    return predict


def _link(values: np.ndarray, logit: bool) -> np.ndarray:
    return np.log(values / (1 - values)) if logit else values


@pytest.mark.parametrize("logit", [False, True])
@pytest.mark.parametrize(
    ("width", "samples", "base_rows", "outputs"), [(5, 10, 1, 1), (12, 100, 3, 2), (30, None, 2, 3), (40, 12, 2, 2)]
)
def test_efficiency_on_random_nonlinear_models(
    logit: bool, width: int, samples: int | None, base_rows: int, outputs: int
) -> None:
    rng = np.random.default_rng(width)
    predict = _model(rng, width, outputs)
    rows = rng.normal(size=(25, width))
    baseline = rng.normal(size=(base_rows, width))
    phi, expected = kernel_shap(predict, rows, baseline, samples=samples, use_logit=logit, seed=4)
    assert phi.shape == (25, width, outputs)
    fx = predict(rows).reshape(25, outputs)
    f0 = predict(baseline).reshape(base_rows, outputs).mean(axis=0)
    np.testing.assert_allclose(expected, _link(f0, logit), rtol=0, atol=1e-12)
    np.testing.assert_allclose(phi.sum(axis=1), _link(fx, logit) - expected, rtol=0, atol=1e-9)
    assert np.abs(phi).max() < 100  # fewer coalitions than features (40, 12): the least-norm fit, not blown up


@pytest.mark.parametrize(("width", "samples"), [(4, 6), (9, 40), (40, 200)])
def test_a_linear_model_is_explained_exactly(width: int, samples: int) -> None:
    rng = np.random.default_rng(width)
    coef = rng.normal(size=width)
    rows = rng.normal(size=(30, width))
    baseline = rng.normal(size=(4, width))
    phi, expected = kernel_shap(lambda x: x @ coef + 2.0, rows, baseline, samples=samples, seed=1)
    np.testing.assert_allclose(phi[:, :, 0], (rows - baseline.mean(axis=0)) * coef, rtol=0, atol=1e-9)
    assert expected[0] == pytest.approx(float((baseline @ coef).mean() + 2.0), abs=1e-12)


def test_features_that_equal_every_baseline_value_get_zero() -> None:
    rng = np.random.default_rng(3)
    predict = _model(rng, 6)
    baseline = rng.normal(size=(2, 6))
    baseline[:, 2] = 0.5  # constant in the baseline: rows with 0.5 there cannot change it
    rows = rng.normal(size=(4, 6))
    rows[:, 2] = 0.5
    rows[1] = baseline[0]
    rows[1, 0] = 7.0  # differs from baseline row 0 in feature 0 only, but from row 1 in all but feature 2
    rows[2, :] = baseline[0]
    rows[2, 4] = baseline[1, 4]  # equals one baseline row or the other in every feature: all vary but 2
    phi, _ = kernel_shap(predict, rows, baseline, samples=62, seed=0)
    assert (phi[:, 2, 0] == 0).all()
    single = np.tile(baseline[:1], (3, 1))
    single[0, 3] = 9.0  # with one baseline row: only feature 3 varies, it has all the effect
    phi1, expected1 = kernel_shap(predict, single, baseline[:1], samples=10)
    assert (np.delete(phi1[0, :, 0], 3) == 0).all()
    assert phi1[0, 3, 0] == pytest.approx(predict(single[:1])[0] - expected1[0], abs=1e-15)
    assert (phi1[1:] == 0).all()  # nothing varies: every φ is 0


def test_coalitions_enumerate_every_subset_then_sample_the_rest_reproducibly() -> None:
    full = coalitions(6, None, seed=0)
    assert len(full.masks) == 2**6 - 2 == auto_samples(6)
    assert len({m.tobytes() for m in full.masks}) == 62 and set(full.masks.sum(axis=1)) == {1, 2, 3, 4, 5}
    # the kernel weights, (M−1)/(C(M,s)·s·(M−s)), normalised
    sizes = full.masks.sum(axis=1).astype(int)
    kernel = np.array([(6 - 1) / (math.comb(6, s) * s * (6 - s)) for s in sizes])
    np.testing.assert_allclose(full.weights, kernel / kernel.sum(), rtol=1e-12)
    assert auto_samples(64) == 2 * 64 + 2048
    part = coalitions(64, None, seed=5)
    assert len(part.masks) == 2176 and len({m.tobytes() for m in part.masks}) == 2176
    sizes = part.masks.sum(axis=1)
    assert (sizes[:128:2] == 1).all() and (sizes[1:128:2] == 63).all()  # sizes 1 and 63 enumerated, in pairs
    assert (sizes[128:] % 63 != 1).all() and part.weights.sum() == pytest.approx(1.0)  # then the rest drawn
    assert len(set(part.weights[:128])) == 1 and part.weights[0] > part.weights[-1]
    again, other = coalitions(64, None, seed=5), coalitions(64, None, seed=6)
    assert np.array_equal(part.masks, again.masks) and np.array_equal(part.weights, again.weights)
    assert not np.array_equal(part.masks, other.masks)


def test_chunks_split_by_the_memory_budget_give_the_same_values(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(8)
    predict = _model(rng, 8, 2)
    rows, baseline = rng.normal(size=(20, 8)), rng.normal(size=(3, 8))
    whole, _ = kernel_shap(predict, rows, baseline, samples=50, seed=2)
    calls: list[int] = []

    def counted(x: np.ndarray) -> np.ndarray:
        calls.append(len(x))
        return predict(x)

    monkeypatch.setattr(shapley, "MEMORY_BYTES", 8 * 8 * 3 * 120)  # 120 coalitions of 3 baseline rows a call
    progress: list[tuple[int, int]] = []
    split, _ = kernel_shap(counted, rows, baseline, samples=50, seed=2, progress=lambda d, t: progress.append((d, t)))
    np.testing.assert_allclose(split, whole, rtol=0, atol=1e-12)
    assert max(calls) <= 2 * 50 * 3 and len(calls) > 10 and progress[-1] == (20, 20) and len(progress) == 10


# -- against shap ----------------------------------------------------------------------------------
@pytest.mark.parametrize("logit", [False, True])
@pytest.mark.parametrize(("width", "base_rows", "outputs"), [(3, 1, 1), (6, 1, 1), (7, 4, 3), (10, 3, 2)])
def test_equal_to_shap_when_every_coalition_is_enumerated(
    logit: bool, width: int, base_rows: int, outputs: int
) -> None:
    import shap

    rng = np.random.default_rng(100 + width)
    predict = _model(rng, width, outputs)
    rows = rng.normal(size=(6, width))
    baseline = rng.normal(size=(base_rows, width))
    rows[0, 1] = baseline[0, 1] if base_rows == 1 else rows[0, 1]  # a feature that does not vary (one baseline row)
    nsamples = 2**width - 2
    explainer = shap.KernelExplainer(predict, baseline, link="logit" if logit else "identity")
    np.random.seed(0)
    want = np.asarray(explainer.shap_values(rows, nsamples=nsamples, l1_reg=0, silent=True))
    got, expected = kernel_shap(predict, rows, baseline, samples=nsamples, use_logit=logit, seed=0)
    want = want.reshape(len(rows), width, outputs)  # shap 0.51: (rows, M) for one output, (rows, M, K) for K
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)
    np.testing.assert_allclose(expected, np.atleast_1d(explainer.expected_value), rtol=0, atol=1e-12)


@pytest.mark.parametrize(("width", "base_rows"), [(3, 1), (5, 4), (10, 2)])
def test_a_linear_model_equals_shap_and_the_closed_form(width: int, base_rows: int) -> None:
    """f(x) = x @ coef + b, every coalition enumerated: Shipyard, shap's KernelExplainer (l1_reg=0) and the
    exact (x − mean baseline) · coef agree within 1e-9."""
    import shap

    rng = np.random.default_rng(200 + width)
    coef, b = rng.normal(size=width), float(rng.normal())

    def predict(x: np.ndarray) -> np.ndarray:
        return np.asarray(x @ coef + b)

    rows, baseline = rng.normal(size=(8, width)), rng.normal(size=(base_rows, width))
    nsamples = 2**width - 2
    explainer = shap.KernelExplainer(predict, baseline)
    np.random.seed(0)
    want = np.asarray(explainer.shap_values(rows, nsamples=nsamples, l1_reg=0, silent=True)).reshape(8, width)
    got, expected = kernel_shap(predict, rows, baseline, samples=nsamples)
    exact = (rows - baseline.mean(axis=0)) * coef
    np.testing.assert_allclose(got[:, :, 0], want, rtol=0, atol=1e-9)
    np.testing.assert_allclose(got[:, :, 0], exact, rtol=0, atol=1e-9)
    np.testing.assert_allclose(want, exact, rtol=0, atol=1e-9)
    assert expected[0] == pytest.approx(float(np.atleast_1d(explainer.expected_value)[0]), abs=1e-12)


def test_close_to_shap_when_coalitions_are_sampled() -> None:
    """With M = 12 and 600 of 4094 coalitions, both sample (each with its own generator): the estimates agree
    to within the sampling error, and both are exact on what the sampling leaves alone (efficiency)."""
    import shap

    rng = np.random.default_rng(12)
    predict = _model(rng, 12)
    rows, baseline = rng.normal(size=(5, 12)), rng.normal(size=(2, 12))
    explainer = shap.KernelExplainer(predict, baseline)
    np.random.seed(0)
    want = np.asarray(explainer.shap_values(rows, nsamples=600, l1_reg=0, silent=True))
    got, _ = kernel_shap(predict, rows, baseline, samples=600, seed=0)
    exact, _ = kernel_shap(predict, rows, baseline, samples=4094)
    scale = np.abs(exact).max()
    assert np.abs(got[:, :, 0] - exact[:, :, 0]).max() < 0.05 * scale
    assert np.abs(want - exact[:, :, 0]).max() < 0.05 * scale
    np.testing.assert_allclose(got.sum(axis=1)[:, 0], want.sum(axis=1), atol=1e-9)
