"""TFLite/TFLM integer-quantization arithmetic on the Python side (docs/cmsis-nn.md §3.1, §3.3).

`quantize_multiplier` is TFLite's ``QuantizeMultiplier``: the real multiplier (double precision) is split
with ``frexp`` into ``q * 2**e`` with ``q`` in [0.5, 1), ``M = round(q * 2**31)`` (half away from zero), and
``M == 2**31`` is folded into ``2**30`` with ``e + 1``. Exponents below -31 flush to ``(0, 0)`` and above 30
saturate to ``(2**31 - 1, 30)``. A positive shift means a left shift. Feed it the same double TFLM
computes (e.g. ``float(s_in) * float(s_w) / float(s_out)`` from the float32 tensor scales), not a
float32 product.

`activation_range` is TFLite's ``CalculateActivationRangeQuantized`` for int8: the bounds are
``zp + round(f / scale)`` evaluated in float32, as the C++ does.

Plain Python and numpy only (no TensorFlow).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["quantize_multiplier", "activation_range", "round_half_away"]

_INT8_MIN, _INT8_MAX = -128, 127


def round_half_away(x: float) -> int:
    """``std::round``: nearest integer, ties away from zero."""
    r = math.floor(abs(x) + 0.5)
    return int(-r if x < 0 else r)


def quantize_multiplier(real_multiplier: float) -> tuple[int, int]:
    """(multiplier, shift) with ``real ≈ multiplier * 2**(shift - 31)``, exactly as TFLite computes it."""
    real = float(real_multiplier)
    if not math.isfinite(real):
        raise ValueError(f"quantize_multiplier: real_multiplier must be finite, got {real_multiplier!r}")
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = round_half_away(q * float(1 << 31))
    if abs(q_fixed) > (1 << 31):  # cannot happen for |q| < 1; mirrors TFLite's check
        raise ValueError(f"quantize_multiplier: {real_multiplier!r} gives an out-of-range multiplier")
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        return (1 << 31) - 1, 30
    return int(q_fixed), int(shift)


def activation_range(activation: str, scale: float, zero_point: int) -> tuple[int, int]:
    """int8 (act_min, act_max) of a fused activation: 'NONE', 'RELU', 'RELU6' or 'RELU_N1_TO_1'."""
    s = np.float32(scale)
    if not (np.isfinite(s) and s > 0):
        raise ValueError(f"activation_range: scale must be a positive finite number, got {scale!r}")
    zp = int(zero_point)

    def quantize(f: float) -> int:
        return zp + round_half_away(float(np.float32(f) / s))

    act = activation.upper()
    if act == "NONE":
        return _INT8_MIN, _INT8_MAX
    if act == "RELU":
        return max(_INT8_MIN, quantize(0.0)), _INT8_MAX
    if act == "RELU6":
        return max(_INT8_MIN, quantize(0.0)), min(_INT8_MAX, quantize(6.0))
    if act == "RELU_N1_TO_1":
        return max(_INT8_MIN, quantize(-1.0)), min(_INT8_MAX, quantize(1.0))
    raise ValueError(f"activation_range: unknown activation {activation!r} (NONE, RELU, RELU6, RELU_N1_TO_1)")
