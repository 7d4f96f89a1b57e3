"""Losses: cross-entropy with class weights and the knowledge-distillation loss."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def balanced_class_weights(y: np.ndarray, num_classes: int) -> np.ndarray:
    """Inverse-frequency weights ``n / (K * n_k)`` (scikit-learn's ``"balanced"``).

    A class absent from ``y`` gets weight 0 (it never appears as a target, so the value only
    matters for completeness).
    """
    counts = np.bincount(np.asarray(y, dtype=np.int64), minlength=num_classes).astype(np.float64)
    w = np.zeros(num_classes, dtype=np.float64)
    present = counts > 0
    w[present] = counts.sum() / (num_classes * counts[present])
    return w


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    alpha: float,
    temperature: float,
    class_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Knowledge-distillation loss of Branstetter et al. (cnn-distillation paper, Sec. 3.3)::

        L_KD = alpha * T^2 * KL(Q_S, Q_T) + (1 - alpha) * CrossEntropy(Q_S, y_true)

    with ``Q_S = softmax(student_logits / T)`` and ``Q_T = softmax(teacher_logits / T)``.

    The paper writes ``KL(Q_S, Q_T)`` in PyTorch's argument order (``kl_div(log Q_S, Q_T)``), which
    is Hinton et al.'s term with the teacher as the target distribution:
    ``KL(Q_T || Q_S) = sum_c Q_T,c (log Q_T,c - log Q_S,c)``, averaged over the batch ("batchmean";
    not PyTorch's default element-wise mean, which would divide by the number of classes too).
    The cross-entropy term uses the un-softened student logits (T = 1), optionally class-weighted.
    ``T^2`` keeps the soft-target gradients on the scale of the hard-target ones.

    The teacher logits are detached: gradients flow to the student only.
    """
    if student_logits.ndim != 2:
        raise ValueError(f"student_logits: expected shape (B, K), got {tuple(student_logits.shape)}")
    if teacher_logits.shape != student_logits.shape:
        raise ValueError(
            f"teacher_logits: shape {tuple(teacher_logits.shape)} does not match student_logits "
            f"{tuple(student_logits.shape)}"
        )
    if targets.ndim != 1 or targets.shape[0] != student_logits.shape[0]:
        raise ValueError(f"targets: expected shape ({student_logits.shape[0]},), got {tuple(targets.shape)}")
    if not (0.0 <= float(alpha) <= 1.0):
        raise ValueError(f"alpha: must be in [0, 1] (got {alpha})")
    if not float(temperature) > 0.0:
        raise ValueError(f"temperature: must be > 0 (got {temperature})")
    t = float(temperature)
    log_qs = F.log_softmax(student_logits / t, dim=1)
    log_qt = F.log_softmax(teacher_logits.detach() / t, dim=1)
    kl = (log_qt.exp() * (log_qt - log_qs)).sum(dim=1).mean()
    ce = F.cross_entropy(student_logits, targets, weight=class_weights)
    return float(alpha) * t * t * kl + (1.0 - float(alpha)) * ce
