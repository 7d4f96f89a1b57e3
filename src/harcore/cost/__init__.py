"""Cost of a network: trace a torch module into the op graph and cost it with the C++ model.

    >>> from harcore import cost
    >>> p = cost.profile(net, (9, 128))      # (channels, time); the model takes (batch, channels, time)
    >>> p.total.macs, p.total.params, p.total.peak_sram, p.total.flash
    >>> print(p)                              # per-layer table

Counting rules: ``docs/cost-model.md``.
"""

from harcore.cost.profile import (BATCH_FIELDS, CONVENTION, LayerCost, Profile, TotalCost, batch, profile,
                                  profile_graph)
from harcore.cost.hw_loss import (KERNELS, SftnasLayer, SftnasLossFunction, SftnasSpace, SftnasTerms,
                                  SftnasTermsFunction, TailTerm, hw_loss, hw_terms, num_stride2_layers,
                                  reference_terms, sftnas_strides)
from harcore.cost.trace import LEAF_MODULES, op_param_count, trace

__all__ = ["trace", "profile", "profile_graph", "batch", "Profile", "LayerCost", "TotalCost", "BATCH_FIELDS",
           "CONVENTION", "LEAF_MODULES", "op_param_count",
           "SftnasSpace", "SftnasLayer", "TailTerm", "SftnasTerms", "hw_terms", "hw_loss", "reference_terms",
           "num_stride2_layers", "sftnas_strides", "SftnasTermsFunction", "SftnasLossFunction", "KERNELS"]
