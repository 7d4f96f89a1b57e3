"""The kernels' Cortex-M33 DSP-extension paths against their plain C paths, bit for bit, on the M33 under QEMU.

The same randomized cases (odd channel counts, depths and lengths not divisible by 4, random padding, strides,
zero points; harcore.deploy.selftest.generate_random) run in two builds of the self-test image: the default
`-mcpu=cortex-m33` (ARM_MATH_DSP: SMLAD/SXTB16/SEL paths) and `-mcpu=cortex-m33+nodsp` (the plain C loops,
the same code the host runs). Both must equal the host's expected outputs, hence each other. The images
are checked to contain (resp. not contain) the DSP instructions, so the comparison is between two paths.
"""

import subprocess

import numpy as np
import pytest

from harcore.deploy import selftest, toolchain

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
    assert {"arm_convolve_s8", "arm_convolve_1x1_s8_fast", "arm_fully_connected_s8", "arm_max_pool_s8",
            "arm_lstm_unidirectional_s8"} <= kernels
    elf_dsp, run_dsp = _run(cases, tmp_path, "dsp", "cortex-m33")
    elf_c, run_c = _run(cases, tmp_path, "plain", "cortex-m33+nodsp")
    ops_dsp, ops_c = _mnemonics(elf_dsp), _mnemonics(elf_c)
    assert {"smlad", "sxtb16", "sel"} <= ops_dsp, "the DSP build lacks the DSP instructions"
    assert not ({"smlad", "sxtb16", "sel"} & ops_c), "the +nodsp build contains DSP instructions"
    got_dsp, got_c = selftest.parse_output(run_dsp.stdout), selftest.parse_output(run_c.stdout)
    assert sorted(got_dsp) == sorted(got_c) == list(range(len(cases)))
    for i, c in enumerate(cases):
        for label, got in (("dsp", got_dsp), ("plain", got_c)):
            name, status, out = got[i]
            assert name == c.name and status == 0, (label, name, status)
            diff = np.flatnonzero(out != c.expected)
            assert diff.size == 0, f"{label} {name}: {diff.size} of {out.size} values differ (first at {diff[:5]})"
    # the DSP paths run fewer instructions on the heavy kernels (sums over all cases of a kernel)
    for k in ("arm_convolve_s8", "arm_lstm_unidirectional_s8", "arm_max_pool_s8"):
        n_dsp = sum(n for c, n in zip(cases, run_dsp.insns) if c.kernel == k)
        n_c = sum(n for c, n in zip(cases, run_c.insns) if c.kernel == k)
        assert n_dsp < n_c, (k, n_dsp, n_c)

