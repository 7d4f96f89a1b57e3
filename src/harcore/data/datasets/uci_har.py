"""UCI-HAR v1.0 ("UCI HAR Dataset" folder, or its zip).

Layout read: ``activity_labels.txt``, ``features.txt``, ``{train,test}/subject_{split}.txt``,
``{train,test}/y_{split}.txt``, and for windows ``{train,test}/Inertial Signals/<signal>_<axis>_{split}.txt``
(one 128-sample window per line) or, with ``variant="features"``, ``{train,test}/X_{split}.txt``
(561 features per line).

Channel order of the ``"inertial"`` variant: :data:`harcore.data.filters.UCI_CHANNELS` (body_acc xyz,
body_gyro xyz, total_acc xyz: the alphabetical order of the ``Inertial Signals`` files). The fixed
split is the dataset's own train/test folders.

The project's staged copy is metadata-only (no ``Inertial Signals``, no ``X_*.txt``): loading
windows from it raises :class:`DataError` saying so, and :func:`read_metadata` reads what is
there. ``load("hapt", variant="uci9")`` rebuilds UCI-HAR-like windows from the raw recordings.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._io import Source, open_with_marker, parse_id_names, parse_int_column, parse_table
from ..dataset import WindowSet
from ..errors import DataError
from ..filters import UCI_CHANNELS

SAMPLE_RATE = 50.0
WINDOW = 128
SPLITS = ("train", "test")
VARIANTS = ("inertial", "features")


@dataclass
class UciHarMetadata:
    """What a metadata-only copy holds. ``subjects[split]`` and ``y[split]`` are per window
    (``y`` 0-based); ``activity_labels`` maps the 1-based ids to names."""

    activity_labels: dict[int, str]
    classes: list[str]
    features: list[str]
    subjects: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    source: str

    @property
    def train_subjects(self) -> list[int]:
        return sorted(set(self.subjects["train"].tolist()))

    @property
    def test_subjects(self) -> list[int]:
        return sorted(set(self.subjects["test"].tolist()))


def _read_meta(src: Source, pre: str) -> UciHarMetadata:
    def need(rel):
        if not src.exists(pre + rel):
            raise DataError("missing from the UCI-HAR copy", path=src.where(pre + rel))
        return src.read(pre + rel), src.where(pre + rel)

    names = parse_id_names(*need("activity_labels.txt"))
    ids = sorted(names)
    if ids != list(range(1, len(ids) + 1)):
        raise DataError(f"activity ids must be 1..{len(ids)}, found {ids}", path=src.where(pre + "activity_labels.txt"))
    classes = [names[k] for k in ids]
    features: list[str] = []
    if src.exists(pre + "features.txt"):
        fmap = parse_id_names(*need("features.txt"))
        if sorted(fmap) != list(range(1, len(fmap) + 1)):
            raise DataError("feature ids must be 1..N without gaps", path=src.where(pre + "features.txt"))
        features = [fmap[k] for k in sorted(fmap)]
    subjects, y = {}, {}
    for split in SPLITS:
        s_data, s_where = need(f"{split}/subject_{split}.txt")
        y_data, y_where = need(f"{split}/y_{split}.txt")
        s = parse_int_column(s_data, s_where, require_final_newline=True)
        lab = parse_int_column(y_data, y_where, require_final_newline=True)
        bad = np.nonzero(~np.isin(lab, ids))[0]
        if bad.size:
            raise DataError(f"unknown activity id {int(lab[bad[0]])} (activity_labels.txt defines {ids})",
                            path=y_where, line=int(bad[0]) + 1)
        if s.shape != lab.shape:
            raise DataError(f"{s.size} subject rows but {lab.size} label rows in {y_where}", path=s_where)
        if (s < 1).any():
            r = int(np.nonzero(s < 1)[0][0])
            raise DataError(f"subject id {int(s[r])} is not positive", path=s_where, line=r + 1)
        subjects[split], y[split] = s, lab - 1
    both = sorted(set(subjects["train"].tolist()) & set(subjects["test"].tolist()))
    if both:
        raise DataError(f"subjects {both} appear in both train and test", path=src.where(pre + "test/subject_test.txt"))
    return UciHarMetadata(names, classes, features, subjects, y, src.display)


def read_metadata(root) -> UciHarMetadata:
    """Activity labels, feature names, and the per-window subjects and labels of both splits."""
    src, pre = open_with_marker(root, "activity_labels.txt")
    return _read_meta(src, pre)


def load_windows(root, *, variant: str = "inertial") -> WindowSet:
    if variant not in VARIANTS:
        raise ValueError(f"unknown UCI-HAR variant {variant!r}; choose one of {VARIANTS}")
    src, pre = open_with_marker(root, "activity_labels.txt")
    meta = _read_meta(src, pre)
    xs = []
    for split in SPLITS:
        n = meta.y[split].size
        if variant == "inertial":
            folder = f"{pre}{split}/Inertial Signals/"
            present = [f for f in src.files if f.startswith(folder)]
            if not present:
                raise DataError(
                    f"this UCI-HAR copy has no '{split}/Inertial Signals/' folder (a metadata-only copy); the 9x128 "
                    "windows cannot be loaded from it. Use harcore.data.uci_har_metadata(root) for labels and subjects, "
                    "or load('hapt', root=<HAPT raw copy>, variant='uci9') for UCI-HAR-equivalent windows.",
                    path=src.where(folder.rstrip("/")))
            chans = []
            for ch in UCI_CHANNELS:
                rel = f"{folder}{ch}_{split}.txt"
                if not src.exists(rel):
                    raise DataError("missing Inertial Signals file", path=src.where(rel))
                a = parse_table(src.read(rel), src.where(rel), ncols=WINDOW, require_final_newline=True)
                if a.shape[0] != n:
                    raise DataError(f"{a.shape[0]} windows but y_{split}.txt has {n} labels", path=src.where(rel))
                chans.append(a.astype(np.float32))
            xs.append(np.stack(chans, axis=1))
        else:
            rel = f"{pre}{split}/X_{split}.txt"
            if not src.exists(rel):
                raise DataError("missing (a metadata-only copy has no feature matrices)", path=src.where(rel))
            ncols = len(meta.features) or None
            a = parse_table(src.read(rel), src.where(rel), ncols=ncols, require_final_newline=True)
            if a.shape[0] != n:
                raise DataError(f"{a.shape[0]} rows but y_{split}.txt has {n} labels", path=src.where(rel))
            xs.append(a.astype(np.float32)[:, :, None])
    channels = list(UCI_CHANNELS) if variant == "inertial" else (meta.features or [f"f{i}" for i in range(xs[0].shape[1])])
    x = np.concatenate(xs)
    y = np.concatenate([meta.y[s] for s in SPLITS])
    subj = np.concatenate([meta.subjects[s] for s in SPLITS])
    info = {"source": src.display, "variant": variant,
            "label_rule": "the dataset's own windows and labels (y_*.txt)",
            "official_split": {s: sorted(set(meta.subjects[s].tolist())) for s in SPLITS}}
    return WindowSet(x, y, subj, meta.classes, channels, SAMPLE_RATE if variant == "inertial" else None,
                     "uci-har", tuple(meta.test_subjects), info)
