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
"""

from __future__ import annotations

import torch
import torch.nn as nn

from . import register_model

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
    def __init__(self, c_in: int, c_out: int, kernel_size: int, pool: bool):
        super().__init__()
        main = [DepthwiseSeparableConv(c_in, c_out, kernel_size), nn.BatchNorm2d(c_out), nn.ReLU()]
        short: list[nn.Module] = []
        if c_in != c_out:
            short += [nn.Conv2d(c_in, c_out, (1, 1)), nn.BatchNorm2d(c_out)]
        if pool:
            main.append(nn.MaxPool2d((2, 1)))
            short.append(nn.MaxPool2d((2, 1)))
        self.conv = nn.Sequential(*main)
        self.shortcut = nn.Sequential(*short) if short else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.shortcut(x)


@register_model("tinierhar", reference=_REFERENCE)
class TinierHAR(nn.Module):
    """TinierHAR, Bian et al. 2025 (zhaxidele/TinierHAR, F=4, 4 extra blocks, BiGRU 16, temporal attention)."""

    def __init__(self, in_channels: int, seq_len: int, num_classes: int, *, nb_filters: int = 4,
                 nb_conv_blocks: int = 4, nb_units_gru: int = 16, drop_prob: float = 0.3, kernel_size: int = 5):
        super().__init__()
        f = nb_filters
        blocks = [ResidualConvBlock(1, f, kernel_size, pool=True), ResidualConvBlock(f, 2 * f, kernel_size, pool=True)]
        blocks += [ResidualConvBlock(2 * f, 2 * f, kernel_size, pool=False) for _ in range(nb_conv_blocks)]
        self.conv_blocks = nn.Sequential(*blocks)
        self.t_out = (seq_len // 2) // 2       # 'same' convs keep T; two MaxPool (2,1) floor-halve it
        if self.t_out < 1:
            raise ValueError(f"tinierhar: seq_len={seq_len} is too short for two 2x poolings")
        self.features = 2 * f * in_channels

        self.dropout = nn.Dropout(drop_prob)
        self.gru = nn.GRU(self.features, nb_units_gru, bidirectional=True, batch_first=True)
        self.attention = nn.Linear(2 * nb_units_gru, 1)
        self.classifier = nn.Linear(2 * nb_units_gru, num_classes)
        self.in_channels, self.seq_len = in_channels, seq_len

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2).unsqueeze(1)                   # (B, 1, T, C)
        x = self.conv_blocks(x)                              # (B, 2F, T/4, C)
        x = x.permute(0, 2, 1, 3).reshape(-1, self.t_out, self.features)
        x = self.dropout(x)
        x, _ = self.gru(x)                                   # (B, T/4, 2H)
        weights = torch.softmax(self.attention(x), dim=1)
        x = torch.sum(weights * x, dim=1)
        return self.classifier(x)
