"""BatchNorm re-calibration of one path (harcore.nas.bn_calib)."""

import pytest
import torch
from torch import nn

from harcore.nas.bn_calib import recalibrate_bn


class TwoPaths(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
        self.b = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
        self.drop = nn.Dropout(0.5)

    def forward(self, x, path="a"):
        return self.drop(getattr(self, path)(x))


def test_recalibration_recomputes_the_path_and_leaves_the_rest():
    torch.manual_seed(0)
    m = TwoPaths()
    x = torch.randn(96, 4) * 3 + 1
    for _ in range(20):  # running statistics of other inputs, as a supernet's are
        m(torch.randn(32, 4) * 0.1)
        m(torch.randn(32, 4), "b")
    b_before = {k: v.clone() for k, v in m.b[1].state_dict().items()}
    m.eval()
    rng = torch.get_rng_state()
    idx = torch.arange(96)
    assert recalibrate_bn(m, m, x, idx, 32) == 96
    assert not m.training and m.a[1].momentum == 0.1
    assert torch.equal(torch.get_rng_state(), rng)          # the dropout draws came from a forked stream
    with torch.no_grad():
        h = m.a[0](x)
    # the cumulative average over the three batches of each batch's mean and unbiased variance
    means = torch.stack([h[i:i + 32].mean(0) for i in (0, 32, 64)]).mean(0)
    vars_ = torch.stack([h[i:i + 32].var(0) for i in (0, 32, 64)]).mean(0)
    assert torch.allclose(m.a[1].running_mean, means, atol=1e-5)
    assert torch.allclose(m.a[1].running_var, vars_, atol=1e-4)
    assert int(m.a[1].num_batches_tracked) == 3
    for k, v in m.b[1].state_dict().items():              # off the path: kept
        assert torch.equal(v, b_before[k]), k


def test_a_single_window_is_not_a_batch():
    m = TwoPaths()
    before = m.a[1].running_mean.clone()
    assert recalibrate_bn(m, m, torch.randn(1, 4), torch.arange(1), 32) == 0
    assert torch.equal(m.a[1].running_mean, before)


def test_the_search_validates_on_recalibrated_statistics():
    # the argmax network's BatchNorms hold the calibration windows' statistics after every epoch's validation
    import numpy as np

    from harcore.nas.search import SearchConfig, search

    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 3, 32)).astype(np.float32) * 4 + 2
    y = rng.integers(0, 3, 96)
    r = search((x, y), (x[:32], y[:32]), SearchConfig(backbone="tinyhar", filters=4, epochs=1, batch_size=32,
                                                       bn_calib=64, sram=None, tail={"filter_num": 4},
                                                       progress=False))
    net = r.supernet
    j = int(torch.argmax(net.layer_logits()[0]))
    conv, bn = net.candidates[0][j][0], net.candidates[0][j][1]
    idx = torch.randperm(96, generator=torch.Generator().manual_seed(0 + 2))[:64]   # SearchConfig.seed 0
    xb = torch.as_tensor(x)[idx]
    with torch.no_grad():
        h = conv((xb * net.sensor_dcs.mask()).transpose(1, 2).unsqueeze(1))
    assert int(bn.num_batches_tracked) == 1
    assert torch.allclose(bn.running_mean, h.mean((0, 2, 3)), atol=1e-4)
    with pytest.raises(ValueError, match="SearchConfig.bn_calib"):
        SearchConfig(bn_calib=-1)
