"""Skoda Mini Checkpoint (Zappi et al., EWSN 2008; ``SkodaMiniCP_2015_08``).

One worker performed 10 car-checkpoint gestures wearing 10 three-axis accelerometers on each arm,
sampled at about 98 Hz. The distribution holds ``right_classall_clean.mat`` and
``left_classall_clean.mat`` (MATLAB, read with ``scipy.io.loadmat``); each holds one matrix named
like the file, one row per sample, 71 columns: column 1 the label, then for each sensor s = 0..9
column 2+7s the sensor id, 3+7s..5+7s the calibrated x, y, z acceleration and 6+7s..8+7s the raw
x, y, z. The loader uses the 30 calibrated channels of one arm (``arm="right"`` default, or
``"left"``).

Labels: 32 null class, 48 write on notepad, 49 open hood, 50 close hood, 51 check gaps on the front
door, 52 open left front door, 53 close left front door, 54 close both left doors, 55 check trunk
gaps, 56 open and close trunk, 57 check steering wheel. ``include_null=True`` (default) keeps 32 as
class 0 ``"null"``; ``False`` excludes those samples.

**One subject only**: the subject-wise protocols cannot apply. ``load("skoda")`` uses
``protocol="temporal"``: for every class, its instances (maximal runs of the label) are taken in
recording order and the first 80 % go to train, the next 10 % to validation and the last 10 % to
test (``fractions``), as in Ordóñez & Roggen 2016. Windows never cross an instance, so no sample is
shared between parts; the result is *not* subject-independent (same person throughout) and is
reported as protocol ``"temporal"``.

Errors in a ``.mat`` file name the file and, for a bad row, its 1-based matrix row as the line.
"""

from __future__ import annotations

import numpy as np

from .._io import open_matching
from ..dataset import Dataset, Split, WindowSet
from ..errors import DataError
from ..normalize import ZNorm
from ..protocols import SubjectSplit
from ..resample import resample
from ..windows import segment_windows, segments_from_labels
from ._formats import load_mat, mat_matrix, missing_copy

SAMPLE_RATE = 98.0
NCOLS = 71
LABELS = {32: "null", 48: "write on notepad", 49: "open hood", 50: "close hood", 51: "check gaps on the front door",
          52: "open left front door", 53: "close left front door", 54: "close both left doors",
          55: "check trunk gaps", 56: "open and close trunk", 57: "check steering wheel"}
NULL = 32
ARMS = ("right", "left")
SUBJECT = 1
URL = "http://har-dataset.org/doku.php?id=wiki:dataset (Skoda Mini Checkpoint, SkodaMiniCP_2015_08)"


def channels(arm: str) -> list[str]:
    return [f"{arm}_s{s}_acc_{a}" for s in range(10) for a in "xyz"]


def load_windows(root, *, arm: str = "right", include_null: bool = True, window: int = 98, step: int = 49,
                 resample_to: float | None = None) -> WindowSet:
    if arm not in ARMS:
        raise ValueError(f"arm must be 'right' or 'left', got {arm!r}")
    var = f"{arm}_classall_clean"
    fname = var + ".mat"
    src = open_matching(root, lambda f: f.endswith(fname), lambda m: m.endswith(fname))
    hits = [f for f in src.files if f == fname or f.endswith("/" + fname)]
    if len(hits) > 1:
        raise DataError(f"several copies of {fname}: {hits}", path=src.display)
    if not hits:
        raise missing_copy("Skoda Mini Checkpoint", src.display, f"SkodaMiniCP_2015_08/{fname}", URL)
    where = src.where(hits[0])
    m = mat_matrix(load_mat(src.read(hits[0]), where), var, where, NCOLS)
    if m.shape[0] == 0:
        raise DataError(f"variable {var!r} has no rows", path=where)
    finite = np.isfinite(m)
    if not finite.all():
        r, c = np.argwhere(~finite)[0]
        raise DataError(f"non-finite value (NaN or infinity) in row {r + 1}, column {c + 1} of {var}",
                        path=where, line=int(r) + 1)
    raw = m[:, 0]
    bad = np.nonzero(~np.isin(raw, list(LABELS)))[0]
    if bad.size:
        raise DataError(f"unknown label {raw[bad[0]]:g} in row {bad[0] + 1}, column 1 of {var} (the dataset "
                        f"defines {sorted(LABELS)})", path=where, line=int(bad[0]) + 1)
    ids = sorted(k for k in LABELS if include_null or k != NULL)
    classes = [LABELS[k] for k in ids]
    lab = np.full(raw.shape, -1, dtype=np.int64)
    for i, k in enumerate(ids):
        lab[raw == k] = i
    cols = [2 + 7 * s + j for s in range(10) for j in range(3)]  # 0-based: calibrated x, y, z
    sig = m[:, cols].T
    fs = SAMPLE_RATE if resample_to is None else float(resample_to)
    if resample_to is not None:
        sig = resample(sig, SAMPLE_RATE, fs)
        idx = np.clip(np.round(np.arange(sig.shape[1]) * SAMPLE_RATE / fs).astype(np.int64), 0, lab.size - 1)
        lab = lab[idx]
    segs = segments_from_labels(lab, 0)
    sw = segment_windows(sig.astype(np.float32), segs, window, step)
    if sw.y.size == 0:
        raise DataError(f"no labelled run is as long as one window ({window} samples)", path=where)
    info = {"source": src.display, "arm": arm, "window": window, "step": step, "start": sw.start,
            "segment": sw.segment, "segments": len(segs), "segments_shorter_than_window": sw.short_segments,
            "label_ids": ids, "include_null": include_null, "null_samples": int((raw == NULL).sum()),
            "label_rule": "segment: windows lie inside one run of a label (one gesture instance)",
            "units": "calibrated acceleration as distributed",
            "excluded": "" if include_null else "label 32 (null class) samples never enter a window",
            "single_subject": True}
    return WindowSet(sw.x, sw.y, np.full(sw.y.shape, SUBJECT, np.int64), classes, channels(arm), fs, "skoda",
                     None, info)


def build(ws: WindowSet, *, protocol: str | None = None, fractions=(0.8, 0.1, 0.1), normalize: bool = True,
          **unsupported) -> Dataset:
    """Split Skoda windows with the per-class chronological ``"temporal"`` protocol (the only one a
    single-subject dataset admits)."""
    if protocol not in (None, "temporal"):
        raise ValueError(f"Skoda has one subject, so protocol {protocol!r} (subject-wise) cannot apply; use "
                         "protocol='temporal' (per-class chronological split, the default)")
    given = {k: v for k, v in unsupported.items() if v is not None}
    if given:
        raise ValueError(f"options {sorted(given)} do not apply to Skoda's temporal protocol (only fractions, "
                         "normalize)")
    ws.validate()
    f = np.asarray(fractions, dtype=np.float64)
    if f.shape != (3,) or (f < 0).any() or not np.isclose(f.sum(), 1.0) or f[0] == 0 or f[2] == 0:
        raise ValueError(f"fractions must be (train, val, test), non-negative, summing to 1, with positive train "
                         f"and test shares; got {fractions}")
    part = np.full(ws.y.shape, -1, dtype=np.int64)
    seg = ws.info["segment"]
    for c in range(len(ws.classes)):
        inst = np.unique(seg[ws.y == c])  # segment indices are in recording order
        n = inst.size
        if n == 0:
            continue
        if n < (3 if f[1] > 0 else 2):
            raise DataError(f"skoda: class {ws.classes[c]!r} has only {n} instance(s) with a window; the temporal "
                            f"split needs one per part")
        n_test = max(1, int(round(f[2] * n)))
        n_val = max(1, int(round(f[1] * n))) if f[1] > 0 else 0
        n_train = n - n_test - n_val
        if n_train < 1:
            raise DataError(f"skoda: class {ws.classes[c]!r} has too few instances ({n}) for fractions {fractions}")
        for k, s in enumerate(inst):
            part[seg == s] = 0 if k < n_train else (1 if k < n_train + n_val else 2)

    def take(p):
        mk = part == p
        if not mk.any():
            return None
        return Split(ws.x[mk], ws.y[mk].astype(np.int64), ws.subjects[mk].astype(np.int64))

    train, val, test = take(0), take(1), take(2)
    norm = None
    if normalize:
        norm = ZNorm.fit(train.x)
    for s in (train, val, test):
        if s is not None:
            s.x = norm.apply(s.x) if norm is not None else np.ascontiguousarray(s.x, dtype=np.float32)
    sp = SubjectSplit("temporal", (SUBJECT,), (SUBJECT,) if val is not None else (), (SUBJECT,))
    info = dict(ws.info)
    info["split_part"] = part
    info["split_note"] = ("per-class chronological split of gesture instances; one subject in every part, "
                          "so accuracy is not subject-independent")
    return Dataset(ws.name, train, val, test, list(ws.classes), list(ws.channels), ws.sample_rate, sp, norm, info)
