"""The model zoo against the reference figures of docs/anchors.md.

Expected numbers are copied from anchors.md §1 ("Summary table (params / MACs per single window)"), one
row per model as named in the comments; columns: params, core MACs (hooks, anchors.md §0 convention),
attn-matmul MACs (functional matmul/bmm/einsum, reported separately), ptflops 0.7.5 backend='pytorch'.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.fx as fx
import torch.nn as nn

from harcore import models
from harcore.cost.execution import count_macs, count_params, ptflops_macs

torch.set_num_threads(1)

UCI, W128, W80 = (9, 128, 6), (3, 128, 6), (3, 80, 6)   # anchors.md §0 "Settings"

# (registry name, cfg, input (C, T, K), params, core MACs, attn-matmul MACs or None, ptflops MACs)
ANCHORS = [
    # anchors.md §1 row "TinierHAR (zhaxidele/TinierHAR, F=4, 4 extra blocks, BiGRU16)"
    ("tinierhar", {}, UCI, 9_589, 454_720, 0, 637_414),
    ("tinierhar", {}, W128, 4_981, 185_152, None, 254_950),
    ("tinierhar", {}, W80, 4_981, 115_792, None, 159_418),
    # anchors.md §1 row "TinyHAR (teco-kit/ISWC22-HAR, F=20, attn/FC/lstm/tnaive)"; 3ch "(+N)" = attn-matmul
    ("tinyhar", {}, UCI, 29_828, 3_511_280, 84_240, 3_859_938),
    ("tinyhar", {}, W128, 25_028, 1_420_880, 9_360, 1_533_186),
    ("tinyhar", {}, W80, 25_028, 801_200, 5_040, 866_106),
    # anchors.md §1 row "DeepConvLSTM, paper layout (4 conv 64 f k5 s1 valid, 2xLSTM128, last step)"
    ("deepconvlstm", {}, UCI, 556_358, 119_551_488, 0, 120_883_206),
    ("deepconvlstm", {}, W128, 359_750, 54_531_072, None, 55_319_046),
    ("deepconvlstm", {}, W80, 359_750, 31_481_856, None, 31_938_054),
    # anchors.md §1 row "DeepConvLSTM, teco-kit variant (2 blocks x 2 conv, 64 f, 2nd conv stride 2, 1xLSTM128)"
    ("deepconvlstm", {"variant": "teco"}, UCI, 424_262, 35_902_976, 0, 36_422_534),
    ("deepconvlstm", {"variant": "teco"}, W128, 227_654, 13_104_128, None, 13_317_254),
    ("deepconvlstm", {"variant": "teco"}, W80, 227_654, 7_405_568, None, 7_528_838),
    # anchors.md §1 row "Attend & Discriminate (...; 4 conv 64, SA, 2xGRU128, TA)"
    ("attend_discriminate", {}, UCI, 445_384, 118_189_568, 1_161_216, 120_548_438),
    ("attend_discriminate", {}, W128, 297_928, 50_416_640, 129_024, 51_191_510),
    ("attend_discriminate", {}, W80, 297_928, 29_130_752, 73_728, 29_579_462),
    # anchors.md §1 row "µBi-ConvLSTM, built from the paper's description"
    ("mubiconvlstm", {}, UCI, 10_454, 420_128, 0, 469_286),
    ("mubiconvlstm", {}, W128, 9_974, 358_688, None, 407_846),
    ("mubiconvlstm", {}, W80, 9_974, 224_288, None, 255_014),
    # anchors.md §1 row "MLP-HAR, config from tk-king/MicroNas ... mixermlp (filter_num 4, expansion 0.2)";
    # attn-matmul = its einsum MACs; no 3ch x 80 figures in anchors.md
    ("mlp_har", {}, UCI, 20_506, 181_872, 25_920, 198_918),
    ("mlp_har", {}, W128, 15_352, 47_664, 8_640, 53_370),
]

# anchors.md §1 "Core-MAC breakdown, UCI (conv / linear / rnn)"
BREAKDOWN_UCI = {
    ("tinierhar", ()): (183_168, 1_216, 270_336),
    ("tinyhar", ()): (2_667_600, 510_880, 332_800),
    ("deepconvlstm", (("variant", "teco"),)): (26_530_560, 768, 9_371_648),
    ("deepconvlstm", ()): (64_500_480, 768, 55_050_240),
    ("attend_discriminate", ()): (76_886_784, 15_104, 41_287_680),
    ("mubiconvlstm", ()): (174_080, 288, 245_760),
}

ALL = [(n, {}) for n in ["attend_discriminate", "cnn", "cnn_student", "deepconvlstm", "mlp_har",
                         "mubiconvlstm", "sftnas", "tinierhar", "tinyhar"]] + [("deepconvlstm", {"variant": "teco"})]


def _id(case) -> str:
    name, cfg, (c, t, k) = case[:3]
    return f"{name}{'-' + cfg['variant'] if cfg else ''}-{c}x{t}"


def _build(name, cfg, shape):
    c, t, k = shape
    torch.manual_seed(0)
    return models.create(name, c, t, k, **cfg).eval()


# ---------------------------------------------------------------- registry

def test_names_lists_the_zoo():
    assert models.names() == sorted({n for n, _ in ALL})


@pytest.mark.parametrize("name,cfg", ALL, ids=lambda v: v if isinstance(v, str) else str(v.get("variant", "")))
@pytest.mark.parametrize("shape", [UCI, W128, W80], ids=["uci", "3x128", "3x80"])
def test_forward_shape(name, cfg, shape):
    c, t, k = shape
    net = _build(name, cfg, shape)
    with torch.no_grad():
        y = net(torch.randn(4, c, t))
    assert y.shape == (4, k)
    assert y.dtype == torch.float32 and torch.isfinite(y).all()


def test_unknown_name_lists_available():
    with pytest.raises(KeyError) as e:
        models.create("resnet50", 9, 128, 6)
    assert isinstance(e.value, ValueError)
    msg = str(e.value)
    assert "resnet50" in msg and all(n in msg for n in models.names())
    with pytest.raises(KeyError):
        models.info("nope")


def test_bad_cfg_key_is_a_type_error_naming_it():
    with pytest.raises(TypeError, match="filter_nmu") as e:
        models.create("tinyhar", 9, 128, 6, filter_nmu=8)
    assert "filter_num" in str(e.value)          # lists the accepted keys
    with pytest.raises(TypeError, match="in_channel"):
        models.create("cnn_student", 9, 128, 6, in_channel=3)


def test_bad_sizes_and_values_are_value_errors():
    with pytest.raises(ValueError, match="seq_len"):
        models.create("attend_discriminate", 9, 16, 6)       # 4 valid convs of 5 need T >= 17
    with pytest.raises(ValueError, match="in_channels"):
        models.create("tinyhar", 0, 128, 6)
    with pytest.raises(ValueError, match="variant"):
        models.create("deepconvlstm", 9, 128, 6, variant="strc")


def test_create_is_case_insensitive_and_cfg_changes_the_model():
    a = models.create("TinyHAR", 9, 128, 6)
    b = models.create("tinyhar", 9, 128, 6, filter_num=8)
    assert type(a) is type(b) and count_params(b) < count_params(a)


def test_register_model_rejects_a_second_class_under_a_taken_name():
    with pytest.raises(ValueError, match="already registered"):
        @models.register_model("tinyhar")
        class Other(nn.Module):
            pass


# ---------------------------------------------------------------- reference figures

@pytest.mark.parametrize("case", ANCHORS, ids=_id)
def test_params_and_core_macs_match_anchors(case):
    name, cfg, shape, params, core, attn, _ = case
    c, t, _k = shape
    counts = count_macs(_build(name, cfg, shape), torch.randn(1, c, t))
    assert counts.params == params
    assert counts.core == core
    if attn is not None:
        assert counts.attn == attn


@pytest.mark.parametrize("key", sorted(BREAKDOWN_UCI), ids=lambda k: k[0] + "".join(f"-{v}" for _, v in k[1]))
def test_core_mac_breakdown_matches_anchors(key):
    name, cfg = key[0], dict(key[1])
    counts = count_macs(_build(name, cfg, UCI), torch.randn(1, 9, 128))
    assert (counts.conv, counts.linear, counts.rnn) == BREAKDOWN_UCI[key]


@pytest.mark.parametrize("case", ANCHORS, ids=_id)
def test_ptflops_matches_anchors(case):
    name, cfg, shape, params, _, _, pt = case
    c, t, _k = shape
    macs, pt_params = ptflops_macs(_build(name, cfg, shape), (c, t))
    assert macs == pt
    assert pt_params == params


@pytest.mark.parametrize("case", ANCHORS, ids=_id)
def test_info_states_the_same_reference_figures(case):
    name, cfg, shape, params, core, attn, pt = case
    label = {UCI: "uci", W128: "3x128", W80: "3x80"}[shape]
    assert models.REFERENCE_INPUTS[label] == shape
    meta = models.info(name)
    figs = meta["figures"][cfg.get("variant", "paper" if name == "deepconvlstm" else "default")][label]
    assert (figs["params"], figs["core_macs"], figs["ptflops_macs"]) == (params, core, pt)
    if attn is not None:
        assert figs.get("attn_macs", attn) == attn
    assert meta["paper"] and meta["code"] and "anchors.md" in meta["figures_source"]


def test_info_has_sources_for_every_model():
    for name in models.names():
        meta = models.info(name)
        assert meta["name"] == name and meta["summary"] and meta["paper"] and meta["figures_source"]
        assert isinstance(meta["config"], dict)


# ---------------------------------------------------------------- CNN teacher / student (no published counts)

def _cnn_params(c, t, k, widths=(64, 128, 256, 512), ks=3, pool=8):
    p, c_in = 0, c
    for w in widths:
        p += c_in * w * ks + w + 2 * w            # conv weight + bias, BN gamma/beta
        c_in = w
    return p + c_in * pool * k + k


def _mlp_params(c, t, k, hidden=(128, 128)):
    dims = [c * t, *hidden, k]
    return sum(a * b + b for a, b in zip(dims, dims[1:]))


@pytest.mark.parametrize("shape", [UCI, W128, W80], ids=["uci", "3x128", "3x80"])
def test_cnn_and_student_counts_follow_the_paper_layout(shape):
    c, t, k = shape
    teacher = count_macs(_build("cnn", {}, shape), torch.randn(1, c, t))
    assert teacher.params == _cnn_params(c, t, k)
    widths = [c, 64, 128, 256, 512]
    assert teacher.conv == sum(t * a * b * 3 for a, b in zip(widths, widths[1:]))   # 'same' padding keeps T
    assert teacher.linear == 512 * 8 * k and teacher.rnn == 0 and teacher.attn == 0
    student = count_macs(_build("cnn_student", {}, shape), torch.randn(1, c, t))
    assert student.params == _mlp_params(c, t, k)
    assert student.core == c * t * 128 + 128 * 128 + 128 * k


def _size_mb(net: nn.Module, int8_linear: bool) -> float:
    """Weight bytes (+ BN running stats) in MB, optionally with Linear weights as int8 (dynamic quantization)."""
    n = 0
    for m in net.modules():
        for name, p in m.named_parameters(recurse=False):
            n += p.numel() * (1 if int8_linear and isinstance(m, nn.Linear) and name == "weight" else 4)
        if isinstance(m, nn.BatchNorm1d):
            n += 4 * (m.running_mean.numel() + m.running_var.numel())
    return n / 1e6


def test_cnn_layout_is_consistent_with_paper_table2():
    # paper Table 2 (UCI-HAR): CNN 2.20 MB, CNN int8 2.12 MB, KD model 0.66 MB, KD int8 0.17 MB.
    # Serialisation overhead is not known, so allow 0.03 MB.
    teacher, student = _build("cnn", {}, UCI), _build("cnn_student", {}, UCI)
    assert _size_mb(teacher, False) == pytest.approx(2.20, abs=0.03)
    assert _size_mb(teacher, True) == pytest.approx(2.12, abs=0.03)
    assert _size_mb(student, False) == pytest.approx(0.66, abs=0.03)
    assert _size_mb(student, True) == pytest.approx(0.17, abs=0.03)
    # the alternatives the docstring rules out
    assert _size_mb(_build("cnn", {"kernel_size": 5}, UCI), False) > 3.0
    assert _size_mb(_build("cnn", {"pool_size": 1}, UCI), False) < 2.12
    # adaptive average pooling weighs the same: the sizes cannot choose the pooling type
    assert _size_mb(_build("cnn", {"pool": "avg"}, UCI), False) == _size_mb(teacher, False)


def test_cnn_pool_option_picks_the_adaptive_pooling_and_refuses_others():
    x = torch.randn(2, 9, 128)
    avg, mx = _build("cnn", {"pool": "avg"}, UCI), _build("cnn", {}, UCI)   # max is the default
    assert isinstance(avg.pool, nn.AdaptiveAvgPool1d) and isinstance(mx.pool, nn.AdaptiveMaxPool1d)
    mx.load_state_dict(avg.state_dict())           # same parameters, different head
    feats = avg.features(x)
    torch.testing.assert_close(mx(x), mx.fc(feats.reshape(2, 512, 8, 16).amax(-1).flatten(1)))
    torch.testing.assert_close(avg(x), avg.fc(feats.reshape(2, 512, 8, 16).mean(-1).flatten(1)))
    with pytest.raises(ValueError, match="cnn: pool must be 'avg' or 'max', got 'min'"):
        models.create("cnn", 9, 128, 6, pool="min")


# ---------------------------------------------------------------- torch.fx

# The leaf set of the cost model's tracer (every other module is traced through).
_LEAVES = (nn.Conv1d, nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.LSTM, nn.GRU,
           nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d,
           nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.Dropout, nn.Flatten, nn.Softmax)


class _CostTracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, _LEAVES)


@pytest.mark.parametrize("name,cfg", ALL, ids=lambda v: v if isinstance(v, str) else str(v.get("variant", "")))
@pytest.mark.parametrize("shape", [UCI, W80], ids=["uci", "3x80"])
def test_fx_symbolic_trace(name, cfg, shape):
    c, t, _k = shape
    net = _build(name, cfg, shape)
    traced = [fx.symbolic_trace(net), fx.GraphModule(net, _CostTracer().trace(net))]
    for gm in traced:
        for node in gm.graph.nodes:      # no shape reads at forward time
            assert not (node.op == "call_method" and node.target in ("size", "dim")), node
            assert not (node.op == "call_function" and node.target is getattr and node.args[1] == "shape"), node
    for batch in (1, 5):                 # the traced graph is not specialised to the tracing batch
        x = torch.randn(batch, c, t)
        with torch.no_grad():
            ref = net(x)
            for gm in traced:
                torch.testing.assert_close(gm(x), ref, rtol=1e-5, atol=1e-6)


def test_traced_model_counts_like_the_module():
    net = _build("tinyhar", {}, UCI)
    gm = fx.GraphModule(net, _CostTracer().trace(net))
    a, b = count_macs(net, torch.randn(1, 9, 128)), count_macs(gm, torch.randn(1, 9, 128))
    assert (a.params, a.core, a.attn) == (b.params, b.core, b.attn)


# ---------------------------------------------------------------- the counter itself

def test_counter_counts_rnn_directions_layers_and_einsum():
    class Toy(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.GRU(4, 8, num_layers=2, bidirectional=True, batch_first=True)
            self.w = nn.Parameter(torch.randn(16, 3))

        def forward(self, x):
            y, _ = self.rnn(x)                                   # (B, 10, 16)
            return torch.einsum("btf,fk->btk", y, self.w)

    c = count_macs(Toy(), torch.randn(2, 10, 4))
    assert c.rnn == 2 * 10 * 2 * (3 * 8 * (4 + 8) + 3 * 8 * (16 + 8))
    assert c.attn == 2 * 10 * 3 * 16
    assert c.params == count_params(Toy()) == math.prod((16, 3)) + sum(
        p.numel() for p in nn.GRU(4, 8, num_layers=2, bidirectional=True).parameters())
