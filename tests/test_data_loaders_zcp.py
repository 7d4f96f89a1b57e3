"""MobiAct, MyoGym and RealWorld HAR loaders (the ZCP paper's datasets harcore lacked), on small files that
the tests write in each release's layout (none of these datasets is available to the project)."""

import io
import zipfile

import numpy as np
import pytest
from scipy.io import savemat

from harcore import data as hd
from harcore.data import DataError
from harcore.data.datasets import mobiact, myogym, realworld


def _expect(exc, path_end, line):
    assert exc.value.path.endswith(path_end), exc.value.path
    assert exc.value.line == line


# ------------------------------------------------------------------------------------------ MobiAct

def write_mobiact_file(path, segments, rate=100.0, seed=0, t0_ns=46449824617000):
    """``segments``: [(label, n_rows)]. Rows at ``rate`` Hz with a little jitter, values a known function of time."""
    rng = np.random.default_rng(seed)
    n = sum(k for _, k in segments)
    t = np.arange(n) / rate + rng.uniform(0, 0.2 / rate, n)
    t[0] = 0.0
    labels = [lab for lab, k in segments for _ in range(k)]
    rows = ["timestamp,rel_time,acc_x,acc_y,acc_z,gyro_x,gyro_y,gyro_z,azimuth,pitch,roll,label"]
    for i in range(n):
        v = [np.sin(2 * np.pi * 0.5 * t[i]), 9.81 + np.cos(2 * np.pi * 0.3 * t[i]), 0.25 * t[i],
             0.1, -0.2, 0.3, 120.0 + t[i], -5.0, 3.0]
        rows.append(f"{int(t0_ns + t[i] * 1e9)},{t[i]:.6f}," + ",".join(f"{x:.6f}" for x in v) + f",{labels[i]}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")
    return t


def write_mobiact(root):
    base = root / "MobiAct_Dataset_v2.0" / "Annotated Data"
    files = {}
    for subj in (1, 2, 3):
        files[("WAL", subj)] = base / "WAL" / f"WAL_{subj}_1_annotated.csv"
        write_mobiact_file(files[("WAL", subj)], [("WAL", 450)], seed=subj)
        files[("FOL", subj)] = base / "FOL" / f"FOL_{subj}_1_annotated.csv"
        write_mobiact_file(files[("FOL", subj)], [("STD", 250), ("FOL", 120), ("LYI", 300)], seed=10 + subj)
    write_mobiact_file(base / "scenarios" / "SLH" / "SLH_1_1_annotated.csv", [("STD", 300), ("WAL", 500)], seed=99)
    return base, files


def test_mobiact_annotated_release(tmp_path):
    base, files = write_mobiact(tmp_path)
    ws = hd.load_windows("mobiact", tmp_path)
    assert ws.classes == list(mobiact.ADL.values()) and len(ws.classes) == 11
    assert ws.channels == ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z", "azimuth", "pitch", "roll"]
    assert ws.sample_rate == 50.0 and ws.x.shape[1:] == (9, 100)
    # per subject: WAL 450 rows at ~100 Hz = ~4.5 s -> 225 samples at 50 Hz -> 3 windows; STD 250 rows -> 125 -> 1;
    # FOL and LYI are not ADL classes (excluded, counted); the scenario file is skipped by default
    for s in (1, 2, 3):
        m = ws.subjects == s
        assert sorted(ws.y[m].tolist()) == [0, 1, 1, 1]
    assert ws.info["excluded_samples"] == {"FOL": 360, "LYI": 900} and ws.info["files_skipped"] == {"SLH": 1}
    assert ws.info["native_rates"] == [100]
    # values: acc_z is 0.25 * t, so along a window it rises by 0.25 / 50 per sample (resampling keeps a ramp
    # away from the run's edges)
    w = np.nonzero((ws.subjects == 1) & (ws.y == 1))[0][1]
    np.testing.assert_allclose(np.diff(ws.x[w, 2, 10:90]), 0.25 / 50, atol=2e-4)
    np.testing.assert_allclose(ws.x[w, 3], 0.1, atol=1e-4)

    full = hd.load_windows("mobiact", tmp_path, activities="all", scenarios=True, sensors=("acc",))
    assert len(full.classes) == 16 and full.channels == ["acc_x", "acc_y", "acc_z"]
    codes = list(mobiact.LABELS)
    lyi = codes.index("LYI")
    assert int((full.y == lyi).sum()) == 6 and full.info["excluded_samples"] == {}
    assert int((full.subjects == 1).sum()) > int((full.subjects == 2).sum())   # the scenario adds subject 1 windows

    ds = hd.load("mobiact", tmp_path, protocol="loso", fold=1)
    assert ds.split.test == (2,) and len(ds.test) == 4 and len(ds.train) == 8


def test_mobiact_from_a_zip_of_the_release(tmp_path):
    base, _ = write_mobiact(tmp_path / "src")
    z = tmp_path / "MobiAct_Dataset_v2.0.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted((tmp_path / "src").rglob("*.csv")):
            zf.write(p, p.relative_to(tmp_path / "src").as_posix())
    ws = hd.load_windows("mobiact", z, subjects=[2, 3])
    assert sorted(set(ws.subjects.tolist())) == [2, 3] and ws.x.shape == (8, 9, 100)
    assert ws.info["source"] == str(z)


@pytest.mark.parametrize("edit,msg,line", [
    (lambda r: r.rsplit(",", 2)[0] + ",WAL", "expected 12 comma-separated fields", 7),
    (lambda r: r.replace(",", ",abc,", 1).rsplit(",", 1)[0] + "", "non-numeric value 'abc' in column rel_time", 7),
    (lambda r: r.rsplit(",", 1)[0] + ",XYZ", "unknown activity label 'XYZ'", 7),
    (lambda r: r.split(",", 2)[0] + ",0.0," + r.split(",", 2)[2], "rel_time goes backwards", 7),
])
def test_mobiact_errors_name_file_and_line(tmp_path, edit, msg, line):
    _, files = write_mobiact(tmp_path)
    f = files[("WAL", 2)]
    lines = f.read_text().split("\n")
    lines[line - 1] = edit(lines[line - 1])
    f.write_text("\n".join(lines))
    with pytest.raises(DataError, match=msg) as e:
        hd.load_windows("mobiact", tmp_path)
    _expect(e, "WAL_2_1_annotated.csv", line)


def test_mobiact_header_code_and_truncation(tmp_path):
    _, files = write_mobiact(tmp_path)
    f = files[("WAL", 1)]
    text = f.read_text()
    f.write_text(text.replace(",gyro_z,", ",", 1))
    with pytest.raises(DataError, match="missing column.* gyro_z") as e:
        hd.load_windows("mobiact", tmp_path)
    _expect(e, "WAL_1_1_annotated.csv", 1)
    f.write_text(text[:-30])
    with pytest.raises(DataError, match="truncated") as e:
        hd.load_windows("mobiact", tmp_path)
    assert e.value.path.endswith("WAL_1_1_annotated.csv") and e.value.line == 451
    f.write_text(text)
    bad = f.parent.parent / "XXX" / "XXX_1_1_annotated.csv"
    bad.parent.mkdir()
    bad.write_text(text)
    with pytest.raises(DataError, match="unknown activity code 'XXX'") as e:
        hd.load_windows("mobiact", tmp_path)
    assert e.value.path.endswith("XXX_1_1_annotated.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no MobiAct copy here"):
        hd.load_windows("mobiact", tmp_path / "empty")


def test_mobiact_truncated_zip_member(tmp_path):
    write_mobiact(tmp_path / "src")
    z = tmp_path / "m.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted((tmp_path / "src").rglob("*.csv")):
            zf.write(p, p.relative_to(tmp_path / "src").as_posix())
    raw = bytearray(z.read_bytes())
    with zipfile.ZipFile(z) as zf:
        info = zf.getinfo("MobiAct_Dataset_v2.0/Annotated Data/WAL/WAL_1_1_annotated.csv")
    mid = info.header_offset + 30 + len(info.filename) + info.compress_size // 2
    raw[mid:mid + 8] = b"\0" * 8   # damage the compressed data of one member
    z.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="corrupted") as e:
        hd.load_windows("mobiact", z)
    assert e.value.path.endswith("WAL_1_1_annotated.csv")


# ------------------------------------------------------------------------------------------- MyoGym

def make_myogym(participants=(1, 2, 3), seed=0):
    """Rows of raw_data / raw_data_labels: per participant 99 x 120, exercise 7 x 230, 99 x 60, exercise 12 x 160."""
    rng = np.random.default_rng(seed)
    raws, labs = [], []
    for p in participants:
        seq = [(99, 120), (7, 230), (99, 60), (12, 160)]
        lab = np.concatenate([np.full(n, k) for k, n in seq])
        n = lab.size
        raw = np.round(rng.normal(size=(n, 17)), 4)
        t = 1000.0 * p + np.arange(n) * 0.02
        raw[:, 0] = raw[:, 9] = raw[:, 13] = t
        raw[:, 1:9] = rng.integers(-128, 128, size=(n, 8))
        raw[:, 10] = np.arange(n) * 0.001 + p      # acc_x: a ramp, to check values and order
        raws.append(raw)
        labs.append(np.stack([lab, np.full(n, p)], axis=1))
    return np.concatenate(raws), np.concatenate(labs).astype(np.float64)


def write_myogym(root, raw, lab, name="MyoGym.mat"):
    d = root / "MyoGym"
    d.mkdir(parents=True, exist_ok=True)
    savemat(d / name, {"raw_data": raw, "raw_data_labels": lab})
    return d / name


def test_myogym_release_file(tmp_path):
    raw, lab = make_myogym()
    write_myogym(tmp_path, raw, lab)
    ws = hd.load_windows("myogym", tmp_path)
    assert ws.classes[0] == "null" and ws.classes[7] == "Bench Press" and ws.classes[12] == "Leverage Chest Press"
    assert ws.classes[1:] == myogym.EXERCISES and len(ws.classes) == 31 and ws.sample_rate == 50.0
    assert ws.channels == [f"emg_{i}" for i in range(1, 9)] + ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
    # per participant: null 120 -> 1 window, ex 7 230 -> 3, null 60 -> 0, ex 12 160 -> 2
    for p in (1, 2, 3):
        assert sorted(ws.y[ws.subjects == p].tolist()) == [0, 7, 7, 7, 12, 12]
    w = np.nonzero((ws.subjects == 2) & (ws.y == 7))[0][0]
    start = 570 + 120   # participant 1's 570 rows, then participant 2's null block
    np.testing.assert_allclose(ws.x[w, 8], raw[start:start + 100, 10].astype(np.float32))
    np.testing.assert_allclose(ws.x[w, :8], raw[start:start + 100, 1:9].T)
    assert ws.info["start_row"][w] == start

    nn = hd.load_windows("myogym", tmp_path, include_null=False, sensors=("acc",))
    assert len(nn.classes) == 30 and nn.classes[6] == "Bench Press" and nn.channels == ["acc_x", "acc_y", "acc_z"]
    assert sorted(set(nn.y.tolist())) == [6, 11] and len(nn.y) == 15 and nn.info["excluded_null_rows"] == 3 * 180
    ds = hd.load("myogym", tmp_path, protocol="loso", fold=0)
    assert ds.split.test == (1,) and len(ds.test) == 6
    r25 = hd.load_windows("myogym", tmp_path, resample_to=25, window=50, step=25)
    assert r25.sample_rate == 25.0 and r25.x.shape[1:] == (14, 50)


def test_myogym_time_reset_starts_a_new_recording(tmp_path):
    raw, lab = make_myogym(participants=(1,))
    raw[220:, 9] -= 100.0   # the acc clock jumps back inside exercise 7 (rows 120-349): a new session
    write_myogym(tmp_path, raw, lab)
    ws = hd.load_windows("myogym", tmp_path)
    assert ws.info["time_resets"] == 1
    assert sorted(ws.y.tolist()) == [0, 7, 7, 12, 12]  # 100 + 130 rows: one window each instead of 3


def test_myogym_errors_name_file_and_row(tmp_path):
    raw, lab = make_myogym()
    bad = lab.copy()
    bad[41, 0] = 31
    f = write_myogym(tmp_path / "a", raw, bad)
    with pytest.raises(DataError, match="unknown exercise label 31") as e:
        hd.load_windows("myogym", tmp_path / "a")
    _expect(e, "MyoGym.mat", 42)
    bad = raw.copy()
    bad[9, 11] = np.nan
    write_myogym(tmp_path / "b", bad, lab)
    with pytest.raises(DataError, match="non-finite value in raw_data column 11") as e:
        hd.load_windows("myogym", tmp_path / "b")
    _expect(e, "MyoGym.mat", 10)
    write_myogym(tmp_path / "c", raw[:, :12], lab)
    with pytest.raises(DataError, match="12 columns, expected at least 17"):
        hd.load_windows("myogym", tmp_path / "c")
    write_myogym(tmp_path / "d", raw, lab[:-3])
    with pytest.raises(DataError, match="rows but 'raw_data_labels'"):
        hd.load_windows("myogym", tmp_path / "d")
    savemat(tmp_path / "e.mat", {"raw_data": raw})
    (tmp_path / "e").mkdir()
    (tmp_path / "e" / "MyoGym.mat").write_bytes((tmp_path / "e.mat").read_bytes())
    with pytest.raises(DataError, match="no variable 'raw_data_labels'"):
        hd.load_windows("myogym", tmp_path / "e")
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "MyoGym.mat").write_bytes(f.read_bytes()[:500])
    with pytest.raises(DataError, match="corrupted or truncated") as e:
        hd.load_windows("myogym", tmp_path / "f")
    assert e.value.path.endswith("MyoGym.mat")
    good = write_myogym(tmp_path / "h", raw, lab)
    with zipfile.ZipFile(tmp_path / "g.zip", "w") as zf:
        zf.write(good, "MyoGym/MyoGym.mat")
    assert hd.load_windows("myogym", tmp_path / "g.zip").x.shape == (18, 14, 100)


# ---------------------------------------------------------------------------------------- RealWorld

def _rw_csv(prefix, act, pos, t_ms, v, session=None):
    name = f"{prefix}_{act}{'' if session is None else f'_{session}'}_{pos}.csv"
    rows = ["id,attr_time,attr_x,attr_y,attr_z"]
    rows += [f"{i + 1},{int(t)},{a:.6f},{b:.6f},{c:.6f}" for i, (t, a, b, c) in enumerate(zip(t_ms, *v))]
    return name, ("\n".join(rows) + "\n").encode()


def _zip_bytes(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
    return buf.getvalue()


def rw_signal(t_ms, pos_i, subj):
    s = (t_ms - 1435000000000) / 1000.0
    return np.stack([np.sin(2 * np.pi * 0.2 * s) + pos_i, 0.5 * s + subj, np.full(s.shape, 9.81)])


def write_realworld(root, subjects=(1, 2, 3), positions=("chest", "head", "waist"), drop=None, n=400, gap=None):
    """Per subject: walking and sitting sessions (n samples at ~50 Hz, per position its own clock offset and
    jitter) as ``proband<N>/data/acc_<act>_csv.zip``; subject 1's climbingup comes as a zip holding the zips
    of sessions 1 and 2. ``drop``: (subject, act, position) left out; ``gap``: (subject, act, t0_ms, t1_ms)."""
    rng = np.random.default_rng(0)
    top = root / "realworld2016_dataset"
    for subj in subjects:
        d = top / f"proband{subj}" / "data"
        d.mkdir(parents=True)
        for act in ("walking", "sitting") + (("climbingup",) if subj == 1 else ()):
            sessions = (1, 2) if act == "climbingup" else (None,)
            inner = []
            for sess in sessions:
                members = []
                for i, pos in enumerate(positions):
                    if drop == (subj, act, pos):
                        continue
                    t = np.round(1435000000000 + 37 * i + np.arange(n) * 20.0 + rng.uniform(-3, 3, n))  # whole ms
                    if gap is not None and gap[:2] == (subj, act):
                        t = t[(t - t[0] < gap[2]) | (t - t[0] > gap[3])]
                    members.append(_rw_csv("acc", act, pos, t, rw_signal(t, i, subj), sess))
                    tg = t + 5
                    members.append(_rw_csv("Gyroscope", act, pos, tg, rw_signal(tg, -i, subj), sess))
                if sess is None:
                    (d / f"acc_{act}_csv.zip").write_bytes(_zip_bytes([m for m in members if m[0].startswith("acc")]))
                    (d / f"gyr_{act}_csv.zip").write_bytes(_zip_bytes([m for m in members if m[0].startswith("Gyr")]))
                else:
                    acc = [m for m in members if m[0].startswith("acc")]
                    inner.append((f"acc_{act}_{sess}_csv.zip", _zip_bytes(acc)))
            if inner:
                (d / f"acc_{act}_csv.zip").write_bytes(_zip_bytes(inner))
        (d / "gps_walking_csv.zip").write_bytes(b"not read")   # other sensors are never opened
    return top


def test_realworld_release_layout(tmp_path):
    write_realworld(tmp_path)
    ws = hd.load_windows("realworld", tmp_path, positions=("chest", "head", "waist"))
    assert ws.classes == realworld.ACTIVITIES and ws.sample_rate == 50.0
    assert ws.channels == [f"{p}_acc_{a}" for p in ("chest", "head", "waist") for a in "xyz"]
    # 400 samples per stream; the common span is ~398 samples -> 6 windows of 100 every 50 per session
    for s in (1, 2, 3):
        m = ws.subjects == s
        counts = np.bincount(ws.y[m], minlength=8)
        assert counts[realworld.ACTIVITIES.index("walking")] == 6 and counts[realworld.ACTIVITIES.index("sitting")] == 6
    # subject 1's two climbingup sessions from the nested zips
    assert int(((ws.subjects == 1) & (ws.y == 1)).sum()) == 12
    assert sorted(ws.info["sessions"])[:2] == ["proband1/climbingup/1", "proband1/climbingup/2"]
    # values: x = sin + position index; y = 0.5 t + subject, linear in time -> exact after interpolation
    w = np.nonzero(ws.subjects == 3)[0][0]
    sec = (ws.x[w, 1].astype(np.float64) - 3) / 0.5          # chest y recovers the time of each grid point
    np.testing.assert_allclose(np.diff(sec), 1 / 50, atol=1e-4)
    assert 0 <= sec[0] < 0.2
    for i, c in enumerate((0, 3, 6)):                           # chest, head, waist x: sin + position index
        np.testing.assert_allclose(ws.x[w, c], np.sin(2 * np.pi * 0.2 * sec) + i, atol=2e-3)
    np.testing.assert_allclose(ws.x[w, 2], 9.81, atol=1e-5)
    with pytest.warns(UserWarning, match="2 session"):
        both = hd.load_windows("realworld", tmp_path, positions=("head",), sensors=("acc", "gyr"))
    assert both.channels == ["head_acc_x", "head_acc_y", "head_acc_z", "head_gyr_x", "head_gyr_y", "head_gyr_z"]
    # climbingup has no gyroscope zip: left out with a warning
    assert any("climbingup" in s for s in both.info["incomplete_sessions"])
    ds = hd.load("realworld", tmp_path, positions=("chest",), protocol="loso", fold=2)
    chest = hd.load_windows("realworld", tmp_path, positions=("chest",))
    # one stream alone spans its 399-400 grid points: 6 or 7 windows per session
    assert ds.split.test == (3,) and len(ds.test) == int((chest.subjects == 3).sum()) and 12 <= len(ds.test) <= 14


def test_realworld_incomplete_session_and_gap(tmp_path):
    write_realworld(tmp_path, drop=(2, "sitting", "head"), gap=(3, "walking", 3000, 3600))
    with pytest.warns(UserWarning, match="1 session"):
        ws = hd.load_windows("realworld", tmp_path, positions=("chest", "head", "waist"))
    assert ws.info["incomplete_sessions"] == ["proband2 sitting session 1: no acc/head"]
    sit = realworld.ACTIVITIES.index("sitting")
    assert int(((ws.subjects == 2) & (ws.y == sit)).sum()) == 0
    # subject 3's walking: each stream lacks 3.0-3.6 s after its own start (starts 0, 37, 74 ms apart), so the
    # common grid (from 74 ms) runs ~145 points, a gap, then ~214 points -> 1 + 3 windows, none across the gap
    walk = realworld.ACTIVITIES.index("walking")
    m = (ws.subjects == 3) & (ws.y == walk)
    assert int(m.sum()) == 4 and ws.info["grid_points_in_gaps"] > 25
    st = np.sort(ws.info["start"][m])
    assert st[0] == 0 and st[1] > 145 and np.all(np.diff(st[1:]) == 50)
    ok = hd.load_windows("realworld", tmp_path, positions=("chest",), subjects=[2])
    assert int((ok.y == sit).sum()) == 6   # without head, subject 2's sitting is complete


def test_realworld_from_the_release_zip_and_errors(tmp_path):
    top = write_realworld(tmp_path / "src", subjects=(1, 2))
    z = tmp_path / "realworld2016_dataset.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for p in sorted(top.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(tmp_path / "src").as_posix())
    ws = hd.load_windows("realworld", z, positions=("waist",))
    folder = hd.load_windows("realworld", tmp_path / "src", positions=("waist",))
    assert ws.info["source"] == str(z) and 36 <= len(ws.y) <= 42   # 5 sessions x 6-7 windows + 1 (sub 1 climbing 2)
    np.testing.assert_array_equal(ws.x, folder.x)
    np.testing.assert_array_equal(ws.y, folder.y)
    # a malformed line names the outer zip, the inner zip and the csv, and the line
    d = top / "proband2" / "data"
    members = []
    with zipfile.ZipFile(d / "acc_sitting_csv.zip") as zf:
        for n in zf.namelist():
            data = zf.read(n)
            if n == "acc_sitting_waist.csv":
                lines = data.decode().split("\n")
                lines[9] = lines[9].rsplit(",", 1)[0]
                data = "\n".join(lines).encode()
            members.append((n, data))
    (d / "acc_sitting_csv.zip").write_bytes(_zip_bytes(members))
    with pytest.raises(DataError, match="expected 5 columns, found 4") as e:
        hd.load_windows("realworld", tmp_path / "src", positions=("waist",))
    _expect(e, "acc_sitting_csv.zip:acc_sitting_waist.csv", 10)
    # a missing column
    short = b"id,attr_time,attr_x,attr_y\n1,2,3,4\n"
    (d / "acc_sitting_csv.zip").write_bytes(_zip_bytes([("acc_sitting_waist.csv", short)]))
    with pytest.raises(DataError, match="missing column.* attr_z") as e:
        hd.load_windows("realworld", tmp_path / "src", positions=("waist",))
    _expect(e, "acc_sitting_waist.csv", 1)
    # an unknown activity or position
    elbow = [("acc_sitting_elbow.csv", b"id,attr_time,attr_x,attr_y,attr_z\n")]
    (d / "acc_sitting_csv.zip").write_bytes(_zip_bytes(elbow))
    with pytest.raises(DataError, match="unknown body position 'elbow'"):
        hd.load_windows("realworld", tmp_path / "src", positions=("waist",))
    (d / "acc_sitting_csv.zip").unlink()
    (d / "acc_dancing_csv.zip").write_bytes(_zip_bytes([]))
    with pytest.raises(DataError, match="unknown activity 'dancing'") as e:
        hd.load_windows("realworld", tmp_path / "src", positions=("waist",))
    assert e.value.path.endswith("proband2/data/acc_dancing_csv.zip")
    # a truncated zip
    (d / "acc_dancing_csv.zip").unlink()
    blob = _zip_bytes([("acc_walking_waist.csv", np.random.default_rng(1).bytes(4000))])
    (d / "acc_walking_csv.zip").write_bytes(blob[:len(blob) // 2])
    with pytest.raises(DataError, match="corrupted or truncated") as e:
        hd.load_windows("realworld", tmp_path / "src", positions=("waist",))
    assert e.value.path.endswith("acc_walking_csv.zip")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no RealWorld HAR copy here"):
        hd.load_windows("realworld", tmp_path / "empty")


# ------------------------------------------------------------------------------------- ZCP protocol

def test_zcp_study_reads_the_three_datasets_accelerometer_at_50_hz(tmp_path):
    from harcore.zcp.study import STUDY_DATASETS, load_study_data

    write_mobiact(tmp_path / "mobiact")
    raw, lab = make_myogym(participants=tuple(range(1, 6)))
    write_myogym(tmp_path / "myogym", raw, lab)
    write_realworld(tmp_path / "realworld", subjects=(1, 2, 3, 4, 5),
                    positions=("chest", "forearm", "head", "shin", "thigh", "upperarm", "waist"))
    for name, channels in (("mobiact", ["acc_x", "acc_y", "acc_z"]), ("myogym", ["acc_x", "acc_y", "acc_z"]),
                           ("realworld", [f"{p}_acc_{a}" for p in realworld.PAPER_POSITIONS for a in "xyz"])):
        assert name in STUDY_DATASETS
        d = load_study_data(name, tmp_path / name, seed=0)
        assert d.channels == channels and d.sample_rate == 50.0 and d.seq_len == 100, name
        assert len(d.y_train) and len(d.y_val) and len(d.y_test)


def test_sequence_options_as_the_command_line_passes_them(tmp_path):
    """``--dataset-option sensors=acc,gyro`` arrives as a string: it is comma-separated, never split into letters."""
    raw, lab = make_myogym()
    write_myogym(tmp_path / "myogym", raw, lab)
    ws = hd.load_windows("myogym", tmp_path / "myogym", sensors="acc,gyro", subjects="1,3")
    assert ws.channels == ["acc_x", "acc_y", "acc_z", "gyro_x", "gyro_y", "gyro_z"]
    assert sorted(set(ws.subjects.tolist())) == [1, 3]
    assert hd.load_windows("myogym", tmp_path / "myogym", sensors="emg", subjects=2).x.shape == (6, 8, 100)
    write_realworld(tmp_path / "rw", subjects=(1,))
    assert hd.load_windows("realworld", tmp_path / "rw", positions="head,waist").channels[0] == "head_acc_x"
    write_mobiact(tmp_path / "ma")
    assert hd.load_windows("mobiact", tmp_path / "ma", sensors="gyro").channels == ["gyro_x", "gyro_y", "gyro_z"]
    with pytest.raises(ValueError, match="sensors must be a non-empty subset"):
        hd.load_windows("myogym", tmp_path / "myogym", sensors="acc,magnet")


RAW_HEADER = """#Acceleration force along the x y z axes (including gravity).
#timestamp(ns),x,y,z(m/s^2)
#Datetime: 02/06/2014 15:24:25
##########################################
#Activity: 2 - WAL - Walking - 5min
#Subject ID: {s}
#First Name: sub{s}
#Last Name: sub{s}
#Age: 22
#Height(cm): 187
#Weight(kg): 90
#Gender: Male
##########################################

@DATA
"""


def write_mobiact_raw(root, subjects=(1, 2), n=700, rate=100.0):
    """The raw accelerometer files in MobiAct v1's layout (sub<N>/ADL/<CODE>/, sub<N>/FALLS/<CODE>/)."""
    files = {}
    for s in subjects:
        for kind, code in (("ADL", "WAL"), ("ADL", "JOG"), ("FALLS", "FOL")):
            t = np.arange(n) / rate
            ts = (46449824617000 + t * 1e9).astype(np.int64)
            rows = [f"{a}, {np.sin(2 * np.pi * tt):.7g}, {9.81 + s:.7g}, {0.5 * tt:.7g}" for a, tt in zip(ts, t)]
            f = root / f"sub{s}" / kind / code / f"{code}_acc_{s}_1.txt"
            f.parent.mkdir(parents=True, exist_ok=True)
            f.write_text(RAW_HEADER.format(s=s) + "\n".join(rows) + "\n")
            files[(code, s)] = f
    return files


def test_mobiact_raw_accelerometer_files(tmp_path):
    files = write_mobiact_raw(tmp_path)
    ws = hd.load_windows("mobiact", tmp_path, variant="raw")
    assert ws.channels == ["acc_x", "acc_y", "acc_z"] and ws.sample_rate == 50.0
    # 700 rows at 100 Hz = 7 s = 350 samples at 50 Hz -> 6 windows per file; the fall file is skipped
    wal, jog = list(mobiact.ADL).index("WAL"), list(mobiact.ADL).index("JOG")
    for s in (1, 2):
        assert sorted(ws.y[ws.subjects == s].tolist()) == [wal] * 6 + [jog] * 6
    assert ws.info["files_skipped"] == {"FOL": 2} and ws.info["native_rates"] == [100]
    w = np.nonzero(ws.subjects == 2)[0][1]
    np.testing.assert_allclose(ws.x[w, 1], 11.81, atol=1e-4)
    np.testing.assert_allclose(np.diff(ws.x[w, 2, 5:95]), 0.5 / 50, atol=1e-4)
    with pytest.raises(ValueError, match="raw files carry no per-sample labels"):
        hd.load_windows("mobiact", tmp_path, variant="raw", activities="all")
    f = files[("JOG", 2)]
    text = f.read_text()
    lines = text.split("\n")
    lines[40] = lines[40].rsplit(",", 1)[0]                  # file line 41: the 26th data row
    f.write_text("\n".join(lines))
    with pytest.raises(DataError, match="expected 4 columns, found 3") as e:
        hd.load_windows("mobiact", tmp_path, variant="raw")
    _expect(e, "JOG_acc_2_1.txt", 41)
    lines = text.split("\n")
    lines[30], lines[31] = lines[31], lines[30]               # two samples out of order
    f.write_text("\n".join(lines))
    with pytest.raises(DataError, match="timestamp goes backwards") as e:
        hd.load_windows("mobiact", tmp_path, variant="raw")
    _expect(e, "JOG_acc_2_1.txt", 32)
    f.write_text(text.replace("@DATA\n", ""))
    with pytest.raises(DataError, match="no '@DATA' line") as e:
        hd.load_windows("mobiact", tmp_path, variant="raw")
    assert e.value.path.endswith("JOG_acc_2_1.txt")


def test_mobiact_short_runs_between_labels_are_skipped_not_misread(tmp_path):
    """Two rows of another label 0.3 s apart (under max_gap_s) imply ~3 Hz: too short to window, so they are
    counted as a short run instead of failing the rate check meant for a wrong time unit."""
    t = np.concatenate([np.arange(300) / 100, [3.0, 3.3], 3.6 + np.arange(300) / 100])
    lab = ["WAL"] * 300 + ["STN"] * 2 + ["WAL"] * 300
    rows = [",".join(mobiact.HEADER)]
    rows += [f"{int(1e12 + x * 1e9)},{x:.4f},1,2,3,4,5,6,7,8,9,{c}" for x, c in zip(t, lab)]
    f = tmp_path / "Annotated Data" / "WAL" / "WAL_4_2_annotated.csv"
    f.parent.mkdir(parents=True)
    f.write_text("\n".join(rows) + "\n")
    ws = hd.load_windows("mobiact", tmp_path)
    assert ws.x.shape == (4, 9, 100) and set(ws.y.tolist()) == {list(mobiact.ADL).index("WAL")}
    assert ws.info["runs"] == 3 and ws.info["runs_shorter_than_window"] == 1
    np.testing.assert_allclose(ws.x[:, 8], 9.0, atol=1e-5)


def test_realworld_from_a_tar_archive(tmp_path):
    import tarfile

    top = write_realworld(tmp_path / "src", subjects=(1, 2))
    tar = tmp_path / "realworld2016_dataset.tar.gz"
    with tarfile.open(tar, "w:gz") as tf:
        tf.add(top, arcname="realworld2016_dataset")
    ws = hd.load_windows("realworld", tar, positions=("head", "waist"))
    folder = hd.load_windows("realworld", tmp_path / "src", positions=("head", "waist"))
    np.testing.assert_array_equal(ws.x, folder.x)
    assert ws.info["source"] == str(tar)


def test_resample_keeps_an_offset_signal_exact_at_its_ends():
    x = 9.81 + 0.01 * np.arange(300.0)          # gravity plus a linear drift
    y = hd.resample(x, 100, 50)                  # the default, padtype "line", for every loader
    np.testing.assert_allclose(y, x[::2], atol=1e-9)
    z = hd.resample(x, 100, 50, padtype="constant")  # scipy's default (zeros beyond the ends) rings there
    assert abs(z[0] - x[0]) > 1.0 and np.allclose(z[20:-20], x[::2][20:-20], atol=1e-3)


def test_realworld_copy_unzipped_beside_its_zips(tmp_path):
    top = write_realworld(tmp_path, subjects=(1, 2))
    before = hd.load_windows("realworld", tmp_path, positions=("chest", "head"))
    d = top / "proband2" / "data"
    with zipfile.ZipFile(d / "acc_walking_csv.zip") as zf:
        zf.extractall(d)
    ws = hd.load_windows("realworld", tmp_path, positions=("chest", "head"))
    np.testing.assert_array_equal(ws.x, before.x)
    assert len(ws.info["duplicate_copies"]) == 3 and all("proband2/data/acc_walking_" in p
                                                         for p in ws.info["duplicate_copies"])
    f = d / "acc_walking_head.csv"
    f.write_text(f.read_text().replace("\n2,", "\n2,1", 1))
    with pytest.raises(DataError, match="acc_walking_head.csv appears twice with different contents"):
        hd.load_windows("realworld", tmp_path, positions=("chest", "head"))


def test_myogym_rows_stored_twice_are_one_sample(tmp_path):
    raw, lab = make_myogym(participants=(1,))
    raw2 = np.insert(raw, 150, raw[149], axis=0)          # row 149 stored twice (inside exercise 7)
    lab2 = np.insert(lab, 150, lab[149], axis=0)
    write_myogym(tmp_path / "a", raw, lab)
    write_myogym(tmp_path / "b", raw2, lab2)
    a = hd.load_windows("myogym", tmp_path / "a")
    b = hd.load_windows("myogym", tmp_path / "b")
    np.testing.assert_array_equal(a.x, b.x)
    assert b.info["duplicate_rows"] == 1 and b.info["time_resets"] == 0
    # start rows refer to the file: after the duplicate they are one further down
    assert a.info["start_row"].tolist() == [0, 120, 170, 220, 410, 460]
    assert b.info["start_row"].tolist() == [0, 120, 171, 221, 411, 461]
    r = hd.load_windows("myogym", tmp_path / "a", resample_to=25, window=50, step=25)
    assert r.info["start_row"].tolist() == [0, 120, 170, 220, 410, 460]


def test_truncated_text_files_name_their_last_line(tmp_path):
    top = write_realworld(tmp_path / "rw", subjects=(1,))
    d = top / "proband1" / "data"
    with zipfile.ZipFile(d / "acc_sitting_csv.zip") as zf:
        members = [(n, zf.read(n)) for n in zf.namelist()]
    members = [(n, b[:-9] if n == "acc_sitting_head.csv" else b) for n, b in members]   # cut inside the last row
    (d / "acc_sitting_csv.zip").write_bytes(_zip_bytes(members))
    with pytest.raises(DataError, match="truncated") as e:
        hd.load_windows("realworld", tmp_path / "rw", positions=("head",))
    _expect(e, "acc_sitting_csv.zip:acc_sitting_head.csv", 401)
    files = write_mobiact_raw(tmp_path / "raw", subjects=(1,))
    f = files[("WAL", 1)]
    f.write_text(f.read_text()[:-5])
    with pytest.raises(DataError, match="truncated") as e:
        hd.load_windows("mobiact", tmp_path / "raw", variant="raw")
    _expect(e, "WAL_acc_1_1.txt", 15 + 700)   # 14 header lines, @DATA, then 700 rows


def test_realworld_data_file_names_that_break_the_pattern(tmp_path):
    top = write_realworld(tmp_path, subjects=(1,))
    d = top / "proband1" / "data"
    (d / "acc_sitting_csv.zip").write_bytes(_zip_bytes([("acc_sitting.csv", b"id,attr_time,attr_x,attr_y,attr_z\n")]))
    with pytest.raises(DataError, match="not acc_<activity>.*_<position>.csv") as e:
        hd.load_windows("realworld", tmp_path)
    assert e.value.path.endswith("acc_sitting_csv.zip:acc_sitting.csv")
    (d / "acc_sitting_csv.zip").rename(d / "acc_sitting.zip")
    with pytest.raises(DataError, match="not acc_<activity>.*_csv.zip"):
        hd.load_windows("realworld", tmp_path)
    # a zip of a sensor that is not selected is never opened
    (d / "acc_sitting.zip").rename(d / "mag_sitting.zip")
    assert hd.load_windows("realworld", tmp_path, positions=("chest",)).x.shape[1] == 3


def test_data_list_names_where_to_get_them(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from harcore.cli import app

    monkeypatch.setenv("HARCORE_DATA", str(tmp_path))
    r = CliRunner().invoke(app, ["data", "list"])
    assert r.exit_code == 0
    rows = {line.split()[0]: line for line in r.output.splitlines()}
    for name, module in (("mobiact", mobiact), ("myogym", myogym), ("realworld", realworld)):
        assert "no download: bring a local copy" in rows[name] and module.URL in rows[name]
