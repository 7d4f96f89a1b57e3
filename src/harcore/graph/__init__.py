"""The op graph — harcore's single description of a network, and what builds and rewrites it.

* :mod:`~harcore.graph.ir` — ``Graph`` / ``Op`` / ``Tensor``, the Python mirror of ``src/cpp/graph``
* :mod:`~harcore.graph.trace` — torch module -> graph (``trace(model, (channels, time))``)
* :mod:`~harcore.graph.passes` — graph -> graph rewrites (BN folding, activation fusion) used by quantization

The cost model reads this graph, quantization annotates it, ``simulate`` executes it and ``deploy`` emits it;
the graph layer imports none of them.
"""

from harcore.graph.ir import ACT_KINDS, GRAPH_FORMAT_VERSION, OP_KINDS, POOL_KINDS, RNN_CELLS, Graph, Op, Tensor
# After the subpackage import, so that the name ``harcore.graph.trace`` is the function, not the subpackage.
from harcore.graph.trace import LEAF_MODULES, op_param_count, trace

__all__ = ["Graph", "Op", "Tensor", "OP_KINDS", "ACT_KINDS", "POOL_KINDS", "RNN_CELLS", "GRAPH_FORMAT_VERSION",
           "trace", "LEAF_MODULES", "op_param_count"]
