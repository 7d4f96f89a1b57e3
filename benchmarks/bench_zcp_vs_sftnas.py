"""``harcore search --strategy zcp`` against SFTNAS at equal wall time and equal budget (issue 16 goal).

    python benchmarks/bench_zcp_vs_sftnas.py --backbone tinyhar --macs 0.77M --sram 96KB \
        --epochs 60 --finetune-epochs 60 --out runs/bench_zcp_vs_sftnas_hapt
    python benchmarks/bench_zcp_vs_sftnas.py --tiny --out /tmp/zcp_vs_sftnas      # a smoke run, not a result

Both runs are the main job (``harcore.nas.run_job``) on the same data (HAPT uci9 by default, 9 channels x
128 samples), the same backbone and the same budget (``--macs/--params/--sram/--flash``). First SFTNAS runs
(``--epochs`` search epochs) and the wall time of its search stage is measured; then the zcp strategy gets
exactly that time for its search stage (``--time-budget``: sample ``--candidates`` architectures of the SFTNAS
space of the same backbone, drop those over the budget, rank by ``--proxy``, train the best-ranked for
``--zcp-epochs`` each while the time lasts, pick the best by validation macro-F1).

Both chosen networks are then trained the same way (``--train-on train``: the search's training split,
``--finetune-epochs``, the best validation epoch kept): the macro-F1 on the validation subjects is what the
comparison reads, and each final model is tested once, at the end (float and int8 test macro-F1 are those of
the job's ``evaluate`` / ``int8-eval`` stages). Both jobs run to int8 (PTQ by default, ``--int8``); the
firmware stages run as in any job. Writes ``OUT/comparison.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARCORE_SHARED") or REPO.parent / "shared" / "datasets")


def _size(text: str | None, what: str) -> int | None:
    from harcore.nas.cli import parse_size

    return None if text is None else parse_size(text, what)


def _row(res, label: str) -> dict:
    st = res.stages
    def data(name):
        return st[name].data if name in st and st[name].status == "ok" else {}
    ev, i8 = data("evaluate").get("metrics", {}), data("int8-eval").get("metrics", {})
    total = data("derive").get("total", {})
    return {"strategy": label, "search_seconds": st["search"].seconds if "search" in st else None,
            "search_detail": st["search"].detail if "search" in st else None,
            "arch": data("derive").get("arch"), "macs": total.get("macs"), "params": total.get("params"),
            "peak_sram": total.get("peak_sram"), "flash": total.get("flash"),
            "val_macro_f1": data("finetune").get("best_val_macro_f1"),
            "test_macro_f1": ev.get("macro_f1"), "int8_test_macro_f1": i8.get("macro_f1"),
            "fits": st["fit"].status == "ok" if "fit" in st else None,
            "stages": {k: v.status for k, v in st.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="hapt")
    ap.add_argument("--data-dir", default=str(SHARED / "hapt_v2.1_rawdata.tar.xz"))
    ap.add_argument("--backbone", default="tinyhar")
    ap.add_argument("--filters", type=int, default=None)
    ap.add_argument("--sram", default="96KB")
    ap.add_argument("--flash", default=None)
    ap.add_argument("--macs", default="0.77M")
    ap.add_argument("--params", default=None)
    ap.add_argument("--epochs", type=int, default=None, help="SFTNAS search epochs (the preset's by default)")
    ap.add_argument("--finetune-epochs", type=int, default=None)
    ap.add_argument("--preset", default=None)
    ap.add_argument("--candidates", type=int, default=200)
    ap.add_argument("--top-k", type=int, default=50, help="an upper bound: the time budget decides")
    ap.add_argument("--zcp-epochs", type=int, default=None, help="training epochs per zcp candidate")
    ap.add_argument("--proxy", default="ensemble")
    ap.add_argument("--int8", default="ptq")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(REPO / "runs" / "bench_zcp_vs_sftnas"))
    ap.add_argument("--tiny", action="store_true", help="built-in data, DeepConvLSTM with 4 filters, 1 epoch "
                    "everywhere: proves the comparison runs; its figures are not results")
    a = ap.parse_args()
    import torch

    from harcore.nas.pipeline import JobConfig, run_job

    torch.set_num_threads(1)
    common = dict(dataset=a.dataset, data_dir=a.data_dir, backbone=a.backbone, filters=a.filters,
                  sram=_size(a.sram, "--sram") if a.sram and a.sram.lower() != "none" else None,
                  flash=_size(a.flash, "--flash"), macs=_size(a.macs, "--macs"), params=_size(a.params, "--params"),
                  finetune_epochs=a.finetune_epochs, preset=a.preset, seed=a.seed, int8=a.int8, train_on="train",
                  progress=False)
    sft_epochs, zcp_epochs, cands = a.epochs, a.zcp_epochs, a.candidates
    if a.tiny:
        common.update(dataset=None, data_dir=None, backbone="deepconvlstm", filters=4, finetune_epochs=1,
                      macs=2_000_000, preset=None)
        sft_epochs, zcp_epochs, cands = 1, 1, 6
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    load0 = os.getloadavg()
    t0 = time.time()
    sft = run_job(JobConfig(**common, search_epochs=sft_epochs, out=str(out / "sftnas")), overwrite=True)
    budget_s = sft.stages["search"].seconds
    z = run_job(JobConfig(**common, strategy="zcp", space="sftnas", proxy=a.proxy, candidates=cands,
                          top_k=a.top_k, search_epochs=zcp_epochs, time_budget=budget_s, out=str(out / "zcp")),
                overwrite=True)
    rows = [_row(sft, "sftnas"), _row(z, f"zcp ({a.proxy})")]
    res = {"tiny": a.tiny, "settings": {k: v for k, v in common.items()}, "sftnas_epochs": sft_epochs,
           "zcp_epochs_per_candidate": zcp_epochs, "candidates": cands, "time_budget_seconds": budget_s,
           "load_before": load0, "load_after": os.getloadavg(), "wall_seconds": time.time() - t0, "runs": rows}
    (out / "comparison.json").write_text(json.dumps(res, indent=2, default=str))
    print(f"\nequal wall time for the search stage: {budget_s:.0f} s; budget MACs {common['macs']}, SRAM "
          f"{common['sram']}, params {common['params']}, flash {common['flash']}"
          + (" (--tiny: a smoke run, not a result)" if a.tiny else ""))
    print("| strategy | search s | MACs | params | peak SRAM | val macro-F1 | test macro-F1 | int8 test macro-F1 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    f = lambda v, p=4: "-" if v is None else (f"{v:.{p}f}" if isinstance(v, float) else f"{v:,}")
    for r in rows:
        print(f"| {r['strategy']} | {r['search_seconds']:.0f} | {f(r['macs'])} | {f(r['params'])} | {f(r['peak_sram'])} "
              f"| {f(r['val_macro_f1'])} | {f(r['test_macro_f1'])} | {f(r['int8_test_macro_f1'])} |")


if __name__ == "__main__":
    main()
