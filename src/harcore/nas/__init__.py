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

from .dcs import DCS, ste_binarize
from .derive import Arch, BudgetError, arch_inputs, build, check_budget, cost_space, derive, smallest_arch, tail_terms
from .gumbel import gumbel_choice, gumbel_choices, temperature
from .search import SearchConfig, SearchResult, search
from .supernet import Supernet, search_space
from .pipeline import JobConfig, run_job  # noqa: E402
from .sweep import run_sweep  # noqa: E402

__all__ = ["Arch", "BudgetError", "DCS", "JobConfig", "SearchConfig", "SearchResult", "Supernet", "arch_inputs",
           "build", "check_budget", "cost_space", "derive", "gumbel_choice", "gumbel_choices", "run_job", "run_sweep",
           "search", "search_space", "smallest_arch", "ste_binarize", "tail_terms", "temperature"]
