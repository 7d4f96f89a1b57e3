"""The bi-level SFTNAS search (Sec. IV-C), checkpointed after every epoch and resumable.

DARTS-style alternating optimization, first-order: for every training batch, one Adam step on the
architecture logits ``alpha`` with a validation batch (upper level, Eq. 8), then one Adam step on the weights
``w`` and the DCS parameters ``v`` with the training batch (lower level, Eq. 9). Both levels minimise Eq. 10,
``CE + beta1 * L_complexity + beta2 * L_memory``; the hardware terms and their gradients come from the C++ cost
model through ``harcore.nas.hw_loss`` (:mod:`harcore.nas.derive` for the tail terms). Each step samples one
architecture per batch with the Gumbel-max trick (Eq. 5-7) at ``tau = tau0 * exp(-0.05 * epoch)``.

Defaults are the paper's (Sec. V-A4): Adam lr 1e-4 for w and v, decayed by 0.9 after 10 epochs without
improvement (here: of the validation macro-F1 of the current architecture), at most 200 epochs, batch 256;
Adam lr 5e-3, betas (0.5, 0.999), weight decay 1e-3 for alpha, alpha initialised to 1e-3; tau0 = 5.
harcore's own choices where the paper gives none: beta1 = 1 with L_complexity normalised by the full-size
network's MACs, beta2 = 1, DCS parameters initialised to 0.75.

Budgets (``macs``, ``params``, ``flash``) are targets: scale-free resource terms on the DCS gates
(:mod:`harcore.nas.budget`; ``resource`` picks the form), after ``prune_warmup`` epochs, on the weight level
only unless ``budget_alpha`` (Eq. 11 alone drives alpha, as in the paper). ``sram`` is Eq. 13's L_Mem. The
result is the latest epoch's architecture within every limit (:func:`pick_arch`).
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
import torch.nn.functional as F

from harcore.cost import profile
from harcore.models.sftnas import tail_options
from harcore.train.metrics import metrics_from_predictions
from harcore import runstore
from harcore.errors import CheckpointError, DataError

from .bn_calib import recalibrate_bn
from .budget import RESOURCE_MODES, BudgetTerms, expected_params, filters_kept, tail_param_term, tied_tail
from .derive import Arch, build, cost_space, derive
from .gumbel import TAU0, TAU_DECAY, temperature
from .hw_loss import hw_loss, hw_terms
from .supernet import Supernet

CHECKPOINT_NAME = "search_last.pt"
CHECKPOINT_KIND = "search"   # runstore's checkpoint format, this kind
CHECKPOINT_FIELDS = ("epoch", "net", "opt_w", "opt_a", "sched", "rng", "history")
# may change between a run and its resumption (flash: only once the search has finished, see _search)
RESUME_FREE = frozenset({"progress", "num_threads", "flash"})


@dataclass
class SearchConfig:
    """Hyper-parameters of one search (see the module doc for where each default comes from)."""

    backbone: str = "tinyhar"
    filters: int | None = None          # per-layer filters of the searchable stage; None: the backbone's own
    epochs: int = 200
    batch_size: int = 256
    lr_w: float = 1e-4
    lr_v: float | None = None           # DCS parameters v; None: lr_w (the paper uses one optimizer for w and v)
    lr_sensors: float | None = None     # the sensor gates alone; None: lr_v
    lr_plateau_factor: float = 0.9
    lr_plateau_patience: int = 10
    lr_alpha: float = 5e-3
    alpha_betas: tuple[float, float] = (0.5, 0.999)
    alpha_weight_decay: float = 1e-3
    tau0: float = TAU0
    tau_decay: float = TAU_DECAY
    beta1: float = 1.0
    beta2: float = 1.0
    sram: int | None = 96_000           # L_Mem in bytes; None: no memory term
    macs: int | None = None             # MAC target (resource term, harcore.nas.budget) and limit
    flash: int | None = None            # flash target and limit
    params: int | None = None           # parameter target and limit
    beta_macs: float = 1.0              # weight of the MAC term
    beta_budget: float = 1.0            # weight of the parameter and flash terms
    resource: str = "band"              # band | hinge | lagrange | none (harcore.nas.budget)
    budget_band: float = 0.1            # band: no push while X is in [(1 - band) T, T]
    lr_lambda: float = 0.05             # lagrange: the multipliers' ascent rate per step
    budget_alpha: bool = False          # the resource terms also act on alpha (default: the gates only)
    prune_warmup: int = 0               # epochs before the resource terms act
    dcs_shared: bool = False            # one filter mask per layer shared by its kernel candidates
    tie_tail: bool = False              # the later stages' width follows the stage's kept filters
    dcs_init: float = 0.75
    bn_calib: int = 2048                # training windows that re-calibrate BatchNorm before each validation
    seed: int = 0
    num_threads: int | None = 1
    progress: bool = True
    tail: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.alpha_betas = tuple(float(b) for b in self.alpha_betas)
        for name in ("epochs", "batch_size", "lr_plateau_patience"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"SearchConfig.{name}: must be an integer >= 1 (got {v!r})")
        for name in ("lr_v", "lr_sensors"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and v > 0):
                raise ValueError(f"SearchConfig.{name}: must be > 0 or None (got {v!r})")
        for name in ("lr_w", "lr_alpha", "tau0"):
            if not getattr(self, name) > 0:
                raise ValueError(f"SearchConfig.{name}: must be > 0 (got {getattr(self, name)!r})")
        for name in ("beta1", "beta2", "beta_macs", "beta_budget", "tau_decay", "alpha_weight_decay", "lr_lambda"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ValueError(f"SearchConfig.{name}: must be a finite number >= 0 (got {v!r})")
        for name in ("sram", "macs", "flash", "params"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, (int, float)) and v > 0):
                raise ValueError(f"SearchConfig.{name}: must be None or > 0 (got {v!r})")
        if self.resource not in RESOURCE_MODES:
            raise ValueError(f"SearchConfig.resource: must be one of {', '.join(RESOURCE_MODES)} "
                             f"(got {self.resource!r})")
        if not 0 <= self.budget_band < 1:
            raise ValueError(f"SearchConfig.budget_band: must be in [0, 1) (got {self.budget_band!r})")
        for name in ("prune_warmup", "bn_calib"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"SearchConfig.{name}: must be an integer >= 0 (got {v!r})")
        if not self.dcs_init > 0.5:
            raise ValueError(f"SearchConfig.dcs_init: must be above the DCS threshold 0.5 (got {self.dcs_init!r})")
        if not 0 < self.lr_plateau_factor < 1:
            raise ValueError(f"SearchConfig.lr_plateau_factor: must be in (0, 1) (got {self.lr_plateau_factor})")
        allowed = tail_options(self.backbone)
        bad = sorted(set(self.tail) - set(allowed))
        if bad:
            raise ValueError(f"SearchConfig.tail: {', '.join(map(repr, bad))} is not an option of {self.backbone}'s "
                             "later stages; options: " + ", ".join(f"{k} (default {v!r})" for k, v in allowed.items()))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["alpha_betas"] = list(self.alpha_betas)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SearchConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        bad = set(d) - names
        if bad:
            raise ValueError(f"SearchConfig: unknown field(s) {sorted(bad)}")
        return cls(**d)


@dataclass
class SearchResult:
    arch: Arch
    history: list[dict[str, Any]]
    epochs_run: int
    resumed_from_epoch: int | None
    supernet: Supernet
    seconds: float
    arch_epoch: int | None = None   # the epoch whose argmax architecture ``arch`` is (None: none ran)

    def to_dict(self) -> dict[str, Any]:
        return {"arch": self.arch.to_dict(), "history": self.history, "epochs_run": self.epochs_run,
                "resumed_from_epoch": self.resumed_from_epoch, "seconds": self.seconds,
                "arch_epoch": self.arch_epoch}


def fits_budget(rec: dict[str, Any], cfg: SearchConfig) -> bool:
    """Whether an epoch record's architecture is within the search's MAC, SRAM, flash and parameter limits."""
    return all(limit is None or rec[key] <= limit
               for key, limit in (("macs", cfg.macs), ("peak_sram", cfg.sram), ("flash", cfg.flash),
                                  ("params", cfg.params)))


def pick_arch(history: list[dict[str, Any]], final: Arch, cfg: SearchConfig) -> tuple[Arch, int | None]:
    """The final argmax architecture, or — when it breaks a limit (the hinges let the sampled architectures
    hover at the limit) — the latest epoch's that fits; the final one when none did."""
    if not history or fits_budget(history[-1], cfg):
        return final, (history[-1]["epoch"] if history else None)
    for rec in reversed(history):
        if fits_budget(rec, cfg) and "arch_dict" in rec:
            return Arch.from_dict(rec["arch_dict"]), rec["epoch"]
    return final, history[-1]["epoch"]


def _xy(split: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = (split.x, split.y) if hasattr(split, "x") else split
    x = torch.as_tensor(np.ascontiguousarray(x), dtype=torch.float32)
    y = torch.as_tensor(np.asarray(y), dtype=torch.long)
    if x.dim() != 3 or y.shape != (x.shape[0],) or x.shape[0] == 0:
        raise ValueError(f"{name}: expected x (N, C, T) and y (N,) with N > 0, got {tuple(x.shape)} / {tuple(y.shape)}")
    return x, y


def _num_classes(yt: torch.Tensor, yv: torch.Tensor, num_classes: int | None) -> int:
    """The head's class count: the dataset's (``num_classes``) when given, checked against the labels; else the
    highest label seen + 1 (too few when the dataset's last classes are absent from train/val)."""
    seen = int(max(yt.max(), yv.max())) + 1
    if num_classes is None:
        return seen
    if int(min(yt.min(), yv.min())) < 0 or seen > num_classes:
        raise DataError(f"labels: train/val labels span {int(min(yt.min(), yv.min()))}..{seen - 1}, outside the "
                        f"dataset's {num_classes} classes 0..{num_classes - 1}")
    return num_classes


def full_arch(net: Supernet) -> Arch:
    """Every sensor and filter, the largest kernel everywhere, no identity: the normalisation of L_complexity."""
    layers = [{"op": "conv", "kernel": max(l.kernels), "stride": l.stride, "filters": l.filters,
               "kept": list(range(l.filters))} for l in net.layout.layers]
    return Arch(net.backbone, net.in_channels, net.seq_len, net.num_classes, list(range(net.in_channels)), layers,
                dict(net.tail_cfg))


def calibration_windows(n_train: int, cfg: SearchConfig) -> torch.Tensor:
    """The training windows (indices) that re-calibrate BatchNorm before each validation: the same every epoch,
    from a generator of their own so that the shuffle's random stream stays as it was."""
    return torch.randperm(n_train, generator=torch.Generator().manual_seed(cfg.seed + 2))[:cfg.bn_calib]


@torch.no_grad()
def _evaluate(net: Supernet, x: torch.Tensor, y: torch.Tensor, batch: int = 512,
              calib: tuple[torch.Tensor, torch.Tensor] | None = None) -> tuple[float, float]:
    """Validation macro-F1 and loss of the argmax network; ``calib = (x_train, idx)`` first re-calibrates its
    BatchNorm statistics on those training windows (:mod:`harcore.nas.bn_calib`)."""
    if calib is not None:
        recalibrate_bn(net, net, calib[0], calib[1], 256)
    was = net.training
    net.eval()
    logits = torch.cat([net(x[i:i + batch])[0] for i in range(0, len(x), batch)])
    net.train(was)
    m = metrics_from_predictions(y.numpy(), logits.argmax(1).numpy(), net.num_classes,
                                 float(F.cross_entropy(logits, y)))
    return m.macro_f1, m.loss


def arch_figures(net: Supernet, arch: Arch) -> dict[str, Any]:
    """Cost-model figures of ``arch`` (MACs, params, peak SRAM, flash) and the hw terms' view of it."""
    p = profile(build(arch), (arch.in_channels, arch.seq_len)).total
    return {"macs": p.macs, "params": p.params, "peak_sram": p.peak_sram, "flash": p.flash}


def search(train: Any, val: Any, config: SearchConfig | None = None, *, run_dir: str | Path | None = None,
           resume: bool = False, on_epoch_end: Callable[[dict[str, Any]], Any] | None = None,
           console=None, num_classes: int | None = None) -> SearchResult:
    """Search an architecture on ``train`` (weights, DCS) and ``val`` (alpha); splits have ``.x`` (N, C, T)
    float and ``.y`` (N,) int, or are ``(x, y)`` pairs.

    With ``run_dir`` the full state (supernet, both optimizers, scheduler, RNG states, history) is written
    atomically to ``run_dir/search_last.pt`` after every epoch; ``resume=True`` continues from it exactly
    (same config required, apart from ``progress`` / ``num_threads``). ``on_epoch_end(record)`` returning
    ``True`` stops after that epoch's checkpoint (the run can be resumed). ``num_classes``: the dataset's class
    count (default: the highest label seen in ``train``/``val`` + 1, too few when the last classes are absent).
    """
    cfg = SearchConfig() if config is None else config
    prev_threads = torch.get_num_threads()
    if cfg.num_threads is not None:
        torch.set_num_threads(cfg.num_threads)
    try:
        return _search(train, val, cfg, Path(run_dir) if run_dir is not None else None, resume, on_epoch_end,
                       console, num_classes)
    finally:
        torch.set_num_threads(prev_threads)


def check_resumable(run_dir: str | Path, config: SearchConfig) -> int | None:
    """The epoch a search in ``run_dir`` would resume after (``None``: no checkpoint there), after checking
    that its checkpoint reads and was written with ``config`` (a :class:`~harcore.errors.CheckpointError`
    naming the file and the differing fields otherwise). The data is checked when the search resumes."""
    return checkpoint_epoch(run_dir, config.to_dict(), CHECKPOINT_FIELDS, RESUME_FREE)


def checkpoint_epoch(run_dir: str | Path, config: dict[str, Any], fields: tuple[str, ...],
                     free: frozenset[str]) -> int | None:
    """The epoch of ``run_dir``'s ``search_last.pt`` (``None``: none there) after checking that it reads, holds
    ``fields`` and was written with ``config`` but for the ``free`` keys; shared by the search and the
    baselines, which write the same file kind with their own fields and config."""
    path = Path(run_dir) / CHECKPOINT_NAME
    if not path.exists():
        return None
    ck = runstore.load_checkpoint(path, CHECKPOINT_KIND, require=fields)
    runstore.check_resume(ck, path, config, None, free)
    return int(ck["epoch"])


def complexity_scale(net: Supernet) -> float:
    """The normalisation of L_complexity: the MACs of :func:`full_arch` (cost model)."""
    return float(profile(build(full_arch(net)), (net.in_channels, net.seq_len)).total.macs)


def hw_objective(cfg: SearchConfig, space: Any, b0: torch.Tensor, masks: torch.Tensor, probs: torch.Tensor,
                 scale: float, budget: BudgetTerms | None = None, budget_fit: dict[str, Any] | None = None,
                 layout: Any = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The hardware part of the search's loss and its step stats: ``beta1 * L_complexity + beta2 * L_memory``
    (Eq. 10; no memory term without ``cfg.sram``), plus ``budget``'s resource terms (:func:`budget_objective`,
    at the same choices) when given."""
    mem_limit = float(cfg.sram) if cfg.sram is not None else float("inf")
    beta2 = cfg.beta2 if cfg.sram is not None else 0.0
    stats: dict[str, float] = {}
    hw = hw_loss(space, b0, masks, probs, scale=scale, mem_limit=mem_limit, beta1=cfg.beta1, beta2=beta2,
                 stats=stats)
    if budget is not None and budget.active:
        res, bstats = budget_objective(budget, space, b0, masks, probs, budget_fit or {},
                                       layout if layout is not None else space)
        hw = hw + res
        stats.update(bstats)
    return hw, stats


def budget_objective(budget: BudgetTerms, space: Any, b0: torch.Tensor, masks: torch.Tensor, probs: torch.Tensor,
                     fit: dict[str, Any], layout: Any) -> tuple[torch.Tensor, dict[str, float]]:
    """The resource terms alone and their figures (the ``budget`` part of :func:`hw_objective`)."""
    t = hw_terms(space, b0, masks, probs, scale=1.0, mem_limit=float("inf"))
    figures = {"macs": t.macs}
    if "params" in budget.targets or "flash" in budget.targets:
        figures["params"] = expected_params(layout, b0, masks, probs, fit.get("tail")).to(t.macs.dtype)
        figures["flash"] = figures["params"] * float(fit.get("flash_per_param", 1.0))
    res = budget.loss(figures)
    stats = {f"budget_{k}": float(v.detach()) for k, v in figures.items()}
    stats["budget_loss"] = float(res.detach())
    return res, stats


def make_budget(cfg: SearchConfig) -> BudgetTerms:
    """The resource terms of ``cfg`` (:mod:`harcore.nas.budget`)."""
    return BudgetTerms(macs=cfg.macs, params=cfg.params, flash=cfg.flash, mode=cfg.resource, band=cfg.budget_band,
                       beta_macs=cfg.beta_macs, beta_budget=cfg.beta_budget, lr_lambda=cfg.lr_lambda)


def tail_rule(cfg: SearchConfig, net: Supernet):
    """``tail_for(filters)`` for tied tails (``None`` otherwise): the later stages' options at a stage width."""
    if not cfg.tie_tail:
        return None
    return lambda f: tied_tail(net.backbone, dict(net.tail_cfg), net.filters, f)


def budget_fit(cfg: SearchConfig, net: Supernet, arch: Arch, fig: dict[str, Any]) -> dict[str, Any]:
    """What the parameter and flash terms need around ``arch``: the tail's parameter polynomial and the int8
    flash bytes per parameter (both from the cost model, exact at ``arch``)."""
    if cfg.params is None and cfg.flash is None:
        return {}
    return {"tail": tail_param_term(arch, net.filters, tail_rule(cfg, net)),
            "flash_per_param": fig["flash"] / max(1, fig["params"])}


def _search(train, val, cfg, run_dir, resume, on_epoch_end, console, num_classes=None) -> SearchResult:
    t_start = time.perf_counter()
    xt, yt = _xy(train, "train")
    xv, yv = _xy(val, "val")
    if xv.shape[1:] != xt.shape[1:]:
        raise ValueError(f"val.x: window shape {tuple(xv.shape[1:])} differs from train.x {tuple(xt.shape[1:])}")
    num_classes = _num_classes(yt, yv, num_classes)
    c0, s0 = int(xt.shape[1]), int(xt.shape[2])

    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    net = Supernet(cfg.backbone, c0, s0, num_classes, filters=cfg.filters, dcs_init=cfg.dcs_init, tail=cfg.tail,
                   dcs_shared=cfg.dcs_shared, tie_tail=cfg.tie_tail)
    budget = make_budget(cfg)
    tail_for = tail_rule(cfg, net)
    # v gets its own group: Adam's steps are ~lr whatever the gradient's size, so with a large lr_w the
    # complexity term's steady sign would close sensor/filter gates within an epoch, before CE can weigh in.
    # lr_sensors: the sensor gates carry every layer's cost (a sensor feeds each filter), so at a tight budget
    # all of them get the same steady push and close together at the filter gates' rate (measured, micro
    # budget: 8 of 9 in the first epoch at 5e-3); a rate of their own lets CE tell the sensors apart first.
    v_ids = {id(p) for p in net.dcs_parameters()}
    lr_v = cfg.lr_v if cfg.lr_v is not None else cfg.lr_w
    groups = [{"params": [p for p in net.weight_parameters() if id(p) not in v_ids], "lr": cfg.lr_w}]
    if cfg.lr_sensors is None:
        groups.append({"params": net.dcs_parameters(), "lr": lr_v})
    else:  # (two groups as before without it: older checkpoints' optimizer states still load)
        s_ids = {id(net.sensor_dcs.v)}
        groups += [{"params": [p for p in net.dcs_parameters() if id(p) not in s_ids], "lr": lr_v},
                   {"params": [net.sensor_dcs.v], "lr": cfg.lr_sensors}]
    opt_w = torch.optim.Adam(groups)
    opt_a = torch.optim.Adam(net.arch_parameters(), lr=cfg.lr_alpha, betas=cfg.alpha_betas,
                             weight_decay=cfg.alpha_weight_decay)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt_w, mode="max", factor=cfg.lr_plateau_factor,
                                                       patience=cfg.lr_plateau_patience)
    g_shuffle = torch.Generator().manual_seed(cfg.seed)
    g_gumbel = torch.Generator().manual_seed(cfg.seed + 1)
    scale = complexity_scale(net)
    calib = (xt, calibration_windows(len(xt), cfg)) if cfg.bn_calib else None
    meta = {"c0": c0, "s0": s0, "num_classes": num_classes, "n_train": len(xt), "n_val": len(xv)}

    epoch, history, resumed_from = 0, [], None
    ck_path = run_dir / CHECKPOINT_NAME if run_dir is not None else None
    if resume:
        if ck_path is None:
            raise ValueError("search: resume=True needs a run folder")
        if ck_path.exists():
            ck = runstore.load_checkpoint(ck_path, CHECKPOINT_KIND, require=CHECKPOINT_FIELDS)
            runstore.check_resume(ck, ck_path, cfg.to_dict(), meta, RESUME_FREE)
            old_flash = (ck.get("config") or {}).get("flash")
            if int(ck["epoch"]) < cfg.epochs and old_flash != cfg.flash:
                # flash is free only for a finished search: a flash target acts in the loss of the epochs to come
                raise CheckpointError(f"config.flash: {ck_path} was written with {old_flash!r}, resuming with "
                                      f"{cfg.flash!r}; a flash target acts in the loss, so an unfinished search "
                                      "resumes only with its own (a finished one re-selects under a new limit)")
            net.load_state_dict(ck["net"])
            opt_w.load_state_dict(ck["opt_w"])
            opt_a.load_state_dict(ck["opt_a"])
            sched.load_state_dict(ck["sched"])
            runstore.set_rng_state(ck["rng"], shuffle=g_shuffle, gumbel=g_gumbel)
            epoch, history, resumed_from = ck["epoch"], ck["history"], ck["epoch"]
            budget.load_state(ck.get("budget"))

    progress = None
    if cfg.progress:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        console = console or Console(file=sys.stdout)
        if console.is_terminal:
            progress = Progress(TextColumn("[bold]search"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                TextColumn("{task.fields[status]}"), console=console)
            task = progress.add_task("search", total=cfg.epochs, completed=epoch, status="")
            progress.start()
        if resumed_from is not None:
            console.print(f"search: resumed after epoch {resumed_from} from {ck_path}")

    def step(x, y, opt, tau, all_paths, with_budget) -> tuple[float, dict]:
        probs = net.sample(tau, g_gumbel)
        logits, b0, masks = net(x, probs, all_paths=all_paths)
        ce = F.cross_entropy(logits, y)
        hw, stats = hw_objective(cfg, space, b0, masks, probs, scale)
        if with_budget:
            # the gates' push is judged on the network the search would derive now (argmax choices): the
            # sampled path's figures swing with every draw (an identity as last layer changes the tail's
            # width), and a gate of the argmax candidate must learn even while another kernel is sampled.
            # With budget_alpha the alpha step judges its sampled path instead (the gradient reaches alpha).
            bp = probs if all_paths else net.argmax_probs().to(probs.dtype)
            res, bstats = budget_objective(budget, space, b0, masks, bp, fit, net.layout)
            hw = hw + res
            stats = {**stats, **bstats}
        loss = ce + hw.to(ce.dtype)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"search epoch {epoch + 1}: loss became {float(loss)}")
        # only this level's parameters: the alpha step would otherwise also form every candidate's weight
        # gradients (measured: 271 -> 184 ms per all-paths alpha step, TinyHAR 9x128, batch 64)
        params = [p for g in opt.param_groups for p in g["params"]]
        for p, g in zip(params, torch.autograd.grad(loss, params, allow_unused=True)):
            p.grad = g
        opt.step()
        return float(loss.detach()), stats

    try:
        while epoch < cfg.epochs:
            t0 = time.perf_counter()
            net.train()
            tau = temperature(epoch, cfg.tau0, cfg.tau_decay)
            arch0 = derive(net)
            space = cost_space(net.layout, arch0, net.filters, tail_for)
            pruning = budget.active and epoch >= cfg.prune_warmup
            fit = budget_fit(cfg, net, arch0, arch_figures(net, arch0)) if pruning else {}
            perm = torch.randperm(len(xt), generator=g_shuffle)
            vperm = torch.randperm(len(xv), generator=g_shuffle)
            vpos, losses_w, losses_a, stats = 0, [], [], {}
            for i in range(0, len(xt), cfg.batch_size):
                idx = perm[i:i + cfg.batch_size]
                if idx.numel() < 2:
                    continue  # BatchNorm cannot train on one window
                if vpos + cfg.batch_size > len(xv) and vpos > 0:
                    vperm, vpos = torch.randperm(len(xv), generator=g_shuffle), 0
                vidx = vperm[vpos:vpos + cfg.batch_size]
                vpos += cfg.batch_size
                # upper level: alpha on validation, through every candidate (Supernet.forward: all_paths)
                la, _ = step(xv[vidx], yv[vidx], opt_a, tau, True, pruning and cfg.budget_alpha)
                lw, stats = step(xt[idx], yt[idx], opt_w, tau, False, pruning)  # lower level: w, v on training
                if pruning:
                    budget.update({k[len("budget_"):]: v for k, v in stats.items() if k.startswith("budget_")})
                losses_a.append(la)
                losses_w.append(lw)
            arch = derive(net)
            val_f1, val_loss = _evaluate(net, xv, yv, calib=calib)
            sched.step(val_f1)
            fig = arch_figures(net, arch)
            epoch += 1
            rec = {"epoch": epoch, "tau": tau, "loss_train": float(np.mean(losses_w)), "loss_val": float(np.mean(losses_a)),
                   "val_macro_f1": val_f1, "val_loss": val_loss, "lr_w": float(opt_w.param_groups[0]["lr"]),
                   "sampled": stats, "arch": arch.summary(), "arch_dict": arch.to_dict(), "sensors": len(arch.channels),
                   "sensors_kept": list(arch.channels), "filters_kept": filters_kept(arch),
                   "max_filters": net.filters, "pruning": pruning, "lagrange": budget.state(),
                   **fig,
                   "seconds": time.perf_counter() - t0}
            history.append(rec)
            if ck_path is not None:
                runstore.save_checkpoint(ck_path, CHECKPOINT_KIND, cfg.to_dict(), {
                    "epoch": epoch, "net": net.state_dict(), "opt_w": opt_w.state_dict(), "opt_a": opt_a.state_dict(),
                    "sched": sched.state_dict(), "rng": runstore.rng_state(shuffle=g_shuffle, gumbel=g_gumbel),
                    "history": history, "budget": budget.state()}, meta=meta, free=RESUME_FREE)
            status = (f"val F1 {val_f1:.3f}  {fig['macs'] / 1e6:.3f} MMACs  {fig['peak_sram']:,} B SRAM  "
                      f"{fig['params']:,} params  tau {tau:.2f}  sensors {len(arch.channels)}/{c0}  filters "
                      + " ".join("id" if f is None else f"{f}/{net.filters}" for f in filters_kept(arch)))
            if progress is not None:
                progress.update(task, advance=1, status=status)
            elif cfg.progress:
                console.print(f"search epoch {epoch}/{cfg.epochs}: {status}")
            if on_epoch_end is not None and on_epoch_end(dict(rec)) is True:
                break
    finally:
        if progress is not None:
            progress.stop()
    arch, arch_epoch = pick_arch(history, derive(net), cfg)
    if run_dir is not None:
        runstore.atomic_write_text(run_dir / "arch.json", arch.to_json())
        runstore.atomic_write_text(run_dir / "search_history.json", json.dumps(history, indent=2))
    return SearchResult(arch, history, epoch, resumed_from, net, time.perf_counter() - t_start, arch_epoch)
