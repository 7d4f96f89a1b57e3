"""PAMAP2 Physical Activity Monitoring (Reiss & Stricker, ISWC 2012; UCI id 231).

Reads ``Protocol/subjectNNN.dat`` (and, with ``sessions=("Protocol", "Optional")``, also
``Optional/subjectNNN.dat``): space-separated text, one 100 Hz sample per line, 54 columns:

1. timestamp (s), 2. activityID, 3. heart rate (bpm), 4-20 IMU hand, 21-37 IMU chest,
38-54 IMU ankle. Each IMU block: temperature (°C), 3D acceleration ±16 g (m/s²), 3D acceleration
±6 g (m/s²), 3D gyroscope (rad/s), 3D magnetometer (µT), 4 orientation values that the dataset
documentation declares *invalid in this data collection* (never read).

Missing values are written ``NaN`` (dataset documentation). Handling:

* **Heart rate** is sampled at about 9 Hz, so most rows carry ``NaN`` there. Each reading is held
  until the next one (sample-and-hold). Samples before a recording's first heart-rate reading are
  excluded when the heart-rate channel is selected (counted in ``info``).
* **IMU** ``NaN`` (wireless packet loss) runs of at most ``max_gap`` samples (default 10 = 0.1 s)
  inside a recording are filled by linear interpolation; longer runs, and runs at the start or end
  of a recording, exclude their samples: no window contains them (counted in ``info``).

Labels: activityID 0 (*"other (transient activities)"*) must be discarded per the documentation;
its samples never enter a window. Classes are the 12 protocol activities (and the 6 optional ones
when the ``Optional`` session is read), in activityID order. A time step above 0.1 s splits a
recording (no window spans a gap). Subject ids are the file numbers (101-109). No fixed split.
"""

from __future__ import annotations

import re

import numpy as np

from .._io import open_matching
from ..dataset import WindowSet
from ..errors import DataError
from ..resample import rescale_index, resample
from ..windows import segments_from_labels
from ._formats import concat_windows, fill_nan_linear, hold_last, label_windows, missing_copy, parse_nan_table

SAMPLE_RATE = 100.0
NCOLS = 54
ACTIVITIES = {1: "lying", 2: "sitting", 3: "standing", 4: "walking", 5: "running", 6: "cycling",
              7: "Nordic_walking", 9: "watching_TV", 10: "computer_work", 11: "car_driving",
              12: "ascending_stairs", 13: "descending_stairs", 16: "vacuum_cleaning", 17: "ironing",
              18: "folding_laundry", 19: "house_cleaning", 20: "playing_soccer", 24: "rope_jumping"}
TRANSIENT = 0
PROTOCOL_IDS = (1, 2, 3, 4, 5, 6, 7, 12, 13, 16, 17, 24)
OPTIONAL_IDS = (9, 10, 11, 18, 19, 20)
IMUS = ("hand", "chest", "ankle")
_IMU_FIELDS = (["temperature"] + [f"acc16_{a}" for a in "xyz"] + [f"acc6_{a}" for a in "xyz"]
               + [f"gyro_{a}" for a in "xyz"] + [f"mag_{a}" for a in "xyz"] + [f"orientation_{i}" for i in range(1, 5)])
# 0-based column of every named channel
COLUMNS = {"heart_rate": 2}
for _k, _imu in enumerate(IMUS):
    for _j, _f in enumerate(_IMU_FIELDS):
        COLUMNS[f"{_imu}_{_f}"] = 3 + 17 * _k + _j
SENSOR_SETS = {
    # heart rate + per IMU acc ±16 g, gyro, magnetometer (the ±16 g accelerometer is the one the
    # documentation recommends; the ±6 g one saturates)
    "default": ["heart_rate"] + [f"{i}_{f}" for i in IMUS for f in _IMU_FIELDS[1:4] + _IMU_FIELDS[7:13]],
    "imu": [f"{i}_{f}" for i in IMUS for f in _IMU_FIELDS[1:4] + _IMU_FIELDS[7:13]],
    # every valid column (40): heart rate + all 13 IMU fields except the invalid orientation
    "all": ["heart_rate"] + [f"{i}_{f}" for i in IMUS for f in _IMU_FIELDS[:13]],
}
SESSIONS = ("Protocol", "Optional")
MAX_GAP_S = 0.1
_REC = re.compile(r"(?:^|/)(Protocol|Optional)/subject(\d{3})\.dat$")
URL = "https://archive.ics.uci.edu/dataset/231/pamap2+physical+activity+monitoring"


def parse_recording(data: bytes, where: str) -> np.ndarray:
    """One ``subjectNNN.dat`` as float64 ``(rows, 54)`` with NaN kept; activity ids checked."""
    a = parse_nan_table(data, where, ncols=NCOLS)
    for col, what in ((0, "timestamp"), (1, "activityID")):
        bad = np.nonzero(np.isnan(a[:, col]))[0]
        if bad.size:
            raise DataError(f"missing {what} (NaN) in column {col + 1}", path=where, line=int(bad[0]) + 1)
    ids = a[:, 1]
    bad = np.nonzero(~np.isin(ids, [TRANSIENT, *ACTIVITIES]))[0]
    if bad.size:
        raise DataError(f"unknown activityID {ids[bad[0]]:g} in column 2 (the documentation defines "
                        f"{[TRANSIENT, *sorted(ACTIVITIES)]})", path=where, line=int(bad[0]) + 1)
    dt = np.diff(a[:, 0])
    nonincr = np.nonzero(dt <= 0)[0]
    if nonincr.size:
        i = int(nonincr[0])
        raise DataError(f"timestamp {a[i + 1, 0]:g} s does not increase (previous {a[i, 0]:g} s)",
                        path=where, line=i + 2)
    return a


def load_windows(root, *, window: int = 512, step: int = 100, sensors: str = "default",
                 sessions=("Protocol",), label_rule: str = "segment", max_gap: int | None = 10,
                 subjects=None, resample_to: float | None = None) -> WindowSet:
    if sensors not in SENSOR_SETS:
        raise ValueError(f"unknown PAMAP2 sensors {sensors!r}; choose one of {sorted(SENSOR_SETS)}")
    sessions = tuple(sessions)
    if not sessions or any(s not in SESSIONS for s in sessions):
        raise ValueError(f"sessions must be a non-empty subset of {SESSIONS}, got {sessions}")
    if label_rule not in ("segment", "majority"):
        raise ValueError(f"label_rule must be 'segment' or 'majority', got {label_rule!r}")
    names = SENSOR_SETS[sensors]
    cols = [COLUMNS[n] for n in names]
    class_ids = sorted(PROTOCOL_IDS + (OPTIONAL_IDS if "Optional" in sessions else ()))
    cls_index = {k: i for i, k in enumerate(class_ids)}
    classes = [ACTIVITIES[k] for k in class_ids]
    wanted = None if subjects is None else {int(s) for s in subjects}

    def want(member: str) -> bool:
        m = _REC.search(member)
        return m is not None and m.group(1) in sessions and (wanted is None or int(m.group(2)) in wanted)

    src = open_matching(root, lambda f: _REC.search(f) is not None, want)
    recs = {}
    for f in src.files:
        m = _REC.search(f)
        if m and m.group(1) in sessions:
            key = (m.group(1), int(m.group(2)))
            if key in recs:
                raise DataError(f"{m.group(1)}/subject{m.group(2)}.dat appears twice ({recs[key]} and {f})",
                                path=src.display)
            recs[key] = f
    if not recs:
        raise missing_copy("PAMAP2", src.display, f"{'/'.join(sessions)}/subjectNNN.dat files (PAMAP2_Dataset)", URL)
    fs = SAMPLE_RATE if resample_to is None else float(resample_to)
    xs, ys, subs, starts, sess_of = [], [], [], [], []
    stats = {"transient_samples": 0, "other_activity_samples": 0, "imu_nan_filled": 0,
             "imu_nan_excluded_samples": 0, "no_heart_rate_yet_samples": 0, "time_gap_splits": 0,
             "segments_shorter_than_window": 0, "majority_windows_skipped_for_excluded_samples": 0}
    for (sess, subj), rel in sorted(recs.items()):
        if wanted is not None and subj not in wanted:
            continue
        where = src.where(rel)
        a = parse_recording(src.read(rel), where)
        t, act = a[:, 0], a[:, 1].astype(np.int64)
        stats["transient_samples"] += int((act == TRANSIENT).sum())
        lab = _map_ids(act, cls_index)
        stats["other_activity_samples"] += int(((lab < 0) & (act != TRANSIENT)).sum())
        gaps = np.nonzero(np.diff(t) > MAX_GAP_S)[0]
        stats["time_gap_splits"] += int(gaps.size)
        cuts = np.concatenate([[0], gaps + 1, [t.size]])
        for p0, p1 in zip(cuts[:-1], cuts[1:]):
            sig = a[p0:p1, cols].T.copy()
            lab_p = lab[p0:p1].copy()
            is_imu = np.array([n != "heart_rate" for n in names])
            if (~is_imu).any():
                hr = hold_last(sig[~is_imu][0])
                no_hr = np.isnan(hr)
                stats["no_heart_rate_yet_samples"] += int((no_hr & (lab_p >= 0)).sum())
                sig[~is_imu] = hr
            imu, left, n_filled = fill_nan_linear(sig[is_imu], max_gap)
            sig[is_imu] = imu
            stats["imu_nan_filled"] += n_filled
            stats["imu_nan_excluded_samples"] += int((left & (lab_p >= 0)).sum())
            bad = np.isnan(sig).any(axis=0)
            # clean pieces: no NaN left anywhere (so resampling never sees one)
            for q0, q1, _ in _runs(~bad):
                x_q, lab_q = sig[:, q0:q1], lab_p[q0:q1]
                if resample_to is not None:
                    x_q = resample(x_q, SAMPLE_RATE, fs)
                    idx = np.clip(np.round(np.arange(x_q.shape[1]) * SAMPLE_RATE / fs).astype(np.int64), 0,
                                  lab_q.size - 1)
                    lab_q = lab_q[idx]
                xw, yw, st, short, skipped = label_windows(x_q.astype(np.float32), lab_q, window, step, label_rule)
                stats["segments_shorter_than_window"] += short
                stats["majority_windows_skipped_for_excluded_samples"] += skipped
                xs.append(xw)
                ys.append(yw)
                subs.append(np.full(yw.shape, subj, np.int64))
                sess_of.append(np.full(yw.shape, SESSIONS.index(sess), np.int64))
                starts.append(st + rescale_index(int(p0 + q0), SAMPLE_RATE, fs))
    if not xs:
        raise DataError(f"no PAMAP2 recordings for subjects {sorted(wanted) if wanted else 'any'}", path=src.display)
    x, y = concat_windows(xs, ys, len(names), window)
    info = {"source": src.display, "window": window, "step": step, "label_rule": label_rule, "sensors": sensors,
            "sessions": list(sessions), "session": np.concatenate(sess_of), "start": np.concatenate(starts),
            "recordings": sorted(f"{s}/subject{n}" for s, n in recs if wanted is None or n in wanted),
            "activity_ids": class_ids, "max_gap": max_gap, **stats,
            "units": "acc m/s^2, gyro rad/s, magnetometer uT, heart rate bpm, temperature degC",
            "excluded": "activityID 0 (transient) never enters a window (dataset documentation); samples with "
                        "IMU NaN runs longer than max_gap, or before the first heart-rate reading, are excluded"}
    return WindowSet(x, y, np.concatenate(subs), classes, list(names), fs, "pamap2", None, info)


def _map_ids(ids: np.ndarray, index: dict[int, int]) -> np.ndarray:
    lut = np.full(int(max(max(index), ids.max())) + 1, -1, dtype=np.int64)
    for k, v in index.items():
        lut[k] = v
    return lut[ids]


def _runs(mask: np.ndarray):
    """Maximal runs of True in ``mask`` as ``(start, end, 0)``."""
    return segments_from_labels(np.where(mask, 0, -1), 0)
