"""harcore.quant QAT: fake-quant forward vs the int8 graph, BN folding, ranges, conversion through PTQ, errors.

Measured on the built-in HAPT subset (864 test windows; float models trained 3 epochs, QAT 1 epoch, seed 0):
QAT fake-quant logits vs ``simulate``'s dequantized logits, in units of the output scale (LSB): small CNN
100 % argmax agreement, mean 0.09 LSB, max 1 LSB; µBi-ConvLSTM 99.9 %, mean 0.05 LSB (the LSTM's int16
gates / cell and int8 recurrence are not fake-quantized, see docs/int8.md); TinyHAR 99.9 %, mean 0.14 LSB,
p99 1 LSB, max 9 LSB; SFTNAS-TinyHAR 100 %, mean 0.13 LSB, p99 1 LSB, max 2 LSB.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from harcore import data, models, quant
from harcore.graph import trace
from harcore.quant.ptq import fold, range_qparams
from harcore.quant.qat import QATModel, RangeObserver, fake_quant_weight
from harcore.quant.qgraph import LOGISTIC_QPARAMS, TANH_QPARAMS
from harcore.train import TrainConfig, fit

torch.set_num_threads(1)

# key -> (zoo name, options); TinyHAR and the SFTNAS-derived TinyHAR carry every TinyHAR op of the int8 path:
# BATCH_MATMUL, MUL by a parameter, standalone TANH, softmax, mean, LSTM, and (TinyHAR) unfoldable BNs
ZOO = {"cnn": ("cnn", {"widths": (16, 32)}), "mubiconvlstm": ("mubiconvlstm", {}), "tinierhar": ("tinierhar", {}),
       "tinyhar": ("tinyhar", {}), "sftnas_tinyhar": ("sftnas", {"backbone": "tinyhar"})}


@pytest.fixture(scope="module")
def ds():
    return data.load("default")


@pytest.fixture(scope="module")
def trained(ds):
    cache = {}

    def get(name):
        if name not in cache:
            torch.manual_seed(0)
            zoo, opts = ZOO[name]
            m = models.create(zoo, 9, 128, 6, **opts)
            fit(m, ds.train, None, TrainConfig(epochs=3, lr=3e-3, progress=False, seed=0))
            cache[name] = m.eval()
        return cache[name]

    return get


# ---- the QAT forward is the int8 graph ------------------------------------------------------------


@pytest.mark.sanitize
@pytest.mark.parametrize("name,mean_lsb,p99_lsb", [("cnn", 0.3, 1.0), ("mubiconvlstm", 0.3, 2.0),
                                                    pytest.param("tinyhar", 0.3, 2.0, marks=pytest.mark.slow),
                                                    ("sftnas_tinyhar", 0.3, 2.0)])
def test_qat_forward_agrees_with_simulate(trained, ds, name, mean_lsb, p99_lsb):
    m = trained(name)
    g, qm = quant.qat(m, ds.train, ds.val, epochs=1, calib_x=ds.train.x[::8], seed=0, return_model=True)
    assert g.meta["qat"] is True and g.meta["qat_epochs"] == 1
    y, logits = quant.simulate(g, ds.test.x, dequantize=True)
    assert y.dtype == np.int8 and y.shape == (len(ds.test.x), 6)
    qm.eval()
    with torch.no_grad():
        fq = qm(torch.as_tensor(ds.test.x)).double().numpy()
    agree = float((fq.argmax(1) == logits.argmax(1)).mean())
    assert agree >= 0.97, f"{name}: QAT forward and int8 graph agree on {agree:.3f} of the windows"
    lsb = np.round(np.abs(fq - logits) / g.output_qparams.scale)  # both lie on the output grid
    assert lsb.mean() <= mean_lsb and np.percentile(lsb, 99) <= p99_lsb, (lsb.mean(), np.percentile(lsb, 99))
    # QAT changed the weights (TinyHAR: the mul parameters and BN affines too) and kept the caller's model as it was
    theirs = dict(m.named_parameters())
    changed = {k for k, v in qm.model.named_parameters() if not torch.equal(v, theirs[k])}
    assert changed, "QAT changed no parameter"
    if name in ("tinyhar", "sftnas_tinyhar"):
        assert {k for k in theirs if k.endswith("gamma")} <= changed  # trained through the fake-quant MUL
    if name == "tinyhar":
        assert {k for k in theirs if k.startswith("layers_conv") and k.endswith(".2.weight")} <= changed  # dw BNs
    acc = float((y.argmax(1) == ds.test.y).mean())
    assert acc > 0.6, f"{name}: int8 accuracy after QAT {acc:.3f}"


@pytest.mark.sanitize
@pytest.mark.parametrize("name", ["cnn", "mubiconvlstm", "tinierhar", "tinyhar", "sftnas_tinyhar"])
def test_untrained_qat_converts_to_the_ptq_graph(trained, ds, name):
    """Before fine-tuning the learned ranges are the calibration min/max: convert == quantize (up to the
    float32 vs float64 evaluation of the ranges)."""
    m, cal = trained(name), ds.train.x[::8]
    g_ptq = quant.quantize(m, cal)
    g_qat = quant.convert(quant.prepare_qat(m, cal), cal)
    assert [op.name for op in g_qat.graph.ops] == [op.name for op in g_ptq.graph.ops]
    for a, b in zip(g_qat.qparams, g_ptq.qparams):
        assert abs(a.scale - b.scale) <= 1e-5 * b.scale and abs(a.zero_point - b.zero_point) <= 1
    for op, q in g_ptq.ops.items():
        for k, v in q.arrays.items():
            if v.dtype == np.int8:  # weights depend on the weights only: identical
                np.testing.assert_array_equal(g_qat.ops[op].arrays[k], v, err_msg=f"{op}/{k}")
    yq, yp = quant.simulate(g_qat, ds.test.x), quant.simulate(g_ptq, ds.test.x)
    assert float((yq.argmax(1) == yp.argmax(1)).mean()) >= 0.99


# ---- BN folding, freezing, ranges -----------------------------------------------------------------


def _bn_model() -> nn.Module:
    torch.manual_seed(1)
    m = models.create("cnn", 9, 128, 6, widths=(8, 16))
    with torch.no_grad():
        for bn in (m.features[1], m.features[4]):
            bn.weight.uniform_(0.5, 2.0)
            bn.bias.uniform_(-0.5, 0.5)
            bn.running_mean.uniform_(-1.0, 1.0)
            bn.running_var.uniform_(0.2, 3.0)
    return m.eval()


@pytest.mark.sanitize
def test_bn_folding_equals_ptq_folding(ds):
    m = _bn_model()
    qm = quant.prepare_qat(m, ds.train.x[:64])
    _, ref, _ = fold(trace(m, (9, 128)), m)
    got = qm.folded_params()
    assert set(got) == {"features_0", "features_3", "fc"}
    for name, p in got.items():
        for k in ("weight", "bias"):
            np.testing.assert_allclose(p[k].double().numpy(), ref[name][k].numpy(), rtol=1e-5, atol=1e-6,
                                       err_msg=f"{name}/{k}")


@pytest.mark.sanitize
def test_bn_uses_batch_statistics_until_frozen(ds):
    qm = quant.prepare_qat(_bn_model(), ds.train.x[:64])
    x = torch.as_tensor(ds.train.x[:32])
    bn = qm.model.features[1]
    mean0 = bn.running_mean.clone()
    qm.freeze_ranges()
    qm.train()
    with torch.no_grad():
        y_batch = qm(x)
    assert not torch.equal(bn.running_mean, mean0)  # batch statistics updated the running ones
    qm.freeze_bn()
    mean1 = bn.running_mean.clone()
    with torch.no_grad():
        y_train = qm(x)
        y_eval = qm.eval()(x)
    assert torch.equal(bn.running_mean, mean1)
    torch.testing.assert_close(y_train, y_eval, rtol=0, atol=0)  # frozen: the folded forward exactly
    assert not torch.allclose(y_batch, y_eval)


@pytest.mark.sanitize
def test_ranges_follow_an_ema_and_freeze(ds):
    qm = quant.prepare_qat(_bn_model(), ds.train.x[:64])
    fq = qm.fq["0"]  # the input tensor
    obs = fq.activation_post_process
    lo0, hi0 = float(obs.min_val), float(obs.max_val)
    np.testing.assert_allclose((lo0, hi0), (ds.train.x[:64].min(), ds.train.x[:64].max()), rtol=1e-6)
    x = torch.as_tensor(ds.train.x[64:96])
    qm.train()
    with torch.no_grad():
        qm(x)
    c = 0.01
    assert float(obs.min_val) == pytest.approx(lo0 + c * (float(x.min()) - lo0), rel=1e-5)
    assert float(obs.max_val) == pytest.approx(hi0 + c * (float(x.max()) - hi0), rel=1e-5)
    q = range_qparams(float(obs.min_val), float(obs.max_val))
    assert float(fq.scale) == q.scale and int(fq.zero_point) == q.zero_point
    qm.eval()
    with torch.no_grad():
        qm(torch.as_tensor(ds.train.x[96:128]) * 3)
    assert float(obs.max_val) == pytest.approx(hi0 + c * (float(x.max()) - hi0), rel=1e-5)  # eval: no update
    qm.freeze_ranges()
    qm.train()
    with torch.no_grad():
        qm(torch.as_tensor(ds.train.x[96:128]) * 3)
    assert float(obs.max_val) == pytest.approx(hi0 + c * (float(x.max()) - hi0), rel=1e-5)  # frozen
    # fused-ReLU outputs: ranges [0, hi], so their zero point is -128 (0 included, nothing below it)
    ranges = qm.ranges()
    for op in qm.graph.ops:
        if qm.acts.get(op.name) == "relu":
            assert ranges[op.output][0] == 0.0 and range_qparams(*ranges[op.output]).zero_point == -128


def test_range_observer_qparams_are_the_converters():
    o = RangeObserver()
    o(torch.tensor([0.5, 3.0]))  # positive only: 0 is included
    s, zp = o.calculate_qparams()
    q = range_qparams(0.0, 3.0)
    assert float(s) == q.scale and int(zp) == q.zero_point == -128


def test_weight_fake_quant_is_symmetric_per_group_with_ste():
    torch.manual_seed(0)
    w = torch.randn(8, 5, requires_grad=True)
    wq = fake_quant_weight(w, 8)
    scale = w.detach().abs().amax(1, keepdim=True) / 127
    q = wq.detach() / scale
    np.testing.assert_allclose(q.numpy(), q.round().numpy(), atol=1e-3)
    assert q.abs().max() <= 127 + 1e-3 and (wq - w).abs().max() <= scale.max() / 2 + 1e-6
    wq.sum().backward()
    torch.testing.assert_close(w.grad, torch.ones_like(w))  # straight-through
    # LSTM-style: one scale per gate block of rows
    g = fake_quant_weight(torch.randn(4 * 3, 2), 4)
    assert g.shape == (12, 2)


# ---- the ops TinyHAR added to the int8 path ---------------------------------------------------------


class _TinyHAROps(nn.Module):
    """conv -> ReLU -> BN (unfoldable: a depthwise 1x1 conv), tanh and sigmoid (TANH / LOGISTIC), two matmuls
    (BATCH_MATMUL) and a mul by a learned parameter (MUL with an int8 constant), on (B, 9, 16) windows."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(9, 8, 5, padding=2)
        self.bn = nn.BatchNorm1d(8)
        self.q, self.k = nn.Linear(16, 16), nn.Linear(16, 16)
        self.gamma = nn.Parameter(torch.tensor([0.7]))
        self.fc = nn.Linear(8 * 16, 6)

    def forward(self, x):
        h = self.bn(torch.relu(self.conv(x)))
        att = torch.matmul(torch.tanh(self.q(h)), torch.sigmoid(self.k(h)).transpose(1, 2))
        return self.fc((h + self.gamma * torch.matmul(att, h)).flatten(1))


def _tinyhar_ops() -> nn.Module:
    torch.manual_seed(2)
    m = _TinyHAROps()
    with torch.no_grad():
        m.bn.weight.uniform_(0.5, 2.0)
        m.bn.bias.uniform_(-0.5, 0.5)
        m.bn.running_mean.uniform_(0.0, 1.0)
        m.bn.running_var.uniform_(0.2, 3.0)
    return m.eval()


@pytest.mark.sanitize
def test_tinyhar_ops_are_fake_quantized_as_the_int8_graph(ds):
    m, cal, x = _tinyhar_ops(), ds.train.x[::8, :, :16], torch.as_tensor(ds.test.x[:256, :, :16])
    qm = quant.prepare_qat(m, cal)
    ops = {op.name: op for op in qm.graph.ops}
    assert qm.dw_bn == {"bn"} and list(qm.mul_param.values()) == ["gamma"]
    g = quant.convert(qm, cal)
    g_ptq = quant.quantize(m, cal)
    # before training: convert == PTQ, including the depthwise BN weights and the MUL constant
    for t, (a, b) in enumerate(zip(g.qparams, g_ptq.qparams)):
        assert abs(a.scale - b.scale) <= 1e-5 * b.scale and abs(a.zero_point - b.zero_point) <= 1, t
    for name, q in g_ptq.ops.items():
        for k, v in q.arrays.items():
            if v.dtype == np.int8:
                np.testing.assert_array_equal(g.ops[name].arrays[k], v, err_msg=f"{name}/{k}")
    # TANH / LOGISTIC outputs: TFLite's fixed qparams, in training and in the int8 graph; matmuls: own ranges
    seen = {}
    for op in qm.graph.ops:
        if op.kind == "activation" and op.act in ("tanh", "sigmoid"):
            fixed = TANH_QPARAMS if op.act == "tanh" else LOGISTIC_QPARAMS
            fq = qm.fq[str(op.output)]
            assert float(fq.scale) == pytest.approx(fixed[0]) and int(fq.zero_point) == fixed[1]
            assert (g.qparams[op.output].scale, g.qparams[op.output].zero_point) == pytest.approx(fixed)
            fq.register_forward_hook(lambda mod, inp, out, a=op.act: seen.__setitem__(a, out.detach()))
    assert sum(op.kind == "matmul" for op in qm.graph.ops) == 2
    for op in qm.graph.ops:
        if op.kind == "matmul":
            assert isinstance(qm.fq[str(op.output)].activation_post_process, RangeObserver)
    with torch.no_grad():
        fq_logits = qm(x).double().numpy()
    for act, (s, zp) in (("tanh", TANH_QPARAMS), ("sigmoid", LOGISTIC_QPARAMS)):
        q = seen[act].double() / s + zp
        assert torch.equal(q, q.round()) and q.min() >= -128 and q.max() <= 127, act
    # the MUL constant: symmetric, one scale, exactly the int8 graph's values
    mul = next(op for op in qm.graph.ops if op.kind == "mul" and len(op.inputs) == 1)
    want = g.ops[mul.name].arrays["param"].astype(np.float64) * g.ops[mul.name].arrays["param_scale"][0]
    np.testing.assert_allclose(qm._mul_operand(mul).detach().double().numpy(), want, rtol=1e-6)
    # the unfoldable BN: the depthwise 1x1 conv of PTQ's fold
    _, ref, _ = fold(trace(m, (9, 16)), m)
    for k in ("weight", "bias"):
        np.testing.assert_allclose(qm.folded_params()["bn"][k].double().numpy(), ref["bn"][k].numpy(), rtol=1e-5,
                                   atol=1e-6, err_msg=k)
    assert ops["bn"].groups == 8
    # the fake-quant forward is the int8 graph
    _, logits = quant.simulate(g, x.numpy(), dequantize=True)
    lsb = np.round(np.abs(fq_logits - logits) / g.output_qparams.scale)
    assert lsb.mean() <= 0.3 and np.percentile(lsb, 99) <= 2, (lsb.mean(), np.percentile(lsb, 99))
    # QAT trains through every one of them (straight-through), and the BN uses batch statistics until frozen
    qm.train()
    mean0 = qm.model.bn.running_mean.clone()
    qm(x).logsumexp(1).sum().backward()
    for name in ("gamma", "bn.weight", "bn.bias", "q.weight", "k.weight", "conv.weight"):
        grad = qm.model.get_parameter(name).grad
        assert grad is not None and grad.abs().sum() > 0, name
    assert not torch.equal(qm.model.bn.running_mean, mean0)
    qm.freeze_bn()
    qm.freeze_ranges()
    with torch.no_grad():
        torch.testing.assert_close(qm(x), qm.eval()(x), rtol=0, atol=0)


# ---- concat: one quantization shared by its inputs and output ----------------------------------------


@pytest.mark.sanitize
@pytest.mark.parametrize("cls_name", ["Concats", "CatInput", "CatMany"])
def test_concat_inputs_share_the_int8_quantization_in_qat(ds, cls_name):
    """TFLM's CONCATENATION needs its inputs and output on one grid, PTQ gives it the range over the joined
    tensors, and QAT fake-quantizes every joined tensor on that same grid. Bound, on 864 real test windows
    (before and after one QAT epoch): mean <= 0.15 LSB of the output scale, p99 <= 1, max <= 2 LSB (measured: mean
    0.02-0.06, p99 1, max 2). With one grid per concat input (before) these models gave mean 0.61-0.66, p99 2-7,
    max 6-27 LSB."""
    import test_quant_ops

    torch.manual_seed(0)
    m = getattr(test_quant_ops, cls_name)().eval()
    cal, x = ds.train.x[:256], ds.test.x

    def check(qm, g):
        # every concat input of free quantization is fake-quantized with the concat's int8 qparams
        cats = [op for op in g.graph.ops if op.kind == "concat"]
        assert cats
        for op in cats:
            want = g.qparams[op.output]
            for t in op.inputs:
                s, zp = qm._group_qparams(t)
                assert float(s) == pytest.approx(want.scale, rel=1e-5) and abs(int(zp) - want.zero_point) <= 1
        qm.eval()
        with torch.no_grad():
            fq = qm(torch.as_tensor(x)).double().numpy()
        _, logits = quant.simulate(g, x, dequantize=True)
        lsb = np.round(np.abs(fq - logits) / g.output_qparams.scale)
        assert lsb.mean() <= 0.15 and np.percentile(lsb, 99) <= 1 and lsb.max() <= 2, \
            (lsb.mean(), np.percentile(lsb, 99), lsb.max())

    qm = quant.prepare_qat(m, cal)
    check(qm, quant.convert(qm, cal))
    if cls_name == "CatInput":  # the training path: observers per tensor, one shared grid, gradients through it
        g, qm = quant.qat(m, ds.train, None, epochs=1, calib_x=cal, seed=0, return_model=True)
        check(qm, g)


# ---- bad input ---------------------------------------------------------------------------------------


class _Gelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(9 * 8, 6)

    def forward(self, x):
        return self.fc(nn.functional.gelu(x).flatten(1))


@pytest.mark.sanitize
def test_bad_input_errors(trained, ds):
    m, cal = trained("mubiconvlstm"), ds.train.x[:16]
    with pytest.raises(ValueError, match="model: expected a torch.nn.Module"):
        quant.prepare_qat("model", cal)
    with pytest.raises(ValueError, match=r"calib_x: expected windows \(N, C, T\)"):
        quant.prepare_qat(m, np.zeros(5, np.float32))
    bad = cal.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="calib_x: contains NaN"):
        quant.prepare_qat(m, bad)
    with pytest.raises(ValueError, match="averaging_constant"):
        quant.prepare_qat(m, cal, averaging_constant=0.0)
    with pytest.raises(ValueError, match="op 'gelu' \\(activation\\): activation 'gelu' is not supported"):
        quant.prepare_qat(_Gelu(), np.zeros((2, 9, 8), np.float32))
    with pytest.raises(ValueError, match="qm: expected a QATModel"):
        quant.convert(m, cal)
    qm = quant.prepare_qat(m, cal)
    with pytest.raises(ValueError, match=r"calib_x: windows of shape \(9, 64\)"):
        quant.convert(qm, cal[:, :, :64])
    with pytest.raises(ValueError, match="epochs: must be an integer >= 1"):
        quant.qat(m, ds.train, epochs=0)
    with pytest.raises(ValueError, match="freeze_bn_epochs"):
        quant.qat(m, ds.train, epochs=2, freeze_bn_epochs=3)
    with pytest.raises(ValueError, match="TrainConfig.lr"):
        quant.qat(m, ds.train, epochs=1, calib_x=cal, lr=-1.0)
    with pytest.raises(ValueError, match="train: expected a split"):
        quant.qat(m, "train", epochs=1)
    with pytest.raises(ValueError, match="ranges: tensor id 99"):
        quant.quantize(m, cal, ranges={99: (0.0, 1.0)})
    with pytest.raises(ValueError, match=r"ranges\[1\] \(tensor 'features_0'\).*lo <= hi"):
        quant.quantize(m, cal, ranges={1: (1.0, 0.0)})
    assert isinstance(qm, QATModel)
