"""harcore.hpo: Optuna hyperparameter search over a zoo model's training settings, then the final
training over seeds (the µBi-ConvLSTM paper's protocol by default). See ``docs/hpo.md``.

    >>> from harcore import hpo
    >>> cfg = hpo.HPOConfig(model="mubiconvlstm", trials=50, out="runs/hpo-mubi")
    >>> result = hpo.run(cfg)            # study (resumable) + final training + report
"""

from .study import (
    DEFAULT_SPACE,
    HPOConfig,
    Param,
    StudyOutcome,
    count_trials,
    final_training,
    load_data,
    open_study,
    run,
    run_study,
    storage_url,
)

__all__ = [
    "DEFAULT_SPACE", "HPOConfig", "Param", "StudyOutcome", "count_trials", "final_training", "load_data",
    "open_study", "run", "run_study", "storage_url",
]
