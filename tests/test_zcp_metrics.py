"""harcore.zcp.metrics against small hand-computed examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harcore import zcp

# 5 architectures: validation F1, test F1 and a proxy.
VAL = [0.50, 0.90, 0.70, 0.60, 0.80]
TEST = [0.45, 0.85, 0.72, 0.55, 0.88]
PROXY = [5.0, 1.0, 4.0, 2.0, 3.0]      # ranks arch 0 first, then 2, 4, 3, 1


def test_delta1_and_delta_k():
    # best by validation: arch 1 (test 0.85). Proxy top-1: arch 0 (test 0.45) -> 0.40.
    assert zcp.delta1(PROXY, VAL, TEST) == pytest.approx(0.40)
    # top 3 by proxy: {0, 2, 4}; best of them by validation: 4 (test 0.88) -> 0.85 - 0.88 = -0.03 (negative allowed)
    assert zcp.delta_k(PROXY, VAL, TEST, 3) == pytest.approx(-0.03)
    # k >= n: the best-by-validation architecture itself -> 0
    assert zcp.delta10(PROXY, VAL, TEST) == pytest.approx(0.0)
    # 10 % of 5 rounds to 1 (at least one)
    assert zcp.delta10pct(PROXY, VAL, TEST) == zcp.delta1(PROXY, VAL, TEST)


def test_talent_rate():
    n = 20
    val = np.arange(n, dtype=float)                   # top 10 % by validation: {19, 18}
    proxy = np.zeros(n)
    proxy[[19, 3]] = [10.0, 9.0]                      # top 2 by proxy: {19, 3}
    assert zcp.talent_rate(proxy, val) == 0.5
    assert zcp.talent_rate(val, val) == 1.0
    assert zcp.talent_rate(-val, val) == 0.0
    assert zcp.talent_rate(proxy, val, frac=0.25) == pytest.approx(1 / 5)  # top 5: {19..15} vs {19, 3, 0, 1, 2}


def test_top_k_ties_and_nan():
    assert zcp.top_k([1.0, 3.0, 3.0, math.nan, 2.0], 3).tolist() == [1, 2, 4]


def test_spearman_and_ci():
    p = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    f = [0.1, 0.3, 0.2, 0.4, 0.6, 0.5]
    # ranks of f: 1 3 2 4 6 5 -> d^2 = 0+1+1+0+1+1 = 4; rho = 1 - 6*4/(6*35) = 1 - 24/210
    assert zcp.spearman(p, f) == pytest.approx(1 - 24 / 210)
    ci = zcp.spearman_ci(p, f, n_resamples=300, seed=1)
    assert ci.rho == pytest.approx(1 - 24 / 210)
    assert -1 <= ci.low <= ci.rho <= ci.high <= 1
    assert ci == zcp.spearman_ci(p, f, n_resamples=300, seed=1)
    assert math.isnan(zcp.spearman([1.0, 1.0, 1.0], [0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="length mismatch"):
        zcp.spearman([1.0, 2.0], [0.1, 0.2, 0.3])


def test_random_baseline():
    # k = n: every draw is all architectures -> delta 0 exactly
    rb = zcp.random_baseline(VAL, TEST, k=5, draws=50)
    assert rb.delta_mean == 0.0 and rb.delta_std == 0.0
    # k = 1: uniform pick; expected delta = 0.85 - mean(TEST)
    rb1 = zcp.random_baseline(VAL, TEST, k=1, draws=4000, seed=3)
    assert rb1.delta_mean == pytest.approx(0.85 - np.mean(TEST), abs=0.01)
    big = np.linspace(0, 1, 100)
    assert zcp.random_baseline(big, big, k=10, draws=1000).talent_mean == pytest.approx(0.1, abs=0.02)


def test_add_noise():
    x = np.zeros((2000, 3, 10), dtype=np.float32)
    assert np.array_equal(zcp.add_noise(x, 0.0), x)
    n = zcp.add_noise(x, 0.05, seed=2)
    assert n.dtype == np.float32 and n.var() == pytest.approx(0.05, rel=0.02)
    assert np.array_equal(n, zcp.add_noise(x, 0.05, seed=2))
    assert zcp.NOISE_VARIANCES == (0.0, 0.001, 0.01, 0.05, 0.5)


def test_spearman_ci_matches_scipy_bootstrap_statistic():
    from scipy.stats import spearmanr

    rng = np.random.default_rng(4)
    p = rng.normal(size=40)
    f = p + rng.normal(size=40)
    ci = zcp.spearman_ci(p, f, n_resamples=500, seed=0)
    assert ci.rho == pytest.approx(spearmanr(p, f).statistic)
    # the interval brackets rho and is narrower than the whole range for a clearly correlated sample
    assert 0 < ci.low < ci.rho < ci.high < 1
