"""Proxy-guided search under a hardware budget (beyond the paper): sample Table I architectures, drop those
over the budget with the C++ batch cost API (:func:`harcore.cost.batch`: one call per template, no model is
built for the filter), rank the rest by a proxy or the ensemble, train the top k, keep the best by validation.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from harcore.errors import BudgetError

from .space import Arch, build, sample

__all__ = ["Budget", "arch_costs", "within_budget", "zcp_search", "SearchResult", "TableISpace"]

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


class TableISpace:
    """The candidate space of :func:`zcp_search` by default: the paper's Table I (:func:`sample`, :func:`build`,
    :func:`arch_costs`). Another space (``harcore.nas``'s derived SFTNAS networks) provides the same five
    methods."""

    name = "table1"

    def __init__(self, in_channels: int, seq_len: int, num_classes: int) -> None:
        self.in_channels, self.seq_len, self.num_classes = in_channels, seq_len, num_classes

    def sample(self, n: int, seed: int) -> list[Arch]:
        return sample(n, seed=seed, seq_len=self.seq_len)

    def costs(self, archs: Sequence[Arch]) -> np.ndarray:
        return arch_costs(archs, self.in_channels, self.seq_len, self.num_classes)

    def build(self, arch: Arch) -> Any:
        return build(arch, self.in_channels, self.seq_len, self.num_classes)

    def key(self, arch: Arch) -> str:
        return arch.key

    def from_dict(self, d: dict[str, Any]) -> Arch:
        return Arch.from_dict(d)


def _check_store(path: Path, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The stored ranking of an earlier run of the same search (None: none there); a CheckpointError naming
    every differing setting when it was made with others."""
    from harcore.errors import CheckpointError

    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
        old = doc["settings"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path}: damaged or not a harcore zcp search ({e})") from None
    diff = [f"{k}: {path} was written with {old.get(k)!r}, resuming with {settings.get(k)!r}"
            for k in sorted(set(old) | set(settings)) if old.get(k) != settings.get(k)]
    if diff:
        raise CheckpointError("cannot resume the zcp search: " + "; ".join(diff))
    return doc


def zcp_search(data: Any, *, n_candidates: int = 200, budget: Budget = Budget(), proxy: str = "ensemble",
               top_k: int = 5, epochs: int = 50, seed: int = 0, proxy_batch: int = 256,
               max_train: int | None = None, archs: Sequence[Any] | None = None, space: Any = None,
               lr: float = 1e-4, batch_size: int = 256, store: str | Path | None = None,
               settings: dict[str, Any] | None = None, on_trained: Callable[[dict[str, Any]], Any] | None = None,
               time_budget: float | None = None) -> SearchResult:
    """Sample ``n_candidates`` architectures of ``space`` (Table I by default; or take ``archs``), keep those
    within ``budget``, score them with ``proxy`` (a name of :data:`harcore.zcp.PROXIES` or ``"ensemble"``) on
    one seeded training batch, train the ``top_k`` best-ranked with the study's protocol (Adam ``lr``, batch
    ``batch_size``, ``epochs``, lr x 0.8 every 10 epochs, best validation epoch) and return the best by
    validation F1. ``data``: a :class:`harcore.zcp.study.StudyData` (with empty test arrays the candidates
    are never evaluated on test).

    ``store``: a folder that makes the search resumable: the ranking (``ranking.json``, written once every
    candidate is scored) and each trained candidate (``trained/NNNNN.json``) are written atomically as they
    finish, and a search run again with the same ``settings`` (plus this call's own) reuses them instead of
    redoing them (other settings: :class:`~harcore.errors.CheckpointError` naming them).

    ``time_budget``: wall seconds for the whole search (sampling, costing, scoring, training; for a comparison at
    equal wall time): the best-ranked candidate is always trained, a further one only while the time spent plus
    the longest training so far stays within the budget (``top_k`` stays the upper bound). The measure is this
    call's time: a resumed search gets the whole budget again for what is left.
    """
    import torch

    from harcore.runstore import atomic_write_text

    from .proxies import PROXIES, ZCP_PROXIES, ensemble, score
    from .study import StudyConfig, run_architecture

    t_start = time.perf_counter()
    if proxy != "ensemble" and proxy not in PROXIES:
        raise ValueError(f"unknown proxy {proxy!r}; choose 'ensemble' or one of {', '.join(PROXIES)}")
    space = space if space is not None else TableISpace(data.in_channels, data.seq_len, data.num_classes)
    cfg = StudyConfig("search", n_candidates, epochs=epochs, seed=seed, batch_size=batch_size, lr=lr,
                      proxy_batch=proxy_batch, max_train=max_train)
    ident = dict(settings or {}, space=getattr(space, "name", type(space).__name__), proxy=proxy, top_k=top_k,
                 budget=dict(budget.__dict__), n_train=len(data.x_train), n_val=len(data.x_val),
                 **{k: v for k, v in cfg.to_dict().items() if k not in ("dataset", "root")})
    folder = Path(store) if store is not None else None
    doc = _check_store(folder / "ranking.json", ident) if folder is not None else None
    if archs is None and doc is None:
        archs = space.sample(n_candidates, seed)
    if doc is not None:
        n_sampled, n_keep, ranked = doc["n_sampled"], doc["n_within_budget"], doc["ranked"]
        cands: dict[int, Any] = {}   # rebuilt from the stored dicts when trained
    else:
        cands = dict(enumerate(archs))
        costs = space.costs(list(archs))
        keep = np.flatnonzero(within_budget(costs, budget))
        if keep.size == 0:
            raise BudgetError(f"none of the {len(archs)} sampled architectures fits the budget {budget}; "
                              f"the smallest needs {costs.min(0).tolist()} (macs, params, peak_sram, flash)")
        names = list(ZCP_PROXIES) if proxy == "ensemble" else [proxy]
        rng = np.random.default_rng(seed)
        pick = rng.choice(len(data.x_train), size=min(proxy_batch, len(data.x_train)), replace=False)
        xb, yb = data.x_train[pick], data.y_train[pick]
        scored = []
        for i in keep:
            torch.manual_seed(seed)
            net = space.build(archs[i])
            t0 = time.perf_counter()
            s = score(net, xb, yb, names, seed=seed, val=(data.x_val, data.y_val))
            scored.append({"index": int(i), "arch": archs[i].to_dict(), "key": space.key(archs[i]),
                           "costs": dict(zip(_COST_FIELDS, map(int, costs[i]))), "scores": s,
                           "score_seconds": time.perf_counter() - t0})
        rank_by = (ensemble([r["scores"] for r in scored]) if proxy == "ensemble"
                   else [r["scores"][proxy] for r in scored])
        for r, v in zip(scored, rank_by):
            r["rank_score"] = v
        order = sorted(range(len(scored)), key=lambda j: (-(scored[j]["rank_score"] if math.isfinite(
            scored[j]["rank_score"]) else -math.inf), j))
        ranked = [scored[j] for j in order]
        n_sampled, n_keep = len(archs), int(keep.size)
        if folder is not None:
            atomic_write_text(folder / "ranking.json", json.dumps(
                {"settings": ident, "n_sampled": n_sampled, "n_within_budget": n_keep, "ranked": ranked}))
    trained = []
    longest = 0.0
    for r in ranked[:top_k]:
        if time_budget is not None and trained and time.perf_counter() - t_start + longest > time_budget:
            break
        path = folder / "trained" / f"{r['index']:05d}.json" if folder is not None else None
        if path is not None and path.exists():
            rec = json.loads(path.read_text())
            rec["reused"] = True
        else:
            arch = cands[r["index"]] if r["index"] in cands else _arch_from(space, r["arch"])
            torch.manual_seed(seed)
            rec = run_architecture(r["index"], arch, data, cfg, net=space.build(arch), key=r["key"])
            if path is not None:
                atomic_write_text(path, json.dumps(rec))
            rec["reused"] = False
        longest = max(longest, rec.get("train_seconds", 0.0) + rec.get("score_seconds", 0.0))
        trained.append(rec)
        if on_trained is not None:
            on_trained(rec)
    best = max(trained, key=lambda r: (r["val_f1"], -r["index"])) if trained else None
    return SearchResult(best, ranked, trained, n_sampled, n_keep, proxy,
                        {"budget": budget.__dict__, "top_k": top_k, "epochs": epochs, "seed": seed,
                         "space": ident["space"], "resumed": doc is not None, "time_budget": time_budget,
                         "seconds": time.perf_counter() - t_start})


def _arch_from(space: Any, d: dict[str, Any]) -> Any:
    """An architecture of ``space`` from its stored ``to_dict``."""
    return space.from_dict(d) if hasattr(space, "from_dict") else Arch.from_dict(d)
