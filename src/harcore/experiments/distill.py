"""``harcore distill``: train (or load) a teacher, distill a student with the KD loss of harcore.train
(α·T²·KL(student/T ‖ teacher/T) + (1−α)·CE), then quantize the student to int8 and measure it.

Defaults: the CNN/distillation paper's teacher (``cnn``) and student (``cnn_student``) with its training
setting (``TrainConfig.cnn_distillation``); any zoo model can be the student (``sftnas`` with ``arch=`` for
a searched architecture). Selection (early stopping, kept weights) on validation subjects only; the test
subjects are evaluated once per model at the end.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from harcore.errors import CheckpointError, HarcoreError
from harcore.runstore import atomic_write_text
from harcore.train.recipe import TrainingRecipe, check_counts

FORMAT = "harcore.distill/1"


@dataclass
class DistillConfig(TrainingRecipe):
    """A distillation job: the data and training fields of :class:`harcore.train.TrainingRecipe`
    (``epochs``: the student's) and the teacher/student pair, KD loss and int8 step."""

    out: str = "runs/distill"
    teacher: str = "cnn"
    teacher_options: dict[str, Any] = field(default_factory=dict)
    teacher_checkpoint: str | None = None
    student: str = "cnn_student"
    student_options: dict[str, Any] = field(default_factory=dict)
    alpha: float | None = None
    temperature: float | None = None
    teacher_epochs: int = 20
    seed: int = 0
    int8: bool = True
    calibration_windows: int = 512

    def __post_init__(self) -> None:
        super().__post_init__()
        check_counts(self, ("teacher_epochs", "calibration_windows"))


def run_distill(cfg: DistillConfig, *, log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Teacher -> KD student -> int8 student. Writes ``distill.json``, ``summary.md`` and ``student.hq8``
    in ``cfg.out``; teacher and student checkpoint every epoch there and resume."""
    import torch

    from harcore import cost, models, quant
    from harcore.train import DEFAULT_KD_ALPHA, DEFAULT_KD_TEMPERATURE, TrainConfig, evaluate, fit, load_checkpoint

    log = log or (lambda s: None)
    out = Path(cfg.out)
    ds = cfg.load_data(cfg.seed)
    c, t = (int(v) for v in ds.train.x.shape[1:])
    k = len(ds.classes)
    alpha = DEFAULT_KD_ALPHA if cfg.alpha is None else cfg.alpha
    temp = DEFAULT_KD_TEMPERATURE if cfg.temperature is None else cfg.temperature

    def tcfg(epochs: int, where: str) -> TrainConfig:
        return TrainConfig.cnn_distillation(epochs=epochs, early_stopping_patience=cfg.patience,
                                            batch_size=cfg.batch_size, seed=cfg.seed, num_threads=cfg.threads,
                                            progress=False, checkpoint_dir=str(out / where))

    torch.manual_seed(cfg.seed)
    teacher = models.create(cfg.teacher, in_channels=c, seq_len=t, num_classes=k, **cfg.teacher_options)
    t0 = time.perf_counter()
    if cfg.teacher_checkpoint:
        try:
            teacher.load_state_dict(load_checkpoint(cfg.teacher_checkpoint)["model"])
        except (ValueError, KeyError, RuntimeError, OSError) as e:
            raise CheckpointError(f"--teacher-checkpoint {cfg.teacher_checkpoint}: cannot load it into "
                                  f"{cfg.teacher} ({e})") from e
        log(f"teacher {cfg.teacher}: loaded {cfg.teacher_checkpoint}")
    else:
        fit(teacher, ds.train, ds.val, tcfg(cfg.teacher_epochs, "teacher"), resume=True)
    teacher_s = time.perf_counter() - t0
    teacher.eval()

    torch.manual_seed(cfg.seed)
    student = models.create(cfg.student, in_channels=c, seq_len=t, num_classes=k, **cfg.student_options)
    t0 = time.perf_counter()
    res = fit(student, ds.train, ds.val, tcfg(cfg.epochs, "student"), teacher=teacher, kd_alpha=alpha,
              kd_temperature=temp, resume=True)
    student_s = time.perf_counter() - t0
    student.eval()

    def row(net: torch.nn.Module, secs: float) -> dict[str, Any]:
        m = evaluate(net, ds.test)
        p = cost.profile(net, (c, t)).total
        return {"test_accuracy": m.accuracy, "test_macro_f1": m.macro_f1, "params": p.params, "macs": p.macs,
                "int8_flash": p.flash, "peak_sram": p.peak_sram, "fp32_bytes": 4 * p.params, "train_seconds": secs}

    result: dict[str, Any] = {"format": FORMAT, "config": asdict(cfg), "kd_alpha": alpha, "kd_temperature": temp,
                              "teacher": row(teacher, teacher_s), "student": row(student, student_s),
                              "student_best_epoch": res.best_epoch, "student_int8": None}
    if cfg.int8:
        g = quant.quantize(student, ds.train.x[: cfg.calibration_windows])
        g.save(str(out / "student.hq8"))
        m = quant.evaluate(g, ds.test.x, ds.test.y, k)
        result["student_int8"] = {"test_accuracy": m.accuracy, "test_macro_f1": m.macro_f1,
                                  "file": str(out / "student.hq8"),
                                  "file_bytes": (out / "student.hq8").stat().st_size}
    atomic_write_text(out / "distill.json", json.dumps(result, indent=2))
    lines = [f"# Distillation: {cfg.teacher} -> {cfg.student} on {cfg.dataset}", "",
             f"KD loss α={alpha}, T={temp}. Selection on validation subjects only; test subjects evaluated once "
             "per model.", "", "| model | params | MACs | int8 flash B | test accuracy % | test macro-F1 % |",
             "|---|---|---|---|---|---|"]
    for name, r in (("teacher " + cfg.teacher, result["teacher"]), ("student " + cfg.student, result["student"])):
        lines.append(f"| {name} | {r['params']:,} | {r['macs']:,} | {r['int8_flash']:,} | "
                     f"{100 * r['test_accuracy']:.2f} | {100 * r['test_macro_f1']:.2f} |")
    if result["student_int8"]:
        q = result["student_int8"]
        s = result["student"]
        lines.append(f"| student int8 | {s['params']:,} | {s['macs']:,} | {s['int8_flash']:,} | "
                     f"{100 * q['test_accuracy']:.2f} | {100 * q['test_macro_f1']:.2f} |")
    atomic_write_text(out / "summary.md", "\n".join(lines) + "\n")
    log("\n".join(lines))
    return result


def check_models(cfg: DistillConfig) -> None:
    from harcore import models

    for what, name in (("--teacher", cfg.teacher), ("--student", cfg.student)):
        if name.lower() not in models.names():
            raise HarcoreError(f"{what} {name!r}: not a zoo model; available: {', '.join(models.names())}")
