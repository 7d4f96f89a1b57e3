"""Post-training quantization: trace, fold BN, fuse ReLU/ReLU6, calibrate, quantize (docs/int8.md).

``FloatGraph`` executes the folded graph in float with torch — the calibration engine, and a check that
folding and fusion reproduce the model (its output is compared with ``model(x)``).
"""

from __future__ import annotations

import copy
import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from harcore.errors import QuantError
from harcore.graph.ir import Graph, Op
from harcore.graph.passes import fold_and_fuse
from harcore.quant.qgraph import (ACTIVATIONS, GRU_INTERMEDIATES, LOGISTIC_QPARAMS, SOFTMAX_QPARAMS, SUPPORTED_KINDS,
                                  TANH_QPARAMS, TIED_KINDS, QGraph, QOp, QParams)

__all__ = ["quantize", "fold", "FloatGraph", "range_qparams", "TIED_QPARAMS_KINDS", "mul_parameter", "apply_act",
           "check_calibration", "MIN_CALIBRATION_WINDOWS", "without_sensor_gather", "QParamGroups", "qparam_groups"]

#: Fewer calibration windows than this draw a warning. Every activation range comes from the calibration
#: min/max, so a handful of windows leaves most of the value range of real data outside it (one window gave an
#: int8 model that agreed with float on 75 % of test windows). TFLite's converter documentation suggests
#: "around 100-500" representative samples; 100 is its lower end.
MIN_CALIBRATION_WINDOWS = 100

# Ops whose output keeps its input's quantization (no requantization); QAT places no fake-quant there.
TIED_QPARAMS_KINDS = TIED_KINDS
__all__ += ["unsupported_reason"]

# Why an op has no int8 form in harcore (TFLite/TFLM int8 kernels and harcore's runtime), and what to write instead.
_NO_INT8 = {
    "layernorm": ("TFLite has no LAYER_NORM builtin, and harcore's runtime has no kernels for its decomposition "
                  "(SQUARED_DIFFERENCE, RSQRT); an int8 per-window variance would also lose most of its precision",
                  "use a BatchNorm right after a conv or linear (it folds into the weights at no cost)"),
    "dft": ("torch.fft has no int8 TFLite kernel (TFLite's RFFT2D is float only)",
            "compute spectral features in the data pipeline, before the model, or learn them with a Conv1d"),
    "batchnorm": ("this BatchNorm follows neither a conv/linear it could be folded into nor a (C, T) / (C, H, W) "
                  "map it could run on as a depthwise 1x1 conv",
                  "place the BatchNorm directly after a conv or linear"),
}
_NO_INT8_ACT = {
    "gelu": "harcore's int8 runtime has no GELU kernel (TFLM has no int8 GELU)",
    "silu": "harcore's int8 runtime has no SiLU kernel (TFLite has no int8 SiLU builtin; LOGISTIC then MUL would "
            "double the activation memory)",
    "elu": "harcore's int8 runtime has no ELU kernel yet (TFLite's int8 ELU is a lookup table)",
    "hardtanh": "a Hardtanh other than ReLU6 requantizes and clamps to arbitrary bounds, which has no bit-exact TFLM "
                "int8 op",
}


def unsupported_reason(op: Op) -> str | None:
    """Why ``op`` (a traced graph op) has no int8 form, naming what to write instead; None if it has one."""
    if op.kind == "activation" and op.act not in ACTIVATIONS:
        why = _NO_INT8_ACT.get(op.act, f"harcore's int8 runtime has no kernel for activation '{op.act}'")
        return (f"op '{op.name}' ({op.kind}): activation '{op.act}' is not supported by the int8 path: {why}; write "
                "nn.ReLU or nn.ReLU6 (fused into the preceding conv/linear for free), or tanh / sigmoid instead"
                + (f" [{op.source}]" if op.source else ""))
    if op.kind not in SUPPORTED_KINDS:
        why, instead = _NO_INT8.get(op.kind, ("harcore's int8 runtime has no kernel for it", None))
        return (f"op '{op.name}' ({op.kind}): kind '{op.kind}' is not supported by the int8 path: {why}"
                + (f"; instead, {instead}" if instead else "") + (f" [{op.source}]" if op.source else ""))
    return None


def _globalpool_as_pool(graph: Graph) -> Graph:
    """A global average / max pool is TFLite's AVERAGE_POOL_2D / MAX_POOL_2D with the whole map as its window
    (VALID, stride = window): the runtime's avg/max pool kernels, bit-exact with TFLM, and the output keeps the
    input's quantization. Rewritten before fusion, so a ReLU after it fuses as after any pool."""
    if not any(op.kind == "globalpool" for op in graph.ops):
        return graph
    g = copy.deepcopy(graph)
    for op in g.ops:
        if op.kind != "globalpool":
            continue
        shape = g.tensors[op.inputs[0]].shape
        if len(shape) not in (2, 3):
            raise QuantError(f"op '{op.name}' (globalpool): input shape {shape}; the int8 path pools (C, T) or "
                             "(C, H, W) maps")
        win = (1, shape[1]) if len(shape) == 2 else (shape[1], shape[2])
        op.kind, op.kernel, op.stride, op.pad = "pool", win, win, (0, 0, 0, 0)
        op.dilation, op.ceil_mode, op.count_include_pad = (1, 1), False, False
        out = (shape[0], 1) if len(shape) == 2 else (shape[0], 1, 1)
        if tuple(g.tensors[op.output].shape) != out:
            raise QuantError(f"op '{op.name}' (globalpool): output shape {g.tensors[op.output].shape}, expected {out}")
    return g


def range_qparams(lo: float, hi: float) -> QParams:
    """TFLite's converter rule: the range always includes 0; scale = span / 255, zero point nudged into int8."""
    lo, hi = min(0.0, float(lo)), max(0.0, float(hi))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"calibration range [{lo}, {hi}] is not finite")
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    scale = float(np.float32((hi - lo) / 255.0))
    zp = int(round(-128 - lo / scale))
    return QParams(scale, max(-128, min(127, zp)))


# ---- folding -----------------------------------------------------------------------------------------


def _module(model: nn.Module, op: Op) -> nn.Module:
    try:
        return model.get_submodule(op.source)
    except (AttributeError, ValueError):
        raise ValueError(f"op '{op.name}' ({op.kind}): its parameters are not held by a module (source "
                         f"'{op.source}'); the int8 path reads weights from nn.Conv/Linear/BatchNorm/LSTM/GRU "
                         "modules") from None


def mul_parameter(model: nn.Module, op: Op) -> tuple[str, nn.Parameter]:
    """(qualified name, the live parameter) of a one-input ``mul``: the tracer names the module whose code
    multiplies (source ``"<module path>:<node>"``), and the parameter is that module's own one of
    ``param_shape``'s size. QAT trains it through this handle."""
    path = op.source.split(":", 1)[0] if ":" in op.source else ""
    try:
        m = model.get_submodule(path)
    except (AttributeError, ValueError):
        m = None
    n = math.prod(op.param_shape)
    found = [(k, p) for k, p in m.named_parameters(recurse=False) if p.numel() == n] if m is not None else []
    if len(found) != 1:
        raise ValueError(f"op '{op.name}' (mul): cannot identify its parameter (source '{op.source}': "
                         f"{len(found)} direct parameters of {n} values in module '{path}'); the int8 path needs "
                         "exactly one")
    return (f"{path}.{found[0][0]}" if path else found[0][0]), found[0][1]


def _mul_param(model: nn.Module, op: Op) -> torch.Tensor:
    return mul_parameter(model, op)[1].detach().double().reshape(op.param_shape)


def _float_params(model: nn.Module, op: Op) -> dict[str, torch.Tensor]:
    if op.kind in ("mul", "add"):
        return {"param": _mul_param(model, op)}
    m = _module(model, op)
    if op.kind == "conv":
        w = m.weight.detach().double()
        if w.dim() == 3:
            w = w.unsqueeze(2)  # (C_out, C_in/g, 1, K): the graph's 1-D conv is (h=1, w=K)
        b = m.bias.detach().double() if m.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
        return {"weight": w, "bias": b}
    if op.kind == "linear":
        w = m.weight.detach().double()
        b = m.bias.detach().double() if m.bias is not None else torch.zeros(w.shape[0], dtype=torch.float64)
        return {"weight": w, "bias": b}
    if op.kind == "batchnorm":
        if not isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) or m.running_mean is None:
            raise ValueError(f"op '{op.name}': BatchNorm without running statistics cannot be folded")
        g = m.weight.detach().double() if m.affine else torch.ones(m.num_features, dtype=torch.float64)
        beta = m.bias.detach().double() if m.affine else torch.zeros(m.num_features, dtype=torch.float64)
        inv = g / torch.sqrt(m.running_var.detach().double() + m.eps)
        return {"scale": inv, "shift": beta - m.running_mean.detach().double() * inv}
    if op.kind == "rnn":
        out: dict[str, torch.Tensor] = {}
        layer = 0
        if isinstance(m, (nn.LSTM, nn.GRU)) and m.num_layers > 1:
            layer = int(op.name.rsplit("_l", 1)[1]) if "_l" in op.name else 0
        for d, sfx in enumerate(["", "_reverse"][: 2 if op.bidirectional else 1]):
            for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                p = getattr(m, f"{n}_l{layer}{sfx}", None)
                if p is None:
                    rows = (4 if op.cell == "lstm" else 3) * op.out_channels
                    p = torch.zeros(rows)
                out[f"{n}{d}"] = p.detach().double()
        return out
    return {}


def _leaky_slope(model: nn.Module, op: Op) -> torch.Tensor:
    """The negative slope of an nn.LeakyReLU module (the traced graph does not record it)."""
    try:
        m = model.get_submodule(op.source)
    except (AttributeError, ValueError):
        m = None
    if not isinstance(m, nn.LeakyReLU):
        raise QuantError(f"op '{op.name}' (activation): activation 'leaky_relu' written as F.leaky_relu (source "
                         f"'{op.source}'): the int8 path reads the slope from the module; write nn.LeakyReLU(slope) "
                         "instead")
    # TFLite stores alpha as float32; the float graph uses that value so calibration sees what int8 computes
    return torch.tensor(float(np.float32(m.negative_slope)), dtype=torch.float64)


def fold(graph: Graph, model: nn.Module) -> tuple[Graph, dict[str, dict[str, torch.Tensor]], dict[str, str]]:
    """BN folding and activation fusion (docs/int8.md): the graph rewrite is
    :func:`harcore.graph.passes.fold_and_fuse`; this folds the weights along and checks that the int8 path
    supports every op left. Returns the folded graph, float parameters by op name (float64, torch layout) and
    the fused activation by op name. Unsupported ops raise ValueError."""
    graph = _globalpool_as_pool(graph)
    res = fold_and_fuse(graph)
    standalone = {op.name: op for op in res.graph.ops if op.name in res.standalone_bn}
    # every op without an int8 form at once, so that a model is fixed in one round, not one op per attempt
    bad = [why for op in res.graph.ops if (why := unsupported_reason(op)) is not None]
    if len(bad) == 1:
        raise QuantError(bad[0])
    if bad:
        raise QuantError(f"{len(bad)} ops have no int8 form in harcore:\n  " + "\n  ".join(bad))
    params: dict[str, dict[str, torch.Tensor]] = {}
    # in graph order, so that errors come in the order of the ops and chained BNs fold in turn
    for op in graph.ops:
        if op.name in res.standalone_bn:
            c = standalone[op.name].in_channels
            bn = _float_params(model, op)
            params[op.name] = {"weight": bn["scale"].reshape(c, 1, 1, 1), "bias": bn["shift"]}
            continue
        if op.name in res.folded_bn:
            bn = _float_params(model, op)
            fp = params[res.folded_bn[op.name]]
            shape = (-1,) + (1,) * (fp["weight"].dim() - 1)
            fp["weight"] = fp["weight"] * bn["scale"].reshape(shape)
            fp["bias"] = fp["bias"] * bn["scale"] + bn["shift"]
            continue
        if op.name in res.removed_acts:
            continue
        why = unsupported_reason(op)
        if why is not None:
            raise QuantError(why)
        if op.kind == "add" and len(op.inputs) not in (1, 2):
            raise ValueError(f"op '{op.name}' (add): {len(op.inputs)} operands; the int8 path adds two activations "
                             "or an activation and a parameter")
        if op.kind == "mul" and len(op.inputs) not in (1, 2):
            raise ValueError(f"op '{op.name}' (mul): {len(op.inputs)} operands; the int8 path multiplies two "
                             "activations or an activation by a parameter")
        if op.kind == "pool" and op.ceil_mode:
            raise ValueError(f"op '{op.name}' (pool): ceil_mode is not supported by the int8 path")
        if op.kind == "pool" and op.pool == "avg" and any(op.pad) and op.count_include_pad:
            raise ValueError(f"op '{op.name}' (pool): padded average pooling counting the padding is not supported "
                             "by the int8 path (arm_avgpool_s8 excludes padding)")
        if op.kind == "pool" and tuple(op.dilation) != (1, 1):
            raise ValueError(f"op '{op.name}' (pool): dilated pooling is not supported by the int8 path")
        if op.kind in ("conv", "linear", "rnn") or (op.kind in ("mul", "add") and len(op.inputs) == 1):
            params[op.name] = _float_params(model, op)
        if op.kind == "activation" and op.act == "leaky_relu":
            params[op.name] = {"alpha": _leaky_slope(model, op)}
    return res.graph, params, res.acts


# ---- float execution ---------------------------------------------------------------------------------


class _Range:
    __slots__ = ("lo", "hi")

    def __init__(self) -> None:
        self.lo, self.hi = math.inf, -math.inf

    def add(self, x: torch.Tensor) -> None:
        if x.numel():
            self.lo = min(self.lo, float(x.min()))
            self.hi = max(self.hi, float(x.max()))


def apply_act(op: Op, acts: dict[str, str], y: torch.Tensor) -> torch.Tensor:
    """``y`` through ``op``'s activation: the one ``fold`` fused into it (``acts``) or its own, if it is one."""
    act = acts.get(op.name) or (op.act if op.kind == "activation" else None)
    if act == "relu":
        return torch.relu(y)
    if act == "relu6":
        return torch.clamp(y, 0.0, 6.0)
    if act == "tanh":
        return torch.tanh(y)
    if act == "sigmoid":
        return torch.sigmoid(y)
    return y


class FloatGraph:
    """The folded graph in float (torch, float64), recording every tensor's range and RNN internals."""

    def __init__(self, graph: Graph, params: dict[str, dict[str, torch.Tensor]], acts: dict[str, str]):
        self.graph, self.params, self.acts = graph, params, acts
        self.ranges = [_Range() for _ in graph.tensors]
        self.internal: dict[str, _Range] = {}  # "<op>/<name><d>" -> range

    def _rec(self, op: Op, name: str, v: torch.Tensor) -> None:
        self.internal.setdefault(f"{op.name}/{name}", _Range()).add(v)

    @torch.no_grad()
    def run(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Values of every tensor for the batch ``x`` (N, *input shape)."""
        g = self.graph
        vals: list[Any] = [None] * len(g.tensors)
        for op in g.ops:
            ins = [vals[t] for t in op.inputs]
            y = self._op(op, ins, x)
            y = apply_act(op, self.acts, y)
            vals[op.output] = y
            self.ranges[op.output].add(y)
        return vals

    def _op(self, op: Op, ins: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        k = op.kind
        if k == "input":
            return x.double()
        a = ins[0]
        n = a.shape[0]
        if k == "conv":
            p = self.params[op.name]
            x4 = a.reshape(n, a.shape[1], 1, a.shape[2]) if a.dim() == 3 else a
            top, bottom, left, right = op.pad
            x4 = F.pad(x4, (left, right, top, bottom))
            y = F.conv2d(x4, p["weight"], p["bias"], stride=tuple(op.stride), dilation=tuple(op.dilation),
                         groups=op.groups)
            return y.reshape(n, y.shape[1], y.shape[3]) if a.dim() == 3 else y
        if k == "linear":
            p = self.params[op.name]
            return F.linear(a, p["weight"], p["bias"])
        if k == "pool":
            x4 = a.reshape(n, a.shape[1], 1, a.shape[2]) if a.dim() == 3 else a
            pad = (op.pad[0], op.pad[2])
            if op.pool == "max":
                y = F.max_pool2d(x4, tuple(op.kernel), tuple(op.stride), pad)
            else:
                y = F.avg_pool2d(x4, tuple(op.kernel), tuple(op.stride), pad, count_include_pad=op.count_include_pad)
            return y.reshape(n, y.shape[1], y.shape[3]) if a.dim() == 3 else y
        if k == "activation":
            return F.leaky_relu(a, float(self.params[op.name]["alpha"])) if op.act == "leaky_relu" else a
        if k == "add":
            return a + (ins[1] if len(ins) > 1 else self.params[op.name]["param"])
        if k == "mul":
            return a * (ins[1] if len(ins) > 1 else self.params[op.name]["param"])
        if k == "matmul":
            return torch.matmul(a, ins[1])
        if k == "reshape":
            return a.reshape(n, *self.graph.tensors[op.output].shape)
        if k == "transpose":
            return a.permute(0, *[p + 1 for p in op.perm])
        if k == "concat":
            return torch.cat(ins, dim=op.axis + 1)
        if k == "gather":
            idx = torch.tensor(op.indices, dtype=torch.long)
            y = a.index_select(op.axis + 1, idx)
            return y.reshape(n, *self.graph.tensors[op.output].shape)
        if k == "slice":
            y = a.narrow(op.axis + 1, op.start, op.length)
            return y.squeeze(op.axis + 1) if op.squeeze else y
        if k == "softmax":
            return torch.softmax(a, dim=op.axis + 1)
        if k == "mean":
            return a.mean(op.axis + 1, keepdim=op.keep_dims) if op.mean else a.sum(op.axis + 1, keepdim=op.keep_dims)
        if k == "rnn":
            return self._rnn(op, a)
        raise ValueError(f"op '{op.name}' ({k}): not supported by the int8 path")

    def _rnn(self, op: Op, a: torch.Tensor) -> torch.Tensor:
        p = self.params[op.name]
        H = op.out_channels
        outs = []
        for d in range(2 if op.bidirectional else 1):
            w_ih, w_hh, b_ih, b_hh = (p[f"{n}{d}"] for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))
            T = a.shape[1]
            h = torch.zeros(a.shape[0], H, dtype=torch.float64)
            c = torch.zeros_like(h)
            seq: list[torch.Tensor] = [None] * T  # type: ignore[list-item]
            for t in (range(T) if d == 0 else range(T - 1, -1, -1)):
                xt = a[:, t]
                if op.cell == "lstm":
                    gates = F.linear(xt, w_ih, b_ih) + F.linear(h, w_hh, b_hh)
                    i, f, gg, o = gates.chunk(4, dim=1)
                    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(gg)
                    h = torch.sigmoid(o) * torch.tanh(c)
                    self._rec(op, f"cell{d}", c)
                else:
                    gx = F.linear(xt, w_ih, b_ih)
                    gh = F.linear(h, w_hh, b_hh)
                    gx_r, gx_z, gx_n = gx.chunk(3, dim=1)
                    gh_r, gh_z, gh_n = gh.chunk(3, dim=1)
                    r_pre, z_pre = gx_r + gh_r, gx_z + gh_z
                    r, z = torch.sigmoid(r_pre), torch.sigmoid(z_pre)
                    rn = r * gh_n
                    n_pre = gx_n + rn
                    nn_ = torch.tanh(n_pre)
                    dd = h - nn_
                    zd = z * dd
                    for name, v in zip(GRU_INTERMEDIATES, (gx_r, gx_z, gx_n, gh_r, gh_z, gh_n, r_pre, z_pre, rn,
                                                           n_pre, dd, zd)):
                        self._rec(op, f"{name}{d}", v)
                    h = nn_ + zd
                seq[t] = h
            outs.append(torch.stack(seq, dim=1))
        return torch.cat(outs, dim=2)


# ---- quantization ------------------------------------------------------------------------------------


def _sym_per_row(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per row (first axis): scales float32, values in [-127, 127]."""
    flat = w.reshape(w.shape[0], -1)
    mx = np.abs(flat).max(axis=1)
    scale = np.where(mx > 0, mx / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.round(flat / scale.astype(np.float64)[:, None]), -127, 127).astype(np.int8)
    return q.reshape(w.shape), scale


def _bias_i32(b: np.ndarray, scale: np.ndarray, where: str) -> np.ndarray:
    q = np.round(b / scale.astype(np.float64))
    if np.any(np.abs(q) > 2**31 - 1):
        raise ValueError(f"{where}: a bias does not fit in int32 at scale s_in * s_w (input scale too small)")
    return q.astype(np.int32)


def _quantize_ops(g: Graph, params, acts, qp: list[QParams], fg: FloatGraph) -> dict[str, QOp]:
    ops: dict[str, QOp] = {}
    for op in g.ops:
        q = QOp(act=acts.get(op.name, "none"))
        if op.kind in ("conv", "linear"):
            p = params[op.name]
            w, s = _sym_per_row(p["weight"].numpy())
            s_in = np.float64(qp[op.inputs[0]].scale)
            q.arrays = {"weight": w, "weight_scale": s,
                        "bias": _bias_i32(p["bias"].numpy(), s_in * s.astype(np.float64), f"op '{op.name}'")}
        elif op.kind == "activation" and op.act == "leaky_relu":
            q.attrs["alpha"] = float(params[op.name]["alpha"])
        elif op.kind in ("mul", "add") and len(op.inputs) == 1:
            v = params[op.name]["param"].numpy()
            w, sc = _sym_per_row(v.reshape(1, -1))  # one symmetric scale for the whole parameter
            q.arrays = {"param": w.reshape(v.shape), "param_scale": sc}
        elif op.kind == "rnn":
            p = params[op.name]
            s_in = np.float64(qp[op.inputs[0]].scale)
            s_h = np.float64(qp[op.output].scale)
            H = op.out_channels
            for d in range(2 if op.bidirectional else 1):
                w_ih, w_hh = p[f"weight_ih{d}"].numpy(), p[f"weight_hh{d}"].numpy()
                b_ih, b_hh = p[f"bias_ih{d}"].numpy(), p[f"bias_hh{d}"].numpy()
                if op.cell == "lstm":
                    qi, si = _sym_per_row(w_ih.reshape(4, H * w_ih.shape[1]))
                    qh, sh = _sym_per_row(w_hh.reshape(4, H * H))
                    q.arrays[f"w_ih{d}"] = qi.reshape(w_ih.shape)
                    q.arrays[f"w_hh{d}"] = qh.reshape(w_hh.shape)
                    q.arrays[f"w_ih_scale{d}"], q.arrays[f"w_hh_scale{d}"] = si, sh
                    q.arrays[f"bias{d}"] = _bias_i32(b_ih + b_hh, s_in * np.repeat(si.astype(np.float64), H),
                                                     f"op '{op.name}' bias{d}")
                    r = fg.internal.get(f"{op.name}/cell{d}")
                    mx = max(abs(r.lo), abs(r.hi), 2.0**-10) if r else 1.0
                    q.attrs[f"cell_scale{d}"] = float(2.0 ** (math.ceil(math.log2(mx)) - 15))
                else:
                    qi, si = _sym_per_row(w_ih)
                    qh, sh = _sym_per_row(w_hh)
                    q.arrays.update({f"w_ih{d}": qi, f"w_hh{d}": qh, f"w_ih_scale{d}": si, f"w_hh_scale{d}": sh,
                                     f"b_ih{d}": _bias_i32(b_ih, s_in * si.astype(np.float64), f"op '{op.name}' b_ih{d}"),
                                     f"b_hh{d}": _bias_i32(b_hh, s_h * sh.astype(np.float64), f"op '{op.name}' b_hh{d}")})
                    inter = {}
                    for name in GRU_INTERMEDIATES:
                        r = fg.internal[f"{op.name}/{name}{d}"]
                        qq = range_qparams(r.lo, r.hi)
                        inter[name] = [qq.scale, qq.zero_point]
                    q.attrs[f"intermediates{d}"] = inter
        if q.act != "none" or q.arrays or q.attrs:
            ops[op.name] = q
    return ops


@dataclass
class QParamGroups:
    """Which tensors share one quantization (see :func:`qparam_groups`)."""
    #: tensor id -> its group's representative tensor
    root: list[int]
    #: representative -> the group's tensors that own a quantization (outputs of requantizing ops, the model
    #: input, fixed outputs), in graph order
    owners: dict[int, list[int]]
    #: tensors whose quantization TFLite fixes (softmax / tanh / sigmoid outputs)
    fixed: dict[int, QParams]


def qparam_groups(g: Graph) -> QParamGroups:
    """Tensors that share one quantization form groups: a tied op's output and input (pool, reshape, transpose,
    slice, gather), and a concat's output and inputs, since TFLM's int8 CONCATENATION requires equal qparams. A
    concat input whose quantization is fixed (a softmax / tanh / sigmoid output, or tied to one) joins no group:
    the lowering and the export requantize it to the concat's (TFLite's QUANTIZE), as TFLite's converter does; so
    does the concat output of only fixed inputs with different fixed qparams, which then owns its range. QAT
    (``harcore.quant.qat``) fake-quantizes with the same groups."""
    parent = list(range(len(g.tensors)))

    def find(t: int) -> int:
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    fixed: dict[int, QParams] = {}
    owners: list[int] = []
    for op in g.ops:
        if op.kind in TIED_KINDS and op.kind != "concat":
            parent[find(op.output)] = find(op.inputs[0])
            continue
        if op.kind == "concat":
            fixed_root = {find(f): fixed[f] for f in fixed}
            free = [t for t in op.inputs if find(t) not in fixed_root]
            same_fixed = len({fixed_root[find(t)] for t in op.inputs if find(t) in fixed_root}) == 1
            for t in (free if free else op.inputs if same_fixed else []):
                parent[find(op.output)] = find(t)
            if not free and not same_fixed:
                owners.append(op.output)
            continue
        if op.kind == "softmax":
            fixed[op.output] = QParams(float(np.float32(SOFTMAX_QPARAMS[0])), SOFTMAX_QPARAMS[1])
        elif op.kind == "activation" and op.act in ("tanh", "sigmoid"):
            f = TANH_QPARAMS if op.act == "tanh" else LOGISTIC_QPARAMS
            fixed[op.output] = QParams(float(np.float32(f[0])), f[1])
        owners.append(op.output)
    groups: dict[int, list[int]] = {}
    for t in owners:
        groups.setdefault(find(t), []).append(t)
    return QParamGroups([find(t) for t in range(len(g.tensors))], groups, fixed)


def _tie_qparams(g: Graph, qp: list[QParams], ranges: dict[int, tuple[float, float]]) -> list[QParams]:
    """Every tensor's qparams from its group (:func:`qparam_groups`): the fixed ones of its softmax / tanh /
    sigmoid output, else the range over the members that own their quantization. Without a concat a group has
    one owner, so its qparams are that owner's, as TFLite's converter gives them."""
    grp = qparam_groups(g)
    by_tensor: dict[int, QParams] = {}
    for root, members in grp.owners.items():
        fx = [t for t in members if t in grp.fixed]
        if fx:  # only fixed members with one fixed quantization (above)
            q = grp.fixed[fx[0]]
        elif len(members) == 1:
            q = qp[members[0]]
        else:
            q = range_qparams(min(ranges[t][0] for t in members), max(ranges[t][1] for t in members))
        by_tensor[root] = q
    return [by_tensor.get(grp.root[t], qp[t]) for t in range(len(g.tensors))]


def quantize(model: nn.Module, calibration_x: Any, *, batch_size: int = 256, check_tolerance: float = 1e-3,
             ranges: dict[int, tuple[float, float]] | None = None, meta: dict[str, Any] | None = None) -> QGraph:
    """PTQ of ``model`` (taking (N, C, T) floats) calibrated on ``calibration_x`` (N, C, T) -> :class:`QGraph`.

    ``calibration_x`` is checked first (:func:`check_calibration`): NaN/inf, all-zero or constant data is a
    :class:`QuantError` naming the problem, fewer than :data:`MIN_CALIBRATION_WINDOWS` windows a warning;
    windows that fit the model only transposed are a :class:`QuantError` ("looks channels-last").

    A searched SFTNAS network with pruned sensors (``harcore.models.sftnas.SftnasNet`` with ``gather``) is
    quantized as the network the chip runs: it takes only the kept sensors (the firmware never samples the
    pruned ones, so there is no gather to run). ``calibration_x`` may hold all sensors (the kept ones are
    selected) or only the kept ones; the graph's ``meta["input_channels"]`` lists the kept sensor indices in
    input order and ``meta["source_in_channels"]`` the sensor count of the full window (``docs/nas.md``).

    ``ranges`` (folded-graph tensor id -> (lo, hi)) replaces the calibrated min/max of those tensors, e.g. by
    the ranges learned in QAT (``harcore.quant.qat``); calibration still gives every other range (RNN
    internals included). ``meta`` is merged into the graph's ``meta``.
    """
    from harcore.graph.trace import trace
    from harcore.train._data import check_model_input

    arr = np.asarray(calibration_x)
    if arr.ndim < 2 or arr.shape[0] < 1:
        raise QuantError(f"quantize: calibration_x must be (N, C, T) windows with N >= 1, got shape {arr.shape}")
    model, arr, gather_meta = without_sensor_gather(model, arr)
    if arr.ndim == 3:
        check_model_input(model, arr.shape[1:], "quantize: calibration_x", QuantError)
    check_calibration(arr)
    if gather_meta:
        meta = {**gather_meta, **(meta or {})}
    x = torch.as_tensor(arr, dtype=torch.float32)
    was_training = model.training
    model.eval()
    try:
        graph = trace(model, tuple(x.shape[1:]))
        g, params, acts = fold(graph, model)
        fg = FloatGraph(g, params, acts)
        worst = 0.0
        with torch.no_grad():
            for i in range(0, x.shape[0], batch_size):
                xb = x[i:i + batch_size]
                vals = fg.run(xb)
                ref = model(xb).double()
                out = vals[g.outputs[0]]
                worst = max(worst, float((out - ref).abs().max() / (ref.abs().max() + 1e-12)))
    finally:
        model.train(was_training)
    if worst > check_tolerance:
        raise ValueError(f"quantize: the folded graph does not reproduce the model (relative error {worst:.2e}); "
                         "this is a harcore bug or an op the tracer mis-describes")
    given = _check_ranges(ranges, g)
    qp: list[QParams] = [range_qparams(*given[t]) if t in given else range_qparams(r.lo, r.hi)
                         for t, r in enumerate(fg.ranges)]
    qp = _tie_qparams(g, qp, {t: given.get(t, (r.lo, r.hi)) for t, r in enumerate(fg.ranges)})
    ops = _quantize_ops(g, params, acts, qp, fg)
    qg = QGraph(g, qp, ops, {"calibration_windows": int(x.shape[0]), "source_model": type(model).__name__,
                             **(meta or {})})
    qg.validate()
    return qg


def check_calibration(x: np.ndarray, *, minimum: int = MIN_CALIBRATION_WINDOWS) -> None:
    """Check calibration windows ``x`` (N, ...) before they set every activation range.

    Raises :class:`QuantError` for a non-numeric array, NaN or infinity (naming the first window), and for data
    that is all zero or constant (no range to calibrate: the int8 scales would collapse). Warns below
    ``minimum`` windows (:data:`MIN_CALIBRATION_WINDOWS`).
    """
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise QuantError(f"quantize: calibration_x must be numeric windows, got dtype {x.dtype}")
    n = x.shape[0]
    bad = ~np.isfinite(x.reshape(n, -1)) if np.issubdtype(x.dtype, np.floating) else None
    if bad is not None and bad.any():
        rows = bad.any(axis=1)
        i = int(np.argmax(rows))
        what = "NaN" if np.isnan(x[i]).any() else "infinity"
        raise QuantError(f"quantize: calibration_x holds {what} at window {i} ({int(rows.sum())} window(s) with "
                         "NaN or infinity); calibration ranges need finite data: clean or drop those windows")
    lo, hi = float(np.min(x)), float(np.max(x))
    if lo == hi == 0.0:
        raise QuantError(f"quantize: calibration_x is all zero ({n} window(s)); the input range would be empty "
                         "and every scale would collapse: calibrate on real windows (e.g. the training split)")
    if lo == hi:
        raise QuantError(f"quantize: calibration_x is constant (every value is {lo:g}, {n} window(s)); it gives "
                         "no range to calibrate: calibrate on real windows (e.g. the training split)")
    if n < minimum:
        warnings.warn(f"quantize: {n} calibration window(s); fewer than {minimum} leave activation ranges narrower "
                      "than real data's, and the int8 model can disagree with float on many windows (TFLite's "
                      "converter suggests about 100-500 representative samples): calibrate on more windows, "
                      "e.g. the training split", UserWarning, stacklevel=3)


def without_sensor_gather(model: nn.Module, x: np.ndarray) -> tuple[nn.Module, np.ndarray, dict[str, Any]]:
    """``(model, x, meta)`` for the chip: a searched network with pruned sensors (an ``SftnasNet`` with
    ``gather``) becomes the network taking only the kept sensors, ``x`` (N, C, T) of all sensors its kept
    channels (windows of the kept sensors only pass as they are), and ``meta`` names the sensors the firmware
    must feed (``input_channels``, ``source_in_channels``). Any other model passes unchanged with ``{}``."""
    from harcore.models.sftnas import SftnasNet

    if not (isinstance(model, SftnasNet) and model.gather):
        return model, x, {}
    kept = list(model.arch["channels"])
    full = int(model.in_channels)
    if x.ndim == 3 and x.shape[1] == full:
        x = x[:, kept]
    elif not (x.ndim == 3 and x.shape[1] == len(kept)):
        raise QuantError(f"quantize: calibration_x must be (N, {full}, T) windows of all sensors or (N, {len(kept)}, "
                         f"T) windows of the kept sensors {kept}, got shape {x.shape}")
    return model.without_gather(), x, {"input_channels": kept, "source_in_channels": full}


def _check_ranges(ranges: dict[int, tuple[float, float]] | None, g: Graph) -> dict[int, tuple[float, float]]:
    out: dict[int, tuple[float, float]] = {}
    for t, r in (ranges or {}).items():
        if not (isinstance(t, (int, np.integer)) and 0 <= int(t) < len(g.tensors)):
            raise ValueError(f"quantize: ranges: tensor id {t!r} is not a tensor of the folded graph "
                             f"(0..{len(g.tensors) - 1})")
        try:
            lo, hi = (float(v) for v in r)
        except (TypeError, ValueError):
            raise ValueError(f"quantize: ranges[{t}] (tensor '{g.tensors[int(t)].name}'): expected (lo, hi), "
                             f"got {r!r}") from None
        if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
            raise ValueError(f"quantize: ranges[{t}] (tensor '{g.tensors[int(t)].name}'): ({lo}, {hi}) is not a "
                             "finite range with lo <= hi")
        out[int(t)] = (lo, hi)
    return out
