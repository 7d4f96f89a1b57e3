"""nn.Module leaves -> graph ops: conv, linear, batchnorm, activations, softmax, pooling (also the functional
pools' emission), flatten, layer norm and LSTM/GRU."""

from __future__ import annotations

from typing import Any

import torch.fx as fx
import torch.nn as nn

from ._common import _RnnOut, _T, _conv_pad, _pad_pair, _pair


class ModuleMapping:
    """Mapping of ``call_module`` nodes (a mixin of the tracer's ``_Mapper``)."""

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
