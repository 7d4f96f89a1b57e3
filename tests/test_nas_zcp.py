"""harcore search --strategy zcp: the SFTNAS space's sampler and batched costs, the proxy-guided search in the
main job (derive, int8, deploy), the budget, clear errors, and resuming without redoing finished work."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from harcore.errors import BudgetError, CheckpointError
from harcore.nas.pipeline import JobConfig, run_job

torch.set_num_threads(1)


def quiet_console():
    import io

    from rich.console import Console

    return Console(file=io.StringIO(), width=200, color_system=None)


def tiny(tmp_path: Path, **kw) -> JobConfig:
    base = dict(backbone="deepconvlstm", filters=4, strategy="zcp", candidates=6, top_k=2, search_epochs=1,
                finetune_epochs=1, int8="ptq", out=str(tmp_path / "run"), progress=False)
    base.update(kw)
    return JobConfig(**base)


@pytest.mark.sanitize
def test_derived_space_samples_the_sftnas_space_and_batched_costs_equal_profiles():
    from harcore.cost import profile
    from harcore.nas.derive import arch_inputs, build
    from harcore.nas.sampling import arch_costs, sample_archs
    from harcore.nas.supernet import search_space

    for backbone, tie in (("tinyhar", False), ("deepconvlstm", True)):
        archs = sample_archs(5, backbone, 9, 128, 6, seed=3, filters=6, tie_tail=tie)
        assert archs == sample_archs(5, backbone, 9, 128, 6, seed=3, filters=6, tie_tail=tie)  # seeded
        layout = search_space(9, 128, 6)
        for a in archs:
            arch_inputs(layout, a)  # every sampled architecture is one the SFTNAS space can select
            assert 1 <= len(a.channels) <= 9 and a.channels == sorted(set(a.channels))
        c = arch_costs(archs)
        for a, row in zip(archs, c):
            t = profile(build(a).eval(), (9, 128)).total
            assert row.tolist() == [t.macs, t.params, t.peak_sram, t.flash], a.summary()


def test_bad_strategy_space_proxy_and_counts_are_clear_errors():
    from typer.testing import CliRunner

    from harcore.cli import app

    for kw, msg in ((dict(strategy="random"), "JobConfig.strategy: must be one of sftnas, zcp"),
                    (dict(strategy="zcp", space="nasbench"), "JobConfig.space: must be one of sftnas, table1"),
                    (dict(strategy="zcp", proxy="magic"), "unknown proxy 'magic'"),
                    (dict(strategy="zcp", top_k=0), "JobConfig.top_k: must be an integer >= 1"),
                    (dict(strategy="zcp", candidates=0), "JobConfig.candidates: must be an integer >= 1")):
        with pytest.raises(ValueError, match=msg):
            JobConfig(**kw).zcp_options()
    assert JobConfig().zcp_options() is None
    with pytest.raises(ValueError, match="strategy 'zcp' finds the architecture itself; it does not combine with "
                                         "method 'pas'"):
        JobConfig(strategy="zcp", method="pas", macs=10**6).resolved_method()
    assert JobConfig(strategy="zcp").zcp_options()["candidates"] == 24
    for args, msg in ((["--strategy", "random"], "must be one of sftnas, zcp"),
                      (["--strategy", "zcp", "--proxy", "magic"], "unknown proxy 'magic'")):
        r = CliRunner().invoke(app, ["search", *args, "--out", "/nonexistent/never"])
        assert r.exit_code == 2 and msg in r.output, r.output


def test_an_impossible_budget_stops_the_zcp_job_before_scoring(tmp_path):
    res = run_job(tiny(tmp_path, space="table1", sram=100), console=quiet_console())
    assert res.stages["budget"].status == "failed" and "--sram 100B is below" in res.stages["budget"].detail
    assert res.stages["search"].status == "skipped"
    assert not (tmp_path / "run" / "zcp").exists()


def test_an_interrupted_zcp_search_resumes_without_rescoring_or_retraining(tmp_path, monkeypatch):
    from harcore import zcp
    from harcore.zcp.study import StudyData

    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 3, 24)).astype(np.float32)
    y = rng.integers(0, 3, 96)
    d = StudyData("synthetic", x[:64], y[:64], x[64:], y[64:], x[:0], y[:0], 3, ["a", "b", "c"], 50.0)
    archs = [zcp.Arch("cnn", (8,), (0.1,), (3,)), zcp.Arch("cnn", (16, 8), (0.2, 0.2), (3, 3)),
             zcp.Arch("lstm", (8, 8), (0.1, 0.0))]
    store = tmp_path / "zcp"
    calls: list[int] = []
    from harcore.zcp import proxies, study

    orig = study.run_architecture

    def dies_after_one(*a, **k):
        if calls:
            raise KeyboardInterrupt
        calls.append(a[0])
        return orig(*a, **k)

    monkeypatch.setattr(study, "run_architecture", dies_after_one)
    with pytest.raises(KeyboardInterrupt):
        zcp.zcp_search(d, archs=archs, proxy="synflow", top_k=3, epochs=1, proxy_batch=16, store=store)
    assert len(list((store / "trained").glob("*.json"))) == 1 and (store / "ranking.json").exists()
    ranking = (store / "ranking.json").read_bytes()
    first = calls[0]
    calls.clear()
    trained: list[int] = []

    def counts(*a, **k):
        trained.append(a[0])
        return orig(*a, **k)

    monkeypatch.setattr(study, "run_architecture", counts)
    # no candidate is sampled or scored again: the stored ranking is used even without archs
    scored: list[int] = []
    real_score = proxies.score

    def counting_score(*a, **k):
        scored.append(1)
        return real_score(*a, **k)

    monkeypatch.setattr(proxies, "score", counting_score)
    r = zcp.zcp_search(d, archs=None, proxy="synflow", top_k=3, epochs=1, proxy_batch=16, store=store)
    assert first not in trained and len(trained) == 2
    assert len(scored) == 2   # only the two trainings' own scoring: the ranking's candidates were not scored again
    assert [t["reused"] for t in r.trained] == [True, False, False] and r.meta["resumed"]
    assert (store / "ranking.json").read_bytes() == ranking
    assert r.best["val_f1"] == max(t["val_f1"] for t in r.trained) and r.best["test_f1"] is None
    with pytest.raises(CheckpointError, match=r"proxy: .*ranking.json was written with 'synflow', resuming with 'snip'"):
        zcp.zcp_search(d, archs=archs, proxy="snip", top_k=3, epochs=1, proxy_batch=16, store=store)


@pytest.mark.slow
def test_zcp_strategy_end_to_end_within_budget_and_resume_redoes_nothing(tmp_path):
    from harcore.nas.sampling import arch_costs, sample_archs

    # a MAC limit that some of the 6 candidates break
    macs = sorted(arch_costs(sample_archs(6, "deepconvlstm", 9, 128, 6, seed=0, filters=4))[:, 0])
    limit = int(macs[3])
    cfg = tiny(tmp_path, macs=limit)
    con = quiet_console()
    res = run_job(cfg, console=con)
    st = res.stages
    for name in ("data", "budget", "search", "derive", "finetune", "evaluate", "fit", "int8", "int8-eval", "deploy",
                 "report"):
        assert st[name].status == "ok", (name, st[name].detail)
    assert st["validate"].status == "ok" or st["validate"].detail
    z = st["search"].data
    assert z["strategy"] == "zcp" and z["n_sampled"] == 6 and z["n_within_budget"] == 4
    assert all(r["macs"] <= limit for r in z["ranking"])
    assert [t["index"] for t in z["trained"]] == [r["index"] for r in z["ranking"][:2]]
    assert z["best"]["val_f1"] == max(t["val_f1"] for t in z["trained"])
    assert st["derive"].data["total"]["macs"] <= limit and res.arch is not None
    run = res.run_dir
    md = (run / "report.md").read_text()
    assert "Strategy: zcp" in md and "## Proxy ranking (zcp)" in md
    from harcore.models import sftnas

    assert sftnas.load(run / "model.pt").arch["channels"] == res.arch.channels
    # resume: the ranking and trained candidates are reused, the finished fine-tuning is not redone
    stamps = {p: p.stat().st_mtime_ns for p in (run / "zcp").rglob("*.json")}
    ft_before = json.loads((run / "job.json").read_text())["stages"]["finetune"]["data"]["history"]
    res2 = run_job(cfg, resume=True, console=quiet_console())
    z2 = res2.stages["search"].data
    assert z2["resumed"] and all(t["reused"] for t in z2["trained"]) and z2["best"] == z["best"]
    assert {p: p.stat().st_mtime_ns for p in (run / "zcp").rglob("*.json")} == stamps
    assert res2.stages["finetune"].data["history"] == ft_before
    assert res2.stages["deploy"].status == "ok"
    with pytest.raises(CheckpointError, match="proxy"):
        run_job(tiny(tmp_path, macs=limit, proxy="synflow"), resume=True, console=quiet_console())


@pytest.mark.slow
def test_zcp_strategy_table1_space_to_int8_and_firmware(tmp_path):
    cfg = tiny(tmp_path, space="table1", candidates=8, top_k=1, macs=3_000_000, sram=None)
    res = run_job(cfg, console=quiet_console())
    st = res.stages
    for name in ("search", "derive", "finetune", "fit", "int8", "int8-eval", "deploy"):
        assert st[name].status == "ok", (name, st[name].detail)
    assert all(r["macs"] <= 3_000_000 for r in st["search"].data["ranking"])
    doc = torch.load(res.run_dir / "model.pt", weights_only=True)
    assert doc["format"] == "harcore.zcp/1" and doc["arch"] == st["search"].data["best"]["arch"]
    assert json.loads((res.run_dir / "arch.json").read_text())["space"] == "table1"


@pytest.mark.slow
def test_the_equal_time_comparison_runs_on_a_tiny_setting(tmp_path):
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, str(repo / "benchmarks" / "bench_zcp_vs_sftnas.py"), "--tiny", "--out",
                        str(tmp_path)], capture_output=True, text=True, timeout=1200,
                       env=dict(__import__("os").environ, OMP_NUM_THREADS="1"))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    res = json.loads((tmp_path / "comparison.json").read_text())
    sft, z = res["runs"]
    assert sft["strategy"] == "sftnas" and z["strategy"].startswith("zcp")
    assert res["time_budget_seconds"] == pytest.approx(sft["search_seconds"])
    assert f"time budget {res['time_budget_seconds']:.0f} s" in z["search_detail"]
    for row in (sft, z):
        assert row["macs"] <= 2_000_000 and row["fits"]
        assert 0.0 <= row["val_macro_f1"] <= 1.0 and 0.0 <= row["test_macro_f1"] <= 1.0
    assert "| zcp (ensemble) |" in r.stdout


def test_scoring_all_proxies_at_once_equals_scoring_each_alone():
    """score() computes the gradient of grad_norm/snip/plain/grasp and the profile of params/macs once: the
    values are exactly those of each proxy scored on its own (BatchNorm and LSTM models)."""
    from harcore import zcp
    from harcore.nas.derive import build
    from harcore.nas.sampling import sample_archs

    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(16, 9, 32)).astype(np.float32), rng.integers(0, 6, 16)
    nets = [build(sample_archs(1, "tinyhar", 9, 32, 6, seed=2, filters=4)[0]),
            zcp.build(zcp.Arch("lstm", (8, 16), (0.1, 0.0)), 9, 32, 6)]
    for net in nets:
        together = zcp.score(net, x, y, seed=3)
        alone = {n: zcp.score(net, x, y, [n], seed=3)[n] for n in zcp.PROXIES}
        assert together == alone
        assert all(np.isfinite(v) for v in together.values())


def test_a_time_budget_trains_the_best_ranked_candidate_and_stops():
    from harcore import zcp
    from harcore.zcp.study import StudyData

    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3, 24)).astype(np.float32)
    y = rng.integers(0, 3, 64)
    d = StudyData("synthetic", x[:40], y[:40], x[40:], y[40:], x[:0], y[:0], 3, ["a", "b", "c"], 50.0)
    archs = [zcp.Arch("cnn", (8,), (0.1,), (3,)), zcp.Arch("cnn", (16, 8), (0.2, 0.2), (3, 3)),
             zcp.Arch("lstm", (8, 8), (0.1, 0.0))]
    r = zcp.zcp_search(d, archs=archs, proxy="synflow", top_k=3, epochs=1, proxy_batch=16, time_budget=1e-6)
    assert [t["index"] for t in r.trained] == [r.ranked[0]["index"]] and r.meta["time_budget"] == 1e-6
    r = zcp.zcp_search(d, archs=archs, proxy="synflow", top_k=3, epochs=1, proxy_batch=16, time_budget=1e6)
    assert len(r.trained) == 3
    with pytest.raises(ValueError, match="time_budget: must be > 0"):
        JobConfig(strategy="zcp", time_budget=0).zcp_options()
