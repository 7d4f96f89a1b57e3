"""Operator choice by the Gumbel-max trick with the Gumbel-softmax gradient (SFTNAS Eq. 5-7).

The architecture parameters are stored as **log-weights** ``log(alpha)`` (the logits of Eq. 5 and 7):
``alpha`` itself must stay positive for ``log(alpha)`` to exist, which a plain Adam step on ``alpha`` does not
guarantee. The paper initializes every ``alpha`` to 1e-3, i.e. equal weights and a uniform choice; harcore
initializes every logit to the same value (1e-3), which is the same uniform distribution.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

TAU0 = 5.0
TAU_DECAY = 0.05


def temperature(epoch: int, tau0: float = TAU0, decay: float = TAU_DECAY) -> float:
    """``tau = tau0 * exp(-decay * epoch)`` (the paper: tau0 = 5, decay 0.05, epoch counted from 0)."""
    return float(tau0) * math.exp(-float(decay) * int(epoch))


def sample_gumbel(shape: torch.Size | tuple[int, ...], generator: torch.Generator | None = None,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Standard Gumbel(0, 1) samples ``-log(-log(U))``."""
    u = torch.rand(shape, generator=generator, dtype=dtype)
    return -torch.log(-torch.log(u.clamp(1e-20, 1.0 - 1e-7)))


def gumbel_choice(logits: torch.Tensor, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """One-hot ``p = onehot(argmax_j(log alpha_j + g_j))`` (Eq. 5) whose gradient is that of the
    Gumbel-softmax ``softmax((log alpha + g) / tau)`` (Eq. 7), for one layer's 1-D ``logits``.

    ``P(argmax = j) = softmax(logits)_j`` for any ``tau``; ``tau`` only shapes the gradient.
    """
    if logits.dim() != 1:
        raise ValueError(f"gumbel_choice: logits must be 1-D (one layer), got shape {tuple(logits.shape)}")
    if not tau > 0:
        raise ValueError(f"gumbel_choice: tau must be > 0, got {tau}")
    g = sample_gumbel(logits.shape, generator, logits.dtype).to(logits.device)
    soft = F.softmax((logits + g) / tau, dim=0)
    hard = F.one_hot(torch.argmax(soft.detach()), logits.numel()).to(soft.dtype)
    return hard - soft.detach() + soft


def gumbel_choices(logits: list[torch.Tensor], tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """:func:`gumbel_choice` for every layer, concatenated (the flat probs layout of ``harcore.nas.hw_loss``)."""
    return torch.cat([gumbel_choice(l, tau, generator) for l in logits])
