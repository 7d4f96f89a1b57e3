"""``torch.einsum`` and ``torch.fft.fft/rfft`` (with ``.real`` / ``.imag``) -> graph ops: matmul, linear, grouped
conv and transposes for einsum; one DFT op per used part for the FFT."""

from __future__ import annotations

import math

import torch
import torch.fx as fx

from ._common import _Complex, _Param, _T


class EinsumFftMapping:
    """Mapping of einsum and FFT nodes (a mixin of the tracer's ``_Mapper``)."""

    # -- torch.fft ----------------------------------------------------------------------------
    def map_fft(self, node: fx.Node) -> _Complex:
        fn = "torch.fft.fft" if node.target is torch.fft.fft else "torch.fft.rfft"
        x = self.tensor(node.args[0])
        if self.v1[node.args[0]].is_complex():
            raise self.err(f"{fn} of complex data: the graph's DFT op transforms real data only")
        n = self.arg(node, 1, "n", None)
        dim = self.arg(node, 2, "dim", -1)
        norm = self.arg(node, 3, "norm", None)
        size = self.gshape(x)[-1]
        if not isinstance(dim, int) or dim % x.ndim != x.ndim - 1 or x.bdim == x.ndim - 1:
            raise self.err(f"{fn} along dim {dim!r}: only the last dim (not the batch) is supported; transpose first")
        if n is not None and n != size:
            raise self.err(f"{fn} with n={n} (padding or trimming the length-{size} signal) is not supported")
        if norm not in (None, "backward"):
            raise self.err(f"{fn} with norm={norm!r} is not supported: the graph's DFT is unnormalized ('backward')")
        bins = size if fn == "torch.fft.fft" else size // 2 + 1
        return _Complex(x, bins, fn, node.name)

    def map_complex_part(self, node: fx.Node, imag: bool) -> _T:
        src = node.args[0]
        z = self.val(src, complex_ok=True)
        if not isinstance(z, _Complex):
            raise self.err(f"{'.imag' if imag else '.real'} of a value that is not the result of torch.fft.fft/rfft "
                           "(the graph's tensors are real)")
        key = (z.node_name, imag)
        if key not in self._dft:
            shape, bd = self.out_t(node)
            tid = self.emit("dft", node.name, [z.x], shape, length=z.bins, imag=imag)
            self._dft[key] = _T(tid, bd, len(shape) + 1)
        return self._dft[key]

    def map_einsum(self, node: fx.Node) -> _T:
        eq = node.args[0]
        ops = list(node.args[1:])
        if len(ops) == 1 and isinstance(ops[0], (list, tuple)):
            ops = list(ops[0])
        if not isinstance(eq, str) or len(ops) != 2 or "->" not in eq or "." in eq:
            raise self.err("only explicit two-operand einsum ('ab,bc->ac', no '...') is supported")
        lhs, out = eq.replace(" ", "").split("->")
        la, lb = lhs.split(",")
        va, vb = self.val(ops[0]), self.val(ops[1])
        if isinstance(va, _Param) and isinstance(vb, _T):
            va, vb, la, lb = vb, va, lb, la
        for lab in (la, lb, out):
            if len(set(lab)) != len(lab):
                raise self.err(f"einsum '{eq}': repeated labels (diagonals) are not supported")
        if isinstance(vb, _Param) and vb.is_param and isinstance(va, _T):
            return self.einsum_param(node, eq, va, vb, la, lb, out)
        a = self.tensor(ops[0], "first einsum operand")
        b = self.tensor(ops[1], "second einsum operand")
        la, lb = lhs.split(",")
        bl = la[a.bdim]
        if bl not in lb or lb[b.bdim] != bl or bl not in out:
            raise self.err(f"einsum '{eq}': both operands and the output must keep the batch label")
        sa, sb, so = set(la), set(lb), set(out)
        if (sa - sb - so) or (sb - sa - so) or (so - sa - sb):
            raise self.err(f"einsum '{eq}': labels summed within one operand are not supported")
        batch = [c for c in la if c in sb and c in so and c != bl]
        kl = [c for c in la if c in sb and c not in so]
        ml = [c for c in la if c not in sb]
        nl = [c for c in lb if c not in sa]
        if len(kl) != 1 or len(ml) > 1 or len(nl) > 1:
            raise self.err(f"einsum '{eq}': needs exactly one contracted label and at most one free label per "
                           "operand")
        size = {}
        for lab, t in ((la, self.v1[ops[0]]), (lb, self.v1[ops[1]])):
            for c, s in zip(lab, t.shape):
                size[c] = int(s)
        k = kl[0]
        # operand a -> (batch..., M, K), b -> (batch..., K, N); missing M/N get a size-1 dim
        a2 = self.einsum_arrange(node, a, la, batch + ml + [k], size, bl, "a", None if ml else len(batch))
        b2 = self.einsum_arrange(node, b, lb, batch + [k] + nl, size, bl, "b", None if nl else len(batch) + 1)
        mm_labels = batch + (ml or ["_m"]) + (nl or ["_n"])
        size["_m"] = size["_n"] = 1
        mm_shape = tuple(size[c] for c in mm_labels)
        cur = _T(self.emit("matmul", node.name, [a2, b2], mm_shape), 0, len(mm_shape) + 1)
        shape, bd = self.out_t(node)
        if ml and nl:
            final = [c for c in out if c != bl]
            perm = tuple(mm_labels.index(c) for c in final)
            if list(perm) != sorted(perm):
                cur = _T(self.emit("transpose", f"{node.name}_out", [cur],
                                   tuple(size[c] for c in final), perm=perm), 0, len(mm_shape) + 1)
        if tuple(self.gshape(cur)) != tuple(shape):
            # drop the size-1 helper dim (and reorder if needed via reshape only when the order already matches)
            keep = [c for c in mm_labels if c not in ("_m", "_n")]
            final = [c for c in out if c != bl]
            if keep != final:
                perm = tuple(keep.index(c) for c in final)
                sq = tuple(size[c] for c in keep)
                cur = _T(self.emit("reshape", f"{node.name}_squeeze", [cur], sq), 0, len(sq) + 1)
                cur = _T(self.emit("transpose", f"{node.name}_out", [cur], shape, perm=perm), 0, len(shape) + 1)
            else:
                cur = _T(self.emit("reshape", f"{node.name}_squeeze", [cur], shape), 0, len(shape) + 1)
        if bd != 0:
            raise self.err(f"einsum '{eq}': the output must keep the batch first")
        return _T(cur.tid, bd, len(shape) + 1)

    def einsum_grouped(self, node, eq, x: _T, w: _Param, lx: str, lw: str, out: str) -> _T:
        """A per-group weight, e.g. 'bcnt,ctf->bcnf' (one (t, f) matrix per channel c): a grouped 1x1 conv.

        x is arranged as (g, k, m...) and viewed as (G*K, M), convolved with G*N filters in G groups, and the
        (G*N, M) result is viewed as (g, n, m...) and permuted to the output's label order."""
        msg = (f"einsum '{eq}' with the 3-D parameter '{w.path}': only a per-group weight (one label shared by the "
               "activation, the weight and the output; one contracted; one new) is supported")
        gl = [c for c in lw if c in lx and c in out]
        kl = [c for c in lw if c in lx and c not in out]
        nl = [c for c in lw if c not in lx and c in out]
        if x.bdim != 0 or lx[0] in lw:
            raise self.err(msg + "; the batch must be the activation's first dim and not a label of the weight")
        if len(gl) != 1 or len(kl) != 1 or len(nl) != 1:
            raise self.err(msg)
        g, k, n = gl[0], kl[0], nl[0]
        bl = lx[0]
        glab = [c for c in lx if c != bl]
        ml = [c for c in glab if c not in (g, k)]
        final = [c for c in out if c != bl]
        if sorted(final) != sorted([g, n] + ml) or out[0] != bl:
            raise self.err(msg + f"; the output '{out}' must keep the batch first and every other label of x")
        size = dict(zip(glab, self.gshape(x)))
        size[n] = int(w.value.shape[lw.index(n)])
        G, K, N = size[g], size[k], size[n]
        M = math.prod(size[c] for c in ml)
        cur = x
        want = [g, k] + ml
        if glab != want:
            cur = _T(self.emit("transpose", f"{node.name}_inT", [cur], tuple(size[c] for c in want),
                               perm=tuple(glab.index(c) for c in want)), 0, len(want) + 1)
        cur = _T(self.emit("reshape", f"{node.name}_in", [cur], (G * K, M)), 0, 3)
        tid = self.emit("conv", node.name, [cur], (G * N, M), in_channels=G * K, out_channels=G * N, groups=G,
                        bias=False)
        self.own(self.g.ops[-1].name, [(w.path, w.tensor)])
        mid = [g, n] + ml
        cur = _T(self.emit("reshape", f"{node.name}_out", [_T(tid, 0, 3)], tuple(size[c] for c in mid)), 0,
                 len(mid) + 1)
        if mid != final:
            cur = _T(self.emit("transpose", f"{node.name}_outT", [cur], tuple(size[c] for c in final),
                               perm=tuple(mid.index(c) for c in final)), 0, len(final) + 1)
        shape, bd = self.out_t(node)
        if self.gshape(cur) != tuple(shape):
            raise self.err(msg)
        return cur

    def einsum_arrange(self, node, t: _T, labels: str, want: list[str], size: dict, bl: str, tag: str,
                       insert_at: int | None) -> _T:
        have = [c for c in labels if c != bl]
        if t.bdim != labels.index(bl):
            raise self.err("einsum operand batch label does not sit on the batch dim")
        cur = t
        if have != want:
            perm = tuple(have.index(c) for c in want)
            cur = _T(self.emit("transpose", f"{node.name}_{tag}T", [cur], tuple(size[c] for c in want),
                               perm=perm), 0, len(want) + 1)
        if insert_at is not None:
            s = [size[c] for c in want]
            s.insert(insert_at, 1)
            cur = _T(self.emit("reshape", f"{node.name}_{tag}R", [cur], s), 0, len(s) + 1)
        return cur

    def einsum_param(self, node, eq, x: _T, w: _Param, lx: str, lw: str, out: str) -> _T:
        if w.value.dim() == 3 and len(lw) == 3:
            return self.einsum_grouped(node, eq, x, w, lx, lw, out)
        if w.value is not w.tensor:
            raise self.err(f"einsum '{eq}' with a view of parameter '{w.path}' is not supported")
        if w.tensor.dim() != 2 or len(lw) != 2:
            raise self.err(f"einsum '{eq}' with parameter '{w.path}': only a 2-D weight is supported")
        kl = [c for c in lw if c in lx and c not in out]
        nl = [c for c in lw if c not in lx and c in out]
        if len(kl) != 1 or len(nl) != 1 or set(lx) - set(kl) != set(out) - set(nl) or \
                lx.replace(kl[0], nl[0]) != out:
            raise self.err(f"einsum '{eq}' with parameter '{w.path}': only 'x over its last-or-any dim times a "
                           "weight' with the output keeping x's label order is supported")
        k, n = kl[0], nl[0]
        bl = lx[x.bdim]
        size: dict[str, int] = {}
        xs = self.gshape(x)
        glab = [c for c in lx if c != bl]
        for c, s in zip(glab, xs):
            size[c] = s
        size[n] = int(w.tensor.shape[lw.index(n)])
        kn = (size[k], size[n])
        if glab[-1] == k:
            return self.param_linear(node, x, w, *kn, None)
        # move k last, linear, move n back
        want = [c for c in glab if c != k] + [k]
        perm = tuple(glab.index(c) for c in want)
        if x.bdim != 0:
            raise self.err(f"einsum '{eq}': the batch must be the first dim")
        cur = _T(self.emit("transpose", f"{node.name}_inT", [x], tuple(size[c] for c in want), perm=perm), 0, x.ndim)
        mid = [c for c in glab if c != k] + [n]
        tid = self.emit("linear", node.name, [cur], tuple(size[c] for c in mid), in_channels=kn[0],
                        out_channels=kn[1], bias=False)
        self.own(self.g.ops[-1].name, [(w.path, w.tensor)])
        final = [c if c != k else n for c in glab]
        perm2 = tuple(mid.index(c) for c in final)
        shape, bd = self.out_t(node)
        tid = self.emit("transpose", f"{node.name}_outT", [_T(tid, 0, x.ndim)], shape, perm=perm2)
        return _T(tid, bd, len(shape) + 1)
