"""CNN teacher and distilled MLP student of Branstetter, Liu, Shcherbatyuk, 'Exploring Human Activity
Recognition with Convolutional Neural Network and Distilled Networks' (Dartmouth, Thayer School of
Engineering). No code or parameter/MAC figures are published; the
layouts are derived from the text as follows.

Teacher (``"cnn"``), paper §3.2: convolutional layers with growing filter counts "64, 128, 256, 512", each
followed by batch normalisation and ReLU, then "Adaptive Pooling that connects to a fully connected layer"
(so the model takes any window length). Input 128 readings x 9 inertial channels (§3.1), 6 classes.

* Conv1d over all sensor channels (the paper's "multichannel" input, §3), 'same' padding, conv bias on,
  no pooling between the convs: not stated, our reading.
* Kernel 3: not stated; derived from Table 2. The fp32 model is 2.20 MB: a kernel-3 stack has ~0.52 M
  parameters (2.1 MB), kernel 5 would already have ~0.87 M (3.5 MB).
* Adaptive *max* pooling to 8 steps, flatten, one Linear. The output length 8 is derived from Table 2.
  Post-training int8 quantization shrinks the model only from 2.20 to 2.12 MB (the student, all Linear, shrinks
  4x), i.e. only the Linear layer was quantized (PyTorch dynamic quantization) and the 0.08 MB saving is 3/4
  of a ~25 k-weight Linear: 512 * P * 6 = 24,576 gives P = 8. With P = 8 the weights plus BN statistics are
  2.19 MB fp32 and 2.12 MB with an int8 Linear (tests/test_models.py checks this against Table 2);
  ``pool_size=1`` gives the textbook global-pooling head instead. The pooling type is not stated, and Table
  2 cannot tell (both weigh the same). Max is harcore's choice, measured on HAPT's UCI-HAR-equivalent
  windows against average pooling, 3 seeds each with the paper's training setting (benchmarks/RESULTS.md).
  ``pool="avg"`` gives adaptive average pooling.

Student (``"cnn_student"``), paper §3.3: "a simple feedforward neural network", "fewer layers and
parameters". Table 2: 0.66 MB fp32, 0.17 MB int8. Our layout - flatten the window, Linear(C*T -> 128),
ReLU, Linear(128 -> 128), ReLU, Linear(128 -> K) - is the plain MLP whose fp32 and int8 weight sizes match
those two figures (widths and depth are not stated in the paper).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from . import register_model

_PAPER = ("J. Branstetter, Z. Liu, V. Shcherbatyuk, 'Exploring Human Activity Recognition with Convolutional "
          "Neural Network and Distilled Networks', Thayer School of Engineering, Dartmouth College")

_TEACHER_REFERENCE = {
    "paper": _PAPER,
    "code": "none public; layout derived from the paper text (see the module docstring)",
    "figures_source": "paper Tables 1-2 (UCI-HAR, standard 7352/2947 split); the paper gives no parameter "
                      "or MAC counts, so there is nothing to reproduce exactly",
    "figures": {},
    "paper_figures": {"accuracy": 0.959, "accuracy_int8": 0.958, "model_size_mb": 2.20, "model_size_mb_int8": 2.12},
}

_STUDENT_REFERENCE = {
    "paper": _PAPER,
    "code": "none public; layout derived from the paper text (see the module docstring)",
    "figures_source": "paper Tables 1-2 (UCI-HAR, standard 7352/2947 split); the paper gives no parameter "
                      "or MAC counts, so there is nothing to reproduce exactly",
    "figures": {},
    "paper_figures": {"accuracy": 0.889, "accuracy_int8": 0.889, "model_size_mb": 0.66, "model_size_mb_int8": 0.17},
}


@register_model("cnn", reference=_TEACHER_REFERENCE)
class HARCNN(nn.Module):
    """CNN teacher of Branstetter et al.: Conv1d 64-128-256-512 (BN, ReLU), adaptive pooling, Linear."""

    def __init__(self, in_channels: int, seq_len: int, num_classes: int, *,
                 widths: tuple = (64, 128, 256, 512), kernel_size: int = 3, pool_size: int = 8, pool: str = "max"):
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"cnn: pool must be 'avg' or 'max', got {pool!r}")
        if kernel_size % 2 != 1:
            raise ValueError(f"cnn: kernel_size must be odd for 'same' padding, got {kernel_size}")
        if not 1 <= pool_size <= seq_len:
            raise ValueError(f"cnn: pool_size must be in [1, seq_len={seq_len}], got {pool_size}")
        layers: list[nn.Module] = []
        c_in = in_channels
        for w in widths:
            layers += [nn.Conv1d(c_in, w, kernel_size, padding=kernel_size // 2), nn.BatchNorm1d(w), nn.ReLU()]
            c_in = w
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool1d(pool_size) if pool == "avg" else nn.AdaptiveMaxPool1d(pool_size)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(c_in * pool_size, num_classes)
        self.in_channels, self.seq_len = in_channels, seq_len

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.flatten(self.pool(self.features(x))))


@register_model("cnn_student", reference=_STUDENT_REFERENCE)
class HARCNNStudent(nn.Module):
    """Distilled student of Branstetter et al.: a feed-forward MLP on the flattened window (C*T -> 128 -> 128 -> K)."""

    def __init__(self, in_channels: int, seq_len: int, num_classes: int, *, hidden: tuple = (128, 128)):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        n_in = in_channels * seq_len
        for h in hidden:
            layers += [nn.Linear(n_in, h), nn.ReLU()]
            n_in = h
        layers.append(nn.Linear(n_in, num_classes))
        self.net = nn.Sequential(*layers)
        self.in_channels, self.seq_len = in_channels, seq_len

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)
