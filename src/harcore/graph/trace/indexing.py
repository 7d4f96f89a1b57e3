"""``x[...]`` -> graph ops: slices, integer indices, constant index tensors (gather) and RNN output tuples."""

from __future__ import annotations

from typing import Any

import torch
import torch.fx as fx

from ._common import _Param, _RnnOut, _T, _Unsupported


class IndexingMapping:
    """Mapping of ``operator.getitem`` nodes (a mixin of the tracer's ``_Mapper``)."""

    def map_getitem(self, node: fx.Node) -> Any:
        base = self.env.get(node.args[0]) if isinstance(node.args[0], fx.Node) else node.args[0]
        idx = node.args[1]
        if isinstance(base, _Unsupported):
            return base
        if isinstance(base, _RnnOut):
            if idx == 0:
                return base.out
            return _Unsupported(
                f"the final state (h_n/c_n, item {idx}) of RNN '{base.module_path}' is used; harcore's RNN op "
                "outputs only the sequence: use the last step of the output (out[:, -1]) instead")
        x = self.tensor(node.args[0], "indexed value")
        shape, bd = self.out_t(node)
        idx = idx if isinstance(idx, tuple) else (idx,)
        if any(i is None for i in idx):
            raise self.err("indexing with None (new axis) is not supported; use unsqueeze")
        if sum(i is Ellipsis for i in idx) > 1:
            raise self.err("more than one Ellipsis in an index")
        if Ellipsis in idx:
            k = idx.index(Ellipsis)
            idx = idx[:k] + (slice(None),) * (x.ndim - len(idx) + 1) + idx[k + 1:]
        if len(idx) > x.ndim:
            raise self.err("too many indices")
        sizes = self.v1[node.args[0]].shape
        sel = []
        for d, i in enumerate(idx):
            if isinstance(i, slice) and i == slice(None):
                continue
            if isinstance(i, (fx.Node, list, torch.Tensor)):
                i = self.index_value(i, d)
            if isinstance(i, bool) or not isinstance(i, (int, slice, torch.Tensor)):
                raise self.err(f"index {i!r} on dim {d}: only integers, slices and constant integer index tensors "
                               "(buffers) are supported")
            sel.append((d, i))
        if not sel:
            return _T(x.tid, bd, len(shape) + 1)
        if len(sel) > 1:
            raise self.err(f"indexing {len(sel)} dims at once; the harcore slice op selects along one dim")
        d, i = sel[0]
        axis = self.gaxis(d, x, "indexed dim")
        n = sizes[d]
        if isinstance(i, torch.Tensor):
            if ((i < -n) | (i >= n)).any():
                raise self.err(f"index tensor on dim {d} has values outside [-{n}, {n}) for size {n}")
            flat = tuple(int(v) % n for v in i.reshape(-1).tolist())
            return _T(self.emit("gather", node.name, [x], shape, axis=axis, indices=flat,
                                index_shape=tuple(int(s) for s in i.shape)), bd, len(shape) + 1)
        if isinstance(i, int):
            if not -n <= i < n:
                raise self.err(f"index {i} out of range for size {n}")
            start, length, squeeze = i % n, 1, True
        else:
            start, stop, step = i.indices(n)
            if step != 1:
                raise self.err(f"slice step {step}: only step 1 is supported")
            length, squeeze = max(0, stop - start), False
            if length == n:
                return _T(x.tid, bd, len(shape) + 1)
        return _T(self.emit("slice", node.name, [x], shape, axis=axis, start=start, length=length,
                            squeeze=squeeze), bd, len(shape) + 1)

    def index_value(self, i: Any, d: int) -> Any:
        """An index that is an fx value, a list or a tensor: an int (shape arithmetic) or a constant index tensor."""
        what = f"index on dim {d}"
        if isinstance(i, fx.Node):
            v = self.val(i)
            if isinstance(v, _T):
                raise self.err(f"{what} is an activation (a data-dependent gather); the harcore graph's gather takes "
                               "constant indices: register them as a buffer")
            if isinstance(v, _Param):
                if v.is_param:
                    raise self.err(f"{what} is the trainable parameter '{v.path}'; indices must be a constant buffer")
                i = v.value
            else:
                i = v
        if isinstance(i, list):
            if not all(isinstance(e, int) and not isinstance(e, bool) for e in i):
                raise self.err(f"{what}: the list {i!r} is not a list of integers")
            i = torch.tensor(i, dtype=torch.long)
        if isinstance(i, torch.Tensor):
            if i.is_floating_point() or i.is_complex() or i.dtype == torch.bool:
                raise self.err(f"{what} is a {i.dtype} tensor; only integer index tensors are supported (no masks)")
            return i.detach().cpu()
        return i
