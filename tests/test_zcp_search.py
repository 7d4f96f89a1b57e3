"""Proxy-guided search under a budget: batched C++ costs equal per-model profiles; filter, rank, train top k."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harcore import cost, zcp
from harcore.errors import BudgetError


def _synth():
    from harcore.zcp.study import StudyData

    rng = np.random.default_rng(0)

    def part(n):
        y = rng.integers(0, 3, n)
        return (rng.normal(size=(n, 3, 24)).astype(np.float32) + y[:, None, None]).astype(np.float32), y

    (a, b), (c, d), (e, f) = part(64), part(32), part(32)
    return StudyData("synthetic", a, b, c, d, e, f, 3, ["acc_x", "acc_y", "acc_z"], 50.0)


def test_batched_costs_equal_profiles():
    archs = zcp.sample(6, seed=4) + [zcp.Arch("lstm", (8, 16), (0.1, 0.0)), zcp.Arch("cnn", (8,), (0.1,), (9,)),
                                     zcp.Arch("lstm", (8, 16, 24, 32), (0.1, 0.1, 0.1, 0.0))]
    c = zcp.arch_costs(archs, 3, 100, 6)
    for a, row in zip(archs, c):
        t = cost.profile(zcp.build(a, 3, 100, 6, init="torch").eval(), (3, 100)).total
        assert row.tolist() == [t.macs, t.params, t.peak_sram, t.flash], a.key


def test_within_budget():
    c = np.array([[10, 5, 100, 7], [20, 5, 50, 7], [5, 1, 1, 1]])
    assert zcp.within_budget(c, zcp.Budget(macs=15)).tolist() == [True, False, True]
    assert zcp.within_budget(c, zcp.Budget(peak_sram=60, params=4)).tolist() == [False, False, True]
    assert zcp.within_budget(c, zcp.Budget()).all()


def test_search_filters_ranks_and_trains_top_k():
    torch.set_num_threads(1)
    archs = [zcp.Arch("cnn", (8,), (0.1,), (3,)), zcp.Arch("cnn", (64, 64), (0.1, 0.1), (5, 5)),
             zcp.Arch("lstm", (8, 8), (0.1, 0.0)), zcp.Arch("cnn", (16, 8), (0.2, 0.2), (3, 3))]
    d = _synth()
    c = zcp.arch_costs(archs, 3, 24, 3)
    budget = zcp.Budget(params=int(c[1, 1]) - 1)          # the wide CNN is over budget
    r = zcp.zcp_search(d, budget=budget, proxy="synflow", top_k=2, epochs=1, archs=archs, proxy_batch=16)
    assert r.n_sampled == 4 and r.n_within_budget == 3
    assert 1 not in [x["index"] for x in r.ranked]
    syn = [x["scores"]["synflow"] for x in r.ranked]
    assert syn == sorted(syn, reverse=True)
    assert [t["index"] for t in r.trained] == [x["index"] for x in r.ranked[:2]]
    assert r.best["val_f1"] == max(t["val_f1"] for t in r.trained)
    e = zcp.zcp_search(d, budget=budget, proxy="ensemble", top_k=1, epochs=1, archs=archs, proxy_batch=16)
    assert len(e.trained) == 1 and 0.0 <= e.ranked[0]["rank_score"] <= 1.0
    with pytest.raises(BudgetError, match="fits the budget"):
        zcp.zcp_search(d, budget=zcp.Budget(macs=1), archs=archs, epochs=1)
