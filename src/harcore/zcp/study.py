"""A "Models Got Talent" study as a resumable job: sample Table I architectures, score them with every proxy,
train each for the ground truth, and rank the proxies (``docs/zcp.md``, "Study").

Layout of ``out``::

    study.json             the study's settings (a resumed study must match them)
    archs/NNNNN.json       one file per finished architecture (written atomically as it finishes)
    summary.json           per proxy: spearman (+ CI), talent_rate, delta1, delta10, delta10pct, noise
    report.md, report.html, fig_*.png

A killed study restarted with the same ``out`` skips every architecture whose file exists.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from harcore.errors import HarcoreError, MissingExtraError
from harcore.runstore import atomic_write_text

from .metrics import NOISE_VARIANCES, add_noise
from .space import Arch, build, sample

__all__ = ["StudyData", "StudyConfig", "load_study_data", "run_architecture", "run_study", "STUDY_DATASETS"]

#: Datasets a study can run on; HAPT in its 6- and 12-class variants; MobiAct, MyoGym and RealWorld HAR
#: (the paper's, read from their releases with ``root``).
STUDY_DATASETS = ("default", "hapt", "hapt-12", "daphnet", "mobiact", "myogym", "realworld")


class StudyError(HarcoreError, ValueError):
    """A study directory or its settings do not fit the request."""


@dataclass
class StudyData:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    num_classes: int
    channels: list[str]
    sample_rate: float | None

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def seq_len(self) -> int:
        return int(self.x_train.shape[2])


def _accel_channels(names: Sequence[str], dataset: str) -> list[int]:
    """Indices of the accelerometer channels: raw acceleration (``total_acc``) where the dataset separates
    body and gravity parts, else every channel named ``acc``; Daphnet records only accelerometers."""
    low = [n.lower() for n in names]
    for key in ("total_acc", "acc"):
        idx = [i for i, n in enumerate(low) if key in n]
        if idx:
            return idx
    if dataset == "daphnet":
        return list(range(len(names)))
    raise StudyError(f"dataset {dataset!r} has no accelerometer channel among {list(names)}")


def load_study_data(dataset: str, root: str | Path | None = None, seed: int = 0) -> StudyData:
    """The paper's protocol on the data at hand: accelerometer channels only, 50 Hz, 2 s windows with 50 %
    overlap (100 samples, step 50), users split 20 % test and 20 % of the rest validation (seeded),
    z-scored with training statistics.

    The built-in ``default`` dataset ships fixed 2.56 s windows (128 samples at 50 Hz); it is used as it is.
    Windows are cut per recording by the dataset loaders (harcore's loaders do not expose the joined
    per-split stream), so no window straddles two recordings.
    """
    from harcore import data

    key = dataset.lower()
    if key not in STUDY_DATASETS:
        raise StudyError(f"unknown study dataset {dataset!r}; choose one of {', '.join(STUDY_DATASETS)}")
    if key == "default":
        ws = data.load_windows("default")
    elif key in ("hapt", "hapt-12"):
        ws = data.load_windows("hapt", root, variant="uci9" if key == "hapt" else "uci9-12class",
                               window=100, step=50)
    elif key == "daphnet":
        ws = data.load_windows("daphnet", root, window=100, step=50, resample_to=50.0)
    elif key == "realworld":
        # the paper's five positions: the two others lack climbing up / jumping for some subjects
        from harcore.data.datasets.realworld import PAPER_POSITIONS
        ws = data.load_windows("realworld", root, positions=PAPER_POSITIONS, sensors=("acc",), window=100, step=50,
                               resample_to=50.0)
    elif key == "myogym":
        ws = data.load_windows("myogym", root, sensors=("acc",), window=100, step=50)
    else:
        ws = data.load_windows("mobiact", root, sensors=("acc",), window=100, step=50, resample_to=50.0)
    idx = _accel_channels(ws.channels, key)
    ws.x = np.ascontiguousarray(ws.x[:, idx, :])
    ws.channels = [ws.channels[i] for i in idx]
    # 20 % of the users for test, 20 % of the remaining 80 % (16 %) for validation.
    ds = data.build_dataset(ws, protocol="random-subjects", fractions=(0.64, 0.16, 0.20), seed=seed)
    if ds.val is None or len(ds.val) == 0:
        raise StudyError(f"{dataset}: the split left no validation windows")
    return StudyData(key, ds.train.x, ds.train.y, ds.val.x, ds.val.y, ds.test.x, ds.test.y, ds.num_classes,
                     list(ds.channels), ds.sample_rate)


@dataclass(frozen=True)
class StudyConfig:
    dataset: str
    archs: int
    epochs: int = 50
    seed: int = 0
    batch_size: int = 256
    lr: float = 1e-4
    lr_step: int = 10
    lr_gamma: float = 0.8
    proxy_batch: int = 256
    root: str | None = None
    #: Train on at most this many training windows (a seeded subsample) -- for smoke runs only; None: all.
    max_train: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def identity(self) -> dict[str, Any]:
        """The settings a resumed study must share (``archs`` may grow: more architectures extend it)."""
        d = self.to_dict()
        d.pop("archs")
        return d


def _macro_f1(net: Any, x: np.ndarray, y: np.ndarray, batch: int = 1024) -> float:
    import torch
    from sklearn.metrics import f1_score

    net.eval()
    preds = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            preds.append(net(torch.from_numpy(np.ascontiguousarray(x[i:i + batch]))).argmax(1).numpy())
    return float(f1_score(y, np.concatenate(preds), average="macro", zero_division=0.0))


def run_architecture(index: int, arch: Any, d: StudyData, cfg: StudyConfig, *, net: Any = None,
                     key: str | None = None) -> dict[str, Any]:
    """Score one architecture (all proxies) and train it for the ground truth; returns its result record.

    ``net``: the untrained module of ``arch`` when it is not a Table I architecture (the proxy-guided search of
    the main job passes derived SFTNAS networks), with its ``key``. With an empty test split (``d.x_test``)
    nothing is evaluated on test (``test_f1`` None): the main job tests only its final model.

    Training: Xavier-normal init, Adam (lr ``cfg.lr``), batch ``cfg.batch_size``, ``cfg.epochs`` epochs,
    lr × ``cfg.lr_gamma`` every ``cfg.lr_step`` epochs, cross-entropy; the epoch with the best validation
    macro-F1 is kept (earliest on ties) and evaluated on the test split, clean and with each noise variance.
    """
    import torch

    from .proxies import score

    seed = cfg.seed * 100003 + index
    torch.manual_seed(seed)
    if net is None:
        net = build(arch, d.in_channels, d.seq_len, d.num_classes)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(d.x_train), size=min(cfg.proxy_batch, len(d.x_train)), replace=False)
    t0 = time.perf_counter()
    scores = score(net, d.x_train[pick], d.y_train[pick], seed=seed, val=(d.x_val, d.y_val))
    score_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=cfg.lr_step, gamma=cfg.lr_gamma)
    xt, yt = torch.from_numpy(d.x_train), torch.from_numpy(d.y_train)
    if cfg.max_train is not None and cfg.max_train < len(xt):
        sub = torch.from_numpy(np.sort(rng.choice(len(xt), size=cfg.max_train, replace=False)))
        xt, yt = xt[sub], yt[sub]
    gen = torch.Generator().manual_seed(seed)
    best_f1, best_epoch, best_state = -1.0, 0, None
    history = []
    for epoch in range(1, cfg.epochs + 1):
        net.train()
        perm = torch.randperm(len(xt), generator=gen)
        total = 0.0
        for i in range(0, len(perm), cfg.batch_size):
            b = perm[i:i + cfg.batch_size]
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(net(xt[b]), yt[b])
            loss.backward()
            opt.step()
            total += loss.item() * len(b)
        sched.step()
        f1 = _macro_f1(net, d.x_val, d.y_val)
        history.append({"epoch": epoch, "loss": total / len(perm), "val_macro_f1": f1})
        if f1 > best_f1:
            best_f1, best_epoch = f1, epoch
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    if best_state is not None:
        net.load_state_dict(best_state)
    train_s = time.perf_counter() - t0
    noisy = ({str(v): _macro_f1(net, add_noise(d.x_test, v, seed=seed), d.y_test) for v in NOISE_VARIANCES}
             if len(d.x_test) else {})
    return {"index": index, "arch": arch.to_dict(), "key": key if key is not None else arch.key, "scores": scores,
            "val_f1": best_f1, "test_f1": noisy.get("0.0"), "noisy_test_f1": noisy, "best_epoch": best_epoch,
            "history": history, "score_seconds": score_s, "train_seconds": train_s}


def _result_path(out: Path, index: int) -> Path:
    return out / "archs" / f"{index:05d}.json"


def finished(out: str | Path) -> dict[int, dict[str, Any]]:
    """The stored results of a study directory, by architecture index."""
    res = {}
    folder = Path(out) / "archs"
    for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        try:
            r = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise StudyError(f"{p}: unreadable result file ({e}); delete it to redo that architecture") from e
        res[int(r["index"])] = r
    return res


def _check_settings(out: Path, cfg: StudyConfig) -> None:
    meta = out / "study.json"
    if meta.exists():
        old = json.loads(meta.read_text())
        new = cfg.identity()
        diff = {k: (old.get(k), v) for k, v in new.items() if old.get(k) != v}
        if diff:
            raise StudyError(f"{meta}: the study in this folder used other settings "
                             f"({', '.join(f'{k}: {a!r} != {b!r}' for k, (a, b) in diff.items())}); "
                             "use another --out or the same settings")
    atomic_write_text(meta, json.dumps(dict(cfg.identity(), archs=cfg.archs), indent=2))


def _ray(address: str | None) -> tuple[Any, bool]:
    """Ray, started (locally or on the cluster at ``address``) unless already running; and whether this call
    started it (then the study shuts it down when it ends)."""
    try:
        import ray
    except ImportError as e:
        raise MissingExtraError("a parallel study needs Ray: pip install 'harcore[ray]'") from e
    if ray.is_initialized():
        return ray, False
    ray.init(address=address, log_to_driver=False)
    return ray, True


def run_study(cfg: StudyConfig, out: str | Path, *, parallel: bool = False, address: str | None = None,
              progress: bool = True, data: StudyData | None = None,
              on_result: Callable[[dict[str, Any]], None] | None = None,
              arch_list: Sequence[Arch] | None = None) -> dict[str, Any]:
    """Run (or resume) a study; returns the summary (also written with the report to ``out``).

    Sequential by default; with ``parallel`` or ``address`` every architecture is a Ray task (a local Ray
    unless ``address`` names a cluster). Each finished architecture is stored at once, so a killed study
    resumes where it stopped. ``arch_list`` replaces the Table I sample (its first ``cfg.archs`` entries).
    """
    from .report import summarize, write_report

    out = Path(out)
    (out / "archs").mkdir(parents=True, exist_ok=True)
    _check_settings(out, cfg)
    d = data if data is not None else load_study_data(cfg.dataset, cfg.root, cfg.seed)
    archs = list(arch_list)[:cfg.archs] if arch_list is not None else sample(cfg.archs, seed=cfg.seed, seq_len=d.seq_len)
    if len(archs) < cfg.archs:
        raise StudyError(f"arch_list holds {len(archs)} architectures, the study asks for {cfg.archs}")
    done = finished(out)
    todo = [i for i in range(cfg.archs) if i not in done]

    def store(r: dict[str, Any]) -> None:
        atomic_write_text(_result_path(out, r["index"]), json.dumps(r))
        done[r["index"]] = r
        if on_result is not None:
            on_result(r)

    from rich.progress import Progress

    with Progress(disable=not progress, transient=False) as bar:
        task = bar.add_task(f"zcp study {cfg.dataset}", total=cfg.archs, completed=cfg.archs - len(todo))
        if todo and (parallel or address):
            ray, started_here = _ray(address)
            try:
                remote = ray.remote(run_architecture)
                dref = ray.put(d)
                pending = {remote.remote(i, archs[i], dref, cfg): i for i in todo}
                while pending:
                    ready, _ = ray.wait(list(pending), num_returns=1)
                    for ref in ready:
                        pending.pop(ref)
                        store(ray.get(ref))
                        bar.advance(task)
            finally:
                if started_here:
                    ray.shutdown()
        else:
            for i in todo:
                store(run_architecture(i, archs[i], d, cfg))
                bar.advance(task)
    results = [done[i] for i in range(cfg.archs)]
    summary = summarize(results, seed=cfg.seed)
    summary["study"] = dict(cfg.to_dict(), data={"name": d.name, "channels": d.channels,
                                                 "sample_rate": d.sample_rate, "num_classes": d.num_classes,
                                                 "windows": [len(d.x_train), len(d.x_val), len(d.x_test)],
                                                 "seq_len": d.seq_len})
    write_report(summary, results, out)
    return summary
