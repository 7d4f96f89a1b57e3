"""Float vs int8 macro-F1 (PTQ and QAT) on UCI-HAR-equivalent test windows, for cnn, mubiconvlstm, tinierhar.

Data and float models are bench_train.py's: the same ``harcore.data.load("hapt", ..., variant="uci9",
val_fraction=0.2, seed=0)`` split and the best-validation checkpoints it wrote under ``--ckpt-dir``
(``<ckpt-dir>/{a,b}/<model>/seed<k>/best.pt``; a missing one is trained here with bench_train's CONFIGS).
Per model and seed:

* float: the checkpoint's test macro-F1 (torch);
* PTQ: ``quant.quantize`` calibrated on ``--calib`` evenly spaced *training* windows, test macro-F1 of
  ``quant.simulate`` (the exact integer path, the firmware's bits);
* QAT: ``quant.qat`` fine-tuning the float checkpoint ``--qat-epochs`` epochs (the model's own optimizer,
  weight decay, batch size and gradient clipping from bench_train's CONFIGS; lr x ``--qat-lr-scale``,
  cosine; BN statistics and ranges frozen for the last epoch; best-validation epoch), same calibration
  windows for the RNN internals, test macro-F1 of ``simulate``.

Results are kept in ``--out`` (JSON, one entry per stage/model/seed; rerunning skips what is done), so PTQ
(``--stages ptq``) and QAT can run separately. Prints a Markdown table: mean ± sample std over seeds, deltas
int8 − float in macro-F1 points, wall times.

    python benchmarks/bench_int8_accuracy.py [--stages ptq,qat] [--models cnn,mubiconvlstm,tinierhar]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from harcore import data, models, quant
from harcore.train import evaluate, fit, load_checkpoint, metrics_from_predictions

REPO = Path(__file__).resolve().parents[1]


def _bench_train():
    spec = importlib.util.spec_from_file_location("bench_train", Path(__file__).with_name("bench_train.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


BT = _bench_train()
MODELS = ("cnn", "mubiconvlstm", "tinierhar")


def checkpoint(ckpt_dir: Path, name: str, seed: int) -> Path | None:
    for sub in ("a", "b", ""):
        p = ckpt_dir / sub / name / f"seed{seed}" / "best.pt"
        if p.exists():
            return p
    return None


def float_model(ds, ckpt_dir: Path, name: str, seed: int, threads: int) -> tuple[torch.nn.Module, str]:
    c, t = ds.train.x.shape[1:]
    net = models.create(name, in_channels=c, seq_len=t, num_classes=len(ds.classes))
    p = checkpoint(ckpt_dir, name, seed)
    if p is None:  # bench_train's protocol, resumable in the same folder layout
        torch.manual_seed(seed)
        cfg = BT.CONFIGS[name](seed, threads)
        cfg.checkpoint_dir = str(ckpt_dir / name / f"seed{seed}")
        fit(net, ds.train, ds.val, cfg, resume=True)
        p = Path(cfg.checkpoint_dir) / "best.pt"
    net.load_state_dict(load_checkpoint(p)["model"])
    return net.eval(), str(p.relative_to(REPO) if p.is_relative_to(REPO) else p)


def int8_f1(g, ds) -> float:
    y = quant.simulate(g, ds.test.x)
    return 100 * metrics_from_predictions(ds.test.y, y.argmax(1), len(ds.classes)).macro_f1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--stages", default="ptq,qat")
    ap.add_argument("--hapt", default=str(BT.SHARED / "hapt_v2.1_rawdata.tar.xz"))
    ap.add_argument("--ckpt-dir", default=str(REPO / "runs" / "bench_train"))
    ap.add_argument("--calib", type=int, default=1000, help="calibration windows (evenly spaced, training split)")
    ap.add_argument("--qat-epochs", type=int, default=3)
    ap.add_argument("--qat-lr-scale", type=float, default=0.1, help="QAT lr = the model's training lr x this")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(REPO / "runs" / "bench_int8_accuracy" / "results.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    res = json.loads(out.read_text()) if out.exists() else {}
    names = args.models.split(",")
    seeds = [int(s) for s in args.seeds.split(",")]
    stages = args.stages.split(",")

    t0 = time.perf_counter()
    ds = data.load("hapt", args.hapt, variant="uci9", val_fraction=0.2, seed=0)  # bench_train's split
    print(f"HAPT uci9: train {len(ds.train.y)}, val {len(ds.val.y)}, test {len(ds.test.y)} windows, "
          f"loaded in {time.perf_counter() - t0:.1f} s", flush=True)
    idx = np.linspace(0, len(ds.train.x) - 1, min(args.calib, len(ds.train.x))).round().astype(int)
    calib = ds.train.x[idx]

    for name in names:
        for seed in seeds:
            key = f"{name}/seed{seed}"
            r = res.setdefault(key, {"model": name, "seed": seed})
            net = None
            if "float" not in r:
                net, src = float_model(ds, Path(args.ckpt_dir), name, seed, args.threads)
                r["float"] = 100 * evaluate(net, ds.test).macro_f1
                r["checkpoint"] = src
            if "ptq" in stages and "ptq" not in r:
                net = net or float_model(ds, Path(args.ckpt_dir), name, seed, args.threads)[0]
                s = time.perf_counter()
                g = quant.quantize(net, calib)
                r["ptq"] = int8_f1(g, ds)
                r["ptq_s"] = time.perf_counter() - s
            if "qat" in stages and "qat" not in r:
                net = net or float_model(ds, Path(args.ckpt_dir), name, seed, args.threads)[0]
                cfg = BT.CONFIGS[name](seed, args.threads)
                opts = dict(optimizer=cfg.optimizer, lr=cfg.lr * args.qat_lr_scale, weight_decay=cfg.weight_decay,
                            batch_size=cfg.batch_size, grad_clip=cfg.grad_clip, seed=seed, num_threads=args.threads)
                s = time.perf_counter()
                g, qm = quant.qat(net, ds.train, ds.val, epochs=args.qat_epochs, calib_x=calib, return_model=True,
                                  **opts)
                r["qat"] = int8_f1(g, ds)
                r["qat_s"] = time.perf_counter() - s
                r["qat_fakequant"] = 100 * evaluate(qm, ds.test).macro_f1
                r["qat_config"] = {"epochs": args.qat_epochs, "best_epoch": g.meta.get("qat_best_epoch"), **opts}
            out.write_text(json.dumps(res, indent=2))
            print(key, {k: (round(v, 2) if isinstance(v, float) else v) for k, v in r.items()
                        if k not in ("qat_config", "model", "seed")}, flush=True)

    def ms(v: list[float]) -> str:
        return f"{statistics.mean(v):.2f} ± {statistics.stdev(v):.2f}" if len(v) > 1 else f"{v[0]:.2f}"

    print("\n| model | float macro-F1 | PTQ int8 | Δ PTQ | QAT int8 | Δ QAT | PTQ time / run | QAT time / run | seeds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in names:
        rs = [res[f"{name}/seed{s}"] for s in seeds if f"{name}/seed{s}" in res]
        fl = [r["float"] for r in rs]
        row = [name, ms(fl)]
        for st in ("ptq", "qat"):
            done = [r for r in rs if st in r]
            if len(done) == len(rs) and rs:
                row += [ms([r[st] for r in rs]) + " (" + ", ".join(f"{r[st]:.2f}" for r in rs) + ")",
                        ms([r[st] - r["float"] for r in rs])]
            else:
                row += ["—", "—"]
        for st in ("ptq_s", "qat_s"):
            v = [r[st] for r in rs if st in r]
            row.append(f"{statistics.mean(v):.0f} s" if v else "—")
        row.append(str(len(rs)))
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
