"""Budgets as targets: the resource term that makes the SFTNAS search prune filters (issue 15).

Why a new term. The paper's Eq. 11, ``sum p (M_i / S)^2`` with S the full network's MACs, hands a filter gate a
gradient of about 1e-5..8e-5 on a TinyHAR stage, against a cross-entropy batch-to-batch spread of about 5e-3
(shared/notes/sftnas-pruning.md): no gate ever closes. The terms here are **scale-free** (the gradient of
``log X`` is the filter's marginal cost over the current total, ~1e-2 per gate: at the noise level, whatever the
network's size) and **tied to a target** (they stop pushing once the network is at its budget, so useful
filters can reopen). Eq. 11 stays as it is for alpha (and the gates); these terms act on the DCS gates only,
unless ``SearchConfig.budget_alpha``.

Budgets and where their figures come from:

* MACs ``M``: the C++ cost terms (``harcore.nas.hw_loss.hw_terms``; tail fitted by the cost model), with their
  analytic gradients with respect to the sensor gates, the filter gates and the choices.
* parameters ``P``: :func:`expected_params`, the same expectation over the choices written in torch (the C++
  terms have no parameter output): a conv candidate costs ``B (b_prev k + 1) + 2 B`` (weights, bias, BatchNorm),
  the later stages a bilinear polynomial of the stage's output filters and kept sensors fitted to the cost model
  around the current architecture (:func:`tail_param_term`, exact at that architecture, as the MAC terms are).
* flash: ``P * flash(arch) / params(arch)`` — the parameter term scaled by the current architecture's int8
  bytes per parameter (cost model), exact at that architecture, re-fitted every epoch.
* peak SRAM: Eq. 13 (``log(PMem / L_Mem)`` above the limit) is already a scale-free hinge on a target; it stays.

Modes (``SearchConfig.resource``):

* ``band`` (default): TAS-style two-sided hinge, ``log(X/T)`` above the target T, ``-log(X / ((1-band) T))``
  below ``(1-band) T``, zero in between: the network settles inside ``[(1-band) T, T]``.
* ``hinge``: ``log(X/T)`` above T only (a limit: a network already under it is left alone).
* ``lagrange``: ``lambda * log(X/T)`` with ``lambda <- max(0, lambda + lr_lambda * log(X/T))`` after every
  weight step: the push grows while the network is over its target and relaxes once it is under.
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch

from harcore.cost import profile
from harcore.models.sftnas import tail_options

from .hw_loss import SftnasSpace, TailTerm

RESOURCE_MODES = ("band", "hinge", "lagrange", "none")
#: The tail option whose width follows the searched stage's kept filters (``tie_tail``).
TIED_WIDTH = {"tinyhar": "filter_num", "deepconvlstm": "lstm_units", "attend_discriminate": "hidden_dim"}


def tied_tail(backbone: str, tail: dict[str, Any], full_filters: int, filters: int) -> dict[str, Any]:
    """``tail`` with the later stages' width scaled by ``filters / full_filters`` (at least 1).

    TinyHAR's ``filter_num``, DeepConvLSTM's ``lstm_units`` and A&D's ``hidden_dim`` are the widths that do not
    follow the stage's output on their own; with the full stage kept the tail is the configured one.
    """
    key = TIED_WIDTH[backbone]
    full = int(tail.get(key, tail_options(backbone)[key]))
    out = dict(tail)
    out[key] = max(1, int(round(full * filters / max(1, full_filters))))
    return out


def expected_params(layout: SftnasSpace, b0: torch.Tensor, masks: torch.Tensor, probs: torch.Tensor,
                    tail: TailTerm | None = None) -> torch.Tensor:
    """Expected parameters of the searchable stage (+ ``tail(b_L, c0)``) for flat ``masks`` / ``probs``.

    For binary masks and one-hot choices it is the cost model's count of the selected architecture
    (``tail`` fitted by :func:`tail_param_term` around it)."""
    total = masks.new_zeros(())
    b_prev = masks.new_ones(())
    for l, lm, p in zip(layout.layers, layout.split_masks(masks), layout.split_probs(probs)):
        b_next = masks.new_zeros(())
        for j, k in enumerate(l.kernels):
            big_b = lm[j].sum()
            total = total + p[j] * big_b * (b_prev * k + 3)
            b_next = b_next + p[j] * big_b
        if l.identity:
            b_next = b_next + p[len(l.kernels)] * b_prev
        b_prev = b_next
    if tail is not None:
        total = total + tail(b_prev, b0.sum())
    return total


def tail_param_term(arch, max_filters: int, tail_for: Callable[[int], dict] | None = None) -> TailTerm:
    """The later stages' parameters as a bilinear ``TailTerm`` of (output filters, kept sensors), fitted to
    the cost model at the grid around ``arch`` (exact at ``arch``)."""
    from .derive import STAGE_PREFIX, _bilinear, _points, _variant, build

    fs, cs = _points(arch.out_filters, max_filters), _points(len(arch.channels), arch.in_channels)
    vals = {}
    for f in fs:
        for c in cs:
            p = profile(build(_variant(arch, f, c, tail_for)), (c, arch.seq_len))
            vals[f, c] = p.total.params - sum(r.params for r in p.layers if r.name.startswith(STAGE_PREFIX))
    return _bilinear(fs, cs, lambda f, c: vals[f, c])


class BudgetTerms:
    """The resource terms of one search: targets, weights, mode, and the Lagrange multipliers' state."""

    def __init__(self, *, macs: float | None, params: float | None, flash: float | None, mode: str = "band",
                 band: float = 0.1, beta_macs: float = 1.0, beta_budget: float = 1.0, lr_lambda: float = 0.05):
        if mode not in RESOURCE_MODES:
            raise ValueError(f"resource mode must be one of {', '.join(RESOURCE_MODES)}, got {mode!r}")
        self.targets = {k: float(v) for k, v in (("macs", macs), ("params", params), ("flash", flash))
                        if v is not None}
        self.weights = {"macs": beta_macs, "params": beta_budget, "flash": beta_budget}
        self.mode, self.band, self.lr_lambda = mode, float(band), float(lr_lambda)
        self.lam: dict[str, float] = {k: 0.0 for k in self.targets}

    @property
    def active(self) -> bool:
        return self.mode != "none" and bool(self.targets)

    def _one(self, name: str, x: torch.Tensor) -> torch.Tensor:
        t = self.targets[name]
        # the tail polynomials are local fits: far from the architecture they were fitted at (a sampled path
        # with another last layer) they may extrapolate to <= 0, where log has no value
        x = x.clamp_min(1e-3 * t)
        r = float(x.detach()) / t
        w = self.weights[name]
        if self.mode == "lagrange":
            return self.lam[name] * torch.log(x / t)
        if r > 1.0:
            return w * torch.log(x / t)
        if self.mode == "band" and r < 1.0 - self.band:
            return -w * torch.log(x / ((1.0 - self.band) * t))
        return x * 0.0

    def loss(self, figures: dict[str, torch.Tensor]) -> torch.Tensor:
        """The sum of the terms for ``figures`` (``macs``, ``params``, ``flash`` tensors, differentiable)."""
        out = None
        for name in self.targets:
            term = self._one(name, figures[name])
            out = term if out is None else out + term
        return out

    def update(self, figures: dict[str, float]) -> None:
        """The Lagrange multipliers' ascent step (no-op in the other modes)."""
        if self.mode != "lagrange":
            return
        for name, t in self.targets.items():
            self.lam[name] = max(0.0, self.lam[name] + self.lr_lambda * math.log(figures[name] / t))

    def state(self) -> dict[str, float]:
        return dict(self.lam)

    def load_state(self, state: dict[str, float] | None) -> None:
        for k, v in (state or {}).items():
            if k in self.lam:
                self.lam[k] = float(v)


def filters_kept(arch) -> list[int | None]:
    """Per searchable layer: the kept filters of the chosen conv, ``None`` for an identity."""
    return [l["filters"] if l["op"] == "conv" else None for l in arch.layers]


__all__ = ["BudgetTerms", "RESOURCE_MODES", "TIED_WIDTH", "expected_params", "filters_kept", "tail_param_term",
           "tied_tail"]
