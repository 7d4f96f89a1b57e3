"""How well a proxy ranks architectures: Δ1, Δk, Δ10 %, talent rate, Spearman (bootstrap CI), the random
baseline and the noise test (the paper's section IV; exact definitions in ``docs/zcp.md``).

All F1 values are fractions in [0, 1]; Δ values are too (multiply by 100 for points). Higher proxy = better.
Ties in a ranking are broken by the lower index (the order in which the architectures were sampled).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = ["NOISE_VARIANCES", "delta_k", "delta1", "delta10", "delta10pct", "talent_rate", "spearman",
           "spearman_ci", "random_baseline", "add_noise", "top_k", "SpearmanCI", "RandomBaseline"]

#: The variances of the paper's noise test (Gaussian, zero mean, test data only).
NOISE_VARIANCES: tuple[float, ...] = (0.0, 0.001, 0.01, 0.05, 0.5)


def _arr(v: Sequence[float], what: str) -> np.ndarray:
    a = np.asarray(v, dtype=np.float64)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"{what}: need a non-empty 1-D sequence, got shape {a.shape}")
    return a


def _check(proxy: np.ndarray, *others: np.ndarray) -> None:
    for o in others:
        if o.shape != proxy.shape:
            raise ValueError(f"length mismatch: {proxy.shape[0]} proxy scores but {o.shape[0]} F1 values")


def top_k(values: Sequence[float], k: int) -> np.ndarray:
    """Indices of the k highest values (NaN counts as lowest), ties to the lower index."""
    v = _arr(values, "values")
    key = np.where(np.isnan(v), -np.inf, v)
    order = np.lexsort((np.arange(v.size), -key))   # primary: value descending; then index ascending
    return order[:max(0, min(int(k), v.size))]


def _k_of(n: int, frac: float) -> int:
    return max(1, int(round(frac * n)))


def delta_k(proxy: Sequence[float], val_f1: Sequence[float], test_f1: Sequence[float], k: int) -> float:
    """Test F1 of the best-by-validation architecture of all, minus the test F1 of the best-by-validation
    architecture among the proxy's top k (Δ1 for k = 1). Negative when the proxy's pick tests better."""
    p, v, t = _arr(proxy, "proxy"), _arr(val_f1, "val_f1"), _arr(test_f1, "test_f1")
    _check(p, v, t)
    best_all = int(top_k(v, 1)[0])
    cand = top_k(p, k)
    pick = int(cand[top_k(v[cand], 1)[0]])
    return float(t[best_all] - t[pick])


def delta1(proxy: Sequence[float], val_f1: Sequence[float], test_f1: Sequence[float]) -> float:
    return delta_k(proxy, val_f1, test_f1, 1)


def delta10(proxy: Sequence[float], val_f1: Sequence[float], test_f1: Sequence[float]) -> float:
    return delta_k(proxy, val_f1, test_f1, 10)


def delta10pct(proxy: Sequence[float], val_f1: Sequence[float], test_f1: Sequence[float]) -> float:
    return delta_k(proxy, val_f1, test_f1, _k_of(len(proxy), 0.1))


def talent_rate(proxy: Sequence[float], val_f1: Sequence[float], frac: float = 0.1) -> float:
    """|top frac by proxy ∩ top frac by validation F1| / k, k = round(frac · n) (at least 1). Chance ≈ frac."""
    p, v = _arr(proxy, "proxy"), _arr(val_f1, "val_f1")
    _check(p, v)
    k = _k_of(p.size, frac)
    return len(set(top_k(p, k).tolist()) & set(top_k(v, k).tolist())) / k


def spearman(proxy: Sequence[float], f1: Sequence[float]) -> float:
    """Spearman's rho (scipy.stats.spearmanr); NaN when either side is constant."""
    from scipy.stats import spearmanr

    p, f = _arr(proxy, "proxy"), _arr(f1, "f1")
    _check(p, f)
    ok = np.isfinite(p) & np.isfinite(f)
    if ok.sum() < 2 or np.ptp(p[ok]) == 0 or np.ptp(f[ok]) == 0:
        return math.nan
    return float(spearmanr(p[ok], f[ok]).statistic)


@dataclass(frozen=True)
class SpearmanCI:
    rho: float
    low: float
    high: float
    confidence: float


def spearman_ci(proxy: Sequence[float], f1: Sequence[float], n_resamples: int = 1000, confidence: float = 0.95,
                seed: int = 0) -> SpearmanCI:
    """Spearman's rho with a paired percentile bootstrap interval (scipy.stats.bootstrap)."""
    from scipy.stats import bootstrap, rankdata

    p, f = _arr(proxy, "proxy"), _arr(f1, "f1")
    _check(p, f)
    rho = spearman(p, f)
    if not math.isfinite(rho) or p.size < 3:
        return SpearmanCI(rho, math.nan, math.nan, confidence)

    def stat(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
        # Vectorised Spearman: Pearson correlation of average ranks along ``axis`` (= scipy's rho).
        ra = rankdata(a, axis=axis)
        rb = rankdata(b, axis=axis)
        ra = ra - ra.mean(axis=axis, keepdims=True)
        rb = rb - rb.mean(axis=axis, keepdims=True)
        den = np.sqrt((ra * ra).sum(axis=axis) * (rb * rb).sum(axis=axis))
        num = (ra * rb).sum(axis=axis)
        # A resample of constant values carries no rank information: 0.
        return np.divide(num, den, out=np.zeros_like(num, dtype=np.float64), where=den > 0)

    res = bootstrap((p, f), stat, paired=True, vectorized=True, n_resamples=n_resamples,
                    confidence_level=confidence, method="percentile", rng=np.random.default_rng(seed))
    return SpearmanCI(rho, float(res.confidence_interval.low), float(res.confidence_interval.high), confidence)


@dataclass(frozen=True)
class RandomBaseline:
    k: int
    draws: int
    delta_mean: float
    delta_std: float
    talent_mean: float


def random_baseline(val_f1: Sequence[float], test_f1: Sequence[float], k: int, draws: int = 1000,
                    seed: int = 0, frac: float = 0.1) -> RandomBaseline:
    """Random search: ``draws`` times, train k random architectures and keep the best by validation.

    ``delta_*``: Δk of those picks (as :func:`delta_k`), mean and sample std over the draws.
    ``talent_mean``: the talent rate of random top-``frac`` sets (expected value ``frac``).
    """
    v, t = _arr(val_f1, "val_f1"), _arr(test_f1, "test_f1")
    _check(v, t)
    n = v.size
    if not 1 <= k <= n:
        raise ValueError(f"k must lie in [1, {n}], got {k}")
    rng = np.random.default_rng(seed)
    best_all = t[int(top_k(v, 1)[0])]
    kt = _k_of(n, frac)
    top_v = set(top_k(v, kt).tolist())
    deltas, talents = np.empty(draws), np.empty(draws)
    for i in range(draws):
        cand = rng.choice(n, size=k, replace=False)
        deltas[i] = best_all - t[int(cand[top_k(v[cand], 1)[0]])]
        talents[i] = len(top_v & set(rng.choice(n, size=kt, replace=False).tolist())) / kt
    return RandomBaseline(k, draws, float(deltas.mean()), float(deltas.std(ddof=1)) if draws > 1 else 0.0,
                          float(talents.mean()))


def add_noise(x: np.ndarray, variance: float, seed: int = 0) -> np.ndarray:
    """``x + N(0, variance)``, float32, seeded (the noise test perturbs test data only)."""
    if variance < 0:
        raise ValueError(f"variance must be >= 0, got {variance}")
    x = np.asarray(x, dtype=np.float32)
    if variance == 0:
        return x.copy()
    rng = np.random.default_rng(seed)
    return (x + rng.normal(0.0, math.sqrt(variance), size=x.shape)).astype(np.float32)
