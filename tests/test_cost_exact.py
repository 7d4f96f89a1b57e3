"""harcore.cost.profile against counting by execution, exactly.

Oracle (the "hooks+fnmode" convention of docs/anchors.md §0): forward hooks on Conv1d/Conv2d/
Linear/LSTM/GRU plus a TorchFunctionMode that counts functional matmul/bmm/einsum, one batch-1 forward;
params = sum(p.numel()). The mode also counts torch.fft.fft/rfft the way the graph's DFT op does
(docs/cost-model.md): every part (.real / .imag) the model reads costs numel(part) * n, a direct DFT of
length n being a constant (bins x n) matrix product. ptflops 0.7.5 (backend 'pytorch', called as in baselines.md) is the oracle for
``ptflops_macs`` on modules written with module forms, where ptflops' count does not depend on how an
op is spelled.
"""

from __future__ import annotations

import contextlib
import io

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harcore import cost
from harcore.cost.execution import count_macs
from harcore.graph import trace

# ---------------------------------------------------------------------------------------------
# the oracle


def hook_count(model: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """(MACs, params) by execution: hooks + matmuls + DFT parts (harcore.cost.execution.count_macs)."""
    c = count_macs(model, x)
    return c.core + c.attn + c.dft, sum(p.numel() for p in model.parameters())


def ptflops_count(model: nn.Module, shape: tuple[int, ...]) -> int:
    import ptflops

    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        macs, _ = ptflops.get_model_complexity_info(model, shape, as_strings=False, print_per_layer_stat=False,
                                                    backend="pytorch")
    assert macs is not None, sink.getvalue()
    return int(macs)


def check_exact(model: nn.Module, shape: tuple[int, ...]) -> cost.Profile:
    model.eval()
    p = cost.profile(model, shape)
    macs, params = hook_count(model, torch.randn(1, *shape))
    assert p.total.params == params == sum(q.numel() for q in model.parameters())
    assert p.total.macs == macs, f"graph MACs {p.total.macs} != counted {macs}"
    assert sum(r.macs for r in p.layers) == p.total.macs
    assert sum(r.params for r in p.layers) == p.total.params
    return p


# ---------------------------------------------------------------------------------------------
# hand-built modules: every op kind the tracer maps


class Seq(nn.Module):
    def __init__(self, *mods):
        super().__init__()
        self.body = nn.Sequential(*mods)

    def forward(self, x):
        return self.body(x)


class TinyHARAttn(nn.Module):
    """TinyHAR cross-channel self-attention: q,k,v Linear(F,F, no bias), softmax over dim 1, γ·(vᵀβ)ᵀ+x."""

    def __init__(self, f):
        super().__init__()
        self.query = nn.Linear(f, f, bias=False)
        self.key = nn.Linear(f, f, bias=False)
        self.value = nn.Linear(f, f, bias=False)
        self.gamma = nn.Parameter(torch.tensor([0.5]))

    def forward(self, x):  # (N, C, F)
        f, g, h = self.query(x), self.key(x), self.value(x)
        beta = F.softmax(torch.bmm(f, g.permute(0, 2, 1).contiguous()), dim=1)
        o = self.gamma * torch.bmm(h.permute(0, 2, 1).contiguous(), beta) + x.permute(0, 2, 1).contiguous()
        return o.permute(0, 2, 1).contiguous()


class TinyHARLike(nn.Module):
    def __init__(self, c, t, f=8):
        super().__init__()
        self.conv = nn.Conv2d(1, f, (5, 1), stride=(2, 1))
        self.bn = nn.BatchNorm2d(f)
        self.attn = TinyHARAttn(f)
        self.fc = nn.Linear(f * c, 6)

    def forward(self, x):  # (B, C, T)
        x = x.unsqueeze(1).permute(0, 1, 3, 2)  # (B, 1, T, C)
        x = self.bn(F.relu(self.conv(x)))       # (B, F, T', C)
        x = x.mean(2)                            # (B, F, C)
        x = self.attn(x.permute(0, 2, 1))        # (B, C, F)
        return self.fc(x.flatten(1))


class ADSelfAttention(nn.Module):
    """Attend-and-Discriminate self-attention: 1x1 Conv1d q/k/v, softmax, γ·o + x."""

    def __init__(self, c):
        super().__init__()
        self.query = nn.Conv1d(c, c // 2, 1)
        self.key = nn.Conv1d(c, c // 2, 1)
        self.value = nn.Conv1d(c, c, 1)
        self.gamma = nn.Parameter(torch.tensor(0.3))

    def forward(self, x):  # (B, C, T)
        q, k, v = self.query(x), self.key(x), self.value(x)
        beta = F.softmax(torch.bmm(q.permute(0, 2, 1), k), dim=-1)  # (B, T, T)
        o = torch.bmm(v, beta.permute(0, 2, 1))
        return self.gamma * o + x


class ADLike(nn.Module):
    def __init__(self, c, t):
        super().__init__()
        self.conv = nn.Conv1d(c, 16, 5, padding=2)
        self.act = nn.ReLU()
        self.sa = ADSelfAttention(16)
        self.gru = nn.GRU(16, 12, num_layers=2, batch_first=True)
        self.fc = nn.Linear(12, 6)

    def forward(self, x):
        x = self.sa(self.act(self.conv(x)))
        out, _ = self.gru(x.transpose(1, 2))
        return self.fc(out[:, -1, :])


class Residual(nn.Module):
    def __init__(self, c, t):
        super().__init__()
        self.stem = nn.Conv1d(c, 8, 3, padding="same")
        self.dw = nn.Conv1d(8, 8, 5, padding=4, dilation=2, groups=8)
        self.pw = nn.Conv1d(8, 8, 1)
        self.bn = nn.BatchNorm1d(8)
        self.gconv = nn.Conv1d(8, 16, 3, padding="valid", groups=4, bias=False)
        self.pool = nn.AvgPool1d(3, stride=2, padding=1)
        self.gap = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(16, 6)

    def forward(self, x):
        x = F.relu6(self.stem(x))
        x = x + self.bn(self.pw(F.relu(self.dw(x))))
        x = self.pool(torch.sigmoid(self.gconv(x)))
        return F.log_softmax(self.fc(self.gap(x).flatten(1)), dim=1)


class Branches(nn.Module):
    def __init__(self, c, t):
        super().__init__()
        self.a = nn.Conv1d(c, 4, 3, padding=1)
        self.b = nn.Conv1d(c, 6, 5, padding=2)
        self.c = nn.Conv1d(c, 4, 1)
        self.scale = nn.Parameter(torch.ones(1, 14, 1))
        self.mp = nn.MaxPool1d(2, ceil_mode=True)
        self.amp = nn.AdaptiveMaxPool1d(4)
        self.fc = nn.Linear(14 * 4, 5)
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        y = torch.cat([self.a(x), self.b(x), self.c(x)], dim=1) * self.scale   # (B, 14, T)
        y = self.amp(self.mp(torch.tanh(y)))                                  # (B, 14, 4)
        s = torch.stack([y[:, 0, :], y[:, 1, :]], dim=1)                      # (B, 2, 4)
        z = self.fc(y.reshape(y.shape[0], -1))
        return torch.cat([z, self.head(s).sum(1)], dim=-1)


class RNNHeads(nn.Module):
    def __init__(self, c, t, cell="lstm", bidir=True, layers=2, batch_first=True):
        super().__init__()
        cls = nn.LSTM if cell == "lstm" else nn.GRU
        self.conv = nn.Conv1d(c, 8, 3, padding=1)
        self.rnn = cls(8, 10, num_layers=layers, bidirectional=bidir, batch_first=batch_first, dropout=0.1 if layers > 1 else 0.0)
        self.batch_first = batch_first
        self.act = nn.ELU()
        self.fc = nn.Linear(10 * (2 if bidir else 1), 4)

    def forward(self, x):
        x = self.act(self.conv(x))
        if self.batch_first:
            out, _ = self.rnn(x.permute(0, 2, 1))
            last = out[:, -1, :]
        else:
            out, _ = self.rnn(x.permute(2, 0, 1))
            last = out[-1]
        return F.softmax(self.fc(last), dim=-1)


class Activations(nn.Module):
    def __init__(self, c, t):
        super().__init__()
        self.lin = nn.Linear(t, t)
        self.mods = nn.ModuleList([nn.ReLU(), nn.ReLU6(), nn.Sigmoid(), nn.Tanh(), nn.LeakyReLU(0.2), nn.ELU(),
                                   nn.GELU(), nn.Hardtanh(), nn.SiLU(), nn.Dropout(0.5), nn.Identity()])

    def forward(self, x):
        x = self.lin(x)
        for m in self.mods:
            x = m(x)
        x = F.leaky_relu(F.gelu(F.silu(F.hardtanh(F.elu(x)))))
        x = x.relu().sigmoid().tanh()
        return torch.softmax(x, dim=1)


class Products(nn.Module):
    """einsum / matmul forms: two activations, and an activation times a weight parameter."""

    def __init__(self, c, t):
        super().__init__()
        self.w = nn.Parameter(torch.randn(t, 7))
        self.proj = nn.Linear(c, c)

    def forward(self, x):                                   # (B, C, T)
        a = torch.einsum("bct,tk->bck", x, self.w)         # (B, C, 7)
        g = torch.einsum("bck,bdk->bcd", a, a)              # (B, C, C)
        h = self.proj(g) @ x                                 # (B, C, T)
        return torch.matmul(h.transpose(1, 2), g).mean(dim=1, keepdim=True)  # (B, 1, C)


class Conv2dHAR(nn.Module):
    """TinierHAR-style (k,1) convs on a (B, 1, T, C) view, max pool (2,1), global pool."""

    def __init__(self, c, t):
        super().__init__()
        self.c1 = nn.Conv2d(1, 4, (5, 1), padding=(2, 0))
        self.dw = nn.Conv2d(4, 4, (5, 1), padding="same", groups=4)
        self.pw = nn.Conv2d(4, 8, 1)
        self.bn = nn.BatchNorm2d(8)
        self.p = nn.MaxPool2d((2, 1))
        self.ap = nn.AvgPool2d((2, 1))
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 6)
        self.r1, self.r2 = nn.ReLU(), nn.ReLU()

    def forward(self, x):
        x = x.unsqueeze(1).transpose(2, 3)
        x = self.p(self.r1(self.c1(x)))
        x = self.ap(self.r2(self.bn(self.pw(self.dw(x)))))
        return self.fc(torch.flatten(self.gap(x), 1))


class SegmentsSpectrum(nn.Module):
    """MLP-HAR's front end in small: overlapping segments cut by a constant index buffer (gather), their FFT
    (.real/.imag -> DFT ops; rfft and torch.imag too), per-channel einsum weights plus a viewed bias
    parameter, LayerNorm as a module (affine, plain) and as F.layer_norm over two trailing dims."""

    def __init__(self, c, t, seg=8):
        super().__init__()
        starts = list(range(0, t - seg + 1, seg // 2))
        self.register_buffer("idx", torch.tensor([[s + i for i in range(seg)] for s in starts]), persistent=False)
        n = len(starts)
        self.w = nn.Parameter(torch.randn(c, 2 * seg, 4))
        self.b = nn.Parameter(torch.randn(c, 4))
        self.ln = nn.LayerNorm(4)
        self.ln_plain = nn.LayerNorm((n, seg), elementwise_affine=False)
        self.lw = nn.Parameter(torch.randn(n, seg // 2 + 1))
        self.lb = nn.Parameter(torch.randn(n, seg // 2 + 1))
        self.fc = nn.Linear(c * n * (4 + seg // 2 + 1 + seg + seg // 2 + 1), 5)

    def forward(self, x):                                     # (B, C, T)
        s = x[:, :, self.idx]                                 # (B, C, N, S)
        z = torch.fft.fft(s, dim=-1)
        f = torch.cat([z.real, z.imag], dim=-1)               # (B, C, N, 2S)
        h = self.ln(torch.einsum("bcnt,ctf->bcnf", f, self.w) + self.b.unsqueeze(1))
        r = torch.fft.rfft(s)
        h2 = F.layer_norm(r.real, r.real.shape[-2:], self.lw, self.lb)
        h3 = torch.imag(r)
        y = torch.cat([h, h2, self.ln_plain(s), h3], dim=-1)
        return self.fc(y.flatten(1))


HAND = {
    "conv_stack": lambda c, t: Seq(nn.Conv1d(c, 8, 5, stride=2, padding=2), nn.BatchNorm1d(8), nn.ReLU(),
                                   nn.MaxPool1d(3, stride=2, padding=1), nn.Conv1d(8, 8, 3, groups=8),
                                   nn.Conv1d(8, 12, 1, bias=False), nn.BatchNorm1d(12, affine=False), nn.GELU(),
                                   nn.AvgPool1d(2, count_include_pad=False), nn.Flatten(), nn.Linear(24, 6),
                                   nn.Dropout(0.2)),
    "residual": Residual,
    "branches_concat_stack": Branches,
    "tinyhar_attention": TinyHARLike,
    "ad_attention_gru": ADLike,
    "bilstm2_last_step": lambda c, t: RNNHeads(c, t, "lstm", True, 2),
    "lstm1": lambda c, t: RNNHeads(c, t, "lstm", False, 1),
    "gru3": lambda c, t: RNNHeads(c, t, "gru", False, 3),
    "bigru2_time_major": lambda c, t: RNNHeads(c, t, "gru", True, 2, batch_first=False),
    "activations": Activations,
    "products_einsum_matmul": Products,
    "conv2d_har": Conv2dHAR,
    "segments_spectrum_layernorm": SegmentsSpectrum,
}


@pytest.mark.sanitize
@pytest.mark.parametrize("name", sorted(HAND))
def test_hand_built_exact(name):
    torch.manual_seed(0)
    check_exact(HAND[name](3, 24), (3, 24))


def test_every_op_kind_is_covered():
    kinds = set()
    for name, make in HAND.items():
        torch.manual_seed(0)
        kinds |= {op.kind for op in trace(make(3, 24), (3, 24)).ops}
    from harcore.graph import OP_KINDS

    assert kinds == set(OP_KINDS), sorted(set(OP_KINDS) - kinds)


@pytest.mark.sanitize
def test_segments_spectrum_graph_and_figures():
    """The new kinds' fields and per-op figures (docs/cost-model.md), and ptflops' own count of the module."""
    torch.manual_seed(0)
    m = SegmentsSpectrum(3, 24).eval()
    p = check_exact(m, (3, 24))
    g = p.graph
    rows = {r.name: r for r in p.layers}
    gather = [op for op in g.ops if op.kind == "gather"]
    assert len(gather) == 1 and gather[0].axis == 1 and gather[0].index_shape == (5, 8)
    assert gather[0].indices == tuple(m.idx.reshape(-1).tolist())
    assert rows[gather[0].name].flash == 4 * 40 and rows[gather[0].name].macs == 0
    dft = [(op.length, op.imag, g.tensors[op.inputs[0]].shape, rows[op.name]) for op in g.ops if op.kind == "dft"]
    # fft: real and imag parts of 8 bins; rfft: 5 bins, .real (read twice: one op) and torch.imag
    assert [(n, im, s) for n, im, s, _ in dft] == [(8, False, (3, 5, 8)), (8, True, (3, 5, 8)),
                                                    (5, False, (3, 5, 8)), (5, True, (3, 5, 8))]
    for n, _, s, r in dft:
        assert r.macs == 3 * 5 * n * 8 and r.flash == n * 8 and r.params == 0 and r.ptflops_macs == 0
    ln = [(op.axis, op.bias, rows[op.name].params, rows[op.name].flash, rows[op.name].ptflops_macs)
          for op in g.ops if op.kind == "layernorm"]
    assert ln == [(2, True, 2 * 4, 5 * 4, 3 * 5 * 4),     # nn.LayerNorm(4): ptflops' hook counts n_in
                  (1, True, 2 * 25, 5 * 25, 0),           # F.layer_norm over (5, 5): not seen by ptflops
                  (1, False, 0, 0, 3 * 5 * 8)]            # nn.LayerNorm((5, 8), elementwise_affine=False)
    conv = next(op for op in g.ops if op.kind == "conv")                    # the per-channel einsum
    assert (conv.in_channels, conv.out_channels, conv.groups) == (3 * 16, 3 * 4, 3)
    add = next(op for op in g.ops if op.kind == "add")
    assert add.param_shape == (3, 1, 4) and rows[add.name].params == 12
    assert p.total.ptflops_macs == ptflops_count(m, (3, 24))
    from harcore.graph import Graph

    assert Graph.from_json(g.to_json()) == g     # the new fields survive the JSON form


def test_rnn_layers_and_sources():
    g = trace(RNNHeads(3, 24, "lstm", True, 2), (3, 24))
    rnn = [op for op in g.ops if op.kind == "rnn"]
    assert [(op.in_channels, op.out_channels, op.bidirectional, op.source) for op in rnn] == \
        [(8, 10, True, "rnn"), (20, 10, True, "rnn")]
    assert all(op.source for op in g.ops)
    assert g.tensors[g.outputs[0]].shape == (4,)


def test_shapes_drop_the_batch():
    m = HAND["conv_stack"](3, 24).eval()
    g = trace(m, (3, 24))
    x = torch.zeros(1, 3, 24)
    shapes = []
    with torch.no_grad():
        for layer in m.body:
            x = layer(x)
            shapes.append(tuple(x.shape[1:]))
    got = [g.tensors[op.output].shape for op in g.ops[1:]]
    # Dropout is dropped: the graph output is the Linear's
    assert got == shapes[:-1]
    assert g.tensors[g.outputs[0]].shape == shapes[-1]


# ---------------------------------------------------------------------------------------------
# ptflops: module forms only (ptflops counts F.relu but not torch.relu, torch.add but not `+`, ...)


PTFLOPS_CASES = {
    "conv_bn_relu_pool": lambda c, t: Seq(nn.Conv1d(c, 8, 5, padding=2), nn.BatchNorm1d(8), nn.ReLU(),
                                          nn.MaxPool1d(2), nn.Conv1d(8, 8, 3, groups=8, bias=False),
                                          nn.AvgPool1d(2), nn.AdaptiveAvgPool1d(1), nn.Flatten(),
                                          nn.Linear(8, 6), nn.Softmax(dim=1)),
    "conv2d_har": Conv2dHAR,
    "lstm1": lambda c, t: RNNHeads(c, t, "lstm", False, 1),
    "bilstm2": lambda c, t: RNNHeads(c, t, "lstm", True, 2),
    "gru3": lambda c, t: RNNHeads(c, t, "gru", False, 3),
    "acts": lambda c, t: Seq(nn.Linear(t, t), nn.ReLU6(), nn.LeakyReLU(), nn.ELU(), nn.GELU(), nn.Sigmoid(),
                             nn.Tanh()),
    "layernorm": lambda c, t: Seq(nn.Linear(t, t), nn.LayerNorm(t), nn.LayerNorm((c, t), elementwise_affine=False)),
}


@pytest.mark.parametrize("name", sorted(PTFLOPS_CASES))
def test_ptflops_module_forms(name):
    torch.manual_seed(0)
    m = PTFLOPS_CASES[name](3, 24).eval()
    p = cost.profile(m, (3, 24))
    want = ptflops_count(m, (3, 24))
    rows = {r.kind: 0 for r in p.layers}
    for r in p.layers:
        rows[r.kind] += r.ptflops_macs
    assert p.total.ptflops_macs == want, f"ptflops {want}, harcore {p.total.ptflops_macs}; per kind {rows}"


# ---------------------------------------------------------------------------------------------
# random architectures


@st.composite
def conv_nets(draw):
    c = draw(st.integers(1, 6))
    t = draw(st.integers(24, 64))
    layers: list[nn.Module] = []
    ch, length = c, t
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv", "conv", "pool", "bn_act", "res"]))
        if kind == "conv":
            groups = draw(st.sampled_from([1, ch])) if ch > 1 else 1
            out = groups * draw(st.integers(1, 3)) if groups > 1 else draw(st.integers(1, 12))
            k = draw(st.integers(1, 7))
            d = draw(st.integers(1, 3))
            s = draw(st.integers(1, 3))
            pad = draw(st.sampled_from(["same", "valid", 0, 1, 2])) if s == 1 else draw(st.integers(0, 2))
            span = d * (k - 1) + 1
            eff = length + (span - 1 if pad == "same" else 0 if pad == "valid" else 2 * pad)
            if eff < span:
                continue
            layers.append(nn.Conv1d(ch, out, k, stride=s, dilation=d, padding=pad, groups=groups,
                                    bias=draw(st.booleans())))
            length = length if pad == "same" else (eff - span) // s + 1
            ch = out
        elif kind == "pool" and length >= 2:
            k = draw(st.integers(1, min(4, length)))
            cls = draw(st.sampled_from([nn.MaxPool1d, nn.AvgPool1d]))
            s = draw(st.integers(1, k))
            layers.append(cls(k, stride=s))
            length = (length - k) // s + 1
        elif kind == "bn_act":
            layers.append(nn.BatchNorm1d(ch, affine=draw(st.booleans())))
            layers.append(draw(st.sampled_from([nn.ReLU, nn.ReLU6, nn.Tanh, nn.SiLU, nn.ELU]))())
        elif kind == "res":
            layers.append(_Res(ch, draw(st.integers(1, 3)) * 2 + 1))
    head = draw(st.sampled_from(["gap", "flatten", "lstm", "gru"]))
    return c, t, layers, ch, length, head, draw(st.booleans()), draw(st.integers(1, 2))


class _Res(nn.Module):
    def __init__(self, ch, k):
        super().__init__()
        self.conv = nn.Conv1d(ch, ch, k, padding=k // 2)
        self.bn = nn.BatchNorm1d(ch)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x))) + x


class _Net(nn.Module):
    def __init__(self, layers, ch, length, head, bidir, nl):
        super().__init__()
        self.body = nn.Sequential(*layers)
        self.head = head
        if head == "gap":
            self.pool = nn.AdaptiveAvgPool1d(1)
            self.fc = nn.Linear(ch, 5)
        elif head == "flatten":
            self.fc = nn.Linear(ch * length, 5)
        else:
            cls = nn.LSTM if head == "lstm" else nn.GRU
            self.rnn = cls(ch, 6, num_layers=nl, bidirectional=bidir, batch_first=True)
            self.fc = nn.Linear(6 * (2 if bidir else 1), 5)

    def forward(self, x):
        x = self.body(x)
        if self.head == "gap":
            return self.fc(self.pool(x).squeeze(-1))
        if self.head == "flatten":
            return self.fc(torch.flatten(x, 1))
        out, _ = self.rnn(x.transpose(1, 2))
        return self.fc(out[:, -1])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_nets())
def test_random_architectures_exact(spec):
    c, t, layers, ch, length, head, bidir, nl = spec
    torch.manual_seed(0)
    check_exact(_Net(layers, ch, length, head, bidir, nl), (c, t))


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conv_nets())
def test_random_architectures_exact_many(spec):
    c, t, layers, ch, length, head, bidir, nl = spec
    check_exact(_Net(layers, ch, length, head, bidir, nl), (c, t))


# ---------------------------------------------------------------------------------------------
# the zoo


# Zoo models the graph cannot express yet; strict, so each turns red the day it traces.
_ZOO_GAPS: dict[str, str] = {}


def _zoo_names():
    from harcore import models

    return [pytest.param(n, marks=pytest.mark.xfail(strict=True, raises=ValueError, reason=_ZOO_GAPS[n]))
            if n in _ZOO_GAPS else n for n in models.names()]


@pytest.mark.parametrize("name", _zoo_names())
def test_zoo_models_exact(name):
    from harcore import models

    torch.manual_seed(0)
    net = models.create(name, in_channels=9, seq_len=128, num_classes=6)
    p = check_exact(net, (9, 128))
    # ptflops' own count of the module, spelling included (the tracer records Op.ptflops_form), which is
    # also the papers' figure (anchors.md: µBi 469,286, TinierHAR 637,414, TinyHAR 3,859,938 on UCI)
    assert p.total.ptflops_macs == ptflops_count(net, (9, 128))


@pytest.mark.parametrize("name,cfg", [("cnn", {"pool": "avg"}), ("cnn", {"pool_size": 1})], ids=["cnn-avg", "cnn-gap"])
def test_zoo_model_options_exact(name, cfg):
    from harcore import models

    torch.manual_seed(0)
    net = models.create(name, in_channels=9, seq_len=128, num_classes=6, **cfg)
    p = check_exact(net, (9, 128))
    assert p.total.ptflops_macs == ptflops_count(net, (9, 128))


# ---------------------------------------------------------------------------------------------
# bad input


class _Unknown(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(3, 4, 3)
        self.norm = nn.GroupNorm(2, 4)

    def forward(self, x):
        return self.norm(self.conv(x))


def test_unknown_module_is_named():
    with pytest.raises(ValueError, match=r"norm.*GroupNorm|GroupNorm.*norm"):
        trace(_Unknown(), (3, 24))


def test_unknown_method_is_named():
    class M(nn.Module):
        def forward(self, x):
            return x.exp()

    with pytest.raises(ValueError, match=r"'exp'"):
        trace(M(), (3, 24))


@pytest.mark.parametrize("shape", [(4, 24), (3,), (3, 0), (3, 2), "3x24", (3.0, 24)])
def test_wrong_input_shape(shape):
    with pytest.raises(ValueError):
        trace(Seq(nn.Conv1d(3, 4, 3)), shape)


def test_data_dependent_control_flow():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(3, 4, 3)

        def forward(self, x):
            if x.sum() > 0:
                return self.conv(x)
            return x

    with pytest.raises(ValueError, match="control flow"):
        trace(M(), (3, 24))


def test_scalar_arithmetic_is_refused():
    class M(nn.Module):
        def forward(self, x):
            return x * 0.5 + 1.0

    with pytest.raises(ValueError, match="constant"):
        trace(M(), (3, 24))


class _FnMod(nn.Module):
    def __init__(self, fn, **buffers):
        super().__init__()
        self.fn = fn
        for k, v in buffers.items():
            self.register_buffer(k, v)

    def forward(self, x):
        return self.fn(self, x)


@pytest.mark.parametrize("fn,buffers,frag", [
    (lambda m, x: torch.fft.fft(x).abs(), {}, r"complex result of torch\.fft\.fft"),
    (lambda m, x: torch.fft.fft(x), {}, r"complex result"),
    (lambda m, x: torch.fft.fft(x, dim=1).real, {}, r"only the last dim"),
    (lambda m, x: torch.fft.rfft(x, norm="ortho").real, {}, r"norm='ortho'"),
    (lambda m, x: torch.fft.fft(x, n=32).imag, {}, r"n=32"),
    (lambda m, x: x[:, :, m.i], {"i": torch.arange(24) % 2 == 0}, r"torch\.bool tensor"),
    (lambda m, x: x[:, m.i, m.i], {"i": torch.tensor([0, 1])}, r"indexing 2 dims"),
    (lambda m, x: x[:, :, m.p], {}, r"trainable parameter 'p'"),
], ids=["abs", "returned", "dim", "norm", "n", "mask", "two_dims", "parameter"])
def test_fft_and_gather_misuse_is_refused(fn, buffers, frag):
    m = _FnMod(fn, **buffers)
    m.p = nn.Parameter(torch.tensor([0, 1]), requires_grad=False)
    with pytest.raises(ValueError, match=frag):
        trace(m, (3, 24))


class _GroupedEinsum(nn.Module):
    def __init__(self, eq, wshape, view):
        super().__init__()
        self.eq, self.view = eq, view
        self.w = nn.Parameter(torch.randn(*wshape))

    def forward(self, x):                                   # (B, 3, 24)
        return torch.einsum(self.eq, x.reshape(self.view), self.w)


@pytest.mark.sanitize
@pytest.mark.parametrize("eq,wshape,view", [
    ("bcnt,ctf->bnfc", (3, 6, 5), (-1, 3, 4, 6)),           # output permuted
    ("bct,tcf->bcf", (24, 3, 5), (-1, 3, 24)),              # no free label; weight labels in another order
    ("bcnt,fct->bcnf", (5, 3, 6), (-1, 3, 4, 6)),
    ("btnc,ctf->bcnf", (3, 6, 5), (-1, 6, 4, 3)),           # activation transposed in
])
def test_per_group_einsum_is_a_grouped_conv(eq, wshape, view):
    torch.manual_seed(0)
    m = _GroupedEinsum(eq, wshape, view)
    p = check_exact(m, (3, 24))
    conv = [op for op in p.graph.ops if op.kind == "conv"]
    assert len(conv) == 1 and conv[0].groups == 3 and conv[0].out_channels == 15


def test_per_group_einsum_misuse():
    with pytest.raises(ValueError, match="per-group weight"):
        trace(_GroupedEinsum("bcnt,cnt->bc", (3, 4, 6), (-1, 3, 4, 6)), (3, 24))


@pytest.mark.sanitize
def test_gather_negative_and_list_indices():
    m = _FnMod(lambda m, x: torch.cat([x[:, :, m.i].flatten(1), x[:, [2, 0]].flatten(1), x[:, :, m.j]], dim=1),
               i=torch.tensor([-1, 0, 5]), j=torch.tensor(7))
    g = check_exact(m, (3, 24)).graph
    ops = [op for op in g.ops if op.kind == "gather"]
    assert [(op.axis, op.indices, op.index_shape, g.tensors[op.output].shape) for op in ops] == \
        [(1, (23, 0, 5), (3,), (3, 3)), (0, (2, 0), (2,), (2, 24)), (1, (7,), (), (3,))]


def test_layernorm_forms_refused():
    with pytest.raises(ValueError, match=r"bias=False"):
        trace(Seq(nn.LayerNorm(24, bias=False)), (3, 24))
    with pytest.raises(ValueError, match=r"batch"):   # normalizing over the batch too
        trace(_FnMod(lambda m, x: F.layer_norm(x, x.shape)), (3, 24))


def test_rnn_state_use_is_refused():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(3, 5, batch_first=True)

        def forward(self, x):
            _, h = self.rnn(x.transpose(1, 2))
            return h[0]

    with pytest.raises(ValueError, match="h_n"):
        trace(M(), (3, 24))


def test_shared_module_is_refused():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(3, 3, 3, padding=1)

        def forward(self, x):
            return self.conv(self.conv(x))

    with pytest.raises(ValueError, match="more than once"):
        trace(M(), (3, 24))


def test_unused_parameter_is_refused():
    class M(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv1d(3, 3, 3)
            self.spare = nn.Parameter(torch.zeros(4))

        def forward(self, x):
            return self.conv(x)

    with pytest.raises(ValueError, match="spare"):
        trace(M(), (3, 24))


def test_uneven_adaptive_pool_is_refused():
    with pytest.raises(ValueError, match="not a multiple"):
        trace(Seq(nn.AdaptiveAvgPool1d(5)), (3, 24))


def test_broadcast_activation_product():
    class M(nn.Module):
        def forward(self, x):
            return x * x.mean(1, keepdim=True)  # (3, 24) * (1, 24), as attention weights times features

    p = check_exact(M(), (3, 24))
    mul = next(op for op in p.graph.ops if op.kind == "mul")
    assert [p.graph.tensors[i].shape for i in mul.inputs] == [(3, 24), (1, 24)]
    assert p.graph.tensors[mul.output].shape == (3, 24)

