"""The harcore model zoo: reference HAR networks behind one registry, in the style of timm.

    >>> from harcore import models
    >>> models.names()
    ['attend_discriminate', 'cnn', 'cnn_student', 'deepconvlstm', 'mlp_har', 'mubiconvlstm', 'tinierhar', 'tinyhar']
    >>> models.list_models("tin*")
    ['tinierhar', 'tinyhar']
    >>> net = models.create("tinyhar", in_channels=9, seq_len=128, num_classes=6)

``create_model``/``list_models`` are the timm-style names of ``create``/``names`` (also ``harcore.create_model``
and ``harcore.list_models``).

Every model takes a float tensor shaped ``(batch, channels, time)`` and returns logits ``(batch, num_classes)``.
All sizes are fixed at construction from ``in_channels``/``seq_len``, so every model can be traced with
``torch.fx.symbolic_trace`` (no data- or shape-dependent Python control flow in ``forward``).

``info(name)`` gives the paper, the reference code and the published/reference figures (parameters, MACs)
that the zoo build reproduces, each with where it came from. Those are *reference* figures: the zoo never
reports them as its own measurements; ``tests/test_models.py`` measures the built models against them.
"""

from __future__ import annotations

import copy
import fnmatch
import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional, Type

import torch.nn as nn

from ..errors import UnknownModelError

__all__ = ["register_model", "create", "create_model", "list_models", "names", "info", "ModelEntry",
           "UnknownModelError", "REFERENCE_INPUTS"]

#: Input settings used by the reference figures: label -> (in_channels, seq_len, num_classes).
#: "uci" is UCI-HAR (9 inertial channels, 50 Hz x 2.56 s, 6 classes); "3x80" is WISDM as the TinierHAR
#: repository windows it (20 Hz x 4 s, 3 channels); "3x128" is a WISDM-like input with UCI's window length.
REFERENCE_INPUTS: Dict[str, tuple] = {"uci": (9, 128, 6), "3x128": (3, 128, 6), "3x80": (3, 80, 6)}


@dataclass(frozen=True)
class ModelEntry:
    name: str
    cls: Type[nn.Module]
    reference: Mapping[str, Any] = field(default_factory=dict)

    def config_keys(self) -> List[str]:
        """The keyword options accepted by the model besides in_channels/seq_len/num_classes."""
        sig = inspect.signature(self.cls.__init__)
        skip = {"self", "in_channels", "seq_len", "num_classes"}
        return [p.name for p in sig.parameters.values()
                if p.name not in skip and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]

    def defaults(self) -> Dict[str, Any]:
        sig = inspect.signature(self.cls.__init__)
        return {k: sig.parameters[k].default for k in self.config_keys()}


_REGISTRY: Dict[str, ModelEntry] = {}


def register_model(name: str, reference: Optional[Mapping[str, Any]] = None) -> Callable[[Type[nn.Module]], Type[nn.Module]]:
    """Class decorator: register ``cls`` under the lower-case ``name``.

    The class must accept ``(in_channels, seq_len, num_classes, **cfg)``; ``cfg`` keys are its keyword
    parameters. ``reference`` is the metadata returned by :func:`info`.
    """
    if name != name.lower() or not name.isidentifier():
        raise ValueError(f"model names are lower-case identifiers, got {name!r}")

    def deco(cls: Type[nn.Module]) -> Type[nn.Module]:
        if name in _REGISTRY and _REGISTRY[name].cls is not cls:
            raise ValueError(f"model name {name!r} is already registered by {_REGISTRY[name].cls.__qualname__}")
        _REGISTRY[name] = ModelEntry(name, cls, dict(reference or {}))
        cls.model_name = name
        return cls

    return deco


def names() -> List[str]:
    """Registered model names, sorted."""
    return sorted(_REGISTRY)


def list_models(pattern: str = "*") -> List[str]:
    """Registered model names matching the shell-style ``pattern`` (:mod:`fnmatch`, case-insensitive), sorted."""
    if not isinstance(pattern, str):
        raise TypeError(f"list_models: pattern must be a str, got {type(pattern).__name__}")
    return [n for n in names() if fnmatch.fnmatchcase(n, pattern.lower())]


def _entry(name: str) -> ModelEntry:
    if not isinstance(name, str) or name.lower() not in _REGISTRY:
        raise UnknownModelError(f"unknown model {name!r}; available models: {', '.join(names())}")
    return _REGISTRY[name.lower()]


def create(name: str, in_channels: Optional[int] = None, seq_len: Optional[int] = None,
           num_classes: Optional[int] = None, **cfg: Any) -> nn.Module:
    """Build zoo model ``name`` for windows of ``in_channels`` x ``seq_len`` and ``num_classes`` classes.

    Sizes left out are taken from ``cfg`` where the model can tell them (``sftnas`` with a searched ``arch``).

    Raises :class:`UnknownModelError` (a KeyError/ValueError) for an unknown name, ``TypeError`` naming
    any unknown ``cfg`` key, and ``ValueError`` for sizes the architecture cannot take.
    """
    entry = _entry(name)
    if None in (in_channels, seq_len, num_classes):
        sizes_from = getattr(entry.cls, "sizes_from_config", None)  # a model whose config carries its sizes
        sizes = sizes_from(cfg) if sizes_from is not None else None
        if sizes is not None:
            in_channels, seq_len, num_classes = (g if g is not None else v
                                                 for g, v in zip((in_channels, seq_len, num_classes), sizes))
    for what, v in (("in_channels", in_channels), ("seq_len", seq_len), ("num_classes", num_classes)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{entry.name}: {what} must be a positive int, got {v!r}")
    allowed = entry.config_keys()
    bad = sorted(k for k in cfg if k not in allowed)
    if bad:
        raise TypeError(f"{entry.name}: unknown config key(s) {', '.join(map(repr, bad))}; "
                        f"accepted: {', '.join(allowed) if allowed else '(none)'}")
    return entry.cls(in_channels, seq_len, num_classes, **cfg)


def create_model(name: str, in_channels: int, seq_len: int, num_classes: int, **cfg: Any) -> nn.Module:
    """timm-style alias of :func:`create`."""
    return create(name, in_channels, seq_len, num_classes, **cfg)


def info(name: str) -> Dict[str, Any]:
    """Paper, code and the reference figures the zoo build reproduces, with their sources.

    Returns a dict with ``name``, ``summary`` (first docstring line), ``config`` (defaults of the cfg keys)
    and the model's reference metadata: ``paper``, ``code``, ``figures_source`` and ``figures``:
    ``{variant: {input_label: {"params", "core_macs", "attn_macs", "ptflops_macs"}}}`` where the input
    labels are those of :data:`REFERENCE_INPUTS` and a missing key means the source gives no figure.
    """
    entry = _entry(name)
    doc = inspect.getdoc(entry.cls) or ""
    out: Dict[str, Any] = {"name": entry.name, "summary": doc.splitlines()[0] if doc else "",
                           "config": entry.defaults()}
    out.update(copy.deepcopy(dict(entry.reference)))
    return out


# Importing the model modules registers them.
from . import (  # noqa: E402,F401
    attend_discriminate,
    cnn_distill,
    deepconvlstm,
    mlp_har,
    mubiconvlstm,
    sftnas,
    tinierhar,
    tinyhar,
)
