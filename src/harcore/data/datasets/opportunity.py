"""OPPORTUNITY Activity Recognition (Roggen et al. 2010, Chavarriaga et al. 2013; UCI id 226).

Reads ``OpportunityUCIDataset/dataset/S<subject>-ADL<run>.dat`` and ``S<subject>-Drill.dat``
(4 subjects, 5 ADL runs and one drill run each) and ``dataset/label_legend.txt``. Each ``.dat``
line is one 30 Hz sample with 250 space-separated columns: 1 MILLISEC, 2-243 sensors, 244-250 the
label tracks Locomotion, HL_Activity, LL_Left_Arm, LL_Left_Arm_Object, LL_Right_Arm,
LL_Right_Arm_Object, ML_Both_Arms. Missing sensor values are ``NaN``; a label 0 means *no label
on that track* (the "Null" class).

Channels: the 113 body-worn channels of the OPPORTUNITY challenge and of most HAR papers
(DeepConvLSTM, Ordóñez & Roggen 2016): 1-based columns 2-46, 51-59, 64-72, 77-85, 90-98, 103-134,
i.e. the 12 body-worn 3-axis accelerometers (36), the acc/gyro/magnetometer of the 5 arm and back
IMUs (45; their quaternions, columns 47-50, 60-63, 73-76, 86-89, 99-102, are left out) and all 16
values of each of the two shoe IMUs (32). Object, ambient and location sensors (135-243) are not
used.

``task="gestures"`` (default) labels samples with the ML_Both_Arms track (17 gestures, column 250),
``task="locomotion"`` with the Locomotion track (Stand, Walk, Sit, Lie; column 244). Class names
come from ``label_legend.txt`` (ascending label id). ``include_null=True`` (default, as in the
challenge) keeps label 0 as class 0 ``"Null"``; ``include_null=False`` excludes those samples.

NaN handling (as the challenge baselines): each channel is linearly interpolated across NaN runs
of at most ``max_gap`` samples (default ``None``: any length) and extended with its nearest valid
value at the ends of a run file; samples still NaN (a longer gap) never enter a window. A channel
NaN throughout a file cannot be interpolated: ``all_nan="error"`` (default) raises, ``"zero"`` fills
it with 0 (the DeepConvLSTM preprocessing) and lists it in ``info["all_nan_channels"]``.

Subjects are 1-4; no subject-wise fixed split exists (the challenge's test set is runs ADL4 and
ADL5 of subjects 2 and 3, a split by recording: ``info["run"]`` holds each window's run).
"""

from __future__ import annotations

import re
import warnings

import numpy as np

from .._io import open_matching
from ..dataset import WindowSet
from ..errors import DataError
from ..resample import rescale_index, resample
from ..windows import segments_from_labels
from ._formats import concat_windows, fill_nan_linear, label_windows, missing_copy, parse_nan_table

SAMPLE_RATE = 30.0
NCOLS = 250
TRACK_COLUMNS = {"Locomotion": 243, "HL_Activity": 244, "LL_Left_Arm": 245, "LL_Left_Arm_Object": 246,
                 "LL_Right_Arm": 247, "LL_Right_Arm_Object": 248, "ML_Both_Arms": 249}  # 0-based
TASKS = {"gestures": "ML_Both_Arms", "locomotion": "Locomotion"}
RUNS = ("ADL1", "ADL2", "ADL3", "ADL4", "ADL5", "Drill")
URL = "https://archive.ics.uci.edu/dataset/226/opportunity+activity+recognition"


def _names() -> dict[int, str]:
    """1-based column -> name (as in the dataset's column_names.txt) for the columns 2-134."""
    out = {}
    col = 2
    for pos in ("RKN^", "HIP", "LUA^", "RUA_", "LH", "BACK", "RKN_", "RWR", "RUA^", "LUA_", "LWR", "RH"):
        for a in "XYZ":
            out[col] = f"Accelerometer {pos} acc{a}"
            col += 1
    for imu in ("BACK", "RUA", "RLA", "LUA", "LLA"):
        for f in [f"acc{a}" for a in "XYZ"] + [f"gyro{a}" for a in "XYZ"] + [f"magnetic{a}" for a in "XYZ"] + \
                [f"Quaternion{i}" for i in range(1, 5)]:
            out[col] = f"InertialMeasurementUnit {imu} {f}"
            col += 1
    for shoe in ("L-SHOE", "R-SHOE"):
        for f in ["EuX", "EuY", "EuZ", "Nav_Ax", "Nav_Ay", "Nav_Az", "Body_Ax", "Body_Ay", "Body_Az",
                  "AngVelBodyFrameX", "AngVelBodyFrameY", "AngVelBodyFrameZ", "AngVelNavFrameX", "AngVelNavFrameY",
                  "AngVelNavFrameZ", "Compass"]:
            out[col] = f"InertialMeasurementUnit {shoe} {f}"
            col += 1
    assert col == 135
    return out


COLUMN_NAMES = _names()
#: the 113 channels: 1-based columns
CHANNEL_COLUMNS = tuple(list(range(2, 47)) + list(range(51, 60)) + list(range(64, 73)) + list(range(77, 86))
                        + list(range(90, 99)) + list(range(103, 135)))
CHANNELS = [COLUMN_NAMES[c] for c in CHANNEL_COLUMNS]
_REC = re.compile(r"(?:^|/)S(\d)-(ADL[1-5]|Drill)\.dat$")
_LEGEND_LINE = re.compile(r"^\s*(\d+)\s+-\s+(\S+)\s+-\s+(.*?)\s*$")


def parse_label_legend(data: bytes, where: str) -> dict[str, dict[int, str]]:
    """``label_legend.txt``: ``<id>   -   <track>   -   <label name>`` lines -> ``{track: {id: name}}``.
    Lines that do not start with a number (title, column header, blank) are text; a line that starts
    with a number but does not follow the pattern, an unknown track or a duplicate id is an error."""
    out: dict[str, dict[int, str]] = {}
    lines = data.decode("latin-1").replace("\r\n", "\n").split("\n")
    for i, line in enumerate(lines, start=1):
        s = line.strip()
        if not s or not s[0].isdigit():
            continue
        m = _LEGEND_LINE.match(s)
        if m is None:
            raise DataError(f"expected '<id>   -   <track>   -   <label>', found {s!r}", path=where, line=i)
        k, track, name = int(m.group(1)), m.group(2), m.group(3)
        if track not in TRACK_COLUMNS:
            raise DataError(f"unknown label track {track!r} (expected one of {list(TRACK_COLUMNS)})", path=where, line=i)
        if k in out.setdefault(track, {}):
            raise DataError(f"duplicate label id {k} on track {track}", path=where, line=i)
        out[track][k] = name
    if not out:
        raise DataError("no label definitions found", path=where)
    return out


def load_windows(root, *, task: str = "gestures", include_null: bool = True, window: int = 30, step: int = 15,
                 label_rule: str = "segment", runs=RUNS, max_gap: int | None = None, all_nan: str = "error",
                 subjects=None, resample_to: float | None = None) -> WindowSet:
    if task not in TASKS:
        raise ValueError(f"unknown Opportunity task {task!r}; choose one of {sorted(TASKS)}")
    runs = tuple(runs)
    if not runs or any(r not in RUNS for r in runs):
        raise ValueError(f"runs must be a non-empty subset of {RUNS}, got {runs}")
    if all_nan not in ("error", "zero"):
        raise ValueError(f"all_nan must be 'error' or 'zero', got {all_nan!r}")
    if label_rule not in ("segment", "majority"):
        raise ValueError(f"label_rule must be 'segment' or 'majority', got {label_rule!r}")
    track = TASKS[task]
    wanted = None if subjects is None else {int(s) for s in subjects}

    def want(member: str) -> bool:
        if member.endswith("label_legend.txt"):
            return True
        m = _REC.search(member)
        return m is not None and m.group(2) in runs and (wanted is None or int(m.group(1)) in wanted)

    src = open_matching(root, lambda f: _REC.search(f) is not None, want)
    recs = {}
    for f in src.files:
        m = _REC.search(f)
        if m and m.group(2) in runs:
            key = (int(m.group(1)), m.group(2))
            if key in recs:
                raise DataError(f"S{key[0]}-{key[1]}.dat appears twice ({recs[key]} and {f})", path=src.display)
            recs[key] = f
    if not recs:
        raise missing_copy("OPPORTUNITY", src.display, "OpportunityUCIDataset/dataset/S<n>-ADL<k>.dat and "
                           "S<n>-Drill.dat files", URL)
    legends = [f for f in src.files if f == "label_legend.txt" or f.endswith("/label_legend.txt")]
    if len(legends) != 1:
        raise DataError("label_legend.txt is " + ("missing (it names the classes)" if not legends else
                                                  f"ambiguous: {legends}"), path=src.display)
    legend = parse_label_legend(src.read(legends[0]), src.where(legends[0]))
    if track not in legend:
        raise DataError(f"label_legend.txt defines no {track} labels", path=src.where(legends[0]))
    ids = sorted(legend[track])
    classes = (["Null"] if include_null else []) + [legend[track][k] for k in ids]
    index = {k: i + (1 if include_null else 0) for i, k in enumerate(ids)}
    if include_null:
        index[0] = 0
    fs = SAMPLE_RATE if resample_to is None else float(resample_to)
    cols = [c - 1 for c in CHANNEL_COLUMNS]
    label_col = TRACK_COLUMNS[track]
    xs, ys, subs, run_of, starts = [], [], [], [], []
    stats = {"null_samples": 0, "nan_filled": 0, "nan_excluded_samples": 0, "segments_shorter_than_window": 0,
             "majority_windows_skipped_for_excluded_samples": 0}
    all_nan_channels: dict[str, list[str]] = {}
    for (subj, run), rel in sorted(recs.items()):
        if wanted is not None and subj not in wanted:
            continue
        where = src.where(rel)
        a = parse_nan_table(src.read(rel), where, ncols=NCOLS)
        for c in (0, *TRACK_COLUMNS.values()):
            bad = np.nonzero(np.isnan(a[:, c]) | (a[:, c] != np.round(a[:, c])))[0]
            if bad.size:
                raise DataError(f"column {c + 1} ({'MILLISEC' if c == 0 else 'label track'}) must hold integers, "
                                f"found {a[bad[0], c]!r}", path=where, line=int(bad[0]) + 1)
        raw = a[:, label_col].astype(np.int64)
        known = np.isin(raw, [0, *ids])
        if not known.all():
            r = int(np.nonzero(~known)[0][0])
            raise DataError(f"unknown {track} label {raw[r]} in column {label_col + 1} (label_legend.txt defines "
                            f"{ids} and 0 = Null)", path=where, line=r + 1)
        lab = np.full(raw.shape, -1, dtype=np.int64)
        for k, v in index.items():
            lab[raw == k] = v
        stats["null_samples"] += int((raw == 0).sum())
        sig = a[:, cols].T
        dead = np.isnan(sig).all(axis=1)
        if dead.any():
            names = [CHANNELS[i] for i in np.nonzero(dead)[0]]
            if all_nan == "error":
                raise DataError(f"channel(s) {names} are NaN throughout the file; pass all_nan='zero' to fill them "
                                "with 0", path=where)
            all_nan_channels[f"S{subj}-{run}"] = names
            warnings.warn(f"{where}: {len(names)} channel(s) NaN throughout, filled with 0: {names}", UserWarning,
                          stacklevel=3)
            sig = sig.copy()
            sig[dead] = 0.0
        sig, left, n_filled = fill_nan_linear(sig, max_gap, extend_edges=True)
        stats["nan_filled"] += n_filled
        stats["nan_excluded_samples"] += int((left & (lab >= 0)).sum())
        for q0, q1, _ in segments_from_labels(np.where(left, -1, 0), 0):
            x_q, lab_q = sig[:, q0:q1], lab[q0:q1]
            if resample_to is not None:
                x_q = resample(x_q, SAMPLE_RATE, fs)
                idx = np.clip(np.round(np.arange(x_q.shape[1]) * SAMPLE_RATE / fs).astype(np.int64), 0, lab_q.size - 1)
                lab_q = lab_q[idx]
            xw, yw, st, short, skipped = label_windows(x_q.astype(np.float32), lab_q, window, step, label_rule)
            stats["segments_shorter_than_window"] += short
            stats["majority_windows_skipped_for_excluded_samples"] += skipped
            xs.append(xw)
            ys.append(yw)
            subs.append(np.full(yw.shape, subj, np.int64))
            run_of.append(np.full(yw.shape, RUNS.index(run), np.int64))
            starts.append(st + rescale_index(int(q0), SAMPLE_RATE, fs))
    if not xs:
        raise DataError(f"no OPPORTUNITY recordings for subjects {sorted(wanted) if wanted else 'any'}",
                        path=src.display)
    x, y = concat_windows(xs, ys, len(CHANNELS), window)
    info = {"source": src.display, "task": task, "track": track, "label_ids": ([0] if include_null else []) + ids,
            "include_null": include_null, "window": window, "step": step, "label_rule": label_rule,
            "run": np.concatenate(run_of), "run_names": list(RUNS), "start": np.concatenate(starts),
            "recordings": sorted(f"S{s}-{r}" for s, r in recs if wanted is None or s in wanted),
            "channel_columns": list(CHANNEL_COLUMNS), "all_nan_channels": all_nan_channels, "max_gap": max_gap,
            **stats, "units": "accelerometers milli g; IMU values as in column_names.txt",
            "excluded": ("" if include_null else "label 0 (Null) samples never enter a window; ")
                        + "samples inside NaN gaps longer than max_gap are excluded"}
    return WindowSet(x, y, np.concatenate(subs), classes, list(CHANNELS), fs, "opportunity", None, info)
