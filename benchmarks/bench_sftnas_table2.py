"""The SFTNAS paper's Table II (UCI-HAR) on HAPT-derived UCI-HAR-equivalent windows, with its baselines (issue 15).

Rows: DeepConvLSTM (DCL), Attend-and-Discriminate (Attend), TinyHAR x {original at the paper's widths, + SFTNAS,
+ AutoSlim, + PaS}. Every row is a set of cells, each cell one run of harcore's main job
(:func:`harcore.nas.pipeline.run_job`: search or pruning -> derive -> training from scratch -> int8 -> deploy ->
report) in its own run folder ``<out>/<backbone>_<method>_seed<s>``:

* original: ``--method fixed`` (no search): the backbone's original first stage at 64 filters (TinyHAR with
  ``filter_num 64``, 298.18k parameters; DCL teco-kit's layout, 1 x LSTM(128), dropout 0.5, 424.26k; Attend
  445.38k), trained by the same recipe; seeds are training seeds.
* + SFTNAS / + AutoSlim / + PaS: ``--method sftnas|autoslim|pas`` with the paper row's parameters and MACs as the
  targets (``--budget paper``), or every method at SFTNAS's row's targets (``--budget same``: like for like); seeds
  are search seeds (each search's network trained by the job's recipe with the same seed). SFTNAS runs with one
  DCS mask per layer (``--dcs-shared``, the recommended setting with a target, docs/nas.md); the parameter target
  ties the later stages' width to the kept filters, for all three methods.

Columns: parameters, MMACs, peak SRAM, int8 flash (the cost model of the derived network), float and int8
test macro-F1 as mean +- std over the seeds, beside the paper's row.

Selection discipline: every choice (search epochs kept, AutoSlim's greedy steps, PaS's epoch, options and
defaults) is made on the validation subjects (25 % of the training subjects); the test subjects (UCI-HAR's
nine) are evaluated once per cell, at the end of its job, and enter nothing but this table.

Resumable: a cell whose ``job.json`` says ``finished`` is never run again (its figures are read back); an
interrupted one resumes from its checkpoint. ``--parallel N`` runs N cells at once through Ray (``--address`` for
an existing cluster); Ray is optional. Writes ``<out>/table2.md`` and ``<out>/table2.json``.

    # the table (days of CPU with the paper preset):
    python benchmarks/bench_sftnas_table2.py --out runs/table2 --parallel 2
    # one cell, quick preset:
    python benchmarks/bench_sftnas_table2.py --out runs/table2_quick --preset quick --backbones tinyhar \\
        --methods pas --seeds 0
    # a smoke run on the built-in data (1 epoch, 8 filters; proves the script, not a result):
    python benchmarks/bench_sftnas_table2.py --smoke --out /tmp/table2_smoke
    # the fronts plot: a MAC-target sweep of TinyHAR + SFTNAS against hand-written layouts of the same space
    python benchmarks/bench_sftnas_table2.py --fronts --out runs/fronts --preset quick

``--fronts`` runs TinyHAR + SFTNAS at each ``--front-macs`` target and hand-written layouts of the SFTNAS space
(every sensor, k = 5 stride-2 convs with ``--hand-filters`` filters each, identities at the stride-1 layers),
trained by the same recipe (``--method fixed``), and plots test macro-F1 against MMACs (``fronts.png``, with
``fronts.md`` / ``fronts.json``). The same selection discipline holds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARCORE_SHARED") or REPO.parent / "shared" / "datasets")

BACKBONES = ("deepconvlstm", "attend_discriminate", "tinyhar")
METHODS = ("original", "sftnas", "autoslim", "pas")
SHORT = {"deepconvlstm": "DCL", "attend_discriminate": "Attend", "tinyhar": "TinyHAR"}
#: Table II of the paper: (parameters, MACs, macro-F1 %)
PAPER = {
    ("deepconvlstm", "original"): (424_260, 105_950_000, 92.51), ("deepconvlstm", "sftnas"): (33_740, 1_860_000, 92.49),
    ("deepconvlstm", "autoslim"): (46_210, 11_720_000, 91.83), ("deepconvlstm", "pas"): (37_890, 9_640_000, 92.04),
    ("attend_discriminate", "original"): (445_380, 120_550_000, 94.07),
    ("attend_discriminate", "sftnas"): (41_110, 1_370_000, 93.29),
    ("attend_discriminate", "autoslim"): (48_620, 13_590_000, 92.88),
    ("attend_discriminate", "pas"): (39_890, 11_200_000, 92.71),
    ("tinyhar", "original"): (298_180, 36_270_000, 94.58), ("tinyhar", "sftnas"): (13_960, 767_000, 94.36),
    ("tinyhar", "autoslim"): (39_990, 6_210_000, 93.58), ("tinyhar", "pas"): (21_340, 3_560_000, 94.19),
}
#: The later stages at the paper's widths (docs/nas.md).
PAPER_TAIL = {"tinyhar": {"filter_num": 64}, "deepconvlstm": {"lstm_layers": 1, "dropout": 0.5},
              "attend_discriminate": {}}
SELECTION = ("Selection discipline: every choice (search epochs, AutoSlim's greedy steps, PaS's epoch, options) was "
             "made on the validation subjects; the test subjects were evaluated once per cell, at the end.")


# ---- cells -----------------------------------------------------------------------------------------

def cell_configs(args) -> list[Any]:
    """One :class:`JobConfig` per (backbone, method, seed) of the table."""
    from harcore.nas.baselines import figures, original_arch
    from harcore.nas.pipeline import JobConfig

    out = Path(args.out).resolve()
    cfgs = []
    for bb in args.backbones:
        tail = {} if args.smoke else dict(PAPER_TAIL[bb])
        filters = 8 if args.smoke else 64
        if args.smoke:  # the paper's ratios to its original row, applied to this small original
            orig = figures(original_arch(bb, 9, 128, 6, filters=filters, tail=tail))
        for m in args.methods:
            budget_row = "sftnas" if args.budget == "same" and m != "original" else m
            p_params, p_macs, _ = PAPER[bb, budget_row]
            if args.smoke:
                o_params, o_macs, _ = PAPER[bb, "original"]
                p_params = int(orig["params"] * p_params / o_params)
                p_macs = int(orig["macs"] * p_macs / o_macs)
            targets = {} if m == "original" else {"params": int(p_params), "macs": int(p_macs)}
            for s in args.seeds:
                kw: dict[str, Any] = dict(
                    dataset=None if args.smoke else "hapt", data_dir=None if args.smoke else args.hapt,
                    backbone=bb, filters=filters, tail=tail, sram=None, seed=s, progress=False,
                    method="fixed" if m == "original" else m, preset=args.preset,
                    search_epochs=args.search_epochs, finetune_epochs=args.finetune_epochs,
                    out=str(out / f"{bb}_{m}_seed{s}"), num_threads=1, **targets)
                if m == "sftnas":
                    kw["prune"] = {"dcs_shared": True}
                if args.smoke:
                    kw.update(int8="ptq", qat_epochs=None)
                cfgs.append(JobConfig(**kw))
    return cfgs


def read_cell(run_dir: Path) -> dict[str, Any] | None:
    """A finished cell's figures from its ``job.json`` (None: not finished)."""
    p = Path(run_dir) / "job.json"
    if not p.exists():
        return None
    try:
        job = json.loads(p.read_text())
    except ValueError:
        return None
    if not job.get("finished"):
        return None
    st = job["stages"]
    row: dict[str, Any] = {"run_dir": str(run_dir), "label": Path(run_dir).name,
                           "stages": {k: v["status"] for k, v in st.items()}}
    bad = [k for k in ("data", "budget", "search", "derive", "finetune", "evaluate") if st.get(k, {}).get("status") != "ok"]
    if bad:
        row.update(failed_stage=bad[0], detail=st.get(bad[0], {}).get("detail", "not run"))
        return row
    total = st["derive"]["data"]["total"]
    row.update(params=total["params"], macs=total["macs"], peak_sram=total["peak_sram"], flash=total["flash"],
               macro_f1=st["evaluate"]["data"]["metrics"]["macro_f1"], arch=job["arch"],
               search_seconds=st["search"]["seconds"], fits=st.get("fit", {}).get("status"))
    i8 = st.get("int8-eval", {})
    if i8.get("status") == "ok":
        row["int8_macro_f1"] = i8["data"]["metrics"]["macro_f1"]
    return row


def run_cell(cfg_dict: dict[str, Any]) -> dict[str, Any]:
    """Run (or resume) one cell and return its figures; a finished cell is only read back."""
    import io

    from rich.console import Console

    from harcore.nas.pipeline import SEARCH_CHECKPOINT, JobConfig, run_job

    cfg = JobConfig(**cfg_dict)
    run = Path(cfg.out)
    done = read_cell(run)
    if done is not None and "macro_f1" in done:
        done["reused"] = True
        return done
    # a finished cell that failed (a wrong data path, ...) runs again from the start; an unfinished one resumes
    resume = done is None and (run / SEARCH_CHECKPOINT).exists()
    overwrite = not resume and run.exists() and any(run.iterdir())
    buf = io.StringIO()
    t0 = time.perf_counter()
    try:
        run_job(cfg, resume=resume, overwrite=overwrite, console=Console(file=buf, width=160, color_system=None))
    except Exception as e:  # noqa: BLE001 — a failed cell is reported in the table, the others go on
        run.mkdir(parents=True, exist_ok=True)
        (run / "job.log").write_text(buf.getvalue())
        return {"label": run.name, "run_dir": str(run), "failed_stage": "job", "detail": f"{type(e).__name__}: {e}"}
    (run / "job.log").write_text(buf.getvalue())
    row = read_cell(run) or {"label": run.name, "failed_stage": "job", "detail": "not finished"}
    row["wall_seconds"] = time.perf_counter() - t0
    row["resumed"] = resume
    return row


def run_cells(cfgs: list[Any], parallel: int, address: str | None) -> list[dict[str, Any]]:
    """Every cell, ``parallel`` at once through Ray (in this process when 1 and no ``address``)."""
    total, rows = len(cfgs), []

    def report(r: dict[str, Any]) -> None:
        rows.append(r)
        what = ("reused (finished before)" if r.get("reused") else
                f"macro-F1 {r['macro_f1']:.4f}, {r['macs'] / 1e6:.3f} MMACs, {r['params']:,} params"
                if "macro_f1" in r else f"FAILED at {r['failed_stage']}: {r['detail']}")
        print(f"[{len(rows)}/{total}] {r['label']}: {what}", flush=True)

    if parallel <= 1 and not address:
        for c in cfgs:
            print(f"running {Path(c.out).name} ...", flush=True)
            report(run_cell(dataclasses.asdict(c)))
        return rows
    from harcore.nas.sweep import _import_ray, start_ray

    ray = _import_ray()
    started = start_ray(ray, parallel, address)
    try:
        remote = ray.remote(num_cpus=1)(run_cell)
        pending = [remote.remote(dataclasses.asdict(c)) for c in cfgs]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            report(ray.get(done[0]))
    finally:
        if started:
            ray.shutdown()
    return rows


# ---- the table -------------------------------------------------------------------------------------

def mean_std(xs: list[float]) -> tuple[float, float]:
    m = sum(xs) / len(xs)
    return m, (math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) if len(xs) > 1 else 0.0)


def table(rows: list[dict[str, Any]], args) -> tuple[str, list[dict[str, Any]]]:
    by = {r["label"]: r for r in rows}
    lines = ["| model + method | seeds | parameters | MMACs | peak SRAM (B) | int8 flash (B) | macro-F1 float | "
             "macro-F1 int8 | paper: parameters / MMACs / F1 |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    out = []
    for bb in args.backbones:
        for m in args.methods:
            cells = [by.get(f"{bb}_{m}_seed{s}") for s in args.seeds]
            ok = [c for c in cells if c is not None and "macro_f1" in c]
            name = SHORT[bb] + ("" if m == "original" else f" + {'SFTNAS' if m == 'sftnas' else m.replace('autoslim', 'AutoSlim').replace('pas', 'PaS')}")
            pp, pm, pf = PAPER[bb, m]
            paper = f"{pp / 1e3:.2f}k / {pm / 1e6:.3g} / {pf:.2f}"
            if not ok:
                fails = [c for c in cells if c is not None and "failed_stage" in c]
                why = f"failed: {fails[0]['failed_stage']}: {fails[0]['detail'][:80]}" if fails else "not run"
                lines.append(f"| {name} | 0 | {why} | | | | | | {paper} |")
                continue
            f1 = mean_std([100 * c["macro_f1"] for c in ok])
            i8 = [100 * c["int8_macro_f1"] for c in ok if "int8_macro_f1" in c]
            fig = {k: mean_std([float(c[k]) for c in ok]) for k in ("params", "macs", "peak_sram", "flash")}
            i8s = f"{mean_std(i8)[0]:.2f} ± {mean_std(i8)[1]:.2f}" if i8 else "-"
            lines.append(f"| {name} | {len(ok)} | {fig['params'][0] / 1e3:.2f}k ± {fig['params'][1] / 1e3:.2f}k | "
                         f"{fig['macs'][0] / 1e6:.3f} ± {fig['macs'][1] / 1e6:.3f} | {fig['peak_sram'][0]:,.0f} | "
                         f"{fig['flash'][0]:,.0f} | {f1[0]:.2f} ± {f1[1]:.2f} | {i8s} | {paper} |")
            out.append({"backbone": bb, "method": m, "seeds": len(ok), "macro_f1": f1, "int8_macro_f1": i8s,
                        **{k: v for k, v in fig.items()}, "paper": {"params": pp, "macs": pm, "macro_f1": pf},
                        "cells": [c["label"] for c in ok]})
    return "\n".join(lines), out


# ---- fronts ----------------------------------------------------------------------------------------

def hand_arch(filters: int, in_channels: int, seq_len: int, num_classes: int, tail: dict[str, Any]) -> dict:
    """A hand-written layout of the SFTNAS space: every sensor, k = 5 convs with ``filters`` filters at the
    stride-2 layers, identities at the stride-1 layers."""
    from harcore.nas.hw_loss import sftnas_strides

    layers = [{"op": "conv", "kernel": 5, "stride": 2, "filters": filters, "kept": list(range(filters))} if t == 2
              else {"op": "identity", "stride": 1} for t in sftnas_strides(seq_len)]
    return {"backbone": "tinyhar", "in_channels": in_channels, "seq_len": seq_len, "num_classes": num_classes,
            "channels": list(range(in_channels)), "layers": layers, "tail": dict(tail)}


def front_configs(args) -> list[Any]:
    from harcore.nas.pipeline import JobConfig

    out = Path(args.out).resolve()
    common = dict(dataset=None if args.smoke else "hapt", data_dir=None if args.smoke else args.hapt,
                  backbone="tinyhar", sram=None, progress=False, preset=args.preset, search_epochs=args.search_epochs,
                  finetune_epochs=args.finetune_epochs, num_threads=1)
    if args.smoke:
        common.update(int8="ptq")
    cfgs = []
    for macs in args.front_macs:
        for s in args.seeds:
            cfgs.append(JobConfig(**common, method="sftnas", macs=int(macs), seed=s, prune={"dcs_shared": True},
                                  out=str(out / f"sftnas_macs{int(macs)}_seed{s}")))
    for f in args.hand_filters:
        for s in args.seeds:
            cfgs.append(JobConfig(**common, method="fixed", arch=hand_arch(f, 9, 128, 6, {}), seed=s,
                                  out=str(out / f"hand_f{f}_seed{s}")))
    return cfgs


def fronts(rows: list[dict[str, Any]], args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(args.out)
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if "macro_f1" in r:
            groups.setdefault(r["label"].rsplit("_seed", 1)[0], []).append(r)
    pts = []
    for g, rs in sorted(groups.items()):
        f1, mm = mean_std([100 * r["macro_f1"] for r in rs]), mean_std([r["macs"] / 1e6 for r in rs])
        pts.append({"group": g, "kind": "searched" if g.startswith("sftnas") else "hand-written", "mmacs": mm,
                    "macro_f1": f1, "params": mean_std([float(r["params"]) for r in rs])[0], "seeds": len(rs)})
    fig, ax = plt.subplots(figsize=(6, 4))
    for kind, style in (("searched", "o-"), ("hand-written", "s--")):
        p = sorted([q for q in pts if q["kind"] == kind], key=lambda q: q["mmacs"][0])
        if p:
            ax.errorbar([q["mmacs"][0] for q in p], [q["macro_f1"][0] for q in p], xerr=[q["mmacs"][1] for q in p],
                        yerr=[q["macro_f1"][1] for q in p], fmt=style, capsize=3,
                        label="TinyHAR + SFTNAS (MAC targets)" if kind == "searched" else "hand-written layouts")
    ax.set_xlabel("MMACs (cost model)")
    ax.set_ylabel("test macro-F1 (%)")
    ax.set_title("searched front vs hand-written layouts, same recipe")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / "fronts.png", dpi=120)
    lines = ["| run | kind | seeds | MMACs | parameters | test macro-F1 |", "|---|---|---:|---:|---:|---:|"]
    for q in pts:
        lines.append(f"| {q['group']} | {q['kind']} | {q['seeds']} | {q['mmacs'][0]:.3f} ± {q['mmacs'][1]:.3f} | "
                     f"{q['params']:,.0f} | {q['macro_f1'][0]:.2f} ± {q['macro_f1'][1]:.2f} |")
    md = "\n".join(lines) + "\n\n" + SELECTION + "\n"
    (out / "fronts.md").write_text(md)
    (out / "fronts.json").write_text(json.dumps({"points": pts, "cells": rows}, indent=2, default=str))
    print(md)
    print(f"plot: {out / 'fronts.png'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=SELECTION)
    ap.add_argument("--hapt", default=str(SHARED / "hapt_v2.1_rawdata.tar.xz"))
    ap.add_argument("--out", default=str(REPO / "runs" / "table2"))
    ap.add_argument("--backbones", default=",".join(BACKBONES))
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--seeds", default="0,1,2", help="training seeds (original) / search seeds (searched rows)")
    ap.add_argument("--preset", choices=("paper", "quick"), default="paper")
    ap.add_argument("--search-epochs", type=int, default=None, help="default: the preset's")
    ap.add_argument("--finetune-epochs", type=int, default=None, help="default: the preset's")
    ap.add_argument("--budget", choices=("paper", "same"), default="paper",
                    help="targets: each row's paper figures, or SFTNAS's row's for every method (like for like)")
    ap.add_argument("--parallel", type=int, default=1, help="cells at once (Ray)")
    ap.add_argument("--address", default=None, help="an existing Ray cluster")
    ap.add_argument("--smoke", action="store_true",
                    help="built-in data, 8 filters, 1 search + 1 training epoch, PTQ: proves the script, not a result")
    ap.add_argument("--fronts", action="store_true", help="the fronts plot instead of the table")
    ap.add_argument("--front-macs", default="300000,500000,770000,1200000")
    ap.add_argument("--hand-filters", default="4,8,12,16,20")
    args = ap.parse_args()
    args.backbones = [b.strip() for b in args.backbones.split(",") if b.strip()]
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    args.seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.front_macs = [float(m) for m in args.front_macs.split(",") if m.strip()]
    args.hand_filters = [int(f) for f in args.hand_filters.split(",") if f.strip()]
    bad = [b for b in args.backbones if b not in BACKBONES] + [m for m in args.methods if m not in METHODS]
    if bad:
        ap.error(f"unknown backbone(s) / method(s) {bad}; backbones {', '.join(BACKBONES)}, methods {', '.join(METHODS)}")
    if args.smoke:
        args.preset = "quick"
        args.search_epochs = args.search_epochs or 1
        args.finetune_epochs = args.finetune_epochs or 1
        if args.fronts:
            args.front_macs = args.front_macs if "--front-macs" in sys.argv else [1_000_000.0]
            args.hand_filters = args.hand_filters if "--hand-filters" in sys.argv else [4, 8]

    import torch

    torch.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    cfgs = front_configs(args) if args.fronts else cell_configs(args)
    print(f"{len(cfgs)} cells in {out} ({sum('macro_f1' in (read_cell(Path(c.out)) or {}) for c in cfgs)} finished "
          "before); "
          f"preset {args.preset}" + (", smoke run (not a result)" if args.smoke else ""), flush=True)
    rows = run_cells(cfgs, args.parallel, args.address)
    if args.fronts:
        fronts(rows, args)
        return
    md, summary = table(rows, args)
    header = (f"Table II on HAPT-derived UCI-HAR-equivalent windows (uci9: 9 channels x 128 samples, 6 classes, "
              f"UCI-HAR's test subjects); preset {args.preset}, budget {args.budget}, seeds {args.seeds}"
              + (f" — SMOKE RUN on the built-in data ({args.search_epochs} search / {args.finetune_epochs} training epoch(s), 8 filters): not a result" if args.smoke else "")
              + f"; wall time {time.perf_counter() - t0:.0f} s (shared machine: under load).\n\n")
    text = header + md + "\n\n" + SELECTION + "\n"
    (out / "table2.md").write_text(text)
    (out / "table2.json").write_text(json.dumps({"args": vars(args), "rows": summary, "cells": rows}, indent=2,
                                                default=str))
    print(text)


if __name__ == "__main__":
    main()
