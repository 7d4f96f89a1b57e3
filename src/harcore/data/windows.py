"""Sliding windows with overlap.

Two labelling rules:

* **segment** (harcore's loaders): windows are cut only inside one labelled segment (a
  ``(start, end, label)`` span, ``end`` exclusive); a segment of ``L`` samples gives
  ``floor((L - window) / step) + 1`` windows, the first at the segment's first sample, and every
  window carries the segment's label. Windows never straddle two labels. Segments shorter than one
  window give no window (they are counted in ``SegmentWindows.short_segments``).
* **majority**: windows slide over a whole span of per-sample labels and take the most frequent
  label; ties go to the smallest label value (``argmax`` of the counts). Windows that contain an
  excluded sample (label < 0) are skipped and counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def window_starts(length: int, window: int, step: int) -> np.ndarray:
    """Start indices of the windows of ``window`` samples every ``step`` samples in ``length``."""
    check_window(window, step)
    if length < window:
        return np.zeros(0, dtype=np.int64)
    return np.arange(0, length - window + 1, step, dtype=np.int64)


def check_window(window: int, step: int) -> None:
    if int(window) != window or window < 1:
        raise ValueError(f"window must be a positive integer number of samples, got {window}")
    if int(step) != step or step < 1:
        raise ValueError(f"step must be a positive integer number of samples, got {step}")


def sliding_windows(x: np.ndarray, window: int, step: int) -> np.ndarray:
    """All windows of a ``(C, T)`` signal as ``(N, C, window)`` (a copy)."""
    x = np.asarray(x)
    starts = window_starts(x.shape[-1], window, step)
    idx = starts[:, None] + np.arange(window)[None, :]
    return np.ascontiguousarray(np.moveaxis(x[:, idx], 1, 0))


@dataclass
class SegmentWindows:
    x: np.ndarray          # (N, C, window)
    y: np.ndarray          # (N,) the segment labels
    start: np.ndarray      # (N,) first sample of each window in the signal
    segment: np.ndarray    # (N,) index of the segment each window came from
    short_segments: int    # segments shorter than one window (no window from them)


def segments_from_labels(labels: np.ndarray, exclude_below: int = 0) -> list[tuple[int, int, int]]:
    """Maximal runs of equal per-sample labels as ``(start, end, label)``; runs with a label below
    ``exclude_below`` (e.g. -1 = unlabelled) are left out."""
    labels = np.asarray(labels)
    if labels.size == 0:
        return []
    change = np.nonzero(np.diff(labels) != 0)[0] + 1
    bounds = np.concatenate([[0], change, [labels.size]])
    out = []
    for s, e in zip(bounds[:-1], bounds[1:]):
        lab = int(labels[s])
        if lab >= exclude_below:
            out.append((int(s), int(e), lab))
    return out


def segment_windows(x: np.ndarray, segments, window: int, step: int) -> SegmentWindows:
    """Windows of a ``(C, T)`` signal cut inside each ``(start, end, label)`` segment."""
    check_window(window, step)
    x = np.asarray(x)
    starts, labels, segs = [], [], []
    short = 0
    for k, (s, e, lab) in enumerate(segments):
        if not 0 <= s <= e <= x.shape[-1]:
            raise ValueError(f"segment {k} ({s}, {e}) lies outside the signal of {x.shape[-1]} samples")
        st = window_starts(e - s, window, step)
        if st.size == 0:
            short += 1
            continue
        starts.append(st + s)
        labels.append(np.full(st.size, lab, dtype=np.int64))
        segs.append(np.full(st.size, k, dtype=np.int64))
    if not starts:
        return SegmentWindows(np.zeros((0, x.shape[0], window), x.dtype), np.zeros(0, np.int64),
                              np.zeros(0, np.int64), np.zeros(0, np.int64), short)
    start = np.concatenate(starts)
    idx = start[:, None] + np.arange(window)[None, :]
    xw = np.ascontiguousarray(np.moveaxis(x[:, idx], 1, 0))
    return SegmentWindows(xw, np.concatenate(labels), start, np.concatenate(segs), short)


@dataclass
class MajorityWindows:
    x: np.ndarray
    y: np.ndarray
    start: np.ndarray
    skipped_excluded: int  # windows not returned because they contain an excluded sample


def majority_label(window_labels: np.ndarray) -> np.ndarray:
    """Row-wise majority of ``(N, window)`` non-negative labels; ties -> smallest label."""
    window_labels = np.asarray(window_labels, dtype=np.int64)
    if window_labels.size == 0:
        return np.zeros(window_labels.shape[0], dtype=np.int64)
    n_lab = int(window_labels.max()) + 1
    counts = np.zeros((window_labels.shape[0], n_lab), dtype=np.int64)
    rows = np.repeat(np.arange(window_labels.shape[0]), window_labels.shape[1])
    np.add.at(counts, (rows, window_labels.ravel()), 1)
    return counts.argmax(axis=1)


def majority_windows(x: np.ndarray, labels: np.ndarray, window: int, step: int) -> MajorityWindows:
    """Windows over a whole ``(C, T)`` signal labelled by the majority of per-sample ``labels``
    (negative = excluded: a window containing one is skipped and counted)."""
    x = np.asarray(x)
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (x.shape[-1],):
        raise ValueError(f"labels must have one entry per sample ({x.shape[-1]}), got {labels.shape}")
    starts = window_starts(x.shape[-1], window, step)
    idx = starts[:, None] + np.arange(window)[None, :]
    wl = labels[idx] if starts.size else np.zeros((0, window), np.int64)
    keep = (wl >= 0).all(axis=1)
    starts, wl = starts[keep], wl[keep]
    idx = starts[:, None] + np.arange(window)[None, :]
    xw = np.ascontiguousarray(np.moveaxis(x[:, idx], 1, 0)) if starts.size else np.zeros((0, x.shape[0], window), x.dtype)
    return MajorityWindows(xw, majority_label(wl), starts, int((~keep).sum()))
