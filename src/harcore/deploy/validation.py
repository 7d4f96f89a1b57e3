"""``harcore validate``: the deployed image under QEMU against the host's int8 simulation, window by window.

The report follows X-CUBE-AI's validate: outputs compared value by value (exact-match windows, differing
values, max abs difference), accuracy and macro-F1 of the target, the host int8 simulation and — when the
float model is passed — the float model, the image's flash/RAM from ``arm-none-eabi-size`` next to the cost
model's estimates, and instructions per inference (QEMU TCG plugin; a proxy for cycles), per step too. RAM is also
measured on the target: the firmware's stack high-water mark over every inference (firmware/common/stack.hpp)
plus the linked static data and arena, against the board's SRAM.
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import toolchain
from .writer import Deployment, _lower, deploy, load_graph

__all__ = ["ValidationReport", "StepProfile", "validate", "parse_infer_output", "parse_backends",
           "check_cmsis_nn_tree", "parse_infer_stack", "WEIGHTS_FLASH_TOLERANCE"]

#: The cost model's weights flash estimate vs the model's linked read-only data (relative): the cost model
#: counts weights, biases and requantization tables; the emitted source adds the step program and kernel
#: argument structs.
WEIGHTS_FLASH_TOLERANCE = 0.10

_OUT = re.compile(r"^out (\d+) status=(-?\d+) cycles=(\d+) y=([0-9a-f]*)$")
_STEP = re.compile(r"^step (\d+) kind=(-?\d+) cycles=(\d+)$")
_BACKEND = re.compile(r"^backend (\d+) kind=(-?\d+) (harcore|cmsis-nn (\w+) scratch=(-?\d+) in=(arena|pool|none))$")
_STACK = re.compile(r"^stack infer used=(\d+) reserved=(\d+)$")



@dataclass
class StepProfile:
    index: int
    kind: str
    insns: int
    layer: str = ""
    macs: int = 0
    #: with ``cmsis_nn=``: the step's instructions in the CMSIS-NN build, and which library ran it there
    #: ("cmsis-nn:<function>" or "harcore" where CMSIS-NN has no function for the step)
    cmsis_nn_insns: int | None = None
    cmsis_nn_backend: str = ""

    @property
    def ratio_to_cmsis_nn(self) -> float | None:
        return self.insns / self.cmsis_nn_insns if self.cmsis_nn_insns else None

    @property
    def insns_per_mac(self) -> float | None:
        return self.insns / self.macs if self.macs else None


@dataclass
class ValidationReport:
    """Target (QEMU) vs host int8 vs float; see the module docstring."""
    graph: str
    board: str
    windows: int
    exact_windows: int
    differing_values: int
    total_values: int
    max_abs_diff: int
    statuses_nonzero: int
    accuracy: dict[str, float | None]
    macro_f1: dict[str, float | None]
    image: dict[str, int]
    estimates: dict[str, Any]
    insns_per_inference: dict[str, float]
    steps: list[StepProfile] = field(default_factory=list)
    #: with ``cmsis_nn=``: the same deployment built against the real CMSIS-NN (see ``validate``): its tree and
    #: commit, exact-match windows against the host, differing values, statuses, instructions per inference
    cmsis_nn: dict[str, Any] | None = None
    #: deepest stack use over every window's invoke, measured by the firmware (stack painting), and the
    #: stack reserve of the linked image (``__stack_top - __stack_limit``)
    stack_high_water_bytes: int = 0
    stack_reserved_bytes: int = 0
    #: RAM measured on the target: ``static`` (.data + .bss without the arena, + the heap reserve only when
    #: the image links an allocator), ``arena``, ``stack_high_water``, their ``total``, the board's ``sram``
    ram_measured: dict[str, int] = field(default_factory=dict)
    target_outputs: np.ndarray | None = None
    host_outputs: np.ndarray | None = None
    cmsis_nn_outputs: np.ndarray | None = None

    @property
    def bit_exact(self) -> bool:
        ok = self.exact_windows == self.windows and self.statuses_nonzero == 0
        if self.cmsis_nn is not None:
            ok = ok and self.cmsis_nn["exact_windows"] == self.windows and self.cmsis_nn["statuses_nonzero"] == 0
        return ok

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items()
             if k not in ("target_outputs", "host_outputs", "cmsis_nn_outputs", "steps")}
        d["bit_exact"] = self.bit_exact
        d["steps"] = [dict(asdict(s), insns_per_mac=s.insns_per_mac, ratio_to_cmsis_nn=s.ratio_to_cmsis_nn)
                      for s in self.steps]
        return d

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_dict(), **kw)

    def render(self, width: int = 120) -> str:
        """Rich tables (summary, metrics, memory, per-step instructions) as text."""
        import io

        from rich.console import Console
        from rich.table import Table

        buf = io.StringIO()
        con = Console(file=buf, width=width, color_system=None, force_terminal=False)
        t = Table(title=f"harcore validate — {self.graph} on {self.board} (QEMU mps2-an505)", show_header=False)
        t.add_column("", no_wrap=True)
        t.add_column("", justify="right", no_wrap=True)
        t.add_row("windows", str(self.windows))
        t.add_row("exact-match windows (target == host int8)", f"{self.exact_windows}/{self.windows}")
        t.add_row("differing values", f"{self.differing_values}/{self.total_values}")
        t.add_row("max abs difference (int8 LSB)", str(self.max_abs_diff))
        t.add_row("non-zero invoke statuses", str(self.statuses_nonzero))
        ipi = self.insns_per_inference
        if ipi:
            t.add_row("instructions / inference (mean, QEMU)", f"{ipi['mean']:,.0f}")
        c = self.cmsis_nn
        if c is not None:
            t.add_row("CMSIS-NN build: exact-match windows (== host int8)", f"{c['exact_windows']}/{self.windows}")
            t.add_row("CMSIS-NN build: differing values / non-zero statuses",
                      f"{c['differing_values']} / {c['statuses_nonzero']}")
            if c["insns_per_inference"]:
                t.add_row("CMSIS-NN build: instructions / inference (mean)",
                          f"{c['insns_per_inference']['mean']:,.0f}")
            t.add_row("CMSIS-NN tree", f"{c['dir']} ({c['commit'] or 'commit unknown'})")
        con.print(t)
        m = Table(title="classification")
        for col in ("", "target (int8, QEMU)", "host int8", "float"):
            m.add_column(col, justify="right" if col else "left")
        fmt = (lambda v: "—" if v is None else f"{v:.4f}")
        m.add_row("accuracy", *(fmt(self.accuracy.get(k)) for k in ("target", "host_int8", "float")))
        m.add_row("macro-F1", *(fmt(self.macro_f1.get(k)) for k in ("target", "host_int8", "float")))
        con.print(m)
        s = Table(title="memory (bytes)")
        for col in ("", "image (arm-none-eabi-size)", "cost model / plan", "measured on target"):
            s.add_column(col, justify="right" if col else "left")
        e, rm = self.estimates, self.ram_measured
        s.add_row("flash (text + data)", f"{self.image['flash']:,}", f"{e['budget_flash']:,} (budget estimate)", "")
        s.add_row("RAM (data + bss, incl. stack/heap)", f"{self.image['ram']:,}", f"{e['budget_ram']:,} (budget estimate)",
                  f"{rm['total']:,} of {rm['sram']:,}" if rm else "")
        s.add_row("  static data (data + bss − arena)", "", "", f"{rm['static']:,}" if rm else "")
        s.add_row("  arena (linked symbol)", f"{e['arena_linked']:,}", f"{e['peak_sram']:,} (peak SRAM)",
                  f"{rm['arena']:,}" if rm else "")
        s.add_row("  stack (reserve / high-water mark)", f"{self.stack_reserved_bytes:,}", "",
                  f"{self.stack_high_water_bytes:,}" if rm else "")
        s.add_row("model read-only data (linked)", f"{e['weights_linked']:,}", f"{e['weights_flash']:,} (flash)", "")
        con.print(s)
        if self.steps:
            cm = self.cmsis_nn is not None
            p = Table(title="instructions per step (window 0)" + (": harcore's kernels vs the CMSIS-NN build"
                                                                     if cm else ""))
            cols = [("#", "right"), ("kind", "left"), ("layer", "left"), ("insns", "right"), ("MACs", "right"),
                    ("insns/MAC", "right")]
            if cm:
                cols += [("CMSIS-NN", "right"), ("ratio", "right"), ("ran on", "left")]
            for col, j in cols:
                # the layer name gives way first when the table is wide (the figures never do)
                p.add_column(col, justify=j, no_wrap=True,
                             **({"max_width": 22, "overflow": "ellipsis"} if cm and col == "layer" else {}))
            functions: dict[str, str] = {}
            for st in self.steps:
                ipm = st.insns_per_mac
                row = [str(st.index), st.kind, st.layer, f"{st.insns:,}", f"{st.macs:,}" if st.macs else "",
                       f"{ipm:.2f}" if ipm else ""]
                if cm:
                    r = st.ratio_to_cmsis_nn
                    lib, _, fn = st.cmsis_nn_backend.partition(":")
                    if fn:
                        functions.setdefault(st.kind, fn)
                    row += [f"{st.cmsis_nn_insns:,}" if st.cmsis_nn_insns is not None else "",
                            f"{r:.2f}" if r else "", {"cmsis-nn": "CMSIS-NN"}.get(lib, lib)]
                p.add_row(*row)
            con.print(p)
            if cm:
                con.print("insns: harcore's kernels; CMSIS-NN: the -DHARCORE_KERNELS=cmsis-nn build, whose steps "
                          "ran on " + (", ".join(f"{k}: {f}" for k, f in functions.items()) or "no CMSIS-NN function")
                          + "; the others on harcore's kernels (no CMSIS-NN function)")
        return buf.getvalue()


def parse_infer_output(text: str, windows: int, output_size: int) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """(outputs (N, output_size) int8, statuses (N,), [(step, kind)]) from the harness console."""
    outs = np.zeros((windows, output_size), np.int8)
    status = np.full(windows, -9999, np.int64)
    seen = np.zeros(windows, bool)
    steps: list[tuple[int, int]] = []
    for line in text.splitlines():
        m = _OUT.match(line.strip())
        if m:
            w = int(m.group(1))
            y = np.frombuffer(bytes.fromhex(m.group(4)), np.int8)
            if w >= windows or y.size != output_size:
                raise toolchain.FirmwareError(f"harness output line for window {w} has {y.size} values, "
                                              f"expected {output_size}")
            outs[w], status[w], seen[w] = y, int(m.group(2)), True
            continue
        m = _STEP.match(line.strip())
        if m:
            steps.append((int(m.group(1)), int(m.group(2))))
    if not seen.all():
        missing = np.flatnonzero(~seen)
        raise toolchain.FirmwareError(f"the harness printed no output for {missing.size} window(s) "
                                      f"(first: {missing[:5].tolist()}); console tail:\n{text[-2000:]}")
    return outs, status, steps


def parse_backends(text: str) -> dict[int, str]:
    """Step index -> "cmsis-nn:<function>" or "harcore", from the "backend" lines a -DHARCORE_KERNELS=cmsis-nn
    image prints before its runs."""
    out: dict[int, str] = {}
    for line in text.splitlines():
        m = _BACKEND.match(line.strip())
        if m:
            out[int(m.group(1))] = "harcore" if m.group(3) == "harcore" else f"cmsis-nn:{m.group(4)}"
    return out


def check_cmsis_nn_tree(path: str | Path) -> Path:
    """``path`` resolved if it is an ARM-software/CMSIS-NN source tree (its CMakeLists.txt and
    Include/arm_nnfunctions.h), else a ToolchainError naming it."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise toolchain.ToolchainError(f"CMSIS-NN tree {p}: no such folder (pass the root of an "
                                       "ARM-software/CMSIS-NN checkout)")
    missing = [f for f in ("CMakeLists.txt", "Include/arm_nnfunctions.h") if not (p / f).is_file()]
    if missing:
        raise toolchain.ToolchainError(f"CMSIS-NN tree {p} is not a CMSIS-NN source tree: it lacks "
                                       f"{' and '.join(missing)} (pass the root of an ARM-software/CMSIS-NN checkout)")
    return p.resolve()


def _git_commit(tree: Path) -> str | None:
    import subprocess

    try:
        r = subprocess.run(["git", "-C", str(tree), "rev-parse", "HEAD"], capture_output=True, text=True,
                           timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() or None if r.returncode == 0 else None


def parse_infer_stack(text: str) -> tuple[int, int]:
    """(stack high-water bytes over every invoke, stack reserve bytes) from the harness console."""
    for line in text.splitlines():
        m = _STACK.match(line.strip())
        if m:
            return int(m.group(1)), int(m.group(2))
    raise toolchain.FirmwareError(f"the harness printed no stack line ('stack infer used=...'); console tail:\n"
                                  f"{text[-2000:]}")


def _ram_measured(size, syms: dict[str, int], arena: int, stack_hwm: int, sram: int) -> dict[str, int]:
    """Static data + arena + stack high-water mark: the RAM the image really uses on the target."""
    sec = size.sections
    # The heap reserve counts only when something can allocate: no allocator linked, no heap use.
    heap = sec.get(".heap", 0) if any(k in syms for k in ("malloc", "_malloc_r", "_sbrk", "_sbrk_r")) else 0
    static = sec.get(".data", 0) + sec.get(".bss", 0) + heap - arena
    return {"static": static, "arena": arena, "stack_high_water": stack_hwm,
            "total": static + arena + stack_hwm, "sram": sram}


def _metrics(pred: np.ndarray, labels: np.ndarray) -> tuple[float | None, float | None]:
    from sklearn.metrics import f1_score

    if labels.size == 0 or (labels < 0).any():
        return None, None
    return float(np.mean(pred == labels)), float(f1_score(labels, pred, average="macro", zero_division=0))


def _host_int8(qg, dep: Deployment) -> np.ndarray:
    """The host simulation's int8 outputs for exactly the bytes the firmware got."""
    from harcore.quant.simulate import simulate

    y = simulate(qg, dep.int8_inputs)
    return np.asarray(y).reshape(dep.windows, -1).astype(np.int8)


def _step_layers(program, n_steps: int) -> list[tuple[str, int]]:
    """(layer name, MACs) per runtime step where the Program says which graph op a step runs."""
    names = getattr(program, "step_ops", None) or [getattr(s, "op", "") for s in getattr(program, "steps", [])]
    names = list(names) + [""] * (n_steps - len(names))
    return [(str(n or ""), 0) for n in names[:n_steps]]


def validate(graph: Any, deployment: Deployment | None = None, x: np.ndarray | None = None, *, windows: int = 100,
             y: np.ndarray | None = None, dataset: Any = None, float_model: Any = None, timeout: float = 300.0,
             work_dir: str | Path | None = None, cmsis_nn: str | Path | None = None) -> ValidationReport:
    """Build ``graph`` for qemu-m33, run it under QEMU with a time limit, compare every window's int8 outputs
    with ``harcore.quant.simulate`` and report (see ValidationReport).

    The windows: those of ``deployment`` (a qemu-m33 ``deploy`` result, built as it is), else ``x``/``y``
    (float (N, C, T) windows and labels; all of them), else ``windows`` test windows of ``dataset`` or of
    ``harcore.data.load("default")``. Everything is built in a temporary folder.

    ``cmsis_nn``: an ARM-software/CMSIS-NN source tree. The same deployed folder is built a second time with
    ``-DHARCORE_KERNELS=cmsis-nn`` (every step CMSIS-NN has a function for runs on that library, the others on
    harcore's kernels; docs/firmware.md) and run on the same windows: its outputs must equal the host's too
    (``bit_exact`` requires both), and every step gets its instruction count in that build and the library that
    ran it. A folder that is not such a tree is a ToolchainError naming it.
    """
    from harcore import cost

    cmsis_tree = check_cmsis_nn_tree(cmsis_nn) if cmsis_nn is not None else None
    toolchain.require_tools(qemu=True, host_cc=True)
    graph_name = str(graph) if not hasattr(graph, "graph") else "QGraph"
    qg = load_graph(graph)
    with tempfile.TemporaryDirectory(prefix="harcore-validate-", dir=work_dir) as tmp:
        if deployment is not None and deployment.board == "qemu-m33" and x is None:
            dep = deployment
        else:
            if deployment is not None and x is None:
                x, y = deployment.float_inputs, deployment.labels
            n = len(x) if x is not None else windows
            dep = deploy(qg, Path(tmp) / "deploy", board="qemu-m33", windows=n, dataset=dataset, x=x, y=y)
        program = _lower(qg)
        elf = toolchain.build_image(None, Path(tmp) / "build", board="qemu-m33", app="infer", source_dir=dep.out)
        run = toolchain.run_qemu(elf, timeout=timeout, count_insns=True)
        outs, status, step_kinds = parse_infer_output(run.stdout, dep.windows, program.output_size)
        stack_hwm, stack_fw_reserved = parse_infer_stack(run.stdout)
        if run.returncode not in (0, 1):
            raise toolchain.FirmwareError(f"the harness exited with status {run.returncode}:\n{run.stdout[-2000:]}")
        size = toolchain.image_size(elf)
        syms = toolchain.symbol_sizes(elf)
        stack_reserved = toolchain.symbol_address(elf, "__stack_top") - toolchain.symbol_address(elf, "__stack_limit")
        if stack_reserved != stack_fw_reserved:
            raise toolchain.FirmwareError(f"the firmware's stack reserve ({stack_fw_reserved} B) is not the linked "
                                          f"one ({stack_reserved} B)")
        weights_linked = toolchain.linked_bytes(elf.with_suffix(".map"), "model.cpp.obj")
        cm_run = None
        if cmsis_tree is not None:
            cm_elf = toolchain.build_image(None, Path(tmp) / "build-cmsis-nn", board="qemu-m33", app="infer",
                                           source_dir=dep.out,
                                           cmake_args=("-DHARCORE_KERNELS=cmsis-nn",
                                                       f"-DHARCORE_CMSIS_NN_DIR={cmsis_tree}"))
            cm_run = toolchain.run_qemu(cm_elf, timeout=timeout, count_insns=True)
            if cm_run.returncode not in (0, 1):
                raise toolchain.FirmwareError(f"the CMSIS-NN build's harness exited with status "
                                              f"{cm_run.returncode}:\n{cm_run.stdout[-2000:]}")
            cm_outs, cm_status, _ = parse_infer_output(cm_run.stdout, dep.windows, program.output_size)
    host = _host_int8(qg, dep)
    diff = np.abs(outs.astype(np.int32) - host.astype(np.int32))
    prof = cost.profile_graph(qg.graph)

    labels = np.asarray(dep.labels)
    acc, f1 = {}, {}
    acc["target"], f1["target"] = _metrics(outs.argmax(axis=1), labels)
    acc["host_int8"], f1["host_int8"] = _metrics(host.argmax(axis=1), labels)
    acc["float"], f1["float"] = None, None
    if float_model is not None:
        import torch

        with torch.no_grad():
            was = float_model.training
            float_model.eval()
            pf = float_model(torch.as_tensor(dep.float_inputs)).argmax(dim=1).numpy()
            float_model.train(was)
        acc["float"], f1["float"] = _metrics(pf, labels)

    n = dep.windows
    per_window = run.insns[:n]
    steps: list[StepProfile] = []
    prof_records = run.insns[n:]
    cm_records = cm_run.insns[n:] if cm_run is not None else []
    backends = parse_backends(cm_run.stdout) if cm_run is not None else {}
    if step_kinds and len(prof_records) == len(step_kinds) + 1:
        layers = _step_layers(program, len(step_kinds))
        macs_by_layer = {layer.name: layer.macs for layer in prof.layers}
        for (i, kind), count, (layer, _) in zip(step_kinds, prof_records, layers):
            name = program.steps[i].kind if i < len(program.steps) else str(kind)  # the lowering's own name
            st = StepProfile(i, name, int(count), layer, int(macs_by_layer.get(layer, 0)))
            if cm_run is not None:
                # the CMSIS-NN image profiles the same steps in the same order (same model, same harness)
                st.cmsis_nn_insns = int(cm_records[i]) if len(cm_records) == len(prof_records) else None
                st.cmsis_nn_backend = backends.get(i, "")
            steps.append(st)
    cm_info = None
    if cm_run is not None:
        cm_diff = np.abs(cm_outs.astype(np.int32) - host.astype(np.int32))
        cm_ipi = cm_run.insns[:n]
        cm_info = {
            "dir": str(cmsis_tree), "commit": _git_commit(cmsis_tree),
            "exact_windows": int(np.sum((cm_diff == 0).all(axis=1) & (cm_status == 0))),
            "differing_values": int(np.count_nonzero(cm_diff)),
            "max_abs_diff": int(cm_diff.max()) if cm_diff.size else 0,
            "statuses_nonzero": int(np.count_nonzero(cm_status)),
            "insns_per_inference": ({"mean": float(np.mean(cm_ipi)), "min": int(min(cm_ipi)),
                                     "max": int(max(cm_ipi))} if cm_ipi else {}),
            "backends": {str(i): b for i, b in sorted(backends.items())},
            # steps whose CMSIS-NN buffer exceeded their arena scratch and came from the static pool
            "pool_steps": [int(m.group(1)) for m in (_BACKEND.match(ln.strip()) for ln in cm_run.stdout.splitlines())
                           if m and m.group(6) == "pool"],
        }
    return ValidationReport(
        graph=graph_name, board="qemu-m33", windows=n,
        exact_windows=int(np.sum((diff == 0).all(axis=1) & (status == 0))),
        differing_values=int(np.count_nonzero(diff)), total_values=int(diff.size),
        max_abs_diff=int(diff.max()) if diff.size else 0, statuses_nonzero=int(np.count_nonzero(status)),
        accuracy=acc, macro_f1=f1, image={k: v for k, v in size.to_dict().items() if k != "sections"},
        estimates={
            "peak_sram": int(prof.total.peak_sram), "weights_flash": int(prof.total.flash),
            "arena_plan": int(program.arena_size), "arena_linked": int(syms.get("harcore_arena", 0)),
            "weights_linked": int(weights_linked), "weights_tolerance": WEIGHTS_FLASH_TOLERANCE,
            "budget_flash": int(dep.budget.flash), "budget_ram": int(dep.budget.ram),
        },
        insns_per_inference=({"mean": float(np.mean(per_window)), "min": int(min(per_window)),
                              "max": int(max(per_window))} if per_window else {}),
        steps=steps, cmsis_nn=cm_info, stack_high_water_bytes=stack_hwm, stack_reserved_bytes=stack_reserved,
        ram_measured=_ram_measured(size, syms, int(syms.get("harcore_arena", 0)), stack_hwm, dep.budget.ram_capacity),
        target_outputs=outs, host_outputs=host, cmsis_nn_outputs=cm_outs if cm_run is not None else None)
