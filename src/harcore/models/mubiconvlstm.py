"""µBi-ConvLSTM (M. Mandal, 'µBi-ConvLSTM: An Ultra-Lightweight Efficient Model for Human Activity
Recognition on Resource Constrained Devices', arXiv:2602.06523, 2026).

No public code exists; the layout follows the paper (arXiv 2602.06523):

* §III-C, eq. (1) and Fig. 1: two blocks of Conv1d (F=16, K=5) -> BatchNorm -> ReLU -> MaxPool(2), T -> T/4.
  "Same" padding is our reading of Fig. 1/§III-C (T/4 = 32 steps for T = 128 requires it). The paper gives
  W1 in R^{F x C x K}; that the second block also has 16 filters is our assumption (anchors.md §2.5), and
  it reproduces the paper's Table V UCI-HAR figure of 420K MACs exactly (420,128).
* §III-D: one bidirectional LSTM, hidden 24, last time step ``H[:, -1, :]`` (48 features).
* §III-E, eq. (6): dropout, then Linear(48 -> num_classes) (the softmax of eq. 6 is left to the loss).
  The paper tunes the dropout rate per dataset (§IV-C, Optuna over 0-0.5); the default 0.2 is ours.

Ablations (§VI, Fig. 6) are model options; :data:`ABLATIONS` maps the paper's names to them: A0 the base,
A1 no max pooling (``pool=False``), A2 a unidirectional LSTM (``bidirectional=False``), A3 a single conv
block (``conv_blocks=1``, with its pooling: T -> T/2), A4 mean over time instead of the last step
(``aggregation="mean"``). Its width sweep (convFilters 8-24, lstmHidden 16-32) is :data:`WIDTHS`.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from . import register_model

#: The paper's ablation variants (§VI) as model options.
ABLATIONS: dict[str, dict[str, object]] = {
    "A0": {},
    "A1": {"pool": False},
    "A2": {"bidirectional": False},
    "A3": {"conv_blocks": 1},
    "A4": {"aggregation": "mean"},
}
#: The paper's width sweep (§VI: "varying convFilters 8-24, lstmHidden 16-32"); (16, 24) is the base.
WIDTHS: tuple[dict[str, int], ...] = tuple({"filters": f, "lstm_hidden": h} for f in (8, 16, 24) for h in (16, 24, 32))

_REFERENCE = {
    "paper": "M. Mandal, 'µBi-ConvLSTM: An Ultra-Lightweight Efficient Model for Human Activity Recognition on "
             "Resource Constrained Devices', arXiv:2602.06523, 2026",
    "code": "none public; built from the paper's description (anchors.md section 2.5)",
    "figures_source": "docs/anchors.md sections 1 and 2.5 (params, core MACs, ptflops 0.7.5); "
                      "paper Table V: 420K MACs on UCI-HAR",
    "figures": {
        "default": {
            "uci": {"params": 10_454, "core_macs": 420_128, "attn_macs": 0, "ptflops_macs": 469_286},
            "3x128": {"params": 9_974, "core_macs": 358_688, "ptflops_macs": 407_846},
            "3x80": {"params": 9_974, "core_macs": 224_288, "ptflops_macs": 255_014},
        },
    },
}


@register_model("mubiconvlstm", reference=_REFERENCE)
class MuBiConvLSTM(nn.Module):
    """µBi-ConvLSTM, Mandal 2026: 2 x (Conv1d 16, k5, BN, ReLU, MaxPool 2) + BiLSTM(24), last step, Linear."""

    def __init__(self, in_channels: int, seq_len: int, num_classes: int, *, filters: int = 16,
                 kernel_size: int = 5, lstm_hidden: int = 24, dropout: float = 0.2, conv_blocks: int = 2,
                 pool: bool = True, bidirectional: bool = True, aggregation: str = "last"):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"mubiconvlstm: kernel_size must be odd for 'same' padding, got {kernel_size}")
        if conv_blocks not in (1, 2):
            raise ValueError(f"mubiconvlstm: conv_blocks must be 1 or 2, got {conv_blocks!r}")
        if aggregation not in ("last", "mean"):
            raise ValueError(f"mubiconvlstm: aggregation must be 'last' or 'mean', got {aggregation!r}")
        for name, v in (("pool", pool), ("bidirectional", bidirectional)):
            if v not in (True, False):  # 0/1 from a command line are fine, "no" is not
                raise ValueError(f"mubiconvlstm: {name} must be a bool, got {v!r}")
        pool, bidirectional = bool(pool), bool(bidirectional)
        pad = kernel_size // 2
        layers: list[nn.Module] = []
        c_in = in_channels
        for _ in range(conv_blocks):
            layers += [nn.Conv1d(c_in, filters, kernel_size, padding=pad), nn.BatchNorm1d(filters), nn.ReLU()]
            if pool:
                layers.append(nn.MaxPool1d(2))
            c_in = filters
        self.features = nn.Sequential(*layers)
        if pool and seq_len // 2 ** conv_blocks < 1:
            raise ValueError(f"mubiconvlstm: seq_len={seq_len} is too short for {conv_blocks} 2x pooling(s)")
        self.lstm = nn.LSTM(filters, lstm_hidden, bidirectional=bidirectional, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear((2 if bidirectional else 1) * lstm_hidden, num_classes)
        self.mean = aggregation == "mean"
        self.in_channels, self.seq_len = in_channels, seq_len

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)                                 # (B, F, T/4)
        x, _ = self.lstm(x.transpose(1, 2))                  # (B, T/4, 2H)
        x = x.mean(dim=1) if self.mean else x[:, -1, :]
        return self.fc(self.dropout(x))
