"""The dataset object returned by :func:`harcore.data.load`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import DataError
from .layout import layout_problem
from .normalize import ZNorm
from .protocols import SubjectSplit, split_subjects
from .weights import class_weights


@dataclass
class Split:
    """One split: ``x`` float32 ``(N, channels, time)``, ``y`` int64 ``(N,)``, ``subjects`` int64 ``(N,)``."""

    x: np.ndarray
    y: np.ndarray
    subjects: np.ndarray

    def __len__(self) -> int:
        return int(self.y.shape[0])

    @classmethod
    def concat(cls, *splits: "Split") -> "Split":
        """One split holding ``splits``' windows in order (e.g. a protocol's train and val as one training set)."""
        return cls(*(np.concatenate([getattr(s, k) for s in splits]) for k in ("x", "y", "subjects")))

    def class_counts(self, n_classes: int) -> np.ndarray:
        return np.bincount(self.y, minlength=n_classes)

    def __repr__(self) -> str:
        return f"Split(n={len(self)}, x={tuple(self.x.shape)}, subjects={np.unique(self.subjects).tolist()})"


@dataclass
class WindowSet:
    """All windows of a dataset before any split (what the individual loaders produce)."""

    x: np.ndarray
    y: np.ndarray
    subjects: np.ndarray
    classes: list[str]
    channels: list[str]
    sample_rate: float | None
    name: str
    test_subjects: tuple[int, ...] | None = None   # the dataset's own (fixed) test subjects
    info: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        n = self.y.shape[0]
        if self.x.ndim != 3 or self.x.shape[0] != n or self.subjects.shape != (n,):
            raise DataError(f"{self.name}: inconsistent shapes x={self.x.shape}, y={self.y.shape}, "
                            f"subjects={self.subjects.shape}")
        if self.x.shape[1] != len(self.channels):
            raise DataError(f"{self.name}: {self.x.shape[1]} channels but {len(self.channels)} channel names")
        if n and (self.y.min() < 0 or self.y.max() >= len(self.classes)):
            raise DataError(f"{self.name}: labels outside [0, {len(self.classes)})")


@dataclass
class Dataset:
    """Windows split by subject.

    Attributes: ``train``, ``val`` (``None`` when the protocol has no validation split), ``test``
    (:class:`Split`); ``classes`` (names, index = label), ``channels`` (names), ``sample_rate``
    (Hz; ``None`` for feature vectors); ``split`` (the subjects of each part); ``norm``
    (:class:`ZNorm` fitted on ``train`` only, or ``None`` without normalization); ``info``
    (provenance and loader notes).
    """

    name: str
    train: Split
    val: Split | None
    test: Split
    classes: list[str]
    channels: list[str]
    sample_rate: float | None
    split: SubjectSplit
    norm: ZNorm | None
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # the channel names tell the channel count: windows that match it only transposed are channels-last
        for part in ("train", "val", "test"):
            s = getattr(self, part)
            x = getattr(s, "x", None)
            if isinstance(x, np.ndarray) and x.ndim == 3:
                problem = layout_problem(x.shape[1:], len(self.channels), what=f"{self.name}: {part}.x",
                                         expected="the channel names give")
                if problem is not None:
                    raise DataError(problem)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def input_shape(self) -> tuple[int, int]:
        return tuple(self.train.x.shape[1:])  # type: ignore[return-value]

    def class_weights(self) -> np.ndarray:
        """Balanced (inverse-frequency) class weights of the training split."""
        return class_weights(self.train.y, self.num_classes)

    def summary(self) -> str:
        rows = [f"{self.name}: {len(self.classes)} classes, {len(self.channels)} channels x {self.train.x.shape[2]} samples"
                f"{'' if self.sample_rate is None else f' @ {self.sample_rate:g} Hz'}, protocol {self.split.protocol}"]
        for part in ("train", "val", "test"):
            s = getattr(self, part)
            if s is None:
                continue
            counts = s.class_counts(self.num_classes).tolist()
            rows.append(f"  {part:5s} {len(s):6d} windows, subjects {list(getattr(self.split, part))}, per class {counts}")
        return "\n".join(rows)

    def __repr__(self) -> str:
        return (f"Dataset({self.name!r}, train={len(self.train)}, val={None if self.val is None else len(self.val)}, "
                f"test={len(self.test)}, classes={len(self.classes)}, channels={len(self.channels)})")


def build_dataset(ws: WindowSet, *, protocol: str | None = None, fold: int | None = None, seed: int = 0,
                  fractions=(0.6, 0.2, 0.2), val_subjects=None, val_fraction: float | None = None,
                  normalize: bool = True) -> Dataset:
    """Split a :class:`WindowSet` by subject and (optionally) z-normalize with training statistics."""
    ws.validate()
    if protocol is None:
        protocol = "fixed" if ws.test_subjects is not None else "random-subjects"
    if ws.y.shape[0] == 0:
        raise DataError(f"{ws.name}: no windows were produced (recordings shorter than one window?)")
    sp = split_subjects(ws.subjects, protocol, test_subjects=ws.test_subjects, fold=fold, seed=seed,
                        fractions=fractions, val_subjects=val_subjects, val_fraction=val_fraction)

    def take(subjs) -> Split | None:
        if not subjs:
            return None
        m = np.isin(ws.subjects, np.asarray(subjs, dtype=np.int64))
        return Split(ws.x[m], ws.y[m].astype(np.int64), ws.subjects[m].astype(np.int64))

    train, val, test = take(sp.train), take(sp.val), take(sp.test)
    assert train is not None and test is not None
    norm = None
    if normalize:
        norm = ZNorm.fit(train.x)
        for s in (train, val, test):
            if s is not None:
                s.x = norm.apply(s.x)
    else:
        for s in (train, val, test):
            if s is not None:
                s.x = np.ascontiguousarray(s.x, dtype=np.float32)
    info = dict(ws.info)
    return Dataset(ws.name, train, val, test, list(ws.classes), list(ws.channels), ws.sample_rate, sp, norm, info)
