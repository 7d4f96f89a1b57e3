"""MyoGym (Koskimäki, Siirtola & Röning, UbiComp/ISWC 2017 adjunct): a Myo armband on the forearm,
10 participants, 30 gym exercises and a null class.

Reads ``MyoGym.mat`` (the release's MATLAB file; found anywhere in the folder or archive), read with
``scipy.io.loadmat``. It holds two matrices with one row per 50 Hz sample:

* ``raw_data``: column 0 the EMG timestamp, 1-8 the eight EMG channels, 9 the accelerometer
  timestamp, 10-12 acceleration x/y/z (g), 13 the gyroscope timestamp, 14-16 rate of turn x/y/z
  (deg/s). Columns after 16, where present, are not read.
* ``raw_data_labels``: column 0 the exercise (1-30, or 99 for no exercise, the null class), column 1
  the participant (1-10).

Classes: ``"null"`` (label 99; excluded with ``include_null=False``) then the 30 exercises in label
order (:data:`EXERCISES`). ``sensors`` picks channel groups: ``"emg"`` (``emg_1``..``emg_8``),
``"acc"`` (``acc_x/y/z``), ``"gyro"`` (``gyro_x/y/z``); default all three (14 channels).

A *recording* is a maximal block of consecutive rows of one participant in which the accelerometer
timestamp increases; a new block starts where it does not (counted in ``info["time_resets"]``), so
no window joins two sessions. A row equal to the one before it in every column (and label) is dropped
as a sample stored twice (``info["duplicate_rows"]``). ``info["start_row"]`` is each window's first
row in the file (0-based). Windows (default 100 samples = 2 s, step 50) lie inside one run of one
label of a recording (segment rule). ``resample_to`` resamples each run. No fixed split.
"""

from __future__ import annotations

import numpy as np

from .._io import open_matching
from ..dataset import WindowSet
from ..errors import DataError
from ..resample import resample
from ..windows import segment_windows
from ._formats import concat_windows, int_set, load_mat, mat_matrix, missing_copy, name_tuple

SAMPLE_RATE = 50.0
FILE = "MyoGym.mat"
NULL_LABEL = 99
EXERCISES = ["Seated Cable Rows", "One-Arm Dumbbell Row", "Wide-Grip Pulldown Behind The Neck",
             "Bent Over Barbell Row", "Reverse Grip Bent-Over Row", "Wide-Grip Front Pulldown", "Bench Press",
             "Incline Dumbbell Flyes", "Incline Dumbbell Press", "Dumbbell Flyes", "Pushups",
             "Leverage Chest Press", "Close-Grip Barbell Bench Press", "Bar Skullcrusher", "Triceps Pushdown",
             "Bench Dip / Dip", "Overhead Triceps Extension", "Tricep Dumbbell Kickback", "Spider Curl",
             "Dumbbell Alternate Bicep Curl", "Incline Hammer Curl", "Concentration Curl", "Cable Curl",
             "Hammer Curl", "Upright Barbell Row", "Side Lateral Raise", "Front Dumbbell Raise",
             "Seated Dumbbell Shoulder Press", "Car Drivers", "Lying Rear Delt Raise"]
SENSORS = {"emg": ([f"emg_{i}" for i in range(1, 9)], list(range(1, 9))),
           "acc": (["acc_x", "acc_y", "acc_z"], [10, 11, 12]),
           "gyro": (["gyro_x", "gyro_y", "gyro_z"], [14, 15, 16])}
ACC_TIME_COLUMN = 9
MIN_COLUMNS = 17
URL = "http://www.oulu.fi/bisg/node/40364 (MyoGym, University of Oulu BISG; Koskimäki et al. 2017)"


def read_mat(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """``(raw_data, raw_data_labels)`` of a ``MyoGym.mat``, checked: :class:`DataError` names the file
    and, for a bad value, its 1-based matrix row (reported as the line)."""
    mat = load_mat(data, where)
    raw = mat_matrix(mat, "raw_data", where)
    lab = mat_matrix(mat, "raw_data_labels", where)
    if raw.shape[1] < MIN_COLUMNS:
        raise DataError(f"variable 'raw_data' has {raw.shape[1]} columns, expected at least {MIN_COLUMNS} "
                        "(EMG time, 8 EMG, acc time, acc xyz, gyro time, gyro xyz)", path=where)
    if lab.shape[1] < 2:
        raise DataError(f"variable 'raw_data_labels' has {lab.shape[1]} columns, expected 2 (exercise, participant)",
                        path=where)
    if lab.shape[0] != raw.shape[0]:
        raise DataError(f"'raw_data' has {raw.shape[0]} rows but 'raw_data_labels' {lab.shape[0]}", path=where)
    if raw.shape[0] == 0:
        raise DataError("'raw_data' is empty", path=where)
    used = [c for _, cs in SENSORS.values() for c in cs] + [ACC_TIME_COLUMN]
    bad = ~np.isfinite(raw[:, used])
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise DataError(f"non-finite value in raw_data column {used[c]}", path=where, line=int(r) + 1)
    ex, part = lab[:, 0], lab[:, 1]
    ok = np.isfinite(ex) & ((ex == NULL_LABEL) | ((ex >= 1) & (ex <= len(EXERCISES)))) & (ex == np.round(ex))
    bad = np.nonzero(~ok)[0]
    if bad.size:
        raise DataError(f"unknown exercise label {float(ex[bad[0]]):g} in raw_data_labels (expected 1-{len(EXERCISES)} "
                        f"or {NULL_LABEL} for null)", path=where, line=int(bad[0]) + 1)
    bad = np.nonzero(~(np.isfinite(part) & (part >= 1) & (part == np.round(part))))[0]
    if bad.size:
        raise DataError(f"participant id {float(part[bad[0]]):g} in raw_data_labels is not a positive integer",
                        path=where, line=int(bad[0]) + 1)
    return raw, lab[:, :2].astype(np.int64)


def load_windows(root, *, sensors=tuple(SENSORS), include_null: bool = True, window: int = 100, step: int = 50,
                 resample_to: float | None = None, subjects=None) -> WindowSet:
    sensors = name_tuple(sensors)
    if not sensors or any(s not in SENSORS for s in sensors):
        raise ValueError(f"sensors must be a non-empty subset of {tuple(SENSORS)}, got {sensors}")
    src = open_matching(root, lambda f: f == FILE or f.endswith("/" + FILE), lambda m: m.endswith(FILE))
    hits = [f for f in src.files if f == FILE or f.endswith("/" + FILE)]
    if not hits:
        raise missing_copy("MyoGym", src.display, f"'{FILE}'", URL)
    if len(hits) > 1:
        raise DataError(f"several copies of {FILE}: {hits}", path=src.display)
    where = src.where(hits[0])
    raw, lab = read_mat(src.read(hits[0]), where)
    cols = [c for s in sensors for c in SENSORS[s][1]]
    names = [n for s in sensors for n in SENSORS[s][0]]
    classes = (["null"] if include_null else []) + list(EXERCISES)
    # label per row as a class index; -1 = excluded (the null class without include_null)
    y_row = np.where(lab[:, 0] == NULL_LABEL, 0 if include_null else -1, lab[:, 0] - (0 if include_null else 1))
    # a row repeating its predecessor exactly (data and labels) is one sample stored twice: dropped, counted
    same = np.concatenate([[False], np.all(raw[1:] == raw[:-1], axis=1) & np.all(lab[1:] == lab[:-1], axis=1)])
    rows = np.nonzero(~same)[0]                       # original row of each kept row
    raw, lab, y_row = raw[rows], lab[rows], y_row[rows]
    part = lab[:, 1]
    t = raw[:, ACC_TIME_COLUMN]
    cut = np.nonzero((part[1:] != part[:-1]) | (np.diff(t) <= 0))[0] + 1
    time_resets = int(np.sum((part[1:] == part[:-1]) & (np.diff(t) <= 0)))
    bounds = np.concatenate([[0], cut, [raw.shape[0]]])
    wanted = int_set(subjects)
    fs = SAMPLE_RATE if resample_to is None else float(resample_to)
    xs, ys, subs, starts = [], [], [], []
    short = 0
    excluded = int((y_row < 0).sum())
    for s, e in zip(bounds[:-1], bounds[1:]):
        subj = int(part[s])
        if wanted is not None and subj not in wanted:
            continue
        lab_rec = y_row[s:e]
        change = np.nonzero(lab_rec[1:] != lab_rec[:-1])[0] + 1
        rb = np.concatenate([[0], change, [e - s]])
        for a, b in zip(rb[:-1], rb[1:]):
            k = int(lab_rec[a])
            if k < 0:
                continue
            sig = raw[s + a:s + b, cols].T
            if resample_to is not None:
                sig = resample(sig, SAMPLE_RATE, fs)
            sw = segment_windows(sig.astype(np.float32), [(0, sig.shape[1], k)], window, step)
            short += sw.short_segments
            xs.append(sw.x)
            ys.append(sw.y)
            subs.append(np.full(sw.y.shape, subj, np.int64))
            starts.append(rows[s + a + np.round(sw.start * SAMPLE_RATE / fs).astype(np.int64)])
    x, y = concat_windows(xs, ys, len(cols), window)
    if y.size == 0:
        raise DataError(f"no labelled run is as long as one window ({window} samples)"
                        f"{'' if wanted is None else f' for participants {sorted(wanted)}'}; {time_resets} time "
                        f"reset(s) of column {ACC_TIME_COLUMN} cut the recordings", path=where)
    info = {"source": src.display, "file": hits[0], "window": window, "step": step, "include_null": include_null,
            "start_row": np.concatenate(starts), "runs_shorter_than_window": short, "time_resets": time_resets,
            "duplicate_rows": int(same.sum()),
            "excluded_null_rows": excluded, "units": "EMG raw Myo units, acc g, gyro deg/s",
            "label_rule": "segment: windows lie inside one run of one label of one recording",
            "excluded": "null rows (label 99) when include_null=False"}
    return WindowSet(x, y, np.concatenate(subs), classes, names, fs, "myogym", None, info)
