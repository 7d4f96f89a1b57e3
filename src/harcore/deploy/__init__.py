"""harcore.deploy: int8 graphs to Cortex-M33 firmware sources, built, run under QEMU and validated.

    >>> from harcore import deploy
    >>> deploy.deploy("model.hq8", "fw-out", board="stm32l552", windows=100)       # sources + CMakeLists
    >>> r = deploy.validate("model.hq8", windows=100, float_model=net)            # QEMU vs host int8 vs float
    >>> print(r.render()); r.bit_exact

Firmware tooling lives in :mod:`harcore.deploy.toolchain` (build, size, run), the kernel self-test in
:mod:`harcore.deploy.selftest`. Details: ``docs/firmware.md``.
"""

from .writer import (FIRMWARE_OP_KINDS, Budget, BudgetError, Deployment, DeployError, UnsupportedOpError, deploy)
from .toolchain import BOARDS, FirmwareError, ToolchainError
from .validation import StepProfile, ValidationReport, validate

__all__ = ["deploy", "validate", "Deployment", "ValidationReport", "StepProfile", "Budget", "BOARDS",
           "FIRMWARE_OP_KINDS", "DeployError", "BudgetError", "UnsupportedOpError", "FirmwareError", "ToolchainError"]
