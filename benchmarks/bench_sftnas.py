"""TinyHAR + SFTNAS and DeepConvLSTM + SFTNAS on UCI-HAR-equivalent windows built from HAPT (issue 6).

Protocol: ``harcore.data.load("hapt", <archive>, variant="uci9")`` (9 channels x 128 samples, 6 classes, UCI-HAR's
test subjects), validation = 25 % of the training subjects (the split alpha is trained on), then the main job
(:func:`harcore.nas.pipeline.run_job`) per backbone: SFTNAS search with the paper's hyper-parameters (200 epochs,
batch 256, Adam 1e-4 / 5e-3), L_Mem = 96 KB, fine-tuning, int8, deploy, report. The beta1 sweep runs through Ray
(``--parallel`` searches at once) and gives the Pareto front (test macro-F1 vs MACs vs peak SRAM).

Goal (TinyHAR): macro-F1 >= 94 at <= 0.77 MMACs and <= 96 KB peak SRAM; the paper: 94.36, 0.767 MMACs, 13.96k
parameters.

``--searches N`` gives every job N searches with the best on validation kept (``harcore search --searches``): the
per-seed table then names each job's searches, their validation figures and the one kept.

``--quick`` runs every backbone once with 2 search and 2 fine-tuning epochs at the quick preset's learning
rates: it proves the benchmark runs, its figures are not results. Writes ``--out-dir/bench_sftnas.json`` and
prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARCORE_SHARED") or REPO.parent / "shared" / "datasets")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backbones", default="tinyhar,deepconvlstm")
    ap.add_argument("--beta1", default="0,0.3,1,3", help="comma-separated beta1 values (the sweep)")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--address", default=None, help="an existing Ray cluster")
    ap.add_argument("--hapt", default=str(SHARED / "hapt_v2.1_rawdata.tar.xz"))
    ap.add_argument("--out-dir", default=str(REPO / "runs" / "bench_sftnas"))
    ap.add_argument("--quick", action="store_true", help="2 + 2 epochs, one beta1: a smoke run, not a result")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--preset", choices=("paper", "quick"), default="paper",
                    help="search hyper-parameters: the paper's (Sec. V-A4) or the quick preset's (batch 64, lr 2e-3)")
    ap.add_argument("--train-on", choices=("all", "train"), default="all",
                    help="what the derived network trains on (JobConfig.train_on)")
    ap.add_argument("--search-epochs", type=int, default=None, help="default: the preset's (paper: 200)")
    ap.add_argument("--finetune-epochs", type=int, default=None, help="default: the preset's")
    ap.add_argument("--macs", type=float, default=None,
                    help="a MAC budget for every search (the job's --macs: an Eq. 13-style hinge), e.g. 770000")
    ap.add_argument("--beta-macs", type=float, default=1.0,
                    help="weight of the MAC hinge (0: the budget only selects the latest epoch's architecture that fits)")
    ap.add_argument("--flash", default=None,
                    help="a flash limit for every job (e.g. 512KB: selection only, and checked on the derived model)")
    ap.add_argument("--params", default=None, help="a parameter target for every job (the job's --params, e.g. 14K)")
    ap.add_argument("--sram", default="96KB", help="the peak SRAM limit L_Mem of every job (the job's --sram)")
    ap.add_argument("--prune", action="append", default=[], metavar="KEY=VALUE",
                    help="a pruning option of SearchConfig (JobConfig.prune), e.g. dcs_shared=1 (repeatable)")
    ap.add_argument("--searches", type=int, default=1,
                    help="searches per job, the best on validation kept (the job's --searches; harcore.nas.selection)")
    ap.add_argument("--select-epochs", type=int, default=None, help="with --searches: the job's --select-epochs")
    ap.add_argument("--table", nargs="+", default=None, metavar="OUT_DIR",
                    help="run nothing: the per-seed and mean ± std table of the finished runs in these --out-dir folders")
    ap.add_argument("--tail", default=None,
                    help="options of the backbone's later stages, e.g. lstm_layers=1,dropout=0.5 (the job's --tail)")
    args = ap.parse_args(argv)
    if args.table:
        print(seed_table([Path(d) for d in args.table]))
        return

    import torch

    from harcore.nas.cli import parse_options, parse_size
    from harcore.nas.pipeline import JobConfig, run_job
    from harcore.nas.sweep import run_sweep, summarize

    torch.set_num_threads(1)
    out = Path(args.out_dir)
    backbones = [b.strip() for b in args.backbones.split(",")]
    t0 = time.perf_counter()
    if args.quick:
        rows = []
        for bb in backbones:
            cfg = JobConfig(dataset="hapt", data_dir=args.hapt, backbone=bb, sram=96_000, search_epochs=2,
                            finetune_epochs=2, preset="quick", out=str(out / f"quick_{bb}"), progress=False,
                            train_on=args.train_on)
            res = run_job(cfg, resume=args.resume)
            row = summarize(res)
            row["search_seconds"] = res.stages["search"].seconds if "search" in res.stages else None
            rows.append(row)
        result = {"mode": "quick", "runs": rows, "seconds": time.perf_counter() - t0}
    else:
        # 0/1 for the booleans (dcs_shared=1): SearchConfig's flags are plain truth values
        prune = parse_options(args.prune, "--prune")
        base = JobConfig(dataset="hapt", data_dir=args.hapt, backbone=backbones[0],
                         sram=parse_size(args.sram, "--sram"), preset=args.preset,
                         params=parse_size(args.params, "--params") if args.params else None, prune=prune,
                         macs=int(args.macs) if args.macs is not None else None, beta_macs=args.beta_macs,
                         flash=parse_size(args.flash, "--flash") if args.flash else None,
                         tail=parse_options(args.tail.split(",") if args.tail else None, "--tail"),
                         search_epochs=args.search_epochs, finetune_epochs=args.finetune_epochs, out=str(out),
                         train_on=args.train_on, searches=args.searches, select_epochs=args.select_epochs)
        result = run_sweep(base, beta1s=[float(b) for b in args.beta1.split(",")],
                           seeds=[int(s) for s in args.seeds.split(",")], backbones=backbones,
                           parallel=args.parallel, address=args.address, resume=args.resume)
        result["mode"] = "full" if args.preset == "paper" and args.search_epochs is None else "reduced"
        result["preset"], result["search_epochs"], result["finetune_epochs"], result["macs_budget"], result["beta_macs"] = (
            args.preset, args.search_epochs, args.finetune_epochs, args.macs, args.beta_macs)
        result["flash_budget"], result["tail"], result["train_on"] = args.flash, args.tail, args.train_on
        result["params_budget"], result["sram_budget"], result["prune"] = args.params, args.sram, prune
        result["searches"], result["select_epochs"] = args.searches, args.select_epochs
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_sftnas.json").write_text(json.dumps(result, indent=2, default=str))
    print("| run | test macro-F1 (float) | MMACs | params | peak SRAM (B) | flash (B) | fits | search s | arch |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in result["runs"]:
        if "macro_f1" not in r:
            print(f"| {r['label']} | FAILED at {r.get('failed_stage')}: {r.get('detail')} |")
            continue
        print(f"| {r['label']} | {100 * r['macro_f1']:.2f} | {r['macs'] / 1e6:.3f} | {r['params']:,} | "
              f"{r['peak_sram']:,} | {r['flash']:,} | {r['fits']} | {r['search_seconds']:.0f} | {r['arch']} |")
    print(f"total wall time {result['seconds']:.0f} s; details in {out / 'bench_sftnas.json'}")


def _run_row(job: dict) -> dict:
    """One finished main job (its job.json) as a row: what the search picked and on which validation figure,
    what the derived network costs, and its test macro-F1 (float and int8) — test read once, by the job."""
    st = job["stages"]
    derive = st["derive"]["data"]
    epoch = derive.get("arch_epoch")
    hist = {r["epoch"]: r for r in st["search"]["data"].get("history", [])}
    arch = job["arch"]
    filters = ["id" if layer["op"] == "identity" else str(layer["filters"]) for layer in arch["layers"]]
    sel = st["search"]["data"].get("selection")
    seed = job["config"]["seed"] if sel is None else (
        f"{job['config']['seed']} (searches " + ", ".join(f"{r['seed']}: val {100 * r['val_macro_f1']:.2f}"
                                                           for r in sel["searches"]) + f"; kept {sel['kept_seed']})")
    return {"seed": seed, "picked_epoch": epoch,
            "val_f1_picked": hist[epoch]["val_macro_f1"] if epoch in hist else float("nan"),
            "search_s": st["search"]["seconds"], "sensors": len(arch["channels"]), "filters": " ".join(filters),
            "tail": arch.get("tail", {}).get("filter_num"), **{k: derive["total"][k] for k in
                                                               ("macs", "params", "peak_sram", "flash")},
            "fits": st["fit"]["status"] == "ok" if "fit" in st else None,
            "f1": st["evaluate"]["data"]["metrics"]["macro_f1"],
            "f1_int8": st["int8-eval"]["data"]["metrics"]["macro_f1"] if "int8-eval" in st else float("nan"),
            "bit_exact": st["validate"]["status"] == "ok" if "validate" in st else None}


def seed_table(out_dirs: list[Path]) -> str:
    """Per run and per folder (one configuration, several search seeds): mean ± sample std over the seeds."""
    import numpy as np

    lines = ["| runs | seed | picked epoch | val F1 there | search s | sensors | filters per layer | MACs | params "
             "| peak SRAM | flash | fits | test F1 float | int8 | QEMU bit-exact |", "|" + "---|" * 15]
    means = ["| runs | seeds | val F1 (picked) | MMACs | params | peak SRAM | test macro-F1 float | int8 "
             "| search s |", "|" + "---|" * 9]
    for d in out_dirs:
        rows = []
        for job_file in sorted(d.glob("*/job.json")) or sorted(d.glob("job.json")):  # a sweep's folder, or one job
            job = json.loads(job_file.read_text())
            if not job.get("finished") or "evaluate" not in job["stages"]:
                continue
            r = _run_row(job)
            rows.append(r)
            lines.append(f"| {d.name} | {r['seed']} | {r['picked_epoch']} | {100 * r['val_f1_picked']:.2f} | "
                         f"{r['search_s']:.0f} | {r['sensors']} | {r['filters']} (tail {r['tail']}) | {r['macs']:,} | "
                         f"{r['params']:,} | {r['peak_sram']:,} | {r['flash']:,} | {r['fits']} | {100 * r['f1']:.2f} | "
                         f"{100 * r['f1_int8']:.2f} | {r['bit_exact']} |")
        if not rows:
            continue

        def ms(key, scale=100.0, fmt="{:.2f}"):
            v = np.array([r[key] for r in rows], dtype=float) * scale
            sd = v.std(ddof=1) if len(v) > 1 else 0.0
            return f"{fmt.format(v.mean())} ± {fmt.format(sd)}"
        means.append(f"| {d.name} | {len(rows)} | {ms('val_f1_picked')} | {ms('macs', 1e-6, '{:.3f}')} | "
                     f"{ms('params', 1.0, '{:,.0f}')} | {ms('peak_sram', 1.0, '{:,.0f}')} | {ms('f1')} | "
                     f"{ms('f1_int8')} | {ms('search_s', 1.0, '{:.0f}')} |")
    return "\n".join(lines + [""] + means)


if __name__ == "__main__":
    main()
