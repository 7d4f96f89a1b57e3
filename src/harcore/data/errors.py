"""The one exception type of ``harcore.data``."""

from __future__ import annotations


class DataError(ValueError):
    """Bad or missing input data.

    The message names the file (an archive member is written ``archive.tar.xz:member``) and, when
    the problem is on one line, the 1-based line number. Both are also kept as attributes.
    """

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}"
            if line is not None:
                where += f", line {line}"
            where += ": "
        super().__init__(where + message)
        self.path = path
        self.line = line
        self.reason = message
