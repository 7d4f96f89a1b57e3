"""Cost-model speed: harcore's C++ path against counting by execution, in one run.

For each zoo model at UCI-HAR input (9 × 128, 6 classes), times per call (median of repeated single
calls, ``perf_counter_ns``, one thread):

* the peers, called the way a user calls them: a forward-hook counter (Conv/Linear/LSTM/GRU hooks, plus
  a TorchFunctionMode for matmuls (docs/anchors.md §0): ``harcore.cost.execution``, the same
  oracle the tests use), ptflops 0.7.5 (pytorch backend), thop, fvcore;
* harcore: ``_core.cost`` on the traced graph (the per-estimate cost a search pays: the graph is
  built once per search space, candidates are re-costed), and the one-off ``trace`` + ``profile``;
* the batch API: candidates of a ~10-layer HAR architecture per second.

Prints a Markdown table; ``--out FILE`` also writes the raw figures as JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import sys
import time
import warnings

import numpy as np
import torch

import harcore
from harcore import _core, cost, models
from harcore.cost.execution import count_macs

torch.set_num_threads(1)
warnings.filterwarnings("ignore")


def timed(fn, min_seconds: float = 1.0, min_calls: int = 7, max_calls: int = 2000, warmup: int = 3) -> float:
    """Median µs per call."""
    for _ in range(warmup):
        fn()
    samples = []
    start = time.perf_counter()
    while len(samples) < max_calls and (len(samples) < min_calls or time.perf_counter() - start < min_seconds):
        t0 = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t0)
    return statistics.median(samples) / 1e3


def hook_count(model: torch.nn.Module, x: torch.Tensor, fnmode: bool = True) -> tuple[int, int]:
    """Core MACs (+ functional matmuls and DFT parts when ``fnmode``) and params, by execution."""
    c = count_macs(model, x, functional=fnmode)
    return c.core + c.attn + c.dft, sum(p.numel() for p in model.parameters())


def bench_models(names: list[str], seconds: float) -> list[dict]:
    import ptflops
    import thop
    from fvcore.nn import FlopCountAnalysis

    rows, skipped = [], {}
    for name in names:
        net = models.create(name, in_channels=9, seq_len=128, num_classes=6).eval()
        x = torch.randn(1, 9, 128)
        try:
            prof = cost.profile(net, (9, 128))
        except ValueError as e:  # a model the graph cannot express yet: say so, time the rest
            skipped[name] = str(e)
            continue
        core_graph = prof.graph.to_core()
        hook_macs, hook_params = hook_count(net, x)
        assert (hook_macs, hook_params) == (prof.total.macs, prof.total.params), name
        sink = io.StringIO()

        def run_ptflops():
            with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
                ptflops.get_model_complexity_info(net, (9, 128), as_strings=False,
                                                  print_per_layer_stat=False, backend="pytorch")

        def run_thop():
            with contextlib.redirect_stdout(sink):
                thop.profile(net, inputs=(x,), verbose=False)

        def run_fvcore():
            FlopCountAnalysis(net, x).unsupported_ops_warnings(False).uncalled_modules_warnings(False).total()

        def run_forward():
            with torch.no_grad():
                net(x)

        row = {
            "model": name,
            "layers": len(prof.graph.ops) - 1,
            "params": prof.total.params,
            "macs": prof.total.macs,
            "forward_us": timed(run_forward, seconds),
            "hooks_us": timed(lambda: hook_count(net, x, fnmode=False), seconds),
            "hooks_fnmode_us": timed(lambda: hook_count(net, x), seconds),
            "ptflops_us": timed(run_ptflops, seconds),
            "thop_us": timed(run_thop, seconds),
            "fvcore_us": timed(run_fvcore, seconds, min_calls=3, max_calls=30),
            "harcore_trace_profile_us": timed(lambda: cost.profile(net, (9, 128)), seconds, max_calls=200),
            "harcore_cost_us": timed(lambda: _core.cost(core_graph), seconds, max_calls=200000),
            "harcore_totals_us": _totals_us(core_graph),
        }
        rows.append(row)
    return rows, skipped


def _totals_us(core_graph) -> float:
    """Per-architecture µs of the batch path for this graph (1 row repeated, no bindings)."""
    n = 20000
    values = np.zeros((n, 1), dtype=np.int64)
    t0 = time.perf_counter_ns()
    _core.cost_batch(core_graph, [], values)
    return (time.perf_counter_ns() - t0) / 1e3 / n


def bench_batch(n: int) -> dict:
    """A ~10-layer HAR CNN template; kernel sizes and widths vary per candidate."""
    from harcore.graph import Graph, Op

    g = Graph()
    t = g.input("x", (9, 128))
    chans, length, layers = 9, 128, []
    widths = [16, 16, 32, 32, 64, 64]
    for i, w in enumerate(widths):
        stride = 2 if i % 2 == 1 else 1
        k = 5
        out_len = (length + 2 * (k // 2) - k) // stride + 1
        t = g.add_op(Op("conv", f"conv{i}", [t], in_channels=chans, out_channels=w, kernel=(1, k),
                        stride=(1, stride), pad=(0, 0, k // 2, k // 2), bias=True), (w, out_len))
        layers.append(len(g.ops) - 1)
        t = g.add_op(Op("activation", f"relu{i}", [t], act="relu"), (w, out_len))
        chans, length = w, out_len
    t = g.add_op(Op("globalpool", "gap", [t], pool="avg", keep_dims=False), (chans,))
    t = g.add_op(Op("linear", "fc1", [t], in_channels=chans, out_channels=32, bias=True), (32,))
    t = g.add_op(Op("linear", "fc2", [t], in_channels=32, out_channels=6, bias=True), (6,))
    g.outputs = [t]

    rng = np.random.default_rng(0)
    kernels = rng.choice([1, 3, 5, 7], size=(n, len(layers)))
    widths_v = rng.choice([4, 8, 16, 24, 32, 48, 64], size=(n, len(layers)))
    values = np.concatenate([widths_v, kernels, kernels // 2], axis=1).astype(np.int64)
    bindings = []
    nl = len(layers)
    for j, op in enumerate(layers):
        bindings.append((op, "OutChannels", j))
        bindings.append((op, "KernelW", nl + j))
        bindings.append((op, "PadW", 2 * nl + j))
    tmpl = g
    # warm-up, then the timed call
    cost.batch(tmpl, bindings, values[:1000])
    t0 = time.perf_counter()
    out = cost.batch(tmpl, bindings, values)
    dt = time.perf_counter() - t0
    return {"candidates": n, "seconds": dt, "per_second": n / dt, "layers": len(g.ops) - 1,
            "example": out[0].tolist()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(models.names()))
    ap.add_argument("--seconds", type=float, default=1.0, help="minimum timing window per cell")
    ap.add_argument("--candidates", type=int, default=200000)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    rows, skipped = bench_models(args.models.split(","), args.seconds)
    batch = bench_batch(args.candidates)
    env = {"python": sys.version.split()[0], "torch": torch.__version__, "harcore": harcore.__version__,
           "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
           "load_avg_before": os.getloadavg()}

    print(f"environment: {env}\n")
    print("| model | ops | params | MACs | forward | hooks | hooks+fnmode | ptflops | thop | fvcore | "
          "harcore `_core.cost` | harcore batch path | ×hooks | ×hooks+fnmode | ×ptflops | trace+profile (one-off) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        best = r["harcore_totals_us"]
        print(f"| {r['model']} | {r['layers']} | {r['params']:,} | {r['macs']:,} | {r['forward_us']:.0f} | "
              f"{r['hooks_us']:.0f} | {r['hooks_fnmode_us']:.0f} | {r['ptflops_us']:.0f} | {r['thop_us']:.0f} | "
              f"{r['fvcore_us']:.0f} | {r['harcore_cost_us']:.2f} | {r['harcore_totals_us']:.2f} | "
              f"{r['hooks_us'] / best:,.0f} | {r['hooks_fnmode_us'] / best:,.0f} | {r['ptflops_us'] / best:,.0f} | "
              f"{r['harcore_trace_profile_us']:.0f} |")
    print("\n(all times µs per call, median)\n")
    for name, why in skipped.items():
        print(f"not costed: {name}: {why}")
    print(f"batch API: {batch['candidates']:,} candidates of a {batch['layers']}-op HAR CNN in "
          f"{batch['seconds']:.3f} s = {batch['per_second']:,.0f} candidates/s")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"env": env, "models": rows, "skipped": skipped, "batch": batch}, f, indent=2)


if __name__ == "__main__":
    main()
