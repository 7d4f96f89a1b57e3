"""The paper's pruning baselines, AutoSlim and PaS, on the stage SFTNAS searches (Tables I-III, issue 15).

SFTNAS (Zhou et al.) compares against AutoSlim (Yu & Huang 2019) and PaS (Li et al. 2022), "not modified, so they
can only prune the number of filters in each layer". Here both prune the filters of the backbone's **original**
first stage (:func:`original_arch`: every sensor, the original kernels and strides, the paper's widths) and yield
an :class:`~harcore.nas.derive.Arch` of the same kind a search derives, so the main job's later stages (derive,
fine-tune, int8, deploy, validate, report) and the cost model are shared, and the comparison is like for like:
same data and splits, same derived-model class (``models.create("sftnas", ...)``), same training recipe.

* **AutoSlim** (:func:`autoslim`): a slimmable network (the original stage, every layer's width a multiple of
  ``slim_step`` filters, a prefix of its filters) trained with the sandwich rule (the widest network, the
  narrowest, and ``sandwich_random`` networks of random per-layer widths every step) and in-place distillation
  (the narrower networks learn the widest one's soft predictions, the widest one the labels). Then greedy
  slimming on the validation subjects: from full width, the layer whose reduction by one step costs the least
  validation macro-F1 (BatchNorm statistics re-calibrated on training windows for every candidate, as AutoSlim
  does) is slimmed, until the network meets every target and limit (cost model). The slimmed network is then
  trained from scratch by the job's fine-tuning stage (AutoSlim retrains its result).
* **PaS** (:func:`pas`): one binary gate per filter (depthwise binary convolution: ``b = 1[v > 0.5]``, straight-
  through gradient, ``v`` initialised to 1.0 as in PaS) trained with the weights under PaS's resource penalty
  ``c * ((M(b) - T) / M_dense)^2`` for the MAC target (and the same term for a parameter target), ``c = 5``;
  ``M(b)`` are the C++ cost terms of :mod:`harcore.nas.hw_loss` (the tail fitted by the cost model around the
  current network each epoch), exact at every binary mask. The result is the latest epoch's network within
  every limit; the job's fine-tuning stage then trains it.

Neither touches the sensor channels or the kernels (what the paper says of them). The later stages follow the
same rule as SFTNAS's: fixed, or tied to the last layer's kept filters (``tie_tail``). The slimmable / gated
network keeps its full-width tail during the search (as the SFTNAS supernet does); the cost terms and the
derived network use the tied one.

Selection discipline: every choice (greedy step, the PaS epoch) is made on the validation split; the test
subjects are never read here.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from harcore import runstore
from harcore.cost import profile
from harcore.models.sftnas import BACKBONES, DEFAULT_FILTERS, tail_options
from harcore.train.metrics import metrics_from_predictions

from .bn_calib import recalibrate_bn
from .budget import expected_params, filters_kept, tail_param_term, tied_tail
from .dcs import THRESHOLD, ste_binarize
from .derive import Arch, build, cost_space
from .hw_loss import SftnasLayer, SftnasSpace, hw_terms
from .search import CHECKPOINT_KIND, CHECKPOINT_NAME, SearchResult, _num_classes, _xy, checkpoint_epoch, pick_arch

#: ``harcore search --method``: the SFTNAS search, the two baselines, or no search at all (a fixed layout).
METHODS = ("sftnas", "autoslim", "pas", "fixed")
BASELINES = ("autoslim", "pas")
CHECKPOINT_FIELDS = ("epoch", "net", "opt_w", "sched", "rng", "history")
RESUME_FREE = frozenset({"progress", "num_threads", "flash", "sram"})
#: Kernel of every backbone's original first stage.
ORIGINAL_KERNEL = 5


def check_method(method: str) -> str:
    """``method`` if it is one of :data:`METHODS`, else a ``ValueError`` naming the choices."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; available: {', '.join(METHODS)} (sftnas: the SFTNAS search; "
                         "autoslim, pas: the paper's pruning baselines; fixed: no search)")
    return method


def original_strides(backbone: str, tail: dict[str, Any] | None = None) -> tuple[int, ...]:
    """Strides of the backbone's original 4 conv layers: TinyHAR (1, 2, 1, 2) (its code's ``i % 2 == 1``);
    Attend-and-Discriminate (1, 1, 1, 1); DeepConvLSTM (1, 1, 1, 1) with Ordonez & Roggen's 2 x LSTM tail, and
    teco-kit's (1, 2, 1, 2) with one LSTM (``lstm_layers=1``: the paper's DCL row, 424.26k parameters)."""
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; available: {', '.join(BACKBONES)}")
    if backbone == "tinyhar":
        return (1, 2, 1, 2)
    if backbone == "deepconvlstm":
        layers = int((tail or {}).get("lstm_layers", tail_options("deepconvlstm")["lstm_layers"]))
        return (1, 2, 1, 2) if layers == 1 else (1, 1, 1, 1)
    return (1, 1, 1, 1)


def original_arch(backbone: str, in_channels: int, seq_len: int, num_classes: int, *, filters: int | None = None,
                  tail: dict[str, Any] | None = None) -> Arch:
    """The backbone's original first stage as an :class:`Arch`: every sensor, 4 conv layers of kernel 5 at
    :func:`original_strides` with ``filters`` filters each (default: the backbone's; the paper's are 64), in
    harcore's derived-model form (same-padded Conv -> BN -> ReLU, docs/nas.md)."""
    f = DEFAULT_FILTERS[backbone] if filters is None else int(filters)
    if f < 1:
        raise ValueError(f"filters must be >= 1, got {f}")
    layers = [{"op": "conv", "kernel": ORIGINAL_KERNEL, "stride": t, "filters": f, "kept": list(range(f))}
              for t in original_strides(backbone, tail)]
    return Arch(backbone, in_channels, seq_len, num_classes, list(range(in_channels)), layers, dict(tail or {}))


def with_widths(base: Arch, kept: list[list[int]], tie_tail: bool) -> Arch:
    """``base`` with the filters ``kept[i]`` in conv layer i (the tail tied to the last layer's when asked)."""
    layers = []
    for l, k in zip(base.layers, kept):
        layers.append({**l, "filters": len(k), "kept": [int(i) for i in k]})
    tail = dict(base.tail)
    if tie_tail:
        tail = tied_tail(base.backbone, tail, base.layers[-1]["filters"], len(kept[-1]))
    return Arch(base.backbone, base.in_channels, base.seq_len, base.num_classes, list(base.channels), layers, tail)


def smallest_original(base: Arch, tie_tail: bool) -> Arch:
    """The cheapest network AutoSlim and PaS can reach: one filter in every layer."""
    return with_widths(base, [[0] for _ in base.layers], tie_tail)


@dataclass
class BaselineConfig:
    """One AutoSlim or PaS run. The training recipe fields are the SFTNAS search's (``harcore.nas.pipeline``
    fills them from the same preset); the rest are each method's own (module doc, docs/nas.md)."""

    method: str = "pas"
    backbone: str = "tinyhar"
    filters: int | None = None
    epochs: int = 200
    batch_size: int = 256
    lr_w: float = 1e-4
    lr_plateau_factor: float = 0.9
    lr_plateau_patience: int = 10
    sram: int | None = 96_000
    macs: int | None = None
    flash: int | None = None
    params: int | None = None
    tie_tail: bool = False
    seed: int = 0
    num_threads: int | None = 1
    progress: bool = True
    tail: dict[str, Any] = field(default_factory=dict)
    # AutoSlim
    slim_step: int | None = None        # filters per group (greedy step); None: max(1, round(F / 16))
    sandwich_random: int = 2            # random-width networks per step besides the widest and narrowest
    calib_batches: int = 8              # training batches that re-calibrate BatchNorm for each evaluated width
    # PaS
    lr_v: float = 5e-3                  # Adam learning rate of the gates
    gate_init: float = 1.0              # PaS's initial gate value (threshold 0.5)
    penalty: float = 5.0                # PaS's c

    def __post_init__(self) -> None:
        if self.method not in BASELINES:
            raise ValueError(f"BaselineConfig.method: must be one of {', '.join(BASELINES)} (got {self.method!r})")
        for name in ("epochs", "batch_size", "lr_plateau_patience", "calib_batches"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"BaselineConfig.{name}: must be an integer >= 1 (got {v!r})")
        if self.slim_step is not None and (not isinstance(self.slim_step, int) or self.slim_step < 1):
            raise ValueError(f"BaselineConfig.slim_step: must be None or an integer >= 1 (got {self.slim_step!r})")
        if isinstance(self.sandwich_random, bool) or not isinstance(self.sandwich_random, int) or self.sandwich_random < 0:
            raise ValueError(f"BaselineConfig.sandwich_random: must be an integer >= 0 (got {self.sandwich_random!r})")
        for name in ("lr_w", "lr_v"):
            if not getattr(self, name) > 0:
                raise ValueError(f"BaselineConfig.{name}: must be > 0 (got {getattr(self, name)!r})")
        if not (math.isfinite(self.penalty) and self.penalty >= 0):
            raise ValueError(f"BaselineConfig.penalty: must be a finite number >= 0 (got {self.penalty!r})")
        if not self.gate_init > THRESHOLD:
            raise ValueError(f"BaselineConfig.gate_init: must be above the threshold {THRESHOLD} (got {self.gate_init!r})")
        if not 0 < self.lr_plateau_factor < 1:
            raise ValueError(f"BaselineConfig.lr_plateau_factor: must be in (0, 1) (got {self.lr_plateau_factor})")
        if self.macs is None and self.params is None:
            raise ValueError(f"method {self.method}: needs a target to prune to: --macs and/or --params")
        for name in ("sram", "macs", "flash", "params"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and v > 0):
                raise ValueError(f"BaselineConfig.{name}: must be None or > 0 (got {v!r})")
        bad = sorted(set(self.tail) - set(tail_options(self.backbone)))
        if bad:
            raise ValueError(f"BaselineConfig.tail: {', '.join(map(repr, bad))} is not an option of "
                             f"{self.backbone}'s later stages")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class MaskedStage(nn.Module):
    """The original network (:class:`SftnasNet` at full width) whose conv layers' outputs are multiplied by
    per-filter masks (AutoSlim: prefix masks of a width; PaS: binary gates). A masked filter gives zeros to
    every later layer, which is the narrower network's computation (the tail stays at full width, module doc)."""

    def __init__(self, base: Arch):
        super().__init__()
        self.base = base
        self.net = build(base)
        self.widths = [l["filters"] for l in base.layers]

    def forward(self, x: torch.Tensor, masks: list[torch.Tensor] | None = None) -> torch.Tensor:
        net = self.net
        if net.gather:
            x = x[:, net.channel_index]
        h = x.transpose(1, 2).unsqueeze(1)
        for i, block in enumerate(net.stage):
            h = block(h)
            if masks is not None:
                h = h * masks[i].view(1, -1, 1, 1).to(h.dtype)
        return net.tail(h)


def _prefix_masks(widths: list[int], full: list[int]) -> list[torch.Tensor]:
    out = []
    for w, f in zip(widths, full):
        m = torch.zeros(f)
        m[:w] = 1.0
        out.append(m)
    return out


@torch.no_grad()
def _val_f1(model: MaskedStage, masks, x: torch.Tensor, y: torch.Tensor, num_classes: int,
            batch: int = 512) -> tuple[float, float]:
    was = model.training
    model.eval()
    logits = torch.cat([model(x[i:i + batch], masks) for i in range(0, len(x), batch)])
    model.train(was)
    m = metrics_from_predictions(y.numpy(), logits.argmax(1).numpy(), num_classes, float(F.cross_entropy(logits, y)))
    return m.macro_f1, m.loss


def _calibrate_bn(model: MaskedStage, masks, x: torch.Tensor, batches: int, batch_size: int,
                  gen: torch.Generator) -> None:
    """AutoSlim's BatchNorm re-calibration: the running statistics of every BN (the stage's and, since a tied
    tail's inputs change with the width, the later stages') recomputed for the width ``masks`` on ``batches``
    training batches."""
    perm = torch.randperm(len(x), generator=gen)
    recalibrate_bn(model, lambda xb: model(xb, masks), x, perm[:batches * batch_size], batch_size)


def figures(arch: Arch) -> dict[str, int]:
    """Cost-model figures of ``arch``'s derived network (the global RNG is left as it was: building the network
    to count it must not shift the training's random stream, or a resumed run would differ)."""
    with torch.random.fork_rng(devices=[]):
        p = profile(build(arch), (arch.in_channels, arch.seq_len)).total
    return {"macs": p.macs, "params": p.params, "peak_sram": p.peak_sram, "flash": p.flash}


def _fits(fig: dict[str, int], cfg: BaselineConfig) -> bool:
    return all(limit is None or fig[key] <= limit
               for key, limit in (("macs", cfg.macs), ("peak_sram", cfg.sram), ("flash", cfg.flash),
                                  ("params", cfg.params)))


def _record(epoch: int, arch: Arch, fig: dict[str, int], val_f1: float, val_loss: float, max_filters: int,
            **extra: Any) -> dict[str, Any]:
    # the fields of an SFTNAS search epoch that the report and the sweep read
    return {"epoch": epoch, "val_macro_f1": val_f1, "val_loss": val_loss, "arch": arch.summary(),
            "arch_dict": arch.to_dict(), "sensors": len(arch.channels), "sensors_kept": list(arch.channels),
            "filters_kept": filters_kept(arch), "max_filters": max_filters, **fig, **extra}


class _Run:
    """What both methods share: data, the masked network, the weight optimizer and its plateau schedule, the
    per-epoch checkpoint in ``run_dir/search_last.pt`` (the search's file and kind, this config)."""

    def __init__(self, train, val, cfg: BaselineConfig, run_dir: Path | None, resume: bool, console,
                 num_classes: int | None = None):
        self.cfg, self.console = cfg, console
        self.xt, self.yt = _xy(train, "train")
        self.xv, self.yv = _xy(val, "val")
        if self.xv.shape[1:] != self.xt.shape[1:]:
            raise ValueError(f"val.x: window shape {tuple(self.xv.shape[1:])} differs from train.x "
                             f"{tuple(self.xt.shape[1:])}")
        self.num_classes = _num_classes(self.yt, self.yv, num_classes)
        c0, s0 = int(self.xt.shape[1]), int(self.xt.shape[2])
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed % 2**32)
        self.base = original_arch(cfg.backbone, c0, s0, self.num_classes, filters=cfg.filters, tail=cfg.tail)
        self.full = [l["filters"] for l in self.base.layers]
        self.model = MaskedStage(self.base)
        self.v: nn.Parameter | None = None
        if cfg.method == "pas":
            self.v = nn.Parameter(torch.full((sum(self.full),), float(cfg.gate_init)))
        groups = [{"params": list(self.model.parameters()), "lr": cfg.lr_w}]
        if self.v is not None:
            groups.append({"params": [self.v], "lr": cfg.lr_v})
        self.opt = torch.optim.Adam(groups)
        self.sched = torch.optim.lr_scheduler.ReduceLROnPlateau(self.opt, mode="max", factor=cfg.lr_plateau_factor,
                                                                patience=cfg.lr_plateau_patience)
        self.g_shuffle = torch.Generator().manual_seed(cfg.seed)
        self.g_width = torch.Generator().manual_seed(cfg.seed + 1)
        self.meta = {"c0": c0, "s0": s0, "num_classes": self.num_classes, "n_train": len(self.xt),
                     "n_val": len(self.xv)}
        self.epoch, self.history, self.resumed_from = 0, [], None
        self.ck = run_dir / CHECKPOINT_NAME if run_dir is not None else None
        if resume:
            if self.ck is None:
                raise ValueError(f"{cfg.method}: resume=True needs a run folder")
            if self.ck.exists():
                ck = runstore.load_checkpoint(self.ck, CHECKPOINT_KIND, require=CHECKPOINT_FIELDS)
                runstore.check_resume(ck, self.ck, cfg.to_dict(), self.meta, RESUME_FREE)
                state = dict(ck["net"])
                if self.v is not None:
                    self.v.data.copy_(state.pop("__gates__"))
                self.model.load_state_dict(state)
                self.opt.load_state_dict(ck["opt_w"])
                self.sched.load_state_dict(ck["sched"])
                runstore.set_rng_state(ck["rng"], shuffle=self.g_shuffle, width=self.g_width)
                self.epoch, self.history, self.resumed_from = int(ck["epoch"]), ck["history"], int(ck["epoch"])
                if console is not None and cfg.progress:
                    console.print(f"{cfg.method}: resumed after epoch {self.epoch} from {self.ck}")

    def batches(self):
        perm = torch.randperm(len(self.xt), generator=self.g_shuffle)
        for i in range(0, len(self.xt), self.cfg.batch_size):
            idx = perm[i:i + self.cfg.batch_size]
            if idx.numel() >= 2:  # BatchNorm cannot train on one window
                yield self.xt[idx], self.yt[idx]

    def save(self) -> None:
        if self.ck is None:
            return
        state = dict(self.model.state_dict())
        if self.v is not None:
            state["__gates__"] = self.v.detach().clone()
        runstore.save_checkpoint(self.ck, CHECKPOINT_KIND, self.cfg.to_dict(), {
            "epoch": self.epoch, "net": state, "opt_w": self.opt.state_dict(), "sched": self.sched.state_dict(),
            "rng": runstore.rng_state(shuffle=self.g_shuffle, width=self.g_width), "history": self.history},
            meta=self.meta, free=RESUME_FREE)

    def log(self, rec: dict[str, Any]) -> None:
        if self.cfg.progress and self.console is not None:
            self.console.print(
                f"{self.cfg.method} epoch {rec['epoch']}/{self.cfg.epochs}: val F1 {rec['val_macro_f1']:.3f}  "
                f"{rec['macs'] / 1e6:.3f} MMACs  {rec['params']:,} params  filters "
                + " ".join(f"{f}/{m}" for f, m in zip(rec["filters_kept"], self.full)))


# ---- AutoSlim -------------------------------------------------------------------------------------

def slim_step(cfg: BaselineConfig, full: int) -> int:
    """Filters per AutoSlim group (one greedy step): ``cfg.slim_step`` or ``max(1, round(full / 16))``."""
    return int(cfg.slim_step) if cfg.slim_step is not None else max(1, int(round(full / 16)))


def _width_grid(full: int, step: int) -> list[int]:
    """Widths a layer takes: multiples of ``step`` up to ``full`` (and ``full``), and 1 (the narrowest)."""
    return sorted({1, full, *range(step, full + 1, step)})


def _autoslim(r: _Run, on_epoch_end) -> tuple[Arch, list[dict[str, Any]]]:
    cfg, model = r.cfg, r.model
    grids = [_width_grid(f, slim_step(cfg, f)) for f in r.full]
    widest, narrowest = list(r.full), [g[0] for g in grids]
    while r.epoch < cfg.epochs:
        t0 = time.perf_counter()
        model.train()
        losses = []
        for x, y in r.batches():
            r.opt.zero_grad(set_to_none=True)
            logits = model(x, _prefix_masks(widest, r.full))
            loss = F.cross_entropy(logits, y)
            loss.backward()
            soft = F.softmax(logits.detach(), dim=1)
            widths = [narrowest] + [[g[int(torch.randint(len(g), (1,), generator=r.g_width))] for g in grids]
                                    for _ in range(cfg.sandwich_random)]
            for w in widths:   # in-place distillation: the narrower networks learn the widest one's output
                out = model(x, _prefix_masks(w, r.full))
                F.kl_div(F.log_softmax(out, dim=1), soft, reduction="batchmean").backward()
            r.opt.step()
            losses.append(float(loss.detach()))
        # the sandwich rule trains every width through the same BatchNorms: re-calibrate for the widest first
        # (the same windows each epoch, from a generator of their own: the training's streams stay as they were)
        _calibrate_bn(model, _prefix_masks(widest, r.full), r.xt, cfg.calib_batches, cfg.batch_size,
                      torch.Generator().manual_seed(cfg.seed + 3))
        f1, vloss = _val_f1(model, _prefix_masks(widest, r.full), r.xv, r.yv, r.num_classes)
        r.sched.step(f1)
        r.epoch += 1
        fig = figures(r.base)
        rec = _record(r.epoch, r.base, fig, f1, vloss, max(r.full), phase="train", loss_train=float(np.mean(losses)),
                      lr_w=float(r.opt.param_groups[0]["lr"]), seconds=time.perf_counter() - t0)
        r.history.append(rec)
        r.save()
        r.log(rec)
        if on_epoch_end is not None and on_epoch_end(dict(rec)) is True:
            return r.base, []
    # greedy slimming on the validation subjects
    widths = list(widest)
    gen = torch.Generator().manual_seed(cfg.seed + 2)

    def arch_of(w: list[int]) -> Arch:
        return with_widths(r.base, [list(range(n)) for n in w], cfg.tie_tail)

    def score(w: list[int]) -> float:
        masks = _prefix_masks(w, r.full)
        _calibrate_bn(model, masks, r.xt, cfg.calib_batches, cfg.batch_size, gen)
        return _val_f1(model, masks, r.xv, r.yv, r.num_classes)[0]

    state = {k: v.clone() for k, v in model.state_dict().items()}
    steps: list[dict[str, Any]] = []
    fig = figures(arch_of(widths))
    while not _fits(fig, cfg):
        best = None
        for i, g in enumerate(grids):
            smaller = [n for n in g if n < widths[i]]
            if not smaller:
                continue
            cand = list(widths)
            cand[i] = smaller[-1]
            s = score(cand)
            if best is None or s > best[0]:
                best = (s, i, cand)
        if best is None:
            break  # every layer at one filter: the budget stage has checked that this fits
        widths = best[2]
        fig = figures(arch_of(widths))
        steps.append({"step": len(steps) + 1, "layer": best[1], "widths": list(widths), "val_macro_f1": best[0],
                      **fig})
        if cfg.progress and r.console is not None:
            r.console.print(f"autoslim step {len(steps)}: layer {best[1]} -> widths {widths}, val F1 {best[0]:.3f}, "
                            f"{fig['macs'] / 1e6:.3f} MMACs, {fig['params']:,} params")
    model.load_state_dict(state)
    return arch_of(widths), steps


# ---- PaS ------------------------------------------------------------------------------------------

def pas_layout(base: Arch) -> SftnasSpace:
    """The cost terms' space for ``base``: one kernel per layer (its own), every filter gated."""
    return SftnasSpace(base.in_channels, base.seq_len,
                       [SftnasLayer(l["stride"], (l["kernel"],), l["filters"]) for l in base.layers])


def _one_hot_probs(layout: SftnasSpace) -> torch.Tensor:
    # every layer runs its one conv (the identity a stride-1 layer offers in the space is never chosen)
    return torch.cat([F.one_hot(torch.tensor(0), l.num_candidates).double() for l in layout.layers])


def _pas(r: _Run, on_epoch_end) -> tuple[Arch, list[dict[str, Any]]]:
    cfg, model, v = r.cfg, r.model, r.v
    assert v is not None
    layout = pas_layout(r.base)
    probs = _one_hot_probs(layout)
    b0 = torch.ones(r.base.in_channels, dtype=torch.float64)
    tail_for = (lambda f: tied_tail(cfg.backbone, dict(cfg.tail), r.full[-1], f)) if cfg.tie_tail else None
    dense = figures(with_widths(r.base, [list(range(n)) for n in r.full], cfg.tie_tail))
    targets = {k: float(t) for k, t in (("macs", cfg.macs), ("params", cfg.params)) if t is not None}

    def masks() -> list[torch.Tensor]:
        return [ste_binarize(part, THRESHOLD) for part in torch.split(v, r.full)]

    def current() -> Arch:
        return with_widths(r.base, [torch.nonzero(m.detach()).reshape(-1).tolist() for m in masks()], cfg.tie_tail)

    while r.epoch < cfg.epochs:
        t0 = time.perf_counter()
        model.train()
        arch0 = current()
        with torch.random.fork_rng(devices=[]):  # cost-only networks: see figures()
            space = cost_space(layout, arch0, max(r.full), tail_for)
            ptail = tail_param_term(arch0, max(r.full), tail_for) if "params" in targets else None
        losses, pens = [], []
        for x, y in r.batches():
            r.opt.zero_grad(set_to_none=True)
            ms = masks()
            ce = F.cross_entropy(model(x, ms), y)
            flat = torch.cat(ms).double()
            fig = {"macs": hw_terms(space, b0, flat, probs, scale=1.0, mem_limit=float("inf")).macs}
            if ptail is not None:
                fig["params"] = expected_params(layout, b0, flat, probs, ptail)
            # PaS's penalty: c * (M - T)^2 on a scale where the dense network is 1
            pen = sum(cfg.penalty * ((fig[k] - t) / float(dense[k])) ** 2 for k, t in targets.items())
            loss = ce + pen.to(ce.dtype)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"pas epoch {r.epoch + 1}: loss became {float(loss)}")
            loss.backward()
            r.opt.step()
            losses.append(float(ce.detach()))
            pens.append(float(pen.detach()))
        arch = current()
        f1, vloss = _val_f1(model, masks(), r.xv, r.yv, r.num_classes)
        r.sched.step(f1)
        r.epoch += 1
        fig = figures(arch)
        rec = _record(r.epoch, arch, fig, f1, vloss, max(r.full), phase="prune", loss_train=float(np.mean(losses)),
                      penalty=float(np.mean(pens)), lr_w=float(r.opt.param_groups[0]["lr"]),
                      seconds=time.perf_counter() - t0)
        r.history.append(rec)
        r.save()
        r.log(rec)
        if on_epoch_end is not None and on_epoch_end(dict(rec)) is True:
            break
    arch, _ = pick_arch(r.history, current(), cfg)  # the latest epoch within every limit (validation-free)
    return arch, []


def run_baseline(train: Any, val: Any, config: BaselineConfig, *, run_dir: str | Path | None = None,
                 resume: bool = False, on_epoch_end: Callable[[dict[str, Any]], Any] | None = None,
                 console=None, num_classes: int | None = None) -> SearchResult:
    """Run AutoSlim or PaS (``config.method``) on ``train`` / ``val`` (``.x`` (N, C, T), ``.y`` (N,), or
    ``(x, y)`` pairs) and return the same :class:`~harcore.nas.search.SearchResult` a search returns (its
    ``supernet`` is the trained slimmable / gated network, a :class:`MaskedStage`). With ``run_dir`` every epoch
    is checkpointed to ``run_dir/search_last.pt`` and ``resume=True`` continues from it; ``arch.json`` and
    ``search_history.json`` (and AutoSlim's ``slimming.json``) are written there. ``num_classes``: the dataset's
    class count (default: the highest label seen + 1)."""
    cfg = config
    if console is None and cfg.progress:
        from rich.console import Console

        console = Console(file=sys.stdout)
    prev = torch.get_num_threads()
    if cfg.num_threads is not None:
        torch.set_num_threads(cfg.num_threads)
    t0 = time.perf_counter()
    try:
        rd = Path(run_dir) if run_dir is not None else None
        r = _Run(train, val, cfg, rd, resume, console, num_classes)
        arch, steps = (_autoslim if cfg.method == "autoslim" else _pas)(r, on_epoch_end)
    finally:
        torch.set_num_threads(prev)
    arch_epoch = r.epoch
    for rec in reversed(r.history):
        if cfg.method == "pas" and rec["arch_dict"] == arch.to_dict():
            arch_epoch = rec["epoch"]
            break
    if rd is not None:
        runstore.atomic_write_text(rd / "arch.json", arch.to_json())
        runstore.atomic_write_text(rd / "search_history.json", json.dumps(r.history, indent=2))
        if cfg.method == "autoslim":
            runstore.atomic_write_text(rd / "slimming.json", json.dumps(steps, indent=2))
    res = SearchResult(arch, r.history, r.epoch, r.resumed_from, r.model, time.perf_counter() - t0, arch_epoch)
    res.slimming = steps  # type: ignore[attr-defined]
    return res


def check_resumable(run_dir: str | Path, config: BaselineConfig) -> int | None:
    """The epoch a baseline run in ``run_dir`` would resume after (``None``: no checkpoint), after checking
    that its checkpoint reads and was written with ``config`` (:class:`CheckpointError` otherwise)."""
    return checkpoint_epoch(run_dir, config.to_dict(), CHECKPOINT_FIELDS, RESUME_FREE)


__all__ = ["BASELINES", "BaselineConfig", "METHODS", "MaskedStage", "check_method", "check_resumable",
           "original_arch", "original_strides", "run_baseline", "smallest_original", "with_widths"]
