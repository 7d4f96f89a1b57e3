"""Import layering: no module of harcore imports from a layer above its own (DEVELOPERS.md, "Layout").

Python: every module under src/harcore is parsed with ``ast``; every ``import`` / ``from ... import`` counts,
inside functions too (a lazy import is still a dependency). ``harcore/__init__.py`` is exempt (it lazily exposes
everything), and so is ``harcore._core``, the compiled C++ core, whose sources are layered on their own: under
src/cpp every ``#include "<dir>/..."``, every call of a function that a higher layer's header declares, and every
forward declaration of a function that a higher layer defines (a declaration in place of an include is still a
dependency) must point down. A failure names the file, the line and the offending import.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "harcore"
CPP = ROOT / "src" / "cpp"

# Bottom to top; names on one level may import each other. runstore and zcp may not exist yet.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "_version", "runstore", "boards"),
    ("data",),
    ("models",),
    ("train",),
    ("graph",),
    ("cost",),
    ("nas", "zcp"),
    ("quant",),
    ("deploy",),
    # The job: data -> search -> fine-tune -> int8 -> deploy -> validate -> report. It orchestrates every layer
    # below, so it sits above deploy although it lives in harcore.nas; the harcore.nas namespace re-exports it
    # (run_job, run_sweep), so the package's __init__ is the job too. The search itself (nas/search.py,
    # derive.py, ...) stays on the nas level and may not import the job.
    # hpo is a job too: the study, the final training over seeds, then each final model's int8 figure.
    ("job", "experiments", "hpo"),
    ("cli",),
]
LEVEL = {name: i for i, names in enumerate(LAYERS) for name in names}
JOB_MODULES = {"harcore.nas", "harcore.nas.pipeline", "harcore.nas.sweep", "harcore.nas.zcp_job"}
# harcore/__init__.py lazily exposes everything; harcore._core is the C++ core, layered below by its sources.
EXEMPT = {"harcore", "harcore._core"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str | None:
    """Layer of a harcore module (dotted name); None for the exempt ones. Unknown top-level names raise."""
    if module in EXEMPT or module.startswith("harcore._core."):
        return None
    parts = module.split(".")
    if parts[-1] == "cli":  # harcore/cli.py and every */cli.py, wherever it lives
        return "cli"
    if module in JOB_MODULES:
        return "job"
    top = parts[1]
    if top not in LEVEL:
        raise AssertionError(f"harcore.{top} is in no layer of tests/test_layering.py; give it one")
    return top


def _is_module(dotted: str) -> bool:
    rel = Path(*dotted.split(".")[1:])
    return (PKG / rel).with_suffix(".py").is_file() or (PKG / rel / "__init__.py").is_file()


def imported_modules(path: Path) -> list[tuple[int, str, str]]:
    """(line, imported harcore module, the import as written) for every harcore import in ``path``."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out = []
    for node in ast.walk(tree):
        text = ast.get_source_segment(path.read_text(encoding="utf-8"), node) if isinstance(
            node, (ast.Import, ast.ImportFrom)) else None
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, text) for a in node.names if a.name.split(".")[0] == "harcore"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "harcore":
                continue
            # `from harcore import cost` imports the module harcore.cost, not the package harcore
            subs = [f"{mod}.{a.name}" for a in node.names if _is_module(f"{mod}.{a.name}")]
            out += [(node.lineno, m, text) for m in (subs or [mod])]
    return out


def python_violations() -> list[str]:
    bad = []
    for path in sorted(PKG.rglob("*.py")):
        here = module_name(path)
        own = layer_of(here)
        if own is None:
            continue
        for line, mod, text in imported_modules(path):
            target = layer_of(mod)
            if target is not None and LEVEL[target] > LEVEL[own]:
                bad.append(f"{path.relative_to(ROOT)}:{line}: `{text}` imports {mod} (layer '{target}') into "
                           f"layer '{own}'")
    return bad


# C++: the core's directories, bottom to top (kernels also build for the firmware and import nothing).
CPP_LAYERS = ["kernels", "graph", "cost", "nas", "runtime", "bindings"]
_INCLUDE = re.compile(r'^\s*#\s*include\s+"([A-Za-z_]+)/[^"]+"')
# A function declared or defined at namespace scope (column 0): `type [ns::]name(args) [const] ;|{`.
_FUNCTION = re.compile(r"^(?!return\b|else\b|static_assert\b)[A-Za-z_][\w:<>,\s\*&]*?\b(\w+)\s*\(([^;{]*)\)\s*(?:const\s*)?([;{])")
_CALL = re.compile(r"\b(\w+)\s*\(")


def _strip_comments(src: str) -> str:
    src = re.sub(r"/\*.*?\*/", "", src, flags=re.S)
    return re.sub(r"//[^\n]*", "", src)


def cpp_violations() -> list[str]:
    unknown = sorted(p.name for p in CPP.iterdir() if p.is_dir() and p.name not in CPP_LAYERS)
    assert not unknown, f"src/cpp/{unknown} is in no layer of tests/test_layering.py; give it one"
    files = {d: sorted(p for p in (CPP / d).glob("*") if p.suffix in (".cpp", ".hpp")) for d in CPP_LAYERS}
    code = {p: _strip_comments(p.read_text(encoding="utf-8")).splitlines() for ps in files.values() for p in ps}
    api: dict[str, set[int]] = {}      # name -> layers whose headers declare it (their public functions)
    defined: dict[str, set[int]] = {}  # name -> layers that define it
    for level, d in enumerate(CPP_LAYERS):
        for p in files[d]:
            for line in code[p]:
                m = _FUNCTION.match(line)
                if m and p.suffix == ".hpp":
                    api.setdefault(m.group(1), set()).add(level)
                if m and m.group(3) == "{":
                    defined.setdefault(m.group(1), set()).add(level)
    bad = []
    for level, d in enumerate(CPP_LAYERS):
        for p in files[d]:
            raw = p.read_text(encoding="utf-8").splitlines()
            where = p.relative_to(ROOT)
            for i, line in enumerate(raw, 1):
                m = _INCLUDE.match(line)
                if m and m.group(1) in CPP_LAYERS and CPP_LAYERS.index(m.group(1)) > level:
                    bad.append(f"{where}:{i}: `{line.strip()}` includes layer '{m.group(1)}' into layer '{d}'")
            if d == "bindings":
                continue

            def above(levels: set[int] | None) -> bool:
                return bool(levels) and min(levels) > level

            for i, line in enumerate(code[p], 1):
                m = _FUNCTION.match(line)
                if m and m.group(3) == ";" and above(defined.get(m.group(1))):
                    # a forward declaration standing in for an include of the higher layer
                    bad.append(f"{where}:{i}: `{raw[i - 1].strip()}` declares {m.group(1)}(), defined in layer "
                               f"'{CPP_LAYERS[min(defined[m.group(1)])]}', in layer '{d}'")
                    continue
                for name in _CALL.findall(line):
                    own = {lv for lv in api.get(name, set()) | defined.get(name, set()) if lv <= level}
                    if not own and above(api.get(name)):
                        bad.append(f"{where}:{i}: `{raw[i - 1].strip()}` calls {name}() of layer "
                                   f"'{CPP_LAYERS[min(api[name])]}' from layer '{d}'")
    return bad


def test_python_imports_point_down():
    bad = python_violations()
    assert not bad, "upward imports (layers: " + " -> ".join("/".join(n) for n in LAYERS) + "):\n" + "\n".join(bad)


def test_cpp_dependencies_point_down():
    bad = cpp_violations()
    assert not bad, "upward C++ dependencies (" + " -> ".join(CPP_LAYERS) + "):\n" + "\n".join(bad)


def test_the_check_sees_upward_imports(tmp_path, monkeypatch):
    # The checkers on a miniature tree with one violation of each kind: they must find them (and only them).
    pkg = tmp_path / "src" / "harcore"
    for sub, body in {
        "graph/__init__.py": "",
        "graph/ir.py": "def f():\n    from harcore.cost import profile\n",
        "cost/__init__.py": "from harcore.graph import ir\nfrom . import profile\n",
        "cost/profile.py": "from ..graph.ir import f\n",
        "nas/__init__.py": "from .pipeline import run_job\n",
        "nas/pipeline.py": "from harcore import quant\n",
        "nas/search.py": "from harcore.nas import pipeline\n",
        "nas/cli.py": "from harcore.deploy import cli\n",
        "quant/__init__.py": "",
        "deploy/__init__.py": "",
        "deploy/cli.py": "",
    }.items():
        (pkg / sub).parent.mkdir(parents=True, exist_ok=True)
        (pkg / sub).write_text(body)
    cpp = tmp_path / "src" / "cpp"
    for sub, body in {
        "graph/graph.cpp": '#include "graph/graph.hpp"\nvoid check(const G& g);\nvoid validate(const G& g) {\n'
                           "  check(g);\n}\nvoid shapes(const G& g) {\n  validate(g);\n  cost_of(g);\n}\n",
        "graph/graph.hpp": '#include "cost/cost.hpp"\nvoid validate(const G& g);\n',
        "cost/cost.hpp": "int cost_of(const G& g);\n",
        "cost/cost.cpp": "void check(const G& g) {\n  validate(g);\n}\nint cost_of(const G& g) {\n  return 0;\n}\n",
        "kernels/k.cpp": "",
    }.items():
        (cpp / sub).parent.mkdir(parents=True, exist_ok=True)
        (cpp / sub).write_text(body)
    g = globals()
    monkeypatch.setitem(g, "ROOT", tmp_path)
    monkeypatch.setitem(g, "PKG", pkg)
    monkeypatch.setitem(g, "CPP", cpp)
    py = python_violations()
    assert [b.split(":")[0:2] for b in py] == [["src/harcore/graph/ir.py", "2"], ["src/harcore/nas/search.py", "1"]], py
    assert "`from harcore.cost import profile` imports harcore.cost.profile (layer 'cost') into layer 'graph'" in py[0]
    c = cpp_violations()
    assert [b.split(":")[0:2] for b in c] == [["src/cpp/graph/graph.cpp", "2"], ["src/cpp/graph/graph.cpp", "8"],
                                              ["src/cpp/graph/graph.hpp", "1"]], c
    assert "declares check(), defined in layer 'cost', in layer 'graph'" in c[0]
    assert "calls cost_of() of layer 'cost' from layer 'graph'" in c[1]
    assert "`#include \"cost/cost.hpp\"` includes layer 'cost' into layer 'graph'" in c[2]
