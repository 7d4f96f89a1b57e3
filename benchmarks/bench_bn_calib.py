"""What BatchNorm re-calibration changes in the search's validation figure (harcore.nas.bn_calib).

For each finished or interrupted search folder (a main-job run with ``search_last.pt``), the supernet of its last
checkpoint is evaluated on the job's validation subjects twice: on the running statistics as they were saved
(what the search logged before ``bn_calib``) and after re-calibrating on ``bn_calib`` training windows (the
search's own windows: ``SearchConfig.seed + 2``). The data are read as the job read them (``job.json``).

    python benchmarks/bench_bn_calib.py runs/i15_goal_percand/tinyhar_beta1-1_seed0 ...
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from harcore import runstore
from harcore.nas.pipeline import JobConfig, load_data
from harcore.nas.search import CHECKPOINT_KIND, CHECKPOINT_NAME, SearchConfig, _evaluate, _xy, calibration_windows
from harcore.nas.supernet import Supernet


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path, help="main-job run folders")
    ap.add_argument("--windows", type=int, default=2048, help="calibration windows (SearchConfig.bn_calib)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    data, rows = {}, []
    for run in args.runs:
        job = json.loads((run / "job.json").read_text())["config"]
        key = (job["dataset"], job["data_dir"])
        if key not in data:
            ds = load_data(JobConfig(dataset=job["dataset"], data_dir=job["data_dir"]))
            data[key] = (_xy(ds.train, "train"), _xy(ds.val, "val"), len(ds.classes))
        (xt, _), (xv, yv), k = data[key]
        ck = runstore.load_checkpoint(run / CHECKPOINT_NAME, CHECKPOINT_KIND)
        cfg = SearchConfig.from_dict({**ck["config"], "bn_calib": args.windows})
        net = Supernet(cfg.backbone, xt.shape[1], xt.shape[2], k, filters=cfg.filters, dcs_init=cfg.dcs_init,
                       tail=cfg.tail, dcs_shared=cfg.dcs_shared, tie_tail=cfg.tie_tail)
        net.load_state_dict(ck["net"])
        saved, _ = _evaluate(net, xv, yv)
        idx = calibration_windows(len(xt), cfg)
        calib, _ = _evaluate(net, xv, yv, calib=(xt, idx))
        rows.append({"run": str(run), "epoch": int(ck["epoch"]), "logged": ck["history"][-1]["val_macro_f1"],
                     "saved_stats": saved, "recalibrated": calib})
        print(f"{run}  epoch {ck['epoch']}: val macro-F1 {100 * saved:.2f} on the saved statistics, "
              f"{100 * calib:.2f} re-calibrated on {len(idx)} training windows")
    return rows


if __name__ == "__main__":
    main()
