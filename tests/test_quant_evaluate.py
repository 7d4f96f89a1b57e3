"""quant.evaluate: the int8 model's metrics are those of the argmax of its simulated outputs (dequantized or
not), computed here independently with scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, f1_score

from harcore import data, models, quant


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    ds = data.load("default")
    torch.manual_seed(0)
    net = models.create("mubiconvlstm", in_channels=9, seq_len=128, num_classes=6)
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    x, y = torch.from_numpy(ds.train.x[:512]), torch.from_numpy(ds.train.y[:512]).long()
    for _ in range(3):  # a few steps so that the classes differ (an untrained net predicts one class)
        for i in range(0, 512, 64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x[i:i + 64]), y[i:i + 64]).backward()
            opt.step()
    return quant.quantize(net.eval(), ds.train.x[:256]), ds.test


def test_evaluate_is_the_argmax_of_the_simulated_outputs(trained):
    g, test = trained
    m = quant.evaluate(g, test.x, test.y, 6)
    _, yf = quant.simulate(g, test.x, dequantize=True)
    pred = yf.reshape(len(test.y), -1).argmax(1)
    assert len(np.unique(pred)) >= 3
    assert m.accuracy == pytest.approx(accuracy_score(test.y, pred), abs=1e-12)
    assert m.macro_f1 == pytest.approx(f1_score(test.y, pred, average="macro", labels=range(6), zero_division=0),
                                       abs=1e-12)
    assert m.num_samples == len(test.y)


def test_ptq_metrics_is_quantize_then_evaluate(trained):
    _, test = trained
    ds = data.load("default")
    torch.manual_seed(1)
    net = models.create("cnn", in_channels=9, seq_len=128, num_classes=6).eval()
    m, why = quant.ptq_metrics(net, ds.train.x[:256], test.x, test.y, 6)
    ref = quant.evaluate(quant.quantize(net, ds.train.x[:256]), test.x, test.y, 6)
    assert why is None
    assert (m.accuracy, m.macro_f1) == (ref.accuracy, ref.macro_f1)


def test_ptq_metrics_returns_the_reason_when_int8_does_not_cover_the_model(trained):
    _, test = trained

    class Elu(torch.nn.Module):  # ELU has no int8 form in harcore (nor in CMSIS-NN)
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv1d(9, 4, 3)
            self.fc = torch.nn.Linear(4, 6)

        def forward(self, x):
            return self.fc(torch.nn.functional.elu(self.conv(x)).mean(-1))

    m, why = quant.ptq_metrics(Elu(), test.x[:128], test.x, test.y, 6)
    assert m is None
    assert why.startswith("QuantError") and "elu" in why.lower()
