"""Whole models on harcore's kernels vs the real CMSIS-NN, step by step, on the Cortex-M33 under QEMU (issue 17).

    python benchmarks/bench_cmsis_nn_models.py --cmsis-nn /path/to/CMSIS-NN [--windows 100] [--out models.json]

For µBi-ConvLSTM, the MLP distillation student (cnn_student), TinierHAR, a conv-only model (conv, depthwise,
1x1 conv, max and average pooling, FC) and a searched TinyHAR (a short SFTNAS search of the main job's
backbone on the built-in data, then its derived network): seeded init, ``--epochs`` of training on the
built-in HAPT subset (``harcore.data.load("default")``), PTQ on 256 training windows, then
``harcore.deploy.validate(g, windows=N, cmsis_nn=TREE)``: the same deployed folder built twice — harcore's
kernels, and ``-DHARCORE_KERNELS=cmsis-nn`` (every step CMSIS-NN has a function for on the user's CMSIS-NN,
built by its own CMake at its default -Ofast; the others on harcore's kernels) — each run on N real test windows
under QEMU (mps2-an505) with the instruction-counting plugin. Asserted per model: host simulate == firmware
(harcore's kernels) == firmware (CMSIS-NN) on every output byte, and == TFLM (``harcore.quant.to_tflite``,
tflite_micro's reference kernels) where the graph converts and tflite_micro is installed. Printed: per step,
instructions of window 0 in both builds, their ratio, and which library ran the step in the CMSIS-NN build.

Instruction counts are deterministic (they do not depend on machine load); a relative proxy, not cycles.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bench_firmware import train_briefly  # this folder is on sys.path when the script runs

MODELS = ("mubiconvlstm", "cnn_student", "tinierhar", "conv_only", "searched_tinyhar")


class ConvOnly(nn.Module):
    """The conv-only model of issue 17's table: conv 1x5 9->16, depthwise 1x5, 1x1 conv 16->32, max pool 2,
    average pool over the remaining 64 samples, FC 32->6 (the layer shapes of benchmarks/bench_cmsis_nn.py)."""

    def __init__(self, in_channels: int = 9, num_classes: int = 6) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv1d(in_channels, 16, 5, padding=2), nn.ReLU(),
            nn.Conv1d(16, 16, 5, padding=2, groups=16), nn.ReLU(),
            nn.Conv1d(16, 32, 1), nn.ReLU(),
            nn.MaxPool1d(2), nn.AvgPool1d(64), nn.Flatten())
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.body(x))



def searched_tinyhar(search_epochs: int, seed: int) -> tuple[nn.Module, dict]:
    """The main job's search (backbone tinyhar, the quick preset's optimiser settings, 96 KB SRAM target) run for
    ``search_epochs`` on the built-in data with a validation split by subject, and its derived network."""
    from harcore import data, models
    from harcore.nas.search import SearchConfig, search

    ds = data.load("default", val_fraction=0.25)
    cfg = SearchConfig(backbone="tinyhar", epochs=search_epochs, batch_size=64, lr_w=2e-3, lr_v=5e-4,
                       lr_plateau_patience=3, sram=96_000, seed=seed, progress=False)
    res = search(ds.train, ds.val, cfg)
    return models.create("sftnas", arch=res.arch), res.arch.to_dict()


def tflm_outputs(g, x: np.ndarray) -> np.ndarray | None:
    """TFLM's int8 outputs for float windows ``x`` through ``harcore.quant.to_tflite``; None when tflite_micro is
    not installed. A graph the exporter refuses raises (the caller records why)."""
    try:
        from tflite_micro.python.tflite_micro import runtime
    except ImportError:
        return None
    from harcore.quant.simulate import quantize_input
    from harcore.quant.tflite_export import to_tflite_bytes

    it = runtime.Interpreter.from_bytes(to_tflite_bytes(g), arena_size=16 << 20)
    outs = []
    for xi in quantize_input(g, x):
        it.reset()
        it.set_input(xi[None], 0)
        it.invoke()
        outs.append(np.array(it.get_output(0)).reshape(-1))
    return np.stack(outs).astype(np.int8)


def git_commit(tree: Path) -> str | None:
    r = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True)
    return (r.stdout.strip() or None) if r.returncode == 0 else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cmsis-nn", type=Path, required=True, help="CMSIS-NN source tree (ARM-software/CMSIS-NN)")
    ap.add_argument("--windows", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--search-epochs", type=int, default=2)
    ap.add_argument("--models", nargs="*", default=list(MODELS), choices=MODELS)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)

    from harcore import data, models, quant
    from harcore.deploy import deploy, validate

    ds = data.load("default")
    res: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "host": platform.platform(),
                 "harcore_commit": git_commit(Path(__file__).resolve().parents[1]),
                 "cmsis_nn_commit": git_commit(args.cmsis_nn), "windows": args.windows, "epochs": args.epochs,
                 "models": {}}
    failures = []
    for name in args.models:
        torch.manual_seed(0)
        extra: dict = {}
        if name == "conv_only":
            net = ConvOnly()
        elif name == "searched_tinyhar":
            net, extra["arch"] = searched_tinyhar(args.search_epochs, seed=0)
        else:
            net = models.create(name, in_channels=9, seq_len=128, num_classes=6)
        train_briefly(net, ds.train.x, ds.train.y, args.epochs, seed=0)
        g = quant.quantize(net, ds.train.x[:256])
        with tempfile.TemporaryDirectory(prefix="bench-cmsis-nn-") as tmp:
            dep = deploy(g, Path(tmp) / "fw", board="qemu-m33", windows=args.windows)
            rep = validate(g, dep, float_model=net, cmsis_nn=args.cmsis_nn)
        d = rep.to_dict()
        d.update(extra)
        try:
            tf = tflm_outputs(g, dep.float_inputs)
            d["tflm"] = ("not installed" if tf is None else
                         {"exact_windows": int(np.sum((tf == rep.host_outputs).all(axis=1))),
                          "differing_values": int(np.count_nonzero(tf != rep.host_outputs))})
        except Exception as e:  # the exporter's refusal is a finding to record, not a reason to stop
            d["tflm"] = f"not converted: {type(e).__name__}: {e}"
        res["models"][name] = d
        print(rep.render(width=150))
        c = rep.cmsis_nn
        ok = (rep.exact_windows == rep.windows and c["exact_windows"] == rep.windows and rep.bit_exact
              and (not isinstance(d["tflm"], dict) or d["tflm"]["exact_windows"] == rep.windows))
        h_total, c_total = rep.insns_per_inference["mean"], c["insns_per_inference"]["mean"]
        print(f"{name}: simulate == firmware {rep.exact_windows}/{rep.windows}, == CMSIS-NN build "
              f"{c['exact_windows']}/{rep.windows}, TFLM: {d['tflm']}; CMSIS-NN buffers from the static pool: "
              f"steps {c['pool_steps'] or 'none'}; instructions per inference harcore "
              f"{h_total:,.0f} vs CMSIS-NN build {c_total:,.0f} (ratio {h_total / c_total:.2f})\n")
        if not ok:
            failures.append(name)
    print(f"{'model':18s} {'step':>4s} {'kind':16s} {'ran on (CMSIS-NN build)':42s} {'harcore':>10s} "
          f"{'CMSIS-NN':>10s} {'ratio':>6s}")
    for name, d in res["models"].items():
        for s in d["steps"]:
            r = s["ratio_to_cmsis_nn"]
            print(f"{name:18s} {s['index']:>4d} {s['kind']:16s} {s['cmsis_nn_backend']:42s} {s['insns']:>10,} "
                  f"{s['cmsis_nn_insns'] or 0:>10,} {r if r is None else round(r, 2)!s:>6s}")
        h, c = d["insns_per_inference"]["mean"], d["cmsis_nn"]["insns_per_inference"]["mean"]
        print(f"{name:18s} {'all':>4s} {'inference':16s} {'':42s} {h:>10,.0f} {c:>10,.0f} {h / c:>6.2f}")
    if args.out:
        args.out.write_text(json.dumps(res, indent=1))
        print(f"wrote {args.out}")
    if failures:
        raise SystemExit(f"not bit-exact: {', '.join(failures)}")


if __name__ == "__main__":
    main()
