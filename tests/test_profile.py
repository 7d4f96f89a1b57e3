"""harcore.cost.profile / profile_graph / batch: the Python API over the C++ cost model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn as nn

from harcore import cost
from harcore.graph import trace


class Family(nn.Module):
    """A small HAR CNN whose first conv's width and kernel vary (the search-space use of batch())."""

    def __init__(self, width: int = 8, k: int = 5, c: int = 3):
        super().__init__()
        self.conv1 = nn.Conv1d(c, width, k, padding=k // 2)
        self.act1 = nn.ReLU()
        self.pool = nn.MaxPool1d(2)
        self.conv2 = nn.Conv1d(width, 12, 3, padding=1)
        self.act2 = nn.ReLU()
        self.gap = nn.AdaptiveAvgPool1d(1)
        self.flat = nn.Flatten()
        self.fc = nn.Linear(12, 6)

    def forward(self, x):
        x = self.pool(self.act1(self.conv1(x)))
        return self.fc(self.flat(self.gap(self.act2(self.conv2(x)))))


@pytest.fixture(scope="module")
def prof():
    torch.manual_seed(0)
    return cost.profile(Family(), (3, 32))


@pytest.mark.sanitize
def test_profile_api(prof):
    g = prof.graph
    assert [r.name for r in prof.layers] == [op.name for op in g.ops]
    assert [r.kind for r in prof.layers] == [op.kind for op in g.ops]
    assert [r.shape for r in prof.layers] == [g.tensors[op.output].shape for op in g.ops]
    t = prof.total
    assert t.params == sum(p.numel() for p in Family().parameters())
    assert t.macs == sum(r.macs for r in prof.layers) > 0
    assert t.ptflops_macs == sum(r.ptflops_macs for r in prof.layers) >= t.macs
    assert t.flash == sum(r.flash for r in prof.layers) > 0
    assert 0 <= t.peak_op < len(g.ops)
    assert t.peak_sram == prof.layers[t.peak_op].mem == max(r.mem for r in prof.layers)
    assert prof.layers[0].kind == "input" and prof.layers[0].macs == 0
    # conv1 MACs by the documented rule: numel(out) * C_in/g * K
    conv1 = next(r for r in prof.layers if r.name == "conv1")
    assert conv1.macs == 8 * 32 * 3 * 5 and conv1.params == 8 * 3 * 5 + 8


def test_table_lists_every_layer_and_the_totals(prof):
    s = str(prof)
    for r in prof.layers:
        assert r.name in s
    t = prof.total
    for figure in (t.macs, t.ptflops_macs, t.params, t.flash, t.peak_sram):
        assert f"{figure:,}" in s
    assert "TOTAL" in s and "multiply-accumulate" in s
    assert "\x1b[" not in s  # plain text, no escape codes


def test_dict_and_json_round_trip(prof):
    d = prof.to_dict()
    assert d["total"]["macs"] == prof.total.macs
    assert len(d["layers"]) == len(prof.layers)
    s = prof.to_json()
    assert json.loads(s) == json.loads(json.dumps(d))
    back = cost.Profile.from_json(s)
    assert back == prof
    assert cost.Profile.from_dict(d) == prof
    with pytest.raises(ValueError, match="format"):
        cost.Profile.from_dict({"format": "something else"})


@pytest.mark.sanitize
def test_profile_graph_equals_profile(prof):
    assert cost.profile_graph(prof.graph) == prof


@pytest.mark.sanitize
@pytest.mark.parametrize("names", ["snake", "enum"])
def test_batch_equals_profile_of_each_variant(names):
    tmpl = trace(Family(8, 5), (3, 32))
    variants = [(4, 1), (8, 5), (16, 3), (24, 7), (6, 9)]
    values = np.array([[w, k, k // 2] for w, k in variants], dtype=np.int64)
    f = {"snake": ("out_channels", "kernel_w", "pad_w"), "enum": ("OutChannels", "KernelW", "PadW")}[names]
    conv1 = next(i for i, op in enumerate(tmpl.ops) if op.name == "conv1")
    out = cost.batch(tmpl, [("conv1", f[0], 0), (conv1, f[1], 1), ("conv1", f[2], 2)], values)
    assert out.shape == (len(variants), 4) and out.dtype == np.int64
    for row, (w, k) in zip(out, variants):
        p = cost.profile(Family(w, k), (3, 32)).total
        assert row.tolist() == [p.macs, p.params, p.peak_sram, p.flash], (w, k)


@pytest.mark.sanitize
def test_batch_input_dim_binding():
    tmpl = trace(Family(), (3, 32))
    values = np.array([[32], [64], [128]])
    out = cost.batch(tmpl, [(0, "input_dim", 0, 1)], values)
    for row, t in zip(out, (32, 64, 128)):
        p = cost.profile(Family(), (3, t)).total
        assert row.tolist() == [p.macs, p.params, p.peak_sram, p.flash]


def test_batch_rejects_bad_bindings():
    tmpl = trace(Family(), (3, 32))
    v = np.array([[8]])
    with pytest.raises(ValueError, match="no op named"):
        cost.batch(tmpl, [("nope", "out_channels", 0)], v)
    with pytest.raises(ValueError, match="unknown batch field"):
        cost.batch(tmpl, [("conv1", "width", 0)], v)
    with pytest.raises(ValueError, match="column"):
        cost.batch(tmpl, [("conv1", "out_channels", 3)], v)
    with pytest.raises(ValueError, match="out of range"):
        cost.batch(tmpl, [(99, "out_channels", 0)], v)
    with pytest.raises(ValueError, match="2-D"):
        cost.batch(tmpl, [("conv1", "out_channels", 0)], np.array([8]))
    with pytest.raises(ValueError, match="integers"):
        cost.batch(tmpl, [("conv1", "out_channels", 0)], np.array([[8.5]]))
    # a value that makes the graph invalid: the C++ side names the row
    with pytest.raises(ValueError):
        cost.batch(tmpl, [("conv1", "kernel_w", 0)], np.array([[5], [99]]))
