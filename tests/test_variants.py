"""Variants as model options: µBi-ConvLSTM's ablations A0-A4 and width sweep, TinierHAR's component
variants. Each variant's parameter count must equal the cost model's, and each must change what it says."""

from __future__ import annotations

import pytest
import torch

from harcore import cost, models
from harcore.models.mubiconvlstm import ABLATIONS, WIDTHS
from harcore.models.tinierhar import VARIANTS

INPUTS = [(9, 128, 6), (3, 80, 6)]
CASES = ([("mubiconvlstm", k, o) for k, o in ABLATIONS.items()]
         + [("mubiconvlstm", f"w{o['filters']}x{o['lstm_hidden']}", o) for o in WIDTHS]
         + [("tinierhar", k, o) for k, o in VARIANTS.items()])


def _params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.mark.parametrize("shape", INPUTS, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("model,name,opts", CASES, ids=[f"{m}-{n}" for m, n, _ in CASES])
def test_variant_params_equal_the_cost_model(model, name, opts, shape):
    c, t, k = shape
    net = models.create(model, in_channels=c, seq_len=t, num_classes=k, **opts).eval()
    assert net(torch.randn(2, c, t)).shape == (2, k)
    assert cost.profile(net, (c, t)).total.params == _params(net)


def _mubi(**o):
    net = models.create("mubiconvlstm", 9, 128, 6, **o)
    return cost.profile(net, (9, 128)).total, net


def test_mubi_ablations_change_what_they_name():
    base, _ = _mubi()
    assert base.params == 10_454 and base.macs == 420_128  # the paper's Table V figure, unchanged
    a1, _ = _mubi(**ABLATIONS["A1"])
    assert a1.params == base.params and a1.macs > 2.5 * base.macs  # paper: "increases MACs by 3.1x"
    a2, net2 = _mubi(**ABLATIONS["A2"])
    assert not net2.lstm.bidirectional and a2.params < base.params
    a3, net3 = _mubi(**ABLATIONS["A3"])
    assert sum(isinstance(m, torch.nn.Conv1d) for m in net3.modules()) == 1
    _, net4 = _mubi(**ABLATIONS["A4"])
    x = torch.randn(3, 9, 128)
    net4.eval()
    base_net = models.create("mubiconvlstm", 9, 128, 6)
    base_net.load_state_dict(net4.state_dict())
    base_net.eval()
    # Same weights, different aggregation: the logits differ.
    assert not torch.allclose(net4(x), base_net(x))
    big, _ = _mubi(filters=24, lstm_hidden=32)
    assert 18_000 < big.params < 20_500  # paper: "from approximately 10.5K to 19.3K"


def test_bad_variant_options_are_named():
    with pytest.raises(ValueError, match="aggregation"):
        models.create("mubiconvlstm", 9, 128, 6, aggregation="max")
    with pytest.raises(ValueError, match="conv_blocks"):
        models.create("mubiconvlstm", 9, 128, 6, conv_blocks=3)
    with pytest.raises(ValueError, match="rnn"):
        models.create("tinierhar", 9, 128, 6, rnn="transformer")


@pytest.mark.parametrize("model,name,opts", [c for c in CASES if not c[1].startswith("w")],
                         ids=[f"{m}-{n}" for m, n, _ in CASES if not n.startswith("w")])
def test_variant_runs_int8(model, name, opts):
    import numpy as np

    from harcore import quant

    torch.manual_seed(0)
    x = torch.randn(16, 9, 128)
    net = models.create(model, 9, 128, 6, **opts).eval()
    g = quant.quantize(net, x.numpy())
    _, y = quant.simulate(g, x[:4].numpy(), dequantize=True)
    ref = net(x[:4]).detach().numpy()
    assert np.abs(np.asarray(y).reshape(4, -1) - ref).max() < 0.1
