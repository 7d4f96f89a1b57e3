"""harcore.hpo: the trial budget over kills, resumes and concurrent workers on one SQLite storage."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

optuna = pytest.importorskip("optuna")

from harcore import hpo  # noqa: E402

# Tiny budgets: a narrow µBi-ConvLSTM, one epoch per trial on the built-in data, large batches.
SMALL = {"filters": 4, "lstm_hidden": 4}
FAST = ["--epochs", "1", "--patience", "0", "--batch-size", "256", "--threads", "1", "--heartbeat", "1", "--no-final",
        "--model-option", "filters=4", "--model-option", "lstm_hidden=4"]


def _cmd(out: Path, trials: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "harcore.cli", "hpo", "--model", "mubiconvlstm", "--trials", str(trials),
            "--out", str(out), "--study", "t", *FAST, *extra]


def _cfg(out: Path, trials: int, **kw) -> hpo.HPOConfig:
    return hpo.HPOConfig(model="mubiconvlstm", model_options=dict(SMALL), trials=trials, epochs=1, patience=None,
                         batch_size=256, threads=1, out=str(out), study="t", heartbeat_interval=1, **kw)


def _states(out: Path) -> list[str]:
    """Trial states straight from the SQLite file (cheaper than loading the study at every poll)."""
    if not (out / "study.db").exists():
        return []
    con = sqlite3.connect(out / "study.db", timeout=30)
    try:
        return [r[0] for r in con.execute("SELECT state FROM trials ORDER BY number")]
    except sqlite3.OperationalError:  # the schema is not there yet
        return []
    finally:
        con.close()


def _start_and_wait_for(out: Path, trials: int):
    """Start a worker subprocess and return it once it has begun its second trial (its log says so)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(_cmd(out, trials), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("trial 1: {"):
            return proc
    proc.wait()
    raise AssertionError("the worker ended before its second trial:\n" + "".join(lines))


def test_killed_study_resumes_to_exactly_the_trials_asked(tmp_path):
    out = tmp_path / "hpo"
    # Kill the worker (SIGKILL: no cleanup) while it trains a trial after its first finished one.
    proc = _start_and_wait_for(out, 6)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    st = _states(out)
    assert "RUNNING" in st and st.count("COMPLETE") + st.count("PRUNED") < 6

    outcome = hpo.run_study(_cfg(out, 6), poll_s=0.2)
    st = _states(out)
    assert outcome.counts["finished"] == 6
    assert st.count("COMPLETE") + st.count("PRUNED") == 6
    assert "RUNNING" not in st and "WAITING" not in st
    assert "FAIL" in st  # the killed trial, failed by its stale heartbeat (its parameters were re-queued)

    # A rerun on the same storage has nothing left to do: never past the budget.
    again = hpo.run_study(_cfg(out, 6), poll_s=0.2)
    assert again.ran == [] and again.counts["finished"] == 6
    # Raising the budget continues the same study.
    more = hpo.run_study(_cfg(out, 7), poll_s=0.2)
    assert len(more.ran) == 1 and more.counts["finished"] == 7


def test_two_workers_share_one_sqlite_study(tmp_path):
    # Worker 1 is a subprocess; worker 2, this test's own process, joins once worker 1 is under way.
    out = tmp_path / "hpo"
    proc = _start_and_wait_for(out, 8)
    try:
        mine = hpo.run_study(_cfg(out, 8), poll_s=0.2)
        rest, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, rest
    study = optuna.load_study(study_name="t", storage=f"sqlite:///{(out / 'study.db').resolve()}")
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 8
    assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]
    workers = {t.user_attrs["worker"] for t in finished}
    assert len(workers) == 2, f"one worker ran every trial: {workers}"
    assert mine.ran and len(mine.ran) < 8


def test_two_cli_workers_started_together_share_one_fresh_study(tmp_path):
    # Two `harcore hpo` processes started at the same moment on a storage that does not exist yet, as a user
    # would from two shells: both create-or-load the schema and the study, both train, and the study ends
    # with exactly the trials asked for.
    out = tmp_path / "hpo"
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    procs = [subprocess.Popen(_cmd(out, 6), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
             for _ in range(2)]
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], "\n----\n".join(logs)
    study = optuna.load_study(study_name="t", storage=f"sqlite:///{(out / 'study.db').resolve()}")
    trials = study.get_trials(deepcopy=False)
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == 6
    assert not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]
    assert len({t.user_attrs["worker"] for t in finished}) == 2
    assert all("6 finished trial(s)" in log for log in logs), logs


def test_open_study_retries_a_schema_creation_race(tmp_path, monkeypatch):
    # The loser of two workers creating one fresh database's schema sees an IntegrityError; it must retry
    # (the schema is then there), not give up. Simulated here so that the race is certain.
    from sqlalchemy.exc import IntegrityError

    calls = []

    class Racing(optuna.storages.RDBStorage):  # a subclass: optuna checks isinstance(storage, RDBStorage)
        def __init__(self, *a, **kw):
            calls.append(1)
            if len(calls) == 1:
                raise IntegrityError("INSERT INTO alembic_version", {}, Exception("UNIQUE constraint failed"))
            super().__init__(*a, **kw)

    monkeypatch.setattr(optuna.storages, "RDBStorage", Racing)
    study = hpo.open_study(_cfg(tmp_path, 1))
    assert len(calls) == 2 and study.study_name == "t"


def test_run_writes_the_final_training_and_report(tmp_path):
    out = tmp_path / "hpo"
    cfg = _cfg(out, 2, final_epochs=1, final_patience=None, seeds=2)
    res = hpo.run(cfg)
    assert res["counts"]["finished"] == 2
    fin = res["final"]
    assert len(fin["runs"]) == 2 and fin["seeds"] == __import__("harcore").train.seeds_from_master(0, 2)
    assert all(0.0 <= r["test_macro_f1"] <= 1.0 for r in fin["runs"])
    # The int8 figure of each final model (PTQ, simulated on the C++ kernels), and its mean over the seeds.
    assert all(0.0 <= r["int8_test_macro_f1"] <= 1.0 for r in fin["runs"])
    assert fin["int8_test_macro_f1"]["mean"] == pytest.approx(
        sum(r["int8_test_macro_f1"] for r in fin["runs"]) / 2)
    saved = json.loads((out / "hpo.json").read_text())
    assert saved["best_params"] == res["best_params"] and set(saved["best_params"]) == {"lr", "weight_decay", "dropout"}
    md = (out / "summary.md").read_text()
    assert "validation subjects only" in md and "Test macro-F1" in md
    assert "int8 (PTQ on 512 training windows" in md
    # Final seeds already done are reused, not retrained.
    mtimes = {p: p.stat().st_mtime_ns for p in (out / "final").glob("seed-*.json")}
    hpo.run(cfg)
    assert {p: p.stat().st_mtime_ns for p in (out / "final").glob("seed-*.json")} == mtimes


def test_bad_storage_and_budget_are_named(tmp_path):
    with pytest.raises(ValueError, match="trials"):
        hpo.HPOConfig(trials=0)
    with pytest.raises(Exception, match="storage"):
        hpo.open_study(_cfg(tmp_path, 1, storage="nosuchdb://x"))
