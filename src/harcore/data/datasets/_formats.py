"""Helpers shared by the PAMAP2, Opportunity, Skoda, UniMiB-SHAR, HHAR, MotionSense and MobiAct loaders:
numeric tables in which ``NaN`` marks a missing value, headed csv files of mixed columns, NaN filling,
windowing of per-sample labels, ``.mat`` reading and the messages for a missing local copy."""

from __future__ import annotations

import io
from typing import Callable

import numpy as np

from .._io import parse_table
from ..errors import DataError
from ..windows import majority_windows, segment_windows, segments_from_labels


def parse_nan_table(data: bytes, where: str, *, ncols: int, delimiter: str | None = None,
                    skip_header: bool = False) -> np.ndarray:
    """A strict numeric table in which ``NaN`` (any case) marks a missing value (kept as NaN), the
    last line ending with its newline (how a copy cut short mid-line shows): see ``parse_table``."""
    return parse_table(data, where, ncols=ncols, delimiter=delimiter, skip_header=skip_header,
                       require_final_newline=True, allow_nan=True)


def parse_headed_csv(data: bytes, where: str, *, check_header: Callable[[str, str], None], dtype: list,
                     diagnose: Callable[[list[str], bool, str], None], finite: tuple[str, ...]) -> np.ndarray:
    """A comma-separated file with one header line and mixed numeric/text columns as a structured array.

    ``check_header(line, where)`` raises for a wrong header; ``diagnose(lines, ends_nl, where)`` is called when
    numpy cannot parse the body and raises a :class:`DataError` naming the first bad line (line 2 is the first
    data row). Also named: a file with no data rows and a non-finite value in a ``finite`` column. A missing final
    newline is the caller's last check (:func:`require_final_newline`), after its own checks of the values, so
    that a bad value on a cut-short last line is named first. A UTF-8 byte-order mark, as some editors write, and
    Windows line ends are accepted."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    text = data.decode("latin-1").replace("\r\n", "\n")
    nl = text.find("\n")
    check_header(text if nl < 0 else text[:nl], where)
    body = "" if nl < 0 else text[nl + 1:]
    ends_nl = body.endswith("\n")
    lines = body.split("\n")
    if ends_nl:
        lines.pop()
    if not lines or not body.strip():
        raise DataError("no data rows after the header line", path=where)
    try:
        a = np.loadtxt(io.StringIO(body), delimiter=",", dtype=dtype, comments=None, ndmin=1)
    except ValueError as e:
        diagnose(lines, ends_nl, where)
        raise DataError(f"unparseable csv ({e})", path=where) from e
    if a.shape[0] != len(lines):
        diagnose(lines, ends_nl, where)
        raise DataError(f"{a.shape[0]} rows parsed from {len(lines)} lines", path=where)
    for name in finite:
        bad = np.nonzero(~np.isfinite(a[name]))[0]
        if bad.size:
            raise DataError(f"non-finite value in column {name}", path=where, line=int(bad[0]) + 2)
    return a


def require_final_newline(data: bytes, where: str) -> None:
    """A csv whose last line lacks its newline is a copy cut short mid-line: name its last line."""
    if data and not data.endswith(b"\n"):
        raise DataError("the file does not end with a newline: truncated copy?", path=where,
                        line=data.count(b"\n") + 1)


def fill_nan_linear(x: np.ndarray, max_gap: int | None,
                    extend_edges: bool = False) -> tuple[np.ndarray, np.ndarray, int]:
    """Fill NaN runs of a ``(C, T)`` signal by linear interpolation along time, per channel.

    Runs longer than ``max_gap`` samples (``None``: no limit) are left NaN; so are runs at either
    end of the signal (nothing to interpolate between), unless ``extend_edges`` (then they take the
    nearest valid value). A channel that is NaN throughout stays NaN. Returns ``(filled, still_nan_per_sample, n_filled)``
    where ``still_nan_per_sample`` is True for samples with a NaN left in any channel."""
    x = np.array(x, dtype=np.float64, copy=True)
    n_filled = 0
    t = np.arange(x.shape[1])
    for c in range(x.shape[0]):
        bad = np.isnan(x[c])
        if not bad.any() or bad.all():
            continue
        good = ~bad
        # runs of NaN
        edges = np.diff(np.concatenate([[0], bad.astype(np.int8), [0]]))
        starts, ends = np.nonzero(edges == 1)[0], np.nonzero(edges == -1)[0]
        fill = np.zeros_like(bad)
        for s, e in zip(starts, ends):
            if (s == 0 or e == x.shape[1]) and not extend_edges:
                continue
            if max_gap is not None and e - s > max_gap:
                continue
            fill[s:e] = True
        if fill.any():
            x[c, fill] = np.interp(t[fill], t[good], x[c, good])
            n_filled += int(fill.sum())
    return x, np.isnan(x).any(axis=0), n_filled


def hold_last(v: np.ndarray) -> np.ndarray:
    """Sample-and-hold: every NaN takes the last non-NaN value before it (leading NaNs stay NaN)."""
    v = np.asarray(v, dtype=np.float64)
    idx = np.where(~np.isnan(v), np.arange(v.size), -1)
    np.maximum.accumulate(idx, out=idx)
    out = np.where(idx >= 0, v[np.maximum(idx, 0)], np.nan)
    return out


def label_windows(x: np.ndarray, lab: np.ndarray, window: int, step: int, label_rule: str):
    """Windows of a ``(C, T)`` float32 signal with per-sample labels (``-1`` = excluded).

    ``"segment"``: windows inside runs of one label; ``"majority"``: windows inside each run of
    non-excluded samples, majority label (ties to the smaller label index). Returns
    ``(x, y, start, short_segments, skipped)``."""
    if label_rule == "segment":
        sw = segment_windows(x, segments_from_labels(lab, 0), window, step)
        return sw.x, sw.y, sw.start, sw.short_segments, 0
    if label_rule != "majority":
        raise ValueError(f"label_rule must be 'segment' or 'majority', got {label_rule!r}")
    xs, ys, st = [], [], []
    skipped = 0
    for s, e, _ in segments_from_labels(np.where(lab >= 0, 0, -1), 0):
        mw = majority_windows(x[:, s:e], lab[s:e], window, step)
        skipped += mw.skipped_excluded
        xs.append(mw.x)
        ys.append(mw.y)
        st.append(mw.start + s)
    if not xs:
        return (np.zeros((0, x.shape[0], window), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64), 0,
                skipped)
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(st), 0, skipped


def concat_windows(xs, ys, n_channels: int, window: int):
    if not xs:
        return np.zeros((0, n_channels, window), np.float32), np.zeros(0, np.int64)
    return np.concatenate(xs).astype(np.float32, copy=False), np.concatenate(ys).astype(np.int64)


def load_mat(data: bytes, where: str) -> dict:
    """A MATLAB ``.mat`` file (v4 to v7.2) via ``scipy.io.loadmat``; a corrupted or truncated file,
    or a v7.3 (HDF5) file, raises :class:`DataError` naming it."""
    from scipy.io import loadmat
    if data[:8] == b"\x89HDF\r\n\x1a\n" or b"MATLAB 7.3" in data[:128]:
        raise DataError("MATLAB v7.3 (HDF5) .mat files are not supported; re-save it with "
                        "save(..., '-v7') in MATLAB or Octave", path=where)
    try:
        return loadmat(io.BytesIO(data))
    except Exception as e:  # scipy raises ValueError, TypeError, OSError, ... on damaged files
        raise DataError(f"corrupted or truncated .mat file ({type(e).__name__}: {e})", path=where) from e


def mat_matrix(mat: dict, name: str, where: str, ncols: int | None = None) -> np.ndarray:
    """Variable ``name`` of a loaded ``.mat`` file as a float64 2-D matrix."""
    if name not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise DataError(f"no variable {name!r} in the .mat file (it holds {found})", path=where)
    a = mat[name]
    if not isinstance(a, np.ndarray) or a.dtype.kind not in "biuf" or a.ndim != 2:
        raise DataError(f"variable {name!r} is not a numeric matrix (type {type(a).__name__}, "
                        f"dtype {getattr(a, 'dtype', None)}, shape {getattr(a, 'shape', None)})", path=where)
    if ncols is not None and a.shape[1] != ncols:
        raise DataError(f"variable {name!r} has {a.shape[1]} columns, expected {ncols}", path=where)
    return a.astype(np.float64)


def missing_copy(dataset: str, where: str, expected: str, source: str) -> DataError:
    """The error for a folder or archive that lacks the dataset's files."""
    return DataError(
        f"no {dataset} copy here: expected {expected}. Put the official distribution (folder or its archive) "
        f"there or pass root=<it>; it is published at {source}. harcore knows no verified SHA-256 of that "
        f"archive, so it does not download it unasked (hd.download(name, sha256=<hash you verified>)).",
        path=where)


def uniform_run(ts: np.ndarray, sig: np.ndarray, target_rate: float, *, min_rate: float = 5.0,
                max_rate: float = 1000.0, where: str = "", what: str = "") -> tuple[np.ndarray, int]:
    """One irregularly sampled run (``ts`` seconds, strictly increasing; ``sig`` ``(C, n)``) at
    ``target_rate`` Hz: linear interpolation onto a uniform grid at the run's mean rate rounded to
    whole Hz, then ``scipy.signal.resample_poly`` (anti-aliased; the signal's linear trend continued past
    its ends, so a run's first and last samples do not ring) to ``target_rate``. Returns the
    signal and the native rate. A rate outside ``[min_rate, max_rate]`` means the time column is not
    in the unit the caller assumed: :class:`DataError` naming ``where``."""
    from ..resample import resample

    n = ts.size
    dur = float(ts[-1] - ts[0])
    native = int(round((n - 1) / dur))
    if not min_rate <= native <= max_rate:
        raise DataError(f"{what}{n} samples over {dur:g} s imply {native} Hz, outside {min_rate:g}-{max_rate:g} Hz "
                        "(is the time column in another unit?)", path=where)
    grid = ts[0] + np.arange(int(np.floor(dur * native)) + 1) / native
    u = np.stack([np.interp(grid, ts, row) for row in sig])
    return resample(u, native, target_rate), native


def name_tuple(value) -> tuple[str, ...]:
    """A sequence option as a tuple of names; a string is comma-separated (``"acc,gyro"``), as the command
    line's ``--dataset-option sensors=acc,gyro`` passes it."""
    if isinstance(value, str):
        return tuple(v.strip() for v in value.split(",") if v.strip())
    return tuple(value)


def int_set(value) -> set[int] | None:
    """A subject selection (``None``: all) as a set of ints; a string is comma-separated, an int one subject."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [v for v in value.split(",") if v.strip()]
    elif isinstance(value, (int, np.integer)):
        value = [value]
    try:
        return {int(v) for v in value}
    except (TypeError, ValueError):
        raise ValueError(f"subjects must be integers, got {value!r}") from None
