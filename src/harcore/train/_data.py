"""Input checking for splits: every error is a ``ValueError`` naming the offending field."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from harcore.data.layout import layout_problem


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


def model_input_shape(model: Any) -> tuple[int | None, int | None]:
    """(channels, length) a model takes, as far as it says: the zoo's ``in_channels``/``seq_len`` attributes,
    else, when its first module with parameters is a ``Conv1d``, that conv's input channels (length unknown);
    ``(None, None)`` when nothing tells."""
    c, t = getattr(model, "in_channels", None), getattr(model, "seq_len", None)
    if isinstance(c, int) and not isinstance(c, bool):
        return c, (t if isinstance(t, int) and not isinstance(t, bool) else None)
    if isinstance(model, torch.nn.Module):
        for m in model.modules():
            if next(m.parameters(recurse=False), None) is None:
                continue
            if isinstance(m, torch.nn.Conv1d) and m.groups == 1:
                return int(m.in_channels), None
            break  # registration order is not always call order: judge only a leading 1-D conv
    return None, None


def check_model_input(model: Any, window_shape: tuple[int, ...], what: str, error: type = ValueError, *,
                      trust_guess: bool = False) -> None:
    """Raise ``error`` when windows of ``window_shape`` (C, T) do not fit the model's input channels, saying
    "looks channels-last" when they fit only transposed. A count read off a leading ``Conv1d`` (no declared
    ``in_channels``) judges only that case, unless ``trust_guess`` (the caller knows the model already failed)."""
    c, t = model_input_shape(model)
    msg = layout_problem(window_shape, c, t, what=what)
    declared = isinstance(getattr(model, "in_channels", None), int)
    # A count read off a leading Conv1d is a guess: the model may select or mix channels before it (x[:, idx]),
    # so without a declared in_channels only the unambiguous channels-last case is an error.
    if msg is not None and (declared or trust_guess or "channels-last" in msg):
        raise error(msg)


def check_class_coverage(tr: CheckedSplit, va: CheckedSplit | None, num_classes: int,
                         class_names: Any = None) -> None:
    """A training split needs at least one window per class to learn them all: fewer windows than classes is an
    error; classes absent from the training or validation split are named in a warning (the validation
    macro-F1 that picks the best epoch cannot see them)."""
    def names(ids: list[int]) -> str:
        if class_names is not None and len(class_names) == num_classes:
            return ", ".join(f"{i} ({class_names[i]!r})" for i in ids)
        return ", ".join(map(str, ids))

    if len(tr) < num_classes:
        raise ValueError(f"train: {len(tr)} window(s) for {num_classes} classes (the model's outputs); a training "
                         "split needs at least one window of every class: give more windows or fewer classes")
    for split, part in ((tr, "training"), (va, "validation")):
        if split is None:
            continue
        missing = np.nonzero(np.bincount(split.y, minlength=num_classes) == 0)[0].tolist()
        if missing:
            warnings.warn(f"{split.name}: the {part} split has no window of {len(missing)} of {num_classes} "
                          f"classes: {names(missing)}; "
                          + ("the model cannot learn them: add windows of those classes or drop them"
                             if part == "training" else
                             "its macro-F1 (which picks the best epoch) ignores them: split by subjects so that "
                             "every class is in the validation split, or pass val=None"),
                          UserWarning, stacklevel=4)
