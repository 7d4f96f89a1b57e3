"""harcore's exceptions: one base, :class:`HarcoreError`, and the specific errors below it.

Every error a user can meet derives from ``HarcoreError`` and from the builtin that fits it (``ValueError`` for
bad input, ``RuntimeError`` for a tool or stage that failed), so ``except HarcoreError`` catches all of harcore's
and ``except ValueError`` keeps working. This module is the bottom layer: it imports nothing of harcore.
"""

from __future__ import annotations

__all__ = [
    "HarcoreError", "DataError", "GraphError", "UnknownModelError", "BudgetError", "QuantError", "CheckpointError",
    "RunExistsError", "DeployError", "UnsupportedOpError", "ToolchainError", "FirmwareError", "StageError",
    "MissingExtraError",
]


class HarcoreError(Exception):
    """Base of every error harcore raises on purpose."""


class DataError(HarcoreError, ValueError):
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


class GraphError(HarcoreError, ValueError):
    """A model or op graph that harcore cannot trace, check or cost; the message names the op."""


class UnknownModelError(HarcoreError, KeyError, ValueError):
    """A model name that is not in the zoo; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class BudgetError(HarcoreError, ValueError):
    """A hardware budget (MACs, parameters, peak SRAM, flash) that the model or search space cannot meet;
    the message carries the figures."""


class QuantError(HarcoreError, ValueError):
    """A model or calibration set that the int8 path cannot quantize; the message names the op or the data."""


class CheckpointError(HarcoreError, ValueError):
    """A checkpoint or run folder that is missing, damaged or from another configuration; names the file."""


class RunExistsError(HarcoreError, FileExistsError):
    """The output folder holds a finished run (or other files) that would be overwritten without ``--overwrite``."""


class DeployError(HarcoreError, ValueError):
    """The graph cannot be deployed as asked (op support, arguments, output folder)."""


class UnsupportedOpError(DeployError):
    """The graph holds an op the firmware runtime lacks."""


class ToolchainError(HarcoreError, RuntimeError):
    """A tool the firmware needs (arm-none-eabi GCC, CMake, qemu-system-arm, a host C compiler) is missing."""


class FirmwareError(HarcoreError, RuntimeError):
    """The firmware failed to configure, build, link or run; the message carries the tool's output."""


class StageError(HarcoreError, RuntimeError):
    """A stage of the main job could not do its job; the message says why."""


class MissingExtraError(HarcoreError, ImportError):
    """A feature needs an optional dependency that is not installed; the message says which extra to install."""
