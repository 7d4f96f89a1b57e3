"""Bit-exactness of harcore's s8 LSTM (arm_lstm_unidirectional_s8) against the TFLM reference interpreter.

Keras-2 (`tf_keras`) `LSTM(units, return_sequences=True)` layers with a static batch of 1 are converted with
full-integer int8 quantization (TensorFlow 2.21) to TFLite's fused UNIDIRECTIONAL_SEQUENCE_LSTM in the
"8x8->16" scheme (int8 activations and weights, int16 cell state). Weights, biases and every quantization
parameter are read from the converted model's tensors, and the kernel arguments are derived as TFLM's
prepare derives them: gate matmuls requantized to Q3.12 (QuantizeMultiplier of double(s_x) * double(s_w) /
2^-12), the inter-gate multiplies from the nonlinear scale 2^-15 and the cell scale, cell_scale_power as
TFLM's CheckedLog2 (float32), effective biases folding the zero points in. Random int8 sequences plus the
edge sequences all -128 / all 127 run through the `tflite_micro` runtime (state reset before each) and our
kernel; not one value of the whole output sequence may differ. Only TFLM is a valid LSTM oracle
(tflite-oracle.md §5): TFLite's own LSTM uses a different int16 sigmoid/tanh.

A `go_backwards=True` layer converts to REVERSE_V2 -> LSTM; it is checked as the same kernel on the
time-reversed input, which is how harcore runs a backward direction (go_backwards returns the sequence in
processing order, as compared here; a Bidirectional layer reverses it back before merging).

Also: the int16 sigmoid/tanh helper against its defining properties, and argument errors as ValueError.
"""

from __future__ import annotations

import os
import warnings
import zlib

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from harcore._core import kernels as K  # noqa: E402
from harcore.quant.arith import quantize_multiplier  # noqa: E402

pytestmark = [pytest.mark.oracle, pytest.mark.sanitize]

N_RANDOM = 6  # random sequences per model, plus all -128 and all 127
OP = "UNIDIRECTIONAL_SEQUENCE_LSTM"
# TFLite LSTM input slots: 0 input; 1-4 input weights and 5-8 recurrent weights (gates input, forget,
# cell, output); 12-15 gate biases; 18 output (hidden) state, 19 cell state (variables).
W_IN, W_H, BIAS, HIDDEN_STATE, CELL_STATE = (1, 2, 3, 4), (5, 6, 7, 8), (12, 13, 14, 15), 18, 19
GATE_SCALE = float(np.float32(2.0**-12))  # gate pre-activations, Q3.12
NONLINEAR_SCALE = float(np.float32(1.0 / 32768.0))  # sigmoid / tanh outputs, Q0.15

# key: (time steps, input size, hidden units, input span for calibration, go_backwards)
LSTM_CASES = {
    "t32_i16_h24": (32, 16, 24, 1.0, False),
    "t20_i9_h16_wide": (20, 9, 16, 4.0, False),
    "t24_i6_h12_backward": (24, 6, 12, 2.0, True),
}


class LstmModel:
    """A converted single-LSTM model: its tensors (TFLite interpreter, for reading) and the TFLM oracle."""

    def __init__(self, flatbuffer: bytes, backward: bool):
        import tensorflow as tf
        from tflite_micro.python.tflite_micro import runtime

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.reader = tf.lite.Interpreter(model_content=flatbuffer)
        self.reader.allocate_tensors()
        self.details = {d["index"]: d for d in self.reader.get_tensor_details()}
        ops = self.reader._get_ops_details()
        names = [o["op_name"] for o in ops]
        assert names == (["REVERSE_V2", OP] if backward else [OP]), names
        self.op = ops[-1]
        self.micro = runtime.Interpreter.from_bytes(flatbuffer)

    def tensor(self, slot):
        return self.details[int(self.op["inputs"][slot])]

    def const(self, slot):
        return self.reader.get_tensor(int(self.op["inputs"][slot]))

    def output(self):
        return self.details[int(self.op["outputs"][0])]

    def run(self, x):
        self.micro.reset()  # zero state: cell 0, hidden = zp (the kernel's start state)
        self.micro.set_input(x, 0)
        self.micro.invoke()
        return np.array(self.micro.get_output(0))


def scale_zp(detail):
    q = detail["quantization_parameters"]
    assert len(q["scales"]) == 1, "LSTM tensors are quantized per tensor"
    return float(np.float32(q["scales"][0])), int(q["zero_points"][0])


@pytest.fixture(scope="module")
def lstm_model():
    import tensorflow as tf
    import tf_keras

    cache: dict[str, LstmModel] = {}

    def _convert(key):
        if key in cache:
            return cache[key]
        steps, features, units, span, backward = LSTM_CASES[key]
        tf_keras.utils.set_random_seed(zlib.crc32(key.encode()))
        inp = tf_keras.Input(shape=(steps, features), batch_size=1)
        layer = tf_keras.layers.LSTM(units, return_sequences=True, go_backwards=backward)
        model = tf_keras.Model(inp, layer(inp))
        # non-trivial biases so that the bias path is exercised
        kernel, recurrent, bias = layer.get_weights()
        layer.set_weights([kernel, recurrent, np.random.default_rng(1).normal(0, 0.4, bias.shape).astype(np.float32)])
        rng = np.random.default_rng(7)

        def representative():
            for _ in range(30):
                yield [(rng.normal(size=(1, steps, features)) * span).astype(np.float32)]

        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            flatbuffer = conv.convert()
        cache[key] = LstmModel(flatbuffer, backward)
        return cache[key]

    return _convert


def checked_log2(x):
    """TFLM's CheckedLog2 (float32 arithmetic); the cell-state scale must be a power of two."""
    l2 = np.float32(np.log(np.float32(x))) * (np.float32(1.0) / np.float32(np.log(np.float32(2.0))))
    r = np.round(l2)
    assert abs(l2 - r) < 1e-3, f"cell-state scale {x} is not a power of two"
    return int(r)


def lstm_args(m: LstmModel):
    """The kernel's arguments, derived from the model's tensors as TFLM's prepare does."""
    s_in, zp_in = scale_zp(m.tensor(0))
    s_out, zp_out = scale_zp(m.output())
    s_h, zp_h = scale_zp(m.tensor(HIDDEN_STATE))
    s_cell, zp_cell = scale_zp(m.tensor(CELL_STATE))
    assert (s_h, zp_h) == (s_out, zp_out) and zp_cell == 0
    assert m.tensor(CELL_STATE)["dtype"] == np.int16 and m.tensor(HIDDEN_STATE)["dtype"] == np.int8
    w_in = np.stack([m.const(k) for k in W_IN])
    w_h = np.stack([m.const(k) for k in W_H])
    bias = np.stack([m.const(k) for k in BIAS]).astype(np.int64)
    assert w_in.dtype == np.int8 and w_h.dtype == np.int8
    assert all(scale_zp(m.tensor(k))[1] == 0 for k in W_IN + W_H)  # symmetric weights
    input_eb = bias + (-zp_in) * w_in.astype(np.int64).sum(axis=2)
    hidden_eb = (-zp_h) * w_h.astype(np.int64).sum(axis=2)
    q_in = [quantize_multiplier(s_in * scale_zp(m.tensor(k))[0] / GATE_SCALE) for k in W_IN]
    q_h = [quantize_multiplier(s_h * scale_zp(m.tensor(k))[0] / GATE_SCALE) for k in W_H]
    i32 = lambda v: np.asarray(v, dtype=np.int32)  # noqa: E731
    positional = (
        w_in,
        w_h,
        i32(input_eb),
        i32(hidden_eb),
        i32([q[0] for q in q_in]),
        i32([q[1] for q in q_in]),
        i32([q[0] for q in q_h]),
        i32([q[1] for q in q_h]),
    )
    keywords = dict(
        input_offset=-zp_in,
        output_offset=zp_h,
        forget_to_cell=quantize_multiplier(NONLINEAR_SCALE * s_cell / s_cell),
        input_to_cell=quantize_multiplier(NONLINEAR_SCALE * NONLINEAR_SCALE / s_cell),
        output_quant=quantize_multiplier(NONLINEAR_SCALE * NONLINEAR_SCALE / s_h),
        cell_scale_power=checked_log2(s_cell),
        cell_clip=0,  # Keras LSTM: no cell clipping
    )
    return positional, keywords


def int8_sequences(shape, seed):
    rng = np.random.default_rng(seed)
    xs = [rng.integers(-128, 128, size=shape, dtype=np.int8) for _ in range(N_RANDOM)]
    return xs + [np.full(shape, -128, np.int8), np.full(shape, 127, np.int8)]


@pytest.mark.parametrize("key", list(LSTM_CASES))
def test_lstm_matches_tflm(lstm_model, key):
    steps, features, units, _, backward = LSTM_CASES[key]
    m = lstm_model(key)
    positional, keywords = lstm_args(m)
    compared = differing = 0
    for n, x in enumerate(int8_sequences((1, steps, features), seed=zlib.crc32(key.encode()))):
        ref = m.run(x)
        ours = K.lstm_unidirectional_s8(x[:, ::-1].copy() if backward else x, *positional, **keywords)
        assert ours.shape == (1, steps, units) and ours.dtype == np.int8
        ref = ref.reshape(ours.shape)
        diff = int(np.count_nonzero(ours != ref))
        compared += ours.size
        differing += diff
        assert diff == 0, f"{key} sequence {n}: {diff} of {ours.size} values differ"
    assert compared == (N_RANDOM + 2) * steps * units and differing == 0
    # the same weights time-major and with a batch of 2 give every batch its own, identical sequence
    x = int8_sequences((1, steps, features), seed=3)[0]
    x = x[:, ::-1].copy() if backward else x
    one = K.lstm_unidirectional_s8(x, *positional, **keywords)
    two = K.lstm_unidirectional_s8(np.concatenate([x, x]), *positional, **keywords)
    tm = K.lstm_unidirectional_s8(np.concatenate([x, x]).transpose(1, 0, 2).copy(), *positional, **keywords,
                                  time_major=True)
    np.testing.assert_array_equal(two, np.concatenate([one, one]))
    np.testing.assert_array_equal(tm.transpose(1, 0, 2), two)


# ---- int16 sigmoid / tanh -----------------------------------------------------------------------------


def test_activation_s16_properties():
    x = np.arange(-32768, 32768, dtype=np.int16)
    sig = K.activation_s16(x, 0, "sigmoid").astype(np.int64)
    tanh = K.activation_s16(x, 0, "tanh").astype(np.int64)
    real = x.astype(np.float64) / 4096.0  # Q3.12
    assert sig[32768] == 16384 and tanh[32768] == 0
    assert np.all(np.diff(sig) >= 0) and np.all(np.diff(tanh) >= 0)
    assert np.abs(sig / 32768.0 - 1.0 / (1.0 + np.exp(-real))).max() < 2e-4
    assert np.abs(tanh / 32768.0 - np.tanh(real)).max() < 4e-4
    assert 0 <= sig.min() and sig.max() <= 32767 and -32767 <= tanh.min() and tanh.max() <= 32767
    # scale 2^-10 (left shift 2): |x| reaches 32, past the table, and saturates
    sat_sig = K.activation_s16(x[[0, -1]], 2, "sigmoid")
    sat_tanh = K.activation_s16(x[[0, -1]], 2, "tanh")
    assert sat_sig.tolist() == [1, 32767] and sat_tanh.tolist() == [-32767, 32767]
    # scale 2^-14 (left shift -2) reads the same values as Q3.12 inputs divided by 4, rounded
    q = np.arange(-32768, 32768, 7, dtype=np.int16)
    down = K.activation_s16(q, -2, "tanh").astype(np.int64)
    assert np.abs(down / 32768.0 - np.tanh(q / 16384.0)).max() < 4e-4
    with pytest.raises(ValueError, match=r"arm_nn_activation_s16: argument 'type'"):
        K.activation_s16(q, 0, "relu")
    with pytest.raises(ValueError, match=r"arm_nn_activation_s16: argument 'input' must have dtype int16"):
        K.activation_s16(q.astype(np.int32), 0, "tanh")
    with pytest.raises(ValueError, match=r"argument 'left_shift' must be in \[-31, 30\]"):
        K.activation_s16(q, 31, "tanh")


# ---- argument errors ----------------------------------------------------------------------------------


def small_lstm_args(h=3, i=2):
    z32 = lambda *s: np.zeros(s, np.int32)  # noqa: E731
    positional = (
        np.ones((4, h, i), np.int8),
        np.ones((4, h, h), np.int8),
        z32(4, h),
        z32(4, h),
        np.full(4, 1 << 30, np.int32),
        z32(4),
        np.full(4, 1 << 30, np.int32),
        z32(4),
    )
    keywords = dict(
        input_offset=0,
        output_offset=0,
        forget_to_cell=(1 << 30, -14),
        input_to_cell=(1 << 30, -15),
        output_quant=(1 << 30, -20),
        cell_scale_power=-12,
    )
    return positional, keywords


def test_lstm_argument_errors():
    pos, kw = small_lstm_args()
    x = np.zeros((1, 5, 2), np.int8)
    assert K.lstm_unidirectional_s8(x, *pos, **kw).shape == (1, 5, 3)
    with pytest.raises(ValueError, match=r"arm_lstm_unidirectional_s8: argument 'input' must have 3 dimensions"):
        K.lstm_unidirectional_s8(x[0], *pos, **kw)
    with pytest.raises(ValueError, match=r"argument 'input_weights' must have shape \(4, 3, 3\)"):
        K.lstm_unidirectional_s8(np.zeros((1, 5, 3), np.int8), *pos, **kw)
    with pytest.raises(ValueError, match=r"argument 'hidden_weights' must have shape \(4, 3, 3\)"):
        K.lstm_unidirectional_s8(x, pos[0], pos[1][:, :, :2].copy(), *pos[2:], **kw)
    with pytest.raises(ValueError, match=r"argument 'input_effective_bias' must have dtype int32"):
        K.lstm_unidirectional_s8(x, pos[0], pos[1], pos[2].astype(np.int64), *pos[3:], **kw)
    with pytest.raises(ValueError, match=r"argument 'input_shift' values must be in \[-31, 30\]"):
        K.lstm_unidirectional_s8(x, *pos[:5], np.full(4, 31, np.int32), *pos[6:], **kw)
    with pytest.raises(ValueError, match=r"argument 'input_offset' must be in \[-127, 128\]"):
        K.lstm_unidirectional_s8(x, *pos, **{**kw, "input_offset": -128})
    with pytest.raises(ValueError, match=r"argument 'output_quant\[1\] \(shift\)'"):
        K.lstm_unidirectional_s8(x, *pos, **{**kw, "output_quant": (1 << 30, 31)})
    with pytest.raises(ValueError, match=r"argument 'cell_clip' must be in \[0, 32767\]"):
        K.lstm_unidirectional_s8(x, *pos, **kw, cell_clip=-1)
    with pytest.raises(ValueError, match=r"argument 'input' must not be empty"):
        K.lstm_unidirectional_s8(np.zeros((1, 0, 2), np.int8), *pos, **kw)


def test_lstm_cell_clip_bounds_the_cell_state():
    # saturating gates: forget 1, input 1, cell gate tanh(+large) = 1 -> the cell grows by 1 each step until
    # clipped; with clip c the hidden state settles at o * tanh(c * s_cell) for every later step
    pos, kw = small_lstm_args(h=2, i=1)
    w_in = np.full((4, 2, 1), 127, np.int8)
    x = np.full((1, 40, 1), 127, np.int8)
    kw = {**kw, "output_quant": quantize_multiplier(2.0**-30 / (1.0 / 128.0))}
    free = K.lstm_unidirectional_s8(x, w_in, *pos[1:], **kw)
    clipped = K.lstm_unidirectional_s8(x, w_in, *pos[1:], **kw, cell_clip=1024)
    assert np.all(clipped[0, -1] < free[0, -1])
    assert np.all(clipped[0, 20:] == clipped[0, -1])


def test_sigmoid_table_is_generated_by_the_documented_rule():
    """The kernel's interpolation table equals tools/gen_sigmoid_table.py's output entry for entry."""
    import importlib.util
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("gen_sigmoid_table", root / "tools" / "gen_sigmoid_table.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    src = (root / "src" / "cpp" / "kernels" / "arm_lstm_unidirectional_s8.cpp").read_text()
    body = src[src.index("kSigmoidTable[256] = {"):]
    table = [int(v) for v in re.findall(r"\d+", body[body.index("{") + 1:body.index("}")])]
    assert table == gen.sigmoid_table()
