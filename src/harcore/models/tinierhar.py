"""TinierHAR (S. Bian et al., 'TinierHAR: Towards Ultra-Lightweight Deep Learning Models for Efficient Human
Activity Recognition on Edge Devices', arXiv:2507.07949, 2025).

Built after zhaxidele/TinierHAR ``models/TinierHAR.py`` (class ``DeepConvGRU``, logged as ``deepconvgru``)
with ``configs/model.yaml`` key ``tinierhar``: nb_filters F=4, nb_conv_blocks=4, nb_units_gru=16,
drop_prob=0.3, kernel 5 (hard-coded in the reference). Paper (arXiv 2507.07949): residual
depthwise-separable convs + GRU + temporal aggregation.

Layout on a ``(B, 1, T, C)`` view:

* Residual blocks ``[depthwise Conv2d (5,1), groups=C_in, 'same' -> pointwise 1x1 -> BN -> ReLU (-> MaxPool (2,1))]``
  plus a shortcut (1x1 conv + BN when the width changes, MaxPool when the block pools), added after the pool.
  Blocks: 1 -> F (pool), F -> 2F (pool), then ``nb_conv_blocks`` x 2F -> 2F (no pool). T -> T/4.
* Reshape to (B, T/4, 2F*C), dropout, bidirectional GRU(16), temporal attention Linear(2H -> 1) with a
  softmax over time and a weighted sum, Linear(2H -> num_classes).

Component variants (model options; :data:`VARIANTS` names them). The paper's ablation dissects its
spatial-temporal components (residual depthwise-separable convs, GRU, temporal aggregation; the text at hand
is its abstract only, so the exact ablation grid is not reproduced here): ``residual=False``
drops the shortcuts, ``rnn="lstm"`` swaps the GRU for an LSTM, ``bidirectional=False`` keeps the forward
direction, ``aggregation`` "attention" (the paper's), "mean" or "last" replaces the temporal aggregation.
Widths: ``nb_filters`` and ``nb_units_gru``.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from . import register_model

#: TinierHAR's component variants as model options ("base" is the reference build).
VARIANTS: dict[str, dict[str, object]] = {
    "base": {},
    "no_residual": {"residual": False},
    "lstm": {"rnn": "lstm"},
    "unidirectional": {"bidirectional": False},
    "mean_aggregation": {"aggregation": "mean"},
    "last_step": {"aggregation": "last"},
}

_REFERENCE = {
    "paper": "S. Bian et al., 'TinierHAR: Towards Ultra-Lightweight Deep "
             "Learning Models for Efficient Human Activity Recognition on Edge Devices', arXiv:2507.07949, 2025",
    "code": "zhaxidele/TinierHAR models/TinierHAR.py (d5f6525), configs/model.yaml 'tinierhar'",
    "figures_source": "docs/anchors.md sections 1 and 2.1; 'uci'/'3x80' ptflops and params equal "
                      "zhaxidele/TinierHAR Run_logs/macs_params.txt ('deepconvgru': 637414 / 9589 and 159418 / 4981)",
    "figures": {
        "default": {
            "uci": {"params": 9_589, "core_macs": 454_720, "attn_macs": 0, "ptflops_macs": 637_414},
            "3x128": {"params": 4_981, "core_macs": 185_152, "ptflops_macs": 254_950},
            "3x80": {"params": 4_981, "core_macs": 115_792, "ptflops_macs": 159_418},
        },
    },
}


class DepthwiseSeparableConv(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel_size: int, dilation: int = 1):
        super().__init__()
        pad = (dilation * (kernel_size - 1) + 1) // 2
        self.depthwise = nn.Conv2d(c_in, c_in, (kernel_size, 1), padding=(pad, 0), dilation=(dilation, 1),
                                   groups=c_in)
        self.pointwise = nn.Conv2d(c_in, c_out, (1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class ResidualConvBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel_size: int, pool: bool, residual: bool = True):
        super().__init__()
        main = [DepthwiseSeparableConv(c_in, c_out, kernel_size), nn.BatchNorm2d(c_out), nn.ReLU()]
        short: list[nn.Module] = []
        if c_in != c_out:
            short += [nn.Conv2d(c_in, c_out, (1, 1)), nn.BatchNorm2d(c_out)]
        if pool:
            main.append(nn.MaxPool2d((2, 1)))
            short.append(nn.MaxPool2d((2, 1)))
        self.conv = nn.Sequential(*main)
        self.residual = residual
        if residual:
            self.shortcut = nn.Sequential(*short) if short else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.residual:
            return self.conv(x)
        return self.conv(x) + self.shortcut(x)


@register_model("tinierhar", reference=_REFERENCE)
class TinierHAR(nn.Module):
    """TinierHAR, Bian et al. 2025 (zhaxidele/TinierHAR, F=4, 4 extra blocks, BiGRU 16, temporal attention)."""

    def __init__(self, in_channels: int, seq_len: int, num_classes: int, *, nb_filters: int = 4,
                 nb_conv_blocks: int = 4, nb_units_gru: int = 16, drop_prob: float = 0.3, kernel_size: int = 5,
                 residual: bool = True, rnn: str = "gru", bidirectional: bool = True, aggregation: str = "attention"):
        super().__init__()
        if rnn not in ("gru", "lstm"):
            raise ValueError(f"tinierhar: rnn must be 'gru' or 'lstm', got {rnn!r}")
        if aggregation not in ("attention", "mean", "last"):
            raise ValueError(f"tinierhar: aggregation must be 'attention', 'mean' or 'last', got {aggregation!r}")
        for name, v in (("residual", residual), ("bidirectional", bidirectional)):
            if v not in (True, False):  # 0/1 from a command line are fine, "no" is not
                raise ValueError(f"tinierhar: {name} must be a bool, got {v!r}")
        residual, bidirectional = bool(residual), bool(bidirectional)
        f = nb_filters
        blocks = [ResidualConvBlock(1, f, kernel_size, pool=True, residual=residual),
                  ResidualConvBlock(f, 2 * f, kernel_size, pool=True, residual=residual)]
        blocks += [ResidualConvBlock(2 * f, 2 * f, kernel_size, pool=False, residual=residual)
                   for _ in range(nb_conv_blocks)]
        self.conv_blocks = nn.Sequential(*blocks)
        self.t_out = (seq_len // 2) // 2       # 'same' convs keep T; two MaxPool (2,1) floor-halve it
        if self.t_out < 1:
            raise ValueError(f"tinierhar: seq_len={seq_len} is too short for two 2x poolings")
        self.features = 2 * f * in_channels

        self.dropout = nn.Dropout(drop_prob)
        rnn_cls = nn.GRU if rnn == "gru" else nn.LSTM
        self.gru = rnn_cls(self.features, nb_units_gru, bidirectional=bidirectional, batch_first=True)
        width = (2 if bidirectional else 1) * nb_units_gru
        self.aggregation = aggregation
        if aggregation == "attention":
            self.attention = nn.Linear(width, 1)
        self.classifier = nn.Linear(width, num_classes)
        self.in_channels, self.seq_len = in_channels, seq_len

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2).unsqueeze(1)                   # (B, 1, T, C)
        x = self.conv_blocks(x)                              # (B, 2F, T/4, C)
        x = x.permute(0, 2, 1, 3).reshape(-1, self.t_out, self.features)
        x = self.dropout(x)
        x, _ = self.gru(x)                                   # (B, T/4, 2H)
        if self.aggregation == "attention":
            weights = torch.softmax(self.attention(x), dim=1)
            x = torch.sum(weights * x, dim=1)
        elif self.aggregation == "mean":
            x = x.mean(dim=1)
        else:
            x = x[:, -1, :]
        return self.classifier(x)
