"""The study (Optuna TPE + median pruning on an RDB storage) and the final training over seeds.

Budget rule: ``trials`` is the number of *finished* trials (COMPLETE or PRUNED) the study must hold in
the end, whichever process or run produced them. Every worker, before asking for a trial, fails the
trials whose heartbeat went stale (a killed worker's trial; Optuna re-queues its parameters through
``RetryFailedTrialCallback``) and counts: it stops when ``finished >= trials``, waits while
``finished + running >= trials`` (another worker's trial may still finish or go stale), and asks
otherwise. A worker that lost a race (its new trial makes ``finished + running`` exceed the budget
among the trials numbered before it) gives its trial back as FAIL with the user attribute
``over_budget`` before training, so the study never ends with more finished trials than asked.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import socket
import statistics
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from harcore.errors import HarcoreError, MissingExtraError
from harcore.runstore import atomic_write_text, fresh_checkpoints
from harcore.train.recipe import TrainingRecipe, check_counts

FORMAT = "harcore.hpo/1"


@dataclass(frozen=True)
class Param:
    """One dimension of the search space: ``kind`` "float" (``log`` for a log scale) or "int"."""

    name: str
    low: float
    high: float
    log: bool = False
    kind: str = "float"

    def suggest(self, trial: Any) -> float | int:
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, float(self.low), float(self.high), log=self.log)


#: The µBi-ConvLSTM paper's space (§IV-C): lr 1e-4..1e-2 (log), weight decay 1e-5..5e-2 (log),
#: dropout 0..0.5 (uniform). ``dropout`` is the model's dropout option (see :func:`dropout_key`).
DEFAULT_SPACE: tuple[Param, ...] = (
    Param("lr", 1e-4, 1e-2, log=True),
    Param("weight_decay", 1e-5, 5e-2, log=True),
    Param("dropout", 0.0, 0.5),
)

# Attempts at opening the storage while other workers may be creating its schema (see open_study).
_OPEN_TRIES = 5

# The name each zoo model gives its (main) dropout rate.
_DROPOUT_KEYS = ("dropout", "drop_prob")


@dataclass
class HPOConfig(TrainingRecipe):
    """Everything a study and its final training need: the data and training fields of
    :class:`harcore.train.TrainingRecipe` and the search's own. Defaults: the µBi-ConvLSTM paper's protocol
    (50 TPE trials of 10 epochs with patience 5; final training 200 epochs, patience 10, 5 seeds from
    a master seed; AdamW, cosine schedule)."""

    # The shared fields (TrainingRecipe) with this job's defaults; ``epochs``/``patience`` are per trial.
    epochs: int = 10
    patience: int | None = 5
    out: str = "runs/hpo"
    model: str = "mubiconvlstm"
    model_options: dict[str, Any] = field(default_factory=dict)
    trials: int = 50
    final_epochs: int = 200
    final_patience: int | None = 10
    seeds: int = 5
    master_seed: int = 0
    sampler_seed: int = 0
    class_weights: str | None = None
    storage: str | None = None
    study: str | None = None
    space: tuple[Param, ...] = DEFAULT_SPACE
    pruner_startup_trials: int = 5
    pruner_warmup_steps: int = 2
    heartbeat_interval: int = 10
    grace_period: int | None = None
    int8: bool = True
    calibration_windows: int = 512

    def __post_init__(self) -> None:
        super().__post_init__()
        check_counts(self, ("trials", "final_epochs", "seeds", "heartbeat_interval", "calibration_windows"))
        check_counts(self, ("final_patience",), optional=True)
        self.space = tuple(self.space)
        names = [p.name for p in self.space]
        if len(set(names)) != len(names):
            raise ValueError(f"HPOConfig.space: duplicate parameter names {names}")

    @property
    def study_name(self) -> str:
        return self.study or f"{self.model}-{self.dataset}"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["space"] = [dataclasses.asdict(p) for p in self.space]
        return d


def storage_url(cfg: HPOConfig) -> str:
    """``cfg.storage`` or, by default, a SQLite file ``study.db`` in ``cfg.out``."""
    if cfg.storage:
        return cfg.storage
    path = Path(cfg.out).resolve() / "study.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def _optuna():
    try:
        import optuna
    except ImportError as e:
        raise MissingExtraError("harcore hpo needs Optuna: pip install 'harcore[hpo]'") from e
    # Heartbeats, stale-trial failing and its retry callback are marked experimental; they are the
    # documented way to recover a killed worker's trial, so their warnings say nothing to a user.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def open_study(cfg: HPOConfig):
    """Create or load the study ``cfg.study_name`` on the storage (heartbeats on: a killed worker's
    RUNNING trial goes FAIL after ``grace_period`` seconds and its parameters are re-queued once)."""
    optuna = _optuna()
    url = storage_url(cfg)
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else None
    retry_cls = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or \
        optuna.storages.RetryFailedTrialCallback
    retry = retry_cls(max_retry=1)
    kwargs: dict[str, Any] = dict(heartbeat_interval=cfg.heartbeat_interval,
                                  grace_period=cfg.grace_period or 2 * cfg.heartbeat_interval)
    import inspect

    if "heartbeat_stale_trial_callback" in inspect.signature(optuna.storages.RDBStorage.__init__).parameters:
        kwargs["heartbeat_stale_trial_callback"] = retry
    else:
        kwargs["failed_trial_callback"] = retry
    from sqlalchemy.exc import IntegrityError, OperationalError

    # Workers started together on a fresh database race to create its schema: the loser's insert of the
    # schema version fails (IntegrityError) or its CREATE TABLE meets the winner's (OperationalError). By the
    # next try the schema is there and is only read, so a few retries make simultaneous starts safe.
    for attempt in range(_OPEN_TRIES):
        try:
            storage = optuna.storages.RDBStorage(url, engine_kwargs=engine_kwargs, **kwargs)
            break
        except (IntegrityError, OperationalError) as e:
            if attempt == _OPEN_TRIES - 1:
                raise HarcoreError(f"--storage {url!r}: cannot open the Optuna storage ({e})") from e
            time.sleep(0.5 * (attempt + 1))
        except Exception as e:  # a bad URL or an unreachable database: name the storage
            raise HarcoreError(f"--storage {url!r}: cannot open the Optuna storage ({e})") from e
    pruner = optuna.pruners.MedianPruner(n_startup_trials=cfg.pruner_startup_trials,
                                         n_warmup_steps=cfg.pruner_warmup_steps)
    study = optuna.create_study(storage=storage, study_name=cfg.study_name, direction="maximize",
                                pruner=pruner, load_if_exists=True)
    return study


def count_trials(study: Any) -> dict[str, int]:
    """Trials per state name (COMPLETE, PRUNED, RUNNING, WAITING, FAIL) and ``finished`` = COMPLETE + PRUNED."""
    counts: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        counts[t.state.name] = counts.get(t.state.name, 0) + 1
    counts["finished"] = counts.get("COMPLETE", 0) + counts.get("PRUNED", 0)
    return counts


def load_data(cfg: HPOConfig):
    """The dataset split by subject; when its protocol has no validation split, ``val_fraction`` of the
    training subjects become the validation subjects (seeded by ``master_seed``)."""
    ds = cfg.load_data(cfg.master_seed)
    if ds.val is None:
        raise HarcoreError(f"dataset {cfg.dataset!r}: its protocol gives no validation split; HPO selects on "
                           "validation subjects only (pass val_fraction / val_subjects in the dataset options)")
    return ds


def dropout_key(model: str) -> str | None:
    from harcore import models

    keys = models.info(model)["config"]
    return next((k for k in _DROPOUT_KEYS if k in keys), None)


def _split_params(cfg: HPOConfig, params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Trial parameters -> (TrainConfig fields, model options)."""
    from harcore.train import TrainConfig

    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    tr, mo = {}, dict(cfg.model_options)
    dkey = dropout_key(cfg.model)
    for k, v in params.items():
        if k == "dropout" and dkey is not None:
            mo[dkey] = v
        elif k in train_fields:
            tr[k] = v
        else:
            mo[k] = v
    return tr, mo


def _space_for(cfg: HPOConfig) -> tuple[Param, ...]:
    if dropout_key(cfg.model) is None and "dropout" not in cfg.model_options:
        # A model without a dropout option (e.g. the CNN) searches the training parameters only.
        return tuple(p for p in cfg.space if p.name != "dropout")
    return cfg.space


def _train_config(cfg: HPOConfig, params: dict[str, Any], *, epochs: int, patience: int | None, seed: int,
                  checkpoint_dir: str | None = None):
    from harcore.train import TrainConfig

    tr, _ = _split_params(cfg, params)
    return TrainConfig.mu_biconvlstm(epochs=epochs, early_stopping_patience=patience, batch_size=cfg.batch_size,
                                     class_weights=cfg.class_weights, seed=seed, num_threads=cfg.threads,
                                     progress=False, checkpoint_dir=checkpoint_dir, **tr)


def _build(cfg: HPOConfig, ds: Any, params: dict[str, Any], seed: int):
    import torch

    from harcore import models

    _, mo = _split_params(cfg, params)
    c, t = ds.train.x.shape[1:]
    torch.manual_seed(seed)
    return models.create(cfg.model, in_channels=int(c), seq_len=int(t), num_classes=len(ds.classes), **mo)


def _seed_for(base: int, *salt: int) -> int:
    return int(np.random.SeedSequence([int(base), *map(int, salt)]).generate_state(1)[0] & 0x7FFFFFFF)


class _Heartbeat:
    """Records the trial's heartbeat every ``interval`` seconds from a thread, as ``study.optimize`` does
    (the ask-and-tell interface does not), so a long epoch is never mistaken for a dead worker."""

    def __init__(self, storage: Any, trial_id: int, interval: int):
        self._storage, self._id, self._interval = storage, trial_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._storage.record_heartbeat(self._id)
            except Exception:  # a transient database error must not kill the training thread
                pass

    def __enter__(self) -> "_Heartbeat":
        self._storage.record_heartbeat(self._id)
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


def _fail_orphans(study: Any, cfg: HPOConfig) -> None:
    """Fail RUNNING trials without an owner tag older than the grace period: a worker killed between
    ``ask`` and its trial's first heartbeat, or a trial row whose creation the storage retried after a
    lock timeout (SQLite under contention), has no heartbeat, so ``fail_stale_trials`` never fails it."""
    import datetime

    from optuna.exceptions import UpdateFinishedTrialError
    from optuna.trial import TrialState

    grace = datetime.timedelta(seconds=cfg.grace_period or 2 * cfg.heartbeat_interval)
    now = datetime.datetime.now()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if "worker" not in t.user_attrs and t.datetime_start is not None and now - t.datetime_start > grace:
            try:
                study._storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL)
            except UpdateFinishedTrialError:
                pass


@dataclass
class StudyOutcome:
    """What :func:`run_study` leaves behind: the counts, this worker's own trials and the best trial."""

    study_name: str
    storage: str
    counts: dict[str, int]
    ran: list[int]
    best_params: dict[str, Any] | None
    best_value: float | None
    best_trial: int | None


def run_study(cfg: HPOConfig, ds: Any = None, *, log: Callable[[str], None] | None = None,
              poll_s: float | None = None) -> StudyOutcome:
    """Run trials until the study holds ``cfg.trials`` finished trials (module docstring: budget rule).

    Each trial trains ``cfg.epochs`` epochs (early stopping ``cfg.patience``) on the training subjects and
    reports the validation macro-F1 after every epoch; the median pruner stops unpromising trials. The
    objective is the best validation macro-F1 of the trial: test subjects are never seen here.
    """
    optuna = _optuna()
    from harcore.train import fit

    log = log or (lambda s: None)
    ds = load_data(cfg) if ds is None else ds
    study = open_study(cfg)
    storage = study._storage
    space = _space_for(cfg)
    poll = poll_s if poll_s is not None else min(5.0, cfg.heartbeat_interval)
    ran: list[int] = []
    study.set_user_attr("harcore", {"format": FORMAT, "model": cfg.model, "dataset": cfg.dataset,
                                    "model_options": cfg.model_options, "epochs": cfg.epochs,
                                    "patience": cfg.patience, "space": [dataclasses.asdict(p) for p in space]})
    while True:
        optuna.storages.fail_stale_trials(study)
        _fail_orphans(study, cfg)
        n = count_trials(study)
        if n["finished"] >= cfg.trials:
            break
        if n["finished"] + n.get("RUNNING", 0) >= cfg.trials:
            time.sleep(poll)  # another worker's trial will finish, or go stale and be failed
            continue
        # Reseeding per trial keeps TPE reproducible yet gives a resumed or second worker new draws. The
        # constant liar counts another worker's running trials as poor results, so concurrent workers do not
        # draw next to each other (Optuna's advice for distributed TPE); one worker never sees a running trial
        # when it asks (stale ones are failed above), so its draws are unchanged.
        study.sampler = optuna.samplers.TPESampler(seed=_seed_for(cfg.sampler_seed, sum(n.values())),
                                                   constant_liar=True)
        trial = study.ask()
        # Heartbeat first, then the owner tag: a trial without the tag has no heartbeat either, and is
        # failed by _fail_orphans; one with it is failed by fail_stale_trials once its heartbeat stops.
        storage.record_heartbeat(trial._trial_id)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        others = [t for t in study.get_trials(deepcopy=False) if t.number < trial.number
                  and t.state.name in ("COMPLETE", "PRUNED", "RUNNING")]
        if len(others) >= cfg.trials:
            trial.set_user_attr("over_budget", True)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            continue
        params = {p.name: p.suggest(trial) for p in space}
        seed = _seed_for(cfg.sampler_seed, 1, trial.number)
        trial.set_user_attr("seed", seed)

        pruned_at: list[int] = []

        def report(rec: dict[str, Any], trial=trial, pruned_at=pruned_at) -> bool:
            f1 = rec.get("val_macro_f1")
            if f1 is None:
                return False
            trial.report(float(f1), int(rec["epoch"]))
            if trial.should_prune():
                pruned_at.append(int(rec["epoch"]))
                return True
            return False

        log(f"trial {trial.number}: {params}")
        with _Heartbeat(storage, trial._trial_id, cfg.heartbeat_interval):
            try:
                net = _build(cfg, ds, params, seed)
                res = fit(net, ds.train, ds.val,
                          _train_config(cfg, params, epochs=cfg.epochs, patience=cfg.patience, seed=seed),
                          on_epoch_end=report)
            except BaseException:
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                raise
        trial.set_user_attr("epochs_run", res.epochs_run)
        best = res.best_val_macro_f1
        pruned = bool(pruned_at)
        if best is None or not math.isfinite(best):
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        elif pruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, best)
        ran.append(trial.number)
        log(f"trial {trial.number}: {'pruned' if pruned else 'done'}, best val macro-F1 {best:.4f} "
            f"after {res.epochs_run} epoch(s)")
    counts = count_trials(study)
    try:
        bt = study.best_trial
        best_params, best_value, best_num = dict(bt.params), float(bt.value), bt.number
    except ValueError:  # no COMPLETE trial (all pruned)
        best_params = best_value = best_num = None
    return StudyOutcome(cfg.study_name, storage_url(cfg), counts, ran, best_params, best_value, best_num)






def final_training(cfg: HPOConfig, params: dict[str, Any], ds: Any = None, *,
                   log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Train with ``params`` for ``cfg.final_epochs`` (patience ``cfg.final_patience``, best weights on the
    validation subjects) once per seed of ``seeds_from_master(cfg.master_seed, cfg.seeds)``, then evaluate
    the test subjects once per seed, in float and (``cfg.int8``) as the int8 model of PTQ on the first
    ``cfg.calibration_windows`` training windows, simulated on the C++ kernels. Each seed's result is written atomically to
    ``out/final/seed-<seed>.json`` as it finishes and is reused by a rerun (each seed's training also
    checkpoints every epoch and resumes)."""
    from harcore.train import evaluate, fit, seeds_from_master

    log = log or (lambda s: None)
    ds = load_data(cfg) if ds is None else ds
    out = Path(cfg.out) / "final"
    runs = []
    for seed in seeds_from_master(cfg.master_seed, cfg.seeds):
        path = out / f"seed-{seed}.json"
        key = {"params": params, "model": cfg.model, "model_options": cfg.model_options, "dataset": cfg.dataset,
               "epochs": cfg.final_epochs, "patience": cfg.final_patience,
               "int8": cfg.calibration_windows if cfg.int8 else None}
        if path.exists():
            rec = json.loads(path.read_text())
            if rec.get("key") == key:
                runs.append(rec)
                continue
        fresh_checkpoints(out / f"seed-{seed}", key)
        net = _build(cfg, ds, params, seed)
        tcfg = _train_config(cfg, params, epochs=cfg.final_epochs, patience=cfg.final_patience, seed=seed,
                             checkpoint_dir=str(out / f"seed-{seed}"))
        t0 = time.perf_counter()
        res = fit(net, ds.train, ds.val, tcfg, resume=True)
        secs = time.perf_counter() - t0
        tm = evaluate(net, ds.test)
        rec = {"key": key, "seed": seed, "test_macro_f1": tm.macro_f1, "test_accuracy": tm.accuracy,
               "best_epoch": res.best_epoch, "best_val_macro_f1": res.best_val_macro_f1,
               "epochs_run": res.epochs_run, "train_seconds": secs}
        int8_note = ""
        if cfg.int8:
            from harcore import quant

            qm, why = quant.ptq_metrics(net, ds.train.x[: cfg.calibration_windows], ds.test.x, ds.test.y,
                                        len(ds.classes))
            if qm is None:
                rec["int8_error"] = why
                int8_note = f", no int8 figure ({why})"
            else:
                rec.update(int8_test_macro_f1=qm.macro_f1, int8_test_accuracy=qm.accuracy)
                int8_note = f", int8 {qm.macro_f1:.4f}"
        atomic_write_text(path, json.dumps(rec, indent=2))
        log(f"seed {seed}: test macro-F1 {tm.macro_f1:.4f}{int8_note}, accuracy {tm.accuracy:.4f} "
            f"(best epoch {res.best_epoch}/{res.epochs_run})")
        runs.append(rec)

    def ms(vals: Sequence[float]) -> dict[str, float]:
        return {"mean": statistics.fmean(vals), "std": statistics.stdev(vals) if len(vals) > 1 else 0.0}

    res = {"seeds": [r["seed"] for r in runs], "runs": runs,
           "test_macro_f1": ms([r["test_macro_f1"] for r in runs]),
           "test_accuracy": ms([r["test_accuracy"] for r in runs])}
    if cfg.int8 and all("int8_test_macro_f1" in r for r in runs):
        res["int8_test_macro_f1"] = ms([r["int8_test_macro_f1"] for r in runs])
        res["int8_test_accuracy"] = ms([r["int8_test_accuracy"] for r in runs])
    return res


SELECTION_NOTE = ("Selection on validation subjects only: every trial's objective, the pruner and early "
                  "stopping use the validation macro-F1; test subjects are evaluated once per seed, after "
                  "the final training with the best trial's parameters.")


def _markdown(cfg: HPOConfig, outcome: StudyOutcome, final: dict[str, Any] | None, ds: Any) -> str:
    lines = [f"# HPO: {cfg.model} on {cfg.dataset}", "",
             f"Study `{outcome.study_name}` on `{outcome.storage}`: {outcome.counts.get('COMPLETE', 0)} complete, "
             f"{outcome.counts.get('PRUNED', 0)} pruned, {outcome.counts.get('FAIL', 0)} failed trial(s) "
             f"(budget {cfg.trials} finished). TPE (seed {cfg.sampler_seed}), median pruner; "
             f"{cfg.epochs} epochs per trial, patience {cfg.patience}.", "",
             f"Splits: train {len(ds.train.y)}, validation {len(ds.val.y)}, test {len(ds.test.y)} windows.", "",
             SELECTION_NOTE, ""]
    if outcome.best_params is not None:
        lines += [f"Best trial {outcome.best_trial}: validation macro-F1 {100 * outcome.best_value:.2f}", "",
                  "| parameter | value |", "|---|---|"]
        lines += [f"| {k} | {v:.6g} |" for k, v in outcome.best_params.items()]
        lines.append("")
    if final is not None:
        f1, acc = final["test_macro_f1"], final["test_accuracy"]
        lines += [f"## Final training ({cfg.final_epochs} epochs, patience {cfg.final_patience}, "
                  f"{len(final['seeds'])} seeds from master seed {cfg.master_seed})", "",
                  "| seed | test macro-F1 | int8 macro-F1 | test accuracy | best epoch | epochs run |",
                  "|---|---|---|---|---|---|"]
        q8 = final.get("int8_test_macro_f1")
        lines += [f"| {r['seed']} | {100 * r['test_macro_f1']:.2f} | "
                  f"{'%.2f' % (100 * r['int8_test_macro_f1']) if q8 else '–'} | {100 * r['test_accuracy']:.2f} | "
                  f"{r['best_epoch']} | {r['epochs_run']} |" for r in final["runs"]]
        lines += ["", f"**Test macro-F1 {100 * f1['mean']:.2f} ± {100 * f1['std']:.2f}**, accuracy "
                  f"{100 * acc['mean']:.2f} ± {100 * acc['std']:.2f} (mean ± sample std over seeds)."]
        if q8:
            lines.append(f"int8 (PTQ on {cfg.calibration_windows} training windows, simulated on the C++ kernels): "
                         f"macro-F1 {100 * q8['mean']:.2f} ± {100 * q8['std']:.2f}, "
                         f"float − int8 {100 * (f1['mean'] - q8['mean']):+.2f} points on average.")
        lines.append("")
    return "\n".join(lines)


def run(cfg: HPOConfig, *, final: bool = True, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The whole protocol: :func:`run_study`, then (``final``) :func:`final_training` with the best
    parameters; writes ``hpo.json`` and ``summary.md`` in ``cfg.out`` and returns the JSON's content."""
    ds = load_data(cfg)
    outcome = run_study(cfg, ds, log=log)
    fin = None
    if final:
        if outcome.best_params is None:
            raise HarcoreError(f"study {outcome.study_name!r}: no complete trial to take parameters from "
                               f"({outcome.counts})")
        fin = final_training(cfg, outcome.best_params, ds, log=log)
    study = open_study(cfg)
    trials = [{"number": t.number, "state": t.state.name, "value": t.value, "params": t.params,
               "epochs": len(t.intermediate_values), "user_attrs": t.user_attrs}
              for t in study.get_trials(deepcopy=False)]
    result = {"format": FORMAT, "config": cfg.to_dict(), "storage": outcome.storage, "study": outcome.study_name,
              "counts": outcome.counts, "best_trial": outcome.best_trial, "best_params": outcome.best_params,
              "best_val_macro_f1": outcome.best_value, "selection": SELECTION_NOTE, "trials": trials, "final": fin}
    out = Path(cfg.out)
    atomic_write_text(out / "hpo.json", json.dumps(result, indent=2, default=str))
    atomic_write_text(out / "summary.md", _markdown(cfg, outcome, fin, ds))
    return result
