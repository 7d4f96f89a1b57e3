"""Several SFTNAS searches, one network kept by its validation figure (``harcore search --searches N``).

One search is one draw: on HAPT uci9 three searches of the same job (seeds 0-2) derived networks that, trained by
the job's recipe, scored 95.95, 91.65 and 91.08 test macro-F1, and the supernet's own validation figure did not
rank them (benchmarks/RESULTS.md, issue 15). DARTS (Liu et al., 2019, Sec. 3.2) meets this by running the search
several times and keeping the cell with the best validation figure after a short training from scratch; this is
that protocol in the main job:

1. ``N`` searches with the job's settings and search seeds ``seed * N + i`` (i = 0 .. N-1: ``--seed 0, 1, 2`` with
   the same N draw disjoint searches, and N = 1 is the plain job), each in ``searches/seed<S>/`` with its own
   checkpoint, ``arch.json`` and history;
2. each derived network trained from fresh weights (training seed: the job's) on the **training subjects only**
   for ``select_epochs`` (default: the fine-tuning's epochs) with the fine-tuning's recipe, the best validation
   epoch kept, its validation macro-F1 written to ``searches/seed<S>/select.json``;
3. the network with the highest validation macro-F1 among those within the job's limits (all of them when none
   is) goes on to the usual derive -> fine-tune -> ... stages; ties keep the lower search seed.

Test subjects are never read here. ``--resume`` resumes each unfinished search from its checkpoint and reuses a
``select.json`` whose key (architecture, epochs, recipe, training seed) matches, so nothing finished is redone.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import torch

from harcore import runstore
from harcore.errors import StageError

from .derive import Arch, build
from .search import CHECKPOINT_NAME, SearchConfig, search

SEARCHES_DIR = "searches"
SELECT_FILE = "select.json"


def search_seeds(seed: int, searches: int) -> list[int]:
    """The search seeds of a job with ``seed`` and ``searches`` searches (disjoint across job seeds)."""
    return [seed * searches + i for i in range(searches)]


def search_dir(run: Path, seed: int) -> Path:
    return Path(run) / SEARCHES_DIR / f"seed{seed}"


def checkpoints(seed: int, searches: int) -> tuple[str, ...]:
    """The run-folder paths a resume looks for (any one of them is something to resume)."""
    return tuple(f"{SEARCHES_DIR}/seed{s}/{CHECKPOINT_NAME}" for s in search_seeds(seed, searches))


def _select_key(arch: Arch, tcfg: Any) -> dict[str, Any]:
    return {"arch": arch.to_dict(), "epochs": tcfg.epochs, "lr": tcfg.lr, "batch_size": tcfg.batch_size,
            "optimizer": tcfg.optimizer, "schedule": tcfg.schedule, "weight_decay": tcfg.weight_decay,
            "seed": tcfg.seed}


def validation_score(arch: Arch, train: Any, val: Any, tcfg: Any, folder: Path,
                     limits: dict[str, int | None]) -> dict[str, Any]:
    """Train ``arch`` from fresh weights on ``train`` by ``tcfg`` (best validation epoch kept) and return its record:
    validation macro-F1, cost figures, whether it fits ``limits``. Stored in ``folder/select.json`` and reused
    when its key matches."""
    from harcore.cost import profile
    from harcore.train import fit

    key = _select_key(arch, tcfg)
    path = folder / SELECT_FILE
    if path.is_file():
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError):
            rec = None  # a damaged record is retrained, never trusted
        if isinstance(rec, dict) and rec.get("key") == key:
            return dict(rec, reused=True)
    torch.manual_seed(tcfg.seed)
    model = build(arch)
    t0 = time.perf_counter()
    tr = fit(model, train, val, tcfg)
    p = profile(model, (arch.in_channels, arch.seq_len)).total
    over = {k: v for k, v in (("sram", p.peak_sram), ("flash", p.flash), ("macs", p.macs), ("params", p.params))
            if limits.get(k) is not None and v > limits[k]}
    rec = {"key": key, "val_macro_f1": tr.best_val_macro_f1, "best_epoch": tr.best_epoch,
           "epochs_run": tr.epochs_run, "seconds": time.perf_counter() - t0, "macs": p.macs, "params": p.params,
           "peak_sram": p.peak_sram, "flash": p.flash, "fits": not over, "over": over}
    runstore.atomic_write_text(path, json.dumps(rec, indent=2))
    return dict(rec, reused=False)


def choose(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The kept search: the highest validation macro-F1 among the rows that fit (all rows when none does); the
    lower search seed on a tie."""
    pool = [r for r in rows if r["fits"]] or rows
    return max(pool, key=lambda r: (r["val_macro_f1"], -r["seed"]))


def run_searches(ds: Any, scfg: SearchConfig, tcfg: Any, *, run: Path, job_seed: int, searches: int,
                 limits: dict[str, int | None], resume: bool, on_epoch_end: Any = None, console: Any = None):
    """Steps 1-3 of the module's protocol. Returns the kept :class:`~harcore.nas.search.SearchResult` and the
    per-search rows (seed, architecture, search seconds, validation record) for ``job.json`` and the report."""
    results, rows = {}, []
    for s in search_seeds(job_seed, searches):
        folder = search_dir(run, s)
        folder.mkdir(parents=True, exist_ok=True)
        sc = dataclasses.replace(scfg, seed=s)
        if console is not None:
            console.print(f"  search {len(rows) + 1}/{searches} (seed {s}) -> {folder}")
        r = search(ds.train, ds.val, sc, run_dir=folder, resume=resume and (folder / CHECKPOINT_NAME).is_file(),
                   on_epoch_end=on_epoch_end, console=console, num_classes=ds.num_classes)
        if r.epochs_run < sc.epochs:
            raise StageError(f"search seed {s} stopped after epoch {r.epochs_run} of {sc.epochs} (resume with "
                             "--resume)")
        rec = validation_score(r.arch, ds.train, ds.val, tcfg, folder, limits)
        results[s] = r
        rows.append({"seed": s, "arch": r.arch.summary(), "arch_epoch": r.arch_epoch, "search_seconds": r.seconds,
                     **{k: rec[k] for k in ("val_macro_f1", "best_epoch", "seconds", "macs", "params", "peak_sram",
                                            "flash", "fits", "reused")}})
        if console is not None:
            console.print(f"  search seed {s}: {r.arch.summary()}; trained {tcfg.epochs} epochs on the training "
                          f"subjects: val macro-F1 {rec['val_macro_f1']:.4f}"
                          + (" (stored, not retrained)" if rec["reused"] else f" ({rec['seconds']:.0f} s)")
                          + ("" if rec["fits"] else f"; over the budget: {rec['over']}"))
    best = choose(rows)
    return results[best["seed"]], rows, best["seed"]
