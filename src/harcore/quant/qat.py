"""Quantization-aware training (docs/int8.md, "QAT").

``prepare_qat(model, calib_x)`` wraps a float model in :class:`QATModel`, which executes the *folded* int8
graph (the same ``fold`` as PTQ: same ops, same tensors) in float with fake-quantization where the int8
graph quantizes: BN folded into the conv/linear weights (the folded weights are fake-quantized, symmetric
per channel), every requantizing op's output after its fused activation (asymmetric per-tensor, EMA min/max
ranges that include 0; softmax / tanh / sigmoid outputs at TFLite's fixed qparams), the RNN input/output and
the RNN weights, the parameter of a ``mul`` by a parameter (symmetric, one scale), and a BatchNorm that cannot
be folded as the per-channel affine of the depthwise 1x1 conv PTQ emits for it. Every op kind of the int8
path (``qgraph.SUPPORTED_KINDS``, ``ACTIVATIONS``) is simulated. Gradients pass by the straight-through
estimator (torch's fake-quant ops). ``convert(qm, calib_x)`` is PTQ's :func:`~harcore.quant.quantize` on the
fine-tuned model with the learned ranges; ``qat(...)`` = prepare + :func:`harcore.train.fit` + convert.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.ao.quantization import (
    FakeQuantize,
    FixedQParamsFakeQuantize,
    FixedQParamsObserver,
)
from torch.ao.quantization.observer import MovingAverageMinMaxObserver
from torch.func import functional_call

from harcore.graph.ir import Op
from harcore.graph.passes import folded_batchnorms
from harcore.quant.ptq import (
    TIED_QPARAMS_KINDS,
    FloatGraph,
    apply_act,
    fold,
    mul_parameter,
    qparam_groups,
    quantize,
    range_qparams,
    without_sensor_gather,
)
from harcore.quant.qgraph import LOGISTIC_QPARAMS, SOFTMAX_QPARAMS, TANH_QPARAMS, QGraph

__all__ = ["DEFAULT_CALIBRATION_WINDOWS", "QATModel", "convert", "prepare_qat", "qat"]

DEFAULT_CALIBRATION_WINDOWS = 1000


class RangeObserver(MovingAverageMinMaxObserver):
    """torch.ao's EMA min/max observer whose qparams are the converter's (:func:`range_qparams`: TFLite's
    rule, 0 included), so the fake-quant grid during training is the one the int8 graph gets.

    With ``accumulate = True`` it keeps the plain running min/max instead (initial calibration, as PTQ)."""

    def __init__(self, averaging_constant: float = 0.01, **kwargs: Any) -> None:
        kwargs.update(dtype=torch.qint8, qscheme=torch.per_tensor_affine, quant_min=-128, quant_max=127)
        super().__init__(averaging_constant=averaging_constant, **kwargs)
        self.accumulate = False

    def forward(self, x_orig: torch.Tensor) -> torch.Tensor:
        if not self.accumulate or x_orig.numel() == 0:
            return super().forward(x_orig)
        lo, hi = torch.aminmax(x_orig.detach().to(self.min_val.dtype))
        self.min_val.copy_(torch.minimum(lo, self.min_val))
        self.max_val.copy_(torch.maximum(hi, self.max_val))
        return x_orig

    @torch.jit.export
    def calculate_qparams(self) -> tuple[torch.Tensor, torch.Tensor]:
        q = range_qparams(float(self.min_val), float(self.max_val))
        return torch.tensor([q.scale], dtype=torch.float32), torch.tensor([q.zero_point], dtype=torch.int32)


def fake_quant_weight(w: torch.Tensor, groups: int) -> torch.Tensor:
    """Symmetric int8 fake-quant of ``w`` with one scale per group of rows (``groups`` = rows for per-channel;
    4 for an LSTM matrix: one scale per gate), in [-127, 127], ``scale = max|w| / 127`` as PTQ.

    The scale comes from the current weights on every call (not an observer's running or EMA range) because
    the converter takes max|W| of the final weights."""
    flat = w.reshape(groups, -1)
    mx = flat.detach().abs().amax(dim=1)
    scale = torch.where(mx > 0, mx / 127.0, torch.ones_like(mx)).float()
    zp = torch.zeros(groups, dtype=torch.int32)
    return torch.fake_quantize_per_channel_affine(flat, scale, zp, 0, -127, 127).reshape(w.shape)


def _bcast(v: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return v.reshape(1, -1, *([1] * (y.dim() - 2)))


def _fixed_fq(qparams: tuple[float, int]) -> FixedQParamsFakeQuantize:
    """Fake-quant at an output quantization TFLite fixes (SOFTMAX, LOGISTIC: (1/256, -128); TANH: (1/128, 0))."""
    obs = FixedQParamsObserver.with_args(scale=qparams[0], zero_point=qparams[1], dtype=torch.qint8,
                                         quant_min=-128, quant_max=127)
    return FixedQParamsFakeQuantize(observer=obs)


_FIXED_OUTPUT = {"softmax": SOFTMAX_QPARAMS, "tanh": TANH_QPARAMS, "sigmoid": LOGISTIC_QPARAMS}


class QATModel(nn.Module):
    """The folded int8 graph in float with fake-quantization; trains the wrapped model's parameters.

    ``model`` is the float model (its conv/linear/BN/RNN modules hold the trained parameters and BN running
    statistics); ``graph`` the folded graph, identical to PTQ's. Input and output as ``model``: (B, C, T)
    windows -> logits (fake-quantized with the output quantization). Observers update only in train mode and
    until :meth:`freeze_ranges`; BatchNorm uses batch statistics in train mode until :meth:`freeze_bn`.
    """

    def __init__(self, model: nn.Module, input_shape: tuple[int, ...], *, averaging_constant: float = 0.01):
        super().__init__()
        from harcore.graph.trace import trace

        if not (0.0 < float(averaging_constant) <= 1.0):
            raise ValueError(f"averaging_constant: must be in (0, 1] (got {averaging_constant})")
        was_training = model.training
        model.eval()
        try:
            traced = trace(model, tuple(input_shape))
            self.graph, fparams, self.acts = fold(traced, model)
        finally:
            model.train(was_training)
        modules = dict(model.named_modules())
        self.model = model
        self.input_shape = tuple(input_shape)
        kept = {op.name for op in self.graph.ops}
        # conv/linear -> the BN folded into it; a BN that fold kept is a depthwise 1x1 conv of its own name
        self.bn_of = folded_batchnorms(traced, kept)
        self.dw_bn = {op.name for op in self.graph.ops if op.kind == "conv" and
                      isinstance(modules.get(op.source), nn.modules.batchnorm._BatchNorm)}
        # one-input mul -> qualified name of its parameter (the live one is looked up at every forward)
        self.mul_param = {op.name: mul_parameter(model, op)[0] for op in self.graph.ops
                          if op.kind in ("mul", "add") and len(op.inputs) == 1}
        self.bn_frozen = False
        self.ranges_frozen = False
        # executes the parameterless ops as PTQ does (a LeakyReLU with its fixed slope)
        self._fg = FloatGraph(self.graph, {k: v for k, v in fparams.items() if "alpha" in v}, self.acts)
        # one fake-quant per tensor that owns its quantization; tied tensors point at their owner
        self.owner: list[int] = list(range(len(self.graph.tensors)))
        self.fq = nn.ModuleDict()
        # PTQ's quantization groups: tensors joined by concats (and tied ops) share one grid, the range over the
        # group's owners; a concat input of fixed quantization is requantized onto its concat's grid
        groups = qparam_groups(self.graph)
        self.group_root = groups.root
        self.group_owners = groups.owners
        all_owners = {t for ts in groups.owners.values() for t in ts}
        for op in self.graph.ops:
            t = op.output
            if op.kind == "concat" and t in all_owners:
                # a concat of fixed inputs with different fixed quantizations owns its range (PTQ)
                self.fq[str(t)] = FakeQuantize(observer=RangeObserver, quant_min=-128, quant_max=127, dtype=torch.qint8,
                                               averaging_constant=float(averaging_constant))
            elif op.kind in TIED_QPARAMS_KINDS:
                self.owner[t] = self.owner[op.inputs[0]]
            elif op.kind == "softmax" or (op.kind == "activation" and op.act in _FIXED_OUTPUT):
                self.fq[str(t)] = _fixed_fq(_FIXED_OUTPUT[op.kind if op.kind == "softmax" else op.act])
            else:
                self.fq[str(t)] = FakeQuantize(observer=RangeObserver, quant_min=-128, quant_max=127, dtype=torch.qint8,
                                               averaging_constant=float(averaging_constant))
        # single-layer RNN modules whose parameters are substituted (functional_call) by the fake-quantized ones
        self._rnn: dict[str, tuple[nn.Module, int]] = {}
        for op in self.graph.ops:
            if op.kind == "rnn":
                m = model.get_submodule(op.source)
                layer = int(op.name.rsplit("_l", 1)[1]) if m.num_layers > 1 and "_l" in op.name else 0
                cls = nn.LSTM if op.cell == "lstm" else nn.GRU
                in_size = m.input_size if layer == 0 else m.hidden_size * (2 if m.bidirectional else 1)
                shadow = cls(in_size, m.hidden_size, bias=m.bias, batch_first=True, bidirectional=op.bidirectional)
                self._rnn[op.name] = (shadow.requires_grad_(False), layer)

    # ---- modes -----------------------------------------------------------------------------------

    def _range_fqs(self) -> list[FakeQuantize]:
        return [m for m in self.fq.values() if not isinstance(m, FixedQParamsFakeQuantize)]

    def train(self, mode: bool = True) -> QATModel:
        super().train(mode)
        for m in self._range_fqs():
            m.enable_observer(bool(mode) and not self.ranges_frozen)
        return self

    def freeze_bn(self) -> None:
        """Use (and stop updating) the BatchNorm running statistics: the forward is then exactly the folded one."""
        self.bn_frozen = True

    def freeze_ranges(self) -> None:
        """Stop updating the activation ranges (observers)."""
        self.ranges_frozen = True
        for m in self._range_fqs():
            m.disable_observer()

    def enable_fake_quant(self, enabled: bool = True) -> None:
        for m in self.fq.values():
            m.enable_fake_quant(enabled)

    def ranges(self) -> dict[int, tuple[float, float]]:
        """Learned (lo, hi) of every tensor that owns its quantization (folded-graph tensor ids), for PTQ."""
        out = {}
        for key, m in self.fq.items():
            if not isinstance(m, FixedQParamsFakeQuantize):
                obs = m.activation_post_process
                out[int(key)] = (float(obs.min_val), float(obs.max_val))
        return out

    # ---- parameters --------------------------------------------------------------------------------

    def _bn_fold(self, op: Op) -> tuple[torch.Tensor, torch.Tensor, nn.Module, torch.Tensor]:
        """(folded weight, conv/linear bias, the BN or None, BN scale) from the live modules."""
        m = self.model.get_submodule(op.source)
        w = m.weight
        if op.kind == "conv" and w.dim() == 3:
            w = w.unsqueeze(2)  # the graph's 1-D conv is (h = 1, w = K), as in PTQ
        b = m.bias if m.bias is not None else torch.zeros(w.shape[0], dtype=w.dtype)
        bn = self.model.get_submodule(self.bn_of[op.name]) if op.name in self.bn_of else None
        if bn is None:
            return w, b, None, torch.ones_like(b)
        gamma = bn.weight if bn.affine else torch.ones_like(bn.running_var)
        s = gamma / torch.sqrt(bn.running_var + bn.eps)
        return w * s.reshape(-1, *([1] * (w.dim() - 1))), b, bn, s

    def _bn_bias(self, b: torch.Tensor, bn: nn.Module | None, s: torch.Tensor) -> torch.Tensor:
        if bn is None:
            return b
        beta = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
        return (b - bn.running_mean) * s + beta

    @torch.no_grad()
    def folded_params(self) -> dict[str, dict[str, torch.Tensor]]:
        """The folded (BN-absorbed) float weight and bias of every conv/linear op: what is fake-quantized."""
        out = {}
        for op in self.graph.ops:
            if op.name in self.dw_bn:
                w, b = self._dw_bn_params(op)
                out[op.name] = {"weight": w.detach().clone(), "bias": b.detach().clone()}
            elif op.kind in ("conv", "linear"):
                w, b, bn, s = self._bn_fold(op)
                out[op.name] = {"weight": w.detach().clone(), "bias": self._bn_bias(b, bn, s).detach().clone()}
        return out

    def _dw_bn_params(self, op: Op) -> tuple[torch.Tensor, torch.Tensor]:
        """The depthwise 1x1 conv of an unfoldable BN, as ``fold`` builds it: weight ``γ/√(σ²+ε)`` (C, 1, 1, 1),
        bias ``β − μ·γ/√(σ²+ε)``, from the live running statistics."""
        bn = self.model.get_submodule(op.source)
        gamma = bn.weight if bn.affine else torch.ones_like(bn.running_var)
        beta = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
        s = gamma / torch.sqrt(bn.running_var + bn.eps)
        return s.reshape(-1, 1, 1, 1), beta - bn.running_mean * s

    # ---- forward -----------------------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = self.graph
        vals: list[Any] = [None] * len(g.tensors)
        for op in g.ops:
            ins = [vals[t] for t in op.inputs]
            if op.kind == "input":
                y = x.float()
            elif op.name in self.dw_bn:
                y = self._dw_bn(op, ins[0])
            elif op.kind in ("conv", "linear"):
                y = self._affine(op, ins[0])
            elif op.kind == "rnn":
                y = self._rnn_forward(op, ins[0])
            elif op.kind == "mul" and len(op.inputs) == 1:
                y = ins[0] * self._mul_operand(op)
            elif op.kind == "add" and len(op.inputs) == 1:
                y = ins[0] + self._mul_operand(op)
            elif op.kind == "concat":
                y = self._concat(op, ins, x)
            else:
                y = self._fg._op(op, ins, x)  # matmul, add, mul of two activations, mean, softmax, ...
            y = apply_act(op, self.acts, y)
            vals[op.output] = self._quant(op, y)
        return vals[g.outputs[0]]

    def _quant(self, op: Op, y: torch.Tensor) -> torch.Tensor:
        key = str(op.output)
        if op.kind == "concat":
            return y  # quantized in _concat
        if key in self.fq:
            fq = self.fq[key]
            if isinstance(fq, FixedQParamsFakeQuantize) or len(self.group_owners[self.group_root[op.output]]) == 1:
                return fq(y)
            # one of several tensors joined by a concat: its observer learns its own range (convert unites the
            # ranges, as PTQ does), its values go onto the group's one grid, the one the int8 graph uses
            if fq.observer_enabled[0] == 1:
                fq.activation_post_process(y.detach())
            return self._onto_group_grid(op.output, y)
        if op.kind == "pool" and op.pool == "avg":  # requantized onto its input's grid (same qparams)
            return self._onto_group_grid(op.output, y)
        return y  # max pool, reshape, transpose, slice: values stay on the input's grid

    def _group_qparams(self, t: int) -> tuple[Any, Any]:
        """(scale, zero point) of tensor ``t``'s quantization group, as PTQ's ``_tie_qparams`` sets them: a
        fixed member's, a single owner's own, else the converter's rule over the union of the owners' ranges."""
        members = self.group_owners[self.group_root[t]]
        fqs = [self.fq[str(m)] for m in members]
        fixed = [f for f in fqs if isinstance(f, FixedQParamsFakeQuantize)]
        if fixed or len(fqs) == 1:
            f = (fixed or fqs)[0]
            return f.scale, f.zero_point
        obs = [f.activation_post_process for f in fqs]
        q = range_qparams(min(float(o.min_val) for o in obs), max(float(o.max_val) for o in obs))
        return q.scale, q.zero_point

    def _fake_quant_on(self) -> bool:
        # enable_fake_quant switches every fake-quant together; the model input always has one
        return bool(next(iter(self.fq.values())).fake_quant_enabled[0] == 1)

    def _onto_group_grid(self, t: int, y: torch.Tensor) -> torch.Tensor:
        if not self._fake_quant_on():
            return y
        scale, zp = self._group_qparams(t)
        return torch.fake_quantize_per_tensor_affine(y, scale, zp, -128, 127)

    def _concat(self, op: Op, ins: list[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """TFLM's CONCATENATION: the inputs already lie on the group's grid, except those of fixed quantization
        (a softmax / tanh / sigmoid output), which are requantized onto it (TFLite's QUANTIZE); a concat of only
        such inputs with different fixed quantizations owns its range (its own fake-quant)."""
        key = str(op.output)
        if key in self.fq:
            return self.fq[key](self._fg._op(op, ins, x))
        root = self.group_root[op.output]
        ins = [a if self.group_root[t] == root else self._onto_group_grid(op.output, a)
               for t, a in zip(op.inputs, ins)]
        return self._fg._op(op, ins, x)

    def _fake(self, op: Op) -> bool:
        return bool(self.fq[str(op.output)].fake_quant_enabled[0] == 1)

    def _mul_operand(self, op: Op) -> torch.Tensor:
        """The parameter of a one-input mul, fake-quantized as PTQ stores it: one symmetric scale, [-127, 127]."""
        p = self.model.get_parameter(self.mul_param[op.name]).reshape(op.param_shape)
        return fake_quant_weight(p.reshape(1, -1), 1).reshape(p.shape) if self._fake(op) else p

    def _dw_bn(self, op: Op, a: torch.Tensor) -> torch.Tensor:
        """An unfoldable BN = the depthwise 1x1 conv PTQ emits: ``a · fq(γ/√(σ²+ε)) + (β − μ·γ/√(σ²+ε))`` per
        channel (one int8 weight per channel: its symmetric quantization is exact up to float rounding). In
        training, until :meth:`freeze_bn`, the BN itself with batch statistics (updating the running ones), as
        for folded BNs."""
        bn = self.model.get_submodule(op.source)
        if self.training and not self.bn_frozen:
            return bn(a)
        w, b = self._dw_bn_params(op)
        w = w.reshape(-1, 1)
        wq = fake_quant_weight(w, w.shape[0]) if self._fake(op) else w
        return a * _bcast(wq, a) + _bcast(b, a)

    def _affine(self, op: Op, a: torch.Tensor) -> torch.Tensor:
        w, b, bn, s = self._bn_fold(op)
        fake = self.fq[str(op.output)].fake_quant_enabled[0] == 1
        wq = fake_quant_weight(w, w.shape[0]) if fake else w
        if op.kind == "linear":
            y = F.linear(a, wq)
        else:
            n = a.shape[0]
            x4 = a.reshape(n, a.shape[1], 1, a.shape[2]) if a.dim() == 3 else a
            top, bottom, left, right = op.pad
            y = F.conv2d(F.pad(x4, (left, right, top, bottom)), wq, None, stride=tuple(op.stride),
                         dilation=tuple(op.dilation), groups=op.groups)
            y = y.reshape(n, y.shape[1], y.shape[3]) if a.dim() == 3 else y
        if bn is not None and self.training and not self.bn_frozen:
            # torch.ao's ConvBn scheme: undo the running-std scaling, then BN with batch statistics
            # (which also updates the running ones); once frozen, the exact folded form below.
            return bn(y / _bcast(s, y) + _bcast(b, y))
        bias = self._bn_bias(b, bn, s)
        # a linear's features are its last axis (TinyHAR applies them to (B, T, C, F)); a conv's the second
        return y + bias if op.kind == "linear" else y + _bcast(bias, y)

    def _rnn_forward(self, op: Op, a: torch.Tensor) -> torch.Tensor:
        shadow, layer = self._rnn[op.name]
        m = self.model.get_submodule(op.source)
        fake = self.fq[str(op.output)].fake_quant_enabled[0] == 1
        H = op.out_channels
        params = {}
        for d, sfx in enumerate(["", "_reverse"][: 2 if op.bidirectional else 1]):
            for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                p = getattr(m, f"{n}_l{layer}{sfx}", None)
                if p is None:
                    continue
                if fake and n.startswith("weight"):
                    # LSTM: one scale per gate and matrix (TFLite's LSTM); GRU: one per row (docs/int8.md)
                    p = fake_quant_weight(p, 4 if op.cell == "lstm" else 3 * H)
                params[f"{n}_l0{sfx}"] = p
        y, _ = functional_call(shadow, params, (a,))
        return y


def _windows(x: Any, what: str) -> torch.Tensor:
    try:
        t = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{what}: expected float windows (N, C, T): {e}") from None
    if t.dim() < 2 or t.shape[0] < 1:
        raise ValueError(f"{what}: expected windows (N, C, T) with N >= 1, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise ValueError(f"{what}: contains NaN or infinite values")
    return t


@torch.no_grad()
def _calibrate(qm: QATModel, x: torch.Tensor, batch_size: int, check_tolerance: float) -> None:
    """Initial ranges = plain min/max of the float folded graph over ``x`` (what PTQ would use), and a check
    that the QAT executor reproduces the model."""
    qm.eval()
    qm.enable_fake_quant(False)
    obs = [m.activation_post_process for m in qm._range_fqs()]
    for o in obs:
        o.accumulate = True
    for m in qm._range_fqs():
        m.enable_observer(True)
    worst = 0.0
    try:
        for i in range(0, x.shape[0], batch_size):
            xb = x[i:i + batch_size]
            out, ref = qm(xb), qm.model(xb)
            worst = max(worst, float((out - ref).abs().max() / (ref.abs().max() + 1e-12)))
    finally:
        for o in obs:
            o.accumulate = False
        qm.enable_fake_quant(True)
        qm.eval()  # observers off outside train mode
    if worst > check_tolerance:
        raise ValueError(f"prepare_qat: the QAT graph does not reproduce the model (relative error {worst:.2e}); "
                         "this is a harcore bug or an op the tracer mis-describes")


def prepare_qat(model: nn.Module, calib_x: Any, *, averaging_constant: float = 0.01, copy_model: bool = True,
                batch_size: int = 256, check_tolerance: float = 1e-3) -> QATModel:
    """Wrap ``model`` for QAT; activation ranges start at the min/max over ``calib_x`` (N, C, T), then follow an
    EMA (``averaging_constant``) of the batch min/max while training. ``copy_model=False`` trains ``model``
    itself (else a deep copy). Unsupported ops raise the same ``ValueError`` as PTQ."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    x = _windows(calib_x, "calib_x")
    m = copy.deepcopy(model) if copy_model else model
    qm = QATModel(m, tuple(x.shape[1:]), averaging_constant=averaging_constant)
    _calibrate(qm, x, batch_size, check_tolerance)
    return qm


def convert(qm: QATModel, calib_x: Any, **meta: Any) -> QGraph:
    """The int8 graph of a QAT model: PTQ (:func:`harcore.quant.quantize`) of its fine-tuned float model with the
    learned activation ranges. ``calib_x`` only supplies what QAT does not learn: the RNN internals (LSTM cell
    scale, GRU intermediates). ``meta`` goes into the graph's ``meta``."""
    if not isinstance(qm, QATModel):
        raise ValueError(f"qm: expected a QATModel from prepare_qat, got {type(qm).__name__}")
    x = _windows(calib_x, "calib_x")
    if tuple(x.shape[1:]) != qm.input_shape:
        raise ValueError(f"calib_x: windows of shape {tuple(x.shape[1:])}, the QAT model takes {qm.input_shape}")
    was_training = qm.training
    try:
        g = quantize(qm.model, x, ranges=qm.ranges(), meta={"qat": True, **meta})
    finally:
        qm.train(was_training)
    a = [(op.kind, op.name, op.inputs, op.output) for op in g.graph.ops]
    b = [(op.kind, op.name, op.inputs, op.output) for op in qm.graph.ops]
    if a != b:  # the learned ranges are keyed by tensor id: both folds must be the same graph
        raise ValueError("convert: PTQ folded the fine-tuned model into another graph than QAT trained")
    return g


def _train_x(train: Any) -> Any:
    if hasattr(train, "x"):
        return train.x
    if isinstance(train, (tuple, list)) and len(train) == 2:
        return train[0]
    raise ValueError("train: expected a split with .x/.y or an (x, y) pair")


def _kept_windows(x: Any, gather_meta: dict[str, Any]) -> np.ndarray:
    """Windows of all sensors -> the kept ones (windows of the kept ones pass as they are)."""
    a = np.asarray(x)
    return a[:, list(gather_meta["input_channels"])] if a.ndim == 3 and a.shape[1] == gather_meta[
        "source_in_channels"] else a


def _kept_split(split: Any, gather_meta: dict[str, Any]) -> Any:
    if split is None:
        return None
    if isinstance(split, (tuple, list)) and len(split) == 2:
        return (_kept_windows(split[0], gather_meta), split[1])
    if hasattr(split, "x") and hasattr(split, "y"):
        return (_kept_windows(split.x, gather_meta), split.y)
    return split


def qat(model: nn.Module, train: Any, val: Any = None, *, epochs: int = 3, calib_x: Any = None,
        freeze_bn_epochs: int = 1, freeze_ranges_epochs: int = 1, averaging_constant: float = 0.01,
        return_model: bool = False, **train_opts: Any) -> QGraph | tuple[QGraph, QATModel]:
    """Quantization-aware fine-tuning of a trained float ``model``, then conversion -> :class:`QGraph`.

    ``train`` / ``val`` as for :func:`harcore.train.fit`; ``calib_x`` (N, C, T) defaults to up to 1000
    evenly spaced training windows. BatchNorm statistics are frozen for the last ``freeze_bn_epochs``
    epochs and the activation ranges for the last ``freeze_ranges_epochs``. ``train_opts`` are
    :class:`~harcore.train.TrainConfig` fields; QAT defaults: lr 1e-4, cosine schedule, no early stopping.
    With ``val`` the weights (and ranges) of the best validation epoch are converted, as ``fit`` does.
    ``model`` itself is left unchanged; ``return_model=True`` also returns the fine-tuned :class:`QATModel`.
    """
    from harcore.train import TrainConfig, fit

    if not (isinstance(epochs, (int, np.integer)) and not isinstance(epochs, bool) and epochs >= 1):
        raise ValueError(f"epochs: must be an integer >= 1 (got {epochs!r})")
    for name, v in (("freeze_bn_epochs", freeze_bn_epochs), ("freeze_ranges_epochs", freeze_ranges_epochs)):
        if not (isinstance(v, (int, np.integer)) and not isinstance(v, bool) and 0 <= v <= epochs):
            raise ValueError(f"{name}: must be an integer in [0, epochs={epochs}] (got {v!r})")
    # pruned sensors: fine-tune and convert the kept-sensor network the chip runs, as quantize does
    model, _, gather_meta = without_sensor_gather(model, np.asarray(_train_x(train)))
    if gather_meta:
        train, val = (_kept_split(s, gather_meta) for s in (train, val))
        if calib_x is not None:
            calib_x = _kept_windows(calib_x, gather_meta)
    if calib_x is None:
        tx = np.asarray(_train_x(train))
        calib_x = tx[np.linspace(0, len(tx) - 1, min(len(tx), DEFAULT_CALIBRATION_WINDOWS)).round().astype(int)]
    opts: dict[str, Any] = {"lr": 1e-4, "schedule": "cosine", "early_stopping_patience": None, "progress": False}
    opts.update(train_opts)
    cfg = TrainConfig(epochs=int(epochs), **opts)
    qm = prepare_qat(model, calib_x, averaging_constant=averaging_constant)

    def freeze(done: int) -> None:
        if done >= epochs - freeze_bn_epochs:
            qm.freeze_bn()
        if done >= epochs - freeze_ranges_epochs:
            qm.freeze_ranges()

    freeze(0)
    res = fit(qm, train, val, cfg, on_epoch_end=lambda rec: freeze(rec["epoch"]))
    g = convert(qm, calib_x, qat_epochs=int(res.epochs_run), qat_best_epoch=res.best_epoch, qat_lr=float(cfg.lr),
                qat_freeze_bn_epochs=int(freeze_bn_epochs), qat_freeze_ranges_epochs=int(freeze_ranges_epochs),
                **gather_meta)
    return (g, qm) if return_model else g
