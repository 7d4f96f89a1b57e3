"""MotionSense (Malekzadeh et al., IoTDI 2019): iPhone 6s Device Motion data of 24 subjects.

Reads ``A_DeviceMotion_data/<act>_<trial>/sub_<n>.csv`` (also the Kaggle layout with the folder
doubled) and, when present, ``data_subjects_info.csv`` (``code,weight,height,age,gender``; every
``sub_<n>`` must then be one of its codes). Each recording csv has a header and one 50 Hz sample
per line: an unnamed row-index column (0, 1, 2, ...), then ``attitude.roll, attitude.pitch,
attitude.yaw, gravity.x, gravity.y, gravity.z, rotationRate.x, rotationRate.y, rotationRate.z,
userAcceleration.x, userAcceleration.y, userAcceleration.z`` (rad, g, rad/s, g).

Activities (folder prefix): ``dws`` downstairs, ``ups`` upstairs, ``wlk`` walking, ``jog`` jogging,
``sit`` sitting, ``std`` standing; trials 1-9 are the long sessions, 11-16 the short ones. A
recording is one activity of one subject, so windows (default 128 samples, step 64) lie inside a
file and carry its activity; nothing is excluded. ``features`` picks channel groups (default all
four = 12 channels). No fixed split. The full release has 15 trial folders x 24 subjects = 360
files; a partial copy gives a warning and ``info["missing_files"]``.

:func:`download_files` fetches individual files from a base URL you give and keeps each only if its
size and SHA-256 equal those in ``motionsense_sha256.txt`` (the Git LFS pointers of a public copy,
Kaggle layout); files not in that list are refused.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import urllib.request
import warnings
from pathlib import Path

import numpy as np

from .._io import open_matching, parse_table
from ..dataset import WindowSet
from ..errors import DataError
from ..resample import resample
from ..windows import segment_windows
from ._formats import concat_windows, missing_copy

SAMPLE_RATE = 50.0
ACTIVITIES = {"dws": "downstairs", "ups": "upstairs", "wlk": "walking", "jog": "jogging", "sit": "sitting",
              "std": "standing"}
CLASSES = list(ACTIVITIES.values())
TRIALS = {"dws": (1, 2, 11), "ups": (3, 4, 12), "wlk": (7, 8, 15), "jog": (9, 16), "sit": (5, 13), "std": (6, 14)}
FEATURES = {"attitude": ["attitude.roll", "attitude.pitch", "attitude.yaw"],
            "gravity": ["gravity.x", "gravity.y", "gravity.z"],
            "rotationRate": ["rotationRate.x", "rotationRate.y", "rotationRate.z"],
            "userAcceleration": ["userAcceleration.x", "userAcceleration.y", "userAcceleration.z"]}
COLUMNS = [c for g in FEATURES.values() for c in g]
N_SUBJECTS = 24
URL = "https://github.com/mmalekzadeh/motion-sense (data/A_DeviceMotion_data.zip)"
HASH_FILE = Path(__file__).with_name("motionsense_sha256.txt")
_REC = re.compile(r"(?:^|/)A_DeviceMotion_data/([^/]+)/sub_(\d+)\.csv$")
_FOLDER = re.compile(r"^([a-z]{3})_(\d+)$")


def parse_recording(data: bytes, where: str) -> np.ndarray:
    """One ``sub_<n>.csv`` as float64 ``(12, T)`` in :data:`COLUMNS` order."""
    text = data.decode("latin-1").replace("\r\n", "\n")
    header = [h.strip().strip('"') for h in text.split("\n", 1)[0].split(",")]
    has_index = len(header) == len(COLUMNS) + 1 and header[0] in ("", "Unnamed: 0")
    if (header[1:] if has_index else header) != COLUMNS:
        raise DataError(f"unexpected header {header}; expected an index column then {COLUMNS}", path=where, line=1)
    a = parse_table(data, where, ncols=len(header), delimiter=",", require_final_newline=True, skip_header=True)
    if has_index:
        idx = a[:, 0]
        bad = np.nonzero(idx != np.arange(idx.size))[0]
        if bad.size:
            raise DataError(f"row index {idx[bad[0]]:g} where {bad[0]} was expected (a row is missing or out of order)",
                            path=where, line=int(bad[0]) + 2)
        a = a[:, 1:]
    return a.T


def read_subjects_info(data: bytes, where: str) -> dict[int, dict[str, float]]:
    text = data.decode("latin-1").replace("\r\n", "\n")
    header = [h.strip().strip('"') for h in text.split("\n", 1)[0].split(",")]
    if header[-5:] != ["code", "weight", "height", "age", "gender"] or len(header) not in (5, 6):
        raise DataError(f"expected the header code,weight,height,age,gender, found {header}", path=where, line=1)
    a = parse_table(data, where, ncols=len(header), delimiter=",", skip_header=True)[:, -5:]
    out = {}
    for i, row in enumerate(a):
        if row[0] != round(row[0]) or int(row[0]) in out:
            raise DataError(f"bad or duplicate subject code {row[0]:g}", path=where, line=i + 2)
        out[int(row[0])] = dict(zip(("weight", "height", "age", "gender"), map(float, row[1:])))
    return out


def load_windows(root, *, window: int = 128, step: int = 64, features=tuple(FEATURES), trials=None,
                 subjects=None, resample_to: float | None = None) -> WindowSet:
    features = tuple(features)
    if not features or any(f not in FEATURES for f in features):
        raise ValueError(f"features must be a non-empty subset of {tuple(FEATURES)}, got {features}")
    sel = [COLUMNS.index(c) for f in features for c in FEATURES[f]]
    wanted = None if subjects is None else {int(s) for s in subjects}
    trial_set = None if trials is None else {int(t) for t in trials}

    def want(member: str) -> bool:
        if member.endswith("data_subjects_info.csv"):
            return True
        m = _REC.search(member)
        return m is not None and (wanted is None or int(m.group(2)) in wanted)

    src = open_matching(root, lambda f: _REC.search(f) is not None, want)
    recs = {}
    for f in src.files:
        m = _REC.search(f)
        if not m:
            continue
        fm = _FOLDER.match(m.group(1))
        if fm is None or fm.group(1) not in ACTIVITIES:
            raise DataError(f"unknown activity folder {m.group(1)!r} (expected <act>_<trial> with act one of "
                            f"{list(ACTIVITIES)})", path=src.where(f))
        act, trial, subj = fm.group(1), int(fm.group(2)), int(m.group(2))
        if trial not in TRIALS[act]:
            raise DataError(f"unknown trial {m.group(1)!r} (the dataset's {act} trials are {TRIALS[act]})",
                            path=src.where(f))
        key = (act, trial, subj)
        if key in recs:
            raise DataError(f"{m.group(1)}/sub_{subj}.csv appears twice ({recs[key]} and {f})", path=src.display)
        recs[key] = f
    if not recs:
        raise missing_copy("MotionSense", src.display, "A_DeviceMotion_data/<act>_<trial>/sub_<n>.csv files", URL)
    info_files = [f for f in src.files if f.endswith("data_subjects_info.csv")]
    subject_info = None
    if len(info_files) > 1:
        raise DataError(f"several data_subjects_info.csv: {info_files}", path=src.display)
    if info_files:
        subject_info = read_subjects_info(src.read(info_files[0]), src.where(info_files[0]))
        unknown = sorted({s for _, _, s in recs} - set(subject_info))
        if unknown:
            raise DataError(f"recordings of subjects {unknown} that data_subjects_info.csv does not list",
                            path=src.where(info_files[0]))
    expected = {(a, t, s) for a, ts in TRIALS.items() for t in ts for s in range(1, N_SUBJECTS + 1)}
    missing = sorted(f"{a}_{t}/sub_{s}.csv" for a, t, s in expected - set(recs))
    if missing:
        warnings.warn(f"MotionSense copy {src.display} is partial: {len(recs)} of {len(expected)} recordings",
                      UserWarning, stacklevel=3)
    fs = SAMPLE_RATE if resample_to is None else float(resample_to)
    cls = {a: i for i, a in enumerate(ACTIVITIES)}
    xs, ys, subs, trial_of, starts = [], [], [], [], []
    short = 0
    used = []
    for (act, trial, subj), rel in sorted(recs.items()):
        if (wanted is not None and subj not in wanted) or (trial_set is not None and trial not in trial_set):
            continue
        sig = parse_recording(src.read(rel), src.where(rel))[sel]
        if resample_to is not None:
            sig = resample(sig, SAMPLE_RATE, fs)
        sw = segment_windows(sig.astype(np.float32), [(0, sig.shape[1], cls[act])], window, step)
        short += sw.short_segments
        xs.append(sw.x)
        ys.append(sw.y)
        subs.append(np.full(sw.y.shape, subj, np.int64))
        trial_of.append(np.full(sw.y.shape, trial, np.int64))
        starts.append(sw.start)
        used.append(f"{act}_{trial}/sub_{subj}")
    if not xs:
        raise DataError("no MotionSense recordings match the selected subjects/trials", path=src.display)
    x, y = concat_windows(xs, ys, len(sel), window)
    if y.size == 0:
        raise DataError(f"no recording is as long as one window ({window} samples)", path=src.display)
    info = {"source": src.display, "window": window, "step": step, "trial": np.concatenate(trial_of),
            "start": np.concatenate(starts), "recordings": used, "missing_files": missing,
            "recordings_shorter_than_window": short, "subject_info": subject_info,
            "label_rule": "one recording = one activity; windows lie inside a recording",
            "units": "attitude rad, gravity g, rotationRate rad/s, userAcceleration g",
            "excluded": "nothing"}
    return WindowSet(x, y, np.concatenate(subs), list(CLASSES), [COLUMNS[i] for i in sel], fs, "motionsense", None,
                     info)


def expected_hashes(path: str | os.PathLike = HASH_FILE) -> dict[str, tuple[str, int]]:
    """``{relative path: (sha256, size)}`` from the shipped list of the public copy's LFS pointers."""
    out = {}
    for i, line in enumerate(Path(path).read_text().splitlines(), start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        parts = s.split(None, 2)
        if len(parts) != 3 or len(parts[0]) != 64 or not parts[1].isdigit():
            raise DataError(f"expected '<sha256> <size> <path>', found {s!r}", path=str(path), line=i)
        out[parts[2]] = (parts[0].lower(), int(parts[1]))
    return out


def download_files(dest: str | os.PathLike, base_url: str, *, paths=None, table: dict | None = None,
                   timeout: float = 60.0) -> list[Path]:
    """Download MotionSense files ``base_url/<path>`` into ``dest/<path>``, verified one by one.

    ``paths`` (default: every file of the list) must be paths of :func:`expected_hashes` (Kaggle
    layout, e.g. ``A_DeviceMotion_data/A_DeviceMotion_data/dws_1/sub_1.csv``); a path not in the
    list is refused, a file whose size or SHA-256 differs is discarded with :class:`DataError`, and
    a file already in ``dest`` with the right hash is kept without downloading. harcore does not
    know an official per-file URL: ``base_url`` is yours (tests use ``file://``)."""
    table = expected_hashes() if table is None else table
    paths = sorted(table) if paths is None else list(paths)
    unknown = [p for p in paths if p not in table]
    if unknown:
        raise DataError(f"refusing to download {unknown[:3]}{'...' if len(unknown) > 3 else ''}: no verified "
                        "SHA-256 is known for them (see motionsense_sha256.txt)")
    dest = Path(dest)
    out = []
    for p in paths:
        sha, size = table[p]
        target = dest / p
        if target.exists() and target.stat().st_size == size and _sha256(target) == sha:
            out.append(target)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        url = base_url.rstrip("/") + "/" + urllib.request.pathname2url(p)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".download-")
        h, n = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as f, urllib.request.urlopen(url, timeout=timeout) as resp:
                while True:
                    b = resp.read(1 << 20)
                    if not b:
                        break
                    h.update(b)
                    n += len(b)
                    f.write(b)
            if n != size or h.hexdigest() != sha:
                raise DataError(f"{url}: expected {size} bytes with SHA-256 {sha}, got {n} bytes with "
                                f"{h.hexdigest()}; file discarded")
            shutil.move(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        out.append(target)
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()
