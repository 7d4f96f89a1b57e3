"""Training configuration (:class:`TrainConfig`) and paper presets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

_OPTIMIZERS = ("adam", "adamw")
_SCHEDULES = ("cosine", "plateau", "none")

# Fields that may differ between a run and its resumption without changing the arithmetic.
RESUME_FREE_FIELDS = frozenset({"progress", "checkpoint_dir", "num_threads", "device"})


@dataclass
class TrainConfig:
    """Everything :func:`harcore.train.fit` needs besides the model and the data.

    Attributes:
        optimizer: ``"adam"`` (``torch.optim.Adam``, L2 penalty added to the gradient) or
            ``"adamw"`` (``torch.optim.AdamW``, decoupled weight decay).
        lr: initial learning rate.
        weight_decay: weight decay / L2 coefficient passed to the optimizer.
        batch_size: training mini-batch size. A trailing batch of a single window is skipped
            (BatchNorm cannot train on one sample).
        eval_batch_size: batch size for validation passes.
        epochs: maximum number of epochs.
        schedule: ``"cosine"`` (``CosineAnnealingLR`` over ``epochs``, stepped once per epoch, down to
            ``min_lr``), ``"plateau"`` (``ReduceLROnPlateau`` on validation macro-F1, or on the training
            loss when there is no validation split) or ``"none"``.
        plateau_factor, plateau_patience: ``ReduceLROnPlateau`` factor and patience (epochs).
        min_lr: floor of the learning rate for both schedules.
        early_stopping_patience: stop after this many epochs without an improvement of the validation
            macro-F1 (strictly greater). ``None`` disables early stopping. Needs a validation split.
        class_weights: ``None`` (plain cross-entropy), ``"balanced"`` (inverse class frequency on the
            training split, ``n / (K * n_k)`` as scikit-learn's ``compute_class_weight``; a class absent
            from the training split gets weight 0), or a sequence of ``K`` non-negative weights.
        seed: seeds python ``random``, numpy, torch and the shuffling generator.
        num_threads: ``torch.set_num_threads`` during ``fit`` (restored afterwards).
        device: torch device string, ``"cpu"`` by default.
        grad_clip: max global gradient L2 norm (``clip_grad_norm_``); ``None`` disables clipping.
        checkpoint_dir: where ``last.pt`` (full training state) and ``best.pt`` (best weights) are
            written after every epoch; ``None`` disables checkpointing (and resuming).
        progress: show a rich progress bar (only when stdout is a terminal).
    """

    optimizer: str = "adamw"
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 64
    eval_batch_size: int = 512
    epochs: int = 50
    schedule: str = "cosine"
    plateau_factor: float = 0.5
    plateau_patience: int = 5
    min_lr: float = 0.0
    early_stopping_patience: int | None = 10
    class_weights: Any = None
    seed: int = 0
    num_threads: int | None = None
    device: str = "cpu"
    grad_clip: float | None = None
    checkpoint_dir: str | None = None
    progress: bool = True

    def __post_init__(self) -> None:
        def bad(name: str, why: str) -> ValueError:
            return ValueError(f"TrainConfig.{name}: {why} (got {getattr(self, name)!r})")

        if self.optimizer not in _OPTIMIZERS:
            raise bad("optimizer", f"must be one of {_OPTIMIZERS}")
        if self.schedule not in _SCHEDULES:
            raise bad("schedule", f"must be one of {_SCHEDULES}")
        for name in ("lr",):
            if not (isinstance(getattr(self, name), (int, float)) and getattr(self, name) > 0):
                raise bad(name, "must be a positive number")
        for name in ("weight_decay", "min_lr"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and v >= 0):
                raise bad(name, "must be a non-negative number")
        for name in ("batch_size", "eval_batch_size", "epochs", "plateau_patience"):
            v = getattr(self, name)
            if not (isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1):
                raise bad(name, "must be an integer >= 1")
        if not (0.0 < self.plateau_factor < 1.0):
            raise bad("plateau_factor", "must be in (0, 1)")
        if self.early_stopping_patience is not None and not (
            isinstance(self.early_stopping_patience, (int, np.integer)) and self.early_stopping_patience >= 1
        ):
            raise bad("early_stopping_patience", "must be None or an integer >= 1")
        if self.num_threads is not None and not (isinstance(self.num_threads, int) and self.num_threads >= 1):
            raise bad("num_threads", "must be None or an integer >= 1")
        if self.grad_clip is not None and not (isinstance(self.grad_clip, (int, float)) and self.grad_clip > 0):
            raise bad("grad_clip", "must be None or a positive number")
        if not isinstance(self.seed, (int, np.integer)) or isinstance(self.seed, bool):
            raise bad("seed", "must be an integer")
        cw = self.class_weights
        if isinstance(cw, str):
            if cw != "balanced":
                raise bad("class_weights", 'must be None, "balanced" or a sequence of weights')
        elif cw is not None:
            arr = np.asarray(cw, dtype=np.float64)
            if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
                raise bad("class_weights", "must be a 1-D sequence of finite non-negative weights")
            self.class_weights = [float(v) for v in arr]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"TrainConfig: unknown field(s) {sorted(unknown)}")
        return cls(**d)

    def replace(self, **changes: Any) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    # ---- presets -------------------------------------------------------------------------------

    @classmethod
    def mu_biconvlstm(cls, *, imbalanced: bool = False, hpo: bool = False, **overrides: Any) -> "TrainConfig":
        """Training protocol of the muBi-ConvLSTM paper (Sec. IV "Training").

        AdamW, cosine annealing, at most 200 epochs, early stopping with patience 10 on validation
        F1 (macro-F1 is what the paper reports); inverse-frequency class weights for imbalanced
        datasets (Daphnet, Opportunity, PAMAP2 there). ``hpo=True`` gives its HPO-trial setting:
        10 epochs, patience 5. The paper does not state lr / weight decay (they come from its Optuna
        search over lr 1e-4..1e-2 and weight decay 1e-5..5e-2) nor the batch size: the values here
        are harcore defaults, pass your own.
        """
        base: dict[str, Any] = dict(
            optimizer="adamw",
            schedule="cosine",
            epochs=10 if hpo else 200,
            early_stopping_patience=5 if hpo else 10,
            class_weights="balanced" if imbalanced else None,
        )
        base.update(overrides)
        return cls(**base)

    @classmethod
    def cnn_distillation(cls, **overrides: Any) -> "TrainConfig":
        """Training setting of the CNN/distillation paper (Branstetter et al., Sec. 4.3).

        Adam, lr 5e-4, weight decay 1e-3, 20 epochs, "stopped when the validation performance
        stagnated". The paper uses "a learning rate scheduler" for "faster convergence initially and
        more precise convergence in the later stages" without naming it; ``cosine`` is harcore's choice
        (on UCI-HAR's fixed split, 3 seeds, with average pooling: 94.08 ± 0.76 % accuracy, against
        93.50 ± 1.35 with ``plateau``; benchmarks/RESULTS.md), and so are the batch size and the early-stopping patience (5).
        """
        base: dict[str, Any] = dict(
            optimizer="adam", lr=5e-4, weight_decay=1e-3, epochs=20, schedule="cosine",
            early_stopping_patience=5,
        )
        base.update(overrides)
        return cls(**base)


def seeds_from_master(master_seed: int, n: int) -> list[int]:
    """``n`` run seeds derived from one master seed (numpy ``SeedSequence``), as the muBi-ConvLSTM
    paper reports "5 random seeds generated from a master seed"."""
    if n < 1:
        raise ValueError(f"n: must be >= 1 (got {n})")
    states = np.random.SeedSequence(int(master_seed)).generate_state(n, dtype=np.uint32)
    return [int(s) & 0x7FFFFFFF for s in states]


