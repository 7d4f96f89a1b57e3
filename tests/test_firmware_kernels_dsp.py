"""The kernels' Cortex-M33 DSP-extension paths against their plain C paths, bit for bit, on the M33 under QEMU.

The same randomized cases (odd channel counts, depths and lengths not divisible by 4, random padding, strides,
zero points; harcore.deploy.selftest.generate_random) run in two builds of the self-test image: the default
`-mcpu=cortex-m33` (ARM_MATH_DSP: SMLAD/SXTB16/SEL paths) and `-mcpu=cortex-m33+nodsp` (the plain C loops,
the same code the host runs). Both must equal the host's expected outputs, hence each other. The images
are checked to contain (resp. not contain) the DSP instructions, so the comparison is between two paths.
"""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from harcore.deploy import FirmwareError, selftest, toolchain

from test_firmware_common import require_firmware_toolchain


@pytest.fixture
def fw(monkeypatch):
    require_firmware_toolchain(monkeypatch)


def _mnemonics(elf) -> set[str]:
    dis = subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True, text=True, check=True).stdout
    out = set()
    for line in dis.splitlines():
        parts = line.split("\t")
        if len(parts) >= 3 and parts[0].strip().endswith(":"):
            out.add(parts[2].split()[0] if parts[2].split() else "")
    return out


def _run(cases, tmp_path, tag: str, cpu: str):
    app = tmp_path / f"app_{tag}"
    selftest.write_sources(cases, app)
    elf = toolchain.build_image(app, tmp_path / f"build_{tag}", board="qemu-m33", app="selftest",
                                cmake_args=(f"-DHARCORE_M33_CPU={cpu}",))
    run = toolchain.run_qemu(elf, timeout=300, count_insns=True)
    assert run.returncode == 0, run.stdout[-2000:]
    return elf, run


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_dsp_paths_equal_plain_paths_on_the_m33(fw, tmp_path, seed):
    cases = selftest.generate_random(seed=seed, n_per_kernel=3)
    kernels = {c.kernel for c in cases}
    assert {"arm_convolve_s8", "arm_convolve_1x1_s8_fast", "arm_depthwise_conv_s8_opt", "arm_fully_connected_s8",
            "arm_max_pool_s8", "arm_avgpool_s8", "arm_lstm_unidirectional_s8", "arm_elementwise_add_s8",
            "arm_elementwise_sub_s8", "arm_elementwise_mul_s8", "arm_batch_matmul_s8"} <= kernels
    elf_dsp, run_dsp = _run(cases, tmp_path, "dsp", "cortex-m33")
    elf_c, run_c = _run(cases, tmp_path, "plain", "cortex-m33+nodsp")
    ops_dsp, ops_c = _mnemonics(elf_dsp), _mnemonics(elf_c)
    assert {"smlad", "sxtb16", "sel", "smmulr"} <= ops_dsp, "the DSP build lacks the DSP instructions"
    assert not ({"smlad", "sxtb16", "sel", "smmulr"} & ops_c), "the +nodsp build contains DSP instructions"
    got_dsp, got_c = selftest.parse_output(run_dsp.stdout), selftest.parse_output(run_c.stdout)
    assert sorted(got_dsp) == sorted(got_c) == list(range(len(cases)))
    for i, c in enumerate(cases):
        for label, got in (("dsp", got_dsp), ("plain", got_c)):
            name, status, out = got[i]
            assert name == c.name and status == 0, (label, name, status)
            diff = np.flatnonzero(out != c.expected)
            assert diff.size == 0, f"{label} {name}: {diff.size} of {out.size} values differ (first at {diff[:5]})"
    # the DSP paths run fewer instructions on the heavy kernels (sums over all cases of a kernel)
    for k in ("arm_convolve_s8", "arm_depthwise_conv_s8_opt", "arm_lstm_unidirectional_s8", "arm_max_pool_s8",
              "arm_avgpool_s8", "arm_convolve_1x1_s8_fast", "arm_elementwise_add_s8", "arm_elementwise_mul_s8",
              "arm_batch_matmul_s8"):
        n_dsp = sum(n for c, n in zip(cases, run_dsp.insns) if c.kernel == k)
        n_c = sum(n for c, n in zip(cases, run_c.insns) if c.kernel == k)
        assert n_dsp < n_c, (k, n_dsp, n_c)



def test_cmsis_nn_dir_that_is_not_a_cmsis_nn_tree_is_named(fw, tmp_path):
    """-DHARCORE_CMSIS_NN_DIR (the side-by-side build of benchmarks/bench_cmsis_nn.py) checks what it is given."""
    cases = selftest.generate(seed=0)[:1]
    selftest.write_sources(cases, tmp_path / "app")
    (tmp_path / "not-cmsis").mkdir()
    with pytest.raises(FirmwareError, match="(?s)HARCORE_CMSIS_NN_DIR.*not a CMSIS-NN source tree"):
        toolchain.build_image(tmp_path / "app", tmp_path / "build", board="qemu-m33", app="selftest",
                              cmake_args=(f"-DHARCORE_CMSIS_NN_DIR={tmp_path / 'not-cmsis'}",))


# The reference is gemmlowp's RoundingDivideByPOT as the kernels wrote it before (mask/threshold form);
# arm_nn_divide_by_power_of_two now uses a shorter form on 32-bit cores. Every value near 0 and near both
# int32 ends, the edges and 600,000 random values per exponent, -3 .. 40 (clamped to 0 .. 31); built with
# UBSan so an overflow in the new form fails too.
_DIVIDE_CHECK = r"""
#include <stdio.h>
#include <stdint.h>
#include "kernels/arm_nnsupportfunctions.hpp"
using namespace harcore::kernels;
static int32_t ref_div(int32_t x, int32_t e) {
  e = arm_nn_shift_amount(e);
  const int32_t mask = static_cast<int32_t>((int64_t{1} << e) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> e) + (remainder > threshold ? 1 : 0);
}
int main() {
  uint64_t s = 88172645463325252ull; long bad = 0, n = 0;
  const int32_t edges[] = {0, 1, -1, 2, -2, INT32_MAX, INT32_MIN, INT32_MAX - 1, INT32_MIN + 1, 1 << 30, -(1 << 30)};
  for (int32_t e = -3; e <= 40; ++e) {
    for (int32_t x : edges) { n++; if (arm_nn_divide_by_power_of_two(x, e) != ref_div(x, e)) bad++; }
    for (int32_t k = -70000; k <= 70000; ++k) {  // every value around 0 and around the ties of small shifts
      n++; if (arm_nn_divide_by_power_of_two(k, e) != ref_div(k, e)) bad++;
      const int32_t hi = INT32_MAX - 70000 + (k + 70000) / 2, lo = INT32_MIN + (k + 70000) / 2;
      n += 2; if (arm_nn_divide_by_power_of_two(hi, e) != ref_div(hi, e)) bad++;
      if (arm_nn_divide_by_power_of_two(lo, e) != ref_div(lo, e)) bad++;
    }
    for (int i = 0; i < 300000; ++i) {
      s ^= s << 13; s ^= s >> 7; s ^= s << 17;
      const int32_t x = static_cast<int32_t>(static_cast<uint32_t>(s));
      const int32_t y = (static_cast<int32_t>(s >> 32)) >> (s & 31);
      n += 2; if (arm_nn_divide_by_power_of_two(x, e) != ref_div(x, e)) bad++;
      if (arm_nn_divide_by_power_of_two(y, e) != ref_div(y, e)) bad++;
    }
  }
  printf("checked=%ld mismatches=%ld\n", n, bad);
  return bad != 0;
}
"""


@pytest.mark.sanitize
def test_rounding_divide_by_power_of_two_equals_the_gemmlowp_form(tmp_path):
    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("no host g++")
    repo = Path(__file__).resolve().parents[1]
    (tmp_path / "t.cpp").write_text(_DIVIDE_CHECK)
    subprocess.run([cxx, "-O2", "-std=c++17", "-fsanitize=undefined", "-fno-sanitize-recover=all",
                    f"-I{repo / 'src' / 'cpp'}", str(tmp_path / "t.cpp"), "-o", str(tmp_path / "t")], check=True)
    r = subprocess.run([str(tmp_path / "t")], capture_output=True, text=True)
    assert r.returncode == 0 and "mismatches=0" in r.stdout, r.stdout + r.stderr
    assert int(r.stdout.split("checked=")[1].split()[0]) > 40_000_000


def test_selftest_int64_requantize_reference_equals_the_host_add():
    """The self-test's expected values for mul/sub (kernels without a host binding) come from selftest._rq_np:
    it must reproduce the host's arm_elementwise_add_s8 (three requantizations) on random TFLite-style
    parameters, left shifts 0..22 and output shifts of both signs."""
    from harcore._core import kernels as K

    rng = np.random.default_rng(7)
    for _ in range(200):
        a = rng.integers(-128, 128, 40).astype(np.int8)
        b = rng.integers(-128, 128, 40).astype(np.int8)
        o1, o2, oo = int(rng.integers(-127, 129)), int(rng.integers(-127, 129)), int(rng.integers(-128, 128))
        m1, s1 = selftest._qm(float(rng.uniform(0.01, 0.9)))
        m2, s2 = selftest._qm(float(rng.uniform(0.01, 0.9)))
        mo, so = selftest._qm(float(10 ** rng.uniform(-8, 1)))
        ls = int(rng.integers(0, 23))
        y = K.elementwise_add_s8(a, b, input_1_offset=o1, input_1_mult=m1, input_1_shift=s1, input_2_offset=o2,
                                 input_2_mult=m2, input_2_shift=s2, left_shift=ls, out_offset=oo, out_mult=mo,
                                 out_shift=so, activation=(-128, 127))
        xa = selftest._rq_np((a.astype(np.int64) + o1) * (1 << ls), m1, s1)
        xb = selftest._rq_np((b.astype(np.int64) + o2) * (1 << ls), m2, s2)
        acc = (xa + xb + 2 ** 31) % 2 ** 32 - 2 ** 31
        ref = np.clip(selftest._rq_np(acc, mo, so) + oo, -128, 127).astype(np.int8)
        assert np.array_equal(y, ref), (ls, s1, s2, so)
