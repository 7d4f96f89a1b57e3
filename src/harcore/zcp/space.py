"""The architecture space of the paper's Table I and its seeded sampler.

CNN: 1–7 blocks of ``Conv1d(k, stride 1) -> ReLU -> Dropout(p)``; out channels 8–1024 (step 8), kernel 2–9,
dropout 0.1–0.5 (step 0.1). LSTM: 2–4 layers, hidden 8–504 (step 8), dropout 0.1–0.5 between layers, none
after the last. Drawn 3 CNN : 1 LSTM.

The paper does not give the classifier head; harcore's (a decision, ``docs/zcp.md``): the CNN ends in global
average pooling over time and a Linear layer, the LSTM in a Linear layer on the last time step's output.
Convolutions are unpadded ("valid"), so a deep stack of wide kernels needs a long enough window: the sampler
only draws CNNs whose receptive field fits the window (Σ (k−1) < seq_len).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn as nn

__all__ = ["Arch", "CNN_SPACE", "LSTM_SPACE", "space_size", "sample", "build", "TableICNN", "TableILSTM"]

CNN_SPACE: dict[str, Any] = {"layers": range(1, 8), "channels": range(8, 1025, 8), "kernel": range(2, 10),
                             "dropout": (0.1, 0.2, 0.3, 0.4, 0.5)}
LSTM_SPACE: dict[str, Any] = {"layers": range(2, 5), "hidden": range(8, 505, 8),
                              "dropout": (0.1, 0.2, 0.3, 0.4, 0.5)}


@dataclass(frozen=True)
class Arch:
    """One architecture of Table I. ``kind`` is ``"cnn"`` or ``"lstm"``; per-layer lists."""

    kind: str
    widths: tuple[int, ...]
    dropouts: tuple[float, ...]
    kernels: tuple[int, ...] = field(default=())

    @property
    def key(self) -> str:
        """A stable identifier (used as the study's file name for this architecture)."""
        w = "-".join(map(str, self.widths))
        d = "-".join(f"{p:.1f}" for p in self.dropouts)
        k = ("_k" + "-".join(map(str, self.kernels))) if self.kernels else ""
        return f"{self.kind}_w{w}{k}_d{d}"

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Arch":
        return cls(d["kind"], tuple(d["widths"]), tuple(float(p) for p in d["dropouts"]), tuple(d.get("kernels", ())))


def space_size(kind: str) -> int:
    """Number of distinct architectures, counting the dropout grid as the paper does.

    CNN: Σ_{L=1..7} (128 widths · 8 kernels · 5 dropouts)^L = Σ 5120^L ≈ 9.23e25.
    LSTM: Σ_{L=2..4} 63^L · 5^(L−1) (no dropout after the last layer) ≈ 1.98e9.
    """
    if kind == "cnn":
        per = len(CNN_SPACE["channels"]) * len(CNN_SPACE["kernel"]) * len(CNN_SPACE["dropout"])
        return sum(per ** n for n in CNN_SPACE["layers"])
    if kind == "lstm":
        h, d = len(LSTM_SPACE["hidden"]), len(LSTM_SPACE["dropout"])
        return sum(h ** n * d ** (n - 1) for n in LSTM_SPACE["layers"])
    raise ValueError(f"unknown kind {kind!r}; 'cnn' or 'lstm'")


def sample(n: int, seed: int = 0, seq_len: int = 100) -> list[Arch]:
    """``n`` architectures drawn uniformly per choice, CNN with probability 3/4 (the paper's 3:1), seeded."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        if rng.random() < 0.75:
            layers = rng.choice(CNN_SPACE["layers"])
            widths = tuple(rng.choice(CNN_SPACE["channels"]) for _ in range(layers))
            kernels = tuple(rng.choice(CNN_SPACE["kernel"]) for _ in range(layers))
            drops = tuple(rng.choice(CNN_SPACE["dropout"]) for _ in range(layers))
            if sum(k - 1 for k in kernels) >= seq_len:
                continue   # would shrink the window to nothing (unpadded convolutions)
            out.append(Arch("cnn", widths, drops, kernels))
        else:
            layers = rng.choice(LSTM_SPACE["layers"])
            widths = tuple(rng.choice(LSTM_SPACE["hidden"]) for _ in range(layers))
            drops = tuple(rng.choice(LSTM_SPACE["dropout"]) for _ in range(layers - 1)) + (0.0,)
            out.append(Arch("lstm", widths, drops))
    return out


class TableICNN(nn.Module):
    """Table I CNN: blocks of Conv1d -> ReLU -> Dropout, global average pool, Linear."""

    def __init__(self, in_channels: int, seq_len: int, num_classes: int, widths: tuple[int, ...],
                 kernels: tuple[int, ...], dropouts: tuple[float, ...]) -> None:
        super().__init__()
        if sum(k - 1 for k in kernels) >= seq_len:
            raise ValueError(f"kernels {kernels} leave no output for windows of {seq_len} samples")
        layers: list[nn.Module] = []
        c = in_channels
        for w, k, p in zip(widths, kernels, dropouts):
            layers += [nn.Conv1d(c, w, k), nn.ReLU(), nn.Dropout(p)]
            c = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.flatten = nn.Flatten()
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.flatten(self.pool(self.features(x))))


class TableILSTM(nn.Module):
    """Table I LSTM: stacked single-layer LSTMs with dropout between them, Linear on the last step."""

    def __init__(self, in_channels: int, seq_len: int, num_classes: int, widths: tuple[int, ...],
                 dropouts: tuple[float, ...]) -> None:
        super().__init__()
        self.lstms = nn.ModuleList()
        self.drops = nn.ModuleList()
        c = in_channels
        for w, p in zip(widths, dropouts):
            self.lstms.append(nn.LSTM(c, w, batch_first=True))
            self.drops.append(nn.Dropout(p) if p > 0 else nn.Identity())
            c = w
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.transpose(1, 2)
        for lstm, drop in zip(self.lstms, self.drops):
            h, _ = lstm(h)
            h = drop(h)
        return self.classifier(h[:, -1, :])


def build(arch: Arch, in_channels: int, seq_len: int, num_classes: int, init: str = "xavier") -> nn.Module:
    """The torch module of ``arch``; ``init="xavier"``: Xavier-normal weights (the paper), zero biases."""
    if arch.kind == "cnn":
        net: nn.Module = TableICNN(in_channels, seq_len, num_classes, arch.widths, arch.kernels, arch.dropouts)
    elif arch.kind == "lstm":
        net = TableILSTM(in_channels, seq_len, num_classes, arch.widths, arch.dropouts)
    else:
        raise ValueError(f"unknown architecture kind {arch.kind!r}")
    if init == "xavier":
        for name, p in net.named_parameters():
            if p.dim() >= 2:
                nn.init.xavier_normal_(p)
            else:
                nn.init.zeros_(p)
    elif init != "torch":
        raise ValueError(f"init must be 'xavier' or 'torch', got {init!r}")
    return net


def median_archs() -> tuple[Arch, Arch]:
    """Table I's median-size CNN (4 blocks, 512 channels, k 5, dropout 0.3) and LSTM (3 layers, 256)."""
    return (Arch("cnn", (512,) * 4, (0.3,) * 4, (5,) * 4), Arch("lstm", (256,) * 3, (0.3, 0.3, 0.0)))

