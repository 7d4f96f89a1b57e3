"""The ``harcore`` command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import click
import typer
from typer.core import TyperGroup

#: harcore.models.names(), spelled out so that `harcore models` needs no torch (tests/test_cli_lazy.py holds the two
#: equal).
ZOO_MODELS: tuple[str, ...] = ("attend_discriminate", "cnn", "cnn_student", "deepconvlstm", "mlp_har", "mubiconvlstm",
                               "sftnas", "tinierhar", "tinyhar")

# Subcommands whose packages import torch (or, for `data`, scipy) are registered by name and imported only when
# one of them runs or shows its own help, so that `harcore --help` and `harcore models` start without torch.
# name -> (module, attribute: a command function or a Typer app, the first paragraph of its help as listed by
# `harcore --help`; tests/test_cli_lazy.py holds it to the real command's).
LAZY_COMMANDS: dict[str, tuple[str, str, str]] = {
    "search": ("harcore.nas.cli", "search",
               "The main job: data -> SFTNAS search -> derive -> fine-tune -> int8 -> deploy -> validate -> report."),
    "deploy": ("harcore.deploy.cli", "deploy",
               "Int8 graph -> Cortex-M33 firmware sources (model, harness with test windows, CMakeLists)."),
    "validate": ("harcore.deploy.cli", "validate",
                 "Build the QEMU image, run it, and compare every window with the host int8 simulation."),
    "hpo": ("harcore.hpo.cli", "hpo",
            "Optuna TPE over the training hyperparameters (lr, weight decay, dropout), then the final training."),
    "bench": ("harcore.experiments.cli", "bench",
              "Run models x datasets x variants x seeds and write the table (JSON, Markdown, HTML, plots)."),
    "distill": ("harcore.experiments.cli", "distill",
                "Teacher -> student with the KD loss (α·T²·KL + (1−α)·CE) -> int8 student."),
    "data": ("harcore.data.cli", "app", "Datasets: list them, download an official archive, verify a copy."),
    "zcp": ("harcore.zcp.cli", "app",
            "Zero-cost proxies for HAR: score untrained architectures, run resumable studies."),
}


def load_command(name: str) -> click.Command:
    """The click command of a lazily registered subcommand (imports its module)."""
    import importlib

    module, attr, _ = LAZY_COMMANDS[name]
    obj = importlib.import_module(module).__dict__[attr]
    if isinstance(obj, typer.Typer):
        cmd = typer.main.get_group(obj)
    else:
        sub = typer.Typer(add_completion=False)
        sub.command(name)(obj)
        cmd = typer.main.get_command(sub)  # one command and no callback: the command itself
    cmd.name = name
    return cmd


class _LazyGroup(TyperGroup):
    """The top-level group: the listing (`harcore --help`) shows LAZY_COMMANDS from their names and help texts;
    running one, or asking for its help, loads it."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in LAZY_COMMANDS if n not in self.commands)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands or cmd_name not in LAZY_COMMANDS:
            return super().get_command(ctx, cmd_name)
        return click.Command(cmd_name, help=LAZY_COMMANDS[cmd_name][2])  # for the listing only

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        name, cmd, rest = super().resolve_command(ctx, args)
        if name in LAZY_COMMANDS and name not in self.commands:
            self.commands[name] = cmd = load_command(name)
        return name, cmd, rest


app = typer.Typer(
    cls=_LazyGroup,
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
    import fnmatch

    # harcore.models.list_models(pattern), without importing the zoo (torch) just to print names
    found = [n for n in ZOO_MODELS if fnmatch.fnmatchcase(n, pattern.lower())]
    if not found:
        typer.echo(f"no model matches {pattern!r}; available models: {', '.join(ZOO_MODELS)}", err=True)
        raise typer.Exit(1)
    for name in found:
        typer.echo(name)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
