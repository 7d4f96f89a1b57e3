"""``simulate``: run an int8 graph batch-wise on the C++ runtime (the firmware's ``harcore::rt::invoke``)."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any

import numpy as np

from harcore.errors import QuantError
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
    """Float windows (N, *input shape) -> int8 with the graph's input quantization (int8 input passes through).

    Values beyond the int8 range saturate at the near end, as TFLite's QUANTIZE does: +inf and huge values give
    127, -inf and huge negative ones -128. NaN has no int8 value: it raises :class:`QuantError` naming the window.
    A graph whose ``meta["input_channels"]`` lists kept sensors (a searched model with pruned sensors, see
    ``docs/nas.md``) also takes windows of all ``meta["source_in_channels"]`` sensors and selects the kept ones.
    """
    shape = tuple(g.graph.tensors[g.graph.ops[0].output].shape)
    a = np.asarray(x)
    kept, full = g.meta.get("input_channels"), g.meta.get("source_in_channels")
    if (kept is not None and full is not None and a.ndim == len(shape) + 1 and a.shape[1] == int(full)
            and a.shape[2:] == shape[1:] and int(full) != shape[0]):
        a = a[:, list(kept)]
    if a.shape[1:] != shape:
        if a.shape == shape:
            a = a[None]
        else:
            hint = ""
            if len(shape) == 2 and a.ndim == 3 and a.shape[1:] == shape[::-1] and shape[0] != shape[1]:
                hint = ("; it looks channels-last (N, T, C); harcore takes (N, C, T): pass x.transpose(0, 2, 1)")
            raise QuantError(f"simulate: input must have shape (N, {', '.join(map(str, shape))}), got {a.shape}{hint}")
    if a.dtype == np.int8:
        return a
    if not np.issubdtype(a.dtype, np.floating):
        raise QuantError(f"simulate: input must be float windows or int8, got dtype {a.dtype}")
    nan = np.isnan(a)
    if nan.any():
        n_bad = nan.reshape(a.shape[0], -1).any(axis=1)
        where = tuple(int(v) for v in np.argwhere(nan)[0])
        raise QuantError(f"simulate: input window {where[0]} holds NaN (first at index {list(where)}; "
                         f"{int(n_bad.sum())} window(s) with NaN); int8 has no NaN: clean or drop those windows")
    q = g.input_qparams
    # TFLite's QUANTIZE: float32 division, std::round (half away from zero), then the zero point. Clipping in
    # float before the integer cast saturates +-inf and huge values at the right end (a cast of inf or of a
    # value beyond int64 is undefined and lands anywhere).
    with np.errstate(over="ignore"):
        v = a.astype(np.float32) / np.float32(q.scale)
        r = np.sign(v) * np.floor(np.abs(v) + np.float32(0.5))
        r = np.clip(r.astype(np.float64) + q.zero_point, -128.0, 127.0)
    return r.astype(np.int8)


def simulate(g: QGraph, x: Any, *, dequantize: bool = False, return_intermediates: bool = False, threads: int = 1):
    """Run ``g`` on windows ``x`` (N, C, T) float (quantized with the input qparams) or int8.

    ``threads`` > 1 splits the windows over that many C++ threads (same outputs, bit for bit). An empty batch
    (N = 0) gives empty results of the right shapes (``(0, *output shape)``), as numpy and TFLite batch APIs do.
    Input quantization (saturation, NaN rejected) is :func:`quantize_input`'s.

    Returns the int8 outputs (N, *output shape); with ``dequantize`` also the dequantized float outputs, with
    ``return_intermediates`` also a dict op name -> int8 output of that op (N, *its shape), in this order
    as a tuple.
    """
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or not 1 <= threads <= 1024:
        raise ValueError(f"simulate: threads must be an integer in [1, 1024], got {threads!r}")
    p = program(g)
    xq = quantize_input(g, x)
    n = xq.shape[0]
    if n == 0:
        return _empty(g, p, dequantize, return_intermediates)
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


def _empty(g: QGraph, p: Program, dequantize: bool, return_intermediates: bool):
    """simulate's results for zero windows, shaped as for N windows (the C++ runtime is not called)."""
    shape = g.graph.tensors[g.graph.outputs[0]].shape
    res: list[Any] = [np.empty((0, *shape), np.int8)]
    if dequantize:
        res.append(np.empty((0, *shape), np.float64))
    if return_intermediates:
        res.append({op.name: np.empty((0, *g.graph.tensors[op.output].shape), np.int8) for op in g.graph.ops})
    return res[0] if len(res) == 1 else tuple(res)


def evaluate(g: QGraph, x: Any, y: Any, num_classes: int, *, class_names: Any = None, threads: int = 1):
    """Classification metrics (``harcore.train.Metrics``) of the int8 model on windows ``x`` (N, C, T) with
    labels ``y``: :func:`simulate` on the C++ kernels, each window's class the argmax of its int8 outputs
    (dequantizing is increasing, so it would pick the same class)."""
    from harcore.train import metrics_from_predictions

    labels = np.asarray(y)
    out = np.asarray(simulate(g, x, threads=threads))
    return metrics_from_predictions(labels, out.reshape(len(labels), -1).argmax(1), num_classes,
                                    class_names=class_names)


def ptq_metrics(model: Any, calibration_x: Any, x: Any, y: Any, num_classes: int, *, threads: int = 1):
    """The int8 figure of a trained float ``model`` as a table row needs it: PTQ calibrated on ``calibration_x``
    (:func:`harcore.quant.quantize`), then :func:`evaluate` on ``(x, y)``. Returns ``(metrics, None)``, or
    ``(None, "ErrorType: reason")`` when the int8 path does not cover the model (any
    :class:`~harcore.errors.HarcoreError`): the caller keeps its float figures and records the reason, so one
    unsupported model never loses a row of a study."""
    from harcore.errors import HarcoreError
    from harcore.quant.ptq import quantize

    try:
        g = quantize(model.eval(), calibration_x)
        return evaluate(g, x, y, num_classes, threads=threads), None
    except HarcoreError as e:
        return None, f"{type(e).__name__}: {e}"
