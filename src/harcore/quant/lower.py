"""Lowering: QGraph -> Program, the step list of the C++ runtime (src/cpp/runtime/harcore_runtime.hpp).

Every graph tensor gets a buffer and a *layout*: ``offs[i]`` is the byte offset, inside its buffer, of the
tensor's i-th element in torch (logical, row-major) order. Reshapes and transposes only rewrite ``offs``
(aliases, no step); a kernel that needs another layout than the one it is given (NHWC for conv/pool,
contiguous rows for linear/RNN, ...) gets an explicit kCopy / kGather step first. Linear and RNN input
weights have their columns permuted to the input's physical order instead (flatten -> FC costs nothing).
Buffers are placed in one arena by harcore.quant.planner over their live ranges (docs/int8.md). Each step's
argument dict is checked against the runtime's step table (src/cpp/runtime/harcore_steps.def) when emitted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from harcore.errors import QuantError
from harcore.graph.ir import Op
from harcore.quant.arith import activation_range, quantize_multiplier
from harcore.quant.planner import ArenaPlanner
from harcore.quant.qgraph import LOGISTIC_QPARAMS, TANH_QPARAMS, QGraph, QParams
from harcore.quant.steps import check_args

__all__ = ["lower", "Program"]

GATE_SCALE = 2.0 ** -12   # LSTM gate pre-activations, Q3.12
NONLINEAR_SCALE = 2.0 ** -15


def is_depthwise(groups: int, c_in: int, c_out: int) -> bool:
    """Whether a conv runs as harcore's (and TFLite's) depthwise conv: every group reads one input channel
    (``groups == c_in``; ``c_out // c_in`` is the channel multiplier). This includes a 1 -> 1 conv (groups = 1),
    e.g. TinierHAR's first depthwise layer on its single input plane, which the depthwise kernel (ch_mult 1, the
    opt path) runs in fewer instructions than the conv's im2col. A 1 -> C_out conv with C_out > 1 stays a conv: as
    a depthwise it would be the generic ch_mult kernel, which has no DSP path. The cost model's scratch
    (src/cpp/cost/cost_model.cpp, conv_scratch) and ``to_tflite`` follow the same rule."""
    return groups == c_in and (c_in > 1 or c_out == 1)


def _qm(real: float) -> tuple[int, int]:
    return quantize_multiplier(float(real))


def _act(qop_act: str, q: QParams) -> dict[str, int]:
    lo, hi = activation_range({"none": "NONE", "relu": "RELU", "relu6": "RELU6"}[qop_act], q.scale, q.zero_point)
    return {"min": lo, "max": hi}


def _add_params(q1: QParams, q2: QParams, qo: QParams) -> dict[str, int]:
    """TFLM ADD/SUB: left shift 20, inputs scaled by s_i / (2 max s), output by 2 max s / (2^20 s_out)."""
    left_shift = 20
    twice_max = 2.0 * max(q1.scale, q2.scale)
    m1, s1 = _qm(q1.scale / twice_max)
    m2, s2 = _qm(q2.scale / twice_max)
    mo, so = _qm(twice_max / ((1 << left_shift) * qo.scale))
    return {"input1_offset": -q1.zero_point, "input1_mult": m1, "input1_shift": s1, "input2_offset": -q2.zero_point,
            "input2_mult": m2, "input2_shift": s2, "left_shift": left_shift, "output_offset": qo.zero_point,
            "output_mult": mo, "output_shift": so}


def _mul_params(q1: QParams, q2: QParams, qo: QParams) -> dict[str, int]:
    m, s = _qm(q1.scale * q2.scale / qo.scale)
    return {"input1_offset": -q1.zero_point, "input2_offset": -q2.zero_point, "output_offset": qo.zero_point,
            "output_mult": m, "output_shift": s}


def _mean_multiplier(mult: int, shift: int, n: int) -> tuple[int, int]:
    """TFLM's int8 MEAN (reference_ops::QuantizedMeanOrSum): 1/n is folded into the s_in / s_out multiplier by an
    int64 division, ``(M << k) / n`` with ``k = floor(log2 n)`` (at most 32 and ``31 + shift``), and the shift
    drops by k. Quantizing s_in / (n * s_out) directly differs unless n is a power of two: the multiplier is not
    normalized and the right shift is another, so the double rounding of the requantization rounds elsewhere."""
    k = min(n.bit_length() - 1, 32, 31 + shift)
    return int((mult << k) // n), shift - k


def _lut_params(q: QParams, where: str) -> dict[str, int]:
    """TFLM LOGISTIC/TANH int8 prepare: frexp(s_in * 2^27), multiplier round(q * 2^31) (no folding)."""
    frac, shift = math.frexp(q.scale * float(1 << 27))
    mult = int(math.floor(abs(frac) * 2.0**31 + 0.5))
    if mult >= 2**31 or not -31 <= shift <= 30:
        raise ValueError(f"{where}: input scale {q.scale} gives a LOGISTIC/TANH multiplier out of range")
    radius = int(math.floor(((1 << 4) - 1) * float(1 << 27) / (2.0 ** shift)))
    return {"input_zero_point": q.zero_point, "input_range_radius": radius, "input_multiplier": mult,
            "input_left_shift": shift}


def _per_channel(s_in: float, w_scale: np.ndarray, s_out: float) -> tuple[np.ndarray, np.ndarray]:
    pairs = [_qm(float(s_in) * float(sw) / float(s_out)) for sw in w_scale]
    return (np.array([p[0] for p in pairs], np.int32), np.array([p[1] for p in pairs], np.int32))


def _channels_last(shape: tuple[int, ...]) -> np.ndarray:
    """Offsets of a (C, *S) tensor stored as (*S, C)."""
    n = len(shape)
    if n < 2:
        return np.arange(int(np.prod(shape)))
    phys = (*shape[1:], shape[0])
    return np.arange(int(np.prod(shape))).reshape(phys).transpose(n - 1, *range(n - 1)).reshape(-1)


def _row_perm(offs: np.ndarray, k: int) -> np.ndarray | None:
    """If the tensor is rows of k contiguous bytes (row r at r*k) with one column permutation, return it."""
    rows = offs.reshape(-1, k)
    base = np.arange(rows.shape[0])[:, None] * k
    perm = rows[0] - 0
    if np.array_equal(rows - base, np.broadcast_to(perm, rows.shape)) and np.array_equal(np.sort(perm), np.arange(k)):
        return perm
    return None


def _affine(src: np.ndarray, max_dims: int = 4) -> tuple[int, list[int], list[int]] | None:
    """Express src (flat index -> offset) as base + sum(i_k * stride_k) over <= max_dims dims, or None."""
    n = len(src)
    extents: list[int] = []
    strides: list[int] = []
    size = 1
    while size < n:
        stride = int(src[size] - src[0])
        e = 1
        while (e + 1) * size <= n and np.array_equal(src[e * size:(e + 1) * size], src[:size] + e * stride):
            e += 1
        if e == 1:
            return None
        extents.append(e)
        strides.append(stride)
        size *= e
    if size != n or len(extents) > max_dims:
        return None
    extents, strides = extents[::-1], strides[::-1]
    while len(extents) < max_dims:
        extents.insert(0, 1)
        strides.insert(0, 0)
    # verify
    grid = np.zeros(1, np.int64)
    for e, s in zip(extents, strides):
        grid = (grid[:, None] + np.arange(e)[None, :] * s).reshape(-1)
    if not np.array_equal(grid + src[0], src):
        return None
    return int(src[0]), extents, strides


def _affine_pair(src: np.ndarray, dst: np.ndarray) -> tuple[tuple[int, list[int]], tuple[int, list[int]],
                                                           list[int]] | None:
    """Both src and dst (flat index -> offset) as base + sum(i_k * stride_k) over the same <= 4 extents, all
    strides >= 0, or None."""
    src, dst = np.asarray(src, np.int64), np.asarray(dst, np.int64)
    big = int(max(src.max(initial=0), dst.max(initial=0)) + 1) * 4 + 4
    aff = _affine(src + big * dst)
    if aff is None:
        return None
    _, ext, _ = aff
    out = []
    for a in (src, dst):
        st = []
        size = 1
        for e in reversed(ext):  # the strides from the data itself, innermost first
            st.insert(0, int(a[size] - a[0]) if e > 1 else 0)
            size *= e
        grid = np.zeros(1, np.int64)
        for e, s in zip(ext, st):
            grid = (grid[:, None] + np.arange(e)[None, :] * s).reshape(-1)
        if any(s < 0 for s in st) or not np.array_equal(grid + a[0], a):
            return None
        out.append((int(a[0]), st))
    return out[0], out[1], ext


@dataclass
class _Buf:
    size: int
    align: int = 1
    first: int = 0
    last: int = 0
    offset: int = -1


@dataclass
class _StepDesc:
    kind: str
    op: str
    inputs: list[int]        # buffer ids
    output: int              # buffer id
    args: dict[str, Any]
    scratch: int = -1        # buffer id
    extra: dict[str, int] = field(default_factory=dict)  # arg name -> buffer id whose offset it takes


class Program:
    """A lowered int8 model: steps over one arena. See harcore_runtime.hpp for the C++ side."""

    def __init__(self, qgraph: QGraph):
        self.qgraph = qgraph
        self.steps: list[_StepDesc] = []
        self.bufs: list[_Buf] = []
        self.arena_size = 0
        self.input_size = self.output_size = 0
        self.input_qparams: QParams = qgraph.input_qparams
        self.output_qparams: QParams = qgraph.output_qparams
        self.input_offsets: np.ndarray = np.zeros(0, np.int64)
        self.tensor_loc: dict[int, tuple[int, np.ndarray]] = {}  # tensor id -> (buffer id, offs)
        self._core = None

    # -- runtime -----------------------------------------------------------------------------
    def _offset_of(self, b: int) -> int:
        return self.bufs[b].offset if b >= 0 else -1

    def step_dicts(self) -> tuple[dict[str, int], list[dict[str, Any]]]:
        header = {"format_version": 1, "arena_size": self.arena_size, "input_offset": self._offset_of(self.input_buf),
                  "input_size": self.input_size, "output_offset": self._offset_of(self.output_buf),
                  "output_size": self.output_size}
        steps = []
        for s in self.steps:
            args = dict(s.args)
            for name, b in s.extra.items():
                args[name] = self._offset_of(b)
            steps.append({"kind": s.kind, "input0": self._offset_of(s.inputs[0]),
                          "input1": self._offset_of(s.inputs[1]) if len(s.inputs) > 1 else -1,
                          "output": self._offset_of(s.output), "output_size": self.bufs[s.output].size,
                          "scratch": self._offset_of(s.scratch),
                          "scratch_size": self.bufs[s.scratch].size if s.scratch >= 0 else 0, "args": args})
        return header, steps

    def core(self):
        """The C++ model (harcore._core.runtime.Model), built once."""
        if self._core is None:
            from harcore._core import runtime

            self._core = runtime.Model(*self.step_dicts())
        return self._core

    def emit_cpp(self, symbol: str = "harcore_model") -> str:
        from harcore.quant.emit import emit_cpp

        return emit_cpp(self, symbol)

    def __repr__(self) -> str:
        return (f"Program({len(self.steps)} steps, arena {self.arena_size} B, input {self.input_size} B, "
                f"output {self.output_size} B)")


class _Lowerer:
    def __init__(self, g: QGraph):
        self.g = g
        self.p = Program(g)
        self.loc: dict[int, tuple[int, np.ndarray]] = {}
        self.consumers: dict[int, int] = {}
        self.producer: dict[int, Op] = {}

    def buf(self, size: int, align: int = 1) -> int:
        self.p.bufs.append(_Buf(int(size), align))
        return len(self.p.bufs) - 1

    def emit(self, kind: str, op: Op, inputs: list[int], output: int, args: dict[str, Any], scratch_size: int = 0,
             extra: dict[str, int] | None = None) -> None:
        check_args(kind, args, f"op '{op.name}' ({op.kind}), step {kind}")
        sc = self.buf(scratch_size, 4) if scratch_size > 0 else -1
        self.p.steps.append(_StepDesc(kind, op.name, inputs, output, args, sc, extra or {}))

    def q(self, tid: int) -> QParams:
        return self.g.qparams[tid]

    def shape(self, tid: int) -> tuple[int, ...]:
        return self.g.graph.tensors[tid].shape

    # -- layouts -------------------------------------------------------------------------------
    def require(self, op: Op, tid: int, want: np.ndarray) -> int:
        """Buffer holding tensor tid with layout `want` (materialized by a copy step if needed)."""
        b, offs = self.loc[tid]
        if np.array_equal(offs, want):
            return b
        n = len(offs)
        src = np.empty(n, np.int64)
        src[want] = offs
        nb = self.buf(n)
        self.copy_step(op, b, nb, src)
        self.loc[tid] = (nb, want)
        return nb

    def copy_step(self, op: Op, src_buf: int, dst_buf: int, src: np.ndarray) -> None:
        aff = _affine(src)
        if aff is not None:
            base, ext, strides = aff
            self.emit("copy", op, [src_buf], dst_buf, {"src_offset": base, "extents": ext, "strides": strides})
        else:
            self.emit("gather", op, [src_buf], dst_buf, {"size": len(src), "index": src.astype(np.int32)})

    # -- main ----------------------------------------------------------------------------------
    def run(self) -> Program:
        g = self.g.graph
        for op in g.ops:
            self.producer[op.output] = op
            for t in op.inputs:
                self.consumers[t] = self.consumers.get(t, 0) + 1
        for op in g.ops:
            try:
                getattr(self, f"op_{op.kind}")(op)
            except AttributeError as e:
                if not hasattr(self, f"op_{op.kind}"):
                    raise ValueError(f"op '{op.name}' ({op.kind}): not supported by the int8 runtime") from None
                raise e
        out = g.outputs[0]
        ob = self.require(g.ops[-1], out, np.arange(int(np.prod(self.shape(out)))))
        p = self.p
        p.output_buf = ob
        p.output_size = p.bufs[ob].size
        p.tensor_loc = dict(self.tensor_first_loc)
        self.plan()
        return p

    tensor_first_loc: dict[int, tuple[int, np.ndarray]]

    def set_out(self, op: Op, b: int, offs: np.ndarray) -> None:
        self.loc[op.output] = (b, offs)
        self.tensor_first_loc.setdefault(op.output, (b, offs))

    def op_input(self, op: Op) -> None:
        self.tensor_first_loc = {}
        shape = self.shape(op.output)
        n = int(np.prod(shape))
        b = self.buf(n)
        offs = _channels_last(shape)
        self.p.input_buf = b
        self.p.input_size = n
        self.p.input_offsets = offs
        self.set_out(op, b, offs)

    def op_reshape(self, op: Op) -> None:
        b, offs = self.loc[op.inputs[0]]
        self.set_out(op, b, offs)

    def op_transpose(self, op: Op) -> None:
        b, offs = self.loc[op.inputs[0]]
        self.set_out(op, b, offs.reshape(self.shape(op.inputs[0])).transpose(op.perm).reshape(-1))

    def op_slice(self, op: Op) -> None:
        b, offs = self.loc[op.inputs[0]]
        sel = offs.reshape(self.shape(op.inputs[0])).take(range(op.start, op.start + op.length), axis=op.axis)
        src = sel.reshape(-1)
        nb = self.buf(len(src))
        self.copy_step(op, b, nb, src)
        self.set_out(op, nb, np.arange(len(src)))

    def op_gather(self, op: Op) -> None:
        """TFLite GATHER with constant indices: a copy of the selected elements (tied quantization)."""
        b, offs = self.loc[op.inputs[0]]
        idx = np.asarray(op.indices, np.int64)
        src = offs.reshape(self.shape(op.inputs[0])).take(idx, axis=op.axis).reshape(-1)
        if len(src) != int(np.prod(self.shape(op.output))):
            raise QuantError(f"op '{op.name}' (gather): {len(src)} gathered elements for output shape "
                             f"{self.shape(op.output)}")
        nb = self.buf(len(src))
        self.copy_step(op, b, nb, src)
        self.set_out(op, nb, np.arange(len(src)))

    def op_concat(self, op: Op) -> None:
        """TFLite CONCATENATION (inputs and output share one quantization, as TFLM requires; an input PTQ could
        not give it, a fixed softmax / tanh / sigmoid output, is requantized first by a kClamp step, TFLite's
        QUANTIZE): one kCopyInto step per input writes it into its part of the output. The output is channels-last when every input is (a
        channel concat of conv branches stays NHWC for the next conv), else in torch order; an input whose
        layout is no strided view of its part is first made contiguous."""
        qo = self.q(op.output)
        ys = self.shape(op.output)
        n = int(np.prod(ys))
        nhwc = len(ys) >= 2 and op.axis == 0 and all(
            np.array_equal(self.loc[t][1], _channels_last(self.shape(t))) for t in op.inputs)
        layout = _channels_last(ys) if nhwc else np.arange(n)
        out_pos = layout.reshape(ys)
        ob = self.buf(n)
        start = 0
        for t in op.inputs:
            ts = self.shape(t)
            dst = out_pos.take(range(start, start + ts[op.axis]), axis=op.axis).reshape(-1)
            start += ts[op.axis]
            b, offs = self.loc[t]
            if self.q(t) != qo:  # TFLite's QUANTIZE int8 -> int8 in front: requantized into a plain copy
                b = self.require(op, t, np.arange(len(offs)))
                qi = self.q(t)
                # TFLM's QUANTIZE prepare divides the scales in double (RELU's in float32)
                mult, shift = _qm(float(qi.scale) / float(qo.scale))
                nb = self.buf(len(offs))
                self.emit("clamp", op, [b], nb, {"size": len(offs), "input_offset": -qi.zero_point,
                                                "output_offset": qo.zero_point, "mult": mult, "shift": shift,
                                                "act_min": -128, "act_max": 127})
                b, offs = nb, np.arange(len(offs))
            pair = _affine_pair(offs, dst)
            if pair is None:
                b = self.require(op, t, np.arange(len(offs)))
                pair = _affine_pair(np.arange(len(offs)), dst)
            if pair is None:
                raise QuantError(f"op '{op.name}' (concat): input '{self.g.graph.tensors[t].name}' cannot be copied "
                                 "as one strided block of at most 4 dims")
            (so, sst), (do, dstr), ext = pair
            self.emit("copy_into", op, [b], ob, {"src_offset": so, "dst_offset": do, "extents": ext,
                                                 "src_strides": sst, "dst_strides": dstr})
        self.set_out(op, ob, layout)

    def op_conv(self, op: Op) -> None:
        x, y = op.inputs[0], op.output
        xs, ys = self.shape(x), self.shape(y)
        qop = self.g.ops[op.name]
        qi, qo = self.q(x), self.q(y)
        ib = self.require(op, x, _channels_last(xs))
        nd = len(xs) - 1
        in_hw = (1, xs[1]) if nd == 1 else (xs[1], xs[2])
        out_hw = (1, ys[1]) if nd == 1 else (ys[1], ys[2])
        w = qop.arrays["weight"]
        c_in, c_out = xs[0], ys[0]
        kh, kw = op.kernel
        mult, shift = _per_channel(qi.scale, qop.arrays["weight_scale"], qo.scale)
        geo = {"stride": {"w": op.stride[1], "h": op.stride[0]}, "padding": {"w": op.pad[2], "h": op.pad[0]},
               "dilation": {"w": op.dilation[1], "h": op.dilation[0]}, "activation": _act(qop.act, qo)}
        in_dims = {"n": 1, "h": in_hw[0], "w": in_hw[1], "c": c_in}
        out_dims = {"n": 1, "h": out_hw[0], "w": out_hw[1], "c": c_out}
        from harcore._core import runtime

        dv = lambda d: [d["n"], d["h"], d["w"], d["c"]]  # noqa: E731
        depthwise = is_depthwise(op.groups, c_in, c_out)
        ob = self.buf(int(np.prod(ys)))
        if depthwise:
            filt = np.ascontiguousarray(w.transpose(1, 2, 3, 0))  # (1, KH, KW, C_out)
            fd = {"n": 1, "h": kh, "w": kw, "c": c_out}
            sc = runtime.depthwise_scratch(dv(in_dims), dv(fd), dv(out_dims), list(op.stride), [op.pad[0], op.pad[2]],
                                           list(op.dilation), c_out // c_in)
            args = {"dw": {"input_offset": -qi.zero_point, "output_offset": qo.zero_point, "ch_mult": c_out // c_in,
                           **geo}, "input_dims": in_dims, "filter_dims": fd, "output_dims": out_dims,
                    "filter": filt, "bias": qop.arrays["bias"], "multiplier": mult, "shift": shift}
            self.emit("depthwise", op, [ib], ob, args, sc)
        else:
            filt = np.ascontiguousarray(w.transpose(0, 2, 3, 1))  # OHWI
            fd = {"n": c_out, "h": kh, "w": kw, "c": c_in // op.groups}
            sc = runtime.conv_scratch(dv(in_dims), dv(fd), dv(out_dims), list(op.stride), [op.pad[0], op.pad[2]],
                                      list(op.dilation))
            args = {"conv": {"input_offset": -qi.zero_point, "output_offset": qo.zero_point, **geo},
                    "input_dims": in_dims, "filter_dims": fd, "output_dims": out_dims, "filter": filt,
                    "bias": qop.arrays["bias"], "multiplier": mult, "shift": shift}
            self.emit("conv", op, [ib], ob, args, sc)
        if sc < 0:
            raise ValueError(f"op '{op.name}' (conv): the kernel rejects this geometry")
        self.set_out(op, ob, _channels_last(ys))

    def op_pool(self, op: Op) -> None:
        x, y = op.inputs[0], op.output
        xs, ys = self.shape(x), self.shape(y)
        qop = self.g.ops.get(op.name)
        qo = self.q(y)
        ib = self.require(op, x, _channels_last(xs))
        nd = len(xs) - 1
        in_hw = (1, xs[1]) if nd == 1 else (xs[1], xs[2])
        out_hw = (1, ys[1]) if nd == 1 else (ys[1], ys[2])
        c = xs[0]
        args = {"pool": {"stride": {"w": op.stride[1], "h": op.stride[0]}, "padding": {"w": op.pad[2], "h": op.pad[0]},
                         "activation": _act(qop.act if qop else "none", qo)},
                "input_dims": {"n": 1, "h": in_hw[0], "w": in_hw[1], "c": c},
                "filter_dims": {"n": 1, "h": op.kernel[0], "w": op.kernel[1], "c": 1},
                "output_dims": {"n": 1, "h": out_hw[0], "w": out_hw[1], "c": c}}
        from harcore._core import runtime

        sc = runtime.avgpool_scratch(out_hw[1], c) if op.pool == "avg" else 0
        ob = self.buf(int(np.prod(ys)))
        self.emit("max_pool" if op.pool == "max" else "avg_pool", op, [ib], ob, args, sc)
        self.set_out(op, ob, _channels_last(ys))

    def op_linear(self, op: Op) -> None:
        x, y = op.inputs[0], op.output
        xs, ys = self.shape(x), self.shape(y)
        k = xs[-1]
        qop = self.g.ops[op.name]
        qi, qo = self.q(x), self.q(y)
        b, offs = self.loc[x]
        perm = _row_perm(offs, k)
        if perm is None:
            b = self.require(op, x, np.arange(len(offs)))
            perm = np.arange(k)
        w = qop.arrays["weight"]
        filt = np.empty_like(w)
        filt[:, perm] = w
        mult, shift = _per_channel(qi.scale, qop.arrays["weight_scale"], qo.scale)
        batches = len(offs) // k
        ob = self.buf(batches * ys[-1])
        args = {"fc": {"input_offset": -qi.zero_point, "filter_offset": 0, "output_offset": qo.zero_point,
                       "activation": _act(qop.act, qo)}, "batches": batches, "depth": k, "out_features": ys[-1],
                "filter": np.ascontiguousarray(filt), "bias": qop.arrays["bias"], "multiplier": mult, "shift": shift}
        self.emit("fully_connected", op, [b], ob, args)
        self.set_out(op, ob, np.arange(batches * ys[-1]))

    def op_add(self, op: Op) -> None:
        if len(op.inputs) == 1 or self.shape(op.inputs[0]) != self.shape(op.inputs[1]):
            return self.op_add_bcast(op)
        a, c = op.inputs
        ba, offs = self.loc[a]
        bc = self.require(op, c, offs)
        qop = self.g.ops.get(op.name)
        qo = self.q(op.output)
        act = _act(qop.act if qop else "none", qo)
        ob = self.buf(len(offs))
        self.emit("add", op, [ba, bc], ob, {"p": _add_params(self.q(a), self.q(c), qo), "act_min": act["min"],
                                           "act_max": act["max"], "size": len(offs), "subtract": 0})
        self.set_out(op, ob, offs)

    def op_mul(self, op: Op) -> None:
        a = op.inputs[0]
        ys = self.shape(op.output)
        if len(ys) > 4:
            raise ValueError(f"op '{op.name}' (mul): more than 4 dims")
        qop = self.g.ops.get(op.name)
        const = len(op.inputs) == 1
        if const:  # TFLite MUL by an int8 constant tensor (a model parameter, symmetric, its own scale)
            param = np.ascontiguousarray(qop.arrays["param"]).reshape(-1)
            q1 = QParams(float(qop.arrays["param_scale"][0]), 0)
        else:
            q1 = self.q(op.inputs[1])
        p = _mul_params(self.q(a), q1, self.q(op.output))
        b, offs = self.loc[a]
        if const and param.size == 1 and self.shape(a) == ys and np.array_equal(np.sort(offs), np.arange(len(offs))):
            # a scalar: elementwise over the input's bytes, whatever its layout (the output keeps it)
            n = len(offs)
            ob = self.buf(n)
            self.emit("mul", op, [b], ob, {"p": p, "act_min": -128, "act_max": 127, "dims": [1, 1, 1, n],
                                           "input0_strides": [0, 0, 0, 1], "input1_strides": [0, 0, 0, 0],
                                           "input1_data": param})
            self.set_out(op, ob, offs)
            return
        pad = (1,) * (4 - len(ys))
        views = self.broadcast_views(op, ys, param if const else None)
        if views is None:
            return self.op_mul(op)
        strides, bufs = views
        n = int(np.prod(ys))
        ob = self.buf(n)
        self.emit("mul", op, bufs, ob, {"p": p, "act_min": -128, "act_max": 127, "dims": list(pad + tuple(ys)),
                                       "input0_strides": strides[0], "input1_strides": strides[1],
                                       "input1_data": param if const else None})
        self.set_out(op, ob, np.arange(n))

    def broadcast_views(self, op: Op, ys: tuple[int, ...],
                        param: np.ndarray | None) -> tuple[list[list[int]], list[int]] | None:
        """The two operands of a broadcasting MUL/ADD (the second an int8 constant ``param`` when given) as
        strided views over the output's 4-D index: (strides per operand, arena buffers of the non-constant
        ones). An operand whose layout is no strided view gets the plain layout instead, and ``None`` says that
        the caller must lower the op again."""
        pad = (1,) * (4 - len(ys))
        strides, bufs = [], []
        operands = [(op.inputs[0], None)] + ([(None, tuple(op.param_shape))] if param is not None
                                            else [(op.inputs[1], None)])
        for t, tshape in operands:
            if t is None:
                b, offs = -1, np.arange(param.size)
            else:
                b, offs = self.loc[t]
                tshape = self.shape(t)
            full = np.broadcast_to(offs.reshape((1,) * (len(ys) - len(tshape)) + tuple(tshape)), ys)
            full = full.reshape(pad + tuple(ys))
            base = int(full.reshape(-1)[0])
            st = [int(full[tuple(1 if j == d else 0 for j in range(4))] - base) if full.shape[d] > 1 else 0
                  for d in range(4)]
            grid = base + sum(np.arange(full.shape[d]).reshape([-1 if i == d else 1 for i in range(4)]) * st[d]
                              for d in range(4))
            if base != 0 or not np.array_equal(np.broadcast_to(grid, full.shape), full):
                self.require(op, t, np.arange(len(offs)))  # not a strided view: plain layout, then again
                return None
            strides.append(st)
            if b >= 0:
                bufs.append(b)
        return strides, bufs

    def op_add_bcast(self, op: Op) -> None:
        """TFLite ADD with broadcasting or an int8 constant (a parameter, one symmetric scale): kAddBcast, the
        per-element arithmetic of arm_elementwise_add_s8 over strided inputs; the output is in torch order."""
        a = op.inputs[0]
        ys = self.shape(op.output)
        if len(ys) > 4:
            raise ValueError(f"op '{op.name}' (add): more than 4 dims")
        qop = self.g.ops.get(op.name)
        const = len(op.inputs) == 1
        if const:
            param = np.ascontiguousarray(qop.arrays["param"]).reshape(-1)
            q1 = QParams(float(qop.arrays["param_scale"][0]), 0)
        else:
            q1 = self.q(op.inputs[1])
        qo = self.q(op.output)
        pad = (1,) * (4 - len(ys))
        views = self.broadcast_views(op, ys, param if const else None)
        if views is None:
            return self.op_add_bcast(op)
        strides, bufs = views
        act = _act(qop.act if qop else "none", qo)
        n = int(np.prod(ys))
        ob = self.buf(n)
        self.emit("add_bcast", op, bufs, ob, {"p": _add_params(self.q(a), q1, qo), "act_min": act["min"],
                                              "act_max": act["max"], "dims": list(pad + tuple(ys)),
                                              "input0_strides": strides[0], "input1_strides": strides[1],
                                              "input1_data": param if const else None})
        self.set_out(op, ob, np.arange(n))

    def peek_offs(self, tid: int) -> np.ndarray | None:
        """The layout tensor ``tid`` has or will have without a step of its own (lowered already, or an alias
        (reshape / transpose) of such a tensor); None otherwise."""
        if tid in self.loc:
            return self.loc[tid][1]
        op = self.producer.get(tid)
        if op is None or op.kind not in ("reshape", "transpose"):
            return None
        src = self.peek_offs(op.inputs[0])
        if src is None or op.kind == "reshape":
            return src
        return src.reshape(self.shape(op.inputs[0])).transpose(op.perm).reshape(-1)

    def wanted_layout(self, tid: int) -> list[np.ndarray]:
        """Layouts the consumers of ``tid`` would take without a copy (a softmax: its axis contiguous; an add
        reached through layout-keeping ops: its other operand's layout), most wanted first."""
        out: list[np.ndarray] = []
        seen = 0
        while seen < 8:
            seen += 1
            cons = [o for o in self.g.graph.ops if tid in o.inputs]
            if len(cons) != 1:
                return out
            c = cons[0]
            shape = self.shape(tid)
            if c.kind == "softmax":
                n = int(np.prod(shape))
                want = np.empty(n, np.int64)
                want[np.moveaxis(np.arange(n).reshape(shape), c.axis, -1).reshape(-1)] = np.arange(n)
                return [want]
            if c.kind == "add":
                other = c.inputs[1] if c.inputs[0] == tid else c.inputs[0]
                o = self.peek_offs(other)
                return [o] if o is not None and self.shape(other) == shape else []
            keeps = (c.kind == "mul" and len(c.inputs) == 1 and int(np.prod(c.param_shape)) == 1) or \
                (c.kind == "activation" and c.act in ("tanh", "sigmoid", "relu", "relu6"))
            if not keeps:
                return out
            tid = c.output
        return out

    def op_matmul(self, op: Op) -> None:
        """TFLite BATCH_MATMUL: arm_batch_matmul_s8 wants lhs rows and (transposed) rhs rows contiguous over the
        depth K. ``a @ b`` is computed as lhs = a, rhs^T = b^T (output (B, M, N)) or, the same inputs read the
        other way round, lhs = b^T, rhs^T = a (output (B, N, M) = the transpose); the orientation the consumer
        takes without a copy wins. Operands in another layout get one strided copy first."""
        a, c = op.inputs
        sa, sc = self.shape(a), self.shape(c)
        if len(sa) < 2 or len(sa) != len(sc) or sa[:-2] != sc[:-2] or sa[-1] != sc[-2]:
            raise ValueError(f"op '{op.name}' (matmul): shapes {sa} @ {sc}: the int8 path multiplies two activations "
                             "of equal rank with equal batch dims (no broadcasting)")
        M, K, N = sa[-2], sa[-1], sc[-1]
        B = int(np.prod(sa[:-2])) if len(sa) > 2 else 1
        want_a = np.arange(B * M * K)
        want_c = np.arange(B * K * N).reshape(B, N, K).transpose(0, 2, 1).reshape(-1)  # b^T rows contiguous
        ba = self.require(op, a, want_a)
        bc = self.require(op, c, want_c)
        n = B * M * N
        plain = np.arange(n)
        flipped = np.arange(n).reshape(B, N, M).transpose(0, 2, 1).reshape(-1)
        swap = any(np.array_equal(w, flipped) for w in self.wanted_layout(op.output)) and \
            not any(np.array_equal(w, plain) for w in self.wanted_layout(op.output))
        qa, qc, qo = self.q(a), self.q(c), self.q(op.output)
        m, sh = _qm(float(qa.scale) * float(qc.scale) / float(qo.scale))
        def dims(rows: int, cols: int) -> dict[str, int]:
            return {"n": 1, "h": B, "w": rows, "c": cols}

        if swap:
            lhs, rhs, lq, rq, rows, cols = bc, ba, qc, qa, N, M
        else:
            lhs, rhs, lq, rq, rows, cols = ba, bc, qa, qc, M, N
        ob = self.buf(n)
        args = {"bmm": {"adj_x": 0, "adj_y": 1, "fc_params": {"input_offset": -lq.zero_point,
                                                              "filter_offset": -rq.zero_point,
                                                              "output_offset": qo.zero_point,
                                                              "activation": {"min": -128, "max": 127}}},
                "quant": {"multiplier": m, "shift": sh}, "lhs_dims": dims(rows, K), "rhs_dims": dims(cols, K),
                "output_dims": dims(rows, cols)}
        self.emit("batch_matmul", op, [lhs, rhs], ob, args)
        self.set_out(op, ob, flipped if swap else plain)

    def op_softmax(self, op: Op) -> None:
        x = op.inputs[0]
        xs = self.shape(x)
        b, offs = self.loc[x]
        moved = np.moveaxis(offs.reshape(xs), op.axis, -1)
        if not np.array_equal(moved.reshape(-1), np.arange(len(offs))):
            want = np.empty(len(offs), np.int64)
            want[np.moveaxis(np.arange(len(offs)).reshape(xs), op.axis, -1).reshape(-1)] = np.arange(len(offs))
            b = self.require(op, x, want)
            offs = want
        qi = self.q(x)
        real = min(1.0 * qi.scale * float(1 << 26), float((1 << 31) - 1))
        mult, shift = _qm(real)
        diff_min = -math.floor(1.0 * ((1 << 5) - 1) * (1 << 26) / (1 << shift))
        row = xs[op.axis]
        ob = self.buf(len(offs))
        self.emit("softmax", op, [b], ob, {"rows": len(offs) // row, "row_size": row, "mult": mult, "shift": shift,
                                          "diff_min": diff_min})
        self.set_out(op, ob, offs)

    def op_mean(self, op: Op) -> None:
        x = op.inputs[0]
        xs = self.shape(x)
        n = int(np.prod(xs))
        b = self.require(op, x, np.arange(n))
        qi, qo = self.q(x), self.q(op.output)
        r = xs[op.axis]
        mult, shift = _qm(qi.scale / qo.scale)
        if op.mean:
            mult, shift = _mean_multiplier(mult, shift, r)
        outer = int(np.prod(xs[:op.axis])) if op.axis else 1
        inner = int(np.prod(xs[op.axis + 1:])) if op.axis + 1 < len(xs) else 1
        ob = self.buf(outer * inner)
        self.emit("reduce_sum", op, [b], ob, {"outer": outer, "reduce": r, "inner": inner, "input_offset": -qi.zero_point,
                                             "output_offset": qo.zero_point, "mult": mult, "shift": shift})
        self.set_out(op, ob, np.arange(outer * inner))

    def op_activation(self, op: Op) -> None:
        x = op.inputs[0]
        b, offs = self.loc[x]
        qi, qo = self.q(x), self.q(op.output)
        if op.act in ("tanh", "sigmoid"):  # TFLM TANH / LOGISTIC, elementwise in the input's layout
            ob = self.buf(len(offs))
            self.emit("tanh" if op.act == "tanh" else "logistic", op, [b], ob,
                      {"size": len(offs), "p": _lut_params(qi, f"op '{op.name}' ({op.act})")})
            self.set_out(op, ob, offs)
            return
        if op.act == "leaky_relu":  # TFLM's LEAKY_RELU prepare: float32 products, then QuantizeMultiplier
            alpha = np.float32(self.g.ops[op.name].attrs["alpha"])
            mi = _qm(float(np.float32(qi.scale) / np.float32(qo.scale)))
            ma = _qm(float(np.float32(np.float32(qi.scale) * alpha) / np.float32(qo.scale)))
            ob = self.buf(len(offs))
            self.emit("leaky_relu", op, [b], ob, {"size": len(offs), "input_offset": -qi.zero_point,
                                                  "output_offset": qo.zero_point, "identity_mult": mi[0],
                                                  "identity_shift": mi[1], "alpha_mult": ma[0], "alpha_shift": ma[1]})
            self.set_out(op, ob, offs)
            return
        mult, shift = _qm(float(np.float32(qi.scale) / np.float32(qo.scale)))
        act = _act(op.act, qo)
        ob = self.buf(len(offs))
        self.emit("clamp", op, [b], ob, {"size": len(offs), "input_offset": -qi.zero_point, "output_offset": qo.zero_point,
                                        "mult": mult, "shift": shift, "act_min": act["min"], "act_max": act["max"]})
        self.set_out(op, ob, offs)

    def op_rnn(self, op: Op) -> None:
        x, y = op.inputs[0], op.output
        T, I = self.shape(x)
        H = op.out_channels
        dirs = 2 if op.bidirectional else 1
        qop = self.g.ops[op.name]
        qi, qh = self.q(x), self.q(y)
        b, offs = self.loc[x]
        perm = _row_perm(offs, I)
        if perm is None:
            b = self.require(op, x, np.arange(T * I))
            perm = np.arange(I)

        def cols(w: np.ndarray) -> np.ndarray:
            out = np.empty_like(w)
            out[:, perm] = w
            return np.ascontiguousarray(out)

        from harcore._core import runtime

        ob = self.buf(T * H * dirs)
        if op.cell == "lstm":
            params = []
            for d in range(dirs):
                w_ih = cols(qop.arrays[f"w_ih{d}"])
                w_hh = qop.arrays[f"w_hh{d}"]
                bias = qop.arrays[f"bias{d}"].astype(np.int64)
                s_ih, s_hh = qop.arrays[f"w_ih_scale{d}"], qop.arrays[f"w_hh_scale{d}"]
                cell = float(qop.attrs[f"cell_scale{d}"])
                gates = {}
                for gi, gname in enumerate(("input_gate", "forget_gate", "cell_gate", "output_gate")):
                    act = "tanh" if gname == "cell_gate" else "sigmoid"
                    rows = slice(gi * H, (gi + 1) * H)
                    wi, wh = np.ascontiguousarray(w_ih[rows]), np.ascontiguousarray(w_hh[rows])
                    mi, si = _qm(qi.scale * float(s_ih[gi]) / GATE_SCALE)
                    mh, sh = _qm(qh.scale * float(s_hh[gi]) / GATE_SCALE)
                    gates[gname] = {
                        "input_multiplier": mi, "input_shift": si, "input_weights": wi,
                        "input_effective_bias": (bias[rows] - qi.zero_point * wi.astype(np.int64).sum(1)).astype(np.int32),
                        "hidden_multiplier": mh, "hidden_shift": sh, "hidden_weights": wh,
                        "hidden_effective_bias": (-qh.zero_point * wh.astype(np.int64).sum(1)).astype(np.int32),
                        "activation_type": act}
                f2c = _qm(NONLINEAR_SCALE * cell / cell)
                i2c = _qm(NONLINEAR_SCALE * NONLINEAR_SCALE / cell)
                o = _qm(NONLINEAR_SCALE * NONLINEAR_SCALE / qh.scale)
                params.append({"time_major": 0, "batch_size": 1, "time_steps": T, "input_size": I, "hidden_size": H,
                               "input_offset": -qi.zero_point, "forget_to_cell_multiplier": f2c[0],
                               "forget_to_cell_shift": f2c[1], "input_to_cell_multiplier": i2c[0],
                               "input_to_cell_shift": i2c[1], "cell_clip": 0,
                               "cell_scale_power": int(round(math.log2(cell))), "output_multiplier": o[0],
                               "output_shift": o[1], "output_offset": qh.zero_point, **gates})
            extra = {}
            args: dict[str, Any] = {"dir": params, "num_directions": dirs, "reversed_input": -1}
            if dirs == 2:
                extra["reversed_input"] = self.buf(T * I)
            self.emit("lstm", op, [b], ob, args, runtime.lstm_scratch(H, 1), extra)
            t_idx, j_idx = np.meshgrid(np.arange(T), np.arange(H), indexing="ij")
            parts = [t_idx * H + j_idx]
            if dirs == 2:
                parts.append(T * H + (T - 1 - t_idx) * H + j_idx)
            self.set_out(op, ob, np.concatenate(parts, axis=1).reshape(-1))
        else:
            params = []
            for d in range(dirs):
                inter = {k: QParams(float(v[0]), int(v[1])) for k, v in qop.attrs[f"intermediates{d}"].items()}
                w_ih, w_hh = cols(qop.arrays[f"w_ih{d}"]), qop.arrays[f"w_hh{d}"]
                s_ih, s_hh = qop.arrays[f"w_ih_scale{d}"], qop.arrays[f"w_hh_scale{d}"]
                b_ih, b_hh = qop.arrays[f"b_ih{d}"], qop.arrays[f"b_hh{d}"]
                x_fc, h_fc = [], []
                for gi, gname in enumerate("rzn"):
                    rows = slice(gi * H, (gi + 1) * H)
                    qgx, qgh = inter[f"gx_{gname}"], inter[f"gh_{gname}"]
                    m, s = _per_channel(qi.scale, s_ih[rows], qgx.scale)
                    x_fc.append({"weights": np.ascontiguousarray(w_ih[rows]), "bias": np.ascontiguousarray(b_ih[rows]),
                                 "multiplier": m, "shift": s, "output_offset": qgx.zero_point})
                    m, s = _per_channel(qh.scale, s_hh[rows], qgh.scale)
                    h_fc.append({"weights": np.ascontiguousarray(w_hh[rows]), "bias": np.ascontiguousarray(b_hh[rows]),
                                 "multiplier": m, "shift": s, "output_offset": qgh.zero_point})
                q_sig = QParams(*LOGISTIC_QPARAMS)
                q_tanh = QParams(*TANH_QPARAMS)
                where = f"op '{op.name}' (gru)"
                params.append({
                    "time_steps": T, "input_size": I, "hidden_size": H, "reverse": d, "output_stride": dirs * H,
                    "input_offset": -qi.zero_point, "hidden_zero_point": qh.zero_point, "x_fc": x_fc, "h_fc": h_fc,
                    "add_r": _add_params(inter["gx_r"], inter["gh_r"], inter["r_pre"]),
                    "add_z": _add_params(inter["gx_z"], inter["gh_z"], inter["z_pre"]),
                    "sig_r": _lut_params(inter["r_pre"], where), "sig_z": _lut_params(inter["z_pre"], where),
                    "mul_rn": _mul_params(q_sig, inter["gh_n"], inter["rn"]),
                    "add_n": _add_params(inter["gx_n"], inter["rn"], inter["n_pre"]),
                    "tanh_n": _lut_params(inter["n_pre"], where),
                    "sub_d": _add_params(qh, q_tanh, inter["d"]),
                    "mul_zd": _mul_params(q_sig, inter["d"], inter["zd"]),
                    "add_h": _add_params(q_tanh, inter["zd"], qh)})
            self.emit("gru", op, [b], ob, {"dir": params, "num_directions": dirs}, runtime.gru_scratch(H, 1))
            self.set_out(op, ob, np.arange(T * H * dirs))

    # -- arena -----------------------------------------------------------------------------------
    def plan(self) -> None:
        p = self.p
        for bf in p.bufs:
            bf.first, bf.last = 10**9, -1
        for i, s in enumerate(p.steps):
            for b in [*s.inputs, s.output, s.scratch, *s.extra.values()]:
                if b >= 0:
                    p.bufs[b].first = min(p.bufs[b].first, i)
                    p.bufs[b].last = max(p.bufs[b].last, i)
        n = len(p.steps)
        ib, ob = p.input_buf, p.output_buf
        p.bufs[ib].first = 0
        p.bufs[ib].last = max(p.bufs[ib].last, 0)
        p.bufs[ob].last = max(n - 1, 0)
        if ib == ob:
            p.bufs[ib].first, p.bufs[ib].last = 0, max(n - 1, 0)
        # buffers no step touches (a tensor re-laid out before any use) take no space
        planner = ArenaPlanner()
        ids = {i: planner.add_buffer(bf.size, bf.first, bf.last, bf.align, name=f"program buffer {i}")
               for i, bf in enumerate(p.bufs) if bf.last >= 0}
        offsets = planner.plan()
        for i, bf in enumerate(p.bufs):
            bf.offset = offsets[ids[i]] if i in ids else 0
        p.arena_size = planner.arena_size


def lower(g: QGraph) -> Program:
    """Lower an int8 graph to the runtime's program (steps, arena plan). Unsupported ops raise ValueError."""
    g.validate()
    return _Lowerer(g).run()
