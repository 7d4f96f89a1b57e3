"""Daphnet Freezing of Gait (``dataset_fog_release``).

Each ``dataset/SxxRyy.txt`` (subject xx, run yy) has 11 whitespace-separated columns: time (ms),
ankle, thigh and trunk acceleration (forward, vertical, lateral; mg), annotation. 64 Hz.
Annotations (dataset documentation): 0 = not part of the experiment, 1 = experiment, no freeze,
2 = freeze. Samples annotated 0 never enter a window. Classes: 0 ``no_freeze`` (annotation 1),
1 ``freeze`` (annotation 2). All runs of one subject belong to that subject (the documentation:
"all runs of one subject should be combined").

Windowing (default 256 samples = 4 s, step 32 = 0.5 s, the window and step of the freeze-index
detector in Baechlin et al. 2010):

* ``label_rule="segment"`` (default): windows inside runs of one annotation (a window never mixes
  freeze and no-freeze).
* ``label_rule="majority"``: windows inside each experiment span (runs of annotation != 0) may
  straddle freeze onsets and take the majority label (ties -> no_freeze).

The full release has 17 recordings of 10 subjects. The loader reads whatever subset is present
and reports the absent ones in ``info["missing_recordings"]`` and with a warning.
"""

from __future__ import annotations

import re
import warnings

import numpy as np

from .._io import open_matching, parse_table
from ..dataset import WindowSet
from ..errors import DataError
from ..resample import rescale_index, resample
from ..windows import majority_windows, segment_windows, segments_from_labels

SAMPLE_RATE = 64.0
CLASSES = ["no_freeze", "freeze"]
CHANNELS = [f"{pos}_{axis}" for pos in ("ankle", "thigh", "trunk") for axis in ("forward", "vertical", "lateral")]
ALL_RECORDINGS = ("S01R01", "S01R02", "S02R01", "S02R02", "S03R01", "S03R02", "S03R03", "S04R01", "S05R01",
                  "S05R02", "S06R01", "S06R02", "S07R01", "S07R02", "S08R01", "S09R01", "S10R01")
_REC = re.compile(r"(?:^|/)dataset/(S(\d\d)R(\d\d))\.txt$")
MAX_GAP_MS = 100.0  # a time step longer than this splits the recording (no window spans a gap)


def load_windows(root, *, window: int = 256, step: int = 32, label_rule: str = "segment",
                 subjects=None, resample_to: float | None = None) -> WindowSet:
    if label_rule not in ("segment", "majority"):
        raise ValueError(f"label_rule must be 'segment' or 'majority', got {label_rule!r}")
    wanted = None if subjects is None else {int(s) for s in subjects}

    def want(member: str) -> bool:
        m = _REC.search(member)
        return m is not None and (wanted is None or int(m.group(2)) in wanted)

    src = open_matching(root, lambda f: _REC.search(f) is not None, want)
    recs = {}
    for f in src.files:
        m = _REC.search(f)
        if m:
            if m.group(1) in recs:
                raise DataError(f"recording {m.group(1)} appears twice ({recs[m.group(1)]} and {f})", path=src.display)
            recs[m.group(1)] = f
    if not recs:
        raise DataError("no Daphnet recordings (dataset/SxxRyy.txt) found", path=src.display)
    missing = [r for r in ALL_RECORDINGS if r not in recs]
    if missing:
        warnings.warn(f"Daphnet copy {src.display} is partial: {len(recs)} of {len(ALL_RECORDINGS)} recordings; "
                      f"missing {', '.join(missing)}", UserWarning, stacklevel=3)
    fs = SAMPLE_RATE if resample_to is None else float(resample_to)
    xs, ys, subs, runs, starts = [], [], [], [], []
    n_gap_splits = 0
    skipped = short = 0
    for rec in sorted(recs):
        subj = int(rec[1:3])
        if wanted is not None and subj not in wanted:
            continue
        rel = recs[rec]
        where = src.where(rel)
        a = parse_table(src.read(rel), where, ncols=11, require_final_newline=True)
        t, sig, ann = a[:, 0], a[:, 1:10].T, a[:, 10]
        bad = np.nonzero(~np.isin(ann, (0, 1, 2)))[0]
        if bad.size:
            raise DataError(f"unknown annotation {ann[bad[0]]:g} (0, 1 or 2 expected) in column 11",
                            path=where, line=int(bad[0]) + 1)
        dt = np.diff(t)
        nonincr = np.nonzero(dt <= 0)[0]
        if nonincr.size:
            raise DataError(f"time {t[nonincr[0] + 1]:g} ms does not increase (previous {t[nonincr[0]]:g} ms)",
                            path=where, line=int(nonincr[0]) + 2)
        lab = np.where(ann == 0, -1, ann.astype(np.int64) - 1)
        gaps = np.nonzero(dt > MAX_GAP_MS)[0]
        n_gap_splits += gaps.size
        # pieces between time gaps are windowed separately
        cuts = np.concatenate([[0], gaps + 1, [t.size]])
        for p0, p1 in zip(cuts[:-1], cuts[1:]):
            x_p, lab_p = sig[:, p0:p1], lab[p0:p1]
            if resample_to is not None:
                x_p = resample(x_p, SAMPLE_RATE, fs)
                idx = np.clip(np.round(np.arange(x_p.shape[1]) * SAMPLE_RATE / fs).astype(np.int64), 0, lab_p.size - 1)
                lab_p = lab_p[idx]
            if label_rule == "segment":
                sw = segment_windows(x_p.astype(np.float32), segments_from_labels(lab_p, 0), window, step)
                short += sw.short_segments
                xw, yw, st = sw.x, sw.y, sw.start
            else:
                parts = segments_from_labels(np.where(lab_p >= 0, 0, -1), 0)
                xw_l, yw_l, st_l = [], [], []
                for s, e, _ in parts:
                    mw = majority_windows(x_p[:, s:e].astype(np.float32), lab_p[s:e], window, step)
                    skipped += mw.skipped_excluded
                    xw_l.append(mw.x)
                    yw_l.append(mw.y)
                    st_l.append(mw.start + s)
                xw = np.concatenate(xw_l) if xw_l else np.zeros((0, 9, window), np.float32)
                yw = np.concatenate(yw_l) if yw_l else np.zeros(0, np.int64)
                st = np.concatenate(st_l) if st_l else np.zeros(0, np.int64)
            xs.append(xw)
            ys.append(yw)
            subs.append(np.full(yw.shape, subj, np.int64))
            runs.append(np.full(yw.shape, int(rec[4:6]), np.int64))
            starts.append(st + (rescale_index(p0, SAMPLE_RATE, fs)))
    if not xs:
        raise DataError(f"no recordings for subjects {sorted(wanted) if wanted else 'any'}", path=src.display)
    info = {"source": src.display, "window": window, "step": step, "label_rule": label_rule,
            "recordings": sorted(r for r in recs if wanted is None or int(r[1:3]) in wanted),
            "missing_recordings": missing, "run": np.concatenate(runs), "start": np.concatenate(starts),
            "time_gap_splits": n_gap_splits, "segments_shorter_than_window": short,
            "majority_windows_skipped_for_excluded_samples": skipped,
            "units": "mg (milli-g)",
            "excluded": "annotation 0 (not part of the experiment) never enters a window"}
    return WindowSet(np.concatenate(xs), np.concatenate(ys), np.concatenate(subs), list(CLASSES), list(CHANNELS),
                     fs, "daphnet", None, info)
