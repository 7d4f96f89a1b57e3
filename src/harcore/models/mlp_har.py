"""MLP-HAR (Y. Zhou et al., 'MLP-HAR: Boosting Performance and Efficiency of HAR Models on Edge Devices with
Purely Fully Connected Layers', UbiComp/ISWC'24 companion, doi:10.1145/3675095.3676624).

Built after teco-kit/whar-models ``src/whar_models/mlp_har/model.py`` (``FFTMIXER_HAR_Model``; an earlier copy
is tk-king/MicroNas ``I2S0W2C2_CFC/models/MixerMLP.py``) with the configuration of tk-king/MicroNas
``I2S0W2C2_CFC/configs/model.yaml`` key ``mixermlp``: filter_num 4, segment length 16, expansion 0.2,
2 mixer layers, per-channel (not shared) embeddings, time and FFT branches; the remaining switches at the
whar-models defaults (overlap 0.5, skip connections, temporal_merge, no early fusion).
(whar-models' own defaults, filter_num 6 / expansion 1.0, give a 9x larger network.)

Layout (E = 2F):

1. Cut every channel into N overlapping segments of length S (step S/2; a last segment is added so the
   window end is covered): (B, C, N, S).
2. Per channel c: time branch ``ReLU(x W_t[c] + b_t[c])`` (S -> F) and FFT branch on [Re, Im] of the
   segment's FFT (2S -> F), each followed by LayerNorm over (N, F); concatenated and fused by
   Linear(2F -> 2F) + ReLU. The per-channel weights are applied with two-operand ``einsum``.
3. Mixer layers: a token mixer per channel over the flattened (N, E) (LayerNorm, MLP, skip, LayerNorm)
   and a channel mixer per segment over the flattened (E, C) (MLP, skip).
4. Per channel: Linear(N*E -> E) -> LayerNorm -> ReLU; Linear(C*E -> num_classes).

Notes. The FFT is ``torch.fft.fft``: torch.fx records it as a ``call_function`` node with a complex
output (``.real``/``.imag`` are getattr nodes). Neither anchors.md's core MACs nor ptflops count it;
harcore's cost model traces each part into a ``dft`` op costed as a direct DFT (n*n MACs per segment and
part; on UCI 69,120 MACs on top of the figures below, docs/models.md). The
reference cuts the segments with ``torch.cat`` + ``reshape`` in an order that interleaves segments of
different channels before the per-channel projection; here each channel keeps its own segments (what the
per-channel weights imply). Parameter and MAC counts are the same either way.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import register_model

_REFERENCE = {
    "paper": "Y. Zhou et al., 'MLP-HAR: Boosting Performance and Efficiency of HAR Models on Edge Devices with "
             "Purely Fully Connected Layers', UbiComp/ISWC 2024 companion, doi:10.1145/3675095.3676624",
    "code": "teco-kit/whar-models src/whar_models/mlp_har/model.py (c64f359) with the tk-king/MicroNas "
            "I2S0W2C2_CFC/configs/model.yaml 'mixermlp' config (fa6b6d2)",
    "figures_source": "docs/anchors.md sections 1 and 2.6 (MicroNas-config row; the ptflops figure "
                      "excludes the einsum projections and the FFT; attn_macs = einsum MACs)",
    "figures": {
        "default": {
            "uci": {"params": 20_506, "core_macs": 181_872, "attn_macs": 25_920, "ptflops_macs": 198_918},
            "3x128": {"params": 15_352, "core_macs": 47_664, "attn_macs": 8_640, "ptflops_macs": 53_370},
        },
    },
}


def _segment_starts(seq_len: int, seg: int, overlap_ratio: float) -> list[int]:
    step = max(1, seg - int(seg * overlap_ratio))
    starts = list(range(0, seq_len - seg + 1, step))
    if starts[-1] != seq_len - seg:
        starts.append(seq_len - seg)
    return starts


class _MLP(nn.Module):
    def __init__(self, features: int, expansion: float, dropout: float = 0.0):
        super().__init__()
        hidden = max(1, int(round(features * expansion)))
        self.fc1 = nn.Linear(features, hidden)
        self.dropout1 = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, features)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout2(self.fc2(self.dropout1(F.relu(self.fc1(x)))))


class Embedding(nn.Module):
    """Per-channel time and FFT projections of the segments, (B, C, N, S) -> (B, C, N, 2F)."""

    def __init__(self, channels: int, segments: int, seg_len: int, feature_dim: int):
        super().__init__()
        self.C, self.N, self.Fd = channels, segments, feature_dim
        self.temporal_weight = nn.Parameter(torch.randn(channels, seg_len, feature_dim))
        self.temporal_bias = nn.Parameter(torch.randn(channels, feature_dim))
        self.fft_weight = nn.Parameter(torch.randn(channels, 2 * seg_len, feature_dim))
        self.fft_bias = nn.Parameter(torch.randn(channels, feature_dim))
        self.activation = nn.ReLU()
        self.norm_temporal = nn.LayerNorm(feature_dim * segments)
        self.norm_fft = nn.LayerNorm(feature_dim * segments)
        self.fusion_layer = nn.Linear(2 * feature_dim, 2 * feature_dim)

    def _project(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        y = torch.einsum("bcnt,ctf->bcnf", x, weight) + bias.unsqueeze(1)
        return self.activation(y.reshape(-1, self.C, self.N * self.Fd))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.norm_temporal(self._project(x, self.temporal_weight, self.temporal_bias))
        spec = torch.fft.fft(x, dim=-1)
        f = torch.cat([spec.real, spec.imag], dim=-1)
        f = self.norm_fft(self._project(f, self.fft_weight, self.fft_bias))
        merged = torch.cat([t.reshape(-1, self.C, self.N, self.Fd), f.reshape(-1, self.C, self.N, self.Fd)], dim=-1)
        return self.activation(self.fusion_layer(merged))


class MixerLayer(nn.Module):
    """Token mixer over (N, E) per channel, then channel mixer over (E, C) per segment; x is (B, C, N, E)."""

    def __init__(self, channels: int, segments: int, features: int, expansion: float):
        super().__init__()
        self.C, self.N, self.E = channels, segments, features
        self.norm1 = nn.LayerNorm(features * segments)
        self.token_mlp = _MLP(features * segments, expansion)
        self.norm2 = nn.LayerNorm(features * segments)
        self.channel_mlp = _MLP(features * channels, expansion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        C, N, E = self.C, self.N, self.E
        t = x.reshape(-1, C, N * E)
        t = self.norm2(self.token_mlp(self.norm1(t)) + t).reshape(-1, C, N, E)
        c = t.permute(0, 2, 3, 1).reshape(-1, N, E * C)                  # per segment, (E, C) flattened
        c = self.channel_mlp(c).reshape(-1, N, E, C).permute(0, 3, 1, 2)
        return c + t


@register_model("mlp_har", reference=_REFERENCE)
class MLPHAR(nn.Module):
    """MLP-HAR, Zhou et al. ISWC'24 (whar-models code, MicroNas 'mixermlp' config: F=4, expansion 0.2)."""

    def __init__(self, in_channels: int, seq_len: int, num_classes: int, *, filter_num: int = 4,
                 segment_length: int = 16, expansion_factor: float = 0.2, mixer_layers: int = 2,
                 overlap_ratio: float = 0.5):
        super().__init__()
        if not 0.0 <= overlap_ratio < 1.0:
            raise ValueError(f"mlp_har: overlap_ratio must be in [0, 1), got {overlap_ratio}")
        if not 1 <= segment_length <= seq_len:
            raise ValueError(f"mlp_har: segment_length={segment_length} must be in [1, seq_len={seq_len}]")
        starts = _segment_starts(seq_len, segment_length, overlap_ratio)
        index = torch.tensor([[s + i for i in range(segment_length)] for s in starts], dtype=torch.long)
        self.register_buffer("segment_index", index, persistent=False)     # (N, S)
        C, N, E = in_channels, len(starts), 2 * filter_num
        self.C, self.N, self.E = C, N, E

        self.embedding = Embedding(C, N, segment_length, filter_num)
        self.mixer = nn.Sequential(*[MixerLayer(C, N, E, expansion_factor) for _ in range(mixer_layers)])
        self.merge = nn.Linear(N * E, E)
        self.norm = nn.LayerNorm(E)
        self.predict = nn.Linear(C * E, num_classes)
        self.in_channels, self.seq_len = in_channels, seq_len

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, self.segment_index]                      # (B, C, T) -> (B, C, N, S)
        x = self.mixer(self.embedding(x))                    # (B, C, N, E)
        x = F.relu(self.norm(self.merge(x.reshape(-1, self.C, self.N * self.E))))
        return self.predict(x.reshape(-1, self.C * self.E))
