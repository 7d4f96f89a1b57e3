"""Firmware figures under QEMU (issue 5): image sizes vs the cost model, instructions per inference and per MAC.

    python benchmarks/bench_firmware.py [--windows 100] [--out firmware.json]

For each zoo model (seeded init, 1-epoch training on the default HAPT subset so that the accuracy columns
mean something, PTQ calibrated on 256 training windows) it deploys for qemu-m33, builds, runs ``--windows``
real test windows under QEMU (mps2-an505) with the instruction-counting TCG plugin, and reports:
``arm-none-eabi-size`` flash/RAM, the linked arena vs the cost model's peak SRAM, the model's linked
read-only data vs the cost model's weights flash, target vs host int8 vs float accuracy, instructions per
inference, and instructions per MAC for every step with MACs (per-step counts of window 0). The kernel
self-test's per-kernel instructions per MAC come last. An instruction count is a relative proxy, not cycles.
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

MODELS = ("cnn_student", "mubiconvlstm")


def train_briefly(net: torch.nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    xt, yt = torch.as_tensor(x), torch.as_tensor(y, dtype=torch.long)
    net.train()
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=g).split(64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx]).backward()
            opt.step()
    net.eval()


def provenance(**extra: object) -> dict:
    """What every figure of these benchmarks records: commit, date (UTC) and host, plus the run's options."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    return {"commit": commit, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "host": platform.platform(),
            **extra}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=100)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--models", nargs="*", default=list(MODELS))
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)

    from harcore import data, models, quant
    from harcore.deploy import deploy, selftest, toolchain, validate

    ds = data.load("default")
    res: dict = provenance(windows=args.windows, models={})
    for name in args.models:
        torch.manual_seed(0)
        net = models.create(name, in_channels=9, seq_len=128, num_classes=6)
        t0 = time.perf_counter()
        train_briefly(net, ds.train.x, ds.train.y, args.epochs, seed=0)
        t_train = time.perf_counter() - t0
        g = quant.quantize(net, ds.train.x[:256])
        t0 = time.perf_counter()
        rep = validate(g, windows=args.windows, float_model=net)
        t_val = time.perf_counter() - t0
        d = rep.to_dict()
        d["seconds"] = {"train": round(t_train, 1), "validate": round(t_val, 1)}
        with tempfile.TemporaryDirectory() as tmp:  # the same deployment linked for the STM32L552
            dep = deploy(g, Path(tmp) / "stm32", board="stm32l552", windows=args.windows)
            elf = toolchain.build_image(None, Path(tmp) / "build", board="stm32l552", app="infer", source_dir=dep.out)
            d["stm32l552_image"] = {k: v for k, v in toolchain.image_size(elf).to_dict().items() if k != "sections"}
        res["models"][name] = d
        print(rep.render())
        e = rep.estimates
        print(f"{name}: arena linked {e['arena_linked']} B vs peak SRAM {e['peak_sram']} B; model rodata "
              f"{e['weights_linked']} B vs weights flash {e['weights_flash']} B "
              f"({(e['weights_linked'] / e['weights_flash'] - 1) * 100:+.1f} %); "
              f"{rep.insns_per_inference.get('mean', 0):,.0f} insns/inference; STM32L552 image {d['stm32l552_image']}")

    cases = selftest.generate(0)
    with tempfile.TemporaryDirectory() as tmp:
        selftest.write_sources(cases, Path(tmp) / "app")
        elf = toolchain.build_image(Path(tmp) / "app", Path(tmp) / "build", board="qemu-m33", app="selftest")
        run = toolchain.run_qemu(elf, timeout=120, count_insns=True)
    got = selftest.parse_output(run.stdout)
    res["selftest"] = [{"case": c.name, "macs": c.macs, "insns": int(n),
                        "insns_per_mac": (n / c.macs if c.macs else None),
                        "bit_exact": bool(np.array_equal(got[i][2], c.expected))}
                       for i, (c, n) in enumerate(zip(cases, run.insns))]
    for r in res["selftest"]:
        ipm = f"{r['insns_per_mac']:.2f}" if r["insns_per_mac"] else "-"
        print(f"{r['case']:45s} {r['macs']:>9,} MACs {r['insns']:>9,} insns {ipm:>6} insns/MAC "
              f"{'exact' if r['bit_exact'] else 'DIFFERS'}")
    if args.out:
        args.out.write_text(json.dumps(res, indent=1))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
