"""Nothing silently wrong: bad or suspicious input is a clear error or a warning that says what to do (issue 20).

Each test here failed (or passed silently with a wrong result) before the checks it covers.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

import harcore.data as hd
from harcore import models, quant
from harcore.cost import profile
from harcore.data.dataset import Dataset, Split
from harcore.errors import GraphError, QuantError
from harcore.quant.simulate import quantize_input
from harcore.train import TrainConfig, fit

EXAMPLE = Path(__file__).parent / "data" / "example_custom"


def _cnn(c: int = 3, t: int = 32, k: int = 4, name: str = "cnn") -> nn.Module:
    torch.manual_seed(0)
    return models.create(name, c, t, k).eval()


def _x(n: int, c: int = 3, t: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, c, t)).astype(np.float32)


@pytest.fixture(scope="module")
def qg():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return quant.quantize(_cnn(), _x(128))


# ---- quant.simulate: saturation, NaN, empty batch ----------------------------------------------------------


@pytest.mark.sanitize
@pytest.mark.parametrize("value, want", [(np.inf, 127), (1e20, 127), (3.0e38, 127), (-np.inf, -128),
                                         (-1e20, -128), (-3.0e38, -128)])
def test_simulate_saturates_at_the_right_end(qg, value, want):
    x = _x(3)
    x[1, 2, 5] = value
    q = quantize_input(qg, x)
    assert q[1, 2, 5] == want
    # the rest of the batch is quantized as without the outlier
    clean = quantize_input(qg, _x(3))
    mask = np.ones(q.shape, bool)
    mask[1, 2, 5] = False
    assert np.array_equal(q[mask], clean[mask])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning from an undefined cast
        quant.simulate(qg, x)


def test_simulate_rejects_nan_with_the_window_index(qg):
    x = _x(5)
    x[3, 1, 7] = np.nan
    with pytest.raises(QuantError, match=r"window 3 holds NaN.*\[3, 1, 7\]"):
        quant.simulate(qg, x)


@pytest.mark.sanitize
def test_simulate_empty_batch_gives_empty_results_of_the_right_shape(qg):
    k = qg.graph.tensors[qg.graph.outputs[0]].shape
    y = quant.simulate(qg, _x(0))
    assert y.shape == (0, *k) and y.dtype == np.int8
    y, f, inter = quant.simulate(qg, np.zeros((0, 3, 32), np.int8), dequantize=True, return_intermediates=True)
    assert y.shape == (0, *k) and f.shape == (0, *k)
    assert set(inter) == {op.name for op in qg.graph.ops}
    assert all(v.shape == (0, *qg.graph.tensors[op.output].shape) for op in qg.graph.ops for v in [inter[op.name]])


def test_simulate_says_channels_last(qg):
    with pytest.raises(QuantError, match=r"looks channels-last \(N, T, C\).*transpose\(0, 2, 1\)"):
        quant.simulate(qg, _x(2).transpose(0, 2, 1))


# ---- quantize: calibration data ----------------------------------------------------------------------------


def test_quantize_warns_on_a_tiny_calibration_set():
    with pytest.warns(UserWarning, match=r"1 calibration window.*fewer than 100.*100-500"):
        quant.quantize(_cnn(), _x(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quant.quantize(_cnn(), _x(quant.ptq.MIN_CALIBRATION_WINDOWS))


@pytest.mark.parametrize("edit, pattern", [
    (lambda x: x.__setitem__((7, 0, 3), np.nan), r"NaN at window 7"),
    (lambda x: x.__setitem__((9, 2, 0), -np.inf), r"infinity at window 9"),
    (lambda x: x.__imul__(0.0), r"all zero"),
    (lambda x: x.__setitem__(slice(None), 0.5), r"constant \(every value is 0.5"),
])
def test_quantize_names_the_calibration_problem(edit, pattern):
    x = _x(120)
    edit(x)
    with pytest.raises(QuantError, match=pattern):
        quant.quantize(_cnn(), x)


@pytest.mark.parametrize("name", ["cnn", "cnn_student"])
def test_quantize_says_channels_last(name):
    # cnn_student flattens its input: (N, T, C) windows used to quantize without a word
    with pytest.raises(QuantError, match="looks channels-last"):
        quant.quantize(_cnn(name=name), _x(120).transpose(0, 2, 1))


# ---- cost.profile: the input shape -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["tinyhar", "cnn", "sftnas", "cnn_student"])
def test_profile_names_both_channel_counts(name):
    net = models.create(name, 3, 64, 4)
    with pytest.raises(GraphError, match=r"input_shape has 9 channels.*the model's first layer takes 3"):
        profile(net, (9, 64))
    with pytest.raises(GraphError, match="looks channels-last"):
        profile(net, (64, 3))
    assert profile(net, (3, 64)).total.macs > 0


def test_profile_reads_a_leading_conv1d_of_a_plain_module():
    net = nn.Sequential(nn.Conv1d(6, 8, 3), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 30, 2))
    with pytest.raises(GraphError, match="has 3 channels.*takes 6"):
        profile(net, (3, 32))


# ---- train.fit: layout and class coverage ------------------------------------------------------------------


def _split(n: int, labels, c: int = 3, t: int = 32, seed: int = 0) -> Split:
    y = np.resize(np.asarray(labels, np.int64), n)
    return Split(_x(n, c, t, seed), y, np.zeros(n, np.int64))


_CFG = TrainConfig(epochs=1, batch_size=8, seed=0, progress=False)


def test_fit_says_channels_last():
    # cnn_student flattens its input, so (N, T, C) windows used to train without a word
    tr = _split(16, [0, 1, 2, 3])
    tr.x = np.ascontiguousarray(tr.x.transpose(0, 2, 1))
    with pytest.raises(ValueError, match=r"train.x has windows of shape \(32, 3\).*looks channels-last"):
        fit(_cnn(name="cnn_student"), tr, None, _CFG)


def test_fit_rejects_fewer_training_windows_than_classes():
    with pytest.raises(ValueError, match=r"train: 3 window\(s\) for 4 classes"):
        fit(_cnn(), _split(3, [0, 1, 2]), None, _CFG)


def test_fit_warns_naming_classes_missing_from_validation():
    with pytest.warns(UserWarning, match=r"validation split has no window of 2 of 4 classes: 2, 3"):
        fit(_cnn(), _split(16, [0, 1, 2, 3]), _split(8, [0, 1], seed=1), _CFG)


def test_fit_warns_naming_classes_missing_from_training():
    with pytest.warns(UserWarning, match=r"training split has no window of 1 of 4 classes: 3"):
        fit(_cnn(), _split(16, [0, 1, 2]), None, _CFG)


def test_fit_is_quiet_when_every_class_is_present():
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        fit(_cnn(), _split(16, [0, 1, 2, 3]), _split(8, [3, 2, 1, 0], seed=1), _CFG)


# ---- harcore.data: arrays ----------------------------------------------------------------------------------


def test_from_arrays_says_channels_last_when_channels_are_named():
    x = _x(20, 3, 32).transpose(0, 2, 1)
    with pytest.raises(hd.DataError, match="looks channels-last"):
        hd.from_arrays(x, np.arange(20) % 2, np.arange(20) % 4, ["a", "b"], 32, channels=["ax", "ay", "az"])


def test_from_arrays_warns_on_more_channels_than_samples():
    x = _x(20, 3, 32).transpose(0, 2, 1)
    with pytest.warns(UserWarning, match=r"32 channels of 3 samples.*channels-last"):
        hd.from_arrays(x, np.arange(20) % 2, np.arange(20) % 4, ["a", "b"], 32)


def test_from_arrays_rejects_an_empty_class_name():
    with pytest.raises(hd.DataError, match=r"classes\[1\] is an empty name"):
        hd.from_arrays(_x(8), np.zeros(8, int), np.arange(8), ["walk", " "], 32)


def test_dataset_rejects_windows_that_fit_its_channels_only_transposed():
    ds = hd.from_arrays(_x(40), np.arange(40) % 2, np.arange(40) % 5, ["a", "b"], 32, channels=["x", "y", "z"])
    bad = Split(np.ascontiguousarray(ds.train.x.transpose(0, 2, 1)), ds.train.y, ds.train.subjects)
    with pytest.raises(hd.DataError, match="train.x has windows of shape.*looks channels-last"):
        Dataset(ds.name, bad, ds.val, ds.test, ds.classes, ds.channels, ds.sample_rate, ds.split, ds.norm)


# ---- harcore.data: the custom folder -----------------------------------------------------------------------


def _folder(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    shutil.copytree(EXAMPLE, root)
    return root


def test_the_example_folder_loads():
    ds = hd.from_folder(EXAMPLE)
    assert ds.classes == ["rest", "walk", "run"]
    assert ds.channels == ["acc_x", "acc_y", "acc_z"]
    assert ds.sample_rate == 16.0 and ds.input_shape == (3, 32)
    assert ds.split.protocol == "fixed" and list(ds.split.test) == [3]
    # 4 recordings x 3 segments of 64 samples, windows of 32 every 16: 3 per segment
    assert len(ds.train) + len(ds.test) == 4 * 3 * 3
    assert ds.train.class_counts(3).tolist() == [9, 9, 9] and ds.test.class_counts(3).tolist() == [3, 3, 3]
    assert ds.info["units"] == {"acc_x": "g", "acc_y": "g", "acc_z": "g"}
    raw = hd.from_folder(EXAMPLE, normalize=False)
    # gravity (about 1 g) dominates every window; running shakes more than resting
    norm = np.linalg.norm(raw.train.x.mean(axis=2), axis=1)
    assert np.all((norm > 0.7) & (norm < 1.3))
    sd = raw.train.x.std(axis=2).mean(axis=1)
    assert sd[raw.train.y == 2].min() > sd[raw.train.y == 0].max()


def test_the_example_folder_is_what_its_generator_writes(tmp_path):
    spec = importlib.util.spec_from_file_location("make_example_custom", EXAMPLE.parent / "make_example_custom.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    mod.write(tmp_path / "gen")
    for rel in ("dataset.json", "labels.csv"):
        assert (tmp_path / "gen" / rel).read_text() == (EXAMPLE / rel).read_text()
    for p in sorted((EXAMPLE / "recordings").glob("*.csv")):
        a = np.loadtxt(p, delimiter=",", skiprows=1)
        b = np.loadtxt(tmp_path / "gen" / "recordings" / p.name, delimiter=",", skiprows=1)
        assert a.shape == b.shape and np.abs(a - b).max() <= 0.011  # 2 decimals: a last-digit flip at most
    assert sorted(p.name for p in (tmp_path / "gen" / "recordings").iterdir()) == \
        sorted(p.name for p in (EXAMPLE / "recordings").iterdir())
    assert sum(p.stat().st_size for p in EXAMPLE.rglob("*") if p.is_file()) < 20_000


def test_empty_label_names_file_and_line(tmp_path):
    root = _folder(tmp_path)
    lines = (root / "labels.csv").read_text().splitlines()
    lines[4] = lines[4].rsplit(",", 1)[0] + ", "
    (root / "labels.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(hd.DataError, match=r"labels.csv, line 5: empty label") as e:
        hd.from_folder(root)
    assert e.value.line == 5


def test_empty_class_name_in_dataset_json(tmp_path):
    root = _folder(tmp_path)
    meta = json.loads((root / "dataset.json").read_text())
    meta["classes"] = ["rest", "", "run"]
    (root / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(hd.DataError, match=r"dataset.json: field 'classes' must be a non-empty list of non-empty"):
        hd.from_folder(root)


@pytest.mark.parametrize("content, pattern", [
    (b"", r"s2.csv: empty file: a recording is a header line"),
    (b"acc_x,acc_y,acc_z\n", r"s2.csv: only a header line \('acc_x,acc_y,acc_z'\), no samples"),
    (b"acc_x,acc_y,acc_z", r"s2.csv: only a header line"),
    (b"acc_x,acc_y,acc_z\n\n\n", r"s2.csv: only a header line"),
    (b"acc_x,,acc_z\n0.1,0.2,0.3\n", r"s2.csv, line 1: header 'acc_x,,acc_z' has an empty channel name"),
    (b"acc_x,acc_x,acc_z\n0.1,0.2,0.3\n", r"s2.csv, line 1: header 'acc_x,acc_x,acc_z' names channel\(s\) \['acc_x'\]"),
])
def test_empty_or_header_only_recording(tmp_path, content, pattern):
    root = _folder(tmp_path)
    (root / "recordings" / "s2.csv").write_bytes(content)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy "input contained no data" on the way
        with pytest.raises(hd.DataError, match=pattern):
            hd.from_folder(root)


@pytest.mark.parametrize("field, value, pattern", [
    ("sample_rate", "fast", r"'sample_rate' must be a positive number \(Hz\), got 'fast'"),
    ("sample_rate", 0, r"'sample_rate' must be a positive number"),
    ("window", 2.5, r"'window' must be a positive integer \(samples\)"),
    ("channels", ["acc_x", "acc_x", "acc_z"], r"'channels' names \['acc_x'\] more than once"),
])
def test_dataset_json_fields_are_checked(tmp_path, field, value, pattern):
    root = _folder(tmp_path)
    meta = json.loads((root / "dataset.json").read_text())
    meta[field] = value
    (root / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(hd.DataError, match=pattern):
        hd.from_folder(root)


def test_dataset_json_unknown_field_is_warned(tmp_path):
    root = _folder(tmp_path)
    meta = json.loads((root / "dataset.json").read_text())
    meta["sample_rates"] = 50
    (root / "dataset.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match=r"unknown field\(s\) \['sample_rates'\]"):
        hd.from_folder(root)


def test_a_class_without_windows_is_warned(tmp_path):
    root = _folder(tmp_path)
    meta = json.loads((root / "dataset.json").read_text())
    meta["classes"] = ["rest", "walk", "run", "cycle"]
    (root / "dataset.json").write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match=r"class\(es\) \['cycle'\] have no window"):
        hd.from_folder(root)


def test_not_a_folder(tmp_path):
    with pytest.raises(hd.DataError, match="not a folder"):
        hd.from_folder(tmp_path / "nowhere")


# ---- a searched model with pruned sensors ------------------------------------------------------------------


def _arch(**kw):
    from harcore.nas import Arch

    d = dict(backbone="tinyhar", in_channels=6, seq_len=32, num_classes=4, channels=[0, 2, 5],
             layers=[{"op": "conv", "kernel": 3, "stride": 2, "filters": 4, "kept": [0, 1, 2, 3]},
                     {"op": "identity", "stride": 1}], tail={})
    d.update(kw)
    return Arch(**d)


def test_create_takes_the_arch_a_search_returns():
    arch = _arch()
    a = models.create("sftnas", arch=arch)
    b = models.create("sftnas", 6, 32, 4, arch=arch, backbone="tinyhar")
    c = models.create("sftnas", arch=json.loads(arch.to_json()))  # arch.json
    for net in (a, b, c):
        assert net.gather and net.arch["channels"] == [0, 2, 5] and net.backbone == "tinyhar"
        assert net(torch.zeros(2, 6, 32)).shape == (2, 4)
    assert models.create("sftnas", arch=_arch(backbone="deepconvlstm")).backbone == "deepconvlstm"
    with pytest.raises(ValueError, match=r"in_channels=9 given, but the searched arch was made for in_channels=6"):
        models.create("sftnas", 9, 32, 4, arch=arch)
    with pytest.raises(ValueError, match=r"backbone='deepconvlstm' given, but the searched arch has backbone"):
        models.create("sftnas", arch=arch, backbone="deepconvlstm")


@pytest.mark.sanitize
def test_quantize_a_searched_model_with_pruned_sensors(tmp_path):
    torch.manual_seed(0)
    net = models.create("sftnas", arch=_arch()).eval()
    x = _x(120, 6, 32)
    g = quant.quantize(net, x)
    assert g.meta["input_channels"] == [0, 2, 5] and g.meta["source_in_channels"] == 6
    assert tuple(g.graph.tensors[g.graph.ops[0].output].shape) == (3, 32)
    # the same int8 model as quantizing the kept-sensor network by hand, bit for bit
    ref = quant.quantize(net.without_gather(), x[:, [0, 2, 5]])
    y = quant.simulate(g, x)
    assert np.array_equal(y, quant.simulate(ref, x[:, [0, 2, 5]]))
    assert np.array_equal(y, quant.simulate(g, x[:, [0, 2, 5]]))       # kept sensors only: the same
    assert np.array_equal(quant.simulate(quant.quantize(net, x[:, [0, 2, 5]]), x), y)  # calibrated on kept only
    float_pred = net(torch.from_numpy(x)).argmax(1).numpy()
    assert (quant.simulate(g, x, dequantize=True)[1].argmax(1) == float_pred).mean() > 0.9
    g.save(tmp_path / "m.hq8")
    assert quant.load(tmp_path / "m.hq8").meta["input_channels"] == [0, 2, 5]
    from harcore import deploy

    dep = deploy.deploy(g, tmp_path / "fw", board="qemu-m33", windows=4, x=x, y=np.zeros(len(x), int))
    assert dep.int8_inputs.shape == (4, 3, 32)
    meta = json.loads((tmp_path / "fw" / "deploy.json").read_text())
    assert meta["input_channels"] == [0, 2, 5] and meta["source_in_channels"] == 6
    assert np.array_equal(dep.int8_inputs, quantize_input(g, x[:4, [0, 2, 5]]))
    with pytest.raises(QuantError, match=r"\(N, 6, T\) windows of all sensors or \(N, 3, T\)"):
        quant.quantize(net, _x(120, 4, 32))


def test_qat_of_a_searched_model_with_pruned_sensors():
    torch.manual_seed(0)
    net = models.create("sftnas", arch=_arch())
    x, y = _x(40, 6, 32), np.arange(40) % 4
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = quant.qat(net, (x, y), Split(x[:8], y[:8], np.zeros(8, np.int64)), epochs=1, calib_x=x, batch_size=8)
    assert g.meta["input_channels"] == [0, 2, 5] and g.meta["source_in_channels"] == 6 and g.meta["qat"]
    assert tuple(g.graph.tensors[g.graph.ops[0].output].shape) == (3, 32)
    assert np.array_equal(quant.simulate(g, x), quant.simulate(g, x[:, [0, 2, 5]]))


def test_the_example_folder_trains_and_quantizes():
    ds = hd.from_folder(EXAMPLE)
    torch.manual_seed(0)
    net = models.create("cnn_student", *ds.input_shape, ds.num_classes)
    res = fit(net, ds.train, ds.test, TrainConfig(epochs=10, batch_size=9, lr=1e-2, seed=0, progress=False))
    assert res.best_val_macro_f1 > 0.8  # rest / walk / run differ plainly in the synthetic signals
    net.eval()
    with pytest.warns(UserWarning, match="27 calibration window"):
        g = quant.quantize(net, ds.train.x)
    x = np.concatenate([ds.train.x, ds.test.x])
    with torch.no_grad():
        f = net(torch.from_numpy(x)).argmax(1).numpy()
    agree = (quant.simulate(g, x).argmax(1) == f).mean()
    assert agree >= 0.9


class _SelectThenConv(nn.Module):
    """Takes 9-channel windows and keeps 6 of them before its first conv (as a searched model's sensor mask)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("idx", torch.tensor([0, 1, 2, 6, 7, 8]))
        self.conv = nn.Conv1d(6, 4, 3)
        self.fc = nn.Linear(4 * 30, 2)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x[:, self.idx])).flatten(1))


def test_a_channel_count_read_off_the_first_conv_does_not_reject_a_model_that_selects_channels():
    # the model takes 9 channels although its first conv takes 6: no "has 9 channels" error from a guess
    net = _SelectThenConv()
    p = profile(net, (9, 32))
    assert p.total.params == sum(q.numel() for q in net.parameters())
    from harcore.train._data import check_model_input
    check_model_input(net, (9, 32), "x")
    with pytest.raises(ValueError, match="channels-last"):
        check_model_input(net, (32, 6), "x")
