"""Markdown + HTML reports of a job and of a sweep, with matplotlib plots (PNG beside the report).

One list of blocks (headings, paragraphs, tables, images) is rendered to both formats, so they always agree.
"""

from __future__ import annotations

import html
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np


def _mpl():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


class Doc:
    def __init__(self, title: str):
        self.blocks: list[tuple[str, Any]] = [("h1", title)]

    def h(self, text: str) -> None:
        self.blocks.append(("h2", text))

    def p(self, text: str) -> None:
        self.blocks.append(("p", text))

    def table(self, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.blocks.append(("table", (list(header), [[str(c) for c in r] for r in rows])))

    def img(self, path: str, alt: str) -> None:
        self.blocks.append(("img", (path, alt)))

    def pre(self, text: str) -> None:
        self.blocks.append(("pre", text))

    def markdown(self) -> str:
        out = []
        for kind, v in self.blocks:
            if kind == "h1":
                out.append(f"# {v}\n")
            elif kind == "h2":
                out.append(f"## {v}\n")
            elif kind == "p":
                out.append(f"{v}\n")
            elif kind == "pre":
                out.append(f"```\n{v}\n```\n")
            elif kind == "img":
                out.append(f"![{v[1]}]({v[0]})\n")
            else:
                head, rows = v
                out.append("| " + " | ".join(head) + " |\n|" + "---|" * len(head) + "\n"
                           + "".join("| " + " | ".join(c.replace("|", "\\|") for c in r) + " |\n" for r in rows))
        return "\n".join(out)

    def html(self) -> str:
        e = html.escape
        out = ["<!doctype html><html><head><meta charset='utf-8'><title>" + e(self.blocks[0][1]) + "</title>",
               "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
               "td,th{border:1px solid #bbb;padding:2px 6px;text-align:right}th{background:#eee}"
               ".failed{color:#b00;font-weight:bold}.ok{color:#070}img{max-width:100%}</style></head><body>"]
        for kind, v in self.blocks:
            if kind in ("h1", "h2"):
                out.append(f"<{kind}>{e(v)}</{kind}>")
            elif kind == "p":
                out.append(f"<p>{e(v)}</p>")
            elif kind == "pre":
                out.append(f"<pre>{e(v)}</pre>")
            elif kind == "img":
                out.append(f"<p><img src='{e(v[0])}' alt='{e(v[1])}'></p>")
            else:
                head, rows = v
                cells = "".join(f"<th>{e(h)}</th>" for h in head)
                body = "".join("<tr>" + "".join(
                    f"<td class='{'failed' if c == 'failed' else 'ok' if c == 'ok' else ''}'>{e(c)}</td>" for c in r)
                    + "</tr>" for r in rows)
                out.append(f"<table><tr>{cells}</tr>{body}</table>")
        out.append("</body></html>")
        return "\n".join(out)

    def write(self, folder: Path, stem: str = "report") -> tuple[Path, Path]:
        md, ht = folder / f"{stem}.md", folder / f"{stem}.html"
        md.write_text(self.markdown())
        ht.write_text(self.html())
        return md, ht


def plot_confusion(conf: np.ndarray, names: Sequence[str], title: str, path: Path) -> None:
    plt = _mpl()
    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    ax.imshow(conf, cmap="Blues")
    for i in range(conf.shape[0]):
        for j in range(conf.shape[1]):
            ax.text(j, i, int(conf[i, j]), ha="center", va="center", fontsize=8,
                    color="white" if conf[i, j] > conf.max() / 2 else "black")
    ax.set_xticks(range(len(names)), [n[:10] for n in names], rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), [n[:10] for n in names], fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_search(history: list[dict], path: Path) -> None:
    plt = _mpl()
    ep = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    ax.plot(ep, [h["val_macro_f1"] for h in history], "o-", label="val macro-F1 (argmax arch)")
    ax.set_xlabel("search epoch")
    ax.set_ylabel("macro-F1")
    ax2 = ax.twinx()
    ax2.plot(ep, [h["macs"] / 1e6 for h in history], "s--", color="tab:red", label="MMACs")
    ax2.plot(ep, [h["peak_sram"] / 1e3 for h in history], "^:", color="tab:green", label="peak SRAM (kB)")
    ax2.set_ylabel("MMACs / kB")
    fig.legend(loc="upper center", ncol=3, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_pruning(history: list[dict], path: Path, targets: dict[str, Any] | None = None) -> bool:
    """Filters kept per searchable layer (and sensors) against the search epoch, beside the budget figures
    against their targets. ``False`` (nothing drawn) for a history without the per-layer counts."""
    hist = [h for h in history if "filters_kept" in h]
    if not hist:
        return False
    plt = _mpl()
    ep = [h["epoch"] for h in hist]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    n_layers = len(hist[0]["filters_kept"])
    for i in range(n_layers):
        ys = [h["filters_kept"][i] if h["filters_kept"][i] is not None else 0 for h in hist]
        ax.plot(ep, ys, "o-", ms=3, label=f"layer {i + 1}")
    ax.plot(ep, [h["sensors"] for h in hist], "k:", label="sensors")
    ax.axhline(hist[0].get("max_filters", 0), color="gray", lw=0.8, ls="--")
    ax.set_xlabel("search epoch")
    ax.set_ylabel("kept (0: identity)")
    ax.set_title("filters kept per layer")
    ax.legend(fontsize=7, ncol=2)
    drawn = False
    for key, color in (("macs", "tab:red"), ("params", "tab:blue"), ("flash", "tab:purple"), ("peak_sram", "tab:green")):
        t = (targets or {}).get(key)
        if t:
            ax2.plot(ep, [h[key] / t for h in hist], "s-", ms=3, color=color, label=f"{key} / target ({t:,})")
            drawn = True
    if drawn:
        ax2.axhline(1.0, color="gray", lw=0.8, ls="--")
        ax2.set_ylabel("figure / target")
        ax2.legend(fontsize=7)
    else:
        ax2.plot(ep, [h["params"] for h in hist], "s-", ms=3, label="parameters")
        ax2.set_ylabel("parameters (no target)")
    ax2.set_xlabel("search epoch")
    ax2.set_title("derived network against the budget")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def pruning_rows(history: list[dict]) -> list[list[str]]:
    """Per epoch: sensors kept, then ``kept/max`` filters (or ``id``) per searchable layer."""
    rows = []
    for h in history:
        if "filters_kept" not in h:
            continue
        mx = h.get("max_filters", "?")
        rows.append([h["epoch"], f"{h['sensors']} {h.get('sensors_kept', '')}"]
                    + ["id" if f is None else f"{f}/{mx}" for f in h["filters_kept"]])
    return rows


def pareto_mask(points: np.ndarray) -> np.ndarray:
    """Non-dominated rows of ``points`` (columns: maximise first, minimise the rest)."""
    n = len(points)
    keep = np.ones(n, bool)
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            better_eq = points[j, 0] >= points[i, 0] and np.all(points[j, 1:] <= points[i, 1:])
            strictly = points[j, 0] > points[i, 0] or np.any(points[j, 1:] < points[i, 1:])
            if better_eq and strictly:
                keep[i] = False
                break
    return keep


def plot_pareto(rows: list[dict], path: Path) -> None:
    """macro-F1 vs MACs (marker size / colour: peak SRAM), Pareto-optimal runs joined."""
    plt = _mpl()
    f1 = np.array([r["macro_f1"] for r in rows])
    macs = np.array([r["macs"] for r in rows], dtype=float)
    sram = np.array([r["peak_sram"] for r in rows], dtype=float)
    front = pareto_mask(np.stack([f1, macs, sram], 1))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    sc = ax.scatter(macs / 1e6, f1, c=sram / 1e3, s=60, cmap="viridis", edgecolors="k")
    order = np.argsort(macs[front])
    ax.plot(macs[front][order] / 1e6, f1[front][order], "r--", lw=1, label="Pareto front (F1, MACs, SRAM)")
    for r, x, y in zip(rows, macs / 1e6, f1):
        ax.annotate(r["label"], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    fig.colorbar(sc, label="peak SRAM (kB)")
    ax.set_xlabel("MMACs")
    ax.set_ylabel("test macro-F1 (float)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _float_int8_target(doc: Doc, res, ctx: Any, fm, im, prof) -> None:
    """The "Float vs int8 vs target" section: float model, int8 graph on the host (``simulate``; the cost model
    for memory), the int8 firmware on the emulated Cortex-M33 (the validate stage), and the budget."""
    cfg = res.config
    info = getattr(ctx, "int8_info", None) or {}
    how = info.get("method", "").upper() or "-"
    val = getattr(ctx, "validation", None)  # harcore.deploy.ValidationReport
    doc.h("Float vs int8 vs target")
    if info.get("method") == "qat":
        on_val = info.get("best_epoch") is not None  # QAT had a validation split (JobConfig.train_on="train")
        data = "training split" if on_val else "training and validation windows"
        kept = f"the best validation epoch ({info['best_epoch']})" if on_val else "the last epoch"
        doc.p(f"int8 by QAT: {info['epochs']} epoch(s) of quantization-aware fine-tuning from the fine-tuned float "
              f"model (lr {info['lr']:.0e}, {data}), {kept} converted (harcore.quant.qat). The float column is the "
              "fine-tuned model before QAT; QAT trains on, so int8 can score above it.")
    elif info.get("method") == "ptq":
        doc.p(f"int8 by PTQ (harcore.quant.quantize, {info['calibration_windows']} calibration windows).")
    if val is not None:
        doc.p(f"Target: the int8 firmware on the emulated Cortex-M33 (QEMU mps2-an505), {val.windows} test windows "
              "(the harness's; its image also holds them and the harness). int8 memory figures: the cost model "
              "(harcore.cost) and the deploy budget estimate; target memory figures: the linked image "
              "(arm-none-eabi-size, linker map and symbols).")
    on_test = f" (test split, {fm.num_samples:,} windows)" if fm is not None else " (test split)"
    rows = [[f"macro-F1{on_test}", _fmt(fm.macro_f1 if fm else None), _fmt(im.macro_f1 if im else None), "-", "-"],
            [f"accuracy{on_test}", _fmt(fm.accuracy if fm else None), _fmt(im.accuracy if im else None), "-", "-"]]
    if val is not None:
        n = val.windows
        rows += [[f"macro-F1 (the {n} windows run on the M33)", _fmt(val.macro_f1.get("float")),
                  _fmt(val.macro_f1.get("host_int8")), _fmt(val.macro_f1.get("target")), "-"],
                 [f"accuracy (the {n} windows run on the M33)", _fmt(val.accuracy.get("float")),
                  _fmt(val.accuracy.get("host_int8")), _fmt(val.accuracy.get("target")), "-"],
                 ["exact-match windows (target == host int8)", "-", "-", f"{val.exact_windows}/{n}", "-"],
                 ["differing int8 output values (max abs diff, LSB)", "-", "-",
                  f"{val.differing_values}/{val.total_values} ({val.max_abs_diff})", "-"]]
    t = prof.total if prof is not None else None
    e, img = (val.estimates, val.image) if val is not None else ({}, {})
    if t is not None:
        rows += [["MACs", _fmt(t.macs), _fmt(t.macs), "-", _fmt(cfg.macs)],
                 ["parameters", _fmt(t.params), _fmt(t.params), "-", "-"],
                 ["peak SRAM (B): cost model / linked arena", "-", _fmt(t.peak_sram), _fmt(e.get("arena_linked")),
                  _fmt(cfg.sram)],
                 ["flash, model constants (B): cost model / linked model data", "-", _fmt(t.flash),
                  _fmt(e.get("weights_linked")), _fmt(cfg.flash)]]
    if val is not None:
        rows += [["flash, whole image (B): deploy estimate / arm-none-eabi-size text+data", "-",
                  _fmt(e.get("budget_flash")), _fmt(img.get("flash")), "-"],
                 ["RAM, whole image (B): deploy estimate / arm-none-eabi-size data+bss", "-",
                  _fmt(e.get("budget_ram")), _fmt(img.get("ram")), "-"]]
    doc.table(["figure", "float", f"int8 ({how}, host)", "target (Cortex-M33, QEMU)", "budget"], rows)
    if im is None:
        st = res.stages.get("int8-eval")
        doc.p(f"int8 metrics: not measured ({st.status}: {st.detail})" if st else "int8 metrics: not measured")
    if val is None:
        st = res.stages.get("validate")
        doc.p(f"target figures: not measured ({st.status}: {st.detail})" if st else "target figures: not measured")


def write_job_report(res, ctx: Any, pareto_rows: list[dict] | None = None) -> tuple[Path, Path]:
    """``report.md`` / ``report.html`` (+ PNGs) for one job (``res``: :class:`~harcore.nas.pipeline.JobResult`,
    ``ctx``: its :class:`~harcore.nas.pipeline.JobContext`)."""
    run, cfg = res.run_dir, res.config
    doc = Doc(f"harcore search — {cfg.backbone} on {cfg.dataset or 'default'}")
    lim0 = cfg.limits() if hasattr(cfg, "limits") else {"sram": cfg.sram, "flash": cfg.flash, "macs": cfg.macs}
    doc.p(f"Budget: peak SRAM {_fmt(lim0['sram'])} B, flash {_fmt(lim0['flash'])} B, MACs {_fmt(lim0['macs'])}, "
          f"parameters {_fmt(lim0.get('params'))}" + (f" (board {cfg.board})" if getattr(cfg, "board", None) else "")
          + ". "
          f"beta1 {cfg.beta1}, beta2 {cfg.beta2}, seed {cfg.seed}, preset {cfg.resolved_preset()}.")
    zs = res.stages.get("search").data if res.stages.get("search") else {}
    doc.p("Strategy: " + (f"zcp — proxy-guided ({zs.get('space')} space, ranked by {zs.get('proxy')})"
                          if getattr(cfg, "strategy", "sftnas") == "zcp" else "sftnas — the differentiable search"))
    failed = res.failed()
    if failed:
        doc.p("INCOMPLETE — " + "; ".join(f"stage '{s.name}' failed: {s.detail}" for s in failed))
    doc.h("Stages")
    doc.table(["stage", "status", "seconds", "detail"],
              [[s.name, s.status, f"{s.seconds:.1f}", s.detail] for s in res.stages.values()])
    if res.arch is not None:
        doc.h("Architecture")
        doc.p(res.arch.summary())
        doc.table(["layer", "op", "kernel", "stride", "filters"],
                  [[i, l["op"], l.get("kernel", "-"), l["stride"], l.get("filters", "-")]
                   for i, l in enumerate(res.arch.layers)])
    # float vs int8 vs target
    fm, im, prof = getattr(ctx, "float_metrics", None), getattr(ctx, "int8_metrics", None), getattr(ctx, "profile", None)
    if prof is not None or fm is not None:
        _float_int8_target(doc, res, ctx, fm, im, prof)
    if zs.get("ranking"):
        doc.h("Proxy ranking (zcp)")
        doc.p(f"{zs['n_sampled']} architectures sampled, {zs['n_within_budget']} within the budget (C++ batch cost "
              f"API), ranked by {zs['proxy']}; the top {zs['top_k']} trained {zs['epochs']} epochs each on the "
              f"training split, the best by validation macro-F1 kept (candidate {zs['best']['index']}).")
        val = {t["index"]: t["val_f1"] for t in zs["trained"]}
        doc.table(["rank", "candidate", "score", "MACs", "params", "peak SRAM", "flash", "val F1", "architecture"],
                  [[r["rank"], r["index"], f"{r['rank_score']:.4g}", _fmt(r["macs"]), _fmt(r["params"]),
                    _fmt(r["peak_sram"]), _fmt(r["flash"]),
                    f"{val[r['index']]:.4f}" if r["index"] in val else "-", r["key"]] for r in zs["ranking"]])
    if zs.get("selection"):
        sel = zs["selection"]
        doc.h("Searches (one kept on validation)")
        doc.p(f"{len(sel['searches'])} searches (search seeds below); each derived network trained "
              f"{sel['select_epochs']} epochs from fresh weights on the training subjects, the best validation epoch "
              f"kept. Kept: the highest validation macro-F1 within the budget, search seed {sel['kept_seed']}. Test "
              "subjects are read only by the kept network's evaluation below.")
        doc.table(["search seed", "val F1", "MACs", "params", "peak SRAM", "fits", "search s", "architecture"],
                  [[("**" if r["seed"] == sel["kept_seed"] else "") + str(r["seed"]), f"{r['val_macro_f1']:.4f}",
                    _fmt(r["macs"]), _fmt(r["params"]), _fmt(r["peak_sram"]), "yes" if r["fits"] else "no",
                    f"{r['search_seconds']:.0f}", r["arch"].split("| ", 1)[-1]] for r in sel["searches"]])
    hist = res.stages.get("search").data.get("history") if res.stages.get("search") else None
    if hist:
        plot_search(hist, run / "search.png")
        doc.h("Search")
        doc.img("search.png", "search history")
        doc.table(["epoch", "tau", "val F1", "MACs", "peak SRAM", "params", "sensors", "arch"],
                  [[h["epoch"], f"{h['tau']:.2f}" if "tau" in h else "-", f"{h['val_macro_f1']:.3f}", _fmt(h["macs"]), _fmt(h["peak_sram"]),
                    _fmt(h["params"]), h["sensors"], h["arch"].split("| ", 1)[-1]] for h in hist])
        lim = cfg.limits() if hasattr(cfg, "limits") else {"macs": cfg.macs, "sram": cfg.sram, "flash": cfg.flash}
        targets = {"macs": lim.get("macs"), "params": lim.get("params"), "flash": lim.get("flash"),
                   "peak_sram": lim.get("sram")}
        rows = pruning_rows(hist)
        if rows and plot_pruning(hist, run / "pruning.png", targets):
            doc.h("Pruning")
            doc.p("Sensors and filters the argmax architecture keeps after every search epoch (kept/offered per "
                  "searchable layer; id: the layer chose the identity), and the derived network's figures "
                  "against the budget's targets.")
            doc.img("pruning.png", "filters per layer and figures against the targets")
            doc.table(["epoch", "sensors"] + [f"layer {i + 1}" for i in range(len(rows[0]) - 2)], rows)
    steps = res.stages.get("search").data.get("slimming") if res.stages.get("search") else None
    if steps:  # AutoSlim (harcore.nas.baselines): the greedy path on the validation subjects
        doc.h("Greedy slimming")
        doc.p("AutoSlim's steps after training the slimmable network: each removes one group of filters from the "
              "layer whose removal cost the least validation macro-F1, until every target is met.")
        doc.table(["step", "layer", "widths", "val F1", "MACs", "params"],
                  [[s["step"], s["layer"] + 1, " ".join(map(str, s["widths"])), f"{s['val_macro_f1']:.3f}",
                    _fmt(s["macs"]), _fmt(s["params"])] for s in steps])
    if fm is not None:
        plot_confusion(fm.confusion, fm.class_names or [str(i) for i in range(fm.num_classes)],
                       "float, test split", run / "confusion_float.png")
        doc.h("Confusion matrix")
        doc.img("confusion_float.png", "confusion matrix (float)")
        if im is not None:
            plot_confusion(im.confusion, im.class_names or [str(i) for i in range(im.num_classes)],
                           "int8, test split", run / "confusion_int8.png")
            doc.img("confusion_int8.png", "confusion matrix (int8)")
    if pareto_rows:
        plot_pareto(pareto_rows, run / "pareto.png")
        doc.h("Pareto front")
        doc.img("pareto.png", "Pareto front")
    if prof is not None:
        doc.h("Per-layer cost (harcore.cost.profile, int8 CMSIS-NN deployment)")
        doc.table(["#", "layer", "kind", "output", "MACs", "params", "flash B", "scratch B", "mem B", "deploy"],
                  [[i, r.name, r.kind, "x".join(map(str, r.shape)), _fmt(r.macs), _fmt(r.params), _fmt(r.flash),
                    _fmt(r.scratch), _fmt(r.mem), ("fused" if r.fused else "alias" if r.alias else "")
                    + (" PEAK" if i == prof.total.peak_op else "")] for i, r in enumerate(prof.layers)])
        doc.p(f"total: {prof.total.macs:,} MACs, {prof.total.params:,} params, {prof.total.flash:,} B flash, "
              f"{prof.total.peak_sram:,} B peak SRAM. {prof.convention}")
    return doc.write(run)


def write_sweep_report(folder: Path, rows: list[dict], failures: list[dict], seconds: float) -> tuple[Path, Path]:
    """Sweep summary: one row per run, the Pareto front (macro-F1 vs MACs vs peak SRAM) and its plot."""
    doc = Doc("harcore search — sweep")
    doc.p(f"{len(rows) + len(failures)} runs in {seconds:.0f} s wall time (Ray).")
    if rows:
        pts = np.array([[r["macro_f1"], r["macs"], r["peak_sram"]] for r in rows], dtype=float)
        front = pareto_mask(pts)
        plot_pareto(rows, folder / "pareto.png")
        doc.h("Pareto front")
        doc.img("pareto.png", "Pareto front")
        doc.table(["run", "backbone", "beta1", "seed", "test macro-F1", "MACs", "params", "peak SRAM B", "flash B",
                   "fits", "Pareto", "arch"],
                  [[r["label"], r["backbone"], r["beta1"], r["seed"], f"{r['macro_f1']:.4f}", _fmt(r["macs"]),
                    _fmt(r["params"]), _fmt(r["peak_sram"]), _fmt(r["flash"]), r["fits"], "yes" if f else "",
                    r["arch"]] for r, f in zip(rows, front)])
    if failures:
        doc.h("Failed runs")
        doc.table(["run", "stage", "why"], [[f["label"], f["stage"], f["detail"]] for f in failures])
    return doc.write(folder, "sweep")
