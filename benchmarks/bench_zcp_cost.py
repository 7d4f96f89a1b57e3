"""The cost of scoring (issue 16 goal): all zero-cost proxies for one architecture against training it for the
ground truth, on Table I's median-size CNN and LSTM (``harcore.zcp.median_archs``), same process, one thread.

    python benchmarks/bench_zcp_cost.py                      # HAPT accelerometer windows (the study's data)
    python benchmarks/bench_zcp_cost.py --dataset default --train-batches 2 --repeats 1   # a quick try

Scoring: ``harcore.zcp.score(net, x, y, val=(x_val, y_val))`` — every proxy plus the #params / MACs baselines,
on 256 random training windows (the study's proxy batch), ``initial_val_f1`` on the whole validation split, as
the study scores; the median of ``--repeats`` timings.

Ground truth: the paper's protocol (Adam 1e-4, batch 256, cross-entropy, 50 epochs, validation macro-F1 after
every epoch; ``harcore.zcp.study.run_architecture``). Training the median CNN for 50 epochs on one core takes
hours, so it is **extrapolated**: ``--train-batches`` Adam steps on batches of 256 training windows are timed
(after one untimed warm-up step), and the validation pass on ``--val-windows`` windows; an epoch is
``ceil(N_train / 256)`` such steps plus the validation pass scaled to the whole validation split, and training
is 50 epochs of that (an epoch is a fixed number of identical batches; the learning-rate schedule costs
nothing). The output says so.

Reported per architecture: seconds to score, seconds per training step, the extrapolated 50-epoch training,
their ratio (goal <= 1 %), and architectures scored per second per core (torch on 1 thread: one core) — by
wall time and by the process's CPU time (``time.process_time``: on a shared machine the CPU time is what one
core spent, the wall time also counts waiting for it).
The load average is recorded before and after (the machine may be shared; the ratio is measured in one run).
Writes ``--out`` (JSON).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARCORE_SHARED") or REPO.parent / "shared" / "datasets")


def measure(arch, d, *, repeats: int, train_batches: int, val_windows: int, epochs: int = 50,
            batch: int = 256, lr: float = 1e-4, seed: int = 0) -> dict:
    import numpy as np
    import torch

    from harcore import zcp

    torch.manual_seed(seed)
    net = zcp.build(arch, d.in_channels, d.seq_len, d.num_classes)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(d.x_train), size=min(batch, len(d.x_train)), replace=False)
    xb, yb = d.x_train[pick], d.y_train[pick]
    times, cpu = [], []
    for r in range(repeats):
        t0, c0 = time.perf_counter(), time.process_time()
        s = zcp.score(net, xb, yb, seed=seed, val=(d.x_val, d.y_val))
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    score_s, score_cpu = statistics.median(times), statistics.median(cpu)

    # the ground-truth training loop of run_architecture, step by step
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    xt, yt = torch.from_numpy(d.x_train), torch.from_numpy(d.y_train)
    perm = torch.randperm(len(xt), generator=torch.Generator().manual_seed(seed))

    def step(i: int) -> None:
        b = perm[(i * batch) % len(perm):][:batch]
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt[b]), yt[b]).backward()
        opt.step()

    net.train()
    step(0)  # warm-up (allocations), not timed
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(1, train_batches + 1):
        step(i)
    step_s = (time.perf_counter() - t0) / train_batches
    step_cpu = (time.process_time() - c0) / train_batches
    nv = min(val_windows, len(d.x_val))
    net.eval()
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.no_grad():
        for i in range(0, nv, 1024):
            net(torch.from_numpy(d.x_val[i:min(i + 1024, nv)])).argmax(1)
    val_s = (time.perf_counter() - t0) * len(d.x_val) / max(1, nv)
    val_cpu = (time.process_time() - c0) * len(d.x_val) / max(1, nv)
    steps_per_epoch = math.ceil(len(d.x_train) / batch)
    epoch_s = steps_per_epoch * step_s + val_s
    train_s = epochs * epoch_s
    train_cpu = epochs * (steps_per_epoch * step_cpu + val_cpu)
    return {"arch": arch.key, "kind": arch.kind, "proxies": sorted(s), "score_seconds": score_s,
            "score_seconds_all": times, "train_step_seconds": step_s, "train_steps_timed": train_batches,
            "val_pass_seconds_full_split": val_s, "val_windows_timed": nv, "steps_per_epoch": steps_per_epoch,
            "epoch_seconds_extrapolated": epoch_s, "train_seconds_extrapolated": train_s, "epochs": epochs,
            "score_over_training": score_s / train_s, "archs_scored_per_second_per_core": 1.0 / score_s,
            # CPU seconds of this (one-thread) process: what a core spends, whatever else runs on the machine
            "score_cpu_seconds": score_cpu, "train_step_cpu_seconds": step_cpu, "val_pass_cpu_seconds": val_cpu,
            "train_cpu_seconds_extrapolated": train_cpu, "score_over_training_cpu": score_cpu / train_cpu,
            "archs_scored_per_cpu_second": 1.0 / score_cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="hapt", help="a harcore zcp study dataset (hapt, hapt-12, daphnet, default)")
    ap.add_argument("--root", default=str(SHARED / "hapt_v2.1_rawdata.tar.xz"))
    ap.add_argument("--repeats", type=int, default=3, help="timings of the scoring (median)")
    ap.add_argument("--train-batches", type=int, default=6, help="timed training steps (batches of 256)")
    ap.add_argument("--val-windows", type=int, default=2048, help="validation windows timed (scaled to the split)")
    ap.add_argument("--out", default=str(REPO / "runs" / "bench_zcp_cost.json"))
    a = ap.parse_args()
    import torch

    from harcore import zcp
    from harcore.zcp.study import load_study_data

    torch.set_num_threads(1)
    load0 = os.getloadavg()
    d = load_study_data(a.dataset, None if a.dataset == "default" else a.root)
    res = {"dataset": a.dataset, "train_windows": len(d.x_train), "val_windows": len(d.x_val),
           "window": [d.in_channels, d.seq_len], "threads": torch.get_num_threads(), "torch": torch.__version__,
           "machine": platform.machine(), "cpus": os.cpu_count(), "load_before": load0,
           "note": "training time extrapolated from timed steps to 50 epochs (see the docstring)", "archs": []}
    for arch in zcp.median_archs():
        r = measure(arch, d, repeats=a.repeats, train_batches=a.train_batches, val_windows=a.val_windows)
        res["archs"].append(r)
        print(f"{arch.kind}: score {r['score_seconds']:.2f} s (all proxies), training step {r['train_step_seconds']:.3f} s"
              f" x {r['steps_per_epoch']} + val {r['val_pass_seconds_full_split']:.1f} s per epoch -> 50 epochs "
              f"{r['train_seconds_extrapolated']:.0f} s (extrapolated); ratio {100 * r['score_over_training']:.3f} %; "
              f"{r['archs_scored_per_second_per_core']:.3f} archs/s/core (wall); by CPU time: score "
              f"{r['score_cpu_seconds']:.1f} s, ratio {100 * r['score_over_training_cpu']:.3f} %, "
              f"{r['archs_scored_per_cpu_second']:.3f} archs per CPU-second", flush=True)
    res["load_after"] = os.getloadavg()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=2))
    print(f"load average before {load0[0]:.1f}, after {res['load_after'][0]:.1f}; {a.out}")


if __name__ == "__main__":
    main()
