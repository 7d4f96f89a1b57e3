"""From the supernet to an ordinary network, and the cost model's view of an architecture.

* :class:`Arch` — a discrete architecture (backbone, kept sensors, per layer conv k / stride / kept filters or
  identity); JSON round-trip.
* :func:`derive` — the most likely candidate per layer (argmax alpha) and the kept sensors / filters (v > 0.5).
* :func:`build` — ``harcore.models.create("sftnas", ...)`` for an :class:`Arch`, optionally inheriting the
  supernet's weights (the stage's kept filters; tail tensors whose shape did not change).
* :func:`tail_terms` — the later stages' cost as the ``TailTerm`` polynomials of ``harcore.nas.hw_loss``,
  taken from the C++ cost model (see below); :func:`cost_space` — the search space with those terms.
* :func:`arch_inputs` — the binary masks and one-hot choices that select an :class:`Arch` in a space.
* :func:`smallest_arch` / :func:`check_budget` — the cheapest architecture of a space and a clear error when a
  budget is below it.

Tail terms. ``hw_loss`` models what follows the searchable stage as polynomials ``a + b*F + c*C + d*F*C`` of
the stage's output filters F and kept sensors C. Some tails are exactly bilinear (DeepConvLSTM's LSTM input is
F*C); others are not (TinyHAR's cross-channel attention has F^2*C and F*C^2 terms). :func:`tail_terms` costs the
derived network with the C++ cost model (``harcore.cost.profile``) at F in {F*, F*+-1} x C in {C*, C*+-1}
around an architecture and takes the bilinear interpolant of every non-stage op's live memory (one memory term
per op, as they enter PMem's max) and of the tail's MACs (one term): exact at the architecture itself (so the
hardware terms of a derived architecture equal the cost model's figures exactly), a local model around it.
The search re-fits the terms around the current architecture at the start of every epoch.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import torch

from harcore.cost import profile
from harcore.errors import BudgetError
from harcore.models.sftnas import SftnasNet

from .hw_loss import SftnasSpace, TailTerm

STAGE_PREFIX = "stage_"


@dataclass
class Arch:
    """A discrete SFTNAS architecture.

    ``layers[i]`` is ``{"op": "conv", "kernel": k, "stride": t, "filters": n, "kept": [filter indices]}`` or
    ``{"op": "identity", "stride": 1}``; ``channels`` are the kept sensor indices.
    """

    backbone: str
    in_channels: int
    seq_len: int
    num_classes: int
    channels: list[int]
    layers: list[dict[str, Any]]
    tail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Arch":
        missing = {"backbone", "in_channels", "seq_len", "num_classes", "channels", "layers"} - set(d)
        if missing:
            raise ValueError(f"arch: missing field(s) {sorted(missing)}")
        return cls(**{k: d[k] for k in ("backbone", "in_channels", "seq_len", "num_classes", "channels", "layers")},
                   tail=dict(d.get("tail", {})))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @property
    def out_filters(self) -> int:
        """Feature maps leaving the stage (the last conv's filters)."""
        return [l for l in self.layers if l["op"] == "conv"][-1]["filters"]

    def summary(self) -> str:
        parts = []
        for l in self.layers:
            parts.append("id" if l["op"] == "identity" else f"k{l['kernel']}s{l['stride']}x{l['filters']}")
        return f"{self.backbone}: sensors {self.channels} | " + " ".join(parts)


def derive(net) -> Arch:
    """The discrete architecture a :class:`~harcore.nas.supernet.Supernet` currently encodes."""
    layout = net.layout
    probs = net.argmax_probs()
    masks = net.filter_masks().detach()
    channels = net.sensor_dcs.kept()
    layers = []
    for layer, lm, p in zip(layout.layers, layout.split_masks(masks), layout.split_probs(probs)):
        j = int(torch.argmax(p))
        if j == len(layer.kernels):
            layers.append({"op": "identity", "stride": 1})
        else:
            kept = [int(i) for i in torch.nonzero(lm[j]).reshape(-1)]
            layers.append({"op": "conv", "kernel": layer.kernels[j], "stride": layer.stride, "filters": len(kept),
                           "kept": kept, "candidate": j})
    tail = dict(net.tail_cfg)
    if getattr(net, "tie_tail", False):  # the later stages shrink with the stage's kept filters
        from .budget import tied_tail

        tail = tied_tail(net.backbone, tail, net.filters, [l for l in layers if l["op"] == "conv"][-1]["filters"])
    return Arch(net.backbone, net.in_channels, net.seq_len, net.num_classes, channels, layers, tail)


def build(arch: Arch, net=None) -> SftnasNet:
    """The derived network for ``arch`` (fresh weights, or inherited from the supernet ``net``)."""
    model = SftnasNet(arch.in_channels, arch.seq_len, arch.num_classes, arch={"channels": arch.channels,
                      "layers": arch.layers}, backbone=arch.backbone, tail=arch.tail)
    if net is not None:
        _inherit(model, net, arch)
    return model


@torch.no_grad()
def _inherit(model: SftnasNet, net, arch: Arch) -> None:
    blocks = iter(model.stage)
    prev = torch.tensor([0])
    for i, l in enumerate(arch.layers):
        if l["op"] != "conv":
            continue
        src = net.candidates[i][l["candidate"]] if "candidate" in l else None
        if src is None or "kept" not in l:
            return
        dst = next(blocks)
        kept = torch.tensor(l["kept"])
        dst[0].weight.copy_(src[0].weight[kept][:, prev])
        dst[0].bias.copy_(src[0].bias[kept])
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(dst[1], name).copy_(getattr(src[1], name)[kept])
        prev = kept
    # the tail: slice what depends on the kept filters (kf) and sensors (ch); copy what did not change
    kf, ch, c0, f0 = prev, torch.tensor(arch.channels), net.in_channels, net.filters
    fc = torch.tensor([int(c) * f0 + int(f) for c in ch for f in kf])   # (C, F) flattened
    cf = torch.tensor([int(f) * c0 + int(c) for f in kf for c in ch])   # (F, C) flattened
    rules = {
        "tinyhar": {"channel_interaction.query.weight": (kf, kf), "channel_interaction.key.weight": (kf, kf),
                    "channel_interaction.value.weight": (kf, kf), "channel_fusion.weight": (None, fc)},
        "deepconvlstm": {"lstm_layers.0.weight_ih_l0": (None, cf)},
        "attend_discriminate": {"sa.value.weight": (kf, kf), "rnn.weight_ih_l0": (None, cf)},
    }[arch.backbone]
    if arch.backbone == "attend_discriminate" and net.tail.sa.query.weight.shape[0] == f0:  # sa_div 1
        rules.update({"sa.query.weight": (kf, kf), "sa.key.weight": (kf, kf)})
    src_tail = dict(net.tail.state_dict())
    new = {}
    for k, v in model.tail.state_dict().items():
        w = src_tail.get(k)
        if k in rules and w is not None:
            rows, cols = rules[k]
            w = w if rows is None else w[rows]
            w = w if cols is None else w[:, cols]
        new[k] = w if w is not None and w.shape == v.shape else v
    model.tail.load_state_dict(new)


def _variant(arch: Arch, filters: int, channels: int, tail_for: Callable[[int], dict] | None = None) -> Arch:
    """``arch`` with ``filters`` leaving the stage and the first ``channels`` sensors as the whole input
    (``tail_for(filters)``: the later stages' options when their width follows the stage, tied tails)."""
    layers = [dict(l) for l in arch.layers]
    last = max(i for i, l in enumerate(layers) if l["op"] == "conv")
    layers[last]["filters"] = filters
    tail = tail_for(filters) if tail_for is not None else arch.tail
    return Arch(arch.backbone, channels, arch.seq_len, arch.num_classes, list(range(channels)), layers, tail)


def _points(v: int, hi: int) -> list[int]:
    if hi <= 1:
        return [v]
    return [v, v + 1] if v + 1 <= hi else [v - 1, v]


def _bilinear(fs: list[int], cs: list[int], val) -> TailTerm:
    """The bilinear interpolant ``a + b F + c C + d F C`` through ``val(F, C)`` on the grid ``fs x cs``."""
    import numpy as np

    rows, rhs = [], []
    for f in fs:
        for c in cs:
            rows.append([1.0, f, c, f * c])
            rhs.append(float(val(f, c)))
    cols = [0] + ([1] if len(fs) > 1 else []) + ([2] if len(cs) > 1 else []) + ([3] if len(fs) > 1 and len(cs) > 1 else [])
    a = np.array(rows)[:, cols]
    sol = np.linalg.solve(a, np.array(rhs)) if a.shape[0] == a.shape[1] else np.linalg.lstsq(a, np.array(rhs), rcond=None)[0]
    coef = [0.0, 0.0, 0.0, 0.0]
    for c, s in zip(cols, sol):
        coef[c] = float(s)
    # the grid points are integers and the interpolant is exact there: drop solver round-off
    if len(fs) == 1 or len(cs) == 1:
        return TailTerm(*coef)
    f0, f1 = fs
    c0, c1 = cs
    v00, v01, v10, v11 = (float(val(f, c)) for f in fs for c in cs)
    d = (v11 - v10 - v01 + v00) / ((f1 - f0) * (c1 - c0))
    b = (v10 - v00) / (f1 - f0) - d * c0
    c = (v01 - v00) / (c1 - c0) - d * f0
    a = v00 - b * f0 - c * c0 - d * f0 * c0
    return TailTerm(a, b, c, d)


def tail_terms(arch: Arch, max_filters: int, tail_for: Callable[[int], dict] | None = None
               ) -> tuple[list[TailTerm], list[TailTerm]]:
    """``(tail_mem, tail_macs)`` fitted around ``arch`` from the cost model (module doc); ``tail_for``: see
    :func:`_variant`."""
    f_star, c_star = arch.out_filters, len(arch.channels)
    fs, cs = _points(f_star, max_filters), _points(c_star, arch.in_channels)
    profiles = {}
    for f in fs:
        for c in cs:
            p = profile(build(_variant(arch, f, c, tail_for)), (c, arch.seq_len))
            stage_macs = sum(r.macs for r in p.layers if r.name.startswith(STAGE_PREFIX))
            mems = [(r.name, r.mem) for r in p.layers
                    if not r.name.startswith(STAGE_PREFIX) and not r.fused and not r.alias]
            profiles[f, c] = (p.total.macs - stage_macs, mems)
    names = [n for n, _ in profiles[fs[0], cs[0]][1]]
    for key, (_, mems) in profiles.items():
        if [n for n, _ in mems] != names:
            raise RuntimeError(f"sftnas: the tail's ops differ between F, C = {key} and {(fs[0], cs[0])}")
    tail_mem = [_bilinear(fs, cs, lambda f, c, i=i: profiles[f, c][1][i][1]) for i in range(len(names))]
    if len(arch.channels) < arch.in_channels:
        # the gather of the kept sensors: the full window in, the kept ones out (then the window is dead)
        tail_mem.append(TailTerm(a=arch.seq_len * arch.in_channels, c=arch.seq_len))
    tail_macs = [_bilinear(fs, cs, lambda f, c: profiles[f, c][0])]
    return tail_mem, tail_macs


def cost_space(layout: SftnasSpace, arch: Arch, max_filters: int,
               tail_for: Callable[[int], dict] | None = None) -> SftnasSpace:
    """``layout`` (the searchable layers) with the tail terms fitted around ``arch``."""
    tail_mem, tail_macs = tail_terms(arch, max_filters, tail_for)
    return SftnasSpace(layout.c0, layout.s0, layout.layers, tail_mem, tail_macs)


def arch_inputs(layout: SftnasSpace, arch: Arch, dtype: torch.dtype = torch.float64
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(b0, masks, probs)`` — binary masks and one-hot choices that select ``arch`` in ``layout``.

    Layers need their ``kept`` filter indices (as :func:`derive` records them); without, the first ``filters``
    filters are taken.
    """
    if len(arch.layers) != layout.num_layers:
        raise ValueError(f"arch: {len(arch.layers)} layers, the space has {layout.num_layers}")
    b0 = torch.zeros(layout.c0, dtype=dtype)
    b0[arch.channels] = 1.0
    masks, probs = [], []
    for i, (layer, l) in enumerate(zip(layout.layers, arch.layers)):
        p = torch.zeros(layer.num_candidates, dtype=dtype)
        lm = [torch.zeros(layer.filters, dtype=dtype) for _ in layer.kernels]
        if l["op"] == "identity":
            if not layer.identity:
                raise ValueError(f"arch.layers[{i}]: identity is not offered on this layer (stride {layer.stride})")
            p[-1] = 1.0
        else:
            if l["kernel"] not in layer.kernels or l["stride"] != layer.stride:
                raise ValueError(f"arch.layers[{i}]: k={l['kernel']} stride {l['stride']} is not a candidate "
                                 f"(kernels {layer.kernels}, stride {layer.stride})")
            j = layer.kernels.index(l["kernel"])
            p[j] = 1.0
            kept = l.get("kept", list(range(l["filters"])))
            lm[j][kept] = 1.0
            for m in lm:
                if m.sum() == 0:
                    m[0] = 1.0  # unused candidates: any mask (their p is 0)
        masks.extend(lm)
        probs.append(p)
    return b0, torch.cat(masks), torch.cat(probs)


def smallest_arch(backbone: str, in_channels: int, seq_len: int, num_classes: int, layout: SftnasSpace,
                  tail: dict[str, Any] | None = None) -> Arch:
    """The cheapest architecture of the space: one sensor, every stride-2 layer a 1x1 conv with one filter,
    every stride-1 layer an identity."""
    layers = [{"op": "identity", "stride": 1} if l.identity else
              {"op": "conv", "kernel": min(l.kernels), "stride": l.stride, "filters": 1, "kept": [0]}
              for l in layout.layers]
    return Arch(backbone, in_channels, seq_len, num_classes, [0], layers, dict(tail or {}))


def check_budget(smallest: Arch, *, sram: int | None = None, flash: int | None = None,
                 macs: int | None = None, params: int | None = None, desc: str | None = None) -> dict[str, int]:
    """Raise :class:`BudgetError` naming the figures when a limit is below the smallest architecture's cost.

    Returns the smallest architecture's ``{"peak_sram", "flash", "macs", "params"}`` (cost model, int8).
    """
    p = profile(build(smallest), (smallest.in_channels, smallest.seq_len)).total
    floor = {"peak_sram": p.peak_sram, "flash": p.flash, "macs": p.macs, "params": p.params}
    desc = desc or (f"the smallest architecture of the {smallest.backbone} search space ({smallest.in_channels} -> "
                    "1 sensor, 1 filter, 1x1 convs, identities)")
    for name, limit, key, unit in (("--sram", sram, "peak_sram", "B"), ("--flash", flash, "flash", "B"),
                                   ("--macs", macs, "macs", " MACs"), ("--params", params, "params", " parameters")):
        if limit is not None and limit < floor[key]:
            raise BudgetError(f"impossible budget: {name} {limit:,}{unit} is below {floor[key]:,}{unit}, the "
                              f"{key.replace('_', ' ')} of {desc}; nothing in the search space fits")
    return floor
