"""Write ``tests/data/example_custom/``: a small dataset in harcore's custom folder format (docs/data.md).

    python tests/data/make_example_custom.py [OUT_DIR]      # default: the folder next to this script

Where the values come from: they are synthetic, made to look like a wrist-worn 3-axis accelerometer (units g,
16 Hz, 2 decimals as a CSV export would round). Nothing is measured; the physics is kept simple and plausible:

* gravity: 1 g along a per-recording wrist orientation (tilted a little per subject), which the arm's swing
  rotates slightly while walking or running;
* rest: gravity + sensor noise (0.01 g, the noise floor of a consumer MEMS accelerometer);
* walk: + a step oscillation at the cadence (1.7-2.0 Hz per subject, 0.25 g, with its 2nd harmonic), noise 0.03 g;
* run: + cadence 2.6-2.9 Hz, 0.7 g, 2nd harmonic, noise 0.08 g.

Three subjects (1, 2, 3); subject 1 has two recordings. Every recording holds the three activities as
consecutive labelled segments of 64 samples (4 s); windows are 32 samples (2 s) every 16. The files are fully
determined by the seed below (numpy's PCG64), so rerunning gives the same files.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

SAMPLE_RATE = 16.0
SEGMENT = 64
CLASSES = ["rest", "walk", "run"]
CHANNELS = ["acc_x", "acc_y", "acc_z"]
# (recording, subject, order of activities)
RECORDINGS = [("s1_morning", 1, ["rest", "walk", "run"]), ("s1_evening", 1, ["run", "rest", "walk"]),
              ("s2", 2, ["walk", "rest", "run"]), ("s3", 3, ["rest", "run", "walk"])]
SEED = 20240611
# activity -> (cadence range Hz, step amplitude g, noise g)
MOTION = {"rest": ((0.0, 0.0), 0.0, 0.01), "walk": ((1.7, 2.0), 0.25, 0.03), "run": ((2.6, 2.9), 0.7, 0.08)}


def _orientation(rng: np.random.Generator) -> np.ndarray:
    """A unit gravity direction near 'watch face up, arm at the side' (mostly -z, some x)."""
    v = np.array([0.3, 0.1, -0.95]) + rng.normal(0.0, 0.1, 3)
    return v / np.linalg.norm(v)


def _segment(rng: np.random.Generator, activity: str, gravity: np.ndarray) -> np.ndarray:
    """(SEGMENT, 3) accelerations in g."""
    (f_lo, f_hi), amp, noise = MOTION[activity]
    t = np.arange(SEGMENT) / SAMPLE_RATE
    sig = np.tile(gravity, (SEGMENT, 1))
    if amp > 0:
        f = rng.uniform(f_lo, f_hi)
        phase = rng.uniform(0, 2 * np.pi)
        step = amp * (np.sin(2 * np.pi * f * t + phase) + 0.35 * np.sin(4 * np.pi * f * t + 2 * phase))
        axis = np.array([0.2, 0.9, 0.4])   # the step's main axis: along the forearm, some vertical
        sig = sig + step[:, None] * axis[None, :] / np.linalg.norm(axis)
        swing = 0.15 * amp * np.sin(np.pi * f * t + phase)   # arm swing at half the cadence tilts gravity
        sig[:, 0] += swing * gravity[2]
        sig[:, 2] -= swing * gravity[0]
    return sig + rng.normal(0.0, noise, sig.shape)


def write(out: Path) -> None:
    rng = np.random.default_rng(SEED)
    (out / "recordings").mkdir(parents=True, exist_ok=True)
    meta = {"name": "example_custom", "sample_rate": SAMPLE_RATE, "channels": CHANNELS, "classes": CLASSES,
            "window": 32, "step": 16, "test_subjects": [3], "units": {c: "g" for c in CHANNELS},
            "description": "synthetic wrist accelerometer (tests/data/make_example_custom.py)"}
    (out / "dataset.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    labels = ["recording,subject,start,end,label"]
    for rec, subject, order in RECORDINGS:
        gravity = _orientation(rng)
        parts = []
        for i, activity in enumerate(order):
            parts.append(_segment(rng, activity, gravity))
            labels.append(f"{rec},{subject},{i * SEGMENT},{(i + 1) * SEGMENT},{activity}")
        sig = np.concatenate(parts)
        rows = [",".join(CHANNELS)] + [",".join(f"{v:.2f}" for v in row) for row in sig]
        (out / "recordings" / f"{rec}.csv").write_text("\n".join(rows).replace("-0.00", "0.00") + "\n",
                                                       encoding="utf-8")
    (out / "labels.csv").write_text("\n".join(labels) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write(Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent / "example_custom")
