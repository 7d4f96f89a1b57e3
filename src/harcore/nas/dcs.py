"""Differentiable Channel-wise Scaling (DCS) with a straight-through estimator (SFTNAS Eq. 1-4).

``b = 1[v > thres]`` in the forward pass, ``dL/dv = dL/db`` in the backward pass. The paper's threshold is
0.5. A DCS layer never prunes everything: the entry with the largest ``v`` is always kept, so the network
stays connected (a stage with zero sensors or zero filters has no output to classify from).
"""

from __future__ import annotations

import torch
import torch.nn as nn

THRESHOLD = 0.5


def ste_binarize(v: torch.Tensor, thres: float = THRESHOLD, keep_one: bool = True) -> torch.Tensor:
    """Binary mask ``1[v > thres]`` whose gradient is the identity (Eq. 3-4).

    With ``keep_one`` the largest entry of ``v`` is kept even when it is ``<= thres``.
    """
    hard = (v > thres).to(v.dtype)
    if keep_one:
        hard = hard.clone()
        hard.view(-1)[int(torch.argmax(v.detach()))] = 1.0
    return hard + v - v.detach()


class DCS(nn.Module):
    """A DCS layer: ``X * b`` with ``b = ste_binarize(v)``, ``v`` shaped to broadcast over ``X``.

    ``shape`` is the parameter's shape, e.g. ``(1, c0, 1)`` for the sensor channels of a ``(B, C, T)`` window
    (Eq. 1) or ``(F, 1, 1)`` for the filters of a ``(B, F, T, C)`` feature map (Eq. 2). ``init`` is the
    initial value of every ``v`` (above the threshold: everything starts kept).
    """

    def __init__(self, shape: tuple[int, ...], init: float = 0.75, thres: float = THRESHOLD):
        super().__init__()
        if not init > thres:
            raise ValueError(f"DCS: init ({init}) must be above the threshold ({thres}), or everything starts pruned")
        self.v = nn.Parameter(torch.full(shape, float(init)))
        self.thres = float(thres)

    def mask(self) -> torch.Tensor:
        return ste_binarize(self.v, self.thres)

    def kept(self) -> list[int]:
        """Indices (flattened) that the current ``v`` keeps."""
        return [int(i) for i in torch.nonzero(self.mask().detach().reshape(-1)).reshape(-1)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask()
