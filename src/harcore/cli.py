"""The ``harcore`` command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Hardware-aware search, int8 quantization and firmware for HAR models on microcontrollers.",
)


@app.command()
def profile(
    model: str = typer.Argument(..., help="zoo model name (see `harcore models`)"),
    channels: int = typer.Option(9, "--channels", "-c", help="sensor channels of one window"),
    time: int = typer.Option(128, "--time", "-t", help="samples per window"),
    classes: int = typer.Option(6, "--classes", "-k", help="number of activity classes"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="also write the profile as JSON here"),
) -> None:
    """Per-layer MACs, parameters, int8 flash and peak SRAM of a zoo model."""
    from harcore import cost, models

    try:
        net = models.create(model, in_channels=channels, seq_len=time, num_classes=classes)
    except (KeyError, ValueError, TypeError) as e:
        raise typer.BadParameter(str(e.args[0] if e.args else e), param_hint="MODEL") from None
    p = cost.profile(net, (channels, time))
    typer.echo(f"{model} — input {channels} channels × {time} samples, {classes} classes")
    typer.echo(str(p))
    if json_out is not None:
        json_out.write_text(json.dumps(p.to_dict(), indent=2))
        typer.echo(f"wrote {json_out}")


@app.command("models")
def list_models(
    pattern: str = typer.Argument("*", help="shell-style pattern of the names to list, e.g. 'tin*'"),
) -> None:
    """List the model zoo (the names matching PATTERN)."""
    from harcore import models

    found = models.list_models(pattern)
    if not found:
        typer.echo(f"no model matches {pattern!r}; available models: {', '.join(models.names())}", err=True)
        raise typer.Exit(1)
    for name in found:
        typer.echo(name)


from harcore.data.cli import app as _data  # noqa: E402

app.add_typer(_data, name="data")

from harcore.nas.cli import search as _search  # noqa: E402  (the main job; torch is imported lazily)

app.command("search")(_search)

from harcore.deploy.cli import deploy as _deploy, validate as _validate  # noqa: E402

app.command("deploy")(_deploy)
app.command("validate")(_validate)

from harcore.hpo.cli import hpo as _hpo  # noqa: E402

app.command("hpo")(_hpo)

from harcore.experiments.cli import bench as _bench, distill as _distill  # noqa: E402

app.command("bench")(_bench)
app.command("distill")(_distill)

from harcore.zcp.cli import app as _zcp  # noqa: E402  (zero-cost proxies; torch is imported lazily)

app.add_typer(_zcp, name="zcp")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
