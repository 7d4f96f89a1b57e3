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
import operator
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from harcore.graph import Graph, Op

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


# ---------------------------------------------------------------------------------------------
# values carried per fx node while mapping


@dataclass
class _T:
    """An activation tensor of the graph: tensor id and the torch dim that holds the batch."""

    tid: int
    bdim: int
    ndim: int  # torch ndim (graph ndim + 1)


@dataclass
class _Param:
    """A parameter (or buffer) read with get_attr, possibly viewed (``bias.unsqueeze(1)``): ``tensor`` is the
    parameter itself (for ownership), ``value`` what the model computes with."""

    path: str
    tensor: torch.Tensor
    is_param: bool
    value: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.value is None:
            self.value = self.tensor


@dataclass
class _Complex:
    """The complex result of ``torch.fft.fft/rfft`` on real data; only ``.real`` / ``.imag`` may be used,
    each becoming one DFT op (a constant matrix of cos or sin values times the input)."""

    x: "_T"
    bins: int
    fn: str
    node_name: str


@dataclass
class _RnnOut:
    """The (output, state) tuple of an LSTM/GRU module."""

    out: _T
    module_path: str


@dataclass
class _Unsupported:
    """A value that may only be dropped (e.g. an RNN's h_n); using it raises ``message``."""

    message: str


_ACT_FUNCS: dict[Any, str] = {
    F.relu: "relu", torch.relu: "relu", F.relu_: "relu", torch.relu_: "relu", F.relu6: "relu6",
    torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid", torch.tanh: "tanh", F.tanh: "tanh",
    F.leaky_relu: "leaky_relu", F.elu: "elu", F.gelu: "gelu", F.hardtanh: "hardtanh", F.silu: "silu",
}
_ACT_METHODS = {"relu": "relu", "relu_": "relu", "sigmoid": "sigmoid", "sigmoid_": "sigmoid",
                "tanh": "tanh", "tanh_": "tanh"}
_SOFTMAX_FUNCS = (F.softmax, torch.softmax, F.log_softmax, torch.log_softmax)
_ADD_FUNCS = (operator.add, operator.iadd, torch.add)
_MUL_FUNCS = (operator.mul, operator.imul, torch.mul)
_MATMUL_FUNCS = (operator.matmul, torch.matmul, torch.bmm)
_RESHAPE_METHODS = ("view", "reshape", "flatten", "squeeze", "unsqueeze", "view_as", "reshape_as")
_RESHAPE_FUNCS = (torch.reshape, torch.flatten, torch.squeeze, torch.unsqueeze)
_POOL_FUNCS: dict[Any, tuple[str, int]] = {
    F.max_pool1d: ("max", 1), F.max_pool2d: ("max", 2), F.avg_pool1d: ("avg", 1), F.avg_pool2d: ("avg", 2),
}
_ADAPTIVE_FUNCS: dict[Any, tuple[str, int]] = {
    F.adaptive_avg_pool1d: ("avg", 1), F.adaptive_avg_pool2d: ("avg", 2),
    F.adaptive_max_pool1d: ("max", 1), F.adaptive_max_pool2d: ("max", 2),
}


def _tname(target: Any) -> str:
    if isinstance(target, str):
        return target
    mod = getattr(target, "__module__", None) or ""
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", None) or repr(target)
    return f"{mod}.{name}" if mod and mod != "builtins" else name


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
            raise ValueError(f"op '{op.name}' (layernorm): its parameter count depends on its input shape; pass the "
                             "graph")
        shape = graph.tensors[op.inputs[0]].shape
        return 2 * math.prod(shape[op.axis:]) + op.extra_params
    return op.extra_params


class _Mapper:
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

    # -- modules -----------------------------------------------------------------------------
    def map_module(self, node: fx.Node, m: nn.Module) -> Any:
        path = str(node.target)
        if path in self.module_calls and any(True for _ in m.parameters()):
            raise self.err(f"module '{path}' is called more than once; its parameters cannot be attributed "
                           "to exactly one op (give each use its own module)")
        self.module_calls[path] = node.name
        params = [(f"{path}.{n}" if n else path, p) for n, p in m.named_parameters()]
        ins = [a for a in node.args]
        if node.kwargs:
            extra = {k: v for k, v in node.kwargs.items() if v is not None}
            if extra:
                raise self.err(f"keyword arguments {sorted(extra)} to module calls are not supported")

        if isinstance(m, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout, nn.Identity)):
            return self.tensor(ins[0])

        if isinstance(m, (nn.LSTM, nn.GRU)):
            return self.map_rnn(node, m, ins, params)

        if len(ins) != 1:
            raise self.err(f"{type(m).__name__} called with {len(ins)} arguments; expected one tensor")
        x = self.tensor(ins[0])
        shape, bd = self.out_t(node)
        base = node.name

        def emit(kind: str, **f: Any) -> _T:
            tid = self.emit(kind, base, [x], shape, **f)
            self.own(self.g.ops[-1].name, params)
            return _T(tid, bd, len(shape) + 1)

        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            self.need_bdim0(x)
            if m.padding_mode != "zeros":
                raise self.err(f"padding_mode '{m.padding_mode}' is not supported (zeros only)")
            nd = 1 if isinstance(m, nn.Conv1d) else 2
            k, s, d = _pair(m.kernel_size, nd), _pair(m.stride, nd), _pair(m.dilation, nd)
            pad = _conv_pad(m.padding, k, d, nd)
            return emit("conv", in_channels=m.in_channels, out_channels=m.out_channels, groups=m.groups,
                        bias=m.bias is not None, kernel=k, stride=s, dilation=d, pad=pad)
        if isinstance(m, nn.Linear):
            if x.bdim == x.ndim - 1:
                raise self.err("Linear over the batch dimension")
            return emit("linear", in_channels=m.in_features, out_channels=m.out_features, bias=m.bias is not None)
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            self.need_bdim0(x)
            return emit("batchnorm", in_channels=m.num_features, bias=m.affine)
        if isinstance(m, nn.ReLU6):
            return emit("activation", act="relu6")
        if isinstance(m, nn.Hardtanh):
            act = "relu6" if (m.min_val, m.max_val) == (0.0, 6.0) else "hardtanh"
            return emit("activation", act=act)
        for cls, act in ((nn.ReLU, "relu"), (nn.Sigmoid, "sigmoid"), (nn.Tanh, "tanh"),
                         (nn.LeakyReLU, "leaky_relu"), (nn.ELU, "elu"), (nn.GELU, "gelu"), (nn.SiLU, "silu")):
            if isinstance(m, cls):
                return emit("activation", act=act)
        if isinstance(m, (nn.Softmax, nn.LogSoftmax)):
            if m.dim is None:
                raise self.err("Softmax without an explicit dim is not supported")
            return emit("softmax", axis=self.gaxis(m.dim, x))
        if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d)):
            self.need_bdim0(x)
            is_max = isinstance(m, (nn.MaxPool1d, nn.MaxPool2d))
            nd = 1 if isinstance(m, (nn.MaxPool1d, nn.AvgPool1d)) else 2
            if is_max and m.return_indices:
                raise self.err("return_indices=True is not supported")
            if getattr(m, "divisor_override", None) is not None:
                raise self.err("divisor_override is not supported")
            return self.emit_pool(node, x, shape, bd, "max" if is_max else "avg", nd, m.kernel_size, m.stride,
                                  m.padding, getattr(m, "dilation", 1), m.ceil_mode,
                                  getattr(m, "count_include_pad", True))
        if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d)):
            is_max = isinstance(m, (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d))
            if is_max and m.return_indices:
                raise self.err("return_indices=True is not supported")
            nd = 1 if isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveMaxPool1d)) else 2
            return self.emit_adaptive(node, x, shape, bd, "max" if is_max else "avg", nd, m.output_size)
        if isinstance(m, (nn.Flatten, nn.Unflatten)):
            return self.emit_reshape(node, x)
        if isinstance(m, nn.LayerNorm):
            if m.elementwise_affine and m.bias is None:
                raise self.err("LayerNorm(bias=False) is not supported: the graph's layernorm has both or neither of "
                               "weight and bias")
            return emit("layernorm", axis=self.norm_axis(x, tuple(m.normalized_shape)), bias=m.elementwise_affine)
        raise self.err(f"module type {type(m).__module__}.{type(m).__qualname__} is not supported by harcore's "
                       "tracer (no op in the harcore graph)")

    def norm_axis(self, x: _T, normalized_shape: tuple[int, ...]) -> int:
        """Graph axis of the first normalized dim of a layer norm over the trailing ``normalized_shape``."""
        k = len(normalized_shape)
        if k == 0 or k >= x.ndim or x.bdim >= x.ndim - k:
            raise self.err(f"layer norm over normalized_shape {normalized_shape} of a {x.ndim}-D input with the "
                           f"batch on dim {x.bdim}: it must cover trailing dims only, not the batch")
        return self.gaxis(-k, x, "first normalized dim")

    def map_functional_layer_norm(self, node: fx.Node) -> _T:
        x = self.tensor(node.args[0])
        ns = self.val(self.arg(node, 1, "normalized_shape"))  # may be traced shape arithmetic
        ns = (int(ns),) if isinstance(ns, int) else tuple(int(self.val(d)) for d in ns)
        w = self.val(self.arg(node, 2, "weight", None))
        b = self.val(self.arg(node, 3, "bias", None))
        for what, v in (("weight", w), ("bias", b)):
            if v is not None and not (isinstance(v, _Param) and v.is_param):
                raise self.err(f"F.layer_norm with a {what} that is not a parameter is not supported")
        if (w is None) != (b is None):
            raise self.err("F.layer_norm with only one of weight and bias is not supported: the graph's layernorm "
                           "has both or neither")
        axis = self.norm_axis(x, ns)
        shape, bd = self.out_t(node)
        tid = self.emit("layernorm", node.name, [x], shape, axis=axis, bias=w is not None)
        if w is not None:
            self.own(self.g.ops[-1].name, [(w.path, w.tensor), (b.path, b.tensor)])
        return _T(tid, bd, len(shape) + 1)

    # -- torch.fft ----------------------------------------------------------------------------
    def map_fft(self, node: fx.Node) -> _Complex:
        fn = "torch.fft.fft" if node.target is torch.fft.fft else "torch.fft.rfft"
        x = self.tensor(node.args[0])
        if self.v1[node.args[0]].is_complex():
            raise self.err(f"{fn} of complex data: the graph's DFT op transforms real data only")
        n = self.arg(node, 1, "n", None)
        dim = self.arg(node, 2, "dim", -1)
        norm = self.arg(node, 3, "norm", None)
        size = self.gshape(x)[-1]
        if not isinstance(dim, int) or dim % x.ndim != x.ndim - 1 or x.bdim == x.ndim - 1:
            raise self.err(f"{fn} along dim {dim!r}: only the last dim (not the batch) is supported; transpose first")
        if n is not None and n != size:
            raise self.err(f"{fn} with n={n} (padding or trimming the length-{size} signal) is not supported")
        if norm not in (None, "backward"):
            raise self.err(f"{fn} with norm={norm!r} is not supported: the graph's DFT is unnormalized ('backward')")
        bins = size if fn == "torch.fft.fft" else size // 2 + 1
        return _Complex(x, bins, fn, node.name)

    def map_complex_part(self, node: fx.Node, imag: bool) -> _T:
        src = node.args[0]
        z = self.val(src, complex_ok=True)
        if not isinstance(z, _Complex):
            raise self.err(f"{'.imag' if imag else '.real'} of a value that is not the result of torch.fft.fft/rfft "
                           "(the graph's tensors are real)")
        key = (z.node_name, imag)
        if key not in self._dft:
            shape, bd = self.out_t(node)
            tid = self.emit("dft", node.name, [z.x], shape, length=z.bins, imag=imag)
            self._dft[key] = _T(tid, bd, len(shape) + 1)
        return self._dft[key]

    def need_bdim0(self, x: _T) -> None:
        if x.bdim != 0:
            raise self.err(f"input has its batch on dim {x.bdim}; this op needs (batch, channels, ...)")

    def emit_pool(self, node, x, shape, bd, pool, nd, kernel, stride, padding, dilation, ceil_mode, cip) -> _T:
        k = _pair(kernel, nd)
        s = _pair(stride if stride not in (None, ()) else kernel, nd)
        p = _pad_pair(padding, nd)
        d = _pair(dilation, nd)
        pad = (p[0], p[0], p[1], p[1])
        tid = self.emit("pool", node.name, [x], shape, pool=pool, kernel=k, stride=s, dilation=d, pad=pad,
                        ceil_mode=bool(ceil_mode), count_include_pad=bool(cip))
        return _T(tid, bd, len(shape) + 1)

    def emit_adaptive(self, node, x, shape, bd, pool, nd, output_size) -> _T:
        self.need_bdim0(x)
        xs = self.gshape(x)
        if len(xs) != nd + 1:
            raise self.err(f"adaptive pool over a {len(xs) - 1}-D map is not supported")
        if isinstance(output_size, (tuple, list)):
            outs = tuple(output_size)
        else:
            outs = (output_size,) * nd
        if len(outs) != nd:
            raise self.err(f"adaptive pool output_size {output_size!r} for a {nd}-D pool")
        spatial = xs[1:]
        if all(o == 1 for o in outs):
            tid = self.emit("globalpool", node.name, [x], shape, pool=pool, keep_dims=True)
            return _T(tid, bd, len(shape) + 1)
        ks = []
        for o, n in zip(outs, spatial):
            o = n if o is None else o
            if n % o:
                raise self.err(f"adaptive {pool} pool from length {n} to {o}: {n} is not a multiple of {o}, so "
                               "the windows overlap unevenly and no fixed pool matches")
            ks.append(n // o)
        k = tuple(ks) if nd == 2 else ks[0]
        return self.emit_pool(node, x, shape, bd, pool, nd, k, k, 0, 1, False, True)

    def map_rnn(self, node: fx.Node, m: nn.LSTM | nn.GRU, ins: list, params) -> _RnnOut:
        if len(ins) > 1 and ins[1] is not None:
            raise self.err("an initial state (h_0) passed to the RNN is not supported; harcore's RNN op starts "
                           "from zeros")
        if getattr(m, "proj_size", 0):
            raise self.err("LSTM proj_size is not supported")
        x = self.tensor(ins[0])
        if x.ndim != 3:
            raise self.err(f"RNN input must be 3-D (with batch), got {x.ndim}-D")
        want = 0 if m.batch_first else 1
        if x.bdim != want:
            raise self.err(f"{type(m).__name__} (batch_first={m.batch_first}) receives the batch on dim {x.bdim}, "
                           "so it would run over the batch as time; permute the input or set batch_first")
        cell = "lstm" if isinstance(m, nn.LSTM) else "gru"
        dirs = 2 if m.bidirectional else 1
        seq = self.gshape(x)[0]
        cur = x
        # batch removed, (T, B, I) and (B, T, I) are both (T, I): one RNN op per layer, no transpose needed
        for layer in range(m.num_layers):
            i_size = m.input_size if layer == 0 else m.hidden_size * dirs
            tid = self.emit("rnn", f"{node.name}_l{layer}" if m.num_layers > 1 else node.name, [cur],
                            (seq, m.hidden_size * dirs), cell=cell, bidirectional=m.bidirectional,
                            in_channels=i_size, out_channels=m.hidden_size, bias=m.bias)
            sfx = [f"_l{layer}", f"_l{layer}_reverse"]
            self.own(self.g.ops[-1].name, [(pth, p) for pth, p in params if any(pth.endswith(s) for s in sfx)])
            cur = _T(tid, want, 3)
        return _RnnOut(cur, str(node.target))

    # -- functions and methods ---------------------------------------------------------------
    def map_call(self, node: fx.Node) -> Any:
        t = node.target
        meth = node.op == "call_method"
        a0 = node.args[0] if node.args else None

        if t is operator.getitem:
            return self.map_getitem(node)
        if not meth and t in (torch.fft.fft, torch.fft.rfft):
            return self.map_fft(node)
        if (t is getattr and node.args[1] in ("real", "imag")) or (not meth and t in (torch.real, torch.imag)):
            return self.map_complex_part(node, (node.args[1] if t is getattr else t.__name__) == "imag")
        if any(isinstance(self.env.get(a), _Complex) for a in node.all_input_nodes):
            for a in node.all_input_nodes:
                self.val(a)  # raises, naming the complex value
        if ((meth and t in _RESHAPE_METHODS) or (not meth and t in _RESHAPE_FUNCS)) and \
                isinstance(self.val(a0), _Param):
            p = self.val(a0)  # a view of a parameter (bias.unsqueeze(1)) is still that parameter
            return _Param(p.path, p.tensor, p.is_param, self.v1[node])
        if (meth and t in ("contiguous", "clone", "detach")) or t in (F.dropout, torch.dropout, torch.clone):
            return self.tensor(a0)
        if (meth and t in _ACT_METHODS) or (not meth and t in _ACT_FUNCS):
            act = _ACT_METHODS[t] if meth else _ACT_FUNCS[t]
            if t is F.hardtanh:
                lo, hi = self.arg(node, 1, "min_val", -1.0), self.arg(node, 2, "max_val", 1.0)
                act = "relu6" if (lo, hi) == (0.0, 6.0) else "hardtanh"
            return self.unary(node, "activation", act=act)
        if (meth and t in ("softmax", "log_softmax")) or (not meth and t in _SOFTMAX_FUNCS):
            dim = self.arg(node, 1, "dim", None)
            if dim is None:
                raise self.err("softmax without an explicit dim is not supported")
            return self.unary(node, "softmax", axis=self.gaxis(dim, self.tensor(a0)))
        if (meth and t in ("add", "add_")) or (not meth and t in _ADD_FUNCS):
            if node.kwargs.get("alpha", 1) != 1:
                raise self.err("add with alpha != 1 is not supported")
            return self.binary(node, "add")
        if (meth and t in ("mul", "mul_")) or (not meth and t in _MUL_FUNCS):
            return self.binary(node, "mul")
        if (meth and t in ("matmul", "bmm")) or (not meth and t in _MATMUL_FUNCS):
            return self.map_matmul(node, node.args[0], node.args[1])
        if t is torch.einsum:
            return self.map_einsum(node)
        if (meth and t in _RESHAPE_METHODS) or (not meth and t in _RESHAPE_FUNCS):
            return self.emit_reshape(node, self.tensor(a0))
        if (meth and t in ("permute", "transpose", "swapaxes", "t")) or \
                (not meth and t in (torch.permute, torch.transpose, torch.swapaxes, torch.t)) or \
                (t is getattr and node.args[1] in ("T", "mT")):
            return self.map_transpose(node)
        if t in (torch.cat, torch.concat, torch.concatenate):
            return self.map_cat(node)
        if t is torch.stack:
            return self.map_stack(node)
        if (meth and t in ("mean", "sum")) or (not meth and t in (torch.mean, torch.sum)):
            return self.map_reduce(node, t in ("mean", torch.mean))
        if not meth and t in _POOL_FUNCS:
            pool, nd = _POOL_FUNCS[t]
            x = self.tensor(a0)
            self.need_bdim0(x)
            shape, bd = self.out_t(node)
            k = self.arg(node, 1, "kernel_size")
            s = self.arg(node, 2, "stride", None)
            p = self.arg(node, 3, "padding", 0)
            if pool == "max":
                d = self.arg(node, 4, "dilation", 1)
                cm = self.arg(node, 5, "ceil_mode", False)
                if self.arg(node, 6, "return_indices", False):
                    raise self.err("return_indices=True is not supported")
                cip = True
            else:
                d = 1
                cm = self.arg(node, 4, "ceil_mode", False)
                cip = self.arg(node, 5, "count_include_pad", True)
                if nd == 2 and self.arg(node, 6, "divisor_override", None) is not None:
                    raise self.err("divisor_override is not supported")
            return self.emit_pool(node, x, shape, bd, pool, nd, k, s, p, d, cm, cip)
        if not meth and t in _ADAPTIVE_FUNCS:
            pool, nd = _ADAPTIVE_FUNCS[t]
            x = self.tensor(a0)
            shape, bd = self.out_t(node)
            if self.arg(node, 2, "return_indices", False):
                raise self.err("return_indices=True is not supported")
            return self.emit_adaptive(node, x, shape, bd, pool, nd, self.arg(node, 1, "output_size"))
        if not meth and t is F.linear:
            return self.map_functional_linear(node)
        if not meth and t is F.layer_norm:
            return self.map_functional_layer_norm(node)
        kind = "method" if meth else "function"
        raise self.err(f"{kind} '{_tname(t)}' is not supported by harcore's tracer (no op in the harcore graph)")

    def unary(self, node: fx.Node, kind: str, **fields: Any) -> _T:
        x = self.tensor(node.args[0])
        shape, bd = self.out_t(node)
        return _T(self.emit(kind, node.name, [x], shape, **fields), bd, len(shape) + 1)

    def binary(self, node: fx.Node, kind: str) -> _T:
        if len(node.args) != 2:
            raise self.err(f"{kind} with {len(node.args)} operands is not supported")
        a, b = (self.val(x) for x in node.args)
        word = "sum" if kind == "add" else "product"
        if not isinstance(a, _T) and not isinstance(b, _T):
            raise self.err(f"{kind} of two non-activations is not supported")
        if not isinstance(a, _T):
            a, b = b, a
        shape, bd = self.out_t(node)
        if isinstance(b, _T):
            # numpy broadcasting between activations of equal rank whose batch sits on the same dim
            # (e.g. attention weights (T, 1) times features (T, H)); broadcasting across the batch is not.
            if a.bdim != b.bdim or a.ndim != b.ndim or tuple(shape) != _broadcast(self.gshape(a), self.gshape(b)):
                raise self.err(f"elementwise {word} of shapes {self.gshape(a)} and {self.gshape(b)} (batch dims "
                               f"{a.bdim}, {b.bdim}): harcore's {kind} op broadcasts two activations of equal rank "
                               "with the batch on the same dim")
            return _T(self.emit(kind, node.name, [a, b], shape), bd, len(shape) + 1)
        if isinstance(b, _Param) and b.is_param:
            ps = self.param_shape(a, b.value)
            if tuple(shape) != self.gshape(a):
                raise self.err(f"parameter '{b.path}' of shape {tuple(b.value.shape)} broadcasts the activation "
                               f"{self.gshape(a)} to {tuple(shape)}; only a parameter that fits inside it is "
                               "supported")
            tid = self.emit(kind, node.name, [a], shape, param_shape=ps)
            self.own(self.g.ops[-1].name, [(b.path, b.tensor)])
            return _T(tid, bd, len(shape) + 1)
        if isinstance(b, _Param):
            raise self.err(f"elementwise {word} with the buffer '{b.path}': the harcore graph's {kind} op takes two "
                           "activations or an activation and a trainable parameter")
        raise self.err(
            f"elementwise {word} with the constant {b!r}: the harcore graph has no op for arithmetic with a "
            "constant (add / mul: two activations, or an activation and a trainable parameter). Fold the "
            "constant into a neighbouring layer, or make it an nn.Parameter")

    def param_shape(self, a: _T, p: torch.Tensor) -> tuple[int, ...]:
        ps = list(p.shape)
        if len(ps) > a.ndim:
            raise self.err(f"parameter of shape {tuple(ps)} has more dims than the activation")
        # right-align against the torch shape; the dim facing the batch must be 1 and is dropped
        off = a.ndim - len(ps)
        if a.bdim >= off:
            if ps[a.bdim - off] != 1:
                raise self.err(f"parameter of shape {tuple(ps)} varies along the batch dimension")
            del ps[a.bdim - off]
        # a scalar (0-d) parameter is (1,): the graph's one-input mul always names its parameter's shape
        return tuple(ps) or (1,)

    def emit_reshape(self, node: fx.Node, x: _T) -> _T:
        shape, bd = self.out_t(node)
        if tuple(shape) == self.gshape(x):
            return _T(x.tid, bd, len(shape) + 1)
        return _T(self.emit("reshape", node.name, [x], shape), bd, len(shape) + 1)

    def map_transpose(self, node: fx.Node) -> _T:
        x = self.tensor(node.args[0])
        n = x.ndim
        t = node.target
        if t in ("permute", torch.permute):
            dims = node.args[1:] if t == "permute" else (self.arg(node, 1, "dims"),)
            if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
                dims = tuple(dims[0])
            if "dims" in node.kwargs and t == "permute":
                dims = tuple(node.kwargs["dims"])
            perm = [int(d) % n for d in dims]
        elif t in ("t",) or t is torch.t:
            perm = list(range(n))[::-1]
        elif t is getattr:
            perm = list(range(n))
            if node.args[1] == "T":
                perm = perm[::-1]
            else:
                perm[-1], perm[-2] = perm[-2], perm[-1]
        else:
            d0 = int(self.arg(node, 1, "dim0")) % n
            d1 = int(self.arg(node, 2, "dim1")) % n
            perm = list(range(n))
            perm[d0], perm[d1] = perm[d1], perm[d0]
        shape, bd = self.out_t(node)
        if perm[bd] != x.bdim:
            raise self.err("batch dimension moved inconsistently by the permutation")
        gperm = [p - (1 if p > x.bdim else 0) for j, p in enumerate(perm) if j != bd]
        if gperm == sorted(gperm):
            return _T(x.tid, bd, n)
        return _T(self.emit("transpose", node.name, [x], shape, perm=tuple(gperm)), bd, n)

    def map_cat(self, node: fx.Node) -> _T:
        xs = [self.tensor(a) for a in self.arg(node, 0, "tensors")]
        dim = self.arg(node, 1, "dim", 0)
        if any(x.bdim != xs[0].bdim or x.ndim != xs[0].ndim for x in xs):
            raise self.err("concatenated tensors have their batch on different dims")
        axis = self.gaxis(dim, xs[0])
        shape, bd = self.out_t(node)
        if len(xs) == 1:
            return xs[0]
        return _T(self.emit("concat", node.name, xs, shape, axis=axis), bd, len(shape) + 1)

    def map_stack(self, node: fx.Node) -> _T:
        xs = [self.tensor(a) for a in self.arg(node, 0, "tensors")]
        dim = self.arg(node, 1, "dim", 0)
        shape, bd = self.out_t(node)
        out = _T(-1, bd, len(shape) + 1)
        axis = self.gaxis(dim, out)
        if any(x.bdim != xs[0].bdim or self.gshape(x) != self.gshape(xs[0]) for x in xs):
            raise self.err("stacked tensors differ in shape or batch dim")
        parts = []
        for i, x in enumerate(xs):
            s = list(self.gshape(x))
            s.insert(axis, 1)
            parts.append(_T(self.emit("reshape", f"{node.name}_unsqueeze{i}", [x], s), bd, len(shape) + 1))
        if len(parts) == 1:
            return parts[0]
        return _T(self.emit("concat", node.name, parts, shape, axis=axis), bd, len(shape) + 1)

    def map_reduce(self, node: fx.Node, is_mean: bool) -> _T:
        x = self.tensor(node.args[0])
        dim = self.arg(node, 1, "dim", None)
        if isinstance(dim, (tuple, list)) and len(dim) == 1:
            dim = dim[0]
        if not isinstance(dim, int):
            raise self.err(f"{'mean' if is_mean else 'sum'} over dims {dim!r}: only a reduction over one dim is "
                           "supported")
        if node.kwargs.get("dtype") is not None:
            raise self.err("reductions with a dtype are not supported")
        keep = bool(self.arg(node, 2, "keepdim", False))
        axis = self.gaxis(dim, x)
        shape, bd = self.out_t(node)
        return _T(self.emit("mean", node.name, [x], shape, axis=axis, keep_dims=keep, mean=is_mean), bd,
                  len(shape) + 1)

    def map_getitem(self, node: fx.Node) -> Any:
        base = self.env.get(node.args[0]) if isinstance(node.args[0], fx.Node) else node.args[0]
        idx = node.args[1]
        if isinstance(base, _Unsupported):
            return base
        if isinstance(base, _RnnOut):
            if idx == 0:
                return base.out
            return _Unsupported(
                f"the final state (h_n/c_n, item {idx}) of RNN '{base.module_path}' is used; harcore's RNN op "
                "outputs only the sequence: use the last step of the output (out[:, -1]) instead")
        x = self.tensor(node.args[0], "indexed value")
        shape, bd = self.out_t(node)
        idx = idx if isinstance(idx, tuple) else (idx,)
        if any(i is None for i in idx):
            raise self.err("indexing with None (new axis) is not supported; use unsqueeze")
        if sum(i is Ellipsis for i in idx) > 1:
            raise self.err("more than one Ellipsis in an index")
        if Ellipsis in idx:
            k = idx.index(Ellipsis)
            idx = idx[:k] + (slice(None),) * (x.ndim - len(idx) + 1) + idx[k + 1:]
        if len(idx) > x.ndim:
            raise self.err("too many indices")
        sizes = self.v1[node.args[0]].shape
        sel = []
        for d, i in enumerate(idx):
            if isinstance(i, slice) and i == slice(None):
                continue
            if isinstance(i, (fx.Node, list, torch.Tensor)):
                i = self.index_value(i, d)
            if isinstance(i, bool) or not isinstance(i, (int, slice, torch.Tensor)):
                raise self.err(f"index {i!r} on dim {d}: only integers, slices and constant integer index tensors "
                               "(buffers) are supported")
            sel.append((d, i))
        if not sel:
            return _T(x.tid, bd, len(shape) + 1)
        if len(sel) > 1:
            raise self.err(f"indexing {len(sel)} dims at once; the harcore slice op selects along one dim")
        d, i = sel[0]
        axis = self.gaxis(d, x, "indexed dim")
        n = sizes[d]
        if isinstance(i, torch.Tensor):
            if ((i < -n) | (i >= n)).any():
                raise self.err(f"index tensor on dim {d} has values outside [-{n}, {n}) for size {n}")
            flat = tuple(int(v) % n for v in i.reshape(-1).tolist())
            return _T(self.emit("gather", node.name, [x], shape, axis=axis, indices=flat,
                                index_shape=tuple(int(s) for s in i.shape)), bd, len(shape) + 1)
        if isinstance(i, int):
            if not -n <= i < n:
                raise self.err(f"index {i} out of range for size {n}")
            start, length, squeeze = i % n, 1, True
        else:
            start, stop, step = i.indices(n)
            if step != 1:
                raise self.err(f"slice step {step}: only step 1 is supported")
            length, squeeze = max(0, stop - start), False
            if length == n:
                return _T(x.tid, bd, len(shape) + 1)
        return _T(self.emit("slice", node.name, [x], shape, axis=axis, start=start, length=length,
                            squeeze=squeeze), bd, len(shape) + 1)

    def index_value(self, i: Any, d: int) -> Any:
        """An index that is an fx value, a list or a tensor: an int (shape arithmetic) or a constant index tensor."""
        what = f"index on dim {d}"
        if isinstance(i, fx.Node):
            v = self.val(i)
            if isinstance(v, _T):
                raise self.err(f"{what} is an activation (a data-dependent gather); the harcore graph's gather takes "
                               "constant indices: register them as a buffer")
            if isinstance(v, _Param):
                if v.is_param:
                    raise self.err(f"{what} is the trainable parameter '{v.path}'; indices must be a constant buffer")
                i = v.value
            else:
                i = v
        if isinstance(i, list):
            if not all(isinstance(e, int) and not isinstance(e, bool) for e in i):
                raise self.err(f"{what}: the list {i!r} is not a list of integers")
            i = torch.tensor(i, dtype=torch.long)
        if isinstance(i, torch.Tensor):
            if i.is_floating_point() or i.is_complex() or i.dtype == torch.bool:
                raise self.err(f"{what} is a {i.dtype} tensor; only integer index tensors are supported (no masks)")
            return i.detach().cpu()
        return i

    # -- products ----------------------------------------------------------------------------
    def map_matmul(self, node: fx.Node, an: Any, bn: Any) -> _T:
        a, b = self.val(an), self.val(bn)
        if isinstance(a, _T) and isinstance(b, _Param) and b.is_param:
            if b.tensor.dim() != 2:
                raise self.err(f"matmul with the {b.tensor.dim()}-D parameter '{b.path}': only a 2-D weight is "
                               "supported")
            return self.param_linear(node, a, b, int(b.tensor.shape[0]), int(b.tensor.shape[1]), None)
        a, b = self.tensor(an, "left operand"), self.tensor(bn, "right operand")
        shape, bd = self.out_t(node)
        sa, sb = self.gshape(a), self.gshape(b)
        if a.bdim != 0 or b.bdim != 0 or len(sa) < 2 or len(sa) != len(sb) or sa[:-2] != sb[:-2] or \
                sa[-1] != sb[-2]:
            raise self.err(f"matmul of {self.v1[an].shape} and {self.v1[bn].shape}: harcore's matmul needs two "
                           "activations (batch, ..., M, K) @ (batch, ..., K, N) with equal leading dims")
        return _T(self.emit("matmul", node.name, [a, b], shape), bd, len(shape) + 1)

    def param_linear(self, node: fx.Node, x: _T, w: _Param, k: int, n: int, bias: _Param | None) -> _T:
        if self.gshape(x)[-1] != k or x.bdim == x.ndim - 1:
            raise self.err(f"product with parameter '{w.path}' of shape {tuple(w.tensor.shape)} does not "
                           f"contract the activation's last dim ({self.gshape(x)})")
        shape, bd = self.out_t(node)
        tid = self.emit("linear", node.name, [x], shape, in_channels=k, out_channels=n, bias=bias is not None)
        self.own(self.g.ops[-1].name, [(w.path, w.tensor)] + ([(bias.path, bias.tensor)] if bias else []))
        return _T(tid, bd, len(shape) + 1)

    def map_functional_linear(self, node: fx.Node) -> _T:
        x = self.tensor(node.args[0])
        w = self.val(self.arg(node, 1, "weight"))
        b = self.val(self.arg(node, 2, "bias", None))
        if not (isinstance(w, _Param) and w.is_param and w.tensor.dim() == 2) or \
                (b is not None and not (isinstance(b, _Param) and b.is_param)):
            raise self.err("F.linear is supported only with parameter weight (2-D) and bias")
        return self.param_linear(node, x, w, int(w.tensor.shape[1]), int(w.tensor.shape[0]), b)

    def map_einsum(self, node: fx.Node) -> _T:
        eq = node.args[0]
        ops = list(node.args[1:])
        if len(ops) == 1 and isinstance(ops[0], (list, tuple)):
            ops = list(ops[0])
        if not isinstance(eq, str) or len(ops) != 2 or "->" not in eq or "." in eq:
            raise self.err("only explicit two-operand einsum ('ab,bc->ac', no '...') is supported")
        lhs, out = eq.replace(" ", "").split("->")
        la, lb = lhs.split(",")
        va, vb = self.val(ops[0]), self.val(ops[1])
        if isinstance(va, _Param) and isinstance(vb, _T):
            va, vb, la, lb = vb, va, lb, la
        for lab in (la, lb, out):
            if len(set(lab)) != len(lab):
                raise self.err(f"einsum '{eq}': repeated labels (diagonals) are not supported")
        if isinstance(vb, _Param) and vb.is_param and isinstance(va, _T):
            return self.einsum_param(node, eq, va, vb, la, lb, out)
        a = self.tensor(ops[0], "first einsum operand")
        b = self.tensor(ops[1], "second einsum operand")
        la, lb = lhs.split(",")
        bl = la[a.bdim]
        if bl not in lb or lb[b.bdim] != bl or bl not in out:
            raise self.err(f"einsum '{eq}': both operands and the output must keep the batch label")
        sa, sb, so = set(la), set(lb), set(out)
        if (sa - sb - so) or (sb - sa - so) or (so - sa - sb):
            raise self.err(f"einsum '{eq}': labels summed within one operand are not supported")
        batch = [c for c in la if c in sb and c in so and c != bl]
        kl = [c for c in la if c in sb and c not in so]
        ml = [c for c in la if c not in sb]
        nl = [c for c in lb if c not in sa]
        if len(kl) != 1 or len(ml) > 1 or len(nl) > 1:
            raise self.err(f"einsum '{eq}': needs exactly one contracted label and at most one free label per "
                           "operand")
        size = {}
        for lab, t in ((la, self.v1[ops[0]]), (lb, self.v1[ops[1]])):
            for c, s in zip(lab, t.shape):
                size[c] = int(s)
        k = kl[0]
        # operand a -> (batch..., M, K), b -> (batch..., K, N); missing M/N get a size-1 dim
        a2 = self.einsum_arrange(node, a, la, batch + ml + [k], size, bl, "a", None if ml else len(batch))
        b2 = self.einsum_arrange(node, b, lb, batch + [k] + nl, size, bl, "b", None if nl else len(batch) + 1)
        mm_labels = batch + (ml or ["_m"]) + (nl or ["_n"])
        size["_m"] = size["_n"] = 1
        mm_shape = tuple(size[c] for c in mm_labels)
        cur = _T(self.emit("matmul", node.name, [a2, b2], mm_shape), 0, len(mm_shape) + 1)
        shape, bd = self.out_t(node)
        if ml and nl:
            final = [c for c in out if c != bl]
            perm = tuple(mm_labels.index(c) for c in final)
            if list(perm) != sorted(perm):
                cur = _T(self.emit("transpose", f"{node.name}_out", [cur],
                                   tuple(size[c] for c in final), perm=perm), 0, len(mm_shape) + 1)
        if tuple(self.gshape(cur)) != tuple(shape):
            # drop the size-1 helper dim (and reorder if needed via reshape only when the order already matches)
            keep = [c for c in mm_labels if c not in ("_m", "_n")]
            final = [c for c in out if c != bl]
            if keep != final:
                perm = tuple(keep.index(c) for c in final)
                sq = tuple(size[c] for c in keep)
                cur = _T(self.emit("reshape", f"{node.name}_squeeze", [cur], sq), 0, len(sq) + 1)
                cur = _T(self.emit("transpose", f"{node.name}_out", [cur], shape, perm=perm), 0, len(shape) + 1)
            else:
                cur = _T(self.emit("reshape", f"{node.name}_squeeze", [cur], shape), 0, len(shape) + 1)
        if bd != 0:
            raise self.err(f"einsum '{eq}': the output must keep the batch first")
        return _T(cur.tid, bd, len(shape) + 1)

    def einsum_grouped(self, node, eq, x: _T, w: _Param, lx: str, lw: str, out: str) -> _T:
        """A per-group weight, e.g. 'bcnt,ctf->bcnf' (one (t, f) matrix per channel c): a grouped 1x1 conv.

        x is arranged as (g, k, m...) and viewed as (G*K, M), convolved with G*N filters in G groups, and the
        (G*N, M) result is viewed as (g, n, m...) and permuted to the output's label order."""
        msg = (f"einsum '{eq}' with the 3-D parameter '{w.path}': only a per-group weight (one label shared by the "
               "activation, the weight and the output; one contracted; one new) is supported")
        gl = [c for c in lw if c in lx and c in out]
        kl = [c for c in lw if c in lx and c not in out]
        nl = [c for c in lw if c not in lx and c in out]
        if x.bdim != 0 or lx[0] in lw:
            raise self.err(msg + "; the batch must be the activation's first dim and not a label of the weight")
        if len(gl) != 1 or len(kl) != 1 or len(nl) != 1:
            raise self.err(msg)
        g, k, n = gl[0], kl[0], nl[0]
        bl = lx[0]
        glab = [c for c in lx if c != bl]
        ml = [c for c in glab if c not in (g, k)]
        final = [c for c in out if c != bl]
        if sorted(final) != sorted([g, n] + ml) or out[0] != bl:
            raise self.err(msg + f"; the output '{out}' must keep the batch first and every other label of x")
        size = dict(zip(glab, self.gshape(x)))
        size[n] = int(w.value.shape[lw.index(n)])
        G, K, N = size[g], size[k], size[n]
        M = math.prod(size[c] for c in ml)
        cur = x
        want = [g, k] + ml
        if glab != want:
            cur = _T(self.emit("transpose", f"{node.name}_inT", [cur], tuple(size[c] for c in want),
                               perm=tuple(glab.index(c) for c in want)), 0, len(want) + 1)
        cur = _T(self.emit("reshape", f"{node.name}_in", [cur], (G * K, M)), 0, 3)
        tid = self.emit("conv", node.name, [cur], (G * N, M), in_channels=G * K, out_channels=G * N, groups=G,
                        bias=False)
        self.own(self.g.ops[-1].name, [(w.path, w.tensor)])
        mid = [g, n] + ml
        cur = _T(self.emit("reshape", f"{node.name}_out", [_T(tid, 0, 3)], tuple(size[c] for c in mid)), 0,
                 len(mid) + 1)
        if mid != final:
            cur = _T(self.emit("transpose", f"{node.name}_outT", [cur], tuple(size[c] for c in final),
                               perm=tuple(mid.index(c) for c in final)), 0, len(final) + 1)
        shape, bd = self.out_t(node)
        if self.gshape(cur) != tuple(shape):
            raise self.err(msg)
        return cur

    def einsum_arrange(self, node, t: _T, labels: str, want: list[str], size: dict, bl: str, tag: str,
                       insert_at: int | None) -> _T:
        have = [c for c in labels if c != bl]
        if t.bdim != labels.index(bl):
            raise self.err("einsum operand batch label does not sit on the batch dim")
        cur = t
        if have != want:
            perm = tuple(have.index(c) for c in want)
            cur = _T(self.emit("transpose", f"{node.name}_{tag}T", [cur], tuple(size[c] for c in want),
                               perm=perm), 0, len(want) + 1)
        if insert_at is not None:
            s = [size[c] for c in want]
            s.insert(insert_at, 1)
            cur = _T(self.emit("reshape", f"{node.name}_{tag}R", [cur], s), 0, len(s) + 1)
        return cur

    def einsum_param(self, node, eq, x: _T, w: _Param, lx: str, lw: str, out: str) -> _T:
        if w.value.dim() == 3 and len(lw) == 3:
            return self.einsum_grouped(node, eq, x, w, lx, lw, out)
        if w.value is not w.tensor:
            raise self.err(f"einsum '{eq}' with a view of parameter '{w.path}' is not supported")
        if w.tensor.dim() != 2 or len(lw) != 2:
            raise self.err(f"einsum '{eq}' with parameter '{w.path}': only a 2-D weight is supported")
        kl = [c for c in lw if c in lx and c not in out]
        nl = [c for c in lw if c not in lx and c in out]
        if len(kl) != 1 or len(nl) != 1 or set(lx) - set(kl) != set(out) - set(nl) or \
                lx.replace(kl[0], nl[0]) != out:
            raise self.err(f"einsum '{eq}' with parameter '{w.path}': only 'x over its last-or-any dim times a "
                           "weight' with the output keeping x's label order is supported")
        k, n = kl[0], nl[0]
        bl = lx[x.bdim]
        size: dict[str, int] = {}
        xs = self.gshape(x)
        glab = [c for c in lx if c != bl]
        for c, s in zip(glab, xs):
            size[c] = s
        size[n] = int(w.tensor.shape[lw.index(n)])
        kn = (size[k], size[n])
        if glab[-1] == k:
            return self.param_linear(node, x, w, *kn, None)
        # move k last, linear, move n back
        want = [c for c in glab if c != k] + [k]
        perm = tuple(glab.index(c) for c in want)
        if x.bdim != 0:
            raise self.err(f"einsum '{eq}': the batch must be the first dim")
        cur = _T(self.emit("transpose", f"{node.name}_inT", [x], tuple(size[c] for c in want), perm=perm), 0, x.ndim)
        mid = [c for c in glab if c != k] + [n]
        tid = self.emit("linear", node.name, [cur], tuple(size[c] for c in mid), in_channels=kn[0],
                        out_channels=kn[1], bias=False)
        self.own(self.g.ops[-1].name, [(w.path, w.tensor)])
        final = [c if c != k else n for c in glab]
        perm2 = tuple(mid.index(c) for c in final)
        shape, bd = self.out_t(node)
        tid = self.emit("transpose", f"{node.name}_outT", [_T(tid, 0, x.ndim)], shape, perm=perm2)
        return _T(tid, bd, len(shape) + 1)


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


def _broadcast(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...] | None:
    if len(a) != len(b) or any(x != y and 1 not in (x, y) for x, y in zip(a, b)):
        return None
    return tuple(max(x, y) for x, y in zip(a, b))


def _flatten(v: Any) -> list:
    if isinstance(v, (tuple, list)):
        return [y for x in v for y in _flatten(x)]
    if isinstance(v, dict):
        return [y for x in v.values() for y in _flatten(x)]
    return [v]


def _has_tensor(v: Any) -> bool:
    if isinstance(v, torch.Tensor):
        return True
    if isinstance(v, (tuple, list)):
        return any(_has_tensor(x) for x in v)
    return False


def _pair(v: Any, nd: int) -> tuple[int, int]:
    """torch's int-or-tuple geometry -> harcore's (h, w); a 1-D op has h = 1."""
    if isinstance(v, (tuple, list)):
        v = tuple(int(x) for x in v)
        if len(v) == 1:
            v = v[0]
    if nd == 1:
        if isinstance(v, tuple):
            raise ValueError(f"1-D geometry {v!r} has more than one value")
        return (1, int(v))
    if isinstance(v, tuple):
        if len(v) != 2:
            raise ValueError(f"2-D geometry {v!r}")
        return v  # type: ignore[return-value]
    return (int(v), int(v))


def _conv_pad(padding: Any, k: tuple[int, int], d: tuple[int, int], nd: int) -> tuple[int, int, int, int]:
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            th, tw = d[0] * (k[0] - 1), d[1] * (k[1] - 1)
            return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        raise ValueError(f"padding {padding!r}")
    p = _pad_pair(padding, nd)
    return (p[0], p[0], p[1], p[1])


def _pad_pair(v: Any, nd: int) -> tuple[int, int]:
    """torch padding -> (h, w); a 1-D op has no h padding."""
    h, w = _pair(v, nd)
    return (0, w) if nd == 1 else (h, w)


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
        raise ValueError(f"input_shape must be a tuple of positive ints without the batch, e.g. (channels, time); "
                         f"got {input_shape!r}") from None
    if not shape or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise ValueError(f"input_shape must be a tuple of positive ints without the batch, e.g. (channels, time); "
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
            raise ValueError(f"{name}.forward takes more than one required input ('{p.name}'); harcore models "
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
        raise ValueError(
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
                    raise ValueError(f"{name} does not run on an input of shape {(b, *shape)} "
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
        raise ValueError(f"{name}: parameter(s) {lst} are not used by any traced op, so the graph would not "
                         "count them; every parameter must belong to exactly one op")
    got = sum(op_param_count(op, g) for op in g.ops)
    want = sum(p.numel() for _, p in named)
    if got != want:
        per_op: dict[str, int] = {}
        for n, p in named:
            per_op[mp.owner[id(p)]] = per_op.get(mp.owner[id(p)], 0) + p.numel()
        bad = [f"op '{op.name}' ({op.kind}): graph counts {op_param_count(op, g)}, module has {per_op.get(op.name, 0)}"
               for op in g.ops if op_param_count(op, g) != per_op.get(op.name, 0)]
        raise ValueError(f"{name}: the graph counts {got} parameters but the module has {want}: " + "; ".join(bad))
