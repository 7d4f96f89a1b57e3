"""Kernel self-test for the firmware: cases generated on the host, run on the Cortex-M33, compared bit for bit.

`generate(seed)` draws inputs, weights and quantization parameters for every kernel family of
``src/cpp/kernels`` (each conv / depthwise path and its wrapper, FC per-tensor / per-channel / wrapper, max
and average pooling, add, softmax, clamp, the s8 LSTM), computes the expected int8 outputs with the host
binding ``harcore._core.kernels`` and returns them with one C++ source (``write_sources``) that calls the
same kernels in the ``selftest`` firmware app. `parse_output` reads the image's console.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .cgen import c_array

__all__ = ["SelfTestCase", "generate", "generate_random", "write_sources", "parse_output", "parse_stack"]

SCRATCH_BYTES = 32 * 1024


@dataclass
class SelfTestCase:
    """One kernel call: its name, the host's int8 output, and the C++ that repeats it on the target."""
    name: str
    kernel: str
    expected: np.ndarray
    decls: str
    body: str
    macs: int = 0


def _qm(real: float) -> tuple[int, int]:
    from harcore.quant.arith import quantize_multiplier

    return quantize_multiplier(real)


class _Gen:
    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)
        self.cases: list[SelfTestCase] = []

    def i8(self, shape, std: float | None = None) -> np.ndarray:
        if std is None:
            return self.rng.integers(-128, 128, size=shape, dtype=np.int64).astype(np.int8)
        return np.clip(np.round(self.rng.normal(0, std, size=shape)), -127, 127).astype(np.int8)

    def requant(self, n: int, depth: int) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel (multiplier, shift) that map an accumulator of `depth` int8 products onto int8."""
        acc_std = math.sqrt(depth) * 74.0 * 74.0
        ms = [_qm(40.0 / acc_std * float(self.rng.uniform(0.6, 1.5))) for _ in range(n)]
        return np.array([m for m, _ in ms], np.int32), np.array([s for _, s in ms], np.int32)

    def bias(self, n: int, depth: int) -> np.ndarray:
        return self.rng.integers(-depth * 2000, depth * 2000, size=n).astype(np.int32)

    def add(self, name, kernel, expected, decls, body, macs=0):
        self.cases.append(SelfTestCase(name, kernel, np.ascontiguousarray(expected, np.int8).reshape(-1), decls,
                                       body, macs))


def _dims(shape) -> str:
    n, h, w, c = (int(v) for v in shape)
    return f"{{{n}, {h}, {w}, {c}}}"


_CONV_GETTER = {
    "arm_convolve_s8": "arm_convolve_s8_get_buffer_size(&in, &f)",
    "arm_convolve_1x1_s8_fast": "arm_convolve_1x1_s8_fast_get_buffer_size(&in)",
    "arm_convolve_1x1_s8": "0",
    "arm_convolve_1_x_n_s8": "arm_convolve_1_x_n_s8_get_buffer_size(&p, &in, &f, &o)",
    "arm_convolve_wrapper_s8": "arm_convolve_wrapper_s8_get_buffer_size(&p, &in, &f, &o)",
    "arm_depthwise_conv_s8": "0",
    "arm_depthwise_conv_s8_opt": "arm_depthwise_conv_s8_opt_get_buffer_size(&in, &f)",
    "arm_depthwise_conv_3x3_s8": "0",
    "arm_depthwise_conv_wrapper_s8": "arm_depthwise_conv_wrapper_s8_get_buffer_size(&p, &in, &f, &o)",
}

# The scratch as the host binding hands it over: NULL when the getter says 0, else the getter's size.
_CTX = ("  const int32_t need = {getter};\n"
        "  if (need < 0 || need > ctx->size) return -100;\n"
        "  const cmsis_nn_context c{{need > 0 ? ctx->buf : nullptr, need}};\n")


def _conv(g: _Gen, kernel: str, in_shape, f_shape, *, stride=(1, 1), pad=(0, 0), dil=(1, 1), act=(-128, 127),
          with_bias=True, dw=False):
    from harcore._core import kernels as K

    tag = f"c{len(g.cases)}"
    x = g.i8(in_shape)
    w = g.i8(f_shape, std=40)
    c_out = f_shape[3] if dw else f_shape[0]
    depth = f_shape[1] * f_shape[2] * (1 if dw else f_shape[3])
    mult, shift = g.requant(c_out, depth)
    b = g.bias(c_out, depth) if with_bias else None
    in_off, out_off = int(g.rng.integers(-20, 21)), int(g.rng.integers(-10, 11))
    y = getattr(K, kernel.removeprefix("arm_"))(x, w, b, mult, shift, input_offset=in_off, output_offset=out_off,
                                                 stride=stride, padding=pad, dilation=dil, activation=act)
    decls = (c_array(f"{tag}_in", x) + c_array(f"{tag}_w", w) + c_array(f"{tag}_m", mult) + c_array(f"{tag}_s", shift)
             + (c_array(f"{tag}_b", b) if b is not None else ""))
    tiles = f"{{{stride[1]}, {stride[0]}}}, {{{pad[1]}, {pad[0]}}}, {{{dil[1]}, {dil[0]}}}, {{{act[0]}, {act[1]}}}"
    params = (f"  const cmsis_nn_dw_conv_params p{{{in_off}, {out_off}, {f_shape[3] // in_shape[3]}, {tiles}}};\n" if dw
              else f"  const cmsis_nn_conv_params p{{{in_off}, {out_off}, {tiles}}};\n")
    body = (params
            + f"  const cmsis_nn_per_channel_quant_params q{{const_cast<int32_t*>({tag}_m), const_cast<int32_t*>({tag}_s)}};\n"
            + f"  const cmsis_nn_dims in{_dims(in_shape)}, f{_dims(f_shape)}, bd{{1, 1, 1, {c_out}}}, o{_dims(y.shape)};\n"
            + _CTX.format(getter=_CONV_GETTER[kernel])
            + f"  return {kernel}(&c, &p, &q, &in, {tag}_in, &f, {tag}_w, &bd, {tag + '_b' if b is not None else 'nullptr'}, &o, out);\n")
    macs = int(np.prod(y.shape)) * depth
    g.add(f"{kernel}:{tag}", kernel, y, decls, body, macs)


def _fc(g: _Gen, kernel: str, batches: int, depth: int, c_out: int, act=(-128, 127)):
    from harcore._core import kernels as K

    tag = f"c{len(g.cases)}"
    x = g.i8((batches, depth))
    w = g.i8((c_out, depth), std=40)
    b = g.bias(c_out, depth)
    in_off, out_off = int(g.rng.integers(-20, 21)), int(g.rng.integers(-10, 11))
    mult, shift = g.requant(c_out, depth)
    decls = c_array(f"{tag}_in", x) + c_array(f"{tag}_w", w) + c_array(f"{tag}_b", b)
    common = dict(input_offset=in_off, output_offset=out_off, activation=act)
    fc_p = f"  const cmsis_nn_fc_params p{{{in_off}, 0, {out_off}, {{{act[0]}, {act[1]}}}}};\n"
    dims = (f"  const cmsis_nn_dims in{{{batches}, 1, 1, {depth}}}, f{{{depth}, 1, 1, {c_out}}}, bd{{1, 1, 1, {c_out}}}, "
            f"o{{{batches}, 1, 1, {c_out}}};\n")
    call_tail = f"&in, {tag}_in, &f, {tag}_w, &bd, {tag}_b, &o, out);\n"
    ctx = _CTX.format(getter="arm_fully_connected_s8_get_buffer_size(&f)")
    if kernel == "arm_fully_connected_s8":
        y = K.fully_connected_s8(x, w, b, int(mult[0]), int(shift[0]), **common)
        q = f"  const cmsis_nn_per_tensor_quant_params q{{{int(mult[0])}, {int(shift[0])}}};\n"
    else:
        decls += c_array(f"{tag}_m", mult) + c_array(f"{tag}_s", shift)
        if kernel == "arm_fully_connected_per_channel_s8":
            y = K.fully_connected_per_channel_s8(x, w, b, mult, shift, **common)
            q = f"  const cmsis_nn_per_channel_quant_params q{{const_cast<int32_t*>({tag}_m), const_cast<int32_t*>({tag}_s)}};\n"
        else:
            y = K.fully_connected_wrapper_s8(x, w, b, mult, shift, per_channel=True, **common)
            q = f"  const cmsis_nn_quant_params q{{const_cast<int32_t*>({tag}_m), const_cast<int32_t*>({tag}_s), 1}};\n"
    body = fc_p + q + dims + ctx + f"  return {kernel}(&c, &p, &q, " + call_tail
    g.add(f"{kernel}:{tag}", kernel, y, decls, body, batches * depth * c_out)


def _pool(g: _Gen, kernel: str, in_shape, fshape, stride, pad, act=(-128, 127)):
    from harcore._core import kernels as K

    tag = f"c{len(g.cases)}"
    x = g.i8(in_shape)
    fn = K.max_pool_s8 if kernel == "arm_max_pool_s8" else K.avgpool_s8
    y = fn(x, filter_shape=fshape, stride=stride, padding=pad, activation=act)
    getter = "0" if kernel == "arm_max_pool_s8" else f"arm_avgpool_s8_get_buffer_size({y.shape[2]}, {in_shape[3]})"
    body = (f"  const cmsis_nn_pool_params p{{{{{stride[1]}, {stride[0]}}}, {{{pad[1]}, {pad[0]}}}, {{{act[0]}, {act[1]}}}}};\n"
            f"  const cmsis_nn_dims in{_dims(in_shape)}, f{{1, {fshape[0]}, {fshape[1]}, 1}}, o{_dims(y.shape)};\n"
            + _CTX.format(getter=getter)
            + f"  return {kernel}(&c, &p, &in, {tag}_in, &f, &o, out);\n")
    g.add(f"{kernel}:{tag}", kernel, y, c_array(f"{tag}_in", x), body)


def _lstm(g: _Gen, batch: int, steps: int, inp: int, hidden: int, *, time_major=False, cell_clip=0,
          varied: str | None = None):
    """One LSTM case. ``varied`` draws the quantization from wider ranges, to reach every path of the
    firmware's step: "scales" (per-gate weight scales, so gate shifts of both signs; any cell scale, so the
    cell's tanh shift from negative to above 14), "bias" (effective biases near 2^29, beyond the bound of
    the fast requantization)."""
    from harcore._core import kernels as K

    tag = f"c{len(g.cases)}"
    s_in, s_out, cell_pow = 0.05, 1.0 / 128.0, -11
    s_wi = s_wh = [0.02] * 4
    if varied == "scales":
        s_in, s_out = float(g.rng.uniform(0.005, 0.1)), float(g.rng.uniform(0.002, 0.05))
        s_wi = [float(10 ** g.rng.uniform(-4, -1)) for _ in range(4)]
        s_wh = [float(10 ** g.rng.uniform(-4, -1)) for _ in range(4)]
        cell_pow = int(g.rng.choice([-15, -13, -11, -8, -3, 0, 3]))
    x = g.i8((steps, batch, inp) if time_major else (batch, steps, inp))
    w_in = g.i8((4, hidden, inp), std=12)
    w_h = g.i8((4, hidden, hidden), std=12)
    zp_in, zp_out = int(g.rng.integers(-10, 11)), int(g.rng.integers(-5, 6))
    in_off, out_off = -zp_in, zp_out
    bias = g.rng.integers(-3000, 3000, size=(4, hidden))
    if varied == "bias":
        bias[int(g.rng.integers(0, 4)), int(g.rng.integers(0, hidden))] = int(g.rng.choice([-1, 1])) * (1 << 29)
    eb_in = (bias + in_off * w_in.astype(np.int64).sum(axis=2)).astype(np.int32)
    eb_h = (-out_off * w_h.astype(np.int64).sum(axis=2)).astype(np.int32)
    qi = [_qm(s_in * s_wi[k] / 2.0 ** -12) for k in range(4)]
    qh = [_qm(s_out * s_wh[k] / 2.0 ** -12) for k in range(4)]
    m_in = np.array([q[0] for q in qi], np.int32)
    sh_in = np.array([q[1] for q in qi], np.int32)
    m_h = np.array([q[0] for q in qh], np.int32)
    sh_h = np.array([q[1] for q in qh], np.int32)
    f2c = _qm(2.0 ** -15)
    i2c = _qm(2.0 ** -15 * 2.0 ** -15 / 2.0 ** cell_pow)
    oq = _qm(2.0 ** -15 * 2.0 ** -15 / s_out)
    y = K.lstm_unidirectional_s8(x, w_in, w_h, eb_in, eb_h, m_in, sh_in, m_h, sh_h, input_offset=in_off,
                                 output_offset=out_off, forget_to_cell=f2c, input_to_cell=i2c, output_quant=oq,
                                 cell_scale_power=cell_pow, cell_clip=cell_clip, time_major=time_major)
    decls = (c_array(f"{tag}_in", x) + c_array(f"{tag}_wi", w_in) + c_array(f"{tag}_wh", w_h)
             + c_array(f"{tag}_bi", eb_in) + c_array(f"{tag}_bh", eb_h))
    gates = []
    for k, name in enumerate(("input_gate", "forget_gate", "cell_gate", "output_gate")):
        act = "ARM_TANH" if k == 2 else "ARM_SIGMOID"
        gates.append(f"  p.{name} = {{{qi[k][0]}, {qi[k][1]}, {tag}_wi + {k * hidden * inp}, {tag}_bi + {k * hidden}, "
                     f"{qh[k][0]}, {qh[k][1]}, {tag}_wh + {k * hidden * hidden}, {tag}_bh + {k * hidden}, {act}}};\n")
    body = ("  cmsis_nn_lstm_params p{};\n"
            f"  p.time_major = {int(time_major)}; p.batch_size = {batch}; p.time_steps = {steps};\n"
            f"  p.input_size = {inp}; p.hidden_size = {hidden}; p.input_offset = {in_off}; p.output_offset = {out_off};\n"
            f"  p.forget_to_cell_multiplier = {f2c[0]}; p.forget_to_cell_shift = {f2c[1]};\n"
            f"  p.input_to_cell_multiplier = {i2c[0]}; p.input_to_cell_shift = {i2c[1]};\n"
            f"  p.output_multiplier = {oq[0]}; p.output_shift = {oq[1]};\n"
            f"  p.cell_scale_power = {cell_pow}; p.cell_clip = {cell_clip};\n"
            + "".join(gates)
            + _CTX.format(getter=f"arm_lstm_unidirectional_s8_get_buffer_size({hidden}, {batch})")
            + f"  return arm_lstm_unidirectional_s8(&c, {tag}_in, &p, out);\n")
    g.add(f"arm_lstm_unidirectional_s8:{tag}", "arm_lstm_unidirectional_s8", y, decls, body,
          batch * steps * 4 * hidden * (inp + hidden))


def _rq_np(v: np.ndarray, mult: int, shift: int) -> np.ndarray:
    """arm_nn_requantize (docs/cmsis-nn.md §3.2) on int64 arrays: the expected values of the kernels that
    have no host binding (mul, sub)."""
    v = np.asarray(v, np.int64)
    t = ((v << max(shift, 0)) + 2 ** 31) % 2 ** 32 - 2 ** 31  # modulo 2^32, as the kernels' uint32 shift
    h = (t * mult + (1 << 30)) >> 31
    h = (h + 2 ** 31) % 2 ** 32 - 2 ** 31
    right = max(-shift, 0)
    if right == 0:
        return h
    q = h >> right
    rem = h & ((1 << right) - 1)
    return q + (rem > (((1 << right) - 1) >> 1) + (q < 0)).astype(np.int64)


def _elementwise(g: _Gen, n: int, *, fast: bool, kinds: tuple[str, ...] = ("add", "sub", "mul")):
    """arm_elementwise_add_s8 / _sub_s8 / _mul_s8 with random TFLite-style parameters: ``fast`` keeps every shift
    <= 0 and left_shift 20 (the DSP path's SMMULR requantization); otherwise a positive shift or left_shift 22
    (the general path)."""
    from harcore._core import kernels as K

    r = g.rng
    a, b = g.i8((n,)), g.i8((n,))
    off1, off2 = int(r.integers(-127, 129)), int(r.integers(-127, 129))
    out_off = int(r.integers(-128, 128))
    lo, hi = -128 + int(r.integers(0, 40)), 127 - int(r.integers(0, 40))
    ls = 20 if fast else 22
    m1, s1 = _qm(float(r.uniform(0.05, 0.5)))
    m2, s2 = _qm(float(r.uniform(0.05, 0.5)))
    mo, so = _qm(float(r.uniform(1e-7, 2e-6)) if fast else float(r.uniform(1.0, 3.0)))
    if not fast:
        s1 = max(s1, 0) + 1  # the general path for the inputs too
    for kind in ("add", "sub"):
        tag = f"c{len(g.cases)}"
        if kind == "add" and fast:
            y = K.elementwise_add_s8(a, b, input_1_offset=off1, input_1_mult=m1, input_1_shift=s1, input_2_offset=off2,
                                     input_2_mult=m2, input_2_shift=s2, left_shift=ls, out_offset=out_off,
                                     out_mult=mo, out_shift=so, activation=(lo, hi))
        else:
            xa = _rq_np((a.astype(np.int64) + off1) * (1 << ls), m1, s1)
            xb = _rq_np((b.astype(np.int64) + off2) * (1 << ls), m2, s2)
            acc = xa + xb if kind == "add" else xa - xb
            acc = (acc + 2 ** 31) % 2 ** 32 - 2 ** 31
            y = np.clip(_rq_np(acc, mo, so) + out_off, lo, hi).astype(np.int8)
        if (kind == "sub" and not fast) or kind not in kinds:
            continue  # arm_elementwise_sub_s8 rejects positive shifts
        body = (f"  (void)ctx;\n  return arm_elementwise_{kind}_s8({tag}_a, {tag}_b, {off1}, {m1}, {s1}, {off2}, {m2}, "
                f"{s2}, {ls}, out, {out_off}, {mo}, {so}, {lo}, {hi}, {n});\n")
        g.add(f"arm_elementwise_{kind}_s8:{tag}", f"arm_elementwise_{kind}_s8", y,
              c_array(f"{tag}_a", a) + c_array(f"{tag}_b", b), body)
    if "mul" not in kinds:
        return
    tag = f"c{len(g.cases)}"
    mm, sm = _qm(float(r.uniform(1e-4, 0.02)) if fast else float(r.uniform(1.0, 3.0)))
    y = np.clip(_rq_np((a.astype(np.int64) + off1) * (b.astype(np.int64) + off2), mm, sm) + out_off, lo,
                hi).astype(np.int8)
    body = (f"  (void)ctx;\n  return arm_elementwise_mul_s8({tag}_a, {tag}_b, {off1}, {off2}, out, {out_off}, {mm}, {sm}, "
            f"{lo}, {hi}, {n});\n")
    g.add(f"arm_elementwise_mul_s8:{tag}", "arm_elementwise_mul_s8", y, c_array(f"{tag}_a", a) + c_array(f"{tag}_b", b),
          body)


def _mul_fixed(g: _Gen, n: int, off1: int, off2: int, out_off: int, mult: int, shift: int, act=(-128, 127)):
    """arm_elementwise_mul_s8 on ``n`` random values with the given parameters (a deployed model's MUL step)."""
    a, b = g.i8((n,)), g.i8((n,))
    tag = f"c{len(g.cases)}"
    lo, hi = act
    y = np.clip(_rq_np((a.astype(np.int64) + off1) * (b.astype(np.int64) + off2), mult, shift) + out_off, lo,
                hi).astype(np.int8)  # astype wraps an activation bound outside int8 as the kernel's int8 cast does
    body = (f"  (void)ctx;\n  return arm_elementwise_mul_s8({tag}_a, {tag}_b, {off1}, {off2}, out, {out_off}, {mult}, "
            f"{shift}, {lo}, {hi}, {n});\n")
    g.add(f"arm_elementwise_mul_s8:{tag}", "arm_elementwise_mul_s8", y, c_array(f"{tag}_a", a) + c_array(f"{tag}_b", b),
          body)


def _misc(g: _Gen):
    from harcore._core import kernels as K

    # elementwise add, TFLite's scheme: left_shift 20, input multipliers < 2^31 with shifts <= 0
    tag = f"c{len(g.cases)}"
    a, b = g.i8((300,)), g.i8((300,))
    args = dict(input_1_offset=7, input_1_mult=1623821475, input_1_shift=-1, input_2_offset=-3,
                input_2_mult=1073741824, input_2_shift=0, left_shift=20, out_offset=-5, out_mult=1886303204,
                out_shift=-19, activation=(-120, 120))
    y = K.elementwise_add_s8(a, b, **args)
    body = (f"  (void)ctx;\n  return arm_elementwise_add_s8({tag}_a, {tag}_b, 7, 1623821475, -1, -3, 1073741824, 0, 20, "
            "out, -5, 1886303204, -19, -120, 120, 300);\n")
    g.add(f"arm_elementwise_add_s8:{tag}", "arm_elementwise_add_s8", y, c_array(f"{tag}_a", a) + c_array(f"{tag}_b", b),
          body)
    # softmax over rows of 6 classes (input scale 0.02 → TFLite's mult/shift for beta 1, 5 integer bits)
    tag = f"c{len(g.cases)}"
    x = g.i8((5, 6))
    mult, shift = _qm(min(0.02 * (1 << 26), (1 << 31) - 1.0))
    diff_min = -math.floor(31.0 * (1 << 26) / (1 << shift))  # TFLite's CalculateInputRadius(5, shift)
    y = K.softmax_s8(x, mult=mult, shift=shift, diff_min=diff_min)
    body = f"  (void)ctx;\n  return arm_softmax_s8({tag}_in, 5, 6, {mult}, {shift}, {diff_min}, out);\n"
    g.add(f"arm_softmax_s8:{tag}", "arm_softmax_s8", y, c_array(f"{tag}_in", x), body)
    # requantizing clamp (an int8 RELU6 between different scales)
    tag = f"c{len(g.cases)}"
    x = g.i8((200,))
    y = K.clamp_s8(x, input_offset=12, output_offset=-128, mult=1518500250, shift=-1, activation=(-128, 60))
    body = f"  (void)ctx;\n  return arm_clamp_s8({tag}_in, out, 200, 12, -128, 1518500250, -1, -128, 60);\n"
    g.add(f"arm_clamp_s8:{tag}", "arm_clamp_s8", y, c_array(f"{tag}_in", x), body)


def _bmm(g: _Gen, lhs_shape, rhs_shape, act=(-128, 127)):
    """arm_batch_matmul_s8 on lhs (n, h, M, K) and a transposed rhs (n, h, N, K) (a batch dim of 1 on one side
    broadcasts). The expected output is TFLM's arithmetic written out: exact int64 sums of offset-added operands,
    then the host's arm_nn_requantize."""
    from harcore._core import kernels as K

    tag = f"c{len(g.cases)}"
    a, b = g.i8(lhs_shape), g.i8(rhs_shape)
    depth = lhs_shape[3]
    in_off, w_off = int(g.rng.integers(-127, 129)), int(g.rng.integers(-127, 129))
    out_off = int(g.rng.integers(-20, 21))
    mult, shift = g.requant(1, depth)
    n, h = max(lhs_shape[0], rhs_shape[0]), max(lhs_shape[1], rhs_shape[1])
    acc = np.einsum("nhik,nhjk->nhij", np.broadcast_to(a.astype(np.int64) + in_off, (n, h) + a.shape[2:]),
                    np.broadcast_to(b.astype(np.int64) + w_off, (n, h) + b.shape[2:]))
    rq = K.requantize(acc.astype(np.int32).reshape(-1), np.full(acc.size, mult[0], np.int32),
                      np.full(acc.size, shift[0], np.int32)).astype(np.int64)
    y = np.clip(rq + out_off, act[0], act[1]).astype(np.int8)
    o_shape = (n, h, lhs_shape[2], rhs_shape[2])
    body = (f"  (void)ctx;\n"
            f"  const cmsis_nn_bmm_params p{{0, 1, {{{in_off}, {w_off}, {out_off}, {{{act[0]}, {act[1]}}}}}}};\n"
            f"  const cmsis_nn_per_tensor_quant_params q{{{int(mult[0])}, {int(shift[0])}}};\n"
            f"  const cmsis_nn_dims l{_dims(lhs_shape)}, r{_dims(rhs_shape)}, o{_dims(o_shape)};\n"
            f"  return arm_batch_matmul_s8(ctx, &p, &q, &l, {tag}_l, &r, {tag}_r, &o, out);\n")
    g.add(f"arm_batch_matmul_s8:{tag}", "arm_batch_matmul_s8", y, c_array(f"{tag}_l", a) + c_array(f"{tag}_r", b),
          body, int(acc.size) * depth)


def generate(seed: int = 0) -> list[SelfTestCase]:
    """The self-test cases: every kernel path once or more, HAR-like shapes (H = 1, time along W) included."""
    g = _Gen(seed)
    # conv: the wrapper's generic path on a 9-channel window, 2-D with stride/pad/dilation, grouped,
    # 1x1 fast, 1x1 strided, 1xN, and the wrapper on each special case
    _conv(g, "arm_convolve_wrapper_s8", (1, 1, 128, 9), (16, 1, 5, 9), pad=(0, 2))
    _conv(g, "arm_convolve_s8", (2, 6, 7, 5), (6, 3, 3, 5), stride=(2, 1), pad=(1, 1), dil=(1, 2), act=(-100, 90))
    _conv(g, "arm_convolve_s8", (1, 5, 9, 8), (12, 3, 1, 4), pad=(1, 0), with_bias=False)
    _conv(g, "arm_convolve_1x1_s8_fast", (1, 4, 6, 16), (10, 1, 1, 16))
    _conv(g, "arm_convolve_1x1_s8", (1, 6, 8, 12), (7, 1, 1, 12), stride=(2, 2))
    _conv(g, "arm_convolve_1_x_n_s8", (1, 1, 40, 8), (12, 1, 5, 8), pad=(0, 2))
    _conv(g, "arm_convolve_wrapper_s8", (1, 1, 64, 16), (24, 1, 1, 16), act=(-128, 100))
    _conv(g, "arm_convolve_wrapper_s8", (1, 1, 64, 16), (20, 1, 7, 16), stride=(1, 2), pad=(0, 3))
    # depthwise: generic (ch_mult 2, dilation), _opt (DSP scratch), 3x3, wrapper
    _conv(g, "arm_depthwise_conv_s8", (1, 5, 9, 3), (1, 3, 3, 6), dil=(1, 2), pad=(1, 2), dw=True)
    _conv(g, "arm_depthwise_conv_s8_opt", (1, 1, 64, 16), (1, 1, 5, 16), pad=(0, 2), dw=True)
    _conv(g, "arm_depthwise_conv_3x3_s8", (1, 6, 7, 8), (1, 3, 3, 8), pad=(1, 1), dw=True, act=(-128, 64))
    _conv(g, "arm_depthwise_conv_wrapper_s8", (1, 1, 32, 12), (1, 1, 7, 12), stride=(1, 2), pad=(0, 3), dw=True)
    # fully connected
    _fc(g, "arm_fully_connected_s8", 3, 50, 10)
    _fc(g, "arm_fully_connected_per_channel_s8", 2, 64, 6, act=(-128, 110))
    _fc(g, "arm_fully_connected_wrapper_s8", 1, 96, 6)
    # pooling
    _pool(g, "arm_max_pool_s8", (1, 1, 64, 16), (1, 3), (1, 2), (0, 1))
    _pool(g, "arm_avgpool_s8", (1, 4, 12, 10), (2, 3), (2, 3), (0, 0))
    _pool(g, "arm_avgpool_s8", (1, 1, 33, 7), (1, 4), (1, 2), (0, 1), act=(-100, 100))
    _misc(g)
    # LSTM (batch-major and time-major, with cell clipping)
    _lstm(g, 1, 32, 12, 16)
    _lstm(g, 2, 8, 5, 6, time_major=True, cell_clip=2000)
    return g.cases


def generate_random(seed: int = 0, n_per_kernel: int = 3) -> list[SelfTestCase]:
    """Randomized shapes for the kernels with Cortex-M DSP paths (conv generic / 1xN / 1x1, depthwise, FC, LSTM,
    max and average pool, batch matmul).

    Channel counts, depths and lengths are drawn so that odd values and values not divisible by 4 occur
    (the DSP paths work four values per word and leave a remainder), with random padding, strides and
    zero points. The expected outputs come from the host's plain kernels, so the same cases compare the
    DSP build and the ``cortex-m33+nodsp`` build of the firmware against one reference.
    """
    g = _Gen(seed)
    r = g.rng

    def odd_or_any(lo: int, hi: int) -> int:
        return int(r.integers(lo, hi + 1))

    for i in range(n_per_kernel):
        # 1-D generic conv (H = 1, time along W), C_in not a multiple of 4 in most draws
        c_in, c_out, k = odd_or_any(1, 13), odd_or_any(1, 11), odd_or_any(1, 7)
        w_in = odd_or_any(max(k, 5), 37)
        pad = int(r.integers(0, k))
        stride = int(r.integers(1, 3))
        _conv(g, "arm_convolve_s8", (1, 1, w_in, c_in), (c_out, 1, k, c_in), stride=(1, stride), pad=(0, pad),
              with_bias=bool(i % 2 == 0))
        # 2-D conv with dilation and, every other draw, groups
        groups = 1 + (i % 2)
        ck = odd_or_any(1, 5)
        kh, kw, dil_w = odd_or_any(1, 3), odd_or_any(1, 3), int(r.integers(1, 3))
        width = max(odd_or_any(3, 9), (kw - 1) * dil_w + 1)
        _conv(g, "arm_convolve_s8", (int(r.integers(1, 3)), odd_or_any(3, 7), width, ck * groups),
              (groups * odd_or_any(1, 4), kh, kw, ck), stride=(1, int(r.integers(1, 3))),
              pad=(int(r.integers(0, 2)), int(r.integers(0, 2))), dil=(1, dil_w),
              act=(-128 + int(r.integers(0, 40)), 127 - int(r.integers(0, 40))))
        # 1xN through the wrapper (its dispatch needs (stride * C_in) % 4 == 0)
        c4 = 4 * odd_or_any(1, 5)
        _conv(g, "arm_convolve_wrapper_s8", (1, 1, odd_or_any(8, 33), c4), (odd_or_any(1, 9), 1, odd_or_any(2, 6), c4),
              pad=(0, int(r.integers(0, 2))))
        # 1x1, stride 1 (fast) and strided
        c_in = odd_or_any(1, 23)
        _conv(g, "arm_convolve_1x1_s8_fast", (1, 1, odd_or_any(1, 19), c_in), (odd_or_any(1, 13), 1, 1, c_in))
        _conv(g, "arm_convolve_1x1_s8", (1, 3, odd_or_any(3, 15), c_in), (odd_or_any(1, 9), 1, 1, c_in),
              stride=(int(r.integers(1, 3)), 2))
        # depthwise, channel multiplier 1 (the _opt path), 1-D and 2-D windows, odd channel counts
        c, kh, kw = odd_or_any(1, 19), odd_or_any(1, 3), odd_or_any(1, 7)
        _conv(g, "arm_depthwise_conv_s8_opt", (1, max(odd_or_any(1, 5), kh), max(odd_or_any(2, 30), kw), c),
              (1, kh, kw, c), stride=(int(r.integers(1, 3)), int(r.integers(1, 3))),
              pad=(int(r.integers(0, kh)), int(r.integers(0, kw))), dw=True,
              act=(-128 + int(r.integers(0, 40)), 127 - int(r.integers(0, 40))))
        # fully connected, depth and output count odd or not divisible by 4
        _fc(g, "arm_fully_connected_s8", odd_or_any(1, 3), odd_or_any(1, 70), odd_or_any(1, 9))
        _fc(g, "arm_fully_connected_per_channel_s8", odd_or_any(1, 2), odd_or_any(1, 70), odd_or_any(1, 9),
            act=(-128 + int(r.integers(0, 30)), 127 - int(r.integers(0, 30))))
        # max pooling over 1-D and 2-D windows, channel counts with and without a remainder of 4
        c = odd_or_any(1, 19)
        kw = odd_or_any(1, 4)
        _pool(g, "arm_max_pool_s8", (1, 1, odd_or_any(kw + 1, 40), c), (1, kw), (1, int(r.integers(1, 3))),
              (0, int(r.integers(0, kw))), act=(-128 + int(r.integers(0, 50)), 127 - int(r.integers(0, 50))))
        _pool(g, "arm_max_pool_s8", (1, odd_or_any(2, 6), odd_or_any(2, 7), c), (2, 2), (2, 1), (1, 0))
        # average pooling, channel counts with and without a remainder of 4
        kw = odd_or_any(1, 5)
        _pool(g, "arm_avgpool_s8", (1, 1, odd_or_any(kw + 1, 40), odd_or_any(1, 19)), (1, kw),
              (1, int(r.integers(1, 3))), (0, int(r.integers(0, kw))),
              act=(-128 + int(r.integers(0, 50)), 127 - int(r.integers(0, 50))))
        # LSTM with odd input and hidden sizes
        _lstm(g, odd_or_any(1, 2), odd_or_any(1, 9), odd_or_any(1, 11), odd_or_any(1, 13),
              time_major=bool(i % 2), cell_clip=0 if i % 2 else 1500)
        # the same with wider quantization (gate shifts of both signs, the cell's tanh shift beyond the
        # int32 range) and with a bias beyond the fast requantization's bound
        _lstm(g, odd_or_any(1, 2), odd_or_any(2, 9), odd_or_any(1, 11), odd_or_any(1, 13),
              time_major=bool(i % 2), cell_clip=int(r.integers(0, 3)) * 700, varied="scales")
        _lstm(g, odd_or_any(1, 2), odd_or_any(2, 9), odd_or_any(1, 11), odd_or_any(1, 13), varied="bias")
        # elementwise add / sub / mul, lengths not divisible by 4, both requantization paths
        _elementwise(g, odd_or_any(1, 70), fast=True)
        _elementwise(g, odd_or_any(1, 70), fast=False)
    # a 1x1 conv on one input channel (the DSP path without dot products)
    _conv(g, "arm_convolve_1x1_s8_fast", (1, 3, 13, 1), (odd_or_any(1, 9), 1, 1, 1))
    # global average pools over more than 256 values (the DSP path's int16 lanes are flushed every 256)
    _pool(g, "arm_avgpool_s8", (1, 1, 300, 7), (1, 300), (1, 300), (0, 0))
    _pool(g, "arm_avgpool_s8", (1, 20, 19, 12), (20, 19), (20, 19), (0, 0))
    # batch matmul (drawn after every other case, so that those keep their draws): odd rows, columns and depths,
    # depths below 4 (no whole word), broadcast batch dims on either side, offsets over their whole range
    for i in range(n_per_kernel):
        m, n, k = odd_or_any(1, 11), odd_or_any(1, 11), odd_or_any(1, 23)
        hb = odd_or_any(1, 4)
        lb, rb = ((1, hb), (2, hb)) if i % 3 == 1 else ((2, 1), (2, hb)) if i % 3 == 2 else ((1, hb), (1, hb))
        _bmm(g, lb + (m, k), rb + (n, k), act=(-128 + int(r.integers(0, 40)), 127 - int(r.integers(0, 40))))
    # the searched TinyHAR's attention shapes: 9 sensors x 20 filters (Q.K^T, depth 20; A.V, depth 9)
    _bmm(g, (1, 4, 9, 20), (1, 4, 9, 20))
    _bmm(g, (1, 4, 9, 9), (1, 4, 20, 9))
    # the broadcasting MUL steps of TinierHAR and the searched TinyHAR (bench_cmsis_nn_models.py) with their
    # parameters, at the row lengths the runtime passes (per element before, one row or 64-value chunk now),
    # and an activation range beyond int8 (the DSP path's bytewise clamp does not apply; the plain loop runs)
    for n in (1, 32, 37):
        _mul_fixed(g, n, 128, 1, -1, 1912590268, -4)
    _mul_fixed(g, 64, 7, 0, 6, 1082196531, -6)
    _mul_fixed(g, 16, 7, 0, 6, 1082196531, -6)
    _mul_fixed(g, 40, 128, 0, 1, 2102845406, -7)
    _mul_fixed(g, 40, 0, 0, 0, 1082196504, -6)
    _mul_fixed(g, 13, -127, 128, 100, 1082196504, -1, act=(-300, 300))
    # the searched TinyHAR's one-output FC (4 rows of depth 40) and a last block of one row after four
    _fc(g, "arm_fully_connected_per_channel_s8", 4, 40, 1)
    _fc(g, "arm_fully_connected_per_channel_s8", 2, 37, 5)
    return g.cases


def write_sources(cases: list[SelfTestCase], out_dir: Path, prelude: str = "") -> Path:
    """Write ``selftest_cases.cpp`` for the ``selftest`` firmware app into ``out_dir``.

    ``prelude`` is C++ placed at namespace scope before the cases (declarations of functions that other
    generated sources in ``out_dir`` define, e.g. benchmarks/bench_cmsis_nn.py's CMSIS-NN twins).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    parts = ["// Generated by harcore.deploy.selftest: kernel self-test cases (inputs and parameters from the host).",
             "#include <stdint.h>", "", '#include "kernels/arm_nn_batch_matmul.hpp"', '#include "kernels/arm_nn_gru.hpp"',
             '#include "kernels/arm_nn_lstm.hpp"', '#include "kernels/arm_nnfunctions.hpp"',
             '#include "selftest.hpp"', "", "using namespace harcore::kernels;", "", prelude, "namespace {"]
    for i, c in enumerate(cases):
        parts.append(c.decls)
        parts.append(f"int32_t run_{i}(const cmsis_nn_context* ctx, int8_t* out) {{\n{c.body}}}\n")
    parts.append("}  // namespace\n")
    rows = ",\n".join(f'  {{"{c.name}", {c.expected.size}, &run_{i}}}' for i, c in enumerate(cases))
    out_size = max(c.expected.size for c in cases)
    parts.append(f"extern const harcore::fw::SelfTestCase harcore_selftest_cases[] = {{\n{rows}}};")
    parts.append(f"extern const int32_t harcore_selftest_count = {len(cases)};")
    parts.append(f"alignas(8) int8_t harcore_selftest_scratch[{SCRATCH_BYTES}];")
    parts.append(f"extern const int32_t harcore_selftest_scratch_size = {SCRATCH_BYTES};")
    parts.append(f"alignas(8) int8_t harcore_selftest_output[{out_size}];")
    parts.append(f"extern const int32_t harcore_selftest_output_size = {out_size};\n")
    path = out_dir / "selftest_cases.cpp"
    path.write_text("\n".join(parts))
    return path


_CASE = re.compile(r"^case (\d+) (\S+) status=(-?\d+) out=([0-9a-f]*)$")


def parse_output(text: str) -> dict[int, tuple[str, int, np.ndarray]]:
    """``{index: (name, status, int8 output)}`` from the self-test image's console."""
    res: dict[int, tuple[str, int, np.ndarray]] = {}
    for line in text.splitlines():
        m = _CASE.match(line.strip())
        if m:
            res[int(m.group(1))] = (m.group(2), int(m.group(3)),
                                    np.frombuffer(bytes.fromhex(m.group(4)), dtype=np.int8).copy())
    return res


_STACK = re.compile(r"^stack case (\d+) used=(\d+) reserved=(\d+)$")


def parse_stack(text: str) -> dict[int, tuple[int, int]]:
    """``{index: (stack high-water bytes while the case ran, stack reserve bytes)}`` from the self-test console.

    The firmware paints the free stack before each case and finds the deepest overwritten word after it
    (firmware/common/stack.hpp), so the figure is the program's deepest stack use during the case.
    """
    res: dict[int, tuple[int, int]] = {}
    for line in text.splitlines():
        m = _STACK.match(line.strip())
        if m:
            res[int(m.group(1))] = (int(m.group(2)), int(m.group(3)))
    return res
