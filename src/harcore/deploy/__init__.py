"""harcore.deploy: int8 graphs to Cortex-M33 firmware sources, built, run under QEMU and validated.

Firmware tooling lives in :mod:`harcore.deploy.toolchain` (build, size, run), the kernel self-test in
:mod:`harcore.deploy.selftest`.
"""

from .toolchain import BOARDS, FirmwareError, ToolchainError

__all__ = ["BOARDS", "FirmwareError", "ToolchainError"]
