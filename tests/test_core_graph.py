"""The C++ core: shape inference (vs torch), validation errors, binding robustness, the cost model's
hand-checkable figures (docs/cost-model.md, docs/cmsis-nn.md §5) and the
batch API."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn as nn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harcore import _core
from harcore.graph import ACT_KINDS, OP_KINDS, Graph, Op

sanitize = pytest.mark.sanitize


# ---- helpers ---------------------------------------------------------------------------------------


class Builder:
    """Builds a harcore.graph.Graph; shapes are filled in by the C++ propagate_shapes."""

    def __init__(self) -> None:
        self.g = Graph()

    def input(self, shape, name="x") -> int:
        return self.g.input(name, tuple(shape))

    def op(self, kind, inputs, shape=(), name=None, **kw) -> int:
        op = Op(kind, name or f"{kind}{len(self.g.ops)}", inputs=list(inputs), **kw)
        return self.g.add_op(op, tuple(shape))

    def core(self, outputs=None) -> _core.Graph:
        self.g.outputs = list(outputs) if outputs is not None else [len(self.g.tensors) - 1]
        c = self.g.to_core()
        _core.propagate_shapes(c)
        _core.validate(c)
        return c


def single_op_graph(in_shape, kind, **kw) -> _core.Graph:
    b = Builder()
    x = b.input(in_shape)
    b.op(kind, [x], **kw)
    return b.core()


def conv_kw(cin, cout, k, stride=1, dil=1, pad=(0, 0), groups=1, bias=True, two_d=False, kh=1, sh=1, dh=1, ph=(0, 0)):
    return dict(in_channels=cin, out_channels=cout, groups=groups, bias=bias, kernel=(kh if two_d else 1, k),
                stride=(sh if two_d else 1, stride), dilation=(dh if two_d else 1, dil),
                pad=(ph[0], ph[1], pad[0], pad[1]) if two_d else (0, 0, pad[0], pad[1]))


def torch_out_or_none(mod, x):
    try:
        with torch.no_grad():
            return tuple(mod(x).shape[1:])
    except RuntimeError:
        return None


def core_out_or_none(make):
    try:
        g = make()
    except ValueError:
        return None
    return tuple(g.tensors[g.ops[-1].output].shape)


# ---- shape inference vs torch ----------------------------------------------------------------------


@sanitize
@settings(max_examples=80, deadline=None)
@given(
    cin_g=st.integers(1, 4), cout_g=st.integers(1, 4), groups=st.integers(1, 3), k=st.integers(1, 7),
    stride=st.integers(1, 4), dil=st.integers(1, 3), pad=st.integers(0, 4), t=st.integers(1, 40),
)
def test_conv1d_shape_matches_torch(cin_g, cout_g, groups, k, stride, dil, pad, t):
    cin, cout = cin_g * groups, cout_g * groups
    mod = nn.Conv1d(cin, cout, k, stride=stride, dilation=dil, padding=pad, groups=groups)
    want = torch_out_or_none(mod, torch.zeros(1, cin, t))
    got = core_out_or_none(lambda: single_op_graph((cin, t), "conv", **conv_kw(cin, cout, k, stride, dil, (pad, pad),
                                                                                   groups)))
    assert got == want


@sanitize
@settings(max_examples=60, deadline=None)
@given(
    cin=st.integers(1, 4), cout=st.integers(1, 4), kh=st.integers(1, 4), kw=st.integers(1, 4), sh=st.integers(1, 3),
    sw=st.integers(1, 3), dh=st.integers(1, 2), dw=st.integers(1, 2), ph=st.integers(0, 2), pw=st.integers(0, 2),
    h=st.integers(1, 12), w=st.integers(1, 12),
)
def test_conv2d_shape_matches_torch(cin, cout, kh, kw, sh, sw, dh, dw, ph, pw, h, w):
    mod = nn.Conv2d(cin, cout, (kh, kw), stride=(sh, sw), dilation=(dh, dw), padding=(ph, pw))
    want = torch_out_or_none(mod, torch.zeros(1, cin, h, w))
    kw_ = conv_kw(cin, cout, kw, sw, dw, (pw, pw), two_d=True, kh=kh, sh=sh, dh=dh, ph=(ph, ph))
    got = core_out_or_none(lambda: single_op_graph((cin, h, w), "conv", **kw_))
    assert got == want


@sanitize
@settings(max_examples=120, deadline=None)
@given(
    kind=st.sampled_from(["max", "avg"]), k=st.integers(1, 6), stride=st.integers(1, 5), pad=st.integers(0, 3),
    dil=st.integers(1, 3), ceil=st.booleans(), t=st.integers(1, 30), two_d=st.booleans(), h=st.integers(1, 9),
)
def test_pool_shape_matches_torch(kind, k, stride, pad, dil, ceil, t, two_d, h):
    if kind == "avg":
        dil = 1
    c = 3
    if two_d:
        mod = (nn.MaxPool2d((k, k), (stride, stride), (pad, pad), (dil, dil), ceil_mode=ceil) if kind == "max"
               else nn.AvgPool2d((k, k), (stride, stride), (pad, pad), ceil_mode=ceil))
        x = torch.zeros(1, c, h, t)
        kwargs = dict(pool=kind, kernel=(k, k), stride=(stride, stride), dilation=(dil, dil), pad=(pad,) * 4,
                      ceil_mode=ceil)
        shape = (c, h, t)
    else:
        mod = (nn.MaxPool1d(k, stride, pad, dil, ceil_mode=ceil) if kind == "max"
               else nn.AvgPool1d(k, stride, pad, ceil_mode=ceil))
        x = torch.zeros(1, c, t)
        kwargs = dict(pool=kind, kernel=(1, k), stride=(1, stride), dilation=(1, dil), pad=(0, 0, pad, pad),
                      ceil_mode=ceil)
        shape = (c, t)
    want = torch_out_or_none(mod, x)
    got = core_out_or_none(lambda: single_op_graph(shape, "pool", **kwargs))
    assert got == want


@sanitize
def test_other_kinds_shapes_match_torch():
    # RNN, linear over leading dims, global pool, softmax, slice, mean, transpose, matmul, concat, reshape
    lstm = nn.LSTM(5, 7, batch_first=True, bidirectional=True)
    assert core_out_or_none(lambda: single_op_graph((11, 5), "rnn", in_channels=5, out_channels=7,
                                                    bidirectional=True)) == tuple(lstm(torch.zeros(1, 11, 5))[0].shape[1:])
    gru = nn.GRU(4, 6, batch_first=True)
    assert core_out_or_none(lambda: single_op_graph((9, 4), "rnn", in_channels=4, out_channels=6, cell="gru")) == \
        tuple(gru(torch.zeros(1, 9, 4))[0].shape[1:])
    lin = nn.Linear(6, 3)
    assert core_out_or_none(lambda: single_op_graph((4, 5, 6), "linear", in_channels=6, out_channels=3)) == \
        tuple(lin(torch.zeros(1, 4, 5, 6)).shape[1:])
    x = torch.zeros(1, 4, 5, 6)
    assert core_out_or_none(lambda: single_op_graph((4, 5, 6), "globalpool", pool="avg")) == (4,)
    assert core_out_or_none(lambda: single_op_graph((4, 5, 6), "globalpool", keep_dims=True)) == \
        tuple(nn.AdaptiveAvgPool2d(1)(x).shape[1:])
    assert core_out_or_none(lambda: single_op_graph((4, 5, 6), "slice", axis=1, start=1, length=3)) == \
        tuple(x[:, :, 1:4].shape[1:])
    assert core_out_or_none(lambda: single_op_graph((4, 5, 6), "slice", axis=2, start=5, length=1, squeeze=True)) == \
        tuple(x[:, :, :, 5].shape[1:])
    assert core_out_or_none(lambda: single_op_graph((4, 5, 6), "mean", axis=1)) == tuple(x.mean(2).shape[1:])
    assert core_out_or_none(lambda: single_op_graph((4, 5, 6), "mean", axis=2, keep_dims=True)) == \
        tuple(x.mean(3, keepdim=True).shape[1:])
    assert core_out_or_none(lambda: single_op_graph((4, 5, 6), "transpose", perm=(2, 0, 1))) == \
        tuple(x.permute(0, 3, 1, 2).shape[1:])
    assert core_out_or_none(lambda: single_op_graph((4, 5, 6), "softmax", axis=2)) == (4, 5, 6)
    b = Builder()
    a = b.input((3, 4, 5), "a")
    m = b.input((3, 5, 2), "m")
    b.op("matmul", [a, m])
    assert tuple(b.core().tensors[2].shape) == tuple(torch.matmul(torch.zeros(3, 4, 5), torch.zeros(3, 5, 2)).shape)
    b = Builder()
    a = b.input((3, 4), "a")
    m = b.input((3, 6), "m")
    b.op("concat", [a, m, a], axis=1)
    assert tuple(b.core().tensors[2].shape) == (3, 14)
    b = Builder()
    a = b.input((3, 4), "a")
    b.op("reshape", [a], shape=(12,))
    assert tuple(b.core().tensors[1].shape) == (12,)


@sanitize
def test_layernorm_gather_dft_shapes_match_torch():
    x = torch.randn(1, 4, 5, 6)
    for axis in (0, 1, 2):
        ln = nn.LayerNorm(x.shape[axis + 1:])
        assert core_out_or_none(lambda: single_op_graph((4, 5, 6), "layernorm", axis=axis, bias=True)) == \
            tuple(ln(x).shape[1:])
    for axis, idx in [(0, torch.tensor([3, 0, 0])), (1, torch.tensor([[0, 1, 2], [2, 3, 4]])), (2, torch.tensor(5)),
                      (2, torch.tensor([[[1]], [[0]]]))]:
        want = tuple(x[(slice(None),) * (axis + 1) + (idx,)].shape[1:])
        got = core_out_or_none(lambda: single_op_graph((4, 5, 6), "gather", axis=axis,
                                                       indices=tuple(idx.reshape(-1).tolist()),
                                                       index_shape=tuple(idx.shape)))
        assert got == want, (axis, idx)
    spec = torch.fft.fft(x)
    rspec = torch.fft.rfft(x)
    assert core_out_or_none(lambda: single_op_graph((4, 5, 6), "dft", length=6)) == tuple(spec.real.shape[1:])
    assert core_out_or_none(lambda: single_op_graph((4, 5, 6), "dft", length=4, imag=True)) == \
        tuple(rspec.imag.shape[1:])
    assert core_out_or_none(lambda: single_op_graph((4, 5, 6), "add", param_shape=(5, 1))) == (4, 5, 6)


# ---- validation errors -----------------------------------------------------------------------------


def _conv_graph():
    b = Builder()
    x = b.input((9, 128))
    y = b.op("conv", [x], name="conv1", **conv_kw(9, 16, 5, pad=(2, 2)))
    b.op("conv", [y], name="conv2", **conv_kw(16, 16, 3, pad=(1, 1)))
    return b.core()


BAD = [
    # (op index, attribute, value, field named in the message, fragment)
    (2, "kernel", [1, 0], "kernel", "must be >= 1"),
    (2, "stride", [1, -1], "stride", "must be >= 1"),
    (2, "dilation", [1, 0], "dilation", "must be >= 1"),
    (2, "pad", [0, 0, -1, 0], "pad", "must be >= 0"),
    (2, "pad", [1, 0, 1, 1], "pad", "must be 0 for a 1-D op"),
    (2, "groups", 3, "groups", "does not divide"),
    (2, "groups", 0, "groups", "must be >= 1"),
    (2, "in_channels", 8, "in_channels", "does not match"),
    (2, "out_channels", 0, "out_channels", "must be >= 1"),
    (2, "inputs", [7], "inputs", "is not a tensor id"),
    (2, "inputs", [2], "inputs", "used before"),
    (1, "inputs", [], "inputs", "has 0 tensor ids"),
    (2, "output", 9, "output", "is not a tensor id"),
    (2, "output", 1, "output", "already written"),
    (2, "kernel", [1, 200], "kernel", "larger than the padded input"),
    (2, "kind", 99, "kind", "not a known op kind"),
    (2, "out_channels", 2**62, "out_channels", "overflow"),
    (1, "kernel", [1, 2**40], "kernel", ""),
]


@sanitize
@pytest.mark.parametrize("idx,attr,value,field,frag", BAD)
def test_validation_errors_name_op_and_field(idx, attr, value, field, frag):
    g = _conv_graph()
    ops = g.ops
    setattr(ops[idx], attr, value)
    g.ops = ops
    with pytest.raises(_core.GraphError) as ei:
        _core.validate(g)
    msg = str(ei.value)
    name = ["x", "conv1", "conv2"][idx]
    assert msg.startswith(f"op {idx} '{name}' ("), msg
    assert f"field '{field}'" in msg, msg
    assert frag in msg, msg
    assert isinstance(ei.value, ValueError)


@sanitize
def test_validation_errors_other_kinds():
    def err(in_shape, kind, field, **kw):
        b = Builder()
        x = b.input(in_shape)
        b.op(kind, [x], name="bad", **kw)
        b.g.outputs = [1]
        c = b.g.to_core()
        with pytest.raises(_core.GraphError, match=rf"^op 1 'bad' \({kind}\): field '{field}'"):
            _core.validate(c)

    err((4, 6), "linear", "in_channels", in_channels=5, out_channels=2)
    err((4, 6), "rnn", "in_channels", in_channels=4, out_channels=2)
    err((4, 6), "slice", "length", axis=1, start=4, length=3)
    err((4, 6), "slice", "axis", axis=2, start=0, length=1)
    err((4, 6), "transpose", "perm", perm=(0, 0))
    err((4, 6), "mul", "param_shape", param_shape=(3,))
    err((4, 6), "batchnorm", "in_channels", in_channels=6)
    err((4, 6), "pool", "pad", kernel=(1, 2), stride=(1, 2), pad=(0, 0, 2, 2))
    err((4, 6, 2), "rnn", "inputs", in_channels=2, out_channels=3)
    err((4, 6), "add", "param_shape", param_shape=(4, 5))
    err((4, 6), "layernorm", "axis", axis=2, bias=True)
    err((4, 6), "layernorm", "axis", axis=-1)
    err((4, 6), "gather", "axis", axis=2, indices=(0,), index_shape=(1,))
    err((4, 6), "gather", "indices", axis=1, indices=(0, 6), index_shape=(2,))
    err((4, 6), "gather", "indices", axis=0, indices=(-1,), index_shape=(1,))
    err((4, 6), "gather", "indices", axis=1, indices=(0, 1, 2), index_shape=(2,))
    err((4, 6), "gather", "index_shape", axis=1, indices=(), index_shape=(0,))
    err((4, 6), "dft", "length", length=0)
    err((4, 6), "dft", "length", length=7)
    b = Builder()
    x = b.input((4, 6))
    b.op("add", [x, x], name="bad", param_shape=(6,))
    b.g.outputs = [1]
    with pytest.raises(_core.GraphError, match=r"^op 1 'bad' \(add\): field 'param_shape'.*two activations"):
        _core.validate(b.g.to_core())
    with pytest.raises(_core.GraphError, match=r"field 'indices' \[1\] = 6 is outside dimension 1 of size 6"):
        single_op_graph((4, 6), "gather", axis=1, indices=(0, 6), index_shape=(2,))
    # unknown enum values arriving as plain ints are rejected, never undefined behaviour
    g = single_op_graph((4, 6), "activation", act="relu")
    ops = g.ops
    ops[1].act = 77
    g.ops = ops
    with pytest.raises(_core.GraphError, match=r"field 'act' = 77"):
        _core.validate(g)
    g = single_op_graph((4, 6), "rnn", in_channels=6, out_channels=3)
    ops = g.ops
    ops[1].cell = -5
    g.ops = ops
    with pytest.raises(_core.GraphError, match=r"field 'cell' = -5"):
        _core.validate(g)


@sanitize
def test_recorded_shape_mismatch_and_outputs():
    b = Builder()
    x = b.input((9, 128))
    b.op("conv", [x], shape=(16, 127), name="c", **conv_kw(9, 16, 5, pad=(2, 2)))
    b.g.outputs = [1]
    with pytest.raises(_core.GraphError, match=r"op 1 'c' \(conv\): field 'output'.*\(16, 127\).*\(16, 128\)"):
        _core.validate(b.g.to_core())
    c = b.core()  # propagate fixes the recorded shape
    assert list(c.tensors[1].shape) == [16, 128]
    c.outputs = [5]
    with pytest.raises(_core.GraphError, match="field 'outputs'"):
        _core.validate(c)


@sanitize
def test_huge_python_ints_are_value_errors():
    op = _core.Op()
    for attr, v in [("in_channels", 2**63), ("out_channels", -(2**63) - 1), ("output", 2**31), ("axis", -(2**31) - 1),
                    ("kernel", [1, 2**64]), ("pad", [0, 0, 0]), ("inputs", [2**40]), ("kind", 2**33),
                    ("param_shape", [2**70])]:
        with pytest.raises(ValueError):
            setattr(op, attr, v)
    with pytest.raises(ValueError):
        _core.Tensor("t", [2**63])
    with pytest.raises(ValueError):
        _core.infer_shape(_conv_graph(), 3)


# ---- fuzz of the raw binding -----------------------------------------------------------------------

_int = st.one_of(st.integers(-3, 20), st.integers(-(2**70), 2**70), st.sampled_from([2**31, 2**62, 2**63 - 1, -(2**63)]))
_FIELDS = {
    "in_channels": _int, "out_channels": _int, "groups": _int, "kernel": st.lists(_int, min_size=2, max_size=2),
    "stride": st.lists(_int, min_size=2, max_size=2), "dilation": st.lists(_int, min_size=2, max_size=2),
    "pad": st.lists(_int, min_size=4, max_size=4), "axis": _int, "start": _int, "length": _int,
    "perm": st.lists(_int, max_size=4), "param_shape": st.lists(_int, max_size=3), "extra_params": _int,
    "act": _int, "pool": _int, "cell": _int, "bias": st.booleans(), "bidirectional": st.booleans(),
    "keep_dims": st.booleans(), "squeeze": st.booleans(), "ceil_mode": st.booleans(),
    "indices": st.lists(_int, max_size=5), "index_shape": st.lists(_int, max_size=3), "imag": st.booleans(),
}


@st.composite
def raw_graph(draw):
    nt = draw(st.integers(1, 5))
    tensors = []
    for i in range(nt):
        shape = draw(st.lists(st.one_of(st.integers(1, 12), _int), max_size=4))
        tensors.append((f"t{i}", shape))
    ops = []
    for i in range(draw(st.integers(1, 4))):
        fields = {"kind": draw(st.one_of(st.integers(0, len(OP_KINDS)), _int)),
                  "inputs": draw(st.lists(st.one_of(st.integers(-1, nt), _int), max_size=3)),
                  "output": draw(st.one_of(st.integers(-1, nt), _int))}
        for name in draw(st.lists(st.sampled_from(sorted(_FIELDS)), max_size=6, unique=True)):
            fields[name] = draw(_FIELDS[name])
        ops.append(fields)
    outputs = draw(st.lists(st.one_of(st.integers(-1, nt), _int), max_size=2))
    return tensors, ops, outputs


@sanitize
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=raw_graph(), rows=st.lists(st.lists(_int, min_size=2, max_size=2), max_size=3),
       bind=st.lists(st.tuples(st.integers(-1, 4), st.integers(-1, 9), st.integers(-1, 2), st.integers(-1, 4)),
                     max_size=3))
def test_fuzz_raw_binding_only_value_errors(raw, rows, bind):
    tensors, ops, outputs = raw
    g = _core.Graph()
    ts = []
    for name, shape in tensors:
        try:
            ts.append(_core.Tensor(name, shape))
        except ValueError:
            ts.append(_core.Tensor(name, [1]))
    g.tensors = ts
    core_ops = []
    for fields in ops:
        op = _core.Op()
        for k, v in fields.items():
            try:
                setattr(op, k, v)
            except ValueError:
                pass
        core_ops.append(op)
    g.ops = core_ops
    try:
        g.outputs = outputs
    except ValueError:
        g.outputs = []
    for call in (lambda: _core.validate(g), lambda: _core.cost(g), lambda: _core.infer_shape(g, 0)):
        try:
            call()
        except ValueError:
            pass
    g2 = _core.Graph()
    g2.tensors, g2.ops, g2.outputs = g.tensors, g.ops, g.outputs
    try:
        _core.propagate_shapes(g2)
        _core.cost(g2)
    except ValueError:
        pass
    values = np.array([[max(min(v, 2**63 - 1), -(2**63)) for v in r] for r in rows], dtype=np.int64).reshape(-1, 2)
    try:
        bindings = [_core.Binding(op=o, field=f, column=c, dim=d) for o, f, d, c in bind]
        _core.cost_batch(g, bindings, values)
    except ValueError:
        pass


# ---- scratch sizes, flash, peak: hand-computed figures -----------------------------------------------


@sanitize
def test_scratch_figures_from_the_notes():
    # conv T=128, C_in=9, K=5, C_out=16 -> 4*ceil4(45) = 192 B (generic path)
    g = single_op_graph((9, 128), "conv", **conv_kw(9, 16, 5, pad=(2, 2)))
    assert _core.cost(g).ops[1].scratch == 192
    # depthwise 1x5 on C=16 (DSP, GCC) -> 2*16*1*5 = 160 B
    g = single_op_graph((16, 64), "conv", **conv_kw(16, 16, 5, pad=(2, 2), groups=16))
    assert _core.cost(g).ops[1].scratch == 160
    # depthwise 3x3 with pad 1 -> special case, no buffer; pad 2 -> opt path 2*C*9
    g = single_op_graph((16, 8, 8), "conv", **conv_kw(16, 16, 3, pad=(1, 1), groups=16, two_d=True, kh=3, ph=(1, 1)))
    assert _core.cost(g).ops[1].scratch == 0
    g = single_op_graph((16, 8, 8), "conv", **conv_kw(16, 16, 3, pad=(2, 2), groups=16, two_d=True, kh=3, ph=(2, 2)))
    assert _core.cost(g).ops[1].scratch == 2 * 16 * 9
    # depthwise with channel multiplier 2 or dilation -> generic depthwise, no buffer
    g = single_op_graph((16, 64), "conv", **conv_kw(16, 32, 5, groups=16))
    assert _core.cost(g).ops[1].scratch == 0
    g = single_op_graph((16, 64), "conv", **conv_kw(16, 16, 3, dil=2, groups=16))
    assert _core.cost(g).ops[1].scratch == 0
    # avg pool C=16 -> 4*16 = 64 B; max pool -> 0; global avg pool -> 4*C
    g = single_op_graph((16, 64), "pool", pool="avg", kernel=(1, 2), stride=(1, 2))
    assert _core.cost(g).ops[1].scratch == 64
    g = single_op_graph((16, 64), "pool", pool="max", kernel=(1, 2), stride=(1, 2))
    assert _core.cost(g).ops[1].scratch == 0
    g = single_op_graph((16, 64), "globalpool", pool="avg")
    assert _core.cost(g).ops[1].scratch == 64
    # 1x1 conv (stride 1 and 2) -> 0; 1x1 with padding -> generic 4*ceil4(C_in)
    g = single_op_graph((16, 64), "conv", **conv_kw(16, 32, 1))
    assert _core.cost(g).ops[1].scratch == 0
    g = single_op_graph((16, 64), "conv", **conv_kw(16, 32, 1, stride=2))
    assert _core.cost(g).ops[1].scratch == 0
    g = single_op_graph((10, 64), "conv", **conv_kw(10, 32, 1, pad=(1, 1)))
    assert _core.cost(g).ops[1].scratch == 4 * 12
    # grouped (not depthwise) conv: generic path sized with all input channels: 4*ceil4(3*16)
    g = single_op_graph((16, 64), "conv", **conv_kw(16, 16, 3, groups=4))
    assert _core.cost(g).ops[1].scratch == 4 * 48
    # LSTM 7H, GRU 9H (bidirectional reuses it)
    g = single_op_graph((32, 16), "rnn", in_channels=16, out_channels=20, bidirectional=True, bias=True)
    assert _core.cost(g).ops[1].scratch == 140
    g = single_op_graph((32, 16), "rnn", in_channels=16, out_channels=20, cell="gru")
    assert _core.cost(g).ops[1].scratch == 180
    # unfolded BN (input is a graph input) runs as a depthwise 1x1: 2*C
    g = single_op_graph((16, 64), "batchnorm", in_channels=16, bias=True)
    assert _core.cost(g).ops[1].scratch == 32


@sanitize
def test_flash_and_params_formulas():
    # conv: w + 4*C_out + 8*C_out; params match torch
    g = single_op_graph((9, 128), "conv", **conv_kw(9, 16, 5, pad=(2, 2)))
    r = _core.cost(g)
    assert r.ops[1].flash == 16 * 9 * 5 + 12 * 16
    assert r.total.params == sum(p.numel() for p in nn.Conv1d(9, 16, 5).parameters())
    assert r.total.macs == 16 * 128 * 9 * 5
    g = single_op_graph((48,), "linear", in_channels=48, out_channels=6, bias=True)
    r = _core.cost(g)
    assert (r.ops[1].flash, r.total.params, r.total.macs) == (48 * 6 + 12 * 6, 48 * 6 + 6, 288)
    H, I = 20, 16
    g = single_op_graph((32, I), "rnn", in_channels=I, out_channels=H, bidirectional=True, bias=True)
    r = _core.cost(g)
    assert r.ops[1].flash == 2 * (4 * H * (I + H) + 8 * 4 * H + 4 * 2 * 8)
    assert r.total.params == sum(p.numel() for p in nn.LSTM(I, H, bidirectional=True).parameters())
    assert r.total.macs == 32 * 2 * 4 * H * (I + H)
    g = single_op_graph((32, I), "rnn", in_channels=I, out_channels=H, cell="gru", bias=False)
    r = _core.cost(g)
    assert r.ops[1].flash == 3 * H * (I + H) + 6 * 4 * H + 3 * 2 * 8
    assert r.total.params == sum(p.numel() for p in nn.GRU(I, H, bias=False).parameters())
    g = single_op_graph((16, 64), "mul", param_shape=(16, 1), extra_params=3)
    r = _core.cost(g)
    assert (r.ops[1].flash, r.total.params) == (16 + 8, 16 + 3)
    g = single_op_graph((16, 64), "batchnorm", in_channels=16, bias=True)
    r = _core.cost(g)
    assert (r.ops[1].flash, r.total.params, r.ops[1].fused) == (13 * 16, 32, False)
    # add of a parameter: like mul; layernorm: 2 * numel(normalized shape) params, gamma int8 + beta int32
    g = single_op_graph((16, 64), "add", param_shape=(16, 1))
    r = _core.cost(g)
    assert (r.ops[1].flash, r.total.params, r.total.macs) == (16 + 8, 16, 0)
    for axis, d in [(0, 16 * 64), (1, 64)]:
        g = single_op_graph((16, 64), "layernorm", axis=axis, bias=True)
        r = _core.cost(g)
        assert (r.ops[1].flash, r.total.params, r.total.macs, r.ops[1].scratch) == (5 * d, 2 * d, 0, 0)
        assert r.total.params == sum(p.numel() for p in nn.LayerNorm((16, 64)[axis:]).parameters())
        # out of place: input and output live
        assert r.ops[1].mem == 2 * 16 * 64
    r = _core.cost(single_op_graph((16, 64), "layernorm", axis=1))
    assert (r.ops[1].flash, r.total.params) == (0, 0)
    # gather: an int32 index table, an out-of-place copy
    r = _core.cost(single_op_graph((9, 128), "gather", axis=1, indices=tuple(range(40)), index_shape=(5, 8)))
    assert (r.ops[1].flash, r.total.params, r.total.macs, r.ops[1].mem) == (4 * 40, 0, 0, 9 * 128 + 9 * 40)
    # DFT: numel(out) * n MACs (a constant bins x n matrix), its int8 table in flash
    for bins, imag in [(16, False), (16, True), (9, False)]:
        r = _core.cost(single_op_graph((9, 15, 16), "dft", length=bins, imag=imag))
        assert (r.total.macs, r.ops[1].flash, r.total.params, r.total.ptflops_macs, r.ops[1].scratch) == \
            (9 * 15 * bins * 16, bins * 16, 0, 0, 0)


@sanitize
def test_folding_fusion_and_aliasing():
    b = Builder()
    x = b.input((9, 128))
    y = b.op("conv", [x], **conv_kw(9, 16, 5, pad=(2, 2)))
    y = b.op("batchnorm", [y], in_channels=16, bias=True)
    y = b.op("activation", [y], act="relu")
    y2 = b.op("activation", [y], act="relu6")  # input comes from a fused op, not a conv: runs
    y3 = b.op("reshape", [y2], shape=(16 * 128,))
    r = _core.cost(b.core([y3]))
    assert [o.fused for o in r.ops] == [False, False, True, True, False, False]
    assert [o.alias for o in r.ops] == [False] * 5 + [True]
    assert r.ops[2].flash == 0 and r.ops[2].mem == 0 and r.ops[3].mem == 0 and r.ops[5].mem == 0
    # relu6 runs out of place: input and output, 2 x 2048
    assert r.ops[4].mem == 4096
    # BN whose conv output is also read elsewhere is not folded
    b = Builder()
    x = b.input((4, 10))
    c = b.op("conv", [x], **conv_kw(4, 4, 1))
    n = b.op("batchnorm", [c], in_channels=4)
    a = b.op("add", [c, n])
    r = _core.cost(b.core([a]))
    assert not r.ops[2].fused and r.ops[2].flash == 13 * 4
    assert r.ops[3].mem == 3 * 40  # add: two inputs + output


@sanitize
def test_mubi_like_peak_is_3392_bytes():
    """baselines.md §4: conv1 input 1,152 B + output 2,048 B + 192 B im2col scratch when reshapes alias."""
    b = Builder()
    x = b.input((9, 128))
    y = b.op("conv", [x], name="conv1", **conv_kw(9, 16, 5, pad=(2, 2)))
    y = b.op("activation", [y], act="relu")
    y = b.op("reshape", [y], shape=(16, 1, 128))
    y = b.op("pool", [y], kernel=(1, 2), stride=(1, 2))
    y = b.op("reshape", [y], shape=(16, 64))
    y = b.op("conv", [y], name="conv2", **conv_kw(16, 16, 5, pad=(2, 2)))
    y = b.op("activation", [y], act="relu")
    y = b.op("pool", [y], kernel=(1, 2), stride=(1, 2))
    y = b.op("transpose", [y], perm=(1, 0))
    y = b.op("rnn", [y], in_channels=16, out_channels=8, bidirectional=True, bias=True)
    y = b.op("slice", [y], axis=0, start=31, length=1, squeeze=True)
    y = b.op("linear", [y], in_channels=16, out_channels=6, bias=True)
    y = b.op("softmax", [y], axis=0)
    r = _core.cost(b.core([y]))
    assert r.total.peak_sram == 1152 + 2048 + 192 == 3392
    assert r.total.peak_op == 1
    assert r.ops[3].alias and r.ops[3].mem == 0
    assert r.ops[4].mem == 2048 + 1024  # pool reads the aliased conv1 buffer
    assert r.ops[6].scratch == 4 * 80
    assert max(o.mem for o in r.ops) == r.total.peak_sram


# ---- ptflops ---------------------------------------------------------------------------------------


def _ptflops(model, shape):
    ptflops = pytest.importorskip("ptflops")
    macs, _ = ptflops.get_model_complexity_info(model, tuple(shape), as_strings=False, print_per_layer_stat=False,
                                                backend="pytorch", verbose=False)
    return macs


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(9, 16, 5, padding=2)
        self.bn = nn.BatchNorm1d(16)
        self.act = nn.ReLU()
        self.pool = nn.MaxPool1d(2)
        self.lstm = nn.LSTM(16, 8, batch_first=True, bidirectional=True)
        self.gru = nn.GRU(16, 5, batch_first=True)
        self.fc = nn.Linear(5, 6)
        self.sm = nn.Softmax(dim=-1)

    def forward(self, x):
        y = self.pool(self.act(self.bn(self.conv(x)))).transpose(1, 2)
        y, _ = self.lstm(y)
        y, _ = self.gru(y)
        return self.sm(self.fc(y[:, -1]))


@sanitize
def test_ptflops_macs_match_ptflops_on_a_small_net():
    net = _Net().eval()
    b = Builder()
    x = b.input((9, 128))
    y = b.op("conv", [x], **conv_kw(9, 16, 5, pad=(2, 2)))
    y = b.op("batchnorm", [y], in_channels=16, bias=True)
    y = b.op("activation", [y], act="relu")
    y = b.op("pool", [y], kernel=(1, 2), stride=(1, 2))
    y = b.op("transpose", [y], perm=(1, 0))
    y = b.op("rnn", [y], in_channels=16, out_channels=8, bidirectional=True, bias=True)
    y = b.op("rnn", [y], in_channels=16, out_channels=5, cell="gru", bias=True)
    y = b.op("slice", [y], axis=0, start=63, length=1, squeeze=True)
    y = b.op("linear", [y], in_channels=5, out_channels=6, bias=True)
    y = b.op("softmax", [y], axis=0)
    r = _core.cost(b.core([y]))
    assert r.total.ptflops_macs == _ptflops(net, (9, 128))
    assert r.total.params == sum(p.numel() for p in net.parameters())


# ---- every kind is covered -------------------------------------------------------------------------


def _minimal(kind):
    b = Builder()
    x = b.input((4, 6), "x")
    extra = {
        "input": None,
        "conv": dict(**conv_kw(4, 2, 3)),
        "linear": dict(in_channels=6, out_channels=3, bias=True),
        "batchnorm": dict(in_channels=4, bias=True),
        "activation": dict(act="gelu"),
        "pool": dict(pool="avg", kernel=(1, 2), stride=(1, 2)),
        "globalpool": dict(pool="avg"),
        "add": "two",
        "mul": dict(param_shape=(6,)),
        "concat": dict(axis=1),
        "reshape": dict(shape=(24,)),
        "transpose": dict(perm=(1, 0)),
        "slice": dict(axis=1, start=2, length=2),
        "rnn": dict(in_channels=6, out_channels=3),
        "matmul": "mm",
        "softmax": dict(axis=1),
        "mean": dict(axis=1),
        "layernorm": dict(axis=1, bias=True),
        "gather": dict(axis=1, indices=(0, 1, 1, 2), index_shape=(2, 2)),
        "dft": dict(length=4, imag=True),
    }[kind]
    if extra is None:
        return b.core([x])
    if extra == "two":
        b.op(kind, [x, x])
    elif extra == "mm":
        w = b.input((6, 5), "w")
        b.op(kind, [x, w])
    else:
        b.op(kind, [x], **extra)
    return b.core()


@sanitize
def test_every_op_kind_is_covered_by_infer_and_cost():
    members = list(_core.OpKind.__members__.values())
    assert [int(k) for k in members] == list(range(len(OP_KINDS)))
    for k in members:
        name = _core.op_kind_name(k)
        assert name == OP_KINDS[int(k)]
        g = _minimal(name)
        idx = len(g.ops) - 1
        assert g.ops[idx].kind == k
        assert list(_core.infer_shape(g, idx)) == list(g.tensors[g.ops[idx].output].shape)
        r = _core.cost(g)
        assert len(r.ops) == len(g.ops) and r.total.peak_sram > 0
    assert _core.op_kind_name(len(OP_KINDS)) == "unknown"
    for i, a in enumerate(ACT_KINDS):
        assert _core.act_kind_name(i) == a


# ---- batch API ---------------------------------------------------------------------------------------


def _template():
    b = Builder()
    x = b.input((9, 128))
    y = b.op("conv", [x], name="c1", **conv_kw(9, 16, 5, pad=(2, 2)))     # op 1
    y = b.op("batchnorm", [y], in_channels=16, bias=True)                # op 2
    y = b.op("activation", [y], act="relu")                              # op 3
    y = b.op("conv", [y], name="c2", **conv_kw(16, 16, 3, pad=(1, 1)))   # op 4 (optional block)
    y = b.op("pool", [y], pool="avg", kernel=(1, 2), stride=(1, 2))      # op 5
    y = b.op("conv", [y], name="dw", **conv_kw(16, 16, 5, pad=(2, 2), groups=16))  # op 6
    y = b.op("reshape", [y], shape=(16 * 64,))                           # op 7
    y = b.op("linear", [y], in_channels=16 * 64, out_channels=6, bias=True)  # op 8
    return b


BINDINGS = [
    (1, "OutChannels", 0, 0), (4, "OutChannels", 0, 0), (4, "Groups", 0, 6), (6, "OutChannels", 0, 0),
    (6, "Groups", 0, 0), (1, "KernelW", 0, 1), (1, "PadW", 0, 2), (4, "Enabled", 0, 3), (0, "InputDim", 1, 4),
    (5, "KernelW", 0, 5), (5, "StrideW", 0, 5),
]


def _apply_python(b: Builder, row):
    g = copy.deepcopy(b.g)
    disabled = []
    for op, field, dim, col in BINDINGS:
        v = int(row[col])
        o = g.ops[op]
        if field == "OutChannels":
            o.out_channels = v
        elif field == "Groups":
            o.groups = v
        elif field == "KernelW":
            o.kernel = (o.kernel[0], v)
        elif field == "StrideW":
            o.stride = (o.stride[0], v)
        elif field == "PadW":
            o.pad = (o.pad[0], o.pad[1], v, v)
        elif field == "Enabled":
            if v == 0:
                disabled.append(op)
        elif field == "InputDim":
            s = list(g.tensors[o.output].shape)
            s[dim] = v
            g.tensors[o.output].shape = tuple(s)
    g.outputs = [len(g.tensors) - 1]
    c = g.to_core()
    _core.propagate_shapes(c)
    if disabled:
        ops = c.ops
        for i in disabled:
            want = list(c.tensors[ops[i].inputs[0]].shape)
            if list(c.tensors[ops[i].output].shape) != want:
                raise ValueError("disabled op changes the shape")
            r = _core.Op()  # an identity: a reshape to the same shape aliases its input
            r.kind, r.name, r.inputs, r.output = _core.OpKind.Reshape, ops[i].name, [ops[i].inputs[0]], ops[i].output
            ops[i] = r
        c.ops = ops
    t = _core.cost(c).total
    return [t.macs, t.params, t.peak_sram, t.flash]


@sanitize
@settings(max_examples=40, deadline=None)
@given(rows=st.lists(st.tuples(st.sampled_from([4, 8, 16, 24]), st.sampled_from([1, 3, 5, 7]), st.integers(0, 3),
                               st.integers(0, 1), st.sampled_from([32, 64, 128]), st.sampled_from([1, 2]),
                               st.sampled_from([1, 2, 4, 8, 16, 24])), min_size=1, max_size=8))
def test_cost_batch_equals_per_candidate_cost(rows):
    b = _template()
    b.g.outputs = [len(b.g.tensors) - 1]
    tmpl = b.g.to_core()
    _core.propagate_shapes(tmpl)
    bindings = [_core.Binding(op=o, field=getattr(_core.Field, f), column=c, dim=d) for o, f, d, c in BINDINGS]
    values = np.array(rows, dtype=np.int64)
    for i, row in enumerate(values):
        try:
            want = _apply_python(b, row)
        except ValueError:
            with pytest.raises(_core.GraphError, match="^row 0: "):
                _core.cost_batch(tmpl, bindings, values[i:i + 1])
            continue
        got = _core.cost_batch(tmpl, bindings, values[i:i + 1])
        assert got.dtype == np.int64 and got.shape == (1, 4)
        assert got[0].tolist() == want, row
    ok_rows = []
    for row in values:
        try:
            _apply_python(b, row)
            ok_rows.append(row)
        except ValueError:
            pass
    if ok_rows:
        got = _core.cost_batch(tmpl, bindings, np.array(ok_rows, dtype=np.int64))
        assert got.tolist() == [_apply_python(b, r) for r in ok_rows]


@sanitize
def test_cost_batch_errors():
    b = _template()
    b.g.outputs = [len(b.g.tensors) - 1]
    tmpl = b.core()
    ok = [_core.Binding(op=1, field=_core.Field.OutChannels, column=0)]
    good = np.array([[16], [16]], dtype=np.int64)
    assert _core.cost_batch(tmpl, ok, good).shape == (2, 4)
    # channel counts flow downstream (in_channels follow the inputs); the depthwise conv's groups do not
    assert _core.cost_batch(tmpl, ok, np.array([[12]], dtype=np.int64)).shape == (1, 4)
    with pytest.raises(_core.GraphError, match=r"^row 1: op 6 'dw' \(conv\): field 'groups'"):
        _core.cost_batch(tmpl, [_core.Binding(op=4, field=_core.Field.OutChannels, column=0)],
                         np.array([[16], [12]], dtype=np.int64))
    with pytest.raises(_core.GraphError, match=r"^row 0: op 1 'c1' \(conv\): field 'out_channels'"):
        _core.cost_batch(tmpl, [_core.Binding(op=1, field=_core.Field.OutChannels, column=0),
                                _core.Binding(op=4, field=_core.Field.OutChannels, column=0),
                                _core.Binding(op=6, field=_core.Field.OutChannels, column=0),
                                _core.Binding(op=6, field=_core.Field.Groups, column=0),
                                _core.Binding(op=4, field=_core.Field.Groups, column=0)],
                         np.array([[0]], dtype=np.int64))
    with pytest.raises(_core.GraphError, match="column 3"):
        _core.cost_batch(tmpl, [_core.Binding(op=1, field=_core.Field.OutChannels, column=3)], good)
    with pytest.raises(_core.GraphError, match="does not apply"):
        _core.cost_batch(tmpl, [_core.Binding(op=2, field=_core.Field.KernelW, column=0)], good)
    with pytest.raises(_core.GraphError, match="not a known Field"):
        _core.cost_batch(tmpl, [_core.Binding(op=1, field=42, column=0)], good)
    # disabling a shape-changing op names the row and op
    with pytest.raises(_core.GraphError, match=r"^row 0: op 1 'c1' \(conv\): field 'Enabled'"):
        _core.cost_batch(tmpl, [_core.Binding(op=1, field=_core.Field.Enabled, column=0)],
                         np.array([[0]], dtype=np.int64))
    with pytest.raises(ValueError, match="int64"):
        _core.cost_batch(tmpl, ok, good.astype(np.int32))
    with pytest.raises(ValueError, match="C-contiguous"):
        _core.cost_batch(tmpl, ok, np.array([[16, 1], [16, 2]], dtype=np.int64)[:, ::2])


_MUTABLE = ["in_channels", "out_channels", "groups", "kernel", "stride", "dilation", "pad", "axis", "start", "length",
            "perm", "param_shape", "extra_params", "act", "pool", "cell", "inputs", "output", "kind", "indices",
            "index_shape"]


@sanitize
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_mutated_valid_graph(data):
    """One field of a valid graph set to an arbitrary int: validate/cost/propagate raise ValueError or succeed,
    and whatever validate_cost (the graph's validate plus the cost model's checked arithmetic) accepts, cost() and
    cost_batch() cost without error and agree."""
    b = _template()
    y = b.op("slice", [len(b.g.tensors) - 2], axis=0, start=0, length=6)
    y = b.op("softmax", [y], axis=0)
    y = b.op("gather", [y], axis=0, indices=(0, 2, 5, 1), index_shape=(2, 2))
    y = b.op("layernorm", [y], axis=1, bias=True)
    y = b.op("add", [y], param_shape=(2, 1))
    b.op("dft", [y], length=2, imag=True)
    g = b.core()
    ops = g.ops
    i = data.draw(st.integers(0, len(ops) - 1))
    name = data.draw(st.sampled_from(_MUTABLE))
    cur = getattr(ops[i], name)
    if isinstance(cur, (list, tuple)):
        v = data.draw(st.lists(_int, min_size=len(cur) if name in ("kernel", "stride", "dilation", "pad") else 0,
                               max_size=len(cur) if name in ("kernel", "stride", "dilation", "pad") else 3))
    else:
        v = data.draw(_int)
    try:
        setattr(ops[i], name, v)
    except ValueError:
        return
    g.ops = ops
    try:
        _core.validate_cost(g)
    except ValueError:
        try:
            _core.propagate_shapes(g)
            _core.cost(g)
        except ValueError:
            pass
        return
    r = _core.cost(g)
    got = _core.cost_batch(g, [], np.zeros((2, 0), dtype=np.int64))
    assert got.tolist() == [[r.total.macs, r.total.params, r.total.peak_sram, r.total.flash]] * 2


@sanitize
def test_cost_overflow_is_the_cost_models_error():
    # The graph layer does not know the cost model: validate accepts a graph whose parameter total overflows
    # int64; every cost entry point rejects it, naming the op and field (or the total).
    g = _conv_graph()
    ops = g.ops
    ops[2].extra_params = 2**63 - 1
    g.ops = ops
    _core.validate(g)
    for call in (lambda: _core.validate_cost(g), lambda: _core.cost(g),
                 lambda: _core.cost_batch(g, [], np.zeros((0, 0), dtype=np.int64))):
        with pytest.raises(_core.GraphError, match=r"'params' overflows int64|field 'extra_params'"):
            call()


class _Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class _AddParam(nn.Module):
    def __init__(self):
        super().__init__()
        # the batch dim spelled out: ptflops 0.7.5 broadcasts shapes left-aligned, so only a parameter of the
        # activation's rank gets its count n_out (docs/cost-model.md)
        self.b = nn.Parameter(torch.ones(1, 4, 1))

    def forward(self, x):
        return torch.add(x, self.b)


@sanitize
@pytest.mark.parametrize("module,kind,kw", [
    (nn.GELU(), "activation", dict(act="gelu")),
    (nn.SiLU(), "activation", dict(act="silu")),
    (nn.ELU(), "activation", dict(act="elu")),
    (nn.LeakyReLU(), "activation", dict(act="leaky_relu")),
    (nn.ReLU6(), "activation", dict(act="relu6")),
    (nn.Sigmoid(), "activation", dict(act="sigmoid")),
    (nn.Hardtanh(), "activation", dict(act="hardtanh")),
    (nn.AvgPool1d(3, 2, 1, ceil_mode=True), "pool", dict(pool="avg", kernel=(1, 3), stride=(1, 2), pad=(0, 0, 1, 1),
                                                         ceil_mode=True)),
    (nn.AdaptiveAvgPool1d(1), "globalpool", dict(pool="avg", keep_dims=True)),
    (nn.BatchNorm1d(4, affine=False), "batchnorm", dict(in_channels=4, bias=False)),
    (nn.Softmax(dim=1), "softmax", dict(axis=0)),
    (_Fn(lambda x: torch.add(x, x)), "add", "two"),
    (_Fn(lambda x: torch.mul(x, x)), "mul", "two"),
    (_Fn(lambda x: torch.matmul(x, x.transpose(1, 2))), "matmul", "mm"),
    (_Fn(lambda x: x.mean(dim=2)), "mean", dict(axis=1)),
    (_Fn(lambda x: torch.cat([x, x], dim=1)), "concat", "cat"),
    (nn.LayerNorm(10), "layernorm", dict(axis=1, bias=True)),
    (nn.LayerNorm((4, 10), elementwise_affine=False), "layernorm", dict(axis=0)),
    (_Fn(lambda x: x[:, :, torch.tensor([[1, 2], [2, 3]])]), "gather", dict(axis=1, indices=(1, 2, 2, 3),
                                                                           index_shape=(2, 2))),
    (_Fn(lambda x: torch.fft.fft(x).imag), "dft", dict(length=10, imag=True)),
    (_Fn(lambda x: torch.fft.rfft(x).real), "dft", dict(length=6)),
    (_AddParam(), "add", dict(param_shape=(4, 1))),
])
def test_ptflops_rule_per_op(module, kind, kw):
    b = Builder()
    x = b.input((4, 10))
    if kw == "two":
        b.op(kind, [x, x])
    elif kw == "cat":
        b.op(kind, [x, x], axis=0)
    elif kw == "mm":
        t = b.op("transpose", [x], perm=(1, 0))
        b.op(kind, [x, t])
    else:
        b.op(kind, [x], **kw)
    r = _core.cost(b.core())
    assert r.total.ptflops_macs == _ptflops(module.eval(), (4, 10))
