"""The paper's pruning baselines (AutoSlim, PaS) and the fixed layout as methods of the main job (issue 15)."""

from __future__ import annotations

import io
import json

import pytest
import torch

from harcore.errors import BudgetError
from harcore.models.sftnas import BACKBONES
from harcore.nas.baselines import (BaselineConfig, MaskedStage, _one_hot_probs, figures, original_arch, pas_layout,
                                   run_baseline, smallest_original, with_widths)
from harcore.nas.budget import expected_params, tail_param_term, tied_tail
from harcore.nas.derive import cost_space
from harcore.nas.hw_loss import hw_terms
from harcore.nas.pipeline import JobConfig, run_job

torch.set_num_threads(1)


def quiet():
    from rich.console import Console

    return Console(file=io.StringIO(), width=200, color_system=None)


@pytest.fixture(scope="module")
def data():
    from harcore.data import load

    return load("default", val_fraction=0.25)


# the paper's Table II "original" rows: parameters (k), with the widths and tails it names
PAPER_ORIGINAL = [("tinyhar", 64, {"filter_num": 64}, 298.18), ("deepconvlstm", 64, {"lstm_layers": 1, "dropout": 0.5},
                                                                  424.26), ("attend_discriminate", 64, {}, 445.38)]


@pytest.mark.parametrize("backbone,filters,tail,paper_k", PAPER_ORIGINAL)
def test_the_original_layout_has_the_papers_parameter_count(backbone, filters, tail, paper_k):
    fig = figures(original_arch(backbone, 9, 128, 6, filters=filters, tail=tail))
    assert abs(fig["params"] / 1e3 - paper_k) / paper_k < 0.002, fig


@pytest.mark.parametrize("backbone", BACKBONES)
@pytest.mark.parametrize("tie", [False, True])
def test_pas_cost_terms_equal_the_cost_model_for_every_mask(backbone, tie):
    """PaS's penalty sees the derived network's MACs and parameters exactly (any binary mask)."""
    base = original_arch(backbone, 9, 128, 6, filters=6)
    layout = pas_layout(base)
    probs = _one_hot_probs(layout)
    b0 = torch.ones(9, dtype=torch.float64)
    tail_for = (lambda f: tied_tail(backbone, {}, 6, f)) if tie else None
    g = torch.Generator().manual_seed(1)
    for _ in range(3):
        kept = []
        for _l in base.layers:
            m = torch.rand(6, generator=g) > 0.5
            m[int(torch.randint(6, (1,), generator=g))] = True
            kept.append(torch.nonzero(m).reshape(-1).tolist())
        arch = with_widths(base, kept, tie)
        masks = torch.cat([torch.zeros(6, dtype=torch.float64).index_fill_(0, torch.tensor(k), 1.0) for k in kept])
        fig = figures(arch)
        macs = hw_terms(cost_space(layout, arch, 6, tail_for), b0, masks, probs, scale=1.0,
                        mem_limit=float("inf")).macs
        params = expected_params(layout, b0, masks, probs, tail_param_term(arch, 6, tail_for))
        assert round(float(macs)) == fig["macs"]
        assert round(float(params)) == fig["params"]


def test_masked_stage_keeps_the_original_network_and_masks_filters():
    base = original_arch("tinyhar", 9, 64, 6, filters=8)
    net = MaskedStage(base).eval()
    x = torch.randn(4, 9, 64)
    with torch.no_grad():
        full = net(x)
        assert torch.equal(full, net.net(x))  # no masks: the original network
        m = [torch.ones(8) for _ in base.layers]
        m[-1][3:] = 0
        assert not torch.allclose(net(x, m), full)


def test_bad_method_and_missing_target_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown method 'slimnas'; available: sftnas, autoslim, pas, fixed"):
        JobConfig(method="slimnas").resolved_method()
    with pytest.raises(ValueError, match="needs a target to prune to: --macs and/or --params"):
        JobConfig(method="pas").baseline_config()
    with pytest.raises(ValueError, match="'supernet' weights exist only for method sftnas"):
        JobConfig(method="autoslim", macs=10**6, init="supernet").resolved_method()
    from typer.testing import CliRunner

    from harcore.cli import app

    def flat(text: str) -> str:  # the error box wraps and frames the message
        return " ".join(text.replace("│", " ").split())

    r = CliRunner().invoke(app, ["search", "--method", "slimnas", "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "unknown method 'slimnas'" in flat(r.output)
    assert not (tmp_path / "x").exists()
    r = CliRunner().invoke(app, ["search", "--method", "pas", "--out", str(tmp_path / "y")])
    assert r.exit_code == 2 and "--macs and/or --params" in flat(r.output), flat(r.output)


def test_an_infeasible_budget_is_the_same_error_before_any_training(tmp_path):
    floor = figures(smallest_original(original_arch("tinyhar", 9, 128, 6), False))["macs"]
    res = run_job(JobConfig(method="pas", macs=floor - 1, out=str(tmp_path / "r"), progress=False), console=quiet())
    st = res.stages["budget"]
    assert st.status == "failed"
    assert f"impossible budget: --macs {floor - 1:,} MACs is below {floor:,} MACs" in st.detail
    assert "pas can reach (one filter per layer)" in st.detail
    assert res.stages["search"].status == "skipped"
    with pytest.raises(BudgetError):
        from harcore.nas.derive import check_budget

        check_budget(smallest_original(original_arch("tinyhar", 9, 128, 6), False), macs=floor - 1)


def _tiny_job(tmp_path, method, **kw) -> JobConfig:
    base = dict(method=method, filters=8, search_epochs=4, finetune_epochs=1, int8="ptq", sram=None,
                out=str(tmp_path / method), progress=False)
    base.update(kw)
    return JobConfig(**base)


def _check_run(res, target):
    """The run is complete, fits, is within 25 % under its MAC target, and its figures are the cost model's."""
    st = res.stages
    for name in ("budget", "search", "derive", "finetune", "evaluate", "fit", "int8", "report"):
        assert st[name].status == "ok", (name, st[name].detail)
    total = st["derive"].data["total"]
    assert 0.75 * target <= total["macs"] <= target, total
    fig = figures(res.arch)
    assert (fig["macs"], fig["params"]) == (total["macs"], total["params"])
    from harcore.cost import profile
    from harcore.models import sftnas

    net = sftnas.load(res.run_dir / "model.pt")  # the saved network is the derived one
    p = profile(net, (res.arch.in_channels, res.arch.seq_len)).total
    assert (p.macs, p.params) == (fig["macs"], fig["params"])
    assert json.loads((res.run_dir / "arch.json").read_text())["layers"] == res.arch.layers
    assert (res.run_dir / "report.md").exists() and (res.run_dir / "model.hq8").exists()
    kept = [l["filters"] for l in res.arch.layers]
    assert all(1 <= k <= 8 for k in kept) and sum(kept) < 32  # filters were pruned
    assert res.arch.channels == list(range(9))                # baselines never prune sensors


def test_pas_runs_end_to_end_and_lands_under_its_mac_target(tmp_path):
    full = figures(original_arch("tinyhar", 9, 128, 6, filters=8))["macs"]
    target = int(0.6 * full)
    res = run_job(_tiny_job(tmp_path, "pas", macs=target, search_epochs=8, baseline={"lr_v": 0.02}), console=quiet())
    _check_run(res, target)
    hist = res.stages["search"].data["history"]
    assert len(hist) == 8 and all("filters_kept" in h for h in hist)


def test_autoslim_runs_end_to_end_and_slims_to_its_target_greedily(tmp_path):
    full = figures(original_arch("tinyhar", 9, 128, 6, filters=8))["macs"]
    target = int(0.6 * full)
    res = run_job(_tiny_job(tmp_path, "autoslim", macs=target, search_epochs=1, baseline={"slim_step": 2}),
                  console=quiet())
    _check_run(res, target)
    steps = json.loads((res.run_dir / "slimming.json").read_text())
    assert steps and steps[-1]["macs"] <= target < (steps[-2]["macs"] if len(steps) > 1 else full)
    assert [l["filters"] for l in res.arch.layers] == steps[-1]["widths"]
    assert "## Greedy slimming" in (res.run_dir / "report.md").read_text()
    # every step removed one group (2 filters) from one layer: a greedy path from the full width
    prev = [8, 8, 8, 8]
    for s in steps:
        diff = [a - b for a, b in zip(prev, s["widths"])]
        assert sorted(diff) == [0, 0, 0, 2] or sorted(diff) == [0, 0, 0, 1], diff
        prev = s["widths"]


def test_a_parameter_target_with_tied_tails(tmp_path, data):
    base = original_arch("tinyhar", 9, 128, 6, filters=8, tail={"filter_num": 8})
    target = int(0.5 * figures(base)["params"])
    cfg = BaselineConfig(method="pas", params=target, tie_tail=True, filters=8, tail={"filter_num": 8}, epochs=8,
                         batch_size=64, lr_w=2e-3, lr_v=0.02, progress=False, sram=None)
    r = run_baseline(data.train, data.val, cfg)
    fig = figures(r.arch)
    assert fig["params"] <= target
    assert r.arch.tail["filter_num"] == max(1, round(8 * r.arch.layers[-1]["filters"] / 8))


def test_a_baseline_resumes_where_it_stopped(tmp_path, data):
    kw = dict(method="pas", macs=10**6, filters=6, epochs=2, batch_size=128, lr_w=2e-3, progress=False, sram=None)
    straight = run_baseline(data.train, data.val, BaselineConfig(**kw))
    run = tmp_path / "r"
    run.mkdir()
    first = run_baseline(data.train, data.val, BaselineConfig(**kw), run_dir=run, on_epoch_end=lambda rec: True)
    assert first.epochs_run == 1
    again = run_baseline(data.train, data.val, BaselineConfig(**kw), run_dir=run, resume=True)
    assert again.resumed_from_epoch == 1 and again.epochs_run == 2
    key = ("val_macro_f1", "macs", "filters_kept")
    assert [[h[k] for k in key] for h in again.history] == [[h[k] for k in key] for h in straight.history]
    from harcore.errors import CheckpointError

    with pytest.raises(CheckpointError, match="penalty"):
        run_baseline(data.train, data.val, BaselineConfig(**{**kw, "penalty": 1.0}), run_dir=run, resume=True)


def test_fixed_method_trains_the_original_layout(tmp_path):
    res = run_job(JobConfig(method="fixed", filters=4, finetune_epochs=1, int8="ptq", out=str(tmp_path / "f"),
                            progress=False), console=quiet())
    assert res.stages["search"].status == "ok" and "no search" in res.stages["search"].detail
    assert [(l["kernel"], l["stride"], l["filters"]) for l in res.arch.layers] == [(5, 1, 4), (5, 2, 4), (5, 1, 4),
                                                                                  (5, 2, 4)]
    assert res.stages["evaluate"].status == "ok"
