"""The training loop: :func:`fit`, checkpoints and exact resumption."""

from __future__ import annotations

import os
import random
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from harcore import runstore
from harcore.errors import CheckpointError

from ._data import (CheckedSplit, check_class_coverage, check_model_input, check_split, infer_num_classes,
                    resolve_num_classes)
from .config import RESUME_FREE_FIELDS, TrainConfig
from .losses import balanced_class_weights, distillation_loss
from .metrics import metrics_from_predictions, predict_logits

KIND_LAST = "train.last"   # the full training state (runstore's checkpoint format)
KIND_BEST = "train.best"   # the best epoch's weights
_LAST_FIELDS = ("epoch", "model", "optimizer", "scheduler", "rng", "history", "best_score", "best_epoch",
                "best_state", "bad_epochs", "stopped_early")
LAST = "last.pt"
BEST = "best.pt"

# Defaults for knowledge distillation. The cnn-distillation paper does not report its alpha or T
# (it names an untuned temperature as a possible cause of its student's accuracy drop); these are
# harcore's defaults, chosen from common practice (Hinton et al. use T in 2..20).
DEFAULT_KD_ALPHA = 0.5
DEFAULT_KD_TEMPERATURE = 4.0


@dataclass
class TrainResult:
    """Outcome of :func:`fit`.

    ``model`` is the trained model (the same object that was passed in) holding the weights of
    ``best_epoch`` (highest validation macro-F1, the earliest on ties) or, without a validation
    split, of the last epoch. ``history`` has one dict per epoch: ``epoch`` (1-based), ``loss``
    (mean training loss), ``train_macro_f1`` (over the epoch's training batches, train mode),
    ``val_macro_f1``, ``val_accuracy``, ``val_loss`` (``None`` without validation), ``lr`` (the
    learning rate used during the epoch) and ``seconds`` (wall time of the epoch).
    """

    model: torch.nn.Module
    history: list[dict[str, Any]]
    best_epoch: int | None
    best_val_macro_f1: float | None
    stopped_early: bool
    epochs_run: int
    num_classes: int
    class_weights: list[float] | None
    config: TrainConfig
    checkpoint_dir: str | None = None
    distillation: dict[str, Any] | None = None
    resumed_from_epoch: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "history": [dict(h) for h in self.history],
            "best_epoch": self.best_epoch,
            "best_val_macro_f1": self.best_val_macro_f1,
            "stopped_early": self.stopped_early,
            "epochs_run": self.epochs_run,
            "num_classes": self.num_classes,
            "class_weights": self.class_weights,
            "config": self.config.to_dict(),
            "checkpoint_dir": self.checkpoint_dir,
            "distillation": self.distillation,
            "resumed_from_epoch": self.resumed_from_epoch,
        }


@dataclass
class _State:
    epoch: int = 0  # epochs completed
    history: list[dict[str, Any]] = field(default_factory=list)
    best_score: float = float("-inf")
    best_epoch: int | None = None
    best_state: dict[str, torch.Tensor] | None = None
    bad_epochs: int = 0
    stopped_early: bool = False


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint written by :func:`fit` (``last.pt`` or ``best.pt``; harcore's one checkpoint format,
    :mod:`harcore.runstore`). A missing, damaged or foreign file is a :class:`~harcore.errors.CheckpointError`
    naming it. Only tensors and plain values are unpickled (``weights_only=True``)."""
    ck = runstore.load_checkpoint(path)
    if ck["kind"] not in (KIND_LAST, KIND_BEST):
        raise CheckpointError(f"{path}: a {ck['kind']!r} checkpoint, not one of harcore.train.fit")
    return ck


def check_resumable(config: TrainConfig) -> int | None:
    """The epoch :func:`fit` with ``config`` and ``resume=True`` would continue after (``None``: no
    ``last.pt`` in ``config.checkpoint_dir``, so it would start from scratch), after checking that ``last.pt``
    reads and was written with ``config`` (a :class:`~harcore.errors.CheckpointError` naming the file and the
    differing fields otherwise). The data is checked when ``fit`` resumes."""
    if config.checkpoint_dir is None:
        return None
    last = Path(config.checkpoint_dir) / LAST
    if not last.exists():
        return None
    ck = runstore.load_checkpoint(last, KIND_LAST, require=_LAST_FIELDS)
    runstore.check_resume(ck, last, config.to_dict(), None, _resume_free(config))
    return int(ck["epoch"])


def _state_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _resume_free(cfg: TrainConfig) -> frozenset[str]:
    # more (or fewer) epochs are well defined without a cosine horizon
    return RESUME_FREE_FIELDS | ({"epochs"} if cfg.schedule != "cosine" else set())


def _make_progress(enabled: bool):
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(file=sys.stdout)
    if not console.is_terminal:
        return None
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        TextColumn("{task.fields[status]}"), console=console, transient=False,
    )


def fit(
    model: torch.nn.Module,
    train: Any,
    val: Any = None,
    config: TrainConfig | None = None,
    *,
    teacher: torch.nn.Module | None = None,
    kd_alpha: float = DEFAULT_KD_ALPHA,
    kd_temperature: float = DEFAULT_KD_TEMPERATURE,
    resume: bool = False,
    num_classes: int | None = None,
    on_epoch_end: Callable[[dict[str, Any]], Any] | None = None,
) -> TrainResult:
    """Train ``model`` (input (B, C, T), output logits (B, K)) on ``train``.

    ``train`` / ``val``: objects with ``.x`` float (N, C, T) and ``.y`` int (N,) (or ``(x, y)``).
    ``K`` is the model's output width; it must equal ``num_classes`` and ``train.num_classes`` when
    those are given. With ``teacher``, the loss is :func:`distillation_loss` with ``kd_alpha`` and
    ``kd_temperature`` (the teacher runs in eval mode, without gradients).

    After every epoch the validation macro-F1 is computed; the best weights (highest macro-F1) are
    restored at the end, and training stops early after ``config.early_stopping_patience`` epochs
    without improvement. With ``config.checkpoint_dir``, ``last.pt`` (model, optimizer, scheduler,
    all RNG states, history, best weights) and ``best.pt`` (best weights) are written atomically
    after every epoch; ``resume=True`` continues from ``last.pt`` exactly as if the run had not been
    interrupted (same seed and config, apart from ``progress``/``checkpoint_dir``/``num_threads``/
    ``device``; with ``schedule != "cosine"`` ``epochs`` may be raised). Without a ``last.pt`` a
    resumed run starts from scratch.

    ``on_epoch_end(record)`` is called after each epoch's checkpoint with that epoch's history
    record; returning ``True`` stops training (the run can be resumed later).

    Input checks: windows that fit the model's input channels (``in_channels`` or a leading ``Conv1d``) only
    transposed are an error ("looks channels-last (N, T, C)"); a training split with fewer windows than
    classes is an error; classes absent from the training or validation split draw a warning naming them.

    Runs are deterministic for a given ``config.seed`` (python, numpy and torch RNGs are seeded,
    shuffling uses its own ``torch.Generator``); the model's initial weights are the caller's.
    """
    cfg = TrainConfig() if config is None else config
    if not isinstance(cfg, TrainConfig):
        raise ValueError(f"config: expected a TrainConfig, got {type(cfg).__name__}")
    if not isinstance(model, torch.nn.Module):
        raise ValueError(f"model: expected a torch.nn.Module, got {type(model).__name__}")
    device = torch.device(cfg.device)
    prev_threads = torch.get_num_threads()
    if cfg.num_threads is not None:
        torch.set_num_threads(cfg.num_threads)
    try:
        return _fit(model, train, val, cfg, device, teacher, kd_alpha, kd_temperature, resume, num_classes,
                    on_epoch_end)
    finally:
        torch.set_num_threads(prev_threads)


def _fit(model, train, val, cfg, device, teacher, kd_alpha, kd_temperature, resume, num_classes, on_epoch_end):
    model.to(device)
    tr = check_split(train, "train")
    check_model_input(model, tr.x.shape[1:], "train.x")
    k = resolve_num_classes(model, train, tr.x, device, num_classes, "train")
    tr = check_split(train, "train", num_classes=k)
    va: CheckedSplit | None = None
    if val is not None:
        va = check_split(val, "val", num_classes=k)
        if va.x.shape[1:] != tr.x.shape[1:]:
            raise ValueError(f"val.x: window shape {va.x.shape[1:]} differs from train.x {tr.x.shape[1:]}")
        declared = getattr(val, "num_classes", None)
        if declared is not None and not callable(declared) and int(declared) != k:
            raise ValueError(f"val.num_classes: split declares {int(declared)} classes but the model outputs {k} logits")
    check_class_coverage(tr, va, k, getattr(train, "classes", None))

    kd = None
    if teacher is not None:
        if not isinstance(teacher, torch.nn.Module):
            raise ValueError(f"teacher: expected a torch.nn.Module, got {type(teacher).__name__}")
        if not (0.0 <= float(kd_alpha) <= 1.0):
            raise ValueError(f"kd_alpha: must be in [0, 1] (got {kd_alpha})")
        if not float(kd_temperature) > 0.0:
            raise ValueError(f"kd_temperature: must be > 0 (got {kd_temperature})")
        teacher.to(device)
        kt = infer_num_classes(teacher, tr.x, device, "train.x")
        if kt != k:
            raise ValueError(f"teacher: outputs {kt} logits but the student outputs {k}")
        teacher.eval()
        kd = {"alpha": float(kd_alpha), "temperature": float(kd_temperature)}

    if cfg.class_weights is None:
        cw = None
    elif isinstance(cfg.class_weights, str):
        cw = balanced_class_weights(tr.y, k)
    else:
        cw = np.asarray(cfg.class_weights, dtype=np.float64)
        if cw.shape != (k,):
            raise ValueError(f"TrainConfig.class_weights: {cw.size} weights for {k} classes")
    cw_t = None if cw is None else torch.tensor(cw, dtype=torch.float32, device=device)

    # ---- seeding, optimizer, scheduler --------------------------------------------------------
    random.seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("model: has no trainable parameters")
    opt_cls = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    opt = opt_cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.schedule == "cosine":
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs, eta_min=cfg.min_lr)
    elif cfg.schedule == "plateau":
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="max" if va is not None else "min", factor=cfg.plateau_factor,
            patience=cfg.plateau_patience, min_lr=cfg.min_lr)
    else:
        sched = None

    st = _State()
    ckdir = Path(cfg.checkpoint_dir) if cfg.checkpoint_dir is not None else None
    meta = {"num_classes": k, "train_size": len(tr), "window": list(tr.x.shape[1:]), "has_val": va is not None,
            "distillation": kd}
    resumed_from = None
    if resume:
        if ckdir is None:
            raise ValueError("config.checkpoint_dir: resume=True needs a checkpoint directory")
        last = ckdir / LAST
        if last.exists():
            ck = runstore.load_checkpoint(last, KIND_LAST, require=_LAST_FIELDS)
            runstore.check_resume(ck, last, cfg.to_dict(), meta, _resume_free(cfg))
            model.load_state_dict(ck["model"])
            opt.load_state_dict(ck["optimizer"])
            if sched is not None:
                sched.load_state_dict(ck["scheduler"])
            runstore.set_rng_state(ck["rng"], shuffle=gen)
            st = _State(epoch=ck["epoch"], history=ck["history"], best_score=ck["best_score"],
                        best_epoch=ck["best_epoch"], best_state=ck["best_state"], bad_epochs=ck["bad_epochs"],
                        stopped_early=ck["stopped_early"])
            resumed_from = st.epoch

    x_all = torch.from_numpy(tr.x)
    y_all = torch.from_numpy(tr.y)
    n = len(tr)
    t_all = None
    if kd is not None:
        # The teacher is fixed and in eval mode, and the windows are not augmented: its logits are the same every
        # epoch, so it runs once over the training windows instead of once per batch (the distillation paper's CNN
        # teacher has 403x the MACs of its student: 66.3 M against 0.165 M, harcore.cost).
        with torch.no_grad():
            t_all = torch.cat([teacher(x_all[i:i + 256].to(device)) for i in range(0, n, 256)])
    n_batches = sum(1 for i in range(0, n, cfg.batch_size) if min(cfg.batch_size, n - i) > 1 or n == 1)
    progress = _make_progress(cfg.progress)
    if progress is not None:
        progress.start()
        ep_task = progress.add_task("epochs", total=cfg.epochs, completed=st.epoch, status="")
        b_task = progress.add_task("batches", total=n_batches, status="")

    try:
        while st.epoch < cfg.epochs and not st.stopped_early:
            t0 = time.perf_counter()
            model.train()
            lr_used = float(opt.param_groups[0]["lr"])
            perm = torch.randperm(n, generator=gen)
            loss_sum, seen = 0.0, 0
            preds, targets = [], []
            if progress is not None:
                progress.reset(b_task, total=n_batches)
            for i in range(0, n, cfg.batch_size):
                idx = perm[i : i + cfg.batch_size]
                if idx.numel() == 1 and n > 1:
                    continue  # BatchNorm cannot train on a single window
                xb = x_all[idx].to(device)
                yb = y_all[idx].to(device)
                logits = model(xb)
                if kd is not None:
                    loss = distillation_loss(logits, t_all[idx.to(t_all.device)], yb, kd["alpha"], kd["temperature"],
                                             cw_t)
                else:
                    loss = F.cross_entropy(logits, yb, weight=cw_t)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"epoch {st.epoch + 1}: training loss became {loss.item()}")
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
                opt.step()
                loss_sum += float(loss.detach()) * idx.numel()
                seen += idx.numel()
                preds.append(logits.detach().argmax(1).cpu())
                targets.append(yb.cpu())
                if progress is not None:
                    progress.advance(b_task)
            from sklearn.metrics import f1_score

            train_f1 = float(f1_score(torch.cat(targets).numpy(), torch.cat(preds).numpy(), average="macro",
                                      zero_division=0.0))
            rec: dict[str, Any] = {"epoch": st.epoch + 1, "loss": loss_sum / max(seen, 1),
                                   "train_macro_f1": train_f1, "val_macro_f1": None, "val_accuracy": None,
                                   "val_loss": None, "lr": lr_used}
            if va is not None:
                v_logits = predict_logits(model, va.x, cfg.eval_batch_size, device)
                vm = metrics_from_predictions(va.y, v_logits.argmax(1).numpy(), k,
                                              float(F.cross_entropy(v_logits, torch.from_numpy(va.y)).item()))
                rec.update(val_macro_f1=vm.macro_f1, val_accuracy=vm.accuracy, val_loss=vm.loss)
                if vm.macro_f1 > st.best_score:
                    st.best_score, st.best_epoch, st.bad_epochs = vm.macro_f1, st.epoch + 1, 0
                    st.best_state = _state_copy(model)
                    if ckdir is not None:
                        runstore.save_checkpoint(ckdir / BEST, KIND_BEST, cfg.to_dict(),
                                                 {"epoch": st.best_epoch, "val_macro_f1": st.best_score,
                                                  "model": st.best_state}, meta=meta, free=_resume_free(cfg))
                else:
                    st.bad_epochs += 1
            if sched is not None:
                if cfg.schedule == "plateau":
                    sched.step(rec["val_macro_f1"] if va is not None else rec["loss"])
                else:
                    sched.step()
            st.epoch += 1
            if va is not None and cfg.early_stopping_patience is not None and st.bad_epochs >= cfg.early_stopping_patience:
                st.stopped_early = True
            rec["seconds"] = time.perf_counter() - t0
            st.history.append(rec)
            if ckdir is not None:
                runstore.save_checkpoint(ckdir / LAST, KIND_LAST, cfg.to_dict(), {
                    "epoch": st.epoch, "model": _state_copy(model), "optimizer": opt.state_dict(),
                    "scheduler": sched.state_dict() if sched is not None else None,
                    "rng": runstore.rng_state(shuffle=gen), "history": st.history, "best_score": st.best_score,
                    "best_epoch": st.best_epoch, "best_state": st.best_state, "bad_epochs": st.bad_epochs,
                    "stopped_early": st.stopped_early}, meta=meta, free=_resume_free(cfg))
            if progress is not None:
                vtxt = f" val F1 {rec['val_macro_f1']:.4f}" if va is not None else ""
                progress.update(ep_task, advance=1,
                                status=f"loss {rec['loss']:.4f} train F1 {train_f1:.4f}{vtxt} lr {lr_used:.2e}")
            if on_epoch_end is not None and on_epoch_end(dict(rec)) is True:
                break
    finally:
        if progress is not None:
            progress.stop()

    if va is not None and st.best_state is not None:
        model.load_state_dict(st.best_state)
    return TrainResult(
        model=model, history=st.history, best_epoch=st.best_epoch,
        best_val_macro_f1=st.best_score if st.best_epoch is not None else None,
        stopped_early=st.stopped_early, epochs_run=st.epoch, num_classes=k,
        class_weights=None if cw is None else [float(v) for v in cw], config=cfg,
        checkpoint_dir=str(ckdir) if ckdir is not None else None, distillation=kd, resumed_from_epoch=resumed_from,
    )
