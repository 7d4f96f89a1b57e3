"""int8 inference speed: harcore.quant.simulate vs the TFLite and TFLM interpreters on the same .tflite.

For each model (cnn, mubiconvlstm, tinierhar): the torch model (seeded init; speed does not depend on the
weight values) is quantized with `harcore.quant.quantize` (calibrated on 256 real training windows) and
exported with `harcore.quant.to_tflite`. The test set is a UCI-HAR-size set of real windows: the first 2,947
test windows of HAPT uci9 (`harcore.data.load("hapt", ..., variant="uci9")`, UCI-HAR's test subjects; HAPT
gives 2,996, UCI-HAR has 2,947). Runners, all single-threaded, in one process, on the same int8 inputs:

* harcore: `quant.simulate(g, x)` on the whole set (batch-wise through the C++ runtime, one thread: the
  headline figure; with `--threads N` > 1 also `simulate(g, x, threads=N)` as an extra row, checked equal);
* TFLite reference kernels (`OpResolverType.BUILTIN_REF`), TFLite default (`AUTO`: builtin optimized kernels
  + the XNNPACK delegate) and TFLite builtin optimized kernels without delegates, one window per invoke
  (the batch-1 model a microcontroller runs);
* TFLite default on a batch-64 export of the same graph (`to_tflite(..., batch_size=64)`), the fairest
  batched peer;
* TFLM (`tflite_micro`, reference kernels), one window per invoke.

An interpreter that would need more than `--budget` seconds for the whole set is timed on a prefix and its
windows/s extrapolated (the table says how many windows each runner ran). Every runner's outputs are compared
with simulate's on the windows it ran: TFLM agrees exactly; TFLite differs where its kernels compute other
bits — its reference FC requantizes in float and its LSTM uses other int16 sigmoid/tanh
(docs/cmsis-nn.md §8), XNNPACK rounds differently, and TFLite's reference int8 SUM reads int8 data
as uint8 (tensorflow/tensorflow#102490, fix PR #104108), which wrecks TinierHAR's attention sum.
Prints a Markdown table per model, the issue-4 goals per model (>= 5x TFLM and TFLite-ref, within 2x of
TFLite default/XNNPACK, single thread) and writes `--out` JSON.

    python benchmarks/bench_int8.py [--models cnn,mubiconvlstm,tinierhar] [--budget 40] [--threads N] [--out int8.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from harcore import data, models, quant  # noqa: E402
from harcore.quant.simulate import quantize_input  # noqa: E402
from harcore.quant.tflite_export import to_tflite_bytes  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARCORE_SHARED") or REPO.parent / "shared" / "datasets")
UCI_TEST_WINDOWS = 2947
BATCH = 64


def tflite_interpreter(fb: bytes, mode: str):
    import tensorflow as tf

    kinds = {"ref": tf.lite.experimental.OpResolverType.BUILTIN_REF,
             "default": tf.lite.experimental.OpResolverType.AUTO,
             "builtin": tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        it = tf.lite.Interpreter(model_content=fb, num_threads=1, experimental_op_resolver_type=kinds[mode])
    it.allocate_tensors()
    i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]

    def run(xs: np.ndarray) -> np.ndarray:
        out = []
        for x in xs:
            it.reset_all_variables()  # LSTM state starts from zero for every window
            it.set_tensor(i, x[None])
            it.invoke()
            out.append(it.get_tensor(o)[0])
        return np.stack(out)

    return run


def tflite_batched(fb: bytes):
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        it = tf.lite.Interpreter(model_content=fb, num_threads=1)
    it.allocate_tensors()
    i, o = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]

    def run(xs: np.ndarray) -> np.ndarray:
        out = []
        for k in range(0, len(xs), BATCH):
            chunk = xs[k:k + BATCH]
            pad = np.zeros((BATCH, *xs.shape[1:]), np.int8)
            pad[: len(chunk)] = chunk
            it.reset_all_variables()
            it.set_tensor(i, pad)
            it.invoke()
            out.append(it.get_tensor(o)[: len(chunk)])
        return np.concatenate(out)

    return run


def tflm_interpreter(fb: bytes):
    from tflite_micro.python.tflite_micro import runtime

    it = runtime.Interpreter.from_bytes(fb, arena_size=64 << 20)

    def run(xs: np.ndarray) -> np.ndarray:
        out = []
        for x in xs:
            it.reset()
            it.set_input(x[None], 0)
            it.invoke()
            out.append(np.array(it.get_output(0))[0])
        return np.stack(out)

    return run


def timed(run, xs: np.ndarray, budget: float, step: int = 1) -> dict:
    """Time `run` on all of `xs`, or on a prefix when the whole set would take more than `budget` s."""
    run(xs[:step])  # warm-up (allocation, first-call costs)
    t0 = time.perf_counter()
    run(xs[:step])
    per = max(time.perf_counter() - t0, 1e-6) / step
    n = len(xs) if per * len(xs) <= budget else max(step, int(budget / per) // step * step)
    t0 = time.perf_counter()
    out = run(xs[:n])
    wall = time.perf_counter() - t0
    return {"windows": n, "seconds": wall, "windows_per_s": n / wall, "out": out}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="cnn,mubiconvlstm,tinierhar")
    ap.add_argument("--hapt", default=str(SHARED / "hapt_v2.1_rawdata.tar.xz"))
    ap.add_argument("--budget", type=float, default=40.0, help="max seconds per interpreter and model")
    ap.add_argument("--threads", type=int, default=1, help="also time simulate with this many threads (extra row)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)

    ds = data.load("hapt", args.hapt, variant="uci9")
    test_x = ds.test.x[:UCI_TEST_WINDOWS]
    calib = ds.train.x[np.random.default_rng(0).choice(len(ds.train.x), 256, replace=False)]
    print(f"HAPT uci9: {len(test_x)} test windows {test_x.shape[1:]}; load average {os.getloadavg()[0]:.2f}; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")

    results = {}
    for name in args.models.split(","):
        torch.manual_seed(0)
        net = models.create(name, in_channels=test_x.shape[1], seq_len=test_x.shape[2], num_classes=6).eval()
        g = quant.quantize(net, calib)
        xq = quantize_input(g, test_x)
        fb = to_tflite_bytes(g)
        fb_batched = to_tflite_bytes(g, batch_size=BATCH)
        quant.simulate(g, xq[:8])  # lowering (built once per graph) and warm-up
        sims = []
        for _ in range(3):
            t0 = time.perf_counter()
            ours = quant.simulate(g, xq)
            sims.append(time.perf_counter() - t0)
        row = {"harcore simulate": {"windows": len(xq), "seconds": min(sims), "windows_per_s": len(xq) / min(sims)}}
        if args.threads > 1:
            sims_t = []
            for _ in range(3):
                t0 = time.perf_counter()
                ours_t = quant.simulate(g, xq, threads=args.threads)
                sims_t.append(time.perf_counter() - t0)
            row[f"harcore simulate, {args.threads} threads"] = {
                "windows": len(xq), "seconds": min(sims_t), "windows_per_s": len(xq) / min(sims_t),
                "differing_values": int(np.count_nonzero(ours_t != ours)), "compared_values": int(ours.size)}
        runners = {
            "TFLM": (tflm_interpreter(fb), 1),
            "TFLite ref": (tflite_interpreter(fb, "ref"), 1),
            "TFLite default": (tflite_interpreter(fb, "default"), 1),
            "TFLite builtin-opt": (tflite_interpreter(fb, "builtin"), 1),
            f"TFLite default, batch {BATCH}": (tflite_batched(fb_batched), BATCH),
        }
        for label, (run, step) in runners.items():
            r = timed(run, xq, args.budget, step)
            out = r.pop("out")
            r["differing_values"] = int(np.count_nonzero(out != ours[: r["windows"]]))
            r["compared_values"] = int(out.size)
            row[label] = r
        results[name] = {"tflite_bytes": len(fb), "runners": row}
        sim = row["harcore simulate"]["windows_per_s"]
        print(f"\n{name} (.tflite {len(fb):,} bytes; {len(g.graph.ops)} graph ops)")
        print("| runner | windows timed | windows/s | harcore × | outputs differing from harcore |")
        print("|---|---:|---:|---:|---:|")
        for label, r in row.items():
            d = "—" if label == "harcore simulate" else f"{r['differing_values']} / {r['compared_values']}"
            print(f"| {label} | {r['windows']:,} | {r['windows_per_s']:,.0f} | {sim / r['windows_per_s']:.2f} | {d} |")
        goals = {
            "≥ 5× TFLM": sim / row["TFLM"]["windows_per_s"] >= 5,
            "≥ 5× TFLite ref": sim / row["TFLite ref"]["windows_per_s"] >= 5,
            "within 2× of TFLite default (XNNPACK)": sim / row["TFLite default"]["windows_per_s"] >= 0.5,
        }
        results[name]["goals"] = goals
        print("goals (single thread): " + "; ".join(f"{k}: {'met' if v else 'NOT met'}" for k, v in goals.items()))
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
