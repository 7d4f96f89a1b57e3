"""harcore.quant.planner: the arena planner on its own, and on the zoo models' lowered programs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from harcore import data, models, quant
from harcore.errors import QuantError
from harcore.quant.planner import ArenaPlanner

torch.set_num_threads(1)


def _check_plan(bufs: list[tuple[int, int, int, int]], offsets: list[int], arena: int) -> None:
    """No two buffers live at the same step share a byte, every offset is aligned, all fit in the arena."""
    for i, (size, first, last, align) in enumerate(bufs):
        assert offsets[i] % align == 0, (i, offsets[i], align)
        assert 0 <= offsets[i] and offsets[i] + size <= arena, (i, offsets[i], size, arena)
        for j in range(i):
            s2, f2, l2, _ = bufs[j]
            if size == 0 or s2 == 0 or last < f2 or l2 < first:
                continue
            assert offsets[i] + size <= offsets[j] or offsets[j] + s2 <= offsets[i], (i, j)


def _plan(bufs: list[tuple[int, int, int, int]]) -> tuple[list[int], int]:
    p = ArenaPlanner()
    for k, (size, first, last, align) in enumerate(bufs):
        assert p.add_buffer(size, first, last, align=align) == k
    offsets = p.plan()
    _check_plan(bufs, offsets, p.arena_size)
    return offsets, p.arena_size


def test_one_buffer():
    assert _plan([(100, 0, 0, 1)]) == ([0], 100)


def test_no_buffers():
    p = ArenaPlanner()
    assert p.plan() == [] and p.arena_size == 0


def test_zero_size_buffers_take_no_space():
    offsets, arena = _plan([(0, 0, 3, 4), (16, 0, 3, 1), (0, 1, 2, 1)])
    assert arena == 16 and offsets[0] == offsets[2] == 0


def test_all_overlapping_buffers_are_stacked():
    bufs = [(s, 0, 5, 1) for s in (10, 30, 20, 5)]
    _, arena = _plan(bufs)
    assert arena == 65  # all live at once: nothing can share


def test_disjoint_lifetimes_share_memory():
    bufs = [(64, 0, 1, 1), (64, 2, 3, 1), (64, 4, 5, 1)]
    offsets, arena = _plan(bufs)
    assert arena == 64 and offsets == [0, 0, 0]


def test_alignment_is_respected():
    # a 3-byte buffer first would push the next to offset 3 without the alignment
    bufs = [(3, 0, 2, 1), (8, 0, 2, 4), (5, 1, 1, 8), (7, 0, 0, 16)]
    offsets, arena = _plan(bufs)
    assert offsets[1] % 4 == 0 and offsets[2] % 8 == 0 and offsets[3] % 16 == 0


def test_random_plans_are_valid_deterministic_and_above_the_bound():
    rng = np.random.default_rng(1)
    for trial in range(30):
        n = int(rng.integers(1, 25))
        bufs = []
        for _ in range(n):
            first = int(rng.integers(0, 10))
            bufs.append((int(rng.integers(0, 200)), first, first + int(rng.integers(0, 4)),
                         int(2 ** rng.integers(0, 3))))
        p = ArenaPlanner()
        for b in bufs:
            p.add_buffer(*b[:3], align=b[3])
        offsets = p.plan()
        _check_plan(bufs, offsets, p.arena_size)
        assert p.arena_size >= p.lower_bound()
        assert p.plan() == offsets  # deterministic


def test_plan_is_deterministic():
    bufs = [(int(s), int(f), int(f) + 2, 1) for s, f in zip(np.arange(1, 40) * 7 % 53, np.arange(39) % 9)]
    assert _plan(bufs) == _plan(bufs)


@pytest.mark.parametrize("args,msg", [
    ((-1, 0, 0), r"buffer 0 \(x\): size -1 is negative"),
    ((8, 3, 2), r"buffer 0 \(x\): live range \[3, 2\] is empty"),
    ((8, -1, 2), r"buffer 0 \(x\): live range \[-1, 2\]"),
    ((8, 0, 2, 3), r"buffer 0 \(x\): align 3 is not a power of two"),
    ((8, 0, 2, 0), r"buffer 0 \(x\): align 0 is not a power of two"),
    ((8.0, 0, 2), r"buffer 0 \(x\): size must be an int, got float"),
    ((8, 0, True), r"buffer 0 \(x\): last_use must be an int, got bool"),
])
def test_bad_buffers_are_named(args, msg):
    p = ArenaPlanner()
    size, first, last, *align = args
    with pytest.raises(QuantError, match=msg):
        p.add_buffer(size, first, last, *align, name="x")


def test_arena_size_needs_a_plan():
    p = ArenaPlanner()
    p.add_buffer(4, 0, 0)
    with pytest.raises(QuantError, match="only after plan"):
        p.arena_size  # noqa: B018
    p.plan()
    p.add_buffer(4, 0, 0)  # a new buffer makes the old plan stale
    with pytest.raises(QuantError, match="only after plan"):
        p.arena_size  # noqa: B018


# Arena bytes of every lowerable zoo model (models.create(name, 9, 128, 6) under torch.manual_seed(0), calibrated
# on the first 32 training windows of the built-in dataset), recorded from main at b735c29 by running main's
# lowerer (whose planner was _Lowerer.plan/_place in quant/lower.py) before the planner became its own module.
# "Peak SRAM no higher than today's arena" must hold: a planner change may lower these numbers (then update them
# on purpose, with the cost model's peak SRAM, which test_quant.py holds equal to the arena), never raise them.
# mlp_har is not here: its gather op is not supported by the int8 path.
MAIN_ARENA = {
    "attend_discriminate": 267120,
    "cnn": 101376,
    "cnn_student": 1280,
    "deepconvlstm": 141824,
    "mubiconvlstm": 3392,
    "sftnas": 17680,
    "tinierhar": 9216,
    "tinyhar": 44680,
}


@pytest.fixture(scope="module")
def calib():
    return data.load("default").train.x[:32]


@pytest.mark.parametrize("name", sorted(MAIN_ARENA))
def test_zoo_arena_equals_main_and_the_plan_is_valid(name, calib):
    torch.manual_seed(0)
    m = models.create(name, 9, 128, 6).eval()
    p = quant.lower(quant.quantize(m, calib))
    assert p.arena_size == MAIN_ARENA[name]
    # the buffers of the lowered program, with the live ranges the lowerer gave the planner, do not collide
    used = [b for b in p.bufs if b.last >= 0]
    _check_plan([(b.size, b.first, b.last, b.align) for b in used], [b.offset for b in used], p.arena_size)
