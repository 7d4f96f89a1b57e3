"""The "Models Got Talent" zero-cost-proxy study on HAPT (issue 16), and the proxy cost goal.

Full run (not run yet: about 300 x 50 epochs of Table I architectures, many hours on CPU)::

    python benchmarks/bench_zcp_study.py --archs 300 --epochs 50 --parallel \
        --out runs/bench_zcp_study_hapt

which is ``harcore zcp study --dataset hapt --root ../shared/datasets/hapt_v2.1_rawdata.tar.xz --archs 300
--epochs 50 --out runs/bench_zcp_study_hapt --parallel`` followed by the cost measurement below. A killed run
restarted with the same command resumes. The paper's full replication is 1,500 architectures per dataset.

Cost goal: scoring all proxies (batch 256) for Table I's median CNN and LSTM (``harcore.zcp.median_archs``)
against one training epoch of the same model on the same data, same process (timed on ``--cost-train`` windows and
scaled linearly to the full training split); the ratio to a 50-epoch training is reported (goal: <= 1 %), and
architectures scored per second per core (torch on 1 thread). Alone: ``--cost-only``.

``--smoke`` runs 6 architectures for 1 epoch on a 256-window training subsample with a 32-window proxy batch:
it proves the pipeline runs end to end; its figures are not results. Writes ``OUT/bench_zcp.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARCORE_SHARED") or REPO.parent / "shared" / "datasets")


def cost_ratio(dataset: str, root: str | None, proxy_batch: int, max_train: int | None) -> dict:
    """Proxy cost vs training cost for Table I's median CNN and LSTM, same process, torch on 1 thread.

    One epoch is timed on ``max_train`` windows (all when None) and scaled linearly to the full training split
    (an epoch is a fixed number of identical batches), then to 50 epochs.
    """
    import torch

    from harcore.zcp import median_archs
    from harcore.zcp.study import StudyConfig, load_study_data, run_architecture

    torch.set_num_threads(1)
    d = load_study_data(dataset, root)
    out = {}
    for arch in median_archs():
        cfg = StudyConfig(dataset, 1, epochs=1, proxy_batch=proxy_batch, max_train=max_train)
        r = run_architecture(0, arch, d, cfg)
        n_sub = min(len(d.x_train), max_train or len(d.x_train))
        epoch_full = r["train_seconds"] * len(d.x_train) / n_sub
        out[arch.kind] = {"arch": arch.key, "proxy_batch": proxy_batch, "score_seconds": r["score_seconds"],
                          "train_epoch_seconds_measured": r["train_seconds"], "train_windows_measured": n_sub,
                          "train_epoch_seconds_full_split": epoch_full, "train_windows_full": len(d.x_train),
                          "score_over_50_epochs": r["score_seconds"] / (50 * epoch_full),
                          "archs_scored_per_second_per_core": 1.0 / r["score_seconds"]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="hapt")
    ap.add_argument("--root", default=str(SHARED / "hapt_v2.1_rawdata.tar.xz"))
    ap.add_argument("--archs", type=int, default=300)
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--out", default=str(REPO / "runs" / "bench_zcp_study_hapt"))
    ap.add_argument("--parallel", action="store_true")
    ap.add_argument("--address", default=None)
    ap.add_argument("--smoke", action="store_true", help="6 archs, 1 epoch, subsampled: a smoke run, not a result")
    ap.add_argument("--no-cost", action="store_true", help="skip the proxy-cost measurement")
    ap.add_argument("--cost-only", action="store_true", help="only the proxy-cost measurement")
    ap.add_argument("--cost-train", type=int, default=1024, help="windows of the timed training epoch")
    a = ap.parse_args()
    from harcore.zcp.study import StudyConfig, run_study

    root = None if a.dataset == "default" else a.root
    archs, epochs, proxy_batch, max_train = a.archs, a.epochs, 256, None
    if a.smoke:
        archs, epochs, proxy_batch, max_train = 6, 1, 32, 256
    cfg = StudyConfig(a.dataset, archs, epochs=epochs, proxy_batch=proxy_batch, max_train=max_train, root=root)
    Path(a.out).mkdir(parents=True, exist_ok=True)
    if a.cost_only:
        res = {"cost": cost_ratio(a.dataset, root, 256, a.cost_train)}
        Path(a.out, "bench_zcp_cost.json").write_text(json.dumps(res, indent=2))
        print(json.dumps(res, indent=2))
        return
    t0 = time.time()
    summary = run_study(cfg, a.out, parallel=a.parallel, address=a.address)
    res = {"smoke": a.smoke, "wall_seconds": time.time() - t0, "summary": summary}
    if not a.no_cost:
        res["cost"] = cost_ratio(a.dataset, root, 256, a.cost_train)
    Path(a.out, "bench_zcp.json").write_text(json.dumps(res, indent=2))
    print("| proxy | Spearman | talent | Δ1 (pt) | Δ10 (pt) |\n|---|---|---|---|---|")
    for n, m in summary["proxies"].items():
        rho = "n/a" if m["spearman"] is None else f"{m['spearman']:.3f}"
        print(f"| {n} | {rho} | {m['talent_rate']:.2f} | {100 * m['delta1']:.2f} | {100 * m['delta10']:.2f} |")
    if "cost" in res:
        print(json.dumps(res["cost"], indent=2))


if __name__ == "__main__":
    main()
