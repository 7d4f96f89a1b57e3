"""Peak SRAM per zoo model (issue 17): the cost model's peak SRAM, the linked arena and RAM, and RAM measured on
the target (the firmware's stack high-water mark plus static data and arena), under QEMU.

    python benchmarks/bench_sram.py [--windows 10] [--models ...] [--out sram.json]

Every zoo model that the int8 path lowers (seeded init at 9 channels x 128 samples, 6 classes; PTQ on 128 training
windows of the default HAPT subset — memory does not depend on the weights) is validated with ``harcore validate``
on ``--windows`` real test windows: outputs bit-exact with the host, the arena the runtime plan needs, the image's
linked RAM (``arm-none-eabi-size``: .data + .bss, with the 8 KB stack and 4 KB heap reserves) and the measured
total = static data + arena + stack high-water mark over every invoke (firmware/common/stack.hpp). The same
deployment is linked for the STM32L552 too (its linked RAM and stack reserve). Models the int8 path cannot lower
and those whose arena does not fit the board are listed with the reason.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import torch
from bench_firmware import provenance  # this folder is on sys.path when the script runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--windows", type=int, default=10)
    ap.add_argument("--models", nargs="*", default=None, help="zoo names (default: all)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)

    from harcore import cost, data, models, quant
    from harcore.deploy import BudgetError, deploy, toolchain, validate
    from harcore.errors import HarcoreError

    ds = data.load("default")
    res: dict = provenance(windows=args.windows, models={}, not_lowered={})
    rows = []
    todo = [(n, {}) for n in (args.models or models.list_models())]
    if not args.models:
        todo.insert(todo.index(("cnn", {})) + 1, ("cnn", {"widths": (16, 32)}))  # the CNN the tests deploy
    for zoo, opts in todo:
        name = zoo + "".join(f" {k}={v}" for k, v in opts.items())
        torch.manual_seed(0)
        try:
            net = models.create(zoo, in_channels=9, seq_len=128, num_classes=6, **opts).eval()
            g = quant.quantize(net, ds.train.x[:128])
            prog = quant.lower(g)
        except (HarcoreError, ValueError) as e:
            res["not_lowered"][name] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
            print(f"{name}: not lowered ({res['not_lowered'][name]})", flush=True)
            continue
        try:
            rep = validate(g, windows=args.windows)
        except BudgetError as e:  # lowered, but does not fit the board: the plan's figures only
            peak = int(cost.profile_graph(g.graph).total.peak_sram)
            res["not_lowered"][name] = (f"peak SRAM {peak:,} B, arena {prog.arena_size:,} B; not built: "
                                        f"{str(e).split(': ', 1)[-1][:160]}")
            print(f"{name}: {res['not_lowered'][name]}", flush=True)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            dep = deploy(g, Path(tmp) / "stm32", board="stm32l552", windows=args.windows)
            elf = toolchain.build_image(None, Path(tmp) / "build", board="stm32l552", app="infer", source_dir=dep.out)
            st = toolchain.image_size(elf)
            st_reserve = toolchain.symbol_address(elf, "__stack_top") - toolchain.symbol_address(elf, "__stack_limit")
        e, rm = rep.estimates, rep.ram_measured
        d = {"bit_exact": rep.bit_exact, "peak_sram": e["peak_sram"], "arena_plan": e["arena_plan"],
             "arena_linked": e["arena_linked"], "linked_ram": rep.image["ram"], "ram_measured": rm,
             "stack_high_water_bytes": rep.stack_high_water_bytes, "stack_reserved_bytes": rep.stack_reserved_bytes,
             "insns_per_inference": rep.insns_per_inference["mean"],
             "stm32l552": {"linked_ram": st.ram, "flash": st.flash, "stack_reserved_bytes": st_reserve}}
        res["models"][name] = d
        rows.append((name, d))
        print(f"{name}: bit-exact {rep.bit_exact}, peak SRAM {e['peak_sram']:,} B, arena {e['arena_linked']:,} B, "
              f"linked RAM {rep.image['ram']:,} B, stack HWM {rep.stack_high_water_bytes:,} B, "
              f"measured {rm['total']:,} B", flush=True)

    print("\n| model | peak SRAM (cost model) | arena (plan = linked) | linked RAM (qemu-m33 / stm32l552) | static data "
          "| stack high-water (of 8,192) | measured RAM = static + arena + stack | of 256 KB SRAM | bit-exact |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, d in rows:
        rm = d["ram_measured"]
        arena = f"{d['arena_plan']:,}" + ("" if d["arena_plan"] == d["arena_linked"] else f" / {d['arena_linked']:,}")
        print(f"| {name} | {d['peak_sram']:,} | {arena} | {d['linked_ram']:,} / {d['stm32l552']['linked_ram']:,} "
              f"| {rm['static']:,} | {d['stack_high_water_bytes']:,} | {rm['total']:,} "
              f"| {rm['total'] / rm['sram'] * 100:.1f} % | {'yes' if d['bit_exact'] else 'NO'} |")
    for name, why in res["not_lowered"].items():
        print(f"| {name} | {why} |")
    if args.out:
        args.out.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
