"""The wheel is the product: harcore built as a wheel, installed into a fresh virtual environment, works from
anywhere without the source tree (firmware, kernels and runtime ship inside it) and without HARCORE_FIRMWARE_DIR.

The tests marked ``wheel`` build the wheel (``pip wheel --no-deps --no-build-isolation``), install it into a
new venv that sees the dependencies of this interpreter's site-packages but no harcore other than the wheel's,
and run ``harcore search`` (quick path), ``harcore deploy`` (then the folder is moved and built with plain
CMake) and ``harcore validate`` (QEMU) from a temporary folder. ``make test-wheel`` runs them; the other tests
here check the same properties on the development install, without a wheel.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from test_firmware_common import require_firmware_toolchain, skip_unless_required

REPO = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    return tomllib.loads((REPO / "pyproject.toml").read_text())


def _source_version() -> str:
    m = re.search(r'^__version__ = "([^"]+)"$', (REPO / "src/harcore/_version.py").read_text(), re.M)
    assert m, "src/harcore/_version.py holds no __version__"
    return m.group(1)


def _files(root: Path) -> set[str]:
    """Files under ``root`` that git tracks, or else all but hidden ones and build leftovers."""
    r = subprocess.run(["git", "ls-files", "."], cwd=root, capture_output=True, text=True)
    if r.returncode == 0 and r.stdout.strip():
        return set(r.stdout.split())
    skip = lambda n: n.startswith((".", "build-")) or n in ("build", "CMakeFiles", "__pycache__")  # noqa: E731
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and not any(skip(n) for n in p.relative_to(root).parts)}


def _firmware_sources() -> set[str]:
    """What the firmware compiles, relative to harcore/_firmware: the firmware project plus the kernels and
    the runtime under cpp/ (not graph/, cost/, nas/, bindings/: the firmware never compiles those)."""
    out = _files(REPO / "firmware")
    for part in ("kernels", "runtime"):
        out |= {f"cpp/{part}/{f}" for f in _files(REPO / "src/cpp" / part)}
    return out


def _clean_env(**extra: str) -> dict[str, str]:
    """The user's environment: no firmware override, no source tree on the path, no sanitizer preload."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("HARCORE_FIRMWARE_DIR", "PYTHONPATH", "PYTHONHOME", "LD_PRELOAD")}
    env.update(OMP_NUM_THREADS="2", **extra)
    return env


def _run(cmd, cwd: Path, timeout: float, env=None) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                       env=env or _clean_env())
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} exited {r.returncode}:\n{(r.stdout + r.stderr)[-6000:]}"
    return r


def _require_firmware_tools() -> None:
    """The tools of the firmware stages, looked up without importing harcore in this process (whose harcore
    may be a sanitized build that only loads with the sanitizer runtimes preloaded)."""
    missing = [t for t in ("arm-none-eabi-g++", "arm-none-eabi-gcc", "arm-none-eabi-size", "cmake",
                           "qemu-system-arm", "gcc") if shutil.which(t) is None]
    if missing:
        skip_unless_required(f"the firmware toolchain is missing: {', '.join(missing)}")


def _no_paths_into_the_install(folder: Path, *roots: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            text = p.read_text(errors="replace")
            for root in roots:
                assert str(root) not in text, f"{p} names {root}: the deployed project is not self-contained"
            assert "site-packages" not in text, f"{p} names a site-packages folder"


# ---- without a wheel: the development install -----------------------------------------------------------------

def test_version_is_written_once_in_version_py():
    meta = _pyproject()
    assert "version" not in meta["project"] and "version" in meta["project"]["dynamic"]
    provider = meta["tool"]["scikit-build"]["metadata"]["version"]
    assert provider == {"provider": "scikit_build_core.metadata.regex", "input": "src/harcore/_version.py"}
    from harcore import _version

    assert _version.__version__ == _source_version()


def test_ray_is_an_extra_and_a_sweep_without_it_names_the_extra(monkeypatch, tmp_path):
    meta = _pyproject()
    assert not any(d.startswith("ray") for d in meta["project"]["dependencies"])
    extras = meta["project"]["optional-dependencies"]
    assert any(d.startswith("ray") for d in extras["ray"]) and any(d.startswith("ray") for d in extras["test"])

    from harcore.errors import MissingExtraError
    from harcore.nas.pipeline import JobConfig
    from harcore.nas.sweep import run_sweep

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(MissingExtraError, match=r"pip install 'harcore\[ray\]'"):
        run_sweep(JobConfig(out=str(tmp_path / "sweep")), beta1s=[0.0, 1.0])
    assert not (tmp_path / "sweep").exists()

    from typer.testing import CliRunner

    from harcore.cli import app

    r = CliRunner().invoke(app, ["search", "--sweep-beta1", "0,1", "--out", str(tmp_path / "sweep")])
    assert r.exit_code == 1 and "pip install 'harcore[ray]'" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "sweep").exists()


def test_firmware_is_found_without_the_override(monkeypatch):
    from harcore.deploy import toolchain

    monkeypatch.delenv("HARCORE_FIRMWARE_DIR", raising=False)
    fw = toolchain.firmware_dir()
    cpp = toolchain.cpp_dir(fw)
    assert (fw / "CMakeLists.txt").is_file() and (fw / "tools" / "insn_between.c").is_file()
    assert (cpp / "kernels" / "arm_nnfunctions.hpp").is_file() and (cpp / "runtime" / "harcore_runtime.hpp").is_file()


def test_a_bad_override_is_named(monkeypatch, tmp_path):
    from harcore.deploy import toolchain

    monkeypatch.setenv("HARCORE_FIRMWARE_DIR", str(tmp_path))
    with pytest.raises(toolchain.FirmwareError, match=f"HARCORE_FIRMWARE_DIR={re.escape(str(tmp_path))}"):
        toolchain.firmware_dir()


def test_deployed_folder_is_self_contained_and_configures_after_a_move(monkeypatch, tmp_path):
    """The deployed project carries its own firmware, kernels and runtime and names no path outside itself."""
    import torch

    from harcore import data, models, quant
    from harcore.deploy import deploy, toolchain

    monkeypatch.delenv("HARCORE_FIRMWARE_DIR", raising=False)
    ds = data.load("default")
    torch.manual_seed(0)
    net = models.create("cnn_student", in_channels=9, seq_len=128, num_classes=6).eval()
    dep = deploy(quant.quantize(net, ds.train.x[:32]), tmp_path / "fw", windows=2)
    fw, cpp = toolchain.firmware_dir(), toolchain.cpp_dir()
    copied = {p.relative_to(dep.out / "firmware").as_posix() for p in (dep.out / "firmware").rglob("*") if p.is_file()}
    expected = {f for f in _firmware_sources() if not f.startswith("tools/")}
    assert copied == expected
    for f in expected:
        src = fw / f if not f.startswith("cpp/") else cpp / f[len("cpp/"):]
        assert (dep.out / "firmware" / f).read_bytes() == src.read_bytes(), f
    _no_paths_into_the_install(dep.out, REPO, fw.parent, Path(sys.prefix))

    require_firmware_toolchain(monkeypatch)
    moved = tmp_path / "elsewhere" / "project"
    moved.parent.mkdir()
    shutil.move(dep.out, moved)
    r = _run(["cmake", "-S", moved, "-B", tmp_path / "b", "-DCMAKE_BUILD_TYPE=Release"], tmp_path, 300)
    cache = (tmp_path / "b" / "CMakeCache.txt").read_text()
    assert f"HARCORE_CPP_DIR:PATH={moved}/firmware/cpp" in cache, r.stdout
    assert f"HARCORE_APP_DIR:PATH={moved}/src" in cache


# ---- the wheel ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv python, venv bin, wheel path): the wheel built from this checkout, alone in a new venv."""
    root = tmp_path_factory.mktemp("wheel")
    env = _clean_env(CMAKE_BUILD_PARALLEL_LEVEL=str(os.cpu_count() or 2))
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", root / "dist",
          REPO], root, 1200, env)
    wheels = list((root / "dist").glob("harcore-*.whl"))
    assert len(wheels) == 1, wheels
    vdir = root / "venv"
    venv.EnvBuilder(with_pip=False).create(vdir)
    py = vdir / "bin" / "python"
    site = Path(_run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], root, 60).stdout.strip())
    # This interpreter's site-packages as plain path entries after the venv's own: torch, numpy etc. come from
    # there, but their .pth files are not run, so an editable harcore installed there cannot shadow the wheel
    # (its finder is installed by a .pth file).
    dirs = [p for p in sys.path if p.endswith(("site-packages", "dist-packages")) and Path(p).is_dir()]
    (site / "_outer_site_packages.pth").write_text("\n".join(dirs) + "\n")
    # --no-deps: the dependencies are this interpreter's; the wheel's own requirements are checked below
    _run([sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-index", "--no-deps", wheels[0]],
         root, 600)
    return py, vdir / "bin", wheels[0]


@pytest.mark.slow
@pytest.mark.wheel
def test_wheel_holds_the_firmware_and_exactly_what_it_compiles(installed):
    _, _, whl = installed
    names = zipfile.ZipFile(whl).namelist()
    shipped = {n[len("harcore/_firmware/"):] for n in names if n.startswith("harcore/_firmware/")}
    assert shipped == _firmware_sources()
    host_only = re.compile(r"/(graph|cost|nas|bindings)/.*\.(cpp|hpp|def)$")
    assert not [n for n in names if host_only.search(n)]
    assert f"harcore-{_source_version()}-" in whl.name


@pytest.mark.slow
@pytest.mark.wheel
def test_wheel_imports_from_the_venv_with_the_one_version(installed, tmp_path):
    py, _, _ = installed
    r = _run([py, "-c", "import harcore, harcore._core, importlib.metadata as m; "
              "from harcore.deploy import toolchain; "
              "print(harcore.__file__); print(m.version('harcore')); print(toolchain.firmware_dir())"], tmp_path, 120)
    where, version, fw = r.stdout.split()
    venv_root = py.parent.parent
    assert Path(where).is_relative_to(venv_root), f"harcore imported from {where}, not the wheel in {venv_root}"
    assert Path(fw) == Path(where).parent / "_firmware"
    assert version == _source_version()
    # every requirement of the wheel (extras aside) is met by this environment; Ray is only an extra
    r = _run([py, "-c", "import importlib.metadata as m; from packaging.requirements import Requirement as R\n"
              "for s in m.requires('harcore'):\n"
              "    q = R(s)\n"
              "    if q.marker is None: print(q.name, m.version(q.name) in q.specifier)"], tmp_path, 120)
    met = dict(line.split() for line in r.stdout.splitlines())
    assert "ray" not in met and "matplotlib" in met and "torch" in met
    assert all(v == "True" for v in met.values()), met


@pytest.mark.slow
@pytest.mark.wheel
def test_wheel_search_deploy_and_validate_from_a_temporary_folder(installed, tmp_path):
    _require_firmware_tools()
    py, bindir, _ = installed
    harcore = bindir / "harcore"
    # the quickest main job that still runs every stage: one search epoch and one fine-tuning epoch with
    # 4 filters, PTQ instead of QAT; its deploy and validate stages build and run the firmware under QEMU
    r = subprocess.run([harcore, "search", "--backbone", "deepconvlstm", "--filters", "4", "--epochs", "1",
                        "--finetune-epochs", "1", "--int8", "ptq", "--out", "run"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=900, env=_clean_env())
    job = json.loads((tmp_path / "run" / "job.json").read_text()) if (tmp_path / "run" / "job.json").exists() else {}
    status = {k: (v["status"], v["detail"]) for k, v in job.get("stages", {}).items()}
    assert r.returncode == 0 and all(s == "ok" for s, _ in status.values()), \
        f"harcore search exited {r.returncode}; stages {status}\n{(r.stdout + r.stderr)[-4000:]}"
    assert set(status) >= {"search", "int8", "deploy", "validate", "report"}
    hq8 = tmp_path / "run" / "model.hq8"

    # harcore deploy: a folder that builds with plain CMake wherever it is moved
    _run([harcore, "deploy", hq8, "--out", "fw", "--windows", "4"], tmp_path, 300)
    _no_paths_into_the_install(tmp_path / "fw", REPO, py.parent.parent)
    moved = tmp_path / "moved" / "fw"
    moved.parent.mkdir()
    shutil.move(tmp_path / "fw", moved)
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    _run(["cmake", "-S", moved, "-B", tmp_path / "b", *gen], tmp_path, 300)
    _run(["cmake", "--build", tmp_path / "b", "-j", str(os.cpu_count() or 2)], tmp_path, 600)
    assert (tmp_path / "b" / "firmware" / "harcore-infer-qemu-m33.elf").is_file()

    # harcore validate on the emulated M33: bit-exact with the host
    _run([harcore, "validate", hq8, "--windows", "4", "--json", "rep.json"], tmp_path, 600)
    rep = json.loads((tmp_path / "rep.json").read_text())
    assert rep["windows"] == 4 and rep["bit_exact"] is True, rep

    # the kernel self-test image builds from the installed firmware and passes under QEMU
    r = _run([py, "-c", "from pathlib import Path\n"
              "from harcore.deploy import selftest, toolchain\n"
              "cases = selftest.generate(seed=0)\n"
              "selftest.write_sources(cases, Path('st'))\n"
              "elf = toolchain.build_image(Path('st'), Path('st-build'), board='qemu-m33', app='selftest')\n"
              "run = toolchain.run_qemu(elf, timeout=120)\n"
              "got = selftest.parse_output(run.stdout)\n"
              "bad = [c.name for i, c in enumerate(cases) if got[i][1] != 0 or (got[i][2] != c.expected).any()]\n"
              "print(run.returncode, len(got), len(cases), bad)"], tmp_path, 600)
    code, n_got, n_cases, bad = r.stdout.split(maxsplit=3)
    assert code == "0" and n_got == n_cases and bad.strip() == "[]", r.stdout[-2000:]
