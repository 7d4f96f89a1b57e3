"""Ablation of the pruning readings of issue 15 (search only, validation subjects only).

Runs one SFTNAS search per combination of the options below, with a budget target, and reports per run: the
figure against the target per epoch, the epoch ``pick_arch`` returns, sensors and filters kept per layer, and the
supernet's validation macro-F1 on its argmax network over the last epochs (a proxy: the Table II decision needs
the derived networks trained over 3 seeds). The test subjects are never read.

    # the measurement of docs/nas.md ("Pruning"), ~9 min per run on 2 shared cores:
    python benchmarks/bench_sftnas_prune_ablation.py --params 14K --tie-tail --lr-v 5e-3 \\
        --grid dcs_shared=0,1 --out runs/ablation_params14k
    # resource forms and warm-up under a MAC target:
    python benchmarks/bench_sftnas_prune_ablation.py --macs 500K --lr-v 5e-3 \\
        --grid resource=band,hinge,lagrange --grid prune_warmup=0,3 --out runs/ablation_macs500k
    # on HAPT (UCI-HAR-equivalent windows), the paper preset:
    python benchmarks/bench_sftnas_prune_ablation.py --dataset hapt --data-dir ../shared/datasets/hapt_v2.1_rawdata.tar.xz \\
        --preset paper --params 14K --grid dcs_shared=0,1 --grid dcs_init=0.75,1.0 --seeds 0,1,2 --out runs/ablation_hapt

Each run writes ``<out>/<name>.json`` (its history) and is skipped when that file exists (resumable); the
table goes to ``<out>/ablation.md``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path


def _value(text: str):
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default=None)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--preset", default=None)
    ap.add_argument("--backbone", default="tinyhar")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--macs", default=None)
    ap.add_argument("--params", default=None)
    ap.add_argument("--flash", default=None)
    ap.add_argument("--tie-tail", action="store_true")
    ap.add_argument("--lr-v", type=float, default=None)
    ap.add_argument("--grid", action="append", default=[], help="OPTION=V1,V2,... (a SearchConfig pruning option)")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    from harcore.nas.cli import parse_size
    from harcore.nas.pipeline import JobConfig, load_data
    from harcore.nas.search import search

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    grid = []
    for g in args.grid:
        key, _, vals = g.partition("=")
        vs = [_value(v) for v in vals.split(",")]
        if key in ("dcs_shared", "tie_tail", "budget_alpha"):
            vs = [bool(v) for v in vs]
        grid.append([(key, v) for v in vs])
    base_prune = {"tie_tail": args.tie_tail} if args.tie_tail else {}
    if args.lr_v is not None:
        base_prune["lr_v"] = args.lr_v
    targets = {k: parse_size(getattr(args, k), f"--{k}") for k in ("macs", "params", "flash")}
    rows = []
    data = None
    for seed in [int(s) for s in args.seeds.split(",")]:
        for combo in itertools.product(*grid) if grid else [()]:
            prune = {**base_prune, **dict(combo)}
            name = "_".join(f"{k}-{v}" for k, v in sorted(prune.items())) + f"_seed{seed}"
            cfg = JobConfig(dataset=args.dataset, data_dir=args.data_dir, preset=args.preset, backbone=args.backbone,
                            search_epochs=args.epochs, seed=seed, progress=False, prune=prune, **targets)
            path = out / f"{name}.json"
            if path.exists():
                rec = json.loads(path.read_text())
            else:
                data = data or load_data(cfg)
                t0 = time.perf_counter()
                r = search(data.train, data.val, cfg.search_config())
                rec = {"name": name, "prune": prune, "seed": seed, "targets": targets, "arch": r.arch.to_dict(),
                       "arch_epoch": r.arch_epoch, "seconds": time.perf_counter() - t0,
                       "history": [{k: h[k] for k in ("epoch", "macs", "params", "peak_sram", "flash", "sensors",
                                                      "filters_kept", "val_macro_f1")} for h in r.history]}
                path.write_text(json.dumps(rec, indent=1))
            rows.append(rec)
            print(f"{name}: picked epoch {rec['arch_epoch']}", flush=True)
    key = next((k for k in ("params", "macs", "flash") if targets[k]), "params")
    lines = [f"| run | {key} per epoch | picked (epoch) | sensors | filters kept | val F1, last 3 | seconds |",
             "|---|---|---|---:|---|---|---:|"]
    for rec in rows:
        h = rec["history"]
        pick = next((x for x in h if x["epoch"] == rec["arch_epoch"]), h[-1])
        per_epoch = " ".join(f"{x[key] / 1e3:.1f}k" for x in h)
        kept = " ".join("id" if f is None else str(f) for f in pick["filters_kept"])
        f1 = " ".join(f"{x['val_macro_f1']:.2f}" for x in h[-3:])
        lines.append(f"| {rec['name']} | {per_epoch} | {pick[key]:,} ({rec['arch_epoch']}) | {pick['sensors']} | "
                     f"{kept} | {f1} | {rec['seconds']:.0f} |")
    (out / "ablation.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
