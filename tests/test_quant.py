"""harcore.quant: the int8 graph file, PTQ, lowering, the C++ runtime (simulate) and the emitted model.

Measured on the built-in HAPT subset (864 test windows, models trained 3 epochs here, seed 0):
int8 vs float top-1 agreement µBi-ConvLSTM 99.1 %, TinierHAR 97.3 %, small CNN 99.1 %.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
from quant_helpers import build_harness, run_harness

from harcore import cost, data, models, quant
from harcore._core import kernels as K
from harcore.graph import trace
from harcore.quant.arith import activation_range, quantize_multiplier
from harcore.quant.simulate import program, quantize_input

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def ds():
    return data.load("default")


def _train(m: nn.Module, ds, epochs: int = 3) -> nn.Module:
    torch.manual_seed(0)
    opt = torch.optim.Adam(m.parameters(), 3e-3)
    x, y = torch.as_tensor(ds.train.x), torch.as_tensor(ds.train.y).long()
    gen = torch.Generator().manual_seed(0)
    m.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(m(x[idx]), y[idx]).backward()
            opt.step()
    return m.eval()


ZOO = {"mubiconvlstm": {}, "tinierhar": {}, "cnn_small": {"widths": (16, 32), "pool_size": 8}}


@pytest.fixture(scope="module")
def trained(ds):
    cache = {}

    def get(key):
        if key not in cache:
            torch.manual_seed(0)
            name = "cnn" if key.startswith("cnn") else key
            m = _train(models.create(name, 9, 128, 6, **ZOO[key]), ds)
            cache[key] = (m, quant.quantize(m, ds.train.x[::8]))
        return cache[key]

    return get


# ---- int8 vs float ---------------------------------------------------------------------------------


@pytest.mark.sanitize
@pytest.mark.parametrize("key,min_agree", [("mubiconvlstm", 0.98), ("tinierhar", 0.95), ("cnn_small", 0.98)])
def test_int8_agrees_with_float(trained, ds, key, min_agree):
    m, g = trained(key)
    y, logits = quant.simulate(g, ds.test.x, dequantize=True)
    assert y.dtype == np.int8 and y.shape == (len(ds.test.x), 6)
    with torch.no_grad():
        ref = m(torch.as_tensor(ds.test.x)).double().numpy()
    agree = float((logits.argmax(1) == ref.argmax(1)).mean())
    assert agree >= min_agree, f"{key}: int8 and float agree on {agree:.3f} of the windows"
    # dequantized logits: mean error a small fraction of the logits' spread
    rel = np.abs(logits - ref).mean() / ref.std()
    assert rel < 0.08, f"{key}: mean |logit error| is {rel:.3f} of the float logits' std"
    # int8 input accepted directly
    np.testing.assert_array_equal(quant.simulate(g, quantize_input(g, ds.test.x[:7])), y[:7])


@pytest.mark.sanitize
def test_intermediates_are_keyed_by_op_and_track_float(trained, ds):
    m, g = trained("tinierhar")
    x = ds.test.x[:16]
    y, inter = quant.simulate(g, x, return_intermediates=True)
    assert list(inter) == [op.name for op in g.graph.ops]
    np.testing.assert_array_equal(inter[g.graph.ops[-1].name], y)
    from harcore.quant.ptq import FloatGraph, fold

    fg = FloatGraph(*fold(trace(m, (9, 128)), m))
    vals = fg.run(torch.as_tensor(x))
    for op in g.graph.ops:
        q = g.qparams[op.output]
        got = (inter[op.name].astype(np.float64) - q.zero_point) * q.scale
        want = vals[op.output].numpy()
        assert got.shape == want.shape, op.name
        span = q.scale * 255
        assert np.abs(got - want).mean() < 0.05 * span, f"{op.name}: int8 drifts from float"


# ---- per-op exactness against the bound kernels --------------------------------------------------------


def _conv_model(**kw) -> nn.Module:
    class One(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(9, 8, 5, **kw)

        def forward(self, x):
            return torch.relu(self.conv(x))

    torch.manual_seed(3)
    return One().eval()


@pytest.mark.sanitize
@pytest.mark.parametrize("kw", [{"padding": 2}, {"stride": 2}, {"padding": 2, "dilation": 2}])
def test_one_conv_graph_equals_the_kernel(ds, kw):
    m = _conv_model(**kw)
    g = quant.quantize(m, ds.train.x[:64])
    (op,) = [o for o in g.graph.ops if o.kind == "conv"]
    qop = g.ops[op.name]
    assert qop.act == "relu"
    qi, qo = g.input_qparams, g.qparams[op.output]
    x = quantize_input(g, ds.test.x[:10])
    nhwc = np.ascontiguousarray(x.transpose(0, 2, 1))[:, None]  # (N, 1, T, C)
    pairs = [quantize_multiplier(float(qi.scale) * float(s) / float(qo.scale)) for s in qop.arrays["weight_scale"]]
    out_t = g.graph.tensors[op.output].shape[1]
    ref = K.convolve_wrapper_s8(
        nhwc, np.ascontiguousarray(qop.arrays["weight"].transpose(0, 2, 3, 1)), qop.arrays["bias"],
        np.array([p[0] for p in pairs], np.int32), np.array([p[1] for p in pairs], np.int32),
        input_offset=-qi.zero_point, output_offset=qo.zero_point, stride=(1, op.stride[1]),
        padding=(0, op.pad[2]), dilation=(1, op.dilation[1]), activation=activation_range("RELU", qo.scale, qo.zero_point),
        output_shape=(1, out_t))
    got = quant.simulate(g, ds.test.x[:10])
    np.testing.assert_array_equal(got, ref[:, 0].transpose(0, 2, 1))


@pytest.mark.sanitize
def test_bilstm_step_equals_two_kernel_passes(trained, ds):
    _, g = trained("mubiconvlstm")
    y, inter = quant.simulate(g, ds.test.x[:6], return_intermediates=True)
    op = g.op("lstm")
    qop = g.ops["lstm"]
    x = inter[g.graph.ops[[o.output for o in g.graph.ops].index(op.inputs[0])].name]  # (N, T, I)
    qi, qh = g.qparams[op.inputs[0]], g.qparams[op.output]
    H = op.out_channels
    halves = []
    for d in range(2):
        w_ih = qop.arrays[f"w_ih{d}"].reshape(4, H, -1)
        w_hh = qop.arrays[f"w_hh{d}"].reshape(4, H, H)
        bias = qop.arrays[f"bias{d}"].reshape(4, H).astype(np.int64)
        cell = qop.attrs[f"cell_scale{d}"]
        i32 = lambda v: np.asarray(v, np.int32)  # noqa: E731
        q_in = [quantize_multiplier(qi.scale * float(s) / 2.0**-12) for s in qop.arrays[f"w_ih_scale{d}"]]
        q_h = [quantize_multiplier(qh.scale * float(s) / 2.0**-12) for s in qop.arrays[f"w_hh_scale{d}"]]
        xin = x[:, ::-1].copy() if d else x
        out = K.lstm_unidirectional_s8(
            np.ascontiguousarray(xin), w_ih, w_hh, i32(bias - qi.zero_point * w_ih.astype(np.int64).sum(2)),
            i32(-qh.zero_point * w_hh.astype(np.int64).sum(2)), i32([q[0] for q in q_in]), i32([q[1] for q in q_in]),
            i32([q[0] for q in q_h]), i32([q[1] for q in q_h]), input_offset=-qi.zero_point, output_offset=qh.zero_point,
            forget_to_cell=quantize_multiplier(2.0**-15), input_to_cell=quantize_multiplier(2.0**-30 / cell),
            output_quant=quantize_multiplier(2.0**-30 / qh.scale), cell_scale_power=int(np.log2(cell)))
        halves.append(out[:, ::-1] if d else out)
    np.testing.assert_array_equal(inter["lstm"], np.concatenate(halves, axis=2))


# ---- arena vs the cost model ----------------------------------------------------------------------------


@pytest.mark.sanitize
@pytest.mark.parametrize("name", ["cnn", "mubiconvlstm", "tinierhar"])
def test_arena_equals_cost_model_peak_sram(ds, name):
    torch.manual_seed(0)
    m = models.create(name, 9, 128, 6).eval()
    g = quant.quantize(m, ds.train.x[:32])
    p = quant.lower(g)
    assert p.arena_size == cost.profile(m, (9, 128)).total.peak_sram
    assert (p.input_size, p.output_size) == (9 * 128, 6)
    y = quant.simulate(g, ds.test.x[:3])  # the plan runs (buffers that overlap in time would corrupt data)
    assert y.shape == (3, 6)


# ---- the file format -------------------------------------------------------------------------------------


def test_save_load_roundtrip(trained, ds, tmp_path):
    _, g = trained("mubiconvlstm")
    path = tmp_path / "m.hq8"
    g.save(path)
    h = quant.load(path)
    assert h.qparams == g.qparams and h.graph.to_dict() == g.graph.to_dict()
    for name, q in g.ops.items():
        assert h.ops[name].act == q.act and h.ops[name].attrs == q.attrs
        for a, v in q.arrays.items():
            assert h.ops[name].arrays[a].dtype == v.dtype
            np.testing.assert_array_equal(h.ops[name].arrays[a], v)
    np.testing.assert_array_equal(quant.simulate(h, ds.test.x[:20]), quant.simulate(g, ds.test.x[:20]))


def _rewrite(src: Path, dst: Path, edit_json=None, edit_array=None) -> Path:
    with zipfile.ZipFile(src) as zi, zipfile.ZipFile(dst, "w") as zo:
        for item in zi.namelist():
            data_ = zi.read(item)
            if item == "qgraph.json" and edit_json:
                d = json.loads(data_)
                edit_json(d)
                data_ = json.dumps(d).encode()
            if edit_array and item == edit_array[0]:
                import io

                buf = io.BytesIO()
                np.save(buf, edit_array[1])
                data_ = buf.getvalue()
            zo.writestr(item, data_)
    return dst


def test_load_rejects_bad_files(trained, tmp_path):
    _, g = trained("mubiconvlstm")
    good = tmp_path / "good.hq8"
    g.save(good)
    raw = good.read_bytes()
    (tmp_path / "trunc.hq8").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"trunc\.hq8.*(truncated|not a zip)"):
        quant.load(tmp_path / "trunc.hq8")
    cases = [
        (lambda d: d.update(version=2), r"field 'version' is 2"),
        (lambda d: d.update(format="x"), r"field 'format'"),
        (lambda d: d["qparams"].__setitem__(3, [0.0, 0]), r"tensor '.*': field 'scale' must be a positive"),
        (lambda d: d["qparams"].__setitem__(3, [-1.0, 0]), r"field 'scale' must be a positive"),
        (lambda d: d["qparams"].__setitem__(2, [0.1, 200]), r"field 'zero_point' must be an int in \[-128, 127\]"),
        (lambda d: d["ops"]["fc"].update(act="gelu"), r"op 'fc' \(linear\): field 'act'"),
        (lambda d: d["ops"]["fc"]["arrays"].remove("bias"), r"op 'fc' \(linear\): array 'bias' is missing"),
        (lambda d: d["ops"]["lstm"]["attrs"].update(cell_scale0=0.3), r"attr 'cell_scale0' must be a positive power"),
    ]
    for i, (edit, msg) in enumerate(cases):
        path = _rewrite(good, tmp_path / f"bad{i}.hq8", edit_json=edit)
        with pytest.raises(ValueError, match=rf"bad{i}\.hq8.*" + msg):
            quant.load(path)
    w = g.ops["fc"].arrays["weight"].copy()
    bad_dtype = _rewrite(good, tmp_path / "dtype.hq8", edit_array=("arrays/fc/weight.npy", w.astype(np.int16)))
    with pytest.raises(ValueError, match=r"op 'fc' \(linear\): array 'weight' must have dtype int8"):
        quant.load(bad_dtype)
    w[0, 0] = -128
    with pytest.raises(ValueError, match=r"array 'weight' holds -128"):
        quant.load(_rewrite(good, tmp_path / "m128.hq8", edit_array=("arrays/fc/weight.npy", w)))
    with pytest.raises(ValueError, match=r"array 'weight' must have shape"):
        quant.load(_rewrite(good, tmp_path / "shape.hq8", edit_array=("arrays/fc/weight.npy", w[:, :3].copy())))


# ---- unsupported input -----------------------------------------------------------------------------------


def test_unsupported_ops_are_named(ds):
    class Sig(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(9, 4, 3)
            self.act = nn.GELU()
            self.fc = nn.Linear(4 * 126, 6)

        def forward(self, x):
            return self.fc(self.act(self.conv(x)).flatten(1))

    with pytest.raises(ValueError, match=r"op 'act' \(activation\): activation 'gelu' is not supported by the int8"):
        quant.quantize(Sig().eval(), ds.train.x[:8])

    class LoneBN(nn.Module):
        def __init__(self):
            super().__init__()
            self.bn = nn.BatchNorm1d(9 * 128)  # on flat features: not foldable, no depthwise 1x1 either
            self.fc = nn.Linear(9 * 128, 6)

        def forward(self, x):
            return self.fc(self.bn(x.flatten(1)))

    with pytest.raises(ValueError, match=r"op 'bn' \(batchnorm\): cannot be folded"):
        quant.quantize(LoneBN().eval(), ds.train.x[:8])
    with pytest.raises(ValueError, match=r"calibration_x must be \(N, C, T\)"):
        quant.quantize(LoneBN().eval(), np.zeros((0, 9, 128), np.float32))


@pytest.mark.sanitize
def test_simulate_rejects_wrong_input_shape(trained, ds):
    _, g = trained("mubiconvlstm")
    with pytest.raises(ValueError, match=r"simulate: input must have shape \(N, 9, 128\)"):
        quant.simulate(g, ds.test.x[:2, :, :64])


# ---- the emitted firmware model -----------------------------------------------------------------------------


@pytest.mark.parametrize("key,flags", [("mubiconvlstm", []), ("tinierhar", []),
                                       ("tinierhar", ["-g", "-fsanitize=address,undefined",
                                                      "-fno-sanitize-recover=undefined"])],
                         ids=["mubiconvlstm", "tinierhar", "tinierhar-asan-ubsan"])
def test_emitted_cpp_builds_and_matches_simulate(trained, ds, tmp_path, key, flags):
    """The firmware path: the emitted model + runtime + kernels built as a plain program (one variant under
    ASan/UBSan with an arena of exactly arena_size bytes) gives simulate's bytes."""
    _, g = trained(key)
    p = program(g)
    src = p.emit_cpp("harcore_model")
    assert '#include "runtime/harcore_runtime.hpp"' in src and "extern const harcore::rt::Model harcore_model" in src
    exe = build_harness(p, tmp_path, ["-Werror", *flags])
    x = ds.test.x[:40]
    np.testing.assert_array_equal(run_harness(exe, p, g, x), quant.simulate(g, x).reshape(len(x), -1))
