"""The window layout harcore takes, ``(N, C, T)`` (channels first), and the check that catches the other one.

Arrays from pandas, Keras or a CSV reader usually come channels-last, ``(N, T, C)``. Taken as they are, the T
time steps would be read as T sensor channels: a model would be built for the wrong input, or a model that only
flattens its input would train on scrambled windows without a word. Wherever the channel count is known (a
dataset's channel names, a model's first layer), :func:`layout_problem` tells the two layouts apart; the caller
raises its own error class with the message.
"""

from __future__ import annotations

from typing import Sequence

__all__ = ["layout_problem", "CHANNELS_LAST_HINT"]

CHANNELS_LAST_HINT = "looks channels-last (N, T, C); harcore takes (N, C, T): pass x.transpose(0, 2, 1)"


def layout_problem(window_shape: Sequence[int], channels: int | None, seq_len: int | None = None, *,
                   what: str = "x", expected: str = "the model's first layer takes") -> str | None:
    """Why a window shape ``(C, T)`` does not fit ``channels`` (and ``seq_len``, when known), or ``None``.

    The message says "looks channels-last" when the shape matches only transposed, else names both channel
    counts ("x has 9 channels ..., the model's first layer takes 3"). ``seq_len`` only confirms a transposed
    match (a length that differs alone is left to the model). Shapes of another rank are not judged.
    """
    shape = tuple(int(v) for v in window_shape)
    if channels is None or len(shape) != 2:
        return None
    c, t = shape
    if c == channels and (seq_len is None or t == seq_len):
        return None
    if t == channels and c != channels and (seq_len is None or c == seq_len):
        return f"{what} has windows of shape ({c}, {t}): it {CHANNELS_LAST_HINT}"
    if c != channels:
        return f"{what} has {c} channels (windows of shape ({c}, {t})), {expected} {channels}"
    # only the length differs: models with adaptive pooling take other lengths, so the model itself judges
    return None
