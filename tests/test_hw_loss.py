"""SFTNAS differentiable hardware terms (harcore.nas.hw_loss, C++ in src/cpp/nas/sftnas_terms.cpp)."""

from __future__ import annotations

import math
import random

import pytest
import torch

from harcore import _core
from harcore.graph import Graph, Op
from harcore.nas.hw_loss import (SftnasLayer, SftnasSpace, TailTerm, hw_loss, hw_terms, num_stride2_layers,
                                 reference_terms, sftnas_strides)

F64 = torch.float64


# -- helpers ------------------------------------------------------------------------------------

def soft_inputs(space: SftnasSpace, seed: int, dtype=F64):
    """Soft masks in (0.1, 0.9) and per-layer softmax probabilities, flat layout, requiring grad."""
    g = torch.Generator().manual_seed(seed)
    b0 = torch.rand(space.c0, generator=g, dtype=F64) * 0.8 + 0.1
    masks = torch.rand(space.num_masks, generator=g, dtype=F64) * 0.8 + 0.1
    logits = torch.randn(space.num_probs, generator=g, dtype=F64)
    probs = torch.cat([torch.softmax(x, 0) for x in space.split_probs(logits)])
    return tuple(t.to(dtype).requires_grad_() for t in (b0, masks, probs))


def pmem_term(space, b0, masks, probs, scale, mem_limit):
    """Arg-max term of PMem as the C++ reports it (layer index, or num_layers + tail index)."""
    _, _, arg = _core.sftnas_forward(space._core, b0.detach().numpy(), masks.detach().numpy(),
                                     probs.detach().numpy(), scale, mem_limit)
    return arg


def random_space(rng: random.Random, with_tail: bool) -> SftnasSpace:
    n_layers = rng.randint(1, 6)
    layers = []
    for _ in range(n_layers):
        kernels = tuple(rng.sample([1, 3, 5, 7], rng.randint(1, 4)))
        layers.append(SftnasLayer(rng.choice([1, 2, 2, 3]), kernels, rng.randint(1, 9)))
    tail_mem = tail_macs = ()
    if with_tail:
        tail_mem = tuple(TailTerm(*(rng.uniform(0, 50) for _ in range(4))) for _ in range(rng.randint(1, 3)))
        tail_macs = tuple(TailTerm(*(rng.uniform(0, 50) for _ in range(4))) for _ in range(rng.randint(1, 3)))
    return SftnasSpace(rng.randint(1, 12), rng.randint(4, 200), layers, tail_mem, tail_macs)


def all_grads(terms, inputs):
    return [torch.autograd.grad(t, inputs, retain_graph=True, allow_unused=False) for t in terms]


# -- the stride-count helper and layout ----------------------------------------------------------

def test_num_stride2_layers_is_floor_log2_of_s0_over_4():
    for s0 in range(4, 5000):
        n = num_stride2_layers(s0)
        assert n == math.floor(math.log2(s0 / 4)), s0
        # all stride-2 layers applied: the length stays >= 4 (the paper's reason for the 4) and one more
        # halving would take it below 4
        s = s0
        for _ in range(n):
            s = -(-s // 2)
        assert 4 <= s <= 8 and -(-s // 2) < 5, s0
    assert num_stride2_layers(128) == 5 and num_stride2_layers(196) == 5 and num_stride2_layers(256) == 6
    with pytest.raises(ValueError, match="s0"):
        num_stride2_layers(3)


def test_standard_space_layout_and_lengths():
    assert sftnas_strides(128) == (2, 1) * 5
    assert sftnas_strides(128, stride1_first=True) == (1, 2) * 5
    sp = SftnasSpace.standard(9, 128, 16)
    assert [l.stride for l in sp.layers] == [2, 1] * 5
    assert sp.lengths == (128, 64, 64, 32, 32, 16, 16, 8, 8, 4, 4)
    assert [l.identity for l in sp.layers] == [False, True] * 5
    assert sp.num_masks == 10 * 4 * 16 and sp.num_probs == 5 * 4 + 5 * 5
    odd = SftnasSpace(3, 37, [SftnasLayer(2, (3,), 2), SftnasLayer(3, (5,), 2), SftnasLayer(1, (1,), 2)])
    assert odd.lengths == (37, 19, 7, 7)  # ceil(s / t) for odd k with (k-1)/2 padding
    with pytest.raises(ValueError, match="filters"):
        SftnasSpace.standard(9, 128, [16, 16])


# -- gradients: gradcheck and the pure-PyTorch reference ----------------------------------------

GRADCHECK_CASES = {
    # PMem at a tail term (it dominates); L_mem in its log branch
    "tail_peak": (SftnasSpace(4, 40, [SftnasLayer(2, (1, 3, 5, 7), 5), SftnasLayer(1, (1, 3, 5, 7), 4),
                                      SftnasLayer(2, (3, 5), 3), SftnasLayer(1, (1, 3), 4)],
                              tail_mem=[TailTerm(5000, 300, 400, 600), TailTerm(1, 2, 3, 4)],
                              tail_macs=[TailTerm(100, 1, 2, 3)]), 4, 1000.0),
    # PMem at the first layer (b^_0 = 1, so its scratch is constant)
    "first_layer_peak": (SftnasSpace(5, 64, [SftnasLayer(2, (1, 3, 5, 7), 8), SftnasLayer(2, (1, 3), 1),
                                             SftnasLayer(2, (3,), 1)]), 0, 100.0),
    # PMem at a later pointwise-only layer (no scratch)
    "pointwise_peak": (SftnasSpace(3, 50, [SftnasLayer(2, (3, 5), 4), SftnasLayer(1, (1,), 16)],
                                   tail_macs=[TailTerm(0, 0, 0, 7)]), 1, 50.0),
}


@pytest.mark.sanitize
@pytest.mark.parametrize("case", sorted(GRADCHECK_CASES))
def test_gradcheck(case):
    space, peak, mem_limit = GRADCHECK_CASES[case]
    b0, masks, probs = soft_inputs(space, seed=7)
    scale = space.full_macs()
    assert pmem_term(space, b0, masks, probs, scale, mem_limit) == peak
    t = hw_terms(space, b0, masks, probs, scale=scale, mem_limit=mem_limit)
    assert float(t.pmem.detach()) > mem_limit and float(t.mem_loss.detach()) > 0  # the log branch runs
    assert torch.autograd.gradcheck(
        lambda b, m, p: tuple(hw_terms(space, b, m, p, scale=scale, mem_limit=mem_limit)),
        (b0, masks, probs), eps=1e-6, atol=1e-7, rtol=1e-6)


@pytest.mark.sanitize
@pytest.mark.parametrize("seed", range(25))
def test_matches_reference_values_and_gradients(seed):
    rng = random.Random(seed)
    space = random_space(rng, with_tail=seed % 2 == 0)
    b0, masks, probs = soft_inputs(space, seed)
    scale = rng.uniform(10, 1e4)
    for mem_limit in (1.0, 1e12, math.inf):  # log branch, zero branch, and no limit (a search without --sram)
        t = hw_terms(space, b0, masks, probs, scale=scale, mem_limit=mem_limit)
        r = reference_terms(space, b0, masks, probs, scale=scale, mem_limit=mem_limit)
        for a, b in zip(t, r):
            assert a.dtype == F64 and a.shape == ()
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
        for ga, gb in zip(all_grads(t, (b0, masks, probs)), all_grads(r, (b0, masks, probs))):
            for x, y in zip(ga, gb):
                torch.testing.assert_close(x, y, rtol=1e-10, atol=1e-10)
    assert float(hw_terms(space, b0, masks, probs, scale=scale, mem_limit=1e12).mem_loss.detach()) == 0.0


@pytest.mark.sanitize
@pytest.mark.parametrize("dtype", [F64, torch.float32])
def test_hw_loss_is_the_weighted_sum_of_the_terms(dtype):
    space, _, mem_limit = GRADCHECK_CASES["tail_peak"]
    b0, masks, probs = soft_inputs(space, 5, dtype)
    kw = dict(scale=space.full_macs(), mem_limit=mem_limit)
    stats = {}
    loss = hw_loss(space, b0, masks, probs, beta1=0.3, beta2=2.0, stats=stats, **kw)
    r = reference_terms(space, b0, masks, probs, **kw)
    expect = 0.3 * r.complexity + 2.0 * r.mem_loss
    assert loss.dtype == dtype and loss.shape == ()
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == F64 else dict(rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loss, expect, **tol)
    assert stats.keys() == {"macs", "complexity", "pmem", "mem_loss"}
    for k in stats:
        assert stats[k] == pytest.approx(float(getattr(r, k).detach()), rel=1e-5)
    for a, b in zip(torch.autograd.grad(loss, (b0, masks, probs)), torch.autograd.grad(expect, (b0, masks, probs))):
        torch.testing.assert_close(a, b, **tol)
    if dtype == F64:
        assert torch.autograd.gradcheck(
            lambda b, m, p: hw_loss(space, b, m, p, beta1=0.3, beta2=2.0, **kw), (b0, masks, probs))


@pytest.mark.sanitize
def test_straight_through_scratch_gradient_closed_form():
    # layer 1 (stride 1, candidates k=3, k=5, identity) holds the peak; its scratch 4*ceil4(k*b^_1) is
    # differentiated as 4*k*b^_1, so d PMem / d b^_1 = sum_j p_1j (s_1 c^0 + 4 k_j), b^_1 = sum_j p_0j B_0j.
    space = SftnasSpace(2, 16, [SftnasLayer(2, (3, 5), 6), SftnasLayer(1, (3, 5), 6)])
    b0 = torch.tensor([1.0, 0.5], dtype=F64, requires_grad=True)
    masks = torch.full((space.num_masks,), 0.7, dtype=F64, requires_grad=True)
    probs = torch.tensor([0.3, 0.7, 0.5, 0.3, 0.2], dtype=F64, requires_grad=True)
    assert pmem_term(space, b0, masks, probs, 1.0, 1.0) == 1
    t = hw_terms(space, b0, masks, probs, scale=1.0, mem_limit=1.0)
    c, s1 = 1.5, space.lengths[1]
    b1 = (0.3 + 0.7) * 6 * 0.7
    exact = 0.5 * (s1 * c * b1 + s1 * c * 6 * 0.7 + 16 * math.ceil(3 * b1 / 4)) \
        + 0.3 * (s1 * c * b1 + s1 * c * 6 * 0.7 + 16 * math.ceil(5 * b1 / 4))
    assert float(t.pmem.detach()) == pytest.approx(exact, rel=1e-14)
    (g_masks,) = torch.autograd.grad(t.pmem, masks)
    d_b1 = 0.5 * (s1 * c + 4 * 3) + 0.3 * (s1 * c + 4 * 5)
    torch.testing.assert_close(g_masks[:6], torch.full((6,), 0.3 * d_b1, dtype=F64))   # layer 0, k=3
    torch.testing.assert_close(g_masks[6:12], torch.full((6,), 0.7 * d_b1, dtype=F64))  # layer 0, k=5
    torch.testing.assert_close(g_masks[12:18], torch.full((6,), 0.5 * s1 * c, dtype=F64))  # layer 1, k=3


@pytest.mark.sanitize
def test_float32_inputs_give_float32_outputs_and_grads():
    space = SftnasSpace.standard(6, 96, [8, 8, 16, 16, 32, 32, 32, 32], tail_mem=[TailTerm(d=40)])
    b0, masks, probs = soft_inputs(space, 3)
    b0f, mf, pf = (x.detach().float().requires_grad_() for x in (b0, masks, probs))
    kw = dict(scale=space.full_macs(), mem_limit=1000.0)
    t64, t32 = hw_terms(space, b0, masks, probs, **kw), hw_terms(space, b0f, mf, pf, **kw)
    for a, b in zip(t32, t64):
        assert a.dtype == torch.float32
        torch.testing.assert_close(a.double(), b, rtol=1e-5, atol=1e-6)
    (t32.complexity + t32.mem_loss).backward()
    (t64.complexity + t64.mem_loss).backward()
    for a, b in ((b0f, b0), (mf, masks), (pf, probs)):
        assert a.grad.dtype == torch.float32 and a.grad.shape == a.shape
        torch.testing.assert_close(a.grad.double(), b.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.sanitize
def test_nested_and_noncontiguous_inputs_match_flat():
    space = SftnasSpace.standard(4, 32, 5, tail_macs=[TailTerm(1, 2, 3, 4)])
    b0, masks, probs = soft_inputs(space, 11)
    kw = dict(scale=500.0, mem_limit=10.0)
    flat = hw_terms(space, b0, masks, probs, **kw)
    nested_m = [[m.detach().clone().requires_grad_() for m in layer] for layer in space.split_masks(masks)]
    nested_p = [p.detach().clone().requires_grad_() for p in space.split_probs(probs)]
    nested = hw_terms(space, b0, nested_m, nested_p, **kw)
    for a, b in zip(flat, nested):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    g_flat = torch.autograd.grad(flat.macs + flat.mem_loss, masks)[0]
    torch.autograd.backward(nested.macs + nested.mem_loss)
    torch.testing.assert_close(torch.cat([m.grad for layer in nested_m for m in layer]), g_flat)
    # b0 in the paper's DCS shape (1, c0, 1)
    b0_dcs = b0.detach().reshape(1, -1, 1).requires_grad_()
    t = hw_terms(space, b0_dcs, masks, probs, **kw)
    torch.testing.assert_close(t.pmem, flat.pmem, rtol=0, atol=0)
    (g,) = torch.autograd.grad(t.pmem, b0_dcs)
    assert g.shape == (1, space.c0, 1)
    torch.testing.assert_close(g.reshape(-1), torch.autograd.grad(flat.pmem, b0)[0])
    # a strided view (non-contiguous) is copied for the C++ and its gradient keeps the view's shape
    base = torch.stack([masks.detach(), torch.zeros_like(masks)], 1).requires_grad_()
    strided = base[:, 0]
    assert not strided.is_contiguous()
    t = hw_terms(space, b0, strided, probs, **kw)
    torch.testing.assert_close(t.macs, flat.macs, rtol=0, atol=0)
    (g,) = torch.autograd.grad(t.macs, base)
    torch.testing.assert_close(g[:, 0], torch.autograd.grad(flat.macs, masks)[0])
    assert torch.count_nonzero(g[:, 1]) == 0
    with pytest.raises(ValueError, match="masks of layer 1 has 3 candidates"):
        hw_terms(space, b0, [nested_m[0], nested_m[1][:3]] + nested_m[2:], nested_p, **kw)


# -- binary masks / one-hot choices: the harcore cost model -------------------------------------

def hand_worked_space():
    return SftnasSpace(3, 16, [SftnasLayer(2, (3,), 4), SftnasLayer(1, (1, 5), 4)])


@pytest.mark.sanitize
def test_hand_worked_example():
    # c^0 = 2; layer 0: s=16->8, k=3, 3 of 4 filters; layer 1: s=8, k=5, 2 of 4 filters.
    space = hand_worked_space()
    b0 = torch.tensor([1.0, 0.0, 1.0], dtype=F64)
    masks = torch.tensor([1, 1, 0, 1] + [1, 1, 1, 1] + [0, 1, 1, 0], dtype=F64)
    probs = torch.tensor([1.0] + [0.0, 1.0, 0.0], dtype=F64)
    # MACs: 8*2*1*3*3 = 144 and 8*2*3*2*5 = 480
    # mem: 16*2 + 8*2*3 + 4*ceil4(3*1) = 96;  8*2*3 + 8*2*2 + 4*ceil4(5*3) = 144
    t = hw_terms(space, b0, masks, probs, scale=100.0, mem_limit=100.0)
    assert float(t.macs) == 624.0 and float(t.pmem) == 144.0
    assert float(t.complexity) == pytest.approx(1.44 ** 2 + 4.8 ** 2, rel=1e-14)
    assert float(t.mem_loss) == pytest.approx(math.log(1.44), rel=1e-14)
    assert float(hw_terms(space, b0, masks, probs, scale=100.0, mem_limit=200.0).mem_loss) == 0.0


@pytest.mark.sanitize
def test_all_identity_stage_peak_is_the_input_buffer():
    space = SftnasSpace(4, 20, [SftnasLayer(1, (3, 5), 6), SftnasLayer(1, (1,), 6)])
    b0 = torch.tensor([1.0, 1.0, 0.0, 1.0], dtype=F64, requires_grad=True)
    masks = torch.ones(space.num_masks, dtype=F64, requires_grad=True)
    probs = torch.tensor([0.0, 0.0, 1.0, 0.0, 1.0], dtype=F64, requires_grad=True)
    assert pmem_term(space, b0, masks, probs, 1.0, 1.0) == 2  # num_layers + 0 tail terms
    t = hw_terms(space, b0, masks, probs, scale=1.0, mem_limit=1.0)
    assert float(t.macs.detach()) == 0.0 and float(t.pmem.detach()) == 20 * 3
    (g,) = torch.autograd.grad(t.pmem, b0)
    torch.testing.assert_close(g, torch.full((4,), 20.0, dtype=F64))
    g_graph = Graph()
    g_graph.outputs = [g_graph.input("x", (1, 20, 3))]
    assert _core.cost(g_graph.to_core()).total.peak_sram == 60


@pytest.mark.sanitize
def test_pmem_tie_goes_to_the_first_term():
    # two pointwise layers with mem_0 = s c (1 + B_0) = mem_1 = s c (B_0 + B_1) when B_1 = 1
    space = SftnasSpace(2, 8, [SftnasLayer(1, (1,), 3), SftnasLayer(1, (1,), 3)])
    b0 = torch.ones(2, dtype=F64, requires_grad=True)
    masks = torch.tensor([1.0, 1.0, 0.0, 0.0, 1.0, 0.0], dtype=F64, requires_grad=True)
    probs = torch.tensor([1.0, 0.0, 1.0, 0.0], dtype=F64, requires_grad=True)
    assert pmem_term(space, b0, masks, probs, 1.0, 1.0) == 0
    t = hw_terms(space, b0, masks, probs, scale=1.0, mem_limit=1.0)
    assert float(t.pmem.detach()) == 8 * 2 * 3
    (g,) = torch.autograd.grad(t.pmem, masks)
    torch.testing.assert_close(g, torch.tensor([16.0] * 3 + [0.0] * 3, dtype=F64))


def stage_graph(space: SftnasSpace, b0, masks, probs, tail_filters: int | None):
    """The concrete stage picked by binary masks / one-hot probs, as a harcore op graph, plus the tail
    (1x1 conv to `tail_filters`, flatten, linear to 32) and its TailTerms."""
    c = int(b0.sum())
    masks_l, probs_l = space.split_masks(masks), space.split_probs(probs)
    g = Graph()
    t = g.input("x", (1, space.s0, c))
    f = 1
    for i, l in enumerate(space.layers):
        j = int(torch.argmax(probs_l[i]))
        if j == len(l.kernels):
            continue  # identity: no op
        k, out = l.kernels[j], int(masks_l[i][j].sum())
        pad = (k - 1) // 2
        t = g.add_op(Op("conv", f"conv{i}", inputs=[t], in_channels=f, out_channels=out, kernel=(k, 1),
                        stride=(l.stride, 1), pad=(pad, pad, 0, 0)), (out, space.lengths[i + 1], c))
        f = out
    tail_mem, tail_macs = [], []
    if tail_filters is not None:
        s, h = space.lengths[-1], tail_filters
        t = g.add_op(Op("conv", "tail_pw", inputs=[t], in_channels=f, out_channels=h), (h, s, c))
        t = g.add_op(Op("reshape", "flatten", inputs=[t]), (h * s * c,))
        t = g.add_op(Op("linear", "fc", inputs=[t], in_channels=h * s * c, out_channels=32), (32,))
        tail_mem = [TailTerm(c=h * s, d=s), TailTerm(a=32, c=h * s)]  # pw: in + out; fc: in + out
        tail_macs = [TailTerm(d=h * s), TailTerm(c=32 * h * s)]
    g.outputs = [t]
    return g, tail_mem, tail_macs


@pytest.mark.sanitize
@pytest.mark.parametrize("seed", range(40))
def test_binary_one_hot_equals_cost_model(seed):
    rng = random.Random(1000 + seed)
    c0, s0 = rng.randint(1, 12), rng.randint(8, 300)
    if seed % 2:
        space = SftnasSpace.standard(c0, s0, [rng.randint(1, 24) for _ in sftnas_strides(s0)],
                                     stride1_first=seed % 4 == 1)
    else:
        space = random_space(rng, with_tail=False)
        c0, s0 = space.c0, space.s0
    b0 = torch.tensor([float(rng.random() < 0.6) for _ in range(c0)], dtype=F64)
    b0[rng.randrange(c0)] = 1.0
    masks_l, probs_l = [], []
    for l in space.layers:
        layer = []
        for _ in l.kernels:
            m = torch.tensor([float(rng.random() < 0.5) for _ in range(l.filters)], dtype=F64)
            m[rng.randrange(l.filters)] = 1.0
            layer.append(m)
        masks_l.append(layer)
        p = torch.zeros(l.num_candidates, dtype=F64)
        p[rng.randrange(l.num_candidates)] = 1.0
        probs_l.append(p)
    masks, probs = space.pack_masks(masks_l), space.pack_probs(probs_l)
    tail_filters = rng.choice([None, rng.randint(1, 20)])
    graph, tail_mem, tail_macs = stage_graph(space, b0, masks, probs, tail_filters)
    space = SftnasSpace(space.c0, space.s0, space.layers, tail_mem, tail_macs)
    report = _core.cost(graph.to_core())
    t = hw_terms(space, b0, masks, probs, scale=1.0, mem_limit=1.0)
    assert float(t.macs) == report.total.macs
    assert float(t.pmem) == report.total.peak_sram
    r = reference_terms(space, b0, masks, probs, scale=1.0, mem_limit=1.0)
    assert float(r.macs) == report.total.macs and float(r.pmem) == report.total.peak_sram


@pytest.mark.sanitize
def test_full_macs_is_the_all_kept_largest_kernel_stage():
    space = SftnasSpace.standard(9, 128, [4, 8, 8, 16, 16, 32, 32, 32, 32, 64], tail_macs=[TailTerm(5, 1, 2, 3)])
    b0 = torch.ones(9, dtype=F64)
    masks = torch.ones(space.num_masks, dtype=F64)
    probs = torch.cat([torch.eye(l.num_candidates, dtype=F64)[len(l.kernels) - 1] for l in space.layers])
    t = hw_terms(space, b0, masks, probs, scale=1.0, mem_limit=1.0)
    assert float(t.macs) == space.full_macs()


# -- validation ----------------------------------------------------------------------------------

@pytest.mark.sanitize
@pytest.mark.parametrize("kwargs, match", [
    (dict(c0=0), "c0"),
    (dict(s0=0), "s0"),
    (dict(layers=[]), "layers"),
    (dict(layers=[SftnasLayer(0, (3,), 4)]), "layer 0: stride"),
    (dict(layers=[SftnasLayer(2, (3,), 4), SftnasLayer(2, (3, 4), 4)]), r"layer 1: kernels\[1\]"),
    (dict(layers=[SftnasLayer(2, (3, 3), 4)]), "duplicates"),
    (dict(layers=[SftnasLayer(2, (), 4)]), "layer 0: kernels is empty"),
    (dict(layers=[SftnasLayer(2, (3,), 0)]), "layer 0: filters"),
    (dict(tail_mem=[TailTerm(b=math.nan)]), r"tail_mem\[0\]\.b"),
    (dict(tail_macs=[TailTerm(), TailTerm(d=math.inf)]), r"tail_macs\[1\]\.d"),
])
def test_bad_space_names_field(kwargs, match):
    args = dict(c0=3, s0=32, layers=[SftnasLayer(2, (1, 3), 4)], tail_mem=(), tail_macs=())
    args.update(kwargs)
    with pytest.raises(_core.GraphError, match=match):
        SftnasSpace(**args)


@pytest.mark.sanitize
def test_bad_inputs_name_field():
    space = hand_worked_space()  # layer 0: k=3 (4 filters); layer 1: k=1, k=5, identity
    b0, masks, probs = (x.detach() for x in soft_inputs(space, 0))
    kw = dict(scale=1.0, mem_limit=1.0)

    def bad(match, b=b0, m=masks, p=probs, exc=_core.GraphError, **over):
        with pytest.raises(exc, match=match):
            hw_terms(space, b, m, p, **{**kw, **over})

    bad("b0 has 2 entries, expected c0 = 3", b=b0[:2])
    bad("masks has 11 entries, expected 12", m=masks[:11])
    bad("probs has 5 entries, expected 4", p=torch.cat([probs, probs[:1]]))
    m = masks.clone()
    m[9] = math.nan
    bad(r"masks\[9\] \(layer 1, candidate 1 \(conv k=5\), filter 1\) is NaN", m=m)
    m[9] = -0.5
    bad(r"masks\[9\] .* is negative", m=m)
    m[9] = math.inf
    bad(r"masks\[9\] .* is infinite", m=m)
    b = b0.clone()
    b[2] = -1.0
    bad(r"b0\[2\] is negative", b=b)
    p = probs.clone()
    p[3] = math.nan
    bad(r"probs\[3\] \(layer 1, candidate 2 \(identity\)\) must be finite and >= 0", p=p)
    bad("mem_limit", mem_limit=0.0)
    bad("mem_limit", mem_limit=-5.0)
    bad("mem_limit", mem_limit=math.nan)
    bad("scale", scale=0.0)
    bad("scale", scale=math.inf)
    bad("masks must be float32 or float64", m=masks.half(), exc=TypeError)
    bad("share one dtype", b=b0.float(), exc=TypeError)
    bad("probs must be 1-D", p=probs.reshape(2, 2), exc=ValueError)
    # the C++ entry point checks dtype / rank / shape itself
    with pytest.raises(_core.GraphError, match="b0 must be float32 or float64"):
        _core.sftnas_forward(space._core, b0.numpy().astype("int64"), masks.numpy(), probs.numpy(), 1.0, 1.0)
    with pytest.raises(_core.GraphError, match="masks must be a 1-D array"):
        _core.sftnas_forward(space._core, b0.numpy(), masks.numpy().reshape(3, 4), probs.numpy(), 1.0, 1.0)
    _, jac, _ = _core.sftnas_forward(space._core, b0.numpy(), masks.numpy(), probs.numpy(), 1.0, 1.0)
    with pytest.raises(_core.GraphError, match="jac must have shape"):
        _core.sftnas_backward(space._core, jac[:, 1:], 1.0, 0.0, 0.0, 0.0)
