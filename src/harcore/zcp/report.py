"""Summary and report of a zero-cost-proxy study: per proxy Spearman (bootstrap CI), talent rate, Δ1, Δ10,
Δ10 %, noise curves, against the random baseline; Markdown, HTML and a JSON summary."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from harcore.runstore import atomic_write_text

from .metrics import (NOISE_VARIANCES, delta1, delta10, delta10pct, random_baseline, spearman, spearman_ci,
                      talent_rate)
from .proxies import BASELINES, ZCP_PROXIES, ensemble

__all__ = ["summarize", "write_report", "ranked_names"]


def ranked_names() -> tuple[str, ...]:
    return ZCP_PROXIES + ("ensemble",) + BASELINES


def _finite(v: float) -> float | None:
    return float(v) if v is not None and math.isfinite(v) else None


def summarize(results: Sequence[dict[str, Any]], seed: int = 0) -> dict[str, Any]:
    """The JSON summary: ``proxies[name]`` has ``spearman``, ``spearman_ci``, ``talent_rate``, ``delta1``,
    ``delta10``, ``delta10pct`` and ``noise`` (variance -> Spearman against the noisy test F1); ``random``
    the random baseline (1,000 draws). NaN (e.g. a constant proxy) is written as null."""
    n = len(results)
    out: dict[str, Any] = {"format": "harcore-zcp-summary", "n_archs": n, "proxies": {}, "random": {}}
    if n == 0:
        return out
    val = np.array([r["val_f1"] for r in results])
    test = np.array([r["test_f1"] for r in results])
    scores = [dict(r["scores"]) for r in results]
    ens = ensemble(scores)
    for s, e in zip(scores, ens):
        s["ensemble"] = e
    for name in ranked_names():
        p = np.array([s.get(name, math.nan) for s in scores], dtype=np.float64)
        ci = spearman_ci(p, val, seed=seed)
        noise = {str(v): _finite(spearman(p, [r["noisy_test_f1"][str(v)] for r in results]))
                 for v in NOISE_VARIANCES}
        out["proxies"][name] = {
            "spearman": _finite(ci.rho), "spearman_ci": [_finite(ci.low), _finite(ci.high)],
            "talent_rate": talent_rate(p, val), "delta1": delta1(p, val, test), "delta10": delta10(p, val, test),
            "delta10pct": delta10pct(p, val, test), "noise": noise}
    for label, k in (("k1", 1), ("k10", min(10, n)), ("k10pct", max(1, int(round(0.1 * n))))):
        rb = random_baseline(val, test, k, draws=1000, seed=seed)
        out["random"][label] = {"k": rb.k, "delta_mean": rb.delta_mean, "delta_std": rb.delta_std,
                                "talent_mean": rb.talent_mean}
    sc = np.array([r["score_seconds"] for r in results])
    tr = np.array([r["train_seconds"] for r in results])
    out["timing"] = {"score_seconds_median": float(np.median(sc)), "train_seconds_median": float(np.median(tr)),
                     "score_over_train_median": float(np.median(sc / np.maximum(tr, 1e-9))),
                     "archs_scored_per_second": float(n / sc.sum()) if sc.sum() > 0 else None}
    out["best_by_val"] = {"index": int(np.argmax(val)), "val_f1": float(val.max()),
                          "test_f1": float(test[int(np.argmax(val))])}
    return out


def _plots(summary: dict[str, Any], results: Sequence[dict[str, Any]], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(summary["proxies"])
    val = np.array([r["val_f1"] for r in results])
    scores = [dict(r["scores"]) for r in results]
    for s, e in zip(scores, ensemble(scores)):
        s["ensemble"] = e
    files = []
    cols = 4
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        p = np.array([s.get(name, math.nan) for s in scores], dtype=np.float64)
        ok = np.isfinite(p)
        ax.scatter(p[ok], val[ok], s=8)
        if ok.any() and (p[ok] > 0).all() and p[ok].max() / max(p[ok].min(), 1e-300) > 1e3:
            ax.set_xscale("log")
        rho = summary["proxies"][name]["spearman"]
        ax.set_title(f"{name} (ρ={'n/a' if rho is None else f'{rho:.2f}'})", fontsize=9)
        ax.set_ylabel("val macro-F1", fontsize=8)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(out / "fig_scatter.png", dpi=80)
    plt.close(fig)
    files.append("fig_scatter.png")

    fig, ax = plt.subplots(figsize=(8, 3.5))
    tr = [summary["proxies"][n]["talent_rate"] for n in names]
    ax.bar(range(len(names)), tr)
    ax.axhline(0.1, color="k", ls="--", label="chance (10 %)")
    ax.axhline(summary["random"]["k10pct"]["talent_mean"], color="r", ls=":", label="random, 1,000 draws")
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("talent rate")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "fig_talent.png", dpi=80)
    plt.close(fig)
    files.append("fig_talent.png")

    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [str(v) for v in NOISE_VARIANCES]
    for n in names:
        ys = [summary["proxies"][n]["noise"][v] for v in xs]
        ax.plot(range(len(xs)), [math.nan if y is None else y for y in ys], marker="o", label=n)
    ax.set_xticks(range(len(xs)), xs)
    ax.set_xlabel("noise variance (test data)")
    ax.set_ylabel("Spearman vs noisy test F1")
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(out / "fig_noise.png", dpi=80)
    plt.close(fig)
    files.append("fig_noise.png")
    return files


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{100 * v:.2f}" if pct else f"{v:.3f}"


def _table(summary: dict[str, Any]) -> list[list[str]]:
    rows = [["proxy", "Spearman", "95 % CI", "talent", "Δ1 (pt)", "Δ10 (pt)", "Δ10 % (pt)"]]
    for n, m in summary["proxies"].items():
        lo, hi = m["spearman_ci"]
        rows.append([n, _fmt(m["spearman"]), f"[{_fmt(lo)}, {_fmt(hi)}]", _fmt(m["talent_rate"]),
                     _fmt(m["delta1"], True), _fmt(m["delta10"], True), _fmt(m["delta10pct"], True)])
    for label, r in summary["random"].items():
        rows.append([f"random ({label}, k={r['k']})", "", "", _fmt(r["talent_mean"]),
                     *(["±".join((_fmt(r["delta_mean"], True), _fmt(r["delta_std"], True)))] * 1), "", ""])
    return rows


def write_report(summary: dict[str, Any], results: Sequence[dict[str, Any]], out: str | Path) -> None:
    """Write ``summary.json``, ``report.md``, ``report.html`` and the figures into ``out``."""
    out = Path(out)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    if not results:
        return
    figs = _plots(summary, results, out)
    rows = _table(summary)
    st = summary.get("study", {})
    head = (f"Zero-cost proxy study on {st.get('dataset', '?')}: {summary['n_archs']} architectures, "
            f"{st.get('epochs', '?')} epochs each. Δ in macro-F1 points (test F1 of the best-by-validation "
            "architecture minus the proxy's pick); talent chance = 10 %.")
    md = ["# Zero-cost proxy study", "", head, ""]
    md.append("| " + " | ".join(rows[0]) + " |")
    md.append("|" + "---|" * len(rows[0]))
    md += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    t = summary.get("timing", {})
    md += ["", f"Scoring all proxies: median {t.get('score_seconds_median', 0):.3f} s per architecture; "
           f"median score/train time ratio {t.get('score_over_train_median', 0):.4f}.", ""]
    md += [f"![{f}]({f})" for f in figs]
    atomic_write_text(out / "report.md", "\n".join(md) + "\n")
    cells = "".join("<tr>" + "".join(f"<{'th' if i == 0 else 'td'}>{html.escape(c)}</{'th' if i == 0 else 'td'}>"
                                     for c in r) + "</tr>" for i, r in enumerate(rows))
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>zcp study</title></head><body>"
           f"<h1>Zero-cost proxy study</h1><p>{html.escape(head)}</p><table border='1'>{cells}</table>"
           + "".join(f"<p><img src='{f}'></p>" for f in figs) + "</body></html>")
    atomic_write_text(out / "report.html", doc)
