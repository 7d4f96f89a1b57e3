"""Decide the CNN head's pooling type (adaptive average vs adaptive max) on validation subjects only.

The CNN's default head moved from average to max pooling after test figures had been seen (benchmarks/RESULTS.md,
"Training on UCI-HAR-equivalent windows"). This script re-decides it without the test subjects:
``harcore.data.load("hapt", <archive>, variant="uci9", val_fraction=0.2, seed=0)`` — UCI-HAR's 21 training subjects,
4 of them held out as validation subjects (the split bench_train.py uses), the 9 test subjects untouched. Each pool
type trains with ``TrainConfig.cnn_distillation()`` (Adam, lr 5e-4, wd 1e-3, cosine, batch 64; ``--epochs``
shortens it and its cosine together) for every seed, early stopping off, best-validation-epoch weights kept. The
choice is the pool type with the higher mean validation macro-F1 over seeds. The test subjects are evaluated only
with ``--test-chosen``, once, for the chosen pool type's runs, after the choice is printed.

Every run checkpoints each epoch under ``--out-dir`` and resumes; ``--pools avg`` and ``--pools max`` may run as two
processes on one ``--out-dir`` (each writes its own results file) and a last call with both reports them together.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import torch

from harcore import data, models
from harcore.train import TrainConfig, evaluate, fit

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARCORE_SHARED") or REPO.parent / "shared" / "datasets")


def _sd(v: list[float]) -> float:
    return statistics.stdev(v) if len(v) > 1 else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pools", default="avg,max", help="pool types to train (comma list of avg, max)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=20, help="epochs per run (the paper's 20 by default)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--dataset", default="hapt", help="hapt (uci9 windows) or default (the built-in data: smoke tests)")
    ap.add_argument("--hapt", default=str(SHARED / "hapt_v2.1_rawdata.tar.xz"))
    ap.add_argument("--out-dir", default=str(REPO / "runs" / "bench_cnn_pool"))
    ap.add_argument("--test-chosen", action="store_true",
                    help="after choosing on validation, evaluate the chosen pool type's runs on the test subjects once")
    args = ap.parse_args()
    pools = args.pools.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    if args.dataset == "hapt":
        ds = data.load("hapt", args.hapt, variant="uci9", val_fraction=0.2, seed=0)
    else:
        ds = data.load(args.dataset, val_fraction=0.2, seed=0)
    c, t = ds.train.x.shape[1:]
    k = len(ds.classes)
    print(f"{args.dataset}: train {len(ds.train.y)}, val {len(ds.val.y)} windows ({c}×{t}, {k} classes), "
          f"loaded in {time.perf_counter() - t0:.1f} s; load average {os.getloadavg()}", flush=True)

    for pool in pools:
        res_path = out_dir / f"results-{pool}.json"
        results = json.loads(res_path.read_text()) if res_path.exists() else {}
        for seed in seeds:
            key = f"seed{seed}"
            if results.get(key, {}).get("epochs_asked") == args.epochs:
                continue
            torch.manual_seed(seed)
            net = models.create("cnn", in_channels=c, seq_len=t, num_classes=k, pool=pool)
            cfg = TrainConfig.cnn_distillation(batch_size=64, epochs=args.epochs, early_stopping_patience=None,
                                               seed=seed, num_threads=args.threads, progress=False,
                                               checkpoint_dir=str(out_dir / f"{pool}-e{args.epochs}" / key))
            start = time.perf_counter()
            res = fit(net, ds.train, ds.val, cfg, resume=True)
            wall = time.perf_counter() - start
            m = evaluate(net, ds.val)  # the kept (best-validation) weights, on the validation subjects
            results[key] = {
                "pool": pool, "seed": seed, "epochs_asked": args.epochs, "best_epoch": res.best_epoch,
                "val_macro_f1": 100 * m.macro_f1, "val_accuracy": 100 * m.accuracy,
                "last_val_macro_f1": 100 * res.history[-1]["val_macro_f1"],
                "val_curve": [round(100 * h["val_macro_f1"], 2) for h in res.history],
                "wall_s": wall, "load_end": os.getloadavg(),
            }
            res_path.write_text(json.dumps(results, indent=2))
            print(f"pool={pool} seed {seed}: best val macro-F1 {100 * m.macro_f1:.2f} @ epoch {res.best_epoch}, "
                  f"last {results[key]['last_val_macro_f1']:.2f}, {wall:.0f} s; load average {os.getloadavg()}",
                  flush=True)

    # Report every pool type trained so far in out_dir at this epoch count (also the other process's).
    rows = {}
    for p in ("avg", "max"):
        path = out_dir / f"results-{p}.json"
        if path.exists():
            runs = [r for r in json.loads(path.read_text()).values()
                    if r["epochs_asked"] == args.epochs and r["seed"] in seeds]
            if runs:
                rows[p] = sorted(runs, key=lambda r: r["seed"])
    print(f"\nValidation subjects only ({len(ds.val.y)} windows), {args.epochs} epochs, seeds {args.seeds}")
    print("| pool | val macro-F1, best epoch (mean ± std) | per seed (epoch) | val accuracy | last-epoch val macro-F1 |")
    print("|---|---|---|---|---|")
    for p, runs in rows.items():
        f1 = [r["val_macro_f1"] for r in runs]
        acc = [r["val_accuracy"] for r in runs]
        last = [r["last_val_macro_f1"] for r in runs]
        per = ", ".join(f"{r['val_macro_f1']:.2f} (@{r['best_epoch']})" for r in runs)
        print(f"| {p} | {statistics.mean(f1):.2f} ± {_sd(f1):.2f} | {per} | {statistics.mean(acc):.2f} ± {_sd(acc):.2f} "
              f"| {statistics.mean(last):.2f} ± {_sd(last):.2f} |")
    complete = {p: r for p, r in rows.items() if len(r) == len(seeds)}
    if len(complete) == 2:
        mean = {p: statistics.mean(r["val_macro_f1"] for r in runs) for p, runs in complete.items()}
        chosen = max(mean, key=lambda p: (mean[p], p == "max"))
        diffs = [a["val_macro_f1"] - b["val_macro_f1"] for a, b in zip(complete["max"], complete["avg"])]
        print(f"chosen on validation: pool={chosen} (max − avg per seed: {', '.join(f'{d:+.2f}' for d in diffs)}; "
              f"mean {statistics.mean(diffs):+.2f} ± {_sd(diffs):.2f})")
        if args.test_chosen:
            f1s = []
            for r in complete[chosen]:
                torch.manual_seed(r["seed"])
                net = models.create("cnn", in_channels=c, seq_len=t, num_classes=k, pool=chosen)
                cfg = TrainConfig.cnn_distillation(batch_size=64, epochs=args.epochs, early_stopping_patience=None,
                                                   seed=r["seed"], num_threads=args.threads, progress=False,
                                                   checkpoint_dir=str(out_dir / f"{chosen}-e{args.epochs}" / f"seed{r['seed']}"))
                fit(net, ds.train, ds.val, cfg, resume=True)  # a finished run: restores its kept weights, trains nothing
                f1s.append(100 * evaluate(net, ds.test).macro_f1)
            print(f"test subjects, once, chosen pool={chosen}: macro-F1 {statistics.mean(f1s):.2f} ± {_sd(f1s):.2f} "
                  f"({', '.join(f'{v:.2f}' for v in f1s)})")
    print(f"load average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
