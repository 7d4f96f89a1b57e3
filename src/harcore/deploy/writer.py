"""``harcore deploy``: an int8 graph to firmware sources for a Cortex-M33 board.

The output folder holds ``src/model.cpp`` (``harcore.quant.lower(g).emit_cpp()``: weights as const arrays
in flash, the step program), ``src/harness_data.cpp`` (N real test windows quantized with the model's input
qparams, the one static arena of ``program.arena_size`` bytes, the output buffer), ``firmware/`` (a copy of
the firmware project with the kernels and the runtime it compiles in ``firmware/cpp``), ``CMakeLists.txt``
(configures ``firmware/`` for the chosen board, app ``infer``; only relative paths, so the folder builds
wherever it is moved) and ``deploy.json`` (what was deployed: board, budget check, windows' labels, qparams).
It is written into a temporary folder beside ``out`` and moved into place at the end, so a refusal or an
error never leaves a half-written folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from harcore.quant.qgraph import SUPPORTED_KINDS

from ..errors import BudgetError, DeployError, UnsupportedOpError
from .cgen import c_array
from .toolchain import BOARDS, Board, cpp_dir, firmware_dir

__all__ = ["DeployError", "BudgetError", "UnsupportedOpError", "Deployment", "Budget", "FIRMWARE_OP_KINDS",
           "deploy", "load_graph", "check_budget", "check_ops"]

#: Op kinds of an int8 graph that the firmware runtime (src/cpp/runtime) executes: the firmware compiles the
#: same runtime as ``simulate``, so it runs exactly what the int8 path supports.
FIRMWARE_OP_KINDS = SUPPORTED_KINDS


@dataclass
class Budget:
    """Flash/SRAM of a deployment against a board: estimates before building (the image's real figures
    come from ``arm-none-eabi-size`` after the build)."""
    board: str
    flash_capacity: int
    ram_capacity: int
    weights_flash: int         # the cost model's int8 flash estimate (weights, biases, requant tables)
    windows_flash: int         # embedded test windows
    harness_flash: int         # startup, console, kernels, runtime code (reserve)
    arena: int                 # program.arena_size
    harness_ram: int           # stack, newlib heap reserve, console/harness statics
    peak_sram_estimate: int    # the cost model's peak SRAM

    @property
    def flash(self) -> int:
        return self.weights_flash + self.windows_flash + self.harness_flash

    @property
    def ram(self) -> int:
        return self.arena + self.harness_ram

    @property
    def fits(self) -> bool:
        return self.flash <= self.flash_capacity and self.ram <= self.ram_capacity

    def to_dict(self) -> dict[str, Any]:
        return dict(asdict(self), flash=self.flash, ram=self.ram, fits=self.fits)


@dataclass
class Deployment:
    """What ``deploy`` wrote."""
    out: Path
    board: str
    windows: int
    budget: Budget
    labels: np.ndarray
    inputs: np.ndarray        # (N, input_size) int8, in the runtime's input byte order (what the image embeds)
    float_inputs: np.ndarray  # (N, C, T) float32, the windows before quantization
    int8_inputs: np.ndarray   # (N, C, T) int8, quantized with the input qparams (logical order)
    files: list[str] = field(default_factory=list)


def load_graph(graph: Any):
    """A QGraph from a QGraph or a path written by ``QGraph.save`` (errors name the file)."""
    from harcore import quant

    if isinstance(graph, (str, os.PathLike)):
        p = Path(graph)
        if not p.is_file():
            raise DeployError(f"int8 graph file '{p}' not found")
        return quant.load(p)
    if not hasattr(graph, "graph") or not hasattr(graph, "qparams"):
        raise DeployError(f"expected a harcore int8 graph (QGraph) or its file, got {type(graph).__name__}")
    return graph


def check_ops(qg) -> None:
    """UnsupportedOpError naming every op whose kind the firmware runtime lacks."""
    bad = [(op.name, op.kind) for op in qg.graph.ops if op.kind not in FIRMWARE_OP_KINDS]
    if bad:
        ops = ", ".join(f"'{n}' ({k})" for n, k in bad)
        raise UnsupportedOpError(f"the firmware cannot run op(s) {ops}: the Cortex-M33 runtime executes only "
                                 f"{', '.join(FIRMWARE_OP_KINDS)}")


def check_budget(qg, program, board: Board, windows: int) -> Budget:
    """The deployment's flash/SRAM estimate against ``board``; BudgetError with the figures if over."""
    from harcore import cost

    prof = cost.profile_graph(qg.graph)
    b = Budget(board=board.name, flash_capacity=board.flash_bytes, ram_capacity=board.ram_bytes,
               weights_flash=int(prof.total.flash), windows_flash=int(windows * program.input_size),
               harness_flash=board.harness_flash_bytes, arena=int(program.arena_size),
               harness_ram=board.harness_ram_bytes, peak_sram_estimate=int(prof.total.peak_sram))
    if not b.fits:
        parts = []
        if b.flash > b.flash_capacity:
            parts.append(f"flash {b.flash:,} B > {b.flash_capacity:,} B (weights {b.weights_flash:,} B by the cost "
                         f"model + {windows} test windows {b.windows_flash:,} B + harness code {b.harness_flash:,} B)")
        if b.ram > b.ram_capacity:
            parts.append(f"SRAM {b.ram:,} B > {b.ram_capacity:,} B (arena {b.arena:,} B + harness "
                         f"{b.harness_ram:,} B)")
        raise BudgetError(f"the model does not fit {board.name}: " + "; ".join(parts))
    return b


def _lower(qg):
    """``harcore.quant.lower`` (the int8 core's contract), cached on the graph as simulate does."""
    from harcore.quant.simulate import program

    return program(qg)


def _quantize_input(qg, xf: np.ndarray) -> np.ndarray:
    """(N, C, T) float -> int8 exactly as harcore.quant.simulate quantizes its input."""
    from harcore.quant.simulate import quantize_input

    try:
        return quantize_input(qg, xf)
    except ValueError as e:
        raise DeployError(f"the test windows do not fit the model: {e}") from None


def _physical_input(program, xq: np.ndarray) -> np.ndarray:
    """The int8 windows in the byte order invoke() expects (``program.input_offsets``, the runtime's layout)."""
    n = len(xq)
    flat = xq.reshape(n, -1)
    if flat.shape[1] != program.input_size:
        raise DeployError(f"the windows have {flat.shape[1]} values each, the model's input takes "
                          f"{program.input_size} bytes")
    offs = getattr(program, "input_offsets", None)
    if offs is None or len(offs) == 0:
        return np.ascontiguousarray(flat)
    phys = np.zeros((n, program.input_size), np.int8)
    phys[:, np.asarray(offs)] = flat
    return phys


def _default_windows(n: int, dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    from harcore import data

    ds = data.load("default") if dataset is None else dataset
    split = getattr(ds, "test", ds)
    x, y = np.asarray(split.x, np.float32), np.asarray(split.y)
    if n > len(x):
        raise DeployError(f"--windows {n}: the test split has only {len(x)} windows")
    # evenly spaced over the split (which is ordered by subject and activity), so every class shows up
    idx = np.round(np.linspace(0, len(x) - 1, n)).astype(np.int64)
    return x[idx], y[idx]


def _harness_source(inputs: np.ndarray, arena: int, output_size: int, profile_steps: bool) -> str:
    n, size = inputs.shape
    return "\n".join([
        "// Generated by harcore deploy: the harness's test windows (int8, the model's input order) and arena.",
        "#include <stdint.h>", "",
        f"extern const int32_t harcore_harness_windows = {n};",
        f"extern const int32_t harcore_harness_input_size = {size};",
        f"extern const int32_t harcore_harness_output_size = {output_size};",
        f"extern const int32_t harcore_harness_profile_steps = {int(profile_steps)};",
        "extern const int8_t harcore_harness_inputs[];",
        c_array("harcore_harness_inputs", inputs, static=False, align=4).rstrip(),
        "// The one static arena: every tensor and kernel scratch lives here (program.arena_size bytes).",
        f"alignas(8) int8_t harcore_arena[{max(arena, 4)}];",
        f"extern const int32_t harcore_arena_capacity = {max(arena, 4)};",
        f"alignas(4) int8_t harcore_harness_output[{max(output_size, 4)}];", ""])


def _cmake_source(board: str, graph_name: str) -> str:
    return f"""# Generated by harcore deploy ({graph_name}, board {board}); self-contained, builds wherever it is moved:
#   cmake -S . -B build -G Ninja && cmake --build build     -> build/firmware/harcore-infer-{board}.elf
# firmware/ is harcore's firmware project; firmware/cpp holds the kernels and the runtime it compiles, the
# same sources as the host's int8 simulation.
cmake_minimum_required(VERSION 3.20)
set(HARCORE_BOARD "{board}" CACHE STRING "qemu-m33 or stm32l552")
set(HARCORE_APP "infer" CACHE STRING "")
set(HARCORE_APP_DIR "${{CMAKE_CURRENT_LIST_DIR}}/src" CACHE PATH "")
set(HARCORE_CPP_DIR "${{CMAKE_CURRENT_LIST_DIR}}/firmware/cpp" CACHE PATH "")
set(CMAKE_TOOLCHAIN_FILE "${{CMAKE_CURRENT_LIST_DIR}}/firmware/cmake/arm-none-eabi.cmake")
if(NOT CMAKE_BUILD_TYPE)
  set(CMAKE_BUILD_TYPE Release CACHE STRING "" FORCE)
endif()
project(harcore_deploy C CXX ASM)
add_subdirectory(firmware firmware)
"""


#: What a deployed project compiles of the firmware project (not tools/: the QEMU plugin is built on the host).
_FIRMWARE_PARTS = ("CMakeLists.txt", "apps", "backends", "boards", "cmake", "common")


def _copy_firmware(dest: Path) -> None:
    """The firmware project and the kernels/runtime it compiles into ``dest``: whole folders, leaving out what
    the top CMakeLists.txt leaves out of the wheel (hidden files, build folders a checkout may hold)."""
    fw = firmware_dir()
    cpp = cpp_dir(fw)

    def ignore(folder: str, names: list[str]) -> list[str]:
        return [n for n in names if n.startswith(".") or n in ("build", "CMakeFiles", "__pycache__")
                or n.startswith("build-")]

    # copyfile, not copy2: the copies are the user's ordinary files even when site-packages is read-only
    dest.mkdir()
    for part in _FIRMWARE_PARTS:
        src = fw / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=ignore, copy_function=shutil.copyfile)
        elif src.is_file():
            shutil.copyfile(src, dest / part)
        else:
            raise DeployError(f"the firmware project at {fw} lacks {part}")
    for part in ("kernels", "runtime"):
        shutil.copytree(cpp / part, dest / "cpp" / part, ignore=ignore, copy_function=shutil.copyfile)


def deploy(graph: Any, out: str | os.PathLike, *, board: str = "qemu-m33", windows: int = 100, dataset: Any = None,
           x: np.ndarray | None = None, y: np.ndarray | None = None, overwrite: bool = False,
           profile_steps: bool = True) -> Deployment:
    """Write firmware sources for ``graph`` (a QGraph or its file) on ``board`` into the folder ``out``.

    The harness embeds ``windows`` real test windows: ``x``/``y`` if given (float (N, C, T) and labels), else
    the test split of ``dataset`` (a ``harcore.data`` Dataset), else of ``harcore.data.load("default")``.
    Raises BudgetError (with the figures) when the model does not fit, UnsupportedOpError for an op the
    firmware lacks, DeployError for bad arguments or an existing ``out`` (unless ``overwrite``).
    """
    if board not in BOARDS:
        raise DeployError(f"--board must be one of {', '.join(BOARDS)}, got {board!r}")
    if not isinstance(windows, (int, np.integer)) or windows < 1:
        raise DeployError(f"--windows must be a positive integer, got {windows!r}")
    out = Path(out)
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise DeployError(f"output folder '{out}' exists and is not empty (pass overwrite=True / --force)")
    graph_name = str(graph) if isinstance(graph, (str, os.PathLike)) else "QGraph"
    qg = load_graph(graph)
    check_ops(qg)
    try:
        program = _lower(qg)
    except ValueError as e:
        raise UnsupportedOpError(f"the firmware cannot run this graph: {e}") from None

    if x is None:
        xf, labels = _default_windows(int(windows), dataset)
    else:
        xf = np.asarray(x, np.float32)[:windows]
        labels = np.asarray(y)[:windows] if y is not None else np.full(len(xf), -1)
        if len(xf) < windows:
            raise DeployError(f"--windows {windows}: only {len(xf)} windows were given")
    budget = check_budget(qg, program, BOARDS[board], int(windows))
    iq = program.input_qparams
    xq = _quantize_input(qg, xf)
    inputs = _physical_input(program, xq)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / "src").mkdir()
        (tmp / "src" / "model.cpp").write_text(program.emit_cpp(symbol="harcore_model"))
        (tmp / "src" / "harness_data.cpp").write_text(
            _harness_source(inputs, program.arena_size, program.output_size, profile_steps))
        _copy_firmware(tmp / "firmware")
        (tmp / "CMakeLists.txt").write_text(_cmake_source(board, graph_name))
        meta = {
            "format": "harcore-deployment", "version": 1, "graph": graph_name, "board": board,
            "windows": int(len(inputs)), "labels": [int(v) for v in labels],
            "input_qparams": [float(iq.scale), int(iq.zero_point)],
            "output_qparams": [float(program.output_qparams.scale), int(program.output_qparams.zero_point)],
            "input_size": int(program.input_size), "output_size": int(program.output_size),
            "arena_size": int(program.arena_size), "budget": budget.to_dict(),
        }
        if "input_channels" in qg.meta:  # pruned sensors: the firmware feeds these of the full window, in order
            meta["input_channels"] = [int(c) for c in qg.meta["input_channels"]]
            meta["source_in_channels"] = int(qg.meta["source_in_channels"])
        (tmp / "deploy.json").write_text(json.dumps(meta, indent=1))
        files = sorted(str(p.relative_to(tmp)) for p in tmp.rglob("*") if p.is_file())
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.replace(out, old / out.name)
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Deployment(out, board, len(inputs), budget, np.asarray(labels), inputs, xf, xq, files)
