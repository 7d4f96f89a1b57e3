"""Classification metrics (scikit-learn) and mean ± std summaries over seeds / folds."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ._data import check_split, resolve_num_classes


@dataclass
class Metrics:
    """Scores of one model on one split.

    ``macro_f1`` is the unweighted mean of the per-class F1 over the classes that occur in the
    labels or the predictions (scikit-learn's ``f1_score(average="macro")``); ``per_class_f1`` has
    one entry per model output, NaN for a class that occurs in neither (its F1 is undefined).
    ``weighted_f1`` weights each class by its support. ``confusion[i, j]`` counts windows of true
    class ``i`` predicted as ``j``. ``loss`` is the mean (unweighted) cross-entropy.
    """

    accuracy: float
    macro_f1: float
    weighted_f1: float
    per_class_f1: np.ndarray
    confusion: np.ndarray
    loss: float
    num_samples: int
    class_names: list[str] | None = None

    SCALARS = ("accuracy", "macro_f1", "weighted_f1", "loss")

    @property
    def num_classes(self) -> int:
        return int(self.confusion.shape[0])

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (NaN per-class F1 become ``None``)."""
        return {
            "accuracy": float(self.accuracy),
            "macro_f1": float(self.macro_f1),
            "weighted_f1": float(self.weighted_f1),
            "loss": float(self.loss),
            "num_samples": int(self.num_samples),
            "per_class_f1": [None if math.isnan(v) else float(v) for v in self.per_class_f1],
            "confusion": self.confusion.astype(int).tolist(),
            "class_names": list(self.class_names) if self.class_names is not None else None,
        }

    def __str__(self) -> str:
        names = self.class_names or [str(i) for i in range(self.num_classes)]
        lines = [
            f"n={self.num_samples}  accuracy={self.accuracy:.4f}  macro-F1={self.macro_f1:.4f}  "
            f"weighted-F1={self.weighted_f1:.4f}  loss={self.loss:.4f}",
            "per-class F1: " + ", ".join(
                f"{n}={'n/a' if math.isnan(v) else format(v, '.3f')}" for n, v in zip(names, self.per_class_f1)
            ),
            "confusion (rows = true, cols = predicted):",
        ]
        width = max(4, max(len(str(int(v))) for v in self.confusion.ravel()) + 1)
        for n, row in zip(names, self.confusion):
            lines.append(f"  {n[:12]:>12} " + "".join(f"{int(v):>{width}}" for v in row))
        return "\n".join(lines)


def metrics_from_predictions(
    y_true: Sequence[int] | np.ndarray,
    y_pred: Sequence[int] | np.ndarray,
    num_classes: int,
    loss: float = float("nan"),
    class_names: Sequence[str] | None = None,
) -> Metrics:
    """Build :class:`Metrics` from label vectors with scikit-learn."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"y_pred: shape {y_pred.shape} does not match y_true {y_true.shape}")
    if y_true.size == 0:
        raise ValueError("y_true: no samples")
    labels = np.arange(num_classes)
    per_class = f1_score(y_true, y_pred, labels=labels, average=None, zero_division=0.0).astype(np.float64)
    present = np.isin(labels, y_true) | np.isin(labels, y_pred)
    per_class[~present] = np.nan
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(f"class_names: {len(class_names)} names for {num_classes} classes")
    return Metrics(
        accuracy=float(accuracy_score(y_true, y_pred)),
        macro_f1=float(f1_score(y_true, y_pred, average="macro", zero_division=0.0)),
        weighted_f1=float(f1_score(y_true, y_pred, average="weighted", zero_division=0.0)),
        per_class_f1=per_class,
        confusion=confusion_matrix(y_true, y_pred, labels=labels).astype(np.int64),
        loss=float(loss),
        num_samples=int(y_true.size),
        class_names=list(class_names) if class_names is not None else None,
    )


@torch.no_grad()
def predict_logits(model: torch.nn.Module, x: np.ndarray, batch_size: int, device: torch.device) -> torch.Tensor:
    """Logits of ``model`` (in eval mode) for all windows of ``x``; returned on CPU."""
    was_training = model.training
    model.eval()
    try:
        outs = []
        for i in range(0, x.shape[0], batch_size):
            xb = torch.from_numpy(np.ascontiguousarray(x[i : i + batch_size])).to(device)
            outs.append(model(xb).float().cpu())
        return torch.cat(outs)
    finally:
        model.train(was_training)


def evaluate(
    model: torch.nn.Module,
    split: Any,
    batch_size: int = 512,
    *,
    device: str | torch.device | None = None,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    name: str = "split",
) -> Metrics:
    """Evaluate ``model`` on ``split`` (any object with ``.x`` (N, C, T) and ``.y`` (N,)).

    The model runs in eval mode (its previous mode is restored). ``device`` defaults to the
    device of the model's first parameter. ``class_names`` defaults to ``split.class_names`` if
    present. Bad input raises ``ValueError`` naming the field.
    """
    if not (isinstance(batch_size, int) and batch_size >= 1):
        raise ValueError(f"batch_size: must be an integer >= 1 (got {batch_size!r})")
    dev = _model_device(model) if device is None else torch.device(device)
    checked = check_split(split, name)
    k = resolve_num_classes(model, split, checked.x, dev, num_classes, name)
    checked = check_split(split, name, num_classes=k)
    logits = predict_logits(model, checked.x, batch_size, dev)
    y = torch.from_numpy(checked.y)
    loss = float(F.cross_entropy(logits, y).item())
    if class_names is None:
        cn = getattr(split, "class_names", None)
        class_names = list(cn) if cn is not None and len(cn) == k else None
    return metrics_from_predictions(checked.y, logits.argmax(dim=1).numpy(), k, loss, class_names)


def _model_device(model: torch.nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


@dataclass
class Summary:
    """Mean ± sample standard deviation (``ddof=1``) of each scalar over ``n`` runs (seeds / folds).

    With a single run the std is NaN (a sample std is undefined for one value). ``per_class_f1``
    holds the per-class mean and std (NaN entries of a run, i.e. classes absent from that fold,
    are ignored for that class).
    """

    n: int
    mean: dict[str, float]
    std: dict[str, float]
    per_class_f1_mean: np.ndarray | None = None
    per_class_f1_std: np.ndarray | None = None
    class_names: list[str] | None = None

    def to_dict(self) -> dict[str, Any]:
        def clean(a):
            return None if a is None else [None if math.isnan(v) else float(v) for v in a]

        return {
            "n": self.n,
            "ddof": 1,
            "mean": {k: _nan_to_none(v) for k, v in self.mean.items()},
            "std": {k: _nan_to_none(v) for k, v in self.std.items()},
            "per_class_f1_mean": clean(self.per_class_f1_mean),
            "per_class_f1_std": clean(self.per_class_f1_std),
            "class_names": self.class_names,
        }

    def format(self, key: str, digits: int = 4, scale: float = 1.0) -> str:
        m, s = self.mean[key] * scale, self.std[key] * scale
        return f"{m:.{digits}f} ± {s:.{digits}f}"

    def __str__(self) -> str:
        lines = [f"mean ± std over n={self.n} runs (sample std, ddof=1)"]
        for k in self.mean:
            lines.append(f"  {k:>12}: {self.format(k)}")
        if self.per_class_f1_mean is not None:
            names = self.class_names or [str(i) for i in range(len(self.per_class_f1_mean))]
            for n, m, s in zip(names, self.per_class_f1_mean, self.per_class_f1_std):
                lines.append(f"  F1[{n}]: {m:.4f} ± {s:.4f}")
        return "\n".join(lines)


def _nan_to_none(v: float) -> float | None:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) else float(v)


def _sample_std(values: np.ndarray, axis: int = 0) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    n = np.sum(~np.isnan(values), axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.nanmean(values, axis=axis, keepdims=True)
        ss = np.nansum((values - mean) ** 2, axis=axis)
        return np.where(n > 1, np.sqrt(ss / np.maximum(n - 1, 1)), np.nan)


def summarize(runs: Iterable[Metrics | Mapping[str, Any]]) -> Summary:
    """Mean ± sample std (ddof=1) of accuracy, macro-F1, weighted-F1 and loss over runs.

    ``runs`` holds :class:`Metrics` or mappings such as ``Metrics.to_dict()``; for mappings every
    finite numeric top-level entry is summarised (so extra scalars such as a quantized model's F1
    can be included). Per-class F1 are summarised when all runs have the same number of classes.
    """
    runs = list(runs)
    if not runs:
        raise ValueError("runs: empty list, nothing to summarise")
    rows: list[dict[str, float]] = []
    per_class: list[np.ndarray] = []
    class_names = None
    for i, r in enumerate(runs):
        if isinstance(r, Metrics):
            rows.append({k: float(getattr(r, k)) for k in Metrics.SCALARS})
            per_class.append(np.asarray(r.per_class_f1, dtype=np.float64))
            class_names = class_names or r.class_names
        elif isinstance(r, Mapping):
            rows.append({
                k: float(v) for k, v in r.items()
                if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
                and k != "num_samples"
            })
            if r.get("per_class_f1") is not None:
                per_class.append(np.array([np.nan if v is None else v for v in r["per_class_f1"]], dtype=np.float64))
            class_names = class_names or r.get("class_names")
        else:
            raise ValueError(f"runs[{i}]: expected Metrics or a mapping, got {type(r).__name__}")
    keys = [k for k in rows[0] if all(k in row for row in rows)]
    if not keys:
        raise ValueError("runs: no scalar metric common to all runs")
    mean, std = {}, {}
    for k in keys:
        vals = np.array([row[k] for row in rows], dtype=np.float64)
        mean[k] = float(np.mean(vals))
        std[k] = float(np.std(vals, ddof=1)) if len(vals) > 1 else float("nan")
    pc_mean = pc_std = None
    if per_class and len(per_class) == len(runs) and len({p.shape for p in per_class}) == 1:
        stack = np.stack(per_class)
        with warnings.catch_warnings():  # an all-NaN class (absent in every run) stays NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            pc_mean = np.nanmean(stack, axis=0)
            pc_std = _sample_std(stack, axis=0)
    return Summary(n=len(runs), mean=mean, std=std, per_class_f1_mean=pc_mean, per_class_f1_std=pc_std,
                   class_names=list(class_names) if class_names else None)

