"""Graph -> graph passes (harcore.graph.passes): BN folding and activation fusion on the traced op graph."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
import torch.nn as nn

from harcore.graph import trace
from harcore.graph.passes import compact, consumers, fold_and_fuse, folded_batchnorms, producers


class _Net(nn.Module):
    """conv-BN-ReLU (folds and fuses), pool-BN-ReLU6 (a standalone BN: depthwise conv, ReLU6 fused into it),
    linear-BN on flat features (folds), then F.relu into that linear."""

    def __init__(self):
        super().__init__()
        self.conv1, self.bn1, self.relu = nn.Conv1d(3, 4, 3), nn.BatchNorm1d(4), nn.ReLU()
        self.pool, self.bn2, self.act = nn.MaxPool1d(2), nn.BatchNorm1d(4), nn.ReLU6()
        self.fc, self.bn3, self.out = nn.Linear(4 * 11, 5), nn.BatchNorm1d(5), nn.Linear(5, 2)

    def forward(self, x):
        y = self.act(self.bn2(self.pool(self.relu(self.bn1(self.conv1(x))))))
        y = self.bn3(self.fc(y.flatten(1)))
        return self.out(torch.relu(y))


def test_fold_and_fuse_rewrites_the_graph_and_says_what_it_did():
    g = trace(_Net(), (3, 24))
    before = g.to_json()
    r = fold_and_fuse(g)
    assert g.to_json() == before  # the input graph is left alone
    assert [(o.kind, o.name) for o in r.graph.ops] == [
        ("input", "input"), ("conv", "conv1"), ("pool", "pool"), ("conv", "bn2"), ("reshape", "flatten"),
        ("linear", "fc"), ("linear", "out")]
    ops = {o.name: o for o in r.graph.ops}
    assert ops["conv1"].bias and ops["fc"].bias  # a folded BN's shift becomes the bias
    dw = ops["bn2"]
    assert (dw.in_channels, dw.out_channels, dw.groups, dw.kernel, dw.bias) == (4, 4, 4, (1, 1), True)
    assert r.folded_bn == {"bn1": "conv1", "bn3": "fc"}
    assert r.standalone_bn == {"bn2"}
    assert r.acts == {"conv1": "relu", "bn2": "relu6", "fc": "relu"}
    assert r.removed_acts == {"relu", "act", "relu_1"}
    # dense tensor ids, each op's inputs written before it, shapes as traced
    assert [o.output for o in r.graph.ops] == list(range(len(r.graph.ops)))
    assert all(t < o.output for o in r.graph.ops for t in o.inputs)
    assert r.graph.tensors[r.graph.outputs[0]].shape == (2,)
    assert folded_batchnorms(g, set(ops)) == {"conv1": "bn1", "fc": "bn3"}


def test_a_bn_that_can_neither_fold_nor_run_as_depthwise_conv_names_the_op():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.bn = nn.Linear(24, 5), nn.BatchNorm1d(5)

        def forward(self, x):  # the BN's input is (5,) per window and two ops read the linear's output
            y = self.fc(x.flatten(1))
            return self.bn(y) + y

    g = trace(Net(), (1, 24))
    with pytest.raises(ValueError, match=r"op 'bn' \(batchnorm\): cannot be folded .* not \(5,\)"):
        fold_and_fuse(g)


def test_consumers_producers_and_compact():
    g = trace(_Net(), (3, 24))
    cons, prod = consumers(g), producers(g)
    assert [o.name for o in cons[1]] == ["bn1"] and prod[1].name == "conv1"
    keep = [o for o in g.ops if o.kind != "activation" or o.act != "relu6"]
    # drop the ReLU6 by hand: its reader now reads the BN
    bn2 = next(o for o in g.ops if o.name == "bn2")
    act = next(o for o in g.ops if o.name == "act")
    keep = [o if act.output not in o.inputs else replace(o, inputs=[bn2.output]) for o in keep]
    c = compact(g, keep, g.outputs)
    assert [o.name for o in c.ops] == [o.name for o in keep]
    assert [o.output for o in c.ops] == list(range(len(keep)))
