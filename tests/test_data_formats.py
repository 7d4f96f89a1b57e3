"""Parsers on small files written in the official formats (for the parts of UCI-HAR and WISDM our
staged copies lack) and harcore's own from_folder layout."""

import json
import zipfile

import numpy as np
import pytest

from harcore import data as hd
from harcore.data import DataError
from harcore.data.datasets import wisdm

UCI_LABELS = "1 WALKING\n2 WALKING_UPSTAIRS\n3 WALKING_DOWNSTAIRS\n4 SITTING\n5 STANDING\n6 LAYING\n"


def _uci_row(values):
    # UCI-HAR's Inertial Signals style: two leading spaces, %.7e with 3-digit exponents
    out = []
    for v in values:
        m, e = f"{v:.7e}".split("e")
        out.append(f"{m}e{int(e):+04d}")
    return "  " + "  ".join(out) + "\n"


def write_uci_folder(root, n_train=8, n_test=5, seed=0):
    rng = np.random.default_rng(seed)
    base = root / "UCI HAR Dataset"
    (base / "train" / "Inertial Signals").mkdir(parents=True)
    (base / "test" / "Inertial Signals").mkdir(parents=True)
    (base / "activity_labels.txt").write_text(UCI_LABELS)
    (base / "features.txt").write_text("".join(f"{i} f{i}\n" for i in range(1, 4)))
    truth = {}
    for split, n, subjects in (("train", n_train, [1, 3]), ("test", n_test, [2])):
        subj = np.array([subjects[i % len(subjects)] for i in range(n)])
        y = rng.integers(1, 7, n)
        (base / split / f"subject_{split}.txt").write_text("".join(f"{v}\n" for v in subj))
        (base / split / f"y_{split}.txt").write_text("".join(f"{v}\n" for v in y))
        x = rng.normal(size=(n, 9, 128))
        for c, ch in enumerate(hd.UCI_CHANNELS):
            x[:, c] += 10 * c  # a channel-specific offset shows the order
            (base / split / "Inertial Signals" / f"{ch}_{split}.txt").write_text("".join(_uci_row(r) for r in x[:, c]))
        (base / split / f"X_{split}.txt").write_text("".join(_uci_row(r) for r in rng.normal(size=(n, 3))))
        truth[split] = (x, y - 1, subj)
    return base, truth


def test_uci_har_full_folder_in_the_official_format(tmp_path):
    base, truth = write_uci_folder(tmp_path)
    ds = hd.load("uci-har", tmp_path, normalize=False)
    assert ds.channels == list(hd.UCI_CHANNELS) and ds.sample_rate == 50.0
    assert ds.classes[5] == "LAYING"
    np.testing.assert_allclose(ds.train.x, truth["train"][0], rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(ds.test.y, truth["test"][1])
    np.testing.assert_array_equal(ds.test.subjects, truth["test"][2])
    assert ds.split.test == (2,) and ds.split.train == (1, 3)
    feats = hd.load("uci-har", tmp_path, variant="features", normalize=False)
    assert feats.train.x.shape == (8, 3, 1) and feats.channels == ["f1", "f2", "f3"]


def test_uci_har_from_the_nested_official_zip(tmp_path):
    base, truth = write_uci_folder(tmp_path / "src")
    inner = tmp_path / "UCI HAR Dataset.zip"
    with zipfile.ZipFile(inner, "w") as z:
        for p in sorted(base.rglob("*")):
            if p.is_file():
                z.write(p, p.relative_to(base.parent).as_posix())
    outer = tmp_path / "human+activity+recognition+using+smartphones.zip"
    with zipfile.ZipFile(outer, "w") as z:
        z.write(inner, inner.name)
    ds = hd.load("uci-har", outer, normalize=False)
    np.testing.assert_allclose(ds.test.x, truth["test"][0], rtol=1e-6, atol=1e-6)


def test_uci_har_errors_name_file_and_line(tmp_path):
    base, _ = write_uci_folder(tmp_path)
    f = base / "test" / "Inertial Signals" / "body_gyro_y_test.txt"
    lines = f.read_text().splitlines(keepends=True)
    lines[2] = "  ".join(lines[2].split()[:127]) + "\n"
    f.write_text("".join(lines))
    with pytest.raises(DataError, match="expected 128 columns, found 127") as e:
        hd.load("uci-har", tmp_path)
    assert e.value.path.endswith("body_gyro_y_test.txt") and e.value.line == 3
    base, _ = write_uci_folder(tmp_path / "b")
    (base / "train" / "y_train.txt").write_text("1\n2\n7\n1\n1\n1\n1\n1\n")
    with pytest.raises(DataError, match="unknown activity id 7") as e:
        hd.load("uci-har", tmp_path / "b")
    assert e.value.path.endswith("y_train.txt") and e.value.line == 3


# ------------------------------------------------------------------------------- WISDM raw

def write_wisdm_raw(path, users=(33, 7), acts=("Jogging", "Sitting"), n=450, seed=0):
    rng = np.random.default_rng(seed)
    lines, truth = [], []
    ts = 49105962326000
    for u in users:
        for a in acts:
            xyz = rng.normal(0, 5, (n, 3))
            for r in xyz:
                ts += 50_000_000
                lines.append(f"{u},{a},{ts},{r[0]:.7g},{r[1]:.8g},{r[2]:.8g};\n")
            truth.append((u, a, xyz))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(lines))
    return truth


def test_wisdm_raw_official_format(tmp_path):
    raw = tmp_path / "WISDM_ar_v1.1" / wisdm.RAW_NAME
    truth = write_wisdm_raw(raw)
    ds = hd.load("wisdm", tmp_path, protocol="loso", fold=0, normalize=False)
    # each (user, activity) run of 450 records: floor((450 - 200) / 100) + 1 = 3 windows
    assert len(ds.train) + len(ds.test) == 4 * 3
    assert ds.sample_rate == 20.0 and ds.channels == ["acc_x", "acc_y", "acc_z"]
    assert set(ds.test.subjects) == {7}
    u, a, xyz = truth[2]  # user 7, Jogging: the test subject's first run
    np.testing.assert_allclose(ds.test.x[0], xyz[:200].T, rtol=1e-6)
    assert ds.classes[ds.test.y[0]] == "Jogging"


@pytest.mark.parametrize("bad,msg", [
    ("33,Flying,1,0.1,0.2,0.3;", "unknown activity 'Flying'"),
    ("33,Jogging,1,0.1,0.2;", "expected 6 comma-separated fields"),
    ("33,Jogging,1,0.1,abc,0.3;", "non-numeric value 'abc'"),
    ("33,Jogging,1,0.1,NaN,0.3;", "non-finite"),
])
def test_wisdm_raw_errors_name_the_line(tmp_path, bad, msg):
    raw = tmp_path / wisdm.RAW_NAME
    write_wisdm_raw(raw)
    lines = raw.read_text().splitlines(keepends=True)
    lines[9] = bad + "\n"
    raw.write_text("".join(lines))
    with pytest.raises(DataError, match=msg) as e:
        hd.load("wisdm", tmp_path)
    assert e.value.line == 10 and e.value.path.endswith(wisdm.RAW_NAME)


def test_wisdm_raw_truncated_last_line(tmp_path):
    raw = tmp_path / wisdm.RAW_NAME
    write_wisdm_raw(raw)
    text = raw.read_text()
    raw.write_text(text[: text.rfind(",") - 3])
    with pytest.raises(DataError, match="truncated") as e:
        hd.load("wisdm", tmp_path)
    assert e.value.line == 4 * 450


# ------------------------------------------------------------------------------- from_folder

def write_folder(root, fs=50, n=600):
    rng = np.random.default_rng(1)
    (root / "recordings").mkdir(parents=True)
    (root / "dataset.json").write_text(json.dumps({"sample_rate": fs, "classes": ["rest", "walk"],
                                                   "window": 100, "step": 50, "test_subjects": [2]}))
    sigs = {}
    for rec in ("alice_1", "alice_2", "bob_1"):
        x = rng.normal(size=(n, 4))
        sigs[rec] = x
        body = "".join(",".join(f"{v:.6f}" for v in r) + "\n" for r in x)
        (root / "recordings" / f"{rec}.csv").write_text("ax,ay,az,gx\n" + body)
    (root / "labels.csv").write_text(
        "recording,subject,start,end,label\n"
        "alice_1,1,0,300,rest\nalice_1,1,300,600,walk\nalice_2,1,50,400,walk\nbob_1,2,0,600,rest\n")
    return sigs


def test_from_folder_reads_the_documented_layout(tmp_path):
    sigs = write_folder(tmp_path)
    ds = hd.from_folder(tmp_path, normalize=False)
    # windows of 100, step 50: 300 -> 5, 300 -> 5, 350 -> 6, 600 -> 11
    assert len(ds.train) == 16 and len(ds.test) == 11
    assert ds.channels == ["ax", "ay", "az", "gx"] and ds.sample_rate == 50.0
    np.testing.assert_allclose(ds.test.x[1], sigs["bob_1"][50:150].T, atol=1e-6)
    assert ds.train.y.tolist().count(1) == 11
    rs = hd.from_folder(tmp_path, resample_to=25, window=50, step=25, normalize=False)
    assert rs.sample_rate == 25.0 and rs.train.x.shape[2] == 50


@pytest.mark.parametrize("edit,msg,file,line", [
    (lambda r: (r / "labels.csv").write_text((r / "labels.csv").read_text().replace("bob_1,2,0,600,rest", "bob_1,2,0,600,jump")),
     "unknown label 'jump'", "labels.csv", 5),
    (lambda r: (r / "labels.csv").write_text((r / "labels.csv").read_text().replace("alice_2,1", "carol_1,1")),
     "recordings/carol_1.csv does not exist", "labels.csv", 4),
    (lambda r: (r / "labels.csv").write_text((r / "labels.csv").read_text().replace("bob_1,2,0,600", "bob_1,2,0,601")),
     "beyond", "labels.csv", 5),
    (lambda r: (r / "recordings" / "bob_1.csv").write_text(
        "\n".join(l if i != 7 else "1,2,x,4" for i, l in enumerate((r / "recordings" / "bob_1.csv").read_text().split("\n")))),
     "non-numeric value 'x'", "bob_1.csv", 8),
    (lambda r: (r / "recordings" / "bob_1.csv").write_text(
        "\n".join(l if i != 9 else "1,2,3" for i, l in enumerate((r / "recordings" / "bob_1.csv").read_text().split("\n")))),
     "expected 4 columns, found 3", "bob_1.csv", 10),
    (lambda r: (r / "recordings" / "dave_1.csv").write_text("ax,ay,az,gx\n1,2,3,4\n"),
     "without any row in labels.csv", "labels.csv", None),
])
def test_from_folder_errors_name_file_and_line(tmp_path, edit, msg, file, line):
    write_folder(tmp_path)
    edit(tmp_path)
    with pytest.raises(DataError, match=msg) as e:
        hd.from_folder(tmp_path)
    assert e.value.path.endswith(file) and e.value.line == line
