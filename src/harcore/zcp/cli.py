"""``harcore zcp``: zero-cost proxy studies and the Table I space."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Zero-cost proxies for HAR: score untrained architectures, run resumable studies.")


@app.command("study")
def study(
    dataset: str = typer.Option("default", "--dataset", "-d", 
                                 help="default, hapt, hapt-12, daphnet, mobiact, myogym or realworld"),
    root: Optional[Path] = typer.Option(None, "--root", "--data-dir",
                                        help="dataset folder or archive (not for default)"),
    archs: int = typer.Option(..., "--archs", "-n", min=1, help="architectures sampled from Table I (3 CNN : 1 LSTM)"),
    epochs: int = typer.Option(50, "--epochs", "-e", min=1, help="training epochs per architecture (paper: 50)"),
    out: Path = typer.Option(..., "--out", "-o", help="study folder; an existing one is resumed"),
    seed: int = typer.Option(0, "--seed", help="seeds the sample, the user split, init and training"),
    proxy_batch: int = typer.Option(256, "--proxy-batch", min=2, help="training windows the proxies see"),
    max_train: Optional[int] = typer.Option(None, "--max-train", min=1,
                                            help="train on a seeded subsample of this many windows (smoke runs)"),
    parallel: bool = typer.Option(False, "--parallel", help="run architectures as Ray tasks on a local Ray"),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (implies --parallel)"),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
) -> None:
    """Score and train Table I architectures; write summary.json and report.md/html to OUT."""
    from harcore.errors import HarcoreError
    from harcore.zcp.study import StudyConfig, run_study

    cfg = StudyConfig(dataset=dataset, archs=archs, epochs=epochs, seed=seed, proxy_batch=proxy_batch,
                      root=None if root is None else str(root), max_train=max_train)
    try:
        s = run_study(cfg, out, parallel=parallel, address=address, progress=progress)
    except HarcoreError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{s['n_archs']} architectures; report: {out / 'report.md'}")
    for name, m in s["proxies"].items():
        rho = "n/a" if m["spearman"] is None else f"{m['spearman']:+.3f}"
        typer.echo(f"  {name:15s} spearman {rho}  talent {m['talent_rate']:.2f}  "
                   f"d1 {100 * m['delta1']:+.2f}  d10 {100 * m['delta10']:+.2f}")


@app.command("search")
def search(
    dataset: str = typer.Option("default", "--dataset", "-d", 
                                 help="default, hapt, hapt-12, daphnet, mobiact, myogym or realworld"),
    root: Optional[Path] = typer.Option(None, "--root", "--data-dir",
                                        help="dataset folder or archive (not for default)"),
    candidates: int = typer.Option(200, "--candidates", "-n", min=1, help="Table I architectures sampled"),
    proxy: str = typer.Option("ensemble", "--proxy", help="the ranking: a proxy name or 'ensemble'"),
    top_k: int = typer.Option(5, "--top-k", "-k", min=1, help="best-ranked candidates trained"),
    epochs: int = typer.Option(50, "--epochs", "-e", min=1),
    max_macs: Optional[int] = typer.Option(None, "--max-macs"),
    max_params: Optional[int] = typer.Option(None, "--max-params"),
    max_sram: Optional[int] = typer.Option(None, "--max-sram", help="peak SRAM in bytes (int8 deployment)"),
    max_flash: Optional[int] = typer.Option(None, "--max-flash", help="flash in bytes (int8 deployment)"),
    seed: int = typer.Option(0, "--seed"),
    max_train: Optional[int] = typer.Option(None, "--max-train", min=1, help="training subsample (smoke runs)"),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="write the result as JSON here"),
) -> None:
    """Proxy-guided search under a budget: sample, filter with the C++ batch cost API, rank, train the top k."""
    from harcore.errors import HarcoreError
    from harcore.zcp.search import Budget, zcp_search
    from harcore.zcp.study import load_study_data

    try:
        d = load_study_data(dataset, None if root is None else str(root), seed)
        r = zcp_search(d, n_candidates=candidates, budget=Budget(max_macs, max_params, max_sram, max_flash),
                       proxy=proxy, top_k=top_k, epochs=epochs, seed=seed, max_train=max_train)
    except (HarcoreError, ValueError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"{r.n_within_budget} of {r.n_sampled} candidates within budget; trained the top {len(r.trained)} "
               f"by {r.proxy}")
    if r.best is not None:
        typer.echo(f"best: {r.best['key']}  val F1 {r.best['val_f1']:.4f}  test F1 {r.best['test_f1']:.4f}")
    if out is not None:
        out.write_text(json.dumps({"best": r.best, "ranked": r.ranked, "trained": r.trained,
                                   "n_sampled": r.n_sampled, "n_within_budget": r.n_within_budget,
                                   "proxy": r.proxy, "meta": r.meta}, indent=2))
        typer.echo(f"wrote {out}")


@app.command("space")
def space() -> None:
    """Sizes of Table I's CNN and LSTM spaces (the paper: ~9.23e25 and ~1.98e9)."""
    from harcore.zcp import space_size

    typer.echo(json.dumps({"cnn": f"{space_size('cnn'):.4e}", "lstm": f"{space_size('lstm'):.4e}"}))


@app.command("score")
def score_model(
    model: str = typer.Argument(..., help="zoo model name"),
    channels: int = typer.Option(3, "--channels", "-c"),
    time: int = typer.Option(100, "--time", "-t"),
    classes: int = typer.Option(6, "--classes", "-k"),
    batch: int = typer.Option(64, "--batch", min=2, help="random N(0,1) windows with random labels"),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Every proxy of a zoo model on a seeded random batch (a quick look; studies use real data)."""
    import torch

    from harcore import models
    from harcore.zcp import score

    try:
        net = models.create(model, in_channels=channels, seq_len=time, num_classes=classes)
    except (KeyError, ValueError, TypeError) as e:
        raise typer.BadParameter(str(e.args[0] if e.args else e), param_hint="MODEL") from None
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, time, generator=g)
    y = torch.randint(0, classes, (batch,), generator=g)
    typer.echo(json.dumps(score(net, x, y, seed=seed), indent=2))
