"""``harcore bench``: the experiment runner (docs/hpo.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def _variants(items: Optional[list[str]]) -> dict:
    """``MODEL:NAME:key=val,key=val`` (repeatable) -> ``{model: {name: options}}``."""
    out: dict = {}
    for item in items or []:
        parts = item.split(":", 2)
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise typer.BadParameter(f"{item!r} is not MODEL:NAME[:key=value,...]", param_hint="--variant")
        opts = _model_options([p for p in parts[2].split(",") if p], "--variant") if len(parts) == 3 else {}
        out.setdefault(parts[0], {})[parts[1]] = opts
    return out


def _model_options(items: Optional[list[str]], what: str) -> dict:
    """KEY=VALUE options; a comma-separated value is a tuple (``widths=8,16``), true/false are bools."""
    from harcore.nas.cli import parse_options

    def conv(v):
        if isinstance(v, str) and "," in v:
            return tuple(conv(p.strip()) for p in v.split(",") if p.strip())
        if isinstance(v, str):
            for f in (int, float):
                try:
                    return f(v)
                except ValueError:
                    pass
            return {"true": True, "false": False}.get(v.lower(), v)
        return v

    return {k: conv(v) for k, v in parse_options(items, what).items()}


def bench(
    spec_file: Optional[Path] = typer.Argument(None, help="bench spec (.toml or .json, fields of harcore.experiments.BenchSpec); options below override it"),
    models: Optional[str] = typer.Option(None, "--models", help="comma-separated zoo models"),
    datasets: Optional[str] = typer.Option(None, "--datasets", help="comma-separated datasets (default: the built-in one)"),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="comma-separated run seeds"),
    variant: Optional[list[str]] = typer.Option(None, "--variant", metavar="MODEL:NAME[:k=v,...]", help="a model variant (repeatable), e.g. mubiconvlstm:A2:bidirectional=0"),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1),
    out: Path = typer.Option(Path("runs/bench"), "--out", help="results folder (finished runs there are never redone)"),
    parallel: int = typer.Option(1, "--parallel", min=1, help="concurrent runs through Ray (needs harcore[ray])"),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (default: a local Ray)"),
    int8: Optional[bool] = typer.Option(None, "--int8/--no-int8", help="also PTQ each run and measure int8 macro-F1"),
) -> None:
    """Run models x datasets x variants x seeds and write the table (JSON, Markdown, HTML, plots)."""
    from harcore.errors import HarcoreError
    from harcore.experiments import BenchSpec, run_bench

    try:
        base = BenchSpec.load(spec_file).__dict__ if spec_file is not None else {}
        over = {k: v for k, v in {
            "models": models.split(",") if models else None,
            "datasets": datasets.split(",") if datasets else None,
            "seeds": [int(s) for s in seeds.split(",")] if seeds else None,
            "variants": _variants(variant) or None, "epochs": epochs, "int8": int8}.items() if v is not None}
        spec = BenchSpec.from_dict({**base, **over}, where=str(spec_file or "command line"))
        res = run_bench(spec, out, parallel=parallel, address=address, log=typer.echo)
    except (HarcoreError, ValueError, KeyError, TypeError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{len(res['ran'])} run(s) trained, {len(res['skipped'])} already finished; "
               f"wrote {out / 'report.md'}, {out / 'report.html'}, {out / 'results.json'}")


def distill(
    teacher: str = typer.Option("cnn", "--teacher", help="zoo model of the teacher"),
    teacher_option: Optional[list[str]] = typer.Option(None, "--teacher-option", metavar="KEY=VALUE"),
    teacher_checkpoint: Optional[Path] = typer.Option(None, "--teacher-checkpoint", help="a harcore.train checkpoint (best.pt) of a trained teacher; default: train it"),
    student: str = typer.Option("cnn_student", "--student", help="zoo model of the student (sftnas with --student-option arch=... for a searched one)"),
    student_option: Optional[list[str]] = typer.Option(None, "--student-option", metavar="KEY=VALUE"),
    dataset: str = typer.Option("default", "--dataset"),
    data_dir: Optional[Path] = typer.Option(None, "--data-dir"),
    dataset_option: Optional[list[str]] = typer.Option(None, "--dataset-option", metavar="KEY=VALUE"),
    alpha: Optional[float] = typer.Option(None, "--alpha", min=0.0, max=1.0, help="KD weight of the KL term (default harcore.train.DEFAULT_KD_ALPHA)"),
    temperature: Optional[float] = typer.Option(None, "--temperature", min=1e-6, help="KD temperature (default harcore.train.DEFAULT_KD_TEMPERATURE)"),
    teacher_epochs: int = typer.Option(20, "--teacher-epochs", min=1),
    epochs: int = typer.Option(20, "--epochs", min=1),
    patience: int = typer.Option(5, "--patience", min=0, help="early-stopping patience (0: none)"),
    seed: int = typer.Option(0, "--seed"),
    threads: Optional[int] = typer.Option(None, "--threads", min=1),
    int8: bool = typer.Option(True, "--int8/--no-int8", help="quantize the student and measure it"),
    out: Path = typer.Option(Path("runs/distill"), "--out"),
) -> None:
    """Teacher -> student with the KD loss (α·T²·KL + (1−α)·CE) -> int8 student."""
    from harcore.errors import HarcoreError
    from harcore.experiments.distill import DistillConfig, check_models, run_distill
    from harcore.nas.cli import parse_options

    cfg = DistillConfig(
        teacher=teacher, teacher_options=_model_options(teacher_option, "--teacher-option"),
        teacher_checkpoint=str(teacher_checkpoint) if teacher_checkpoint else None, student=student,
        student_options=_model_options(student_option, "--student-option"), dataset=dataset,
        data_dir=str(data_dir) if data_dir else None, dataset_options=parse_options(dataset_option, "--dataset-option"),
        alpha=alpha, temperature=temperature, teacher_epochs=teacher_epochs, epochs=epochs,
        patience=patience or None, seed=seed, threads=threads, int8=int8, out=str(out))
    try:
        check_models(cfg)
        run_distill(cfg, log=typer.echo)
    except (HarcoreError, ValueError, KeyError, TypeError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"wrote {out / 'distill.json'} and {out / 'summary.md'}")
