"""The arena planner: byte offsets for buffers with known live ranges in one arena (as TFLM's GreedyMemoryPlanner).

The lowerer (harcore.quant.lower) adds one buffer per tensor and per kernel scratch, each with the first and
last step that touches it; two buffers whose ranges overlap never share a byte. Placement is greedy first-fit
(a buffer goes at the lowest aligned offset clear of every already-placed buffer live at the same time) over
several orders, and the smallest arena wins::

    planner = ArenaPlanner()
    a = planner.add_buffer(1152, first_use=0, last_use=1)
    b = planner.add_buffer(4096, first_use=1, last_use=2, align=4)
    offsets = planner.plan()          # offsets[a], offsets[b]
    planner.arena_size                # bytes the arena needs

The result is deterministic: the same buffers in the same order always get the same plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from harcore.errors import QuantError

__all__ = ["ArenaPlanner"]

# Orders tried before the random ones; no single order reaches the live-size lower bound on every graph.
_ORDERS: list[Callable[["_Buffer"], tuple[int, int]]] = [
    lambda b: (-b.size, b.first),
    lambda b: (b.first, -b.size),
    lambda b: (-(b.last - b.first + 1) * b.size, b.first),
    lambda b: (-(b.last - b.first), -b.size),
    lambda b: (b.first, b.last),
]
_RANDOM_ORDERS = 400  # tried after _ORDERS until one reaches the lower bound


@dataclass
class _Buffer:
    id: int
    size: int
    first: int
    last: int
    align: int
    name: str


class ArenaPlanner:
    """Collects buffers (``add_buffer``), then places them (``plan``); ``arena_size`` is the bytes needed."""

    def __init__(self) -> None:
        self._bufs: list[_Buffer] = []
        self._offsets: list[int] | None = None
        self._arena_size = 0

    def add_buffer(self, size: int, first_use: int, last_use: int, align: int = 1, name: str | None = None) -> int:
        """Register a buffer of ``size`` bytes live from step ``first_use`` to ``last_use`` (inclusive), whose
        offset must be a multiple of ``align``; returns its id (0, 1, ...). ``name`` only labels errors."""
        i = len(self._bufs)
        label = f"buffer {i}" + (f" ({name})" if name else "")
        for what, v in (("size", size), ("first_use", first_use), ("last_use", last_use), ("align", align)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise QuantError(f"arena planner: {label}: {what} must be an int, got {type(v).__name__}")
        if size < 0:
            raise QuantError(f"arena planner: {label}: size {size} is negative")
        if first_use < 0 or last_use < first_use:
            raise QuantError(f"arena planner: {label}: live range [{first_use}, {last_use}] is empty or negative "
                             "(need 0 <= first_use <= last_use)")
        if align < 1 or align & (align - 1):
            raise QuantError(f"arena planner: {label}: align {align} is not a power of two")
        self._bufs.append(_Buffer(i, int(size), int(first_use), int(last_use), int(align), label))
        self._offsets = None
        return i

    def __len__(self) -> int:
        return len(self._bufs)

    @property
    def arena_size(self) -> int:
        """Bytes the arena needs for the last ``plan()``."""
        if self._offsets is None:
            raise QuantError("arena planner: arena_size is known only after plan()")
        return self._arena_size

    def lower_bound(self) -> int:
        """The largest total size of buffers live at one step: no plan can use less (alignment aside)."""
        live = [b for b in self._bufs if b.size > 0]
        return max((sum(b.size for b in live if b.first <= t <= b.last) for t in {b.first for b in live}), default=0)

    def plan(self) -> list[int]:
        """Offsets of every buffer, by id. Zero-size buffers get offset 0 and take no space."""
        live = [b for b in self._bufs if b.size > 0]
        bound = self.lower_bound()
        candidates = [sorted(live, key=key) for key in _ORDERS]
        rng = np.random.default_rng(0)  # deterministic: the same buffers always get the same plan
        best: dict[int, int] | None = None
        best_size = 0
        for k in range(len(candidates) + _RANDOM_ORDERS):
            order = candidates[k] if k < len(candidates) else [live[j] for j in rng.permutation(len(live))]
            offsets = self._place(order)
            size = max((offsets[b.id] + b.size for b in live), default=0)
            if best is None or size < best_size:
                best, best_size = offsets, size
            if best_size <= bound:
                break
        self._offsets = [best.get(b.id, 0) if best else 0 for b in self._bufs]
        self._arena_size = best_size
        return list(self._offsets)

    @staticmethod
    def _place(order: list[_Buffer]) -> dict[int, int]:
        """First fit in ``order``: each buffer at the lowest aligned offset clear of the placed, overlapping ones."""
        placed: list[tuple[_Buffer, int]] = []
        offsets: dict[int, int] = {}
        for b in order:
            live = sorted(((o, off) for o, off in placed if not (o.last < b.first or o.first > b.last)),
                          key=lambda t: t[1])
            off = 0
            for o, o_off in live:
                off = -(-off // b.align) * b.align
                if off + b.size <= o_off:
                    break
                off = max(off, o_off + o.size)
            off = -(-off // b.align) * b.align
            offsets[b.id] = off
            placed.append((b, off))
        return offsets
