"""Bring your own data: :func:`from_arrays` (windows already cut) and :func:`from_folder` (the
documented folder layout of continuous recordings; see ``docs/data.md``)."""

from __future__ import annotations

import csv
import io
import json
import warnings
from pathlib import Path

import numpy as np

from .dataset import Dataset, WindowSet, build_dataset
from .errors import DataError
from .layout import CHANNELS_LAST_HINT, layout_problem
from ._io import parse_table
from .resample import rescale_index, resample
from .windows import segment_windows

_SPLIT_OPTIONS = ("protocol", "fold", "seed", "fractions", "val_subjects", "val_fraction", "normalize")


def _as_labels(y, classes: list[str], what: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"{what} must be 1-D, got shape {y.shape}")
    if y.dtype.kind in "USO":
        index = {c: i for i, c in enumerate(classes)}
        out = np.empty(y.shape, np.int64)
        for i, v in enumerate(y):
            if v not in index:
                raise DataError(f"{what}[{i}] = {str(v)!r} is not one of the classes {classes}")
            out[i] = index[v]
        return out
    if y.dtype.kind == "f":
        if not np.isfinite(y).all() or (y != np.round(y)).any():
            i = int(np.nonzero(~np.isfinite(y) | (y != np.round(y)))[0][0])
            raise DataError(f"{what}[{i}] = {y[i]!r} is not an integer label")
    elif y.dtype.kind not in "iu":
        raise DataError(f"{what} must hold integers or class names, got dtype {y.dtype}")
    y = y.astype(np.int64)
    bad = np.nonzero((y < 0) | (y >= len(classes)))[0]
    if bad.size:
        raise DataError(f"{what}[{int(bad[0])}] = {int(y[bad[0]])} is outside [0, {len(classes)}) (unknown label)")
    return y


def _check_class_names(classes, where: str | None) -> None:
    if isinstance(classes, str) or not hasattr(classes, "__iter__"):
        raise DataError(f"classes must be a list of names, got {classes!r}", path=where)
    for i, c in enumerate(classes):
        if not str(c).strip():
            raise DataError(f"classes[{i}] is an empty name: every class needs a non-empty name", path=where)


def subject_codes(values, what: str) -> tuple[np.ndarray, list[str] | None]:
    """Integer subject ids as they are; names (strings such as volunteer names) as integer codes ``0..n-1`` in
    sorted name order, with the names (``names[code]``) to keep for reports. Strings that are all integers are
    taken as integer ids."""
    s = np.asarray(values)
    if s.ndim != 1:
        raise DataError(f"{what} must be 1-D, got shape {s.shape}")
    if s.dtype.kind in "iu":
        return s.astype(np.int64), None
    if s.dtype.kind not in "USO":
        raise DataError(f"{what} must hold integer ids or names, got dtype {s.dtype}")
    text = [str(v).strip() for v in s.tolist()]
    for i, t in enumerate(text):
        if not t:
            raise DataError(f"{what}[{i}] is empty (a subject needs an id or a name)")
    try:
        return np.asarray([int(t) for t in text], dtype=np.int64), None
    except ValueError:
        pass
    names = sorted(set(text))
    index = {n: i for i, n in enumerate(names)}
    return np.asarray([index[t] for t in text], dtype=np.int64), names


def _subject_ids(given, names: list[str] | None, what: str) -> tuple[int, ...]:
    """``given`` subjects (ids, or names when the subjects are named) as the codes of :func:`subject_codes`."""
    if names is None:
        return tuple(sorted(int(v) for v in given))
    index = {n: i for i, n in enumerate(names)}
    bad = [str(v) for v in given if str(v).strip() not in index]
    if bad:
        raise DataError(f"{what}: {bad} are not subjects of the data (subjects: {names})")
    return tuple(sorted(index[str(v).strip()] for v in given))


def windowset_from_arrays(x, y, subjects, classes, sample_rate, *, channels=None, test_subjects=None,
                          name: str = "custom") -> WindowSet:
    _check_class_names(classes, None)
    classes = [str(c) for c in classes]
    if not classes or len(set(classes)) != len(classes):
        raise DataError(f"classes must be non-empty and unique, got {classes}")
    x = np.asarray(x)
    if x.ndim != 3:
        raise DataError(f"x must be (N, channels, time), got shape {x.shape}")
    if channels is not None:
        problem = layout_problem(x.shape[1:], len(list(channels)), what="x", expected="the channel names give")
        if problem is not None and "channels-last" in problem:
            raise DataError(problem)
    elif sample_rate is not None and x.shape[1] > x.shape[2]:
        # more channels than samples is no IMU window (feature vectors come with sample_rate=None)
        warnings.warn(f"from_arrays: x has windows of shape {x.shape[1:]}: {x.shape[1]} channels of "
                      f"{x.shape[2]} samples each; if that is (time, channels), it {CHANNELS_LAST_HINT} "
                      "(or pass channels=[...] to have it checked)", UserWarning, stacklevel=3)
    if x.dtype.kind not in "fiu":
        raise DataError(f"x must be numeric, got dtype {x.dtype}")
    finite = np.isfinite(x)
    if not finite.all():
        n, c, t = (int(v) for v in np.argwhere(~finite)[0])
        raise DataError(f"x[{n}, {c}, {t}] is not finite (NaN or infinity)")
    y = _as_labels(y, classes, "y")
    s, subject_names = subject_codes(subjects, "subjects")
    if not (x.shape[0] == y.shape[0] == s.shape[0]):
        raise DataError(f"x, y and subjects disagree on N: {x.shape[0]}, {y.shape[0]}, {s.shape[0]}")
    if sample_rate is not None and not sample_rate > 0:
        raise DataError(f"sample_rate must be positive (or None for feature vectors), got {sample_rate}")
    if channels is None:
        channels = [f"ch{i}" for i in range(x.shape[1])]
    channels = [str(c) for c in channels]
    if len(channels) != x.shape[1]:
        raise DataError(f"{len(channels)} channel names for {x.shape[1]} channels")
    if test_subjects is not None:
        test_subjects = _subject_ids(test_subjects, subject_names, "test_subjects")
        absent = sorted(set(test_subjects) - set(s.tolist()))
        if absent:
            raise DataError(f"test_subjects {absent} have no windows")
    return WindowSet(x.astype(np.float32, copy=False), y, s.astype(np.int64), classes, channels,
                     None if sample_rate is None else float(sample_rate), name, test_subjects,
                     {"source": "arrays", "label_rule": "given per window",
                      **({"subject_names": subject_names} if subject_names is not None else {})})


def from_arrays(x, y, subjects, classes, sample_rate, *, channels=None, test_subjects=None, name: str = "custom",
                **split_options) -> Dataset:
    """A :class:`Dataset` from windows you already have.

    ``x`` ``(N, channels, time)``; ``y`` integer labels in ``[0, len(classes))`` or class names;
    ``subjects`` integer ids; ``test_subjects`` (optional) defines the ``"fixed"`` protocol. Split
    options as in :func:`harcore.data.load` (``protocol``, ``fold``, ``seed``, ``fractions``,
    ``val_subjects``, ``val_fraction``, ``normalize``).
    """
    ws = windowset_from_arrays(x, y, subjects, classes, sample_rate, channels=channels,
                               test_subjects=test_subjects, name=name)
    return build_dataset(ws, **split_options)


def _read_csv_rows(path: Path) -> list[list[str]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise DataError(f"cannot read: {e}", path=str(path)) from e
    except UnicodeDecodeError as e:
        raise DataError(f"not UTF-8 text: {e}", path=str(path)) from e
    return list(csv.reader(io.StringIO(text)))


#: dataset.json's fields (docs/data.md); ``units`` and ``description`` are informational (kept in ``info``).
META_FIELDS = ("sample_rate", "classes", "channels", "window", "step", "test_subjects", "name", "units",
               "description")


def _check_meta(meta: dict, where: str) -> None:
    """dataset.json's fields have the documented types; an unknown field (a typo of an optional one would
    otherwise be ignored without a word) draws a warning."""
    def number(key: str, integer: bool) -> None:
        v = meta.get(key)
        ok = isinstance(v, int) if integer else isinstance(v, (int, float))
        if v is None or isinstance(v, bool) or not ok or not v > 0:
            kind = "a positive integer (samples)" if integer else "a positive number (Hz)"
            raise DataError(f"field {key!r} must be {kind}, got {v!r}", path=where)

    number("sample_rate", False)
    for key in ("window", "step"):
        if key in meta:
            number(key, True)
    for key in ("classes", "channels"):
        if key in meta:
            v = meta[key]
            if not isinstance(v, list) or not v or not all(isinstance(c, str) and c.strip() for c in v):
                raise DataError(f"field {key!r} must be a non-empty list of non-empty names, got {v!r}", path=where)
            if len(set(v)) != len(v):
                dup = sorted({c for c in v if v.count(c) > 1})
                raise DataError(f"field {key!r} names {dup} more than once", path=where)
    if "name" in meta and not (isinstance(meta["name"], str) and meta["name"].strip()):
        raise DataError(f"field 'name' must be a non-empty string, got {meta['name']!r}", path=where)
    unknown = sorted(set(meta) - set(META_FIELDS))
    if unknown:
        warnings.warn(f"{where}: unknown field(s) {unknown} are ignored (known: {', '.join(META_FIELDS)})",
                      UserWarning, stacklevel=4)


def folder_windowset(path, *, window: int | None = None, step: int | None = None,
                     resample_to: float | None = None) -> WindowSet:
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DataError("not a folder (a custom dataset is a folder with dataset.json, labels.csv and "
                        "recordings/; docs/data.md)", path=str(root))
    meta_path = root / "dataset.json"
    if not meta_path.is_file():
        raise DataError("missing dataset.json (needs at least {\"sample_rate\": <Hz>})", path=str(meta_path))
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"invalid JSON: {e.msg}", path=str(meta_path), line=e.lineno) from e
    if not isinstance(meta, dict) or "sample_rate" not in meta:
        raise DataError("dataset.json must be an object with a 'sample_rate'", path=str(meta_path))
    _check_meta(meta, str(meta_path))
    fs0 = float(meta["sample_rate"])
    window = int(window if window is not None else meta.get("window", 128))
    step = int(step if step is not None else meta.get("step", max(1, window // 2)))
    lab_path = root / "labels.csv"
    if not lab_path.is_file():
        raise DataError("missing labels.csv", path=str(lab_path))
    rows = _read_csv_rows(lab_path)
    header = [h.strip() for h in rows[0]] if rows else []
    need = ["recording", "subject", "start", "end", "label"]
    if header != need:
        raise DataError(f"header must be {','.join(need)}, found {','.join(header)}", path=str(lab_path), line=1)
    classes = meta.get("classes")
    if classes is None:
        classes = sorted({r[4].strip() for r in rows[1:] if len(r) == 5} - {""})
    classes = [str(c) for c in classes]
    cls_index = {c: i for i, c in enumerate(classes)}
    rec_dir = root / "recordings"
    segs: dict[str, list[tuple[int, int, int, int]]] = {}
    rec_subject: dict[str, tuple[str, int]] = {}
    for lineno, r in enumerate(rows[1:], start=2):
        if not r or all(not v.strip() for v in r):
            raise DataError("blank line", path=str(lab_path), line=lineno)
        if len(r) != 5:
            raise DataError(f"expected 5 columns, found {len(r)}", path=str(lab_path), line=lineno)
        rec, subj, start, end, lab = (v.strip() for v in r)
        if not subj:
            raise DataError("empty subject (an integer id or a name)", path=str(lab_path), line=lineno)
        try:
            start_i, end_i = int(start), int(end)
        except ValueError:
            raise DataError(f"start and end must be integers, found {start!r}, {end!r}",
                            path=str(lab_path), line=lineno) from None
        if not lab:
            raise DataError("empty label (column 'label'): every segment needs a class name; drop the row or "
                            "name its activity", path=str(lab_path), line=lineno)
        try:  # an integer id is compared as a number ("01" is subject 1), a name as text
            subj_i = str(int(subj))
        except ValueError:
            subj_i = subj
        if lab not in cls_index:
            raise DataError(f"unknown label {lab!r} (classes: {classes})", path=str(lab_path), line=lineno)
        if not 0 <= start_i < end_i:
            raise DataError(f"bad segment [{start_i}, {end_i}) (0-based, end exclusive, start < end)",
                            path=str(lab_path), line=lineno)
        if not (rec_dir / f"{rec}.csv").is_file():
            raise DataError(f"refers to recording {rec!r}, but recordings/{rec}.csv does not exist",
                            path=str(lab_path), line=lineno)
        if rec in rec_subject and rec_subject[rec][0] != subj_i:
            raise DataError(f"recording {rec!r} was given subject {rec_subject[rec][0]} on line {rec_subject[rec][1]}",
                            path=str(lab_path), line=lineno)
        rec_subject.setdefault(rec, (subj_i, lineno))
        segs.setdefault(rec, []).append((start_i, end_i, cls_index[lab], lineno))
    if not segs:
        raise DataError("no labelled segments", path=str(lab_path))
    unlabelled = sorted(p.stem for p in rec_dir.glob("*.csv") if p.stem not in segs)
    if unlabelled:
        raise DataError(f"recordings without any row in labels.csv: {unlabelled} (label them or remove them)",
                        path=str(lab_path))
    recs_sorted = sorted(segs)
    codes, subject_names = subject_codes([rec_subject[r][0] for r in recs_sorted], "labels.csv subjects")
    rec_code = dict(zip(recs_sorted, codes.tolist()))
    channels = meta.get("channels")
    fs = fs0 if resample_to is None else float(resample_to)
    xs, ys, ss, recs, starts = [], [], [], [], []
    short = 0
    for rec in sorted(segs):
        rp = rec_dir / f"{rec}.csv"
        data = rp.read_bytes()
        if not data.strip():
            raise DataError("empty file: a recording is a header line naming the channels (e.g. acc_x,acc_y,acc_z) "
                            "and then one row of numbers per sample (docs/data.md)", path=str(rp))
        head, _, body = data.partition(b"\n")
        first = head.decode("utf-8-sig", "replace").strip()
        cols = [c.strip() for c in first.split(",")]
        if not body.strip():
            raise DataError(f"only a header line ({first!r}), no samples: after the header comes one row of "
                            "numbers per sample (docs/data.md)", path=str(rp))
        if any(not c for c in cols):
            raise DataError(f"header {first!r} has an empty channel name: the first line names every column "
                            "(e.g. acc_x,acc_y,acc_z)", path=str(rp), line=1)
        if len(set(cols)) != len(cols):
            dup = sorted({c for c in cols if cols.count(c) > 1})
            raise DataError(f"header {first!r} names channel(s) {dup} more than once", path=str(rp), line=1)
        if channels is None:
            channels = cols
        if cols != list(channels):
            raise DataError(f"header {cols} differs from the channels {list(channels)}", path=str(rp), line=1)
        sig = parse_table(data, str(rp), ncols=len(cols), delimiter=",", skip_header=True).T
        ordered = sorted(segs[rec])
        for (s0, e0, _, l0), (s1, _e, _, l1) in zip(ordered, ordered[1:]):
            if s1 < e0:
                raise DataError(f"segment overlaps the one on line {l0} (recording {rec!r})", path=str(lab_path), line=l1)
        for s, e, _, line in ordered:
            if e > sig.shape[1]:
                raise DataError(f"segment end {e} lies beyond recordings/{rec}.csv ({sig.shape[1]} samples)",
                                path=str(lab_path), line=line)
        keep = [(s, e, c) for s, e, c, _ in ordered]
        if resample_to is not None:
            sig = resample(sig, fs0, fs)
            keep = [(rescale_index(s, fs0, fs), min(rescale_index(e, fs0, fs), sig.shape[1]), c) for s, e, c in keep]
        sw = segment_windows(sig.astype(np.float32), keep, window, step)
        short += sw.short_segments
        xs.append(sw.x)
        ys.append(sw.y)
        ss.append(np.full(sw.y.shape, rec_code[rec], np.int64))
        recs.extend([rec] * sw.y.size)
        starts.append(sw.start)
    test = meta.get("test_subjects")
    if test is not None:
        try:
            test = _subject_ids(test, subject_names, "test_subjects")
        except DataError as e:
            raise DataError(e.reason, path=str(meta_path)) from None
    info = {"source": str(root), "window": window, "step": step, "recording": np.asarray(recs),
            **{k: meta[k] for k in ("units", "description") if k in meta},
            "start": np.concatenate(starts), "segments_shorter_than_window": short,
            "label_rule": "segment: windows lie inside one labels.csv segment and carry its label",
            **({"subject_names": subject_names} if subject_names is not None else {})}
    counts = np.bincount(np.concatenate(ys), minlength=len(classes))
    if (counts == 0).any():
        empty = [classes[i] for i in np.nonzero(counts == 0)[0]]
        warnings.warn(f"{lab_path}: class(es) {empty} have no window (no segment, or segments shorter than the "
                      f"window of {window} samples)", UserWarning, stacklevel=3)
    ws = WindowSet(np.concatenate(xs), np.concatenate(ys), np.concatenate(ss), classes, list(channels), fs,
                   str(meta.get("name", root.name)), test, info)
    return ws


def from_folder(path, **options) -> Dataset:
    """A :class:`Dataset` from a folder in harcore's layout (``dataset.json``, ``labels.csv``,
    ``recordings/<name>.csv``; see ``docs/data.md``). Options: ``window``, ``step``,
    ``resample_to``, and the split options of :func:`harcore.data.load`."""
    split_opts = {k: options.pop(k) for k in list(options) if k in _SPLIT_OPTIONS}
    ws = folder_windowset(path, **options)
    return build_dataset(ws, **split_opts)
