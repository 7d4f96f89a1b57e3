"""harcore.train: training loop, knowledge distillation, metrics and robustness evaluation.

See ``docs/train.md``. Public API::

    TrainConfig, fit, TrainResult, load_checkpoint
    TrainingRecipe, load_with_validation (the data/training fields harcore's jobs share)
    evaluate, Metrics, metrics_from_predictions, summarize, Summary
    distillation_loss, balanced_class_weights
    robustness, perturb, RobustnessReport, periodic_drop_mask
    seeds_from_master
"""

from .config import TrainConfig, seeds_from_master
from .losses import balanced_class_weights, distillation_loss
from .metrics import Metrics, Summary, evaluate, metrics_from_predictions, summarize
from .recipe import TrainingRecipe, load_with_validation
from .perturbations import RobustnessReport, periodic_drop_mask, perturb, robustness
from .trainer import DEFAULT_KD_ALPHA, DEFAULT_KD_TEMPERATURE, TrainResult, fit, load_checkpoint

__all__ = [
    "DEFAULT_KD_ALPHA",
    "DEFAULT_KD_TEMPERATURE",
    "Metrics",
    "RobustnessReport",
    "Summary",
    "TrainConfig",
    "TrainResult",
    "TrainingRecipe",
    "balanced_class_weights",
    "distillation_loss",
    "evaluate",
    "fit",
    "load_with_validation",
    "load_checkpoint",
    "metrics_from_predictions",
    "periodic_drop_mask",
    "perturb",
    "robustness",
    "seeds_from_master",
    "summarize",
]
