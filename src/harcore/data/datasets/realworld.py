"""RealWorld HAR (Sztyler & Stuckenschmidt, PerCom 2016; University of Mannheim, ``realworld2016_dataset``).

15 subjects (``proband1``..``proband15``), 8 activities, 7 body positions, one smartphone or watch per
position sampling at about 50 Hz. The release (``realworld2016_dataset.zip``, or its extracted folder)
holds per subject ``proband<N>/data/<sensor>_<activity>_csv.zip``; each such zip holds one csv per
position, ``<Sensor>_<activity>_<position>.csv`` (``acc_``, ``Gyroscope_``, ``MagneticField_`` for the
zips ``acc_``, ``gyr_``, ``mag_``), with the header ``id,attr_time,attr_x,attr_y,attr_z`` (row id,
time in ms, the three axes: m/s², rad/s, µT). harcore reads the zips in place, also zips nested in
them (some subjects' climbing recordings come as ``acc_climbingup_csv.zip`` holding
``acc_climbingup_2_csv.zip`` ...), and csvs that were unzipped into ``proband<N>/`` (a csv found both
unzipped and in its zip is read once if the bytes agree, ``info["duplicate_copies"]``; else
:class:`DataError`). A ``_<k>`` after
the activity in a csv name (``acc_walking_2_chest.csv``) marks recording session k (none: session 1).

Activities: climbingdown, climbingup, jumping, lying, running, sitting, standing, walking.
Positions: chest, forearm, head, shin, thigh, upperarm, waist (``positions`` selects; the ZCP paper
uses :data:`PAPER_POSITIONS`, the five that every subject has for every activity). Sensors: ``"acc"``
(default), ``"gyr"``, ``"mag"``; channels ``<position>_<sensor>_<axis>``.

Alignment: the csvs of one session (all selected positions and sensors) have independent
timestamps. They are linearly interpolated onto one 50 Hz grid (every 20 ms) over the time that all
of them cover; a grid point whose neighbouring samples in any stream lie more than ``max_gap_s``
apart (default 0.5 s) is not used, so no window bridges a gap. ``resample_to`` (default 50 Hz)
resamples each gap-free run with ``scipy.signal.resample_poly``. Windows (default 100 samples =
2 s, step 50) lie inside a run; the label is the session's activity. A session that lacks a
selected position or sensor (the release has two: proband2 climbingup forearm, proband6 jumping
thigh) is left out with a warning and listed in ``info["incomplete_sessions"]``. Rows with a repeated
time are dropped and counted; rows out of time order are put in order and counted. No fixed split.
"""

from __future__ import annotations

import re
import warnings

import numpy as np

from .._io import Source, ZipSource, open_matching, parse_table
from ..dataset import WindowSet
from ..errors import DataError
from ..resample import resample
from ..windows import segment_windows, segments_from_labels
from ._formats import concat_windows, int_set, missing_copy, name_tuple

GRID_RATE = 50.0
ACTIVITIES = ["climbingdown", "climbingup", "jumping", "lying", "running", "sitting", "standing", "walking"]
POSITIONS = ["chest", "forearm", "head", "shin", "thigh", "upperarm", "waist"]
PAPER_POSITIONS = ("head", "chest", "upperarm", "waist", "shin")
SENSORS = {"acc": "acc", "gyr": "Gyroscope", "mag": "MagneticField"}  # zip prefix -> csv prefix
HEADER = ["id", "attr_time", "attr_x", "attr_y", "attr_z"]
URL = "https://sensor.informatik.uni-mannheim.de/#dataset_realworld (realworld2016_dataset.zip)"
_SUBJECT = re.compile(r"(?:^|/)proband(\d+)/")
_ZIP = re.compile(r"^([A-Za-z]+)_([a-z]+?)(?:_(\d+))?_csv\.zip$")
_CSV = re.compile(r"^(acc|Gyroscope|MagneticField)_([a-z]+?)(?:_(\d+))?_([a-z]+)\.csv$")
_CSV_PREFIX = {v: k for k, v in SENSORS.items()}


def parse_csv(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    """One position csv: ``(time_ms, xyz (3, n))``. :class:`DataError` names the file and line of a
    wrong header, a wrong column count, a non-numeric or non-finite value, or a last line without its
    newline (how a copy cut short mid-line shows)."""
    text = data.decode("latin-1")
    header = [h.strip().strip('"') for h in text.split("\n", 1)[0].replace("\r", "").split(",")]
    if header != HEADER:
        missing = [h for h in HEADER if h not in header]
        raise DataError(f"expected the header {','.join(HEADER)}, found {','.join(header)}"
                        + (f" (missing column(s) {', '.join(missing)})" if missing else ""), path=where, line=1)
    a = parse_table(data, where, ncols=len(HEADER), delimiter=",", skip_header=True, require_final_newline=True)
    return a[:, 1], a[:, 2:5].T


def _index(src: Source, sensors: set[str], wanted: set[int] | None):
    """``{(subject, activity, session, sensor, position): (source, member)}`` over the copy, its zips and
    the zips inside those, and the csvs found a second time with the same bytes (an unzipped copy beside
    its zips)."""
    found: dict = {}
    duplicates: list[str] = []

    def add(s: Source, member: str, subj: int, depth: int) -> None:
        base = member.rsplit("/", 1)[-1]
        if base.lower().endswith(".zip"):
            m = _ZIP.match(base)
            if m is None and base.split("_", 1)[0] in sensors:
                raise DataError(f"a {base.split('_', 1)[0]} zip whose name is not "
                                f"{base.split('_', 1)[0]}_<activity>[_<session>]_csv.zip", path=s.where(member))
            if m is None or m.group(1) not in sensors:
                return  # other sensors (gps, lig, mic, ...) and other zips are not read
            if m.group(2) not in ACTIVITIES:
                raise DataError(f"unknown activity {m.group(2)!r} in the zip name (expected one of {ACTIVITIES})",
                                path=s.where(member))
            if depth >= 2:
                raise DataError("zips nested more than two deep", path=s.where(member))
            inner = ZipSource(None, data=s.read(member), display=s.where(member))
            for f in inner.files:
                add(inner, f, subj, depth + 1)
            return
        m = _CSV.match(base)
        if m is None:
            prefix = base.split("_", 1)[0]
            if base.endswith(".csv") and prefix in _CSV_PREFIX and _CSV_PREFIX[prefix] in sensors:
                raise DataError(f"a {prefix} csv whose name is not {prefix}_<activity>[_<session>]_<position>.csv",
                                path=s.where(member))
            return
        sensor = _CSV_PREFIX[m.group(1)]
        if sensor not in sensors:
            return
        act, pos = m.group(2), m.group(4)
        if act not in ACTIVITIES:
            raise DataError(f"unknown activity {act!r} in the file name (expected one of {ACTIVITIES})",
                            path=s.where(member))
        if pos not in POSITIONS:
            raise DataError(f"unknown body position {pos!r} in the file name (expected one of {POSITIONS})",
                            path=s.where(member))
        key = (subj, act, int(m.group(3) or 1), sensor, pos)
        if key in found:
            # a copy unzipped next to its zips holds every csv twice: the same bytes are one recording
            first = found[key]
            if first[0].read(first[1]) != s.read(member):
                raise DataError(f"{base} appears twice with different contents: {first[0].where(first[1])} and "
                                f"{s.where(member)}", path=src.display)
            duplicates.append(s.where(member))
            return
        found[key] = (s, member)

    for f in src.files:
        m = _SUBJECT.search(f)
        if m is None:
            continue
        subj = int(m.group(1))
        if wanted is not None and subj not in wanted:
            continue
        add(src, f, subj, 0)
    return found, duplicates


def _grid_valid(ts: np.ndarray, grid: np.ndarray, max_gap: float) -> np.ndarray:
    """True where a grid time lies on a sample or between two samples at most ``max_gap`` apart."""
    j = np.clip(np.searchsorted(ts, grid), 1, ts.size - 1)
    exact = (ts[j] == grid) | (ts[j - 1] == grid)
    return exact | ((ts[j] - ts[j - 1] <= max_gap) & (ts[j - 1] <= grid) & (grid <= ts[j]))


def load_windows(root, *, positions=tuple(POSITIONS), sensors=("acc",), resample_to: float = 50.0,
                 window: int = 100, step: int = 50, max_gap_s: float = 0.5, subjects=None) -> WindowSet:
    positions, sensors = name_tuple(positions), name_tuple(sensors)
    if not positions or any(p not in POSITIONS for p in positions):
        raise ValueError(f"positions must be a non-empty subset of {POSITIONS}, got {positions}")
    if not sensors or any(s not in SENSORS for s in sensors):
        raise ValueError(f"sensors must be a non-empty subset of {tuple(SENSORS)}, got {sensors}")
    if resample_to is None or resample_to <= 0:
        raise ValueError("resample_to must be a positive rate in Hz")
    fs = float(resample_to)
    wanted = int_set(subjects)

    def is_data(f: str) -> bool:
        base = f.rsplit("/", 1)[-1]
        return _SUBJECT.search(f) is not None and (_ZIP.match(base) is not None or _CSV.match(base) is not None)

    def is_wanted(f: str) -> bool:  # what a tar copy holds in memory: never the sound, GPS or video zips
        base = f.rsplit("/", 1)[-1]
        m = _ZIP.match(base)
        if m is not None:
            return m.group(1) in sensors
        m = _CSV.match(base)
        return m is not None and _CSV_PREFIX[m.group(1)] in sensors and _SUBJECT.search(f) is not None

    src = open_matching(root, is_data, is_wanted)
    found, duplicates = _index(src, set(sensors), wanted)
    if not found:
        raise missing_copy("RealWorld HAR", src.display, "'proband<N>/data/acc_<activity>_csv.zip' (or the csvs "
                           "'acc_<activity>_<position>.csv' in it)", URL)
    streams = [(s, p) for p in positions for s in sensors]
    names = [f"{p}_{s}_{a}" for p in positions for s in sensors for a in "xyz"]
    sessions = sorted({k[:3] for k in found})
    cls = {a: i for i, a in enumerate(ACTIVITIES)}
    max_gap = max_gap_s * 1000.0
    xs, ys, subs, sess_of, starts = [], [], [], [], []
    incomplete, used = [], []
    stats = {"duplicate_time_rows": 0, "unordered_rows": 0, "grid_points_in_gaps": 0, "runs_shorter_than_window": 0}
    for subj, act, sess in sessions:
        missing = [f"{s}/{p}" for s, p in streams if (subj, act, sess, s, p) not in found]
        if missing:
            incomplete.append(f"proband{subj} {act} session {sess}: no {', '.join(missing)}")
            continue
        data = []
        for s, p in streams:
            so, member = found[(subj, act, sess, s, p)]
            where = so.where(member)
            t, v = parse_csv(so.read(member), where)
            if np.any(np.diff(t) < 0):
                order = np.argsort(t, kind="stable")
                stats["unordered_rows"] += int(np.sum(order != np.arange(t.size)))
                t, v = t[order], v[:, order]
            keep = np.concatenate([[True], np.diff(t) > 0])
            stats["duplicate_time_rows"] += int((~keep).sum())
            t, v = t[keep], v[:, keep]
            if t.size < 2:
                raise DataError(f"{t.size} distinct sample time(s): too short to interpolate", path=where)
            data.append((t, v))
        t0 = max(t[0] for t, _ in data)
        t1 = min(t[-1] for t, _ in data)
        if t1 <= t0:
            incomplete.append(f"proband{subj} {act} session {sess}: the positions' recordings do not overlap in time")
            continue
        grid = t0 + np.arange(int(np.floor((t1 - t0) * GRID_RATE / 1000.0)) + 1) * (1000.0 / GRID_RATE)
        valid = np.ones(grid.size, bool)
        sig = np.empty((3 * len(streams), grid.size))
        for i, (t, v) in enumerate(data):
            valid &= _grid_valid(t, grid, max_gap)
            for a in range(3):
                sig[3 * i + a] = np.interp(grid, t, v[a])
        stats["grid_points_in_gaps"] += int((~valid).sum())
        used.append(f"proband{subj}/{act}/{sess}")
        for s, e, _ in segments_from_labels(np.where(valid, 0, -1), 0):
            run = sig[:, s:e] if fs == GRID_RATE else resample(sig[:, s:e], GRID_RATE, fs)
            sw = segment_windows(run.astype(np.float32), [(0, run.shape[1], cls[act])], window, step)
            stats["runs_shorter_than_window"] += sw.short_segments
            xs.append(sw.x)
            ys.append(sw.y)
            subs.append(np.full(sw.y.shape, subj, np.int64))
            sess_of.append(np.full(sw.y.shape, len(used) - 1, np.int64))
            # the first sample of each window on its session's grid (at resample_to)
            starts.append(sw.start + (s if fs == GRID_RATE else int(round(s * fs / GRID_RATE))))
    if incomplete:
        warnings.warn(f"RealWorld copy {src.display}: {len(incomplete)} session(s) left out, lacking a selected "
                      f"position or sensor (info['incomplete_sessions']): {incomplete[:3]}", UserWarning, stacklevel=3)
    x, y = concat_windows(xs, ys, len(names), window)
    if y.size == 0:
        raise DataError(f"no session gives a window of {window} samples at {fs:g} Hz with positions {list(positions)} "
                        f"and sensors {list(sensors)}", path=src.display)
    info = {"source": src.display, "window": window, "step": step, "positions": list(positions),
            "sensors": list(sensors), "sessions": used, "session_index": np.concatenate(sess_of),
            "start": np.concatenate(starts), "incomplete_sessions": incomplete, "duplicate_copies": duplicates,
            "max_gap_s": max_gap_s, **stats,
            "units": "acc m/s^2, gyr rad/s, mag uT",
            "label_rule": "one session = one activity; windows lie inside a gap-free run of the aligned streams",
            "resampling": f"linear interpolation of every stream onto a common {GRID_RATE:g} Hz grid"
                          + ("" if fs == GRID_RATE else
                             f", then scipy.signal.resample_poly (padtype='line') to {fs:g} Hz"),
            "excluded": "grid points inside a time gap of any stream; sessions lacking a selected stream"}
    return WindowSet(x, y, np.concatenate(subs), list(ACTIVITIES), names, fs, "realworld", None, info)
