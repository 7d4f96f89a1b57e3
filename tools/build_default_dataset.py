#!/usr/bin/env python3
"""Build harcore's built-in default dataset from the HAPT v2.1 raw archive.

    python tools/build_default_dataset.py [--archive PATH] [--per-class 16] [--out PATH]

Steps: ``harcore.data.load_windows("hapt", archive, variant="uci9")`` (the UCI-HAR pipeline, 128
samples, step 64, 6 classes, all 30 subjects); for every (subject, class) pair, ``--per-class``
windows evenly spaced over that pair's windows in recording order (spacing >= 2 windows, so the
chosen windows of one segment do not overlap); quantization to fixed steps and storage as int16
time differences (see ``harcore/data/datasets/default.py``). The archive defaults to
``$HARCORE_SHARED/hapt_v2.1_rawdata.tar.xz`` or ``../shared/datasets/`` beside the repository.
The output is byte-for-byte reproducible.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from harcore.data import load_windows  # noqa: E402
from harcore.data.datasets.default import FILENAME, pack, unpack, decode_signal  # noqa: E402

ACC_STEP = 2.0 ** -11   # g
GYRO_STEP = 2.0 ** -11  # rad/s


def default_archive() -> Path:
    base = Path(os.environ["HARCORE_SHARED"]) if os.environ.get("HARCORE_SHARED") else REPO.parent / "shared" / "datasets"
    return base / "hapt_v2.1_rawdata.tar.xz"


def select(y: np.ndarray, subjects: np.ndarray, per_class: int) -> np.ndarray:
    idx = []
    for s in np.unique(subjects):
        for c in np.unique(y):
            ii = np.nonzero((subjects == s) & (y == c))[0]
            if ii.size == 0:
                continue
            pick = np.unique(np.round(np.linspace(0, ii.size - 1, min(per_class, ii.size))).astype(np.int64))
            idx.extend(ii[pick].tolist())
    return np.asarray(sorted(idx), dtype=np.int64)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--archive", type=Path, default=default_archive())
    ap.add_argument("--per-class", type=int, default=16)
    ap.add_argument("--out", type=Path, default=REPO / "src" / "harcore" / "data" / "_default" / FILENAME)
    a = ap.parse_args(argv)

    archive_sha = hashlib.sha256(a.archive.read_bytes()).hexdigest()
    ws = load_windows("hapt", a.archive, variant="uci9")
    idx = select(ws.y, ws.subjects, a.per_class)
    x = ws.x[idx].astype(np.float64)
    qa = np.round(x[:, [0, 1, 2, 6, 7, 8]] / ACC_STEP).astype(np.int64)
    qg = np.round(x[:, 3:6] / GYRO_STEP).astype(np.int64)
    q = np.concatenate([qa[:, :3], qg, qa[:, 3:] - qa[:, :3]], axis=1)  # body_acc, body_gyro, gravity
    dq = np.concatenate([q[:, :, :1], np.diff(q, axis=2)], axis=2)
    if np.abs(dq).max() > np.iinfo(np.int16).max:
        raise SystemExit("a difference does not fit int16; use a coarser step")
    meta = {
        "classes": ws.classes, "channels": ws.channels, "sample_rate": ws.sample_rate,
        "test_subjects": list(ws.test_subjects), "window": int(ws.info["window"]), "step": int(ws.info["step"]),
        "acc_step": ACC_STEP, "gyro_step": GYRO_STEP, "label_rule": ws.info["label_rule"],
        "licence": "CC BY 4.0 (UCI ML repository, dataset id 341); see NOTICE.md",
        "build": {"script": "tools/build_default_dataset.py", "archive": a.archive.name, "archive_sha256": archive_sha,
                  "per_class_per_subject": a.per_class, "pipeline": ws.info["pipeline"],
                  "windows_in_full_set": int(ws.y.size)},
    }
    arrays = {"dq": dq.astype(np.int16), "y": ws.y[idx].astype(np.int8), "subjects": ws.subjects[idx].astype(np.int8),
              "experiment": ws.info["experiment"][idx].astype(np.int16),
              "start": ws.info["start"][idx].astype(np.int32)}
    blob = pack(arrays, meta)
    back, meta2 = unpack(blob, "check")
    err = np.abs(decode_signal(back, meta2) - ws.x[idx]).max()
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_bytes(blob)
    test = np.isin(ws.subjects[idx], ws.test_subjects)
    print(f"{a.out}: {len(blob)} bytes, {idx.size} windows ({(~test).sum()} train / {test.sum()} test), "
          f"max abs rounding error {err:.2e}, sha256 {hashlib.sha256(blob).hexdigest()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
