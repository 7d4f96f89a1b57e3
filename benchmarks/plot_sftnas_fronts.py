"""Searched networks against hand-written layouts: test macro-F1 vs MACs (the fronts plot of issue 15).

Reads results that were already measured, trains nothing:
  --search LABEL=DIR   a bench_sftnas.py output folder: every finished run under it (*/job.json), one
                       point per search (the job's final training; test subjects evaluated once); repeatable
  --hand FILE          a bench_sftnas_retrain.py output (each layout over its training seeds); repeatable

    python benchmarks/plot_sftnas_fronts.py \\
        --search "goal, default=runs/i15_goal_percand" --search "goal, --lr-sensors 5e-4=runs/i15_goal_lrs" \\
        --search "micro, --lr-sensors 5e-4=runs/i15_micro_s5e-4" \\
        --hand runs/i15_retrain_hand.json --hand runs/i15_retrain_hand_micro.json --out runs/i15_fronts.png

Prints a Markdown table of every point and, for each hand-written layout, the searched networks that
dominate it (no more MACs and no more parameters, macro-F1 at least the layout's mean).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path


def searched(spec: str) -> tuple[str, list[dict]]:
    """Every finished main-job run under DIR (``*/job.json``): its derived network and float test figure."""
    label, sep, folder = spec.rpartition("=")
    if not sep or not label:
        raise SystemExit(f"--search {spec!r}: expected LABEL=DIR")
    runs = []
    for job in sorted(Path(folder).glob("*/job.json")):
        try:
            d = json.loads(job.read_text())
            if not d.get("finished"):
                continue
            st = d["stages"]
            total = st["derive"]["data"]["total"]
            runs.append({"seed": d["config"]["seed"], "arch": st["derive"]["detail"].split(" — ")[0].rsplit(",", 1)[0].split(": ", 1)[-1].replace(" | ", " · "),
                         "macs": total["macs"], "params": total["params"],
                         "macro_f1": st["evaluate"]["data"]["metrics"]["macro_f1"]})
        except (OSError, ValueError, KeyError) as e:
            raise SystemExit(f"{job}: not a finished main-job run ({type(e).__name__}: {e})") from e
    if not runs:
        raise SystemExit(f"--search {spec!r}: no finished run (*/job.json) under {folder}")
    return label, runs


def hand(path: str) -> dict[str, dict]:
    try:
        rows = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise SystemExit(f"{path}: not a bench_sftnas_retrain.py result ({e})") from e
    out: dict[str, dict] = {}
    for r in rows:
        d = out.setdefault(r["arch"], {"f1": [], "macs": r["macs"], "params": r["params"]})
        d["f1"].append(100 * r["macro_f1"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--search", action="append", default=[], metavar="LABEL=DIR")
    ap.add_argument("--hand", action="append", default=[], metavar="FILE")
    ap.add_argument("--out", default="runs/sftnas_fronts.png")
    args = ap.parse_args()
    if not args.search or not args.hand:
        ap.error("give at least one --search and one --hand")
    searches = [searched(s) for s in args.search]
    hands: dict[str, dict] = {}
    for h in args.hand:
        hands.update(hand(h))

    print("| kind | network | MACs | params | test macro-F1 |")
    print("|---|---|---:|---:|---|")
    for label, runs in searches:
        for r in runs:
            print(f"| searched ({label}) | seed {r['seed']}: `{r['arch']}` | {r['macs']:,} | {r['params']:,} | "
                  f"{100 * r['macro_f1']:.2f} |")
    for name, d in hands.items():
        f1 = d["f1"]
        sd = statistics.stdev(f1) if len(f1) > 1 else 0.0
        print(f"| hand-written | {name} | {d['macs']:,} | {d['params']:,} | {statistics.fmean(f1):.2f} ± {sd:.2f} "
              f"({len(f1)} seeds) |")
    print()
    for name, d in hands.items():
        m = statistics.fmean(d["f1"])
        dom = [f"{label} seed {r['seed']} ({100 * r['macro_f1']:.2f})" for label, runs in searches for r in runs
               if r["macs"] <= d["macs"] and r["params"] <= d["params"] and 100 * r["macro_f1"] >= m]
        print(f"- {name} ({m:.2f} at {d['macs']:,} MACs): dominated by {', '.join(dom) if dom else 'no searched network'}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    markers = "osD^v<>"
    for i, (label, runs) in enumerate(searches):
        ax.scatter([r["macs"] for r in runs], [100 * r["macro_f1"] for r in runs], marker=markers[i % len(markers)],
                   label=f"searched: {label}", alpha=0.8)
    for j, (name, d) in enumerate(hands.items()):
        f1 = d["f1"]
        sd = statistics.stdev(f1) if len(f1) > 1 else 0.0
        ax.errorbar([d["macs"]], [statistics.fmean(f1)], yerr=[sd], fmt="k*", markersize=11, capsize=4)
        ax.annotate(name, (d["macs"], statistics.fmean(f1)), textcoords="offset points", xytext=(6, 6 if j % 2 == 0 else -14), fontsize=8)
    ax.plot([], [], "k*", label="hand-written (mean ± std over training seeds)")
    ax.set_xscale("log")
    ax.set_xlabel("MACs per window")
    ax.set_ylabel("test macro-F1 (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    ax.set_title("TinyHAR space on HAPT uci9: searched networks vs hand-written layouts")
    fig.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=120)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
