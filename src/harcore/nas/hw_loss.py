"""Differentiable hardware terms of the SFTNAS search loss (Zhou et al., "NAS Meets Pruning", Eq. 10-13).

``L = L_ce + beta1 * L_complexity + beta2 * L_memory``. The terms are computed in C++
(``src/cpp/nas/sftnas_terms.cpp``) with analytic reverse-mode gradients and wrapped as a
``torch.autograd.Function``; :func:`reference_terms` is a pure-PyTorch implementation of the same formulas.

Searchable stage
----------------
The TinyHAR / SFTNAS individual-convolution block. Activations are ``(F, T, C)`` in torch (NHWC ``(T, C, F)``
int8 on the target). Layer ``i = 1..L`` is ``Conv2d(F_{i-1} -> F_i, kernel (k, 1), stride (t_i, 1),
padding ((k-1)/2, 0))`` applied to every sensor channel independently; ``F_0 = 1``. Kernels are odd, so the
length is ``s_i = ceil(s_{i-1} / t_i)``. The paper's space has ``N = floor(log2(s0 / 4))`` stride-2 layers
interleaved with stride-1 layers (:func:`sftnas_strides`), conv candidates ``k in {1, 3, 5, 7}`` and an identity.

Design decision: the identity is offered **only on stride-1 layers**. The N stride-2 layers always run, so
every ``s_i`` is fixed by the space (no expectation over lengths is needed, and the final length is always
``>= 4`` as the paper intends). An identity passes its input through: ``b^_i = b^_{i-1}``, no op runs, it costs
no MACs and no memory. Candidate order within a layer: the layer's kernels as listed, then the identity.

Inputs: ``b0`` (c0 elements; any shape, e.g. the paper's (1, c0, 1)) sensor-channel DCS mask, ``c^0 = sum(b0)``;
one DCS mask ``b_i^j`` (F_i) per conv candidate, ``B_i^j = sum(b_i^j)``; operator weights ``p_i`` (Gumbel-softmax
or straight-through one-hot). Values must be finite and >= 0 (checked; sums of p need not be 1).
``b^_0 = 1`` and ``b^_i = sum_j p_i^j B_i^j + p_i^id b^_{i-1}``.

* expected MACs ``M = sum_i sum_j p_i^j s_i c^0 b^_{i-1} B_i^j k_j + sum_t tail_macs_t`` — for binary masks and
  one-hot choices exactly the cost model's conv MACs ``numel(out) * C_in * KH * KW``.
* ``L_complexity = sum_i sum_j p_i^j (s_i c^0 b^_{i-1} B_i^j k_j / scale)^2 + sum_t (tail_macs_t / scale)^2``
  (Eq. 11, with the exact conv output length ``s_i = ceil(s_{i-1} / t_i)`` where the paper writes
  ``s_{i-1} / t_i``). Eq. 11 squares raw MAC counts (1e10..1e14 for a HAR stage); dividing by a user
  ``scale`` — e.g. :meth:`SftnasSpace.full_macs`, the full-size stage's MACs — keeps each term in [0, 1] for
  masks and probabilities in [0, 1] and ``beta1`` in a sane range. The tail's MAC terms (if any) are
  regularized the same way, one squared term each.
* ``mem_i = sum_j p_i^j (s_{i-1} c^0 b^_{i-1} + s_i c^0 B_i^j + extra_i^j)`` bytes (Eq. 12, int8), with the
  CMSIS-NN DSP scratch: a 1 -> 1 conv (``b^_{i-1} = B_i^j = 1``) lowers to the depthwise kernel, ``2 k``; else a
  1x1 conv (k = 1, pad 0) -> 0, otherwise the generic conv ``4 * ceil4(k * b^_{i-1})``.
  The ceil is exact in the forward pass; its gradient is taken as that of ``4 * k * b^_{i-1}`` (straight-
  through: the true derivative is zero almost everywhere, which would hide the scratch from the search).
* ``PMem = max(mem_1..mem_L, tail_mem_t, s0 * c^0)``; the gradient goes to the (first) arg-max term. The stage
  input buffer ``s0 * c^0`` is a lower bound the cost model also counts; any conv reading the input already
  holds that much, so it only decides PMem when every layer is an identity and no tail term is larger.
* ``L_memory = log(PMem / L_Mem)`` if ``PMem > L_Mem`` else 0 (Eq. 13); ``L_Mem = inf`` means no limit.

Tail terms model the later, non-searchable stages of the backbone (e.g. TinyHAR's cross-channel interaction
and fusion): each is a bilinear polynomial ``a + b * b^_L + c * c^0 + d * b^_L * c^0`` (:class:`TailTerm`) of the
stage's output filters and kept sensor channels; memory terms join the max, MAC terms join ``M`` and
``L_complexity``.

Usage::

    space = SftnasSpace.standard(c0=9, s0=128, filters=64, tail_mem=[...], tail_macs=[...])
    t = hw_terms(space, b0, masks, probs, scale=space.full_macs(), mem_limit=96_000)   # 4 terms
    loss = ce + hw_loss(space, b0, masks, probs, scale=..., mem_limit=96_000, beta1=0.1, beta2=1.0)

:func:`hw_loss` returns ``beta1 * L_complexity + beta2 * L_memory`` as a single autograd node (cheaper per
step than combining the four outputs of :func:`hw_terms`).

Flat layout (what the C++ takes and the fast path uses): ``masks`` concatenates every candidate's mask in
(layer, candidate, filter) order; ``probs`` concatenates every layer's weights in (layer, candidate) order.
:meth:`SftnasSpace.split_masks` / :meth:`SftnasSpace.split_probs` give per-candidate views, so a supernet can
keep one flat parameter. Nested lists of per-candidate masks and per-layer prob vectors are accepted too
(packed with ``torch.cat``).
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from typing import NamedTuple, Sequence, Union

import numpy as np
import torch

from harcore import _core

KERNELS: tuple[int, ...] = (1, 3, 5, 7)

Masks = Union[torch.Tensor, Sequence[Sequence[torch.Tensor]]]
Probs = Union[torch.Tensor, Sequence[torch.Tensor]]


def num_stride2_layers(s0: int) -> int:
    """``N = floor(log2(s0 / 4))`` — the number of stride-2 layers; the stage output length stays >= 4."""
    return int(_core.sftnas_num_stride2(int(s0)))


def sftnas_strides(s0: int, stride1_first: bool = False) -> tuple[int, ...]:
    """The paper's layout: N stride-2 layers interleaved with N stride-1 layers (2N layers).

    By default each stride-2 layer comes first in its pair ``(2, 1, 2, 1, ...)``: the time axis shrinks before
    the (skippable) stride-1 layer runs; ``stride1_first`` gives ``(1, 2, 1, 2, ...)``.
    """
    pair = (1, 2) if stride1_first else (2, 1)
    return pair * num_stride2_layers(s0)


@dataclass(frozen=True)
class TailTerm:
    """``a + b * b_last + c * c0 + d * b_last * c0`` (b_last = the stage's output filters, c0 = kept sensors)."""

    a: float = 0.0
    b: float = 0.0
    c: float = 0.0
    d: float = 0.0

    def __call__(self, b_last, c0):
        return self.a + self.b * b_last + self.c * c0 + self.d * b_last * c0


@dataclass(frozen=True)
class SftnasLayer:
    stride: int
    kernels: tuple[int, ...]
    filters: int

    @property
    def identity(self) -> bool:
        """An identity candidate is offered (stride-1 layers only)."""
        return self.stride == 1

    @property
    def num_candidates(self) -> int:
        return len(self.kernels) + (1 if self.identity else 0)


class SftnasTerms(NamedTuple):
    macs: torch.Tensor        # expected MACs M
    complexity: torch.Tensor  # L_complexity (Eq. 11, divided by scale^2)
    pmem: torch.Tensor        # expected peak memory in bytes
    mem_loss: torch.Tensor    # L_memory (Eq. 13)


class SftnasSpace:
    """The searchable stage: c0 sensor channels, input length s0, its layers and optional tail terms.

    Validated on construction by the C++ core (``ValueError`` / ``harcore._core.GraphError`` naming the field).
    """

    def __init__(self, c0: int, s0: int, layers: Sequence[SftnasLayer],
                 tail_mem: Sequence[TailTerm] = (), tail_macs: Sequence[TailTerm] = ()):
        self.c0 = int(c0)
        self.s0 = int(s0)
        self.layers = tuple(
            SftnasLayer(int(l.stride), tuple(int(k) for k in l.kernels), int(l.filters)) for l in layers
        )
        self.tail_mem = tuple(tail_mem)
        self.tail_macs = tuple(tail_macs)
        self._core = _core.SftnasSpace(
            self.c0, self.s0, [l.stride for l in self.layers], [list(l.kernels) for l in self.layers],
            [l.filters for l in self.layers], [astuple(t) for t in self.tail_mem],
            [astuple(t) for t in self.tail_macs],
        )
        self.lengths: tuple[int, ...] = tuple(self._core.lengths)  # s_0..s_L
        self.num_masks: int = self._core.num_masks
        self.num_probs: int = self._core.num_probs
        self._mask_sections: list[int] = []
        self._prob_sections: list[int] = []
        for l in self.layers:
            self._mask_sections += [l.filters] * len(l.kernels)
            self._prob_sections.append(l.num_candidates)

    @classmethod
    def standard(cls, c0: int, s0: int, filters: Union[int, Sequence[int]], kernels: Sequence[int] = KERNELS,
                 tail_mem: Sequence[TailTerm] = (), tail_macs: Sequence[TailTerm] = (),
                 stride1_first: bool = False) -> "SftnasSpace":
        """The paper's space: :func:`sftnas_strides` layers, the same kernel list everywhere."""
        strides = sftnas_strides(s0, stride1_first)
        if isinstance(filters, int):
            filters = [filters] * len(strides)
        if len(filters) != len(strides):
            raise ValueError(f"sftnas: filters has {len(filters)} entries, the space for s0={s0} has "
                             f"{len(strides)} layers")
        return cls(c0, s0, [SftnasLayer(t, tuple(kernels), f) for t, f in zip(strides, filters)],
                   tail_mem, tail_macs)

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def full_macs(self) -> float:
        """MACs of the full-size stage (all sensors and filters, every layer its largest kernel, tail
        included): a natural ``scale`` for L_complexity."""
        total, f_prev = 0.0, 1
        for i, l in enumerate(self.layers):
            total += self.lengths[i + 1] * self.c0 * f_prev * l.filters * max(l.kernels)
            f_prev = l.filters
        return total + sum(float(t(f_prev, self.c0)) for t in self.tail_macs)

    # -- flat layout ------------------------------------------------------------------------
    def split_masks(self, flat: torch.Tensor) -> list[list[torch.Tensor]]:
        """Views ``[layer][conv candidate] -> (F_i,)`` of a flat mask tensor."""
        parts = iter(torch.split(flat, self._mask_sections))
        return [[next(parts) for _ in l.kernels] for l in self.layers]

    def split_probs(self, flat: torch.Tensor) -> list[torch.Tensor]:
        """Views ``[layer] -> (num_candidates,)`` of a flat prob tensor (kernels, then identity)."""
        return list(torch.split(flat, self._prob_sections))

    def pack_masks(self, masks: Masks) -> torch.Tensor:
        if isinstance(masks, torch.Tensor):
            return masks
        if len(masks) != self.num_layers:
            raise ValueError(f"sftnas: masks has {len(masks)} layers, the space has {self.num_layers}")
        flat = []
        for i, (layer_masks, l) in enumerate(zip(masks, self.layers)):
            if len(layer_masks) != len(l.kernels):
                raise ValueError(f"sftnas: masks of layer {i} has {len(layer_masks)} candidates, expected "
                                 f"{len(l.kernels)} (one per conv kernel {l.kernels})")
            flat.extend(m.reshape(-1) for m in layer_masks)
        return torch.cat(flat)

    def pack_probs(self, probs: Probs) -> torch.Tensor:
        if isinstance(probs, torch.Tensor):
            return probs
        if len(probs) != self.num_layers:
            raise ValueError(f"sftnas: probs has {len(probs)} layers, the space has {self.num_layers}")
        return torch.cat([p.reshape(-1) for p in probs])


class SftnasTermsFunction(torch.autograd.Function):
    """``(b0, masks, probs) -> (macs, complexity, pmem, mem_loss)``, flat 1-D float32/float64 CPU inputs."""

    @staticmethod
    def forward(ctx, b0, masks, probs, core_space, scale, mem_limit):
        vals, jac, _ = _core.sftnas_forward(core_space, b0.detach().numpy(), masks.detach().numpy(),
                                            probs.detach().numpy(), scale, mem_limit)
        ctx.core_space = core_space
        ctx.jac = jac
        ctx.float64 = vals[0].dtype.itemsize == 8
        return tuple(torch.from_numpy(v) for v in vals)  # independent 0-d tensors of the inputs' dtype

    @staticmethod
    def backward(ctx, g_macs, g_complexity, g_pmem, g_mem_loss):
        gb, gm, gp = _core.sftnas_backward(ctx.core_space, ctx.jac, float(g_macs), float(g_complexity),
                                           float(g_pmem), float(g_mem_loss), ctx.float64)
        return torch.from_numpy(gb), torch.from_numpy(gm), torch.from_numpy(gp), None, None, None


class SftnasLossFunction(torch.autograd.Function):
    """``(b0, masks, probs) -> beta1 * L_complexity + beta2 * L_memory`` as a single autograd node."""

    @staticmethod
    def forward(ctx, b0, masks, probs, core_space, scale, mem_limit, beta1, beta2, stats):
        vals, jac, _ = _core.sftnas_forward(core_space, b0.detach().numpy(), masks.detach().numpy(),
                                            probs.detach().numpy(), scale, mem_limit)
        ctx.core_space = core_space
        ctx.jac = jac
        ctx.betas = (beta1, beta2)
        ctx.float64 = vals[0].dtype.itemsize == 8
        if stats is not None:
            stats.update(zip(SftnasTerms._fields, (float(v) for v in vals)))
        return torch.from_numpy(np.asarray(beta1 * float(vals[1]) + beta2 * float(vals[3]), dtype=vals[0].dtype))

    @staticmethod
    def backward(ctx, g):
        g = float(g)
        gb, gm, gp = _core.sftnas_backward(ctx.core_space, ctx.jac, 0.0, ctx.betas[0] * g, 0.0, ctx.betas[1] * g,
                                           ctx.float64)
        return (torch.from_numpy(gb), torch.from_numpy(gm), torch.from_numpy(gp), None, None, None, None, None,
                None)


def _check_inputs(b0: torch.Tensor, masks: torch.Tensor, probs: torch.Tensor) -> None:
    for name, t in (("b0", b0), ("masks", masks), ("probs", probs)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"sftnas: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dtype not in (torch.float32, torch.float64):
            raise TypeError(f"sftnas: {name} must be float32 or float64, got {t.dtype}")
        if t.dim() != 1:
            raise ValueError(f"sftnas: {name} must be 1-D (flat layout), got shape {tuple(t.shape)}")
    if not (b0.dtype == masks.dtype == probs.dtype):
        raise TypeError(f"sftnas: b0, masks and probs must share one dtype, got {b0.dtype}, {masks.dtype}, "
                        f"{probs.dtype}")


def hw_terms(space: SftnasSpace, b0: torch.Tensor, masks: Masks, probs: Probs, *, scale: float,
             mem_limit: float) -> SftnasTerms:
    """Expected MACs, L_complexity, PMem and L_memory (C++ forward and analytic backward).

    ``masks``/``probs`` in the flat layout (fast path) or nested (see the module doc); ``mem_limit`` is
    L_Mem in bytes. Outputs are 0-dim tensors of the inputs' dtype on b0's device (the C++ runs on the CPU).
    """
    masks = space.pack_masks(masks)
    probs = space.pack_probs(probs)
    b0 = b0 if b0.dim() == 1 else b0.reshape(-1)
    _check_inputs(b0, masks, probs)
    device = b0.device
    if device.type != "cpu":
        b0, masks, probs = b0.cpu(), masks.cpu(), probs.cpu()
    out = SftnasTermsFunction.apply(b0, masks, probs, space._core, float(scale), float(mem_limit))
    if device.type != "cpu":
        out = tuple(t.to(device) for t in out)
    return SftnasTerms(*out)


def hw_loss(space: SftnasSpace, b0: torch.Tensor, masks: Masks, probs: Probs, *, scale: float, mem_limit: float,
            beta1: float, beta2: float, stats: dict | None = None) -> torch.Tensor:
    """``beta1 * L_complexity + beta2 * L_memory`` (the hardware part of Eq. 10) as one autograd node.

    The fast path for a training step: the same C++ as :func:`hw_terms`, but one output, so autograd runs
    fewer nodes than when the four terms are combined in Python. If ``stats`` is a dict it receives the four
    terms as floats (keys ``macs``, ``complexity``, ``pmem``, ``mem_loss``) for logging.
    """
    masks = space.pack_masks(masks)
    probs = space.pack_probs(probs)
    b0 = b0 if b0.dim() == 1 else b0.reshape(-1)
    _check_inputs(b0, masks, probs)
    device = b0.device
    if device.type != "cpu":
        b0, masks, probs = b0.cpu(), masks.cpu(), probs.cpu()
    out = SftnasLossFunction.apply(b0, masks, probs, space._core, float(scale), float(mem_limit), float(beta1),
                                   float(beta2), stats)
    return out.to(device) if device.type != "cpu" else out


def reference_terms(space: SftnasSpace, b0: torch.Tensor, masks: Masks, probs: Probs, *, scale: float,
                    mem_limit: float) -> SftnasTerms:
    """Pure-PyTorch (autograd) implementation of the same terms — slow; for tests and as a specification.

    Does not validate values (the C++ path does).
    """
    flat_m = space.pack_masks(masks)
    flat_p = space.pack_probs(probs)
    b0 = b0 if b0.dim() == 1 else b0.reshape(-1)
    _check_inputs(b0, flat_m, flat_p)
    if flat_m.numel() != space.num_masks or flat_p.numel() != space.num_probs or b0.numel() != space.c0:
        raise ValueError(f"sftnas: expected b0/masks/probs of sizes {space.c0}/{space.num_masks}/"
                         f"{space.num_probs}, got {b0.numel()}/{flat_m.numel()}/{flat_p.numel()}")
    masks_l = space.split_masks(flat_m)
    probs_l = space.split_probs(flat_p)
    c = b0.sum()
    b_prev = torch.ones((), dtype=b0.dtype)
    macs = torch.zeros((), dtype=b0.dtype)
    comp = torch.zeros((), dtype=b0.dtype)
    mems = []
    for i, l in enumerate(space.layers):
        s_in, s_out = space.lengths[i], space.lengths[i + 1]
        p = probs_l[i]
        b_next = torch.zeros((), dtype=b0.dtype)
        mem_i = torch.zeros((), dtype=b0.dtype)
        for j, k in enumerate(l.kernels):
            b_j = masks_l[i][j].sum()
            m = s_out * c * b_prev * b_j * k
            macs = macs + p[j] * m
            comp = comp + p[j] * (m / scale) ** 2
            if float(b_prev) == 1.0 and float(b_j) == 1.0:  # 1 -> 1: the depthwise kernel's k int16 values
                extra = torch.full((), 2.0 * k, dtype=b0.dtype)
            elif k == 1:
                extra = torch.zeros((), dtype=b0.dtype)
            else:
                lin = 4 * k * b_prev
                extra = lin + (16 * torch.ceil(k * b_prev / 4) - lin).detach()  # straight-through ceil4
            mem_i = mem_i + p[j] * (s_in * c * b_prev + s_out * c * b_j + extra)
            b_next = b_next + p[j] * b_j
        if l.identity:
            b_next = b_next + p[len(l.kernels)] * b_prev
        b_prev = b_next
        mems.append(mem_i)
    for t in space.tail_macs:
        m = t(b_prev, c)
        macs = macs + m
        comp = comp + (m / scale) ** 2
    terms = torch.stack(mems + [t(b_prev, c) * torch.ones((), dtype=b0.dtype) for t in space.tail_mem]
                        + [space.s0 * c])
    pmem = terms[int(torch.argmax(terms.detach()))]
    mem_loss = torch.log(pmem / mem_limit) if float(pmem.detach()) > mem_limit else pmem * 0.0
    return SftnasTerms(macs, comp, pmem, mem_loss)


__all__ = [
    "KERNELS", "SftnasLayer", "SftnasLossFunction", "SftnasSpace", "SftnasTerms", "SftnasTermsFunction", "TailTerm",
    "hw_loss", "hw_terms", "num_stride2_layers", "reference_terms", "sftnas_strides",
]
