"""Per-channel z-normalization, fitted on training windows only."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_STD = 1e-12


@dataclass(frozen=True)
class ZNorm:
    """Per-channel mean and standard deviation (over windows and time steps), float64 ``(C,)``.

    ``apply`` computes ``(x - mean) / std`` for ``(N, C, T)`` windows. A channel whose standard
    deviation is below 1e-12 (constant in the training data) keeps ``std = 1`` so it is only
    centred; such channels are listed in ``constant_channels``.
    """

    mean: np.ndarray
    std: np.ndarray
    constant_channels: tuple[int, ...] = ()

    @classmethod
    def fit(cls, x: np.ndarray) -> "ZNorm":
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[0] == 0:
            raise ValueError(f"need (N>0, C, T) windows to fit normalization, got {x.shape}")
        xd = x.astype(np.float64, copy=False)
        mean = np.nanmean(xd, axis=(0, 2))
        std = np.nanstd(xd, axis=(0, 2))
        const = tuple(int(i) for i in np.nonzero(~(std >= MIN_STD))[0])
        std = np.where(std >= MIN_STD, std, 1.0)
        return cls(mean, std, const)

    def apply(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 3 or x.shape[1] != self.mean.size:
            raise ValueError(f"windows must be (N, {self.mean.size}, T), got {x.shape}")
        return ((x - self.mean[None, :, None]) / self.std[None, :, None]).astype(np.float32)

    def invert(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return (x * self.std[None, :, None] + self.mean[None, :, None]).astype(np.float32)

    def to_dict(self) -> dict:
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "constant_channels": list(self.constant_channels)}
