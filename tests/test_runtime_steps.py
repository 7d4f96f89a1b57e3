"""The runtime's step table (src/cpp/runtime/harcore_steps.def): the one description of every step's arguments.

The C++ structs are generated from it, the binding builds them from dicts by visiting it, the lowerer checks
its dicts against it and the emitter writes initializers in its order. These tests hold the table to the
compiled structs (sizeof / offsetof the binding reports), to the .def source file, and check that a dict that
does not match the table is an error naming the step, the kind and the field.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from harcore import models, quant
from harcore._core import runtime
from harcore.errors import QuantError
from harcore.quant.steps import check_args, struct_of, table

ROOT = Path(__file__).resolve().parents[1]
DEF = ROOT / "src/cpp/runtime/harcore_steps.def"


def _expected_layout(name: str, t) -> tuple[list[tuple[int, int]], int, int]:
    """(offset, size) of each field, sizeof and alignof of struct ``name`` as the C ABI lays out the table's
    declared types (int32 and the activation enum: 4 bytes; pointers: the binary's pointer size)."""
    s = t.structs[name]
    fields, end, align = [], 0, 1
    for f in s["fields"]:
        if f["tag"] == "STRUCT":
            _, esize, ealign = _expected_layout(struct_of(f)["cpp"].split("::")[-1], t)
        elif f["tag"] in ("I32", "ACT"):
            esize = ealign = 4
        else:
            esize = ealign = t.pointer_size
        off = -(-end // ealign) * ealign
        fields.append((off, esize * f["count"]))
        end, align = off + esize * f["count"], max(align, ealign)
    return fields, -(-end // align) * align, align


def test_table_agrees_with_the_compiled_structs():
    t = table()
    assert t.structs, "empty step table"
    for name, s in t.structs.items():
        fields, size, align = _expected_layout(name, t)
        got = [(f["offset"], f["size"]) for f in s["fields"]]
        assert got == fields, f"{name}: compiled field offsets/sizes {got} != the table's {fields}"
        assert (s["size"], s["align"]) == (size, align), name


def test_table_is_the_def_file():
    """The extension describes the .def in the source tree (a stale build or a hand-edited struct fails)."""
    text = re.sub(r"//[^\n]*", "", DEF.read_text())
    rows = re.findall(r"^HARCORE_(?:KERNEL_)?FIELD\((\w+), (\w+), (\w+), ([\w:* ]+?), *(\[\d+\])?\)", text, re.M)
    t = table()
    want: dict[str, list[tuple]] = {}
    for s, name, tag, ctype, extent in rows:
        want.setdefault(s, []).append((name, tag, ctype, int(extent[1:-1]) if extent else 1, bool(extent)))
    got = {s: [(f["name"], f["tag"], f["ctype"], f["count"], f["array"]) for f in d["fields"]]
           for s, d in t.structs.items()}
    assert got == want
    kinds = re.findall(r"^HARCORE_STEP\((\w+), (\w+), (\d+), (\w+)\)", text, re.M)
    assert [(k.name, k.enum, k.value, k.args) for k in t.kinds.values()] == [(a, b, int(c), d) for a, b, c, d in kinds]


def test_kinds_are_unique_and_point_at_generated_structs():
    t = table()
    values = [k.value for k in t.kinds.values()]
    assert len(set(values)) == len(values) and min(values) >= 1
    for k in t.kinds.values():
        assert t.structs[k.args]["generated"], k
    for s in t.structs.values():
        for f in s["fields"]:
            assert f["tag"] in ("I32", "I8P", "I32P", "I8P_OPT", "ACT", "STRUCT"), f
            if f["tag"] == "STRUCT":
                struct_of(f)  # every nested type is described


# ---- dicts that do not match the table ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lstm_program():
    torch.manual_seed(0)
    m = models.create("mubiconvlstm", 9, 128, 6).eval()
    x = np.random.default_rng(0).normal(size=(16, 9, 128)).astype(np.float32)
    return quant.lower(quant.quantize(m, x))


def _edit(program, kind: str, edit) -> tuple[dict, list, int]:
    header, steps = program.step_dicts()
    steps = copy.deepcopy(steps)
    i = next(j for j, s in enumerate(steps) if s["kind"] == kind)
    edit(steps[i]["args"])
    return header, steps, i


def test_the_lowered_program_builds(lstm_program):
    header, steps = lstm_program.step_dicts()
    x = np.zeros((2, header["input_size"]), np.int8)
    y, _ = runtime.Model(header, steps).run(x)
    assert y.shape == (2, header["output_size"])


@pytest.mark.parametrize("edit,msg", [
    (lambda a: a["dir"][0]["input_gate"].pop("input_weights"),
     r"field 'dir\[0\]\.input_gate\.input_weights' is missing"),
    (lambda a: a["dir"][0].update(cell_clipp=0), r"field 'dir\[0\]\.cell_clipp' is not a field"),
    (lambda a: a["dir"][0].update(hidden_size=3.0), r"field 'dir\[0\]\.hidden_size' must be an int, got float"),
    (lambda a: a["dir"][0].update(hidden_size=2**31), r"field 'dir\[0\]\.hidden_size' does not fit in int32"),
    (lambda a: a["dir"][0]["forget_gate"].update(hidden_weights=np.zeros(4, np.int32)),
     r"field 'dir\[0\]\.forget_gate\.hidden_weights' must be a numpy int8 array"),
    (lambda a: a["dir"][0]["cell_gate"].update(activation_type="relu"),
     r"field 'dir\[0\]\.cell_gate\.activation_type' must"),
    (lambda a: a.update(dir=[]), r"field 'dir' must have 1 to 2 entries, got 0"),
    (lambda a: a.pop("num_directions"), r"field 'num_directions' is missing"),
])
def test_binding_and_lowerer_name_step_kind_and_field(lstm_program, edit, msg):
    header, steps, i = _edit(lstm_program, "lstm", edit)
    with pytest.raises(ValueError, match=rf"step {i} \(lstm\): {msg}"):
        runtime.Model(header, steps)
    with pytest.raises(QuantError, match=rf"op 'x' \(rnn\), step lstm: {msg}"):
        check_args("lstm", steps[i]["args"], "op 'x' (rnn), step lstm")


@pytest.mark.parametrize("edit,msg", [
    (lambda a: a.update(extents=[1, 2, 3]), r"field 'extents' must have 4 entries, got 3"),
    (lambda a: a.update(strides=7), r"field 'strides' must be a list of 4, got int"),
    (lambda a: a.update(src_offset=None), r"field 'src_offset' must be an int, got NoneType"),
])
def test_int_arrays_are_checked(lstm_program, edit, msg):
    header, steps, i = _edit(lstm_program, "copy", edit)
    with pytest.raises(ValueError, match=rf"step {i} \(copy\): {msg}"):
        runtime.Model(header, steps)
    with pytest.raises(QuantError, match=msg):
        check_args("copy", steps[i]["args"], "here")


def test_unknown_kind_is_named(lstm_program):
    header, steps = lstm_program.step_dicts()
    steps = [dict(steps[0], kind="conv3d")]
    with pytest.raises(ValueError, match=r"step 0 \(conv3d\): unknown step kind 'conv3d'"):
        runtime.Model(header, steps)
    with pytest.raises(QuantError, match=r"unknown step kind 'conv3d'"):
        check_args("conv3d", {}, "here")


def test_emitted_initializers_follow_the_table(lstm_program):
    """The emitted LstmArgs initializer has the table's nesting: dir[2] (the unused direction zero), then
    num_directions and reversed_input; the gate activation types come from the table's enum names."""
    src = lstm_program.emit_cpp("m")
    lstm = next(line for line in src.splitlines() if line.startswith("const rt::LstmArgs"))
    t = table()
    assert t.enums["sigmoid"][0] in lstm and t.enums["tanh"][0] in lstm
    n_dirs = next(s for s in lstm_program.step_dicts()[1] if s["kind"] == "lstm")["args"]["num_directions"]
    tail = f", {n_dirs}, " if n_dirs == 2 else ", {}}, 1, -1};"
    assert tail in lstm
