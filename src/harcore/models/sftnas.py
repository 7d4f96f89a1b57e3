"""SFTNAS-derived networks (Zhou et al., "Enhancing Efficiency in HAR Models: NAS Meets Pruning").

A derived network is the searched first stage — the kept sensor channels, then a chain of per-sensor temporal
convolutions ``Conv2d(F_in -> F, (k, 1), stride (t, 1), padding ((k-1)/2, 0)) -> BatchNorm -> ReLU`` with the
searched kernel, stride and number of filters (identity layers are simply absent) — followed by the later
stages of a backbone, as in the original model:

* ``tinyhar``: cross-channel self-attention on (C, F) per step, dropout, Linear(C*F -> 2*filter_num) + ReLU,
  LSTM(2*filter_num), "tnaive" temporal aggregation, Linear (TinyHAR, ISWC'22; ``harcore.models.tinyhar``).
* ``deepconvlstm``: (L, F*C) features, 2 x LSTM(128), the last step, Linear (Ordonez & Roggen 2016).
* ``attend_discriminate``: SAGAN self-attention across sensors per step, dropout, 2 x GRU(128), temporal
  attention, dropout, Linear (Abedin et al. 2021).

Deviation from the originals' first stage, by design: BatchNorm follows every searched conv (the original
DeepConvLSTM and A&D have none; TinyHAR puts it after the ReLU). Conv -> BN -> ReLU folds the BN into the conv
and fuses the ReLU at int8 deployment, so it costs nothing on the chip.

    >>> net = harcore.models.create("sftnas", 9, 128, 6, backbone="tinyhar",
    ...     arch={"channels": [0, 1, 2, 6, 7, 8],
    ...           "layers": [{"op": "conv", "kernel": 5, "stride": 2, "filters": 8}, {"op": "identity", "stride": 1}]})

``arch["channels"]`` are the kept input channels (the model still takes the full ``(B, in_channels, T)``
window and gathers them; when all are kept there is no gather). Each layer is ``{"op": "conv", "kernel",
"stride", "filters"}`` or ``{"op": "identity", "stride": 1}``; extra keys (e.g. the kept filter indices a
search recorded) are ignored here. Without ``arch``, :func:`default_arch` (unsearched) is built.

``arch`` may also be what a search returns, a ``harcore.nas.Arch`` (or its ``to_dict()``, or the path of the
``arch.json`` a search wrote, as in ``harcore distill --student sftnas --student-option arch=runs/x/arch.json``): its
backbone and tail are then used, and its sizes must match the ones given (``models.create("sftnas", arch=arch)``
takes them from it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn as nn

from . import register_model
from .attend_discriminate import SelfAttention, TemporalAttention
from .tinyhar import CrossChannelSelfAttention, TemporalWeightedAggregation

BACKBONES = ("tinyhar", "deepconvlstm", "attend_discriminate")
#: Filters of each backbone's original first stage (TinyHAR 20, DeepConvLSTM / A&D 64).
DEFAULT_FILTERS = {"tinyhar": 20, "deepconvlstm": 64, "attend_discriminate": 64}


def default_arch(in_channels: int, seq_len: int, backbone: str = "tinyhar") -> dict[str, Any]:
    """A neutral, unsearched architecture (``arch=None``): every sensor; ``N = floor(log2(seq_len/4))`` (at least
    1) stride-2 convs with k = 5 and the backbone's original filter count, interleaved with identities."""
    n = max(1, (max(seq_len, 1) // 4).bit_length() - 1)
    f = DEFAULT_FILTERS.get(backbone, 20)
    layers: list[dict[str, Any]] = []
    for _ in range(n):
        layers += [{"op": "conv", "kernel": 5, "stride": 2, "filters": f}, {"op": "identity", "stride": 1}]
    return {"channels": list(range(in_channels)), "layers": layers}

_REFERENCE = {
    "paper": "Y. Zhou et al., 'Enhancing Efficiency in HAR Models: NAS Meets Pruning' (SFTNAS)",
    "code": "harcore (the searched first stage + the backbone's later stages)",
    "figures_source": "none: an SFTNAS network's size depends on the searched architecture",
    "figures": {},
}


class TinyHARTail(nn.Module):
    """TinyHAR's stages 2-4 on a ``(B, F, L, C)`` feature map."""

    def __init__(self, filters: int, length: int, channels: int, num_classes: int, *, filter_num: int = 20,
                 dropout: float = 0.1):
        super().__init__()
        self.L, self.C, self.F = length, channels, filters
        self.channel_interaction = CrossChannelSelfAttention(filters)
        self.dropout = nn.Dropout(dropout)
        self.channel_fusion = nn.Linear(channels * filters, 2 * filter_num)
        self.activation = nn.ReLU()
        self.temporal_interaction = nn.LSTM(2 * filter_num, 2 * filter_num, batch_first=True)
        self.temporal_fusion = TemporalWeightedAggregation(2 * filter_num)
        self.prediction = nn.Linear(2 * filter_num, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.channel_interaction(x.permute(0, 2, 3, 1))                          # (B, L, C, F)
        x = self.dropout(x)
        x = self.activation(self.channel_fusion(x.reshape(-1, self.L, self.C * self.F)))
        x, _ = self.temporal_interaction(x)
        return self.prediction(self.temporal_fusion(x))


class DeepConvLSTMTail(nn.Module):
    """DeepConvLSTM's recurrent part (the paper layout: 2 x LSTM(128), last step) on ``(B, F, L, C)``."""

    def __init__(self, filters: int, length: int, channels: int, num_classes: int, *, lstm_units: int = 128,
                 lstm_layers: int = 2, dropout: float = 0.0):
        super().__init__()
        self.L, self.features = length, filters * channels
        self.dropout = nn.Dropout(dropout)
        self.lstm_layers = nn.ModuleList(
            nn.LSTM(self.features if i == 0 else lstm_units, lstm_units, batch_first=True) for i in range(lstm_layers))
        self.fc = nn.Linear(lstm_units, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 1, 3).reshape(-1, self.L, self.features)
        x = self.dropout(x)
        for lstm in self.lstm_layers:
            x, _ = lstm(x)
        return self.fc(x[:, -1, :])


class AttendDiscriminateTail(nn.Module):
    """Attend-and-Discriminate's stages 2-4 on ``(B, F, L, C)``."""

    def __init__(self, filters: int, length: int, channels: int, num_classes: int, *, hidden_dim: int = 128,
                 enc_num_layers: int = 2, sa_div: int = 1, dropout: float = 0.5, dropout_rnn: float = 0.25,
                 dropout_cls: float = 0.5):
        super().__init__()
        self.L, self.C, self.F = length, channels, filters
        self.sa = SelfAttention(filters, sa_div)
        self.dropout = nn.Dropout(dropout)
        self.rnn = nn.GRU(filters * channels, hidden_dim, enc_num_layers,
                          dropout=dropout_rnn if enc_num_layers > 1 else 0.0, batch_first=True)
        self.ta = TemporalAttention(hidden_dim)
        self.dropout_cls = nn.Dropout(dropout_cls)
        self.classifier = nn.Linear(hidden_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.sa(x).reshape(-1, self.L, self.F * self.C)
        x = self.dropout(x)
        x, _ = self.rnn(x)
        return self.classifier(self.dropout_cls(self.ta(x)))


_TAILS = {"tinyhar": TinyHARTail, "deepconvlstm": DeepConvLSTMTail, "attend_discriminate": AttendDiscriminateTail}


def tail_options(backbone: str) -> dict[str, Any]:
    """The options of ``backbone``'s later stages (``make_tail``'s ``cfg``) and their defaults."""
    import inspect

    if backbone not in _TAILS:
        raise ValueError(f"sftnas: unknown backbone {backbone!r}; available: {', '.join(BACKBONES)}")
    return {n: p.default for n, p in inspect.signature(_TAILS[backbone].__init__).parameters.items()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def make_tail(backbone: str, filters: int, length: int, channels: int, num_classes: int,
              **cfg: Any) -> nn.Module:
    """The later stages of ``backbone`` for a ``(B, filters, length, channels)`` stage output."""
    if backbone not in _TAILS:
        raise ValueError(f"sftnas: unknown backbone {backbone!r}; available: {', '.join(BACKBONES)}")
    try:
        return _TAILS[backbone](filters, length, channels, num_classes, **cfg)
    except TypeError as e:
        raise TypeError(f"sftnas: bad tail option for backbone {backbone!r}: {e}") from None


def conv_block(f_in: int, f_out: int, kernel: int, stride: int) -> nn.Sequential:
    """One searched layer: Conv2d (k, 1) 'same'-padded along time, BatchNorm, ReLU."""
    return nn.Sequential(nn.Conv2d(f_in, f_out, (kernel, 1), (stride, 1), ((kernel - 1) // 2, 0)),
                         nn.BatchNorm2d(f_out), nn.ReLU())


def check_arch(arch: Mapping[str, Any], in_channels: int, seq_len: int) -> tuple[list[int], list[dict]]:
    """Validate an arch dict; returns (kept channels, layers). Errors name the field."""
    if not isinstance(arch, Mapping):
        raise ValueError(f"sftnas: arch must be a dict, got {type(arch).__name__}")
    for key in ("channels", "layers"):
        if key not in arch:
            raise ValueError(f"sftnas: arch has no {key!r} field")
    channels = [int(c) for c in arch["channels"]]
    if not channels:
        raise ValueError("sftnas: arch.channels is empty (at least one sensor channel must be kept)")
    if sorted(set(channels)) != channels or channels[0] < 0 or channels[-1] >= in_channels:
        raise ValueError(f"sftnas: arch.channels must be sorted distinct indices in [0, {in_channels}), "
                         f"got {channels}")
    layers = [dict(l) for l in arch["layers"]]
    if not layers:
        raise ValueError("sftnas: arch.layers is empty")
    s = seq_len
    for i, l in enumerate(layers):
        op = l.get("op")
        stride = l.get("stride")
        if not isinstance(stride, int) or stride < 1:
            raise ValueError(f"sftnas: arch.layers[{i}].stride must be an int >= 1, got {stride!r}")
        if op == "identity":
            if stride != 1:
                raise ValueError(f"sftnas: arch.layers[{i}] is an identity with stride {stride}; an identity "
                                 "cannot shorten the time axis")
        elif op == "conv":
            k, f = l.get("kernel"), l.get("filters")
            if not isinstance(k, int) or k < 1 or k % 2 == 0:
                raise ValueError(f"sftnas: arch.layers[{i}].kernel must be an odd int >= 1, got {k!r}")
            if not isinstance(f, int) or f < 1:
                raise ValueError(f"sftnas: arch.layers[{i}].filters must be an int >= 1, got {f!r}")
            s = -(-s // stride)
        else:
            raise ValueError(f"sftnas: arch.layers[{i}].op must be 'conv' or 'identity', got {op!r}")
    if layers[0]["op"] != "conv":
        raise ValueError("sftnas: arch.layers[0] must be a conv (the stage input has 1 feature map)")
    return channels, layers


def read_arch_file(path: str | os.PathLike) -> dict[str, Any]:
    """An ``arch.json`` (what ``harcore search`` writes) as a dict; errors name the file (and line)."""
    p = Path(path).expanduser()
    try:
        text = p.read_text()
    except OSError as e:
        raise ValueError(f"sftnas: arch file {str(p)!r} cannot be read ({e.strerror or e})") from None
    try:
        d = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"sftnas: arch file {str(p)!r}, line {e.lineno}: not JSON ({e.msg})") from None
    if not isinstance(d, dict):
        raise ValueError(f"sftnas: arch file {str(p)!r} holds a {type(d).__name__}, not an architecture object")
    return d


def _arch_dict(arch: Any) -> dict[str, Any] | None:
    """The dict of a searched architecture (``harcore.nas.Arch``, its ``to_dict()``, or the path of its
    ``arch.json``), or None for a plain ``{"channels", "layers"}`` arch. Duck-typed: models sit below nas and
    cannot import it."""
    if isinstance(arch, (str, os.PathLike)):
        arch = read_arch_file(arch)
    d = arch.to_dict() if callable(getattr(arch, "to_dict", None)) else arch
    if isinstance(d, Mapping) and {"backbone", "in_channels", "seq_len", "num_classes"} <= set(d):
        return dict(d)
    if not isinstance(arch, Mapping) and d is not arch:
        raise ValueError(f"sftnas: arch {type(arch).__name__} has no backbone/in_channels/seq_len/num_classes")
    return None


def _from_searched(arch: Any, backbone: str | None, tail: Mapping[str, Any] | None, in_channels: int, seq_len: int,
                   num_classes: int) -> tuple[Any, str, Mapping[str, Any] | None]:
    """(arch, backbone, tail) for the constructor: a searched architecture brings its own backbone and tail, and
    sizes that must agree with the ones given."""
    if isinstance(arch, (str, os.PathLike)):
        arch = read_arch_file(arch)
    d = _arch_dict(arch)
    if d is None:
        return arch, (backbone if backbone is not None else "tinyhar"), tail
    for key, given in (("in_channels", in_channels), ("seq_len", seq_len), ("num_classes", num_classes)):
        if int(d[key]) != given:
            raise ValueError(f"sftnas: {key}={given} given, but the searched arch was made for {key}={d[key]}")
    if backbone is not None and backbone != d["backbone"]:
        raise ValueError(f"sftnas: backbone={backbone!r} given, but the searched arch has backbone "
                         f"{d['backbone']!r}")
    if tail is not None and d.get("tail") and dict(tail) != dict(d["tail"]):
        raise ValueError(f"sftnas: tail={dict(tail)} given, but the searched arch has tail {dict(d['tail'])}")
    return ({"channels": d["channels"], "layers": d["layers"]}, str(d["backbone"]),
            tail if tail is not None else dict(d.get("tail") or {}))


@register_model("sftnas", reference=_REFERENCE)
class SftnasNet(nn.Module):
    """An SFTNAS-searched first stage (kept sensors, conv k/stride/filters per layer) + a backbone's later stages."""

    def __init__(self, in_channels: int, seq_len: int, num_classes: int, *, arch: Any = None,
                 backbone: str | None = None, tail: Mapping[str, Any] | None = None):
        super().__init__()
        arch, backbone, tail = _from_searched(arch, backbone, tail, in_channels, seq_len, num_classes)
        if backbone not in BACKBONES:
            raise ValueError(f"sftnas: unknown backbone {backbone!r}; available: {', '.join(BACKBONES)}")
        if arch is None:
            arch = default_arch(in_channels, seq_len, backbone)
        channels, layers = check_arch(arch, in_channels, seq_len)
        self.arch = {"channels": channels, "layers": layers}
        self.backbone = backbone
        self.tail_cfg = dict(tail or {})
        self.in_channels, self.seq_len, self.num_classes = in_channels, seq_len, num_classes
        self.gather = len(channels) < in_channels
        if self.gather:
            self.register_buffer("channel_index", torch.tensor(channels, dtype=torch.long), persistent=False)
        blocks = []
        f, s = 1, seq_len
        for l in layers:
            if l["op"] == "conv":
                blocks.append(conv_block(f, l["filters"], l["kernel"], l["stride"]))
                f, s = l["filters"], -(-s // l["stride"])
        self.stage = nn.ModuleList(blocks)
        self.filters, self.length, self.channels = f, s, len(channels)
        self.tail = make_tail(backbone, f, s, len(channels), num_classes, **self.tail_cfg)

    @staticmethod
    def sizes_from_config(cfg: Mapping[str, Any]) -> tuple[int, int, int] | None:
        """(in_channels, seq_len, num_classes) of a searched ``cfg["arch"]``, for ``models.create("sftnas",
        arch=arch)`` without sizes; None for a plain arch."""
        d = _arch_dict(cfg.get("arch"))
        return None if d is None else (int(d["in_channels"]), int(d["seq_len"]), int(d["num_classes"]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gather:
            x = x[:, self.channel_index]
        x = x.transpose(1, 2).unsqueeze(1)                   # (B, 1, T, C)
        for block in self.stage:
            x = block(x)                                     # (B, F, T', C)
        return self.tail(x)

    def without_gather(self) -> "SftnasNet":
        """The same network taking only the kept sensors ``(B, len(channels), T)`` as its input (what the
        firmware reads: pruned sensors are never sampled). Shares no storage with ``self``."""
        net = SftnasNet(self.channels, self.seq_len, self.num_classes,
                        arch={"channels": list(range(self.channels)), "layers": self.arch["layers"]},
                        backbone=self.backbone, tail=self.tail_cfg)
        net.load_state_dict({k: v.clone() for k, v in self.state_dict().items()})
        return net.train(self.training)

    def config(self) -> dict[str, Any]:
        """Everything :func:`harcore.models.create` needs to rebuild this network (JSON-serialisable)."""
        return {"name": "sftnas", "in_channels": self.in_channels, "seq_len": self.seq_len,
                "num_classes": self.num_classes, "arch": self.arch, "backbone": self.backbone,
                "tail": self.tail_cfg}


def save(model: SftnasNet, path) -> None:
    """Save config + weights in one file (``torch.save`` of plain tensors and JSON-able data)."""
    torch.save({"format": "harcore.sftnas/1", "config": model.config(), "state_dict": model.state_dict()}, path)


def load(path) -> SftnasNet:
    """Rebuild a network written by :func:`save` (``weights_only=True``: no code is unpickled)."""
    d = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(d, dict) or d.get("format") != "harcore.sftnas/1":
        raise ValueError(f"{path}: not a harcore SFTNAS model file (field 'format')")
    c = dict(d["config"])
    c.pop("name", None)
    net = SftnasNet(c.pop("in_channels"), c.pop("seq_len"), c.pop("num_classes"), **c)
    net.load_state_dict(d["state_dict"])
    return net
