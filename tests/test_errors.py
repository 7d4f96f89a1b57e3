"""One exception hierarchy: every error class harcore exposes is the one of harcore.errors, below HarcoreError,
and the C++ core's harcore::GraphError reaches Python as harcore.errors.GraphError."""

from __future__ import annotations

import subprocess
import sys

import pytest

import harcore
from harcore import errors


def test_every_error_derives_from_harcore_error_and_its_builtin():
    builtin = {
        "DataError": ValueError, "GraphError": ValueError, "UnknownModelError": KeyError, "BudgetError": ValueError,
        "QuantError": ValueError, "CheckpointError": ValueError, "RunExistsError": FileExistsError,
        "DeployError": ValueError, "UnsupportedOpError": ValueError, "ToolchainError": RuntimeError,
        "FirmwareError": RuntimeError, "StageError": RuntimeError, "MissingExtraError": ImportError,
    }
    assert set(errors.__all__) == {"HarcoreError", *builtin}
    for name, base in builtin.items():
        cls = getattr(errors, name)
        assert issubclass(cls, errors.HarcoreError) and issubclass(cls, base), name
    assert issubclass(errors.UnknownModelError, ValueError)
    assert issubclass(errors.UnsupportedOpError, errors.DeployError)
    assert not issubclass(errors.HarcoreError, ValueError)


def test_subpackages_raise_the_classes_of_harcore_errors():
    import importlib

    from harcore import data, deploy, models, nas

    # by module path: harcore.nas.derive is shadowed by the function nas.derive
    data_errors, toolchain, writer, derive = (importlib.import_module(f"harcore.{m}") for m in
                                              ("data.errors", "deploy.toolchain", "deploy.writer", "nas.derive"))

    assert data.DataError is data_errors.DataError is errors.DataError
    assert models.UnknownModelError is errors.UnknownModelError
    assert deploy.DeployError is writer.DeployError is errors.DeployError
    assert deploy.UnsupportedOpError is writer.UnsupportedOpError is errors.UnsupportedOpError
    assert deploy.ToolchainError is toolchain.ToolchainError is errors.ToolchainError
    assert deploy.FirmwareError is toolchain.FirmwareError is errors.FirmwareError
    # the deploy budget check and the search's budget check raise one class (two unrelated ones before)
    assert deploy.BudgetError is writer.BudgetError is nas.BudgetError is derive.BudgetError is errors.BudgetError


def test_data_error_names_file_and_line():
    e = errors.DataError("expected 128 columns, found 127", path="a.txt", line=3)
    assert str(e) == "a.txt, line 3: expected 128 columns, found 127"
    assert (e.path, e.line, e.reason) == ("a.txt", 3, "expected 128 columns, found 127")


def test_unknown_model_is_a_harcore_error_listing_the_zoo():
    with pytest.raises(errors.HarcoreError) as ei:
        harcore.create_model("no_such_net", in_channels=9, seq_len=128, num_classes=6)
    assert isinstance(ei.value, KeyError) and isinstance(ei.value, ValueError)
    assert str(ei.value).startswith("unknown model 'no_such_net'; available models: ") and "tinyhar" in str(ei.value)


@pytest.mark.sanitize
def test_bad_graph_raises_graph_error_from_cpp():
    from harcore import _core
    from harcore.graph import Graph, Op

    assert _core.GraphError is errors.GraphError
    g = Graph()
    x = g.input("x", (4, 6))
    g.add_op(Op("linear", "fc", inputs=[x], in_channels=5, out_channels=2), ())
    g.outputs = [1]
    with pytest.raises(errors.GraphError, match=r"^op 1 'fc' \(linear\): field 'in_channels'") as ei:
        _core.validate(g.to_core())
    assert isinstance(ei.value, ValueError) and isinstance(ei.value, errors.HarcoreError)
    # the cost model validates too; a bad row of the batch API is a GraphError as well
    with pytest.raises(errors.GraphError):
        _core.cost(g.to_core())


def test_deploy_budget_error_is_a_harcore_error_and_value_error():
    from harcore.deploy import toolchain, writer

    class Huge:
        arena_size, input_size = 10_000_000, 4

    class QG:  # check_budget reads the graph's cost and the program's sizes; a tiny real model's graph
        graph = harcore.graph.trace(harcore.create_model("mlp_har", in_channels=3, seq_len=32, num_classes=2), (3, 32))

    with pytest.raises(errors.BudgetError, match="does not fit stm32l552") as ei:
        writer.check_budget(QG, Huge, toolchain.BOARDS["stm32l552"], windows=1)
    assert isinstance(ei.value, ValueError) and isinstance(ei.value, errors.HarcoreError)


def test_import_harcore_is_lazy_and_exposes_the_subpackages():
    code = ("import sys, harcore; assert 'torch' not in sys.modules and 'harcore._core' not in sys.modules, "
            "sorted(m for m in sys.modules if m.startswith(('torch', 'harcore'))); "
            "print(harcore.__version__); print(' '.join(dir(harcore)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
    from harcore._version import __version__

    assert out[0] == __version__ == harcore.__version__
    listed = set(out[1].split())
    subpackages = {"models", "data", "cost", "train", "quant", "deploy", "nas", "graph", "errors"}
    assert subpackages | {"create_model", "list_models", "__version__"} <= listed
    assert "zcp" not in listed
    for name in subpackages:
        mod = getattr(harcore, name)
        assert mod.__name__ == f"harcore.{name}"
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        harcore.nope  # noqa: B018


def test_create_model_and_list_models_at_the_top_level():
    assert harcore.list_models() == harcore.models.list_models() == harcore.models.names()
    assert harcore.list_models("tin*") == ["tinierhar", "tinyhar"]
    assert harcore.list_models("*lstm") == ["deepconvlstm", "mubiconvlstm"]
    assert harcore.list_models("nothing*") == []
    net = harcore.create_model("tinyhar", in_channels=9, seq_len=128, num_classes=6)
    ref = harcore.models.create("tinyhar", in_channels=9, seq_len=128, num_classes=6)
    assert type(net) is type(ref)
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in ref.parameters())


def test_cli_models_takes_a_pattern():
    from typer.testing import CliRunner

    from harcore.cli import app

    r = CliRunner().invoke(app, ["models", "tin*"])
    assert r.exit_code == 0 and r.stdout.split() == ["tinierhar", "tinyhar"]
    r = CliRunner().invoke(app, ["models"])
    assert r.exit_code == 0 and r.stdout.split() == harcore.list_models()
    r = CliRunner().invoke(app, ["models", "zzz*"])
    assert r.exit_code == 1 and "no model matches 'zzz*'" in r.output
