"""The runtime's step table (src/cpp/runtime/harcore_steps.def) as the extension was compiled with it.

``harcore._core.runtime.step_table()`` exports the table with the compiled layout of every struct; the lowerer
checks each step's argument dict against it (:func:`check_args`) and the emitter writes C++ initializers in its
field order, so neither can disagree with the C++ structs. A field is a dict::

    {"name", "tag", "ctype", "count", "array", "offset", "size"}

with ``tag`` one of I32, I8P, I32P, I8P_OPT, ACT, STRUCT (harcore_steps.def explains them) and, for a STRUCT,
``ctype`` naming the nested struct (``kernels::cmsis_nn_dims``; :func:`struct_of` finds its entry).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from harcore.errors import QuantError

__all__ = ["StepKind", "Table", "table", "struct_of", "check_args"]


@dataclass(frozen=True)
class StepKind:
    name: str     # the lowerer's kind string, e.g. "conv"
    enum: str     # StepKind enumerator, e.g. "kConv"
    value: int
    args: str     # *Args struct, e.g. "ConvArgs"


@dataclass(frozen=True)
class Table:
    kinds: dict[str, StepKind]
    structs: dict[str, dict[str, Any]]   # struct name -> {"cpp", "generated", "size", "align", "fields"}
    enums: dict[str, tuple[str, int]]    # activation name -> (C++ enumerator, value)
    pointer_size: int
    format_version: int


@lru_cache(maxsize=1)
def table() -> Table:
    """The table of the loaded extension (read once)."""
    from harcore._core import runtime

    t = runtime.step_table()
    kinds = {k[0]: StepKind(*k) for k in t["kinds"]}
    return Table(kinds, dict(t["structs"]), dict(t["enums"]), int(t["pointer_size"]), int(t["format_version"]))


def struct_of(field: dict[str, Any]) -> dict[str, Any]:
    """The table entry of a STRUCT field's type."""
    return table().structs[field["ctype"].split("::")[-1]]


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _check_one(f: dict[str, Any], v: Any, path: str, where: str) -> None:
    tag = f["tag"]
    if tag == "I32":
        if not _is_int(v):
            raise QuantError(f"{where}: field '{path}' must be an int, got {type(v).__name__}")
        if not -(2**31) <= int(v) < 2**31:
            raise QuantError(f"{where}: field '{path}' does not fit in int32 ({int(v)})")
    elif tag in ("I8P", "I32P", "I8P_OPT"):
        dtype = np.int8 if tag != "I32P" else np.int32
        if tag == "I8P_OPT" and v is None:
            return
        if not isinstance(v, np.ndarray) or v.dtype != dtype:
            raise QuantError(f"{where}: field '{path}' must be a numpy {np.dtype(dtype).name} array"
                             f"{' or None' if tag == 'I8P_OPT' else ''}, got {type(v).__name__}"
                             f"{'' if not isinstance(v, np.ndarray) else ' of ' + v.dtype.name}")
    elif tag == "ACT":
        if v not in table().enums:
            raise QuantError(f"{where}: field '{path}' must be one of {sorted(table().enums)}, got {v!r}")
    elif tag == "STRUCT":
        _check_struct(struct_of(f), v, path, where)
    else:  # a tag this module does not know: the table is newer than the Python side
        raise QuantError(f"{where}: field '{path}' has tag {tag!r}, unknown to harcore.quant.steps")


def _check_struct(s: dict[str, Any], d: Any, path: str, where: str) -> None:
    if not isinstance(d, dict):
        raise QuantError(f"{where}: field '{path or 'args'}' must be a dict ({s['cpp']}), got {type(d).__name__}")
    names = [f["name"] for f in s["fields"]]
    for key in d:
        if key not in names:
            raise QuantError(f"{where}: field '{path + '.' if path else ''}{key}' is not a field of {s['cpp']} "
                             "(harcore_steps.def)")
    for f in s["fields"]:
        p = f"{path}.{f['name']}" if path else f["name"]
        if f["name"] not in d:
            raise QuantError(f"{where}: field '{p}' is missing")
        v = d[f["name"]]
        if not f["array"]:
            _check_one(f, v, p, where)
            continue
        n, partial = f["count"], f["tag"] == "STRUCT"  # an array of structs may be given in part (rest zero)
        if not isinstance(v, (list, tuple)):
            raise QuantError(f"{where}: field '{p}' must be a list of {n}, got {type(v).__name__}")
        if (not 1 <= len(v) <= n) if partial else len(v) != n:
            raise QuantError(f"{where}: field '{p}' must have {'1 to ' if partial else ''}{n} entries, got {len(v)}")
        for i, x in enumerate(v):
            _check_one(f, x, f"{p}[{i}]", where)


def check_args(kind: str, args: dict[str, Any], where: str) -> None:
    """QuantError naming ``where`` (e.g. "op 'conv1' (conv)") and the field unless ``args`` matches the table's
    struct of step ``kind`` exactly: every field present, no other key, each value of the field's type."""
    t = table()
    if kind not in t.kinds:
        raise QuantError(f"{where}: unknown step kind {kind!r} (src/cpp/runtime/harcore_steps.def has "
                         f"{', '.join(t.kinds)})")
    _check_struct(t.structs[t.kinds[kind].args], args, "", where)
