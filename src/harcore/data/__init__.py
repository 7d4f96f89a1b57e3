"""Human-activity-recognition data: real datasets, subject-wise protocols, preprocessing.

``load(name, root=None, **options)`` returns a :class:`Dataset` with ``train``, ``val`` (``None``
when the protocol has none) and ``test`` splits (``x`` float32 ``(N, channels, time)``, ``y`` int64,
``subjects`` int64), ``classes``, ``channels`` and ``sample_rate``. See ``docs/data.md``.
"""

from __future__ import annotations

from .dataset import Dataset, Split, WindowSet, build_dataset
from .errors import DataError
from .filters import UCI_CHANNELS, butter_filter, highpass, lowpass, median_filter, uci_har_pipeline
from .normalize import ZNorm
from .protocols import PROTOCOLS, SubjectSplit, split_subjects
from .remote import SOURCES, cache_dir, download, known_files, resolve_root, verify_copy
from .resample import resample
from .weights import class_weights
from .windows import majority_windows, segment_windows, sliding_windows
from .custom import from_arrays, from_folder
from .datasets.uci_har import read_metadata as uci_har_metadata

DATASETS = ("default", "uci-har", "hapt", "wisdm", "daphnet",
            "pamap2", "opportunity", "skoda", "unimib-shar", "hhar", "motionsense", "mobiact", "myogym", "realworld")

# Official archives of the datasets added later (UCI repository ids 231, 226, 344). As for the others,
# neither a SHA-256 nor per-file hashes are known to harcore, so a download needs a hash you verified yourself.
from .remote import RemoteArchive as _RemoteArchive  # noqa: E402

SOURCES.update({
    "pamap2": _RemoteArchive("https://archive.ics.uci.edu/static/public/231/pamap2+physical+activity+monitoring.zip",
                             "pamap2+physical+activity+monitoring.zip", None,
                             "UCI ML repository id 231; the zip wraps PAMAP2_Dataset.zip."),
    "opportunity": _RemoteArchive("https://archive.ics.uci.edu/static/public/226/opportunity+activity+recognition.zip",
                                  "opportunity+activity+recognition.zip", None, "UCI ML repository id 226."),
    "hhar": _RemoteArchive("https://archive.ics.uci.edu/static/public/344/heterogeneity+activity+recognition.zip",
                           "heterogeneity+activity+recognition.zip", None,
                           "UCI ML repository id 344; the zip wraps 'Activity recognition exp.zip'."),
})

_SPLIT_OPTIONS = ("protocol", "fold", "seed", "fractions", "val_subjects", "val_fraction", "normalize")


def _loader(name: str):
    from .datasets import (daphnet, default, hapt, hhar, mobiact, motionsense, myogym, opportunity, pamap2, realworld,
                           skoda, uci_har, unimib, wisdm)
    return {"default": default.load_windows, "uci-har": uci_har.load_windows, "hapt": hapt.load_windows,
            "wisdm": wisdm.load_windows, "daphnet": daphnet.load_windows, "pamap2": pamap2.load_windows,
            "opportunity": opportunity.load_windows, "skoda": skoda.load_windows,
            "unimib-shar": unimib.load_windows, "hhar": hhar.load_windows,
            "motionsense": motionsense.load_windows, "mobiact": mobiact.load_windows,
            "myogym": myogym.load_windows, "realworld": realworld.load_windows}[name]


def load_windows(name: str, root=None, *, download: bool = False, sha256: str | None = None, **options) -> WindowSet:
    """All windows of a dataset, before any split (same loader options as :func:`load`)."""
    key = name.lower()
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")
    if key == "default":
        if root is not None:
            raise ValueError("the default dataset ships inside harcore; it takes no root")
        return _loader(key)(**options)
    path = resolve_root(key, root, download_missing=download, sha256=sha256)
    return _loader(key)(path, **options)


def load(name: str, root=None, **options) -> Dataset:
    """Load dataset ``name`` (one of :data:`DATASETS`) from ``root`` (a folder or archive; ``None``:
    the cache folder) and split it by subject (Skoda, a one-subject dataset: chronologically per
    class, ``protocol="temporal"``).

    Split options: ``protocol`` ("fixed", "random-subjects", "loso"; default "fixed" where the
    dataset has its own split, else "random-subjects"), ``fold`` (loso), ``seed``, ``fractions``
    (random-subjects), ``val_subjects`` / ``val_fraction`` (fixed, loso), ``normalize`` (default
    True: z-score with training-split statistics, stored as ``ds.norm``). Other options go to the
    dataset's loader (``variant``, ``window``, ``step``, ...; see docs/data.md).
    """
    split_opts = {k: options.pop(k) for k in list(options) if k in _SPLIT_OPTIONS}
    ws = load_windows(name, root, **options)
    if name.lower() == "skoda":
        from .datasets import skoda
        return skoda.build(ws, **split_opts)
    return build_dataset(ws, **split_opts)


__all__ = [
    "DATASETS", "DataError", "Dataset", "PROTOCOLS", "SOURCES", "Split", "SubjectSplit", "UCI_CHANNELS", "WindowSet",
    "ZNorm", "build_dataset", "butter_filter", "cache_dir", "class_weights", "download", "from_arrays", "from_folder",
    "known_files", "verify_copy",
    "highpass", "load", "load_windows", "lowpass", "majority_windows", "median_filter", "resample",
    "segment_windows", "sliding_windows", "split_subjects", "uci_har_metadata", "uci_har_pipeline",
]
