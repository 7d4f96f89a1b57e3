"""Input checking for splits: every error is a ``ValueError`` naming the offending field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


@dataclass
class CheckedSplit:
    """Validated arrays of a split: ``x`` float32 (N, C, T), ``y`` int64 (N,)."""

    name: str
    x: np.ndarray
    y: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])


def check_split(split: Any, name: str, num_classes: int | None = None) -> CheckedSplit:
    """Validate an object with ``.x`` and ``.y`` (or an ``(x, y)`` tuple).

    Raises ``ValueError`` naming ``<name>.x`` / ``<name>.y`` for: missing field, wrong rank, empty
    split, non-finite values, non-integer labels, length mismatch, and (when ``num_classes`` is
    given) labels outside ``[0, num_classes)``.
    """
    if split is None:
        raise ValueError(f"{name}: no split given")
    if isinstance(split, tuple) and len(split) == 2:
        x, y = split
    else:
        for f in ("x", "y"):
            if not hasattr(split, f):
                raise ValueError(f"{name}.{f}: split has no attribute {f!r} (expected an object with .x and .y)")
        x, y = split.x, split.y
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    x = np.asarray(x)
    y = np.asarray(y)
    if x.ndim != 3:
        raise ValueError(f"{name}.x: expected shape (N, C, T), got shape {x.shape}")
    if y.ndim != 1:
        raise ValueError(f"{name}.y: expected shape (N,), got shape {y.shape}")
    if x.shape[0] == 0 or y.shape[0] == 0:
        raise ValueError(f"{name}: empty split ({name}.x has {x.shape[0]} windows, {name}.y has {y.shape[0]} labels)")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"{name}.y: length {y.shape[0]} does not match {name}.x length {x.shape[0]}")
    if x.shape[1] == 0 or x.shape[2] == 0:
        raise ValueError(f"{name}.x: zero-sized channel or time axis, shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ValueError(f"{name}.x: expected a numeric array, got dtype {x.dtype}")
    x = x.astype(np.float32, copy=False)
    bad = ~np.isfinite(x)
    if bad.any():
        n_bad = int(bad.any(axis=(1, 2)).sum())
        first = int(np.argmax(bad.any(axis=(1, 2))))
        raise ValueError(f"{name}.x: contains NaN or inf in {n_bad} window(s), first at index {first}")
    if np.issubdtype(y.dtype, np.floating):
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            raise ValueError(f"{name}.y: labels must be integers, got non-integer values (dtype {y.dtype})")
    elif not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{name}.y: labels must be integers, got dtype {y.dtype}")
    y = y.astype(np.int64, copy=False)
    if num_classes is not None:
        out = (y < 0) | (y >= num_classes)
        if out.any():
            vals = np.unique(y[out])[:5].tolist()
            raise ValueError(
                f"{name}.y: {int(out.sum())} label(s) outside [0, {num_classes}) (e.g. {vals}); "
                f"the model has {num_classes} outputs"
            )
    elif (y < 0).any():
        raise ValueError(f"{name}.y: negative labels (e.g. {int(y[y < 0][0])})")
    return CheckedSplit(name=name, x=x, y=y)


@torch.no_grad()
def infer_num_classes(model: torch.nn.Module, x: np.ndarray, device: torch.device, field: str) -> int:
    """Number of classes = width of the model's output on a 2-window probe batch."""
    was_training = model.training
    model.eval()
    try:
        probe = torch.from_numpy(np.ascontiguousarray(x[:2])).to(device)
        try:
            out = model(probe)
        except Exception as e:  # a shape error in the user's model: name the input field
            raise ValueError(f"{field}: model failed on input of shape {tuple(probe.shape)}: {e}") from e
    finally:
        model.train(was_training)
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != probe.shape[0]:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{field}: model output must be logits of shape (B, num_classes), got {shape}")
    return int(out.shape[1])


def resolve_num_classes(
    model: torch.nn.Module, split: Any, x: np.ndarray, device: torch.device, num_classes: int | None, name: str
) -> int:
    """Model output width, cross-checked with an explicit ``num_classes`` and ``split.num_classes``."""
    k = infer_num_classes(model, x, device, f"{name}.x")
    if num_classes is not None and int(num_classes) != k:
        raise ValueError(f"num_classes: {num_classes} given but the model outputs {k} logits")
    declared = getattr(split, "num_classes", None)
    if declared is not None and not callable(declared) and int(declared) != k:
        raise ValueError(f"{name}.num_classes: split declares {int(declared)} classes but the model outputs {k} logits")
    return k
