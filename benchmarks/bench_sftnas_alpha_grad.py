"""How much cross-entropy gradient reaches the SFTNAS architecture logits alpha: single path vs Eq. 6's full sum.

A TinyHAR supernet (9 x 128, HAPT uci9 training windows) is trained for ``--epochs`` epochs on sampled paths
(weights only, Adam 2e-3, batch 64), then ``d CE / d alpha`` is taken on ``--batches`` batches of 256 with a
Gumbel sample each, once with ``Supernet.forward(all_paths=False)`` (only the sampled candidate runs) and once
with ``all_paths=True`` (every candidate, same value). Prints, per searchable layer, the mean over batches of the
largest |gradient| among its candidates.

    python benchmarks/bench_sftnas_alpha_grad.py [--epochs 2] [--batches 20]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARCORE_SHARED") or REPO.parent / "shared" / "datasets")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--hapt", default=str(SHARED / "hapt_v2.1_rawdata.tar.xz"))
    args = ap.parse_args()

    import torch
    import torch.nn.functional as F

    from harcore.nas.supernet import Supernet
    from harcore.nas.pipeline import JobConfig, load_data

    torch.set_num_threads(1)
    torch.manual_seed(0)
    ds = load_data(JobConfig(dataset="hapt", data_dir=args.hapt))
    xt, yt = torch.tensor(ds.train.x), torch.tensor(ds.train.y)
    net = Supernet("tinyhar", xt.shape[1], xt.shape[2], len(ds.classes))
    opt = torch.optim.Adam(net.weight_parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(1)
    for _ in range(args.epochs):
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt) - 1, 64):
            idx = perm[i:i + 64]
            logits, _, _ = net(xt[idx], net.sample(5.0, g))
            opt.zero_grad()
            F.cross_entropy(logits, yt[idx]).backward()
            opt.step()
    res = {}
    for all_paths in (False, True):
        per_layer = []
        for _ in range(args.batches):
            idx = torch.randint(0, len(xt), (256,))
            logits, _, _ = net(xt[idx], net.sample(5.0, g), all_paths=all_paths)
            net.alpha.grad = None
            F.cross_entropy(logits, yt[idx]).backward()
            per_layer.append([float(t.abs().max()) for t in net.layout.split_probs(net.alpha.grad)])
        res[all_paths] = torch.tensor(per_layer).mean(0).tolist()
    print("| layer | stride | single path: mean max abs dCE/dalpha | all paths (Eq. 6 sum) |")
    print("|---|---|---|---|")
    for i, layer in enumerate(net.layout.layers):
        print(f"| {i + 1} | {layer.stride} | {res[False][i]:.1e} | {res[True][i]:.1e} |")


if __name__ == "__main__":
    main()
