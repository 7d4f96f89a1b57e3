"""Heterogeneity Human Activity Recognition, HHAR (Stisen et al., SenSys 2015; UCI id 344).

Reads ``Activity recognition exp/Phones_accelerometer.csv`` (``device="phones"``, ``sensor="acc"``),
``Phones_gyroscope.csv``, ``Watch_accelerometer.csv`` or ``Watch_gyroscope.csv`` (also from inside
the UCI zip, which wraps ``Activity recognition exp.zip``). Every file is comma-separated with the
header ``Index,Arrival_Time,Creation_Time,x,y,z,User,Model,Device,gt``: row index, arrival time
(ms), the sensor timestamp (``Creation_Time``, nanoseconds), the three axes (m/s² or rad/s), user
``a``-``i``, device model, device name, and the activity ``gt``: ``stand``, ``sit``, ``walk``,
``stairsup``, ``stairsdown``, ``bike`` or ``null``.

``null`` rows carry no activity (the documentation's label for unlabelled data) and never enter a
window. Each device samples at its own, irregular rate (50-200 Hz), so the loader resamples:

1. rows of one (User, Device) are ordered by ``Creation_Time`` (rows with a repeated timestamp are
   dropped and counted) and cut into *runs*: maximal stretches of one ``gt`` without a time step
   above ``max_gap_s`` (default 0.5 s);
2. each run is linearly interpolated onto a uniform grid at its own mean rate rounded to whole Hz
   (``(n - 1) / duration``), then resampled to ``resample_to`` (default 50 Hz) with
   ``scipy.signal.resample_poly`` (:func:`harcore.data.resample`, anti-aliased);
3. windows (default 100 samples = 2 s, step 50) lie inside one run.

One sensor per load (``sensor="acc"`` or ``"gyro"``): the accelerometer and gyroscope files carry
independent timestamps, and fusing them would need an alignment this loader does not guess.
Subjects: users ``a``-``i`` -> 1-9. No fixed split.
"""

from __future__ import annotations

import re

import numpy as np

from .._io import ZipSource, open_matching
from ..dataset import WindowSet
from ..errors import DataError
from ..resample import resample
from ..windows import segment_windows
from ._formats import concat_windows, missing_copy, parse_headed_csv, require_final_newline

HEADER = "Index,Arrival_Time,Creation_Time,x,y,z,User,Model,Device,gt"
USERS = "abcdefghi"
GT = ["stand", "sit", "walk", "stairsup", "stairsdown", "bike"]
CLASSES = ["stand", "sit", "walk", "stairsup", "stairsdown", "bike"]
NULL = "null"
FILES = {("phones", "acc"): "Phones_accelerometer.csv", ("phones", "gyro"): "Phones_gyroscope.csv",
         ("watch", "acc"): "Watch_accelerometer.csv", ("watch", "gyro"): "Watch_gyroscope.csv"}
INNER_ZIP = "Activity recognition exp.zip"
MIN_RATE, MAX_RATE = 5, 1000  # plausible device rates (Hz); outside: Creation_Time is not in ns
URL = "https://archive.ics.uci.edu/dataset/344/heterogeneity+activity+recognition"
_DTYPE = [("index", "i8"), ("arrival", "i8"), ("creation", "i8"), ("x", "f8"), ("y", "f8"), ("z", "f8"),
          ("user", "U64"), ("model", "U64"), ("device", "U64"), ("gt", "U64")]
_INT = re.compile(r"^[+-]?\d+$")


def _diagnose(lines: list[str], ends_nl: bool, where: str) -> None:
    for i, line in enumerate(lines):
        lineno = i + 2
        tail = " (the file ends here without a newline: truncated?)" if i == len(lines) - 1 and not ends_nl else ""
        f = line.split(",")
        if len(f) != 10:
            raise DataError(f"expected 10 comma-separated fields ({HEADER}), found {len(f)}{tail}", path=where,
                            line=lineno)
        for j in (0, 1, 2):
            if not _INT.match(f[j].strip()):
                raise DataError(f"non-integer value {f[j]!r} in column {j + 1}{tail}", path=where, line=lineno)
        for j in (3, 4, 5):
            try:
                float(f[j])
            except ValueError:
                raise DataError(f"non-numeric value {f[j]!r} in column {j + 1}{tail}", path=where, line=lineno) from None


def _check_header(line: str, where: str) -> None:
    if line.strip() != HEADER:
        raise DataError(f"expected the header {HEADER!r}, found {line.strip()!r}", path=where, line=1)


def parse_csv(data: bytes, where: str) -> np.ndarray:
    """A HHAR csv as a structured array (fields index, arrival, creation, x, y, z, user, model, device,
    gt). :class:`DataError` names the line of a wrong field count, a non-numeric or non-finite value,
    an unknown user or activity, or a last line without its newline (truncated copy)."""
    a = parse_headed_csv(data, where, check_header=_check_header, dtype=_DTYPE,
                         diagnose=_diagnose, finite=("x", "y", "z"))
    bad = np.nonzero(~np.isin(a["user"], list(USERS)))[0]
    if bad.size:
        raise DataError(f"unknown User {str(a['user'][bad[0]])!r} (the documentation names users a-i)", path=where,
                        line=int(bad[0]) + 2)
    bad = np.nonzero(~np.isin(a["gt"], GT + [NULL]))[0]
    if bad.size:
        raise DataError(f"unknown activity gt={str(a['gt'][bad[0]])!r} (expected one of {GT + [NULL]})", path=where,
                        line=int(bad[0]) + 2)
    require_final_newline(data, where)
    return a


def _open(root, target: str):
    def has(f):
        return f.endswith("/" + target) or f == target or f.endswith(INNER_ZIP)

    src = open_matching(root, has, lambda m: m.endswith(target) or m.endswith(INNER_ZIP))
    hits = [f for f in src.files if f == target or f.endswith("/" + target)]
    if not hits:
        inner = [f for f in src.files if f.endswith(INNER_ZIP)]
        if len(inner) == 1:
            src = ZipSource(None, data=src.read(inner[0]), display=src.where(inner[0]))
            hits = [f for f in src.files if f == target or f.endswith("/" + target)]
    if len(hits) > 1:
        raise DataError(f"several copies of {target}: {hits}", path=src.display)
    if not hits:
        raise missing_copy("HHAR", src.display, f"'Activity recognition exp/{target}'", URL)
    return src, hits[0]


def load_windows(root, *, device: str = "phones", sensor: str = "acc", resample_to: float = 50.0,
                 window: int = 100, step: int = 50, max_gap_s: float = 0.5, subjects=None) -> WindowSet:
    if (device, sensor) not in FILES:
        raise ValueError(f"device must be 'phones' or 'watch' and sensor 'acc' or 'gyro', got {device!r}, {sensor!r}")
    if resample_to is None or resample_to <= 0:
        raise ValueError("HHAR devices sample at different rates: resample_to must be a positive rate in Hz")
    fs = float(resample_to)
    src, rel = _open(root, FILES[(device, sensor)])
    where = src.where(rel)
    a = parse_csv(src.read(rel), where)
    wanted = None if subjects is None else {int(s) for s in subjects}
    cls = {g: i for i, g in enumerate(CLASSES)}
    xs, ys, subs, devs, rates = [], [], [], [], []
    dev_names: list[str] = []
    stats = {"null_rows": int((a["gt"] == NULL).sum()), "duplicate_timestamp_rows": 0, "time_gap_splits": 0,
             "runs": 0, "runs_shorter_than_window": 0}
    subj_all = (np.searchsorted(np.array(list(USERS)), a["user"]) + 1).astype(np.int64)  # a..i -> 1..9
    for (subj, dev) in sorted(set(zip(subj_all.tolist(), a["device"].tolist()))):
        if wanted is not None and subj not in wanted:
            continue
        rows = np.nonzero((subj_all == subj) & (a["device"] == dev))[0]
        rows = rows[np.argsort(a["creation"][rows], kind="stable")]
        t = a["creation"][rows]
        dup = np.concatenate([[False], np.diff(t) == 0])
        stats["duplicate_timestamp_rows"] += int(dup.sum())
        rows, t = rows[~dup], t[~dup]
        gt = a["gt"][rows]
        ts = (t - t[0]).astype(np.float64) * 1e-9
        gap = np.diff(ts) > max_gap_s
        stats["time_gap_splits"] += int(gap.sum())
        cut = np.nonzero(gap | (gt[1:] != gt[:-1]))[0] + 1
        bounds = np.concatenate([[0], cut, [rows.size]])
        if dev not in dev_names:
            dev_names.append(dev)
        for s, e in zip(bounds[:-1], bounds[1:]):
            if gt[s] == NULL:
                continue
            stats["runs"] += 1
            n = e - s
            dur = ts[e - 1] - ts[s]
            if n < 2 or dur <= 0:
                stats["runs_shorter_than_window"] += 1
                continue
            native = int(round((n - 1) / dur))
            if not MIN_RATE <= native <= MAX_RATE:
                raise DataError(f"user {USERS[subj - 1]}, device {dev}: {n} samples over {dur:g} s imply {native} Hz, "
                                f"outside {MIN_RATE}-{MAX_RATE} Hz (is Creation_Time not in nanoseconds?)", path=where)
            grid = ts[s] + np.arange(int(np.floor(dur * native)) + 1) / native
            sig = np.stack([np.interp(grid, ts[s:e], a[c][rows[s:e]]) for c in ("x", "y", "z")])
            sig = resample(sig, native, fs)
            sw = segment_windows(sig.astype(np.float32), [(0, sig.shape[1], cls[str(gt[s])])], window, step)
            stats["runs_shorter_than_window"] += sw.short_segments
            xs.append(sw.x)
            ys.append(sw.y)
            subs.append(np.full(sw.y.shape, subj, np.int64))
            devs.append(np.full(sw.y.shape, dev_names.index(dev), np.int64))
            rates.append(np.full(sw.y.shape, native, np.int64))
    x, y = concat_windows(xs, ys, 3, window)
    if y.size == 0:
        raise DataError(f"no labelled run is as long as one window ({window} samples at {fs:g} Hz)"
                        f"{'' if wanted is None else f' for subjects {sorted(wanted)}'}", path=where)
    unit = "m/s^2" if sensor == "acc" else "rad/s"
    info = {"source": src.display, "file": rel, "device": device, "sensor": sensor, "window": window, "step": step,
            "device_index": np.concatenate(devs), "device_names": dev_names, "native_rate": np.concatenate(rates),
            "max_gap_s": max_gap_s, **stats, "units": unit,
            "label_rule": "segment: windows lie inside one run of one gt of one (user, device)",
            "resampling": "per run: linear interpolation onto a uniform grid at the run's mean rate (whole Hz), "
                          f"then scipy.signal.resample_poly (padtype='line') to {fs:g} Hz",
            "excluded": "gt == 'null' rows (no activity) never enter a window"}
    return WindowSet(x, y, np.concatenate(subs), list(CLASSES), [f"{sensor}_{a}" for a in "xyz"], fs, "hhar", None,
                     info)
