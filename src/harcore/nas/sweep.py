"""Several searches in parallel with Ray — a beta1 sweep, seeds, backbones — each in its own run folder, then
the Pareto front (test macro-F1 vs MACs vs peak SRAM) and a sweep report.

Ray runs locally by default (``ray.init(num_cpus=parallel)``); ``address`` joins an existing cluster
(``ray.init(address=...)``). Every run is the full main job (:func:`harcore.nas.pipeline.run_job`) with one
torch thread, its console output in ``<run>/job.log``. Ray is an optional dependency: ``pip install 'harcore[ray]'``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from pathlib import Path
from typing import Any, Sequence

from harcore.errors import MissingExtraError

from .pipeline import JobConfig


def sweep_configs(base: JobConfig, beta1s: Sequence[float], seeds: Sequence[int],
                  backbones: Sequence[str]) -> list[JobConfig]:
    """One :class:`JobConfig` per (backbone, beta1, seed), each with its own run folder under ``base.out``."""
    out = []
    # absolute: a Ray worker's working folder is not the caller's (a cluster's, or one an earlier Ray started)
    folder = Path(base.out).resolve()
    for bb, b1, seed in itertools.product(backbones, beta1s, seeds):
        out.append(dataclasses.replace(base, backbone=bb, beta1=float(b1), seed=int(seed), progress=False,
                                       out=str(folder / f"{bb}_beta1-{b1:g}_seed{seed}")))
    return out


def _run_one(cfg_dict: dict[str, Any], resume: bool) -> dict[str, Any]:
    import io

    from rich.console import Console

    from .pipeline import run_job

    cfg = JobConfig(**cfg_dict)
    Path(cfg.out).mkdir(parents=True, exist_ok=True)
    buf = io.StringIO()
    try:
        res = run_job(cfg, resume=resume, console=Console(file=buf, width=160, color_system=None))
        summary = summarize(res)
    except Exception as e:  # noqa: BLE001 — reported as a failed run of the sweep
        summary = {"label": Path(cfg.out).name, "failed_stage": "job", "detail": f"{type(e).__name__}: {e}"}
    (Path(cfg.out) / "job.log").write_text(buf.getvalue())
    return summary


def summarize(res) -> dict[str, Any]:
    """The sweep's row for one job (or its first failed stage up to the float evaluation)."""
    cfg = res.config
    row: dict[str, Any] = {"label": Path(cfg.out).name, "backbone": cfg.backbone, "beta1": cfg.beta1,
                           "seed": cfg.seed, "run_dir": str(res.run_dir)}
    for name in ("data", "budget", "search", "derive", "finetune", "evaluate"):
        st = res.stages.get(name)
        if st is None or st.status != "ok":
            row.update(failed_stage=name, detail=st.detail if st else "not run")
            return row
    total = res.stages["derive"].data["total"]
    row.update(macro_f1=res.stages["evaluate"].data["metrics"]["macro_f1"], macs=total["macs"],
               params=total["params"], peak_sram=total["peak_sram"], flash=total["flash"],
               fits=res.stages["fit"].status if "fit" in res.stages else "-", arch=res.arch.summary().split("| ", 1)[-1],
               search_seconds=res.stages["search"].data.get("seconds"),
               stages={k: v.status for k, v in res.stages.items()})
    return row


def _import_ray():
    try:
        import ray
    except ImportError:
        raise MissingExtraError("a sweep (harcore search --sweep-beta1 / --seeds / --backbones) runs its searches "
                                "in parallel through Ray, which is not installed: pip install 'harcore[ray]'") from None
    return ray


def start_ray(ray, parallel: int, address: str | None) -> bool:
    """Join the cluster at ``address``, or start a local Ray of ``parallel`` single-threaded workers, unless one
    is running already; ``True`` when this call started it (the caller shuts it down)."""
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=parallel, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}})
    return True


def run_sweep(base: JobConfig, *, beta1s: Sequence[float], seeds: Sequence[int] = (0,),
              backbones: Sequence[str] | None = None, parallel: int = 2, address: str | None = None,
              resume: bool = False, console=None) -> dict[str, Any]:
    """Run the sweep through Ray and write ``sweep.md`` / ``sweep.html`` / ``sweep.json`` into ``base.out``.

    MissingExtraError when Ray is not installed (the ``ray`` extra)."""
    ray = _import_ray()

    from .report import write_sweep_report

    if parallel < 1:
        raise ValueError(f"--parallel must be >= 1, got {parallel}")
    cfgs = sweep_configs(base, beta1s, seeds, backbones or [base.backbone])
    folder = Path(base.out)
    folder.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    started_here = start_ray(ray, parallel, address)
    try:
        remote = ray.remote(num_cpus=1)(_run_one)
        refs = {remote.remote(dataclasses.asdict(c), resume): c for c in cfgs}
        pending, results = list(refs), []
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            r = ray.get(done[0])
            results.append(r)
            if console is not None:
                what = (f"macro-F1 {r['macro_f1']:.4f}, {r['macs']:,} MACs, {r['peak_sram']:,} B SRAM"
                        if "macro_f1" in r else f"FAILED at {r['failed_stage']}: {r['detail']}")
                console.print(f"sweep: {r['label']} done ({len(results)}/{len(cfgs)}): {what}")
    finally:
        if started_here:
            ray.shutdown()
    seconds = time.perf_counter() - t0
    rows = sorted([r for r in results if "macro_f1" in r], key=lambda r: r["label"])
    fails = [{"label": r["label"], "stage": r["failed_stage"], "detail": r["detail"]} for r in results
             if "macro_f1" not in r]
    md, ht = write_sweep_report(folder, rows, fails, seconds)
    out = {"runs": rows, "failures": fails, "seconds": seconds, "report": [str(md), str(ht)]}
    (folder / "sweep.json").write_text(json.dumps(out, indent=2, default=str))
    return out
