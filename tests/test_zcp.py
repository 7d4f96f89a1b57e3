"""harcore.zcp proxies and the Table I space: closed forms, hand computations, every zoo model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn

from harcore import models, zcp


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_synflow_closed_form_linear_chain():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(4, 5, bias=False), nn.Linear(5, 3, bias=False), nn.Linear(3, 2, bias=False))
    with torch.no_grad():
        net[1].weight.neg_()   # the proxy takes absolute values: signs must not matter
    w = [m.weight.detach().double().abs().numpy() for m in net]
    r = np.ones(2) @ w[2] @ w[1] @ w[0] @ np.ones(4)
    x = torch.randn(3, 4)
    s = zcp.score(net, x, torch.tensor([0, 1, 0]), ["synflow", "synflow_bn"])
    assert s["synflow"] == pytest.approx(3 * r, rel=1e-12)
    assert s["synflow_bn"] == pytest.approx(3 * r, rel=1e-12)   # no BatchNorm: identical


def test_synflow_ignores_data_and_depth_scales():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 6, bias=False), nn.Linear(6, 6, bias=False))
    a = zcp.score(net, torch.randn(4, 6), torch.zeros(4, dtype=torch.long), ["synflow"])["synflow"]
    b = zcp.score(net, 100 * torch.randn(4, 6), torch.ones(4, dtype=torch.long), ["synflow"])["synflow"]
    assert a == b


def _hand_grad(w: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    logits = x @ w.T
    p = np.exp(logits - logits.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    onehot = np.eye(w.shape[0])[y]
    return (p - onehot).T @ x / len(y)          # d mean-CE / dW


def test_snip_grad_norm_plain_by_hand():
    w = np.array([[0.5, -1.0, 0.25], [1.5, 0.75, -0.5]])
    net = nn.Linear(3, 2, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.tensor(w, dtype=torch.float32))
    x = np.array([[1.0, 2.0, -1.0], [0.5, -0.5, 2.0], [-1.0, 0.0, 1.0]])
    y = np.array([0, 1, 1])
    g = _hand_grad(w, x, y)
    s = zcp.score(net, torch.tensor(x, dtype=torch.float32), torch.tensor(y), ["snip", "grad_norm", "plain"])
    assert s["grad_norm"] == pytest.approx(np.sqrt((g ** 2).sum()), rel=1e-5)
    assert s["snip"] == pytest.approx(np.abs(w * g).sum(), rel=1e-5)
    assert s["plain"] == pytest.approx((w * g).sum(), rel=1e-5, abs=1e-7)


def test_grad_norm_sums_per_layer_norms_and_skips_biases():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    x, y = torch.randn(5, 3), torch.tensor([0, 1, 1, 0, 1])
    loss = nn.functional.cross_entropy(net(x), y)
    g1, g2 = torch.autograd.grad(loss, [net[0].weight, net[2].weight])
    s = zcp.score(net, x, y, ["grad_norm"])["grad_norm"]
    assert s == pytest.approx(float(g1.norm() + g2.norm()), rel=1e-5)


def test_fisher_by_hand_on_linear():
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(3, 4, bias=False), nn.Tanh(), nn.Linear(4, 2, bias=False))
    x, y = torch.randn(6, 3), torch.tensor([0, 1, 0, 1, 1, 0])
    a1 = net[0](x)
    a1.retain_grad()
    a2 = net[2](torch.tanh(a1))
    a2.retain_grad()
    nn.functional.cross_entropy(a2, y).backward()
    want = sum(float((0.5 * (a.detach() * a.grad).pow(2).mean(0)).sum()) for a in (a1, a2))
    assert zcp.score(net, x, y, ["fisher"])["fisher"] == pytest.approx(want, rel=1e-5)


def test_jacob_cov_identity_correlation():
    # Orthogonal zero-mean Jacobian rows give corrcoef = I: every eigenvalue is 1.
    net = nn.Linear(4, 1, bias=False)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1.0, -1.0, 1.0, -1.0]]))
    x, y = torch.randn(2, 4), torch.zeros(2, dtype=torch.long)
    # both samples share the Jacobian (a linear model): correlation 1 -> eigenvalues 2 and 0
    s = zcp.score(net, x, y, ["jacob_cov"])["jacob_cov"]
    k = 1e-5
    assert s == pytest.approx(-(math.log(2 + k) + 1 / (2 + k) + math.log(k) + 1 / k), rel=1e-6)


def _messy_model() -> nn.Module:
    torch.manual_seed(5)
    net = nn.Sequential(nn.Conv1d(3, 8, 3), nn.BatchNorm1d(8), nn.ReLU(), nn.Dropout(0.5),
                        nn.Conv1d(8, 8, 3), nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(8, 4))
    net[1].train()
    net[3].eval()
    net[7].train(False)
    net[4].weight.requires_grad_(False)
    net[0].weight.grad = torch.full_like(net[0].weight, 0.25)
    return net


def test_score_leaves_model_and_rng_untouched():
    net = _messy_model()
    state = {k: v.clone() for k, v in net.state_dict().items()}
    modes = [m.training for m in net.modules()]
    req = [p.requires_grad for p in net.parameters()]
    grads = [None if p.grad is None else p.grad.clone() for p in net.parameters()]
    x, y = torch.randn(6, 3, 20), torch.tensor([0, 1, 2, 3, 0, 1])
    rng = torch.get_rng_state()
    s = zcp.score(net, x, y)
    assert set(s) == set(zcp.PROXIES)
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert [m.training for m in net.modules()] == modes
    assert [p.requires_grad for p in net.parameters()] == req
    for p, g in zip(net.parameters(), grads):
        assert (p.grad is None and g is None) or torch.equal(p.grad, g)
    assert torch.equal(torch.get_rng_state(), rng)


def test_unknown_proxy_and_bad_batch():
    net = nn.Linear(3, 2)
    with pytest.raises(zcp.ZcpError, match="ensemble"):
        zcp.score(net, torch.randn(4, 3), torch.zeros(4, dtype=torch.long), ["ensemble"])
    with pytest.raises(zcp.ZcpError, match="one label per window"):
        zcp.score(net, torch.randn(4, 3), torch.zeros(3, dtype=torch.long))


@pytest.mark.parametrize("name", models.names())
def test_every_proxy_finite_and_deterministic_on_zoo(name):
    net = models.create(name, in_channels=3, seq_len=32, num_classes=4)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(6, 3, 32, generator=g), torch.tensor([0, 1, 2, 3, 0, 1])
    a = zcp.score(net, x, y, seed=7)
    b = zcp.score(net, x, y, seed=7)
    assert set(a) == set(zcp.PROXIES)
    for k, v in a.items():
        assert math.isfinite(v), (name, k, v)
        assert v == b[k], (name, k)
    assert a["params"] > 0
    assert a["macs"] > 0


@pytest.mark.parametrize("kind", ["cnn", "lstm", "gru"])
def test_proxies_cover_conv_rnn_layers(kind):
    torch.manual_seed(0)
    if kind == "cnn":
        net = zcp.build(zcp.Arch("cnn", (8, 16), (0.1, 0.2), (3, 5)), 3, 24, 4)
    elif kind == "lstm":
        net = zcp.build(zcp.Arch("lstm", (8, 16), (0.3, 0.0)), 3, 24, 4)
    else:
        class G(nn.Module):
            def __init__(self):
                super().__init__()
                self.rnn, self.fc = nn.GRU(3, 8, batch_first=True), nn.Linear(8, 4)

            def forward(self, x):
                return self.fc(self.rnn(x.transpose(1, 2))[0][:, -1])
        net = G()
    x, y = torch.randn(5, 3, 24), torch.tensor([0, 1, 2, 3, 0])
    names = [n for n, _ in zcp.weight_params(net)]
    assert any("weight_hh" in n for n in names) or kind == "cnn"
    s = zcp.score(net, x, y, [p for p in zcp.PROXIES if p not in ("params", "macs")] if kind == "gru" else None)
    assert all(math.isfinite(v) for v in s.values())
    assert s["fisher"] > 0 and s["snip"] > 0 and s["synflow"] > 0


def test_ensemble_mean_rank():
    scores = [{"snip": 1.0, "synflow": 30.0}, {"snip": 3.0, "synflow": 10.0}, {"snip": 2.0, "synflow": 20.0}]
    e = zcp.ensemble(scores)
    assert e == pytest.approx([(0 + 1) / 2, (1 + 0) / 2, (0.5 + 0.5) / 2])


def test_space_sizes_match_paper():
    cnn, lstm = zcp.space_size("cnn"), zcp.space_size("lstm")
    assert cnn == sum(5120 ** n for n in range(1, 8))
    assert lstm == sum(63 ** n * 5 ** (n - 1) for n in range(2, 5))
    assert f"{cnn:.2e}" == "9.23e+25"          # paper: ~9 x 10^25
    assert f"{lstm:.3g}" == "1.98e+09"          # paper: ~1.9 x 10^9


def test_sampler_ranges_ratio_and_seed():
    a = zcp.sample(400, seed=11)
    assert a == zcp.sample(400, seed=11) and a != zcp.sample(400, seed=12)
    cnn = [x for x in a if x.kind == "cnn"]
    lstm = [x for x in a if x.kind == "lstm"]
    assert 0.68 < len(cnn) / len(a) < 0.82
    for x in cnn:
        assert 1 <= len(x.widths) <= 7 and len(x.kernels) == len(x.dropouts) == len(x.widths)
        assert all(w % 8 == 0 and 8 <= w <= 1024 for w in x.widths)
        assert all(2 <= k <= 9 for k in x.kernels) and all(p in (0.1, 0.2, 0.3, 0.4, 0.5) for p in x.dropouts)
    for x in lstm:
        assert 2 <= len(x.widths) <= 4 and all(w % 8 == 0 and 8 <= w <= 504 for w in x.widths)
        assert x.dropouts[-1] == 0.0 and all(p in (0.1, 0.2, 0.3, 0.4, 0.5) for p in x.dropouts[:-1])
    assert zcp.Arch.from_dict(a[0].to_dict()) == a[0]
    assert zcp.sample(50, seed=11) == a[:50]   # a study extended with more architectures keeps its first ones


def test_build_xavier_and_shapes():
    arch = zcp.Arch("cnn", (16, 8), (0.1, 0.5), (9, 2))
    net = zcp.build(arch, 3, 100, 6)
    assert net(torch.randn(2, 3, 100)).shape == (2, 6)
    assert all(float(p.detach().abs().sum()) == 0 for n, p in net.named_parameters() if n.endswith("bias"))
    lstm = zcp.build(zcp.Arch("lstm", (8, 16, 24), (0.1, 0.2, 0.0)), 3, 100, 6)
    assert lstm(torch.randn(2, 3, 100)).shape == (2, 6)
