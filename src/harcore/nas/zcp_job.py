"""The main job with the proxy-guided strategy (``harcore search --strategy zcp``; issue 16, item 6).

Instead of the SFTNAS search, the ``search`` stage runs :func:`harcore.zcp.zcp_search`: it samples
``--candidates`` architectures of ``--space`` — ``sftnas``, the derived networks of the chosen backbone
(kernels or identities, filters, sensors: :class:`harcore.nas.sampling.DerivedSpace`), or ``table1``, the
paper's Table I CNNs and LSTMs — drops those over the job's budget (the same limits SFTNAS uses:
``--macs/--params/--sram/--flash/--board``) with the C++ batch cost API, ranks the rest by ``--proxy`` (one
proxy or the ensemble) on one seeded batch of training windows, trains the ``--top-k`` best-ranked on the
training split and picks the best by validation macro-F1. The chosen network then goes through the same
stages as an SFTNAS run: derive (fresh weights) -> fine-tune -> evaluate -> fit -> int8 -> deploy -> validate
-> report, in one run folder.

Resuming: the search stage stores its ranking (``zcp/ranking.json``) and each trained candidate
(``zcp/trained/NNNNN.json``) as they finish; ``--resume`` reuses them (never rescoring or retraining them),
the fine-tuning continues from its checkpoint as in an SFTNAS run, and the later (cheap) stages run again.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from harcore.errors import BudgetError

from .pipeline import (FINETUNE_DIR, JobConfig, StageOutput, _budget, _deploy, _evaluate, _fit, _int8, _int8_eval,
                       _report, _validate, _data, final_splits)

STRATEGIES = ("sftnas", "zcp")
SPACES = ("sftnas", "table1")
ZCP_DIR = "zcp"
#: What ``--resume`` needs in the run folder (the ranking is written once every candidate is scored).
CHECKPOINTS = (f"{ZCP_DIR}/ranking.json",)
#: Rows of the ranking shown in job.json and the report.
SHOWN = 20


def zcp_options(cfg: JobConfig) -> dict[str, Any] | None:
    """The strategy's settings for ``cfg`` (``None`` for ``strategy="sftnas"``); ``ValueError`` naming the field
    for a bad strategy, space, proxy, candidate count or top k.

    Presets: ``quick`` 24 candidates, top 2 trained 12 epochs each at Adam 2e-3, batch 64 (the quick SFTNAS
    preset's learning rate and batch); ``paper`` 200 candidates, top 5, the zcp paper's protocol (Adam 1e-4,
    batch 256, 50 epochs, lr x 0.8 every 10 epochs)."""
    from harcore.zcp import PROXIES

    if cfg.strategy not in STRATEGIES:
        raise ValueError(f"JobConfig.strategy: must be one of {', '.join(STRATEGIES)}, got {cfg.strategy!r}")
    if cfg.strategy != "zcp":
        return None
    if cfg.space not in SPACES:
        raise ValueError(f"JobConfig.space: must be one of {', '.join(SPACES)}, got {cfg.space!r}")
    if cfg.proxy != "ensemble" and cfg.proxy not in PROXIES:
        raise ValueError(f"JobConfig.proxy: unknown proxy {cfg.proxy!r}; choose ensemble or one of "
                         f"{', '.join(PROXIES)}")
    quick = cfg.resolved_preset() == "quick"
    out = {"space": cfg.space, "proxy": cfg.proxy,
           "candidates": cfg.candidates if cfg.candidates is not None else (24 if quick else 200),
           "top_k": cfg.top_k if cfg.top_k is not None else (2 if quick else 5),
           "epochs": cfg.search_epochs if cfg.search_epochs is not None else (12 if quick else 50),
           "lr": 2e-3 if quick else 1e-4, "batch_size": 64 if quick else 256, "proxy_batch": 256,
           "time_budget": cfg.time_budget}
    if cfg.time_budget is not None and not cfg.time_budget > 0:
        raise ValueError(f"JobConfig.time_budget: must be > 0 seconds (got {cfg.time_budget!r})")
    for key in ("candidates", "top_k", "epochs"):
        v = out[key]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"JobConfig.{'search_epochs' if key == 'epochs' else key}: must be an integer >= 1 "
                             f"(got {v!r})")
    return out


def _space(ctx: Any):
    cfg, ds, scfg = ctx.cfg, ctx.ds, ctx.search_config
    c, t, k = ds.train.x.shape[1], ds.train.x.shape[2], len(ds.classes)
    if cfg.space == "table1":
        from harcore.zcp.search import TableISpace

        return TableISpace(c, t, k)
    from .sampling import DerivedSpace

    return DerivedSpace(cfg.backbone, c, t, k, filters=cfg.filters, tail=scfg.tail, tie_tail=scfg.tie_tail)


def _zcp_budget(ctx: Any) -> StageOutput:
    """The SFTNAS space: the same feasibility check as an SFTNAS run (its smallest architecture). Table I: the
    smallest CNN (one block of 8 filters, k 2) and LSTM (2 x 8) of the space, costed by the cost model."""
    if ctx.cfg.space != "table1":
        return _budget(ctx)
    from harcore import zcp

    ds, lim = ctx.ds, ctx.cfg.limits()
    small = [zcp.Arch("cnn", (8,), (0.1,), (2,)), zcp.Arch("lstm", (8, 8), (0.1, 0.0))]
    costs = zcp.arch_costs(small, ds.train.x.shape[1], ds.train.x.shape[2], len(ds.classes)).min(0)
    floor = dict(zip(("macs", "params", "peak_sram", "flash"), map(int, costs)))
    for opt, key, unit in (("--sram", "peak_sram", "B"), ("--flash", "flash", "B"), ("--macs", "macs", " MACs"),
                           ("--params", "params", " parameters")):
        limit = lim["sram" if key == "peak_sram" else key]
        if limit is not None and limit < floor[key]:
            raise BudgetError(f"impossible budget: {opt} {limit:,}{unit} is below {floor[key]:,}{unit}, the "
                              f"{key.replace('_', ' ')} of the smallest Table I network; nothing in the space fits")
    return (f"feasible: the smallest Table I network needs {floor['peak_sram']:,} B SRAM, {floor['flash']:,} B "
            f"flash, {floor['macs']:,} MACs, {floor['params']:,} parameters", {"smallest": floor})


def _zcp_search(ctx: Any) -> StageOutput:
    from harcore.zcp.search import Budget, zcp_search
    from harcore.zcp.study import StudyData

    cfg, ds, o = ctx.cfg, ctx.ds, ctx.zcp
    lim = cfg.limits()
    budget = Budget(macs=lim["macs"], params=lim["params"], peak_sram=lim["sram"], flash=lim["flash"])
    c, t = ds.train.x.shape[1], ds.train.x.shape[2]
    # no test windows: the candidates are chosen on validation subjects; only the final model is tested
    data = StudyData(ds.name, ds.train.x, ds.train.y, ds.val.x, ds.val.y, np.zeros((0, c, t), np.float32),
                     np.zeros((0,), np.int64), len(ds.classes), list(ds.channels), getattr(ds, "sample_rate", None))
    con = ctx.console
    t0 = time.perf_counter()

    def trained(rec: dict[str, Any]) -> None:
        con.print(f"  candidate {rec['index']} ({rec['key']}): val macro-F1 {rec['val_f1']:.4f}"
                  + (" (stored, not retrained)" if rec.get("reused") else f", {rec['train_seconds']:.0f} s"))

    r = zcp_search(data, n_candidates=o["candidates"], budget=budget, proxy=o["proxy"], top_k=o["top_k"],
                   epochs=o["epochs"], seed=cfg.seed, proxy_batch=o["proxy_batch"], lr=o["lr"],
                   batch_size=o["batch_size"], space=_space(ctx), store=ctx.dir / ZCP_DIR,
                   settings={"backbone": cfg.backbone, "filters": cfg.filters, "tail": dict(ctx.search_config.tail),
                             "tie_tail": ctx.search_config.tie_tail, "dataset": ds.name,
                             "channels": c, "seq_len": t, "classes": len(ds.classes)},
                   on_trained=trained, time_budget=o["time_budget"])
    ctx.search = r
    seconds = time.perf_counter() - t0
    rows = [{"rank": i + 1, "index": x["index"], "key": x["key"], "rank_score": x["rank_score"], **x["costs"]}
            for i, x in enumerate(r.ranked[:SHOWN])]
    done = [{"index": x["index"], "key": x["key"], "val_f1": x["val_f1"], "best_epoch": x["best_epoch"],
             "train_seconds": x["train_seconds"], "score_seconds": x["score_seconds"], "reused": x["reused"]}
            for x in r.trained]
    b = r.best
    return (f"zcp ({r.meta['space']} space): {r.n_sampled} sampled, {r.n_within_budget} within budget, ranked by "
            f"{r.proxy}; top {len(r.trained)} trained {o['epochs']} epochs each"
            + (f" (time budget {o['time_budget']:.0f} s)" if o["time_budget"] is not None else "")
            + "; best by validation: candidate "
            f"{b['index']} (val macro-F1 {b['val_f1']:.4f})" + (" (resumed)" if r.meta["resumed"] else ""),
            {"strategy": "zcp", "space": r.meta["space"], "proxy": r.proxy, "n_sampled": r.n_sampled,
             "n_within_budget": r.n_within_budget, "top_k": o["top_k"], "epochs": o["epochs"],
             "ranking": rows, "trained": done, "best": {"index": b["index"], "key": b["key"], "val_f1": b["val_f1"],
                                                        "arch": b["arch"]},
             "resumed": r.meta["resumed"], "seconds": seconds, "time_budget": o["time_budget"]})


def _zcp_derive(ctx: Any) -> StageOutput:
    from harcore.cost import profile
    from harcore.runstore import atomic_write_text

    cfg, best, ds = ctx.cfg, ctx.search.best, ctx.ds
    torch.manual_seed(cfg.seed)
    if cfg.space == "table1":
        from harcore import zcp

        arch = zcp.Arch.from_dict(best["arch"])
        model = zcp.build(arch, ds.train.x.shape[1], ds.train.x.shape[2], len(ds.classes))
        desc = arch.key
    else:
        from .derive import Arch, build

        arch = ctx.result.arch = Arch.from_dict(best["arch"])
        model = build(arch)
        desc = arch.summary()
    ctx.model = model
    atomic_write_text(ctx.dir / "arch.json", json.dumps(dict(best["arch"], space=cfg.space), indent=2))
    p = ctx.profile = profile(model, tuple(ds.train.x.shape[1:]))
    ctx.run.write_text("profile.json", p.to_json(indent=2))
    return (f"{desc} (zcp candidate {best['index']}), scratch weights — {p.total.macs:,} MACs, {p.total.params:,} "
            f"params, {p.total.peak_sram:,} B peak SRAM, {p.total.flash:,} B flash",
            {"arch": best["arch"], "space": cfg.space, "total": dataclasses.asdict(p.total)})


def save_model(model: torch.nn.Module, path: Path, space: str, arch: dict[str, Any], sizes: tuple[int, int, int]) -> None:
    """``model.pt``: a derived SFTNAS network as ``harcore.models.sftnas.save`` writes it; a Table I network as
    ``{"format": "harcore.zcp/1", "arch", "sizes", "state_dict"}`` (rebuilt with ``harcore.zcp.build``)."""
    if space == "table1":
        torch.save({"format": "harcore.zcp/1", "arch": arch, "sizes": list(sizes),
                    "state_dict": model.state_dict()}, path)
    else:
        from harcore.models import sftnas as zoo

        zoo.save(model, path)


def _zcp_finetune(ctx: Any) -> StageOutput:
    from harcore.train import fit

    cfg, ds = ctx.cfg, ctx.ds
    tcfg = cfg.train_config(ctx.dir / FINETUNE_DIR)
    train, val = ctx.final = final_splits(ds, cfg.resolved_train_on())
    tr = fit(ctx.model, train, val, tcfg, resume=ctx.resume)
    save_model(ctx.model, ctx.dir / "model.pt", cfg.space, ctx.search.best["arch"],
               (ds.train.x.shape[1], ds.train.x.shape[2], len(ds.classes)))
    how = (f"best val macro-F1 {tr.best_val_macro_f1:.4f} (epoch {tr.best_epoch})" if val is not None else
           f"on all {len(train.y):,} training + validation windows, the last epoch kept")
    return (f"{tr.epochs_run} epochs, {how}; saved {ctx.dir / 'model.pt'}",
            {"history": tr.history, "best_val_macro_f1": tr.best_val_macro_f1, "train_on": cfg.train_on})


#: The main job's stages with the zcp strategy: the SFTNAS job's, with its own budget, search, derive and
#: fine-tune (which saves a Table I network too).
PIPELINE: tuple[tuple[str, Callable[[Any], StageOutput]], ...] = (
    ("data", _data), ("budget", _zcp_budget), ("search", _zcp_search), ("derive", _zcp_derive),
    ("finetune", _zcp_finetune), ("evaluate", _evaluate), ("fit", _fit), ("int8", _int8), ("int8-eval", _int8_eval),
    ("deploy", _deploy), ("validate", _validate), ("report", _report))


def check_resumable(cfg: JobConfig, run: Any) -> None:
    """Before a resume writes anything: the fine-tuning checkpoint (if any) reads and fits ``cfg``. The stored
    ranking is checked against the settings by the search stage itself, before the folder is written."""
    from harcore.train.trainer import check_resumable as train_check

    train_check(cfg.train_config(run.path / FINETUNE_DIR))
