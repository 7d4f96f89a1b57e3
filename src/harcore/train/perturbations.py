"""Robustness evaluation: test-time sensor degradations, as used in HAR papers.

Sources and what they define:

* muBi-ConvLSTM (Sec. VI-A "Robustness Analysis"): "dropping every 5th sample (jitter)" and
  "complete accelerometer dropout" (all channels of one sensor). The paper does not say how a
  dropped sample is replaced, nor what value a dropped sensor reads; the choices below are
  harcore's and are stated per perturbation.
* TinierHAR: the paper (arXiv 2507.07949) defines no robustness test.
* Gaussian noise is defined by neither paper; harcore's definition is given in :func:`perturb`.

All perturbations act on the model input, i.e. on the already z-normalized windows (both papers
z-normalize per channel with training statistics), and are reproducible for a seed. Within one
seed the random draw is shared across levels (common random numbers): the noise vector is the
same and only scaled, dropped-sample sets and dropped-channel sets are nested, so a curve over
levels reflects the level, not a new draw.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Sequence

import numpy as np
import torch

from ._data import check_split, resolve_num_classes
from .metrics import Metrics, _model_device, metrics_from_predictions, predict_logits

KINDS = ("noise", "drop_samples", "drop_channels")


def periodic_drop_mask(seq_len: int, fraction: float) -> np.ndarray:
    """Boolean mask (T,) of evenly spaced dropped time steps, ``floor(T * fraction)`` of them.

    Step ``t`` (0-based) is dropped when ``floor((t + 1) * f) > floor(t * f)``, with ``f`` the
    fraction as an exact rational, so ``fraction=0.2`` drops every 5th sample (t = 4, 9, 14, ...),
    the muBi-ConvLSTM setting, and ``0.5`` every 2nd.
    """
    if not (0.0 <= fraction < 1.0):
        raise ValueError(f"level: drop_samples fraction must be in [0, 1) (got {fraction})")
    f = Fraction(fraction).limit_denominator(1_000_000)
    t = np.arange(seq_len, dtype=np.int64)
    return ((t + 1) * f.numerator // f.denominator) > (t * f.numerator // f.denominator)


def _hold_fill(x: np.ndarray, drop: np.ndarray) -> np.ndarray:
    """Replace dropped steps (``drop`` (N, T)) by the last kept sample of the same window; dropped
    steps before the first kept one take the first kept sample; a window with no kept step is
    zeroed."""
    n, c, t = x.shape
    keep = ~drop
    idx = np.where(keep, np.arange(t)[None, :], -1)
    last = np.maximum.accumulate(idx, axis=1)
    first = np.argmax(keep, axis=1)
    last = np.where(last < 0, first[:, None], last)
    out = np.take_along_axis(x, np.broadcast_to(last[:, None, :], (n, c, t)), axis=2).copy()
    out[~keep.any(axis=1)] = 0.0
    return out


def perturb(
    x: np.ndarray,
    kind: str,
    level: Any,
    *,
    seed: int = 0,
    relative_to: str = "channel_std",
    reference_std: np.ndarray | None = None,
    mode: str = "periodic",
    fill: str | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Apply one perturbation to windows ``x`` (N, C, T); returns ``(x_perturbed, info)``.

    ``kind="noise"`` (harcore's definition; neither paper defines a noise test):
        ``x + level * sigma_c * eps`` with ``eps ~ N(0, 1)`` i.i.d. per window, channel and step.
        ``relative_to="channel_std"`` (default): ``sigma_c`` is the per-channel std of ``x`` over
        all windows and steps, or ``reference_std`` (C,) if given (e.g. the training std);
        ``relative_to="absolute"``: ``sigma_c = 1``, i.e. ``level`` is the noise std in input units
        (on data z-normalized with training statistics, a fraction of the training std).
    ``kind="drop_samples"`` (muBi-ConvLSTM: "dropping every 5th sample"):
        ``level`` is the fraction of time steps lost, in [0, 1). ``mode="periodic"`` (default)
        drops evenly spaced steps, the same in every window (0.2 = every 5th sample, the paper's
        setting); ``mode="random"`` drops each (window, step) independently with probability
        ``level``. A dropped step is lost on all channels. ``fill``: ``"hold"`` (default; the sensor
        pipeline repeats the last received sample, leading losses take the first received one),
        ``"zero"`` (the step reads 0, the training mean after z-normalization) or ``"remove"``
        (the steps are deleted and the window gets shorter, only with ``mode="periodic"``; the
        model must accept the shorter length). The paper does not say which; "hold" is harcore's
        choice.
    ``kind="drop_channels"`` (muBi-ConvLSTM: "complete accelerometer dropout"):
        ``level`` is either a sequence of channel indices (e.g. the accelerometer's ``[0, 1, 2]``)
        or an int ``k``: the first ``k`` channels of a permutation drawn from ``seed``. The chosen
        channels read 0 in every window (a dead sensor; 0 is the training mean after
        z-normalization); all other channels are untouched.
    """
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 3:
        raise ValueError(f"x: expected shape (N, C, T), got {x.shape}")
    n, c, t = x.shape
    rng = np.random.default_rng(seed)
    if kind == "noise":
        lv = float(level)
        if not (lv >= 0.0 and math.isfinite(lv)):
            raise ValueError(f"level: noise level must be a finite number >= 0 (got {level!r})")
        if relative_to == "channel_std":
            if reference_std is not None:
                sigma = np.asarray(reference_std, dtype=np.float64).reshape(-1)
                if sigma.shape != (c,):
                    raise ValueError(f"reference_std: expected {c} values (one per channel), got {sigma.shape}")
            else:
                sigma = x.astype(np.float64).std(axis=(0, 2))
        elif relative_to == "absolute":
            sigma = np.ones(c)
        else:
            raise ValueError(f'relative_to: must be "channel_std" or "absolute" (got {relative_to!r})')
        eps = rng.standard_normal(size=x.shape)
        out = (x + lv * sigma[None, :, None] * eps).astype(np.float32)
        return out, {"level": lv, "noise_std": (lv * sigma).tolist(), "relative_to": relative_to}
    if kind == "drop_samples":
        lv = float(level)
        fill = "hold" if fill is None else fill
        if fill not in ("hold", "zero", "remove"):
            raise ValueError(f'fill: must be "hold", "zero" or "remove" for drop_samples (got {fill!r})')
        if mode == "periodic":
            drop = np.broadcast_to(periodic_drop_mask(t, lv), (n, t))
        elif mode == "random":
            if not (0.0 <= lv < 1.0):
                raise ValueError(f"level: drop_samples fraction must be in [0, 1) (got {level!r})")
            drop = rng.random(size=(n, t)) < lv
            if fill == "remove":
                raise ValueError('fill: "remove" needs mode="periodic" (windows must keep one length)')
        else:
            raise ValueError(f'mode: must be "periodic" or "random" (got {mode!r})')
        info = {"level": lv, "mode": mode, "fill": fill, "dropped_fraction": float(drop.mean())}
        if mode == "periodic":
            info["dropped_steps"] = np.flatnonzero(drop[0]).tolist()
        if fill == "remove":
            return np.ascontiguousarray(x[:, :, ~drop[0]]), info
        if fill == "zero":
            out = x.copy()
            out[np.broadcast_to(drop[:, None, :], x.shape)] = 0.0
            return out, info
        return _hold_fill(x, np.asarray(drop)), info
    if kind == "drop_channels":
        if fill not in (None, "zero"):
            raise ValueError(f'fill: drop_channels only supports "zero" (got {fill!r})')
        if isinstance(level, (int, np.integer)) and not isinstance(level, bool):
            k = int(level)
            if not (0 <= k <= c):
                raise ValueError(f"level: number of channels to drop must be in [0, {c}] (got {k})")
            channels = sorted(int(i) for i in rng.permutation(c)[:k])
        elif isinstance(level, (list, tuple, np.ndarray, range)):
            channels = sorted({int(i) for i in level})
            if any(i < 0 or i >= c for i in channels):
                raise ValueError(f"level: channel indices must be in [0, {c}) (got {list(level)})")
        else:
            raise ValueError(
                f"level: drop_channels needs an int (number of random channels) or a sequence of channel "
                f"indices (got {level!r})"
            )
        out = x.copy()
        out[:, channels, :] = 0.0
        return out, {"level": level if not isinstance(level, np.ndarray) else level.tolist(), "channels": channels}
    raise ValueError(f"kind: must be one of {KINDS} (got {kind!r})")


@dataclass
class RobustnessReport:
    """Metrics of one model under one perturbation kind at several levels.

    ``degradation_points[i]`` is ``clean.macro_f1 - metrics[i].macro_f1`` (absolute, in F1 units);
    ``degradation_percent[i]`` the same relative to the clean macro-F1, in % (the muBi-ConvLSTM
    paper reports "F1-score degradation" in %).
    """

    kind: str
    levels: list[Any]
    clean: Metrics
    metrics: list[Metrics]
    info: list[dict[str, Any]]
    seed: int
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def degradation_points(self) -> list[float]:
        return [self.clean.macro_f1 - m.macro_f1 for m in self.metrics]

    @property
    def degradation_percent(self) -> list[float]:
        c = self.clean.macro_f1
        return [100.0 * (c - m.macro_f1) / c if c > 0 else float("nan") for m in self.metrics]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "seed": self.seed,
            "options": dict(self.options),
            "clean": self.clean.to_dict(),
            "levels": [
                {
                    "level": inf["level"],
                    "info": inf,
                    "metrics": m.to_dict(),
                    "macro_f1_degradation_points": dp,
                    "macro_f1_degradation_percent": dpc,
                }
                for inf, m, dp, dpc in zip(self.info, self.metrics, self.degradation_points, self.degradation_percent)
            ],
        }

    def __str__(self) -> str:
        lines = [f"robustness: {self.kind} (seed {self.seed}, {self.options or 'defaults'})",
                 f"  {'level':>16}  {'acc':>7}  {'macro-F1':>8}  {'ΔF1 %':>7}",
                 f"  {'clean':>16}  {self.clean.accuracy:7.4f}  {self.clean.macro_f1:8.4f}  {0.0:7.2f}"]
        for inf, m, d in zip(self.info, self.metrics, self.degradation_percent):
            lv = inf.get("channels", inf["level"]) if self.kind == "drop_channels" else inf["level"]
            lines.append(f"  {str(lv):>16}  {m.accuracy:7.4f}  {m.macro_f1:8.4f}  {d:7.2f}")
        return "\n".join(lines)


def robustness(
    model: torch.nn.Module,
    split: Any,
    kind: str = "noise",
    levels: Sequence[Any] = (0.1, 0.2, 0.5),
    seed: int = 0,
    *,
    batch_size: int = 512,
    device: str | torch.device | None = None,
    num_classes: int | None = None,
    **options: Any,
) -> RobustnessReport:
    """Evaluate ``model`` on ``split`` perturbed by ``kind`` at each of ``levels``.

    The perturbations and the meaning of ``levels`` are those of :func:`perturb` (see there, and
    the module docstring, for which paper defines what); ``options`` are passed on to it
    (``relative_to``, ``reference_std``, ``mode``, ``fill``). The clean split is evaluated too.
    """
    if kind not in KINDS:
        raise ValueError(f"kind: must be one of {KINDS} (got {kind!r})")
    levels = list(levels)
    if not levels:
        raise ValueError("levels: empty list")
    dev = _model_device(model) if device is None else torch.device(device)
    checked = check_split(split, "split")
    k = resolve_num_classes(model, split, checked.x, dev, num_classes, "split")
    checked = check_split(split, "split", num_classes=k)
    names = getattr(split, "class_names", None)
    names = list(names) if names is not None and len(names) == k else None

    def score(x: np.ndarray) -> Metrics:
        logits = predict_logits(model, x, batch_size, dev)
        loss = float(torch.nn.functional.cross_entropy(logits, torch.from_numpy(checked.y)).item())
        return metrics_from_predictions(checked.y, logits.argmax(1).numpy(), k, loss, names)

    clean = score(checked.x)
    results, infos = [], []
    for lv in levels:
        xp, info = perturb(checked.x, kind, lv, seed=seed, **options)
        results.append(score(xp))
        infos.append(info)
    return RobustnessReport(kind=kind, levels=levels, clean=clean, metrics=results, info=infos, seed=seed,
                            options={k_: v for k_, v in options.items() if k_ != "reference_std"})
