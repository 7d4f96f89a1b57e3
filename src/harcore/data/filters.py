"""Butterworth and median filtering (scipy.signal), and the UCI-HAR signal pipeline.

All Butterworth filters are second-order sections; by default they run forwards and backwards
(``sosfiltfilt``: zero phase, the magnitude response squared). ``zero_phase=False`` gives the
causal ``sosfilt`` a microcontroller would run.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

UCI_CHANNELS = (
    "body_acc_x", "body_acc_y", "body_acc_z",
    "body_gyro_x", "body_gyro_y", "body_gyro_z",
    "total_acc_x", "total_acc_y", "total_acc_z",
)
"""Channel order of harcore's UCI-style 9-channel windows: the alphabetical file order of UCI-HAR's
``Inertial Signals`` folder (body_acc, body_gyro, total_acc; x, y, z each)."""


def _check_cutoff(cutoff: float, fs: float) -> None:
    if fs <= 0:
        raise ValueError(f"sample rate must be positive, got {fs}")
    if not 0 < cutoff < fs / 2:
        raise ValueError(f"cutoff {cutoff} Hz must lie strictly between 0 and the Nyquist frequency {fs / 2} Hz")


def butter_sos(cutoff: float, fs: float, order: int = 3, btype: str = "lowpass") -> np.ndarray:
    """Second-order sections of a digital Butterworth filter (cutoff in Hz)."""
    _check_cutoff(cutoff, fs)
    return signal.butter(order, cutoff, btype=btype, fs=fs, output="sos")


def butter_filter(x: np.ndarray, cutoff: float, fs: float, *, order: int = 3, btype: str = "lowpass",
                  axis: int = -1, zero_phase: bool = True) -> np.ndarray:
    """Butterworth low-/high-pass filter of ``x`` along ``axis``."""
    sos = butter_sos(cutoff, fs, order, btype)
    x = np.asarray(x, dtype=np.float64)
    if zero_phase:
        return signal.sosfiltfilt(sos, x, axis=axis)
    return signal.sosfilt(sos, x, axis=axis)


def lowpass(x: np.ndarray, cutoff: float, fs: float, *, order: int = 3, axis: int = -1,
            zero_phase: bool = True) -> np.ndarray:
    return butter_filter(x, cutoff, fs, order=order, btype="lowpass", axis=axis, zero_phase=zero_phase)


def highpass(x: np.ndarray, cutoff: float, fs: float, *, order: int = 3, axis: int = -1,
             zero_phase: bool = True) -> np.ndarray:
    return butter_filter(x, cutoff, fs, order=order, btype="highpass", axis=axis, zero_phase=zero_phase)


def median_filter(x: np.ndarray, kernel_size: int = 3, axis: int = -1) -> np.ndarray:
    """Running median along ``axis`` (``scipy.signal.medfilt``, zero-padded at both ends)."""
    x = np.asarray(x, dtype=np.float64)
    x = np.moveaxis(x, axis, -1)
    out = np.empty_like(x)
    flat_in = x.reshape(-1, x.shape[-1])
    flat_out = out.reshape(-1, x.shape[-1])
    for i in range(flat_in.shape[0]):
        flat_out[i] = signal.medfilt(flat_in[i], kernel_size)
    return np.moveaxis(out, -1, axis)


def uci_har_pipeline(acc: np.ndarray, gyro: np.ndarray, fs: float = 50.0, *, noise_cutoff: float = 20.0,
                     gravity_cutoff: float = 0.3, order: int = 3, zero_phase: bool = True) -> np.ndarray:
    """UCI-HAR's pre-processing of one continuous recording.

    ``acc`` (g) and ``gyro`` (rad/s) are ``(3, T)``. Steps (UCI-HAR README): a 3rd-order median
    filter and a 3rd-order Butterworth low-pass at 20 Hz on every axis (noise), then gravity as a
    Butterworth low-pass at 0.3 Hz of the noise-filtered acceleration. Returns ``(9, T)`` float64 in
    :data:`UCI_CHANNELS` order: body_acc (total minus gravity), body_gyro, total_acc.

    UCI-HAR states neither the gravity filter's order nor whether its filters are causal; harcore
    uses ``order`` (3) for both filters and zero-phase filtering by default.
    """
    acc = np.asarray(acc, dtype=np.float64)
    gyro = np.asarray(gyro, dtype=np.float64)
    if acc.ndim != 2 or acc.shape[0] != 3 or gyro.shape != acc.shape:
        raise ValueError(f"acc and gyro must both be (3, T); got {acc.shape} and {gyro.shape}")
    total = lowpass(median_filter(acc, 3), noise_cutoff, fs, order=order, zero_phase=zero_phase)
    body_gyro = lowpass(median_filter(gyro, 3), noise_cutoff, fs, order=order, zero_phase=zero_phase)
    gravity = lowpass(total, gravity_cutoff, fs, order=order, zero_phase=zero_phase)
    return np.concatenate([total - gravity, body_gyro, total], axis=0)
