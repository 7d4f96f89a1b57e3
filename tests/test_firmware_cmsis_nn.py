"""The deployed model on the real CMSIS-NN (firmware -DHARCORE_KERNELS=cmsis-nn, validate(cmsis_nn=...)).

CI has no CMSIS-NN tree: the tests that build against one run when HARCORE_TEST_CMSIS_NN_DIR names an
ARM-software/CMSIS-NN checkout and are skipped otherwise. The error paths (no tree, a bad tree, an unknown
HARCORE_KERNELS) always run.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from harcore import data, models, quant
from harcore.deploy import FirmwareError, ToolchainError, toolchain, validate
from harcore.deploy.validation import check_cmsis_nn_tree, parse_backends

from test_firmware_common import require_firmware_toolchain

CMSIS_NN_ENV = "HARCORE_TEST_CMSIS_NN_DIR"


def _cmsis_nn_tree() -> Path:
    d = os.environ.get(CMSIS_NN_ENV)
    if not d:
        pytest.skip(f"{CMSIS_NN_ENV} is not set: it names an ARM-software/CMSIS-NN source tree to build against "
                    "(CI has none)")
    return check_cmsis_nn_tree(d)


@pytest.fixture(scope="module")
def ds():
    return data.load("default")


def _ptq(name: str, ds, **kw):
    torch.set_num_threads(1)
    torch.manual_seed(0)
    net = models.create(name, in_channels=9, seq_len=128, num_classes=6, **kw).eval()
    return net, quant.quantize(net, ds.train.x[:128])


# ---- always: the error paths ------------------------------------------------------------------------------

def test_a_missing_or_bad_tree_is_a_toolchain_error_naming_it(tmp_path):
    missing = tmp_path / "no-such-cmsis-nn"
    with pytest.raises(ToolchainError, match=str(missing)):
        check_cmsis_nn_tree(missing)
    bad = tmp_path / "not-cmsis"
    (bad / "Include").mkdir(parents=True)
    (bad / "CMakeLists.txt").write_text("project(x)\n")
    with pytest.raises(ToolchainError, match=r"not-cmsis is not a CMSIS-NN source tree.*Include/arm_nnfunctions.h"):
        check_cmsis_nn_tree(bad)
    # validate refuses before building anything (the graph is never read)
    with pytest.raises(ToolchainError, match="no-such-cmsis-nn"):
        validate(tmp_path / "never-read.hq8", cmsis_nn=missing)


def test_cli_validate_cmsis_nn_error_names_the_path(tmp_path):
    from typer.testing import CliRunner

    from harcore.cli import app

    missing = tmp_path / "nowhere" / "CMSIS-NN"
    r = CliRunner().invoke(app, ["validate", str(tmp_path / "m.hq8"), "--cmsis-nn", str(missing)])
    assert r.exit_code == 1, r.output
    assert "CMSIS-NN tree" in r.output and "nowhere" in r.output and "Traceback" not in r.output


def test_parse_backends():
    text = ("harcore infer windows=2 steps=3 arena=100\n"
            "backend 0 kind=1 cmsis-nn arm_convolve_wrapper_s8 scratch=192 in=arena\n"
            "backend 1 kind=12 harcore\n"
            "backend 2 kind=11 cmsis-nn arm_lstm_unidirectional_s8 scratch=144 in=pool\n"
            "out 0 status=0 cycles=0 y=00\n")
    assert parse_backends(text) == {0: "cmsis-nn:arm_convolve_wrapper_s8", 1: "harcore",
                                    2: "cmsis-nn:arm_lstm_unidirectional_s8"}


def test_harcore_sources_do_not_depend_on_cmsis_nn():
    """Only firmware/backends/cmsis-nn includes CMSIS-NN's header; the kernels and the runtime reach the backend
    through the HARCORE_RUNTIME_BACKEND hook alone, which the host build never defines."""
    repo = Path(__file__).resolve().parents[1]
    for d in ("src/cpp/kernels", "src/cpp/runtime", "src/cpp/bindings", "firmware/common", "firmware/apps"):
        for f in (repo / d).rglob("*.[ch]pp"):
            text = f.read_text()
            assert '#include "arm_nnfunctions.h"' not in text and "<arm_nnfunctions.h>" not in text, f
    rt = (repo / "src/cpp/runtime/harcore_runtime.cpp").read_text()
    hook = rt[rt.index("#ifdef HARCORE_RUNTIME_BACKEND"):]
    assert "backend_run_step" in hook[:hook.index("#endif")]
    assert rt.count("backend_run_step") == 1
    assert "HARCORE_RUNTIME_BACKEND" not in (repo / "CMakeLists.txt").read_text()
    backend = (repo / "firmware/backends/cmsis-nn/cmsis_nn_steps.cpp").read_text()
    assert '#include "arm_nnfunctions.h"' in backend


def _configure_error(tmp_path: Path, *args: str) -> str:
    """The FirmwareError message of a configure that must fail, with CMake's line wrapping undone."""
    app = tmp_path / "app"
    app.mkdir(parents=True, exist_ok=True)
    (app / "empty.cpp").write_text("// configure only\n")
    with pytest.raises(FirmwareError) as e:
        toolchain.build_image(app, tmp_path / "build", board="qemu-m33", app="infer", cmake_args=args, timeout=300)
    return " ".join(str(e.value).split())


def test_cmake_option_without_a_tree_or_with_a_bad_one_fails_clearly(tmp_path, monkeypatch):
    require_firmware_toolchain(monkeypatch)
    msg = _configure_error(tmp_path / "a", "-DHARCORE_KERNELS=cmsis-nn")
    assert "HARCORE_KERNELS=cmsis-nn needs -DHARCORE_CMSIS_NN_DIR" in msg
    bad = tmp_path / "not-cmsis"
    bad.mkdir()
    msg = _configure_error(tmp_path / "b", "-DHARCORE_KERNELS=cmsis-nn", f"-DHARCORE_CMSIS_NN_DIR={bad}")
    assert f"HARCORE_CMSIS_NN_DIR '{bad}' is not a CMSIS-NN source tree" in msg
    msg = _configure_error(tmp_path / "c", "-DHARCORE_KERNELS=tflm")
    assert "unknown HARCORE_KERNELS 'tflm' (harcore, cmsis-nn)" in msg


# ---- with HARCORE_TEST_CMSIS_NN_DIR: the same model on CMSIS-NN, bit for bit ---------------------------------

def _check(rep, n: int) -> None:
    assert rep.bit_exact and rep.exact_windows == n
    c = rep.cmsis_nn
    assert c["exact_windows"] == n and c["differing_values"] == 0 and c["statuses_nonzero"] == 0
    assert np.array_equal(rep.cmsis_nn_outputs, rep.host_outputs)
    assert rep.steps and all(s.cmsis_nn_insns and s.cmsis_nn_insns > 0 for s in rep.steps)
    assert all(s.cmsis_nn_backend for s in rep.steps)
    assert c["pool_steps"] == []  # harcore's arena scratch holds CMSIS-NN's buffers (same sizes, DSP build)
    # the per-step counts of the CMSIS-NN build add up to its inference, as harcore's do
    total = sum(s.cmsis_nn_insns for s in rep.steps)
    assert abs(total - c["insns_per_inference"]["mean"]) < 0.02 * c["insns_per_inference"]["mean"]


@pytest.mark.slow
@pytest.mark.parametrize("name, expected", [
    ("mubiconvlstm", {"conv": "cmsis-nn:arm_convolve_wrapper_s8", "max_pool": "cmsis-nn:arm_max_pool_s8",
                      "lstm": "cmsis-nn:arm_lstm_unidirectional_s8",
                      "fully_connected": "cmsis-nn:arm_fully_connected_per_channel_s8"}),
    # TinierHAR: depthwise separable convs, residual ADD, a BiGRU (no CMSIS-NN function: harcore's kernel)
    ("tinierhar", {"depthwise": "cmsis-nn:arm_depthwise_conv_wrapper_s8", "gru": "harcore"}),
])
def test_validate_on_the_real_cmsis_nn_is_bit_exact(name, expected, ds, monkeypatch, tmp_path):
    tree = _cmsis_nn_tree()
    require_firmware_toolchain(monkeypatch)
    _, g = _ptq(name, ds)
    n = 20
    rep = validate(g, windows=n, cmsis_nn=tree)
    _check(rep, n)
    by_kind = {s.kind: s.cmsis_nn_backend for s in rep.steps}
    for kind, backend in expected.items():
        assert by_kind.get(kind) == backend, (kind, by_kind)
    text = rep.render()
    assert "CMSIS-NN build" in text and "ran on" in text and "arm_convolve_wrapper_s8" in text
    d = json.loads(rep.to_json())
    assert d["cmsis_nn"]["exact_windows"] == n and d["cmsis_nn"]["dir"] == str(tree)
    assert all("cmsis_nn_insns" in s and "ratio_to_cmsis_nn" in s for s in d["steps"])


@pytest.mark.slow
def test_cli_validate_cmsis_nn_json(ds, monkeypatch, tmp_path):
    tree = _cmsis_nn_tree()
    require_firmware_toolchain(monkeypatch)
    from typer.testing import CliRunner

    from harcore.cli import app

    _, g = _ptq("cnn_student", ds)
    path = tmp_path / "student.hq8"
    g.save(path)
    r = CliRunner().invoke(app, ["validate", str(path), "--windows", "10", "--cmsis-nn", str(tree),
                                 "--json", str(tmp_path / "rep.json")])
    assert r.exit_code == 0, r.output
    rep = json.loads((tmp_path / "rep.json").read_text())
    assert rep["bit_exact"] and rep["cmsis_nn"]["exact_windows"] == 10
    assert {s["cmsis_nn_backend"] for s in rep["steps"] if s["kind"] == "fully_connected"} == {
        "cmsis-nn:arm_fully_connected_per_channel_s8"}


@pytest.mark.slow
def test_cmsis_nn_scratch_beyond_the_arena_goes_to_the_pool_or_is_refused(ds, monkeypatch, tmp_path):
    """A step whose arena scratch is too small for CMSIS-NN's buffer (made so by editing the generated step table:
    the first conv loses its scratch) runs with the static pool; a pool too small makes the image refuse to run,
    naming the step, the bytes and the option."""
    import re

    from harcore.deploy import deploy
    from harcore.quant.simulate import simulate

    tree = _cmsis_nn_tree()
    require_firmware_toolchain(monkeypatch)
    _, g = _ptq("mubiconvlstm", ds)
    dep = deploy(g, tmp_path / "fw", board="qemu-m33", windows=4)
    model = dep.out / "src" / "model.cpp"
    src, n = re.subn(r"(\{rt::kConv, -?\d+, -?\d+, -?\d+, -?\d+), \d+, (\d+), &s0_args\}", r"\1, -1, 0, &s0_args}",
                     model.read_text())
    assert n == 1
    model.write_text(src)
    args = ("-DHARCORE_KERNELS=cmsis-nn", f"-DHARCORE_CMSIS_NN_DIR={tree}")

    small = toolchain.build_image(None, tmp_path / "small", board="qemu-m33", app="infer", source_dir=dep.out,
                                  cmake_args=(*args, "-DHARCORE_CMSIS_NN_SCRATCH_BYTES=64"))
    r = toolchain.run_qemu(small, timeout=300)
    assert r.returncode == 4 and "out 0" not in r.stdout
    assert "backend 0 kind=1 cmsis-nn arm_convolve_wrapper_s8 scratch=192 in=none" in r.stdout
    assert re.search(r"error: step 0 needs \d+ B of CMSIS-NN scratch: .* pool of 64 B "
                     r"\(-DHARCORE_CMSIS_NN_SCRATCH_BYTES\)", r.stdout), r.stdout

    pooled = toolchain.build_image(None, tmp_path / "pooled", board="qemu-m33", app="infer", source_dir=dep.out,
                                   cmake_args=args)
    r = toolchain.run_qemu(pooled, timeout=300)
    assert r.returncode == 0, r.stdout
    assert "backend 0 kind=1 cmsis-nn arm_convolve_wrapper_s8 scratch=192 in=pool" in r.stdout
    assert "backend 2 kind=1 cmsis-nn arm_convolve_wrapper_s8 scratch=320 in=arena" in r.stdout
    from harcore.deploy.validation import parse_infer_output

    outs, status, _ = parse_infer_output(r.stdout, 4, 6)
    assert (status == 0).all()
    assert np.array_equal(outs, np.asarray(simulate(g, dep.int8_inputs)).reshape(4, -1))
