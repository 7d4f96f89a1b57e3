"""The TensorFlow-free .tflite writer (harcore.quant.tflite_builder) against the TFLM Python interpreter.

Single-op models are written with TFLiteBuilder (random int8 weights, per-channel and per-tensor
quantization) and run in the `tflite_micro` runtime; the output is compared with

* harcore's CMSIS-NN-equivalent kernels (themselves bit-exact with TFLM, tests/test_kernels_oracle.py) for
  CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, MAX/AVERAGE_POOL_2D, ADD, SOFTMAX and the int8
  UNIDIRECTIONAL_SEQUENCE_LSTM: every value equal, so the file carries exactly the weights, quantization
  and options we meant;
* numpy for the data-movement ops (RESHAPE, TRANSPOSE, CONCATENATION, STRIDED_SLICE, REVERSE_V2, GATHER,
  PAD): every value equal;
* the float definition for the remaining arithmetic ops (MUL, SUB, LOGISTIC, TANH, SUM, MEAN, QUANTIZE,
  DEQUANTIZE): within one step of the output quantization (they have no harcore kernel; this checks that the
  options and quantization parameters are written and read as intended).

A written model is also read back by TensorFlow's own flatbuffer reader (tensor names, shapes, dtypes,
per-channel scales and axis, constant data), and bad input must raise ValueError naming the op/tensor/field.
"""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from harcore._core import kernels as K  # noqa: E402
from harcore.quant.arith import activation_range, quantize_multiplier  # noqa: E402
from harcore.quant.tflite_builder import TFLiteBuilder  # noqa: E402

pytestmark = [pytest.mark.oracle, pytest.mark.sanitize]

N = 6  # random inputs per model (plus all -128 and all 127)


def tflm_run(fb: bytes, *xs: np.ndarray) -> np.ndarray:
    """Run every sample of the stacked inputs through TFLM; returns the stacked outputs."""
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(fb)
    outs = []
    for sample in zip(*xs):
        it.reset()
        for k, x in enumerate(sample):
            it.set_input(x[None], k)
        it.invoke()
        outs.append(np.array(it.get_output(0))[0])
    return np.stack(outs)


def int8_batch(shape, seed):
    rng = np.random.default_rng(seed)
    xs = [rng.integers(-128, 128, size=shape, dtype=np.int8) for _ in range(N)]
    return np.stack(xs + [np.full(shape, -128, np.int8), np.full(shape, 127, np.int8)])


def assert_equal(ours, ref, what):
    ours, ref = np.asarray(ours), np.asarray(ref).reshape(np.shape(ours))
    diff = int(np.count_nonzero(ours.astype(np.int32) != ref.astype(np.int32)))
    assert diff == 0, f"{what}: {diff} of {ours.size} values differ"


def pc_quant(s_in, w_scales, s_out):
    pairs = [quantize_multiplier(float(np.float32(s_in)) * float(np.float32(sw)) / float(np.float32(s_out)))
             for sw in w_scales]
    return np.array([m for m, _ in pairs], np.int32), np.array([s for _, s in pairs], np.int32)


# ---- filter ops vs harcore kernels --------------------------------------------------------------------

# key: (depthwise, H, W, C_in, C_out, KH, KW, stride (h, w), padding, activation, dilation (h, w))
FILTER_CASES = {
    "conv_1d_k5_same_relu": (False, 1, 24, 9, 8, 1, 5, (1, 1), "SAME", "RELU", (1, 1)),
    "conv_time_on_h_k3_valid": (False, 20, 1, 4, 6, 3, 1, (1, 1), "VALID", "NONE", (1, 1)),
    "conv_1x1_s2": (False, 1, 17, 6, 5, 1, 1, (1, 2), "VALID", "RELU6", (1, 1)),
    "conv_dil2_same": (False, 1, 16, 3, 4, 1, 3, (1, 1), "SAME", "NONE", (1, 2)),
    "dw_k5_same": (True, 1, 24, 8, 8, 1, 5, (1, 1), "SAME", "RELU", (1, 1)),
    "dw_mult2_s2_on_h": (True, 15, 1, 3, 6, 3, 1, (2, 1), "SAME", "NONE", (1, 1)),
}


def out_size(n, k, s, d, padding):
    eff = (k - 1) * d + 1
    return (n + s - 1) // s if padding == "SAME" else (n - eff) // s + 1


def same_pad(n, o, k, s, d):
    return max((o - 1) * s + (k - 1) * d + 1 - n, 0) // 2


@pytest.mark.parametrize("key", list(FILTER_CASES))
def test_filter_ops_match_kernels(key):
    dw, h, w, ci, co, kh, kw, (sh, sw), padding, act, (dh, dwl) = FILTER_CASES[key]
    rng = np.random.default_rng(len(key))
    oh, ow = out_size(h, kh, sh, dh, padding), out_size(w, kw, sw, dwl, padding)
    s_in, zp_in, s_out, zp_out = 0.04, -7, 0.09, 11
    w_shape = (1, kh, kw, co) if dw else (co, kh, kw, ci)
    weights = rng.integers(-127, 128, w_shape, dtype=np.int8)
    w_scales = rng.uniform(0.002, 0.02, co).astype(np.float32)
    bias = rng.integers(-3000, 3000, co).astype(np.int32)
    b = TFLiteBuilder()
    x = b.tensor("x", (1, h, w, ci), np.int8, scale=s_in, zero_point=zp_in)
    wt = b.tensor("w", w_shape, np.int8, data=weights, scale=w_scales, zero_point=0, axis=3 if dw else 0)
    bt = b.tensor("b", (co,), np.int32, data=bias, scale=s_in * w_scales, zero_point=0)
    y = b.tensor("y", (1, oh, ow, co), np.int8, scale=s_out, zero_point=zp_out)
    opts = dict(padding=padding, stride_h=sh, stride_w=sw, fused_activation_function=act,
                dilation_h_factor=dh, dilation_w_factor=dwl)
    if dw:
        b.op("DEPTHWISE_CONV_2D", [x, wt, bt], [y], depth_multiplier=co // ci, **opts)
    else:
        b.op("CONV_2D", [x, wt, bt], [y], **opts)
    fb = b.build([x], [y])
    xs = int8_batch((1, h, w, ci), seed=3)[:, 0]
    ref = tflm_run(fb, xs)
    mult, shift = pc_quant(s_in, w_scales, s_out)
    pad = (same_pad(h, oh, kh, sh, dh), same_pad(w, ow, kw, sw, dwl)) if padding == "SAME" else (0, 0)
    fn = K.depthwise_conv_s8 if dw else K.convolve_s8
    ours = fn(xs, weights, bias, mult, shift, input_offset=-zp_in, output_offset=zp_out, stride=(sh, sw),
              padding=pad, dilation=(dh, dwl), activation=activation_range(act, s_out, zp_out), output_shape=(oh, ow))
    assert_equal(ours, ref, key)


@pytest.mark.parametrize("per_channel", [True, False])
def test_fully_connected_matches_kernel(per_channel):
    rng = np.random.default_rng(5)
    n_in, n_out, s_in, zp_in, s_out, zp_out = 20, 7, 0.03, 4, 0.2, -9
    weights = rng.integers(-127, 128, (n_out, n_in), dtype=np.int8)
    w_scales = rng.uniform(0.002, 0.02, n_out if per_channel else 1).astype(np.float32)
    bias = rng.integers(-2000, 2000, n_out).astype(np.int32)
    b = TFLiteBuilder()
    x = b.tensor("x", (1, n_in), np.int8, scale=s_in, zero_point=zp_in)
    wt = b.tensor("w", (n_out, n_in), np.int8, data=weights, scale=w_scales, zero_point=0)
    bt = b.tensor("b", (n_out,), np.int32, data=bias, scale=s_in * w_scales, zero_point=0)
    y = b.tensor("y", (1, n_out), np.int8, scale=s_out, zero_point=zp_out)
    b.op("FULLY_CONNECTED", [x, wt, bt], [y], fused_activation_function="RELU")
    xs = int8_batch((n_in,), seed=9)
    ref = tflm_run(b.build([x], [y]), xs)
    mult, shift = pc_quant(s_in, w_scales, s_out)
    ours = K.fully_connected_wrapper_s8(xs, weights, bias, mult, shift, per_channel=per_channel, input_offset=-zp_in,
                                        output_offset=zp_out, activation=activation_range("RELU", s_out, zp_out))
    assert_equal(ours, ref, f"FC per_channel={per_channel}")


@pytest.mark.parametrize("kind", ["MAX_POOL_2D", "AVERAGE_POOL_2D"])
def test_pooling_matches_kernel(kind):
    h, w, c, s, zp = 1, 21, 5, 0.05, -3
    b = TFLiteBuilder()
    x = b.tensor("x", (1, h, w, c), np.int8, scale=s, zero_point=zp)
    y = b.tensor("y", (1, 1, 11, c), np.int8, scale=s, zero_point=zp)
    b.op(kind, [x], [y], padding="SAME", stride_h=1, stride_w=2, filter_height=1, filter_width=3)
    xs = int8_batch((h, w, c), seed=1)
    ref = tflm_run(b.build([x], [y]), xs)
    fn = K.max_pool_s8 if kind == "MAX_POOL_2D" else K.avgpool_s8
    ours = fn(xs, filter_shape=(1, 3), stride=(1, 2), padding=(0, same_pad(w, 11, 3, 2, 1)), output_shape=(1, 11))
    assert_equal(ours, ref, kind)


def test_add_and_softmax_match_kernels():
    s1, zp1, s2, zp2, so, zpo = 0.05, 3, 0.11, -20, 0.1, 2
    b = TFLiteBuilder()
    a = b.tensor("a", (1, 12, 6), np.int8, scale=s1, zero_point=zp1)
    c = b.tensor("c", (1, 12, 6), np.int8, scale=s2, zero_point=zp2)
    y = b.tensor("y", (1, 12, 6), np.int8, scale=so, zero_point=zpo)
    p = b.tensor("p", (1, 12, 6), np.int8, scale=1 / 256, zero_point=-128)
    b.op("ADD", [a, c], [y], fused_activation_function="RELU")
    b.op("SOFTMAX", [y], [p], beta=1.0)
    fb = b.build([a, c], [y])
    xa, xc = int8_batch((12, 6), 1), int8_batch((12, 6), 2)[::-1].copy()
    twice_max = 2 * max(s1, s2)
    m1, sh1 = quantize_multiplier(float(np.float32(s1)) / float(np.float32(twice_max)))
    m2, sh2 = quantize_multiplier(float(np.float32(s2)) / float(np.float32(twice_max)))
    mo, sho = quantize_multiplier(float(np.float32(twice_max)) / ((1 << 20) * float(np.float32(so))))
    added = K.elementwise_add_s8(xa, xc, input_1_offset=-zp1, input_1_mult=m1, input_1_shift=sh1, input_2_offset=-zp2,
                                 input_2_mult=m2, input_2_shift=sh2, left_shift=20, out_offset=zpo, out_mult=mo,
                                 out_shift=sho, activation=activation_range("RELU", so, zpo))
    assert_equal(added, tflm_run(fb, xa, xc), "ADD")
    # softmax over the add's output: the second model output
    fb2 = b.build([a, c], [p])
    mult, shift = quantize_multiplier(min(float(np.float32(so)) * float(1 << 26), float(2**31 - 1)))
    diff_min = -math.floor(31.0 * (1 << 26) / (1 << shift))
    assert_equal(K.softmax_s8(added, mult=mult, shift=shift, diff_min=diff_min), tflm_run(fb2, xa, xc), "SOFTMAX")


# ---- the int8 LSTM vs harcore's kernel ----------------------------------------------------------------


def test_unidirectional_lstm_matches_kernel():
    """A hand-written 8x8->16 LSTM (no converter): TFLM reads our 24 input slots and state variables."""
    rng = np.random.default_rng(4)
    steps, n_in, hid = 10, 5, 7
    s_x, zp_x, s_h, zp_h, s_cell = 0.04, -5, 1 / 128, 3, 2.0**-11
    w_in = rng.integers(-127, 128, (4, hid, n_in), dtype=np.int8)
    w_h = rng.integers(-127, 128, (4, hid, hid), dtype=np.int8)
    sw_in = rng.uniform(0.005, 0.02, 4).astype(np.float32)
    sw_h = rng.uniform(0.005, 0.02, 4).astype(np.float32)
    bias = rng.integers(-2000, 2000, (4, hid)).astype(np.int32)
    b = TFLiteBuilder()
    x = b.tensor("x", (1, steps, n_in), np.int8, scale=s_x, zero_point=zp_x)
    slots: list = [x] + [None] * 23
    for g in range(4):  # gate order in the file: input, forget, cell, output
        slots[1 + g] = b.tensor(f"w_in{g}", (hid, n_in), np.int8, data=w_in[g], scale=sw_in[g], zero_point=0)
        slots[5 + g] = b.tensor(f"w_h{g}", (hid, hid), np.int8, data=w_h[g], scale=sw_h[g], zero_point=0)
        slots[12 + g] = b.tensor(f"b{g}", (hid,), np.int32, data=bias[g], scale=s_x * sw_in[g], zero_point=0)
    slots[18] = b.tensor("h_state", (1, hid), np.int8, scale=s_h, zero_point=zp_h, variable=True)
    slots[19] = b.tensor("c_state", (1, hid), np.int16, scale=s_cell, zero_point=0, variable=True)
    y = b.tensor("y", (1, steps, hid), np.int8, scale=s_h, zero_point=zp_h)
    # the intermediates TF's converter writes (TFLite reads gate scales there, 2^-12 when unquantized)
    inter = [b.tensor(f"inter{g}", (0,), np.float32) for g in range(4)]
    inter.append(b.tensor("eff_hidden", (0,), np.int8, scale=s_h, zero_point=zp_h))
    b.op("UNIDIRECTIONAL_SEQUENCE_LSTM", slots, [y], time_major=False, cell_clip=0.0, intermediates=inter)
    xs = int8_batch((steps, n_in), 6)
    fb = b.build([x], [y])
    ref = tflm_run(fb, xs)
    gate = float(np.float32(2.0**-12))
    q_in = [quantize_multiplier(float(np.float32(s_x)) * float(s) / gate) for s in sw_in]
    q_h = [quantize_multiplier(float(np.float32(s_h)) * float(s) / gate) for s in sw_h]
    i32 = lambda v: np.asarray(v, dtype=np.int32)  # noqa: E731
    nl = float(np.float32(2.0**-15))
    ours = K.lstm_unidirectional_s8(
        xs, w_in, w_h, i32(bias + (-zp_x) * w_in.astype(np.int64).sum(2)), i32((-zp_h) * w_h.astype(np.int64).sum(2)),
        i32([q[0] for q in q_in]), i32([q[1] for q in q_in]), i32([q[0] for q in q_h]), i32([q[1] for q in q_h]),
        input_offset=-zp_x, output_offset=zp_h, forget_to_cell=quantize_multiplier(nl),
        input_to_cell=quantize_multiplier(nl * nl / s_cell), output_quant=quantize_multiplier(nl * nl / float(np.float32(s_h))),
        cell_scale_power=-11, cell_clip=0,
    )
    assert_equal(ours, ref, "UNIDIRECTIONAL_SEQUENCE_LSTM")
    # TFLite's own interpreter accepts the file too; its int16 sigmoid/tanh differ from TFLM's
    # (tflite-oracle.md section 5), so it is only close, not an oracle
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        it = tf.lite.Interpreter(model_content=fb,
                                 experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    d = []
    for sample in xs:
        it.reset_all_variables()
        it.set_tensor(it.get_input_details()[0]["index"], sample[None])
        it.invoke()
        d.append(it.get_tensor(it.get_output_details()[0]["index"])[0].astype(int))
    d = np.abs(np.stack(d) - ref)
    # measured: 6 of 560 values differ, by 1..3 (a differing step propagates through the recurrence)
    assert np.mean(d == 0) > 0.95 and d.max() <= 4, f"TFLite vs TFLM LSTM: {np.bincount(d.ravel())}"


# ---- data movement vs numpy ---------------------------------------------------------------------------


def test_data_movement_ops_match_numpy():
    s, zp = 0.1, -2
    b = TFLiteBuilder()
    x = b.tensor("x", (1, 6, 4), np.int8, scale=s, zero_point=zp)
    q = dict(scale=s, zero_point=zp)
    t = b.tensor("t", (1, 4, 6), np.int8, **q)
    b.op("TRANSPOSE", [x, b.const_i32("perm", [0, 2, 1])], [t])
    r = b.tensor("r", (1, 24), np.int8, **q)
    b.op("RESHAPE", [t, b.const_i32("shape", [1, 24])], [r])
    rev = b.tensor("rev", (1, 6, 4), np.int8, **q)
    b.op("REVERSE_V2", [x, b.const_i32("axis", [1])], [rev])
    last = b.tensor("last", (1, 4), np.int8, **q)
    b.op("STRIDED_SLICE", [x, b.const_i32("b0", [0, 5, 0]), b.const_i32("e0", [1, 6, 4]), b.const_i32("s0", [1, 1, 1])],
         [last], shrink_axis_mask=2)
    g = b.tensor("g", (1, 3, 4), np.int8, **q)
    b.op("GATHER", [rev, b.const_i32("idx", [0, 2, 5])], [g], axis=1)
    p = b.tensor("p", (1, 9, 4), np.int8, **q)
    pads = b.tensor("pads", (3, 2), np.int32, data=np.array([[0, 0], [1, 2], [0, 0]], np.int32))
    b.op("PAD", [x, pads], [p])
    flat_rev = b.tensor("flat_rev", (1, 24), np.int8, **q)
    b.op("RESHAPE", [rev, b.const_i32("shape2", [1, 24])], [flat_rev])
    flat_g = b.tensor("flat_g", (1, 12), np.int8, **q)
    b.op("RESHAPE", [g, b.const_i32("shape3", [1, 12])], [flat_g])
    flat_p = b.tensor("flat_p", (1, 36), np.int8, **q)
    b.op("RESHAPE", [p, b.const_i32("shape4", [1, 36])], [flat_p])
    cat = b.tensor("cat", (1, 100), np.int8, **q)
    b.op("CONCATENATION", [r, last, flat_rev, flat_g, flat_p], [cat], axis=1)
    xs = int8_batch((6, 4), 3)
    got = tflm_run(b.build([x], [cat]), xs)
    ref = np.concatenate([
        xs.transpose(0, 2, 1).reshape(-1, 24), xs[:, 5], xs[:, ::-1].reshape(-1, 24), xs[:, ::-1][:, [0, 2, 5]].reshape(-1, 12),
        np.pad(xs, ((0, 0), (1, 2), (0, 0)), constant_values=zp).reshape(-1, 36)], axis=1)
    assert_equal(got, ref, "TRANSPOSE/RESHAPE/STRIDED_SLICE/REVERSE_V2/GATHER/PAD/CONCATENATION")


# ---- remaining arithmetic vs the float definition -----------------------------------------------------


def deq(q, s, zp):
    return (q.astype(np.float64) - zp) * s


def quant(v, s, zp, dtype=np.int8):
    info = np.iinfo(dtype)
    return np.clip(np.round(v / s) + zp, info.min, info.max)


@pytest.mark.parametrize("op", ["MUL", "SUB", "LOGISTIC", "TANH", "SUM", "MEAN", "QUANTIZE", "DEQUANTIZE"])
def test_arithmetic_ops_within_one_step_of_float(op):
    s1, zp1, s2, zp2 = 0.05, 3, 0.08, -6
    shape = (1, 8, 5)
    b = TFLiteBuilder()
    a = b.tensor("a", shape, np.int8, scale=s1, zero_point=zp1)
    ins, xs = [a], [int8_batch(shape[1:], 1)]
    fa = deq(xs[0], s1, zp1)
    if op in ("MUL", "SUB"):
        c = b.tensor("c", shape, np.int8, scale=s2, zero_point=zp2)
        ins.append(c)
        xs.append(int8_batch(shape[1:], 2))
        fc = deq(xs[1], s2, zp2)
        so, zpo = (0.2, -1) if op == "MUL" else (0.1, 4)
        y = b.tensor("y", shape, np.int8, scale=so, zero_point=zpo)
        b.op(op, [a, c], [y])
        ref = quant(fa * fc if op == "MUL" else fa - fc, so, zpo)
    elif op in ("LOGISTIC", "TANH"):
        so, zpo = (1 / 256, -128) if op == "LOGISTIC" else (1 / 128, 0)
        y = b.tensor("y", shape, np.int8, scale=so, zero_point=zpo)
        b.op(op, [a], [y])
        ref = quant(1 / (1 + np.exp(-fa)) if op == "LOGISTIC" else np.tanh(fa), so, zpo)
    elif op in ("SUM", "MEAN"):
        so, zpo = (0.3, 2) if op == "SUM" else (0.02, -1)
        y = b.tensor("y", (1, 5), np.int8, scale=so, zero_point=zpo)
        b.op(op, [a, b.const_i32("axis", [1])], [y], keep_dims=False)
        ref = quant(fa.sum(1) if op == "SUM" else fa.mean(1), so, zpo)
    elif op == "QUANTIZE":  # int8 -> int8 requantize, and float -> int8 through a second model below
        so, zpo = 0.11, 7
        y = b.tensor("y", shape, np.int8, scale=so, zero_point=zpo)
        b.op(op, [a], [y])
        ref = quant(fa, so, zpo)
    else:
        y = b.tensor("y", shape, np.float32)
        b.op(op, [a], [y])
        ref = fa
    got = tflm_run(b.build(ins, [y]), *xs).astype(np.float64)
    ref = ref.reshape(got.shape)
    tol = 1e-6 if op == "DEQUANTIZE" else 1.0
    assert np.abs(got - ref).max() <= tol, f"{op}: max |d| {np.abs(got - ref).max()}"
    if op == "QUANTIZE":
        b2 = TFLiteBuilder()
        f = b2.tensor("f", shape, np.float32)
        q = b2.tensor("q", shape, np.int8, scale=0.05, zero_point=3)
        b2.op("QUANTIZE", [f], [q])
        fx = np.random.default_rng(0).normal(0, 2, (4, *shape[1:])).astype(np.float32)
        assert np.abs(tflm_run(b2.build([f], [q]), fx) - quant(fx, 0.05, 3)).max() <= 1


# ---- read back by TensorFlow's reader -----------------------------------------------------------------


def test_written_model_reads_back_in_tensorflow():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    weights = rng.integers(-127, 128, (1, 1, 3, 6), dtype=np.int8)
    scales = rng.uniform(0.01, 0.02, 6).astype(np.float32)
    b = TFLiteBuilder()
    x = b.tensor("in", (1, 1, 10, 6), np.int8, scale=0.1, zero_point=-128)
    w = b.tensor("dw_w", (1, 1, 3, 6), np.int8, data=weights, scale=scales, zero_point=0, axis=3)
    bias = b.tensor("dw_b", (6,), np.int32, data=np.arange(6, dtype=np.int32) - 3, scale=scales * 0.1, zero_point=0)
    y = b.tensor("out", (1, 1, 8, 6), np.int8, scale=0.2, zero_point=1)
    b.op("DEPTHWISE_CONV_2D", [x, w, bias], [y], padding="VALID", stride_w=1, stride_h=1, depth_multiplier=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        it = tf.lite.Interpreter(model_content=b.build([x], [y]),
                                 experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF)
    it.allocate_tensors()
    d = {t["name"]: t for t in it.get_tensor_details()}
    assert set(d) == {"in", "dw_w", "dw_b", "out"}
    q = d["dw_w"]["quantization_parameters"]
    np.testing.assert_array_equal(q["scales"], scales)
    assert q["quantized_dimension"] == 3 and list(q["zero_points"]) == [0] * 6
    np.testing.assert_array_equal(it.get_tensor(d["dw_w"]["index"]), weights)
    np.testing.assert_array_equal(it.get_tensor(d["dw_b"]["index"]), np.arange(6) - 3)
    assert d["in"]["quantization"] == (np.float32(0.1), -128) and tuple(d["out"]["shape"]) == (1, 1, 8, 6)
    assert d["dw_b"]["dtype"] == np.int32 and d["out"]["dtype"] == np.int8
    assert [o["op_name"] for o in it._get_ops_details()] == ["DEPTHWISE_CONV_2D"]


# ---- bad input ----------------------------------------------------------------------------------------


def test_bad_input_is_a_value_error_naming_the_culprit():
    b = TFLiteBuilder()
    x = b.tensor("x", (1, 4), np.int8, scale=0.1, zero_point=0)
    y = b.tensor("y", (1, 4), np.int8, scale=0.1, zero_point=0)
    with pytest.raises(ValueError, match="tensor 'x': a tensor of that name already exists"):
        b.tensor("x", (1,), np.int8)
    with pytest.raises(ValueError, match="tensor 'w': data has shape \\(3,\\), the tensor is \\(4,\\)"):
        b.tensor("w", (4,), np.int8, data=np.zeros(3, np.int8))
    with pytest.raises(ValueError, match="tensor 'w': data has dtype int32, the tensor is int8"):
        b.tensor("w", (3,), np.int8, data=np.zeros(3, np.int32))
    with pytest.raises(ValueError, match="tensor 'w': 3 per-channel scales for dimension 0 of size 4"):
        b.tensor("w", (4, 2), np.int8, scale=[0.1, 0.2, 0.3], zero_point=0)
    with pytest.raises(ValueError, match="tensor 'w': scale must be positive"):
        b.tensor("w", (4,), np.int8, scale=0.0, zero_point=0)
    with pytest.raises(ValueError, match="tensor 'w': zero_point \\[200\\] out of range \\[-128, 127\\]"):
        b.tensor("w", (4,), np.int8, scale=0.1, zero_point=200)
    with pytest.raises(ValueError, match="tensor 'w': dtype float64 is not supported"):
        b.tensor("w", (4,), np.float64)
    with pytest.raises(ValueError, match="unknown or unsupported builtin 'CONV_3D'"):
        b.op("CONV_3D", [x], [y])
    with pytest.raises(ValueError, match="tflite op SOFTMAX: missing option\\(s\\) beta"):
        b.op("SOFTMAX", [x], [y])
    with pytest.raises(ValueError, match="tflite op SOFTMAX: unknown option 'axis' for SoftmaxOptions"):
        b.op("SOFTMAX", [x], [y], beta=1.0, axis=1)
    with pytest.raises(ValueError, match="op CONV_2D option padding: unknown Padding 'FULL'"):
        b.op("CONV_2D", [x, x, x], [y], padding="FULL", stride_w=1, stride_h=1)
    with pytest.raises(ValueError, match="tflite op ADD: takes 2..2 inputs, got 1"):
        b.op("ADD", [x], [y])
    with pytest.raises(ValueError, match="tflite op TANH input 0: no tensor with index 7"):
        b.op("TANH", [7], [y])
    with pytest.raises(ValueError, match="tflite model: has no operators"):
        b.build([x], [y])
    z = b.tensor("z", (1, 4), np.int8, scale=0.1, zero_point=0)
    b.op("TANH", [z], [y])
    with pytest.raises(ValueError, match="op 0 \\(TANH\\): input 'z' is neither a model input"):
        b.build([x], [y])
