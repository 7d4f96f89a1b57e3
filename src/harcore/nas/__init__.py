"""harcore.nas: the SFTNAS hardware-aware search (Zhou et al., "Enhancing Efficiency in HAR Models: NAS Meets
Pruning") and harcore's main job. See ``docs/nas.md``.

* :mod:`~harcore.nas.dcs` — DCS layers with the straight-through estimator (Eq. 1-4)
* :mod:`~harcore.nas.gumbel` — Gumbel-max choice with the Gumbel-softmax gradient (Eq. 5-7), temperature
* :mod:`~harcore.nas.supernet` — backbones with the searchable first stage
* :mod:`~harcore.nas.search` — the bi-level search (Eq. 8-13), checkpoint/resume
* :mod:`~harcore.nas.derive` — discrete architecture -> ``harcore.models.create("sftnas", ...)``, cost terms,
  budget checks
* :mod:`~harcore.nas.pipeline` — data -> search -> derive -> fine-tune -> int8 -> deploy -> validate -> report
* :mod:`~harcore.nas.sweep` — beta1 / seed / backbone sweeps in parallel with Ray, Pareto front
"""

from importlib import import_module
from typing import Any

# lazy: ``harcore.nas.cli`` (imported by the ``harcore`` command) must not import torch at start-up
_EXPORTS = {
    "DCS": "dcs", "ste_binarize": "dcs",
    "Arch": "derive", "BudgetError": "derive", "arch_inputs": "derive", "build": "derive", "check_budget": "derive",
    "cost_space": "derive", "derive": "derive", "smallest_arch": "derive", "tail_terms": "derive",
    "gumbel_choice": "gumbel", "gumbel_choices": "gumbel", "temperature": "gumbel",
    "SearchConfig": "search", "SearchResult": "search", "search": "search",
    "Supernet": "supernet", "search_space": "supernet",
    "JobConfig": "pipeline", "run_job": "pipeline", "run_sweep": "sweep",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'harcore.nas' has no attribute {name!r}")
    mod = import_module(f".{_EXPORTS[name]}", __name__)
    # the submodule "derive"/"search" shadows the function of the same name once imported: fetch from it
    return getattr(mod, name)


__all__ = sorted(_EXPORTS)
