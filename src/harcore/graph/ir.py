"""The op graph — harcore's single description of a network (Python mirror of ``src/cpp/graph``).

Tensors carry the torch shape without the batch dimension. Ops are kept in execution order.
The cost model reads this graph, quantization annotates it, ``simulate`` executes it and
``deploy`` emits it as C; there is no second graph format.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from harcore.errors import GraphError
from harcore import _core

OP_KINDS = (
    "input", "conv", "linear", "batchnorm", "activation", "pool", "globalpool", "add", "mul",
    "concat", "reshape", "transpose", "slice", "rnn", "matmul", "softmax", "mean", "layernorm", "gather", "dft",
)
ACT_KINDS = ("relu", "relu6", "sigmoid", "tanh", "leaky_relu", "elu", "gelu", "hardtanh", "silu", "identity")
POOL_KINDS = ("max", "avg")
RNN_CELLS = ("lstm", "gru")

GRAPH_FORMAT_VERSION = 1


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass
class Op:
    """One op. Unused fields keep their defaults; see ``src/cpp/graph/graph.hpp`` for meanings."""

    kind: str
    name: str
    inputs: list[int] = field(default_factory=list)
    output: int = -1
    in_channels: int = 0
    out_channels: int = 0
    groups: int = 1
    bias: bool = False
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    pad: tuple[int, int, int, int] = (0, 0, 0, 0)  # top, bottom, left, right
    ceil_mode: bool = False
    count_include_pad: bool = True
    act: str = "identity"
    pool: str = "max"
    cell: str = "lstm"
    bidirectional: bool = False
    axis: int = 0
    keep_dims: bool = False
    start: int = 0
    length: int = 0
    squeeze: bool = False
    perm: tuple[int, ...] = ()
    param_shape: tuple[int, ...] = ()
    indices: tuple[int, ...] = ()      # gather: constant indices, row-major
    index_shape: tuple[int, ...] = ()  # gather: their shape
    imag: bool = False                 # dft: imaginary part (else real)
    mean: bool = True
    extra_params: int = 0
    ptflops_form: int = 0  # how ptflops 0.7.5 sees the torch spelling (see graph.hpp); ptflops_macs only
    source: str = ""  # torch module path / fx node that produced this op (for messages)


@dataclass
class Graph:
    tensors: list[Tensor] = field(default_factory=list)
    ops: list[Op] = field(default_factory=list)
    outputs: list[int] = field(default_factory=list)

    # -- building -------------------------------------------------------------------------
    def add_tensor(self, name: str, shape: tuple[int, ...]) -> int:
        self.tensors.append(Tensor(name, tuple(int(d) for d in shape)))
        return len(self.tensors) - 1

    def add_op(self, op: Op, out_shape: tuple[int, ...]) -> int:
        op.output = self.add_tensor(op.name, out_shape)
        self.ops.append(op)
        return op.output

    def input(self, name: str, shape: tuple[int, ...]) -> int:
        return self.add_op(Op("input", name), shape)

    # -- conversion -----------------------------------------------------------------------
    def to_core(self) -> "_core.Graph":
        """The C++ struct the cost model and kernels consume."""
        g = _core.Graph()
        g.tensors = [_core.Tensor(t.name, list(t.shape)) for t in self.tensors]
        core_ops = []
        for op in self.ops:
            c = _core.Op()
            for f in fields(Op):
                if f.name == "source":
                    continue
                v = getattr(op, f.name)
                if f.name == "kind":
                    v = _core.OpKind(OP_KINDS.index(v)) if v in OP_KINDS else _unknown("kind", op, v)
                elif f.name == "act":
                    v = _core.ActKind(ACT_KINDS.index(v)) if v in ACT_KINDS else _unknown("act", op, v)
                elif f.name == "pool":
                    v = _core.PoolKind(POOL_KINDS.index(v)) if v in POOL_KINDS else _unknown("pool", op, v)
                elif f.name == "cell":
                    v = _core.RnnCell(RNN_CELLS.index(v)) if v in RNN_CELLS else _unknown("cell", op, v)
                elif isinstance(v, tuple):
                    v = list(v)
                setattr(c, f.name, v)
            core_ops.append(c)
        g.ops = core_ops
        g.outputs = list(self.outputs)
        return g

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": "harcore-graph",
            "version": GRAPH_FORMAT_VERSION,
            "tensors": [asdict(t) for t in self.tensors],
            "ops": [asdict(o) for o in self.ops],
            "outputs": list(self.outputs),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Graph":
        if d.get("format") != "harcore-graph":
            raise GraphError("not a harcore graph: field 'format' is %r" % (d.get("format"),))
        if d.get("version") != GRAPH_FORMAT_VERSION:
            raise GraphError(
                f"harcore graph version {d.get('version')!r} is not supported (this harcore reads {GRAPH_FORMAT_VERSION})"
            )
        g = cls()
        g.tensors = [Tensor(t["name"], tuple(t["shape"])) for t in d["tensors"]]
        known = {f.name for f in fields(Op)}
        for i, o in enumerate(d["ops"]):
            extra = set(o) - known
            if extra:
                raise GraphError(f"op {i} ({o.get('name', '?')}): unknown field(s) {sorted(extra)}")
            o = dict(o)
            for k in ("kernel", "stride", "dilation", "pad", "perm", "param_shape", "indices", "index_shape"):
                if k in o:
                    o[k] = tuple(o[k])
            g.ops.append(Op(**o))
        g.outputs = list(d["outputs"])
        return g

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, s: str) -> "Graph":
        return cls.from_dict(json.loads(s))

    def validate(self) -> None:
        """Raise ``ValueError`` naming the op and field at fault."""
        _core.validate(self.to_core())


def _unknown(fieldname: str, op: Op, value: Any) -> Any:
    raise GraphError(f"op '{op.name}': unknown {fieldname} {value!r}")
