"""Several searches, one kept on validation (harcore search --searches N, harcore.nas.selection)."""

from __future__ import annotations

import io
import json

import pytest
import torch
from rich.console import Console

from harcore.nas import selection
from harcore.nas.derive import Arch
from harcore.nas.pipeline import JobConfig, run_job

torch.set_num_threads(1)


def tiny(tmp_path, **kw) -> JobConfig:
    base = dict(backbone="deepconvlstm", filters=4, search_epochs=1, finetune_epochs=1, int8="ptq", searches=2,
                select_epochs=2, out=str(tmp_path / "run"), progress=False)
    base.update(kw)
    return JobConfig(**base)


def quiet() -> Console:
    return Console(file=io.StringIO(), width=200, color_system=None)


def test_search_seeds_are_disjoint_across_job_seeds_and_one_search_is_the_plain_seed():
    assert selection.search_seeds(0, 3) == [0, 1, 2]
    assert selection.search_seeds(1, 3) == [3, 4, 5]
    assert selection.search_seeds(7, 1) == [7]


def test_choose_takes_the_best_fitting_validation_figure_then_the_lower_seed():
    rows = [{"seed": 0, "val_macro_f1": 0.80, "fits": True}, {"seed": 1, "val_macro_f1": 0.95, "fits": False},
            {"seed": 2, "val_macro_f1": 0.85, "fits": True}, {"seed": 3, "val_macro_f1": 0.85, "fits": True}]
    assert selection.choose(rows)["seed"] == 2          # seed 1 is better but over the budget; 2 beats 3 on a tie
    assert selection.choose([dict(r, fits=False) for r in rows])["seed"] == 1  # none fits: the best of all


@pytest.mark.parametrize("kw, field", [(dict(searches=0), "searches"), (dict(searches=2, select_epochs=0), "select_epochs"),
                                       (dict(searches=1, select_epochs=3), "select_epochs"),
                                       (dict(searches=2, method="fixed"), "searches"),
                                       (dict(searches=2, strategy="zcp"), "searches")])
def test_bad_selection_options_name_the_field(kw, field):
    with pytest.raises(ValueError, match=f"JobConfig.{field}"):
        JobConfig(**kw).selection_options()


def test_defaults_one_search_and_the_finetune_epochs_score_the_networks():
    assert JobConfig().selection_options() is None
    assert JobConfig(searches=3, finetune_epochs=17).selection_options() == {"searches": 3, "select_epochs": 17}
    t = JobConfig(searches=3, finetune_epochs=17, preset="paper", train_on="train").select_train_config()
    assert (t.epochs, t.early_stopping_patience, t.checkpoint_dir) == (17, None, None)


@pytest.mark.slow
def test_job_with_two_searches_keeps_the_best_on_validation_and_resume_retrains_nothing(tmp_path):
    cfg = tiny(tmp_path, seed=1)
    res = run_job(cfg, console=quiet())
    st = res.stages
    assert st["search"].status == "ok", st["search"].detail
    for name in ("derive", "finetune", "evaluate", "fit", "report"):
        assert st[name].status == "ok", (name, st[name].detail)
    sel = st["search"].data["selection"]
    rows = sel["searches"]
    assert [r["seed"] for r in rows] == [2, 3] and sel["select_epochs"] == 2
    # the kept search is the best on validation, recomputed here from the stored scores
    stored = {s: json.loads((tmp_path / "run" / "searches" / f"seed{s}" / "select.json").read_text()) for s in (2, 3)}
    for r in rows:
        assert r["val_macro_f1"] == stored[r["seed"]]["val_macro_f1"]
        assert stored[r["seed"]]["key"]["epochs"] == 2 and stored[r["seed"]]["epochs_run"] == 2
        assert stored[r["seed"]]["key"]["arch"] == json.loads(
            (tmp_path / "run" / "searches" / f"seed{r['seed']}" / "arch.json").read_text())
    kept = max(rows, key=lambda r: (r["fits"], r["val_macro_f1"], -r["seed"]))["seed"]
    assert sel["kept_seed"] == kept
    # the job goes on with the kept search's network
    assert json.loads((tmp_path / "run" / "arch.json").read_text()) == stored[kept]["key"]["arch"]
    assert res.arch.to_dict() == stored[kept]["key"]["arch"]
    md = (tmp_path / "run" / "report.md").read_text()
    assert "## Searches (one kept on validation)" in md and f"search seed {kept}" in md
    # each search is its own seeded draw: its checkpoint holds its seed
    for s in (2, 3):
        ck = torch.load(tmp_path / "run" / "searches" / f"seed{s}" / "search_last.pt", weights_only=False)
        assert ck["config"]["seed"] == s
    # a resume reuses both scores (never retrains them) and keeps the same search
    con = quiet()
    res2 = run_job(cfg, resume=True, console=con)
    rows2 = res2.stages["search"].data["selection"]["searches"]
    assert all(r["reused"] for r in rows2), rows2
    assert res2.stages["search"].data["selection"]["kept_seed"] == kept
    assert con.file.getvalue().count("(stored, not retrained)") == 2


def test_a_stored_score_for_another_architecture_is_not_reused(tmp_path):
    """validation_score's key: a select.json written for another network (or recipe) is retrained over."""
    from harcore.nas.derive import smallest_arch
    from harcore.nas.pipeline import load_data
    from harcore.nas.supernet import Supernet

    ds = load_data(JobConfig())  # the built-in data with its validation subjects, as the job splits it
    net = Supernet("deepconvlstm", 9, 128, 6, filters=4)
    arch = smallest_arch("deepconvlstm", 9, 128, 6, net.layout, {})
    tcfg = JobConfig(searches=2, select_epochs=1, finetune_epochs=1, progress=False).select_train_config()
    small = (ds.train.x[:256], ds.train.y[:256])
    r1 = selection.validation_score(arch, small, (ds.val.x, ds.val.y), tcfg, tmp_path, {"macs": 1})
    assert not r1["reused"] and r1["fits"] is False and "macs" in r1["over"]
    assert selection.validation_score(arch, small, (ds.val.x, ds.val.y), tcfg, tmp_path, {"macs": 1})["reused"]
    other = Arch.from_dict(dict(arch.to_dict(), channels=[0, 1, 2]))
    assert not selection.validation_score(other, small, (ds.val.x, ds.val.y), tcfg, tmp_path, {})["reused"]
    (tmp_path / selection.SELECT_FILE).write_text("{damaged")
    assert not selection.validation_score(arch, small, (ds.val.x, ds.val.y), tcfg, tmp_path, {})["reused"]


def test_cli_rejects_select_epochs_without_searches_before_any_work(tmp_path):
    from typer.testing import CliRunner

    from harcore.cli import app

    r = CliRunner().invoke(app, ["search", "--select-epochs", "3", "--out", str(tmp_path / "r")])
    assert r.exit_code == 2 and "select_epochs" in r.output and "--searches" in r.output
    assert not (tmp_path / "r").exists()
