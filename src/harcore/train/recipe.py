"""The data-and-training settings that harcore's jobs share (:class:`TrainingRecipe`).

``harcore hpo`` (:class:`harcore.hpo.HPOConfig`) and ``harcore distill``
(:class:`harcore.experiments.DistillConfig`) both train zoo models on one dataset split by subject, with
selection on validation subjects. They describe that the same way, so it lives here once, below both, and
each job's config extends it with what is its own (search space, teacher/student, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def load_with_validation(dataset: str, data_dir: str | None, options: dict[str, Any], val_fraction: float,
                         seed: int) -> Any:
    """``harcore.data.load(dataset, data_dir, **options)``; when that split has no validation subjects (its
    protocol has none and the options ask for none), ``val_fraction`` of the training subjects become
    validation subjects, drawn with ``seed``. Options given explicitly win over both."""
    from harcore import data

    opts = dict(options)
    ds = data.load(dataset, data_dir, **opts)
    if ds.val is None:
        opts.setdefault("val_fraction", val_fraction)
        opts.setdefault("seed", seed)
        ds = data.load(dataset, data_dir, **opts)
    return ds


def check_counts(config: Any, names: tuple[str, ...], *, optional: bool = False) -> None:
    """Raise ``ValueError`` naming ``<ConfigClass>.<field>`` unless each field is an integer >= 1 (or ``None``
    when ``optional``)."""
    for f in names:
        v = getattr(config, f)
        if optional and v is None:
            continue
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            what = "None or an integer >= 1" if optional else "an integer >= 1"
            raise ValueError(f"{type(config).__name__}.{f}: must be {what} (got {v!r})")


@dataclass
class TrainingRecipe:
    """Which data a job trains on and how long, in the fields every job names the same way.

    Attributes:
        dataset, data_dir, dataset_options: ``harcore.data.load(dataset, data_dir, **dataset_options)``.
        val_fraction: share of the training subjects held out for validation when the dataset's protocol
            gives no validation split (see :func:`load_with_validation`).
        epochs: epochs per training (a job may have more than one: its own fields name the others).
        patience: early-stopping patience on validation macro-F1; ``None`` disables it.
        batch_size: training mini-batch size.
        threads: ``torch.set_num_threads`` during training; ``None`` leaves torch's setting.
        out: the job's output folder (results, checkpoints, reports).
    """

    dataset: str = "default"
    data_dir: str | None = None
    dataset_options: dict[str, Any] = field(default_factory=dict)
    val_fraction: float = 0.2
    epochs: int = 20
    patience: int | None = 5
    batch_size: int = 64
    threads: int | None = None
    out: str = "runs"

    def __post_init__(self) -> None:
        check_counts(self, ("epochs", "batch_size"))
        check_counts(self, ("patience",), optional=True)
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"{type(self).__name__}.val_fraction: must be in (0, 1) (got {self.val_fraction!r})")

    def load_data(self, seed: int) -> Any:
        """The recipe's dataset, split by subject, with validation subjects where they can be drawn."""
        return load_with_validation(self.dataset, self.data_dir, self.dataset_options, self.val_fraction, seed)
