"""The µBi-ConvLSTM paper's table with harcore's own features: Optuna HPO, final training over 5 seeds,
its A0-A4 ablations and width sweep, and the TinierHAR row, on every dataset at hand.

At the paper's scale (50 trials x 10 epochs, then 5 x 200 epochs with patience 10, per dataset, plus
the ablations x 5 seeds). Measured figures and times: benchmarks/RESULTS.md, "µBi-ConvLSTM: the paper's
protocol". The commands, from the repository root:

    # 1. HPO + final training (the paper's protocol, harcore hpo's defaults), one study per dataset:
    python benchmarks/bench_hpo_mubi.py hpo --dataset hapt --data-dir ../shared/datasets/hapt_v2.1_rawdata.tar.xz \
        --dataset-option variant=uci9
    python benchmarks/bench_hpo_mubi.py hpo --dataset daphnet \
        --data-dir ../shared/datasets/daphnet_fog_partial_7of17.tar.xz --balanced
    python benchmarks/bench_hpo_mubi.py hpo --dataset default
    #    a second worker on the same study (another shell or machine; any Optuna storage URL works):
    harcore hpo --model mubiconvlstm --dataset hapt --data-dir ../shared/datasets/hapt_v2.1_rawdata.tar.xz \
        --dataset-option variant=uci9 --trials 50 --out runs/hpo-mubi/hapt --study mubiconvlstm-hapt --no-final

    # 2. Ablations A0-A4, the width sweep and TinierHAR with the tuned lr / weight decay / dropout of step 1,
    #    5 seeds each (resumable; --parallel N runs N at once through Ray):
    python benchmarks/bench_hpo_mubi.py ablations --dataset hapt \
        --data-dir ../shared/datasets/hapt_v2.1_rawdata.tar.xz --dataset-option variant=uci9 --parallel 2
    #    only some variants / models (the rest can follow; finished runs are reused):
    python benchmarks/bench_hpo_mubi.py ablations --dataset default --variants A0,A1,A2,A3,A4 --models mubiconvlstm

Step 1 writes runs/hpo-mubi/<dataset>/{study.db,hpo.json,summary.md}; step 2 writes
runs/hpo-mubi/<dataset>/ablations/{results.json,report.md,report.html,*.png}. Selection (HPO, early stopping,
best weights) uses validation subjects only; test subjects are evaluated once per run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from harcore import hpo
from harcore.experiments import BenchSpec, run_bench
from harcore.models.mubiconvlstm import ABLATIONS, WIDTHS
from harcore.nas.cli import parse_options


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=("hpo", "ablations"))
    ap.add_argument("--dataset", default="default")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--dataset-option", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--balanced", action="store_true", help="inverse-frequency class weights (Daphnet, ...)")
    ap.add_argument("--out", default="runs/hpo-mubi")
    ap.add_argument("--trials", type=int, default=50)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=10, help="epochs per trial (the paper's 10; fewer: a reduced run)")
    ap.add_argument("--final-epochs", type=int, default=200, help="final-training epochs (the paper's 200; fewer: reduced)")
    ap.add_argument("--master-seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parallel", type=int, default=1)
    ap.add_argument("--variants", default=None,
                    help="ablations step: comma-separated subset of the µBi variants (A0-A4, F<f>-H<h>); default all")
    ap.add_argument("--models", default="mubiconvlstm,tinierhar",
                    help="ablations step: models to run (tinierhar runs its base build)")
    args = ap.parse_args()
    out = Path(args.out) / args.dataset
    opts = parse_options(args.dataset_option, "--dataset-option")
    cfg = hpo.HPOConfig(model="mubiconvlstm", dataset=args.dataset, data_dir=args.data_dir, dataset_options=opts,
                        trials=args.trials, epochs=args.epochs,
                        final_epochs=args.final_epochs, seeds=args.seeds, master_seed=args.master_seed, threads=args.threads,
                        class_weights="balanced" if args.balanced else None, out=str(out))
    if args.step == "hpo":
        hpo.run(cfg, log=print)
        print((out / "summary.md").read_text())
        return
    best = json.loads((out / "hpo.json").read_text())["best_params"]
    dropout = {"dropout": best["dropout"]}
    variants = {k: {**o, **dropout} for k, o in ABLATIONS.items()}
    # (16, 24) is A0 itself
    variants.update({f"F{w['filters']}-H{w['lstm_hidden']}": {**w, **dropout} for w in WIDTHS
                     if (w["filters"], w["lstm_hidden"]) != (16, 24)})
    if args.variants:
        wanted = args.variants.split(",")
        unknown = sorted(set(wanted) - set(variants))
        if unknown:
            ap.error(f"--variants: unknown {unknown}; known: {sorted(variants)}")
        variants = {k: variants[k] for k in wanted}
    from harcore.train import seeds_from_master

    spec = BenchSpec(models=args.models.split(","), datasets=[args.dataset],
                     seeds=seeds_from_master(args.master_seed, args.seeds),
                     variants={"mubiconvlstm": variants} if "mubiconvlstm" in args.models.split(",") else {}, data_dirs={args.dataset: args.data_dir} if args.data_dir else {},
                     dataset_options={args.dataset: opts} if opts else {}, epochs=cfg.final_epochs,
                     patience=cfg.final_patience, lr=best["lr"], weight_decay=best["weight_decay"],
                     class_weights="balanced" if args.balanced else None, threads=args.threads)
    run_bench(spec, out / "ablations", parallel=args.parallel, log=print)
    print((out / "ablations" / "report.md").read_text())


if __name__ == "__main__":
    main()
