"""``Program.emit_cpp``: one self-contained C++ source defining a constant ``harcore::rt::Model``.

The file includes ``runtime/harcore_runtime.hpp`` (path relative to src/cpp), holds every weight as a
``const`` array (flash), and uses constant initialization only (aggregates of literals and addresses), so
there are no static constructors. It also defines ``<symbol>_arena_size``, ``_input_size``,
``_output_size`` and the input/output scale and zero point for the firmware harness.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

__all__ = ["emit_cpp"]

_DIMS = ["n", "h", "w", "c"]
_TILE = ["w", "h"]
_ACT = ["min", "max"]
_ADD = ["input1_offset", "input1_mult", "input1_shift", "input2_offset", "input2_mult", "input2_shift", "left_shift",
        "output_offset", "output_mult", "output_shift"]
_MUL = ["input1_offset", "input2_offset", "output_offset", "output_mult", "output_shift"]
_LUT = ["input_zero_point", "input_range_radius", "input_multiplier", "input_left_shift"]
_GEO = [("stride", _TILE), ("padding", _TILE), ("dilation", _TILE), ("activation", _ACT)]
_GATE = ["input_multiplier", "input_shift", "input_weights", "input_effective_bias", "hidden_multiplier",
         "hidden_shift", "hidden_weights", "hidden_effective_bias", "activation_type"]
_LSTM = ["time_major", "batch_size", "time_steps", "input_size", "hidden_size", "input_offset",
         "forget_to_cell_multiplier", "forget_to_cell_shift", "input_to_cell_multiplier", "input_to_cell_shift",
         "cell_clip", "cell_scale_power", "output_multiplier", "output_shift", "output_offset",
         ("input_gate", _GATE), ("forget_gate", _GATE), ("cell_gate", _GATE), ("output_gate", _GATE)]
_GRUFC = ["weights", "bias", "multiplier", "shift", "output_offset"]
_GRU = ["time_steps", "input_size", "hidden_size", "reverse", "output_stride", "input_offset", "hidden_zero_point",
        ("x_fc", [_GRUFC] * 3), ("h_fc", [_GRUFC] * 3), ("add_r", _ADD), ("add_z", _ADD), ("sig_r", _LUT),
        ("sig_z", _LUT), ("mul_rn", _MUL), ("add_n", _ADD), ("tanh_n", _LUT), ("sub_d", _ADD), ("mul_zd", _MUL),
        ("add_h", _ADD)]
_PER_CHANNEL = ["filter", "bias", "multiplier", "shift"]

# field order of each *Args struct in harcore_runtime.hpp: a name, or (name, nested field list)
SPECS: dict[str, tuple[str, str, list]] = {
    "conv": ("kConv", "ConvArgs", [("conv", ["input_offset", "output_offset", *_GEO]), ("input_dims", _DIMS),
                                   ("filter_dims", _DIMS), ("output_dims", _DIMS), *_PER_CHANNEL]),
    "depthwise": ("kDepthwise", "DepthwiseArgs", [("dw", ["input_offset", "output_offset", "ch_mult", *_GEO]),
                                                  ("input_dims", _DIMS), ("filter_dims", _DIMS),
                                                  ("output_dims", _DIMS), *_PER_CHANNEL]),
    "fully_connected": ("kFullyConnected", "FullyConnectedArgs",
                        [("fc", ["input_offset", "filter_offset", "output_offset", ("activation", _ACT)]), "batches",
                         "depth", "out_features", *_PER_CHANNEL]),
    "max_pool": ("kMaxPool", "PoolArgs", [("pool", [("stride", _TILE), ("padding", _TILE), ("activation", _ACT)]),
                                          ("input_dims", _DIMS), ("filter_dims", _DIMS), ("output_dims", _DIMS)]),
    "add": ("kAdd", "AddArgs", [("p", _ADD), "act_min", "act_max", "size", "subtract"]),
    "mul": ("kMul", "MulArgs", [("p", _MUL), "act_min", "act_max", "dims", "input0_strides", "input1_strides",
                                "input1_data"]),
    "softmax": ("kSoftmax", "SoftmaxArgs", ["rows", "row_size", "mult", "shift", "diff_min"]),
    "reduce_sum": ("kReduceSum", "ReduceSumArgs", ["outer", "reduce", "inner", "input_offset", "output_offset", "mult",
                                                   "shift"]),
    "clamp": ("kClamp", "ClampArgs", ["size", "input_offset", "output_offset", "mult", "shift", "act_min", "act_max"]),
    "lstm": ("kLstm", "LstmArgs", [("dir", [_LSTM, _LSTM]), "num_directions", "reversed_input"]),
    "gru": ("kGru", "GruArgs", [("dir", [_GRU, _GRU]), "num_directions"]),
    "copy": ("kCopy", "CopyArgs", ["src_offset", "extents", "strides"]),
    "gather": ("kGather", "GatherArgs", ["size", "index"]),
    "batch_matmul": ("kBatchMatMul", "BatchMatMulArgs",
                     [("bmm", ["adj_x", "adj_y", ("fc_params", ["input_offset", "filter_offset", "output_offset",
                                                                ("activation", _ACT)])]),
                      ("quant", ["multiplier", "shift"]), ("lhs_dims", _DIMS), ("rhs_dims", _DIMS),
                      ("output_dims", _DIMS)]),
    "tanh": ("kTanh", "LutArgs", ["size", ("p", _LUT)]),
}
SPECS["logistic"] = ("kLogistic", "LutArgs", SPECS["tanh"][2])
SPECS["avg_pool"] = ("kAvgPool", "PoolArgs", SPECS["max_pool"][2])

_CTYPE = {np.dtype(np.int8): "int8_t", np.dtype(np.int32): "int32_t"}


def _int(v: int) -> str:
    v = int(v)
    if v == -(2**31):
        return "(-2147483647 - 1)"
    return str(v)


class _Emitter:
    def __init__(self, symbol: str):
        self.symbol = symbol
        self.arrays: list[str] = []
        self.count = 0

    def array(self, a: np.ndarray, hint: str) -> str:
        a = np.ascontiguousarray(a).reshape(-1)
        name = f"k_{self.count}_{re.sub(r'[^0-9A-Za-z_]', '_', hint)}"
        self.count += 1
        body = ",".join(_int(v) for v in a.tolist())
        lines = [body[i:i + 110] for i in range(0, len(body), 110)]
        # break only after commas
        text, cur = [], ""
        for tok in body.split(","):
            if len(cur) + len(tok) > 110:
                text.append(cur)
                cur = ""
            cur += tok + ","
        text.append(cur)
        del lines
        self.arrays.append(f"alignas(4) const {_CTYPE[a.dtype]} {name}[{max(len(a), 1)}] = {{\n  " +
                           "\n  ".join(text) + "\n};")
        return name

    def value(self, spec: Any, v: Any, hint: str) -> str:
        if isinstance(spec, list):  # a nested struct, or an array of structs
            if spec and isinstance(spec[0], list):
                items = list(v) + [None] * (len(spec) - len(v))
                return "{" + ", ".join(self.value(s, x, hint) if x is not None else "{}" for s, x in zip(spec, items)) + "}"
            return "{" + ", ".join(self.field(f, v, hint) for f in spec) + "}"
        raise TypeError(spec)

    def field(self, f: Any, d: dict[str, Any], hint: str) -> str:
        if isinstance(f, tuple):
            name, sub = f
            return self.value(sub, d[name], f"{hint}_{name}")
        v = d[f]
        if v is None:  # an absent pointer (e.g. MulArgs.input1_data for two activations)
            return "nullptr"
        if f == "activation_type":
            return {"sigmoid": "kernels::ARM_SIGMOID", "tanh": "kernels::ARM_TANH"}[v]
        if isinstance(v, np.ndarray):
            return self.array(v, f"{hint}_{f}")
        if isinstance(v, (list, tuple)):
            return "{" + ", ".join(_int(x) for x in v) + "}"
        return _int(v)


def emit_cpp(program: Any, symbol: str = "harcore_model") -> str:
    """One C++ source file for ``program`` (see the module docstring)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", symbol):
        raise ValueError(f"emit_cpp: symbol {symbol!r} is not a C++ identifier")
    header, steps = program.step_dicts()
    e = _Emitter(symbol)
    arg_defs, step_lines = [], []
    for i, s in enumerate(steps):
        kind_enum, struct, spec = SPECS[s["kind"]]
        args = dict(s["args"])
        if s["kind"] == "lstm":
            for d in args["dir"]:
                for gname, act in (("input_gate", "sigmoid"), ("forget_gate", "sigmoid"), ("cell_gate", "tanh"),
                                   ("output_gate", "sigmoid")):
                    d[gname] = {**d[gname], "activation_type": act}
        if s["kind"] in ("lstm", "gru"):
            args["num_directions"] = len(args["dir"])
        init = e.value(spec, args, f"s{i}")
        arg_defs.append(f"const rt::{struct} s{i}_args = {init};")
        step_lines.append(f"  {{rt::{kind_enum}, {s['input0']}, {s['input1']}, {s['output']}, {s['output_size']}, "
                          f"{s['scratch']}, {s['scratch_size']}, &s{i}_args}},")
    iq, oq = program.input_qparams, program.output_qparams
    sym = symbol
    out = [
        f"// Generated by harcore.quant.lower(g).emit_cpp({sym!r}); do not edit.",
        f"// {len(steps)} steps, arena {header['arena_size']} B, input {header['input_size']} B (int8, "
        f"scale {iq.scale!r}, zero point {iq.zero_point}), output {header['output_size']} B "
        f"(scale {oq.scale!r}, zero point {oq.zero_point}).",
        "// Input bytes are in the runtime's physical order: time-major (T, C) for a (C, T) window.",
        '#include "runtime/harcore_runtime.hpp"',
        "",
        "namespace {",
        "namespace rt = harcore::rt;",
        "namespace kernels = harcore::kernels;",
        *e.arrays,
        *arg_defs,
        "const rt::Step kSteps[] = {",
        *step_lines,
        "};",
        "}  // namespace",
        "",
        f"extern const harcore::rt::Model {sym};",
        f"extern const harcore::rt::Model {sym} = {{harcore::rt::kFormatVersion, kSteps, {len(steps)}, "
        f"{header['arena_size']}, {header['input_offset']}, {header['input_size']}, {header['output_offset']}, "
        f"{header['output_size']}}};",
        f"extern const int32_t {sym}_arena_size = {header['arena_size']};",
        f"extern const int32_t {sym}_input_size = {header['input_size']};",
        f"extern const int32_t {sym}_output_size = {header['output_size']};",
        f"extern const float {sym}_input_scale = {float(np.float32(iq.scale))!r}f;",
        f"extern const int32_t {sym}_input_zero_point = {iq.zero_point};",
        f"extern const float {sym}_output_scale = {float(np.float32(oq.scale))!r}f;",
        f"extern const int32_t {sym}_output_zero_point = {oq.zero_point};",
        "",
    ]
    return "\n".join(out)
