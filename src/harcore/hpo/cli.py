"""``harcore hpo``: the study, then the final training over seeds (docs/hpo.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def _options(items: Optional[list[str]], what: str) -> dict:
    from harcore.nas.cli import parse_options

    return parse_options(items, what)


def hpo(
    model: str = typer.Option("mubiconvlstm", "--model", help="zoo model name (see `harcore models`)"),
    dataset: str = typer.Option("default", "--dataset", help="dataset name (harcore.data.DATASETS); default: the built-in HAPT subset"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="folder or archive of the dataset"),
    dataset_option: Optional[list[str]] = typer.Option(None, "--dataset-option", metavar="KEY=VALUE", help="option of harcore.data.load (repeatable), e.g. variant=uci9"),
    model_option: Optional[list[str]] = typer.Option(None, "--model-option", metavar="KEY=VALUE", help="frozen architecture option (repeatable), e.g. lstm_hidden=32"),
    trials: int = typer.Option(50, "--trials", min=1, help="finished (complete + pruned) trials the study holds in the end, over every run and worker"),
    storage: Optional[str] = typer.Option(None, "--storage", help="Optuna storage URL (sqlite:///..., postgresql://...); default: sqlite in --out"),
    study: Optional[str] = typer.Option(None, "--study", help="study name; default: MODEL-DATASET"),
    out: Path = typer.Option(Path("runs/hpo"), "--out", help="output folder (study.db by default, hpo.json, summary.md, final/)"),
    epochs: int = typer.Option(10, "--epochs", min=1, help="epochs per trial"),
    patience: int = typer.Option(5, "--patience", min=0, help="early-stopping patience per trial (0: none)"),
    final_epochs: int = typer.Option(200, "--final-epochs", min=1, help="epochs of the final training"),
    final_patience: int = typer.Option(10, "--final-patience", min=0, help="early-stopping patience of the final training (0: none)"),
    seeds: int = typer.Option(5, "--seeds", min=1, help="final-training seeds, derived from --master-seed"),
    master_seed: int = typer.Option(0, "--master-seed", help="master seed of the final seeds and of the validation split"),
    sampler_seed: int = typer.Option(0, "--sampler-seed", help="seed of the TPE sampler"),
    batch_size: int = typer.Option(64, "--batch-size", min=1),
    balanced: bool = typer.Option(False, "--balanced", help="inverse-frequency class weights (imbalanced datasets)"),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="torch threads per worker"),
    heartbeat: int = typer.Option(10, "--heartbeat", min=1, help="seconds between trial heartbeats; a trial silent for twice this is failed and re-queued"),
    no_final: bool = typer.Option(False, "--no-final", help="only run the study (e.g. extra workers)"),
    int8: bool = typer.Option(True, "--int8/--no-int8", help="also evaluate each final model as int8 (PTQ, the C++ kernels)"),
) -> None:
    """Optuna TPE over the training hyperparameters (lr, weight decay, dropout), then the final training."""
    from harcore.errors import HarcoreError
    from harcore.hpo import HPOConfig, run

    try:
        cfg = HPOConfig(
            model=model, model_options=_options(model_option, "--model-option"), dataset=dataset,
            data_dir=str(data_dir) if data_dir else None, dataset_options=_options(dataset_option, "--dataset-option"),
            trials=trials, epochs=epochs, patience=patience or None, final_epochs=final_epochs,
            final_patience=final_patience or None, seeds=seeds, master_seed=master_seed, sampler_seed=sampler_seed,
            batch_size=batch_size, class_weights="balanced" if balanced else None, threads=threads,
            storage=storage, study=study, out=str(out), heartbeat_interval=heartbeat, int8=int8)
    except ValueError as e:
        raise typer.BadParameter(str(e)) from None
    try:
        res = run(cfg, final=not no_final, log=typer.echo)
    except (HarcoreError, KeyError, TypeError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    c = res["counts"]
    typer.echo(f"study {res['study']}: {c['finished']} finished trial(s) ({c.get('COMPLETE', 0)} complete, "
               f"{c.get('PRUNED', 0)} pruned); best {res['best_params']}")
    if res["final"] is not None:
        f1 = res["final"]["test_macro_f1"]
        q8 = res["final"].get("int8_test_macro_f1")
        typer.echo(f"final: test macro-F1 {100 * f1['mean']:.2f} ± {100 * f1['std']:.2f}"
                   + (f" (int8 {100 * q8['mean']:.2f} ± {100 * q8['std']:.2f})" if q8 else "")
                   + f" over {len(res['final']['seeds'])} seed(s)")
    typer.echo(f"wrote {out / 'hpo.json'} and {out / 'summary.md'}")
