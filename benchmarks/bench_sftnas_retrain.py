"""Train SFTNAS architectures on HAPT uci9 with the main job's fine-tuning recipe, over seeds (issue 6).

What it answers: how good is a (searched or hand-written) architecture once trained, independently of the
search's weights. Each architecture is an ``arch.json`` from a run folder (what ``harcore search`` derived) or
one of the named reference layouts below; ``--init supernet`` starts from the weights in the run folder's
``search_last.pt`` instead of fresh ones (only for arch.json files whose search kept its checkpoint).

Recipe: ``JobConfig(preset="quick", finetune_epochs=E).train_config`` (Adam 2e-3, batch 64, cosine, no early
stopping, best validation weights restored), validation = 25 % of the training subjects, one thread per run.
``--train-on all`` retrains as the main job does by default (``JobConfig.train_on``) and DARTS/GDAS retrain a
derived cell: on the search's training and validation subjects as one split (``pipeline.final_splits``; the
z-normalization stays the search's, fitted on its training subjects), no validation, the last epoch's weights.
``--train-on all21`` does the same from the fixed split loaded anew, z-normalization fitted on all 21 subjects.
Prints a Markdown table (test macro-F1 mean ± std over seeds, MACs / params / peak SRAM from harcore.cost) and
writes ``--out`` JSON.

    python benchmarks/bench_sftnas_retrain.py --archs k5_f12,runs/x/arch.json --seeds 0,1,2 --epochs 60
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARCORE_SHARED") or REPO.parent / "shared" / "datasets")
HAPT = SHARED / "hapt_v2.1_rawdata.tar.xz"


def reference(name: str) -> dict:
    """Named TinyHAR layouts on 9 x 128: ``k<K>_f<F>`` = k-wide stride-2 convs with F filters, identities between;
    ``k<K>_f<F>_tied``: the later stages tied to F filters as a search with ``tie_tail`` derives them."""
    parts = name.split("_")
    tied = parts[-1] == "tied"
    k, f = (int(p[1:]) for p in parts[:2])
    layers = []
    for _ in range(5):
        layers += [{"op": "conv", "kernel": k, "stride": 2, "filters": f}, {"op": "identity", "stride": 1}]
    d = {"backbone": "tinyhar", "in_channels": 9, "seq_len": 128, "num_classes": 6, "channels": list(range(9)),
         "layers": layers}
    if tied:
        from harcore.models.sftnas import DEFAULT_FILTERS
        from harcore.nas.budget import tied_tail

        d["tail"] = tied_tail("tinyhar", {}, DEFAULT_FILTERS["tinyhar"], f)
    return d


def load_arch(spec: str) -> dict:
    p = Path(spec)
    return json.loads(p.read_text()) if p.suffix == ".json" else reference(spec)


def run_one(spec: str, seed: int, epochs: int, init: str, train_on: str = "train") -> dict:
    import torch

    from harcore.cost import profile
    from harcore.nas import Arch
    from harcore.nas.derive import build
    from harcore.nas.pipeline import JobConfig, load_data
    from harcore.train import evaluate, fit

    torch.set_num_threads(1)
    job = JobConfig(dataset="hapt", data_dir=str(HAPT), preset="quick", finetune_epochs=epochs, seed=seed,
                    progress=False)
    if train_on == "all21":
        from harcore import data as hd

        ds = hd.load("hapt", str(HAPT), variant="uci9")  # the fixed split: all 21 training subjects, no val
        train, val = ds.train, None
    else:
        from harcore.nas.pipeline import final_splits

        ds = load_data(job)
        train, val = final_splits(ds, train_on)
    arch = Arch.from_dict(load_arch(spec))
    net = None
    if init == "supernet":
        from harcore.nas.supernet import Supernet

        ck = torch.load(Path(spec).parent / "search_last.pt", map_location="cpu", weights_only=False)
        net = Supernet(arch.backbone, arch.in_channels, arch.seq_len, arch.num_classes,
                       filters=ck["config"].get("filters"), tail=arch.tail)
        net.load_state_dict(ck["net"])
    torch.manual_seed(seed)
    model = build(arch, net)
    cfg = dataclasses.replace(job.train_config(Path(".")), checkpoint_dir=None)  # the recipe, no checkpoints
    t0 = time.perf_counter()
    tr = fit(model, train, val, cfg)
    m = evaluate(model, ds.test)
    p = profile(model, (arch.in_channels, arch.seq_len)).total
    return {"arch": spec, "summary": arch.summary(), "seed": seed, "init": init, "epochs": epochs, "train_on": train_on,
            "macro_f1": m.macro_f1, "accuracy": m.accuracy, "best_val_macro_f1": tr.best_val_macro_f1,
            "macs": p.macs, "params": p.params, "peak_sram": p.peak_sram, "seconds": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", required=True, help="comma-separated arch.json paths or reference names (k5_f12)")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--init", choices=("scratch", "supernet"), default="scratch")
    ap.add_argument("--train-on", choices=("train", "all", "all21"), default="train",
                    help="train: the search's training subjects, best validation epoch; all: its training and "
                         "validation subjects, last epoch (the main job's default); all21: the same, normalization "
                         "refitted on all 21")
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "runs" / "bench_sftnas_retrain.json"))
    args = ap.parse_args()
    specs = [s.strip() for s in args.archs.split(",") if s.strip()]
    seeds = [int(s) for s in args.seeds.split(",")]
    jobs = [(s, seed) for s in specs for seed in seeds]
    with ProcessPoolExecutor(args.parallel) as ex:
        rows = list(ex.map(run_one, [j[0] for j in jobs], [j[1] for j in jobs], [args.epochs] * len(jobs),
                           [args.init] * len(jobs), [args.train_on] * len(jobs)))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=2))
    print(f"| architecture | init | MMACs | params | peak SRAM (B) | test macro-F1 (mean ± std, {len(seeds)} seeds) | per seed |")
    print("|---|---|---|---|---|---|---|")
    for s in specs:
        rs = [r for r in rows if r["arch"] == s]
        f1 = [100 * r["macro_f1"] for r in rs]
        sd = statistics.stdev(f1) if len(f1) > 1 else 0.0
        label = rs[0]["summary"].replace(" | ", "; ")
        print(f"| {label} | {args.init} | {rs[0]['macs'] / 1e6:.3f} | {rs[0]['params']:,} | "
              f"{rs[0]['peak_sram']:,} | {statistics.mean(f1):.2f} ± {sd:.2f} | {', '.join(f'{v:.2f}' for v in f1)} |")


if __name__ == "__main__":
    main()
