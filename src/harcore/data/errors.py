"""The exception type of ``harcore.data``: :class:`harcore.errors.DataError`, re-exported here so that
``harcore.data.errors.DataError`` and ``harcore.data.DataError`` keep naming the one class."""

from __future__ import annotations

from ..errors import DataError

__all__ = ["DataError"]
