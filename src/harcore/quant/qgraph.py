"""The int8 graph: harcore's op graph after BN folding and activation fusion, annotated with int8 parameters.

There is no second graph format: ``QGraph.graph`` is a plain :class:`harcore.graph.Graph` (BatchNorm ops
folded away, ReLU/ReLU6 fused into their producer), and everything int8 hangs off it by tensor id or op
name. The layout of every array is documented in ``docs/int8.md`` (the tflite exporter and the lowering
read it); in short, weights keep torch's layout:

* ``conv``:   ``weight`` int8 (C_out, C_in/groups, KH, KW), ``weight_scale`` float32 (C_out,), ``bias`` int32 (C_out,)
* ``linear``: ``weight`` int8 (out, in), ``weight_scale`` float32 (out,), ``bias`` int32 (out,)
* ``rnn``:    per direction ``d`` (0 forward, 1 backward): ``w_ih{d}``, ``w_hh{d}``, their ``*_scale{d}``, biases
              (see docs/int8.md for the LSTM and GRU schemes)
* ``mul`` by a parameter (one input): ``param`` int8 (param_shape), ``param_scale`` float32 (1,) (symmetric)

A BatchNorm that cannot be folded is a depthwise 1x1 ``conv`` (groups = C) in this graph.

Weights are symmetric (zero point 0, values in [-127, 127]); activations asymmetric per tensor.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harcore.graph.ir import Graph

__all__ = ["QParams", "QOp", "QGraph", "load", "FORMAT", "VERSION", "FUSED_ACTS", "SUPPORTED_KINDS", "ACTIVATIONS"]

FORMAT = "harcore-int8-graph"
VERSION = 1
FUSED_ACTS = ("none", "relu", "relu6")
# op kinds the int8 path executes (after folding/fusion); anything else is a ValueError naming the op
SUPPORTED_KINDS = ("input", "conv", "linear", "activation", "pool", "add", "mul", "reshape", "transpose", "slice",
                   "rnn", "softmax", "mean", "matmul", "concat", "gather")
# ops whose output keeps its input's quantization exactly (TFLite's MAX/AVERAGE_POOL_2D, RESHAPE, TRANSPOSE,
# STRIDED_SLICE, GATHER and CONCATENATION: TFLM's int8 kernels require equal qparams; PTQ gives a concat's inputs
# the output's, except a fixed softmax / tanh / sigmoid output, which the lowering requantizes first)
TIED_KINDS = ("pool", "reshape", "transpose", "slice", "gather", "concat")
# standalone activations: relu / relu6 requantize and clamp; tanh / sigmoid are TFLite's TANH / LOGISTIC
ACTIVATIONS = ("relu", "relu6", "identity", "tanh", "sigmoid", "leaky_relu")  # leaky_relu: attr 'alpha' (TFLM's LEAKY_RELU)

# fixed output quantization of int8 ops whose output range TFLite fixes
SOFTMAX_QPARAMS = (1.0 / 256.0, -128)
LOGISTIC_QPARAMS = (1.0 / 256.0, -128)
TANH_QPARAMS = (1.0 / 128.0, 0)


@dataclass(frozen=True)
class QParams:
    """Per-tensor affine int8 quantization: ``real = scale * (q - zero_point)``."""

    scale: float
    zero_point: int

    def check(self, where: str) -> None:
        if not (isinstance(self.scale, float) and math.isfinite(self.scale) and self.scale > 0):
            raise ValueError(f"{where}: field 'scale' must be a positive finite float, got {self.scale!r}")
        if not (isinstance(self.zero_point, int) and -128 <= self.zero_point <= 127):
            raise ValueError(f"{where}: field 'zero_point' must be an int in [-128, 127], got {self.zero_point!r}")


@dataclass
class QOp:
    """int8 annotation of one op: fused activation, constant arrays, JSON scalars (e.g. RNN intermediates)."""

    act: str = "none"
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)


# expected arrays: name -> (dtype, shape function of the op) for the kinds with constants
def _rnn_arrays(op) -> dict[str, tuple[str, tuple[int, ...]]]:
    gates = 4 if op.cell == "lstm" else 3
    h, i = op.out_channels, op.in_channels
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    for d in range(2 if op.bidirectional else 1):
        out[f"w_ih{d}"] = ("int8", (gates * h, i))
        out[f"w_hh{d}"] = ("int8", (gates * h, h))
        if op.cell == "lstm":
            out[f"w_ih_scale{d}"] = ("float32", (4,))
            out[f"w_hh_scale{d}"] = ("float32", (4,))
            out[f"bias{d}"] = ("int32", (4 * h,))
        else:
            out[f"w_ih_scale{d}"] = ("float32", (3 * h,))
            out[f"w_hh_scale{d}"] = ("float32", (3 * h,))
            out[f"b_ih{d}"] = ("int32", (3 * h,))
            out[f"b_hh{d}"] = ("int32", (3 * h,))
    return out


def expected_arrays(op) -> dict[str, tuple[str, tuple[int, ...]]]:
    """The constant arrays an op of the int8 graph must carry: name -> (dtype, shape)."""
    if op.kind == "conv":
        kh, kw = op.kernel
        co = op.out_channels
        return {"weight": ("int8", (co, op.in_channels // op.groups, kh, kw)), "weight_scale": ("float32", (co,)),
                "bias": ("int32", (co,))}
    if op.kind == "linear":
        return {"weight": ("int8", (op.out_channels, op.in_channels)), "weight_scale": ("float32", (op.out_channels,)),
                "bias": ("int32", (op.out_channels,))}
    if op.kind == "rnn":
        return _rnn_arrays(op)
    if op.kind in ("mul", "add") and len(op.inputs) == 1:  # by a parameter: one symmetric scale
        return {"param": ("int8", tuple(op.param_shape)), "param_scale": ("float32", (1,))}
    return {}


GRU_INTERMEDIATES = ("gx_r", "gx_z", "gx_n", "gh_r", "gh_z", "gh_n", "r_pre", "z_pre", "rn", "n_pre", "d", "zd")


class QGraph:
    """The int8 graph. ``qparams[t]`` quantizes tensor ``t``; ``ops[name]`` annotates op ``name``."""

    def __init__(self, graph: Graph, qparams: list[QParams], ops: dict[str, QOp], meta: dict[str, Any] | None = None):
        self.graph = graph
        self.qparams = qparams
        self.ops = ops
        self.meta = dict(meta or {})

    # -- convenience ----------------------------------------------------------------------------
    @property
    def input_qparams(self) -> QParams:
        return self.qparams[self.graph.ops[0].output]

    @property
    def output_qparams(self) -> QParams:
        return self.qparams[self.graph.outputs[0]]

    def op(self, name: str):
        for o in self.graph.ops:
            if o.name == name:
                return o
        raise KeyError(f"no op named {name!r}")

    # -- checks ---------------------------------------------------------------------------------
    def validate(self, where: str = "int8 graph") -> None:
        """Raise ``ValueError`` naming ``where`` (e.g. the file), the op/tensor and the field at fault."""
        g = self.graph
        try:
            g.validate()
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        if len(self.qparams) != len(g.tensors):
            raise ValueError(f"{where}: field 'qparams' has {len(self.qparams)} entries for {len(g.tensors)} tensors")
        if len(g.outputs) != 1:
            raise ValueError(f"{where}: the int8 path supports exactly one graph output, got {len(g.outputs)}")
        if not g.ops or g.ops[0].kind != "input" or sum(o.kind == "input" for o in g.ops) != 1:
            raise ValueError(f"{where}: the int8 path needs exactly one input op, first")
        for tid, q in enumerate(self.qparams):
            if not isinstance(q, QParams):
                raise ValueError(f"{where}: tensor '{g.tensors[tid].name}': field 'qparams' is missing")
            q.check(f"{where}: tensor '{g.tensors[tid].name}'")
        names = {o.name for o in g.ops}
        for name in self.ops:
            if name not in names:
                raise ValueError(f"{where}: field 'ops' annotates unknown op '{name}'")
        for op in g.ops:
            w = f"{where}: op '{op.name}' ({op.kind})"
            if op.kind not in SUPPORTED_KINDS:
                raise ValueError(f"{w}: kind '{op.kind}' is not supported by the int8 path")
            if op.kind == "activation" and op.act not in ACTIVATIONS:
                raise ValueError(f"{w}: activation '{op.act}' is not supported by the int8 path")
            qop = self.ops.get(op.name, QOp())
            if op.kind == "activation" and op.act == "leaky_relu":
                a = qop.attrs.get("alpha")
                if not (isinstance(a, float) and math.isfinite(a) and a >= 0):
                    raise ValueError(f"{w}: attr 'alpha' (the negative slope) must be a finite float >= 0, got {a!r}")
            if qop.act not in FUSED_ACTS:
                raise ValueError(f"{w}: field 'act' must be one of {FUSED_ACTS}, got {qop.act!r}")
            want = expected_arrays(op)
            for aname, (dtype, shape) in want.items():
                a = qop.arrays.get(aname)
                if a is None:
                    raise ValueError(f"{w}: array '{aname}' is missing")
                if a.dtype != np.dtype(dtype):
                    raise ValueError(f"{w}: array '{aname}' must have dtype {dtype}, got {a.dtype}")
                if tuple(a.shape) != shape:
                    raise ValueError(f"{w}: array '{aname}' must have shape {shape}, got {tuple(a.shape)}")
                if dtype == "int8" and a.size and int(a.min()) < -127:
                    raise ValueError(f"{w}: array '{aname}' holds -128; symmetric int8 weights are in [-127, 127]")
                if dtype == "float32" and not (np.all(np.isfinite(a)) and np.all(a > 0)):
                    raise ValueError(f"{w}: array '{aname}' (scales) must be positive and finite")
            extra = set(qop.arrays) - set(want)
            if extra:
                raise ValueError(f"{w}: unexpected array(s) {sorted(extra)}")
            if op.kind == "rnn":
                self._check_rnn_attrs(op, qop, w)
            fixed = {"softmax": SOFTMAX_QPARAMS}.get(op.kind)
            if op.kind == "activation":
                fixed = {"tanh": TANH_QPARAMS, "sigmoid": LOGISTIC_QPARAMS}.get(op.act)
            if fixed is not None:
                q = self.qparams[op.output]
                if (q.scale, q.zero_point) != (float(np.float32(fixed[0])), fixed[1]):
                    raise ValueError(f"{w}: output quantization must be scale {fixed[0]}, zero point {fixed[1]}")
            # a concat requantizes an input of another quantization (TFLite's QUANTIZE in front of CONCATENATION)
            if op.kind in TIED_KINDS and op.kind != "concat" and self.qparams[op.output] != self.qparams[op.inputs[0]]:
                raise ValueError(f"{w}: output quantization must equal the input's (a {op.kind} does not requantize)")

    def _check_rnn_attrs(self, op, qop: QOp, w: str) -> None:
        for d in range(2 if op.bidirectional else 1):
            if op.cell == "lstm":
                cs = qop.attrs.get(f"cell_scale{d}")
                if not (isinstance(cs, float) and cs > 0 and math.log2(cs) == round(math.log2(cs))):
                    raise ValueError(f"{w}: attr 'cell_scale{d}' must be a positive power of two, got {cs!r}")
            else:
                inter = qop.attrs.get(f"intermediates{d}")
                if not isinstance(inter, dict) or set(inter) != set(GRU_INTERMEDIATES):
                    raise ValueError(f"{w}: attr 'intermediates{d}' must map {list(GRU_INTERMEDIATES)} to "
                                     "[scale, zero_point]")
                for k, v in inter.items():
                    if not (isinstance(v, (list, tuple)) and len(v) == 2):
                        raise ValueError(f"{w}: attr 'intermediates{d}.{k}' must be [scale, zero_point]")
                    QParams(v[0], v[1]).check(f"{w}: attr 'intermediates{d}.{k}'")

    # -- serialization --------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "graph": self.graph.to_dict(),
            "qparams": [[q.scale, q.zero_point] for q in self.qparams],
            "ops": {n: {"act": q.act, "attrs": q.attrs, "arrays": sorted(q.arrays)} for n, q in self.ops.items()},
            "meta": self.meta,
        }

    def save(self, path: str | Path) -> None:
        """Write one zip file: ``qgraph.json`` plus one ``.npy`` per constant array."""
        self.validate()
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
            z.writestr("qgraph.json", json.dumps(self.to_json(), indent=1))
            for name, q in self.ops.items():
                for aname, a in q.arrays.items():
                    buf = io.BytesIO()
                    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
                    z.writestr(f"arrays/{name}/{aname}.npy", buf.getvalue())

    def __repr__(self) -> str:
        return (f"QGraph({len(self.graph.ops)} ops, input {self.input_qparams}, output {self.output_qparams})")


def load(path: str | Path) -> QGraph:
    """Read a file written by :meth:`QGraph.save`; any defect is a ``ValueError`` naming the file and field."""
    where = f"int8 graph file '{path}'"
    try:
        z = zipfile.ZipFile(path, "r")
    except FileNotFoundError:
        raise
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ValueError(f"{where}: not a readable harcore int8 graph (truncated or not a zip file: {e})") from None
    with z:
        try:
            d = json.loads(z.read("qgraph.json").decode("utf-8"))
        except KeyError:
            raise ValueError(f"{where}: entry 'qgraph.json' is missing") from None
        except (zipfile.BadZipFile, EOFError, OSError, UnicodeDecodeError, json.JSONDecodeError, Exception) as e:
            raise ValueError(f"{where}: entry 'qgraph.json' is unreadable ({type(e).__name__}: {e})") from None
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise ValueError(f"{where}: field 'format' is {d.get('format') if isinstance(d, dict) else None!r}, "
                             f"expected {FORMAT!r}")
        if d.get("version") != VERSION:
            raise ValueError(f"{where}: field 'version' is {d.get('version')!r}; this harcore reads version {VERSION}")
        try:
            graph = Graph.from_dict(d["graph"])
            qparams = []
            for i, q in enumerate(d["qparams"]):
                if not (isinstance(q, list) and len(q) == 2):
                    raise ValueError(f"field 'qparams[{i}]' must be [scale, zero_point]")
                qparams.append(QParams(float(q[0]) if isinstance(q[0], (int, float)) else q[0], q[1]))
            ops: dict[str, QOp] = {}
            for name, o in d["ops"].items():
                arrays = {}
                for aname in o["arrays"]:
                    entry = f"arrays/{name}/{aname}.npy"
                    try:
                        raw = z.read(entry)
                    except KeyError:
                        raise ValueError(f"entry '{entry}' is missing") from None
                    arrays[aname] = np.load(io.BytesIO(raw), allow_pickle=False)
                ops[name] = QOp(act=o["act"], arrays=arrays, attrs=dict(o.get("attrs", {})))
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
        except (KeyError, TypeError, AttributeError) as e:
            raise ValueError(f"{where}: malformed content ({type(e).__name__}: {e})") from None
        except (zipfile.BadZipFile, EOFError, OSError) as e:
            raise ValueError(f"{where}: truncated or corrupt ({type(e).__name__}: {e})") from None
    g = QGraph(graph, qparams, ops, d.get("meta", {}))
    g.validate(where)
    return g
