"""Whole quantized zoo models: harcore's `simulate` against the TFLite Micro interpreter, bit for bit.

For cnn, mubiconvlstm (BiLSTM) and tinierhar (BiGRU + temporal attention): the torch model (seeded init,
BatchNorm statistics and affines randomized so that folding does real work) is quantized with
`harcore.quant.quantize`, calibrated on real windows of `harcore.data.load("default")`; the QGraph is
written with `harcore.quant.to_tflite` (no TensorFlow involved) and the `.tflite` runs in the
`tflite_micro` Python interpreter (TFLM reference kernels, the oracle CMSIS-NN follows) on real test
windows, on random int8 windows and on the all -128 / all 127 windows. Every output value must equal
`simulate`'s. On a mismatch the first graph op whose output differs is named (from `simulate`'s per-op
intermediates and TFLM's preserved tensors).

TFLM is the oracle for every op here, including the LSTM (TFLite's own LSTM uses other int16 sigmoid/tanh,
tflite-oracle.md section 5) and FULLY_CONNECTED (TFLite's reference FC now requantizes in float, section 4);
the models contain no dilated conv, the one case where TFLM itself is known-wrong (test_kernels_oracle.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zlib

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import torch  # noqa: E402

from harcore import data, models, quant  # noqa: E402
from harcore.quant.simulate import quantize_input  # noqa: E402
from harcore.graph import Graph  # noqa: E402
from harcore.quant.tflite_export import export, to_tflite_bytes, torch_order  # noqa: E402

pytestmark = [pytest.mark.oracle, pytest.mark.sanitize]

# model -> (real test windows, random int8 windows); the CNN costs TFLM ~50 ms a window
WINDOWS = {"cnn": (48, 16), "mubiconvlstm": (256, 64), "tinierhar": (256, 64)}
TOTALS = {"values": 0, "differing": 0}


@pytest.fixture(scope="module")
def default_data():
    return data.load("default")


@pytest.fixture(scope="module", autouse=True)
def report_totals():
    yield
    print(f"\nsimulate vs TFLM, whole models: {TOTALS['values']} output values compared, "
          f"{TOTALS['differing']} differ")


def quantized_model(name: str, ds) -> quant.QGraph:
    torch.set_num_threads(1)
    torch.manual_seed(zlib.crc32(name.encode()))
    m = models.create(name, in_channels=9, seq_len=128, num_classes=6)
    gen = torch.Generator().manual_seed(1)
    for mod in m.modules():
        if isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            n = mod.num_features
            mod.running_mean.copy_(torch.randn(n, generator=gen) * 0.3)
            mod.running_var.copy_(torch.rand(n, generator=gen) + 0.5)
            mod.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            mod.bias.data.copy_(torch.randn(n, generator=gen) * 0.2)
    m.eval()
    calib = ds.train.x[:: max(1, len(ds.train.x) // 128)][:128]  # 128 real windows, all classes
    return quant.quantize(m, calib)


def tflm_run(fb: bytes, xs: np.ndarray, preserve: bool = False):
    """TFLM outputs (N, ...) for int8 windows (N, C, T); with `preserve` also the interpreter (last window)."""
    from tflite_micro.python.tflite_micro import runtime

    cfg = runtime.InterpreterConfig.kPreserveAllTensors if preserve else runtime.InterpreterConfig.kAllocationRecording
    it = runtime.Interpreter.from_bytes(fb, arena_size=64 << 20, intrepreter_config=cfg)
    outs = []
    for x in xs:
        it.reset()  # LSTM state variables start from zero for every window
        it.set_input(x[None], 0)
        it.invoke()
        outs.append(np.array(it.get_output(0))[0])
    return (np.stack(outs), it) if preserve else np.stack(outs)


def truncated(g, op):
    """The QGraph cut after `op`, with `op`'s output as the graph output."""
    k = next(i for i, o in enumerate(g.graph.ops) if o is op)
    gr = Graph(tensors=list(g.graph.tensors), ops=list(g.graph.ops[: k + 1]), outputs=[op.output])
    kept = {o.name for o in gr.ops}
    return quant.QGraph(gr, list(g.qparams), {n: q for n, q in g.ops.items() if n in kept}, g.meta)


def first_differing_op(g, x) -> str:
    """Name the first graph op whose int8 output differs between simulate and TFLM on window `x`: each
    prefix of the graph is exported on its own and run in TFLM (TFLM cannot preserve every tensor of the
    unrolled GRU: it caps preserved buffers at 1024)."""
    _, inter = quant.simulate(g, x[None], return_intermediates=True)
    for op in g.graph.ops[1:]:
        theirs = tflm_run(to_tflite_bytes(truncated(g, op)), x[None])
        ours = inter[op.name]
        if theirs.shape != ours.shape or np.any(theirs != ours):
            d = np.count_nonzero(theirs != ours) if theirs.shape == ours.shape else f"shape {theirs.shape}"
            return f"op '{op.name}' ({op.kind}): {d} of {ours.size} values differ"
    return "(no graph op output differs on this window)"


@pytest.mark.parametrize("name", list(WINDOWS))
def test_model_matches_tflm(name, default_data, tmp_path):
    ds = default_data
    g = quantized_model(name, ds)
    path = quant.to_tflite(g, tmp_path / f"{name}.tflite")
    fb, _ = export(g)
    assert path.read_bytes() == fb  # the file is the export, deterministic
    n_real, n_rand = WINDOWS[name]
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    real = quantize_input(g, ds.test.x[rng.choice(len(ds.test.x), n_real, replace=False)])
    rand = rng.integers(-128, 128, (n_rand, 9, 128), dtype=np.int8)
    edges = np.stack([np.full((9, 128), -128, np.int8), np.full((9, 128), 127, np.int8)])
    for kind, xs in (("real", real), ("random", rand), ("edge", edges)):
        ours = quant.simulate(g, xs)
        ref = tflm_run(fb, xs)
        assert ours.dtype == np.int8 and ref.shape == ours.shape == (len(xs), 6)
        differ = ours != ref
        TOTALS["values"] += ours.size
        TOTALS["differing"] += int(differ.sum())
        print(f"{name} {kind}: {ours.size} values compared, {int(differ.sum())} differ")
        if differ.any():
            w = int(np.flatnonzero(differ.any(axis=1))[0])
            where = first_differing_op(g, xs[w])
            pytest.fail(f"{name} on {kind} windows: {int(differ.sum())} of {ours.size} outputs differ; "
                        f"window {w}: {where}")
    # the real windows are not degenerate: the model does not answer every window alike
    assert len({tuple(r) for r in quant.simulate(g, real)}) > 1


class _Convs(torch.nn.Module):
    """Mappings the zoo models leave out: a stride-2 conv and an even kernel (no TFLite SAME: PAD + VALID),
    a depthwise conv with multiplier 2 and fused ReLU6, average pool, mean over time, softmax output."""

    def __init__(self):
        super().__init__()
        nn = torch.nn
        self.c1 = nn.Conv1d(9, 8, 3, stride=2, padding=1)
        self.dw = nn.Conv1d(8, 16, 5, padding=2, groups=8)
        self.c2 = nn.Conv1d(16, 8, 4, padding=2)
        self.pool = nn.AvgPool1d(2)
        self.fc = nn.Linear(8, 6)

    def forward(self, x):
        x = torch.relu(self.c1(x))
        x = torch.nn.functional.relu6(self.dw(x))
        x = self.pool(torch.relu(self.c2(x)))
        return torch.softmax(self.fc(x.mean(dim=2)), dim=1)


class _Rnns(torch.nn.Module):
    """Unidirectional GRU then LSTM on a time slice, last step."""

    def __init__(self):
        super().__init__()
        self.gru = torch.nn.GRU(9, 12, batch_first=True)
        self.lstm = torch.nn.LSTM(12, 10, batch_first=True)
        self.fc = torch.nn.Linear(10, 6)

    def forward(self, x):
        x, _ = self.gru(x.transpose(1, 2)[:, :24])
        x, _ = self.lstm(x)
        return self.fc(x[:, -1])


@pytest.mark.parametrize("cls", [_Convs, _Rnns])
def test_more_mappings_match_tflm(cls, default_data):
    torch.manual_seed(0)
    g = quant.quantize(cls().eval(), default_data.train.x[::16][:128])
    fb, _ = export(g)
    xs = np.concatenate([quantize_input(g, default_data.test.x[:64]),
                         np.random.default_rng(1).integers(-128, 128, (16, 9, 128), dtype=np.int8)])
    ours, ref = quant.simulate(g, xs), tflm_run(fb, xs)
    TOTALS["values"] += ours.size
    TOTALS["differing"] += int(np.count_nonzero(ours != ref))
    print(f"{cls.__name__}: {ours.size} values compared, {int(np.count_nonzero(ours != ref))} differ")
    if np.any(ours != ref):
        pytest.fail(first_differing_op(g, xs[int(np.flatnonzero((ours != ref).any(axis=1))[0])]))
    if cls is _Convs:
        import tflite

        m = tflite.Model.GetRootAs(fb, 0)
        codes = [m.OperatorCodes(m.Subgraphs(0).Operators(i).OpcodeIndex()).BuiltinCode()
                 for i in range(m.Subgraphs(0).OperatorsLength())]
        assert codes.count(tflite.BuiltinOperator.PAD) == 2 and tflite.BuiltinOperator.DEPTHWISE_CONV_2D in codes


def test_single_channel_depthwise_is_a_depthwise_step_and_matches_tflm(default_data):
    """TinierHAR's first depthwise layer runs on its one input plane (Conv2d 1 -> 1 with a (5, 1) kernel, so
    groups = 1 = C_in): it lowers to the depthwise step (ch_mult 1) with the cost model's scratch, `to_tflite`
    writes it as DEPTHWISE_CONV_2D, and simulate equals TFLM on the graph cut after it. The 1 -> 4 pointwise conv
    behind it stays a conv step and a CONV_2D (as a depthwise it would need the generic ch_mult kernel)."""
    import tflite

    from harcore import cost

    g = quantized_model("tinierhar", default_data)
    op = next(o for o in g.graph.ops if o.name == "conv_blocks_0_conv_0_depthwise")
    assert (op.in_channels, op.out_channels, op.groups, tuple(op.kernel)) == (1, 1, 1, (5, 1))
    p = quant.lower(g)
    steps = {s.op: s for s in p.steps}
    step = steps[op.name]
    assert step.kind == "depthwise" and step.args["dw"]["ch_mult"] == 1
    assert steps["conv_blocks_0_conv_0_pointwise"].kind == "conv"
    layer_scratch = {r.name: r.scratch for r in cost.profile_graph(g.graph).layers}
    assert layer_scratch[op.name] == (p.bufs[step.scratch].size if step.scratch >= 0 else 0) > 0

    cut = truncated(g, next(o for o in g.graph.ops if o.name == "conv_blocks_0_conv_0_pointwise"))
    fb = to_tflite_bytes(cut)
    m = tflite.Model.GetRootAs(fb, 0)
    codes = [m.OperatorCodes(m.Subgraphs(0).Operators(i).OpcodeIndex()).BuiltinCode()
             for i in range(m.Subgraphs(0).OperatorsLength())]
    assert codes.count(tflite.BuiltinOperator.DEPTHWISE_CONV_2D) == 1
    assert codes.count(tflite.BuiltinOperator.CONV_2D) == 1
    xs = np.concatenate([quantize_input(g, default_data.test.x[:64]),
                         np.random.default_rng(3).integers(-128, 128, (16, 9, 128), dtype=np.int8)])
    ours, ref = quant.simulate(cut, xs), tflm_run(fb, xs)
    assert ours.shape == ref.shape and np.count_nonzero(ours != ref) == 0


def test_intermediates_match_tflm_op_by_op(default_data):
    """Every graph op's int8 output (not only the logits) equals the TFLM tensor that holds it."""
    g = quantized_model("mubiconvlstm", default_data)
    fb, views = export(g)
    x = quantize_input(g, default_data.test.x[:1])
    _, inter = quant.simulate(g, x, return_intermediates=True)
    _, it = tflm_run(fb, x, preserve=True)
    checked = []
    for op in g.graph.ops:
        idx, key = views[op.output]
        theirs = torch_order(np.array(it.GetTensor(idx, 0)["tensor_data"]), key)
        np.testing.assert_array_equal(theirs, inter[op.name], err_msg=f"op {op.name} ({op.kind})")
        checked.append(op.kind)
    assert {"conv", "pool", "rnn", "slice", "linear"} <= set(checked)


def test_batched_export_matches_single_window(default_data):
    """`batch_size` > 1 writes a fixed-batch model that computes every window as the batch-1 model does."""
    g = quantized_model("tinierhar", default_data)
    fb4, _ = export(g, batch_size=4)
    x = quantize_input(g, default_data.test.x[:8])
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(fb4, arena_size=64 << 20)
    got = []
    for k in (0, 4):
        it.reset()
        it.set_input(x[k:k + 4], 0)
        it.invoke()
        got.append(np.array(it.get_output(0)))
    np.testing.assert_array_equal(np.concatenate(got), quant.simulate(g, x))


def test_exported_file_structure(default_data):
    """The .tflite carries the QGraph's own int8 weights and the documented op mapping (read with the
    `tflite` schema package, no TensorFlow)."""
    import tflite

    g = quantized_model("mubiconvlstm", default_data)
    fb, _ = export(g)
    m = tflite.Model.GetRootAs(fb, 0)
    sg = m.Subgraphs(0)
    code = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    ops = [code[m.OperatorCodes(sg.Operators(i).OpcodeIndex()).BuiltinCode()] for i in range(sg.OperatorsLength())]
    assert ops.count("UNIDIRECTIONAL_SEQUENCE_LSTM") == 2 and ops.count("REVERSE_V2") == 2
    assert ops.count("CONV_2D") == 2 and ops.count("MAX_POOL_2D") == 2 and ops[-1] == "FULLY_CONNECTED"
    tensors = {sg.Tensors(i).Name().decode(): sg.Tensors(i) for i in range(sg.TensorsLength())}
    conv0 = next(t for n, t in tensors.items() if n.startswith("features_0/weight"))
    data_ = np.frombuffer(m.Buffers(conv0.Buffer()).DataAsNumpy().tobytes(), np.int8).reshape(conv0.ShapeAsNumpy())
    qop = g.ops["features_0"]
    np.testing.assert_array_equal(data_, qop.arrays["weight"].transpose(0, 2, 3, 1))  # OHWI
    np.testing.assert_array_equal(conv0.Quantization().ScaleAsNumpy(), qop.arrays["weight_scale"])
    inp = sg.Tensors(sg.Inputs(0))
    assert tuple(inp.ShapeAsNumpy()) == (1, 9, 128) and inp.Type() == tflite.TensorType.INT8
    assert inp.Quantization().ScaleAsNumpy()[0] == np.float32(g.input_qparams.scale)
    assert inp.Quantization().ZeroPointAsNumpy()[0] == g.input_qparams.zero_point


def test_export_does_not_import_tensorflow(tmp_path):
    code = (
        "import sys, numpy as np, torch\n"
        "from harcore import models, quant\n"
        "torch.manual_seed(0)\n"
        "g = quant.quantize(models.create('mubiconvlstm', in_channels=9, seq_len=128, num_classes=6).eval(),\n"
        "                   np.random.default_rng(0).normal(size=(16, 9, 128)).astype(np.float32))\n"
        f"quant.to_tflite(g, {str(tmp_path / 'm.tflite')!r})\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'keras', 'tflite_micro')]\n"
        "assert not bad, bad\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert (tmp_path / "m.tflite").stat().st_size > 1000


def test_bad_input(default_data):
    g = quantized_model("mubiconvlstm", default_data)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        export(g, batch_size=0)
    g.qparams[3] = quant.QParams(-1.0, 0)
    with pytest.raises(ValueError, match="to_tflite: tensor .*field 'scale' must be a positive finite float"):
        export(g)
