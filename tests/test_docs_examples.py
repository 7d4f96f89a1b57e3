"""Every code example of README.md and docs/*.md runs, and every repository path they name exists.

The ```python blocks of one file run in order in one namespace, the ```bash blocks' ``harcore ...`` commands in
the same temporary working folder through the CLI, interleaved as the file has them (an example may use a file an
earlier one wrote). Other fenced blocks (file layouts, usage synopses) are not code. Two kinds of edits are made
before running, each listed in a table below and each checked to still match the docs (a stale entry fails):

* the real dataset archives of ../shared/datasets replace the placeholder paths (skipped only when the archive
  is absent: the skip names it);
* long-running settings shrink (30 epochs -> 1, 100 firmware windows -> 8, four sweep values -> one, a search of
  one epoch with 4 filters). Nothing is skipped for being long.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("HARCORE_SHARED") or REPO.parent / "shared" / "datasets")
DOCS = ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))]

# Placeholder dataset paths of the docs -> the archive in ../shared/datasets.
DATASETS = {
    r"(?:/?path/to/)?hapt_v2\.1_rawdata\.tar\.xz": "hapt_v2.1_rawdata.tar.xz",
    r"path/to/copy\.zip|partial/copy": "daphnet_fog_partial_7of17.tar.xz",
}

# file -> [(text in the docs, what runs instead, why)]. Every entry must match its file.
QUICK = {
    "README.md": [
        ("--backbone tinyhar --sram 96KB --out runs/t",
         "--backbone tinyhar --sram 96KB --out runs/t --epochs 1 --finetune-epochs 1 --filters 4 --int8 ptq",
         "one search and one fine-tuning epoch, 4 filters, PTQ: the job's every stage in seconds"),
        ("--sweep-beta1 0,0.3,1,3 --seeds 0,1 --parallel 2 --out runs/sweep",
         "--sweep-beta1 1 --seeds 0 --parallel 1 --out runs/sweep --epochs 1 --finetune-epochs 1 --filters 4 "
         "--int8 ptq",
         "one quick job through Ray instead of eight full ones"),
        ('ds = harcore.data.load("hapt", "path/to/hapt_v2.1_rawdata.tar.xz", variant="uci9")',
         'ds_hapt = harcore.data.load("hapt", "path/to/hapt_v2.1_rawdata.tar.xz", variant="uci9")\n'
         'assert ds_hapt.train.x.shape[1:] == (9, 128)',
         "the full HAPT pipeline is loaded and checked; training below stays on the built-in windows"),
        ("TrainConfig(epochs=30,", "TrainConfig(epochs=1,", "one epoch"),
        ("harcore.quant.qat(net, ds.train, ds.val)", "harcore.quant.qat(net, ds.train, ds.val, epochs=1)",
         "one QAT epoch"),
        ("harcore validate model.hq8 --windows 100", "harcore validate model.hq8 --windows 8",
         "8 windows under QEMU"),
    ],
    "docs/nas.md": [
        ("harcore search   ", "harcore search --epochs 1 --finetune-epochs 1 --filters 4 --int8 ptq   ",
         "the quickest job"),
        ("--macs 0.77M --out runs/t", "--macs 0.77M --out runs/t --epochs 1 --finetune-epochs 1 --filters 4 "
         "--int8 ptq", "the quickest job"),
        ("--candidates 24 --top-k 2 --macs 1M --out runs/z", "--candidates 4 --top-k 1 --macs 1M --out runs/z "
         "--epochs 1 --finetune-epochs 1 --filters 4 --int8 ptq", "four candidates, one trained for one epoch"),
        ("--sweep-beta1 0,0.3,1,3 --seeds 0,1 --backbones tinyhar,deepconvlstm --parallel 2 --out runs/sweep",
         "--sweep-beta1 1 --seeds 0 --backbones tinyhar,deepconvlstm --parallel 2 --out runs/sweep --epochs 1 "
         "--finetune-epochs 1 --filters 4 --int8 ptq",
         "one quick job per backbone instead of sixteen full ones"),
        ("--method pas --macs 2M --out runs/pas", "--method pas --macs 2M --out runs/pas --epochs 1 "
         "--finetune-epochs 1 --filters 4 --tail filter_num=4 --int8 ptq", "one PaS and one fine-tuning epoch"),
        ("--filters 64 --tail filter_num=64 --params 40K --macs 6.21M --sram none --out runs/autoslim",
         "--filters 8 --tail filter_num=8 --params 40K --macs 6.21M --sram none --out runs/autoslim --epochs 1 "
         "--finetune-epochs 1 --int8 ptq", "AutoSlim on HAPT for one epoch at 8 filters instead of the paper's 64"),
        ("--method fixed --filters 64 --tail filter_num=64 --out runs/original",
         "--method fixed --filters 4 --tail filter_num=4 --out runs/original --finetune-epochs 1 --int8 ptq",
         "one training epoch of a 4-filter original stage"),
        ("--params 14K --sram 32KB --searches 3 --out runs/s3", "--params 20K --sram 32KB --searches 2 --select-epochs 1 "
         "--out runs/s3 --epochs 1 --finetune-epochs 1 --filters 4 --int8 ptq",
         "two searches of one epoch, each network scored after one epoch (one epoch prunes too little for 14K)"),
        ("--method fixed --arch runs/t/arch.json --out runs/retrain",
         "--method fixed --arch runs/t/arch.json --out runs/retrain --finetune-epochs 1 --int8 ptq",
         "one training epoch"),
    ],
    "docs/firmware.md": [("windows=100", "windows=8", "8 windows under QEMU")],
    "docs/int8.md": [("epochs=3", "epochs=1", "one QAT epoch")],
}

# Commands that must fail (a full match of the prepared command), with the exit status the docs promise.
EXIT_STATUS = {r"harcore data verify daphnet \S+": 1}  # without --partial the partial copy misses files: exit 1

# Commands that need the network; tests never use it. The dataset's name is checked instead.
NETWORK = {"harcore data download uci-har"}

# Files the docs describe and expect the reader to have (a folder of their own recordings): built here exactly
# as the docs lay them out.
SETUP = {
    "docs/data.md": """
import json, os
import numpy as np
os.makedirs("my_data/recordings")
json.dump({"sample_rate": 50, "classes": ["rest", "walk"], "window": 128, "step": 64, "test_subjects": [2],
           "channels": ["ax", "ay", "az"], "name": "my_data"}, open("my_data/dataset.json", "w"))
open("my_data/labels.csv", "w").write(
    "recording,subject,start,end,label\\nalice_1,1,0,300,rest\\nalice_1,1,300,900,walk\\nbob_1,2,0,600,rest\\n")
rng = np.random.default_rng(0)
for name, n in (("alice_1", 900), ("bob_1", 600)):
    np.savetxt(f"my_data/recordings/{name}.csv", rng.normal(size=(n, 3)), delimiter=",", header="ax,ay,az",
               comments="", fmt="%.4f")
""",
}

FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```", re.S | re.M)


def blocks(text: str) -> list[tuple[str, str]]:
    """The fenced blocks of a markdown text: (language, code), in order."""
    return [(m.group(1), m.group(2)) for m in FENCE.finditer(text)]


def commands(bash: str) -> list[str]:
    """The ``harcore`` commands of a bash block: continuation lines joined, comments dropped."""
    out = []
    for line in bash.replace("\\\n", " ").splitlines():
        line = line.split(" #", 1)[0].strip()
        if line.startswith("harcore"):
            out.append(line)
    return out


def prepared(rel: str) -> str:
    """The file's text with the dataset and QUICK substitutions; raises if an entry no longer matches."""
    text = (REPO / rel).read_text()
    for old, new, why in QUICK.get(rel, []):
        assert old in text, f"{rel}: the QUICK entry ({why}) no longer matches: {old!r}"
        text = text.replace(old, new)
    for pattern, archive in DATASETS.items():
        if re.search(pattern, text):
            path = SHARED / archive
            if not path.exists():
                pytest.skip(f"{rel} needs {archive}, not found in {SHARED} (set HARCORE_SHARED)")
            text = re.sub(pattern, str(path), text)
    return text


def run_cli(cmd: str) -> None:
    from typer.testing import CliRunner

    from harcore.cli import app

    result = CliRunner().invoke(app, shlex.split(cmd)[1:])
    want = next((rc for pattern, rc in EXIT_STATUS.items() if re.fullmatch(pattern, cmd)), 0)
    assert result.exit_code == want, (f"`{cmd}` exited {result.exit_code}, expected {want}\n{result.output}"
                                      + (f"\n{result.exception!r}" if result.exception else ""))


def example_files() -> list:
    """The files with python or bash examples. README.md and docs/nas.md run whole (quick) search jobs, their
    resume and a Ray sweep — 1 to 3 minutes each on 2 busy cores — so they are marked slow (CI runs them too)."""
    slow = {"README.md", "docs/nas.md"}
    have = [rel for rel in DOCS if any(lang in ("python", "bash") for lang, _ in blocks((REPO / rel).read_text()))]
    return [pytest.param(rel, marks=pytest.mark.slow) if rel in slow else rel for rel in have]


def test_the_tables_name_existing_files():
    assert set(QUICK) <= set(DOCS) and set(SETUP) <= set(DOCS)


@pytest.mark.parametrize("rel", example_files())
def test_examples_run(rel, tmp_path, monkeypatch):
    import torch

    torch.manual_seed(0)
    runnable = [(lang, code) for lang, code in blocks(prepared(rel)) if lang in ("python", "bash")]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__docs__"}
    if rel in SETUP:
        exec(compile(SETUP[rel], f"<setup of {rel}>", "exec"), {})
    for i, (lang, code) in enumerate(runnable):
        if lang == "python":
            exec(compile(code, f"{rel}, python example {i + 1}", "exec"), namespace)
            continue
        for cmd in commands(code):
            if cmd in NETWORK:
                from harcore.data import DATASETS as known

                assert cmd.split()[-1] in known, f"`{cmd}` names an unknown dataset"
                continue
            run_cli(cmd)


# ---- every path the docs name exists ------------------------------------------------------------------------

LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
TICKED = re.compile(r"`([^`\s]+)`")
#: A backticked name is a repository path when it starts with one of the repository's top-level entries
#: (``src/...``, ``docs/...``, ``tests/...``) or is a markdown page; paths inside datasets, run folders and the
#: reference repositories are not.
TOP = {p.name for p in REPO.iterdir() if not p.name.startswith(".")} - {"build", "runs"}


#: Files harcore (or a benchmark script) writes into its output folder (named bare in the docs), not repository files.
OUTPUTS = {"report.md", "sweep.md", "table2.md"}


def repo_paths(rel: str) -> list[tuple[str, Path | None]]:
    """(path, folder of its section) for every relative link and backticked repository path of ``rel``; a
    section whose heading names a folder (``## `firmware/` layout``) lists paths relative to that folder."""
    found = []
    text = FENCE.sub("", (REPO / rel).read_text())
    for section in re.split(r"^(?=#)", text, flags=re.M):
        heading = section.split("\n", 1)[0]
        folder = next((REPO / m for m in re.findall(r"`([\w./-]+/)`", heading) if (REPO / m).is_dir()), None)
        found += [(m.group(1), None) for m in LINK.finditer(section)
                  if "://" not in m.group(1) and not m.group(1).startswith("mailto:")]
        for m in TICKED.finditer(section):
            p = m.group(1).rstrip(".,:;")
            if ("/" in p and p.split("/", 1)[0] in TOP) or (re.fullmatch(r"[\w.-]+\.md", p) and p not in OUTPUTS):
                found.append((p, folder))
    return found


def test_the_path_check_sees_paths():
    paths = [p for p, _ in repo_paths("README.md")]
    assert "docs/cost-model.md" in paths and "src/cpp/cost/" in paths and "benchmarks/RESULTS.md" in paths


@pytest.mark.parametrize("rel", DOCS)
def test_links_and_paths_exist(rel):
    base = (REPO / rel).parent
    missing = [p for p, folder in repo_paths(rel)
               if not any((d / p).exists() for d in (base, REPO, REPO / "docs", folder) if d is not None)]
    assert not missing, f"{rel} names paths that are not in the repository: {missing}"
