"""TinyHAR (Zhou et al., 'TinyHAR: A Lightweight Deep Learning Model Designed for Human Activity
Recognition', ISWC'22 Best Paper, doi:10.1145/3544794.3558467).

Built after teco-kit/ISWC22-HAR ``models/TinyHAR.py`` with the configuration the authors trained with
(zhaxidele/TinierHAR ``train.py``, ISWC22-HAR ``notebooks/model/Train model.ipynb``), ``filter_num=20``
(ISWC22-HAR ``configs/model.yaml``), cross-channel interaction ``"attn"``, aggregation ``"FC"``, temporal
interaction ``"lstm"``, temporal aggregation ``"tnaive"``. The constructor defaults of the reference
(attn/filter/gru/FC) and the teco-kit/whar-models defaults (F=32, gru, FC) are different networks.

Layout on a ``(B, 1, T, C)`` view:

1. 4 x [Conv2d (5,1) valid -> ReLU -> BatchNorm2d], F filters; stride (2,1) in layers 1 and 3 only
   (the code's ``i % 2 == 1``; the README's "stride 2 in each layer" is not what the code does).
2. Per time step, self-attention across sensor channels on (C, F): q, k, v = Linear(F, F, bias=False),
   beta = softmax(q k^T, dim=1), out = gamma * (v^T beta)^T + x, gamma a learnable scalar (init 0).
   The reference loops over time steps; here all steps go through one batched call (same numbers).
3. Dropout 0.1; per step Linear(C*F -> 2F) + ReLU.
4. LSTM(2F, 2F).
5. "tnaive": a = softmax_t(fc2(tanh(fc1(h)))) (fc2 without bias); out = h[:, -1] + gamma * sum_t a*h.
6. Linear(2F -> num_classes).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import register_model

_REFERENCE = {
    "paper": "Y. Zhou et al., 'TinyHAR: A Lightweight Deep Learning "
             "Model Designed for Human Activity Recognition', ISWC 2022, doi:10.1145/3544794.3558467",
    "code": "teco-kit/ISWC22-HAR models/TinyHAR.py (b84b89d), filter_num 20, attn/FC/lstm/tnaive",
    "figures_source": "docs/anchors.md section 1 and 2.2; 'uci'/'3x80' ptflops and params equal "
                      "zhaxidele/TinierHAR Run_logs/macs_params.txt ('tinyhar': 3859938 / 29828 and 866106 / 25028)",
    "figures": {
        "default": {
            "uci": {"params": 29_828, "core_macs": 3_511_280, "attn_macs": 84_240, "ptflops_macs": 3_859_938},
            "3x128": {"params": 25_028, "core_macs": 1_420_880, "attn_macs": 9_360, "ptflops_macs": 1_533_186},
            "3x80": {"params": 25_028, "core_macs": 801_200, "attn_macs": 5_040, "ptflops_macs": 866_106},
        },
    },
}


class CrossChannelSelfAttention(nn.Module):
    """TinyHAR's ``SelfAttention_interaction`` on (B, L, C, F): attention across the C sensor channels
    of every time step. Batched over (B, L) with 4-D matmuls, so the batch stays its own dimension
    (the reference loops over time steps; weights and counts are the same)."""

    def __init__(self, features: int):
        super().__init__()
        self.query = nn.Linear(features, features, bias=False)
        self.key = nn.Linear(features, features, bias=False)
        self.value = nn.Linear(features, features, bias=False)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f, g, h = self.query(x), self.key(x), self.value(x)
        beta = F.softmax(torch.matmul(f, g.transpose(2, 3)), dim=2)                # (B, L, C, C)
        o = self.gamma * torch.matmul(h.transpose(2, 3), beta) + x.transpose(2, 3)  # (B, L, F, C)
        return o.transpose(2, 3)                                                    # (B, L, C, F)


class TemporalWeightedAggregation(nn.Module):
    """TinyHAR's ``"tnaive"`` aggregation over the time axis of (B, L, H)."""

    def __init__(self, hidden: int):
        super().__init__()
        self.fc_1 = nn.Linear(hidden, hidden)
        self.weighs_activation = nn.Tanh()
        self.fc_2 = nn.Linear(hidden, 1, bias=False)
        self.sm = nn.Softmax(dim=1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.fc_2(self.weighs_activation(self.fc_1(x))).squeeze(2)   # (B, L)
        weights = self.sm(out).unsqueeze(2)
        context = torch.sum(weights * x, 1)
        return x[:, -1, :] + self.gamma * context


@register_model("tinyhar", reference=_REFERENCE)
class TinyHAR(nn.Module):
    """TinyHAR, Zhou et al. ISWC'22 (teco-kit/ISWC22-HAR, F=20, attn / FC / lstm / tnaive)."""

    def __init__(self, in_channels: int, seq_len: int, num_classes: int, *, filter_num: int = 20,
                 nb_conv_layers: int = 4, filter_size: int = 5, dropout: float = 0.1):
        super().__init__()
        convs = []
        t, c_in = seq_len, 1
        for i in range(nb_conv_layers):
            stride = 2 if i % 2 == 1 else 1
            convs.append(nn.Sequential(nn.Conv2d(c_in, filter_num, (filter_size, 1), (stride, 1)),
                                       nn.ReLU(), nn.BatchNorm2d(filter_num)))
            t, c_in = (t - filter_size) // stride + 1, filter_num
            if t < 1:
                raise ValueError(f"tinyhar: seq_len={seq_len} is too short for {nb_conv_layers} conv layers")
        self.layers_conv = nn.ModuleList(convs)
        self.t_out, self.channels, self.filters = t, in_channels, filter_num

        self.channel_interaction = CrossChannelSelfAttention(filter_num)
        self.dropout = nn.Dropout(dropout)
        self.channel_fusion = nn.Linear(in_channels * filter_num, 2 * filter_num)
        self.activation = nn.ReLU()
        self.temporal_interaction = nn.LSTM(2 * filter_num, 2 * filter_num, batch_first=True)
        self.temporal_fusion = TemporalWeightedAggregation(2 * filter_num)
        self.prediction = nn.Linear(2 * filter_num, num_classes)
        self.in_channels, self.seq_len = in_channels, seq_len

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        L, C, Fn = self.t_out, self.channels, self.filters
        x = x.transpose(1, 2).unsqueeze(1)                   # (B, 1, T, C)
        for layer in self.layers_conv:
            x = layer(x)                                     # (B, F, L, C)
        x = self.channel_interaction(x.permute(0, 2, 3, 1))  # (B, L, C, F)
        x = self.dropout(x)
        x = self.activation(self.channel_fusion(x.reshape(-1, L, C * Fn)))   # (B, L, 2F)
        x, _ = self.temporal_interaction(x)
        x = self.temporal_fusion(x)
        return self.prediction(x)
