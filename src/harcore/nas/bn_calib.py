"""BatchNorm re-calibration of one path of a weight-sharing network (AutoSlim; SPOS, Guo et al. 2020).

Training a supernet or a slimmable network updates each BatchNorm's running statistics with whatever path or
width was trained in that step, so they average over many networks. The one network evaluated afterwards sees
other inputs at its BatchNorms, and its eval-mode outputs are off. Measured on HAPT uci9, TinyHAR supernet after
40 search epochs: validation macro-F1 of the argmax network 0.30 with the running statistics, 0.81 after
re-calibrating on 2,048 training windows (benchmarks/RESULTS.md). Before evaluating a path its statistics are
therefore recomputed, as the cumulative average over fixed training windows run through that path alone.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn


@torch.no_grad()
def recalibrate_bn(module: nn.Module, forward: Callable[[torch.Tensor], object], x: torch.Tensor,
                   idx: torch.Tensor, batch_size: int) -> int:
    """Recompute the running statistics of ``module``'s BatchNorms from ``forward(x[batch])`` in training mode,
    over ``idx`` in batches of ``batch_size`` (a last batch of one window is skipped: BatchNorm cannot take it).

    A BatchNorm that no batch reached (a candidate off the path) keeps the statistics it had. Returns the
    number of windows used."""
    bns = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    saved = [(bn.momentum, bn.running_mean.clone(), bn.running_var.clone(), bn.num_batches_tracked.clone())
             for bn in bns]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None  # cumulative average over the calibration batches
    was, used = module.training, 0
    module.train()
    try:
        # dropout draws here must not shift the training's random stream (a resumed run would differ)
        with torch.random.fork_rng(devices=[]):
            for i in range(0, len(idx), batch_size):
                b = idx[i:i + batch_size]
                if b.numel() < 2:
                    break
                forward(x[b])
                used += int(b.numel())
    finally:
        module.train(was)
        for bn, (momentum, mean, var, n) in zip(bns, saved):
            bn.momentum = momentum
            if used == 0 or int(bn.num_batches_tracked) == 0:
                bn.running_mean.copy_(mean)
                bn.running_var.copy_(var)
                bn.num_batches_tracked.copy_(n)
    return used
