"""simulate(g, x, threads=N): windows split over C++ threads give the single-thread outputs bit for bit,
captures included; bad thread counts are a ValueError naming the argument."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harcore import data, models, quant

pytestmark = pytest.mark.sanitize


@pytest.fixture(scope="module")
def graph_and_windows():
    torch.set_num_threads(1)
    ds = data.load("default")
    torch.manual_seed(0)
    net = models.create("tinierhar", in_channels=ds.test.x.shape[1], seq_len=ds.test.x.shape[2], num_classes=6).eval()
    g = quant.quantize(net, ds.train.x[:64])
    return g, ds.test.x[:203]  # not a multiple of the thread counts below


@pytest.mark.parametrize("threads", [2, 3, 8, 500])
def test_threads_give_single_thread_outputs(graph_and_windows, threads):
    g, x = graph_and_windows
    y1, f1, i1 = quant.simulate(g, x, dequantize=True, return_intermediates=True)
    yt, ft, it = quant.simulate(g, x, dequantize=True, return_intermediates=True, threads=threads)
    assert np.array_equal(y1, yt) and np.array_equal(f1, ft)
    assert i1.keys() == it.keys() and all(np.array_equal(i1[k], it[k]) for k in i1)
    assert len(np.unique(y1)) > 10  # real outputs, not a constant


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "4", 1025])
def test_bad_thread_count(graph_and_windows, bad):
    g, x = graph_and_windows
    with pytest.raises(ValueError, match="threads"):
        quant.simulate(g, x[:2], threads=bad)
