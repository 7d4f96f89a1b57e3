"""torch module -> harcore op graph (``torch.fx``), split by what it maps:

* :mod:`~harcore.graph.trace.core` — the tracer, the per-node main loop, parameter ownership, :func:`trace`
* :mod:`~harcore.graph.trace.modules` — ``nn.Module`` leaves (conv, linear, BN, activations, pools, RNNs, ...)
* :mod:`~harcore.graph.trace.functions` — torch functions and tensor methods
* :mod:`~harcore.graph.trace.indexing` — ``getitem``: slices, indices, gathers, RNN output tuples
* :mod:`~harcore.graph.trace.einsum_fft` — ``torch.einsum`` and ``torch.fft``
"""

from harcore.graph.trace.core import LEAF_MODULES, op_param_count, trace

__all__ = ["trace", "LEAF_MODULES", "op_param_count"]
