"""torch functions and tensor methods -> graph ops: the dispatch of every ``call_function`` / ``call_method`` node,
elementwise arithmetic, reshapes and permutations, concat/stack, reductions, matmul and functional linear /
layer norm."""

from __future__ import annotations

import operator
from typing import Any

import torch
import torch.fx as fx
import torch.nn.functional as F

from ._common import (_ACT_FUNCS, _ACT_METHODS, _ADAPTIVE_FUNCS, _ADD_FUNCS, _Complex, _MATMUL_FUNCS, _MUL_FUNCS,
                      _POOL_FUNCS, _Param, _RESHAPE_FUNCS, _RESHAPE_METHODS, _SOFTMAX_FUNCS, _T, _broadcast, _tname)


class FunctionMapping:
    """Mapping of ``call_function`` / ``call_method`` nodes (a mixin of the tracer's ``_Mapper``)."""

    # -- functions and methods ---------------------------------------------------------------
    def map_call(self, node: fx.Node) -> Any:
        t = node.target
        meth = node.op == "call_method"
        a0 = node.args[0] if node.args else None

        if t is operator.getitem:
            return self.map_getitem(node)
        if not meth and t in (torch.fft.fft, torch.fft.rfft):
            return self.map_fft(node)
        if (t is getattr and node.args[1] in ("real", "imag")) or (not meth and t in (torch.real, torch.imag)):
            return self.map_complex_part(node, (node.args[1] if t is getattr else t.__name__) == "imag")
        if any(isinstance(self.env.get(a), _Complex) for a in node.all_input_nodes):
            for a in node.all_input_nodes:
                self.val(a)  # raises, naming the complex value
        if ((meth and t in _RESHAPE_METHODS) or (not meth and t in _RESHAPE_FUNCS)) and \
                isinstance(self.val(a0), _Param):
            p = self.val(a0)  # a view of a parameter (bias.unsqueeze(1)) is still that parameter
            return _Param(p.path, p.tensor, p.is_param, self.v1[node])
        if (meth and t in ("contiguous", "clone", "detach")) or t in (F.dropout, torch.dropout, torch.clone):
            return self.tensor(a0)
        if (meth and t in _ACT_METHODS) or (not meth and t in _ACT_FUNCS):
            act = _ACT_METHODS[t] if meth else _ACT_FUNCS[t]
            if t is F.hardtanh:
                lo, hi = self.arg(node, 1, "min_val", -1.0), self.arg(node, 2, "max_val", 1.0)
                act = "relu6" if (lo, hi) == (0.0, 6.0) else "hardtanh"
            return self.unary(node, "activation", act=act)
        if (meth and t in ("softmax", "log_softmax")) or (not meth and t in _SOFTMAX_FUNCS):
            dim = self.arg(node, 1, "dim", None)
            if dim is None:
                raise self.err("softmax without an explicit dim is not supported")
            return self.unary(node, "softmax", axis=self.gaxis(dim, self.tensor(a0)))
        if (meth and t in ("add", "add_")) or (not meth and t in _ADD_FUNCS):
            if node.kwargs.get("alpha", 1) != 1:
                raise self.err("add with alpha != 1 is not supported")
            return self.binary(node, "add")
        if (meth and t in ("mul", "mul_")) or (not meth and t in _MUL_FUNCS):
            return self.binary(node, "mul")
        if (meth and t in ("matmul", "bmm")) or (not meth and t in _MATMUL_FUNCS):
            return self.map_matmul(node, node.args[0], node.args[1])
        if t is torch.einsum:
            return self.map_einsum(node)
        if (meth and t in _RESHAPE_METHODS) or (not meth and t in _RESHAPE_FUNCS):
            return self.emit_reshape(node, self.tensor(a0))
        if (meth and t in ("permute", "transpose", "swapaxes", "t")) or \
                (not meth and t in (torch.permute, torch.transpose, torch.swapaxes, torch.t)) or \
                (t is getattr and node.args[1] in ("T", "mT")):
            return self.map_transpose(node)
        if t in (torch.cat, torch.concat, torch.concatenate):
            return self.map_cat(node)
        if t is torch.stack:
            return self.map_stack(node)
        if (meth and t in ("mean", "sum")) or (not meth and t in (torch.mean, torch.sum)):
            return self.map_reduce(node, t in ("mean", torch.mean))
        if not meth and t in _POOL_FUNCS:
            pool, nd = _POOL_FUNCS[t]
            x = self.tensor(a0)
            self.need_bdim0(x)
            shape, bd = self.out_t(node)
            k = self.arg(node, 1, "kernel_size")
            s = self.arg(node, 2, "stride", None)
            p = self.arg(node, 3, "padding", 0)
            if pool == "max":
                d = self.arg(node, 4, "dilation", 1)
                cm = self.arg(node, 5, "ceil_mode", False)
                if self.arg(node, 6, "return_indices", False):
                    raise self.err("return_indices=True is not supported")
                cip = True
            else:
                d = 1
                cm = self.arg(node, 4, "ceil_mode", False)
                cip = self.arg(node, 5, "count_include_pad", True)
                if nd == 2 and self.arg(node, 6, "divisor_override", None) is not None:
                    raise self.err("divisor_override is not supported")
            return self.emit_pool(node, x, shape, bd, pool, nd, k, s, p, d, cm, cip)
        if not meth and t in _ADAPTIVE_FUNCS:
            pool, nd = _ADAPTIVE_FUNCS[t]
            x = self.tensor(a0)
            shape, bd = self.out_t(node)
            if self.arg(node, 2, "return_indices", False):
                raise self.err("return_indices=True is not supported")
            return self.emit_adaptive(node, x, shape, bd, pool, nd, self.arg(node, 1, "output_size"))
        if not meth and t is F.linear:
            return self.map_functional_linear(node)
        if not meth and t is F.layer_norm:
            return self.map_functional_layer_norm(node)
        kind = "method" if meth else "function"
        raise self.err(f"{kind} '{_tname(t)}' is not supported by harcore's tracer (no op in the harcore graph)")

    def unary(self, node: fx.Node, kind: str, **fields: Any) -> _T:
        x = self.tensor(node.args[0])
        shape, bd = self.out_t(node)
        return _T(self.emit(kind, node.name, [x], shape, **fields), bd, len(shape) + 1)

    def binary(self, node: fx.Node, kind: str) -> _T:
        if len(node.args) != 2:
            raise self.err(f"{kind} with {len(node.args)} operands is not supported")
        a, b = (self.val(x) for x in node.args)
        word = "sum" if kind == "add" else "product"
        if not isinstance(a, _T) and not isinstance(b, _T):
            raise self.err(f"{kind} of two non-activations is not supported")
        if not isinstance(a, _T):
            a, b = b, a
        shape, bd = self.out_t(node)
        if isinstance(b, _T):
            # numpy broadcasting between activations of equal rank whose batch sits on the same dim
            # (e.g. attention weights (T, 1) times features (T, H)); broadcasting across the batch is not.
            if a.bdim != b.bdim or a.ndim != b.ndim or tuple(shape) != _broadcast(self.gshape(a), self.gshape(b)):
                raise self.err(f"elementwise {word} of shapes {self.gshape(a)} and {self.gshape(b)} (batch dims "
                               f"{a.bdim}, {b.bdim}): harcore's {kind} op broadcasts two activations of equal rank "
                               "with the batch on the same dim")
            return _T(self.emit(kind, node.name, [a, b], shape), bd, len(shape) + 1)
        if isinstance(b, _Param) and b.is_param:
            ps = self.param_shape(a, b.value)
            if tuple(shape) != self.gshape(a):
                raise self.err(f"parameter '{b.path}' of shape {tuple(b.value.shape)} broadcasts the activation "
                               f"{self.gshape(a)} to {tuple(shape)}; only a parameter that fits inside it is "
                               "supported")
            tid = self.emit(kind, node.name, [a], shape, param_shape=ps)
            self.own(self.g.ops[-1].name, [(b.path, b.tensor)])
            return _T(tid, bd, len(shape) + 1)
        if isinstance(b, _Param):
            raise self.err(f"elementwise {word} with the buffer '{b.path}': the harcore graph's {kind} op takes two "
                           "activations or an activation and a trainable parameter")
        raise self.err(
            f"elementwise {word} with the constant {b!r}: the harcore graph has no op for arithmetic with a "
            "constant (add / mul: two activations, or an activation and a trainable parameter). Fold the "
            "constant into a neighbouring layer, or make it an nn.Parameter")

    def param_shape(self, a: _T, p: torch.Tensor) -> tuple[int, ...]:
        ps = list(p.shape)
        if len(ps) > a.ndim:
            raise self.err(f"parameter of shape {tuple(ps)} has more dims than the activation")
        # right-align against the torch shape; the dim facing the batch must be 1 and is dropped
        off = a.ndim - len(ps)
        if a.bdim >= off:
            if ps[a.bdim - off] != 1:
                raise self.err(f"parameter of shape {tuple(ps)} varies along the batch dimension")
            del ps[a.bdim - off]
        # a scalar (0-d) parameter is (1,): the graph's one-input mul always names its parameter's shape
        return tuple(ps) or (1,)

    def emit_reshape(self, node: fx.Node, x: _T) -> _T:
        shape, bd = self.out_t(node)
        if tuple(shape) == self.gshape(x):
            return _T(x.tid, bd, len(shape) + 1)
        return _T(self.emit("reshape", node.name, [x], shape), bd, len(shape) + 1)

    def map_transpose(self, node: fx.Node) -> _T:
        x = self.tensor(node.args[0])
        n = x.ndim
        t = node.target
        if t in ("permute", torch.permute):
            dims = node.args[1:] if t == "permute" else (self.arg(node, 1, "dims"),)
            if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
                dims = tuple(dims[0])
            if "dims" in node.kwargs and t == "permute":
                dims = tuple(node.kwargs["dims"])
            perm = [int(d) % n for d in dims]
        elif t in ("t",) or t is torch.t:
            perm = list(range(n))[::-1]
        elif t is getattr:
            perm = list(range(n))
            if node.args[1] == "T":
                perm = perm[::-1]
            else:
                perm[-1], perm[-2] = perm[-2], perm[-1]
        else:
            d0 = int(self.arg(node, 1, "dim0")) % n
            d1 = int(self.arg(node, 2, "dim1")) % n
            perm = list(range(n))
            perm[d0], perm[d1] = perm[d1], perm[d0]
        shape, bd = self.out_t(node)
        if perm[bd] != x.bdim:
            raise self.err("batch dimension moved inconsistently by the permutation")
        gperm = [p - (1 if p > x.bdim else 0) for j, p in enumerate(perm) if j != bd]
        if gperm == sorted(gperm):
            return _T(x.tid, bd, n)
        return _T(self.emit("transpose", node.name, [x], shape, perm=tuple(gperm)), bd, n)

    def map_cat(self, node: fx.Node) -> _T:
        xs = [self.tensor(a) for a in self.arg(node, 0, "tensors")]
        dim = self.arg(node, 1, "dim", 0)
        if any(x.bdim != xs[0].bdim or x.ndim != xs[0].ndim for x in xs):
            raise self.err("concatenated tensors have their batch on different dims")
        axis = self.gaxis(dim, xs[0])
        shape, bd = self.out_t(node)
        if len(xs) == 1:
            return xs[0]
        return _T(self.emit("concat", node.name, xs, shape, axis=axis), bd, len(shape) + 1)

    def map_stack(self, node: fx.Node) -> _T:
        xs = [self.tensor(a) for a in self.arg(node, 0, "tensors")]
        dim = self.arg(node, 1, "dim", 0)
        shape, bd = self.out_t(node)
        out = _T(-1, bd, len(shape) + 1)
        axis = self.gaxis(dim, out)
        if any(x.bdim != xs[0].bdim or self.gshape(x) != self.gshape(xs[0]) for x in xs):
            raise self.err("stacked tensors differ in shape or batch dim")
        parts = []
        for i, x in enumerate(xs):
            s = list(self.gshape(x))
            s.insert(axis, 1)
            parts.append(_T(self.emit("reshape", f"{node.name}_unsqueeze{i}", [x], s), bd, len(shape) + 1))
        if len(parts) == 1:
            return parts[0]
        return _T(self.emit("concat", node.name, parts, shape, axis=axis), bd, len(shape) + 1)

    def map_reduce(self, node: fx.Node, is_mean: bool) -> _T:
        x = self.tensor(node.args[0])
        dim = self.arg(node, 1, "dim", None)
        if isinstance(dim, (tuple, list)) and len(dim) == 1:
            dim = dim[0]
        if not isinstance(dim, int):
            raise self.err(f"{'mean' if is_mean else 'sum'} over dims {dim!r}: only a reduction over one dim is "
                           "supported")
        if node.kwargs.get("dtype") is not None:
            raise self.err("reductions with a dtype are not supported")
        keep = bool(self.arg(node, 2, "keepdim", False))
        axis = self.gaxis(dim, x)
        shape, bd = self.out_t(node)
        return _T(self.emit("mean", node.name, [x], shape, axis=axis, keep_dims=keep, mean=is_mean), bd,
                  len(shape) + 1)

    def map_functional_layer_norm(self, node: fx.Node) -> _T:
        x = self.tensor(node.args[0])
        ns = self.val(self.arg(node, 1, "normalized_shape"))  # may be traced shape arithmetic
        ns = (int(ns),) if isinstance(ns, int) else tuple(int(self.val(d)) for d in ns)
        w = self.val(self.arg(node, 2, "weight", None))
        b = self.val(self.arg(node, 3, "bias", None))
        for what, v in (("weight", w), ("bias", b)):
            if v is not None and not (isinstance(v, _Param) and v.is_param):
                raise self.err(f"F.layer_norm with a {what} that is not a parameter is not supported")
        if (w is None) != (b is None):
            raise self.err("F.layer_norm with only one of weight and bias is not supported: the graph's layernorm "
                           "has both or neither")
        axis = self.norm_axis(x, ns)
        shape, bd = self.out_t(node)
        tid = self.emit("layernorm", node.name, [x], shape, axis=axis, bias=w is not None)
        if w is not None:
            self.own(self.g.ops[-1].name, [(w.path, w.tensor), (b.path, b.tensor)])
        return _T(tid, bd, len(shape) + 1)

    # -- products ----------------------------------------------------------------------------
    def map_matmul(self, node: fx.Node, an: Any, bn: Any) -> _T:
        a, b = self.val(an), self.val(bn)
        if isinstance(a, _T) and isinstance(b, _Param) and b.is_param:
            if b.tensor.dim() != 2:
                raise self.err(f"matmul with the {b.tensor.dim()}-D parameter '{b.path}': only a 2-D weight is "
                               "supported")
            return self.param_linear(node, a, b, int(b.tensor.shape[0]), int(b.tensor.shape[1]), None)
        a, b = self.tensor(an, "left operand"), self.tensor(bn, "right operand")
        shape, bd = self.out_t(node)
        sa, sb = self.gshape(a), self.gshape(b)
        if a.bdim != 0 or b.bdim != 0 or len(sa) < 2 or len(sa) != len(sb) or sa[:-2] != sb[:-2] or \
                sa[-1] != sb[-2]:
            raise self.err(f"matmul of {self.v1[an].shape} and {self.v1[bn].shape}: harcore's matmul needs two "
                           "activations (batch, ..., M, K) @ (batch, ..., K, N) with equal leading dims")
        return _T(self.emit("matmul", node.name, [a, b], shape), bd, len(shape) + 1)

    def param_linear(self, node: fx.Node, x: _T, w: _Param, k: int, n: int, bias: _Param | None) -> _T:
        if self.gshape(x)[-1] != k or x.bdim == x.ndim - 1:
            raise self.err(f"product with parameter '{w.path}' of shape {tuple(w.tensor.shape)} does not "
                           f"contract the activation's last dim ({self.gshape(x)})")
        shape, bd = self.out_t(node)
        tid = self.emit("linear", node.name, [x], shape, in_channels=k, out_channels=n, bias=bias is not None)
        self.own(self.g.ops[-1].name, [(w.path, w.tensor)] + ([(bias.path, bias.tensor)] if bias else []))
        return _T(tid, bd, len(shape) + 1)

    def map_functional_linear(self, node: fx.Node) -> _T:
        x = self.tensor(node.args[0])
        w = self.val(self.arg(node, 1, "weight"))
        b = self.val(self.arg(node, 2, "bias", None))
        if not (isinstance(w, _Param) and w.is_param and w.tensor.dim() == 2) or \
                (b is not None and not (isinstance(b, _Param) and b.is_param)):
            raise self.err("F.linear is supported only with parameter weight (2-D) and bias")
        return self.param_linear(node, x, w, int(w.tensor.shape[1]), int(w.tensor.shape[0]), b)
