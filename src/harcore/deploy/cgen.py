"""C++ source emission helpers shared by the firmware generators (arrays as const data in flash)."""

from __future__ import annotations

from typing import Iterable

import numpy as np

__all__ = ["c_array", "c_ident"]

_CTYPES = {
    np.dtype(np.int8): "int8_t",
    np.dtype(np.int16): "int16_t",
    np.dtype(np.int32): "int32_t",
    np.dtype(np.uint8): "uint8_t",
}


def c_ident(text: str) -> str:
    """A C identifier made from ``text`` (anything else becomes '_')."""
    s = "".join(c if c.isalnum() or c == "_" else "_" for c in text)
    return s if s and not s[0].isdigit() else "_" + s


def c_array(name: str, values: np.ndarray | Iterable[int], dtype=None, *, const: bool = True, static: bool = True,
            align: int = 4, per_line: int = 24) -> str:
    """``alignas(align) [static] [const] T name[N] = {...};`` for an integer array (flattened, C order)."""
    a = np.ascontiguousarray(np.asarray(values, dtype=dtype)).reshape(-1)
    ctype = _CTYPES.get(a.dtype)
    if ctype is None:
        raise ValueError(f"c_array: array '{name}' has unsupported dtype {a.dtype} (int8, int16, int32, uint8)")
    if a.size == 0:
        raise ValueError(f"c_array: array '{name}' is empty")
    vals = a.astype(np.int64).tolist()
    # INT32_MIN cannot be written as a plain literal in C++.
    fmt = (lambda v: "(-2147483647 - 1)" if v == -(1 << 31) else str(v))
    lines = [", ".join(fmt(v) for v in vals[i:i + per_line]) for i in range(0, len(vals), per_line)]
    body = ",\n  ".join(lines)
    quals = ("static " if static else "") + ("const " if const else "")
    return f"alignas({align}) {quals}{ctype} {name}[{a.size}] = {{\n  {body}}};\n"
