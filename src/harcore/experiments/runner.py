"""The experiment runner: models x datasets x variants x seeds, resumable, sequential or through Ray.

A run is finished when its result file ``<out>/runs/<dataset>/<model>/<variant>/seed-<seed>.json`` exists,
parses, and was written for the same settings (its ``key``). Result files are written atomically (temp
file, fsync, rename) by the process that launched the runs, so a killed run leaves no result file and is
redone; its training checkpoints every epoch beside it and resumes from the last one.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from harcore.errors import HarcoreError, MissingExtraError
from harcore.runstore import atomic_write_text, fresh_checkpoints

FORMAT = "harcore.bench/1"


@dataclass
class BenchSpec:
    """What to run. ``variants`` maps a model name to ``{variant name: model options}``; a model absent
    from it runs its base build (``{"base": {}}``). ``seeds`` are the run seeds. Training follows the
    µBi-ConvLSTM paper's preset (AdamW, cosine) with the fields below; selection (early stopping, best
    weights) uses the validation subjects, and the test subjects are evaluated once per run."""

    models: list[str] = field(default_factory=lambda: ["mubiconvlstm"])
    datasets: list[str] = field(default_factory=lambda: ["default"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    variants: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    data_dirs: dict[str, str] = field(default_factory=dict)
    dataset_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    val_fraction: float = 0.2
    epochs: int = 50
    patience: int | None = 10
    lr: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 64
    class_weights: str | None = None
    threads: int | None = 1
    int8: bool = True
    calibration_windows: int = 512

    def __post_init__(self) -> None:
        for name in ("models", "datasets", "seeds"):
            if not getattr(self, name):
                raise ValueError(f"BenchSpec.{name}: must not be empty")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 1:
            raise ValueError(f"BenchSpec.epochs: must be an integer >= 1 (got {self.epochs!r})")
        unknown = set(self.variants) - set(self.models)
        if unknown:
            raise ValueError(f"BenchSpec.variants: model(s) {sorted(unknown)} are not in models {self.models}")

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "spec") -> "BenchSpec":
        names = set(cls.__dataclass_fields__)
        bad = sorted(set(d) - names)
        if bad:
            raise HarcoreError(f"{where}: unknown field(s) {bad}; known: {sorted(names)}")
        try:
            return cls(**d)
        except (TypeError, ValueError) as e:
            raise HarcoreError(f"{where}: {e}") from e

    @classmethod
    def load(cls, path: str | os.PathLike) -> "BenchSpec":
        """A spec from a ``.toml`` or ``.json`` file (the fields of :class:`BenchSpec`)."""
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as e:
            raise HarcoreError(f"{p}: cannot read the bench spec ({e})") from e
        try:
            if p.suffix == ".toml":
                import tomllib

                d = tomllib.loads(text)
            else:
                d = json.loads(text)
        except Exception as e:  # tomllib.TOMLDecodeError / json.JSONDecodeError carry the line
            raise HarcoreError(f"{p}: not a valid {p.suffix.lstrip('.') or 'JSON'} bench spec ({e})") from e
        return cls.from_dict(d, where=str(p))

    def runs(self) -> list["Run"]:
        out = []
        for ds in self.datasets:
            for m in self.models:
                for vname, opts in (self.variants.get(m) or {"base": {}}).items():
                    for s in self.seeds:
                        out.append(Run(ds, m, vname, dict(opts), int(s)))
        return out


@dataclass(frozen=True)
class Run:
    dataset: str
    model: str
    variant: str
    options: dict[str, Any]
    seed: int

    @property
    def rel(self) -> Path:
        return Path("runs") / self.dataset / self.model / self.variant / f"seed-{self.seed}"

    def key(self, spec: BenchSpec) -> dict[str, Any]:
        """Everything the run's figures depend on: a result with another key is stale."""
        return {"dataset": self.dataset, "model": self.model, "variant": self.variant, "options": self.options,
                "seed": self.seed, "data_dir": spec.data_dirs.get(self.dataset),
                "dataset_options": spec.dataset_options.get(self.dataset, {}), "val_fraction": spec.val_fraction,
                "epochs": spec.epochs, "patience": spec.patience, "lr": spec.lr,
                "weight_decay": spec.weight_decay, "batch_size": spec.batch_size, "int8": spec.int8,
                "class_weights": spec.class_weights,
                "calibration_windows": spec.calibration_windows}






def finished_result(run: Run, spec: BenchSpec, out: Path) -> dict[str, Any] | None:
    """The run's stored result, or ``None`` when it is missing, unreadable or for other settings."""
    path = out / (str(run.rel) + ".json")
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(rec, dict) or rec.get("format") != FORMAT or rec.get("key") != run.key(spec):
        return None
    return rec


_DATA_CACHE: dict[tuple, Any] = {}


def _dataset(name: str, spec: BenchSpec):
    from harcore.train.recipe import load_with_validation

    opts = dict(spec.dataset_options.get(name, {}))
    ck = (name, spec.data_dirs.get(name), json.dumps(opts, sort_keys=True), spec.val_fraction)
    if ck not in _DATA_CACHE:
        ds = load_with_validation(name, spec.data_dirs.get(name), opts, spec.val_fraction, 0)
        _DATA_CACHE.clear()  # one dataset in memory at a time
        _DATA_CACHE[ck] = ds
    return _DATA_CACHE[ck]


def execute(run: Run, spec: BenchSpec, out: str) -> dict[str, Any]:
    """Train, evaluate and cost one run (no result file is written here: see :func:`run_bench`)."""
    import torch

    from harcore import cost, models
    from harcore.train import TrainConfig, evaluate, fit

    ds = _dataset(run.dataset, spec)
    c, t = ds.train.x.shape[1:]
    k = len(ds.classes)
    ckdir = Path(out) / run.rel
    fresh_checkpoints(ckdir, run.key(spec))
    torch.manual_seed(run.seed)
    net = models.create(run.model, in_channels=int(c), seq_len=int(t), num_classes=k, **run.options)
    cfg = TrainConfig.mu_biconvlstm(epochs=spec.epochs, early_stopping_patience=spec.patience, lr=spec.lr,
                                    weight_decay=spec.weight_decay, batch_size=spec.batch_size, seed=run.seed,
                                    class_weights=spec.class_weights,
                                    num_threads=spec.threads, progress=False,
                                    checkpoint_dir=str(ckdir))
    t0 = time.perf_counter()
    res = fit(net, ds.train, ds.val, cfg, resume=True)
    train_s = time.perf_counter() - t0
    tm = evaluate(net, ds.test)
    prof = cost.profile(net.eval(), (int(c), int(t))).total
    rec: dict[str, Any] = {
        "format": FORMAT, "key": run.key(spec), "test_macro_f1": tm.macro_f1, "test_accuracy": tm.accuracy,
        "best_epoch": res.best_epoch, "epochs_run": res.epochs_run, "best_val_macro_f1": res.best_val_macro_f1,
        "train_seconds": train_s, "params": prof.params, "macs": prof.macs, "peak_sram": prof.peak_sram,
        "int8_flash": prof.flash, "int8_test_macro_f1": None,
    }
    if spec.int8:
        from harcore import quant

        qm, why = quant.ptq_metrics(net, ds.train.x[: spec.calibration_windows], ds.test.x, ds.test.y, k)
        if qm is None:
            rec["int8_error"] = why
        else:
            rec["int8_test_macro_f1"] = qm.macro_f1
    return rec


def _ray():
    try:
        import ray
    except ImportError as e:
        raise MissingExtraError("harcore bench --parallel > 1 runs through Ray: pip install 'harcore[ray]'") from e
    return ray


def run_bench(spec: BenchSpec, out: str | os.PathLike, *, parallel: int = 1, address: str | None = None,
              progress: bool = True, log: Callable[[str], None] | None = None,
              executor: Callable[[Run, BenchSpec, str], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Run every unfinished run of ``spec`` and write the report. ``parallel`` > 1 (or ``address``) runs them
    as Ray tasks (a local Ray by default, the cluster at ``address`` otherwise); results come back to this
    process, which stores each as it arrives. Returns ``{"ran": [...], "skipped": [...], "report": ...}``."""
    from .report import write_report

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    log = log or (lambda s: None)
    executor = executor or execute
    atomic_write_text(out / "spec.json", json.dumps(asdict(spec), indent=2))
    todo, skipped = [], []
    for r in spec.runs():
        (skipped if finished_result(r, spec, out) is not None else todo).append(r)
    ran: list[str] = []

    def store(r: Run, rec: dict[str, Any]) -> None:
        atomic_write_text(out / (str(r.rel) + ".json"), json.dumps(rec, indent=2))
        ran.append(str(r.rel))
        log(f"{r.rel}: test macro-F1 {100 * rec['test_macro_f1']:.2f}")

    bar = _progress(progress, len(spec.runs()), len(skipped))
    ray = None
    started_here = False
    try:
        if todo and (parallel > 1 or address):
            ray = _ray()
            started_here = not ray.is_initialized()
            if started_here:
                # Connecting to a cluster takes no resource options (Ray refuses them); a local Ray gets --parallel CPUs.
                local = {} if address else {"num_cpus": parallel, "include_dashboard": False}
                ray.init(address=address, log_to_driver=False, **local)
            remote = ray.remote(num_cpus=1)(executor)
            pending = {remote.remote(r, spec, str(out.resolve())): r for r in todo}
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                r = pending.pop(done[0])
                store(r, ray.get(done[0]))
                bar.step(str(r.rel))
        else:
            for r in todo:
                bar.describe(str(r.rel))
                store(r, executor(r, spec, str(out)))
                bar.step(str(r.rel))
    finally:
        bar.close()
        if started_here:  # a Ray this call started ends with it (one already running is the caller's)
            ray.shutdown()
    results = [(r, finished_result(r, spec, out)) for r in spec.runs()]
    report = write_report(spec, [(r, rec) for r, rec in results if rec is not None], out)
    return {"ran": ran, "skipped": [str(r.rel) for r in skipped], "report": report}


class _progress:
    """A rich progress bar over the runs, when stdout is a terminal."""

    def __init__(self, enabled: bool, total: int, done: int):
        self.p = None
        if not enabled:
            return
        import sys

        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        console = Console(file=sys.stdout)
        if not console.is_terminal:
            return
        self.p = Progress(TextColumn("[bold]runs"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          TextColumn("{task.description}"), console=console)
        self.p.start()
        self.task = self.p.add_task("", total=total, completed=done)

    def describe(self, text: str) -> None:
        if self.p is not None:
            self.p.update(self.task, description=text)

    def step(self, text: str) -> None:
        if self.p is not None:
            self.p.update(self.task, advance=1, description=text)

    def close(self) -> None:
        if self.p is not None:
            self.p.stop()


def summarize(rows: Iterable[tuple[Run, dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per (dataset, model, variant): mean ± sample std over seeds and the per-cost ratios."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r, rec in rows:
        groups.setdefault((r.dataset, r.model, r.variant), []).append(rec)

    def ms(vals: list[float]) -> tuple[float, float]:
        return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)

    table = []
    for (ds, m, v), recs in groups.items():
        f1, f1s = ms([100 * x["test_macro_f1"] for x in recs])
        acc, accs = ms([100 * x["test_accuracy"] for x in recs])
        q = [100 * x["int8_test_macro_f1"] for x in recs if x.get("int8_test_macro_f1") is not None]
        params, macs = recs[0]["params"], recs[0]["macs"]
        table.append({
            "dataset": ds, "model": m, "variant": v, "seeds": len(recs), "macro_f1": f1, "macro_f1_std": f1s,
            "accuracy": acc, "accuracy_std": accs, "params": params, "macs": macs,
            "peak_sram": recs[0]["peak_sram"], "int8_flash": recs[0]["int8_flash"],
            "int8_macro_f1": statistics.fmean(q) if q else None,
            "f1_per_kparam": f1 / (params / 1e3) if params else None,
            "f1_per_mmac": f1 / (macs / 1e6) if macs else None,
            "train_seconds": statistics.fmean(x["train_seconds"] for x in recs),
        })
    return table
