"""Bit-exactness of harcore's CMSIS-NN-equivalent s8 kernels against the TFLM reference interpreter.

For every kernel a tiny single-op Keras model is converted with full-integer int8 quantization
(TensorFlow 2.21), its quantization parameters and weights are read from the TFLite interpreter's tensor
details, the kernel arguments are derived as TFLM derives them (QuantizeMultiplier in double precision,
offsets, activation range), and random int8 inputs plus the edge inputs all -128 / all 127 are run through
both the `tflite_micro` runtime (reference kernels, the oracle CMSIS-NN follows) and our kernel. Not one
output value may differ. Converted models are cached per pytest session.

Also: the support arithmetic against a numpy int64 / Python-int reference on hypothesis-drawn values, and
argument errors (bad shapes, dtypes, missing scratch buffers) surfacing as ValueError.
"""

from __future__ import annotations

import math
import os
import warnings
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from harcore._core import kernels as K  # noqa: E402
from harcore.quant.arith import activation_range, quantize_multiplier  # noqa: E402

pytestmark = [pytest.mark.oracle, pytest.mark.sanitize]

N_RANDOM = 6  # random inputs per model, plus all -128 and all 127
I32_MIN, I32_MAX = -(2**31), 2**31 - 1


# ---- conversion and oracle ----------------------------------------------------------------------------


class OpModel:
    """A converted single-op model: the op's tensors (from the TFLite interpreter) and the TFLM oracle."""

    def __init__(self, flatbuffer: bytes, op_name: str):
        import tensorflow as tf
        from tflite_micro.python.tflite_micro import runtime

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.reader = tf.lite.Interpreter(
                model_content=flatbuffer,
                experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_REF,
            )
        self.reader.allocate_tensors()
        self.details = {d["index"]: d for d in self.reader.get_tensor_details()}
        ops = self.reader._get_ops_details()
        names = [o["op_name"] for o in ops]
        main = [o for o in ops if o["op_name"] == op_name]
        # A single compute op; RESHAPE / EXPAND_DIMS around it are views of NHWC data. The converter turns
        # dilated convs into SPACE_TO_BATCH_ND -> conv -> BATCH_TO_SPACE_ND (data movement padding with
        # the zero point), which is exactly a dilated conv, so those models are compared end to end.
        allowed = {op_name, "RESHAPE", "EXPAND_DIMS", "SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND"}
        assert len(main) == 1 and set(names) <= allowed, names
        self.op = main[0]
        self.space_to_batch = "SPACE_TO_BATCH_ND" in names
        self.model_inputs = [d["index"] for d in self.reader.get_input_details()]
        self.model_output = self.reader.get_output_details()[0]
        self.micro = runtime.Interpreter.from_bytes(flatbuffer)

    def tensor(self, i):
        return self.details[int(i)]

    def input(self, k=0):
        return self.tensor(self.op["inputs"][k])

    def output(self):
        return self.tensor(self.op["outputs"][0])

    def const(self, k):
        return self.reader.get_tensor(int(self.op["inputs"][k]))

    def bias(self):
        """The op's int32 bias, or None when the op has none."""
        ins = self.op["inputs"]
        return self.const(2).astype(np.int32) if len(ins) > 2 and ins[2] >= 0 else None

    def model_input_shapes(self):
        return [tuple(self.tensor(i)["shape"]) for i in self.model_inputs]

    def nhwc_in(self):
        """The model input as the NHWC tensor the kernel sees (1-D data: H = 1, T on W)."""
        return nhwc(self.model_input_shapes()[0])

    def nhwc_out(self):
        return nhwc(tuple(self.model_output["shape"]))

    def run(self, *xs):
        if self.space_to_batch:
            # tflite-micro 0.dev20261023182759 gets the dilated SPACE_TO_BATCH_ND -> conv ->
            # BATCH_TO_SPACE_ND graph wrong (every other output column differs from both TFLite's reference
            # interpreter and a direct integer computation), so these graphs use TFLite's BUILTIN_REF
            # resolver, which is bit-exact with TFLM for conv and depthwise (tflite-oracle.md §4, §6).
            for k, x in enumerate(xs):
                self.reader.set_tensor(self.model_inputs[k], x)
            self.reader.invoke()
            return np.array(self.reader.get_tensor(self.model_output["index"]))
        for k, x in enumerate(xs):
            self.micro.set_input(x, k)
        self.micro.invoke()
        return np.array(self.micro.get_output(0))


def nhwc(shape):
    return tuple(int(v) for v in shape) if len(shape) == 4 else (int(shape[0]), 1, int(shape[1]), int(shape[2]))


def scale_zp(detail):
    q = detail["quantization_parameters"]
    return np.asarray(q["scales"], dtype=np.float32), np.asarray(q["zero_points"], dtype=np.int64)


def per_channel_quant(s_in, w_scales, s_out):
    """TFLM's PopulateConvolutionQuantizationParams: double(s_in) * double(s_w) / double(s_out)."""
    pairs = [quantize_multiplier(float(s_in) * float(sw) / float(s_out)) for sw in w_scales]
    return (np.array([m for m, _ in pairs], dtype=np.int32), np.array([s for _, s in pairs], dtype=np.int32))


def same_pad(in_size, out_size, k, stride, dilation):
    eff = (k - 1) * dilation + 1
    return max((out_size - 1) * stride + eff - in_size, 0) // 2


@pytest.fixture(scope="session")
def convert():
    """convert(key, build, input_shapes, op_name, **converter_attrs) -> OpModel, cached per session."""
    import tensorflow as tf

    cache: dict[str, OpModel] = {}

    def _convert(key, build, input_shapes, op_name, ranges=None, **attrs):
        if key in cache:
            return cache[key]
        tf.keras.utils.set_random_seed(zlib.crc32(key.encode()))
        inputs = [tf.keras.Input(shape) for shape in input_shapes]
        outputs = build(*inputs)
        model = tf.keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs)
        # non-trivial biases so that the bias path is exercised
        for layer in model.layers:
            if getattr(layer, "use_bias", False) and layer.bias is not None:
                layer.bias.assign(np.random.default_rng(1).normal(0, 0.3, layer.bias.shape).astype(np.float32))
        rng = np.random.default_rng(7)
        spans = ranges or [1.0] * len(input_shapes)

        def representative():
            for _ in range(40):
                yield [(rng.normal(size=(1, *s)) * sp).astype(np.float32) for s, sp in zip(input_shapes, spans)]

        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
        for name, value in attrs.items():
            setattr(conv, name, value)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            flatbuffer = conv.convert()
        cache[key] = OpModel(flatbuffer, op_name)
        return cache[key]

    return _convert


def int8_batch(shape, seed):
    """N_RANDOM random int8 samples plus all -128 and all 127, stacked on a new leading axis."""
    rng = np.random.default_rng(seed)
    xs = [rng.integers(-128, 128, size=shape, dtype=np.int8) for _ in range(N_RANDOM)]
    xs += [np.full(shape, -128, np.int8), np.full(shape, 127, np.int8)]
    return np.stack(xs)


def oracle_batch(m: OpModel, xs, *more):
    return np.stack([m.run(*args) for args in zip(xs, *more)])


COMPARED = {"values": 0, "differences": 0}


def assert_bit_exact(ours, ref, what):
    ours = np.asarray(ours)
    ref = np.asarray(ref).reshape(ours.shape)
    diff = int(np.count_nonzero(ours.astype(np.int16) != ref.astype(np.int16)))
    COMPARED["values"] += ours.size
    COMPARED["differences"] += diff
    assert ours.dtype == np.int8
    assert diff == 0, f"{what}: {diff} of {ours.size} values differ (max |d| = {np.abs(ours.astype(int) - ref).max()})"


# ---- convolution --------------------------------------------------------------------------------------

# key: (rank, filters, kernel, strides, dilation, padding, groups, activation, input shape, expected path)
CONV_CASES = {
    "c1d_k5_same": (1, 8, 5, 1, 1, "same", 1, None, (32, 9), "generic"),
    "c1d_k4_s2_same_relu6_1xn": (1, 8, 4, 2, 1, "same", 1, "relu6", (32, 4), "1xn"),
    "c1d_k4_s1_same_1xn": (1, 6, 4, 1, 1, "same", 1, None, (20, 8), "1xn"),
    "c1d_k3_dil2_valid": (2, 6, (1, 3), 1, (1, 2), "valid", 1, None, (1, 24, 5), "generic"),
    "c2d_3x3_dil2_same": (2, 5, (3, 3), 1, 2, "same", 1, None, (9, 8, 3), "generic"),
    "c1d_k3_groups2_relu": (1, 8, 3, 1, 1, "same", 2, "relu", (16, 8), "generic"),
    "c1d_1x1": (1, 8, 1, 1, 1, "valid", 1, None, (16, 6), "1x1_fast"),
    "c1d_1x1_s2": (1, 8, 1, 2, 1, "valid", 1, None, (17, 6), "1x1"),
    "c2d_3x3_s21_same": (2, 6, (3, 3), (2, 1), 1, "same", 1, None, (9, 7, 3), "generic"),
    "c2d_2x3_dil21_valid": (2, 4, (2, 3), 1, (2, 1), "valid", 1, None, (8, 8, 2), "generic"),
}


def conv_model(convert, key):
    rank, filters, kernel, strides, dilation, padding, groups, act, shape, _ = CONV_CASES[key]
    import tensorflow as tf

    # A dilated conv's bias would become a separate ADD after BATCH_TO_SPACE_ND: leave it out there.
    layer = (tf.keras.layers.Conv1D if rank == 1 else tf.keras.layers.Conv2D)(
        filters, kernel, strides=strides, dilation_rate=dilation, padding=padding, groups=groups, activation=act,
        use_bias=np.all(np.asarray(dilation) == 1),
    )
    return convert("conv:" + key, lambda x: layer(x), [shape], "CONV_2D")


def filter_op_args(m: OpModel, rank, strides, dilation, padding, act):
    """Kernel arguments of a conv / depthwise op as TFLM's prepare derives them: per-channel
    (multiplier, shift), offsets, geometry and the activation range."""
    (s_in,), (zp_in,) = scale_zp(m.input(0))
    w_scales, _ = scale_zp(m.input(1))
    (s_out,), (zp_out,) = scale_zp(m.output())
    mult, shift = per_channel_quant(s_in, w_scales, s_out)
    weights = m.const(1)
    bias = m.bias()
    _, h, w, _ = m.nhwc_in()
    _, oh, ow, _ = m.nhwc_out()
    _, kh, kw, _ = weights.shape
    sh, sw = (1, strides) if rank == 1 else ((strides, strides) if np.isscalar(strides) else strides)
    dh, dw = (1, dilation) if rank == 1 else ((dilation, dilation) if np.isscalar(dilation) else dilation)
    pad = (same_pad(h, oh, kh, sh, dh), same_pad(w, ow, kw, sw, dw)) if padding == "same" else (0, 0)
    kwargs = dict(
        input_offset=-int(zp_in),
        output_offset=int(zp_out),
        stride=(sh, sw),
        padding=pad,
        dilation=(dh, dw),
        activation=activation_range({None: "NONE", "relu": "RELU", "relu6": "RELU6"}[act], s_out, zp_out),
        output_shape=(int(oh), int(ow)),
    )
    return weights, bias, mult, shift, kwargs


def conv_args(m: OpModel, key):
    rank, _, _, strides, dilation, padding, _, act, _, _ = CONV_CASES[key]
    return (*filter_op_args(m, rank, strides, dilation, padding, act), m.nhwc_in()[1:])


CONV_PATH_KERNELS = {
    "generic": K.convolve_s8,
    "1xn": K.convolve_1_x_n_s8,
    "1x1_fast": K.convolve_1x1_s8_fast,
    "1x1": K.convolve_1x1_s8,
}


@pytest.mark.parametrize("key", list(CONV_CASES))
def test_convolve_matches_tflm(convert, key):
    m = conv_model(convert, key)
    weights, bias, mult, shift, kwargs, op_in_shape = conv_args(m, key)
    model_in_shape = m.model_input_shapes()[0][1:]
    xs = int8_batch(model_in_shape, seed=len(key))
    ref = oracle_batch(m, xs[:, None])
    x4 = xs.reshape((xs.shape[0],) + op_in_shape)  # Conv1D: (T, C) -> (1, T, C) NHWC view
    path = CONV_CASES[key][-1]
    kernels = {"wrapper": K.convolve_wrapper_s8, path: CONV_PATH_KERNELS[path], "generic": K.convolve_s8}
    for name, fn in kernels.items():
        out = fn(x4, weights, bias, mult, shift, **kwargs)
        assert_bit_exact(out, ref, f"{key} via {name}")
    # the wrapper dispatches as predicted: only the generic / 1xN paths need a scratch buffer
    if path in ("generic", "1xn"):
        with pytest.raises(ValueError, match="ARG_ERROR.*'ctx'"):
            K.convolve_wrapper_s8(x4, weights, bias, mult, shift, buffer_size=0, **kwargs)
    else:
        out = K.convolve_wrapper_s8(x4, weights, bias, mult, shift, buffer_size=0, **kwargs)
        assert_bit_exact(out, ref, f"{key} via wrapper without buffer")


# ---- depthwise ----------------------------------------------------------------------------------------

# key: (rank, kernel, strides, dilation, padding, depth_multiplier, activation, input shape, expected path)
DW_CASES = {
    "dw1d_k5_same": (1, 5, 1, 1, "same", 1, None, (32, 8), "opt"),
    "dw1d_k3_dm2_s2_same": (1, 3, 2, 1, "same", 2, None, (32, 4), "generic"),
    "dw1d_k3_dil2_same": (1, 3, 1, 2, "same", 1, None, (20, 6), "generic"),
    "dw2d_3x3_same": (2, (3, 3), 1, 1, "same", 1, None, (8, 8, 4), "3x3"),
    "dw2d_3x3_s2_valid_relu6": (2, (3, 3), 2, 1, "valid", 1, "relu6", (9, 9, 5), "3x3"),
    "dw2d_3x3_dm2_dil2_valid": (2, (3, 3), 1, 2, "valid", 2, None, (9, 8, 3), "generic"),
    "dw2d_2x4_same": (2, (2, 4), (1, 2), 1, "same", 1, None, (6, 9, 3), "opt"),
}


def dw_model(convert, key):
    rank, kernel, strides, dilation, padding, dm, act, shape, _ = DW_CASES[key]
    import tensorflow as tf

    layer = (tf.keras.layers.DepthwiseConv1D if rank == 1 else tf.keras.layers.DepthwiseConv2D)(
        kernel, strides=strides, dilation_rate=dilation, padding=padding, depth_multiplier=dm, activation=act,
        use_bias=np.all(np.asarray(dilation) == 1),
    )
    return convert("dw:" + key, lambda x: layer(x), [shape], "DEPTHWISE_CONV_2D")


DW_PATH_KERNELS = {"opt": K.depthwise_conv_s8_opt, "3x3": K.depthwise_conv_3x3_s8, "generic": K.depthwise_conv_s8}


@pytest.mark.parametrize("key", list(DW_CASES))
def test_depthwise_matches_tflm(convert, key):
    rank, _, strides, dilation, padding, _, act, _, path = DW_CASES[key]
    m = dw_model(convert, key)
    weights, bias, mult, shift, kwargs = filter_op_args(m, rank, strides, dilation, padding, act)
    xs = int8_batch(m.model_input_shapes()[0][1:], seed=len(key))
    ref = oracle_batch(m, xs[:, None])
    x4 = xs.reshape((xs.shape[0],) + m.nhwc_in()[1:])
    kernels = {"wrapper": K.depthwise_conv_wrapper_s8, path: DW_PATH_KERNELS[path], "generic": K.depthwise_conv_s8}
    for name, fn in kernels.items():
        if name == "wrapper" and path != "generic":
            # the wrapper's fast paths are batch-1 only; run it sample by sample
            out = np.concatenate([fn(x4[i : i + 1], weights, bias, mult, shift, **kwargs) for i in range(len(x4))])
        else:
            out = fn(x4, weights, bias, mult, shift, **kwargs)
        assert_bit_exact(out, ref, f"{key} via {name}")
    # the wrapper dispatches as predicted: only the _opt path takes a (DSP) buffer, and checks its size
    one = (x4[:1], weights, bias, mult, shift)
    if path == "opt":
        need = 2 * weights.shape[1] * weights.shape[2] * x4.shape[3]
        with pytest.raises(ValueError, match="ARG_ERROR.*'ctx'"):
            K.depthwise_conv_wrapper_s8(*one, buffer_size=need - 1, **kwargs)
    else:
        assert_bit_exact(K.depthwise_conv_wrapper_s8(*one, buffer_size=1, **kwargs), ref[:1], f"{key} tiny buffer")
    if path == "opt":
        # the _opt kernel without its buffer: accepted on this pure-C host build (getter says 0), same result
        out = K.depthwise_conv_s8_opt(x4, weights, bias, mult, shift, buffer_size=0, **kwargs)
        assert_bit_exact(out, ref, f"{key} via opt without buffer")


# ---- fully connected ----------------------------------------------------------------------------------

FC_CASES = {
    "dense_pc": (6, None, 20, False),
    "dense_pc_relu": (5, "relu", 12, False),
    "dense_pt": (7, None, 16, True),
    "dense_pt_relu6": (4, "relu6", 9, True),
}


@pytest.mark.parametrize("key", list(FC_CASES))
def test_fully_connected_matches_tflm(convert, key):
    units, act, depth, per_tensor = FC_CASES[key]
    import tensorflow as tf

    attrs = {"_experimental_disable_per_channel_quantization_for_dense_layers": True} if per_tensor else {}
    m = convert(
        "fc:" + key, lambda x: tf.keras.layers.Dense(units, activation=act)(x), [(depth,)], "FULLY_CONNECTED", **attrs
    )
    (s_in,), (zp_in,) = scale_zp(m.input(0))
    w_scales, w_zps = scale_zp(m.input(1))
    (s_out,), (zp_out,) = scale_zp(m.output())
    assert len(w_scales) == (1 if per_tensor else units)
    assert not np.any(w_zps)
    weights = m.const(1)
    bias = m.bias()
    mult, shift = per_channel_quant(s_in, w_scales, s_out)
    common = dict(
        input_offset=-int(zp_in),
        output_offset=int(zp_out),
        activation=activation_range({None: "NONE", "relu": "RELU", "relu6": "RELU6"}[act], s_out, zp_out),
    )
    xs = int8_batch((depth,), seed=units)
    ref = oracle_batch(m, xs[:, None])
    if per_tensor:
        out = K.fully_connected_s8(xs, weights, bias, int(mult[0]), int(shift[0]), **common)
        assert_bit_exact(out, ref, f"{key} via fully_connected_s8")
        out = K.fully_connected_wrapper_s8(xs, weights, bias, mult, shift, per_channel=False, **common)
        assert_bit_exact(out, ref, f"{key} via wrapper")
    else:
        out = K.fully_connected_per_channel_s8(xs, weights, bias, mult, shift, **common)
        assert_bit_exact(out, ref, f"{key} via per_channel")
        out = K.fully_connected_wrapper_s8(xs, weights, bias, mult, shift, per_channel=True, **common)
        assert_bit_exact(out, ref, f"{key} via wrapper")


# ---- pooling ------------------------------------------------------------------------------------------

# key: (kind, rank, pool, strides, padding, input shape)
POOL_CASES = {
    "max1d_2": ("max", 1, 2, None, "valid", (32, 8)),
    "max1d_3_s2_same": ("max", 1, 3, 2, "same", (21, 5)),
    "max2d_2x2": ("max", 2, (2, 2), None, "valid", (8, 6, 4)),
    "max2d_3x3_s2_same": ("max", 2, (3, 3), 2, "same", (7, 8, 3)),
    "avg1d_2": ("avg", 1, 2, None, "valid", (32, 8)),
    "avg1d_4_s2_same": ("avg", 1, 4, 2, "same", (19, 6)),
    "avg2d_3x3_s2_same": ("avg", 2, (3, 3), 2, "same", (7, 9, 4)),
    "avg2d_2x3_valid": ("avg", 2, (2, 3), (2, 1), "valid", (8, 7, 3)),
}


@pytest.mark.parametrize("key", list(POOL_CASES))
def test_pooling_matches_tflm(convert, key):
    kind, rank, pool, strides, padding, shape = POOL_CASES[key]
    import tensorflow as tf

    L = tf.keras.layers
    cls = {("max", 1): L.MaxPool1D, ("max", 2): L.MaxPool2D, ("avg", 1): L.AveragePooling1D, ("avg", 2): L.AveragePooling2D}
    op = "MAX_POOL_2D" if kind == "max" else "AVERAGE_POOL_2D"
    m = convert("pool:" + key, lambda x: cls[(kind, rank)](pool, strides=strides, padding=padding)(x), [shape], op)
    x_d, o_d = m.input(0), m.output()
    (s_out,), (zp_out,) = scale_zp(o_d)
    assert scale_zp(x_d)[0][0] == s_out and scale_zp(x_d)[1][0] == zp_out  # TFLite: same quantization
    _, h, w, _ = m.nhwc_in()
    _, oh, ow, _ = m.nhwc_out()
    kh, kw = (1, pool) if rank == 1 else pool
    st_ = strides if strides is not None else pool
    sh, sw = (1, st_) if rank == 1 else ((st_, st_) if np.isscalar(st_) else st_)
    pad = (same_pad(h, oh, kh, sh, 1), same_pad(w, ow, kw, sw, 1)) if padding == "same" else (0, 0)
    kwargs = dict(
        filter_shape=(kh, kw), stride=(sh, sw), padding=pad, activation=activation_range("NONE", s_out, zp_out),
        output_shape=(int(oh), int(ow)),
    )
    xs = int8_batch(m.model_input_shapes()[0][1:], seed=len(key))
    ref = oracle_batch(m, xs[:, None])
    x4 = xs.reshape((xs.shape[0],) + m.nhwc_in()[1:])
    if kind == "max":
        assert_bit_exact(K.max_pool_s8(x4, **kwargs), ref, key)
    else:
        assert_bit_exact(K.avgpool_s8(x4, **kwargs), ref, key + " (DSP scratch)")
        assert_bit_exact(K.avgpool_s8(x4, buffer_size=0, **kwargs), ref, key + " (no scratch, pure C)")


# ---- add ----------------------------------------------------------------------------------------------

ADD_CASES = {"add": (None, (24, 6), (1.0, 3.0)), "add_relu": ("relu", (5, 4, 3), (2.0, 0.5))}


@pytest.mark.parametrize("key", list(ADD_CASES))
def test_add_matches_tflm(convert, key):
    act, shape, ranges = ADD_CASES[key]
    import tensorflow as tf

    def build(a, b):
        y = tf.keras.layers.Add()([a, b])
        return tf.keras.layers.ReLU()(y) if act else y

    m = convert("add:" + key, build, [shape, shape], "ADD", ranges=list(ranges))
    pos = {int(t): k for k, t in enumerate(m.model_inputs)}
    d1, d2, o_d = m.input(0), m.input(1), m.output()
    (s1,), (zp1,) = scale_zp(d1)
    (s2,), (zp2,) = scale_zp(d2)
    (so,), (zpo,) = scale_zp(o_d)
    left_shift = 20
    twice_max = 2 * max(float(s1), float(s2))
    m1, sh1 = quantize_multiplier(float(s1) / twice_max)
    m2, sh2 = quantize_multiplier(float(s2) / twice_max)
    mo, sho = quantize_multiplier(twice_max / ((1 << left_shift) * float(so)))
    xs = [int8_batch(shape, seed=11), int8_batch(shape, seed=12)[::-1].copy()]
    ref = oracle_batch(m, xs[0][:, None], xs[1][:, None])
    a = xs[pos[int(m.op["inputs"][0])]]
    b = xs[pos[int(m.op["inputs"][1])]]
    out = K.elementwise_add_s8(
        a, b, input_1_offset=-int(zp1), input_1_mult=m1, input_1_shift=sh1, input_2_offset=-int(zp2),
        input_2_mult=m2, input_2_shift=sh2, left_shift=left_shift, out_offset=int(zpo), out_mult=mo,
        out_shift=sho, activation=activation_range("RELU" if act else "NONE", so, zpo),
    )
    assert_bit_exact(out, ref, key)


# ---- softmax ------------------------------------------------------------------------------------------

SOFTMAX_CASES = {"softmax_10": ((10,), 1.0), "softmax_rows": ((3, 7), 4.0), "softmax_wide": ((40,), 0.3)}


@pytest.mark.parametrize("key", list(SOFTMAX_CASES))
def test_softmax_matches_tflm(convert, key):
    shape, span = SOFTMAX_CASES[key]
    import tensorflow as tf

    m = convert("softmax:" + key, lambda x: tf.keras.layers.Softmax()(x), [shape], "SOFTMAX", ranges=[span])
    (s_in,), _ = scale_zp(m.input(0))
    (s_out,), (zp_out,) = scale_zp(m.output())
    assert float(s_out) == 1 / 256 and zp_out == -128
    beta = 1.0
    real = min(beta * float(s_in) * float(1 << (31 - 5)), float((1 << 31) - 1))
    mult, shift = quantize_multiplier(real)
    assert shift >= 0
    diff_min = -math.floor(1.0 * ((1 << 5) - 1) * (1 << (31 - 5)) / (1 << shift))
    xs = int8_batch(shape, seed=len(key))
    ref = oracle_batch(m, xs[:, None])
    assert_bit_exact(K.softmax_s8(xs, mult=mult, shift=shift, diff_min=diff_min), ref, key)


# ---- standalone activations ---------------------------------------------------------------------------


@pytest.mark.parametrize("act", ["relu", "relu6"])
def test_standalone_activation_matches_tflm(convert, act):
    import tensorflow as tf

    layer = {"relu": lambda: tf.keras.layers.ReLU(), "relu6": lambda: tf.keras.layers.ReLU(6.0)}[act]
    op = {"relu": "RELU", "relu6": "RELU6"}[act]
    m = convert("act:" + act, lambda x: layer()(x), [(30, 4)], op, ranges=[5.0])
    (s_in,), (zp_in,) = scale_zp(m.input(0))
    (s_out,), (zp_out,) = scale_zp(m.output())
    if act == "relu":
        # TFLM's RELU requantizes: multiplier from s_in / s_out in float32, range from the output quantization
        mult, shift = quantize_multiplier(float(np.float32(s_in) / np.float32(s_out)))
        act_min, act_max = activation_range(op, s_out, zp_out)
    else:
        # TFLM's int8 RELU6 clamps in the *input* quantization to [zp_in, q_in(6)] and copies the integer
        # without requantizing (even when the converter gave the output other parameters): the identity
        # requantization (2^30, shift 1) and the range from the input quantization reproduce it.
        mult, shift = 1 << 30, 1
        act_min, act_max = activation_range(op, s_in, zp_in)
        zp_out = zp_in
    xs = int8_batch((30, 4), seed=5)
    ref = oracle_batch(m, xs[:, None])
    out = K.clamp_s8(
        xs, input_offset=-int(zp_in), output_offset=int(zp_out), mult=mult, shift=shift, activation=(act_min, act_max)
    )
    assert_bit_exact(out, ref, act)


# ---- support arithmetic against an int64 / Python-int reference ----------------------------------------

i32s = st.integers(I32_MIN, I32_MAX)
edge_i32 = st.sampled_from([I32_MIN, I32_MIN + 1, -1, 0, 1, I32_MAX - 1, I32_MAX, 1 << 30, -(1 << 30)])
any_i32 = st.one_of(i32s, edge_i32)


def ref_dhm(a, b, saturate):
    if saturate and a == b == I32_MIN:
        return I32_MAX
    return wrap32((a * b + (1 << 30)) >> 31)


def wrap32(v):
    return ((v + 2**31) % 2**32) - 2**31


def ref_rdbpot(x, e):
    mask = (1 << e) - 1
    rem = x & mask
    thr = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if rem > thr else 0)


def ref_requantize(v, m, s):
    left, right = max(s, 0), max(-s, 0)
    return ref_rdbpot(wrap32((wrap32(v * (1 << left)) * m + (1 << 30)) >> 31), right)


def arr(*vals):
    return np.array(vals, dtype=np.int32)


@settings(max_examples=300, deadline=None)
@given(a=any_i32, b=any_i32)
def test_doubling_high_mult_matches_reference(a, b):
    assert int(K.doubling_high_mult(arr(a), arr(b))[0]) == ref_dhm(a, b, True)
    assert int(K.doubling_high_mult_no_sat(arr(a), arr(b))[0]) == ref_dhm(a, b, False)
    # against gemmlowp's nudge formulation with truncating division (numpy int64)
    ab = np.int64(a) * np.int64(b)
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    q = int(ab + nudge)
    trunc = abs(q) // (1 << 31) * (1 if q >= 0 else -1)
    if not (a == b == I32_MIN):
        assert int(K.doubling_high_mult(arr(a), arr(b))[0]) == trunc


@settings(max_examples=300, deadline=None)
@given(x=any_i32, e=st.integers(0, 31))
def test_divide_by_power_of_two_rounds_half_away(x, e):
    got = int(K.divide_by_power_of_two(arr(x), arr(e))[0])
    assert got == ref_rdbpot(x, e)
    # exact rational rounding, ties away from zero
    q, r = divmod(abs(x), 1 << e)
    expect = q + (1 if 2 * r >= (1 << e) and e > 0 else 0)
    assert got == (expect if x >= 0 else -expect)


@settings(max_examples=400, deadline=None)
@given(v=any_i32, m=st.one_of(st.integers(1 << 30, I32_MAX), st.integers(0, I32_MAX)), s=st.integers(-31, 30))
def test_requantize_matches_reference(v, m, s):
    assert int(K.requantize(arr(v), arr(m), arr(s))[0]) == ref_requantize(v, m, s)


def test_requantize_vectorised_extremes():
    vals = np.array([I32_MIN, I32_MIN + 1, -(2**20), -1, 0, 1, 2**20, I32_MAX], dtype=np.int32)
    for m in (1 << 30, I32_MAX, 1518500250):
        for s in (-31, -12, -1, 0, 1, 7, 30):
            got = K.requantize(vals, np.full_like(vals, m), np.full_like(vals, s))
            assert [int(g) for g in got] == [ref_requantize(int(v), m, s) for v in vals]


@settings(max_examples=200, deadline=None)
@given(a=st.integers(-(1 << 31), 0))
def test_exp_on_negative_values_close_to_exp(a):
    got = int(K.exp_on_negative_values(arr(a), 5)[0])
    expect = math.exp(a / 2**26) * 2**31
    assert 0 <= got <= I32_MAX
    assert abs(got - min(expect, I32_MAX)) <= 2**31 * 1e-6


def test_exp_on_negative_values_fixed_points():
    assert int(K.exp_on_negative_values(arr(0), 5)[0]) == I32_MAX
    one = 1 << 26  # 1.0 in Q5.26
    got = K.exp_on_negative_values(arr(-one, -2 * one, -one // 4), 5)
    np.testing.assert_allclose(got / 2**31, [math.exp(-1), math.exp(-2), math.exp(-0.25)], rtol=0, atol=1e-6)


@settings(max_examples=200, deadline=None)
@given(a=st.integers(0, I32_MAX))
def test_one_over_one_plus_x_close_to_reciprocal(a):
    got = int(K.one_over_one_plus_x_for_x_in_0_1(arr(a))[0])
    assert abs(got / 2**31 - 1 / (1 + a / 2**31)) < 1e-8


def test_quantize_multiplier_and_activation_range():
    assert quantize_multiplier(0.5) == (1 << 30, 0)
    assert quantize_multiplier(1.0) == (1 << 30, 1)
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(2.0**-40) == (0, 0)
    assert quantize_multiplier(2.0**40) == (I32_MAX, 30)
    assert quantize_multiplier(1 - 2.0**-40) == (1 << 30, 1)  # round(q * 2^31) == 2^31 folds
    for real in (0.000123, 0.3, 0.7777, 3.5, 1e-7):
        mlt, sh = quantize_multiplier(real)
        assert 1 << 30 <= mlt < 1 << 31
        assert abs(mlt * 2.0 ** (sh - 31) / real - 1) < 2**-30
    assert activation_range("NONE", 0.1, 3) == (-128, 127)
    assert activation_range("RELU", 0.1, 3) == (3, 127)
    assert activation_range("RELU6", 0.1, -100) == (-100, -40)
    assert activation_range("RELU6", 6 / 255, -128) == (-128, 127)
    assert activation_range("RELU_N1_TO_1", 0.01, 0) == (-100, 100)
    with pytest.raises(ValueError, match="unknown activation"):
        activation_range("GELU", 0.1, 0)


# ---- argument errors ----------------------------------------------------------------------------------


def small_conv_args():
    x = np.zeros((1, 1, 8, 4), np.int8)
    w = np.ones((3, 1, 3, 4), np.int8)
    b = np.zeros(3, np.int32)
    mlt = np.full(3, 1 << 30, np.int32)
    sh = np.zeros(3, np.int32)
    return x, w, b, mlt, sh


def test_conv_errors_name_kernel_and_argument():
    x, w, b, mlt, sh = small_conv_args()
    kw = dict(input_offset=0, output_offset=0)
    with pytest.raises(ValueError, match=r"arm_convolve_s8: argument 'input' must have dtype int8"):
        K.convolve_s8(x.astype(np.float32), w, b, mlt, sh, **kw)
    with pytest.raises(ValueError, match=r"arm_convolve_wrapper_s8: argument 'filter' must have 4 dimensions"):
        K.convolve_wrapper_s8(x, w[0], b, mlt, sh, **kw)
    with pytest.raises(ValueError, match=r"argument 'filter' input channels per group \(3\)"):
        K.convolve_s8(x, np.ones((3, 1, 3, 3), np.int8), b, mlt, sh, **kw)
    with pytest.raises(ValueError, match=r"argument 'multiplier' must have shape \(3,\)"):
        K.convolve_s8(x, w, b, mlt[:2], sh, **kw)
    with pytest.raises(ValueError, match=r"argument 'bias' must have dtype int32"):
        K.convolve_s8(x, w, b.astype(np.int64), mlt, sh, **kw)
    with pytest.raises(ValueError, match=r"argument 'shift' values must be in \[-31, 30\]"):
        K.convolve_s8(x, w, b, mlt, np.full(3, 31, np.int32), **kw)
    with pytest.raises(ValueError, match=r"argument 'input_offset' must be in \[-127, 128\]"):
        K.convolve_s8(x, w, b, mlt, sh, input_offset=-128, output_offset=0)
    with pytest.raises(ValueError, match=r"argument 'stride\[1\] \(w\)'"):
        K.convolve_s8(x, w, b, mlt, sh, stride=(1, 0), **kw)
    with pytest.raises(ValueError, match=r"argument 'activation' must have min <= max"):
        K.convolve_s8(x, w, b, mlt, sh, activation=(5, 4), **kw)
    with pytest.raises(ValueError, match=r"argument 'input' must be a numpy array"):
        K.convolve_s8([[1]], w, b, mlt, sh, **kw)
    with pytest.raises(ValueError, match=r"argument 'input' must not be empty"):
        K.convolve_s8(np.zeros((1, 1, 0, 4), np.int8), w, b, mlt, sh, **kw)


def test_missing_or_small_scratch_is_an_error():
    x, w, b, mlt, sh = small_conv_args()
    kw = dict(input_offset=0, output_offset=0)
    need = 4 * ((3 * 4 + 3) // 4 * 4)
    assert K.convolve_s8(x, w, b, mlt, sh, **kw).shape == (1, 1, 6, 3)
    for size in (0, need - 1):  # 0: a NULL buffer
        with pytest.raises(ValueError, match=r"arm_convolve_s8 returned ARM_CMSIS_NN_ARG_ERROR.*'ctx'"):
            K.convolve_s8(x, w, b, mlt, sh, buffer_size=size, **kw)
    assert K.convolve_s8(x, w, b, mlt, sh, buffer_size=need, **kw).shape == (1, 1, 6, 3)
    dwf = np.ones((1, 1, 5, 4), np.int8)
    dkw = dict(input_offset=0, output_offset=0)
    m4, s4 = np.full(4, 1 << 30, np.int32), np.zeros(4, np.int32)
    with pytest.raises(ValueError, match=r"arm_depthwise_conv_s8_opt returned ARM_CMSIS_NN_ARG_ERROR"):
        K.depthwise_conv_s8_opt(x, dwf, None, m4, s4, buffer_size=2 * 4 * 5 - 1, **dkw)
    with pytest.raises(ValueError, match=r"arm_avgpool_s8 returned ARM_CMSIS_NN_ARG_ERROR"):
        K.avgpool_s8(x, filter_shape=(1, 2), stride=(1, 2), buffer_size=15)


def test_path_kernels_reject_other_shapes():
    x, w, b, mlt, sh = small_conv_args()
    kw = dict(input_offset=0, output_offset=0)
    with pytest.raises(ValueError, match=r"arm_convolve_1x1_s8_fast returned ARM_CMSIS_NN_ARG_ERROR.*1x1"):
        K.convolve_1x1_s8_fast(x, w, b, mlt, sh, **kw)
    with pytest.raises(ValueError, match=r"arm_convolve_1x1_s8 returned ARM_CMSIS_NN_ARG_ERROR"):
        K.convolve_1x1_s8(x, w[:, :, :1], b, mlt, sh, padding=(0, 1), **kw)
    with pytest.raises(ValueError, match=r"arm_convolve_1_x_n_s8 returned"):
        K.convolve_1_x_n_s8(np.zeros((1, 2, 8, 4), np.int8), w, b, mlt, sh, **kw)
    m4, s4 = np.full(4, 1 << 30, np.int32), np.zeros(4, np.int32)
    x2 = np.zeros((1, 5, 5, 4), np.int8)
    with pytest.raises(ValueError, match=r"arm_depthwise_conv_3x3_s8 returned.*3x3"):
        K.depthwise_conv_3x3_s8(x2, np.ones((1, 3, 3, 4), np.int8), None, m4, s4, padding=(2, 2), **kw)
    with pytest.raises(ValueError, match=r"arm_depthwise_conv_s8_opt returned"):
        K.depthwise_conv_s8_opt(x2, np.ones((1, 2, 2, 8), np.int8), None, np.tile(m4, 2), np.tile(s4, 2), **kw)
    with pytest.raises(ValueError, match=r"arm_max_pool_s8 returned.*window"):
        K.max_pool_s8(x2, filter_shape=(2, 2), padding=(2, 2), output_shape=(1, 1))


def test_other_kernel_argument_errors():
    with pytest.raises(ValueError, match=r"arm_fully_connected_s8: argument 'filter' must have shape \(C_out, 6\)"):
        K.fully_connected_s8(np.zeros((2, 6), np.int8), np.zeros((3, 5), np.int8), None, 1 << 30, 0,
                             input_offset=0, output_offset=0)
    with pytest.raises(ValueError, match=r"arm_fully_connected_wrapper_s8: argument 'multiplier' must have shape \(1,\)"):
        K.fully_connected_wrapper_s8(np.zeros((2, 6), np.int8), np.zeros((3, 6), np.int8), None,
                                     np.zeros(3, np.int32), np.zeros(3, np.int32), per_channel=False,
                                     input_offset=0, output_offset=0)
    with pytest.raises(ValueError, match=r"arm_elementwise_add_s8: argument 'input_2' must have the shape"):
        K.elementwise_add_s8(np.zeros(4, np.int8), np.zeros(5, np.int8), input_1_offset=0, input_1_mult=1,
                             input_1_shift=0, input_2_offset=0, input_2_mult=1, input_2_shift=0, left_shift=20,
                             out_offset=0, out_mult=1, out_shift=0)
    with pytest.raises(ValueError, match=r"arm_softmax_s8: argument 'shift' must be in \[0, 31\]"):
        K.softmax_s8(np.zeros((2, 3), np.int8), mult=1 << 30, shift=-1, diff_min=-10)
    with pytest.raises(ValueError, match=r"arm_clamp_s8: argument 'input' must have dtype int8, got uint8"):
        K.clamp_s8(np.zeros(3, np.uint8))
    with pytest.raises(ValueError, match=r"requantize: argument 'mult/shift' must have the shape"):
        K.requantize(arr(1, 2), arr(1), arr(0, 0))
    x = np.arange(-5, 5, dtype=np.int8)
    np.testing.assert_array_equal(K.clamp_s8(x, activation=(-2, 3)), np.clip(x, -2, 3))


def test_import_harcore_does_not_import_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys, harcore, harcore._core, harcore.quant.arith; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tflite_micro', 'keras')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
