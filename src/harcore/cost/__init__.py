"""Cost of a network: the C++ cost model applied to the op graph traced from a torch module.

    >>> from harcore import cost
    >>> p = cost.profile(net, (9, 128))      # (channels, time); the model takes (batch, channels, time)
    >>> p.total.macs, p.total.params, p.total.peak_sram, p.total.flash
    >>> print(p)                              # per-layer table

The tracer is ``harcore.graph.trace``; the SFTNAS search-loss terms are ``harcore.nas.hw_loss``.
Counting rules: ``docs/cost-model.md``.
"""

from harcore.cost.profile import (BATCH_FIELDS, CONVENTION, LayerCost, Profile, TotalCost, batch, profile,
                                  profile_graph)

__all__ = ["profile", "profile_graph", "batch", "Profile", "LayerCost", "TotalCost", "BATCH_FIELDS", "CONVENTION"]
