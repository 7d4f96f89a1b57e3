"""Tests of harcore.train: trainer, distillation, metrics, summaries and robustness.

Synthetic data and small local modules only (no harcore.data / harcore.models).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score
from sklearn.utils.class_weight import compute_class_weight

from harcore.train import (
    Metrics,
    TrainConfig,
    balanced_class_weights,
    distillation_loss,
    evaluate,
    fit,
    load_checkpoint,
    metrics_from_predictions,
    periodic_drop_mask,
    perturb,
    robustness,
    seeds_from_master,
    summarize,
)

torch.set_num_threads(1)

C, T, K = 4, 24, 3


def make_split(n: int, seed: int, noise: float = 0.6, random_labels: bool = False):
    """Class k adds +1 to channel k (k < K): learnable from the channel means."""
    r = np.random.default_rng(seed)
    y = r.integers(0, K, n).astype(np.int64)
    x = (r.standard_normal((n, C, T)) * noise).astype(np.float32)
    x[np.arange(n), y, :] += 1.0
    if random_labels:
        y = r.integers(0, K, n).astype(np.int64)
    return SimpleNamespace(x=x, y=y, subjects=np.zeros(n, dtype=np.int64))


class Net(nn.Module):
    def __init__(self, bn: bool = True, dropout: float = 0.0, width: int = 8, k: int = K):
        super().__init__()
        self.conv = nn.Conv1d(C, width, 3, padding=1)
        self.bn = nn.BatchNorm1d(width) if bn else nn.Identity()
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(width, k)

    def forward(self, x):
        return self.fc(self.drop(torch.relu(self.bn(self.conv(x))).mean(-1)))


def net(seed: int = 0, **kw) -> Net:
    torch.manual_seed(seed)
    return Net(**kw)


def cfg(**kw) -> TrainConfig:
    base = dict(epochs=3, batch_size=32, lr=1e-2, progress=False, early_stopping_patience=None, num_threads=1)
    base.update(kw)
    return TrainConfig(**base)


class FixedPredictor(nn.Module):
    """Outputs one-hot logits of preset predictions, looked up by the window's first value (its index)."""

    def __init__(self, preds, k):
        super().__init__()
        self.register_buffer("table", F.one_hot(torch.as_tensor(preds), k).float() * 5.0)
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return self.table[x[:, 0, 0].round().long()] + 0.0 * self.dummy


def indexed_split(y):
    y = np.asarray(y, dtype=np.int64)
    x = np.zeros((len(y), 2, 3), dtype=np.float32)
    x[:, 0, 0] = np.arange(len(y))
    return SimpleNamespace(x=x, y=y)


def hist_wo_time(history):
    return [{k: v for k, v in h.items() if k != "seconds"} for h in history]


# ---------------------------------------------------------------------------------------------
# training


def test_loss_decreases_and_learns():
    train, val = make_split(240, 1), make_split(90, 2)
    model = net()
    res = fit(model, train, val, cfg(epochs=6))
    losses = [h["loss"] for h in res.history]
    assert len(res.history) == 6 and res.epochs_run == 6
    assert losses[-1] < 0.6 * losses[0]
    assert res.history[-1]["train_macro_f1"] > res.history[0]["train_macro_f1"]
    assert res.best_val_macro_f1 > 0.9
    assert set(res.history[0]) == {"epoch", "loss", "train_macro_f1", "val_macro_f1", "val_accuracy",
                                   "val_loss", "lr", "seconds"}
    # cosine schedule: lr of epoch e is lr * (1 + cos(pi * (e-1) / epochs)) / 2
    lrs = [h["lr"] for h in res.history]
    assert lrs == pytest.approx([1e-2 * (1 + math.cos(math.pi * e / 6)) / 2 for e in range(6)])


def test_early_stopping_and_best_weights_restored():
    # constant predictions (no BatchNorm, lr ~ 0): val macro-F1 never improves after epoch 1
    res = fit(net(bn=False), make_split(64, 1), make_split(40, 2),
              cfg(epochs=20, lr=1e-12, early_stopping_patience=3, progress=True))  # progress: no TTY here
    assert res.stopped_early and res.epochs_run == 4 and res.best_epoch == 1
    # unlearnable validation labels: stops, and the weights of the best epoch are restored
    val = make_split(60, 3, random_labels=True)
    model = net()
    res = fit(model, make_split(120, 1), val, cfg(epochs=40, lr=3e-2, early_stopping_patience=3, schedule="none"))
    vf1 = [h["val_macro_f1"] for h in res.history]
    assert res.stopped_early and res.epochs_run < 40
    assert res.best_epoch == res.epochs_run - 3 < res.epochs_run
    assert res.best_val_macro_f1 == max(vf1) == vf1[res.best_epoch - 1]
    assert all(v <= res.best_val_macro_f1 for v in vf1[res.best_epoch:])
    assert evaluate(model, val).macro_f1 == pytest.approx(res.best_val_macro_f1, abs=1e-12)


def test_plateau_schedule_reduces_lr():
    # OnlyChannel's argmax does not depend on its one weight: val macro-F1 is constant
    res = fit(OnlyChannel(), make_split(64, 1), make_split(40, 2),
              cfg(epochs=5, lr=1e-2, schedule="plateau", plateau_patience=1, plateau_factor=0.5))
    assert len({h["val_macro_f1"] for h in res.history}) == 1
    # best at epoch 1; lr halves once more than `patience` epochs have not improved
    assert [h["lr"] for h in res.history] == pytest.approx([1e-2, 1e-2, 1e-2, 5e-3, 5e-3])


def _first_batch_loss(weights, y, seed=0):
    r = np.random.default_rng(seed)
    x = r.standard_normal((len(y), C, T)).astype(np.float32)
    split = SimpleNamespace(x=x, y=np.asarray(y, dtype=np.int64))
    model = net(bn=False)
    with torch.no_grad():
        logits = model(torch.from_numpy(x))
    res = fit(model, split, None, cfg(epochs=1, batch_size=len(y), lr=1e-12, class_weights=weights))
    return res, logits


def test_class_weights_change_loss_as_expected():
    y = np.array([0] * 12 + [1] * 5 + [2] * 3)
    # balanced == scikit-learn's inverse frequency
    np.testing.assert_allclose(balanced_class_weights(y, K),
                               compute_class_weight("balanced", classes=np.arange(K), y=y))
    np.testing.assert_allclose(balanced_class_weights(np.array([0, 0, 2]), K), [0.5, 0.0, 1.0])
    ce = None
    for weights in (None, [1.0, 1.0, 1.0], [2.0, 1.0, 0.0], "balanced"):
        res, logits = _first_batch_loss(weights, y)
        per = F.cross_entropy(logits, torch.from_numpy(y), reduction="none").numpy().astype(np.float64)
        if weights is None:
            w = np.ones(K)
            assert res.class_weights is None
            ce = res.history[0]["loss"]
        elif weights == "balanced":
            w = compute_class_weight("balanced", classes=np.arange(K), y=y)
            np.testing.assert_allclose(res.class_weights, w)
        else:
            w = np.asarray(weights)
        expected = float((w[y] * per).sum() / w[y].sum())
        assert res.history[0]["loss"] == pytest.approx(expected, rel=1e-5)
    # weighted losses differ from the plain mean on this imbalanced batch
    res, _ = _first_batch_loss([2.0, 1.0, 0.0], y)
    assert abs(res.history[0]["loss"] - ce) > 1e-3


def test_resume_after_kill_is_exact(tmp_path):
    train, val = make_split(100, 1), make_split(40, 2)
    conf = cfg(epochs=4, batch_size=16, schedule="cosine", early_stopping_patience=10)

    straight_model = net(dropout=0.3)
    straight = fit(straight_model, train, val, conf.replace(checkpoint_dir=str(tmp_path / "a")))

    class Killed(Exception):
        pass

    # die in the middle of epoch 3 (after 2 of its optimizer steps): last.pt holds epoch 2
    class Dying(Net):
        calls = 0

        def forward(self, x):
            if self.training:
                Dying.calls += 1
                if Dying.calls == 7 * 2 + 3:
                    raise Killed
            return super().forward(x)

    torch.manual_seed(0)
    dying = Dying(dropout=0.3)
    ck = tmp_path / "b"
    with pytest.raises(Killed):
        fit(dying, train, val, conf.replace(checkpoint_dir=str(ck)))
    assert load_checkpoint(ck / "last.pt")["epoch"] == 2
    assert not [p for p in ck.iterdir() if p.suffix == ".tmp"]

    resumed_model = net(dropout=0.3)  # a fresh process would rebuild the model the same way
    resumed = fit(resumed_model, train, val, conf.replace(checkpoint_dir=str(ck)), resume=True)
    assert resumed.resumed_from_epoch == 2
    assert hist_wo_time(resumed.history) == hist_wo_time(straight.history)
    assert resumed.best_epoch == straight.best_epoch
    for (ka, a), (kb, b) in zip(straight_model.state_dict().items(), resumed_model.state_dict().items()):
        assert ka == kb and torch.equal(a, b), ka
    # the final checkpoints are identical too (model weights of the last epoch)
    la, lb = load_checkpoint(tmp_path / "a" / "last.pt"), load_checkpoint(ck / "last.pt")
    assert all(torch.equal(la["model"][k], lb["model"][k]) for k in la["model"])
    # stopping from the callback, then resuming, gives the same run as well
    ck3 = tmp_path / "c"
    stopped = fit(net(dropout=0.3), train, val, conf.replace(checkpoint_dir=str(ck3)),
                  on_epoch_end=lambda rec: rec["epoch"] == 1)
    assert stopped.epochs_run == 1 and not stopped.stopped_early
    third = fit(net(dropout=0.3), train, val, conf.replace(checkpoint_dir=str(ck3)), resume=True)
    assert hist_wo_time(third.history) == hist_wo_time(straight.history)
    assert all(torch.equal(a, b) for a, b in zip(straight_model.parameters(), third.model.parameters()))
    # resuming a finished run trains no further; resuming with another config is refused
    again = fit(net(dropout=0.3), train, val, conf.replace(checkpoint_dir=str(ck)), resume=True)
    assert again.epochs_run == 4 and len(again.history) == 4
    with pytest.raises(ValueError, match=r"config\.lr"):
        fit(net(dropout=0.3), train, val, conf.replace(checkpoint_dir=str(ck), lr=0.5), resume=True)


def test_resume_refuses_a_damaged_checkpoint_and_another_config_naming_the_file_and_every_field(tmp_path):
    from harcore.errors import CheckpointError
    from harcore.train.trainer import check_resumable

    train = make_split(48, 1)
    conf = cfg(epochs=2, batch_size=16, checkpoint_dir=str(tmp_path))
    fit(net(), train, None, conf)
    assert check_resumable(conf) == 2 and check_resumable(conf.replace(checkpoint_dir=str(tmp_path / "x"))) is None
    last = tmp_path / "last.pt"
    with pytest.raises(CheckpointError) as e:
        fit(net(), train, None, conf.replace(lr=0.5, batch_size=8), resume=True)
    assert "config.lr" in str(e.value) and "config.batch_size" in str(e.value) and str(last) in str(e.value)
    good = last.read_bytes()
    for bad, why in ((good[: len(good) // 3], "damaged or not a harcore checkpoint"), (b"", "is empty"),
                     (bytes(range(256)) * 8, "damaged or not a harcore checkpoint")):
        last.write_bytes(bad)
        with pytest.raises(CheckpointError, match=why) as e:
            fit(net(), train, None, conf, resume=True)
        assert str(last) in str(e.value)
        with pytest.raises(CheckpointError, match=why):
            load_checkpoint(last)


def test_same_seed_same_run_other_seed_differs():
    train = make_split(64, 1)
    a = fit(net(dropout=0.3), train, None, cfg(epochs=2, seed=5))
    b = fit(net(dropout=0.3), train, None, cfg(epochs=2, seed=5))
    c = fit(net(dropout=0.3), train, None, cfg(epochs=2, seed=6))
    assert hist_wo_time(a.history) == hist_wo_time(b.history)
    assert all(torch.equal(p, q) for p, q in zip(a.model.parameters(), b.model.parameters()))
    assert hist_wo_time(a.history) != hist_wo_time(c.history)


# ---------------------------------------------------------------------------------------------
# distillation


def test_distillation_loss_matches_hand_computation_and_grad_flows_to_student_only():
    r = np.random.default_rng(0)
    s_np, t_np = r.standard_normal((5, 4)), r.standard_normal((5, 4)) * 3
    y_np = np.array([0, 3, 1, 1, 2])
    alpha, temp = 0.7, 3.0

    def softmax(z):
        e = np.exp(z - z.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    qs, qt = softmax(s_np / temp), softmax(t_np / temp)
    kl = np.mean(np.sum(qt * (np.log(qt) - np.log(qs)), axis=1))
    ce = np.mean(-np.log(softmax(s_np)[np.arange(5), y_np]))
    expected = alpha * temp**2 * kl + (1 - alpha) * ce

    s = torch.tensor(s_np, requires_grad=True)
    t = torch.tensor(t_np, requires_grad=True)
    loss = distillation_loss(s, t, torch.tensor(y_np), alpha, temp)
    assert loss.item() == pytest.approx(expected, rel=1e-10)
    # same as PyTorch's kl_div(log Q_S, Q_T, "batchmean") form
    ref = alpha * temp**2 * F.kl_div(F.log_softmax(s / temp, 1), F.softmax(t / temp, 1), reduction="batchmean") \
        + (1 - alpha) * F.cross_entropy(s, torch.tensor(y_np))
    assert loss.item() == pytest.approx(ref.item(), rel=1e-10)
    loss.backward()
    assert t.grad is None
    assert s.grad is not None and s.grad.abs().sum() > 0
    # alpha = 0: plain CE; alpha = 1 and identical logits: zero
    assert distillation_loss(s, t, torch.tensor(y_np), 0.0, temp).item() == pytest.approx(ce, rel=1e-10)
    assert distillation_loss(s, s.detach(), torch.tensor(y_np), 1.0, temp).item() == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="alpha"):
        distillation_loss(s, t, torch.tensor(y_np), 1.5, temp)
    with pytest.raises(ValueError, match="teacher_logits"):
        distillation_loss(s, t[:, :3], torch.tensor(y_np), 0.5, temp)


def test_fit_with_teacher_trains_student_only():
    train, val = make_split(120, 1), make_split(60, 2)
    teacher = net(seed=1, width=16)
    fit(teacher, train, val, cfg(epochs=3))
    teacher.zero_grad(set_to_none=True)  # drop the grads left by its own training
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    student = net(seed=2, width=8)
    s0 = [p.detach().clone() for p in student.parameters()]
    res = fit(student, train, val, cfg(epochs=3), teacher=teacher, kd_alpha=0.5, kd_temperature=4.0)
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())  # BN stats too
    assert all(p.grad is None for p in teacher.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(s0, student.parameters()))
    assert res.distillation == {"alpha": 0.5, "temperature": 4.0}
    assert res.best_val_macro_f1 > 0.8
    # the recorded loss of a one-batch epoch (lr ~ 0) is distillation_loss(student(x), teacher(x), y)
    x, y = torch.from_numpy(train.x), torch.from_numpy(train.y)
    teacher.eval()
    for alpha, temp in ((1.0, 2.0), (0.3, 5.0)):
        student = net(seed=3, bn=False)
        with torch.no_grad():
            expected = distillation_loss(student(x), teacher(x), y, alpha, temp).item()
        r = fit(student, train, None, cfg(epochs=1, lr=1e-12, batch_size=len(y)), teacher=teacher,
                kd_alpha=alpha, kd_temperature=temp)
        assert r.history[0]["loss"] == pytest.approx(expected, rel=1e-5)
        assert expected > 0.05


def test_fit_runs_the_teacher_once_per_training_window_not_once_per_epoch():
    """The teacher's logits do not change from epoch to epoch: fit computes them once (batches of 256) and each
    batch's KD term uses that window's row, so the loss is the same as with the teacher run on the batch."""
    train = make_split(600, 1)
    teacher = net(seed=1, width=16).eval()
    seen = []
    teacher.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[0]))
    student = net(seed=2, width=8)
    r = fit(student, train, None, cfg(epochs=3, batch_size=50), teacher=teacher, kd_alpha=0.5, kd_temperature=4.0)
    shape_probe = seen[:-3]  # infer_num_classes looks at the teacher's output size once before training
    assert seen[-3:] == [256, 256, 88] and sum(shape_probe) <= 2, seen
    # one epoch at lr ~ 0 over shuffled batches of 50: the mean of the per-batch losses with the teacher run on
    # each batch, as the trainer did before the cache
    student = net(seed=3, bn=False)
    r = fit(student, train, None, cfg(epochs=1, lr=1e-12, batch_size=50), teacher=teacher, kd_alpha=0.7,
            kd_temperature=3.0)
    x, y = torch.from_numpy(train.x), torch.from_numpy(train.y)
    with torch.no_grad():
        per = [distillation_loss(student(x[i:i + 50]), teacher(x[i:i + 50]), y[i:i + 50], 0.7, 3.0).item() * 50
               for i in range(0, 600, 50)]
    assert r.history[0]["loss"] == pytest.approx(sum(per) / 600, rel=1e-5)


# ---------------------------------------------------------------------------------------------
# metrics and summaries


def test_metrics_equal_sklearn_and_hand_values():
    y_true = [0, 0, 0, 1, 1, 2, 2, 2, 2, 0]
    y_pred = [0, 1, 0, 1, 2, 2, 2, 0, 2, 0]
    m = evaluate(FixedPredictor(y_pred, 4), indexed_split(y_true), batch_size=3)  # 4 outputs, class 3 unused
    assert m.accuracy == pytest.approx(accuracy_score(y_true, y_pred)) == pytest.approx(0.7)
    assert m.macro_f1 == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    assert m.weighted_f1 == pytest.approx(f1_score(y_true, y_pred, average="weighted"))
    np.testing.assert_allclose(m.per_class_f1[:3], f1_score(y_true, y_pred, average=None))
    assert math.isnan(m.per_class_f1[3])
    # hand: class 0 tp=3 fp=1 fn=1 -> 0.75; class 1 tp=1 fp=1 fn=1 -> 0.5; class 2 tp=3 fp=1 fn=1 -> 0.75
    np.testing.assert_allclose(m.per_class_f1[:3], [0.75, 0.5, 0.75])
    assert m.macro_f1 == pytest.approx(2.0 / 3.0)
    expected_cm = np.array([[3, 1, 0, 0], [0, 1, 1, 0], [1, 0, 3, 0], [0, 0, 0, 0]])
    np.testing.assert_array_equal(m.confusion, expected_cm)
    np.testing.assert_array_equal(m.confusion, confusion_matrix(y_true, y_pred, labels=range(4)))
    d = m.to_dict()
    assert d["per_class_f1"][3] is None and d["confusion"] == expected_cm.tolist() and d["num_samples"] == 10
    assert "macro-F1=0.6667" in str(m)
    direct = metrics_from_predictions(y_true, y_pred, 4)
    assert direct.macro_f1 == m.macro_f1 and np.array_equal(direct.confusion, m.confusion)


def test_summarize_mean_and_sample_std():
    runs = []
    for f1, acc in ((0.8, 0.5), (0.9, 0.7), (1.0, 0.6)):
        runs.append(Metrics(accuracy=acc, macro_f1=f1, weighted_f1=f1, per_class_f1=np.array([f1, np.nan]),
                            confusion=np.eye(2, dtype=np.int64), loss=1.0, num_samples=2))
    s = summarize(runs)
    assert s.n == 3
    assert s.mean["macro_f1"] == pytest.approx(0.9) and s.std["macro_f1"] == pytest.approx(0.1)
    assert s.mean["accuracy"] == pytest.approx(0.6) and s.std["accuracy"] == pytest.approx(0.1)
    assert s.std["loss"] == 0.0
    assert s.per_class_f1_mean[0] == pytest.approx(0.9) and s.per_class_f1_std[0] == pytest.approx(0.1)
    assert math.isnan(s.per_class_f1_mean[1])
    assert "0.9000 ± 0.1000" in str(s) and s.format("macro_f1", 2, 100) == "90.00 ± 10.00"
    # dicts (Metrics.to_dict) work too, with extra scalars; n=1 has an undefined sample std
    s2 = summarize([dict(r.to_dict(), int8_f1=v) for r, v in zip(runs, (0.1, 0.2, 0.6))])
    assert s2.mean["int8_f1"] == pytest.approx(0.3) and s2.std["int8_f1"] == pytest.approx(np.std([0.1, 0.2, 0.6], ddof=1))
    assert math.isnan(summarize(runs[:1]).std["macro_f1"])
    with pytest.raises(ValueError, match="runs"):
        summarize([])


def test_seeds_from_master_and_presets():
    assert seeds_from_master(7, 5) == seeds_from_master(7, 5)
    assert len(set(seeds_from_master(7, 5))) == 5 and seeds_from_master(7, 5) != seeds_from_master(8, 5)
    p = TrainConfig.mu_biconvlstm(imbalanced=True)
    assert (p.optimizer, p.schedule, p.epochs, p.early_stopping_patience, p.class_weights) == \
        ("adamw", "cosine", 200, 10, "balanced")
    q = TrainConfig.cnn_distillation()
    assert (q.optimizer, q.lr, q.weight_decay, q.epochs, q.schedule) == ("adam", 5e-4, 1e-3, 20, "cosine")


# ---------------------------------------------------------------------------------------------
# robustness


def test_drop_channels_zeroes_exactly_the_chosen_channels():
    x = np.random.default_rng(0).standard_normal((10, 8, 16)).astype(np.float32) + 3.0
    out, info = perturb(x, "drop_channels", 3, seed=11)
    ch = info["channels"]
    assert len(ch) == 3
    assert np.all(out[:, ch, :] == 0.0)
    rest = [c for c in range(8) if c not in ch]
    np.testing.assert_array_equal(out[:, rest, :], x[:, rest, :])
    again, info2 = perturb(x, "drop_channels", 3, seed=11)
    assert info2["channels"] == ch and np.array_equal(again, out)
    assert len({tuple(perturb(x, "drop_channels", 3, seed=s)[1]["channels"]) for s in range(10)}) > 1
    assert set(perturb(x, "drop_channels", 2, seed=11)[1]["channels"]) <= set(ch)  # nested over levels
    out, info = perturb(x, "drop_channels", [0, 1, 2], seed=0)  # e.g. the accelerometer
    assert info["channels"] == [0, 1, 2] and np.all(out[:, :3] == 0) and np.array_equal(out[:, 3:], x[:, 3:])
    with pytest.raises(ValueError, match="level"):
        perturb(x, "drop_channels", [8], seed=0)


def test_drop_samples_every_fifth_hold_zero_remove_random():
    x = np.random.default_rng(0).standard_normal((6, 3, 20)).astype(np.float32)
    assert np.flatnonzero(periodic_drop_mask(20, 0.2)).tolist() == [4, 9, 14, 19]
    assert np.flatnonzero(periodic_drop_mask(10, 0.5)).tolist() == [1, 3, 5, 7, 9]
    assert periodic_drop_mask(128, 0.2).sum() == 25
    out, info = perturb(x, "drop_samples", 0.2)  # default: periodic, hold
    assert info["dropped_steps"] == [4, 9, 14, 19] and info["fill"] == "hold"
    for t in range(20):
        src = t - 1 if t in (4, 9, 14, 19) else t
        np.testing.assert_array_equal(out[:, :, t], x[:, :, src])
    out, _ = perturb(x, "drop_samples", 0.2, fill="zero")
    assert np.all(out[:, :, [4, 9, 14, 19]] == 0) and np.array_equal(out[:, :, :4], x[:, :, :4])
    out, _ = perturb(x, "drop_samples", 0.2, fill="remove")
    np.testing.assert_array_equal(out, np.delete(x, [4, 9, 14, 19], axis=2))
    # random mode: reproducible, per window, held values come from earlier kept steps
    a, ia = perturb(x, "drop_samples", 0.3, mode="random", seed=3)
    b, _ = perturb(x, "drop_samples", 0.3, mode="random", seed=3)
    assert np.array_equal(a, b) and 0.1 < ia["dropped_fraction"] < 0.5
    dropped = np.all(perturb(x, "drop_samples", 0.3, mode="random", seed=3, fill="zero")[0] == 0, axis=1)
    assert dropped.any() and not np.array_equal(dropped[0], dropped[1])
    assert dropped[:, 0].any()  # some window loses its first sample: held from the first kept one
    for n in range(x.shape[0]):  # reference sample-and-hold, one window at a time
        kept = np.flatnonzero(~dropped[n])
        for t in range(20):
            before = kept[kept <= t]
            src = before[-1] if before.size else kept[0]
            np.testing.assert_array_equal(a[n, :, t], x[n, :, src])
    with pytest.raises(ValueError, match="level"):
        perturb(x, "drop_samples", 1.0)


def test_noise_is_relative_to_channel_std_and_reproducible():
    r = np.random.default_rng(0)
    x = (r.standard_normal((200, 3, 50)) * np.array([1.0, 4.0, 0.25])[None, :, None]).astype(np.float32)
    sigma = x.std(axis=(0, 2))
    o1, info = perturb(x, "noise", 0.5, seed=1)
    o2, _ = perturb(x, "noise", 1.0, seed=1)
    d1 = (o1 - x).astype(np.float64)
    np.testing.assert_allclose(d1.std(axis=(0, 2)), 0.5 * sigma, rtol=0.03)
    np.testing.assert_allclose(info["noise_std"], 0.5 * sigma, rtol=1e-6)
    np.testing.assert_allclose(o2 - x, 2 * d1, rtol=1e-3, atol=1e-4)  # same draw, scaled
    assert np.array_equal(perturb(x, "noise", 0.5, seed=1)[0], o1)
    assert not np.array_equal(perturb(x, "noise", 0.5, seed=2)[0], o1)
    oa, _ = perturb(x, "noise", 0.5, seed=1, relative_to="absolute")
    np.testing.assert_allclose((oa - x).std(axis=(0, 2)), [0.5] * 3, rtol=0.03)
    assert np.array_equal(perturb(x, "noise", 0.0, seed=1)[0], x)


class OnlyChannel(nn.Module):
    """Predicts the class whose channel has the largest mean, reading channels 0..K-1 only."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return self.w * x[:, :K, :].mean(-1) * 10


def test_robustness_report():
    split = make_split(150, 4, noise=0.3)
    model = OnlyChannel()
    rep = robustness(model, split, "drop_channels", [[3], [0, 1, 2]], seed=0)
    assert rep.clean.macro_f1 > 0.95
    assert rep.metrics[0].macro_f1 == rep.clean.macro_f1  # channel 3 is unused by the model
    assert rep.metrics[1].macro_f1 < 0.5 and rep.degradation_percent[1] > 50
    assert rep.degradation_points[0] == 0.0
    rep = robustness(model, split, "noise", [0.2, 3.0], seed=5)
    xp, _ = perturb(split.x, "noise", 3.0, seed=5)
    manual = evaluate(model, SimpleNamespace(x=xp, y=split.y))
    assert rep.metrics[1].macro_f1 == manual.macro_f1
    assert np.array_equal(rep.metrics[1].confusion, manual.confusion)
    assert rep.metrics[1].macro_f1 < rep.metrics[0].macro_f1
    d = rep.to_dict()
    assert d["kind"] == "noise" and [lv["level"] for lv in d["levels"]] == [0.2, 3.0]
    assert "noise" in str(rep)
    with pytest.raises(ValueError, match="kind"):
        robustness(model, split, "blur", [1])


# ---------------------------------------------------------------------------------------------
# bad input


def _bad(**changes):
    s = make_split(20, 0)
    for k, v in changes.items():
        setattr(s, k, v)
    return s


@pytest.mark.parametrize(
    "train, match",
    [
        (lambda: _bad(y=np.zeros(19, dtype=np.int64)), r"train\.y: length 19 does not match"),
        (lambda: _bad(x=np.where(np.arange(C * T).reshape(1, C, T) == 5, np.nan, _bad().x).astype(np.float32)),
         r"train\.x: contains NaN"),
        (lambda: _bad(y=np.full(20, K, dtype=np.int64)), r"train\.y: 20 label\(s\) outside \[0, 3\)"),
        (lambda: _bad(y=np.full(20, -1, dtype=np.int64)), r"train\.y"),
        (lambda: _bad(x=np.zeros((0, C, T), np.float32), y=np.zeros(0, np.int64)), r"train: empty split"),
        (lambda: _bad(x=np.zeros((20, C), np.float32)), r"train\.x: expected shape \(N, C, T\)"),
        (lambda: SimpleNamespace(x=np.zeros((2, C, T), np.float32)), r"train\.y: split has no attribute"),
        (lambda: _bad(num_classes=5), r"train\.num_classes"),
    ],
)
def test_bad_train_input_names_the_field(train, match):
    with pytest.raises(ValueError, match=match):
        fit(net(), train(), None, cfg(epochs=1))


def test_other_errors_name_the_field():
    train = make_split(20, 0)
    with pytest.raises(ValueError, match=r"num_classes: 5 given but the model outputs 3"):
        fit(net(), train, None, cfg(epochs=1), num_classes=5)
    bad_val = make_split(10, 1)
    bad_val.x[2, 1, 3] = np.inf
    with pytest.raises(ValueError, match=r"val\.x: contains NaN or inf in 1 window\(s\), first at index 2"):
        fit(net(), train, bad_val, cfg(epochs=1))
    with pytest.raises(ValueError, match="teacher: outputs 4 logits"):
        fit(net(), train, None, cfg(epochs=1), teacher=net(k=4))
    with pytest.raises(ValueError, match="kd_temperature"):
        fit(net(), train, None, cfg(epochs=1), teacher=net(), kd_temperature=0.0)
    with pytest.raises(ValueError, match=r"TrainConfig\.class_weights: 2 weights for 3 classes"):
        fit(net(), train, None, cfg(epochs=1, class_weights=[1.0, 2.0]))
    with pytest.raises(ValueError, match=r"TrainConfig\.lr"):
        TrainConfig(lr=-1.0)
    with pytest.raises(ValueError, match=r"TrainConfig\.optimizer"):
        TrainConfig(optimizer="sgd")
    with pytest.raises(ValueError, match=r"TrainConfig\.schedule"):
        TrainConfig(schedule="step")
    with pytest.raises(ValueError, match=r"config\.checkpoint_dir"):
        fit(net(), train, None, cfg(epochs=1), resume=True)
    with pytest.raises(ValueError, match=r"split\.y: 20 label"):
        evaluate(net(), _bad(y=np.full(20, 7, dtype=np.int64)))
    with pytest.raises(ValueError, match=r"split\.x: model failed on input of shape"):
        evaluate(net(), SimpleNamespace(x=np.zeros((3, C + 1, T), np.float32), y=np.zeros(3, np.int64)))
