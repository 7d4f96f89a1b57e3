"""Proxy-guided search under a hardware budget (beyond the paper): sample Table I architectures, drop those
over the budget with the C++ batch cost API (:func:`harcore.cost.batch`: one call per template, no model is
built for the filter), rank the rest by a proxy or the ensemble, train the top k, keep the best by validation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from harcore.errors import BudgetError

from .space import Arch, build, sample

__all__ = ["Budget", "arch_costs", "within_budget", "zcp_search", "SearchResult"]

_COST_FIELDS = ("macs", "params", "peak_sram", "flash")


@dataclass(frozen=True)
class Budget:
    """Upper bounds (None: unbounded) on the int8 deployment cost of the C++ cost model."""

    macs: int | None = None
    params: int | None = None
    peak_sram: int | None = None
    flash: int | None = None

    def limits(self) -> np.ndarray:
        return np.array([math.inf if getattr(self, f) is None else getattr(self, f) for f in _COST_FIELDS])


def _cnn_template(depth: int, in_channels: int, seq_len: int, num_classes: int) -> Any:
    from harcore.graph.trace import trace

    net = build(Arch("cnn", (8,) * depth, (0.1,) * depth, (2,) * depth), in_channels, seq_len, num_classes,
                init="torch")
    return trace(net.eval(), (in_channels, seq_len))


def _lstm_template(depth: int, in_channels: int, seq_len: int, num_classes: int) -> Any:
    from harcore.graph.trace import trace

    net = build(Arch("lstm", (8,) * depth, (0.1,) * (depth - 1) + (0.0,)), in_channels, seq_len, num_classes,
                init="torch")
    return trace(net.eval(), (in_channels, seq_len))


def arch_costs(archs: Sequence[Arch], in_channels: int, seq_len: int, num_classes: int) -> np.ndarray:
    """``(N, 4)`` int64 (macs, params, peak_sram, flash) of every architecture, from batched C++ calls.

    One template per kind and depth (at most 7 + 3 C++ calls); widths and kernels are bound per row. (Disabling
    the trailing blocks of one 7-block template would not give the same peak SRAM: a disabled op keeps its
    buffer in the plan.)
    """
    from harcore.cost import batch

    out = np.zeros((len(archs), 4), dtype=np.int64)
    for depth in sorted({len(a.widths) for a in archs if a.kind == "cnn"}):
        idx = [i for i, a in enumerate(archs) if a.kind == "cnn" and len(a.widths) == depth]
        g = _cnn_template(depth, in_channels, seq_len, num_classes)
        convs = [op.name for op in g.ops if op.kind == "conv"]
        binds = [b for j, c in enumerate(convs) for b in ((c, "out_channels", 2 * j), (c, "kernel_w", 2 * j + 1))]
        rows = [[v for w, k in zip(archs[i].widths, archs[i].kernels) for v in (w, k)] for i in idx]
        out[idx] = batch(g, binds, np.array(rows, dtype=np.int64))
    for depth in sorted({len(a.widths) for a in archs if a.kind == "lstm"}):
        idx = [i for i, a in enumerate(archs) if a.kind == "lstm" and len(a.widths) == depth]
        g = _lstm_template(depth, in_channels, seq_len, num_classes)
        rnns = [op.name for op in g.ops if op.kind == "rnn"]
        binds = [(r, "out_channels", j) for j, r in enumerate(rnns)]
        out[idx] = batch(g, binds, np.array([list(archs[i].widths) for i in idx], dtype=np.int64))
    return out


def within_budget(costs: np.ndarray, budget: Budget) -> np.ndarray:
    """Boolean mask of the rows of :func:`arch_costs` within every bound of ``budget``."""
    return (np.asarray(costs, dtype=np.float64) <= budget.limits()[None, :]).all(axis=1)


@dataclass
class SearchResult:
    best: dict[str, Any] | None
    ranked: list[dict[str, Any]]          # candidates within budget, best proxy first: arch, costs, scores
    trained: list[dict[str, Any]]         # run_architecture records of the top k
    n_sampled: int
    n_within_budget: int
    proxy: str
    meta: dict[str, Any] = field(default_factory=dict)


def zcp_search(data: Any, *, n_candidates: int = 200, budget: Budget = Budget(), proxy: str = "ensemble",
               top_k: int = 5, epochs: int = 50, seed: int = 0, proxy_batch: int = 256,
               max_train: int | None = None, archs: Sequence[Arch] | None = None) -> SearchResult:
    """Sample ``n_candidates`` Table I architectures (or take ``archs``), keep those within ``budget``, score
    them with ``proxy`` (a name of :data:`harcore.zcp.PROXIES` or ``"ensemble"``) on one seeded training
    batch, train the ``top_k`` best-ranked with the study's protocol and return the best by validation F1.
    ``data``: a :class:`harcore.zcp.study.StudyData`."""
    import torch

    from .proxies import PROXIES, ZCP_PROXIES, ensemble, score
    from .study import StudyConfig, run_architecture

    if proxy != "ensemble" and proxy not in PROXIES:
        raise ValueError(f"unknown proxy {proxy!r}; choose 'ensemble' or one of {', '.join(PROXIES)}")
    cands = list(archs) if archs is not None else sample(n_candidates, seed=seed, seq_len=data.seq_len)
    costs = arch_costs(cands, data.in_channels, data.seq_len, data.num_classes)
    keep = np.flatnonzero(within_budget(costs, budget))
    if keep.size == 0:
        raise BudgetError(f"none of the {len(cands)} sampled architectures fits the budget {budget}; "
                          f"the smallest needs {costs.min(0).tolist()} (macs, params, peak_sram, flash)")
    names = list(ZCP_PROXIES) if proxy == "ensemble" else [proxy]
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(data.x_train), size=min(proxy_batch, len(data.x_train)), replace=False)
    xb, yb = data.x_train[pick], data.y_train[pick]
    scored = []
    for i in keep:
        torch.manual_seed(seed)
        net = build(cands[i], data.in_channels, data.seq_len, data.num_classes)
        s = score(net, xb, yb, names, seed=seed, val=(data.x_val, data.y_val))
        scored.append({"index": int(i), "arch": cands[i].to_dict(), "key": cands[i].key,
                       "costs": dict(zip(_COST_FIELDS, map(int, costs[i]))), "scores": s})
    rank_by = ensemble([r["scores"] for r in scored]) if proxy == "ensemble" else [r["scores"][proxy] for r in scored]
    for r, v in zip(scored, rank_by):
        r["rank_score"] = v
    order = sorted(range(len(scored)), key=lambda j: (-(scored[j]["rank_score"] if math.isfinite(
        scored[j]["rank_score"]) else -math.inf), j))
    ranked = [scored[j] for j in order]
    cfg = StudyConfig("search", len(cands), epochs=epochs, seed=seed, proxy_batch=proxy_batch, max_train=max_train)
    trained = [run_architecture(r["index"], cands[r["index"]], data, cfg) for r in ranked[:top_k]]
    best = max(trained, key=lambda r: (r["val_f1"], -r["index"])) if trained else None
    return SearchResult(best, ranked, trained, len(cands), int(keep.size), proxy,
                        {"budget": budget.__dict__, "top_k": top_k, "epochs": epochs, "seed": seed})
