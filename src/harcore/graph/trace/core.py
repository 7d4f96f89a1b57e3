"""torch module -> harcore op graph, with ``torch.fx``.

The model is traced symbolically (leaf modules below are kept whole), then run twice on zero inputs of
batch 1 and batch 2. The batch-1 run gives every tensor's shape; comparing it with the batch-2 run tells
which dimension of each tensor is the batch, which the graph drops (graph shapes are torch shapes without
the batch). Every fx node then maps to zero or more graph ops, or to a ``ValueError`` naming the node, its
target and the module it belongs to. After mapping, every parameter of the module must be owned by
exactly one op and the graph's parameter count must equal ``sum(p.numel())``.
"""

from __future__ import annotations

import inspect
import math
from typing import Any, Sequence

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from harcore.errors import GraphError
from harcore.graph.ir import Graph, Op

from ._common import _Complex, _Param, _RnnOut, _T, _Unsupported, _flatten, _has_tensor, _tname
from .einsum_fft import EinsumFftMapping
from .functions import FunctionMapping
from .indexing import IndexingMapping
from .modules import ModuleMapping

__all__ = ["trace", "LEAF_MODULES", "op_param_count"]

# Modules kept whole by the tracer (besides everything fx already treats as a leaf: all of torch.nn).
LEAF_MODULES: tuple[type, ...] = (
    nn.Conv1d, nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.LSTM, nn.GRU,
    nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
    nn.ReLU, nn.ReLU6, nn.Sigmoid, nn.Tanh, nn.LeakyReLU, nn.ELU, nn.GELU, nn.Hardtanh, nn.SiLU,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Identity, nn.Flatten, nn.Unflatten,
    nn.Softmax, nn.LogSoftmax, nn.LayerNorm,
)


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, LEAF_MODULES) or super().is_leaf_module(m, qualname)


def op_param_count(op: Op, graph: Graph | None = None) -> int:
    """Trainable parameters of one op by the rules of docs/cost-model.md (Python side, for checking).
    ``graph`` (the op's graph) is needed for a layernorm, whose parameters follow its input shape."""
    k = op.kind
    if k == "conv":
        n = op.out_channels * (op.in_channels // op.groups) * op.kernel[0] * op.kernel[1]
        return n + (op.out_channels if op.bias else 0) + op.extra_params
    if k == "linear":
        return op.in_channels * op.out_channels + (op.out_channels if op.bias else 0) + op.extra_params
    if k == "batchnorm":
        return (2 * op.in_channels if op.bias else 0) + op.extra_params
    if k == "rnn":
        g = 4 if op.cell == "lstm" else 3
        h, i = op.out_channels, op.in_channels
        per_dir = g * h * (i + h) + (2 * g * h if op.bias else 0)
        return (2 if op.bidirectional else 1) * per_dir + op.extra_params
    if k in ("mul", "add") and op.param_shape:
        return math.prod(op.param_shape) + op.extra_params
    if k == "layernorm":
        if not op.bias:
            return op.extra_params
        if graph is None:
            raise GraphError(f"op '{op.name}' (layernorm): its parameter count depends on its input shape; pass the "
                             "graph")
        shape = graph.tensors[op.inputs[0]].shape
        return 2 * math.prod(shape[op.axis:]) + op.extra_params
    return op.extra_params


class _Mapper(ModuleMapping, FunctionMapping, IndexingMapping, EinsumFftMapping):
    """Maps the fx graph node by node; the mixins hold the mapping of each kind of node (modules.py,
    functions.py, indexing.py, einsum_fft.py), this class the state, messages and main loop."""

    def __init__(self, root: nn.Module, gm: fx.GraphModule, v1: dict, v2: dict, input_shape: tuple[int, ...]):
        self.root = root
        self.gm = gm
        self.v1 = v1  # node -> value at batch 1
        self.v2 = v2  # node -> value at batch 2
        self.input_shape = input_shape
        self.g = Graph()
        self.env: dict[fx.Node, Any] = {}
        self.owner: dict[int, str] = {}  # id(parameter) -> op name that owns it
        self.module_calls: dict[str, str] = {}
        self.node: fx.Node | None = None
        self._names: set[str] = set()
        self._dft: dict[tuple[str, bool], _T] = {}  # (fft node, imag) -> its DFT op, emitted once

    # -- messages ----------------------------------------------------------------------------
    def where(self, node: fx.Node | None = None) -> str:
        node = node or self.node
        assert node is not None
        path = self.module_path(node)
        return f"fx node '{node.name}' (target {_tname(node.target)}, module '{path or '<root>'}')"

    def err(self, msg: str, node: fx.Node | None = None) -> ValueError:
        return ValueError(f"{self.where(node)}: {msg}")

    def module_path(self, node: fx.Node) -> str:
        if node.op == "call_module":
            return str(node.target)
        stack = node.meta.get("nn_module_stack") or {}
        if stack:
            return str(list(stack.values())[-1][0])
        return ""

    def source(self, node: fx.Node) -> str:
        if node.op in ("call_module", "get_attr"):
            return str(node.target)
        path = self.module_path(node)
        return f"{path}:{node.name}" if path else node.name

    # -- graph building ----------------------------------------------------------------------
    def uname(self, base: str) -> str:
        name, i = base, 1
        while name in self._names:
            i += 1
            name = f"{base}_{i}"
        self._names.add(name)
        return name

    def emit(self, kind: str, base: str, inputs: Sequence[_T], shape: Sequence[int], **fields: Any) -> int:
        op = Op(kind, self.uname(base), inputs=[t.tid for t in inputs], source=self.source(self.node), **fields)
        return self.g.add_op(op, tuple(int(d) for d in shape))

    def gshape(self, t: _T) -> tuple[int, ...]:
        return self.g.tensors[t.tid].shape

    def own(self, op_name: str, params: Sequence[tuple[str, torch.Tensor]]) -> None:
        for path, p in params:
            if id(p) in self.owner:
                raise self.err(
                    f"parameter '{path}' is already used by op '{self.owner[id(p)]}'; shared parameters "
                    "cannot be attributed to exactly one op"
                )
            self.owner[id(p)] = op_name

    # -- values ------------------------------------------------------------------------------
    def val(self, a: Any, complex_ok: bool = False) -> Any:
        if isinstance(a, fx.Node):
            v = self.env.get(a)
            if isinstance(v, _Unsupported):
                raise self.err(v.message)
            if isinstance(v, _Complex) and not complex_ok:
                raise self.err(f"uses the complex result of {v.fn} (fx node '{v.node_name}') directly; the harcore "
                               "graph represents a transform of real data only through its .real and .imag parts "
                               "(one DFT op each)")
            return v
        return a

    def tensor(self, a: Any, what: str = "input") -> _T:
        v = self.val(a)
        if isinstance(v, _T):
            return v
        if isinstance(v, _Param):
            raise self.err(f"{what} is the {'parameter' if v.is_param else 'buffer'} '{v.path}', "
                           "not an activation; this op has no parameter operand in the harcore graph")
        if isinstance(v, _RnnOut):
            raise self.err(f"{what} is the (output, state) tuple of RNN '{v.module_path}'; index it with [0]")
        raise self.err(f"{what} is {type(v).__name__} {v!r}, expected an activation tensor")

    def batch_dim(self, node: fx.Node) -> int:
        a, b = self.v1[node], self.v2[node]
        s1, s2 = tuple(a.shape), tuple(b.shape)
        diff = [i for i in range(len(s1)) if len(s1) == len(s2) and s1[i] != s2[i]]
        if len(s1) == len(s2) and len(diff) == 1 and s1[diff[0]] == 1 and s2[diff[0]] == 2:
            return diff[0]
        if len(s1) == len(s2) and not diff:
            raise self.err(f"its result {s1} does not carry the batch dimension (reduced or broadcast away); "
                           "harcore graphs keep the batch as a separate dimension of every activation")
        raise self.err(f"the batch dimension is merged into another dimension (shape {s1} at batch 1, "
                       f"{s2} at batch 2); keep the batch as a separate dimension")

    def out_t(self, node: fx.Node) -> tuple[tuple[int, ...], int]:
        """Graph shape and batch dim of node's (tensor) result."""
        bd = self.batch_dim(node)
        s = list(self.v1[node].shape)
        del s[bd]
        return tuple(s), bd

    def gaxis(self, dim: int, t: _T, what: str = "dim") -> int:
        if not -t.ndim <= dim < t.ndim:
            raise self.err(f"{what} {dim} out of range for a {t.ndim}-D tensor")
        d = dim % t.ndim
        if d == t.bdim:
            raise self.err(f"{what} {dim} is the batch dimension; operating across the batch is not supported")
        return d - (1 if d > t.bdim else 0)

    def arg(self, node: fx.Node, i: int, name: str, default: Any = inspect.Parameter.empty) -> Any:
        if len(node.args) > i:
            return node.args[i]
        if name in node.kwargs:
            return node.kwargs[name]
        if default is inspect.Parameter.empty:
            raise self.err(f"missing argument '{name}'")
        return default

    # -- main loop ---------------------------------------------------------------------------
    def run(self) -> Graph:
        for node in self.gm.graph.nodes:
            self.node = node
            if node.op == "placeholder" and self.g.ops:
                self.env[node] = self.v1.get(node)  # a defaulted extra argument (made concrete)
            elif node.op == "placeholder":
                tid = self.g.input("input", self.input_shape)
                self.g.ops[-1].source = "input"
                self._names.add("input")
                self.env[node] = _T(tid, 0, len(self.input_shape) + 1)
            elif node.op == "get_attr":
                t = self.v1[node]
                is_param = any(p is t for p in self.root.parameters())
                self.env[node] = _Param(str(node.target), t, is_param)
            elif node.op == "output":
                self.g.outputs = [self.tensor(a, "graph output").tid for a in _flatten(node.args[0])]
            elif node.op == "call_module":
                self.env[node] = self.map_module(node, self.gm.get_submodule(str(node.target)))
            else:
                v = self.v1[node]
                if not _has_tensor(v):
                    # shape arithmetic (x.size(0), x.shape[1], B * T ...): not an op
                    self.env[node] = v
                    continue
                first = len(self.g.ops)
                self.env[node] = self.map_call(node)
                form = _ptflops_form(node)
                for op in self.g.ops[first:]:
                    op.ptflops_form = form
        return self.g


# What ptflops 0.7.5 (pytorch backend, count_functional=True) patches; see cost_model.cpp's rule table.
_PTFLOPS_FUNCTIONAL = {
    F.relu, F.prelu, F.elu, F.relu6, F.gelu, F.silu, F.softmax, F.linear,
    F.avg_pool1d, F.avg_pool2d, F.max_pool1d, F.max_pool2d,
    F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_max_pool1d, F.adaptive_max_pool2d,
}
_PTFLOPS_TORCH_OPS = {torch.matmul, torch.mm, torch.bmm, torch.mul, torch.add}
_PTFLOPS_METHODS = {"matmul", "mm", "bmm", "mul", "add"}


def _ptflops_form(node: fx.Node) -> int:
    """Op.ptflops_form for the ops a call node maps to: 1 patched functional, 0 patched torch op, 2 unseen."""
    if node.op == "call_method":
        return 0 if node.target in _PTFLOPS_METHODS else 2
    if node.target in _PTFLOPS_FUNCTIONAL:
        return 1
    return 0 if node.target in _PTFLOPS_TORCH_OPS else 2


class _Recorder(fx.Interpreter):
    def __init__(self, gm: fx.GraphModule):
        super().__init__(gm)
        self.values: dict[fx.Node, Any] = {}

    def run_node(self, n: fx.Node) -> Any:
        r = super().run_node(n)
        self.values[n] = r
        return r


def _check_shape(input_shape: Any) -> tuple[int, ...]:
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise GraphError(f"input_shape must be a tuple of positive ints without the batch, e.g. (channels, time); "
                         f"got {input_shape!r}") from None
    if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise GraphError(f"input_shape must be a tuple of positive ints without the batch, e.g. (channels, time); "
                         f"got {input_shape!r}")
    return shape


def trace(module: nn.Module, input_shape: Sequence[int]) -> Graph:
    """Trace ``module`` (taking ``(batch, *input_shape)`` floats) into a validated harcore graph."""
    if not isinstance(module, nn.Module):
        raise TypeError(f"trace() needs a torch.nn.Module, got {type(module).__name__}")
    shape = _check_shape(input_shape)
    name = type(module).__name__
    sig = inspect.signature(module.forward)
    params = list(sig.parameters.values())
    concrete = {}
    for p in params[1:]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is p.empty:
            raise GraphError(f"{name}.forward takes more than one required input ('{p.name}'); harcore models "
                             "take one (batch, channels, time) tensor")
        concrete[p.name] = p.default
    try:
        if isinstance(module, LEAF_MODULES):
            wrapper = nn.Sequential()
            wrapper.add_module("m", module)
            gm = fx.GraphModule(wrapper, _Tracer().trace(wrapper))
            root: nn.Module = wrapper
        else:
            gm = fx.GraphModule(module, _Tracer().trace(module, concrete_args=concrete or None))
            root = module
    except Exception as e:  # fx raises TraceError / TypeError / NotImplementedError / AttributeError
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise GraphError(
            f"cannot trace {name} with torch.fx ({type(e).__name__}: {msg}). harcore needs a static graph: "
            "no Python control flow (if / for / while) that depends on tensor values or shapes of traced values"
        ) from e

    was_training = module.training
    module.eval()
    try:
        values = []
        for b in (1, 2):
            rec = _Recorder(gm)
            with torch.no_grad():
                try:
                    rec.run(torch.zeros((b, *shape)))
                except Exception as e:
                    raise GraphError(f"{name} does not run on an input of shape {(b, *shape)} "
                                     f"(batch, *input_shape): {type(e).__name__}: {e}") from e
            values.append(rec.values)
    finally:
        module.train(was_training)

    mp = _Mapper(root, gm, values[0], values[1], shape)
    g = mp.run()
    _check_params(root, g, mp, name)
    g.validate()
    return g


def _check_params(root: nn.Module, g: Graph, mp: _Mapper, name: str) -> None:
    named = list(root.named_parameters())
    missing = [(n, p.numel()) for n, p in named if id(p) not in mp.owner]
    if missing:
        lst = ", ".join(f"'{n}' ({k} values)" for n, k in missing)
        raise GraphError(f"{name}: parameter(s) {lst} are not used by any traced op, so the graph would not "
                         "count them; every parameter must belong to exactly one op")
    got = sum(op_param_count(op, g) for op in g.ops)
    want = sum(p.numel() for _, p in named)
    if got != want:
        per_op: dict[str, int] = {}
        for n, p in named:
            per_op[mp.owner[id(p)]] = per_op.get(mp.owner[id(p)], 0) + p.numel()
        bad = [f"op '{op.name}' ({op.kind}): graph counts {op_param_count(op, g)}, module has {per_op.get(op.name, 0)}"
               for op in g.ops if op_param_count(op, g) != per_op.get(op.name, 0)]
        raise GraphError(f"{name}: the graph counts {got} parameters but the module has {want}: " + "; ".join(bad))
