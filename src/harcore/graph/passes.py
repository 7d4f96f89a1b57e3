"""Graph -> graph rewrites on the op graph (no weights, no quantization: those stay with their users).

* :func:`fold_and_fuse` — the deployment rewrite every int8 path starts from (docs/int8.md, docs/cost-model.md):
  a BatchNorm directly after a conv, or a linear with a 1-D output, consumed by it alone is folded into it; any
  other BatchNorm becomes a depthwise 1x1 conv with bias; ReLU/ReLU6 directly after a conv/linear/add/pool that
  only it consumes is fused into that op; identity activations disappear. Quantization folds the weights by the
  returned maps.
* :func:`folded_batchnorms` — which BatchNorm of a traced graph went into which conv/linear.
* :func:`consumers`, :func:`producers` — the tensor -> op maps the passes walk.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from harcore.errors import GraphError
from harcore.graph.ir import Graph, Op

__all__ = ["FoldResult", "FOLD_INTO", "FUSE_INTO", "FUSABLE_ACTS", "consumers", "producers", "fold_and_fuse",
           "folded_batchnorms", "compact"]

FOLD_INTO = ("conv", "linear")
FUSE_INTO = ("conv", "linear", "add", "pool")
FUSABLE_ACTS = ("relu", "relu6")


def consumers(graph: Graph) -> dict[int, list[Op]]:
    """tensor id -> the ops reading it, in graph order (an op reading a tensor twice is listed twice)."""
    out: dict[int, list[Op]] = {}
    for op in graph.ops:
        for t in op.inputs:
            out.setdefault(t, []).append(op)
    return out


def producers(graph: Graph) -> dict[int, Op]:
    """tensor id -> the op writing it."""
    return {op.output: op for op in graph.ops}


@dataclass
class FoldResult:
    """What :func:`fold_and_fuse` did. Op names are those of the input graph; kept ops keep their names."""

    graph: Graph                                                 # renumbered, validated
    folded_bn: dict[str, str] = field(default_factory=dict)      # BatchNorm -> the conv/linear it folded into
    standalone_bn: set[str] = field(default_factory=set)         # BatchNorms now depthwise 1x1 convs (same name)
    acts: dict[str, str] = field(default_factory=dict)           # op -> the relu/relu6 fused into it
    removed_acts: set[str] = field(default_factory=set)          # activations fused away or identities


def fold_and_fuse(graph: Graph) -> FoldResult:
    """BN folding and activation fusion (see the module docstring). Raises ValueError naming the op when a
    BatchNorm can be neither folded nor run as a depthwise 1x1 conv. The input graph is not modified."""
    cons = consumers(graph)
    producer = producers(graph)
    remap: dict[int, int] = {}  # old tensor id -> old tensor id that now carries it
    res = FoldResult(Graph())
    keep: list[Op] = []

    def src(t: int) -> int:
        while t in remap:
            t = remap[t]
        return t

    for op in graph.ops:
        ins = [src(t) for t in op.inputs]
        if op.kind == "batchnorm":
            p = producer.get(ins[0])
            foldable = (p is not None and p.kind in FOLD_INTO and len(cons.get(p.output, [])) == 1
                        and p.name not in res.acts and (p.kind == "conv" or len(graph.tensors[p.output].shape) == 1))
            if not foldable:
                # docs/cost-model.md: a BatchNorm that cannot be folded runs as a depthwise 1x1 conv
                shape = graph.tensors[ins[0]].shape
                if len(shape) not in (2, 3):
                    raise GraphError(f"op '{op.name}' (batchnorm): cannot be folded (its input is not a conv, or a "
                                     "linear with a 1-D output, consumed by it alone), and a standalone BatchNorm "
                                     f"runs as a depthwise 1x1 conv, which needs a (C, T) or (C, H, W) input, not "
                                     f"{shape}")
                c = shape[0]
                dw = Op("conv", op.name, inputs=ins, output=op.output, in_channels=c, out_channels=c, groups=c,
                        bias=True, kernel=(1, 1), source=op.source)
                res.standalone_bn.add(op.name)
                producer[op.output] = dw
                keep.append(dw)
                continue
            p.bias = True  # p is the kept copy: the folded BN's shift becomes its bias
            res.folded_bn[op.name] = p.name
            remap[op.output] = ins[0]
            continue
        if op.kind == "activation" and op.act in FUSABLE_ACTS + ("identity",):
            p = producer.get(ins[0])
            if op.act == "identity":
                res.removed_acts.add(op.name)
                remap[op.output] = ins[0]
                continue
            if p is not None and p.kind in FUSE_INTO and len(cons.get(p.output, [])) == 1 and p.name not in res.acts:
                res.acts[p.name] = op.act
                res.removed_acts.add(op.name)
                remap[op.output] = ins[0]
                continue
        new = replace(op, inputs=ins)
        producer[op.output] = new
        keep.append(new)
    res.graph = compact(graph, keep, [src(t) for t in graph.outputs])
    return res


def compact(graph: Graph, ops: list[Op], outputs: list[int]) -> Graph:
    """A new graph of ``ops`` (in order; their inputs and outputs are tensor ids of ``graph``) with the tensors
    renumbered densely, names and shapes taken from ``graph``; validated."""
    g = Graph()
    tid: dict[int, int] = {}
    for op in ops:
        new = replace(op, inputs=[tid[t] for t in op.inputs])
        tid[op.output] = g.add_op(new, graph.tensors[op.output].shape)
        g.tensors[tid[op.output]].name = graph.tensors[op.output].name
    g.outputs = [tid[t] for t in outputs]
    g.validate()
    return g


def folded_batchnorms(traced: Graph, kept: set[str]) -> dict[str, str]:
    """conv/linear op name -> source module of the BatchNorm that :func:`fold_and_fuse` absorbed into it
    (``kept``: the op names of the folded graph; a BN still there was not folded)."""
    producer = producers(traced)
    out = {}
    for op in traced.ops:
        if op.kind != "batchnorm" or op.name in kept:
            continue
        p = producer.get(op.inputs[0])
        while p is not None and p.kind == "activation" and p.act == "identity":
            p = producer.get(p.inputs[0])
        if p is not None and p.kind in FOLD_INTO:
            out[p.name] = op.source
    return out
