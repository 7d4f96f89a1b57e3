"""harcore.data building blocks on synthetic signals: filters, resampling, windows, normalization,
class weights, protocols, from_arrays, downloads (file:// only; never the network)."""

import hashlib

import numpy as np
import pytest

from harcore import data as hd
from harcore.data import DataError


# ---------------------------------------------------------------- filters and resampling

def test_lowpass_passes_low_and_cuts_high_frequencies():
    fs = 50.0
    t = np.arange(5000) / fs
    slow, fast = np.sin(2 * np.pi * 2 * t), np.sin(2 * np.pi * 23 * t)
    out = hd.lowpass(slow + fast, 20.0, fs, order=3)
    core = slice(500, -500)
    assert np.abs(out[core] - slow[core]).max() < 0.35  # 23 Hz is only just above 20 Hz
    assert np.std(out[core] - slow[core]) < 0.2
    assert np.abs(hd.lowpass(slow, 20.0, fs)[core] - slow[core]).max() < 1e-3


def test_highpass_and_cutoff_validation():
    fs = 50.0
    t = np.arange(5000) / fs
    x = 1.0 + np.sin(2 * np.pi * 5 * t)
    hp = hd.highpass(x, 0.3, fs)
    assert abs(hp[500:-500].mean()) < 1e-3
    with pytest.raises(ValueError, match="Nyquist"):
        hd.lowpass(x, 25.0, fs)
    with pytest.raises(ValueError, match="Nyquist"):
        hd.lowpass(x, 0.0, fs)


def test_median_filter_removes_single_spikes():
    x = np.zeros((2, 50))
    x[0, 10] = 100.0
    x[1, 30] = -7.0
    assert np.abs(hd.median_filter(x, 3)).max() == 0.0


def test_uci_pipeline_separates_gravity_and_keeps_channel_order():
    fs = 50.0
    t = np.arange(3000) / fs
    grav = np.array([0.2, -0.3, 0.93])[:, None] * np.ones_like(t)
    body = 0.1 * np.sin(2 * np.pi * 2.0 * t)[None, :] * np.array([1.0, 0.5, 0.25])[:, None]
    gyro = 0.4 * np.cos(2 * np.pi * 1.0 * t)[None, :] * np.ones((3, 1))
    out = hd.uci_har_pipeline(grav + body, gyro, fs)
    assert out.shape == (9, t.size)
    core = slice(500, -500)
    assert hd.UCI_CHANNELS[:3] == ("body_acc_x", "body_acc_y", "body_acc_z")
    np.testing.assert_allclose(out[0:3, core], body[:, core], atol=0.01)           # body_acc
    np.testing.assert_allclose(out[3:6, core], gyro[:, core], atol=0.01)           # body_gyro
    np.testing.assert_allclose(out[6:9, core], (grav + body)[:, core], atol=0.01)  # total_acc
    np.testing.assert_allclose(out[6:9] - out[0:3], np.broadcast_to(grav, out[6:9].shape)[:, :], atol=0.02,
                               err_msg="gravity = total - body")


def test_resample_keeps_frequency_and_length():
    fs0, fs1 = 64.0, 50.0
    t0 = np.arange(6400) / fs0
    x = np.sin(2 * np.pi * 3 * t0)[None, :]
    y = hd.resample(x, fs0, fs1)
    assert y.shape == (1, 5000)
    t1 = np.arange(5000) / fs1
    np.testing.assert_allclose(y[0, 200:-200], np.sin(2 * np.pi * 3 * t1)[200:-200], atol=2e-3)
    assert hd.resample(x, 50, 50).shape == x.shape
    with pytest.raises(ValueError):
        hd.resample(x, 0, 50)


# ---------------------------------------------------------------- windows

def test_segment_windows_count_rule_and_labels():
    x = np.arange(2 * 1000, dtype=np.float32).reshape(2, 1000)
    segs = [(0, 300, 0), (300, 427, 1), (427, 1000, 2)]  # 300 -> 3 windows, 127 -> 0, 573 -> floor(445/64)+1 = 7
    sw = hd.segment_windows(x, segs, 128, 64)
    assert sw.x.shape == (3 + 0 + 7, 2, 128)
    assert sw.short_segments == 1
    assert sw.y.tolist() == [0] * 3 + [2] * 7
    assert sw.start[:3].tolist() == [0, 64, 128] and sw.start[3] == 427
    np.testing.assert_array_equal(sw.x[3, 1], x[1, 427:555])
    with pytest.raises(ValueError, match="outside"):
        hd.segment_windows(x, [(900, 1100, 0)], 128, 64)


def test_majority_rule_ties_go_to_the_smallest_label_and_excluded_windows_are_counted():
    x = np.zeros((1, 8), np.float32)
    labels = np.array([1, 1, 0, 0, 2, 2, 2, -1])
    mw = hd.majority_windows(x, labels, 4, 2)
    # windows [0:4] tie 1/0 -> 0; [2:6] 0,0,2,2 tie -> 0; [4:8] contains an excluded sample
    assert mw.y.tolist() == [0, 0]
    assert mw.skipped_excluded == 1
    assert hd.sliding_windows(np.zeros((3, 10)), 4, 3).shape == (3, 3, 4)


# ---------------------------------------------------------------- normalization, weights

def test_znorm_fit_apply_invert_and_constant_channel():
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, (50, 3, 20)).astype(np.float32)
    x[:, 2] = 5.0
    z = hd.ZNorm.fit(x)
    assert z.constant_channels == (2,)
    y = z.apply(x)
    np.testing.assert_allclose(y[:, :2].mean(axis=(0, 2)), 0, atol=1e-5)
    np.testing.assert_allclose(y[:, :2].std(axis=(0, 2)), 1, atol=1e-4)
    assert np.all(y[:, 2] == 0)
    np.testing.assert_allclose(z.invert(y), x, atol=1e-4)


def test_class_weights_match_sklearn_balanced_formula():
    y = np.array([0, 0, 0, 1, 2, 2])
    # sklearn: n_samples / (n_classes * bincount) = 6 / (3 * [3, 1, 2])
    np.testing.assert_allclose(hd.class_weights(y, 3), [6 / 9, 6 / 3, 6 / 6])
    with pytest.raises(DataError, match="no samples"):
        hd.class_weights(y, 4)
    with pytest.raises(DataError, match="labels must lie"):
        hd.class_weights(np.array([0, 5]), 3)


# ---------------------------------------------------------------- protocols

UCI_TEST = (2, 4, 9, 10, 12, 13, 18, 20, 24)


def test_fixed_protocol_with_seeded_validation_subjects():
    sp = hd.split_subjects(range(1, 31), "fixed", test_subjects=UCI_TEST, val_fraction=0.2, seed=0)
    assert sp.test == UCI_TEST
    assert sp.val == (8, 17, 21, 25)  # the HAPT baselines' validation subjects (rng.choice, seed 0)
    assert len(sp.train) == 17 and not set(sp.train) & set(sp.val)
    sp2 = hd.split_subjects(range(1, 31), "fixed", test_subjects=UCI_TEST, val_subjects=[1, 3])
    assert sp2.val == (1, 3) and 1 not in sp2.train
    with pytest.raises(ValueError, match="not training subjects"):
        hd.split_subjects(range(1, 31), "fixed", test_subjects=UCI_TEST, val_subjects=[2])
    with pytest.raises(ValueError, match="no fixed"):
        hd.split_subjects(range(1, 31), "fixed")


def test_random_subjects_and_loso_are_disjoint_and_cover_all_subjects():
    subj = list(range(1, 37))
    sp = hd.split_subjects(subj, "random-subjects", seed=3, fractions=(0.7, 0.1, 0.2))
    parts = [set(sp.train), set(sp.val), set(sp.test)]
    assert sum(map(len, parts)) == 36 and set.union(*parts) == set(subj)
    assert len(sp.test) == 7 and len(sp.val) == 4
    assert sp == hd.split_subjects(subj, "random-subjects", seed=3, fractions=(0.7, 0.1, 0.2))
    assert sp != hd.split_subjects(subj, "random-subjects", seed=4, fractions=(0.7, 0.1, 0.2))
    tests = [hd.split_subjects(subj, "loso", fold=k).test for k in range(36)]
    assert [t[0] for t in tests] == subj
    with pytest.raises(ValueError, match="fold"):
        hd.split_subjects(subj, "loso", fold=36)
    with pytest.raises(ValueError, match="fold"):
        hd.split_subjects(subj, "loso")
    with pytest.raises(ValueError, match="unknown protocol"):
        hd.split_subjects(subj, "kfold-windows")


# ---------------------------------------------------------------- from_arrays

def _arrays(n_subj=6, per=10, c=3, t=16, seed=0):
    rng = np.random.default_rng(seed)
    n = n_subj * per
    x = rng.normal(size=(n, c, t)).astype(np.float32)
    subjects = np.repeat(np.arange(1, n_subj + 1), per)
    y = np.tile(np.arange(per) % 3, n_subj)
    return x, y, subjects


def test_from_arrays_protocols_and_train_only_normalization():
    x, y, s = _arrays()
    x[s == 6] += 100.0  # a test subject far off: must not influence the statistics
    ds = hd.from_arrays(x, y, s, ["a", "b", "c"], 25.0, test_subjects=[6], val_subjects=[5])
    assert set(ds.train.subjects) == {1, 2, 3, 4} and set(ds.val.subjects) == {5} and set(ds.test.subjects) == {6}
    raw_train = x[np.isin(s, [1, 2, 3, 4])]
    np.testing.assert_allclose(ds.norm.mean, raw_train.mean(axis=(0, 2)), rtol=1e-5)
    assert ds.test.x.mean() > 20  # normalized with training statistics, so still far off
    assert ds.train.x.dtype == np.float32 and ds.train.y.dtype == np.int64 and ds.train.subjects.dtype == np.int64
    ds2 = hd.from_arrays(x, np.array(["abc"[v] for v in y]), s, ["a", "b", "c"], 25.0, protocol="loso", fold=2,
                         normalize=False)
    assert set(ds2.test.subjects) == {3} and ds2.val is None and ds2.norm is None
    np.testing.assert_array_equal(ds2.test.x, x[s == 3])


def test_from_arrays_rejects_bad_input():
    x, y, s = _arrays()
    bad = x.copy()
    bad[4, 1, 7] = np.nan
    with pytest.raises(DataError, match=r"x\[4, 1, 7\]"):
        hd.from_arrays(bad, y, s, ["a", "b", "c"], 25.0)
    with pytest.raises(DataError, match="unknown label"):
        hd.from_arrays(x, np.where(np.arange(y.size) == 9, 3, y), s, ["a", "b", "c"], 25.0)
    with pytest.raises(DataError, match=r"y\[0\] = 'z'"):
        hd.from_arrays(x, np.array(["z"] + ["a"] * (y.size - 1)), s, ["a", "b", "c"], 25.0)
    with pytest.raises(DataError, match="disagree"):
        hd.from_arrays(x, y[:-1], s, ["a", "b", "c"], 25.0)
    with pytest.raises(DataError, match="test_subjects"):
        hd.from_arrays(x, y, s, ["a", "b", "c"], 25.0, test_subjects=[99])


# ---------------------------------------------------------------- downloads (no network)

def test_download_refuses_without_a_known_hash(tmp_path):
    # pamap2: harcore knows neither its archive's SHA-256 nor per-file hashes (the refusal comes before any fetch)
    with pytest.raises(DataError, match="refusing an unverified download of 'pamap2'"):
        hd.download("pamap2", tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert all(src.sha256 is None for src in hd.SOURCES.values())  # none invented


def test_download_checks_sha256_on_a_local_file_url(tmp_path):
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"harcore" * 1000)
    good = hashlib.sha256(payload.read_bytes()).hexdigest()
    dest = tmp_path / "cache"
    with pytest.raises(DataError, match="SHA-256 mismatch"):
        hd.download("daphnet", dest, sha256="0" * 64, url=payload.as_uri())
    assert not any(p.name == hd.SOURCES["daphnet"].filename for p in dest.iterdir())
    got = hd.download("daphnet", dest, sha256=good, url=payload.as_uri())
    assert got.read_bytes() == payload.read_bytes()


def test_missing_cache_copy_names_the_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HARCORE_DATA", str(tmp_path))
    assert hd.cache_dir() == tmp_path
    with pytest.raises(DataError, match="no local copy of 'wisdm'"):
        hd.load("wisdm")
