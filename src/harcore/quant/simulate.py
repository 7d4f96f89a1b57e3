"""``simulate``: run an int8 graph batch-wise on the C++ runtime (the firmware's ``harcore::rt::invoke``)."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

import numpy as np

from harcore.quant.lower import Program, lower
from harcore.quant.qgraph import QGraph

__all__ = ["simulate", "quantize_input", "program"]


_PROGRAMS: "OrderedDict[bytes, Program]" = OrderedDict()
_PROGRAMS_KEPT = 8


def _fingerprint(g: QGraph) -> bytes:
    """A digest of everything lowering reads, so an edited graph is never run with a stale program."""
    h = hashlib.blake2b(digest_size=20)
    h.update(g.graph.to_json().encode())
    h.update(repr([(q.scale, q.zero_point) if q is not None else None for q in g.qparams]).encode())
    for name in sorted(g.ops):
        qop = g.ops[name]
        h.update(repr((name, qop.act, sorted(qop.attrs.items(), key=lambda kv: kv[0]))).encode())
        for key in sorted(qop.arrays):
            a = np.ascontiguousarray(qop.arrays[key])
            h.update(repr((key, a.dtype.str, a.shape)).encode())
            h.update(memoryview(a).cast("B"))
    return h.digest()


def program(g: QGraph) -> Program:
    """The lowered program of ``g``. Lowered programs are cached by the graph's content (not kept on the graph
    object: it stays deep-copyable, and editing its arrays or qparams gives a new program)."""
    key = _fingerprint(g)
    p = _PROGRAMS.get(key)
    if p is None:
        p = lower(g)
        _PROGRAMS[key] = p
        while len(_PROGRAMS) > _PROGRAMS_KEPT:
            _PROGRAMS.popitem(last=False)
    else:
        _PROGRAMS.move_to_end(key)
    return p


def quantize_input(g: QGraph, x: Any) -> np.ndarray:
    """Float windows (N, *input shape) -> int8 with the graph's input quantization (int8 input passes through)."""
    shape = g.graph.tensors[g.graph.ops[0].output].shape
    a = np.asarray(x)
    if a.shape[1:] != tuple(shape):
        if a.shape == tuple(shape):
            a = a[None]
        else:
            raise ValueError(f"simulate: input must have shape (N, {', '.join(map(str, shape))}), got {a.shape}")
    if a.dtype == np.int8:
        return a
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"simulate: input must be float windows or int8, got dtype {a.dtype}")
    q = g.input_qparams
    # TFLite's QUANTIZE: float32 division, std::round (half away from zero), then the zero point
    v = a.astype(np.float32) / np.float32(q.scale)
    r = np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))
    return np.clip(r.astype(np.int64) + q.zero_point, -128, 127).astype(np.int8)


def simulate(g: QGraph, x: Any, *, dequantize: bool = False, return_intermediates: bool = False, threads: int = 1):
    """Run ``g`` on windows ``x`` (N, C, T) float (quantized with the input qparams) or int8.

    ``threads`` > 1 splits the windows over that many C++ threads (same outputs, bit for bit).

    Returns the int8 outputs (N, *output shape); with ``dequantize`` also the dequantized float outputs, with
    ``return_intermediates`` also a dict op name -> int8 output of that op (N, *its shape), in this order
    as a tuple.
    """
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or not 1 <= threads <= 1024:
        raise ValueError(f"simulate: threads must be an integer in [1, 1024], got {threads!r}")
    p = program(g)
    xq = quantize_input(g, x)
    n = xq.shape[0]
    phys = np.empty((n, p.input_size), np.int8)
    phys[:, p.input_offsets] = xq.reshape(n, -1)
    out, caps = p.core().run(phys, return_intermediates, int(threads))
    out_shape = g.graph.tensors[g.graph.outputs[0]].shape
    y = np.asarray(out).reshape(n, *out_shape)
    res: list[Any] = [y]
    if dequantize:
        q = g.output_qparams
        res.append((y.astype(np.float64) - q.zero_point) * q.scale)
    if return_intermediates:
        writer = {s.output: i for i, s in enumerate(p.steps)}
        inter: dict[str, np.ndarray] = {}
        for op in g.graph.ops:
            b, offs = p.tensor_loc[op.output]
            shape = g.graph.tensors[op.output].shape
            src = phys if b == p.input_buf and b not in writer else np.asarray(caps[writer[b]])
            inter[op.name] = src[:, offs].reshape(n, *shape)
        res.append(inter)
    return res[0] if len(res) == 1 else tuple(res)
