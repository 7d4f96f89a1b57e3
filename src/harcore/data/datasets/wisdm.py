"""WISDM Activity Prediction v1.1 (``WISDM_ar_v1.1``).

* ``variant="raw"`` (default): ``WISDM_ar_v1.1_raw.txt``, one record per line in the official
  format ``user,activity,timestamp,x,y,z;`` (20 Hz phone accelerometer, m/s^2 where 10 = 1 g).
  Records are taken in file order; a *segment* is a maximal run of consecutive records with the
  same user and activity, and windows (default 200 samples = 10 s, step 100) are cut inside
  segments with the segment's activity as label. No fixed split exists (36 users).
* ``variant="transformed"``: ``WISDM_ar_v1.1_transformed.arff``, the 43 per-window features of
  the original paper (10 s windows); ``x`` is ``(N, 43, 1)`` and ``sample_rate`` is ``None``.
  The ARFF marks missing values ``?`` (XPEAK/YPEAK/ZPEAK in 474 rows of the staged copy):
  ``missing="error"`` (default) raises :class:`DataError` at the first one, ``missing="nan"``
  keeps them as NaN (normalization then ignores them).

The staged project copy is "transformed only": ``WISDM_ar_v1.1_raw.txt`` is absent and the raw
variant says so. The raw parser is tested on files written in the official format.
"""

from __future__ import annotations

import numpy as np

from .._io import open_matching
from ..dataset import WindowSet
from ..errors import DataError
from ..resample import rescale_index, resample
from ..windows import segment_windows

SAMPLE_RATE = 20.0
CLASSES = ["Walking", "Jogging", "Upstairs", "Downstairs", "Sitting", "Standing"]
CHANNELS = ["acc_x", "acc_y", "acc_z"]
RAW_NAME = "WISDM_ar_v1.1_raw.txt"
ARFF_NAME = "WISDM_ar_v1.1_transformed.arff"
RAW_GIT_BLOB_SHA1 = "f448b1ec15898a77f47f49d85e98ae1bde83185c"


def _find(src, name):
    hits = [f for f in src.files if f == name or f.endswith("/" + name)]
    if len(hits) > 1:
        raise DataError(f"several copies of {name}: {hits}", path=src.display)
    return hits[0] if hits else None


def parse_raw(data: bytes, where: str):
    """Parse raw WISDM text. Returns ``(users, labels, timestamps, xyz)``; raises :class:`DataError`
    naming the line for a record without 6 fields, an unknown activity, a non-integer user, or a
    non-numeric or non-finite value. Several ``;``-terminated records on one line are accepted; the
    terminating ``;`` of the last record on a line is optional."""
    text = data.decode("latin-1").replace("\r\n", "\n")
    ends_nl = text.endswith("\n")
    lines = text.split("\n")
    if ends_nl:
        lines.pop()
    cls_index = {c: i for i, c in enumerate(CLASSES)}
    users, labels, ts, vals = [], [], [], []
    for lineno, line in enumerate(lines, start=1):
        s = line.strip()
        if not s:
            raise DataError("blank line", path=where, line=lineno)
        records = s.split(";")
        if records[-1].strip() == "":
            records.pop()
        for rec in records:
            f = [p.strip() for p in rec.split(",")]
            last = lineno == len(lines) and not ends_nl
            tail = " (the file ends here without a newline: truncated?)" if last else ""
            if len(f) != 6:
                raise DataError(f"expected 6 comma-separated fields (user,activity,timestamp,x,y,z), found "
                                f"{len(f)} in {rec.strip()!r}{tail}", path=where, line=lineno)
            try:
                user = int(f[0])
            except ValueError:
                raise DataError(f"non-integer user {f[0]!r}", path=where, line=lineno) from None
            if f[1] not in cls_index:
                raise DataError(f"unknown activity {f[1]!r} (expected one of {CLASSES})", path=where, line=lineno)
            try:
                t = float(f[2])
                xyz = [float(v) for v in f[3:]]
            except ValueError:
                bad = next(v for v in f[2:] if not _is_float(v))
                raise DataError(f"non-numeric value {bad!r}{tail}", path=where, line=lineno) from None
            if not all(np.isfinite(xyz)) or not np.isfinite(t):
                raise DataError("non-finite value (NaN or infinity)", path=where, line=lineno)
            users.append(user)
            labels.append(cls_index[f[1]])
            ts.append(t)
            vals.append(xyz)
    if not users:
        raise DataError("no records", path=where)
    return (np.asarray(users, np.int64), np.asarray(labels, np.int64), np.asarray(ts, np.float64),
            np.asarray(vals, np.float64).T)


def _is_float(v: str) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


def parse_arff(data: bytes, where: str, missing: str = "error"):
    """Parse the WISDM transformed ARFF. Returns ``(feature_names, X (N, F), users, labels, ids)``.

    Quirk of the file: the header declares 45 attributes (UNIQUE_ID, user, 43 features) and no
    class attribute, while every row has 46 values, the last being the activity. Rows with exactly
    one value more than declared are read that way when no class attribute is declared; any other
    width is an error."""
    if missing not in ("error", "nan"):
        raise ValueError(f"missing must be 'error' or 'nan', got {missing!r}")
    text = data.decode("latin-1").replace("\r\n", "\n")
    lines = text.split("\n")
    attrs: list[str] = []
    data_start = None
    for i, line in enumerate(lines, start=1):
        s = line.strip()
        low = s.lower()
        if low.startswith("@attribute"):
            rest = s[len("@attribute"):].strip()
            if rest.startswith('"'):
                name = rest[1:rest.index('"', 1)]
            else:
                name = rest.split()[0]
            attrs.append(name)
        elif low.startswith("@data"):
            data_start = i
            break
    if data_start is None:
        raise DataError("no @data section", path=where)
    if attrs[:2] != ["UNIQUE_ID", "user"]:
        raise DataError(f"expected the first attributes UNIQUE_ID and user, found {attrs[:2]}", path=where)
    has_class = attrs[-1].lower() == "class"
    feat_names = attrs[2:-1] if has_class else attrs[2:]
    width = len(attrs) if has_class else len(attrs) + 1
    cls_index = {c: i for i, c in enumerate(CLASSES)}
    rows, users, labels, ids = [], [], [], []
    n_missing = 0
    for lineno in range(data_start + 1, len(lines) + 1):
        s = lines[lineno - 1].strip()
        if not s or s.startswith("%"):
            continue
        f = [p.strip() for p in s.split(",")]
        if len(f) != width:
            raise DataError(f"expected {width} comma-separated values, found {len(f)}", path=where, line=lineno)
        if f[-1] not in cls_index:
            raise DataError(f"unknown activity {f[-1]!r} (expected one of {CLASSES})", path=where, line=lineno)
        try:
            uid, user = int(f[0]), int(f[1].strip('"'))
        except ValueError:
            raise DataError(f"non-integer UNIQUE_ID or user ({f[0]!r}, {f[1]!r})", path=where, line=lineno) from None
        vals = []
        for j, v in enumerate(f[2:-1]):
            if v == "?":
                if missing == "error":
                    raise DataError(f"missing value '?' for {feat_names[j]} (pass missing='nan' to keep it as NaN)",
                                    path=where, line=lineno)
                n_missing += 1
                vals.append(np.nan)
                continue
            try:
                x = float(v)
            except ValueError:
                raise DataError(f"non-numeric value {v!r} for {feat_names[j]}", path=where, line=lineno) from None
            if not np.isfinite(x):
                raise DataError(f"non-finite value {v!r} for {feat_names[j]}", path=where, line=lineno)
            vals.append(x)
        rows.append(vals)
        users.append(user)
        labels.append(cls_index[f[-1]])
        ids.append(uid)
    if not rows:
        raise DataError("no data rows", path=where)
    return (feat_names, np.asarray(rows, np.float64), np.asarray(users, np.int64), np.asarray(labels, np.int64),
            np.asarray(ids, np.int64), n_missing)


def load_windows(root, *, variant: str = "raw", window: int = 200, step: int = 100,
                 missing: str = "error", resample_to: float | None = None) -> WindowSet:
    if variant not in ("raw", "transformed"):
        raise ValueError(f"unknown WISDM variant {variant!r}; choose 'raw' or 'transformed'")
    target = RAW_NAME if variant == "raw" else ARFF_NAME
    src = open_matching(root, lambda f: f.endswith((RAW_NAME, ARFF_NAME)), lambda m: m.endswith(target))
    rel = _find(src, target)
    if rel is None:
        if variant == "raw":
            other = _find(src, ARFF_NAME)
            hint = (" This copy is transformed-only (it has the ARFF): use variant='transformed' for the 43 features,"
                    f" or obtain {RAW_NAME} (git blob SHA-1 {RAW_GIT_BLOB_SHA1}).") if other else ""
            raise DataError(f"{RAW_NAME} is not in this WISDM copy.{hint}", path=src.display)
        raise DataError(f"{ARFF_NAME} is not in this WISDM copy", path=src.display)
    where = src.where(rel)
    if variant == "transformed":
        names, X, users, labels, ids, n_missing = parse_arff(src.read(rel), where, missing)
        info = {"source": src.display, "variant": variant, "unique_id": ids, "missing_values": n_missing,
                "label_rule": "one ARFF row = one 10 s example with its activity"}
        return WindowSet(X.astype(np.float32)[:, :, None], labels, users, list(CLASSES), names, None, "wisdm",
                         None, info)
    users, labels, _ts, xyz = parse_raw(src.read(rel), where)
    key = users * len(CLASSES) + labels
    change = np.nonzero(np.diff(key) != 0)[0] + 1
    bounds = np.concatenate([[0], change, [key.size]])
    fs = SAMPLE_RATE if resample_to is None else float(resample_to)
    xs, ys, ss, starts = [], [], [], []
    short = 0
    for s, e in zip(bounds[:-1], bounds[1:]):
        seg = xyz[:, s:e]
        if resample_to is not None:
            seg = resample(seg, SAMPLE_RATE, fs)
        sw = segment_windows(seg.astype(np.float32), [(0, seg.shape[1], int(labels[s]))], window, step)
        short += sw.short_segments
        xs.append(sw.x)
        ys.append(sw.y)
        ss.append(np.full(sw.y.shape, users[s], np.int64))
        starts.append(sw.start + rescale_index(int(s), SAMPLE_RATE, fs))
    x = np.concatenate(xs)
    if x.shape[0] == 0:
        raise DataError(f"no segment is as long as one window ({window} samples)", path=where)
    info = {"source": src.display, "variant": variant, "window": window, "step": step, "start": np.concatenate(starts),
            "label_rule": "segment: windows lie inside one run of consecutive records of one user and activity",
            "segments": int(bounds.size - 1), "segments_shorter_than_window": short, "records": int(key.size)}
    return WindowSet(x, np.concatenate(ys), np.concatenate(ss), list(CLASSES), list(CHANNELS), fs, "wisdm", None, info)
