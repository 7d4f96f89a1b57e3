"""harcore: hardware-aware search, int8 quantization and firmware for HAR models on microcontrollers.

    >>> import harcore
    >>> net = harcore.create_model("tinyhar", in_channels=9, seq_len=128, num_classes=6)
    >>> harcore.cost.profile(net, (9, 128)).total.macs

The subpackages (``harcore.models``, ``harcore.data``, ``harcore.cost``, ...) are imported on first use
(PEP 562), so ``import harcore`` is cheap and imports neither torch nor the C++ extension; ``import
harcore.cost`` and friends work as usual.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, List

from ._version import __version__

#: Subpackages reachable as attributes of ``harcore`` without importing them first.
_SUBMODULES = ("models", "data", "cost", "train", "quant", "deploy", "nas", "graph", "errors")
#: Top-level functions, forwarded to the subpackage that defines them: name -> module.
_FUNCTIONS = {"create_model": "models", "list_models": "models"}

__all__ = ["__version__", *_SUBMODULES, *_FUNCTIONS]

if TYPE_CHECKING:  # for type checkers and IDEs; at run time __getattr__ imports these on first use
    from . import cost, data, deploy, errors, graph, models, nas, quant, train  # noqa: F401
    from .models import create_model, list_models  # noqa: F401


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        # import_module also sets the attribute on this package, so __getattr__ runs once per name.
        return importlib.import_module(f".{name}", __name__)
    if name in _FUNCTIONS:
        value = getattr(importlib.import_module(f".{_FUNCTIONS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'harcore' has no attribute {name!r}")


def __dir__() -> List[str]:
    return sorted(set(__all__) | {n for n in globals() if n.startswith("__")})
