"""`to_tflite(g, path)`: harcore's int8 graph (`QGraph`) as a TFLite flatbuffer, without TensorFlow.

The file carries exactly the int8 weights, int32 biases and quantization parameters of the QGraph, so the
TFLite Micro interpreter computes the same bits as `harcore.quant.simulate` (checked by
tests/test_tflite_oracle_models.py). Mapping (docs/int8.md has the data model):

* The model input and output keep harcore's batch-first torch layout: input `(B, C, T)` int8 (the QGraph's
  input quantization), output `(B, classes)` int8.
* Layout: each harcore tensor is materialized in the layouts its consumers need — NHWC for conv/pool
  (a `(C, T)` tensor is `(B, 1, T, C)`, a `(C, H, W)` one `(B, H, W, C)`), torch order for linear / reshape /
  slice / rnn / reduce. A layout change is a RESHAPE when only unit dimensions move and a TRANSPOSE
  otherwise; a graph `transpose` is free (a relabelled view of the same tensor).
* conv -> CONV_2D (OHWI per-channel weights) or DEPTHWISE_CONV_2D (1HWC, groups == C_in: the rule of
  harcore.quant.lower.is_depthwise, so the file and the firmware run the same kernel); TFLite's SAME / VALID
  padding when the graph's padding is one of them, else an explicit PAD (with the zero point) + VALID.
  linear -> FULLY_CONNECTED (per-channel; keep_num_dims for sequences). pool -> MAX/AVERAGE_POOL_2D.
  add / mul -> ADD / MUL (fused activations as TFLite's fused_activation_function); mul by a parameter -> MUL
  with an int8 constant tensor (its own symmetric scale). matmul -> BATCH_MATMUL (torch layouts, no adj).
  tanh / sigmoid -> TANH / LOGISTIC. softmax -> SOFTMAX on the
  last axis (the axis moved last first). mean -> MEAN / SUM. slice -> STRIDED_SLICE.
* LSTM -> UNIDIRECTIONAL_SEQUENCE_LSTM (8x8->16: int8 weights per gate, int32 gate biases, int8 hidden and
  int16 cell-state variables); a backward direction runs on REVERSE_V2(x) and its output is reversed back;
  both directions are concatenated on the feature axis.
* GRU -> the step-by-step builtin-op scheme of docs/int8.md ("The GRU scheme"), unrolled over time.

`batch_size` > 1 writes a model for a fixed batch (handy for benchmarking TFLite on many windows).
"""

from __future__ import annotations

from pathlib import Path
import numpy as np

from harcore.quant.lower import is_depthwise
from harcore.quant.tflite_builder import TFLiteBuilder

__all__ = ["to_tflite", "to_tflite_bytes", "export", "torch_order"]

_ACTS = {"none": "NONE", "relu": "RELU", "relu6": "RELU6"}
_GATE_SLOTS_LSTM = {"w_in": (1, 2, 3, 4), "w_h": (5, 6, 7, 8), "bias": (12, 13, 14, 15)}


def to_tflite(g, path: str | Path, *, batch_size: int = 1) -> Path:
    """Write `g` (a validated `QGraph`) as a `.tflite` file; returns the path."""
    path = Path(path)
    path.write_bytes(to_tflite_bytes(g, batch_size=batch_size))
    return path


def to_tflite_bytes(g, *, batch_size: int = 1) -> bytes:
    """The `.tflite` flatbuffer of `g` as bytes (see the module docstring for the mapping)."""
    return export(g, batch_size=batch_size)[0]


def export(g, *, batch_size: int = 1) -> tuple[bytes, dict[int, tuple[int, tuple]]]:
    """The flatbuffer and, per harcore tensor id, one TFLite tensor holding it: ``(index, key)``, where
    ``key`` names, per stored axis after the batch, the torch axis it holds (None: an inserted unit axis).
    For debugging against ``simulate(..., return_intermediates=True)``; see `torch_order`."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"to_tflite: batch_size must be a positive int, got {batch_size!r}")
    g.validate("to_tflite")
    ex = _Exporter(g, batch_size)
    fb = ex.run()
    return fb, {t: next(iter(v.items()))[::-1] for t, v in ex.views.items()}


def torch_order(data: np.ndarray, key: tuple) -> np.ndarray:
    """A TFLite tensor's data (B, *stored axes) in torch order (B, *torch shape), given its layout key."""
    axes = [a for a in key if a is not None]
    a = np.asarray(data).reshape(data.shape[0], *[n for n, k in zip(data.shape[1:], key) if k is not None])
    return a.transpose(0, *[1 + axes.index(i) for i in range(len(axes))])


class _Exporter:
    def __init__(self, g, batch: int):
        self.g = g
        self.B = batch
        self.b = TFLiteBuilder(description=f"harcore int8 export ({len(g.graph.ops)} graph ops)")
        # harcore tensor id -> {layout key: tflite tensor index}; a key lists, per stored axis after the batch,
        # the torch axis it holds (None: an inserted unit axis)
        self.views: dict[int, dict[tuple, int]] = {}
        self._n = 0

    # ---- helpers --------------------------------------------------------------------------------------

    def name(self, base: str) -> str:
        self._n += 1
        return f"{base}#{self._n}"

    def shape(self, t: int) -> tuple[int, ...]:
        return tuple(self.g.graph.tensors[t].shape)

    def q(self, t: int) -> dict:
        qp = self.g.qparams[t]
        return {"scale": qp.scale, "zero_point": qp.zero_point}

    def torch_key(self, t: int) -> tuple:
        return tuple(range(len(self.shape(t))))

    def nhwc_key(self, t: int, where: str) -> tuple:
        r = len(self.shape(t))
        if r == 2:  # (C, W): (B, 1, W, C)
            return (None, 1, 0)
        if r == 3:  # (C, H, W): (B, H, W, C)
            return (1, 2, 0)
        raise ValueError(f"to_tflite: op '{where}': a conv/pool input must be (C, T) or (C, H, W), "
                         f"got shape {self.shape(t)}")

    def tfl_shape(self, t: int, key: tuple) -> tuple[int, ...]:
        s = self.shape(t)
        return (self.B, *[1 if a is None else s[a] for a in key])

    def new(self, t: int, key: tuple, base: str | None = None) -> int:
        """A new TFLite tensor holding harcore tensor `t` in layout `key`."""
        idx = self.b.tensor(self.name(base or self.g.graph.tensors[t].name), self.tfl_shape(t, key), np.int8,
                            **self.q(t))
        self.views.setdefault(t, {})[key] = idx
        return idx

    def get(self, t: int, key: tuple) -> int:
        """Tensor `t` in layout `key`, converting (RESHAPE / TRANSPOSE) from a layout it already has."""
        have = self.views[t]
        if key in have:
            return have[key]
        s = self.shape(t)
        nonunit = lambda k: [a for a in k if a is not None and s[a] != 1]  # noqa: E731
        for src_key, src in have.items():  # same memory order: a RESHAPE
            if nonunit(src_key) == nonunit(key):
                out = self.new(t, key)
                self.reshape(src, out)
                return out
        src_key, src = next(iter(have.items()))
        src_axes = tuple(a for a in src_key if a is not None)
        if src_axes != src_key:
            src = self.get(t, src_axes)
        dst_axes = tuple(a for a in key if a is not None)
        out = self.new(t, dst_axes)
        perm = [0] + [1 + src_axes.index(a) for a in dst_axes]
        self.b.op("TRANSPOSE", [src, self.b.const_i32(self.name("perm"), perm)], [out])
        return self.get(t, key)

    def reshape(self, src: int, dst: int) -> None:
        self.b.op("RESHAPE", [src, self.b.const_i32(self.name("shape"), self.b.shape(dst))], [dst])

    def concat(self, parts: list[int], out: int, n) -> None:
        """CONCATENATION of (B, k) parts on axis 1, as a tree: TFLM takes at most 10 inputs per op."""
        while len(parts) > 10:
            grouped = []
            for i in range(0, len(parts), 10):
                chunk = parts[i:i + 10]
                if len(chunk) == 1:
                    grouped.append(chunk[0])
                    continue
                width = sum(self.b.shape(p)[1] for p in chunk)
                t = self.b.tensor(n("concat"), (self.B, width), np.int8, **self.b.quant(chunk[0]))
                self.b.op("CONCATENATION", chunk, [t], axis=1)
                grouped.append(t)
            parts = grouped
        self.b.op("CONCATENATION", parts, [out], axis=1)

    def default_key(self, t: int) -> tuple:
        return next(iter(self.views[t]))

    # ---- driver ---------------------------------------------------------------------------------------

    def run(self) -> bytes:
        gr = self.g.graph
        model_in = None
        for op in gr.ops:
            if op.kind == "input":
                model_in = self.new(op.output, self.torch_key(op.output))
                continue
            handler = getattr(self, f"op_{op.kind}", None)
            if handler is None:
                raise ValueError(f"to_tflite: op '{op.name}': kind '{op.kind}' has no TFLite mapping")
            handler(op, self.g.ops.get(op.name))
        out_t = gr.outputs[0]
        model_out = self.get(out_t, self.torch_key(out_t))
        if model_out == model_in:
            raise ValueError("to_tflite: the graph computes nothing (its output is its input)")
        return self.b.build([model_in], [model_out])

    def act(self, qop) -> str:
        return _ACTS[qop.act if qop is not None else "none"]

    # ---- op handlers ----------------------------------------------------------------------------------

    def op_conv(self, op, qop) -> None:
        x_t = op.inputs[0]
        key = self.nhwc_key(x_t, op.name)
        x = self.get(x_t, key)
        s_in = self.g.qparams[x_t].scale
        w = qop.arrays["weight"]  # (C_out, C_in/groups, KH, KW)
        w_scale = qop.arrays["weight_scale"].astype(np.float32)
        bias = qop.arrays["bias"].astype(np.int32)
        co, cig, kh, kw = w.shape
        cin = op.in_channels
        _, ih, iw, _ = self.tfl_shape(x_t, key)
        out_key = self.nhwc_key(op.output, op.name)
        _, oh, ow, _ = self.tfl_shape(op.output, out_key)
        (sh, sw), (dh, dw) = op.stride, op.dilation
        x, padding = self.padding(op, x, x_t, key, (ih, iw), (oh, ow), (kh, kw), (sh, sw), (dh, dw))
        depthwise = is_depthwise(op.groups, cin, co) and cig == 1
        if depthwise:
            wt = np.ascontiguousarray(w.transpose(1, 2, 3, 0))  # (1, KH, KW, C_out)
            axis = 3
        else:
            if op.groups != 1 and cig * op.groups != cin:
                raise ValueError(f"to_tflite: op '{op.name}': groups={op.groups} does not divide C_in={cin}")
            wt = np.ascontiguousarray(w.transpose(0, 2, 3, 1))  # OHWI
            axis = 0
        w_idx = self.b.tensor(self.name(f"{op.name}/weight"), wt.shape, np.int8, data=wt, scale=w_scale,
                              zero_point=0, axis=axis)
        b_idx = self.b.tensor(self.name(f"{op.name}/bias"), bias.shape, np.int32, data=bias,
                              scale=np.float32(s_in) * w_scale, zero_point=0)
        y = self.new(op.output, out_key)
        opts = dict(padding=padding, stride_h=sh, stride_w=sw, dilation_h_factor=dh, dilation_w_factor=dw,
                    fused_activation_function=self.act(qop))
        if depthwise:
            self.b.op("DEPTHWISE_CONV_2D", [x, w_idx, b_idx], [y], depth_multiplier=co // cin, **opts)
        else:
            self.b.op("CONV_2D", [x, w_idx, b_idx], [y], **opts)

    def padding(self, op, x, x_t, key, in_hw, out_hw, k_hw, s_hw, d_hw, allow_pad_op=True):
        """TFLite padding for the graph's explicit pads: 'VALID', 'SAME', or a PAD op + 'VALID'."""
        top, bottom, left, right = op.pad
        if (top, bottom, left, right) == (0, 0, 0, 0):
            valid = all(o == (i - ((k - 1) * d + 1)) // s + 1 for i, o, k, s, d in zip(in_hw, out_hw, k_hw, s_hw, d_hw))
            if not valid:
                raise ValueError(f"to_tflite: op '{op.name}': output size {out_hw} is not TFLite's VALID size "
                                 f"(ceil_mode?)")
            return x, "VALID"
        same = []
        for i, o, k, s, d in zip(in_hw, out_hw, k_hw, s_hw, d_hw):
            total = max((o - 1) * s + (k - 1) * d + 1 - i, 0)
            same.append((total // 2, total - total // 2, o == -(-i // s)))
        if (same[0][:2] + same[1][:2]) == (top, bottom, left, right) and same[0][2] and same[1][2]:
            return x, "SAME"
        if not allow_pad_op:
            raise ValueError(f"to_tflite: op '{op.name}': padding {op.pad} is neither TFLite's SAME nor VALID")
        # explicit padding with the zero point (a real 0), then a VALID op
        padded = self.b.tensor(self.name(f"{op.name}/padded"),
                               (self.B, in_hw[0] + top + bottom, in_hw[1] + left + right, self.b.shape(x)[3]),
                               np.int8, **self.q(x_t))
        pads = self.b.tensor(self.name("pads"), (4, 2), np.int32,
                             data=np.array([[0, 0], [top, bottom], [left, right], [0, 0]], np.int32))
        self.b.op("PAD", [x, pads], [padded])
        return padded, "VALID"

    def op_pool(self, op, qop) -> None:
        x_t = op.inputs[0]
        key = self.nhwc_key(x_t, op.name)
        x = self.get(x_t, key)
        _, ih, iw, _ = self.tfl_shape(x_t, key)
        out_key = self.nhwc_key(op.output, op.name)
        _, oh, ow, _ = self.tfl_shape(op.output, out_key)
        if op.pool == "avg" and any(op.pad) and op.count_include_pad:
            raise ValueError(f"to_tflite: op '{op.name}': an average pool counting its padding has no TFLite "
                             "equivalent (TFLite excludes padding)")
        x, padding = self.padding(op, x, x_t, key, (ih, iw), (oh, ow), op.kernel, op.stride, (1, 1),
                                  allow_pad_op=False)
        y = self.new(op.output, out_key)
        kind = {"max": "MAX_POOL_2D", "avg": "AVERAGE_POOL_2D"}[op.pool]
        self.b.op(kind, [x], [y], padding=padding, stride_h=op.stride[0], stride_w=op.stride[1],
                  filter_height=op.kernel[0], filter_width=op.kernel[1], fused_activation_function=self.act(qop))

    def op_linear(self, op, qop) -> None:
        x_t = op.inputs[0]
        x = self.get(x_t, self.torch_key(x_t))
        w = np.ascontiguousarray(qop.arrays["weight"])
        w_scale = qop.arrays["weight_scale"].astype(np.float32)
        bias = qop.arrays["bias"].astype(np.int32)
        s_in = self.g.qparams[x_t].scale
        w_idx = self.b.tensor(self.name(f"{op.name}/weight"), w.shape, np.int8, data=w, scale=w_scale, zero_point=0)
        b_idx = self.b.tensor(self.name(f"{op.name}/bias"), bias.shape, np.int32, data=bias,
                              scale=np.float32(s_in) * w_scale, zero_point=0)
        y = self.new(op.output, self.torch_key(op.output))
        self.b.op("FULLY_CONNECTED", [x, w_idx, b_idx], [y], fused_activation_function=self.act(qop),
                  keep_num_dims=len(self.shape(x_t)) > 1)

    def elementwise(self, op, qop, kind: str) -> None:
        a_t, c_t = op.inputs
        if self.shape(a_t) == self.shape(c_t) == self.shape(op.output):
            key = self.default_key(a_t)
        else:  # broadcasting follows torch's axis order
            if len(self.shape(a_t)) != len(self.shape(c_t)):
                raise ValueError(f"to_tflite: op '{op.name}': broadcasting between ranks "
                                 f"{self.shape(a_t)} and {self.shape(c_t)} is not supported")
            key = self.torch_key(a_t)
        a, c = self.get(a_t, key), self.get(c_t, key)
        y = self.new(op.output, key)
        self.b.op(kind, [a, c], [y], fused_activation_function=self.act(qop))

    def op_add(self, op, qop) -> None:
        if len(op.inputs) == 2:
            return self.elementwise(op, qop, "ADD")
        self.const_operand(op, qop, "ADD")

    def op_mul(self, op, qop) -> None:
        if len(op.inputs) == 2:
            return self.elementwise(op, qop, "MUL")
        self.const_operand(op, qop, "MUL")

    def const_operand(self, op, qop, kind: str) -> None:
        # by a parameter: an int8 constant tensor, broadcast right-aligned like torch
        x_t = op.inputs[0]
        param = np.asarray(qop.arrays["param"], np.int8)
        key = self.default_key(x_t) if param.size == 1 else self.torch_key(x_t)
        x = self.get(x_t, key)
        rank = len(key) + 1
        shape = (1,) * (rank - param.ndim) + tuple(param.shape)
        c = self.b.tensor(self.name(f"{op.name}/param"), shape, np.int8, data=param.reshape(shape),
                          scale=float(qop.arrays["param_scale"][0]), zero_point=0)
        y = self.new(op.output, key)
        self.b.op(kind, [x, c], [y], fused_activation_function=self.act(qop))

    def op_matmul(self, op, qop) -> None:
        a_t, c_t = op.inputs
        a, c = self.get(a_t, self.torch_key(a_t)), self.get(c_t, self.torch_key(c_t))
        y = self.new(op.output, self.torch_key(op.output))
        self.b.op("BATCH_MATMUL", [a, c], [y], adj_x=False, adj_y=False)

    def op_reshape(self, op, qop) -> None:
        x = self.get(op.inputs[0], self.torch_key(op.inputs[0]))
        self.reshape(x, self.new(op.output, self.torch_key(op.output)))

    def op_transpose(self, op, qop) -> None:
        # free: the output is the input's TFLite tensor, read with the permuted axes
        perm = list(op.perm)
        x_t = op.inputs[0]
        if sorted(perm) != list(range(len(self.shape(x_t)))):
            raise ValueError(f"to_tflite: op '{op.name}': perm {op.perm} is not a permutation of the input axes")
        out = self.views.setdefault(op.output, {})
        for key, idx in self.views[x_t].items():
            out[tuple(None if a is None else perm.index(a) for a in key)] = idx

    def op_slice(self, op, qop) -> None:
        x_t = op.inputs[0]
        s = self.shape(x_t)
        x = self.get(x_t, self.torch_key(x_t))
        axis = op.axis % len(s)
        length = op.length if op.length else 1
        begin = [0] * (len(s) + 1)
        end = [self.B, *s]
        begin[axis + 1] = op.start
        end[axis + 1] = op.start + length
        y = self.new(op.output, self.torch_key(op.output))
        n = self.name
        self.b.op("STRIDED_SLICE", [x, self.b.const_i32(n("begin"), begin), self.b.const_i32(n("end"), end),
                                    self.b.const_i32(n("strides"), [1] * len(begin))], [y],
                  shrink_axis_mask=(1 << (axis + 1)) if op.squeeze else 0)

    def op_concat(self, op, qop) -> None:
        """CONCATENATION (TFLM's int8 kernel requires the inputs' and the output's qparams equal, which PTQ
        gives them). NHWC when every input already has that view (a channel concat between convs), else torch
        order; TFLM takes at most 10 inputs per op, so more are concatenated as a tree."""
        r = len(self.shape(op.output))
        key = self.torch_key(op.output)
        if op.axis == 0 and r in (2, 3):
            nk = self.nhwc_key(op.output, op.name)
            if all(nk in self.views[t] for t in op.inputs):
                key = nk
        axis = 1 + key.index(op.axis)
        parts = []
        for t in op.inputs:
            x = self.get(t, key)
            if self.g.qparams[t] != self.g.qparams[op.output]:  # an int8 -> int8 QUANTIZE to the output's qparams
                rq = self.b.tensor(self.name(f"{op.name}/requantized"), self.b.shape(x), np.int8, **self.q(op.output))
                self.b.op("QUANTIZE", [x], [rq])
                x = rq
            parts.append(x)
        while len(parts) > 10:
            grouped = []
            for i in range(0, len(parts), 10):
                chunk = parts[i:i + 10]
                if len(chunk) > 1:
                    shape = list(self.b.shape(chunk[0]))
                    shape[axis] = sum(self.b.shape(p)[axis] for p in chunk)
                    t = self.b.tensor(self.name(f"{op.name}/part"), tuple(shape), np.int8, **self.q(op.output))
                    self.b.op("CONCATENATION", chunk, [t], axis=axis)
                    chunk = [t]
                grouped.append(chunk[0])
            parts = grouped
        y = self.new(op.output, key)
        self.b.op("CONCATENATION", parts, [y], axis=axis)

    def op_gather(self, op, qop) -> None:
        """GATHER with the constant indices (int32) on the torch axis."""
        x_t = op.inputs[0]
        x = self.get(x_t, self.torch_key(x_t))
        idx = np.asarray(op.indices, np.int32).reshape(op.index_shape)
        i_t = self.b.tensor(self.name(f"{op.name}/indices"), idx.shape, np.int32, data=idx)
        y = self.new(op.output, self.torch_key(op.output))
        self.b.op("GATHER", [x, i_t], [y], axis=op.axis + 1)

    def op_softmax(self, op, qop) -> None:
        x_t = op.inputs[0]
        r = len(self.shape(x_t))
        axis = op.axis % r
        key = tuple([a for a in range(r) if a != axis] + [axis])  # the softmax axis last
        x = self.get(x_t, key)
        y = self.new(op.output, key)
        self.b.op("SOFTMAX", [x], [y], beta=1.0)

    def op_mean(self, op, qop) -> None:
        x_t = op.inputs[0]
        axis = op.axis % len(self.shape(x_t))
        x = self.get(x_t, self.torch_key(x_t))
        y = self.new(op.output, self.torch_key(op.output))
        self.b.op("MEAN" if op.mean else "SUM", [x, self.b.const_i32(self.name("axis"), [axis + 1])], [y],
                  keep_dims=bool(op.keep_dims))

    def op_activation(self, op, qop) -> None:
        x_t = op.inputs[0]
        key = self.default_key(x_t)
        x = self.get(x_t, key)
        y = self.new(op.output, key)
        qi, qo = self.g.qparams[x_t], self.g.qparams[op.output]
        if op.act in ("tanh", "sigmoid"):
            self.b.op("TANH" if op.act == "tanh" else "LOGISTIC", [x], [y])
        elif op.act == "leaky_relu":
            self.b.op("LEAKY_RELU", [x], [y], alpha=float(qop.attrs["alpha"]))
        elif op.act == "relu":
            self.b.op("RELU", [x], [y])
        elif op.act == "relu6" and qi == qo:
            self.b.op("RELU6", [x], [y])
        elif op.act == "identity":
            self.b.op("QUANTIZE", [x], [y])  # int8 -> int8: a requantization
        else:
            raise ValueError(f"to_tflite: op '{op.name}': a standalone {op.act} that requantizes has no bit-exact "
                             "TFLM op (TFLM's int8 RELU6 does not requantize)")

    # ---- recurrent ------------------------------------------------------------------------------------

    def op_rnn(self, op, qop) -> None:
        x_t = op.inputs[0]
        if len(self.shape(x_t)) != 2:
            raise ValueError(f"to_tflite: op '{op.name}': an rnn input must be (T, features), got {self.shape(x_t)}")
        x = self.get(x_t, self.torch_key(x_t))
        dirs = 2 if op.bidirectional else 1
        run = self.lstm_direction if op.cell == "lstm" else self.gru_direction
        outs = []
        for d in range(dirs):
            xd = x
            if d == 1:
                xd = self.b.tensor(self.name(f"{op.name}/reversed_input"), self.b.shape(x), np.int8, **self.q(x_t))
                self.b.op("REVERSE_V2", [x, self.b.const_i32(self.name("axis"), [1])], [xd])
            yd = run(op, qop, d, xd, x_t)
            if d == 1:  # back to time order
                yr = self.b.tensor(self.name(f"{op.name}/backward"), self.b.shape(yd), np.int8, **self.q(op.output))
                self.b.op("REVERSE_V2", [yd, self.b.const_i32(self.name("axis"), [1])], [yr])
                yd = yr
            outs.append(yd)
        key = self.torch_key(op.output)
        if dirs == 1:
            self.views.setdefault(op.output, {})[key] = outs[0]
        else:
            y = self.new(op.output, key)
            self.b.op("CONCATENATION", outs, [y], axis=2)

    def lstm_direction(self, op, qop, d: int, x: int, x_t: int) -> int:
        """One direction as TFLite's UNIDIRECTIONAL_SEQUENCE_LSTM (the 8x8->16 integer LSTM TFLM runs)."""
        H = op.out_channels
        T, _ = self.shape(x_t)
        a = qop.arrays
        s_in = self.g.qparams[x_t].scale
        q_out = self.q(op.output)
        n = lambda s: self.name(f"{op.name}/d{d}/{s}")  # noqa: E731
        slots: list = [x] + [None] * 23
        for k, gate in enumerate("ifco"):  # torch i, f, g, o == TFLite input, forget, cell, output
            rows = slice(k * H, (k + 1) * H)
            s_ih, s_hh = float(a[f"w_ih_scale{d}"][k]), float(a[f"w_hh_scale{d}"][k])
            slots[_GATE_SLOTS_LSTM["w_in"][k]] = self.b.tensor(
                n(f"w_in_{gate}"), (H, a[f"w_ih{d}"].shape[1]), np.int8, data=np.ascontiguousarray(a[f"w_ih{d}"][rows]),
                scale=s_ih, zero_point=0)
            slots[_GATE_SLOTS_LSTM["w_h"][k]] = self.b.tensor(
                n(f"w_h_{gate}"), (H, H), np.int8, data=np.ascontiguousarray(a[f"w_hh{d}"][rows]), scale=s_hh,
                zero_point=0)
            slots[_GATE_SLOTS_LSTM["bias"][k]] = self.b.tensor(
                n(f"bias_{gate}"), (H,), np.int32, data=np.ascontiguousarray(a[f"bias{d}"][rows]).astype(np.int32),
                scale=float(np.float32(s_in) * np.float32(s_ih)), zero_point=0)
        slots[18] = self.b.tensor(n("hidden_state"), (self.B, H), np.int8, variable=True, **q_out)
        slots[19] = self.b.tensor(n("cell_state"), (self.B, H), np.int16, scale=float(qop.attrs[f"cell_scale{d}"]),
                                  zero_point=0, variable=True)
        # TFLite (not TFLM) reads the gate-matmul scales from these; unquantized means its default 2^-12
        inter = [self.b.tensor(n(f"intermediate{k}"), (0,), np.float32) for k in range(4)]
        inter.append(self.b.tensor(n("effective_hidden"), (0,), np.int8, **q_out))
        y = self.b.tensor(n("output"), (self.B, T, H), np.int8, **q_out)
        self.b.op("UNIDIRECTIONAL_SEQUENCE_LSTM", slots, [y], intermediates=inter, time_major=False,
                  cell_clip=0.0, proj_clip=0.0, fused_activation_function="TANH")
        return y

    def gru_direction(self, op, qop, d: int, x: int, x_t: int) -> int:
        """One direction of docs/int8.md's GRU scheme, unrolled: 14 builtin ops per time step."""
        H = op.out_channels
        T, I = self.shape(x_t)
        a = qop.arrays
        inter = qop.attrs[f"intermediates{d}"]
        qx = self.q(x_t)
        qh = self.q(op.output)
        B = self.B
        b = self.b
        n = lambda s: self.name(f"{op.name}/d{d}/{s}")  # noqa: E731
        qi = lambda k: {"scale": float(inter[k][0]), "zero_point": int(inter[k][1])}  # noqa: E731

        def fc_weights(kind: str, k: int, s_act: float):
            rows = slice(k * H, (k + 1) * H)
            w = np.ascontiguousarray(a[f"w_{kind}{d}"][rows])
            s_w = a[f"w_{kind}_scale{d}"][rows].astype(np.float32)
            bias = np.ascontiguousarray(a[f"b_{kind}{d}"][rows]).astype(np.int32)
            gate = "rzn"[k]
            return (b.tensor(n(f"w_{kind}_{gate}"), w.shape, np.int8, data=w, scale=s_w, zero_point=0),
                    b.tensor(n(f"b_{kind}_{gate}"), (H,), np.int32, data=bias, scale=np.float32(s_act) * s_w,
                             zero_point=0))

        w_ih = [fc_weights("ih", k, qx["scale"]) for k in range(3)]
        w_hh = [fc_weights("hh", k, qh["scale"]) for k in range(3)]
        h = b.tensor(n("h0"), (B, H), np.int8, data=np.full((B, H), qh["zero_point"], np.int8), **qh)
        strides = b.const_i32(n("strides"), [1, 1, 1])
        steps = []
        for t in range(T):  # x is already in processing order (reversed for the backward direction)
            xt = b.tensor(n(f"x{t}"), (B, I), np.int8, **qx)
            b.op("STRIDED_SLICE", [x, b.const_i32(n(f"begin{t}"), [0, t, 0]), b.const_i32(n(f"end{t}"), [B, t + 1, I]),
                                   strides], [xt], shrink_axis_mask=2)

            def t_(k, step=t, **q):  # a (B, H) int8 tensor of this step, with qparams q or the calibrated ones
                return b.tensor(n(f"{k}{step}"), (B, H), np.int8, **(q or qi(k)))

            gx = [t_(f"gx_{g}") for g in "rzn"]
            gh = [t_(f"gh_{g}") for g in "rzn"]
            for k in range(3):
                b.op("FULLY_CONNECTED", [xt, *w_ih[k]], [gx[k]])
                b.op("FULLY_CONNECTED", [h, *w_hh[k]], [gh[k]])
            r_pre, z_pre = t_("r_pre"), t_("z_pre")
            b.op("ADD", [gx[0], gh[0]], [r_pre])
            b.op("ADD", [gx[1], gh[1]], [z_pre])
            r = t_("r", scale=1 / 256, zero_point=-128)
            z = t_("z", scale=1 / 256, zero_point=-128)
            b.op("LOGISTIC", [r_pre], [r])
            b.op("LOGISTIC", [z_pre], [z])
            rn, n_pre = t_("rn"), t_("n_pre")
            b.op("MUL", [r, gh[2]], [rn])
            b.op("ADD", [gx[2], rn], [n_pre])
            nn_ = t_("n", scale=1 / 128, zero_point=0)
            b.op("TANH", [n_pre], [nn_])
            dd, zd = t_("d"), t_("zd")
            b.op("SUB", [h, nn_], [dd])
            b.op("MUL", [z, dd], [zd])
            h_new = t_("h", **qh)
            b.op("ADD", [nn_, zd], [h_new])
            steps.append(h_new)
            h = h_new
        seq = b.tensor(n("steps"), (B, T * H), np.int8, **qh)
        self.concat(steps, seq, n)
        y = b.tensor(n("output"), (B, T, H), np.int8, **qh)
        self.reshape(seq, y)
        return y
