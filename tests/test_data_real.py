"""harcore.data on the real staged archives (unpacked into pytest's temp folder; never the network).

The archives live in ../shared/datasets beside the repository (CI clones it so), or in
$HARCORE_SHARED.
"""

import os
import tarfile
from pathlib import Path

import numpy as np
import pytest

from harcore import data as hd
from harcore.data import DataError
from harcore.data._io import parse_table
from harcore.data.datasets import hapt

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARCORE_SHARED") or REPO.parent / "shared" / "datasets")
HAPT_ARCHIVE = SHARED / "hapt_v2.1_rawdata.tar.xz"
UCI_ARCHIVE = SHARED / "uci_har_v1.0_metadata_only.tar.xz"
DAPHNET_ARCHIVE = SHARED / "daphnet_fog_partial_7of17.tar.xz"
WISDM_ARCHIVE = SHARED / "wisdm_ar_v1.1_transformed_only.tar.xz"

pytestmark = pytest.mark.skipif(not HAPT_ARCHIVE.exists(), reason=f"shared datasets not found at {SHARED}")

UCI_TEST = (2, 4, 9, 10, 12, 13, 18, 20, 24)
# UCI-HAR v1.0's official per-class window counts (WALK, UP, DOWN, SIT, STAND, LAY)
UCI_TRAIN_COUNTS = [1226, 1073, 986, 1286, 1374, 1407]
UCI_TEST_COUNTS = [496, 471, 420, 491, 532, 537]


def _unpack(archive: Path, dest: Path) -> Path:
    with tarfile.open(archive, "r:xz") as tf:
        tf.extractall(dest, filter="data")
    return dest


@pytest.fixture(scope="session")
def hapt_dir(tmp_path_factory) -> Path:
    return _unpack(HAPT_ARCHIVE, tmp_path_factory.mktemp("hapt")) / "HAPT Data Set"


@pytest.fixture(scope="session")
def hapt_uci9(hapt_dir, tmp_path_factory):
    """The HAPT uci9 windows, built once per session and cached as .npz in the temp folder."""
    ws = hd.load_windows("hapt", hapt_dir, variant="uci9")
    cache = tmp_path_factory.mktemp("cache") / "hapt_uci9.npz"
    np.savez(cache, x=ws.x, y=ws.y, subjects=ws.subjects, experiment=ws.info["experiment"], start=ws.info["start"])
    return ws, cache


@pytest.fixture(scope="session")
def uci_meta(tmp_path_factory):
    return hd.uci_har_metadata(_unpack(UCI_ARCHIVE, tmp_path_factory.mktemp("uci")))


# ---------------------------------------------------------------------------- HAPT uci9

def test_hapt_uci9_window_counts_vs_uci_har(hapt_uci9, uci_meta):
    ws, _ = hapt_uci9
    ds = hd.build_dataset(ws, normalize=False)  # fixed protocol
    assert ds.classes == uci_meta.classes
    assert ds.channels == list(hd.UCI_CHANNELS) and ds.sample_rate == 50.0
    assert ds.train.x.shape == (7415, 9, 128) and ds.train.x.dtype == np.float32
    assert len(ds.test) == 2996 and ds.val is None
    train_counts = ds.train.class_counts(6).tolist()
    test_counts = ds.test.class_counts(6).tolist()
    assert uci_meta.y["train"].size == 7352 and uci_meta.y["test"].size == 2947
    assert np.bincount(uci_meta.y["train"]).tolist() == UCI_TRAIN_COUNTS
    assert np.bincount(uci_meta.y["test"]).tolist() == UCI_TEST_COUNTS
    # The dynamic classes match UCI-HAR (but for one DOWN window); HAPT v2.1 relabelled the static
    # segments around the postural transitions, hence the extra SIT/STAND/LAY windows.
    assert np.subtract(train_counts, UCI_TRAIN_COUNTS).tolist() == [0, 0, 1, 7, 49, 6]
    assert np.subtract(test_counts, UCI_TEST_COUNTS).tolist() == [0, 0, 0, 17, 24, 8]
    assert ds.split.test == UCI_TEST and len(ds.split.train) == 21


def test_hapt_fixed_split_is_uci_hars_own(hapt_dir, uci_meta):
    assert tuple(uci_meta.test_subjects) == UCI_TEST == hapt.UCI_TEST_SUBJECTS
    assert len(uci_meta.train_subjects) == 21 and not set(uci_meta.train_subjects) & set(UCI_TEST)
    hapt_test = np.loadtxt(hapt_dir / "Test" / "subject_id_test.txt", dtype=int)
    assert tuple(sorted(set(hapt_test.tolist()))) == UCI_TEST


def test_hapt_uci9_per_subject_dynamic_classes_match_uci_har(hapt_uci9, uci_meta):
    ws, _ = hapt_uci9
    diffs = {}
    for split in ("train", "test"):
        for s in np.unique(uci_meta.subjects[split]):
            ours = np.bincount(ws.y[ws.subjects == s], minlength=6)
            theirs = np.bincount(uci_meta.y[split][uci_meta.subjects[split] == s], minlength=6)
            for c in range(3):
                if ours[c] != theirs[c]:
                    diffs[(int(s), c)] = int(ours[c] - theirs[c])
    assert diffs == {(17, 2): 1}


def test_hapt_channels_are_physical(hapt_uci9):
    ws, _ = hapt_uci9
    gravity = ws.x[:, 6:9] - ws.x[:, 0:3]  # total - body
    g = np.linalg.norm(gravity, axis=1).mean(axis=1)
    static = ws.y >= 3
    assert abs(np.median(g[static]) - 1.0) < 0.05  # the accelerometer reads ~1 g at rest
    assert np.abs(ws.x[static][:, 0:3]).mean() < 0.01  # little body acceleration when static
    assert np.abs(ws.x[ws.y == 0][:, 3:6]).mean() > 5 * np.abs(ws.x[static][:, 3:6]).mean()  # gyro: walking >> static


def test_hapt_no_subject_in_two_splits_for_every_protocol(hapt_uci9):
    ws, _ = hapt_uci9
    for opts in ({}, {"val_fraction": 0.2}, {"protocol": "random-subjects", "seed": 1},
                 {"protocol": "loso", "fold": 4, "val_fraction": 0.1}):
        ds = hd.build_dataset(ws, normalize=False, **opts)
        parts = [set(np.unique(p.subjects).tolist()) for p in (ds.train, ds.val, ds.test) if p is not None]
        for i in range(len(parts)):
            for j in range(i + 1, len(parts)):
                assert not parts[i] & parts[j], opts
        assert sum(len(p) for p in (ds.train, ds.val, ds.test) if p is not None) == ws.y.size
    assert set(hd.build_dataset(ws, protocol="loso", fold=4, normalize=False).test.subjects) == {5}


def test_hapt_normalization_uses_training_subjects_only(hapt_uci9):
    ws, cache = hapt_uci9
    raw = np.load(cache)
    ds = hd.build_dataset(ws, val_fraction=0.2, seed=0)
    assert ds.split.val == (8, 17, 21, 25)
    fit = np.isin(raw["subjects"], ds.split.train)
    expect_mean = raw["x"][fit].astype(np.float64).mean(axis=(0, 2))
    expect_std = raw["x"][fit].astype(np.float64).std(axis=(0, 2))
    np.testing.assert_allclose(ds.norm.mean, expect_mean, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ds.norm.std, expect_std, rtol=1e-6)
    all_mean = raw["x"].astype(np.float64).mean(axis=(0, 2))
    assert np.abs(all_mean - expect_mean).max() > 1e-4  # fitting on all subjects would differ
    np.testing.assert_allclose(ds.train.x.mean(axis=(0, 2)), 0, atol=1e-3)
    w = ds.class_weights()
    counts = np.bincount(ds.train.y, minlength=6)
    np.testing.assert_allclose(w, ds.train.y.size / (6 * counts))


@pytest.mark.slow
def test_hapt_12class_reproduces_hapts_own_window_list(hapt_dir):
    ws = hd.load_windows("hapt", hapt_dir, variant="uci9-12class")
    for split, folder, subj_file in (("train", "Train", "subject_id_train.txt"), ("test", "Test", "subject_id_test.txt")):
        m = ~np.isin(ws.subjects, UCI_TEST) if split == "train" else np.isin(ws.subjects, UCI_TEST)
        y_off = np.loadtxt(hapt_dir / folder / f"y_{split}.txt", dtype=int)
        s_off = np.loadtxt(hapt_dir / folder / subj_file, dtype=int)
        np.testing.assert_array_equal(ws.y[m] + 1, y_off)
        np.testing.assert_array_equal(ws.subjects[m], s_off)
    assert ws.y.size == 7767 + 3162


# ---------------------------------------------------------------------------- HAPT corrupted copies

def _copy(hapt_dir: Path, dest: Path, edits: dict, remove=()) -> Path:
    """A copy of the HAPT folder: symlinks to the real files, except edited (rewritten) or removed ones."""
    for src in hapt_dir.rglob("*"):
        if src.is_dir():
            continue
        rel = src.relative_to(hapt_dir).as_posix()
        if rel in remove:
            continue
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        if rel in edits:
            out.write_bytes(edits[rel](src.read_bytes()))
        else:
            out.symlink_to(src)
    return dest


def _edit_line(lineno, fn):
    def edit(b: bytes) -> bytes:
        lines = b.split(b"\n")
        lines[lineno - 1] = fn(lines[lineno - 1])
        return b"\n".join(lines)
    return edit


ACC1 = "RawData/acc_exp01_user01.txt"


def _last_label_line_of_exp2() -> int:
    """The last labels.txt line of experiment 2 (user 1): extending it cannot overlap another segment."""
    if not HAPT_ARCHIVE.exists():
        return 0
    with tarfile.open(HAPT_ARCHIVE, "r:xz") as tf:
        lines = tf.extractfile("HAPT Data Set/RawData/labels.txt").read().split(b"\n")
    return 1 + max(i for i, l in enumerate(lines) if l.startswith(b"2 1 "))


LAST_EXP2 = _last_label_line_of_exp2()


@pytest.mark.parametrize("edits,remove,msg,file,line", [
    ({ACC1: _edit_line(100, lambda l: l.replace(b" ", b" abc ", 1).rsplit(b" ", 1)[0])}, (),
     "non-numeric value 'abc'", ACC1, 100),
    ({ACC1: _edit_line(200, lambda l: b"nan " + l.split(b" ", 1)[1])}, (), "non-finite", ACC1, 200),
    ({ACC1: _edit_line(300, lambda l: l.rsplit(b" ", 1)[0])}, (), "expected 3 columns, found 2", ACC1, 300),
    ({ACC1: _edit_line(5, lambda l: b"")}, (), "blank line", ACC1, 5),
    ({"RawData/labels.txt": _edit_line(3, lambda l: b"1 1 13 " + l.split(b" ", 3)[3])}, (),
     "unknown activity id 13", "RawData/labels.txt", 3),
    ({}, ("RawData/gyro_exp01_user01.txt",), "gyro_exp01_user01.txt, which is missing", "RawData/labels.txt", 1),
    ({"RawData/labels.txt": _edit_line(2, lambda l: l.rsplit(b" ", 1)[0] + b" 999999")}, (),
     "segment overlaps the one on line 2", "RawData/labels.txt", 3),
    ({"RawData/labels.txt": _edit_line(LAST_EXP2, lambda l: l.rsplit(b" ", 1)[0] + b" 999999")}, (),
     "beyond the recording", "RawData/labels.txt", LAST_EXP2),
])
def test_hapt_corrupted_copies_name_file_and_line(hapt_dir, tmp_path, edits, remove, msg, file, line):
    root = _copy(hapt_dir, tmp_path / "copy", edits, remove)
    with pytest.raises(DataError, match=msg) as e:
        hd.load("hapt", root, subjects=[1])
    assert e.value.path.endswith(file) and e.value.line == line


def test_hapt_truncated_file_mid_line_is_reported_as_truncated(hapt_dir, tmp_path):
    data = (hapt_dir / ACC1).read_bytes()
    cut = data[:200_000]
    root = _copy(hapt_dir, tmp_path / "copy", {ACC1: lambda b: cut})
    with pytest.raises(DataError, match="truncated") as e:
        hd.load("hapt", root, subjects=[1])
    assert e.value.line == cut.count(b"\n") + 1 and e.value.path.endswith(ACC1)


def test_hapt_file_cut_at_a_line_boundary_is_caught(hapt_dir, tmp_path):
    data = (hapt_dir / ACC1).read_bytes()
    lines = data.split(b"\n")
    root = _copy(hapt_dir, tmp_path / "copy", {ACC1: lambda b: b"\n".join(lines[:10_000]) + b"\n"})
    with pytest.raises(DataError, match="acc has 10000 samples but gyro has") as e:
        hd.load("hapt", root, subjects=[1])
    assert "gyro_exp01_user01.txt" in str(e.value)


def test_truncated_archive_is_reported(tmp_path):
    bad = tmp_path / "hapt_cut.tar.xz"
    with open(HAPT_ARCHIVE, "rb") as f:
        bad.write_bytes(f.read(1_000_000))
    with pytest.raises(DataError, match="corrupted or truncated archive") as e:
        hd.load("hapt", bad)
    assert e.value.path == str(bad)


# ---------------------------------------------------------------------------- UCI-HAR metadata

def test_uci_har_metadata_counts(uci_meta):
    assert uci_meta.classes == ["WALKING", "WALKING_UPSTAIRS", "WALKING_DOWNSTAIRS", "SITTING", "STANDING", "LAYING"]
    assert len(uci_meta.features) == 561 and uci_meta.features[0] == "tBodyAcc-mean()-X"
    assert uci_meta.subjects["train"].size == uci_meta.y["train"].size == 7352
    assert uci_meta.subjects["test"].size == uci_meta.y["test"].size == 2947
    assert len(uci_meta.train_subjects) + len(uci_meta.test_subjects) == 30


def test_uci_har_metadata_only_copy_says_what_is_missing():
    with pytest.raises(DataError, match="metadata-only"):
        hd.load("uci-har", UCI_ARCHIVE)
    meta = hd.uci_har_metadata(UCI_ARCHIVE)  # reading the archive itself works too
    assert meta.test_subjects == list(UCI_TEST)


# ---------------------------------------------------------------------------- Daphnet

DAPHNET_ROWS = {"S01R02": 52095, "S02R01": 72561, "S02R02": 89645, "S03R02": 38774, "S03R03": 70269,
                "S06R02": 44227, "S07R02": 50335}


@pytest.fixture(scope="session")
def daphnet_dir(tmp_path_factory):
    return _unpack(DAPHNET_ARCHIVE, tmp_path_factory.mktemp("daphnet")) / "dataset_fog_release"


def test_daphnet_rows_and_windows(daphnet_dir):
    total = 0
    for rec, n in DAPHNET_ROWS.items():
        a = parse_table((daphnet_dir / "dataset" / f"{rec}.txt").read_bytes(), rec, ncols=11)
        assert a.shape[0] == n
        total += n
    assert total == 417_906
    with pytest.warns(UserWarning, match="7 of 17 recordings"):
        ws = hd.load_windows("daphnet", daphnet_dir)
    assert ws.x.shape[1:] == (9, 256) and ws.sample_rate == 64.0 and ws.classes == ["no_freeze", "freeze"]
    assert sorted(set(ws.subjects.tolist())) == [1, 2, 3, 6, 7]
    assert ws.info["missing_recordings"] == ["S01R01", "S03R01", "S04R01", "S05R01", "S05R02", "S06R01", "S07R01",
                                             "S08R01", "S09R01", "S10R01"]
    assert ws.y.size == 5825 and np.bincount(ws.y).tolist() == [5559, 266]
    # S03R03 and S06R02 contain no freeze; subjects 3 and 6 keep freeze windows only from their other runs
    assert not (ws.y[(ws.subjects == 6)] == 1).any()
    # every window lies inside samples annotated 1 or 2, all equal to its label + 1
    a = parse_table((daphnet_dir / "dataset" / "S02R01.txt").read_bytes(), "S02R01", ncols=11)
    m = (ws.subjects == 2) & (ws.info["run"] == 1)
    for st, lab, x in zip(ws.info["start"][m], ws.y[m], ws.x[m]):
        ann = a[st:st + 256, 10]
        assert (ann == lab + 1).all()
        np.testing.assert_array_equal(x, a[st:st + 256, 1:10].T)


def test_daphnet_loso_folds(daphnet_dir):
    with pytest.warns(UserWarning):
        ws = hd.load_windows("daphnet", daphnet_dir, label_rule="majority")
    assert np.bincount(ws.y).tolist() == [5875, 499]
    seen = []
    for k in range(5):
        ds = hd.build_dataset(ws, protocol="loso", fold=k)
        (t,) = set(ds.test.subjects.tolist())
        assert t not in set(ds.train.subjects.tolist())
        seen.append(t)
    assert seen == [1, 2, 3, 6, 7]
    with pytest.raises(ValueError, match="no fixed train/test split"):
        hd.build_dataset(ws, protocol="fixed")


@pytest.mark.parametrize("line_edit,msg", [
    (lambda l: l.rsplit(b" ", 1)[0] + b" 3", "unknown annotation 3"),
    (lambda l: b"15 " + l.split(b" ", 1)[1], "does not increase"),
    (lambda l: l.rsplit(b" ", 1)[0], "expected 11 columns, found 10"),
    (lambda l: l.replace(b" ", b" NaN ", 1).rsplit(b" ", 1)[0], "non-finite"),
])
def test_daphnet_corrupted_copies(daphnet_dir, tmp_path, line_edit, msg):
    dest = tmp_path / "fog" / "dataset"
    dest.mkdir(parents=True)
    data = (daphnet_dir / "dataset" / "S03R02.txt").read_bytes().split(b"\n")
    data[999] = line_edit(data[999])
    (dest / "S03R02.txt").write_bytes(b"\n".join(data))
    with pytest.warns(UserWarning, match="1 of 17"), pytest.raises(DataError, match=msg) as e:
        hd.load("daphnet", tmp_path / "fog")
    assert e.value.path.endswith("S03R02.txt") and e.value.line == 1000


def test_daphnet_from_the_cache_folder(tmp_path, monkeypatch):
    (tmp_path / "daphnet").mkdir()
    (tmp_path / "daphnet" / DAPHNET_ARCHIVE.name).symlink_to(DAPHNET_ARCHIVE)
    monkeypatch.setenv("HARCORE_DATA", str(tmp_path))
    with pytest.warns(UserWarning):
        ds = hd.load("daphnet", subjects=[2, 3], protocol="loso", fold=1)
    assert set(ds.test.subjects.tolist()) == {3} and set(ds.train.subjects.tolist()) == {2}


# ---------------------------------------------------------------------------- WISDM (transformed-only copy)

def test_wisdm_raw_variant_explains_the_missing_file():
    with pytest.raises(DataError, match="transformed-only") as e:
        hd.load("wisdm", WISDM_ARCHIVE)
    assert "variant='transformed'" in str(e.value)


def test_wisdm_transformed_features(tmp_path):
    with pytest.raises(DataError, match="missing value '\\?' for XPEAK") as e:
        hd.load("wisdm", WISDM_ARCHIVE, variant="transformed")
    assert e.value.line == 59
    ds = hd.load("wisdm", WISDM_ARCHIVE, variant="transformed", missing="nan", seed=0)
    n = len(ds.train) + len(ds.val) + len(ds.test)
    assert n == 5418 and ds.sample_rate is None and len(ds.channels) == 43
    counts = sum(s.class_counts(6) for s in (ds.train, ds.val, ds.test))
    assert counts.tolist() == [2081, 1625, 632, 528, 306, 246]
    subj = [set(s.subjects.tolist()) for s in (ds.train, ds.val, ds.test)]
    assert sum(map(len, subj)) == 36 and not (subj[0] & subj[1] or subj[0] & subj[2] or subj[1] & subj[2])
    nan = sum(int(np.isnan(s.x).sum()) for s in (ds.train, ds.val, ds.test))
    assert nan == ds.info["missing_values"] == 615
    assert np.isfinite(ds.norm.mean).all() and np.isfinite(ds.norm.std).all()


def test_wisdm_arff_unknown_label_names_the_line(tmp_path):
    with tarfile.open(WISDM_ARCHIVE, "r:xz") as tf:
        tf.extractall(tmp_path, filter="data")
    arff = tmp_path / "WISDM_ar_v1.1" / "WISDM_ar_v1.1_transformed.arff"
    lines = arff.read_bytes().split(b"\n")
    lines[60] = lines[60].rsplit(b",", 1)[0] + b",Flying\r"
    arff.write_bytes(b"\n".join(lines))
    with pytest.raises(DataError, match="unknown activity 'Flying'") as e:
        hd.load("wisdm", tmp_path, variant="transformed", missing="nan")
    assert e.value.line == 61


# ---------------------------------------------------------------------------- the built-in default dataset

def test_default_dataset_is_small_real_and_split_by_uci_subjects(hapt_uci9):
    path = Path(hd.__file__).parent / "_default" / "hapt_uci9_subset.bin.xz"
    assert path.stat().st_size <= 4 * 1024 * 1024
    notice = (path.parent / "NOTICE.md").read_text()
    assert "CC BY 4.0" in notice and "Reyes-Ortiz" in notice
    ds = hd.load("default")
    assert (len(ds.train), len(ds.test)) == (2016, 864)
    assert ds.split.test == UCI_TEST and ds.channels == list(hd.UCI_CHANNELS)
    assert ds.train.class_counts(6).tolist() == [336] * 6
    raw = hd.load_windows("default")
    ws, _ = hapt_uci9
    key = {(int(e), int(s)): i for i, (e, s) in enumerate(zip(ws.info["experiment"], ws.info["start"]))}
    idx = np.array([key[(int(e), int(s))] for e, s in zip(raw.info["experiment"], raw.info["start"])])
    np.testing.assert_array_equal(raw.y, ws.y[idx])
    np.testing.assert_array_equal(raw.subjects, ws.subjects[idx])
    assert np.abs(raw.x - ws.x[idx]).max() <= 2.0 ** -12 + 1e-6  # half a quantization step


@pytest.mark.slow
def test_default_dataset_build_is_reproducible(tmp_path):
    import subprocess
    import sys
    out = tmp_path / "rebuilt.bin.xz"
    subprocess.run([sys.executable, str(REPO / "tools" / "build_default_dataset.py"), "--archive", str(HAPT_ARCHIVE),
                    "--out", str(out)], check=True, capture_output=True)
    assert out.read_bytes() == (Path(hd.__file__).parent / "_default" / "hapt_uci9_subset.bin.xz").read_bytes()


@pytest.mark.slow
def test_default_dataset_trains_a_small_cnn():
    import torch
    from torch import nn

    torch.manual_seed(0)
    torch.set_num_threads(2)
    ds = hd.load("default")
    net = nn.Sequential(nn.Conv1d(9, 32, 5, padding=2), nn.BatchNorm1d(32), nn.ReLU(),
                        nn.Conv1d(32, 32, 5, padding=2), nn.BatchNorm1d(32), nn.ReLU(),
                        nn.AdaptiveAvgPool1d(1), nn.Flatten(), nn.Linear(32, 6))
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    x, y = torch.from_numpy(ds.train.x), torch.from_numpy(ds.train.y)
    for _ in range(15):
        net.train()
        perm = torch.randperm(len(y))
        for i in range(0, len(y), 64):
            b = perm[i:i + 64]
            opt.zero_grad()
            nn.functional.cross_entropy(net(x[b]), y[b]).backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        acc = (net(torch.from_numpy(ds.test.x)).argmax(1).numpy() == ds.test.y).mean()
    assert acc > 0.8


# ---------------------------------------------------------------------------- per-file content check (git blob SHA-1)

@pytest.mark.parametrize("name,archive,n", [("uci-har", UCI_ARCHIVE, 7), ("daphnet", DAPHNET_ARCHIVE, 7),
                                            ("wisdm", WISDM_ARCHIVE, 1)])
def test_staged_copies_match_the_known_data_files(name, archive, n):
    table = hd.known_files(name)
    assert len(table) == {"uci-har": 27, "daphnet": 17, "wisdm": 2}[name]
    assert len(hd.verify_copy(name, archive, require_all=False)) == n  # every staged data file checks out
    with pytest.raises(DataError, match=rf"{27 - 7 if name == 'uci-har' else len(table) - n} of the {len(table)} "
                                        rf"known {name} data files are missing"):
        hd.verify_copy(name, archive)  # the staged copies are partial


def test_verify_copy_names_a_corrupted_file_and_accepts_crlf(daphnet_dir, tmp_path):
    import shutil

    copy = tmp_path / "fog"
    shutil.copytree(daphnet_dir, copy)
    f = copy / "dataset" / "S02R01.txt"
    f.write_bytes(f.read_bytes().replace(b"\n", b"\r\n"))  # a Windows copy: git's normalisation undoes it
    assert len(hd.verify_copy("daphnet", copy, require_all=False)) == 7
    data = bytearray(f.read_bytes())
    data[5000] = ord("7") if data[5000] != ord("7") else ord("8")
    f.write_bytes(bytes(data))
    with pytest.raises(DataError, match="content differs from the known daphnet file") as e:
        hd.verify_copy("daphnet", copy, require_all=False)
    assert e.value.path.endswith("S02R01.txt")


def test_download_without_sha256_keeps_an_archive_only_if_its_files_check_out(daphnet_dir, tmp_path, monkeypatch):
    """No network: the official zip's layout built from the staged recordings, fetched from a file:// URL."""
    import zipfile

    from harcore.data import remote

    archive = tmp_path / "daphnet.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted((daphnet_dir / "dataset").iterdir()):
            zf.write(p, f"dataset_fog_release/dataset/{p.name}")
    cache = tmp_path / "cache"
    # the full table: ten recordings are missing, so nothing is kept
    with pytest.raises(DataError, match="daphnet.zip: download discarded: 10 of the 17 known daphnet data files are missing"):
        hd.download("daphnet", cache, url=archive.as_uri())
    assert list(cache.iterdir()) == []
    # a table of the seven staged recordings: verified, kept, loadable, and reused without a fetch
    table = {k: v for k, v in hd.known_files("daphnet").items() if Path(k).stem in DAPHNET_ROWS}
    hashes = tmp_path / "hashes"
    hashes.mkdir()
    (hashes / "daphnet.sha1").write_text("".join(f"{v}  {k}\n" for k, v in table.items()))
    monkeypatch.setattr(remote, "HASHES_DIR", hashes)
    got = hd.download("daphnet", cache, url=archive.as_uri())
    assert got == cache / hd.SOURCES["daphnet"].filename and got.read_bytes() == archive.read_bytes()
    assert hd.download("daphnet", cache, url=(tmp_path / "nowhere.zip").as_uri()) == got
    with pytest.warns(UserWarning, match="7 of 17"):
        assert hd.load_windows("daphnet", got).y.size == 5825


def test_hapt_download_without_sha256_is_verified_file_by_file(hapt_dir, tmp_path):
    """HAPT's staged copy is complete: all 128 known files check out. The official zip's layout (no top
    folder) built from it is kept by a file:// download without sha256 and loads; one changed sample in one
    recording discards the download and names that file."""
    import zipfile

    assert len(hd.known_files("hapt")) == 128
    assert len(hd.verify_copy("hapt", HAPT_ARCHIVE)) == 128
    archive = tmp_path / "hapt.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(hapt_dir.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(hapt_dir).as_posix())
    cache = tmp_path / "cache"
    got = hd.download("hapt", cache, url=archive.as_uri())
    assert got.read_bytes() == archive.read_bytes()
    assert hd.load_windows("hapt", got, variant="uci9").y.size == hd.load_windows("hapt", hapt_dir, variant="uci9").y.size

    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive) as zin, zipfile.ZipFile(bad, "w") as zout:
        for name in zin.namelist():
            data = zin.read(name)
            if name == "RawData/gyro_exp07_user04.txt":
                data = data.replace(b"0", b"1", 1)
            zout.writestr(name, data)
    with pytest.raises(DataError, match=r"bad.zip:RawData/gyro_exp07_user04.txt: download discarded: content differs"):
        hd.download("hapt", tmp_path / "cache2", url=bad.as_uri())
    assert list((tmp_path / "cache2").iterdir()) == []


def test_data_cli_lists_sources_and_verifies_copies(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from harcore.cli import app

    monkeypatch.setenv("HARCORE_DATA", str(tmp_path))
    run = CliRunner().invoke
    r = run(app, ["data", "list"])
    assert r.exit_code == 0
    rows = {line.split()[0]: line for line in r.output.splitlines()}
    assert set(rows) == set(hd.DATASETS)
    assert "27 data files' git blob SHA-1" in rows["uci-har"] and "128 data files' git blob SHA-1" in rows["hapt"]
    assert "needs --sha256" in rows["pamap2"]
    r = run(app, ["data", "verify", "daphnet", str(DAPHNET_ARCHIVE), "--partial"])
    assert r.exit_code == 0 and "daphnet: 7 data files match" in r.output
    r = run(app, ["data", "verify", "daphnet", str(DAPHNET_ARCHIVE)])
    assert r.exit_code == 1 and "10 of the 17 known daphnet data files are missing" in r.output
    r = run(app, ["data", "verify", "uci-har", str(DAPHNET_ARCHIVE), "--partial"])  # the wrong dataset
    assert r.exit_code == 1 and "none of the 27 known uci-har data files is in this copy" in r.output
    r = run(app, ["data", "download", "pamap2", "--dest", str(tmp_path / "d")])
    assert r.exit_code == 1 and "refusing an unverified download of 'pamap2'" in r.output
    nowhere = (tmp_path / "nowhere.zip").as_uri()  # a failed fetch is a DataError naming the URL, not a traceback
    with pytest.raises(DataError, match=r"nowhere.zip: download failed"):
        hd.download("hapt", tmp_path / "d", url=nowhere)
    r = run(app, ["data", "verify", "nosuch", str(DAPHNET_ARCHIVE)])
    assert r.exit_code == 2 and "'nosuch' is not a dataset" in r.output
