"""The bench report: JSON, Markdown, HTML and the F1-vs-MACs / F1-vs-parameters plots."""

from __future__ import annotations

import html
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from harcore.runstore import atomic_write_text

from .runner import FORMAT, BenchSpec, Run, summarize

COLUMNS = [("dataset", "dataset"), ("model", "model"), ("variant", "variant"), ("seeds", "seeds"),
           ("macro-F1 %", "f1"), ("accuracy %", "accuracy"), ("params", "params"), ("MACs", "macs"),
           ("peak SRAM B", "peak_sram"), ("int8 flash B", "int8_flash"), ("int8 macro-F1 %", "int8_macro_f1"),
           ("F1/kParam", "f1_per_kparam"), ("F1/MMAC", "f1_per_mmac"), ("train s", "train_seconds")]

NOTE = ("Selection on validation subjects only (early stopping and the kept weights); test subjects are "
        "evaluated once per run. Mean ± sample std over seeds; cost figures from harcore.cost.profile "
        "(int8 flash and peak SRAM of the int8 deployment).")


def _cell(row: dict[str, Any], key: str) -> str:
    if key == "f1":
        return f"{row['macro_f1']:.2f} ± {row['macro_f1_std']:.2f}"
    if key == "accuracy":
        return f"{row['accuracy']:.2f} ± {row['accuracy_std']:.2f}"
    v = row[key]
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.2f}" if key != "f1_per_mmac" else f"{v:.1f}"
    return f"{v:,}" if isinstance(v, int) and key not in ("seeds",) else str(v)


def _plot(table: list[dict[str, Any]], xkey: str, xlabel: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for row in table:
        ax.errorbar(row[xkey], row["macro_f1"], yerr=row["macro_f1_std"], fmt="o", capsize=3)
        ax.annotate(f"{row['model']}/{row['variant']} ({row['dataset']})", (row[xkey], row["macro_f1"]),
                    fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test macro-F1 (%)")
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def write_report(spec: BenchSpec, rows: list[tuple[Run, dict[str, Any]]], out: Path) -> dict[str, Any]:
    """Write ``results.json``, ``report.md``, ``report.html`` and the two plots in ``out``."""
    table = summarize(rows)
    result = {"format": FORMAT, "spec": asdict(spec), "selection": NOTE, "table": table,
              "runs": [dict(rec, run=str(r.rel)) for r, rec in rows]}
    atomic_write_text(out / "results.json", json.dumps(result, indent=2))
    if table:
        _plot(table, "macs", "MACs per window", out / "f1_vs_macs.png")
        _plot(table, "params", "parameters", out / "f1_vs_params.png")
    md = ["# harcore bench", "", NOTE, "", "| " + " | ".join(c for c, _ in COLUMNS) + " |",
          "|" + "---|" * len(COLUMNS)]
    md += ["| " + " | ".join(_cell(r, k) for _, k in COLUMNS) + " |" for r in table]
    if table:
        md += ["", "![F1 vs MACs](f1_vs_macs.png) ![F1 vs parameters](f1_vs_params.png)", ""]
    atomic_write_text(out / "report.md", "\n".join(md) + "\n")
    head = "".join(f"<th>{html.escape(c)}</th>" for c, _ in COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(r, k))}</td>" for _, k in COLUMNS) + "</tr>"
                   for r in table)
    imgs = '<p><img src="f1_vs_macs.png"> <img src="f1_vs_params.png"></p>' if table else ""
    atomic_write_text(out / "report.html", f"<!doctype html><meta charset='utf-8'><title>harcore bench</title>"
                  f"<h1>harcore bench</h1><p>{html.escape(NOTE)}</p><table border='1'><tr>{head}</tr>{body}</table>"
                  f"{imgs}\n")
    return result
