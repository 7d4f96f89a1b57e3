"""Random architectures of the SFTNAS space (the derived networks of a backbone) and their costs in batches.

Used by the proxy-guided strategy of the main job (``harcore search --strategy zcp --space sftnas``): the
space is exactly what an SFTNAS search could derive — per searchable layer a conv of one of the layer's
kernels (stride fixed by the layer) or, where the supernet offers it, the identity; 1..F kept filters per conv;
a non-empty subset of the sensors; the backbone's later stages (tied to the kept filters with ``tie_tail``).

Costs come from the C++ batch API (:func:`harcore.cost.batch`): one traced template per *structure* — the
kernel or identity of every layer (a kernel sets the conv's 'same' padding along time, and the batch API binds
no time padding), the number of kept sensors (the gather of the kept sensors is not a bindable field) and the
later stages' options — with every conv's filters and the tail ops that follow the stage's width bound per
row. The filters are the largest share of the space (F^convs of it), so a population shares templates. ``tests/test_nas_zcp.py`` checks the rows against :func:`harcore.cost.profile` of each
built network.
"""

from __future__ import annotations

import json
import random
from typing import Any, Sequence

import numpy as np

from harcore.models.sftnas import DEFAULT_FILTERS

from .derive import Arch, build
from .supernet import search_space

__all__ = ["sample_archs", "arch_costs", "DerivedSpace"]


def sample_archs(n: int, backbone: str, in_channels: int, seq_len: int, num_classes: int, *, seed: int = 0,
                 filters: int | None = None, tail: dict[str, Any] | None = None, tie_tail: bool = False
                 ) -> list[Arch]:
    """``n`` derived architectures drawn uniformly per choice (seeded): per layer a candidate of the layer
    (its kernels, and the identity where offered), per conv 1..F filters, 1..C sensors (a uniform count, then
    a uniform subset in sensor order)."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    f_full = DEFAULT_FILTERS[backbone] if filters is None else int(filters)
    layout = search_space(in_channels, seq_len, f_full)
    rng = random.Random(seed)
    out: list[Arch] = []
    for _ in range(n):
        c = rng.randint(1, in_channels)
        channels = sorted(rng.sample(range(in_channels), c))
        layers: list[dict[str, Any]] = []
        for layer in layout.layers:
            j = rng.randrange(layer.num_candidates)
            if j == len(layer.kernels):
                layers.append({"op": "identity", "stride": 1})
            else:
                nf = rng.randint(1, layer.filters)
                layers.append({"op": "conv", "kernel": layer.kernels[j], "stride": layer.stride, "filters": nf,
                               "kept": list(range(nf))})
        t = dict(tail or {})
        if tie_tail:
            from .budget import tied_tail

            last = [l for l in layers if l["op"] == "conv"][-1]["filters"]
            t = tied_tail(backbone, t, f_full, last)
        out.append(Arch(backbone, in_channels, seq_len, num_classes, channels, layers, t))
    return out


def _structure(a: Arch) -> tuple:
    return (a.backbone, a.in_channels, a.seq_len, a.num_classes, len(a.channels),
            tuple(l.get("kernel", 0) for l in a.layers), tuple(l["stride"] for l in a.layers),
            json.dumps(a.tail, sort_keys=True))


def _trace(a: Arch, last: int) -> tuple[Any, list[int]]:
    """``a``'s structure traced with small distinct widths (the last conv ``last``), and its stage convs."""
    from harcore.graph.trace import trace

    layers = []
    convs = [i for i, l in enumerate(a.layers) if l["op"] == "conv"]
    for i, l in enumerate(a.layers):
        if l["op"] == "conv":
            l = {k: v for k, v in l.items() if k != "kept"}
            l["filters"] = last if i == convs[-1] else 2 + convs.index(i)
        layers.append(l)
    # which sensors are kept does not change a cost, only how many (the gather exists iff some are pruned)
    t = Arch(a.backbone, a.in_channels, a.seq_len, a.num_classes, list(range(len(a.channels))), layers, a.tail)
    return trace(build(t).eval(), (a.in_channels, a.seq_len)), convs


def _plan(a: Arch) -> tuple[list[str], bool]:
    """Which later ops follow the stage's last width, and whether it can be bound at all: ``a``'s structure
    traced with two different last widths. Those ops take the last conv's column — unless a recorded reshape
    of the later stages changes with that width (TinyHAR flattens filters x sensors), which the batch API does
    not adapt: then the second value is False and the last conv's filters become part of the template."""
    g, _ = _trace(a, 11)
    g2, _ = _trace(a, 13)
    if [op.name for op in g.ops] != [op.name for op in g2.ops]:
        raise RuntimeError(f"sftnas: cannot make a cost template of {a.summary()}")
    if any(op.kind == "reshape" and not op.name.startswith("stage_")
           and g.tensors[op.output].shape != g2.tensors[op2.output].shape for op, op2 in zip(g.ops, g2.ops)):
        return [], False
    follow = []
    for op, op2 in zip(g.ops, g2.ops):
        if not op.name.startswith("stage_") and op.kind in ("conv", "linear", "rnn") \
                and op.out_channels != op2.out_channels:
            if (op.out_channels, op2.out_channels) != (11, 13):
                raise RuntimeError(f"sftnas: op {op.name} of {a.summary()} scales with the stage's width in a "
                                   "way the batch API cannot bind")
            follow.append(op.name)
    return follow, True


def _template(a: Arch, plan: tuple[list[str], bool]) -> tuple[Any, list[tuple]]:
    """The traced template of ``a``'s structure and its bindings ``(op, field, column)``: the filters of the
    j-th stage conv in column j (the last conv's only where ``plan`` says it can be bound)."""
    follow, last_bound = plan
    last = 11 if last_bound else a.out_filters
    g, convs = _trace(a, last)
    stage = [op.name for op in g.ops if op.kind == "conv" and op.name.startswith("stage_")]
    if len(stage) != len(convs):
        raise RuntimeError(f"sftnas: the template of {a.summary()} traced {len(stage)} stage convs, not {len(convs)}")
    if not last_bound:
        stage = stage[:-1]
    binds: list[tuple] = [(name, "out_channels", j) for j, name in enumerate(stage)]
    binds += [(name, "out_channels", len(stage) - 1) for name in follow]
    return g, binds


def arch_costs(archs: Sequence[Arch]) -> np.ndarray:
    """``(N, 4)`` int64 (macs, params, peak_sram, flash) of every derived architecture (int8 deployment, the
    C++ cost model), one :func:`harcore.cost.batch` call per structure (module doc)."""
    from harcore.cost import batch

    out = np.zeros((len(archs), 4), dtype=np.int64)
    groups: dict[tuple, list[int]] = {}
    for i, a in enumerate(archs):
        groups.setdefault(_structure(a), []).append(i)
    plans: dict[tuple, tuple[list[str], bool]] = {}
    pending = list(groups.values())
    while pending:
        idx = pending.pop()
        a = archs[idx[0]]
        # the plan does not depend on the kernels: one per pattern of identities, sensor count and tail
        pk = _structure(a)[:5] + (tuple(l["op"] for l in a.layers),) + _structure(a)[6:]
        plan = plans[pk] = plans[pk] if pk in plans else _plan(a)
        g, binds = _template(a, plan)
        if not plan[1]:
            same = [i for i in idx if archs[i].out_filters == archs[idx[0]].out_filters]
            if len(same) < len(idx):
                pending.append([i for i in idx if i not in same])
            idx = same
        n_cols = max((b[2] for b in binds), default=-1) + 1
        rows = [[l["filters"] for l in archs[i].layers if l["op"] == "conv"][:n_cols] for i in idx]
        out[idx] = batch(g, binds, np.array(rows, dtype=np.int64).reshape(len(idx), n_cols))
    return out


class DerivedSpace:
    """The SFTNAS space as a candidate space of :func:`harcore.zcp.zcp_search` (sample, costs, build, key,
    from_dict): the derived networks of ``backbone`` for windows of ``in_channels`` x ``seq_len``."""

    name = "sftnas"

    def __init__(self, backbone: str, in_channels: int, seq_len: int, num_classes: int, *,
                 filters: int | None = None, tail: dict[str, Any] | None = None, tie_tail: bool = False) -> None:
        self.backbone, self.in_channels, self.seq_len, self.num_classes = backbone, in_channels, seq_len, num_classes
        self.filters, self.tail, self.tie_tail = filters, dict(tail or {}), tie_tail

    def sample(self, n: int, seed: int) -> list[Arch]:
        return sample_archs(n, self.backbone, self.in_channels, self.seq_len, self.num_classes, seed=seed,
                            filters=self.filters, tail=self.tail, tie_tail=self.tie_tail)

    def costs(self, archs: Sequence[Arch]) -> np.ndarray:
        return arch_costs(archs)

    def build(self, arch: Arch) -> Any:
        return build(arch)

    def key(self, arch: Arch) -> str:
        return arch.summary()

    def from_dict(self, d: dict[str, Any]) -> Arch:
        return Arch.from_dict(d)
