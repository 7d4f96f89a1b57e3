"""int8 for the ops users write: each newly supported op in a small model, quantize -> simulate -> to_tflite,
and the TFLite Micro interpreter on the exported file gives every output byte `simulate` gives (real windows of
the built-in dataset, random int8 windows, the all -128 / all 127 windows). Ops without an int8 form are a
QuantError naming the op, why, and what to write instead.

TFLM (tflite-micro, reference kernels) is the oracle, as in tests/test_tflite_oracle_models.py.
"""

from __future__ import annotations

import dataclasses
import os
import zlib

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from harcore import data, quant  # noqa: E402
from harcore.errors import QuantError  # noqa: E402
from harcore.quant.simulate import quantize_input  # noqa: E402
from harcore.quant.tflite_export import export  # noqa: E402

pytestmark = [pytest.mark.oracle]


@pytest.fixture(scope="module")
def ds():
    return data.load("default")


def tflm_run(fb: bytes, xs: np.ndarray) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(fb, arena_size=16 << 20)
    outs = []
    for x in xs:
        it.reset()
        it.set_input(x[None], 0)
        it.invoke()
        outs.append(np.array(it.get_output(0))[0])
    return np.stack(outs)


def builtin_ops(fb: bytes) -> list[str]:
    import tflite

    names = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}
    m = tflite.Model.GetRootAs(fb, 0)
    sg = m.Subgraphs(0)
    return [names[m.OperatorCodes(sg.Operators(i).OpcodeIndex()).BuiltinCode()] for i in range(sg.OperatorsLength())]


def check_bit_exact(model: nn.Module, ds, n_real: int = 48, n_rand: int = 16) -> tuple[quant.QGraph, list[str]]:
    """PTQ on 128 real windows, then simulate == TFLM on real, random and edge windows, every output byte."""
    torch.manual_seed(0)
    model.eval()
    g = quant.quantize(model, ds.train.x[::16][:128])
    fb, _ = export(g)
    name = type(model).__name__
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    shape = ds.test.x.shape[1:]
    real = quantize_input(g, ds.test.x[rng.choice(len(ds.test.x), n_real, replace=False)])
    rand = rng.integers(-128, 128, (n_rand, *shape), dtype=np.int8)
    edges = np.stack([np.full(shape, -128, np.int8), np.full(shape, 127, np.int8)])
    for kind, xs in (("real", real), ("random", rand), ("edge", edges)):
        ours, ref = quant.simulate(g, xs), tflm_run(fb, xs)
        assert ours.shape == ref.shape and ours.dtype == ref.dtype == np.int8
        differ = int(np.count_nonzero(ours != ref))
        assert differ == 0, f"{name} on {kind} windows: {differ} of {ours.size} output values differ from TFLM"
    # the outputs depend on the window (not a constant model that would agree trivially)
    assert len({r.tobytes() for r in quant.simulate(g, real)}) > 1
    return g, builtin_ops(fb)


def kinds(g: quant.QGraph) -> list[str]:
    return [op.kind for op in g.graph.ops]


# ---- models -------------------------------------------------------------------------------------------


class GlobalAvgHead(nn.Module):
    """The most common HAR head: conv -> BN -> ReLU -> AdaptiveAvgPool1d(1) -> flatten -> linear."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(9, 16, 5, padding=2)
        self.bn = nn.BatchNorm1d(16)
        self.conv2 = nn.Conv1d(16, 24, 3, stride=2, padding=1)
        self.gap = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(24, 6)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x)))
        x = self.conv2(x)  # no ReLU: the pooled values are signed, so the avg pool's rounding of negatives counts
        return self.fc(torch.flatten(self.gap(x), 1))


class GlobalMaxHead(nn.Module):
    """AdaptiveMaxPool1d(1) then squeeze, and a functional global average pool on a 2-D map."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(9, 12, 3, padding=1)
        self.gmp = nn.AdaptiveMaxPool1d(1)
        self.fc = nn.Linear(12, 6)

    def forward(self, x):
        return self.fc(self.gmp(torch.relu(self.conv(x))).squeeze(-1))


class MeanSum(nn.Module):
    """mean over time, sum over time (both TFLite reductions) and a mean over channels with keepdim."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(9, 8, 3, padding=1)
        self.fc = nn.Linear(8, 6)
        self.fc_sum = nn.Linear(8, 6)
        self.fc2 = nn.Linear(128, 6)

    def forward(self, x):
        y = self.conv(x)
        a = y.mean(dim=-1)
        b = y.sum(dim=2)
        c = torch.mean(y, dim=1, keepdim=True).flatten(1)
        return self.fc(a) + self.fc_sum(b) + self.fc2(c)


class Concats(nn.Module):
    """Inception-style channel concat of two conv branches (NHWC for the next conv), then a concat of the global
    average and max pools (a group of tied tensors through the pools) and of a linear's output."""

    def __init__(self):
        super().__init__()
        self.b3 = nn.Conv1d(9, 8, 3, padding=1)
        self.b5 = nn.Conv1d(9, 6, 5, padding=2)
        self.mix = nn.Conv1d(14, 10, 1)
        self.gap = nn.AdaptiveAvgPool1d(1)
        self.gmp = nn.AdaptiveMaxPool1d(1)
        self.side = nn.Linear(9, 4)
        self.fc = nn.Linear(24, 6)

    def forward(self, x):
        y = torch.cat([torch.relu(self.b3(x)), self.b5(x)], dim=1)
        y = torch.relu(self.mix(y))
        side = self.side(x.mean(dim=2))
        z = torch.cat([self.gap(y).flatten(1), self.gmp(y).flatten(1), side], dim=1)
        return self.fc(z)


class TimeConcat(nn.Module):
    """A concat along time (not the channel axis), one input twice."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(9, 8, 3, stride=2, padding=1)
        self.conv2 = nn.Conv1d(9, 8, 5, stride=4, padding=2)
        self.fc = nn.Linear(8 * 160, 6)

    def forward(self, x):
        y = self.conv(x)
        z = torch.cat([y, self.conv2(x), y], dim=2)
        return self.fc(z.flatten(1))


class Stacked(nn.Module):
    """torch.stack of the global average and max pools (a concat of unsqueezed tensors), then a linear."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(9, 10, 5, stride=2, padding=2)
        self.fc = nn.Linear(20, 6)

    def forward(self, x):
        y = self.conv(x)
        z = torch.stack([F.adaptive_avg_pool1d(y, 1).flatten(1), F.adaptive_max_pool1d(y, 1).flatten(1)], dim=1)
        return self.fc(z.flatten(1))


class CatLstm(nn.Module):
    """A BiLSTM output (its backward half stored in processing order: no strided view, so it is gathered first)
    concatenated with pooled conv features."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(9, 8, 5, stride=4, padding=2)
        self.lstm = nn.LSTM(8, 6, batch_first=True, bidirectional=True)
        self.fc = nn.Linear(12 * 32 + 8, 6)

    def forward(self, x):
        y = torch.relu(self.conv(x))
        h, _ = self.lstm(y.transpose(1, 2))
        return self.fc(torch.cat([h.flatten(1), F.adaptive_avg_pool1d(y, 1).flatten(1)], dim=1))


class CatInput(nn.Module):
    """The model input concatenated with a conv of it (the input's quantization joins the group)."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(9, 7, 3, padding=1)
        self.c2 = nn.Conv1d(16, 8, 3, padding=1)
        self.fc = nn.Linear(8 + 7, 6)

    def forward(self, x):
        a = self.c1(x)
        y = torch.relu(self.c2(torch.cat([x, a], dim=1)))
        return self.fc(torch.cat([F.adaptive_max_pool1d(y, 1).flatten(1), F.adaptive_avg_pool1d(a, 1).flatten(1)], 1))


class CatMany(nn.Module):
    """A channel concat of (C, H, W) conv branches with AdaptiveAvgPool2d(1), and a concat of 12 inputs (TFLM
    takes at most 10 per CONCATENATION: the export builds a tree)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(1, 4, (1, 5), padding=(0, 2))
        self.b = nn.Conv2d(1, 3, (3, 3), padding=1)
        self.convs = nn.ModuleList(nn.Conv1d(9, 2, 3, padding=1) for _ in range(12))
        self.fc = nn.Linear(7 + 24, 6)

    def forward(self, x):
        u = x.unsqueeze(1)
        p = F.adaptive_avg_pool2d(torch.cat([self.a(u), torch.relu(self.b(u))], dim=1), 1).flatten(1)
        many = torch.cat([F.adaptive_max_pool1d(c(x), 1) for c in self.convs], dim=1).flatten(1)
        return self.fc(torch.cat([p, many], 1))


class FixedCat(nn.Module):
    """Concats with inputs whose quantization TFLite fixes: a softmax output with a linear's (the softmax is
    requantized to the concat's: QUANTIZE), and a tanh with a sigmoid output (both requantized, the concat owns
    its range)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(9, 6)
        self.fc2 = nn.Linear(12, 6)
        self.fc3 = nn.Linear(12, 6)

    def forward(self, x):
        y = self.fc(x.mean(dim=2))
        a = self.fc2(torch.cat([torch.softmax(y, dim=1), y], dim=1))
        return self.fc3(torch.cat([torch.tanh(a), torch.sigmoid(a)], dim=1))


class Conv2dRows(nn.Module):
    """Conv2d with (1, k) kernels over a (1, C, T) image, a (C, 1) kernel across the sensor channels, a (1, 2)
    max pool and AdaptiveAvgPool2d(1)."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(1, 8, (1, 5), padding=(0, 2))
        self.pool = nn.MaxPool2d((1, 2))
        self.c2 = nn.Conv2d(8, 12, (1, 3), stride=(1, 2), padding=(0, 1))
        self.c3 = nn.Conv2d(12, 16, (9, 1))
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, 6)

    def forward(self, x):
        x = x.unsqueeze(1)
        x = self.pool(torch.relu(self.c1(x)))
        x = torch.relu(self.c2(x))
        x = self.c3(x)
        return self.fc(self.gap(x).flatten(1))


class Leaky(nn.Module):
    """nn.LeakyReLU (TFLM's int8 LEAKY_RELU, standalone: TFLite fuses no leaky activation), two slopes."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv1d(9, 8, 5, padding=2)
        self.a1 = nn.LeakyReLU(0.1)
        self.c2 = nn.Conv1d(8, 12, 3, stride=2, padding=1)
        self.a2 = nn.LeakyReLU()
        self.fc = nn.Linear(12, 6)

    def forward(self, x):
        y = self.a2(self.c2(self.a1(self.c1(x))))
        return self.fc(F.adaptive_avg_pool1d(y, 1).flatten(1))


class Adds(nn.Module):
    """ADD with a parameter (a per-channel offset, a (C, T) positional table, a scalar) and a broadcasting ADD of
    two activations (a sequence plus its mean over time)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(9, 8, 3, stride=2, padding=1)
        self.offset = nn.Parameter(torch.randn(8, 1) * 0.5)
        self.pos = nn.Parameter(torch.randn(8, 64) * 0.3)
        self.shift = nn.Parameter(torch.tensor(0.7))
        self.fc = nn.Linear(8, 6)

    def forward(self, x):
        y = self.conv(x) + self.offset
        y = torch.relu(y + self.pos)
        y = y + y.mean(dim=2, keepdim=True)
        return self.fc(F.adaptive_max_pool1d(y + self.shift, 1).flatten(1))


class Muls(nn.Module):
    """Broadcasting MUL of two activations with a per-position factor on either side ((T, 1) * (T, C) and
    (T, C) * (T, 1), as TinierHAR's attention weighting; C = 70: rows longer than the runtime's 64-byte row buffer
    and not a multiple of 4), and MUL by a scalar parameter."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(9, 70, 29)  # 128 -> 100 samples
        self.gate1, self.gate2 = nn.Linear(70, 1), nn.Linear(70, 1)
        self.scale = nn.Parameter(torch.tensor(0.8))
        self.fc = nn.Linear(70, 6)

    def forward(self, x):
        y = torch.relu(self.conv(x)).transpose(1, 2)  # (B, T, C)
        y = self.gate1(y) * y
        y = y * self.gate2(y)
        return self.fc(F.adaptive_max_pool1d((y * self.scale).transpose(1, 2), 1).flatten(1))


class ChannelPick(nn.Module):
    """Constant-index gathers: a reordering of the sensor channels by a buffer of indices and a 2-D index of
    overlapping segments along time (MLP-HAR's windows), then a conv."""

    def __init__(self):
        super().__init__()
        self.register_buffer("order", torch.tensor([6, 7, 8, 0, 1, 2, 3, 4, 5]))
        self.register_buffer("segments", torch.arange(0, 96, 8)[:, None] + torch.arange(32)[None, :])  # (12, 32)
        self.conv = nn.Conv1d(9, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 12, 6)

    def forward(self, x):
        y = torch.relu(self.conv(x[:, self.order]))  # (B, 8, 128)
        seg = y[:, :, self.segments]  # (B, 8, 12, 32)
        return self.fc(seg.mean(dim=3).flatten(1))


# ---- tests --------------------------------------------------------------------------------------------


def _global_avg_pool_window(g):  # one window over the whole map
    pool = next(op for op in g.graph.ops if op.name.startswith("gap"))
    assert pool.kind == "pool" and pool.pool == "avg" and tuple(pool.kernel) == (1, 64)


def _pool_tied(g):  # tied: no requantization
    pool = next(op for op in g.graph.ops if op.kind == "pool")
    assert g.qparams[pool.output] == g.qparams[pool.inputs[0]]


def _concat_one_quantization(g):  # TFLM's int8 CONCATENATION requires it
    for op in g.graph.ops:
        if op.kind == "concat":
            assert all(g.qparams[t] == g.qparams[op.output] for t in op.inputs)


def _row_kernels(g):
    convs = [op for op in g.graph.ops if op.kind == "conv"]
    assert [tuple(op.kernel) for op in convs] == [(1, 5), (1, 3), (9, 1)]


def _leaky_alphas(g):
    assert sorted(q.attrs["alpha"] for q in g.ops.values() if "alpha" in q.attrs) == [
        float(np.float32(0.01)), float(np.float32(0.1))]


def _add_inputs(g):
    adds = [op for op in g.graph.ops if op.kind == "add"]
    assert sorted(len(op.inputs) for op in adds) == [1, 1, 1, 2]


def _mul_rows_broadcast(g):  # a (T, 1) factor against contiguous rows, on either side, and a scalar parameter
    strides = sorted((s.args["input0_strides"][3], s.args["input1_strides"][3], s.args["dims"][3])
                     for s in quant.lower(g).steps if s.kind == "mul")
    assert strides == [(0, 1, 70), (1, 0, 70), (1, 0, 7000)], strides


# model, TFLite builtin ops (count, or None: present), graph op kinds (count, or None: present; 0: absent), lowered
# runtime steps (count), a model-specific check of the int8 graph, check_bit_exact options
BIT_EXACT = {
    "global_avg_pool": (GlobalAvgHead, {"AVERAGE_POOL_2D": None}, {}, {}, _global_avg_pool_window, {}),
    "global_max_pool": (GlobalMaxHead, {"MAX_POOL_2D": None}, {"globalpool": 0}, {}, _pool_tied, {}),
    "mean_and_sum_over_time": (MeanSum, {"SUM": None, "MEAN": None}, {"mean": 3}, {}, None, {}),
    "concat": (Concats, {"CONCATENATION": 2}, {"concat": 2}, {"copy_into": 5}, _concat_one_quantization, {}),
    "concat_along_time": (TimeConcat, {"CONCATENATION": None}, {"concat": None}, {}, None, {}),
    "concat_bilstm": (CatLstm, {}, {}, {}, _concat_one_quantization, {"n_real": 24, "n_rand": 8}),
    "concat_with_input": (CatInput, {}, {}, {}, _concat_one_quantization, {"n_real": 24, "n_rand": 8}),
    # the 12-input concat as a tree (10, 2, then those 2), plus the two 2-input concats
    "concat_many": (CatMany, {"CONCATENATION": 5}, {}, {}, _concat_one_quantization, {"n_real": 24, "n_rand": 8}),
    "concat_of_fixed_quantizations": (FixedCat, {"QUANTIZE": 3, "CONCATENATION": 2}, {}, {"clamp": 3}, None, {}),
    "stack": (Stacked, {"CONCATENATION": None}, {"concat": None}, {}, None, {}),
    "conv2d_with_row_kernels": (Conv2dRows, {"CONV_2D": 3, "AVERAGE_POOL_2D": None}, {}, {}, _row_kernels, {}),
    "leaky_relu": (Leaky, {"LEAKY_RELU": 2}, {}, {}, _leaky_alphas, {}),
    "add_with_parameter_and_broadcasting": (Adds, {"ADD": 4}, {}, {"add_bcast": 4}, _add_inputs, {}),
    "mul_broadcasting_and_by_parameter": (Muls, {"MUL": 3}, {}, {"mul": 3}, _mul_rows_broadcast, {}),
    "constant_index_gather": (ChannelPick, {"GATHER": None}, {"gather": None}, {}, None, {}),
}


@pytest.mark.parametrize("case", list(BIT_EXACT))
def test_new_op_is_bit_exact_with_tflm(case, ds):
    cls, tflite_ops, graph_kinds, steps, check, kw = BIT_EXACT[case]
    g, ops = check_bit_exact(cls(), ds, **kw)
    for name, n in tflite_ops.items():
        assert (name in ops) if n is None else ops.count(name) == n, (name, ops)
    for kind, n in graph_kinds.items():
        assert (kind in kinds(g)) if n is None else kinds(g).count(kind) == n, (kind, kinds(g))
    if steps:
        lowered = [s.kind for s in quant.lower(g).steps]
        assert {k: lowered.count(k) for k in steps} == steps, lowered
    if check is not None:
        check(g)


@pytest.mark.parametrize("cls", [Concats, Leaky, Adds])
def test_qat_runs_the_new_ops_and_converts_to_ptq(cls, ds):
    """Before fine-tuning, QAT's convert gives PTQ's graph (docs/int8.md), global pools, concats, LeakyReLU and
    ADD with a parameter included."""
    x = ds.train.x[::16][:128]
    torch.manual_seed(0)
    m = cls().eval()
    g = quant.quantize(m, x)
    qm = quant.prepare_qat(m, x)
    y = qm(torch.as_tensor(x[:4]))
    assert y.shape == (4, 6) and torch.isfinite(y).all()
    h = quant.convert(qm, x)
    assert [op.kind for op in h.graph.ops] == kinds(g) and "pool" in kinds(g)
    for a, b in zip(h.qparams, g.qparams):  # up to the float32 vs float64 evaluation of the ranges
        assert abs(a.scale - b.scale) <= 1e-5 * b.scale and abs(a.zero_point - b.zero_point) <= 1
    for op in h.graph.ops:
        if op.kind == "concat":
            assert all(h.qparams[t] == h.qparams[op.output] for t in op.inputs)
    assert quant.simulate(h, quantize_input(h, ds.test.x[:16])).shape == (16, 6)


def test_qgraph_with_new_ops_round_trips(ds, tmp_path):
    torch.manual_seed(0)
    g = quant.quantize(Concats().eval(), ds.train.x[:32])
    g.save(tmp_path / "m.hq8")
    h = quant.load(tmp_path / "m.hq8")
    x = quantize_input(g, ds.test.x[:8])
    assert np.array_equal(quant.simulate(g, x), quant.simulate(h, x))
    assert "CopyIntoArgs" in quant.lower(g).emit_cpp()


def test_new_ops_on_the_firmware_under_qemu(ds, monkeypatch):
    """The firmware runs the same runtime (the new kCopyInto, kLeakyRelu and kAddBcast steps included): global
    pools, concats, LeakyReLU and broadcasting / constant ADD on the Cortex-M33 under QEMU give simulate's bytes
    on 20 real windows."""
    from test_firmware_common import require_firmware_toolchain

    from harcore.deploy import validate

    require_firmware_toolchain(monkeypatch)
    for cls, want in ((Concats, {"copy_into": 5, "avg_pool": 1, "max_pool": 1}), (Leaky, {"leaky_relu": 2}),
                      (Adds, {"add_bcast": 4})):
        torch.manual_seed(0)
        g = quant.quantize(cls().eval(), ds.train.x[::16][:128])
        rep = validate(g, windows=20)
        assert rep.bit_exact and rep.exact_windows == 20 and rep.differing_values == 0 and rep.statuses_nonzero == 0
        kinds_run = [st.kind for st in rep.steps]
        assert {k: kinds_run.count(k) for k in want} == want


# ---- ops without an int8 form: a QuantError naming the op, why and what to write instead ---------------


class Reduce(nn.Module):
    """A mean or sum over `length` values of one axis, straight to the output (so every reduced byte is compared):
    time (dim 2, the first `length` samples of a conv output) or channels (dim 1, a conv with `length` channels)."""

    def __init__(self, length: int, dim: int = 2, keepdim: bool = False, op: str = "mean"):
        super().__init__()
        self.length, self.dim, self.keepdim, self.op = length, dim, keepdim, op
        self.conv = nn.Conv1d(9, length if dim == 1 else 6, 3, padding=1)

    def forward(self, x):
        y = self.conv(x)
        if self.dim == 2:
            y = y[:, :, :self.length]
        r = y.mean(self.dim, keepdim=self.keepdim) if self.op == "mean" else y.sum(self.dim, keepdim=self.keepdim)
        return r.flatten(1)


# TFLM's int8 MEAN folds 1/n into the multiplier by an integer division ((M << floor(log2 n)) / n), which differs
# from a multiplier quantized from s_in / (n * s_out) unless n is a power of two: lengths 3 ... 100 would be off by
# 1 LSB in a few outputs with the latter, 64 and 128 would not.
@pytest.mark.parametrize("length, dim, keepdim, op", [
    (3, 2, False, "mean"), (7, 2, True, "mean"), (50, 2, False, "mean"), (100, 2, False, "mean"),
    (100, 2, True, "mean"), (128, 2, False, "mean"), (100, 2, False, "sum"), (7, 2, True, "sum"),
    (12, 1, False, "mean"), (5, 1, True, "mean"), (12, 1, True, "sum"),
])
def test_mean_and_sum_over_any_length_are_bit_exact_with_tflm(length, dim, keepdim, op, ds):
    torch.manual_seed(length)
    g, ops = check_bit_exact(Reduce(length, dim, keepdim, op), ds, n_real=64, n_rand=32)
    assert ops.count("MEAN" if op == "mean" else "SUM") == 1, ops
    assert [s.kind for s in quant.lower(g).steps].count("reduce_sum") == 1


@pytest.mark.parametrize("length", [3, 50, 100])
def test_mean_is_bit_exact_over_an_octave_of_output_scales(length, ds):
    """Whether TFLM's (M << k) / n multiplier comes out normalized (and so the right shift equals that of a
    multiplier quantized from s_in / (n * s_out)) depends on where s_in / s_out falls within its octave: sweep the
    mean's output scale over one octave so both cases occur for every length."""
    torch.manual_seed(length)
    g = quant.quantize(Reduce(length).eval(), ds.train.x[::16][:128])
    (mean,) = [op for op in g.graph.ops if op.kind == "mean"]
    q0 = g.qparams[mean.output]
    rng = np.random.default_rng(length)
    xs = np.concatenate([quantize_input(g, ds.test.x[rng.choice(len(ds.test.x), 32, replace=False)]),
                         rng.integers(-128, 128, (32, *ds.test.x.shape[1:]), dtype=np.int8)])
    normalized = set()
    for j in range(12):
        g.qparams[mean.output] = dataclasses.replace(q0, scale=float(np.float32(q0.scale * 2.0 ** (j / 12))))
        (step,) = [s for s in quant.lower(g).steps if s.kind == "reduce_sum"]
        normalized.add(step.args["mult"] >= 1 << 30)
        ours, ref = quant.simulate(g, xs), tflm_run(export(g)[0], xs)
        differ = int(np.count_nonzero(ours != ref))
        assert differ == 0, f"mean over {length}, output scale x 2^({j}/12): {differ} of {ours.size} values differ"
    assert normalized == {True, False}


def test_mean_over_any_length_on_the_firmware_under_qemu(ds, monkeypatch):
    """The firmware runs the same kReduceSum step with the TFLM-style mean multiplier: a mean over 7 samples
    (keepdim) and over 12 channels give simulate's bytes on the Cortex-M33 under QEMU."""
    from test_firmware_common import require_firmware_toolchain

    from harcore.deploy import validate

    require_firmware_toolchain(monkeypatch)
    for length, dim, keepdim in ((7, 2, True), (12, 1, False)):
        torch.manual_seed(length)
        g = quant.quantize(Reduce(length, dim, keepdim).eval(), ds.train.x[::16][:128])
        rep = validate(g, windows=20)
        assert rep.bit_exact and rep.exact_windows == 20 and rep.differing_values == 0 and rep.statuses_nonzero == 0
        assert [st.kind for st in rep.steps].count("reduce_sum") == 1


class WithLayerNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(9, 8, 3, padding=1)
        self.norm = nn.LayerNorm(128)
        self.fc = nn.Linear(8, 6)

    def forward(self, x):
        return self.fc(self.norm(self.conv(x)).mean(dim=2))


class WithGelu(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(9, 8, 3, padding=1)
        self.fc = nn.Linear(8, 6)

    def forward(self, x):
        return self.fc(F.gelu(self.conv(x)).mean(dim=2))


class WithFFT(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(9 * 128, 6)

    def forward(self, x):
        return self.fc(torch.fft.fft(x, dim=-1).real.flatten(1))


class FunctionalLeaky(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(9, 6)

    def forward(self, x):
        return self.fc(F.leaky_relu(x, 0.2).mean(dim=2))


@pytest.mark.parametrize("cls, pattern", [
    (WithLayerNorm, r"op 'norm' \(layernorm\): kind 'layernorm' is not supported by the int8 path: .*no "
                    r"LAYER_NORM.*instead, use a BatchNorm"),
    (WithFFT, r"op '.*' \(dft\): .*no int8 TFLite kernel.*instead, compute spectral features"),
    (WithGelu, r"op 'gelu' \(activation\): activation 'gelu' is not supported by the int8 path: .*GELU.*write "
               r"nn\.ReLU"),
    (FunctionalLeaky, r"activation 'leaky_relu' written as F\.leaky_relu.*write nn\.LeakyReLU"),
])
def test_op_without_int8_form_is_a_clear_error(cls, pattern, ds):
    torch.manual_seed(0)
    with pytest.raises(QuantError, match=pattern) as e:
        quant.quantize(cls().eval(), ds.train.x[:16])
    assert isinstance(e.value, ValueError)  # callers catching ValueError keep working


def test_all_ops_without_int8_form_are_listed_at_once(ds):
    class Both(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(9, 8, 3, padding=1)
            self.norm = nn.LayerNorm(128)
            self.fc = nn.Linear(8, 6)

        def forward(self, x):
            return self.fc(F.silu(self.norm(self.conv(x))).mean(dim=2))

    with pytest.raises(QuantError, match=r"2 ops have no int8 form") as e:
        quant.quantize(Both().eval(), ds.train.x[:16])
    assert "op 'norm' (layernorm)" in str(e.value) and "activation 'silu'" in str(e.value)
