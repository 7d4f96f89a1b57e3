"""Attend and Discriminate (A. Abedin et al., 'Attend and Discriminate: Beyond the
State-of-the-Art for Human Activity Recognition Using Wearable Sensors', IMWUT 5(1), 2021).

Built after AdelaideAuto-IDLab/Attend-And-Discriminate ``models.py`` / ``utils/utils_attention.py`` and the
identical copy teco-kit/ISWC22-HAR ``models/Attend.py``, with the authors' Opportunity settings:
filter_num 64, filter_size 5, 2-layer unidirectional GRU(128), ReLU, sa_div 1, dropout 0.5, dropout_rnn 0.25,
dropout_cls 0.5.

Layout on a ``(B, 1, T, C)`` view:

1. 4 x [Conv2d (5,1) valid -> ReLU], 64 filters, no BN.
2. Per time step, SAGAN/fastai self-attention across sensor channels on (F, C): q, k, v are 1x1 Conv1d
   without bias (kaiming init); beta = softmax(q^T k, dim=1); out = gamma * v beta + x (gamma init 0).
   The reference loops over time steps; here all steps go through one batched call (same numbers).
3. Dropout, GRU (2 layers, 128, dropout 0.25 between layers). The reference runs it sequence-first;
   here ``batch_first=True`` (same weights and result).
4. Temporal attention: Linear(128 -> 1), softmax over time, weighted sum; dropout; Linear(128 -> K).

The reference also returns an L2-normalised copy of the feature for its center loss; only the logits
are returned here (the normalisation does not feed the logits).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import register_model

_REFERENCE = {
    "paper": "A. Abedin et al., 'Attend and Discriminate: Beyond the "
             "State-of-the-Art for Human Activity Recognition Using Wearable Sensors', Proc. ACM IMWUT 5(1), 2021",
    "code": "AdelaideAuto-IDLab/Attend-And-Discriminate models.py; teco-kit/ISWC22-HAR models/Attend.py (b84b89d)",
    "figures_source": "docs/anchors.md sections 1 and 2.4 (params, core MACs, attn-matmul MACs, ptflops 0.7.5)",
    "figures": {
        "default": {
            "uci": {"params": 445_384, "core_macs": 118_189_568, "attn_macs": 1_161_216, "ptflops_macs": 120_548_438},
            "3x128": {"params": 297_928, "core_macs": 50_416_640, "attn_macs": 129_024, "ptflops_macs": 51_191_510},
            "3x80": {"params": 297_928, "core_macs": 29_130_752, "attn_macs": 73_728, "ptflops_macs": 29_579_462},
        },
    },
}


def _conv1x1(c_in: int, c_out: int) -> nn.Conv2d:
    # A 1x1 Conv2d over (B, F, L, C) is the reference's per-time-step 1x1 Conv1d over (F, C):
    # same weights (c_out, c_in, 1[, 1]), same fan-in for the kaiming init, same MACs.
    conv = nn.Conv2d(c_in, c_out, 1, bias=False)
    nn.init.kaiming_normal_(conv.weight)
    return conv


class SelfAttention(nn.Module):
    """SAGAN-style self-attention across the sensor channels C of every time step of (B, F, L, C)
    (fastai ``SelfAttention``), batched over (B, L) so the batch stays its own dimension."""

    def __init__(self, n_channels: int, div: int = 1):
        super().__init__()
        qk = n_channels // div if n_channels > 1 else n_channels
        self.query = _conv1x1(n_channels, qk)
        self.key = _conv1x1(n_channels, qk)
        self.value = _conv1x1(n_channels, n_channels)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:          # (B, F, L, C) -> (B, L, F, C)
        f = self.query(x).permute(0, 2, 3, 1)                     # (B, L, C, F')
        g = self.key(x).permute(0, 2, 1, 3)                       # (B, L, F', C)
        h = self.value(x).permute(0, 2, 1, 3)                     # (B, L, F, C)
        beta = F.softmax(torch.matmul(f, g), dim=2)              # (B, L, C, C)
        return self.gamma * torch.matmul(h, beta) + x.permute(0, 2, 1, 3)


class TemporalAttention(nn.Module):
    def __init__(self, hidden_dim: int):
        super().__init__()
        self.fc = nn.Linear(hidden_dim, 1)
        self.sm = nn.Softmax(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:      # (B, L, H) -> (B, H)
        weights = self.sm(self.fc(x).squeeze(2)).unsqueeze(2)
        return torch.sum(weights * x, 1)


@register_model("attend_discriminate", reference=_REFERENCE)
class AttendDiscriminate(nn.Module):
    """Attend and Discriminate, Abedin et al. IMWUT 2021 (4 conv 64, channel self-attention, 2xGRU128, temporal attention)."""

    def __init__(self, in_channels: int, seq_len: int, num_classes: int, *, filter_num: int = 64,
                 filter_size: int = 5, hidden_dim: int = 128, enc_num_layers: int = 2, sa_div: int = 1,
                 dropout: float = 0.5, dropout_rnn: float = 0.25, dropout_cls: float = 0.5,
                 activation: str = "ReLU"):
        super().__init__()
        if activation not in ("ReLU", "Tanh"):
            raise ValueError(f"attend_discriminate: activation must be 'ReLU' or 'Tanh', got {activation!r}")
        self.conv1 = nn.Conv2d(1, filter_num, (filter_size, 1))
        self.conv2 = nn.Conv2d(filter_num, filter_num, (filter_size, 1))
        self.conv3 = nn.Conv2d(filter_num, filter_num, (filter_size, 1))
        self.conv4 = nn.Conv2d(filter_num, filter_num, (filter_size, 1))
        self.activation = nn.ReLU() if activation == "ReLU" else nn.Tanh()
        self.t_out = seq_len - 4 * (filter_size - 1)
        if self.t_out < 1:
            raise ValueError(f"attend_discriminate: seq_len={seq_len} is too short for 4 valid convs of {filter_size}")
        self.channels, self.filters = in_channels, filter_num

        self.sa = SelfAttention(filter_num, sa_div)
        self.dropout = nn.Dropout(dropout)
        self.rnn = nn.GRU(filter_num * in_channels, hidden_dim, enc_num_layers,
                          dropout=dropout_rnn if enc_num_layers > 1 else 0.0, batch_first=True)
        self.ta = TemporalAttention(hidden_dim)
        self.dropout_cls = nn.Dropout(dropout_cls)
        self.classifier = nn.Linear(hidden_dim, num_classes)
        self.in_channels, self.seq_len = in_channels, seq_len

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        L, C, Fn = self.t_out, self.channels, self.filters
        x = x.transpose(1, 2).unsqueeze(1)                   # (B, 1, T, C)
        x = self.activation(self.conv1(x))
        x = self.activation(self.conv2(x))
        x = self.activation(self.conv3(x))
        x = self.activation(self.conv4(x))                   # (B, F, L, C)
        x = self.sa(x).reshape(-1, L, Fn * C)                # attention per time step, (B, L, F*C)
        x = self.dropout(x)
        x, _ = self.rnn(x)
        x = self.ta(x)
        return self.classifier(self.dropout_cls(x))
