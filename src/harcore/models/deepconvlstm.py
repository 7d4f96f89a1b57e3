"""DeepConvLSTM (Ordonez & Roggen, Sensors 16(1):115, 2016, doi:10.3390/s16010115).

Two layouts, chosen with ``variant``:

* ``"paper"`` (default): 4 x [Conv (k x 1), 64 filters, stride 1, valid, ReLU], 2 x LSTM(128), the last
  time step, Linear. Same as teco-kit/whar-models ``src/whar_models/deepconv_lstm/model.py``
  (``DEEPCONV_LSTM``, "aligned with the STRCWearlab notebook").
* ``"teco"``: the variant of teco-kit/ISWC22-HAR ``models/deepconvlstm.py`` (also zhaxidele/TinierHAR),
  the "DeepConvLSTM" the TinyHAR/TinierHAR papers compare with: 2 blocks of [Conv (k x 1) -> ReLU ->
  Conv (k x 1, stride (2,1)) -> ReLU], dropout 0.5, 1 x LSTM(128), last step, Linear.

Like the references, the convs are ``Conv2d`` with ``(k, 1)`` kernels over a ``(B, 1, T, C)`` view, i.e.
temporal convs whose weights are shared by all sensor channels; the LSTM sees ``filters * C`` features.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from . import register_model

_REFERENCE = {
    "paper": "F. J. Ordonez, D. Roggen, 'Deep Convolutional and LSTM Recurrent Neural Networks for Multimodal "
             "Wearable Activity Recognition', Sensors 16(1):115, 2016",
    "code": {"paper": "teco-kit/whar-models src/whar_models/deepconv_lstm/model.py (c64f359)",
             "teco": "teco-kit/ISWC22-HAR models/deepconvlstm.py (b84b89d); config nb_conv_blocks=2, nb_filters=64, "
                     "filter_width=5, batch_norm=0, nb_layers_lstm=1, nb_units_lstm=128, drop_prob=0.5"},
    "figures_source": "docs/anchors.md section 1 (params, core MACs, ptflops 0.7.5 backend='pytorch'); "
                      "the teco 'uci'/'3x80' ptflops figures equal zhaxidele/TinierHAR Run_logs/macs_params.txt "
                      "('deepconvlstm': 36422534 / 424262 and 7528838 / 227654)",
    "figures": {
        "paper": {
            "uci": {"params": 556_358, "core_macs": 119_551_488, "attn_macs": 0, "ptflops_macs": 120_883_206},
            "3x128": {"params": 359_750, "core_macs": 54_531_072, "ptflops_macs": 55_319_046},
            "3x80": {"params": 359_750, "core_macs": 31_481_856, "ptflops_macs": 31_938_054},
        },
        "teco": {
            "uci": {"params": 424_262, "core_macs": 35_902_976, "attn_macs": 0, "ptflops_macs": 36_422_534},
            "3x128": {"params": 227_654, "core_macs": 13_104_128, "ptflops_macs": 13_317_254},
            "3x80": {"params": 227_654, "core_macs": 7_405_568, "ptflops_macs": 7_528_838},
        },
    },
}


@register_model("deepconvlstm", reference=_REFERENCE)
class DeepConvLSTM(nn.Module):
    """DeepConvLSTM, Ordonez & Roggen 2016: per-sensor temporal convs + LSTM, logits from the last step."""

    def __init__(self, in_channels: int, seq_len: int, num_classes: int, *, variant: str = "paper",
                 filters: int = 64, kernel_size: int = 5, lstm_units: int = 128,
                 lstm_layers: int | None = None, dropout: float | None = None):
        super().__init__()
        if variant not in ("paper", "teco"):
            raise ValueError(f"deepconvlstm: variant must be 'paper' or 'teco', got {variant!r}")
        if lstm_layers is None:
            lstm_layers = 2 if variant == "paper" else 1
        if dropout is None:
            dropout = 0.0 if variant == "paper" else 0.5
        self.variant = variant

        layers: list[nn.Module] = []
        t, c_in = seq_len, 1
        if variant == "paper":
            for _ in range(4):
                layers += [nn.Conv2d(c_in, filters, (kernel_size, 1)), nn.ReLU()]
                t, c_in = t - kernel_size + 1, filters
        else:
            relu = nn.ReLU()  # the reference shares one ReLU module inside each block
            for _ in range(2):
                layers += [nn.Conv2d(c_in, filters, (kernel_size, 1)), relu,
                           nn.Conv2d(filters, filters, (kernel_size, 1), stride=(2, 1)), relu]
                t = t - kernel_size + 1
                t = (t - kernel_size) // 2 + 1
                c_in = filters
        if t < 1:
            raise ValueError(f"deepconvlstm ({variant}): seq_len={seq_len} is too short for the conv stack")
        self.conv = nn.Sequential(*layers)
        self.t_out, self.features = t, filters * in_channels

        self.dropout = nn.Dropout(dropout)
        self.lstm_layers = nn.ModuleList(
            nn.LSTM(self.features if i == 0 else lstm_units, lstm_units, batch_first=True)
            for i in range(lstm_layers))
        self.fc = nn.Linear(lstm_units, num_classes)
        self.in_channels, self.seq_len = in_channels, seq_len

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.transpose(1, 2).unsqueeze(1)                   # (B, C, T) -> (B, 1, T, C)
        x = self.conv(x)                                     # (B, F, T', C)
        x = x.permute(0, 2, 1, 3).reshape(-1, self.t_out, self.features)
        x = self.dropout(x)
        for lstm in self.lstm_layers:
            x, _ = lstm(x)
        return self.fc(x[:, -1, :])
