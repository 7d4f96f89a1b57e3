"""The boards harcore deploys to, and the model budget each leaves (bottom layer: the search reads it too,
``harcore search --board``, and harcore.deploy checks its images against it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Board:
    name: str
    flash_bytes: int
    ram_bytes: int
    # RAM the harness itself takes besides the arena: stack + newlib heap reserve of common/sections.ld
    # plus console/harness statics (measured on the linked images; see docs/firmware.md).
    harness_ram_bytes: int
    # Flash taken by startup, console, kernels and runtime code besides the model's weights and the windows.
    harness_flash_bytes: int

    @property
    def model_sram(self) -> int:
        """Bytes of RAM left to the model's activations (peak SRAM) once the harness is in."""
        return self.ram_bytes - self.harness_ram_bytes

    @property
    def model_flash(self) -> int:
        """Bytes of flash left to the model's weights and graph once the harness code is in."""
        return self.flash_bytes - self.harness_flash_bytes


BOARDS: dict[str, Board] = {
    "qemu-m33": Board("qemu-m33", 512 * 1024, 256 * 1024, 12 * 1024 + 1024, 48 * 1024),
    "stm32l552": Board("stm32l552", 512 * 1024, 256 * 1024, 12 * 1024 + 1024, 48 * 1024),
}


def board(name: str) -> Board:
    """The board ``name``; a ValueError naming the known boards otherwise."""
    if name not in BOARDS:
        raise ValueError(f"--board must be one of {', '.join(BOARDS)}, got {name!r}")
    return BOARDS[name]


__all__ = ["BOARDS", "Board", "board"]
