"""harcore.runstore: atomic saves, RNG state, the one checkpoint format (damage, old formats, changed
configuration), and the rules of a run folder (new run, resume, overwrite)."""

from __future__ import annotations

import os
import random
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from harcore import runstore
from harcore.errors import CheckpointError, RunExistsError

torch.set_num_threads(1)

CFG = {"lr": 1e-3, "beta1": 1.0, "epochs": 3, "progress": True, "tail": {"b": 1, "a": 2}}


def write_ck(path: Path, **over) -> Path:
    cfg = dict(CFG, **over)
    return runstore.save_checkpoint(path, "unit", cfg, {"epoch": 2, "w": torch.arange(6.0)}, meta={"n": 10},
                                    free={"progress"})


def test_checkpoint_round_trip_has_the_header_and_loads_without_pickles(tmp_path):
    p = write_ck(tmp_path / "a.pt")
    raw = torch.load(p, weights_only=True)  # nothing but tensors and plain values inside
    assert raw["format"] == runstore.FORMAT and raw["version"] == runstore.VERSION and raw["kind"] == "unit"
    assert raw["fingerprint"] == runstore.fingerprint(CFG, {"progress"})
    ck = runstore.load_checkpoint(p, "unit", require=("epoch", "w"))
    assert ck["epoch"] == 2 and torch.equal(ck["w"], torch.arange(6.0)) and ck["meta"] == {"n": 10}
    assert [q.name for q in tmp_path.iterdir()] == ["a.pt"]  # no temp file left behind
    # the fingerprint ignores the free fields and the order of keys, and sees every other change
    assert runstore.fingerprint(dict(CFG, progress=False), {"progress"}) == raw["fingerprint"]
    assert runstore.fingerprint({"tail": {"a": 2, "b": 1}, **{k: v for k, v in CFG.items() if k != "tail"}},
                                {"progress"}) == raw["fingerprint"]
    assert runstore.fingerprint(dict(CFG, lr=2e-3), {"progress"}) != raw["fingerprint"]
    with pytest.raises(CheckpointError, match=r"a\.pt: a 'unit' checkpoint, expected a 'search' one"):
        runstore.load_checkpoint(p, "search")
    with pytest.raises(CheckpointError, match=r"lacks field\(s\) opt"):
        runstore.load_checkpoint(p, "unit", require=("opt",))


@pytest.mark.parametrize("damage", ["truncated", "random", "empty", "wrong-format", "not-a-dict", "old-format",
                                    "newer-version", "folder", "missing"])
def test_a_damaged_checkpoint_is_an_error_naming_the_file_and_what_is_wrong(tmp_path, damage):
    p = tmp_path / "ck.pt"
    want = {"truncated": "damaged or not a harcore checkpoint", "random": "damaged or not a harcore checkpoint",
            "empty": "is empty", "wrong-format": "not a harcore checkpoint", "not-a-dict": "not a harcore checkpoint",
            "old-format": "older harcore", "newer-version": "newer than this harcore reads", "folder": "is a folder",
            "missing": "no such checkpoint"}[damage]
    if damage == "truncated":
        write_ck(p)
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
    elif damage == "random":
        p.write_bytes(np.random.default_rng(0).bytes(4096))
    elif damage == "empty":
        p.write_bytes(b"")
    elif damage == "wrong-format":
        torch.save({"format": "something-else", "x": 1}, p)
    elif damage == "not-a-dict":
        torch.save([1, 2, 3], p)
    elif damage == "old-format":  # what harcore wrote before the run store: numpy RNG state pickled
        torch.save({"format": "harcore.nas.search/1", "epoch": 1, "rng": np.random.get_state()}, p)
    elif damage == "newer-version":
        write_ck(p)
        ck = torch.load(p, weights_only=True)
        torch.save(dict(ck, version=runstore.VERSION + 1), p)
    elif damage == "folder":
        p.mkdir()
    with pytest.raises(CheckpointError) as e:
        runstore.load_checkpoint(p, "unit")
    assert str(p) in str(e.value) and want in str(e.value), str(e.value)
    assert "\n" not in str(e.value)


def test_resuming_with_another_configuration_names_every_differing_field(tmp_path):
    ck = runstore.load_checkpoint(write_ck(tmp_path / "a.pt"), "unit")
    runstore.check_resume(ck, tmp_path / "a.pt", dict(CFG, progress=False), {"n": 10}, {"progress"})  # free: fine
    with pytest.raises(CheckpointError) as e:
        runstore.check_resume(ck, tmp_path / "a.pt", dict(CFG, beta1=0.5, lr=0.1), {"n": 11}, {"progress"})
    msg = str(e.value)
    assert "config.beta1" in msg and "with 1.0, resuming with 0.5" in msg and "config.lr" in msg
    assert "n: " in msg and "resuming with 11" in msg and "--overwrite" in msg and "config.epochs" not in msg
    # a field a newer harcore added, or one it dropped: said as such, not as a value of None
    with pytest.raises(CheckpointError) as e:
        runstore.check_resume(ck, tmp_path / "a.pt", dict(CFG, bn_calib=2048), {"n": 10}, {"progress"})
    assert "config.bn_calib" in str(e.value) and "written by a harcore without this option (now 2048)" in str(e.value)
    with pytest.raises(CheckpointError) as e:
        runstore.check_resume(ck, tmp_path / "a.pt", {k: v for k, v in CFG.items() if k != "beta1"}, {"n": 10})
    assert "config.beta1" in str(e.value) and "an option this harcore does not have" in str(e.value)


def test_an_interrupted_atomic_write_leaves_the_old_file(tmp_path, monkeypatch):
    p = write_ck(tmp_path / "a.pt")
    before = p.read_bytes()

    class Killed(BaseException):
        pass

    def die(*_):
        raise Killed

    monkeypatch.setenv("HARCORE_TEST_SAVE_PAUSE", "1")
    monkeypatch.setattr(runstore.time, "sleep", die)  # dies half-way through writing the temp file
    with pytest.raises(Killed):
        write_ck(p, lr=5.0)
    assert p.read_bytes() == before and [q.name for q in tmp_path.iterdir()] == ["a.pt"]


def test_rng_state_round_trip_restores_python_numpy_torch_and_generators():
    g = torch.Generator().manual_seed(3)
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.normal()  # numpy caches a gaussian: part of the state
    st = runstore.rng_state(shuffle=g)
    a = (random.random(), np.random.normal(), torch.rand(3), torch.rand(2, generator=g))
    random.seed(9), np.random.seed(9), torch.manual_seed(9), g.manual_seed(9)
    runstore.set_rng_state(st, shuffle=g)
    b = (random.random(), np.random.normal(), torch.rand(3), torch.rand(2, generator=g))
    assert a[0] == b[0] and a[1] == b[1] and torch.equal(a[2], b[2]) and torch.equal(a[3], b[3])


def run_dir(path: Path) -> runstore.RunDir:
    return runstore.RunDir(path, files=("last.pt", "report.md", "sub"), marker="job.json")


def test_run_folder_rules_new_resume_overwrite(tmp_path):
    r = run_dir(tmp_path / "a" / "run")
    r.prepare()  # missing: created
    assert r.path.is_dir() and r.status() is None
    r.prepare()  # empty: fine
    with pytest.raises(CheckpointError, match=r"nothing to resume in .*run: no last\.pt there"):
        r.prepare(resume=True, checkpoints=("last.pt",))
    write_ck(r / "last.pt")
    r.write_json("job.json", {"finished": True})
    (r / "sub").mkdir()
    (r / "sub" / "x.pt.123.tmp").write_bytes(b"half")  # a write that a kill interrupted
    (r / "notes.txt").write_text("mine")
    assert r.status() == "finished"
    with pytest.raises(RunExistsError) as e:
        r.prepare()
    assert str(r.path) in str(e.value) and "a finished harcore run" in str(e.value) and "--overwrite" in str(e.value)
    r.prepare(resume=True, checkpoints=("last.pt",))  # there is something to resume: the folder is unchanged
    assert r.clean_temp() == ["sub/x.pt.123.tmp"]
    r.prepare(overwrite=True)  # harcore's files go, the user's stay
    assert sorted(p.name for p in r.path.iterdir()) == ["notes.txt"]
    with pytest.raises(RunExistsError, match=r"files harcore did not write \(notes\.txt\)"):
        r.prepare()
    with pytest.raises(CheckpointError, match="either --resume or --overwrite"):
        r.prepare(resume=True, overwrite=True)


def test_a_file_valued_or_unwritable_run_folder_is_a_clear_error(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(CheckpointError, match=r"run folder .*file: exists and is a file, not a folder"):
        run_dir(f).prepare()
    with pytest.raises(CheckpointError, match=r"file is a file, not a folder"):
        run_dir(f / "run").prepare()
    if os.geteuid() == 0:  # root writes anywhere on an ordinary filesystem; sysfs refuses even root
        with pytest.raises(CheckpointError, match=r"run folder /sys/harcore-run: cannot be created \("):
            run_dir(Path("/sys/harcore-run")).prepare()
        return
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(CheckpointError, match=r"ro/run: cannot be created"):
            run_dir(ro / "run").prepare()
        with pytest.raises(CheckpointError, match=r"ro: not writable"):
            run_dir(ro).prepare()
    finally:
        ro.chmod(0o700)


def test_old_checkpoint_in_zip_format_is_recognised_without_unpickling(tmp_path):
    p = tmp_path / "last.pt"
    torch.save({"format": "harcore.train.checkpoint/1", "rng": {"numpy": np.random.get_state()}}, p)
    assert zipfile.is_zipfile(p)
    with pytest.raises(CheckpointError, match=r"older harcore \(checkpoint format 'harcore.train.checkpoint/1'\)"):
        runstore.load_checkpoint(p)
