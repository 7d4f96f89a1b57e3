"""``harcore deploy`` and ``harcore validate`` (registered in harcore.cli)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer


def _fail(msg: str, code: int = 1) -> None:
    typer.secho(f"error: {msg}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


def deploy(
    graph: Path = typer.Argument(..., help="int8 graph file (QGraph.save / harcore.quant.load)"),
    board: str = typer.Option("qemu-m33", "--board", "-b", help="qemu-m33 or stm32l552"),
    out: Path = typer.Option(..., "--out", "-o", help="output folder (must not exist or be empty)"),
    windows: int = typer.Option(100, "--windows", "-n", help="real test windows embedded in the harness"),
    force: bool = typer.Option(False, "--force", help="replace an existing output folder"),
    build: bool = typer.Option(False, "--build", help="also cross-build the image and print its size"),
) -> None:
    """Int8 graph -> Cortex-M33 firmware sources (model, harness with test windows, CMakeLists)."""
    from harcore.deploy import DeployError, FirmwareError, ToolchainError, deploy as do_deploy, toolchain

    try:
        dep = do_deploy(graph, out, board=board, windows=windows, overwrite=force)
    except (DeployError, ValueError, FileNotFoundError) as e:
        _fail(str(e))
    b = dep.budget
    typer.echo(f"wrote {dep.out} for {board}: {len(dep.files)} files, {dep.windows} windows; estimated flash "
               f"{b.flash:,}/{b.flash_capacity:,} B, SRAM {b.ram:,}/{b.ram_capacity:,} B (arena {b.arena:,} B)")
    if build:
        try:
            elf = toolchain.build_image(None, dep.out / "build", board=board, app="infer", source_dir=dep.out)
            s = toolchain.image_size(elf)
        except (ToolchainError, FirmwareError) as e:
            _fail(str(e))
        typer.echo(f"built {elf}: text {s.text:,} data {s.data:,} bss {s.bss:,} -> flash {s.flash:,} B, "
                   f"RAM {s.ram:,} B")


def validate(
    graph: Path = typer.Argument(..., help="int8 graph file (QGraph.save / harcore.quant.load)"),
    windows: int = typer.Option(100, "--windows", "-n", help="real test windows to compare"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write the report as JSON here"),
    timeout: float = typer.Option(300.0, "--timeout", help="QEMU time limit in seconds"),
    cmsis_nn: Optional[Path] = typer.Option(
        None, "--cmsis-nn", help="an ARM-software/CMSIS-NN source tree: also build the model against that library "
        "(-DHARCORE_KERNELS=cmsis-nn), check its outputs too and count its instructions per step"),
) -> None:
    """Build the QEMU image, run it, and compare every window with the host int8 simulation."""
    from harcore.deploy import DeployError, FirmwareError, ToolchainError, validate as do_validate

    try:
        rep = do_validate(graph, windows=windows, timeout=timeout, cmsis_nn=cmsis_nn)
    except (DeployError, ValueError, FileNotFoundError, ToolchainError, FirmwareError) as e:
        _fail(str(e))
    typer.echo(rep.render())
    if json_out is not None:
        json_out.write_text(json.dumps(rep.to_dict(), indent=2))
        typer.echo(f"wrote {json_out}")
    if not rep.bit_exact:
        cm = ("" if rep.cmsis_nn is None
              else f"; CMSIS-NN build {rep.cmsis_nn['exact_windows']}/{rep.windows} windows exact")
        _fail(f"target and host differ: {rep.exact_windows}/{rep.windows} windows exact{cm}", code=2)
