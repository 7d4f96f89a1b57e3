"""Per-layer and total cost of a network: the C++ cost model seen from Python.

``profile(module, input_shape)`` traces a torch module (``harcore.graph.trace``) and costs the graph;
``profile_graph(graph)`` costs a graph directly; ``batch(template, bindings, values)`` costs many variants
of one template graph in a single C++ call. All figures come from ``harcore._core`` (rules:
``docs/cost-model.md``).
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import numpy as np

from harcore import _core
from harcore.errors import GraphError
from harcore.graph.ir import Graph

__all__ = ["Profile", "LayerCost", "TotalCost", "profile", "profile_graph", "batch", "BATCH_FIELDS", "CONVENTION"]

CONVENTION = (
    "MACs: 1 multiply-accumulate = 1 (conv, linear, RNN gates, activation matmuls, direct DFT per part read; "
    "bias/BN/LayerNorm/act/pool = 0); "
    "ptflops: ptflops 0.7.5 pytorch-backend convention; flash/SRAM: int8 batch-1 CMSIS-NN deployment"
)

#: batch() field names -> the C++ ``Field`` enum (snake_case or the enum's own CamelCase spelling).
BATCH_FIELDS = {
    "out_channels": "OutChannels", "kernel_w": "KernelW", "kernel_h": "KernelH", "stride_w": "StrideW",
    "stride_h": "StrideH", "pad_w": "PadW", "groups": "Groups", "enabled": "Enabled", "input_dim": "InputDim",
}


@dataclass
class LayerCost:
    name: str
    kind: str
    source: str
    shape: tuple[int, ...]
    macs: int
    ptflops_macs: int
    params: int
    flash: int
    scratch: int
    mem: int
    fused: bool
    alias: bool


@dataclass
class TotalCost:
    macs: int
    ptflops_macs: int
    params: int
    flash: int
    peak_sram: int
    peak_op: int


@dataclass
class Profile:
    graph: Graph
    layers: list[LayerCost]
    total: TotalCost
    convention: str = field(default=CONVENTION)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "harcore-profile",
            "convention": self.convention,
            "total": asdict(self.total),
            "layers": [dict(asdict(r), shape=list(r.shape)) for r in self.layers],
            "graph": self.graph.to_dict(),
        }

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_dict(), **kw)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Profile":
        if d.get("format") != "harcore-profile":
            raise ValueError(f"not a harcore profile: field 'format' is {d.get('format')!r}")
        layers = [LayerCost(**dict(r, shape=tuple(r["shape"]))) for r in d["layers"]]
        return cls(Graph.from_dict(d["graph"]), layers, TotalCost(**d["total"]), d.get("convention", CONVENTION))

    @classmethod
    def from_json(cls, s: str) -> "Profile":
        return cls.from_dict(json.loads(s))

    def render(self, width: int = 140) -> str:
        from rich.console import Console
        from rich.table import Table

        t = Table(title="harcore profile", caption=self.convention, caption_justify="left")
        for col, just in (("#", "right"), ("layer", "left"), ("kind", "left"), ("output", "left"),
                          ("MACs", "right"), ("ptflops", "right"), ("params", "right"), ("flash B", "right"),
                          ("scratch B", "right"), ("mem B", "right"), ("deploy", "left")):
            t.add_column(col, justify=just, no_wrap=True)
        for i, r in enumerate(self.layers):
            note = "fused" if r.fused else ("alias" if r.alias else "")
            if i == self.total.peak_op:
                note = (note + " PEAK").strip()
            t.add_row(str(i), r.name, r.kind, "x".join(map(str, r.shape)) or "()", f"{r.macs:,}",
                      f"{r.ptflops_macs:,}", f"{r.params:,}", f"{r.flash:,}", f"{r.scratch:,}", f"{r.mem:,}", note)
        tot = self.total
        t.add_section()
        t.add_row("", "TOTAL", "", "", f"{tot.macs:,}", f"{tot.ptflops_macs:,}", f"{tot.params:,}",
                  f"{tot.flash:,}", "", f"{tot.peak_sram:,}", "peak SRAM")
        buf = io.StringIO()
        Console(file=buf, width=width, color_system=None, force_terminal=False, legacy_windows=False).print(t)
        summary = (f"total: {tot.macs:,} MACs, {tot.ptflops_macs:,} ptflops MACs, {tot.params:,} params, "
                   f"{tot.flash:,} B flash, {tot.peak_sram:,} B peak SRAM")
        return buf.getvalue() + summary + "\n"

    def __str__(self) -> str:
        return self.render()


def profile_graph(graph: Graph) -> Profile:
    """Cost a harcore graph (validated by the C++ side; a bad graph raises ``ValueError``)."""
    rep = _core.cost(graph.to_core())
    if len(rep.ops) != len(graph.ops):
        raise RuntimeError(f"cost model returned {len(rep.ops)} rows for {len(graph.ops)} ops")
    layers = []
    for op, c in zip(graph.ops, rep.ops):
        layers.append(LayerCost(
            name=op.name, kind=op.kind, source=op.source, shape=tuple(graph.tensors[op.output].shape),
            macs=int(c.macs), ptflops_macs=int(c.ptflops_macs), params=int(c.params), flash=int(c.flash),
            scratch=int(c.scratch), mem=int(c.mem), fused=bool(c.fused), alias=bool(c.alias)))
    t = rep.total
    total = TotalCost(macs=int(t.macs), ptflops_macs=int(t.ptflops_macs), params=int(t.params),
                      flash=int(t.flash), peak_sram=int(t.peak_sram), peak_op=int(t.peak_op))
    return Profile(graph, layers, total)


def profile(module: Any, input_shape: Sequence[int]) -> Profile:
    """Trace a torch module taking ``(batch, *input_shape)`` and cost it.

    An ``input_shape`` (C, T) whose channel count differs from the model's (its ``in_channels``, or a leading
    ``Conv1d``'s) is a :class:`GraphError` naming both counts ("looks channels-last" when (T, C) was given)
    before tracing, whose errors would describe a symptom deep inside the model instead."""
    from harcore.graph.trace import trace
    from harcore.train._data import check_model_input

    shape = tuple(input_shape)
    judge = len(shape) == 2 and all(isinstance(v, (int, np.integer)) for v in shape)
    if judge:
        check_model_input(module, shape, "input_shape", GraphError)
    try:
        g = trace(module, input_shape)
    except Exception:
        if judge:  # the model failed: a channel count read off its first conv now names the likely cause
            check_model_input(module, shape, "input_shape", GraphError, trust_guess=True)
        raise
    return profile_graph(g)


def _field(name: str) -> Any:
    key = BATCH_FIELDS.get(name, name)
    if key not in BATCH_FIELDS.values():
        raise ValueError(f"unknown batch field {name!r}; known: {sorted(BATCH_FIELDS)}")
    return getattr(_core.Field, key)


def batch(template: Graph, bindings: Sequence[tuple], values: Any) -> np.ndarray:
    """Cost variants of ``template`` that differ in integer fields, in one C++ call.

    ``bindings``: ``(op, field, column[, dim])`` tuples; ``op`` is an op name or index, ``field`` one of
    :data:`BATCH_FIELDS`, ``column`` the column of ``values`` that holds the field's value per row, ``dim``
    the input dimension for ``input_dim``. ``values``: an ``(N, n_columns)`` integer matrix.
    Returns an ``(N, 4)`` int64 array of (macs, params, peak_sram, flash).
    """
    vals = np.asarray(values)
    if vals.ndim != 2:
        raise ValueError(f"values must be a 2-D (rows, columns) matrix, got shape {vals.shape}")
    if vals.size and not np.issubdtype(vals.dtype, np.integer):
        raise ValueError(f"values must be integers, got dtype {vals.dtype}")
    vals = np.ascontiguousarray(vals, dtype=np.int64)
    names = {op.name: i for i, op in enumerate(template.ops)}
    core_bindings = []
    for b in bindings:
        if len(b) not in (3, 4):
            raise ValueError(f"binding {b!r}: expected (op, field, column[, dim])")
        op, fname, col = b[0], b[1], b[2]
        dim = b[3] if len(b) == 4 else 0
        if isinstance(op, str):
            if op not in names:
                raise ValueError(f"binding {b!r}: no op named {op!r} in the template")
            op = names[op]
        if not isinstance(op, (int, np.integer)) or not 0 <= op < len(template.ops):
            raise ValueError(f"binding {b!r}: op index {op!r} out of range (0..{len(template.ops) - 1})")
        if not isinstance(col, (int, np.integer)) or not 0 <= col < vals.shape[1]:
            raise ValueError(f"binding {b!r}: column {col!r} out of range for {vals.shape[1]} columns")
        core_bindings.append(_core.Binding(int(op), _field(fname), int(col), int(dim)))
    out = _core.cost_batch(template.to_core(), core_bindings, vals)
    return np.asarray(out, dtype=np.int64).reshape(vals.shape[0], 4)
