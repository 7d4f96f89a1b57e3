"""A TensorFlow-free writer of TFLite flatbuffers (`.tflite`), the layer under `to_tflite`.

It knows tensors (int8/int16/int32/float32 data, per-tensor or per-channel affine quantization, variables)
and builtin operators with their options, and serializes them with the `flatbuffers` runtime and the
TFLite schema's generated Python code from the `tflite` package (pure Python; no TensorFlow). It does not
know harcore's int8 graph: `tflite_export.to_tflite` maps that graph onto it.

    b = TFLiteBuilder()
    x = b.tensor("x", (1, 1, 128, 9), np.int8, scale=0.05, zero_point=-3)
    w = b.tensor("w", (16, 1, 5, 9), np.int8, data=w_q, scale=w_scales, zero_point=0, axis=0)
    ...
    b.op("CONV_2D", [x, w, bias], [y], padding="SAME", stride_w=1, stride_h=1)
    flatbuffer = b.build(inputs=[x], outputs=[y])

Every mistake (unknown op or option, wrong tensor shape or dtype, bad quantization) is a ValueError naming
the op, tensor or field.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

__all__ = ["TFLiteBuilder", "OPS", "TENSOR_TYPES"]

# numpy dtype -> tflite.TensorType value (schema.fbs)
TENSOR_TYPES: dict[np.dtype, int] = {
    np.dtype(np.float32): 0,
    np.dtype(np.int32): 2,
    np.dtype(np.uint8): 3,
    np.dtype(np.int64): 4,
    np.dtype(np.bool_): 6,
    np.dtype(np.int16): 7,
    np.dtype(np.int8): 9,
}
_INT_RANGE = {np.dtype(np.int8): (-128, 127), np.dtype(np.int16): (-32768, 32767), np.dtype(np.uint8): (0, 255),
              np.dtype(np.int32): (-(2**31), 2**31 - 1)}


@dataclass(frozen=True)
class OpSpec:
    """A builtin operator: its options table (None: no options) and which options it must be given."""

    options: str | None
    required: tuple[str, ...] = ()
    defaults: dict[str, Any] = field(default_factory=dict)
    n_inputs: tuple[int, int] = (1, 1)  # accepted (min, max) number of input slots


_ACT = {"fused_activation_function": "NONE"}
# The operators harcore's int8 graphs lower to. Options are the schema's field names in snake_case;
# defaults are written explicitly so a reader never falls back to a schema default by accident.
OPS: dict[str, OpSpec] = {
    "CONV_2D": OpSpec("Conv2DOptions", ("padding", "stride_w", "stride_h"),
                      {**_ACT, "dilation_w_factor": 1, "dilation_h_factor": 1}, (3, 3)),
    "DEPTHWISE_CONV_2D": OpSpec("DepthwiseConv2DOptions", ("padding", "stride_w", "stride_h", "depth_multiplier"),
                                {**_ACT, "dilation_w_factor": 1, "dilation_h_factor": 1}, (3, 3)),
    "FULLY_CONNECTED": OpSpec("FullyConnectedOptions", (), {**_ACT, "keep_num_dims": False}, (2, 3)),
    "MAX_POOL_2D": OpSpec("Pool2DOptions", ("padding", "stride_w", "stride_h", "filter_width", "filter_height"),
                          dict(_ACT)),
    "AVERAGE_POOL_2D": OpSpec("Pool2DOptions", ("padding", "stride_w", "stride_h", "filter_width", "filter_height"),
                              dict(_ACT)),
    "ADD": OpSpec("AddOptions", (), dict(_ACT), (2, 2)),
    "SUB": OpSpec("SubOptions", (), dict(_ACT), (2, 2)),
    "MUL": OpSpec("MulOptions", (), dict(_ACT), (2, 2)),
    "SOFTMAX": OpSpec("SoftmaxOptions", ("beta",)),
    "RESHAPE": OpSpec("ReshapeOptions", (), {}, (2, 2)),
    "TRANSPOSE": OpSpec("TransposeOptions", (), {}, (2, 2)),
    "CONCATENATION": OpSpec("ConcatenationOptions", ("axis",), dict(_ACT), (1, 64)),
    "STRIDED_SLICE": OpSpec("StridedSliceOptions", (), {"begin_mask": 0, "end_mask": 0, "ellipsis_mask": 0,
                                                        "new_axis_mask": 0, "shrink_axis_mask": 0}, (4, 4)),
    "SUM": OpSpec("ReducerOptions", (), {"keep_dims": False}, (2, 2)),
    "MEAN": OpSpec("ReducerOptions", (), {"keep_dims": False}, (2, 2)),
    "LOGISTIC": OpSpec(None),
    "TANH": OpSpec(None),
    "RELU": OpSpec(None),
    "LEAKY_RELU": OpSpec("LeakyReluOptions", ("alpha",)),
    "RELU6": OpSpec(None),
    "QUANTIZE": OpSpec(None),
    "DEQUANTIZE": OpSpec(None),
    "PAD": OpSpec("PadOptions", (), {}, (2, 2)),
    "REVERSE_V2": OpSpec("ReverseV2Options", (), {}, (2, 2)),
    "GATHER": OpSpec("GatherOptions", ("axis",), {"batch_dims": 0}, (2, 2)),
    "BATCH_MATMUL": OpSpec("BatchMatMulOptions", (), {"adj_x": False, "adj_y": False,
                                                      "asymmetric_quantize_inputs": False}, (2, 2)),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": OpSpec(
        "UnidirectionalSequenceLSTMOptions", ("time_major",),
        {"fused_activation_function": "TANH", "cell_clip": 0.0, "proj_clip": 0.0}, (24, 24)),
}

# option fields whose values may be given by name
_ENUMS = {"padding": "Padding", "fused_activation_function": "ActivationFunctionType",
          "weights_format": "FullyConnectedOptionsWeightsFormat"}


def _schema(name: str):
    """The generated schema module `tflite.<name>` (imported lazily: `import harcore` stays light)."""
    return importlib.import_module(f"tflite.{name}")


def _camel(snake: str) -> str:
    return "".join(p[:1].upper() + p[1:] for p in snake.split("_"))


def _enum_value(kind: str, value: Any, where: str) -> int:
    if isinstance(value, str):
        cls = getattr(_schema(kind), kind)
        if not hasattr(cls, value.upper()):
            names = sorted(k for k in vars(cls) if k.isupper())
            raise ValueError(f"{where}: unknown {kind} {value!r} (one of {', '.join(names)})")
        return int(getattr(cls, value.upper()))
    return int(value)


@dataclass
class _Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    data: bytes | None
    scale: np.ndarray | None
    zero_point: np.ndarray | None
    axis: int
    variable: bool


@dataclass
class _Op:
    name: str
    inputs: list[int]
    outputs: list[int]
    options: dict[str, Any]
    intermediates: list[int]


class TFLiteBuilder:
    """Collects tensors and builtin operators of one subgraph and serializes them as a `.tflite` model."""

    def __init__(self, description: str = "harcore int8 export"):
        self.description = description
        self._tensors: list[_Tensor] = []
        self._ops: list[_Op] = []
        self._names: set[str] = set()

    # ---- tensors ----------------------------------------------------------------------------------------

    def tensor(self, name: str, shape: Sequence[int], dtype: Any, *, data: np.ndarray | None = None,
               scale: float | Sequence[float] | np.ndarray | None = None,
               zero_point: int | Sequence[int] | np.ndarray | None = None, axis: int = 0,
               variable: bool = False) -> int:
        """Add a tensor and return its index.

        `data` makes it a constant (stored little-endian, C order). `scale`/`zero_point` give affine
        quantization: scalars for per-tensor, 1-D arrays of length `shape[axis]` for per-channel (`axis` is
        the schema's quantized_dimension). A scalar zero point is broadcast over per-channel scales.
        """
        where = f"tflite tensor {name!r}"
        if not isinstance(name, str) or not name:
            raise ValueError(f"tflite tensor: name must be a non-empty string, got {name!r}")
        if name in self._names:
            raise ValueError(f"{where}: a tensor of that name already exists")
        try:
            dt = np.dtype(dtype)
        except TypeError as e:
            raise ValueError(f"{where}: unknown dtype {dtype!r}") from e
        if dt not in TENSOR_TYPES:
            raise ValueError(f"{where}: dtype {dt} is not supported ({', '.join(map(str, TENSOR_TYPES))})")
        shape = tuple(int(s) for s in shape)
        if any(s < 0 for s in shape):
            raise ValueError(f"{where}: shape {shape} has a negative dimension")
        raw = None
        if data is not None:
            arr = np.asarray(data)
            if arr.dtype != dt:
                raise ValueError(f"{where}: data has dtype {arr.dtype}, the tensor is {dt}")
            if arr.shape != shape:
                raise ValueError(f"{where}: data has shape {arr.shape}, the tensor is {shape}")
            raw = np.ascontiguousarray(arr, dtype=dt.newbyteorder("<")).tobytes()
            if variable:
                raise ValueError(f"{where}: a variable tensor cannot carry constant data")
        s_arr = zp_arr = None
        if scale is not None or zero_point is not None:
            if scale is None or zero_point is None:
                raise ValueError(f"{where}: quantization needs both scale and zero_point")
            s_arr = np.atleast_1d(np.asarray(scale, dtype=np.float64))
            if s_arr.ndim != 1 or s_arr.size == 0:
                raise ValueError(f"{where}: scale must be a scalar or a 1-D array")
            if not np.all(np.isfinite(s_arr)) or np.any(s_arr <= 0):
                raise ValueError(f"{where}: scale must be positive and finite, got {s_arr.tolist()[:4]}")
            zp_arr = np.atleast_1d(np.asarray(zero_point))
            if zp_arr.ndim != 1 or not np.issubdtype(zp_arr.dtype, np.integer):
                raise ValueError(f"{where}: zero_point must be an integer scalar or a 1-D integer array")
            if zp_arr.size == 1 and s_arr.size > 1:
                zp_arr = np.full(s_arr.size, int(zp_arr[0]))
            if zp_arr.size != s_arr.size:
                raise ValueError(f"{where}: {s_arr.size} scales but {zp_arr.size} zero points")
            lo, hi = _INT_RANGE.get(dt, (-(2**63), 2**63 - 1))
            if np.any(zp_arr < lo) or np.any(zp_arr > hi):
                raise ValueError(f"{where}: zero_point {zp_arr.tolist()[:4]} out of range [{lo}, {hi}] for {dt}")
            if s_arr.size > 1:
                if not 0 <= axis < len(shape):
                    raise ValueError(f"{where}: quantized axis {axis} is outside shape {shape}")
                if shape[axis] != s_arr.size:
                    raise ValueError(f"{where}: {s_arr.size} per-channel scales for dimension {axis} of "
                                     f"size {shape[axis]}")
        self._names.add(name)
        self._tensors.append(_Tensor(name, shape, dt, raw, s_arr, zp_arr.astype(np.int64) if zp_arr is not None
                                     else None, int(axis), bool(variable)))
        return len(self._tensors) - 1

    def const_i32(self, name: str, values: Sequence[int]) -> int:
        """A 1-D int32 constant (shapes, permutations, axes, slice bounds)."""
        v = np.asarray(values, dtype=np.int64)
        if v.ndim != 1 or np.any(v < -(2**31)) or np.any(v >= 2**31):
            raise ValueError(f"tflite tensor {name!r}: int32 constant must be a 1-D list in int32 range")
        return self.tensor(name, (v.size,), np.int32, data=v.astype(np.int32))

    def shape(self, index: int) -> tuple[int, ...]:
        return self._check_index(index, "shape").shape

    def quant(self, index: int) -> dict[str, Any]:
        """The tensor's quantization as `tensor()` keywords (empty when it has none)."""
        t = self._check_index(index, "quant")
        if t.scale is None:
            return {}
        if t.scale.size == 1:
            return {"scale": float(t.scale[0]), "zero_point": int(t.zero_point[0])}
        return {"scale": t.scale.copy(), "zero_point": t.zero_point.copy(), "axis": t.axis}

    def _check_index(self, index: int, where: str) -> _Tensor:
        if not isinstance(index, (int, np.integer)) or not 0 <= int(index) < len(self._tensors):
            raise ValueError(f"{where}: no tensor with index {index!r} ({len(self._tensors)} tensors)")
        return self._tensors[int(index)]

    # ---- operators --------------------------------------------------------------------------------------

    def op(self, name: str, inputs: Sequence[int | None], outputs: Sequence[int], *,
           intermediates: Sequence[int] = (), **options: Any) -> None:
        """Append a builtin operator. `None` in `inputs` is an absent optional input (-1 in the file);
        `intermediates` are the operator's intermediate tensors (TFLite's integer LSTM reads its gate
        scales from them; TFLM ignores them)."""
        spec = OPS.get(name)
        if spec is None:
            raise ValueError(f"tflite op: unknown or unsupported builtin {name!r} (supported: {', '.join(OPS)})")
        lo, hi = spec.n_inputs
        if not lo <= len(inputs) <= hi:
            raise ValueError(f"tflite op {name}: takes {lo}..{hi} inputs, got {len(inputs)}")
        if len(outputs) < 1:
            raise ValueError(f"tflite op {name}: needs an output tensor")
        ins = []
        for k, i in enumerate(inputs):
            if i is None or (isinstance(i, (int, np.integer)) and int(i) == -1):
                ins.append(-1)
            else:
                self._check_index(i, f"tflite op {name} input {k}")
                ins.append(int(i))
        for k, i in enumerate(intermediates):
            self._check_index(i, f"tflite op {name} intermediate {k}")
        for k, o in enumerate(outputs):
            t = self._check_index(o, f"tflite op {name} output {k}")
            if t.data is not None:
                raise ValueError(f"tflite op {name}: output {k} ({t.name!r}) is a constant")
        if spec.options is None:
            if options:
                raise ValueError(f"tflite op {name}: takes no options, got {sorted(options)}")
            opts: dict[str, Any] = {}
        else:
            missing = [f for f in spec.required if f not in options]
            if missing:
                raise ValueError(f"tflite op {name}: missing option(s) {', '.join(missing)}")
            mod = _schema(spec.options)
            for key in options:
                if not hasattr(mod, f"{spec.options}Add{_camel(key)}"):
                    raise ValueError(f"tflite op {name}: unknown option {key!r} for {spec.options}")
            opts = {**spec.defaults, **options}
            for key, value in opts.items():
                if key in _ENUMS:
                    opts[key] = _enum_value(_ENUMS[key], value, f"tflite op {name} option {key}")
                elif isinstance(value, (bool, np.bool_)):
                    opts[key] = bool(value)
                elif isinstance(value, (int, np.integer)):
                    opts[key] = int(value)
                elif isinstance(value, (float, np.floating)):
                    if not math.isfinite(value):
                        raise ValueError(f"tflite op {name}: option {key} must be finite, got {value}")
                    opts[key] = float(value)
                else:
                    raise ValueError(f"tflite op {name}: option {key} must be a number, bool or enum name, "
                                     f"got {value!r}")
        self._ops.append(_Op(name, ins, [int(o) for o in outputs], opts, [int(i) for i in intermediates]))

    # ---- serialization ----------------------------------------------------------------------------------

    def build(self, inputs: Sequence[int], outputs: Sequence[int]) -> bytes:
        """Serialize the model with the given subgraph inputs and outputs; returns the flatbuffer bytes."""
        import flatbuffers

        if not self._ops:
            raise ValueError("tflite model: has no operators")
        for role, idx in (("input", inputs), ("output", outputs)):
            if not idx:
                raise ValueError(f"tflite model: needs at least one {role}")
            for k, i in enumerate(idx):
                self._check_index(i, f"tflite model {role} {k}")
        produced = {o for op in self._ops for o in op.outputs}
        available = set(int(i) for i in inputs) | {k for k, t in enumerate(self._tensors)
                                                 if t.data is not None or t.variable}
        for n, op in enumerate(self._ops):  # ops must come in execution order
            for i in op.inputs:
                if i >= 0 and i not in available:
                    raise ValueError(f"tflite op {n} ({op.name}): input {self._tensors[i].name!r} is neither a model "
                                     f"input, a constant, a variable nor produced by an earlier op")
            available.update(op.outputs)
        for i in outputs:
            if int(i) not in produced and int(i) not in set(int(v) for v in inputs):
                raise ValueError(f"tflite model: output {self._tensors[int(i)].name!r} is produced by no op")

        schema = {n: _schema(n) for n in ("Model", "SubGraph", "Tensor", "Operator", "OperatorCode", "Buffer",
                                          "QuantizationParameters", "BuiltinOperator", "BuiltinOptions")}
        b = flatbuffers.Builder(4096)

        def ivec(start, values, prepend="PrependInt32"):
            start(b, len(values))
            for v in reversed(list(values)):
                getattr(b, prepend)(v)
            return b.EndVector()

        # buffers: 0 is the empty sentinel; each constant gets its own, 16-byte aligned like TF's converter
        buffer_of: dict[int, int] = {}
        buffer_offsets = []
        Buf = schema["Buffer"]
        Buf.BufferStart(b)
        buffer_offsets.append(Buf.BufferEnd(b))
        for k, t in enumerate(self._tensors):
            if t.data is None:
                continue
            b.StartVector(1, len(t.data), 16)
            b.head -= len(t.data)
            b.Bytes[b.head:b.head + len(t.data)] = t.data
            data = b.EndVector()
            Buf.BufferStart(b)
            Buf.BufferAddData(b, data)
            buffer_of[k] = len(buffer_offsets)
            buffer_offsets.append(Buf.BufferEnd(b))

        T, Q = schema["Tensor"], schema["QuantizationParameters"]
        tensor_offsets = []
        for k, t in enumerate(self._tensors):
            name = b.CreateString(t.name)
            shape = ivec(T.TensorStartShapeVector, t.shape)
            quant = None
            if t.scale is not None:
                scales = ivec(Q.QuantizationParametersStartScaleVector, [float(s) for s in t.scale], "PrependFloat32")
                zps = ivec(Q.QuantizationParametersStartZeroPointVector, [int(z) for z in t.zero_point],
                           "PrependInt64")
                Q.QuantizationParametersStart(b)
                Q.QuantizationParametersAddScale(b, scales)
                Q.QuantizationParametersAddZeroPoint(b, zps)
                Q.QuantizationParametersAddQuantizedDimension(b, t.axis if t.scale.size > 1 else 0)
                quant = Q.QuantizationParametersEnd(b)
            T.TensorStart(b)
            T.TensorAddShape(b, shape)
            T.TensorAddType(b, TENSOR_TYPES[t.dtype])
            T.TensorAddBuffer(b, buffer_of.get(k, 0))
            T.TensorAddName(b, name)
            if quant is not None:
                T.TensorAddQuantization(b, quant)
            if t.variable:
                T.TensorAddIsVariable(b, True)
            tensor_offsets.append(T.TensorEnd(b))

        BO = schema["BuiltinOperator"].BuiltinOperator
        codes: list[str] = []
        Op = schema["Operator"]
        op_offsets = []
        for op in self._ops:
            if op.name not in codes:
                codes.append(op.name)
            spec = OPS[op.name]
            opt_off = None
            if spec.options is not None:
                mod = _schema(spec.options)
                getattr(mod, f"{spec.options}Start")(b)
                for key, value in op.options.items():
                    getattr(mod, f"{spec.options}Add{_camel(key)}")(b, value)
                opt_off = getattr(mod, f"{spec.options}End")(b)
            ins = ivec(Op.OperatorStartInputsVector, op.inputs)
            outs = ivec(Op.OperatorStartOutputsVector, op.outputs)
            inter = ivec(Op.OperatorStartIntermediatesVector, op.intermediates) if op.intermediates else None
            Op.OperatorStart(b)
            Op.OperatorAddOpcodeIndex(b, codes.index(op.name))
            Op.OperatorAddInputs(b, ins)
            Op.OperatorAddOutputs(b, outs)
            if inter is not None:
                Op.OperatorAddIntermediates(b, inter)
            if opt_off is not None:
                Op.OperatorAddBuiltinOptionsType(b, getattr(schema["BuiltinOptions"].BuiltinOptions, spec.options))
                Op.OperatorAddBuiltinOptions(b, opt_off)
            op_offsets.append(Op.OperatorEnd(b))

        OC = schema["OperatorCode"]
        code_offsets = []
        for name in codes:
            code = int(getattr(BO, name))
            OC.OperatorCodeStart(b)
            OC.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))  # PLACEHOLDER_FOR_GREATER_OP_CODES
            OC.OperatorCodeAddBuiltinCode(b, code)
            OC.OperatorCodeAddVersion(b, 1)
            code_offsets.append(OC.OperatorCodeEnd(b))

        def offvec(start, offsets):
            start(b, len(offsets))
            for o in reversed(offsets):
                b.PrependUOffsetTRelative(o)
            return b.EndVector()

        SG = schema["SubGraph"]
        sg_tensors = offvec(SG.SubGraphStartTensorsVector, tensor_offsets)
        sg_inputs = ivec(SG.SubGraphStartInputsVector, [int(i) for i in inputs])
        sg_outputs = ivec(SG.SubGraphStartOutputsVector, [int(i) for i in outputs])
        sg_ops = offvec(SG.SubGraphStartOperatorsVector, op_offsets)
        sg_name = b.CreateString("main")
        SG.SubGraphStart(b)
        SG.SubGraphAddTensors(b, sg_tensors)
        SG.SubGraphAddInputs(b, sg_inputs)
        SG.SubGraphAddOutputs(b, sg_outputs)
        SG.SubGraphAddOperators(b, sg_ops)
        SG.SubGraphAddName(b, sg_name)
        subgraph = SG.SubGraphEnd(b)

        M = schema["Model"]
        m_codes = offvec(M.ModelStartOperatorCodesVector, code_offsets)
        m_subgraphs = offvec(M.ModelStartSubgraphsVector, [subgraph])
        m_buffers = offvec(M.ModelStartBuffersVector, buffer_offsets)
        desc = b.CreateString(self.description)
        M.ModelStart(b)
        M.ModelAddVersion(b, 3)
        M.ModelAddOperatorCodes(b, m_codes)
        M.ModelAddSubgraphs(b, m_subgraphs)
        M.ModelAddDescription(b, desc)
        M.ModelAddBuffers(b, m_buffers)
        b.Finish(M.ModelEnd(b), file_identifier=b"TFL3")
        return bytes(b.Output())
