"""Zero-cost proxies: scores of an untrained network from one batch (or none), see ``docs/zcp.md``.

Every proxy runs on a private deep copy of the model, so the caller's model keeps its weights, modes,
``requires_grad`` flags, gradients and BatchNorm statistics; the global RNG state is restored afterwards.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from harcore.errors import HarcoreError

__all__ = ["PROXIES", "ZCP_PROXIES", "BASELINES", "score", "weight_params", "ZcpError"]


class ZcpError(HarcoreError, ValueError):
    """Bad input to a zero-cost proxy (unknown proxy name, mismatched batch, ...)."""


_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_DROPOUT = (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout)
# Modules whose output activations fisher scores (per output channel).
_FISHER_MODULES = (nn.Conv1d, nn.Conv2d, nn.Linear, nn.LSTM, nn.GRU)


def weight_params(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """The parameters every weight-based proxy sums over: trainable tensors of two or more dimensions.

    That is the weight of every Conv1d/Conv2d/Linear, the ``weight_ih_l*``/``weight_hh_l*`` matrices of
    LSTM/GRU and any matrix-shaped ``nn.Parameter`` of a custom (attention) block; biases and the 1-D
    affine parameters of BatchNorm/LayerNorm are left out, as the reference code leaves out everything but
    layer weights.
    """
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad and p.dim() >= 2]


def _prepare(model: nn.Module, dtype: torch.dtype = torch.float32) -> nn.Module:
    """A private copy in the scoring mode: BatchNorm on batch statistics, dropout (and RNN dropout) off."""
    net = copy.deepcopy(model).to(dtype)
    net.train()
    for m in net.modules():
        if isinstance(m, _DROPOUT) or isinstance(m, nn.RNNBase):
            m.eval()
    for p in net.parameters():
        p.requires_grad_(True)
        p.grad = None
    return net


def _ce(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(net(x), y)


def _grads(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    ws = [p for _, p in weight_params(net)]
    loss = _ce(net, x, y)
    gs = torch.autograd.grad(loss, ws, allow_unused=True)
    return [(w.detach(), torch.zeros_like(w) if g is None else g.detach()) for w, g in zip(ws, gs)]


#: From the weights and their loss gradients (one backward pass that :func:`score` shares between them).
_FROM_GRADS: dict[str, Callable[[list[tuple[torch.Tensor, torch.Tensor]]], float]] = {
    "grad_norm": lambda wg: float(sum(g.norm().item() for _, g in wg)),
    "snip": lambda wg: float(sum((w * g).abs().sum().item() for w, g in wg)),
    "plain": lambda wg: float(sum((w * g).sum().item() for w, g in wg)),
}


def grad_norm(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return _FROM_GRADS["grad_norm"](_grads(_prepare(model), x, y))


def snip(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return _FROM_GRADS["snip"](_grads(_prepare(model), x, y))


def plain(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return _FROM_GRADS["plain"](_grads(_prepare(model), x, y))


def grasp(model: nn.Module, x: torch.Tensor, y: torch.Tensor,
          grads: list[tuple[torch.Tensor, torch.Tensor]] | None = None) -> float:
    """Σ −θ ⊙ (H g): g = ∂CE/∂θ from a first pass, H g by differentiating g·∂CE/∂θ (temperature 1).

    ``grads``: the first pass's ``(weight, gradient)`` pairs when already computed (:func:`score` shares them
    with grad_norm, snip and plain: the same copy, batch and mode give the same gradients)."""
    net = _prepare(model)
    ws = [p for _, p in weight_params(net)]
    if grads is not None:
        g0 = [g for _, g in grads]
    else:
        g0 = torch.autograd.grad(_ce(net, x, y), ws, allow_unused=True)
        g0 = [torch.zeros_like(w) if g is None else g.detach() for w, g in zip(ws, g0)]
    g1 = torch.autograd.grad(_ce(net, x, y), ws, create_graph=True, allow_unused=True)
    z = sum((a * b).sum() for a, b in zip(g0, g1) if b is not None)
    if not isinstance(z, torch.Tensor) or not z.requires_grad:
        return 0.0
    hg = torch.autograd.grad(z, ws, allow_unused=True)
    return float(sum((-w.detach() * h).sum().item() for w, h in zip(ws, hg) if h is not None))


def _channel_axes(m: nn.Module, out: torch.Tensor) -> tuple[int, int]:
    """(batch axis, channel axis) of a module's output activation."""
    if isinstance(m, (nn.Conv1d, nn.Conv2d)):
        return 0, 1
    if isinstance(m, nn.RNNBase):
        return (0 if m.batch_first else 1), out.dim() - 1
    return 0, out.dim() - 1  # Linear: channels last, any leading dims are batch x positions


def fisher(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Σ over layers and output channels of 0.5 · mean_batch (Σ_positions a · ∂CE/∂a)²."""
    net = _prepare(model)
    acts: list[tuple[nn.Module, torch.Tensor]] = []

    def hook(m: nn.Module, _inp: Any, out: Any) -> None:
        a = out[0] if isinstance(out, tuple) else out
        if isinstance(a, torch.Tensor) and a.requires_grad:
            a.retain_grad()
            acts.append((m, a))

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, _FISHER_MODULES)]
    try:
        _ce(net, x, y).backward()
    finally:
        for h in handles:
            h.remove()
    total = 0.0
    for m, a in acts:
        if a.grad is None:
            continue
        b_ax, c_ax = _channel_axes(m, a)
        prod = (a.detach() * a.grad).movedim((b_ax, c_ax), (0, 1))
        per = prod.reshape(prod.shape[0], prod.shape[1], -1).sum(-1)   # (batch, channels)
        total += float((0.5 * per.pow(2).mean(0)).sum().item())
    return total


def jacob_cov(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """−Σ [log(λ + 1e-5) + 1/(λ + 1e-5)], λ the eigenvalues of corrcoef of the per-sample input Jacobians."""
    net = _prepare(model)
    xi = x.detach().clone().requires_grad_(True)
    out = net(xi)
    (jac,) = torch.autograd.grad(out.sum(), xi)
    j = jac.reshape(jac.shape[0], -1).double().numpy()
    j = j - j.mean(1, keepdims=True)
    sd = np.sqrt((j * j).sum(1))
    # A row with zero spread has no defined correlation; it is taken as uncorrelated with every other row
    # (an identity row), where np.corrcoef would return NaN.
    ok = sd > 0
    jn = np.zeros_like(j)
    jn[ok] = j[ok] / sd[ok, None]
    corr = jn @ jn.T
    corr[~ok, :] = 0.0
    corr[:, ~ok] = 0.0
    np.fill_diagonal(corr, 1.0)
    lam = np.clip(np.linalg.eigvalsh(corr), 0.0, None)   # round-off can make a few slightly negative
    k = 1e-5
    return float(-np.sum(np.log(lam + k) + 1.0 / (lam + k)))


def _synflow(model: nn.Module, x: torch.Tensor, keep_bn: bool) -> float:
    net = copy.deepcopy(model).double()
    if not keep_bn:
        _replace_bn(net)
    # Eval mode: a batch of one constant window has no batch statistics worth normalising by, so BatchNorm
    # (synflow_bn) uses its running statistics; dropout is off.
    net.eval()
    with torch.no_grad():
        for p in net.parameters():
            p.abs_()
        for name, buf in net.named_buffers():
            if buf.is_floating_point() and not name.endswith("running_var"):
                buf.abs_()
    for p in net.parameters():
        p.requires_grad_(True)
        p.grad = None
    ws = [p for _, p in weight_params(net)]
    ones = torch.ones((1,) + tuple(x.shape[1:]), dtype=torch.float64)
    r = net(ones).sum()
    gs = torch.autograd.grad(r, ws, allow_unused=True)
    return float(sum((w.detach() * g).abs().sum().item() for w, g in zip(ws, gs) if g is not None))


def _replace_bn(net: nn.Module) -> None:
    for name, child in list(net.named_children()):
        if isinstance(child, _BN):
            setattr(net, name, nn.Identity())
        else:
            _replace_bn(child)


def synflow(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return _synflow(model, x, keep_bn=False)


def synflow_bn(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return _synflow(model, x, keep_bn=True)


def initial_val_f1(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    net = copy.deepcopy(model).float().eval()
    with torch.no_grad():
        pred = torch.cat([net(x[i:i + 512]).argmax(1) for i in range(0, len(x), 512)])
    from sklearn.metrics import f1_score

    return float(f1_score(y.numpy(), pred.numpy(), average="macro", zero_division=0.0))


def _cost_total(model: nn.Module, x: torch.Tensor) -> Any:
    from harcore.cost import profile

    net = copy.deepcopy(model).float().eval()
    return profile(net, tuple(x.shape[1:])).total


def n_params(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(_cost_total(model, x).params)


def macs(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    return float(_cost_total(model, x).macs)


_FUNCS: dict[str, Callable[[nn.Module, torch.Tensor, torch.Tensor], float]] = {
    "grad_norm": grad_norm, "snip": snip, "grasp": grasp, "fisher": fisher, "jacob_cov": jacob_cov,
    "plain": plain, "synflow": synflow, "synflow_bn": synflow_bn, "initial_val_f1": initial_val_f1,
    "params": n_params, "macs": macs,
}
#: The paper's zero-cost proxies (the members of the ensemble).
ZCP_PROXIES: tuple[str, ...] = ("grad_norm", "snip", "grasp", "fisher", "jacob_cov", "plain", "synflow",
                                "synflow_bn", "initial_val_f1")
#: Baselines from the C++ cost model.
BASELINES: tuple[str, ...] = ("params", "macs")
#: Everything :func:`score` computes for one model (``ensemble`` is a population score: :func:`ensemble`).
PROXIES: tuple[str, ...] = ZCP_PROXIES + BASELINES


def _as_tensors(x: Any, y: Any) -> tuple[torch.Tensor, torch.Tensor]:
    xt = torch.as_tensor(np.asarray(x) if not isinstance(x, torch.Tensor) else x).float()
    yt = torch.as_tensor(np.asarray(y) if not isinstance(y, torch.Tensor) else y).long()
    if xt.dim() < 2:
        raise ZcpError(f"x must be a batch shaped (batch, channels, time), got shape {tuple(xt.shape)}")
    if yt.dim() != 1 or yt.shape[0] != xt.shape[0]:
        raise ZcpError(f"y must hold one label per window of x: x has {xt.shape[0]} windows, y has shape "
                       f"{tuple(yt.shape)}")
    if xt.shape[0] < 2:
        raise ZcpError("the proxies need a batch of at least 2 windows (jacob_cov correlates samples)")
    if not torch.isfinite(xt).all():
        raise ZcpError("x holds NaN or infinite values")
    return xt.detach(), yt.detach()


def score(model: nn.Module, x: Any, y: Any, proxies: Sequence[str] | None = None, seed: int = 0, *,
          val: tuple[Any, Any] | None = None) -> dict[str, float]:
    """Zero-cost proxy scores of ``model`` (input ``(batch, channels, time)``, output logits).

    ``x``, ``y``: one batch (the paper: one batch of 256 training windows). ``proxies``: names from
    :data:`PROXIES` (all when ``None``). ``seed`` seeds torch for the duration of the call (the global RNG
    state is restored). ``val``: ``(x_val, y_val)`` for ``initial_val_f1`` (default: the batch itself).
    The model is not modified in any way. Definitions: ``docs/zcp.md``.
    """
    names = list(PROXIES) if proxies is None else list(proxies)
    bad = [p for p in names if p not in _FUNCS]
    if bad:
        hint = " ('ensemble' ranks a population: harcore.zcp.ensemble)" if "ensemble" in bad else ""
        raise ZcpError(f"unknown proxy {', '.join(map(repr, bad))}{hint}; known: {', '.join(PROXIES)}")
    xt, yt = _as_tensors(x, y)
    vx, vy = (xt, yt) if val is None else _as_tensors(*val)
    out: dict[str, float] = {}
    # grad_norm, snip, plain and grasp's first pass need the same gradient (same copy, batch, mode; no random
    # draw), and params/macs the same profile: each is computed once (tested equal to scoring one at a time)
    grads: list[tuple[torch.Tensor, torch.Tensor]] | None = None
    total: Any = None
    with torch.random.fork_rng(devices=[]):
        for name in names:
            torch.manual_seed(seed)
            if name == "initial_val_f1":
                out[name] = initial_val_f1(model, vx, vy)
            elif name in _FROM_GRADS or name == "grasp":
                if grads is None:
                    grads = _grads(_prepare(model), xt, yt)
                out[name] = grasp(model, xt, yt, grads) if name == "grasp" else _FROM_GRADS[name](grads)
            elif name in BASELINES:
                total = _cost_total(model, xt) if total is None else total
                out[name] = float(total.params if name == "params" else total.macs)
            else:
                out[name] = _FUNCS[name](model, xt, yt)
    return out


def ensemble(scores: Sequence[dict[str, float]], members: Iterable[str] = ZCP_PROXIES) -> list[float]:
    """The paper's ensemble ("the mean of each ZCP") for a population of architectures.

    Proxies live on incomparable scales (synflow spans tens of orders of magnitude), so each member is
    replaced by its normalised rank in the population (average ranks for ties, scaled to [0, 1]) and the
    ensemble is the mean of those ranks. Members missing or non-finite for an architecture are skipped for it.
    """
    from scipy.stats import rankdata

    members = [m for m in members if any(m in s for s in scores)]
    n = len(scores)
    if n == 0:
        return []
    ranks = {}
    for m in members:
        v = np.array([s.get(m, math.nan) for s in scores], dtype=np.float64)
        fin = np.isfinite(v)
        r = np.full(n, math.nan)
        if fin.sum() > 1:
            r[fin] = (rankdata(v[fin]) - 1) / (fin.sum() - 1)
        elif fin.sum() == 1:
            r[fin] = 0.5
        ranks[m] = r
    out = []
    for i in range(n):
        vals = [ranks[m][i] for m in members if np.isfinite(ranks[m][i])]
        out.append(float(np.mean(vals)) if vals else math.nan)
    return out
