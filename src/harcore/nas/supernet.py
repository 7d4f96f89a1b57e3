"""The SFTNAS supernet: a backbone whose first stage is the searchable one (Sec. IV-A/B).

* A sensor DCS layer ``b_0`` (shape ``(1, c0, 1)``) on the input window (Eq. 1).
* ``2N`` layers, ``N = floor(log2(s0/4))`` (:func:`harcore.nas.hw_loss.num_stride2_layers`): stride 2, stride 1,
  stride 2, ... Each layer offers ``Conv(k, 1) -> BN -> ReLU`` for ``k`` in {1, 3, 5, 7}; stride-1 layers also
  offer the identity. An identity is offered only where it is legal: it must neither shorten the time axis
  (so never on a stride-2 layer, which keeps every length fixed by the space, the final one >= 4) nor change
  the number of feature maps (so never on the first layer, whose input has one).
* Every conv candidate ends in its own filter DCS mask ``b_i^j`` (Eq. 2). All masks live in one flat
  parameter ``v`` in the layout of ``harcore.nas.hw_loss`` (layer, candidate, filter).
* One architecture logit per candidate (``alpha``, flat, the probs layout of ``hw_loss``).
* The backbone's later stages (``harcore.models.sftnas.make_tail``) at full size: pruned sensors and filters
  reach them as zeros (the sensor mask is applied to the window, Eq. 1, and again to the stage output: a
  convolution's bias would otherwise turn a pruned sensor's zeros into features the derived network lacks).

Forward: only the sampled candidate of each layer runs (single path, Eq. 6).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from harcore.models.sftnas import BACKBONES, DEFAULT_FILTERS, conv_block, make_tail

from .dcs import DCS, THRESHOLD, ste_binarize
from .gumbel import gumbel_choices
from .hw_loss import KERNELS, SftnasSpace, sftnas_strides

ALPHA_INIT = 1e-3


def search_space(c0: int, s0: int, filters: int, kernels: tuple[int, ...] = KERNELS) -> SftnasSpace:
    """The paper's space for ``c0`` sensors x ``s0`` samples with ``filters`` filters per layer (no tail terms)."""
    if s0 < 8:
        raise ValueError(f"sftnas: seq_len={s0} is too short for the search space (N = floor(log2(s0/4)) "
                         "must be >= 1, i.e. seq_len >= 8)")
    return SftnasSpace.standard(c0, s0, filters, kernels)


class Supernet(nn.Module):
    """Searchable first stage + the later stages of ``backbone`` (one of ``tinyhar``, ``deepconvlstm``,
    ``attend_discriminate``). Input ``(B, in_channels, seq_len)``."""

    def __init__(self, backbone: str, in_channels: int, seq_len: int, num_classes: int, *,
                 filters: int | None = None, kernels: tuple[int, ...] = KERNELS, dcs_init: float = 0.75,
                 tail: dict[str, Any] | None = None, dcs_shared: bool = False, tie_tail: bool = False):
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"sftnas: unknown backbone {backbone!r}; available: {', '.join(BACKBONES)}")
        filters = DEFAULT_FILTERS[backbone] if filters is None else int(filters)
        self.backbone, self.num_classes, self.filters = backbone, num_classes, filters
        self.in_channels, self.seq_len = in_channels, seq_len
        self.tail_cfg = dict(tail or {})
        self.layout = search_space(in_channels, seq_len, filters, tuple(kernels))
        assert [l.stride for l in self.layout.layers] == list(sftnas_strides(seq_len))
        self.sensor_dcs = DCS((1, in_channels, 1), dcs_init)
        # dcs_shared: one mask per layer that every kernel candidate uses (Eq. 2's b_i); otherwise one mask per
        # candidate (Eq. 11's b_i^j), whose gates learn only while their kernel is sampled
        self.dcs_shared, self.tie_tail = bool(dcs_shared), bool(tie_tail)
        n_v = sum(l.filters for l in self.layout.layers) if self.dcs_shared else self.layout.num_masks
        self.v = nn.Parameter(torch.full((n_v,), float(dcs_init)))
        f_in = 1
        self.candidates = nn.ModuleList()
        for layer in self.layout.layers:
            if layer.identity and f_in != layer.filters:
                raise ValueError("sftnas: an identity candidate would change the number of feature maps")
            self.candidates.append(nn.ModuleList(conv_block(f_in, layer.filters, k, layer.stride)
                                                 for k in layer.kernels))
            f_in = layer.filters
        self.alpha = nn.Parameter(torch.full((self.layout.num_probs,), ALPHA_INIT))
        self.tail = make_tail(backbone, filters, self.layout.lengths[-1], in_channels, num_classes, **self.tail_cfg)

    # -- parameter groups of the bi-level problem ---------------------------------------------------
    def arch_parameters(self) -> list[nn.Parameter]:
        """alpha: the upper level (validation split)."""
        return [self.alpha]

    def weight_parameters(self) -> list[nn.Parameter]:
        """w and the DCS parameters v: the lower level (training split)."""
        return [p for n, p in self.named_parameters() if n != "alpha"]

    def dcs_parameters(self) -> list[nn.Parameter]:
        """The DCS parameters v (sensor and filter gates), a subset of :meth:`weight_parameters`."""
        return [p for n, p in self.named_parameters() if n.rsplit(".", 1)[-1] == "v"]

    # -- choices and masks -------------------------------------------------------------------------
    def layer_logits(self) -> list[torch.Tensor]:
        return self.layout.split_probs(self.alpha)

    def sample(self, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
        """Gumbel-max one-hot choices for every layer (flat), with the Gumbel-softmax gradient."""
        return gumbel_choices(self.layer_logits(), tau, generator)

    def argmax_probs(self) -> torch.Tensor:
        """The most likely candidate of every layer as a flat one-hot (no gradient)."""
        out = []
        for l in self.layer_logits():
            out.append(torch.nn.functional.one_hot(torch.argmax(l.detach()), l.numel()).to(l.dtype))
        return torch.cat(out)

    def filter_masks(self) -> torch.Tensor:
        """Binary STE masks of every conv candidate (flat); each keeps at least one filter."""
        if self.dcs_shared:
            per_layer = torch.split(self.v, [l.filters for l in self.layout.layers])
            return torch.cat([ste_binarize(v, THRESHOLD).repeat(len(l.kernels))
                              for v, l in zip(per_layer, self.layout.layers)])
        return torch.cat([ste_binarize(v, THRESHOLD) for v in torch.split(self.v, self.layout._mask_sections)])

    def forward(self, x: torch.Tensor, probs: torch.Tensor | None = None, all_paths: bool = False
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(logits, b0, masks)`` for the choices ``probs`` (default: :meth:`argmax_probs`).

        ``all_paths=False`` runs only the chosen candidate of each layer (Eq. 6 with a one-hot ``p``: the value
        and the gradients of w and v). ``all_paths=True`` evaluates Eq. 6's whole sum ``sum_j p^j op^j(X)``:
        the same value for a one-hot ``p``, but every ``p^j`` gets its gradient ``<dL/dX_out, op^j(X)>``. The
        chosen candidate's own gradient is ~0 whenever a BatchNorm follows (scale invariance), so the
        single path would leave alpha with almost no cross-entropy signal, only the hardware terms'.
        """
        if probs is None:
            probs = self.argmax_probs()
        b0 = self.sensor_dcs.mask()
        h = (x * b0).transpose(1, 2).unsqueeze(1)  # (B, 1, T, C)
        masks = self.filter_masks()
        for ops, layer_masks, p in zip(self.candidates, self.layout.split_masks(masks),
                                       self.layout.split_probs(probs)):
            if all_paths:
                outs = [p[k] * (op(h) * layer_masks[k].view(1, -1, 1, 1)) for k, op in enumerate(ops)]
                if p.numel() > len(ops):  # identity
                    outs.append(p[-1] * h)
                h = torch.stack(outs).sum(0)
                continue
            j = int(torch.argmax(p.detach()))
            if j < len(ops):
                h = p[j] * (ops[j](h) * layer_masks[j].view(1, -1, 1, 1))
            else:  # identity
                h = p[j] * h
        # a pruned sensor must not reach the later stages: its conv features are bias-only, not zero
        h = h * b0.reshape(1, 1, 1, -1)
        return self.tail(h), b0.reshape(-1), masks
