"""Class weights."""

from __future__ import annotations

import numpy as np

from .errors import DataError


def class_weights(y: np.ndarray, n_classes: int) -> np.ndarray:
    """Inverse-frequency weights, identical to scikit-learn's
    ``compute_class_weight("balanced", classes=range(n_classes), y=y)``:
    ``n_samples / (n_classes * count[c])``. Returns float64 ``(n_classes,)``.

    A class with no sample has no finite weight; that raises :class:`DataError` (as scikit-learn
    raises) rather than silently giving it 0 or infinity.
    """
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0:
        raise DataError(f"labels must be a non-empty 1-D array, got shape {y.shape}")
    if y.min() < 0 or y.max() >= n_classes:
        raise DataError(f"labels must lie in [0, {n_classes}), found {int(y.min())}..{int(y.max())}")
    counts = np.bincount(y.astype(np.int64), minlength=n_classes)
    missing = np.nonzero(counts == 0)[0]
    if missing.size:
        raise DataError(f"classes {missing.tolist()} have no samples; their balanced weight is undefined")
    return y.size / (n_classes * counts.astype(np.float64))
