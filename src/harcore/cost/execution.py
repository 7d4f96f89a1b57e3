"""Counting by execution — the oracle the analytical cost model is checked against.

Counts parameters and MACs by running a model, in the "core MACs" convention of docs/anchors.md §0
(forward hooks on Conv/Linear/LSTM/GRU plus a TorchFunctionMode for functional matmuls).

* Conv1d/Conv2d: numel(out) * C_in/groups * prod(kernel); Linear: numel(out) * in_features. No bias.
* LSTM/GRU: per time step, direction and layer 4*H*(I+H) (GRU 3*H*(I+H)); I = H*dirs above layer 0.
* matmul/bmm/mm/@ and two-operand einsum: numel(out) * contracted size, reported separately ("attn").
* torch.fft.fft/rfft, the way harcore's DFT op costs it (docs/cost-model.md): every part (.real / .imag) the
  model reads costs numel(part) * n, a direct DFT of length n being a constant (bins x n) matrix product;
  reported separately ("dft": anchors.md counts no FFT).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.overrides import TorchFunctionMode


@dataclass
class Counts:
    params: int = 0
    conv: int = 0
    linear: int = 0
    rnn: int = 0
    attn: int = 0
    dft: int = 0

    @property
    def core(self) -> int:
        return self.conv + self.linear + self.rnn


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _rnn_macs(m: nn.RNNBase, inp: torch.Tensor) -> int:
    if inp.dim() == 2:  # unbatched (T, I)
        steps, batch = inp.shape[0], 1
    elif m.batch_first:
        batch, steps = inp.shape[0], inp.shape[1]
    else:
        steps, batch = inp.shape[0], inp.shape[1]
    gates = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}[m.mode]
    dirs = 2 if m.bidirectional else 1
    H = m.hidden_size
    per_step = 0
    for layer in range(m.num_layers):
        i = m.input_size if layer == 0 else H * dirs
        per_step += dirs * gates * H * (i + H)
    return batch * steps * per_step


def _einsum_macs(equation: str, operands) -> int:
    eq = equation.replace(" ", "")
    lhs, _, rhs = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != 2 or "..." in eq or not rhs:
        raise ValueError(f"only explicit two-operand einsum is counted, got {equation!r}")
    sizes: dict[str, int] = {}
    for term, op in zip(terms, operands):
        for ch, n in zip(term, op.shape):
            sizes[ch] = n
    out = math.prod(sizes[c] for c in rhs)
    inner = math.prod(sizes[c] for c in set(terms[0] + terms[1]) - set(rhs))
    return out * inner


class _MatmulCounter(TorchFunctionMode):
    MATMULS = {torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.Tensor.__rmatmul__,
               torch.bmm, torch.Tensor.bmm, torch.mm, torch.Tensor.mm}

    def __init__(self) -> None:
        super().__init__()
        self.macs = 0
        self.dft = 0
        self.spectra: dict[int, tuple[torch.Tensor, int]] = {}  # id(fft result) -> (result, transform length)
        self.parts: set[tuple[int, str]] = set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        owner = getattr(func, "__self__", None)
        part = "real" if func is torch.real or owner is torch.Tensor.real else \
            "imag" if func is torch.imag or owner is torch.Tensor.imag else None
        if func in (torch.fft.fft, torch.fft.rfft):
            dim = kwargs.get("dim", args[2] if len(args) > 2 else -1)
            self.spectra[id(out)] = (out, args[0].shape[dim])
        elif part is not None and id(args[0]) in self.spectra:
            if (id(args[0]), part) not in self.parts:
                self.parts.add((id(args[0]), part))
                self.dft += out.numel() * self.spectra[id(args[0])][1]
        elif func in self.MATMULS:
            a = args[1] if func is torch.Tensor.__rmatmul__ else args[0]
            self.macs += out.numel() * a.shape[-1]
        elif func is torch.einsum or getattr(func, "__name__", "") == "einsum":
            ops = args[1:] if len(args) > 2 else args[1]
            self.macs += _einsum_macs(args[0], ops)
        return out


def count_macs(model: nn.Module, x: torch.Tensor, functional: bool = True) -> Counts:
    """Run ``model(x)`` once (eval, no grad) and count its MACs and parameters. ``functional=False`` counts
    module hooks only (no functional matmuls / einsum / FFT): the plain-hooks counter users write."""
    c = Counts(params=count_params(model))

    def conv_hook(m, inp, out):
        c.conv += out.numel() * (m.in_channels // m.groups) * math.prod(m.kernel_size)

    def linear_hook(m, inp, out):
        c.linear += out.numel() * m.in_features

    def rnn_hook(m, inp, out):
        c.rnn += _rnn_macs(m, inp[0])

    handles = []
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
        elif isinstance(m, (nn.LSTM, nn.GRU)):
            handles.append(m.register_forward_hook(rnn_hook))
    was_training = model.training
    model.eval()
    try:
        mm = _MatmulCounter() if functional else None
        with torch.no_grad(), (mm if mm is not None else contextlib.nullcontext()):
            model(x)
        if mm is not None:
            c.attn, c.dft = mm.macs, mm.dft
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return c


def ptflops_macs(model: nn.Module, input_res: tuple) -> tuple[int, int]:
    """(MACs, params) from ptflops 0.7.5, backend='pytorch' (count_functional on), batch 1."""
    from ptflops import get_model_complexity_info

    was_training = model.training
    model.eval()
    try:
        macs, params = get_model_complexity_info(model, tuple(input_res), as_strings=False,
                                                 print_per_layer_stat=False, verbose=False, backend="pytorch")
    finally:
        model.train(was_training)
    return int(macs), int(params)

