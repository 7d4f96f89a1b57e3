"""harcore's firmware kernels vs the real CMSIS-NN, layer by layer, on the Cortex-M33 under QEMU (issue 17).

    python benchmarks/bench_cmsis_nn.py --cmsis-nn /path/to/CMSIS-NN [--out cmsis_nn.json] [--cpu cortex-m33]

Self-test images (firmware/apps/selftest; one per group of IMAGES, as all layers with their data do not fit
the 512 KB flash) hold, for every layer of the models below, the same call twice:
harcore's kernel and CMSIS-NN's function of the same name, on the same int8 data and parameters (the
layer shapes of the zoo models at 9 channels x 128 samples; data drawn by harcore.deploy.selftest's
generator). CMSIS-NN is the user's source tree, built by its own CMake with its default -Ofast and linked
through the firmware's -DHARCORE_CMSIS_NN_DIR option; harcore's kernels are built with the firmware's flags
(-O2). Instructions are counted by the TCG plugin (firmware/tools/insn_between.c) around each call. Every
output is compared with the host's expected output: both libraries must agree bit for bit. The CMSIS-NN
commit is read from the tree's git metadata when it has any (else pass --cmsis-nn-commit).

An instruction count is a deterministic proxy, not cycles. Conv, pool and FC counts do not depend on the
data; the LSTM's vary slightly with it (its activation).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from harcore.deploy import selftest, toolchain

# (layer label, generator, arguments): the kernels the runtime calls for each layer.
MODELS = {
    "mubiconvlstm": [
        ("conv1 1x5 9->16, T=128", "conv", dict(in_shape=(1, 1, 128, 9), f_shape=(16, 1, 5, 9), pad=(0, 2))),
        ("maxpool 2, 128x16", "pool", dict(in_shape=(1, 1, 128, 16), fshape=(1, 2), stride=(1, 2), pad=(0, 0))),
        ("conv2 1x5 16->16, T=64", "conv", dict(in_shape=(1, 1, 64, 16), f_shape=(16, 1, 5, 16), pad=(0, 2))),
        ("maxpool 2, 64x16", "pool", dict(in_shape=(1, 1, 64, 16), fshape=(1, 2), stride=(1, 2), pad=(0, 0))),
        ("LSTM forward 32 steps 16->24", "lstm", dict(batch=1, steps=32, inp=16, hidden=24)),
        ("LSTM backward 32 steps 16->24", "lstm", dict(batch=1, steps=32, inp=16, hidden=24)),
        ("FC 48->6 per-channel", "fc", dict(batches=1, depth=48, c_out=6)),
    ],
    "cnn_student (MLP)": [
        ("FC 1152->128", "fc", dict(batches=1, depth=1152, c_out=128)),
        ("FC 128->128", "fc", dict(batches=1, depth=128, c_out=128)),
        ("FC 128->6", "fc", dict(batches=1, depth=128, c_out=6)),
    ],
    "conv-only (conv, depthwise, 1x1, pools, FC)": [
        ("conv 1x5 9->16, T=128", "conv", dict(in_shape=(1, 1, 128, 9), f_shape=(16, 1, 5, 9), pad=(0, 2))),
        ("depthwise 1x5 16, T=128", "dw", dict(in_shape=(1, 1, 128, 16), f_shape=(1, 1, 5, 16), pad=(0, 2))),
        ("1x1 conv 16->32, T=128", "conv", dict(in_shape=(1, 1, 128, 16), f_shape=(32, 1, 1, 16))),
        ("maxpool 2, 128x32", "pool", dict(in_shape=(1, 1, 128, 32), fshape=(1, 2), stride=(1, 2), pad=(0, 0))),
        ("avgpool 64 (global), 64x32", "avgpool", dict(in_shape=(1, 1, 64, 32), fshape=(1, 64), stride=(1, 64),
                                                     pad=(0, 0))),
        ("FC 32->6 per-channel", "fc", dict(batches=1, depth=32, c_out=6)),
    ],
    # TinierHAR and TinyHAR at 9 x 128 (their 2-D layers: time is H, the 9 sensor channels W, NHWC): the
    # conv / depthwise / 1x1 / elementwise layers (TinierHAR's blocks 3-5 repeat block 2's shapes)
    "tinierhar": [
        ("depthwise 5x1 1ch, 128x9", "dw", dict(in_shape=(1, 128, 9, 1), f_shape=(1, 5, 1, 1), pad=(2, 0))),
        ("1x1 conv 1->4, 128x9", "conv", dict(in_shape=(1, 128, 9, 1), f_shape=(4, 1, 1, 1))),
        ("depthwise 5x1 4ch, 64x9", "dw", dict(in_shape=(1, 64, 9, 4), f_shape=(1, 5, 1, 4), pad=(2, 0))),
        ("1x1 conv 4->8, 64x9", "conv", dict(in_shape=(1, 64, 9, 4), f_shape=(8, 1, 1, 4))),
        ("depthwise 5x1 8ch, 32x9", "dw", dict(in_shape=(1, 32, 9, 8), f_shape=(1, 5, 1, 8), pad=(2, 0))),
        ("1x1 conv 8->8, 32x9", "conv", dict(in_shape=(1, 32, 9, 8), f_shape=(8, 1, 1, 8))),
        ("add 4x64x9 (residual)", "add", dict(n=4 * 64 * 9)),
        ("add 8x32x9 (residual)", "add", dict(n=8 * 32 * 9)),
    ],
    "tinyhar": [
        ("conv 5x1 1->20, 128x9", "conv", dict(in_shape=(1, 128, 9, 1), f_shape=(20, 5, 1, 1))),
        ("conv 5x1 20->20 stride 2, 124x9", "conv", dict(in_shape=(1, 124, 9, 20), f_shape=(20, 5, 1, 20),
                                                         stride=(2, 1))),
        ("conv 5x1 20->20, 60x9", "conv", dict(in_shape=(1, 60, 9, 20), f_shape=(20, 5, 1, 20))),
        ("add 26x20x9", "add", dict(n=26 * 20 * 9)),
        ("mul 26x20x9", "mul", dict(n=26 * 20 * 9)),
    ],
}
# the groups built into one self-test image each
IMAGES = (("mubiconvlstm", "cnn_student (MLP)", "conv-only (conv, depthwise, 1x1, pools, FC)"), ("tinierhar", "tinyhar"))


def _harcore_case(g, kind: str, a: dict):
    if kind == "conv":
        selftest._conv(g, "arm_convolve_wrapper_s8", a["in_shape"], a["f_shape"], pad=a.get("pad", (0, 0)),
                       stride=a.get("stride", (1, 1)))
    elif kind == "dw":
        selftest._conv(g, "arm_depthwise_conv_wrapper_s8", a["in_shape"], a["f_shape"], pad=a.get("pad", (0, 0)),
                       dw=True)
    elif kind == "pool":
        selftest._pool(g, "arm_max_pool_s8", a["in_shape"], a["fshape"], a["stride"], a["pad"])
    elif kind == "avgpool":
        selftest._pool(g, "arm_avgpool_s8", a["in_shape"], a["fshape"], a["stride"], a["pad"])
    elif kind == "fc":
        selftest._fc(g, "arm_fully_connected_per_channel_s8", a["batches"], a["depth"], a["c_out"])
    elif kind in ("add", "mul"):
        selftest._elementwise(g, a["n"], fast=True, kinds=(kind,))
    elif kind == "lstm":
        selftest._lstm(g, a["batch"], a["steps"], a["inp"], a["hidden"])
    else:
        raise ValueError(kind)
    return g.cases[-1]


_LSTM_CALL = re.compile(r"  const int32_t need = .*?return arm_lstm_unidirectional_s8\(&c, (\w+), &p, out\);\n", re.S)


def _cmsis_body(case: selftest.SelfTestCase, hidden: int, batch: int) -> str:
    """The harcore case's body turned into the same call of CMSIS-NN (same struct layouts, same names)."""
    body = case.body.replace("ctx->buf", "harcore_selftest_scratch").replace("ctx->size", "harcore_selftest_scratch_size")
    if case.kernel != "arm_lstm_unidirectional_s8":
        return body
    # CMSIS-NN's gate struct has a `bias` pointer before the activation type (unused by the s8 kernel, whose
    # effective biases hold the bias); its params are named fields, so harcore's by-position gate order
    # (input/forget/cell/output) maps by name onto CMSIS-NN's struct order (forget/input/cell/output).
    body = re.sub(r"(_bh \+ \d+), (ARM_\w+)\}", r"\1, nullptr, \2}", body)
    hb = hidden * batch
    m = _LSTM_CALL.search(body)
    assert m, "unexpected LSTM case body"
    call = (f"  int16_t* t1 = reinterpret_cast<int16_t*>(harcore_selftest_scratch);\n"
            f"  cmsis_nn_lstm_context c{{t1, t1 + {hb}, t1 + {2 * hb}, nullptr}};\n"
            f"  return arm_lstm_unidirectional_s8({m.group(1)}, out, &p, &c);\n")
    return body[:m.start()] + call + body[m.end():]


def write_cmsis_sources(pairs, app: Path) -> str:
    """cmsis_cases.cpp (the CMSIS-NN twins) in ``app``; returns the prelude declaring them for selftest_cases.cpp."""
    parts = ["// Generated by benchmarks/bench_cmsis_nn.py: the same calls against the real CMSIS-NN.",
             "#include <stdint.h>", '#include "arm_nnfunctions.h"', "",
             "namespace harcore { namespace kernels { struct cmsis_nn_context; } }",
             "extern int8_t harcore_selftest_scratch[];", "extern const int32_t harcore_selftest_scratch_size;", ""]
    prelude = []
    for j, (case, kwargs) in enumerate(pairs):
        parts.append("namespace {\n" + case.decls + "}  // namespace")
        body = _cmsis_body(case, kwargs.get("hidden", 0), kwargs.get("batch", 1))
        parts.append(f"int32_t harcore_cmsis_case_{j}(const harcore::kernels::cmsis_nn_context* ctx, int8_t* out) {{\n"
                     f"  (void)ctx;\n{body}}}\n")
        prelude.append(f"int32_t harcore_cmsis_case_{j}(const cmsis_nn_context* ctx, int8_t* out);")
    (app / "cmsis_cases.cpp").write_text("\n".join(parts))
    return "\n".join(prelude) + "\n"


def git_commit(tree: Path) -> str | None:
    r = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True)
    return r.stdout.strip() or None if r.returncode == 0 else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cmsis-nn", type=Path, required=True, help="CMSIS-NN source tree (ARM-software/CMSIS-NN)")
    ap.add_argument("--cmsis-nn-commit", default=None, help="the tree's commit, when it has no git metadata")
    ap.add_argument("--cpu", default="cortex-m33", help="HARCORE_M33_CPU (cortex-m33 or cortex-m33+nodsp)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    g = selftest._Gen(args.seed)
    commit = args.cmsis_nn_commit or git_commit(args.cmsis_nn)
    measured = []  # (model, label, harcore case, harcore insns, CMSIS-NN insns, harcore exact, CMSIS-NN exact)
    for models in IMAGES:  # one image per group: all layers with their data do not fit the 512 KB flash
        rows = []  # (model, label, harcore case index, cmsis case index)
        pairs = []
        g.cases = []
        for model in models:
            for label, kind, kwargs in MODELS[model]:
                case = _harcore_case(g, kind, kwargs)
                pairs.append((case, kwargs))
                rows.append((model, label, len(g.cases) - 1, len(pairs) - 1))
        harcore_cases = list(g.cases)
        cmsis_cases = [selftest.SelfTestCase(f"cmsis-nn:{c.name}", c.kernel, c.expected, "",
                                             f"  return harcore_cmsis_case_{j}(ctx, out);\n", c.macs)
                       for j, (c, _) in enumerate(pairs)]
        cases = harcore_cases + cmsis_cases
        with tempfile.TemporaryDirectory() as tmp:
            app = Path(tmp) / "app"
            app.mkdir()
            prelude = write_cmsis_sources(pairs, app)
            selftest.write_sources(cases, app, prelude=prelude)
            elf = toolchain.build_image(app, Path(tmp) / "build", board="qemu-m33", app="selftest",
                                        cmake_args=(f"-DHARCORE_CMSIS_NN_DIR={args.cmsis_nn.resolve()}",
                                                    f"-DHARCORE_M33_CPU={args.cpu}"))
            run = toolchain.run_qemu(elf, timeout=600, count_insns=True)
        if run.returncode != 0:
            raise SystemExit(f"self-test image failed (status {run.returncode}):\n{run.stdout[-3000:]}")
        got = selftest.parse_output(run.stdout)
        for model, label, hi, cj in rows:
            ci = len(harcore_cases) + cj
            exp = cases[hi].expected
            h_ok = got[hi][1] == 0 and np.array_equal(got[hi][2], exp)
            c_ok = got[ci][1] == 0 and np.array_equal(got[ci][2], exp)
            measured.append((model, label, cases[hi], int(run.insns[hi]), int(run.insns[ci]), h_ok, c_ok))
    res = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "host": platform.platform(),
           "harcore_commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                            text=True).stdout.strip(),
           "cmsis_nn_commit": commit, "cpu": args.cpu, "layers": []}
    totals: dict[str, list[int]] = {}
    print(f"{'model':45s} {'layer':32s} {'harcore':>10s} {'CMSIS-NN':>10s} {'ratio':>6s}  exact")
    for model, label, case, nh, nc, h_ok, c_ok in measured:
        t = totals.setdefault(model, [0, 0])
        t[0] += nh
        t[1] += nc
        res["layers"].append({"model": model, "layer": label, "kernel": case.kernel, "macs": case.macs,
                              "harcore_insns": nh, "cmsis_nn_insns": nc, "ratio": round(nh / nc, 3),
                              "harcore_bit_exact": bool(h_ok), "cmsis_nn_bit_exact": bool(c_ok)})
        print(f"{model:45s} {label:32s} {nh:>10,} {nc:>10,} {nh / nc:>6.2f}  "
              f"{'yes' if h_ok and c_ok else 'NO (harcore %s, CMSIS-NN %s)' % (h_ok, c_ok)}")
    res["totals"] = {m: {"harcore_insns": a, "cmsis_nn_insns": b, "ratio": round(a / b, 3)}
                     for m, (a, b) in totals.items()}
    for m, (a, b) in totals.items():
        print(f"{m:45s} {'sum of the layers':32s} {a:>10,} {b:>10,} {a / b:>6.2f}")
    if args.out:
        args.out.write_text(json.dumps(res, indent=1))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
