"""Rational resampling with ``scipy.signal.resample_poly`` (polyphase FIR, anti-aliased)."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
from scipy import signal


def resample_ratio(orig_rate: float, new_rate: float, max_denominator: int = 1000) -> tuple[int, int]:
    """``(up, down)`` with ``new_rate / orig_rate == up / down`` (to ``max_denominator``)."""
    if orig_rate <= 0 or new_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_rate} -> {new_rate}")
    r = (Fraction(str(new_rate)) / Fraction(str(orig_rate))).limit_denominator(max_denominator)
    return r.numerator, r.denominator


def resample(x: np.ndarray, orig_rate: float, new_rate: float, *, axis: int = -1,
             padtype: str = "line") -> np.ndarray:
    """Resample ``x`` along ``axis`` from ``orig_rate`` to ``new_rate`` Hz.

    The output length is ``ceil(n * up / down)``. Equal rates return a float64 copy. ``padtype`` is
    ``resample_poly``'s assumption about the values beyond both ends: ``"line"`` (the default, for every
    loader) continues the linear trend through the end points, which keeps a constant or linear signal exact
    up to its ends; scipy's own default ``"constant"`` (zeros) makes the filter ring over the first and last
    ~10 samples of a signal with an offset (an accelerometer's gravity: several m/s² off at a run's edges,
    inside the windows cut there).
    """
    up, down = resample_ratio(orig_rate, new_rate)
    x = np.asarray(x, dtype=np.float64)
    if up == down:
        return x.copy()
    return signal.resample_poly(x, up, down, axis=axis, padtype=padtype)


def rescale_index(index: int, orig_rate: float, new_rate: float) -> int:
    """A sample index at ``orig_rate`` mapped to the nearest index at ``new_rate``."""
    up, down = resample_ratio(orig_rate, new_rate)
    return int(round(index * up / down))
