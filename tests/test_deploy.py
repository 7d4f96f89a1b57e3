"""harcore deploy / validate end to end: PTQ zoo models on the Cortex-M33 under QEMU, bit-exact with the host.

Models are seeded and briefly calibrated (PTQ on 128 training windows of the built-in HAPT subset), not
trained: bit-exactness does not depend on the weights, and accuracies are only compared target vs host.
"""

import copy
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from harcore import data, models, quant
from harcore.deploy import (BudgetError, DeployError, FirmwareError, ToolchainError, UnsupportedOpError, deploy,
                            toolchain, validate)
from harcore.deploy.validation import parse_infer_stack
from harcore.deploy.writer import Budget, check_budget

from test_firmware_common import require_firmware_toolchain

WINDOWS = 100


@pytest.fixture(scope="module")
def ds():
    return data.load("default")


def _ptq(name: str, ds, **kw):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = models.create(name, in_channels=9, seq_len=kw.pop("seq_len", 128), num_classes=6, **kw)
    net.eval()
    return net, quant.quantize(net, ds.train.x[:128])


@pytest.fixture(scope="module")
def mubi(ds):
    return _ptq("mubiconvlstm", ds)


@pytest.fixture(scope="module")
def student(ds):
    return _ptq("cnn_student", ds)


@pytest.fixture
def fw(monkeypatch):
    require_firmware_toolchain(monkeypatch)


def _check_report(rep, n):
    assert rep.windows == n and rep.total_values == n * 6
    assert rep.exact_windows == n, f"{rep.exact_windows}/{n} windows exact, {rep.differing_values} values differ"
    assert rep.differing_values == 0 and rep.max_abs_diff == 0 and rep.statuses_nonzero == 0 and rep.bit_exact
    assert np.array_equal(rep.target_outputs, rep.host_outputs)
    assert rep.accuracy["target"] == rep.accuracy["host_int8"] and rep.macro_f1["target"] == rep.macro_f1["host_int8"]
    e = rep.estimates
    # the one static arena is exactly the planned arena, which equals the cost model's peak SRAM
    assert e["arena_linked"] == e["arena_plan"] == e["peak_sram"]
    # the model's linked read-only data within the stated tolerance of the cost model's flash estimate
    assert abs(e["weights_linked"] / e["weights_flash"] - 1) <= e["weights_tolerance"]
    assert rep.image["flash"] <= 512 * 1024 and rep.image["ram"] <= 256 * 1024
    assert e["weights_linked"] < rep.image["flash"]
    # instruction counts: one per window, and per step (sums to about one inference)
    ipi = rep.insns_per_inference
    assert ipi["min"] > 10_000 and ipi["max"] < 50 * ipi["min"]
    assert rep.steps and abs(sum(s.insns for s in rep.steps) - ipi["mean"]) < 0.02 * ipi["mean"]
    mac_steps = [s for s in rep.steps if s.kind in ("conv", "depthwise", "fully_connected", "lstm")]
    assert mac_steps and all(s.macs > 0 and 0.5 < s.insns_per_mac < 50 for s in mac_steps)
    # RAM measured on the target: the stack high-water mark lies inside the linked reserve, and the measured
    # total (static data + arena + stack) is what the image really needs, within the linked RAM and the SRAM
    assert rep.stack_reserved_bytes == 8192
    assert 0 < rep.stack_high_water_bytes <= rep.stack_reserved_bytes
    rm = rep.ram_measured
    assert rm["arena"] == e["arena_linked"] and rm["stack_high_water"] == rep.stack_high_water_bytes
    assert rm["total"] == rm["static"] + rm["arena"] + rm["stack_high_water"]
    assert 0 < rm["static"] and rm["total"] <= rep.image["ram"] <= rm["sram"] == 256 * 1024


@pytest.mark.sanitize
def test_validate_cnn_student_bit_exact_on_100_windows(fw, student):
    net, g = student
    rep = validate(g, windows=WINDOWS, float_model=net)
    _check_report(rep, WINDOWS)
    assert rep.accuracy["float"] is not None and 0.0 <= rep.accuracy["float"] <= 1.0
    text = rep.render()
    assert "exact-match windows" in text and f"{WINDOWS}/{WINDOWS}" in text and "macro-F1" in text


@pytest.mark.sanitize
def test_cli_deploy_and_validate_mubiconvlstm_bilstm_on_100_windows(fw, mubi, tmp_path):
    from typer.testing import CliRunner

    from harcore.cli import app

    _, g = mubi
    assert any(op.kind == "rnn" and op.bidirectional for op in g.graph.ops)
    path = tmp_path / "mubi.hq8"
    g.save(path)
    runner = CliRunner()
    r = runner.invoke(app, ["validate", str(path), "--windows", str(WINDOWS), "--json", str(tmp_path / "rep.json")])
    assert r.exit_code == 0, r.output
    assert "exact-match windows" in r.output
    rep = json.loads((tmp_path / "rep.json").read_text())
    assert rep["bit_exact"] and rep["exact_windows"] == WINDOWS and rep["max_abs_diff"] == 0
    assert any(s["kind"] == "lstm" and s["macs"] > 0 for s in rep["steps"])
    # the instruction counts and the stack measured on the target are in the JSON
    assert rep["insns_per_inference"]["mean"] > 0 and all(s["insns"] > 0 for s in rep["steps"])
    assert 0 < rep["stack_high_water_bytes"] <= rep["stack_reserved_bytes"] == 8192
    assert rep["ram_measured"]["total"] == sum(rep["ram_measured"][k] for k in ("static", "arena", "stack_high_water"))

    # deploy for the STM32L552: sources + CMakeLists, and the image builds and reports its size
    out = tmp_path / "stm32"
    r = runner.invoke(app, ["deploy", str(path), "--board", "stm32l552", "--out", str(out), "--windows", "10",
                            "--build"])
    assert r.exit_code == 0, r.output
    assert "built" in r.output and "flash" in r.output
    assert (out / "src" / "model.cpp").is_file() and (out / "src" / "harness_data.cpp").is_file()
    meta = json.loads((out / "deploy.json").read_text())
    assert meta["board"] == "stm32l552" and meta["windows"] == 10 and len(meta["labels"]) == 10
    cm = (out / "CMakeLists.txt").read_text()
    assert "firmware" in cm and "stm32l552" in cm
    size = toolchain.image_size(out / "build" / "firmware" / "harcore-infer-stm32l552.elf")
    assert size.flash < 512 * 1024 and size.ram < 256 * 1024
    # a second deploy into the same folder is refused without --force
    r = runner.invoke(app, ["deploy", str(path), "--board", "stm32l552", "--out", str(out)])
    assert r.exit_code == 1 and "exists and is not empty" in r.output


def test_deploy_embeds_the_windows_simulate_sees(mubi, ds, tmp_path):
    from harcore.quant.simulate import simulate

    _, g = mubi
    dep = deploy(g, tmp_path / "out", board="qemu-m33", windows=12)
    assert dep.inputs.shape == (12, 9 * 128) and dep.inputs.dtype == np.int8
    src = (tmp_path / "out" / "src" / "harness_data.cpp").read_text()
    assert "harcore_harness_windows = 12;" in src and f"int8_t harcore_arena[{dep.budget.arena}]" in src
    # the labels are real test labels, several classes among evenly spaced windows
    assert len(set(dep.labels.tolist())) >= 4 and set(dep.labels.tolist()) <= set(range(6))
    # the int8 windows are what simulate quantizes the float windows to
    assert np.array_equal(simulate(g, dep.float_inputs), simulate(g, dep.int8_inputs))


def _leftovers(parent: Path, name: str) -> list[str]:
    return [p.name for p in parent.iterdir() if p.name.startswith(f".{name}.")]


def test_over_budget_model_is_refused_with_the_figures(ds, tmp_path):
    _, g = _ptq("cnn", ds)  # 545k int8 weights: over the 512 KB flash
    with pytest.raises(BudgetError, match=r"does not fit qemu-m33: flash [\d,]+ B > 524,288 B \(weights 553,992 B"):
        deploy(g, tmp_path / "out", board="qemu-m33")
    with pytest.raises(BudgetError, match=r"does not fit stm32l552"):
        deploy(g, tmp_path / "out", board="stm32l552", windows=1)
    assert not (tmp_path / "out").exists() and not _leftovers(tmp_path, "out")


def test_over_budget_sram_is_refused_with_the_figures(mubi):
    _, g = mubi

    class Huge:
        arena_size, input_size = 300_000, 1152

    with pytest.raises(BudgetError, match=r"SRAM 313,[\d]{3} B > 262,144 B \(arena 300,000 B \+ harness"):
        check_budget(g, Huge, toolchain.BOARDS["stm32l552"], windows=1)
    b = check_budget(g, type("P", (), {"arena_size": 3392, "input_size": 1152}), toolchain.BOARDS["qemu-m33"], 100)
    assert isinstance(b, Budget) and b.fits and b.windows_flash == 115_200


def test_unsupported_op_is_refused_naming_it(mubi, tmp_path):
    _, g = mubi
    bad = quant.QGraph(copy.deepcopy(g.graph), g.qparams, g.ops, g.meta)
    pool = next(op for op in bad.graph.ops if op.kind == "pool")
    pool.kind = "layernorm"
    with pytest.raises(UnsupportedOpError, match=f"'{pool.name}' \\(layernorm\\).*runtime executes only"):
        deploy(bad, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not _leftovers(tmp_path, "out")


def test_missing_toolchain_is_a_clear_message(mubi, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from harcore.cli import app

    _, g = mubi
    path = tmp_path / "m.hq8"
    g.save(path)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ToolchainError, match=r"arm-none-eabi-gcc.*not found on PATH.*apt-get install"):
        validate(g, windows=2)
    r = CliRunner().invoke(app, ["validate", str(path), "--windows", "2"])
    assert r.exit_code == 1 and "toolchain is missing" in r.output
    # deploy itself only writes sources: it works without the toolchain
    deploy(g, tmp_path / "src-only", windows=2)
    assert (tmp_path / "src-only" / "src" / "model.cpp").is_file()


def test_no_half_written_folder_when_writing_fails(mubi, tmp_path, monkeypatch):
    import harcore.deploy.writer as d

    _, g = mubi

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(d, "_cmake_source", boom)
    with pytest.raises(OSError, match="disk full"):
        deploy(g, tmp_path / "out", windows=3)
    assert not (tmp_path / "out").exists() and not _leftovers(tmp_path, "out")
    # an existing deployment survives a failed --force redeploy untouched
    monkeypatch.undo()
    deploy(g, tmp_path / "out", windows=3)
    before = sorted(p.name for p in (tmp_path / "out").rglob("*"))
    monkeypatch.setattr(d, "_cmake_source", boom)
    with pytest.raises(OSError):
        deploy(g, tmp_path / "out", windows=5, overwrite=True)
    assert sorted(p.name for p in (tmp_path / "out").rglob("*")) == before
    assert json.loads((tmp_path / "out" / "deploy.json").read_text())["windows"] == 3
    assert not _leftovers(tmp_path, "out")


def test_bad_arguments(mubi, tmp_path):
    _, g = mubi
    with pytest.raises(DeployError, match="--board must be one of qemu-m33, stm32l552"):
        deploy(g, tmp_path / "o", board="nrf52")
    with pytest.raises(DeployError, match="--windows must be a positive integer"):
        deploy(g, tmp_path / "o", windows=0)
    with pytest.raises(DeployError, match="test split has only 864 windows"):
        deploy(g, tmp_path / "o", windows=10_000)
    with pytest.raises(DeployError, match="int8 graph file .* not found"):
        deploy(tmp_path / "nope.hq8", tmp_path / "o")
    with pytest.raises(DeployError, match="do not fit the model"):
        deploy(g, tmp_path / "o", x=np.zeros((3, 6, 128), np.float32), windows=3)
    assert not (tmp_path / "o").exists()
    assert os.listdir(tmp_path) == []


def test_stack_high_water_mark_is_the_same_on_two_runs_of_one_image(fw, mubi, tmp_path):
    """The infer image measures its stack over every invoke; the figure is a property of the image, not of
    the run, and it covers at least the runtime's frames below main."""
    _, g = mubi
    dep = deploy(g, tmp_path / "dep", board="qemu-m33", windows=3)
    elf = toolchain.build_image(None, tmp_path / "build", board="qemu-m33", app="infer", source_dir=dep.out)
    first, second = (toolchain.run_qemu(elf, timeout=120) for _ in range(2))
    assert first.returncode == 0 and second.returncode == 0, first.stdout[-2000:]
    used, reserved = parse_infer_stack(first.stdout)
    assert (used, reserved) == parse_infer_stack(second.stdout)
    assert 200 < used <= reserved == 8192
    with pytest.raises(FirmwareError, match="no stack line"):
        parse_infer_stack(first.stdout.replace("stack infer", "stack ?"))
