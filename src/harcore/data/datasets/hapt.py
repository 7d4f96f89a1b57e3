"""HAPT v2.1 (Smartphone-Based Recognition of Human Activities and Postural Transitions), from the
raw recordings: UCI-HAR-equivalent 9-channel windows.

Reads ``RawData/acc_expXX_userYY.txt``, ``RawData/gyro_expXX_userYY.txt`` (50 Hz, 3 columns) and
``RawData/labels.txt`` (experiment, user, activity, start, end; 1-based inclusive sample indices),
and ``activity_labels.txt`` for class names. Each experiment goes through
:func:`harcore.data.filters.uci_har_pipeline`; windows (default 128 samples, step 64) are cut inside
each labelled segment (the *segment* rule of :mod:`harcore.data.windows`).

Variants:

* ``"uci9"``: the 6 UCI-HAR activities (postural-transition segments excluded), 9 channels.
* ``"uci9-12class"``: all 12 activities including transitions (this reproduces HAPT's own window
  list, ``Train/y_train.txt`` and ``Test/y_test.txt``, one to one).

The fixed split is UCI-HAR's: test subjects 2, 4, 9, 10, 12, 13, 18, 20, 24.
"""

from __future__ import annotations

import re

import numpy as np

from .._io import open_with_marker, parse_id_names, parse_table
from ..dataset import WindowSet
from ..errors import DataError
from ..filters import UCI_CHANNELS, uci_har_pipeline
from ..resample import rescale_index, resample
from ..windows import segment_windows

SAMPLE_RATE = 50.0
UCI_TEST_SUBJECTS = (2, 4, 9, 10, 12, 13, 18, 20, 24)
VARIANTS = {"uci9": 6, "uci9-12class": 12}
_REC = re.compile(r"(acc|gyro)_exp(\d+)_user(\d+)\.txt$")


def load_windows(root, *, variant: str = "uci9", window: int = 128, step: int = 64,
                 subjects=None, resample_to: float | None = None, zero_phase: bool = True) -> WindowSet:
    if variant not in VARIANTS:
        raise ValueError(f"unknown HAPT variant {variant!r}; choose one of {sorted(VARIANTS)}")
    n_classes = VARIANTS[variant]
    wanted = None if subjects is None else {int(s) for s in subjects}

    def want(member: str) -> bool:
        m = _REC.search(member)
        if m is None:
            return member.endswith(("labels.txt", "activity_labels.txt"))
        return wanted is None or int(m.group(3)) in wanted

    src, pre = open_with_marker(root, "RawData/labels.txt", want)
    lab_path = pre + "RawData/labels.txt"
    act_path = pre + "activity_labels.txt"
    if not src.exists(act_path):
        raise DataError("activity_labels.txt is missing (needed for the class names)", path=src.where(act_path))
    names = parse_id_names(src.read(act_path), src.where(act_path))
    for k in range(1, n_classes + 1):
        if k not in names:
            raise DataError(f"activity id {k} is not defined", path=src.where(act_path))
    classes = [names[k] for k in range(1, n_classes + 1)]
    lab_where = src.where(lab_path)
    labels = parse_table(src.read(lab_path), lab_where, ncols=5, require_final_newline=True)
    if (labels != np.round(labels)).any():
        r = int(np.argwhere(labels != np.round(labels))[0, 0])
        raise DataError("non-integer value", path=lab_where, line=r + 1)
    labels = labels.astype(np.int64)

    # Validate every row before reading any signal.
    segments: dict[tuple[int, int], list[tuple[int, int, int, int]]] = {}
    for i, (exp, user, act, start, end) in enumerate(labels, start=1):
        if act not in names:
            raise DataError(f"unknown activity id {act} (activity_labels.txt defines {sorted(names)})",
                            path=lab_where, line=i)
        if start < 1 or end < start:
            raise DataError(f"bad segment [{start}, {end}] (1-based inclusive, start <= end)", path=lab_where, line=i)
        for kind in ("acc", "gyro"):
            rel = f"{pre}RawData/{kind}_exp{exp:02d}_user{user:02d}.txt"
            if not src.exists(rel):
                raise DataError(f"refers to recording {rel.rsplit('/', 1)[-1]}, which is missing from the copy",
                                path=lab_where, line=i)
        segments.setdefault((int(exp), int(user)), []).append((int(start) - 1, int(end), int(act), i))

    for key, segs in segments.items():
        segs.sort()
        for (s0, e0, _, l0), (s1, _e1, _, l1) in zip(segs, segs[1:]):
            if s1 < e0:
                raise DataError(f"segment overlaps the one on line {l0} (experiment {key[0]})", path=lab_where, line=l1)

    fs = SAMPLE_RATE if resample_to is None else float(resample_to)
    xs, ys, subs, exps, starts = [], [], [], [], []
    short = 0
    for (exp, user), segs in sorted(segments.items()):
        if wanted is not None and user not in wanted:
            continue
        sig = {}
        for kind in ("acc", "gyro"):
            rel = f"{pre}RawData/{kind}_exp{exp:02d}_user{user:02d}.txt"
            sig[kind] = parse_table(src.read(rel), src.where(rel), ncols=3, require_final_newline=True).T
        if sig["acc"].shape != sig["gyro"].shape:
            raise DataError(f"acc has {sig['acc'].shape[1]} samples but gyro has {sig['gyro'].shape[1]}",
                            path=src.where(f"{pre}RawData/gyro_exp{exp:02d}_user{user:02d}.txt"))
        T = sig["acc"].shape[1]
        for s, e, _act, line in segs:
            if e > T:
                raise DataError(f"segment end {e} lies beyond the recording acc/gyro_exp{exp:02d}_user{user:02d}.txt "
                                f"({T} samples)", path=lab_where, line=line)
        x9 = uci_har_pipeline(sig["acc"], sig["gyro"], SAMPLE_RATE, zero_phase=zero_phase)
        keep = [(s, e, act - 1) for s, e, act, _ in segs if act <= n_classes]
        if resample_to is not None:
            x9 = resample(x9, SAMPLE_RATE, fs)
            keep = [(rescale_index(s, SAMPLE_RATE, fs), min(rescale_index(e, SAMPLE_RATE, fs), x9.shape[1]), a)
                    for s, e, a in keep]
        sw = segment_windows(x9.astype(np.float32), keep, window, step)
        short += sw.short_segments
        xs.append(sw.x)
        ys.append(sw.y)
        subs.append(np.full(sw.y.shape, user, np.int64))
        exps.append(np.full(sw.y.shape, exp, np.int64))
        starts.append(sw.start)
    if not xs:
        raise DataError(f"no labelled recordings for subjects {sorted(wanted) if wanted else 'any'}", path=lab_where)
    info = {
        "source": src.display, "variant": variant, "window": window, "step": step,
        "label_rule": "segment: windows lie inside one labels.txt segment and carry its activity",
        "experiment": np.concatenate(exps), "start": np.concatenate(starts),
        "segments_shorter_than_window": short,
        "pipeline": "medfilt(3) + Butterworth(3) low-pass 20 Hz; gravity = Butterworth(3) low-pass 0.3 Hz; "
                    + ("zero-phase (sosfiltfilt)" if zero_phase else "causal (sosfilt)"),
    }
    return WindowSet(np.concatenate(xs), np.concatenate(ys), np.concatenate(subs), classes, list(UCI_CHANNELS),
                     fs, "hapt", UCI_TEST_SUBJECTS, info)
