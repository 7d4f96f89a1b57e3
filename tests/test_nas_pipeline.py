"""The main job (harcore search): stages, report, failures shown, budget error, resume after a kill, Ray sweep."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from harcore.nas.pipeline import JobConfig, run_job

torch.set_num_threads(1)


def quiet_console():
    import io

    from rich.console import Console

    return Console(file=io.StringIO(), width=200, color_system=None)


def tiny(tmp_path: Path, **kw) -> JobConfig:
    base = dict(backbone="deepconvlstm", filters=4, search_epochs=1, finetune_epochs=1, out=str(tmp_path / "run"),
                progress=False)
    base.update(kw)
    return JobConfig(**base)


@pytest.mark.sanitize
def test_job_runs_every_stage_and_reports_each_honestly(tmp_path):
    con = quiet_console()
    res = run_job(tiny(tmp_path), console=con)
    st = res.stages
    for name in ("data", "budget", "search", "derive", "finetune", "evaluate", "fit", "report"):
        assert st[name].status == "ok", (name, st[name].detail)
    # int8 / firmware stages: either they ran, or they failed / were skipped with a reason — never silently
    for name in ("int8", "int8-eval", "deploy", "validate"):
        assert st[name].status in ("ok", "failed", "skipped")
        if st[name].status != "ok":
            assert st[name].detail
    out = con.file.getvalue()
    for s in res.failed():
        assert f"{s.name} FAILED" in out and "INCOMPLETE" in out
        assert f"stage '{s.name}' failed" in (res.run_dir / "report.md").read_text()
    job = json.loads((res.run_dir / "job.json").read_text())
    assert job["stages"]["derive"]["status"] == "ok"
    assert "scratch weights" in job["stages"]["derive"]["detail"]
    n = job["stages"]["data"]["data"]["train"] + job["stages"]["data"]["data"]["val"]  # train_on="all", the default
    assert f"on all {n:,} training + validation windows, the last epoch kept" in job["stages"]["finetune"]["detail"]
    md = (res.run_dir / "report.md").read_text()
    assert "## Per-layer cost" in md and "confusion_float.png" in md and "## Float vs int8 vs target" in md
    assert (res.run_dir / "report.html").read_text().startswith("<!doctype html>")
    for png in ("confusion_float.png", "search.png"):
        assert (res.run_dir / png).stat().st_size > 1000
    # the derived model was saved as an ordinary reloadable model, and its cost is what the report says
    from harcore.cost import profile
    from harcore.models import sftnas

    m = sftnas.load(res.run_dir / "model.pt")
    assert profile(m, (9, 128)).total.macs == job["stages"]["derive"]["data"]["total"]["macs"]


@pytest.mark.slow
@pytest.mark.sanitize
def test_job_int8_by_qat_reports_float_int8_and_target(tmp_path):
    """QAT is the default int8 method: the stage says so, float -> int8 macro-F1 is printed, and the report's
    float / int8 / target table carries the validate stage's figures (or says why it has none)."""
    con = quiet_console()
    res = run_job(tiny(tmp_path, qat_epochs=1), console=con)
    st, out = res.stages, con.file.getvalue()
    assert res.config.int8 == "qat"
    assert st["int8"].status == "ok", st["int8"].detail
    assert st["int8"].data["method"] == "qat" and st["int8"].data["epochs"] == 1
    assert st["int8"].detail.startswith("QAT (harcore.quant.qat: 1 epoch(s)")
    from harcore import quant

    g = quant.load(res.run_dir / "model.hq8")
    assert g.meta["qat"] is True and g.meta["qat_epochs"] == 1
    f_float = st["evaluate"].data["metrics"]["macro_f1"]
    f_int8 = st["int8-eval"].data["metrics"]["macro_f1"]
    assert f"QAT: test macro-F1 float {f_float:.4f} -> int8 {f_int8:.4f}" in out
    md = (res.run_dir / "report.md").read_text()
    assert "int8 by QAT: 1 epoch(s)" in md and "| figure | float | int8 (QAT, host) | target (Cortex-M33, QEMU) |" in md
    assert f"| macro-F1 (test split, 864 windows) | {f_float:.4f} | {f_int8:.4f} | - |" in md
    if st["validate"].status == "ok":
        v = st["validate"].data["summary"]
        n = v["windows"]
        assert v["bit_exact"] and f"| exact-match windows (target == host int8) | - | - | {n}/{n} |" in md
        assert (f"| macro-F1 (the {n} windows run on the M33) | {v['macro_f1']['float']:.4f} | "
                f"{v['macro_f1']['host_int8']:.4f} | {v['macro_f1']['target']:.4f} |") in md
        assert f"arm-none-eabi-size text+data | - | {v['estimates']['budget_flash']:,} | {v['image']['flash']:,} |" in md
        assert (f"| peak SRAM (B): cost model / linked arena | - | {v['estimates']['peak_sram']:,} | "
                f"{v['estimates']['arena_linked']:,} |") in md
    else:  # no toolchain / QEMU here: the report says so instead of inventing target figures
        assert "target figures: not measured" in md


def test_job_int8_by_ptq_and_bad_int8_option(tmp_path):
    from typer.testing import CliRunner

    from harcore.cli import app

    r = CliRunner().invoke(app, ["search", "--int8", "fp16"])
    assert r.exit_code == 2 and "JobConfig.int8: must be 'qat' or 'ptq'" in r.output
    with pytest.raises(ValueError, match="JobConfig.qat_epochs"):
        JobConfig(qat_epochs=0).int8_options()
    r = CliRunner().invoke(app, ["search", "--init", "random"])
    assert r.exit_code == 2 and "JobConfig.init: must be 'scratch' or 'supernet'" in r.output
    cfg = tiny(tmp_path, int8="ptq", init="supernet")  # and the derived model starts from the supernet's weights
    assert cfg.int8_options()["method"] == "ptq"
    assert JobConfig().int8_options() == {"method": "qat", "epochs": 3, "lr": 2e-4, "batch_size": 64}
    con = quiet_console()
    res = run_job(cfg, console=con)
    assert res.stages["int8"].status == "ok" and res.stages["int8"].detail.startswith("PTQ (harcore.quant.quantize")
    assert "supernet weights" in res.stages["derive"].detail
    assert "PTQ: test macro-F1 float" in con.file.getvalue()
    assert "int8 (PTQ, host)" in (res.run_dir / "report.md").read_text()


def test_train_on_train_keeps_the_best_validation_epoch_and_a_bad_value_is_a_usage_error(tmp_path):
    from typer.testing import CliRunner

    from harcore.cli import app
    from harcore.nas.pipeline import final_splits, load_data

    res = run_job(tiny(tmp_path, train_on="train", int8="ptq", finetune_epochs=2), console=quiet_console())
    assert res.stages["finetune"].status == "ok"
    assert "best val macro-F1" in res.stages["finetune"].detail and "(epoch " in res.stages["finetune"].detail
    ds = load_data(tiny(tmp_path))
    train, val = final_splits(ds, "all")
    assert val is None and len(train) == len(ds.train) + len(ds.val)
    assert np.array_equal(train.x[len(ds.train):], ds.val.x) and np.array_equal(train.subjects[:len(ds.train)],
                                                                                  ds.train.subjects)
    assert final_splits(ds, "train") == (ds.train, ds.val)
    r = CliRunner().invoke(app, ["search", "--train-on", "test"])
    assert r.exit_code == 2 and "JobConfig.train_on: must be 'all' or 'train'" in r.output


def test_impossible_budget_fails_the_budget_stage_before_searching(tmp_path):
    con = quiet_console()
    res = run_job(tiny(tmp_path, sram=500), console=con)
    assert res.stages["budget"].status == "failed"
    assert "impossible budget: --sram 500B is below" in res.stages["budget"].detail
    assert res.stages["search"].status == "skipped" and not (res.run_dir / "search_last.pt").exists()
    assert "budget FAILED" in con.file.getvalue()


def test_cli_bad_size_is_a_usage_error():
    from typer.testing import CliRunner

    from harcore.cli import app

    r = CliRunner().invoke(app, ["search", "--sram", "lots"])
    assert r.exit_code == 2 and "is not a size" in r.output


# ---- run folders: nothing overwritten, nothing lost ----------------------------------------------

def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def cli(*args: str):
    from typer.testing import CliRunner

    from harcore.cli import app

    return CliRunner().invoke(app, ["search", *args])


def test_out_holding_other_files_nothing_to_resume_and_a_file_valued_out_are_one_line_errors(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    r = cli("--out", str(mine))
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert f"run folder {mine} is not empty" in r.output and "thesis.tex" in r.output and "--overwrite" in r.output
    assert snapshot(mine) == {"thesis.tex": b"years of work"}
    for empty in (tmp_path / "empty", tmp_path / "missing"):
        if empty.name == "empty":
            empty.mkdir()
        r = cli("--out", str(empty), "--resume")
        assert r.exit_code == 1 and f"nothing to resume in {empty}" in r.output and "(resuming)" not in r.output
        assert not empty.exists() or not any(empty.iterdir())
    f = tmp_path / "a_file"
    f.write_text("x")
    for out in (f, f / "run"):
        r = cli("--out", str(out))
        assert r.exit_code == 1 and "Traceback" not in r.output and "is a file, not a folder" in r.output
        assert len(r.output.strip().splitlines()) == 1, r.output
    r = cli("--out", str(tmp_path / "x"), "--resume", "--overwrite")
    assert r.exit_code == 2 and "either --resume or --overwrite" in r.output


def test_a_finished_run_is_not_overwritten_and_a_failed_resume_leaves_it_as_it_was(tmp_path):
    from harcore.errors import CheckpointError, RunExistsError

    cfg = tiny(tmp_path, int8="ptq")
    res = run_job(cfg, console=quiet_console())
    assert res.stages["finetune"].status == "ok" and json.loads((res.run_dir / "job.json").read_text())["finished"]
    before = snapshot(res.run_dir)
    assert {"job.json", "report.md", "model.pt", "search_last.pt", "finetune/last.pt"} <= set(before)
    with pytest.raises(RunExistsError, match=r"holds a finished harcore run; .*--overwrite"):
        run_job(cfg, console=quiet_console())
    assert snapshot(res.run_dir) == before
    con = quiet_console()
    with pytest.raises(CheckpointError) as e:  # another --beta1: refused before anything is written
        run_job(tiny(tmp_path, int8="ptq", beta1=0.5, seed=1), resume=True, console=con)
    assert "config.beta1" in str(e.value) and "config.seed" in str(e.value) and "search_last.pt" in str(e.value)
    assert snapshot(res.run_dir) == before
    ck = res.run_dir / "finetune" / "last.pt"
    ck.write_bytes(before["finetune/last.pt"][:500])  # damaged fine-tuning checkpoint: found before any stage
    with pytest.raises(CheckpointError, match=r"finetune/last\.pt: damaged or not a harcore checkpoint"):
        run_job(cfg, resume=True, console=quiet_console())
    assert snapshot(res.run_dir) == dict(before, **{"finetune/last.pt": before["finetune/last.pt"][:500]})
    ck.write_bytes(before["finetune/last.pt"])
    # other data under the same configuration: the search stage refuses, and the folder is still untouched
    from harcore.nas import pipeline

    real = pipeline.load_data

    def fewer(c):
        ds = real(c)
        ds.train = type(ds.train)(ds.train.x[:-1], ds.train.y[:-1], ds.train.subjects[:-1])
        return ds

    pipeline.load_data = fewer
    try:
        with pytest.raises(CheckpointError, match=r"n_train: .* was written with \d+, resuming with \d+"):
            run_job(cfg, resume=True, console=quiet_console())
    finally:
        pipeline.load_data = real
    assert snapshot(res.run_dir) == before


# ---- your data through the main job -----------------------------------------------------------------

NAMES = ("alice", "bob", "chen", "dana", "emil", "fatou", "gita", "hugo")


def write_custom_folder(root: Path, per_class: int = 4) -> Path:
    """harcore's folder format (docs/data.md) from a slice of the built-in data: one recording per volunteer
    (named, not numbered), the windows of each activity back to back as one labelled segment."""
    from harcore import data as hd

    ws = hd.load_windows("default")
    (root / "recordings").mkdir(parents=True)
    rows = ["recording,subject,start,end,label"]
    for name, subj in zip(NAMES, np.unique(ws.subjects)[: len(NAMES)]):
        parts, pos = [], 0
        for k, cls in enumerate(ws.classes):
            idx = np.nonzero((ws.subjects == subj) & (ws.y == k))[0][:per_class]
            seg = np.concatenate(list(ws.x[idx]), axis=1)  # (C, per_class * 128)
            rows.append(f"{name}_wrist,{name},{pos},{pos + seg.shape[1]},{cls}")
            parts.append(seg)
            pos += seg.shape[1]
        np.savetxt(root / "recordings" / f"{name}_wrist.csv", np.concatenate(parts, axis=1).T, fmt="%.5f",
                   delimiter=",", header=",".join(ws.channels), comments="")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    (root / "dataset.json").write_text(json.dumps({"sample_rate": 50, "classes": list(ws.classes), "window": 128,
                                                  "step": 128, "channels": list(ws.channels), "name": "wrist",
                                                  "test_subjects": ["gita", "hugo"]}))
    return root


def test_data_dir_alone_is_your_data_never_ignored(tmp_path):
    from harcore.data import DATASETS
    from harcore.nas.pipeline import load_data

    folder = write_custom_folder(tmp_path / "wrist")
    cfg = JobConfig(data_dir=str(folder))
    assert cfg.data_source() == ("folder", "custom", str(folder)) and cfg.resolved_preset() == "paper"
    assert JobConfig(dataset="custom", data_dir=str(folder)).data_source()[0] == "folder"
    ds = load_data(cfg)
    assert ds.name == "wrist" and ds.info["subject_names"] == sorted(NAMES)
    codes = {n: i for i, n in enumerate(sorted(NAMES))}
    assert sorted(ds.split.test) == [codes["gita"], codes["hugo"]] and len(ds.test) == 2 * 6 * 4
    assert len(ds.train) + len(ds.val) == 6 * 6 * 4 and len(ds.val) > 0
    # the same windows as arrays in an .npz, subjects by name
    npz = tmp_path / "wrist.npz"
    x = np.concatenate([ds.train.x, ds.val.x, ds.test.x])
    subj = np.concatenate([ds.train.subjects, ds.val.subjects, ds.test.subjects])
    y = np.asarray(ds.classes)[np.concatenate([ds.train.y, ds.val.y, ds.test.y])]
    np.savez(npz, x=x, y=y, subjects=np.asarray(sorted(NAMES))[subj], classes=np.asarray(ds.classes),
             sample_rate=50.0, test_subjects=np.asarray(["gita", "hugo"]))
    ds2 = load_data(JobConfig(data_dir=str(npz)))
    assert ds2.name == "wrist" and ds2.info["subject_names"] == sorted(NAMES) and len(ds2.test) == len(ds.test)
    # every registered dataset is accepted by name; a wrong name or a data_dir on the built-in data is refused
    for name in DATASETS:
        assert JobConfig(dataset=name, data_dir=None).data_source()[1] == name
    with pytest.raises(ValueError, match="built-in default dataset .* takes no data_dir"):
        JobConfig(dataset="default", data_dir=str(folder)).data_source()
    r = cli("--dataset", "mine", "--out", str(tmp_path / "r"))
    assert r.exit_code == 2 and "unknown dataset 'mine'" in r.output and "custom" in r.output
    r = cli("--dataset", "custom", "--out", str(tmp_path / "r"))
    assert r.exit_code == 2 and "needs data_dir" in r.output
    from harcore.errors import DataError

    with pytest.raises(DataError, match=r"nowhere: no such folder"):
        load_data(JobConfig(data_dir=str(tmp_path / "nowhere")))


def test_custom_folder_through_harcore_search_to_a_validated_int8_model(tmp_path):
    import shutil

    folder = write_custom_folder(tmp_path / "wrist")
    out = tmp_path / "run"
    r = cli("--data-dir", str(folder), "--preset", "quick", "--backbone", "deepconvlstm", "--filters", "4",
            "--epochs", "1", "--finetune-epochs", "1", "--int8", "ptq", "--out", str(out))
    assert f"datasetcustomfolder{folder}" in "".join(r.output.split())  # rich wraps long lines
    job = json.loads((out / "job.json").read_text())
    st = job["stages"]
    assert st["data"]["data"]["name"] == "wrist" and st["data"]["data"]["subject_names"] == sorted(NAMES)
    assert st["data"]["data"]["test"] == 48
    for name in ("data", "budget", "search", "derive", "finetune", "evaluate", "int8", "int8-eval"):
        assert st[name]["status"] == "ok", (name, st[name]["detail"])
    toolchain = all(shutil.which(t) for t in ("arm-none-eabi-gcc", "qemu-system-arm", "cmake"))
    if toolchain:  # the int8 model runs on the emulated Cortex-M33, bit-exact with the host
        assert st["deploy"]["status"] == "ok" and st["validate"]["status"] == "ok", st["validate"]["detail"]
        assert st["validate"]["data"]["summary"]["bit_exact"] and r.exit_code == 0, r.output
    else:
        assert st["validate"]["status"] != "ok" and st["validate"]["detail"]


@pytest.mark.slow
def test_killed_cli_run_resumes_where_it_stopped(tmp_path):
    """kill -9 in the middle of a checkpoint write (a test hook makes each write pause half-way): the last
    complete checkpoint survives, and --resume continues from it."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "harcore.cli", "search", "--backbone", "deepconvlstm", "--filters", "4",
           "--epochs", "4", "--finetune-epochs", "1", "--out", str(out)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         env=dict(env, HARCORE_TEST_SAVE_PAUSE="3"), start_new_session=True)
    ck = out / "search_last.pt"
    t0 = time.time()
    half_written: list[Path] = []
    # a complete checkpoint exists and the next epoch's is half-written (its temp file is there, paused)
    while not half_written and time.time() - t0 < 300 and p.poll() is None:
        if ck.exists():
            half_written = list(out.glob("search_last.pt.*.tmp"))
        time.sleep(0.05)
    assert half_written, "no checkpoint write was caught in progress"
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert half_written[0].exists() and 0 < half_written[0].stat().st_size
    done = torch.load(ck, weights_only=True)["epoch"]
    assert 1 <= done < 4, done
    r = subprocess.run(cmd + ["--resume"], capture_output=True, text=True, env=env, timeout=600)
    job = json.loads((out / "job.json").read_text())
    search = job["stages"]["search"]
    assert search["status"] == "ok", r.stdout + r.stderr
    assert search["data"]["resumed_from_epoch"] == done
    assert [h["epoch"] for h in search["data"]["history"]] == [1, 2, 3, 4]
    assert f"resumed after epoch {done}" in r.stdout
    assert not list(out.rglob("*.tmp"))  # the interrupted write's temp file was cleaned up


@pytest.mark.slow
def test_ray_sweep_two_workers_pareto(tmp_path):
    from harcore.nas.sweep import run_sweep

    base = tiny(tmp_path, out=str(tmp_path / "sweep"))
    r = run_sweep(base, beta1s=[0.0, 10.0], seeds=[0], parallel=2)
    assert not r["failures"], r["failures"]
    assert sorted(x["label"] for x in r["runs"]) == ["deepconvlstm_beta1-0_seed0", "deepconvlstm_beta1-10_seed0"]
    for x in r["runs"]:
        assert (Path(x["run_dir"]) / "report.md").exists() and (Path(x["run_dir"]) / "job.log").exists()
    assert (tmp_path / "sweep" / "pareto.png").stat().st_size > 1000
    assert "## Pareto front" in (tmp_path / "sweep" / "sweep.md").read_text()


def test_pareto_mask_keeps_exactly_the_non_dominated_runs():
    import numpy as np

    from harcore.nas.report import pareto_mask

    # (macro-F1 up, MACs down, SRAM down)
    pts = np.array([[0.90, 100, 10], [0.85, 50, 10], [0.80, 60, 10], [0.90, 100, 12], [0.70, 40, 20]])
    assert pareto_mask(pts).tolist() == [True, True, False, False, True]


def test_beta_macs_reaches_the_search_and_a_negative_one_is_a_usage_error():
    from typer.testing import CliRunner

    from harcore.cli import app

    assert JobConfig(macs=770_000, beta_macs=0.0).search_config().beta_macs == 0.0
    r = CliRunner().invoke(app, ["search", "--beta-macs", "-1"])
    assert r.exit_code == 2 and "beta_macs" in r.output


def test_tail_options_reach_the_search_and_a_wrong_one_is_a_usage_error():
    from typer.testing import CliRunner

    from harcore.cli import app

    cfg = JobConfig(backbone="deepconvlstm", tail={"lstm_layers": 1, "dropout": 0.5})
    assert cfg.search_config().tail == {"lstm_layers": 1, "dropout": 0.5}
    r = CliRunner().invoke(app, ["search", "--backbone", "deepconvlstm", "--tail", "lstm_layer=1"])
    text = " ".join(r.output.replace("│", " ").split())  # rich wraps the message in a box
    assert r.exit_code == 2 and "'lstm_layer' is not an option of deepconvlstm's later stages" in text
    assert "lstm_layers (default 2)" in text
    r = CliRunner().invoke(app, ["search", "--tail", "dropout"])
    assert r.exit_code == 2 and "is not KEY=VALUE" in r.output


def test_sweep_runs_get_absolute_folders(tmp_path, monkeypatch):
    # A Ray worker's working folder is not the caller's (a cluster's, or that of the process that started Ray):
    # a relative --out would put (or find) the runs somewhere else.
    from harcore.nas.sweep import sweep_configs

    monkeypatch.chdir(tmp_path)
    cfgs = sweep_configs(tiny(tmp_path, out="runs/sweep"), [0.0, 1.0], [0], ["deepconvlstm"])
    assert [Path(c.out) for c in cfgs] == [tmp_path / "runs" / "sweep" / "deepconvlstm_beta1-0_seed0",
                                           tmp_path / "runs" / "sweep" / "deepconvlstm_beta1-1_seed0"]
