"""MobiAct v2.0 (Vavoulas et al., ICT4AWE 2016; Chatzaki et al. 2017; BMI lab, TEI of Crete).

Reads the release's *annotated* data:
``MobiAct_Dataset_v2.0/Annotated Data/<CODE>/<CODE>_<subject>_<trial>_annotated.csv`` (``Annotated_Data``
is accepted too; any folders between ``Annotated Data`` and the file are allowed, e.g. a ``scenarios/``
level). Every file is comma-separated with the header
``timestamp,rel_time,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z,azimuth,pitch,roll,label``: the sensor
timestamp (ns), the time since the recording began (s), acceleration including gravity (m/s²), rate
of turn (rad/s), orientation (degrees) and the per-sample activity code. The acceleration, gyroscope
and orientation streams of the raw release are already merged on one time axis in these files.

``variant="raw"`` reads the raw accelerometer files instead, ``<CODE>_acc_<subject>_<trial>.txt`` in any
folder (v2.0's raw data; MobiAct v1, which has no annotated data, keeps them as
``sub<N>/ADL/<CODE>/``): a ``#`` header (sensor, ``#timestamp(ns),x,y,z(m/s^2)``, activity, subject)
ending with an ``@DATA`` line, then ``timestamp, x, y, z`` per sample. A raw file has no per-sample labels,
so only the 11 ADL files are read, each as one activity (its code); fall, lying and scenario files are
skipped and counted in ``info["files_skipped"]``; only ``sensors=("acc",)`` (the gyroscope and orientation
files have their own clocks).

Activity codes (the release's Readme): ADLs ``STD`` standing, ``WAL`` walking, ``JOG`` jogging,
``JUM`` jumping, ``STU`` stairs up, ``STN`` stairs down, ``SCH`` stand to sit, ``SIT`` sitting on a
chair, ``CHU`` sit to stand, ``CSI`` car step in, ``CSO`` car step out; ``LYI`` lying (after a fall);
falls ``FOL`` forward-lying, ``FKL`` front-knees-lying, ``BSC`` back-sitting-chair, ``SDL``
sideward-lying. Scenario recordings (``SLH``, ``SBW``, ``SLW``, ``SBE``, ``SRH``) carry ADL labels
sample by sample and are read only with ``scenarios=True``.

``activities="adl"`` (default) gives the 11 ADL classes (the ZCP paper's 11 activities); ``"all"``
adds ``LYI`` and the four falls (16). Samples whose label is not a selected class never enter a
window (counted per code in ``info["excluded_samples"]``). The phone samples irregularly, so each
file is cut into runs (one label, no time step above ``max_gap_s``), each run interpolated onto a
uniform grid at its mean rate and resampled to ``resample_to`` (default 50 Hz); windows (default 100
samples = 2 s, step 50) lie inside a run. Subjects are the numbers in the file names. No fixed split.
The release is distributed on request as a ``.rar``; harcore reads the extracted folder or a
``.zip``/``.tar.*`` of it.
"""

from __future__ import annotations

import re

import numpy as np

from .._io import open_matching, parse_table
from ..dataset import WindowSet
from ..errors import DataError
from ..windows import segment_windows
from ._formats import (concat_windows, int_set, missing_copy, name_tuple, parse_headed_csv, require_final_newline,
                       uniform_run)

HEADER = ["timestamp", "rel_time", "acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z", "azimuth", "pitch",
          "roll", "label"]
ADL = {"STD": "standing", "WAL": "walking", "JOG": "jogging", "JUM": "jumping", "STU": "stairs_up",
       "STN": "stairs_down", "SCH": "stand_to_sit", "SIT": "sitting", "CHU": "sit_to_stand",
       "CSI": "car_step_in", "CSO": "car_step_out"}
LYING = {"LYI": "lying"}
FALLS = {"FOL": "fall_forward_lying", "FKL": "fall_front_knees_lying", "BSC": "fall_back_sitting_chair",
         "SDL": "fall_sideward_lying"}
SCENARIOS = ("SLH", "SBW", "SLW", "SBE", "SRH")
LABELS = {**ADL, **LYING, **FALLS}
SENSORS = {"acc": ["acc_x", "acc_y", "acc_z"], "gyro": ["gyro_x", "gyro_y", "gyro_z"],
           "ori": ["azimuth", "pitch", "roll"]}
URL = "https://bmi.hmu.gr/the-mobifall-and-mobiact-datasets-2/ (on request)"
_FILE = re.compile(r"(?:^|/)Annotated[ _]Data/(?:[^/]+/)*([A-Za-z]{3})_(\d+)_(\d+)_annotated\.csv$")
_RAW = re.compile(r"(?:^|/)([A-Za-z]{3})_acc_(\d+)_(\d+)\.txt$")
_DTYPE = [(h, "f8") for h in HEADER[:-1]] + [("label", "U16")]


def _diagnose(lines: list[str], ends_nl: bool, where: str) -> None:
    for i, line in enumerate(lines):
        lineno = i + 2
        tail = " (the file ends here without a newline: truncated?)" if i == len(lines) - 1 and not ends_nl else ""
        f = line.split(",")
        if len(f) != len(HEADER):
            raise DataError(f"expected {len(HEADER)} comma-separated fields ({','.join(HEADER)}), found {len(f)}{tail}",
                            path=where, line=lineno)
        for j in range(len(HEADER) - 1):
            try:
                float(f[j])
            except ValueError:
                raise DataError(f"non-numeric value {f[j]!r} in column {HEADER[j]}{tail}", path=where,
                                line=lineno) from None


def _check_header(line: str, where: str) -> None:
    header = [h.strip() for h in line.split(",")]
    if header != HEADER:
        missing = [h for h in HEADER if h not in header]
        raise DataError(f"expected the header {','.join(HEADER)}, found {','.join(header)}"
                        + (f" (missing column(s) {', '.join(missing)})" if missing else ""), path=where, line=1)


def parse_annotated(data: bytes, where: str) -> np.ndarray:
    """One ``*_annotated.csv`` as a structured array (fields :data:`HEADER`). :class:`DataError` names
    the file and line of a wrong header or field count, a non-numeric or non-finite value, an unknown
    activity label, time going backwards, or a last line without its newline (a truncated copy)."""
    a = parse_headed_csv(data, where, check_header=_check_header, dtype=_DTYPE,
                         diagnose=_diagnose, finite=tuple(HEADER[:-1]))
    lab = np.char.strip(a["label"])
    bad = np.nonzero(~np.isin(lab, list(LABELS)))[0]
    if bad.size:
        raise DataError(f"unknown activity label {str(lab[bad[0]])!r} (the release's codes are {list(LABELS)})",
                        path=where, line=int(bad[0]) + 2)
    a["label"] = lab
    back = np.nonzero(np.diff(a["rel_time"]) < 0)[0]
    if back.size:
        raise DataError(f"rel_time goes backwards ({a['rel_time'][back[0]]:g} s, then "
                        f"{a['rel_time'][back[0] + 1]:g} s)", path=where, line=int(back[0]) + 3)
    require_final_newline(data, where)
    return a


def parse_raw(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray, int]:
    """One raw ``<CODE>_acc_<subject>_<trial>.txt``: ``(timestamp_ns, xyz (3, n), first data line)``. The
    ``#`` header ends at the ``@DATA`` line; then ``timestamp, x, y, z`` per line. :class:`DataError` names
    the file and line of a missing ``@DATA``, a wrong column count, a non-numeric or non-finite value, a
    last line without its newline (a truncated copy)."""
    text = data.decode("latin-1").replace("\r\n", "\n")
    lines = text.split("\n")
    at = next((i for i, line in enumerate(lines) if line.strip() == "@DATA"), None)
    if at is None:
        raise DataError("no '@DATA' line (the raw files' header ends with it)", path=where)
    for i in range(at):
        if lines[i].strip() and not lines[i].lstrip().startswith("#"):
            raise DataError(f"header line {lines[i][:40]!r} does not start with '#' (before @DATA)", path=where,
                            line=i + 1)
    body = "\n".join(lines[at + 1:]).encode("latin-1")
    try:
        a = parse_table(body, where, ncols=4, delimiter=",", require_final_newline=True)
    except DataError as e:
        raise DataError(e.reason, path=where, line=None if e.line is None else e.line + at + 1) from None
    return a[:, 0], a[:, 1:].T, at + 2


def load_windows(root, *, variant: str = "annotated", activities: str = "adl", sensors=None,
                 resample_to: float = 50.0, window: int = 100, step: int = 50, max_gap_s: float = 0.5,
                 scenarios: bool = False, subjects=None) -> WindowSet:
    if variant not in ("annotated", "raw"):
        raise ValueError(f"variant must be 'annotated' (v2.0's Annotated Data) or 'raw' (the *_acc_*.txt files), "
                         f"got {variant!r}")
    if activities not in ("adl", "all"):
        raise ValueError(f"activities must be 'adl' (11 ADLs) or 'all' (ADLs, lying and falls), got {activities!r}")
    raw = variant == "raw"
    sensors = (("acc",) if raw else tuple(SENSORS)) if sensors is None else name_tuple(sensors)
    if not sensors or any(s not in SENSORS for s in sensors):
        raise ValueError(f"sensors must be a non-empty subset of {tuple(SENSORS)}, got {sensors}")
    if raw and (sensors != ("acc",) or activities != "adl" or scenarios):
        raise ValueError("variant='raw' reads the accelerometer files of the ADLs only (sensors=('acc',), "
                         "activities='adl', scenarios=False): the raw files carry no per-sample labels (a fall file "
                         "also holds the standing before and the lying after it), and the three sensors have "
                         "independent clocks")
    if resample_to is None or resample_to <= 0:
        raise ValueError("MobiAct samples irregularly: resample_to must be a positive rate in Hz")
    fs = float(resample_to)
    codes = dict(ADL) if activities == "adl" else dict(LABELS)
    cls = {c: i for i, c in enumerate(codes)}
    cols = [c for s in sensors for c in SENSORS[s]]
    wanted = int_set(subjects)
    pattern = _RAW if raw else _FILE

    def want(member: str) -> bool:
        m = pattern.search(member)
        return m is not None and (wanted is None or int(m.group(2)) in wanted)

    src = open_matching(root, lambda f: pattern.search(f) is not None, want)
    recs = {}
    skipped: dict[str, int] = {}
    for f in src.files:
        m = pattern.search(f)
        if not m:
            continue
        code = m.group(1)
        if code not in LABELS and code not in SCENARIOS:
            raise DataError(f"unknown activity code {code!r} in the file name (the release's codes are "
                            f"{list(LABELS) + list(SCENARIOS)})", path=src.where(f))
        if (code in SCENARIOS and not scenarios) or (raw and code not in ADL):
            skipped[code] = skipped.get(code, 0) + 1
            continue
        key = (code, int(m.group(2)), int(m.group(3)))
        if key in recs:
            raise DataError(f"{code} subject {key[1]} trial {key[2]} appears twice ({recs[key]} and {f})",
                            path=src.display)
        recs[key] = f
    if not recs:
        expected = ("'<CODE>_acc_<subject>_<trial>.txt' files of the ADLs" if raw else
                    "'Annotated Data/<CODE>/<CODE>_<subject>_<trial>_annotated.csv' files")
        raise missing_copy("MobiAct", src.display, expected, URL)
    xs, ys, subs, starts, files_of = [], [], [], [], []
    stats = {"runs": 0, "runs_shorter_than_window": 0, "duplicate_timestamp_rows": 0, "time_gap_splits": 0}
    excluded: dict[str, int] = {}
    native_rates = []
    used = []
    for (code, subj, trial), rel in sorted(recs.items(), key=lambda kv: (kv[0][1], kv[0][0], kv[0][2])):
        if wanted is not None and subj not in wanted:
            continue
        where = src.where(rel)
        if raw:
            ts, sig_all, first = parse_raw(src.read(rel), where)
            back = np.nonzero(np.diff(ts) < 0)[0]
            if back.size:
                raise DataError("timestamp goes backwards", path=where, line=int(back[0]) + first + 1)
            t = (ts - ts[0]) * 1e-9
            lab = np.full(t.size, code)
        else:
            a = parse_annotated(src.read(rel), where)
            t, lab, sig_all = a["rel_time"], a["label"], np.stack([a[c] for c in cols])
        dup = np.concatenate([[False], np.diff(t) == 0])
        stats["duplicate_timestamp_rows"] += int(dup.sum())
        t, lab, sig_all = t[~dup], lab[~dup], sig_all[:, ~dup]
        gap = np.diff(t) > max_gap_s
        stats["time_gap_splits"] += int(gap.sum())
        cut = np.nonzero(gap | (lab[1:] != lab[:-1]))[0] + 1
        bounds = np.concatenate([[0], cut, [t.size]])
        used.append(rel)
        for s, e in zip(bounds[:-1], bounds[1:]):
            code_s = str(lab[s])
            if code_s not in cls:
                excluded[code_s] = excluded.get(code_s, 0) + int(e - s)
                continue
            stats["runs"] += 1
            # runs under half a window's duration give no window; they are skipped before the rate check, which
            # a run of two rows around a label change would otherwise fail
            if e - s < 2 or (t[e - 1] - t[s]) * fs < window / 2:
                stats["runs_shorter_than_window"] += 1
                continue
            sig, native = uniform_run(t[s:e], sig_all[:, s:e], fs, where=where,
                                      what=f"a run of {code_s} ({e - s} rows): ")
            native_rates.append(native)
            sw = segment_windows(sig.astype(np.float32), [(0, sig.shape[1], cls[code_s])], window, step)
            stats["runs_shorter_than_window"] += sw.short_segments
            xs.append(sw.x)
            ys.append(sw.y)
            subs.append(np.full(sw.y.shape, subj, np.int64))
            starts.append(sw.start)
            files_of.append(np.full(sw.y.shape, len(used) - 1, np.int64))
    if not used:
        raise DataError(f"no MobiAct recording of subjects {sorted(wanted or [])}", path=src.display)
    x, y = concat_windows(xs, ys, len(cols), window)
    if y.size == 0:
        raise DataError(f"no labelled run is as long as one window ({window} samples at {fs:g} Hz)", path=src.display)
    info = {"source": src.display, "variant": variant, "window": window, "step": step, "activities": activities,
            "codes": list(codes), "files": used, "file_index": np.concatenate(files_of),
            "start": np.concatenate(starts), "native_rates": sorted(set(native_rates)),
            "excluded_samples": excluded, "files_skipped": skipped, "max_gap_s": max_gap_s, **stats,
            "units": "acc m/s^2 (with gravity), gyro rad/s, orientation degrees",
            "label_rule": ("segment: windows lie inside one run of one label of one file" if not raw else
                           "segment: one raw ADL file = one activity (its code); windows lie inside a run"),
            "resampling": "per run: linear interpolation onto a uniform grid at the run's mean rate (whole Hz), "
                          f"then scipy.signal.resample_poly (padtype='line') to {fs:g} Hz",
            "excluded": ("samples whose label is not a selected class (see excluded_samples); files_skipped: "
                         "scenario files without scenarios=True" if not raw else
                         "files_skipped: falls, lying and scenario files (no per-sample labels in the raw data)")}
    return WindowSet(x, y, np.concatenate(subs), list(codes.values()), cols, fs, "mobiact", None, info)
