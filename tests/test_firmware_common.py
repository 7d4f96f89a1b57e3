"""Shared set-up of the firmware tests (no tests here): the toolchain must be there in CI (HARCORE_REQUIRE_FIRMWARE=1)."""

import os

import pytest


def require_firmware_toolchain(monkeypatch) -> None:
    """Skip when the cross toolchain/QEMU is missing locally; fail when CI requires the firmware tests."""
    from harcore.deploy import ToolchainError
    from harcore.deploy.toolchain import require_tools

    # The firmware must come from the package itself (harcore/_firmware of a non-editable install, the
    # checkout's firmware/ of an editable one), never from a developer's override.
    monkeypatch.delenv("HARCORE_FIRMWARE_DIR", raising=False)
    try:
        require_tools(qemu=True, host_cc=True)
    except ToolchainError as e:
        skip_unless_required(str(e))


def skip_unless_required(reason: str) -> None:
    """A missing firmware tool: skip locally, fail in CI (HARCORE_REQUIRE_FIRMWARE=1)."""
    if os.environ.get("HARCORE_REQUIRE_FIRMWARE") == "1":
        pytest.fail(f"HARCORE_REQUIRE_FIRMWARE=1 but {reason}")
    pytest.skip(reason)
