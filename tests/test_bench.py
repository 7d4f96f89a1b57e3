"""harcore bench: finished runs are never redone, a killed or partial run is, the report has its columns."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from harcore.errors import MissingExtraError
from harcore.experiments import BenchSpec, execute, run_bench

TINY = {"filters": 4, "lstm_hidden": 4}


def _spec(**kw) -> BenchSpec:
    d = dict(models=["mubiconvlstm"], seeds=[0, 1], variants={"mubiconvlstm": {"tiny": TINY}}, epochs=1,
             batch_size=256, calibration_windows=64)
    d.update(kw)
    return BenchSpec(**d)


class Counting:
    def __init__(self):
        self.calls = []

    def __call__(self, run, spec, out):
        self.calls.append(str(run.rel))
        return execute(run, spec, out)


def test_second_invocation_trains_nothing_and_partial_results_are_redone(tmp_path):
    spec = _spec()
    first = Counting()
    res = run_bench(spec, tmp_path, executor=first, progress=False)
    assert len(first.calls) == 2 and sorted(res["ran"]) == sorted(first.calls)
    table = res["report"]["table"]
    assert len(table) == 1
    row = table[0]
    assert row["seeds"] == 2 and row["params"] > 0 and row["macs"] > 0 and row["int8_flash"] > 0
    assert 0 <= row["int8_macro_f1"] <= 100 and row["f1_per_kparam"] == pytest.approx(row["macro_f1"] / (row["params"] / 1e3))
    for f in ("results.json", "report.md", "report.html", "f1_vs_macs.png", "f1_vs_params.png"):
        assert (tmp_path / f).stat().st_size > 0
    assert "validation subjects only" in (tmp_path / "report.md").read_text()

    second = Counting()
    res = run_bench(spec, tmp_path, executor=second, progress=False)
    assert second.calls == [] and res["ran"] == [] and len(res["skipped"]) == 2

    # A truncated result file (a writer killed mid-write without the atomic rename) is not finished.
    victim = tmp_path / "runs/default/mubiconvlstm/tiny/seed-1.json"
    victim.write_text(victim.read_text()[:40])
    third = Counting()
    run_bench(spec, tmp_path, executor=third, progress=False)
    assert third.calls == ["runs/default/mubiconvlstm/tiny/seed-1"]
    assert json.loads(victim.read_text())["key"]["seed"] == 1

    # Other settings make the stored results stale: they are redone, not reused.
    fourth = Counting()
    run_bench(_spec(epochs=2), tmp_path, executor=fourth, progress=False)
    assert len(fourth.calls) == 2


def test_killed_run_is_not_taken_as_finished(tmp_path):
    spec_file = tmp_path / "spec.json"
    spec_file.write_text(json.dumps(dict(models=["mubiconvlstm"], seeds=[0], variants={"mubiconvlstm": {"tiny": TINY}},
                                         epochs=30, patience=None, batch_size=256, int8=False)))
    out = tmp_path / "out"
    run_dir = out / "runs/default/mubiconvlstm/tiny/seed-0"
    proc = subprocess.Popen([sys.executable, "-m", "harcore.cli", "bench", str(spec_file), "--out", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (run_dir / "last.pt").exists():  # the run has trained at least one epoch
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not (out / "runs/default/mubiconvlstm/tiny/seed-0.json").exists()
    spec = BenchSpec.load(spec_file)
    again = Counting()
    res = run_bench(spec, out, executor=again, progress=False)
    assert again.calls == ["runs/default/mubiconvlstm/tiny/seed-0"]
    rec = json.loads((out / "runs/default/mubiconvlstm/tiny/seed-0.json").read_text())
    assert rec["epochs_run"] == 30 and res["report"]["table"][0]["int8_macro_f1"] is None


def test_parallel_without_ray_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(MissingExtraError, match=r"pip install 'harcore\[ray\]'"):
        run_bench(_spec(seeds=[0]), tmp_path, parallel=2, progress=False)
    # Sequential needs no Ray.
    res = run_bench(_spec(seeds=[0], int8=False), tmp_path, parallel=1, progress=False)
    assert len(res["ran"]) == 1


def test_bad_specs_are_named(tmp_path):
    bad = tmp_path / "b.toml"
    bad.write_text('models = ["mubiconvlstm"]\nepoch = 3\n')
    with pytest.raises(Exception, match=r"b.toml: unknown field\(s\) \['epoch'\]"):
        BenchSpec.load(bad)
    broken = tmp_path / "c.toml"
    broken.write_text("models = [\n")
    with pytest.raises(Exception, match="c.toml: not a valid toml"):
        BenchSpec.load(broken)
    with pytest.raises(ValueError, match="variants"):
        BenchSpec(models=["tinierhar"], variants={"mubiconvlstm": {"A1": {"pool": False}}})


@pytest.mark.slow
def test_parallel_runs_through_ray(tmp_path):
    pytest.importorskip("ray")
    res = run_bench(_spec(int8=False), tmp_path, parallel=2, progress=False)
    assert len(res["ran"]) == 2 and res["report"]["table"][0]["seeds"] == 2


def test_distill_teacher_student_int8(tmp_path):
    from harcore.errors import CheckpointError
    from harcore.experiments.distill import DistillConfig, run_distill

    cfg = DistillConfig(teacher_options={"widths": (8, 16)}, student_options={"hidden": (16,)}, teacher_epochs=1,
                        epochs=1, threads=1, out=str(tmp_path / "a"))
    res = run_distill(cfg)
    assert res["kd_alpha"] == 0.5 and res["kd_temperature"] == 4.0
    s, q = res["student"], res["student_int8"]
    assert s["params"] == 9 * 128 * 16 + 16 + 16 * 6 + 6
    assert 0 <= q["test_accuracy"] <= 1 and q["file_bytes"] > 0
    assert abs(q["test_accuracy"] - s["test_accuracy"]) < 0.1  # int8 close to float on the same student
    # The trained teacher's best weights can be reused; a bad checkpoint is named.
    best = tmp_path / "a" / "teacher" / "best.pt"
    res2 = run_distill(DistillConfig(teacher_options={"widths": (8, 16)}, teacher_checkpoint=str(best),
                                     student_options={"hidden": (16,)}, epochs=1, threads=1, int8=False,
                                     out=str(tmp_path / "b")))
    assert res2["teacher"]["test_accuracy"] == res["teacher"]["test_accuracy"]
    assert not (tmp_path / "b" / "teacher").exists()
    with pytest.raises(CheckpointError, match="nope.pt"):
        run_distill(DistillConfig(teacher_checkpoint=str(tmp_path / "nope.pt"), epochs=1, out=str(tmp_path / "c")))



def test_distill_into_a_searched_student_from_the_cli(tmp_path):
    # docs/hpo.md: --student sftnas --student-option arch=<a search's arch.json>
    from typer.testing import CliRunner

    from harcore import models
    from harcore.cli import app
    from harcore.nas.derive import derive
    from harcore.nas.supernet import Supernet

    arch = derive(Supernet("tinyhar", 9, 128, 6, filters=4, tail={"filter_num": 4}))  # a search's argmax network
    (tmp_path / "arch.json").write_text(arch.to_json())
    r = CliRunner().invoke(app, ["distill", "--teacher-option", "widths=8,16", "--student", "sftnas",
                                 "--student-option", f"arch={tmp_path / 'arch.json'}", "--teacher-epochs", "1",
                                 "--epochs", "1", "--threads", "1", "--no-int8", "--out", str(tmp_path / "d")])
    assert r.exit_code == 0, r.output
    res = json.loads((tmp_path / "d" / "distill.json").read_text())
    want = models.create("sftnas", arch=arch)
    assert res["student"]["params"] == sum(p.numel() for p in want.parameters())
