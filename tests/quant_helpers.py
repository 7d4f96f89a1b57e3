"""Shared set-up of the int8 tests (no tests here): the emitted firmware model built and run as a host program."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

from harcore.quant.simulate import quantize_input
from test_firmware_common import skip_unless_required

ROOT = Path(__file__).resolve().parents[1]

# Reads int8 windows (the program's physical input layout) from stdin, writes the int8 outputs to stdout.
HARNESS_MAIN = r'''
#include <cstdio>
#include <cstdlib>
#include "runtime/harcore_runtime.hpp"
extern const harcore::rt::Model harcore_model;
extern const int32_t harcore_model_arena_size, harcore_model_input_size, harcore_model_output_size;
int main() {
  static int8_t in[1 << 16], out[1 << 16];
  // exactly arena_size bytes on the heap, so that a sanitized build catches any access past the plan
  int8_t* arena = static_cast<int8_t*>(std::malloc(static_cast<size_t>(harcore_model_arena_size)));
  while (std::fread(in, 1, harcore_model_input_size, stdin) == (size_t)harcore_model_input_size) {
    if (harcore::rt::invoke(harcore_model, in, out, arena, harcore_model_arena_size) != 0) return 2;
    std::fwrite(out, 1, harcore_model_output_size, stdout);
  }
  std::free(arena);
  return 0;
}
'''


def build_harness(p, tmp_path: Path, flags: list[str]) -> Path:
    """Writes ``p``'s emitted model and the harness to ``tmp_path`` and builds them with the runtime and every
    kernel (g++, extra ``flags``); returns the executable. No g++: skipped locally, a failure in CI."""
    if shutil.which("g++") is None:
        skip_unless_required("needs g++ (the host build of the emitted model)")
    (tmp_path / "model.cpp").write_text(p.emit_cpp("harcore_model"))
    (tmp_path / "main.cpp").write_text(HARNESS_MAIN)
    srcs = [str(tmp_path / "main.cpp"), str(tmp_path / "model.cpp"), str(ROOT / "src/cpp/runtime/harcore_runtime.cpp")]
    srcs += sorted(str(f) for f in (ROOT / "src/cpp/kernels").glob("*.cpp"))
    exe = tmp_path / "harness"
    r = subprocess.run(["g++", "-std=c++17", "-O1", "-fno-exceptions", "-fno-rtti", "-Wall", "-Wno-unused", *flags,
                        f"-I{ROOT / 'src/cpp'}", *srcs, "-o", str(exe)], capture_output=True, text=True, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    return exe


def run_harness(exe: Path, p, g, x: np.ndarray) -> np.ndarray:
    """The harness's int8 outputs (N, output size) for the float windows ``x``, quantized as ``g`` does."""
    phys = np.empty((len(x), p.input_size), np.int8)
    phys[:, p.input_offsets] = quantize_input(g, x).reshape(len(x), -1)
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}  # a sanitized pytest run preloads ASan
    r = subprocess.run([str(exe)], input=phys.tobytes(), capture_output=True, check=True, env=env)
    return np.frombuffer(r.stdout, np.int8).reshape(len(x), -1)
