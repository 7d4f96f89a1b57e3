"""Values carried per fx node while mapping, the torch spellings each op kind recognizes, and small geometry helpers
shared by the tracer's mappings."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from harcore.errors import GraphError



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
            raise GraphError(f"1-D geometry {v!r} has more than one value")
        return (1, int(v))
    if isinstance(v, tuple):
        if len(v) != 2:
            raise GraphError(f"2-D geometry {v!r}")
        return v  # type: ignore[return-value]
    return (int(v), int(v))


def _conv_pad(padding: Any, k: tuple[int, int], d: tuple[int, int], nd: int) -> tuple[int, int, int, int]:
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            th, tw = d[0] * (k[0] - 1), d[1] * (k[1] - 1)
            return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        raise GraphError(f"padding {padding!r}")
    p = _pad_pair(padding, nd)
    return (p[0], p[0], p[1], p[1])


def _pad_pair(v: Any, nd: int) -> tuple[int, int]:
    """torch padding -> (h, w); a 1-D op has no h padding."""
    h, w = _pair(v, nd)
    return (0, w) if nd == 1 else (h, w)
