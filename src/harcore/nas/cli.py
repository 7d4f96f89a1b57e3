"""``harcore search``: the main job (and sweeps) from the command line. Registered in ``harcore.cli``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

import typer

_UNITS = {"": 1, "b": 1, "kb": 1000, "k": 1000, "kib": 1024, "mb": 1000_000, "m": 1000_000, "mib": 1024 * 1024}


def parse_size(text: Optional[str], what: str) -> Optional[int]:
    """``96KB`` -> 96000, ``96KiB`` -> 98304, ``0.77M`` -> 770000, ``12345`` -> 12345 (case-insensitive)."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-zA-Z]*)\s*", text)
    if not m or m.group(2).lower() not in _UNITS:
        raise typer.BadParameter(f"{text!r} is not a size (e.g. 96KB, 96KiB, 512kb, 0.77M, 12345)", param_hint=what)
    v = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if v <= 0:
        raise typer.BadParameter(f"{text!r} must be > 0", param_hint=what)
    return int(round(v))


def parse_options(items: Optional[list[str]], what: str) -> dict[str, Any]:
    """``["lstm_layers=1", "dropout=0.5"]`` -> ``{"lstm_layers": 1, "dropout": 0.5}`` (int, float or text)."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip() or not text.strip():
            raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=what)
        for conv in (int, float, str):
            try:
                out[key.strip()] = conv(text.strip())
                break
            except ValueError:
                continue
    return out


def _floats(text: Optional[str], what: str) -> list[float]:
    try:
        return [float(t) for t in text.split(",") if t.strip()] if text else []
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a comma-separated list of numbers", param_hint=what) from None


def _read_arch(path: Optional[Path]) -> Optional[dict[str, Any]]:
    if path is None:
        return None
    from harcore.models.sftnas import read_arch_file

    try:
        return read_arch_file(path)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--arch") from None


def search(
    dataset: Optional[str] = typer.Option(None, "--dataset", help="dataset name (harcore.data.DATASETS, or custom); "
                                          "default: the built-in HAPT subset, or --data-dir's data when given"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="with --dataset NAME: its folder or archive; "
                                            "alone: your data, a folder in harcore's format (docs/data.md) or an .npz"),
    backbone: str = typer.Option("tinyhar", "--backbone", help="tinyhar | deepconvlstm | attend_discriminate"),
    sram: Optional[str] = typer.Option("96KB", "--sram", help="peak SRAM limit L_Mem (e.g. 96KB; 'none' for no limit)"),
    flash: Optional[str] = typer.Option(None, "--flash", help="flash limit, checked on the derived model (e.g. 512KB)"),
    macs: Optional[str] = typer.Option(None, "--macs", help="MAC target (e.g. 0.77M): a resource term on the DCS gates, the selection and a check"),
    params: Optional[str] = typer.Option(None, "--params", help="parameter target (e.g. 14K): a resource term, the selection and a check"),
    board: Optional[str] = typer.Option(None, "--board", help="a board harcore deploys to (stm32l552, qemu-m33): "
                                        "its SRAM and flash left to the model become limits"),
    method: str = typer.Option("sftnas", "--method", help="sftnas (the search) | autoslim | pas (the paper's pruning "
                               "baselines: prune the original stage's filters to --macs / --params) | fixed (no "
                               "search: --arch, or the backbone's original first stage)"),
    arch_file: Optional[Path] = typer.Option(None, "--arch", help="--method fixed: an arch.json to train"),
    resource: Optional[str] = typer.Option(None, "--resource", help="form of the budget terms: band (default) | "
                                           "hinge | lagrange | none (docs/nas.md)"),
    beta_budget: Optional[float] = typer.Option(None, "--beta-budget", help="weight of the --params / --flash terms"),
    budget_band: Optional[float] = typer.Option(None, "--budget-band", help="band: no push while the figure is "
                                                "within [(1 - band) target, target] (default 0.1)"),
    budget_alpha: Optional[bool] = typer.Option(None, "--budget-alpha/--budget-gates", help="the budget terms also "
                                                "act on the kernel choices alpha (default: on the DCS gates only)"),
    prune_warmup: Optional[int] = typer.Option(None, "--prune-warmup", help="search epochs before the budget terms act"),
    dcs_shared: Optional[bool] = typer.Option(None, "--dcs-shared/--dcs-per-candidate", help="one filter mask per "
                                              "layer shared by its kernel candidates, or one per candidate (default)"),
    tie_tail: Optional[bool] = typer.Option(None, "--tie-tail/--fixed-tail", help="the later stages' width follows "
                                            "the filters the searched stage keeps (default: tied with --params, fixed otherwise)"),
    dcs_init: Optional[float] = typer.Option(None, "--dcs-init", help="initial value of the DCS gates (> 0.5; default 0.75)"),
    lr_v: Optional[float] = typer.Option(None, "--lr-v", help="Adam learning rate of the DCS gates (default: the preset's)"),
    lr_sensors: Optional[float] = typer.Option(None, "--lr-sensors", help="Adam learning rate of the sensor gates "
                                               "alone (default: --lr-v's)"),
    epochs: Optional[int] = typer.Option(None, "--epochs", help="search epochs; with --strategy zcp each candidate's training epochs (default: the preset's)"),
    finetune_epochs: Optional[int] = typer.Option(None, "--finetune-epochs", help="fine-tuning epochs (default: the preset's)"),
    beta1: float = typer.Option(1.0, "--beta1", help="weight of L_complexity (Eq. 10)"),
    beta2: float = typer.Option(1.0, "--beta2", help="weight of L_memory (Eq. 10)"),
    beta_macs: float = typer.Option(1.0, "--beta-macs", help="weight of the --macs hinge (0: the limit only selects the architecture)"),
    filters: Optional[int] = typer.Option(None, "--filters", help="filters per searchable layer (default: the backbone's)"),
    seed: int = typer.Option(0, "--seed"),
    preset: Optional[str] = typer.Option(None, "--preset", help="quick | paper (default: quick for the built-in data)"),
    int8: str = typer.Option("qat", "--int8", help="qat (quantization-aware fine-tuning, then int8) | ptq (post-training)"),
    init: str = typer.Option("scratch", "--init", help="the derived model's training starts from: scratch | supernet (its weights)"),
    train_on: str = typer.Option("all", "--train-on", help="the derived model trains on: all (training + validation "
                                 "subjects, last epoch) | train (the search's training split, best validation epoch)"),
    tail: Optional[list[str]] = typer.Option(None, "--tail", help="an option of the backbone's later stages, KEY=VALUE "
                                             "(repeatable), e.g. --tail lstm_layers=1 --tail dropout=0.5"),
    strategy: str = typer.Option("sftnas", "--strategy", help="sftnas (the differentiable search) | zcp "
                                 "(sample, drop what is over budget, rank by --proxy, train the --top-k best)"),
    space: str = typer.Option("sftnas", "--space", help="zcp: sftnas (the backbone's derived networks) | table1"),
    proxy: str = typer.Option("ensemble", "--proxy", help="zcp: a proxy of harcore.zcp.PROXIES or ensemble"),
    top_k: Optional[int] = typer.Option(None, "--top-k", help="zcp: candidates trained (quick 2, paper 5)"),
    candidates: Optional[int] = typer.Option(None, "--candidates", help="zcp: architectures sampled (quick 24, paper 200)"),
    time_budget: Optional[float] = typer.Option(None, "--time-budget", help="zcp: wall seconds for the search "
                                                "stage (the best-ranked candidate is always trained)"),
    searches: int = typer.Option(1, "--searches", help="run N searches (seeds seed*N .. seed*N+N-1) and keep the one "
                                 "whose network, trained on the training subjects, scores best on validation"),
    select_epochs: Optional[int] = typer.Option(None, "--select-epochs", help="--searches: epochs each network "
                                                "trains for its validation score (default: --finetune-epochs)"),
    out: Path = typer.Option(Path("runs/search"), "--out", help="run folder"),
    resume: bool = typer.Option(False, "--resume", help="continue the interrupted run in --out (same options)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace the run in --out (harcore's files there "
                                   "are deleted first; other files stay)"),
    sweep_beta1: Optional[str] = typer.Option(None, "--sweep-beta1", help="comma-separated beta1 values: a sweep through Ray"),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="comma-separated seeds for a sweep"),
    backbones: Optional[str] = typer.Option(None, "--backbones", help="comma-separated backbones for a sweep"),
    parallel: int = typer.Option(2, "--parallel", help="searches at once (Ray workers)"),
    address: Optional[str] = typer.Option(None, "--address", help="an existing Ray cluster (default: local)"),
) -> None:
    """The main job: data -> SFTNAS search -> derive -> fine-tune -> int8 -> deploy -> validate -> report."""
    from rich.console import Console

    from harcore.nas.pipeline import JobConfig

    sram_b = None if sram is not None and sram.strip().lower() == "none" else parse_size(sram, "--sram")
    cfg = JobConfig(dataset=dataset, data_dir=str(data_dir) if data_dir else None, backbone=backbone, sram=sram_b,
                    flash=parse_size(flash, "--flash"), macs=parse_size(macs, "--macs"), search_epochs=epochs,
                    finetune_epochs=finetune_epochs, beta1=beta1, beta2=beta2, beta_macs=beta_macs, filters=filters, seed=seed,
                    preset=preset, out=str(out), int8=int8, init=init, train_on=train_on,
                    tail=parse_options(tail, "--tail"), params=parse_size(params, "--params"), board=board,
                    method=method, arch=_read_arch(arch_file),
                    prune={k: v for k, v in (("resource", resource), ("beta_budget", beta_budget),
                                             ("budget_band", budget_band), ("budget_alpha", budget_alpha),
                                             ("prune_warmup", prune_warmup), ("dcs_shared", dcs_shared),
                                             ("tie_tail", tie_tail), ("dcs_init", dcs_init), ("lr_v", lr_v),
                                             ("lr_sensors", lr_sensors))
                           if v is not None},
                    strategy=strategy, space=space, proxy=proxy, top_k=top_k, candidates=candidates,
                    time_budget=time_budget, searches=searches, select_epochs=select_epochs)
    try:
        cfg.data_source()
        cfg.resolved_preset()
        cfg.resolved_init()
        cfg.resolved_train_on()
        cfg.limits()
        cfg.search_config()
        if cfg.resolved_method() in ("autoslim", "pas"):
            cfg.baseline_config()
        cfg.int8_options()
        cfg.zcp_options()
        cfg.selection_options()
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    console = Console()
    if sweep_beta1 or seeds or backbones:
        from harcore.errors import MissingExtraError
        from harcore.nas.sweep import run_sweep

        b1s = _floats(sweep_beta1, "--sweep-beta1") or [beta1]
        sd = [int(s) for s in _floats(seeds, "--seeds")] or [seed]
        bbs = [b.strip() for b in backbones.split(",")] if backbones else [backbone]
        try:
            r = run_sweep(cfg, beta1s=b1s, seeds=sd, backbones=bbs, parallel=parallel, address=address,
                          resume=resume, console=console)
        except MissingExtraError as e:
            typer.secho(f"error: {e}", err=True, fg=typer.colors.RED)
            raise typer.Exit(1) from None
        console.print(f"sweep: {len(r['runs'])} runs finished, {len(r['failures'])} failed; report {r['report'][1]}")
        raise typer.Exit(1 if r["failures"] else 0)
    if resume and overwrite:
        raise typer.BadParameter("give either --resume or --overwrite, not both")
    from harcore.errors import HarcoreError
    from harcore.nas.pipeline import run_job

    try:
        res = run_job(cfg, resume=resume, overwrite=overwrite, console=console)
    except HarcoreError as e:  # the run folder cannot be used as asked, or a resume failed: it was left as it was
        typer.echo(f"Error: {e}", err=True)
        raise typer.Exit(1) from None
    raise typer.Exit(0 if res.ok else 1)
