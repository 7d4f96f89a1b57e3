"""harcore's main job: data -> search -> derive -> fine-tune -> int8 -> deploy -> validate -> report.

Every step is a *stage* (:data:`PIPELINE`): a small function over the typed :class:`JobContext` that returns
its one-line detail and its figures. :func:`run_job` runs them in order and records each as a
:class:`StageResult` (``ok`` / ``failed`` / ``skipped`` with the reason, wall time, figures) in
``run_dir/job.json``; a failed stage is reported in the CLI output and in the report (never papered over),
and the stages that need its output (:data:`NEEDS`) are skipped with that reason.

The int8 and firmware stages call the APIs of ``harcore.quant`` and ``harcore.deploy``:
``quant.qat(model, train, val, ...)`` / ``quant.quantize(model, calib_x) -> QGraph``, ``QGraph.save(path)``,
``quant.simulate(g, x)``, ``deploy.deploy(g, out_dir, ...)``, ``deploy.validate(...)``.

The run folder (:class:`harcore.runstore.RunDir`): a new run needs a missing or empty folder
(``overwrite=True`` first deletes harcore's files of an earlier run there). ``resume=True`` continues an
interrupted search from its last epoch checkpoint and an interrupted fine-tuning from its own; it needs a
search checkpoint there, checks every checkpoint (damage, configuration) before anything runs, and writes
nothing into the folder until the search stage has succeeded, so a resume that fails leaves the folder as it
was. Later stages are cheap and run again.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from harcore import runstore
from harcore.cost import profile
from harcore.errors import DataError, HarcoreError, StageError

from .derive import Arch, BudgetError, build, check_budget, smallest_arch
from .search import SearchConfig, search
from .supernet import Supernet

#: Test windows embedded in the firmware harness (they take flash: C x T bytes each).
DEPLOY_WINDOWS = 16

STAGES = ("data", "budget", "search", "derive", "finetune", "evaluate", "fit", "int8", "int8-eval", "deploy",
          "validate", "report")

#: What each stage needs (a failed or skipped dependency skips the stage).
NEEDS = {"budget": ("data",), "search": ("budget",), "derive": ("search",), "finetune": ("derive",),
         "evaluate": ("finetune",), "fit": ("derive",), "int8": ("finetune",), "int8-eval": ("int8",),
         "deploy": ("int8",), "validate": ("deploy",)}


#: SearchConfig fields a job may set through ``JobConfig.prune`` (the pruning options, issue 15).
PRUNE_OPTIONS = frozenset({"resource", "beta_budget", "budget_band", "lr_lambda", "budget_alpha", "prune_warmup",
                           "dcs_shared", "tie_tail", "dcs_init", "lr_v", "lr_sensors"})


@dataclass
class JobConfig:
    """One run of the main job. ``None`` for ``search_epochs`` / ``finetune_epochs`` picks the preset's.

    Presets: ``quick`` (the built-in default dataset: a few minutes on 2 cores; short search and fine-tuning
    with larger learning rates than the paper's) and ``paper`` (the paper's search hyper-parameters, Sec. V-A4).
    ``preset=None`` picks ``quick`` for the built-in dataset and ``paper`` otherwise.

    ``dataset`` / ``data_dir``: which data the job reads, see :meth:`data_source` (a given ``data_dir`` is never
    ignored: alone it is the user's folder or .npz).
    """

    dataset: str | None = None
    data_dir: str | None = None
    backbone: str = "tinyhar"
    sram: int | None = 96_000
    flash: int | None = None
    macs: int | None = None
    search_epochs: int | None = None
    finetune_epochs: int | None = None
    beta1: float = 1.0
    beta2: float = 1.0
    beta_macs: float = 1.0
    filters: int | None = None
    seed: int = 0
    preset: str | None = None
    out: str = "runs/search"
    num_threads: int = 1
    progress: bool = True
    int8: str = "qat"
    qat_epochs: int | None = None
    init: str = "scratch"
    train_on: str = "all"
    tail: dict[str, Any] = field(default_factory=dict)  # options of the backbone's later stages (SearchConfig.tail)
    params: int | None = None                           # parameter target and limit
    board: str | None = None                            # harcore.boards: its SRAM and flash left to the model
    # the pruning options of SearchConfig (harcore.nas.budget); None: SearchConfig's default
    prune: dict[str, Any] = field(default_factory=dict)
    # sftnas (the search) | autoslim | pas (the paper's pruning baselines) | fixed (no search: `arch`, or the
    # backbone's original first stage); harcore.nas.baselines
    method: str = "sftnas"
    arch: dict[str, Any] | None = None                  # method "fixed": the layout to train (an Arch's dict)
    baseline: dict[str, Any] = field(default_factory=dict)  # BaselineConfig fields of autoslim / pas
    # how the architecture is found: "sftnas" (the search above) or "zcp" (proxy-guided, harcore.nas.zcp_job:
    # sample ``space`` ("sftnas": the backbone's derived networks, "table1": the paper's Table I), drop what is
    # over the budget, rank by ``proxy``, train the ``top_k`` best of ``candidates``)
    strategy: str = "sftnas"
    space: str = "sftnas"
    proxy: str = "ensemble"
    top_k: int | None = None
    candidates: int | None = None
    time_budget: float | None = None     # zcp: wall seconds for the search stage (equal-time comparisons)
    # several searches, the one whose network scores best on the validation subjects kept (harcore.nas.selection)
    searches: int = 1
    select_epochs: int | None = None     # their training for that score (None: the fine-tuning's epochs)

    def limits(self) -> dict[str, int | None]:
        """The budget: ``sram``, ``flash``, ``macs``, ``params``; a ``board`` lowers SRAM and flash to what it
        leaves the model (the tighter of the board's and an explicit limit)."""
        sram, flash = self.sram, self.flash
        if self.board is not None:
            from harcore.boards import board

            b = board(self.board)
            sram = b.model_sram if sram is None else min(sram, b.model_sram)
            flash = b.model_flash if flash is None else min(flash, b.model_flash)
        return {"sram": sram, "flash": flash, "macs": self.macs, "params": self.params}

    def resolved_init(self) -> str:
        """How the derived network starts its training: ``scratch`` (fresh weights, as DARTS/GDAS retrain the
        derived cell) or ``supernet`` (the supernet's weights for the kept filters). harcore's default is
        ``scratch``: on HAPT uci9 the same derived TinyHAR reached 94.06 test macro-F1 from scratch and 88.91 from
        the supernet's weights (60 epochs each; benchmarks/RESULTS.md)."""
        if self.init not in ("scratch", "supernet"):
            raise ValueError(f"JobConfig.init: must be 'scratch' or 'supernet', got {self.init!r}")
        return self.init

    def resolved_train_on(self) -> str:
        """What the derived network (and QAT) trains on once the search is over: ``all`` (the search's training
        and validation windows together, every epoch kept to the last, as DARTS/GDAS retrain a derived cell) or
        ``train`` (the search's training split only, the best validation epoch kept). harcore's default is
        ``all``: on HAPT uci9 the 0.532-MMAC TinyHAR architecture reached 95.33 ± 0.98 test macro-F1 over 3 seeds
        this way against 93.69 ± 0.42 with ``train`` (60 epochs; benchmarks/RESULTS.md)."""
        if self.train_on not in ("all", "train"):
            raise ValueError(f"JobConfig.train_on: must be 'all' or 'train', got {self.train_on!r}")
        return self.train_on

    def data_source(self) -> tuple[str, str, str | None]:
        """Where the data comes from: ``(kind, name, path)`` with kind ``builtin`` (the default dataset),
        ``registered`` (``dataset`` is one of ``harcore.data.DATASETS``, read from ``data_dir`` or the cache),
        ``folder`` (``data_dir`` in harcore's folder format, docs/data.md) or ``npz`` (arrays in an .npz file).
        A ``data_dir`` is never ignored: with the default dataset it is an error."""
        from harcore.data import DATASETS

        name = (self.dataset or "").strip().lower() or None
        path = str(self.data_dir) if self.data_dir else None
        if name is None:
            if path is None:
                return "builtin", "default", None
            return ("npz" if path.lower().endswith(".npz") else "folder"), "custom", path
        if name == "custom":
            if path is None:
                raise ValueError("JobConfig.dataset: 'custom' needs data_dir (--data-dir): a folder in harcore's "
                                 "format or an .npz file")
            return ("npz" if path.lower().endswith(".npz") else "folder"), "custom", path
        if name not in DATASETS:
            raise ValueError(f"JobConfig.dataset: unknown dataset {self.dataset!r}; available: "
                             f"{', '.join(DATASETS)}, or custom (your own folder or .npz through --data-dir)")
        if name == "default":
            if path is not None:
                raise ValueError(f"JobConfig.data_dir: the built-in default dataset ships inside harcore and takes "
                                 f"no data_dir (got {path!r}); for your own data leave out --dataset or give "
                                 "--dataset custom")
            return "builtin", "default", None
        return "registered", name, path

    def describe_data(self) -> str:
        kind, name, path = self.data_source()
        return {"builtin": "default (built-in)", "registered": f"{name}" + (f" from {path}" if path else ""),
                "folder": f"custom folder {path}", "npz": f"arrays {path}"}[kind]

    def resolved_preset(self) -> str:
        p = self.preset or ("quick" if self.data_source()[0] == "builtin" else "paper")
        if p not in ("quick", "paper"):
            raise ValueError(f"JobConfig.preset: must be 'quick' or 'paper', got {p!r}")
        return p

    def search_config(self) -> SearchConfig:
        quick = self.resolved_preset() == "quick"
        kw: dict[str, Any] = dict(backbone=self.backbone, filters=self.filters, beta1=self.beta1, beta2=self.beta2,
                                  beta_macs=self.beta_macs, **self.limits(), seed=self.seed,
                                  num_threads=self.num_threads, progress=self.progress, tail=dict(self.tail))
        if quick:
            kw.update(epochs=12, batch_size=64, lr_w=2e-3, lr_v=5e-4, lr_plateau_patience=3)
            if any(v is not None for v in (self.macs, self.params, self.flash)):
                # with a target the gates must be able to close: 12 epochs of the built-in data are ~290 Adam
                # steps, ~0.15 of travel at 5e-4 against the 0.25 from init 0.75 to the threshold (measured: no
                # gate closed; at 5e-3 a 14k-parameter target was met by epoch 7, docs/nas.md)
                kw["lr_v"] = 5e-3
        if self.search_epochs is not None:
            kw["epochs"] = self.search_epochs
        if self.params is not None:
            # parameter targets at the paper's counts (13.96k TinyHAR, 33.74k DCL) lie below every fixed tail's
            # floor (docs/nas.md, "Tails that shrink"): with --params the later stages shrink unless --fixed-tail
            kw["tie_tail"] = True
        bad = sorted(set(self.prune) - PRUNE_OPTIONS)
        if bad:
            raise ValueError(f"JobConfig.prune: unknown option(s) {bad}; options: {', '.join(sorted(PRUNE_OPTIONS))}")
        kw.update(self.prune)
        return SearchConfig(**kw)

    def resolved_method(self) -> str:
        """``method`` checked: ``sftnas``, ``autoslim``, ``pas`` or ``fixed`` (``arch`` only with ``fixed``;
        ``init="supernet"`` only with ``sftnas``, whose supernet has the derived network's candidates)."""
        from .baselines import check_method

        try:
            m = check_method(self.method)
        except ValueError as e:
            raise ValueError(f"JobConfig.method: {e}") from None
        if self.arch is not None and m != "fixed":
            raise ValueError(f"JobConfig.arch: a given layout is trained by method 'fixed', not {m!r}")
        if self.init == "supernet" and m != "sftnas":
            raise ValueError(f"JobConfig.init: 'supernet' weights exist only for method sftnas, not {m!r}")
        if self.baseline and m not in ("autoslim", "pas"):
            raise ValueError(f"JobConfig.baseline: options of autoslim / pas, given for method {m!r}")
        if self.strategy != "sftnas" and m != "sftnas":
            raise ValueError(f"JobConfig.strategy: strategy {self.strategy!r} finds the architecture itself; it does "
                             f"not combine with method {m!r} (use method 'sftnas', the default)")
        return m

    def baseline_config(self):
        """The :class:`~harcore.nas.baselines.BaselineConfig` of method ``autoslim`` / ``pas``: the SFTNAS
        search's training recipe of the same preset (epochs, batch, learning rate, plateau schedule), the same
        budget and tail rule, and the method's own defaults (``baseline`` overrides them)."""
        from .baselines import BaselineConfig

        s = self.search_config()
        kw: dict[str, Any] = dict(method=self.resolved_method(), backbone=s.backbone, filters=s.filters,
                                  epochs=s.epochs, batch_size=s.batch_size, lr_w=s.lr_w,
                                  lr_plateau_factor=s.lr_plateau_factor, lr_plateau_patience=s.lr_plateau_patience,
                                  sram=s.sram, macs=s.macs, flash=s.flash, params=s.params, tie_tail=s.tie_tail,
                                  seed=s.seed, num_threads=s.num_threads, progress=s.progress, tail=dict(s.tail))
        if self.resolved_preset() == "paper":
            kw["lr_v"] = 1e-3  # the gates' Adam rate (PaS gives none); quick: BaselineConfig's 5e-3
        kw.update(self.baseline)
        return BaselineConfig(**kw)

    def fixed_arch(self, in_channels: int, seq_len: int, num_classes: int) -> Arch:
        """Method ``fixed``: ``arch`` (sizes checked), or the backbone's original first stage."""
        from .baselines import original_arch

        if self.arch is None:
            return original_arch(self.backbone, in_channels, seq_len, num_classes, filters=self.filters,
                                 tail=dict(self.tail))
        a = Arch.from_dict(dict(self.arch))
        got = (a.backbone, a.in_channels, a.seq_len, a.num_classes)
        if got != (self.backbone, in_channels, seq_len, num_classes):
            raise ValueError(f"JobConfig.arch: made for (backbone, channels, samples, classes) {got}, the job has "
                             f"{(self.backbone, in_channels, seq_len, num_classes)}")
        return a

    def train_config(self, checkpoint_dir: Path):
        from harcore.train import TrainConfig

        quick = self.resolved_preset() == "quick"
        epochs = self.finetune_epochs if self.finetune_epochs is not None else (30 if quick else 100)
        # harcore's fine-tuning setting (the paper does not give one): Adam, cosine; with a validation split
        # (train_on="train") the paper preset stops early on its macro-F1
        early = None if quick or self.resolved_train_on() == "all" else 20
        return TrainConfig(optimizer="adam", lr=2e-3 if quick else 1e-3, weight_decay=0.0,
                           batch_size=64 if quick else 256, epochs=epochs, schedule="cosine",
                           early_stopping_patience=early, seed=self.seed,
                           num_threads=self.num_threads, checkpoint_dir=str(checkpoint_dir), progress=self.progress)

    def int8_options(self) -> dict[str, Any]:
        """How the int8 stage quantizes: ``method`` "qat" (the paper: quantization-aware fine-tuning of the
        fine-tuned float model, then int8) or "ptq"; for QAT the epochs (quick 3, paper 10) and a learning rate
        a tenth of the fine-tuning one."""
        if self.int8 not in ("qat", "ptq"):
            raise ValueError(f"JobConfig.int8: must be 'qat' or 'ptq', got {self.int8!r}")
        quick = self.resolved_preset() == "quick"
        epochs = self.qat_epochs if self.qat_epochs is not None else (3 if quick else 10)
        if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"JobConfig.qat_epochs: must be an integer >= 1 (got {epochs!r})")
        ft = self.train_config(Path(self.out) / "finetune")
        return {"method": self.int8, "epochs": epochs, "lr": ft.lr / 10, "batch_size": ft.batch_size}

    def selection_options(self) -> dict[str, int] | None:
        """``None`` for one search; else ``searches`` and ``select_epochs`` checked (``ValueError`` naming the
        field): several searches need method and strategy ``sftnas``, whose searches are draws to choose from."""
        for name in ("searches", "select_epochs"):
            v = getattr(self, name)
            if (v is not None or name == "searches") and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                raise ValueError(f"JobConfig.{name}: must be an integer >= 1 (got {v!r})")
        if self.searches == 1:
            if self.select_epochs is not None:
                raise ValueError("JobConfig.select_epochs: trains each of several searches' networks; give it with "
                                 "searches >= 2 (--searches)")
            return None
        if self.resolved_method() != "sftnas" or self.strategy != "sftnas":
            raise ValueError(f"JobConfig.searches: several searches are SFTNAS draws to choose from; method "
                             f"{self.method!r}, strategy {self.strategy!r} have none (use method and strategy sftnas)")
        epochs = self.select_epochs if self.select_epochs is not None else \
            self.train_config(Path(self.out) / FINETUNE_DIR).epochs
        return {"searches": self.searches, "select_epochs": epochs}

    def select_train_config(self):
        """The recipe that scores each search's network: the fine-tuning's, ``select_epochs`` long, on the
        training subjects with the best validation epoch kept, no checkpoints (a score is stored when done)."""
        sel = self.selection_options()
        return dataclasses.replace(self.train_config(Path(self.out) / FINETUNE_DIR), epochs=sel["select_epochs"],
                                   early_stopping_patience=None, checkpoint_dir=None, progress=False)

    def zcp_options(self) -> dict[str, Any]:
        """The proxy-guided strategy's settings (``harcore.nas.zcp_job``); checks them for every strategy."""
        from .zcp_job import zcp_options

        return zcp_options(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class StageResult:
    name: str
    status: str                 # "ok" | "failed" | "skipped"
    detail: str = ""
    seconds: float = 0.0
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class JobResult:
    config: JobConfig
    run_dir: Path
    stages: dict[str, StageResult]
    arch: Arch | None = None
    finished: bool = False   # every stage ran (ok or not): the run is complete, not interrupted

    @property
    def ok(self) -> bool:
        return all(s.status == "ok" for s in self.stages.values())

    def failed(self) -> list[StageResult]:
        return [s for s in self.stages.values() if s.status == "failed"]

    def to_dict(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "run_dir": str(self.run_dir), "ok": self.ok,
                "finished": self.finished,
                "arch": self.arch.to_dict() if self.arch else None,
                "stages": {k: dataclasses.asdict(v) for k, v in self.stages.items()}}


# ---- data --------------------------------------------------------------------------------------

NPZ_KEYS = ("x", "y", "subjects")


def load_npz(path: str | Path, **split_options):
    """A :class:`harcore.data.Dataset` from arrays in an .npz file: ``x`` float (N, channels, time), ``y`` (N,)
    integer labels or class names, ``subjects`` (N,) integer ids or names; optional ``classes``, ``channels``,
    ``sample_rate`` (a scalar, Hz) and ``test_subjects``. Read without pickles."""
    from harcore import data as hd

    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError("no such .npz file", path=str(p))
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise DataError(f"not a readable .npz file ({e})", path=str(p)) from None
    missing = [k for k in NPZ_KEYS if k not in arrays]
    if missing:
        raise DataError(f"missing array(s) {', '.join(missing)} (needs x (N, channels, time), y (N,), subjects (N,); "
                        "optional classes, channels, sample_rate, test_subjects)", path=str(p))
    y = arrays["y"]
    if "classes" in arrays:
        classes = [str(c) for c in arrays["classes"].tolist()]
    elif y.dtype.kind in "US":
        classes = sorted({str(v) for v in y.tolist()})
    else:
        classes = [str(i) for i in range(int(y.max()) + 1 if y.size else 0)]
    rate = arrays.get("sample_rate")
    try:
        return hd.from_arrays(arrays["x"], y, arrays["subjects"], classes,
                              None if rate is None else float(rate),
                              channels=None if "channels" not in arrays else arrays["channels"].tolist(),
                              test_subjects=None if "test_subjects" not in arrays else arrays["test_subjects"].tolist(),
                              name=p.stem, **split_options)
    except DataError as e:
        raise DataError(e.reason, path=str(p)) from None


def load_data(cfg: JobConfig):
    """The dataset with train / val / test splits (a validation split is made by subject if missing)."""
    from harcore import data as hd

    kind, name, path = cfg.data_source()
    opts: dict[str, Any] = {}
    if name == "hapt":
        opts["variant"] = "uci9"

    def load(**split):
        if kind == "npz":
            return load_npz(path, **split)
        if kind == "folder":
            if not Path(path).expanduser().is_dir():
                raise DataError("no such folder (--data-dir takes a folder in harcore's format, docs/data.md, or "
                                "an .npz file)", path=path)
            return hd.from_folder(path, **split)
        return hd.load(name, path, **opts, **split)

    ds = load()
    if ds.val is None:
        ds = load(val_fraction=0.25)
    if ds.val is None:
        raise StageError(f"dataset {ds.name!r}: no validation split could be made (alpha is trained on one)")
    return ds


def deploy_model(model) -> tuple[torch.nn.Module, list[int] | None]:
    """The network the chip runs: with pruned sensors, the variant that takes only the kept ones (the firmware
    never samples the others, and there is no gather to run). Returns it and the kept channel indices (None:
    all)."""
    if getattr(model, "gather", False):
        return model.without_gather(), list(model.arch["channels"])
    return model, None


def final_splits(ds, train_on: str):
    """The (train, val) the derived network trains on: for ``all`` the search's training and validation windows
    as one split and no validation, for ``train`` the search's own two splits."""
    if train_on == "train":
        return ds.train, ds.val
    from harcore.data.dataset import Split

    return Split.concat(ds.train, ds.val), None


def stage_int8(model: torch.nn.Module, calib_x: np.ndarray, out: Path, *, method: str = "ptq",
               train: tuple[np.ndarray, np.ndarray] | None = None, val: tuple[np.ndarray, np.ndarray] | None = None,
               epochs: int = 3, lr: float = 2e-4, batch_size: int = 64, seed: int = 0, num_threads: int = 1,
               progress: bool = False):
    """The int8 graph of :func:`deploy_model` (``model`` itself is left unchanged); writes ``model.hq8``.

    ``method="ptq"``: ``harcore.quant.quantize`` calibrated on ``calib_x``. ``method="qat"``:
    ``harcore.quant.qat`` — ``epochs`` of quantization-aware fine-tuning from ``model`` on ``train`` (x, y) at
    ``lr``, the epoch with the best validation macro-F1 on ``val`` kept (without ``val``: the last), converted
    with ``calib_x``.
    Windows have all sensors; the kept ones are selected here. Returns the QGraph, the kept channels (``None``:
    all) and what was done (a dict for ``job.json``)."""
    try:
        from harcore import quant
    except ImportError as e:
        raise StageError(f"harcore.quant is not importable ({e})") from None
    net, channels = deploy_model(model)
    sel = (lambda x: x) if channels is None else (lambda x: x[:, channels])
    if method == "ptq":
        g = quant.quantize(net, sel(calib_x))
        info: dict[str, Any] = {"method": "ptq", "calibration_windows": len(calib_x)}
    elif method == "qat":
        if train is None:
            raise StageError("int8: QAT needs the training split")
        g = quant.qat(net, (sel(train[0]), train[1]), None if val is None else (sel(val[0]), val[1]), epochs=epochs,
                      calib_x=sel(calib_x),
                      lr=lr, batch_size=batch_size, seed=seed, num_threads=num_threads, progress=progress)
        info = {"method": "qat", "epochs": int(g.meta["qat_epochs"]), "best_epoch": g.meta["qat_best_epoch"],
                "lr": float(lr), "calibration_windows": len(calib_x)}
    else:
        raise StageError(f"int8: method must be 'qat' or 'ptq', got {method!r}")
    g.save(out / "model.hq8")
    return g, channels, info


def stage_int8_eval(g, x: np.ndarray, y: np.ndarray, num_classes: int, class_names):
    """int8 metrics on the test split with ``harcore.quant.simulate`` (the C++ kernels on the host)."""
    from harcore import quant

    return quant.evaluate(g, x, y, num_classes, class_names=class_names)


def stage_deploy(g, out: Path, x: np.ndarray, y: np.ndarray):
    """Firmware sources for the emulated Cortex-M33 (``harcore.deploy.deploy``, board ``qemu-m33``) with the
    given test windows embedded in the harness; into ``out/firmware``."""
    from harcore import deploy

    if not hasattr(deploy, "deploy"):
        raise StageError("harcore.deploy.deploy is not available yet (no firmware sources can be generated)")
    return deploy.deploy(g, out / "firmware", board="qemu-m33", windows=len(x), x=x, y=y, overwrite=True)


def stage_validate(g, deployed, float_model: torch.nn.Module | None = None):
    """Build and run the firmware under QEMU and compare every window with the host int8 simulation
    (``harcore.deploy.validate``; ``float_model``, taking the deployed windows, adds its metrics on them).
    Fails unless the firmware's outputs are bit-exact."""
    from harcore import deploy

    if not hasattr(deploy, "validate"):
        raise StageError("harcore.deploy.validate is not available yet (the firmware cannot be checked on QEMU)")
    r = deploy.validate(g, deployed, float_model=float_model)
    if not getattr(r, "bit_exact", False):
        raise StageError("the firmware's int8 outputs differ from the host simulation:\n" + r.render())
    return r


# ---- the job ----------------------------------------------------------------------------------

SEARCH_CHECKPOINT = "search_last.pt"
FINETUNE_DIR = "finetune"
#: What harcore writes into a run folder (``--overwrite`` deletes these and nothing else).
RUN_FILES = ("job.json", "job.log", "report.md", "report.html", "search.png", "confusion_float.png",
             "confusion_int8.png", "pareto.png", "profile.json", "arch.json", "search_history.json", "slimming.json",
             SEARCH_CHECKPOINT, FINETUNE_DIR, "model.pt", "model.hq8", "firmware", "zcp", "searches",
             "pruning.png")


def job_run_dir(path: str | Path) -> runstore.RunDir:
    """The main job's run folder."""
    return runstore.RunDir(path, files=RUN_FILES, marker="job.json")


@dataclass
class JobContext:
    """What the stages share: the job's inputs, then each stage's output (``None`` until that stage ran)."""

    cfg: JobConfig
    run: runstore.RunDir
    result: JobResult
    console: Any
    resume: bool = False
    on_search_epoch: Callable[[dict], Any] | None = None
    search_config: SearchConfig | None = None
    int8: dict[str, Any] = field(default_factory=dict)
    zcp: dict[str, Any] | None = None         # the zcp strategy's options (JobConfig.zcp_options), else None
    # written by the stages, in order
    ds: Any = None                            # harcore.data.Dataset (data)
    search: Any = None                        # SearchResult (search)
    model: torch.nn.Module | None = None      # the derived float network (derive, trained by finetune)
    profile: Any = None                       # harcore.cost profile of the derived network (derive)
    final: tuple[Any, Any] | None = None      # the (train, val) splits fine-tuning and QAT use (finetune)
    float_metrics: Any = None                 # evaluate
    qgraph: Any = None                        # the int8 graph (int8)
    int8_info: dict[str, Any] | None = None   # how it was quantized (int8)
    channels: list[int] | None = None         # the kept sensors the int8 graph takes (None: all)
    int8_metrics: Any = None                  # int8-eval
    deployed: Any = None                      # deploy
    validation: Any = None                    # validate
    committed: bool = True                    # False while a resume may still fail: job.json is not written

    @property
    def dir(self) -> Path:
        return self.run.path

    def sel(self, x: np.ndarray) -> np.ndarray:
        """The kept sensors of windows that have all of them."""
        return x if self.channels is None else x[:, self.channels]


#: What a stage returns: its one-line detail, or the detail and its figures for ``job.json``.
StageOutput = tuple[str, dict[str, Any]] | str


def _data(ctx: JobContext) -> StageOutput:
    ds = ctx.ds = load_data(ctx.cfg)
    names = ds.info.get("subject_names")
    return (f"{ds.name}: {len(ds.train.y)} train / {len(ds.val.y)} val / {len(ds.test.y)} test windows, "
            f"{ds.train.x.shape[1]} channels x {ds.train.x.shape[2]} samples, {len(ds.classes)} classes",
            {"name": ds.name, "source": ctx.cfg.describe_data(), "train": len(ds.train.y), "val": len(ds.val.y),
             "test": len(ds.test.y), "channels": list(ds.channels), "classes": list(ds.classes),
             **({"subject_names": list(names)} if names is not None else {})})


def _budget(ctx: JobContext) -> StageOutput:
    cfg, ds = ctx.cfg, ctx.ds
    c0, s0, k = ds.train.x.shape[1], ds.train.x.shape[2], len(ds.classes)
    scfg = ctx.search_config
    method = cfg.resolved_method()
    if method != "sftnas":
        from .baselines import original_arch, smallest_original

        if method == "fixed":  # nothing is searched: the layout itself must fit
            small = cfg.fixed_arch(c0, s0, k)
            what = "the fixed layout"
        else:  # AutoSlim and PaS prune filters only: one filter per layer of the original stage is their floor
            small = smallest_original(original_arch(cfg.backbone, c0, s0, k, filters=cfg.filters,
                                                    tail=scfg.tail), scfg.tie_tail)
            what = f"the smallest network {method} can reach (one filter per layer)"
        floor = check_budget(small, sram=scfg.sram, flash=scfg.flash, macs=scfg.macs, params=scfg.params,
                             desc=what)
        return (f"feasible: {what} needs {floor['peak_sram']:,} B SRAM, {floor['flash']:,} B flash, "
                f"{floor['macs']:,} MACs, {floor['params']:,} parameters", {"smallest": floor})
    from .budget import tied_tail

    net = Supernet(cfg.backbone, c0, s0, k, filters=cfg.filters, tail=scfg.tail, tie_tail=scfg.tie_tail)
    small = smallest_arch(cfg.backbone, c0, s0, k, net.layout, scfg.tail)
    tied = dataclasses.replace(small, tail=tied_tail(cfg.backbone, scfg.tail, net.filters, 1))
    limits = dict(sram=scfg.sram, flash=scfg.flash, macs=scfg.macs, params=scfg.params)
    if scfg.tie_tail:  # the later stages shrink with the one filter left
        floor = check_budget(tied, **limits)
        hint = ""
    else:
        try:
            floor = check_budget(small, **limits)
        except BudgetError as e:
            try:
                check_budget(tied, **limits)
            except BudgetError:
                raise e from None
            raise BudgetError(f"{e}; with --tie-tail (the later stages shrink with the kept filters) the smallest "
                              "architecture fits") from None
        # a fixed tail that takes most of a target leaves the search one sensor and one filter: say so
        tight = [f"{name} {floor[key] / lim:.0%}" for name, key, lim in
                 (("MACs", "macs", scfg.macs), ("parameters", "params", scfg.params), ("flash", "flash", scfg.flash))
                 if lim is not None and floor[key] > 0.5 * lim]
        hint = (f"; with the later stages fixed that is already {', '.join(tight)} of the target, so the search "
                "can keep little more than one sensor and one filter (--tie-tail lets them shrink with the kept "
                "filters)") if tight else ""
    return (f"feasible: the smallest architecture needs {floor['peak_sram']:,} B SRAM, {floor['flash']:,} B flash, "
            f"{floor['macs']:,} MACs, {floor['params']:,} parameters{hint}", {"smallest": floor})


def _search(ctx: JobContext) -> StageOutput:
    ds, scfg = ctx.ds, ctx.search_config
    method = ctx.cfg.resolved_method()
    if method == "fixed":
        from .search import SearchResult

        c0, s0 = ds.train.x.shape[1], ds.train.x.shape[2]
        arch = ctx.cfg.fixed_arch(c0, s0, len(ds.classes))
        ctx.run.write_text("arch.json", arch.to_json())
        ctx.search = SearchResult(arch, [], 0, None, None, 0.0, None)
        return "no search (method fixed): " + arch.summary(), {"history": [], "seconds": 0.0, "method": method}
    if method != "sftnas":
        from .baselines import run_baseline

        bcfg = ctx.cfg.baseline_config()
        r = ctx.search = run_baseline(ds.train, ds.val, bcfg, run_dir=ctx.dir, resume=ctx.resume,
                                      on_epoch_end=ctx.on_search_epoch, console=ctx.console,
                                      num_classes=ds.num_classes)
        if r.epochs_run < bcfg.epochs:
            raise StageError(f"{method} stopped after epoch {r.epochs_run} of {bcfg.epochs} (resume with --resume)")
        steps = getattr(r, "slimming", [])
        return (f"{method}: {r.epochs_run} epochs" + (f", {len(steps)} greedy slimming steps" if steps else "")
                + f" in {r.seconds:.0f} s" + (f" (resumed after epoch {r.resumed_from_epoch})"
                                              if r.resumed_from_epoch else ""),
                {"history": r.history, "seconds": r.seconds, "resumed_from_epoch": r.resumed_from_epoch,
                 "method": method, "slimming": steps})
    sel = ctx.cfg.selection_options()
    if sel is not None:
        from .selection import run_searches

        r, rows, kept = run_searches(ds, scfg, ctx.cfg.select_train_config(), run=ctx.dir, job_seed=ctx.cfg.seed,
                                     searches=sel["searches"], limits=ctx.cfg.limits(), resume=ctx.resume,
                                     on_epoch_end=ctx.on_search_epoch, console=ctx.console)
        ctx.search = r
        ctx.run.write_text("arch.json", r.arch.to_json())
        ctx.run.write_text("search_history.json", json.dumps(r.history, indent=2))
        secs = sum(x["search_seconds"] + (0.0 if x["reused"] else x["seconds"]) for x in rows)
        return (f"{len(rows)} searches of {scfg.epochs} epochs, each network trained {sel['select_epochs']} epochs "
                f"on the training subjects; kept search seed {kept} (val macro-F1 "
                f"{max(x['val_macro_f1'] for x in rows if x['seed'] == kept):.4f}); {secs:.0f} s",
                {"history": r.history, "seconds": secs, "resumed_from_epoch": None,
                 "selection": {"searches": rows, "kept_seed": kept, "select_epochs": sel["select_epochs"]}})
    r = ctx.search = search(ds.train, ds.val, scfg, run_dir=ctx.dir, resume=ctx.resume,
                            on_epoch_end=ctx.on_search_epoch, console=ctx.console, num_classes=ds.num_classes)
    if r.epochs_run < scfg.epochs:
        raise StageError(f"search stopped after epoch {r.epochs_run} of {scfg.epochs} (resume with --resume)")
    return (f"{r.epochs_run} epochs in {r.seconds:.0f} s" + (f" (resumed after epoch {r.resumed_from_epoch})"
            if r.resumed_from_epoch else ""), {"history": r.history, "seconds": r.seconds,
                                               "resumed_from_epoch": r.resumed_from_epoch})


def _derive(ctx: JobContext) -> StageOutput:
    cfg, r = ctx.cfg, ctx.search
    ctx.result.arch = r.arch
    torch.manual_seed(cfg.seed)
    model = ctx.model = build(r.arch, r.supernet if cfg.resolved_init() == "supernet" else None)
    p = ctx.profile = profile(model, (r.arch.in_channels, r.arch.seq_len))
    ctx.run.write_text("profile.json", p.to_json(indent=2))
    which = ("" if r.arch_epoch in (None, r.epochs_run) else
             f" (epoch {r.arch_epoch}'s: the final argmax architecture breaks the search's limits)")
    return (f"{r.arch.summary()}{which}, {cfg.init} weights — {p.total.macs:,} MACs, {p.total.params:,} params, "
            f"{p.total.peak_sram:,} B peak SRAM, {p.total.flash:,} B flash",
            {"arch": r.arch.to_dict(), "arch_epoch": r.arch_epoch, "total": dataclasses.asdict(p.total)})


def _finetune(ctx: JobContext) -> StageOutput:
    from harcore.models import sftnas as zoo
    from harcore.train import fit

    cfg = ctx.cfg
    tcfg = cfg.train_config(ctx.dir / FINETUNE_DIR)
    train, val = ctx.final = final_splits(ctx.ds, cfg.resolved_train_on())  # QAT trains on the same
    tr = fit(ctx.model, train, val, tcfg, resume=ctx.resume)
    zoo.save(ctx.model, ctx.dir / "model.pt")
    how = (f"best val macro-F1 {tr.best_val_macro_f1:.4f} (epoch {tr.best_epoch})" if val is not None else
           f"on all {len(train.y):,} training + validation windows, the last epoch kept")
    return (f"{tr.epochs_run} epochs, {how}; saved {ctx.dir / 'model.pt'}",
            {"history": tr.history, "best_val_macro_f1": tr.best_val_macro_f1, "train_on": cfg.train_on})


def _evaluate(ctx: JobContext) -> StageOutput:
    from harcore.train import evaluate

    ds = ctx.ds
    m = ctx.float_metrics = evaluate(ctx.model, ds.test, class_names=list(ds.classes))
    return f"float test macro-F1 {m.macro_f1:.4f}, accuracy {m.accuracy:.4f}", {"metrics": m.to_dict()}


def _fit(ctx: JobContext) -> StageOutput:
    lim, t = ctx.cfg.limits(), ctx.profile.total
    checks = [("peak SRAM", t.peak_sram, lim["sram"], "B"), ("flash", t.flash, lim["flash"], "B"),
              ("MACs", t.macs, lim["macs"], ""), ("parameters", t.params, lim["params"], "")]
    over = [f"{n} {v:,}{u} > limit {lim:,}{u}" for n, v, lim, u in checks if lim is not None and v > lim]
    if over:
        raise StageError("the derived model does not fit the budget: " + "; ".join(over)
                         + " (raise beta2 / beta1 or search longer)")
    return ("fits: " + ", ".join(f"{n} {v:,}{u} <= {lim:,}{u}" for n, v, lim, u in checks if lim is not None)
            or "no limits given", {})


def _int8(ctx: JobContext) -> StageOutput:
    cfg, i8, run = ctx.cfg, ctx.int8, ctx.dir
    cal = ctx.ds.train.x[:512]
    train, val = ctx.final
    ctx.qgraph, ctx.channels, info = stage_int8(ctx.model, cal, run, method=i8["method"],
                                                train=(train.x, train.y), val=None if val is None else (val.x, val.y),
                                                epochs=i8["epochs"], lr=i8["lr"], batch_size=i8["batch_size"],
                                                seed=cfg.seed, num_threads=cfg.num_threads, progress=cfg.progress)
    ctx.int8_info = info
    ch = ctx.channels
    how = (f"QAT (harcore.quant.qat: {info['epochs']} epoch(s) from the fine-tuned model at lr {info['lr']:.0e}, "
           + (f"best validation epoch {info['best_epoch']}" if info["best_epoch"] is not None else "last epoch")
           + f"; converted with {len(cal)} calibration windows)"
           if info["method"] == "qat" else f"PTQ (harcore.quant.quantize, {len(cal)} calibration windows)")
    return (f"{how} -> {run / 'model.hq8'}; input: " + ("all sensors" if ch is None else f"kept sensors {ch}"),
            {"input_channels": ch, **info})


def _int8_eval(ctx: JobContext) -> StageOutput:
    ds = ctx.ds
    m = ctx.int8_metrics = stage_int8_eval(ctx.qgraph, ctx.sel(ds.test.x), ds.test.y, len(ds.classes),
                                           list(ds.classes))
    how = ctx.int8_info["method"].upper()
    fm = ctx.float_metrics
    return ((f"{how}: test macro-F1 float {fm.macro_f1:.4f} -> int8 {m.macro_f1:.4f} "
             f"({100 * (m.macro_f1 - fm.macro_f1):+.2f} points)" if fm is not None else
             f"{how}: int8 test macro-F1 {m.macro_f1:.4f}"), {"metrics": m.to_dict(), "method": how.lower()})


def _deploy(ctx: JobContext) -> StageOutput:
    ds = ctx.ds
    ctx.deployed = stage_deploy(ctx.qgraph, ctx.dir, ctx.sel(ds.test.x[:DEPLOY_WINDOWS]), ds.test.y[:DEPLOY_WINDOWS])
    return f"firmware sources for qemu-m33 ({DEPLOY_WINDOWS} test windows in the harness) in {ctx.dir / 'firmware'}", {}


def _validate(ctx: JobContext) -> StageOutput:
    r = ctx.validation = stage_validate(ctx.qgraph, ctx.deployed, deploy_model(ctx.model)[0])
    acc, f1 = r.accuracy.get("target"), r.macro_f1.get("target")
    return (f"firmware on the emulated Cortex-M33 is bit-exact with the host int8 simulation "
            f"({r.exact_windows}/{r.windows} windows"
            + (f"; target accuracy {acc:.4f}, macro-F1 {f1:.4f} on them" if acc is not None else "")
            + f"; image flash {r.image['flash']:,} B, RAM {r.image['ram']:,} B)",
            {"report": r.render(), "summary": r.to_dict()})


def _report(ctx: JobContext) -> StageOutput:
    from .report import write_job_report

    paths = write_job_report(ctx.result, ctx)
    return f"{paths[0]} and {paths[1]}", {"files": [str(p) for p in paths]}


#: The main job's stages in order: (name, function over the context). Their dependencies are :data:`NEEDS`.
PIPELINE: tuple[tuple[str, Callable[[JobContext], StageOutput]], ...] = (
    ("data", _data), ("budget", _budget), ("search", _search), ("derive", _derive), ("finetune", _finetune),
    ("evaluate", _evaluate), ("fit", _fit), ("int8", _int8), ("int8-eval", _int8_eval), ("deploy", _deploy),
    ("validate", _validate), ("report", _report))
assert tuple(n for n, _ in PIPELINE) == STAGES


def run_stage(ctx: JobContext, name: str, fn: Callable[[JobContext], StageOutput]) -> StageResult:
    """Run one stage unless a stage it needs did not pass; record, print and (once committed) save the result.

    During a resume that has not yet passed its search stage, a failure is raised instead of recorded: the run
    folder must stay as it was."""
    res, con = ctx.result, ctx.console
    blocked = [n for n in NEEDS.get(name, ()) if res.stages.get(n) is None or res.stages[n].status != "ok"]
    if blocked:
        sr = res.stages[name] = StageResult(name, "skipped", f"needs {', '.join(blocked)}")
        con.print(f"[yellow]- {name}: skipped (needs {', '.join(blocked)})[/yellow]")
    else:
        t0 = time.perf_counter()
        try:
            out = fn(ctx)
            detail, data = (out, {}) if isinstance(out, str) else out
            sr = res.stages[name] = StageResult(name, "ok", detail, time.perf_counter() - t0, data)
            con.print(f"[green]✓ {name}[/green]: {detail}")
        except KeyboardInterrupt:
            raise
        except BaseException as e:  # noqa: BLE001 — every failure is recorded and shown, none is hidden
            why = str(e) if isinstance(e, (HarcoreError, BudgetError)) else f"{type(e).__name__}: {e}"
            con.print(f"[bold red]✗ {name} FAILED[/bold red]: {why}")
            if not ctx.committed:
                if isinstance(e, HarcoreError):
                    raise
                raise StageError(f"resume stopped at stage {name}: {why}; {ctx.dir} was left as it was") from e
            sr = res.stages[name] = StageResult(name, "failed", why, time.perf_counter() - t0,
                                                {"traceback": traceback.format_exc()})
    if name == "search" and sr.status == "ok":
        ctx.committed = True
    if ctx.committed:
        ctx.run.write_json("job.json", res.to_dict())
    return sr


def check_resumable(cfg: JobConfig, run: runstore.RunDir) -> None:
    """Before a resume writes anything: every checkpoint in ``run`` reads, and was written with ``cfg``
    (:class:`~harcore.errors.CheckpointError` naming the file and the differing fields otherwise)."""
    from harcore.train.trainer import check_resumable as train_check

    from .search import check_resumable as search_check

    if cfg.resolved_method() in ("autoslim", "pas"):
        from .baselines import check_resumable as baseline_check

        baseline_check(run.path, cfg.baseline_config())
    elif cfg.selection_options() is not None:
        from .selection import search_dir, search_seeds

        for s in search_seeds(cfg.seed, cfg.searches):
            search_check(search_dir(run.path, s), dataclasses.replace(cfg.search_config(), seed=s))
    else:
        search_check(run.path, cfg.search_config())
    train_check(cfg.train_config(run.path / FINETUNE_DIR))


def run_job(cfg: JobConfig, *, resume: bool = False, overwrite: bool = False, console=None,
            on_search_epoch: Callable[[dict], Any] | None = None) -> JobResult:
    """Run the main job into ``cfg.out`` and write ``job.json`` + ``report.md`` / ``report.html`` there.

    A new run needs ``cfg.out`` missing or empty (:class:`~harcore.errors.RunExistsError` otherwise);
    ``overwrite=True`` deletes harcore's files of an earlier run there first (other files stay);
    ``resume=True`` continues the interrupted run there (:class:`~harcore.errors.CheckpointError` when there
    is nothing to resume, a checkpoint is damaged or the configuration differs; the folder is then unchanged).
    """
    from rich.console import Console

    console = console or Console(file=sys.stdout)
    scfg = cfg.search_config()
    method = cfg.resolved_method()
    epochs = cfg.baseline_config().epochs if method in ("autoslim", "pas") else scfg.epochs
    i8 = cfg.int8_options()
    zcp = cfg.zcp_options()
    sel = cfg.selection_options()
    run = job_run_dir(cfg.out)
    if zcp is not None:
        from . import zcp_job

        pipeline, checkpoints, check = zcp_job.PIPELINE, zcp_job.CHECKPOINTS, zcp_job.check_resumable
    elif sel is not None:
        from .selection import checkpoints as select_checkpoints

        pipeline, checkpoints, check = PIPELINE, select_checkpoints(cfg.seed, cfg.searches), check_resumable
    else:
        pipeline, checkpoints, check = PIPELINE, (SEARCH_CHECKPOINT,), check_resumable
    run.prepare(resume=resume, overwrite=overwrite, checkpoints=checkpoints)
    if resume:
        check(cfg, run)
        run.clean_temp()
    torch.set_num_threads(cfg.num_threads)
    ctx = JobContext(cfg, run, JobResult(cfg, run.path, {}), console, resume, on_search_epoch, scfg, i8, zcp,
                     committed=not resume)
    console.print(f"[bold]harcore search[/bold] — method {method if zcp is None else 'zcp'}, backbone {cfg.backbone}, "
                  f"dataset {cfg.describe_data()}, preset {cfg.resolved_preset()}: "
                  + (f"zcp strategy ({zcp['space']} space, {zcp['candidates']} candidates ranked by {zcp['proxy']}, "
                     f"top {zcp['top_k']} trained {zcp['epochs']} epochs each), " if zcp is not None else
                     (f"{sel['searches']} searches of {epochs} epochs (each network trained {sel['select_epochs']} "
                      "epochs on the training subjects, the best on validation kept), " if sel is not None else
                      f"{epochs} {'search' if method == 'sftnas' else method} epochs, ") if method != "fixed" else
                     "no search, ")
                  + f"{cfg.train_config(run.path / FINETUNE_DIR).epochs} fine-tuning epochs, int8 "
                  + (f"by QAT ({i8['epochs']} epoch(s))" if i8["method"] == "qat" else "by PTQ") + "; budget "
                  f"SRAM {scfg.sram or '-'} B, flash {scfg.flash or '-'} B, MACs {scfg.macs or '-'}, parameters "
                  f"{scfg.params or '-'}" + (f" (board {cfg.board})" if cfg.board else "") + "; "
                  f"run folder {run.path}" + (" (resuming)" if resume else ""))
    if cfg.resolved_preset() == "quick":
        console.print("  (quick preset: a few minutes on 2 CPU cores; `--preset paper` for the paper's 200 epochs)")
    for name, fn in pipeline:
        run_stage(ctx, name, fn)
    ctx.result.finished = True
    run.write_json("job.json", ctx.result.to_dict())
    bad = ctx.result.failed()
    if bad:
        console.print("[bold red]INCOMPLETE[/bold red]: " + "; ".join(f"stage {s.name} failed: {s.detail}" for s in bad))
    else:
        console.print(f"[bold green]done[/bold green]: every stage passed; report in {run.path / 'report.html'}")
    return ctx.result


def environment() -> dict[str, str]:
    return {"python": platform.python_version(), "torch": torch.__version__, "machine": platform.machine()}
