"""Overhead of the SFTNAS hardware-loss terms in one search training step.

A single-path SFTNAS supernet on UCI-HAR-shaped input (9 channels × 128 samples, 6 classes): a sensor DCS
mask, the paper's searchable first stage (N = floor(log2(128/4)) = 5 stride-2 layers interleaved with
stride-1 layers, conv k ∈ {1, 3, 5, 7} + identity, one DCS filter mask per conv candidate, straight-through
Gumbel-max choice), then global pooling and a linear classifier. One training step = forward, cross-entropy,
backward, Adam step at the paper's batch size of 256. Timed interleaved, with and without
``harcore.nas.hw_loss`` (β1·L_complexity + β2·L_memory from the C++ core) added to the loss.

Prints the median step time of each and the overhead in percent; ``--out FILE`` writes JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from harcore.nas.hw_loss import SftnasSpace, hw_loss


def ste_mask(v: torch.Tensor) -> torch.Tensor:
    """DCS: binary forward (v > 0.5), identity gradient (Eq. 3-4)."""
    return (v > 0.5).to(v.dtype) + v - v.detach()


class Supernet(nn.Module):
    def __init__(self, space: SftnasSpace, num_classes: int):
        super().__init__()
        self.space = space
        self.v0 = nn.Parameter(torch.ones(space.c0))
        self.convs = nn.ModuleList()
        # one flat DCS parameter for every conv candidate's filter mask: the layout hw_loss takes, and a
        # handful of autograd nodes per step instead of a few per candidate
        self.v = nn.Parameter(torch.ones(space.num_masks))
        f_prev = 1
        for layer in space.layers:
            self.convs.append(nn.ModuleList(
                nn.Conv2d(f_prev, layer.filters, (k, 1), (layer.stride, 1), ((k - 1) // 2, 0))
                for k in layer.kernels))
            f_prev = layer.filters
        self.alpha = nn.Parameter(torch.full((space.num_probs,), 1e-3))
        self.head = nn.Linear(f_prev * space.c0, num_classes)

    def choices(self, tau: float) -> torch.Tensor:
        """Gumbel-max one-hot per layer (Eq. 5) with the Gumbel-softmax gradient (Eq. 7)."""
        out = []
        for logits in self.space.split_probs(torch.log(self.alpha.clamp_min(1e-12))):
            g = -torch.log(-torch.log(torch.rand_like(logits).clamp_min(1e-20)))
            soft = F.softmax((logits + g) / tau, dim=0)
            hard = F.one_hot(soft.argmax(), soft.numel()).to(soft.dtype)
            out.append(hard - soft.detach() + soft)
        return torch.cat(out)

    def forward(self, x: torch.Tensor, probs: torch.Tensor):
        b0 = ste_mask(self.v0)
        h = (x * b0.view(1, -1, 1)).transpose(1, 2).unsqueeze(1)  # (B, 1, T, C)
        masks = ste_mask(self.v)
        for convs, layer_masks, p in zip(self.convs, self.space.split_masks(masks), self.space.split_probs(probs)):
            j = int(p.argmax())
            if j < len(convs):  # single path: only the sampled op runs
                h = p[j] * convs[j](h) * layer_masks[j].view(1, -1, 1, 1)
            else:               # identity
                h = p[j] * h
            h = F.relu(h)
        logits = self.head(h.mean(2).flatten(1))
        return logits, b0, masks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60, help="timed steps per variant")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--filters", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    space = SftnasSpace.standard(c0=9, s0=128, filters=args.filters)
    net = Supernet(space, 6)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    x = torch.randn(args.batch, 9, 128)
    y = torch.randint(0, 6, (args.batch,))
    scale = space.full_macs()

    def step(with_hw: bool) -> float:
        t0 = time.perf_counter_ns()
        probs = net.choices(tau=5.0)
        logits, b0, masks = net(x, probs)
        loss = F.cross_entropy(logits, y)
        if with_hw:
            loss = loss + hw_loss(space, b0, masks, probs, scale=scale, mem_limit=96_000, beta1=0.1, beta2=1.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return (time.perf_counter_ns() - t0) / 1e6

    for _ in range(5):
        step(False)
        step(True)
    base, hw = [], []
    # interleaved in alternating order, so load changes hit both alike; the same sampled path for both
    for i in range(args.steps):
        for with_hw in ((False, True) if i % 2 == 0 else (True, False)):
            torch.manual_seed(1000 + i)
            (hw if with_hw else base).append(step(with_hw))

    # the hardware terms alone, forward + backward, same inputs as a step
    probs = net.choices(tau=5.0)
    _, b0, masks = net(x[:2], probs)
    b0, masks, probs = (t.detach().requires_grad_() for t in (b0, masks, probs))
    alone = []
    for _ in range(2000):
        t0 = time.perf_counter_ns()
        hw_loss(space, b0, masks, probs, scale=scale, mem_limit=96_000, beta1=0.1, beta2=1.0).backward()
        alone.append((time.perf_counter_ns() - t0) / 1e3)

    b, h = statistics.median(base), statistics.median(hw)
    diffs = sorted(w - o for w, o in zip(hw, base))  # paired: same sampled architecture, adjacent in time
    q1, med, q3 = statistics.quantiles(diffs, n=4)
    res = {"batch": args.batch, "filters": args.filters, "layers": space.num_layers, "threads": args.threads,
           "steps": args.steps, "step_ms_without": b, "step_ms_with": h,
           "paired_diff_ms_median": med, "paired_diff_ms_iqr": [q1, q3],
           "overhead_pct": 100 * med / b, "hw_loss_fwd_bwd_us": statistics.median(alone)}
    res["alone_pct_of_step"] = 100 * res["hw_loss_fwd_bwd_us"] / 1e3 / b
    print(f"SFTNAS supernet step (batch {args.batch}, {space.num_layers} searchable layers × {args.filters} filters, "
          f"{args.threads} thread), median of {args.steps} paired steps: {b:.1f} ms without, {h:.1f} ms with the "
          f"hardware loss; paired difference {med:+.2f} ms (IQR {q1:+.2f} .. {q3:+.2f}) = {res['overhead_pct']:+.2f} %; "
          f"hw_loss forward+backward alone {res['hw_loss_fwd_bwd_us']:.0f} µs = {res['alone_pct_of_step']:.3f} % of a step")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
