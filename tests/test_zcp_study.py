"""The zcp study job: results stored as they finish, a SIGKILLed study resumes without redoing work,
the report and JSON summary, the CLI, and Ray as an optional extra."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from harcore import zcp
from harcore.zcp import study

ARCHS = [zcp.Arch("cnn", (8, 16), (0.1, 0.2), (3, 5)), zcp.Arch("lstm", (8, 8), (0.1, 0.0)),
         zcp.Arch("cnn", (16,), (0.5,), (9,)), zcp.Arch("cnn", (8, 8, 8), (0.1, 0.1, 0.1), (2, 2, 2))]

SYNTH = """
import numpy as np
from harcore.zcp.study import StudyData
def synth():
    rng = np.random.default_rng(0)
    def part(n):
        y = rng.integers(0, 3, n)
        x = rng.normal(size=(n, 3, 24)).astype(np.float32) + y[:, None, None].astype(np.float32)
        return x, y.astype(np.int64)
    (a, b), (c, d), (e, f) = part(96), part(48), part(48)
    return StudyData("synthetic", a, b, c, d, e, f, 3, ["acc_x", "acc_y", "acc_z"], 50.0)
"""


def _synth() -> study.StudyData:
    ns: dict = {}
    exec(SYNTH, ns)
    return ns["synth"]()


@pytest.fixture(autouse=True)
def _one_thread():
    import torch
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _cfg(n: int = 4, epochs: int = 2) -> study.StudyConfig:
    return study.StudyConfig("synthetic", n, epochs=epochs, batch_size=32, proxy_batch=16)


def test_study_writes_results_summary_and_report(tmp_path):
    seen = []
    s = study.run_study(_cfg(), tmp_path, data=_synth(), arch_list=ARCHS, progress=False,
                        on_result=lambda r: seen.append(r["index"]))
    assert seen == [0, 1, 2, 3]
    assert sorted(p.name for p in (tmp_path / "archs").iterdir()) == [f"{i:05d}.json" for i in range(4)]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["n_archs"] == 4
    for name in zcp.ZCP_PROXIES + ("ensemble", "params", "macs"):
        m = summary["proxies"][name]
        for key in ("spearman", "talent_rate", "delta1", "delta10"):
            assert key in m
        assert set(m["noise"]) == {str(v) for v in zcp.NOISE_VARIANCES}
    r = json.loads((tmp_path / "archs" / "00001.json").read_text())
    assert r["arch"]["kind"] == "lstm" and len(r["history"]) == 2
    assert r["val_f1"] == max(h["val_macro_f1"] for h in r["history"])
    for f in ("report.md", "report.html", "fig_scatter.png", "fig_talent.png", "fig_noise.png"):
        assert (tmp_path / f).stat().st_size > 0
    assert "| synflow |" in (tmp_path / "report.md").read_text()
    # Deterministic: the same architecture, index and settings give the same record.
    r2 = study.run_architecture(1, ARCHS[1], _synth(), _cfg())
    assert r2["scores"] == r["scores"] and r2["val_f1"] == r["val_f1"] and r2["noisy_test_f1"] == r["noisy_test_f1"]


def test_resume_refuses_other_settings(tmp_path):
    study.run_study(_cfg(n=1, epochs=1), tmp_path, data=_synth(), arch_list=ARCHS, progress=False)
    with pytest.raises(study.StudyError, match="epochs"):
        study.run_study(_cfg(n=1, epochs=2), tmp_path, data=_synth(), arch_list=ARCHS, progress=False)


def test_killed_study_resumes_without_redoing(tmp_path):
    out = tmp_path / "st"
    script = SYNTH + textwrap.dedent(f"""
        import time, torch
        torch.set_num_threads(1)
        from harcore import zcp
        from harcore.zcp.study import StudyConfig, run_study
        archs = {[a.to_dict() for a in ARCHS]!r}
        def hold(r):
            if r["index"] == 1:
                print("HOLD", flush=True)
                time.sleep(120)   # killed here: two architectures stored, two to go
        run_study(StudyConfig("synthetic", 4, epochs=2, batch_size=32, proxy_batch=16), {str(out)!r},
                  data=synth(), arch_list=[zcp.Arch.from_dict(a) for a in archs], progress=False, on_result=hold)
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 90
        line = ""
        while time.time() < deadline and "HOLD" not in line:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                pytest.fail(f"study subprocess ended early: {proc.stderr.read()}")
        assert "HOLD" in line
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    stored = {p.name: p.read_bytes() for p in (out / "archs").iterdir()}
    assert sorted(stored) == ["00000.json", "00001.json"]
    assert not (out / "summary.json").exists()
    redone = []
    s = study.run_study(_cfg(), out, data=_synth(), arch_list=ARCHS, progress=False,
                        on_result=lambda r: redone.append(r["index"]))
    assert redone == [2, 3]
    assert {n: (out / "archs" / n).read_bytes() for n in stored} == stored
    assert s["n_archs"] == 4


def test_parallel_without_ray_is_a_missing_extra(tmp_path, monkeypatch):
    import builtins

    from harcore.errors import MissingExtraError

    real = builtins.__import__

    def no_ray(name, *a, **k):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(MissingExtraError, match=r"harcore\[ray\]"):
        study.run_study(_cfg(n=1), tmp_path, data=_synth(), arch_list=ARCHS, parallel=True, progress=False)


def test_accelerometer_channel_choice():
    uci = ["body_acc_x", "body_acc_y", "body_acc_z", "body_gyro_x", "total_acc_x", "total_acc_y", "total_acc_z"]
    assert study._accel_channels(uci, "hapt") == [4, 5, 6]
    assert study._accel_channels(["ankle_forward", "thigh_lateral"], "daphnet") == [0, 1]
    with pytest.raises(study.StudyError, match="no accelerometer"):
        study._accel_channels(["gyro_x"], "other")


def test_default_dataset_protocol():
    d = study.load_study_data("default", seed=0)
    assert d.channels == ["total_acc_x", "total_acc_y", "total_acc_z"] and d.sample_rate == 50.0
    n = len(d.x_train) + len(d.x_val) + len(d.x_test)
    assert 0.1 < len(d.x_test) / n < 0.3 and 0.08 < len(d.x_val) / n < 0.25


def test_cli_study(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from harcore.cli import app

    monkeypatch.setattr(study, "load_study_data", lambda *a, **k: _synth())
    monkeypatch.setattr(study, "sample", lambda n, seed=0, seq_len=100: ARCHS[:n])
    res = CliRunner().invoke(app, ["zcp", "study", "--dataset", "default", "--archs", "3", "--epochs", "1",
                                   "--out", str(tmp_path), "--proxy-batch", "16", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "synflow" in res.output
    assert json.loads((tmp_path / "summary.json").read_text())["n_archs"] == 3
    res = CliRunner().invoke(app, ["zcp", "space"])
    assert json.loads(res.output) == {"cnn": "9.2252e+25", "lstm": "1.9754e+09"}


@pytest.mark.slow
def test_parallel_study_on_local_ray_matches_sequential(tmp_path):
    ray = pytest.importorskip("ray")
    if ray.is_initialized():  # another test's Ray: this one wants its own with one CPU
        ray.shutdown()
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        study.run_study(_cfg(n=2, epochs=1), tmp_path / "par", data=_synth(), arch_list=ARCHS, parallel=True,
                        progress=False)
    finally:
        ray.shutdown()
    study.run_study(_cfg(n=2, epochs=1), tmp_path / "seq", data=_synth(), arch_list=ARCHS, progress=False)
    for i in range(2):
        a = json.loads((tmp_path / "par" / "archs" / f"{i:05d}.json").read_text())
        b = json.loads((tmp_path / "seq" / "archs" / f"{i:05d}.json").read_text())
        assert a["scores"] == b["scores"] and a["val_f1"] == b["val_f1"]


SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


@pytest.mark.slow
@pytest.mark.parametrize("name,archive,channels,classes", [
    ("hapt", "hapt_v2.1_rawdata.tar.xz", 3, 6), ("hapt-12", "hapt_v2.1_rawdata.tar.xz", 3, 12),
    ("daphnet", "daphnet_fog_partial_7of17.tar.xz", 9, 2)])
def test_real_data_protocol(name, archive, channels, classes):
    import os
    root = Path(os.environ.get("HARCORE_SHARED") or SHARED) / archive
    if not root.exists():
        pytest.skip(f"{root} not present")
    import contextlib
    with pytest.warns(UserWarning, match="partial") if name == "daphnet" else contextlib.nullcontext():
        d = study.load_study_data(name, root, seed=0)
    assert d.sample_rate == 50.0 and d.seq_len == 100
    assert d.in_channels == channels and d.num_classes == classes
    n = len(d.x_train) + len(d.x_val) + len(d.x_test)
    assert 0.1 < len(d.x_test) / n < 0.3
