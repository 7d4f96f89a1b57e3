"""Zero-cost proxies for HAR ("Models Got Talent"): score untrained networks, sample Table I's space, and
measure how well the scores rank trained architectures. See ``docs/zcp.md``.

    >>> from harcore import zcp
    >>> zcp.score(net, x, y)                       # all proxies and the #params/MACs baselines
    >>> archs = zcp.sample(100, seed=0)            # Table I, 3 CNN : 1 LSTM
    >>> zcp.talent_rate(proxy_scores, val_f1)
"""

from .metrics import (NOISE_VARIANCES, RandomBaseline, SpearmanCI, add_noise, delta1, delta10, delta10pct, delta_k,
                      random_baseline, spearman, spearman_ci, talent_rate, top_k)
from .proxies import BASELINES, PROXIES, ZCP_PROXIES, ZcpError, ensemble, score, weight_params
from .search import Budget, SearchResult, arch_costs, within_budget, zcp_search
from .space import CNN_SPACE, LSTM_SPACE, Arch, build, median_archs, sample, space_size

__all__ = [
    "Arch", "BASELINES", "Budget", "SearchResult", "arch_costs", "within_budget", "zcp_search", "CNN_SPACE", "LSTM_SPACE", "NOISE_VARIANCES", "PROXIES", "RandomBaseline", "SpearmanCI",
    "ZCP_PROXIES", "ZcpError", "add_noise", "build", "delta1", "delta10", "delta10pct", "delta_k", "ensemble",
    "median_archs", "random_baseline", "sample", "score", "space_size", "spearman", "spearman_ci", "talent_rate",
    "top_k", "weight_params",
]
