"""Why the SFTNAS search prunes sensors but no filters: the DCS gates' gradients, signal against noise.

Loads a finished search (``<run>/search_last.pt``, e.g. a run folder of ``bench_sftnas.py``), fixes its argmax
architecture and takes, on ``--batches`` random training batches of the search's batch size, the gradient of the
cross-entropy and of the hardware terms (the search's own loss: ``beta1 * L_complexity + beta2 * L_memory`` and the
MAC hinge when it was on) with respect to every DCS parameter ``v`` of that architecture: the sensor gates and the
filter gates of each layer's chosen conv. Adam moves a gate by about ``lr * mean / rms`` of its gradient per step,
so what decides whether a gate crosses the threshold is the drift ``z = mean / std`` over batches of the total
gradient (a positive ``z`` pushes ``v`` down, towards pruning), not the gradient's size.

Prints, per group of gates: the median over its gates of |mean dCE/dv|, std dCE/dv, |dHW/dv| (the same on every
batch), and z; and how many of its gates have z > 0.

    python benchmarks/bench_sftnas_dcs_grad.py --run runs/bench_budget/tinyhar_beta1-1_seed0 [--batches 40]

The hardware gradient includes the run's resource terms (harcore.nas.budget) when it had targets; ``--macs`` /
``--params`` RATIO evaluate a target of RATIO times the architecture's figure on the same run instead (e.g.
``--params 0.5``: what a parameter target at half the current size would push).
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARCORE_SHARED") or REPO.parent / "shared" / "datasets")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="a search run folder with search_last.pt")
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--hapt", default=str(SHARED / "hapt_v2.1_rawdata.tar.xz"))
    ap.add_argument("--macs", type=float, default=None, help="a MAC target at this ratio of the arch's MACs")
    ap.add_argument("--params", type=float, default=None, help="a parameter target at this ratio of the arch's")
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F

    from harcore.nas.supernet import Supernet
    from harcore.nas.derive import cost_space, derive
    from harcore.nas.pipeline import JobConfig, load_data
    import dataclasses

    from harcore.nas.search import (SearchConfig, arch_figures, budget_fit, complexity_scale, hw_objective,
                                    make_budget, tail_rule)

    torch.set_num_threads(1)
    torch.manual_seed(0)
    ck = torch.load(Path(args.run) / "search_last.pt", map_location="cpu", weights_only=False)
    cfg = SearchConfig(**{"dcs_shared": False, **ck["config"]})  # runs before issue 15: one mask per candidate
    ds = load_data(JobConfig(dataset="hapt", data_dir=args.hapt))
    xt, yt = torch.tensor(ds.train.x), torch.tensor(ds.train.y)
    c0, s0 = xt.shape[1], xt.shape[2]
    net = Supernet(cfg.backbone, c0, s0, len(ds.classes), filters=cfg.filters, dcs_init=cfg.dcs_init, tail=cfg.tail,
                   dcs_shared=cfg.dcs_shared, tie_tail=cfg.tie_tail)
    net.load_state_dict(ck["net"])
    net.train()
    arch = derive(net)
    space = cost_space(net.layout, arch, net.filters, tail_rule(cfg, net))
    fig = arch_figures(net, arch)
    if args.macs is not None or args.params is not None:
        cfg = dataclasses.replace(cfg, macs=int(fig["macs"] * args.macs) if args.macs else None,
                                  params=int(fig["params"] * args.params) if args.params else None)
    budget = make_budget(cfg)
    fit = budget_fit(cfg, net, arch, fig)
    scale = complexity_scale(net)
    probs = net.argmax_probs()

    # which entries of the flat v belong to each layer's chosen conv
    idx = torch.arange(net.layout.num_masks)
    groups = {"sensors": ("sensor", list(range(c0)))}
    for i, (layer_idx, p) in enumerate(zip(net.layout.split_masks(idx), net.layout.split_probs(probs))):
        j = int(torch.argmax(p))
        if j < len(layer_idx):
            groups[f"layer {i + 1} (k{net.layout.layers[i].kernels[j]}, stride {net.layout.layers[i].stride})"] = (
                "filter", layer_idx[j].tolist())

    def grads(loss):
        gs, gf = torch.autograd.grad(loss, [net.sensor_dcs.v, net.v], allow_unused=True)
        return (gs.reshape(-1) if gs is not None else torch.zeros(c0),
                gf if gf is not None else torch.zeros_like(net.v))

    ce_s, ce_f = [], []
    for _ in range(args.batches):
        b = torch.randint(0, len(xt), (cfg.batch_size,))
        logits, b0, masks = net(xt[b], probs)
        s, f = grads(F.cross_entropy(logits, yt[b]))
        ce_s.append(s)
        ce_f.append(f)
    hw, _ = hw_objective(cfg, space, net.sensor_dcs.mask().reshape(-1), net.filter_masks(), probs, scale,
                         budget if budget.active else None, fit, net.layout)
    hw_s, hw_f = grads(hw)
    ce = {"sensor": torch.stack(ce_s), "filter": torch.stack(ce_f)}
    hwg = {"sensor": hw_s, "filter": hw_f}

    print(f"search {args.run}: {arch.summary()}; beta1 {cfg.beta1}, beta2 {cfg.beta2 if cfg.sram else 0}, {args.batches} batches of "
          f"{cfg.batch_size}")
    print("| gates | n | median abs mean dCE/dv | median std dCE/dv | median abs dHW/dv | median z | z > 0 (towards pruning) |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, (kind, ids) in groups.items():
        g_ce = ce[kind][:, ids]
        g_hw = hwg[kind][ids]
        total = g_ce + g_hw
        z = total.mean(0) / total.std(0).clamp_min(1e-30)
        med = lambda t: statistics.median(t.tolist())  # noqa: E731
        print(f"| {name} | {len(ids)} | {med(g_ce.mean(0).abs()):.1e} | {med(g_ce.std(0)):.1e} | "
              f"{med(g_hw.abs()):.1e} | {med(z):+.2f} | {int((z > 0).sum())} of {len(ids)} |")


if __name__ == "__main__":
    main()
