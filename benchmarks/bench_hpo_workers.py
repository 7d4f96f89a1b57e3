"""One HPO study run by one worker, then by two workers on one SQLite storage: wall times and their ratio.

Issue 19's goal: "HPO with two workers on one storage finishes 50 trials in about half the wall time of one
worker". Each mode starts ``harcore hpo`` processes the way a user would (the second one a moment after the
first, in another shell) on a fresh ``--out`` (so a fresh ``study.db``), every worker single-threaded
(``--threads 1`` and OMP/MKL threads 1), ``--no-final`` (the final training is one process's work in both modes,
so it is left out of the comparison). It asserts that each study ends with exactly ``--trials`` finished
(COMPLETE + PRUNED) trials and no RUNNING/WAITING one, and that with two workers both ran trials.

Wall time: from the first worker's start to the last worker's exit. The ratio (two workers / one) is only
meaningful on a machine with at least two idle cores: the script prints ``os.getloadavg()`` and the CPU count at
the start and end of each mode so that a figure can be judged.

The default setting is the issue's (50 trials) with a model and budget small enough for minutes: µBi-ConvLSTM on
the built-in data, the paper's 10 epochs per trial and patience 5. A smoke run:

    python benchmarks/bench_hpo_workers.py --trials 4 --epochs 1 --model-option filters=4 --model-option lstm_hidden=4
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPU(s)"


def _worker_cmd(args: argparse.Namespace, out: Path) -> list[str]:
    cmd = [sys.executable, "-m", "harcore.cli", "hpo", "--model", args.model, "--dataset", args.dataset,
           "--trials", str(args.trials), "--epochs", str(args.epochs), "--patience", str(args.patience),
           "--batch-size", str(args.batch_size), "--threads", "1", "--sampler-seed", str(args.sampler_seed),
           "--out", str(out), "--study", "bench-workers", "--no-final"]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    for o in args.dataset_option:
        cmd += ["--dataset-option", o]
    for o in args.model_option:
        cmd += ["--model-option", o]
    return cmd


def run_mode(args: argparse.Namespace, workers: int) -> dict:
    out = Path(args.out_dir) / f"workers-{workers}"
    if out.exists():
        shutil.rmtree(out)  # a fresh study: a rerun on the old one would train nothing
    out.mkdir(parents=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    print(f"[{workers} worker(s)] start: {_load()}", flush=True)
    t0 = time.perf_counter()
    procs = []
    for w in range(workers):
        if w:
            time.sleep(args.stagger)
        log = open(out / f"worker-{w}.log", "w")
        procs.append((subprocess.Popen(_worker_cmd(args, out), stdout=log, stderr=subprocess.STDOUT, env=env), log))
    for p, log in procs:
        p.wait()
        log.close()
    wall = time.perf_counter() - t0
    print(f"[{workers} worker(s)] end: {_load()}; wall {wall:.1f} s", flush=True)
    for w, (p, _) in enumerate(procs):
        if p.returncode != 0:
            raise SystemExit(f"worker {w} of {workers} exited with {p.returncode}:\n{(out / f'worker-{w}.log').read_text()}")

    import optuna

    study = optuna.load_study(study_name="bench-workers", storage=f"sqlite:///{(out / 'study.db').resolve()}")
    trials = study.get_trials(deepcopy=False)
    states = [t.state.name for t in trials]
    finished = [t for t in trials if t.state.name in ("COMPLETE", "PRUNED")]
    assert len(finished) == args.trials, f"{workers} worker(s): {len(finished)} finished trials, asked {args.trials}"
    assert not {"RUNNING", "WAITING"} & set(states), f"{workers} worker(s): unfinished trials left: {states}"
    per_worker: dict[str, int] = {}
    for t in finished:
        per_worker[t.user_attrs.get("worker", "?")] = per_worker.get(t.user_attrs.get("worker", "?"), 0) + 1
    if workers > 1:
        assert len(per_worker) == workers, f"not every worker ran a trial: {per_worker}"
    # the two modes draw different trial sequences (the per-trial seed counts running trials too) and the pruner
    # judges a trial only against finished ones, so the work done differs: the epochs trained (reported
    # intermediate values) put the wall times on one scale
    epochs_run = sum(len(t.intermediate_values) for t in trials)
    return {"workers": workers, "wall_s": wall, "finished": len(finished), "pruned": states.count("PRUNED"),
            "failed": states.count("FAIL"), "per_worker": sorted(per_worker.values(), reverse=True),
            "epochs_run": epochs_run}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--epochs", type=int, default=10, help="epochs per trial (the µBi paper's 10)")
    ap.add_argument("--patience", type=int, default=5, help="early-stopping patience per trial (0: none; the paper's 5)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--model", default="mubiconvlstm")
    ap.add_argument("--model-option", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--dataset", default="default")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--dataset-option", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--sampler-seed", type=int, default=0)
    ap.add_argument("--stagger", type=float, default=2.0, help="seconds between starting the two workers")
    ap.add_argument("--out-dir", default=str(REPO / "runs" / "bench_hpo_workers"))
    args = ap.parse_args()

    rows = [run_mode(args, 1), run_mode(args, 2)]
    print(f"\n{args.trials} trials x {args.epochs} epoch(s), {args.model} {' '.join(args.model_option)} on {args.dataset}")
    print("| workers | wall time | finished | of them pruned | FAIL (lost races, stale) | trials per worker "
          "| epochs trained | epochs / s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['workers']} | {r['wall_s']:.1f} s | {r['finished']} | {r['pruned']} | {r['failed']} | "
              f"{', '.join(map(str, r['per_worker']))} | {r['epochs_run']} | {r['epochs_run'] / r['wall_s']:.2f} |")
    print(f"wall-time ratio, two workers / one: {rows[1]['wall_s'] / rows[0]['wall_s']:.2f} (the goal: about 0.5; "
          "meaningful only with two idle cores, see the load averages above)")
    per_epoch = [r["wall_s"] / r["epochs_run"] for r in rows]
    print(f"wall time per epoch trained, two workers / one: {per_epoch[1] / per_epoch[0]:.2f}")


if __name__ == "__main__":
    main()
