"""The Cortex-M33 cross toolchain and QEMU: finding them, building a firmware image, sizing and running it.

The firmware is a CMake project (:func:`firmware_dir`): ``harcore/_firmware`` inside the installed package,
which carries its own copy of the kernels and the runtime in ``cpp/``, or ``firmware/`` of the source tree for
an editable install (kernels and runtime then in ``src/cpp``). An image is configured from a folder of
generated sources (``HARCORE_APP_DIR``) and built with Debian's ``arm-none-eabi`` GCC. QEMU runs the
``qemu-m33`` image on the ``mps2-an505`` machine with semihosting (console on stdout, exit status from the
guest); ``firmware/tools/insn_between.c`` is a TCG plugin that counts guest instructions between the
``harcore_perf_begin``/``harcore_perf_end`` markers.
"""

from __future__ import annotations

import importlib.resources
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

# the board table lives at the bottom layer (the search reads the limits too); re-exported here
from harcore.boards import BOARDS, Board

from ..errors import FirmwareError, ToolchainError

__all__ = [
    "ToolchainError", "FirmwareError", "BOARDS", "Board", "firmware_dir", "cpp_dir", "require_tools", "build_image",
    "ImageSize", "image_size", "QemuRun", "run_qemu", "symbol_address", "symbol_sizes", "linked_bytes",
]

APT_HINT = ("install it with: apt-get install -y --no-install-recommends gcc-arm-none-eabi "
            "libnewlib-arm-none-eabi libstdc++-arm-none-eabi-dev qemu-system-arm")



def _packaged_firmware() -> Path | None:
    """``harcore/_firmware`` of an installed (non-editable) package, if it is a folder on disk."""
    try:
        res = importlib.resources.files("harcore").joinpath("_firmware")
    except (ModuleNotFoundError, TypeError):
        return None
    # CMake needs a real folder; a zipped or multiplexed (editable) package resource is not one.
    if isinstance(res, Path) and (res / "CMakeLists.txt").is_file():
        return res
    return None


def firmware_dir() -> Path:
    """The firmware's CMake project: ``$HARCORE_FIRMWARE_DIR`` (a developer's override), else the package's
    ``harcore/_firmware`` (wheel / non-editable install), else ``firmware/`` of the checkout (editable install)."""
    env = os.environ.get("HARCORE_FIRMWARE_DIR")
    if env:
        d = Path(env)
    else:
        d = _packaged_firmware() or Path(__file__).resolve().parents[3] / "firmware"
    if not (d / "CMakeLists.txt").is_file():
        where = (f"HARCORE_FIRMWARE_DIR={env}" if env
                 else "neither in the installed package, harcore/_firmware, nor in a source checkout")
        raise FirmwareError(f"firmware sources not found at {d} ({where}): reinstall harcore from its wheel or "
                            "source tree, or set HARCORE_FIRMWARE_DIR to a firmware/ folder")
    return d.resolve()


def cpp_dir(fw: Path | None = None) -> Path:
    """The folder with ``kernels/`` and ``runtime/`` that the firmware ``fw`` compiles: its own ``cpp/`` copy
    (installed package, deployed project), else ``../src/cpp`` (the checkout); the default of
    ``HARCORE_CPP_DIR`` in firmware/CMakeLists.txt, decided the same way."""
    fw = firmware_dir() if fw is None else Path(fw)
    d = fw / "cpp" if (fw / "cpp" / "kernels").is_dir() else fw.parent / "src" / "cpp"
    if not (d / "kernels").is_dir() or not (d / "runtime").is_dir():
        raise FirmwareError(f"the kernels and runtime of the firmware at {fw} are missing: no {d}/kernels and "
                            f"{d}/runtime")
    return d.resolve()


def require_tools(*, qemu: bool = False, host_cc: bool = False) -> dict[str, str]:
    """Paths of the tools; a ToolchainError naming every missing one and how to install it."""
    names = ["arm-none-eabi-gcc", "arm-none-eabi-g++", "arm-none-eabi-size", "arm-none-eabi-objcopy",
             "arm-none-eabi-nm", "cmake"]
    if qemu:
        names.append("qemu-system-arm")
    if host_cc:
        names.append("gcc")
    found = {n: shutil.which(n) for n in names}
    missing = [n for n, p in found.items() if p is None]
    if missing:
        raise ToolchainError(f"the Cortex-M33 firmware toolchain is missing: {', '.join(missing)} not found on PATH; "
                             + APT_HINT)
    return {n: str(p) for n, p in found.items()}


def _tool_env() -> dict[str, str]:
    """The environment for external tools: without LD_PRELOAD (the sanitized test run preloads ASan/UBSan
    for harcore's extension; cmake, gcc and QEMU are not ours to sanitize)."""
    return {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}


def _run(cmd: list[str], what: str, timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess:
    try:
        r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=_tool_env())
    except subprocess.TimeoutExpired as e:
        raise FirmwareError(f"{what}: timed out after {timeout:.0f} s: {' '.join(cmd)}") from e
    if r.returncode != 0:
        tail = (r.stdout + r.stderr)[-4000:]
        raise FirmwareError(f"{what} failed (exit {r.returncode}): {' '.join(cmd)}\n{tail}")
    return r


def build_image(app_dir: Path | None, build_dir: Path, *, board: str = "qemu-m33", app: str = "infer",
                timeout: float = 600.0, jobs: int = 2, source_dir: Path | None = None,
                cmake_args: tuple[str, ...] = ()) -> Path:
    """Configure and build the firmware for ``board``; the ELF.

    ``cmake_args`` are extra ``-D`` options for the configure step (e.g. ``-DHARCORE_M33_CPU=cortex-m33+nodsp``).

    Either ``app_dir`` (a folder of generated sources, configured against ``firmware/`` directly) or
    ``source_dir`` (a folder written by ``harcore deploy``, self-contained: it builds its own copy of the
    firmware, kernels and runtime).
    """
    if board not in BOARDS:
        raise ValueError(f"board must be one of {', '.join(BOARDS)}, got {board!r}")
    tools = require_tools()
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    build_dir = Path(build_dir)
    if source_dir is not None:
        cfg = ["-S", str(Path(source_dir).resolve()), f"-DHARCORE_BOARD={board}"]
        elf = build_dir / "firmware" / f"harcore-{app}-{board}.elf"
    else:
        cfg = ["-S", str(firmware_dir()), f"-DHARCORE_BOARD={board}", f"-DHARCORE_APP={app}",
               f"-DHARCORE_APP_DIR={Path(app_dir).resolve()}"]
        elf = build_dir / f"harcore-{app}-{board}.elf"
    _run([tools["cmake"], *cfg, "-B", str(build_dir), *gen, "-DCMAKE_BUILD_TYPE=Release", *cmake_args],
         f"firmware configure ({board})", timeout)
    _run([tools["cmake"], "--build", str(build_dir), "-j", str(jobs)], f"firmware build ({board})", timeout)
    if not elf.is_file():
        raise FirmwareError(f"firmware build ({board}) produced no {elf}")
    return elf


def linked_bytes(map_file: Path, object_suffix: str, prefixes: tuple[str, ...] = (".rodata", ".data")) -> int:
    """Bytes of the input sections named ``prefixes*`` that the linker took from objects ending in
    ``object_suffix`` (e.g. ``model.cpp.obj``), read from a GNU ld map file (discarded sections excluded)."""
    total = 0
    in_map = False
    pending: str | None = None
    for line in Path(map_file).read_text().splitlines():
        if line.startswith("Linker script and memory map"):
            in_map = True
            continue
        if not in_map:
            continue
        m = re.match(r"^ (\.\S+)\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(\S+)$", line)
        if m:
            name, size, obj = m.group(1), int(m.group(3), 16), m.group(4)
        elif pending is not None:
            m = re.match(r"^\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(\S+)$", line)
            name, pending = pending, None
            if not m:
                continue
            size, obj = int(m.group(2), 16), m.group(3)
        else:
            m = re.match(r"^ (\.\S+)$", line)
            if m:
                pending = m.group(1)
            continue
        if obj.endswith(object_suffix) and name.startswith(prefixes):
            total += size
    return total


@dataclass
class ImageSize:
    """``arm-none-eabi-size`` (Berkeley) figures; flash = text + data, RAM = data + bss (incl. stack/heap)."""
    text: int
    data: int
    bss: int
    sections: dict[str, int] = field(default_factory=dict)

    @property
    def flash(self) -> int:
        return self.text + self.data

    @property
    def ram(self) -> int:
        return self.data + self.bss

    def to_dict(self) -> dict:
        return {"text": self.text, "data": self.data, "bss": self.bss, "flash": self.flash, "ram": self.ram,
                "sections": dict(self.sections)}


def image_size(elf: Path) -> ImageSize:
    """Berkeley and per-section sizes of an ELF."""
    size = require_tools()["arm-none-eabi-size"]
    out = _run([size, str(elf)], "arm-none-eabi-size", 60).stdout.splitlines()
    text, data, bss = (int(v) for v in out[1].split()[:3])
    sections = {}
    for line in _run([size, "-A", str(elf)], "arm-none-eabi-size -A", 60).stdout.splitlines():
        m = re.match(r"^(\.\S+)\s+(\d+)\s+(\d+)", line)
        if m:
            sections[m.group(1)] = int(m.group(2))
    return ImageSize(text, data, bss, sections)


def symbol_address(elf: Path, name: str) -> int:
    """Address of a symbol (Thumb bit cleared), via arm-none-eabi-nm."""
    nm = require_tools()["arm-none-eabi-nm"]
    for line in _run([nm, str(elf)], "arm-none-eabi-nm", 60).stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16) & ~1
    raise FirmwareError(f"symbol {name!r} not found in {elf}")


def symbol_sizes(elf: Path) -> dict[str, int]:
    """Sizes of the ELF's sized symbols (arm-none-eabi-nm -S), name -> bytes."""
    nm = require_tools()["arm-none-eabi-nm"]
    sizes: dict[str, int] = {}
    for line in _run([nm, "-S", "--size-sort", str(elf)], "arm-none-eabi-nm -S", 60).stdout.splitlines():
        parts = line.split()
        if len(parts) == 4:
            sizes[parts[3]] = int(parts[1], 16)
    return sizes


def _plugin(build_dir: Path) -> Path:
    src = firmware_dir() / "tools" / "insn_between.c"
    so = Path(build_dir) / "libinsn_between.so"
    if not so.is_file() or so.stat().st_mtime < src.stat().st_mtime:
        cc = require_tools(host_cc=True)["gcc"]
        _run([cc, "-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-o", str(so), str(src)],
             "building the QEMU instruction-count plugin", 120)
    return so


@dataclass
class QemuRun:
    """A finished QEMU run: the guest's console (stdout), exit status, and the per-marker instruction counts."""
    stdout: str
    returncode: int
    insns: list[int]
    total_insns: int | None


def run_qemu(elf: Path, *, timeout: float = 120.0, count_insns: bool = False) -> QemuRun:
    """Run a ``qemu-m33`` image on ``mps2-an505`` with semihosting; ``count_insns`` loads the counting plugin.

    A guest that does not exit within ``timeout`` seconds is a FirmwareError, as is a fault report; the
    exit status is returned for the caller to judge.
    """
    tools = require_tools(qemu=True, host_cc=count_insns)
    elf = Path(elf)
    cmd = [tools["qemu-system-arm"], "-M", "mps2-an505", "-display", "none", "-monitor", "none",
           "-serial", "none", "-chardev", "stdio,id=sh0",
           "-semihosting-config", "enable=on,target=native,chardev=sh0", "-kernel", str(elf)]
    log = elf.with_suffix(".plugin.log")
    if count_insns:
        begin = symbol_address(elf, "harcore_perf_begin")
        end = symbol_address(elf, "harcore_perf_end")
        cmd += ["-plugin", f"{_plugin(elf.parent)},begin={begin:#x},end={end:#x}", "-d", "plugin", "-D", str(log)]
        log.unlink(missing_ok=True)
    try:
        r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
                           env={**_tool_env(), "QEMU_AUDIO_DRV": "none"})
    except subprocess.TimeoutExpired as e:
        raise FirmwareError(f"qemu-system-arm: {elf.name} did not finish within {timeout:.0f} s") from e
    if "FAULT" in r.stdout or r.returncode == 134:
        raise FirmwareError(f"qemu-system-arm: {elf.name} faulted (exit {r.returncode}):\n"
                            f"{(r.stdout + r.stderr)[-3000:]}")
    insns: list[int] = []
    total = None
    if count_insns:
        text = log.read_text() if log.is_file() else ""
        insns = [int(m) for m in re.findall(r"insn_between seq=\d+ insns=(\d+)", text)]
        m = re.search(r"insn_between total=(\d+)", text)
        total = int(m.group(1)) if m else None
    return QemuRun(r.stdout, r.returncode, insns, total)
