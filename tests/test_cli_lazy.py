"""`harcore --help` and `harcore models` start without torch: the subcommands whose packages import it are loaded
when they run (harcore.cli.LAZY_COMMANDS), and the listing's texts are the real commands'."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harcore import cli

_PROBE = """
import sys
from typer.main import get_command
from harcore.cli import app
try:
    get_command(app).main({args!r}, prog_name="harcore", standalone_mode=False)
except SystemExit:
    pass
print("TORCH" if "torch" in sys.modules else "NO-TORCH")
"""


@pytest.mark.parametrize("args", [["--help"], ["models"], ["models", "tin*"]])
def test_help_and_models_do_not_import_torch(args):
    r = subprocess.run([sys.executable, "-c", _PROBE.format(args=args)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "NO-TORCH", r.stdout[-2000:]
    if args == ["--help"]:
        assert all(name in r.stdout for name in cli.LAZY_COMMANDS)
    if args == ["models", "tin*"]:
        assert r.stdout.split()[:2] == ["tinierhar", "tinyhar"]


def test_a_subcommand_still_loads_what_it_needs():
    """The probe sees torch when it is really needed: a lazy command's own help loads its module."""
    r = subprocess.run([sys.executable, "-c", _PROBE.format(args=["deploy", "--help"])], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "--board" in r.stdout and r.stdout.strip().splitlines()[-1] == "TORCH"


def test_the_static_listing_is_the_real_one():
    from harcore import models

    assert list(cli.ZOO_MODELS) == models.names()
    for name in cli.LAZY_COMMANDS:
        real = cli.load_command(name)
        assert real.name == name
        first = (real.short_help or real.help or "").strip().split("\n\n")[0]
        assert " ".join(first.split()) == cli.LAZY_COMMANDS[name][2], name


def test_lazy_commands_run(tmp_path):
    from typer.testing import CliRunner

    r = CliRunner().invoke(cli.app, ["data", "list"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli.app, ["validate", str(tmp_path / "missing.hq8"), "--windows", "1"])
    assert r.exit_code == 1 and "missing.hq8" in r.output and "not found" in r.output, r.output
