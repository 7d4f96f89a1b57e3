"""harcore.nas: the SFTNAS hardware-aware search (Zhou et al., "Enhancing Efficiency in HAR Models: NAS Meets
Pruning") and harcore's main job. See ``docs/nas.md``.

* :mod:`~harcore.nas.hw_loss` — the differentiable hardware terms of the search loss (Eq. 10-13, C++ core)
* :mod:`~harcore.nas.dcs` — DCS layers with the straight-through estimator (Eq. 1-4)
* :mod:`~harcore.nas.gumbel` — Gumbel-max choice with the Gumbel-softmax gradient (Eq. 5-7), temperature
* :mod:`~harcore.nas.supernet` — backbones with the searchable first stage
* :mod:`~harcore.nas.search` — the bi-level search (Eq. 8-13), checkpoint/resume
* :mod:`~harcore.nas.derive` — discrete architecture -> ``harcore.models.create("sftnas", ...)``, cost terms,
  budget checks
* :mod:`~harcore.nas.pipeline` — data -> search -> derive -> fine-tune -> int8 -> deploy -> validate -> report
* :mod:`~harcore.nas.baselines` — the paper's pruning baselines AutoSlim and PaS (``--method``)
* :mod:`~harcore.nas.sweep` — beta1 / seed / backbone sweeps in parallel with Ray, Pareto front

The package exports what a user needs; the building blocks stay importable from their submodules
(``from harcore.nas.derive import build``, ``from harcore.nas.supernet import Supernet`` ...).
"""

from .derive import Arch, BudgetError, derive
from .baselines import BaselineConfig, run_baseline
from .search import SearchConfig, SearchResult, search
from .supernet import search_space
from .pipeline import JobConfig, run_job  
from .sweep import run_sweep  

__all__ = ["Arch", "BaselineConfig", "BudgetError", "JobConfig", "SearchConfig", "SearchResult", "derive",
           "run_baseline", "run_job", "run_sweep", "search", "search_space"]
