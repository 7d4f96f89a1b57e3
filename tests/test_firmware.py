"""The s8 kernels cross-built for the Cortex-M33 and run under QEMU (mps2-an505): bit-exact with the host.

harcore.deploy.selftest draws inputs and parameters for every kernel path, computes the expected outputs with
the host binding harcore._core.kernels, and generates the cases for the firmware's `selftest` app.
"""

import numpy as np
import pytest

from harcore.deploy import FirmwareError, ToolchainError, selftest, toolchain

from test_firmware_common import require_firmware_toolchain


@pytest.fixture
def fw(monkeypatch):
    require_firmware_toolchain(monkeypatch)


@pytest.fixture(scope="module")
def cases():
    return selftest.generate(seed=0)


@pytest.mark.sanitize
def test_kernels_bit_exact_on_cortex_m33_under_qemu(fw, cases, tmp_path):
    selftest.write_sources(cases, tmp_path / "app")
    elf = toolchain.build_image(tmp_path / "app", tmp_path / "build", board="qemu-m33", app="selftest")
    run = toolchain.run_qemu(elf, timeout=120, count_insns=True)
    assert run.returncode == 0, run.stdout[-2000:]
    got = selftest.parse_output(run.stdout)
    assert sorted(got) == list(range(len(cases)))
    kernels = {c.kernel for c in cases}
    assert len(kernels) >= 17  # every conv/depthwise path, FC x3, pools, add, softmax, clamp, LSTM
    for i, c in enumerate(cases):
        name, status, out = got[i]
        assert name == c.name and status == 0, (name, status)
        assert out.shape == c.expected.shape, name
        diff = np.flatnonzero(out != c.expected)
        assert diff.size == 0, f"{name}: {diff.size} of {out.size} values differ (first at {diff[:5]})"
    assert "done failures=0" in run.stdout
    # one instruction count per kernel call, from the TCG plugin
    assert len(run.insns) == len(cases) and min(run.insns) > 100
    assert run.total_insns > sum(run.insns)


def _stack_probe(n: int) -> selftest.SelfTestCase:
    """A case that writes a stack array of n bytes (volatile: neither removed nor moved to a register)."""
    return selftest.SelfTestCase(
        f"stack_probe_{n}", "none", np.array([(n - 1) & 0x7F], np.int8), "",
        f"  (void)ctx;\n  volatile int8_t buf[{n}];\n"
        f"  for (int32_t i = 0; i < {n}; ++i) buf[i] = static_cast<int8_t>(i & 0x7F);\n"
        f"  out[0] = buf[{n} - 1];\n  return 0;\n")


def test_stack_high_water_mark_measured_on_the_target(fw, cases, tmp_path):
    """The firmware's stack painting sees a known stack array: a case with an N-byte array reports >= N bytes,
    2N - N more than the N one, within the linked reserve, and the same figures on a second run."""
    probes = [_stack_probe(1024), _stack_probe(4096)]
    chosen = [cases[0], cases[-1]] + probes  # a conv and the LSTM, then the probes
    selftest.write_sources(chosen, tmp_path / "app")
    elf = toolchain.build_image(tmp_path / "app", tmp_path / "build", board="qemu-m33", app="selftest")
    runs = [toolchain.run_qemu(elf, timeout=120) for _ in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[0].stdout[-2000:]
    got = selftest.parse_output(runs[0].stdout)
    assert [got[i][2].tolist() for i in range(len(chosen))] == [c.expected.tolist() for c in chosen]
    stack = selftest.parse_stack(runs[0].stdout)
    assert stack == selftest.parse_stack(runs[1].stdout) and sorted(stack) == list(range(len(chosen)))
    reserved = toolchain.symbol_address(elf, "__stack_top") - toolchain.symbol_address(elf, "__stack_limit")
    assert reserved == 8192 and all(r == reserved for _, r in stack.values())
    used = {chosen[i].name: u for i, (u, _) in stack.items()}
    assert 1024 <= used["stack_probe_1024"] < 4096 <= used["stack_probe_4096"] <= reserved
    assert used["stack_probe_4096"] - used["stack_probe_1024"] >= 3072
    # the kernels' own use is measured too (frames below main), and is far below the larger probe's (the fused
    # LSTM step keeps four units' gate rows in its frame: ~1.2 KB)
    assert 0 < used[cases[0].name] < 2048 and 0 < used[cases[-1].name] < 2048


def test_selftest_detects_a_wrong_expectation(cases):
    """The comparison is real: a flipped bit in the console output is seen as a difference."""
    c = cases[0]
    line = f"case 0 {c.name} status=0 out={(c.expected ^ np.int8(1)).tobytes().hex()}"
    name, status, out = selftest.parse_output(line)[0]
    assert name == c.name and status == 0 and np.count_nonzero(out != c.expected) == c.expected.size


def test_stm32l552_image_links_and_reports_its_size(fw, cases, tmp_path):
    selftest.write_sources(cases, tmp_path / "app")
    elf = toolchain.build_image(tmp_path / "app", tmp_path / "build", board="stm32l552", app="selftest")
    size = toolchain.image_size(elf)
    assert 0 < size.flash <= 512 * 1024 and 0 < size.ram <= 256 * 1024
    assert size.sections[".stack"] == 8192
    # vector table at the start of the STM32L552's flash, stack top inside its SRAM
    assert toolchain.symbol_address(elf, "harcore_vectors") == 0x08000000
    top = toolchain.symbol_address(elf, "__stack_top")
    assert 0x20000000 < top <= 0x20000000 + 256 * 1024
    # the stack the firmware paints and measures (common/stack.hpp) is the linked reserve on this board too
    assert top - toolchain.symbol_address(elf, "__stack_limit") == 8192
    assert (tmp_path / "build" / "harcore-selftest-stm32l552.hex").is_file()


@pytest.mark.parametrize("board", ["qemu-m33", "stm32l552"])
@pytest.mark.parametrize("region,decl", [
    ("RAM", "volatile int8_t big[250 * 1024];"),
    ("FLASH", "const int8_t big[520 * 1024] = {1};"),
])
def test_over_budget_image_fails_to_link_on_both_boards(fw, tmp_path, board, region, decl):
    """qemu-m33 has the STM32L552's 512K/256K regions, so an oversized image fails the same way."""
    big = selftest.SelfTestCase("big", "none", np.zeros(1, np.int8), decl + "\n",
                                "  out[0] = big[ctx->size];  // a run-time index keeps the array\n  return 0;\n")
    selftest.write_sources([big], tmp_path / "app")
    with pytest.raises(FirmwareError, match=f"region .?{region}.? overflowed"):
        toolchain.build_image(tmp_path / "app", tmp_path / "build", board=board, app="selftest")


def test_missing_toolchain_is_named_with_the_install_command(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainError, match=r"arm-none-eabi-gcc.*qemu-system-arm.*apt-get install"):
        toolchain.require_tools(qemu=True)
    with pytest.raises(ToolchainError, match="arm-none-eabi-g\\+\\+"):
        toolchain.build_image(tmp_path, tmp_path / "b", board="qemu-m33", app="selftest")


def test_unknown_board_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="board must be one of qemu-m33, stm32l552"):
        toolchain.build_image(tmp_path, tmp_path / "b", board="esp32")
