"""PAMAP2, OPPORTUNITY, Skoda, UniMiB-SHAR, HHAR and MotionSense loaders, on small synthetic files
written by the tests in each dataset's official format (none of these datasets is available to
the project). Never touches the network (MotionSense's verified per-file download uses file://)."""

import hashlib
import zipfile

import numpy as np
import pytest
from scipy.io import savemat

from harcore import data as hd
from harcore.data import DataError
from harcore.data.datasets import hhar, motionsense, opportunity, pamap2, unimib


def _edit_line(path, lineno, fn):
    lines = path.read_text().split("\n")
    lines[lineno - 1] = fn(lines[lineno - 1])
    path.write_text("\n".join(lines))


def _expect(exc, path_end, line):
    assert exc.value.path.endswith(path_end), exc.value.path
    assert exc.value.line == line


# ------------------------------------------------------------------------------------------ PAMAP2

PAMAP_SEQ = [(0, 40), (1, 300), (0, 20), (4, 260)]  # (activityID, rows)


def write_pamap2(root, subjects=(101, 102, 103), seed=0):
    rng = np.random.default_rng(seed)
    proto = root / "PAMAP2_Dataset" / "Protocol"
    proto.mkdir(parents=True)
    truth = {}
    for s in subjects:
        ids = np.concatenate([np.full(n, a) for a, n in PAMAP_SEQ])
        n = ids.size
        a = np.round(rng.normal(size=(n, 54)) * 3, 6)
        a[:, 0] = 5.64 + np.arange(n) * 0.01
        a[:, 1] = ids
        hr = np.full(n, np.nan)
        hr[3::10] = 80 + np.arange(hr[3::10].size)
        a[:, 2] = hr
        if s == 102:
            a[140:143, pamap2.COLUMNS["hand_acc16_x"]] = np.nan      # 3 samples: interpolated
        if s == 103:
            a[460:476, pamap2.COLUMNS["chest_gyro_y"]] = np.nan      # 16 samples > max_gap: excluded
        rows = []
        for r in a:
            toks = [f"{r[0]:.2f}", f"{int(r[1])}"] + ["NaN" if np.isnan(v) else f"{v:.6f}" for v in r[2:]]
            rows.append(" ".join(toks) + "\n")
        (proto / f"subject{s}.dat").write_text("".join(rows))
        truth[s] = a
    return proto, truth


def test_pamap2_official_format(tmp_path):
    proto, truth = write_pamap2(tmp_path)
    ws = hd.load_windows("pamap2", tmp_path, window=100, step=50)
    # per subject: lying 300 -> 5 windows, walking 260 -> 4; subject 103's 16-sample IMU gap cuts
    # walking into 100 + 144 samples -> 1 + 1. Transient (0) samples never enter a window.
    counts = {s: int((ws.subjects == s).sum()) for s in (101, 102, 103)}
    assert counts == {101: 9, 102: 9, 103: 7}
    assert ws.classes == [pamap2.ACTIVITIES[k] for k in pamap2.PROTOCOL_IDS] and len(ws.classes) == 12
    assert ws.sample_rate == 100.0 and len(ws.channels) == 28 and ws.channels[0] == "heart_rate"
    assert sorted(set(ws.y.tolist())) == [0, 3]  # lying, walking
    assert ws.info["transient_samples"] == 3 * 60 and ws.info["imu_nan_filled"] == 3
    assert ws.info["imu_nan_excluded_samples"] == 16
    a = truth[101]
    c = ws.channels.index("hand_acc16_x")
    np.testing.assert_allclose(ws.x[0, c], a[40:140, pamap2.COLUMNS["hand_acc16_x"]], rtol=1e-6)
    # heart rate: each ~9 Hz reading is held until the next one
    hr = ws.x[0, 0]
    raw = a[:, 2]
    held = np.array([raw[:i + 1][~np.isnan(raw[:i + 1])][-1] for i in range(40, 140)])
    np.testing.assert_allclose(hr, held)
    # subject 102's 3 NaN samples are linearly interpolated
    w = np.nonzero(ws.subjects == 102)[0][2]  # lying window starting at sample 140
    assert ws.info["start"][w] == 140
    b = truth[102][:, pamap2.COLUMNS["hand_acc16_x"]]
    np.testing.assert_allclose(ws.x[w, c, :3], b[139] + (b[143] - b[139]) * np.arange(1, 4) / 4, rtol=1e-5)

    ds = hd.load("pamap2", tmp_path, window=100, step=50, protocol="loso", fold=2)
    assert ds.split.test == (103,) and len(ds.test) == 7 and len(ds.train) == 18
    rs = hd.load("pamap2", tmp_path, window=100, step=50, protocol="random-subjects", seed=1, sensors="imu")
    assert len(rs.channels) == 27 and len(rs.split.train) == 1 and len(rs.split.val) == 1
    assert hd.load_windows("pamap2", tmp_path, window=100, step=50, sensors="all").x.shape[1] == 40


@pytest.mark.parametrize("edit,msg,line", [
    (lambda l: l.rsplit(" ", 1)[0], "expected 54 columns, found 53", 10),
    (lambda l: l.replace(" ", " abc ", 1).rsplit(" ", 1)[0], "non-numeric value 'abc'", 10),
    (lambda l: l.split(" ", 2)[0] + " 8 " + l.split(" ", 2)[2], "unknown activityID 8", 10),
])
def test_pamap2_errors_name_file_and_line(tmp_path, edit, msg, line):
    proto, _ = write_pamap2(tmp_path, subjects=(101, 102))
    _edit_line(proto / "subject102.dat", line, edit)
    with pytest.raises(DataError, match=msg) as e:
        hd.load_windows("pamap2", tmp_path)
    _expect(e, "subject102.dat", line)


def test_pamap2_truncated_copy(tmp_path):
    proto, _ = write_pamap2(tmp_path, subjects=(101,))
    f = proto / "subject101.dat"
    f.write_text(f.read_text()[:-40])
    with pytest.raises(DataError, match="truncated") as e:
        hd.load_windows("pamap2", tmp_path)
    _expect(e, "subject101.dat", 620)


def test_missing_local_copies_say_where_to_put_the_files(tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    for name, what in (("pamap2", "Protocol/subjectNNN.dat"), ("opportunity", "S<n>-ADL<k>.dat"),
                       ("skoda", "right_classall_clean.mat"), ("unimib-shar", "acc_data.mat"),
                       ("hhar", "Phones_accelerometer.csv"), ("motionsense", "sub_<n>.csv")):
        with pytest.raises(DataError, match="no verified SHA-256") as e:
            hd.load(name, tmp_path / "empty")
        assert what in str(e.value) and e.value.path == str(tmp_path / "empty")
    monkeypatch.setenv("HARCORE_DATA", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="no local copy of 'pamap2' in the cache folder"):
        hd.load("pamap2")
    with pytest.raises(DataError, match="refusing an unverified download"):
        hd.download("opportunity")


# ------------------------------------------------------------------------------------- OPPORTUNITY

LEGEND = """Unique index   -   Track name   -   Label name

1   -   Locomotion   -   Stand
2   -   Locomotion   -   Walk
4   -   Locomotion   -   Sit
5   -   Locomotion   -   Lie
101   -   HL_Activity   -   Relaxing
201   -   LL_Left_Arm   -   unlock
406516   -   ML_Both_Arms   -   Open Door 1
406517   -   ML_Both_Arms   -   Open Door 2
404516   -   ML_Both_Arms   -   Close Door 1
404517   -   ML_Both_Arms   -   Close Door 2
406520   -   ML_Both_Arms   -   Open Fridge
407521   -   ML_Both_Arms   -   Drink from Cup
405506   -   ML_Both_Arms   -   Toggle Switch
"""


def write_opportunity(root, runs=(("S1", "ADL1"), ("S2", "ADL1"), ("S3", "Drill")), seed=0, n=200):
    rng = np.random.default_rng(seed)
    d = root / "OpportunityUCIDataset" / "dataset"
    d.mkdir(parents=True)
    (d / "label_legend.txt").write_text(LEGEND)
    truth = {}
    for subj, run in runs:
        a = np.round(rng.normal(0, 500, size=(n, 250)))
        a[:, 0] = np.arange(n) * 33
        a[:, 243:250] = 0
        a[:100, 243], a[100:, 243] = 1, 2                      # Stand, Walk
        a[60:120, 249], a[140:200, 249] = 406516, 404516       # Open Door 1, Close Door 1 (else Null)
        a[10:15, 1] = np.nan                                   # interior gap: interpolated
        a[:3, 37] = np.nan                                     # leading gap: nearest value
        a[5:9, 200] = np.nan                                   # an unused (ambient) column
        body = "".join(" ".join("NaN" if np.isnan(v) else str(int(v)) for v in r) + "\n" for r in a)
        (d / f"{subj}-{run}.dat").write_text(body)
        truth[(subj, run)] = a
    return d, truth


def test_opportunity_official_format(tmp_path):
    d, truth = write_opportunity(tmp_path)
    assert len(opportunity.CHANNELS) == 113 and opportunity.CHANNELS[0] == "Accelerometer RKN^ accX"
    assert opportunity.CHANNELS[45] == "InertialMeasurementUnit RUA accX"   # column 51, after BACK's quaternions
    assert opportunity.CHANNELS[-1] == "InertialMeasurementUnit R-SHOE Compass"
    ws = hd.load_windows("opportunity", tmp_path)
    # per file, window 30 step 15: Null 60 -> 3, Open Door 1 60 -> 3, Null 20 -> 0, Close Door 1 60 -> 3
    assert ws.x.shape == (27, 113, 30) and ws.sample_rate == 30.0
    # class order: Null, then the legend's ML_Both_Arms ids ascending
    assert ws.classes == ["Null", "Close Door 1", "Close Door 2", "Toggle Switch", "Open Door 1", "Open Door 2",
                          "Open Fridge", "Drink from Cup"]
    assert ws.info["label_ids"] == [0, 404516, 404517, 405506, 406516, 406517, 406520, 407521]
    counts = np.bincount(ws.y, minlength=len(ws.classes))
    assert counts[0] == 9 and counts[ws.classes.index("Open Door 1")] == 9
    assert counts[ws.classes.index("Close Door 1")] == 9 and ws.info["segments_shorter_than_window"] == 3
    a = truth[("S1", "ADL1")]
    np.testing.assert_allclose(ws.x[0, 0, 10:15], a[9, 1] + (a[15, 1] - a[9, 1]) * np.arange(1, 6) / 6, rtol=1e-5)
    assert (ws.x[0, 36, :3] == a[3, 37]).all()                   # column 38 = channel 36, edge-extended
    np.testing.assert_array_equal(ws.x[3, 50], a[60:90, opportunity.CHANNEL_COLUMNS[50] - 1])
    nonull = hd.load_windows("opportunity", tmp_path, include_null=False)
    assert len(nonull.y) == 18 and "Null" not in nonull.classes and "label 0 (Null)" in nonull.info["excluded"]
    loco = hd.load("opportunity", tmp_path, task="locomotion", include_null=False, protocol="loso", fold=1)
    assert loco.classes == ["Stand", "Walk", "Sit", "Lie"] and loco.split.test == (2,)
    assert len(loco.test) == 10 and np.bincount(loco.test.y).tolist() == [5, 5]  # 100 samples -> 5 windows each


@pytest.mark.parametrize("edit,msg", [
    (lambda l: l.rsplit(" ", 1)[0] + " 406599", "unknown ML_Both_Arms label 406599"),
    (lambda l: l.rsplit(" ", 1)[0], "expected 250 columns, found 249"),
    (lambda l: l.replace(" ", " x1 ", 1).rsplit(" ", 1)[0], "non-numeric value 'x1'"),
])
def test_opportunity_errors_name_file_and_line(tmp_path, edit, msg):
    d, _ = write_opportunity(tmp_path)
    _edit_line(d / "S2-ADL1.dat", 50, edit)
    with pytest.raises(DataError, match=msg) as e:
        hd.load_windows("opportunity", tmp_path)
    _expect(e, "S2-ADL1.dat", 50)


def test_opportunity_dead_channel_and_legend(tmp_path):
    d, _ = write_opportunity(tmp_path, runs=(("S4", "ADL2"),))
    f = d / "S4-ADL2.dat"
    rows = [l.split(" ") for l in f.read_text().splitlines()]
    for r in rows:
        r[50] = "NaN"                                   # column 51 (RUA accX) NaN throughout
    f.write_text("".join(" ".join(r) + "\n" for r in rows))
    with pytest.raises(DataError, match="InertialMeasurementUnit RUA accX.*NaN throughout"):
        hd.load_windows("opportunity", tmp_path)
    with pytest.warns(UserWarning, match="filled with 0"):
        ws = hd.load_windows("opportunity", tmp_path, all_nan="zero")
    assert (ws.x[:, 45] == 0).all() and ws.info["all_nan_channels"] == {"S4-ADL2": ["InertialMeasurementUnit RUA accX"]}
    (d / "label_legend.txt").write_text(LEGEND.replace("2   -   Locomotion   -   Walk", "2   -   Locomotio   -   Walk"))
    with pytest.raises(DataError, match="unknown label track 'Locomotio'") as e:
        hd.load_windows("opportunity", tmp_path)
    _expect(e, "label_legend.txt", 4)


# ------------------------------------------------------------------------------------------- Skoda

def write_skoda(root, arm="right", reps=10, seed=0):
    rng = np.random.default_rng(seed)
    labels = [32] * 150
    for _ in range(reps):
        labels += [48] * 100 + [32] * 60 + [49] * 120 + [32] * 60
    lab = np.array(labels, dtype=np.float64)
    m = np.zeros((lab.size, 71))
    m[:, 0] = lab
    for s in range(10):
        m[:, 1 + 7 * s] = s + 1                           # sensor id
        m[:, 2 + 7 * s:5 + 7 * s] = rng.normal(0, 300, (lab.size, 3))   # calibrated x, y, z
        m[:, 5 + 7 * s:8 + 7 * s] = rng.integers(0, 1023, (lab.size, 3))  # raw x, y, z
    d = root / "SkodaMiniCP_2015_08"
    d.mkdir(parents=True, exist_ok=True)
    savemat(d / f"{arm}_classall_clean.mat", {f"{arm}_classall_clean": m})
    return d / f"{arm}_classall_clean.mat", m


def test_skoda_mat_and_temporal_protocol(tmp_path):
    f, m = write_skoda(tmp_path)
    ws = hd.load_windows("skoda", tmp_path, window=50, step=25)
    # null 150 -> 5 windows, 20 null runs of 60 -> 1 each, 10 x (48: 100 -> 3, 49: 120 -> 3)
    assert ws.x.shape == (5 + 20 + 60, 30, 50) and ws.sample_rate == 98.0
    assert ws.classes[:3] == ["null", "write on notepad", "open hood"] and len(ws.classes) == 11
    assert np.bincount(ws.y).tolist()[:3] == [25, 30, 30] and set(ws.subjects.tolist()) == {1}
    np.testing.assert_allclose(ws.x[5, :3], m[150:200, 2:5].T, rtol=1e-6)  # sensor 0 calibrated xyz
    np.testing.assert_allclose(ws.x[5, 3], m[150:200, 9], rtol=1e-6)       # sensor 1 calibrated x
    ds = hd.load("skoda", tmp_path, window=50, step=25, normalize=False)
    assert ds.split.protocol == "temporal"
    # 10 instances of each gesture: 8 / 1 / 1; 21 null runs: 17 / 2 / 2
    assert np.bincount(ds.test.y, minlength=11).tolist()[:3] == [2, 3, 3]
    assert np.bincount(ds.val.y, minlength=11).tolist()[:3] == [2, 3, 3]
    assert len(ds.train) == 85 - 16
    start, part = ds.info["start"], ds.info["split_part"]
    for c in range(3):  # chronological: every test window after every train window of its class
        assert start[(ws.y == c) & (part == 2)].min() > start[(ws.y == c) & (part == 0)].max()
    nonull = hd.load("skoda", tmp_path, window=50, step=25, include_null=False)
    assert "null" not in nonull.classes and len(nonull.classes) == 10
    with pytest.raises(ValueError, match="one subject"):
        hd.load("skoda", tmp_path, protocol="loso", fold=0)
    write_skoda(tmp_path, arm="left")
    assert hd.load_windows("skoda", tmp_path, arm="left").channels[0] == "left_s0_acc_x"


@pytest.mark.parametrize("edit,msg,line", [
    (lambda m: m.__setitem__((6, 4), np.nan), "non-finite value .* row 7", 7),
    (lambda m: m.__setitem__((11, 0), 40), "unknown label 40 in row 12", 12),
])
def test_skoda_errors_name_file_and_row(tmp_path, edit, msg, line):
    f, m = write_skoda(tmp_path, reps=2)
    edit(m)
    savemat(f, {"right_classall_clean": m})
    with pytest.raises(DataError, match=msg) as e:
        hd.load_windows("skoda", tmp_path)
    _expect(e, "right_classall_clean.mat", line)


def test_skoda_bad_files(tmp_path):
    f, m = write_skoda(tmp_path, reps=2)
    savemat(f, {"right_classall_clean": m[:, :70]})
    with pytest.raises(DataError, match="70 columns, expected 71"):
        hd.load_windows("skoda", tmp_path)
    savemat(f, {"right_classall_clean": m})
    f.write_bytes(f.read_bytes()[:5000])
    with pytest.raises(DataError, match="corrupted or truncated") as e:
        hd.load_windows("skoda", tmp_path)
    assert e.value.path.endswith("right_classall_clean.mat")


# ------------------------------------------------------------------------------------- UniMiB-SHAR

def write_unimib(root, variant="acc", subjects=(1, 2, 3), seed=0, names=True):
    rng = np.random.default_rng(seed)
    classes = unimib.VARIANTS[variant]
    lab = np.array([(c, s, 1 + (c + s) % 2) for s in subjects for c in range(1, len(classes) + 1)], np.float64)
    data = rng.normal(0, 9.8, (lab.shape[0], 453))
    d = root / "UniMiB-SHAR" / "data"
    d.mkdir(parents=True, exist_ok=True)
    savemat(d / f"{variant}_data.mat", {f"{variant}_data": data})
    savemat(d / f"{variant}_labels.mat", {f"{variant}_labels": lab})
    if names:
        cell = np.empty((2, len(classes)), dtype=object)
        cell[0, :] = classes
        cell[1, :] = [f"description of {c}" for c in classes]
        savemat(d / f"{variant}_names.mat", {f"{variant}_names": cell})
    return d, data, lab


def test_unimib_official_format(tmp_path):
    d, data, lab = write_unimib(tmp_path)
    ws = hd.load_windows("unimib-shar", tmp_path)
    assert ws.x.shape == (51, 3, 151) and ws.sample_rate == 50.0 and ws.info["names_checked"]
    np.testing.assert_allclose(ws.x[4, 1], data[4, 151:302], rtol=1e-6)   # y axis = columns 152-302
    np.testing.assert_allclose(ws.x[4, 2], data[4, 302:], rtol=1e-6)
    assert ws.classes[9] == "FallingForw" and ws.y.tolist() == (lab[:, 0] - 1).tolist()
    ds = hd.load("unimib-shar", tmp_path, protocol="loso", fold=0)
    assert ds.split.test == (1,) and len(ds.test) == 17 and len(ds.train) == 34
    write_unimib(tmp_path / "adl", variant="adl")
    assert hd.load_windows("unimib-shar", tmp_path / "adl", variant="adl").classes == unimib.ADL


@pytest.mark.parametrize("which,edit,msg,line", [
    ("labels", lambda m: m.__setitem__((4, 0), 18), "unknown class id 18 in row 5", 5),
    ("labels", lambda m: m.__setitem__((6, 1), 2.5), "row 7 must hold three integers", 7),
    ("data", lambda m: m.__setitem__((2, 100), np.nan), "non-finite value .* row 3", 3),
])
def test_unimib_errors_name_file_and_row(tmp_path, which, edit, msg, line):
    d, data, lab = write_unimib(tmp_path)
    m = lab if which == "labels" else data
    edit(m)
    savemat(d / f"acc_{which}.mat", {f"acc_{which}": m})
    with pytest.raises(DataError, match=msg) as e:
        hd.load_windows("unimib-shar", tmp_path)
    _expect(e, f"acc_{which}.mat", line)


def test_unimib_shape_and_names_checks(tmp_path):
    d, data, lab = write_unimib(tmp_path)
    cell = np.empty((2, 17), dtype=object)
    cell[0, :] = unimib.FALLS + unimib.ADL
    cell[1, :] = "x"
    savemat(d / "acc_names.mat", {"acc_names": cell})
    with pytest.raises(DataError, match="do not match harcore's order"):
        hd.load_windows("unimib-shar", tmp_path)
    (d / "acc_names.mat").unlink()
    savemat(d / "acc_data.mat", {"acc_data": data[:, :452]})
    with pytest.raises(DataError, match="452 columns, expected 453"):
        hd.load_windows("unimib-shar", tmp_path)
    savemat(d / "acc_data.mat", {"acc_data": data[:-1]})
    with pytest.raises(DataError, match="50 windows .* but 51 label rows"):
        hd.load_windows("unimib-shar", tmp_path)


# -------------------------------------------------------------------------------------------- HHAR

HHAR_DEVICES = (("nexus4", "nexus4_1", 200), ("s3mini", "s3mini_1", 100))
HHAR_SEQ = (("stand", 4.0), ("null", 1.0), ("walk", 3.0))


def write_hhar(root, users="abc", seed=0):
    rng = np.random.default_rng(seed)
    rows = []  # (creation_ns, line body)
    for u in users:
        for model, dev, rate in HHAR_DEVICES:
            t0 = 1424696631913248572 + rng.integers(0, 10**9)
            k = 0
            for gt, dur in HHAR_SEQ:
                n = int(round(dur * rate))
                for i in range(n):
                    jitter = 0 if i in (0, n - 1) else int(rng.integers(-100_000, 100_000))
                    t = t0 + int(round(k * 1e9 / rate)) + jitter
                    ts = k / rate
                    v = (np.sin(2 * np.pi * ts), 9.81 + 0.1 * np.cos(2 * np.pi * ts), rng.normal())
                    rows.append((t, f"{t // 1_000_000 + 1995},{t},{v[0]:.7g},{v[1]:.7g},{v[2]:.7g},{u},{model},{dev},{gt}"))
                    k += 1
    rows.sort(key=lambda r: r[0])  # devices interleaved, as in the real files
    d = root / "Activity recognition exp"
    d.mkdir(parents=True)
    body = "".join(f"{i},{r[1]}\n" for i, r in enumerate(rows))
    (d / "Phones_accelerometer.csv").write_text(hhar.HEADER + "\n" + body)
    return d / "Phones_accelerometer.csv"


def test_hhar_official_format_and_resampling(tmp_path):
    write_hhar(tmp_path)
    ws = hd.load_windows("hhar", tmp_path)
    # at 50 Hz: stand 4 s -> 200 samples -> 3 windows of 100 (step 50); walk 3 s -> 150 -> 2; null excluded
    assert ws.x.shape == (3 * 2 * 5, 3, 100) and ws.sample_rate == 50.0
    assert ws.channels == ["acc_x", "acc_y", "acc_z"] and sorted(set(ws.subjects.tolist())) == [1, 2, 3]
    assert np.bincount(ws.y, minlength=6).tolist() == [18, 0, 12, 0, 0, 0]
    assert sorted(set(ws.info["native_rate"].tolist())) == [100, 200]
    assert ws.info["null_rows"] == 3 * (200 + 100) and ws.info["runs"] == 12
    # the middle stand window (1 s .. 3 s) of every run is the 1 Hz sine, resampled (edges aside)
    mid = np.nonzero(ws.y == 0)[0][1::3]
    t = (50 + np.arange(100)) / 50.0
    for w in mid:
        np.testing.assert_allclose(ws.x[w, 0], np.sin(2 * np.pi * t), atol=0.03)
    ds = hd.load("hhar", tmp_path, protocol="loso", fold=2)
    assert ds.split.test == (3,) and len(ds.test) == 10
    assert hd.load_windows("hhar", tmp_path, resample_to=25, window=50, step=25).x.shape == (30, 3, 50)


def test_hhar_from_the_official_nested_zip(tmp_path):
    write_hhar(tmp_path / "src", users="ab")
    inner = tmp_path / hhar.INNER_ZIP
    with zipfile.ZipFile(inner, "w") as z:
        z.write(tmp_path / "src" / "Activity recognition exp" / "Phones_accelerometer.csv",
                "Activity recognition exp/Phones_accelerometer.csv")
    still = tmp_path / "Still exp.zip"
    with zipfile.ZipFile(still, "w") as z:
        z.writestr("Still exp/readme.txt", "static orientations")
    outer = tmp_path / "heterogeneity+activity+recognition.zip"
    with zipfile.ZipFile(outer, "w") as z:
        z.write(inner, inner.name)
        z.write(still, still.name)
    ws = hd.load_windows("hhar", outer)
    assert ws.x.shape == (20, 3, 100) and ws.info["source"].endswith(hhar.INNER_ZIP)


@pytest.mark.parametrize("edit,msg", [
    (lambda l: l.rsplit(",", 1)[0] + ",jump", "unknown activity gt='jump'"),
    (lambda l: l.rsplit(",", 1)[0], "expected 10 comma-separated fields"),
    (lambda l: ",".join(f if i != 4 else "abc" for i, f in enumerate(l.split(","))), "non-numeric value 'abc'"),
    (lambda l: ",".join(f if i != 6 else "z" for i, f in enumerate(l.split(","))), "unknown User 'z'"),
])
def test_hhar_errors_name_file_and_line(tmp_path, edit, msg):
    f = write_hhar(tmp_path, users="a")
    _edit_line(f, 77, edit)
    with pytest.raises(DataError, match=msg) as e:
        hd.load_windows("hhar", tmp_path)
    _expect(e, "Phones_accelerometer.csv", 77)


def test_hhar_truncated_and_header(tmp_path):
    f = write_hhar(tmp_path, users="a")
    text = f.read_text()
    f.write_text(text[:-12])
    with pytest.raises(DataError, match="truncated") as e:
        hd.load_windows("hhar", tmp_path)
    _expect(e, "Phones_accelerometer.csv", text.count("\n"))
    f.write_text(text.replace("Creation_Time", "CreationTime", 1))
    with pytest.raises(DataError, match="expected the header") as e:
        hd.load_windows("hhar", tmp_path)
    _expect(e, "Phones_accelerometer.csv", 1)
    lines = text.splitlines()
    micro = [",".join(f if i != 2 else str(int(f) // 1000) for i, f in enumerate(l.split(","))) for l in lines[1:]]
    f.write_text("\n".join([lines[0]] + micro) + "\n")  # Creation_Time in microseconds: implausible rates
    with pytest.raises(DataError, match="not in nanoseconds"):
        hd.load_windows("hhar", tmp_path)


# ------------------------------------------------------------------------------------- MotionSense

MS_HEADER = "," + ",".join(motionsense.COLUMNS)


def write_motionsense(root, folders=("dws_1", "wlk_7", "sit_5"), subjects=(1, 2, 3), n=300, seed=0, info=True):
    rng = np.random.default_rng(seed)
    base = root / "A_DeviceMotion_data"
    truth = {}
    for fo in folders:
        (base / fo).mkdir(parents=True)
        for s in subjects:
            x = rng.normal(size=(n, 12))
            body = "".join(f"{i}," + ",".join(f"{v:.9g}" for v in r) + "\n" for i, r in enumerate(x))
            (base / fo / f"sub_{s}.csv").write_text(MS_HEADER + "\n" + body)
            truth[(fo, s)] = x
    if info:
        (root / "data_subjects_info.csv").write_text(
            "code,weight,height,age,gender\n" + "".join(f"{s},{60 + s},{170 + s},{25 + s},{s % 2}\n" for s in subjects))
    return base, truth


def test_motionsense_official_format(tmp_path):
    base, truth = write_motionsense(tmp_path)
    with pytest.warns(UserWarning, match="partial: 9 of 360"):
        ws = hd.load_windows("motionsense", tmp_path)
    # 300 samples -> (300 - 128) // 64 + 1 = 3 windows per file
    assert ws.x.shape == (27, 12, 128) and ws.sample_rate == 50.0 and ws.channels == motionsense.COLUMNS
    assert np.bincount(ws.y, minlength=6).tolist() == [9, 0, 9, 0, 9, 0]
    assert len(ws.info["missing_files"]) == 351 and ws.info["subject_info"][2]["height"] == 172
    first = np.nonzero((ws.subjects == 2) & (ws.y == ws.classes.index("walking")))[0][1]
    np.testing.assert_allclose(ws.x[first], truth[("wlk_7", 2)][64:192].T, rtol=1e-6)
    with pytest.warns(UserWarning):
        ds = hd.load("motionsense", tmp_path, protocol="loso", fold=0, features=("userAcceleration",))
    assert ds.channels == ["userAcceleration.x", "userAcceleration.y", "userAcceleration.z"]
    assert ds.split.test == (1,) and len(ds.test) == 9


@pytest.mark.parametrize("edit,msg", [
    (lambda l: "99" + l[l.index(","):], "row index 99 where 10 was expected"),
    (lambda l: l.rsplit(",", 1)[0], "expected 13 columns, found 12"),
    (lambda l: l.replace(",", ",nope,", 1).rsplit(",", 1)[0], "non-numeric value 'nope'"),
])
def test_motionsense_errors_name_file_and_line(tmp_path, edit, msg):
    base, _ = write_motionsense(tmp_path, info=False)
    _edit_line(base / "wlk_7" / "sub_2.csv", 12, edit)
    with pytest.warns(UserWarning), pytest.raises(DataError, match=msg) as e:
        hd.load_windows("motionsense", tmp_path)
    _expect(e, "sub_2.csv", 12)


def test_motionsense_layout_checks(tmp_path):
    base, _ = write_motionsense(tmp_path, subjects=(1, 7))
    (tmp_path / "data_subjects_info.csv").write_text("code,weight,height,age,gender\n1,60,170,25,1\n")
    with pytest.raises(DataError, match=r"subjects \[7\] that data_subjects_info.csv does not list"):
        hd.load_windows("motionsense", tmp_path)
    (base / "run_1").mkdir()
    (base / "run_1" / "sub_1.csv").write_text(MS_HEADER + "\n0" + ",0" * 12 + "\n")
    with pytest.raises(DataError, match="unknown activity folder 'run_1'") as e:
        hd.load_windows("motionsense", tmp_path)
    assert e.value.path.endswith("run_1/sub_1.csv")


def test_motionsense_verified_per_file_download(tmp_path):
    table = motionsense.expected_hashes()
    csvs = [p for p in table if p.endswith(".csv") and "/sub_" in p]
    assert len(csvs) == 360 and len(table) == 361 and sum(size for _, size in table.values()) == 216_236_075
    assert "data_subjects_info.csv" in table and all(len(h) == 64 for h, _ in table.values())
    # mechanism, on local files (file://): a verified file is kept, a wrong one discarded
    srv = tmp_path / "server"
    rel = "A_DeviceMotion_data/A_DeviceMotion_data/dws_1/sub_1.csv"
    (srv / rel).parent.mkdir(parents=True)
    content = (MS_HEADER + "\n0" + ",0.5" * 12 + "\n").encode()
    (srv / rel).write_bytes(content)
    good = {rel: (hashlib.sha256(content).hexdigest(), len(content))}
    out = motionsense.download_files(tmp_path / "dest", srv.as_uri(), table=good)
    assert out[0].read_bytes() == content
    with pytest.raises(DataError, match="file discarded"):
        motionsense.download_files(tmp_path / "dest2", srv.as_uri(), paths=[rel])  # real hashes: the synthetic file fails
    assert not (tmp_path / "dest2" / rel).exists()
    with pytest.raises(DataError, match="no verified SHA-256"):
        motionsense.download_files(tmp_path / "dest3", srv.as_uri(), paths=["A_DeviceMotion_data/x.csv"])
