"""TensorFlow's own quantization of the CNN, run by harcore and by TFLM: the same bits.

The Keras equivalent of harcore's `cnn` (4 x Conv1D(k=3, same, ReLU) -> AveragePooling1D(16) -> Flatten ->
Dense(6); the float weights copied from the torch model) is converted by TFLiteConverter with full-integer
int8 quantization, calibrated on real windows of `harcore.data.load("default")`. TF's int8 weights, int32
biases and every quantization parameter are then put into the QGraph of the torch model (same op structure;
conv weights OHWI -> torch layout, the Dense rows permuted from Keras' time-major flatten to torch's
channel-major one), and `harcore.quant.simulate` must reproduce TFLM's outputs on TF's .tflite exactly —
i.e. harcore and TFLM agree on a quantization harcore did not choose. This needs no general .tflite
importer: the mapping is by op order for this sequential model.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import torch  # noqa: E402

from harcore import data, models, quant  # noqa: E402
from harcore.quant.qgraph import QParams  # noqa: E402

pytestmark = [pytest.mark.oracle, pytest.mark.sanitize]


def keras_cnn(net):
    import tensorflow as tf

    L = tf.keras.layers
    x = inp = tf.keras.Input((128, 9))
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv1d)]
    for c in convs:
        x = L.Conv1D(c.out_channels, 3, padding="same", activation="relu")(x)
    x = (L.MaxPooling1D if isinstance(net.pool, torch.nn.AdaptiveMaxPool1d) else L.AveragePooling1D)(16)(x)
    x = L.Flatten()(x)
    out = L.Dense(6)(x)
    km = tf.keras.Model(inp, out)
    dense_layers = [layer for layer in km.layers if isinstance(layer, (L.Conv1D, L.Dense))]
    for layer, c in zip(dense_layers, convs):
        layer.set_weights([c.weight.detach().numpy().transpose(2, 1, 0), c.bias.detach().numpy()])
    w = net.fc.weight.detach().numpy().reshape(6, 512, 8)  # torch flatten: index c * 8 + t
    dense_layers[-1].set_weights([w.transpose(2, 1, 0).reshape(4096, 6), net.fc.bias.detach().numpy()])
    return km


def tf_convert(km, calib):
    import tensorflow as tf

    def representative():
        for x in calib:
            yield [x.T[None].astype(np.float32)]

    conv = tf.lite.TFLiteConverter.from_keras_model(km)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fb = conv.convert()
        reader = tf.lite.Interpreter(model_content=fb)
    reader.allocate_tensors()
    return fb, reader


def qp(detail) -> QParams:
    s, z = detail["quantization"]
    return QParams(float(np.float32(s)), int(z))


@pytest.mark.parametrize("pool", ["max", "avg"])
def test_tf_quantized_cnn_runs_the_same_in_harcore_and_tflm(pool):
    from tflite_micro.python.tflite_micro import runtime

    torch.set_num_threads(1)
    ds = data.load("default")
    calib = ds.train.x[:: len(ds.train.x) // 48][:48]
    torch.manual_seed(3)
    net = models.create("cnn", in_channels=9, seq_len=128, num_classes=6, pool=pool).eval()
    g = quant.quantize(net, calib)  # the op structure (BN folded, ReLU fused); its numbers are replaced below
    fb, reader = tf_convert(keras_cnn(net), calib)

    details = {d["index"]: d for d in reader.get_tensor_details()}
    ops = reader._get_ops_details()
    tf_convs = [o for o in ops if o["op_name"] == "CONV_2D"]
    tf_pool = next(o for o in ops if o["op_name"] == {"max": "MAX_POOL_2D", "avg": "AVERAGE_POOL_2D"}[pool])
    tf_fc = next(o for o in ops if o["op_name"] == "FULLY_CONNECTED")
    g_convs = [o for o in g.graph.ops if o.kind == "conv"]
    assert len(tf_convs) == len(g_convs) == 4
    g.qparams[g.graph.ops[0].output] = qp(reader.get_input_details()[0])
    for go, to in zip(g_convs, tf_convs):
        w = reader.get_tensor(int(to["inputs"][1]))  # (C_out, 1, K, C_in)
        scales = details[int(to["inputs"][1])]["quantization_parameters"]["scales"].astype(np.float32)
        g.ops[go.name].arrays.update(weight=np.ascontiguousarray(w.transpose(0, 3, 1, 2)), weight_scale=scales,
                                     bias=reader.get_tensor(int(to["inputs"][2])).astype(np.int32))
        assert g.ops[go.name].act == "relu"
        g.qparams[go.output] = qp(details[int(to["outputs"][0])])
    pool_op = next(o for o in g.graph.ops if o.kind == "pool")
    flat = next(o for o in g.graph.ops if o.kind == "reshape")
    fc = next(o for o in g.graph.ops if o.kind == "linear")
    g.qparams[pool_op.output] = g.qparams[flat.output] = qp(details[int(tf_pool["outputs"][0])])
    assert qp(details[int(tf_pool["inputs"][0])]) == g.qparams[g_convs[-1].output]
    w = reader.get_tensor(int(tf_fc["inputs"][1]))  # (6, 4096), Keras flatten index t * 512 + c
    fc_scales = details[int(tf_fc["inputs"][1])]["quantization_parameters"]["scales"].astype(np.float32)
    g.ops[fc.name].arrays.update(
        weight=np.ascontiguousarray(w.reshape(6, 8, 512).transpose(0, 2, 1).reshape(6, 4096)),
        weight_scale=np.broadcast_to(fc_scales, (6,)).copy(),
        bias=reader.get_tensor(int(tf_fc["inputs"][2])).astype(np.int32))
    g.qparams[fc.output] = qp(details[int(tf_fc["outputs"][0])])
    g.validate()

    micro = runtime.Interpreter.from_bytes(fb, arena_size=64 << 20)
    s, z = reader.get_input_details()[0]["quantization"]
    rng = np.random.default_rng(0)
    real = np.clip(np.round(ds.test.x[rng.choice(len(ds.test.x), 24, replace=False)] / s) + z, -128, 127)
    xs = np.concatenate([real.astype(np.int8), rng.integers(-128, 128, (8, 9, 128), dtype=np.int8)])
    ref = []
    for x in xs:
        micro.set_input(np.ascontiguousarray(x.T[None]), 0)
        micro.invoke()
        ref.append(np.array(micro.get_output(0))[0])
    ref = np.stack(ref)
    ours = quant.simulate(g, xs)
    differ = int(np.count_nonzero(ours != ref))
    print(f"TF-quantized cnn ({pool} pool): {ours.size} values compared, {differ} differ")
    assert differ == 0, f"{differ} of {ours.size} outputs differ"
    assert len({tuple(r) for r in ours}) > 1
