"""UniMiB SHAR (Micucci, Mobilio & Napoletano, Applied Sciences 2017).

30 subjects, a smartphone accelerometer at 50 Hz, 9 activities of daily living (ADL) and 8 kinds
of fall. The distribution's ``data/`` folder holds ready-made windows of 151 samples (3 s, centred
on an acceleration peak), as MATLAB files read with ``scipy.io.loadmat``:

* ``<split>_data.mat``: matrix ``<split>_data``, one window per row, 453 columns = x (151 samples),
  then y (151), then z (151); acceleration in m/s².
* ``<split>_labels.mat``: matrix ``<split>_labels``, one row per window: class id (1-based),
  subject id (1-30), trial number.
* ``<split>_names.mat`` (optional): a cell array naming the classes; when present, one of its rows
  must equal the class names below (a check of the class order).

``variant`` picks ``<split>``: ``"acc"`` (default; 17 classes, ADLs 1-9 then falls 10-17),
``"adl"`` (9 ADLs) or ``"fall"`` (8 falls). Windows are used as distributed (no re-windowing; no
sample is excluded). No fixed split: the default protocol is ``random-subjects``.

Errors in a ``.mat`` file name the file and, for a bad row, its 1-based matrix row as the line.
"""

from __future__ import annotations

import numpy as np

from .._io import open_matching
from ..dataset import WindowSet
from ..errors import DataError
from ._formats import load_mat, mat_matrix, missing_copy

SAMPLE_RATE = 50.0
WINDOW = 151
ADL = ["StandingUpFS", "StandingUpFL", "Walking", "Running", "GoingUpS", "Jumping", "GoingDownS", "LyingDownFS",
       "SittingDown"]
FALLS = ["FallingForw", "FallingRight", "FallingBack", "HittingObstacle", "FallingWithPS", "FallingBackSC",
         "Syncope", "FallingLeft"]
VARIANTS = {"acc": ADL + FALLS, "adl": ADL, "fall": FALLS}
CHANNELS = ["acc_x", "acc_y", "acc_z"]
URL = "http://www.sal.disco.unimib.it/technologies/unimib-shar/ (UniMiB-SHAR.zip)"


def _find(src, name):
    hits = [f for f in src.files if f == name or f.endswith("/" + name)]
    if len(hits) > 1:
        raise DataError(f"several copies of {name}: {hits}", path=src.display)
    return hits[0] if hits else None


def _cell_strings(cell) -> list[list[str]]:
    """Rows of a loaded MATLAB cell array of strings as lists of str."""
    a = np.asarray(cell, dtype=object)
    if a.ndim != 2:
        return []
    rows = []
    for r in range(a.shape[0]):
        row = []
        for v in a[r]:
            v = np.asarray(v)
            row.append(str(v.ravel()[0]) if v.size == 1 else "".join(str(c) for c in v.ravel()))
        rows.append(row)
    return rows


def load_windows(root, *, variant: str = "acc") -> WindowSet:
    if variant not in VARIANTS:
        raise ValueError(f"unknown UniMiB-SHAR variant {variant!r}; choose one of {sorted(VARIANTS)}")
    classes = VARIANTS[variant]
    names = {f"{variant}_data.mat", f"{variant}_labels.mat", f"{variant}_names.mat"}
    src = open_matching(root, lambda f: f.rsplit("/", 1)[-1] in names, lambda m: m.rsplit("/", 1)[-1] in names)
    d_rel, l_rel, n_rel = (_find(src, f"{variant}_{k}.mat") for k in ("data", "labels", "names"))
    if d_rel is None or l_rel is None:
        raise missing_copy("UniMiB-SHAR", src.display, f"UniMiB-SHAR/data/{variant}_data.mat and {variant}_labels.mat",
                           URL)
    d_where, l_where = src.where(d_rel), src.where(l_rel)
    data = mat_matrix(load_mat(src.read(d_rel), d_where), f"{variant}_data", d_where, 3 * WINDOW)
    labels = mat_matrix(load_mat(src.read(l_rel), l_where), f"{variant}_labels", l_where, 3)
    if data.shape[0] != labels.shape[0]:
        raise DataError(f"{data.shape[0]} windows in {d_rel.rsplit('/', 1)[-1]} but {labels.shape[0]} label rows",
                        path=l_where)
    if data.shape[0] == 0:
        raise DataError("no windows", path=d_where)
    finite = np.isfinite(data)
    if not finite.all():
        r, c = np.argwhere(~finite)[0]
        raise DataError(f"non-finite value (NaN or infinity) in row {r + 1}, column {c + 1}", path=d_where,
                        line=int(r) + 1)
    bad = np.nonzero(~np.isfinite(labels).all(axis=1) | (labels != np.round(labels)).any(axis=1))[0]
    if bad.size:
        raise DataError(f"row {bad[0] + 1} must hold three integers (class, subject, trial), found "
                        f"{labels[bad[0]].tolist()}", path=l_where, line=int(bad[0]) + 1)
    labels = labels.astype(np.int64)
    bad = np.nonzero((labels[:, 0] < 1) | (labels[:, 0] > len(classes)))[0]
    if bad.size:
        raise DataError(f"unknown class id {labels[bad[0], 0]} in row {bad[0] + 1} ({variant} defines 1..{len(classes)})",
                        path=l_where, line=int(bad[0]) + 1)
    bad = np.nonzero(labels[:, 1] < 1)[0]
    if bad.size:
        raise DataError(f"subject id {labels[bad[0], 1]} in row {bad[0] + 1} is not positive", path=l_where,
                        line=int(bad[0]) + 1)
    if n_rel is not None:
        n_where = src.where(n_rel)
        mat = load_mat(src.read(n_rel), n_where)
        key = f"{variant}_names"
        if key not in mat:
            raise DataError(f"no variable {key!r} in the .mat file", path=n_where)
        rows = _cell_strings(mat[key])
        if classes not in rows:
            raise DataError(f"the class names in {key} ({rows}) do not match harcore's order {classes}", path=n_where)
    x = data.reshape(-1, 3, WINDOW).astype(np.float32)
    info = {"source": src.display, "variant": variant, "trial": labels[:, 2], "window": WINDOW,
            "label_rule": "one row of <variant>_data.mat = one distributed 151-sample window with its class",
            "units": "m/s^2", "excluded": "nothing (windows as distributed)",
            "names_checked": n_rel is not None}
    return WindowSet(x, labels[:, 0] - 1, labels[:, 1], list(classes), list(CHANNELS), SAMPLE_RATE, "unimib-shar",
                     None, info)
