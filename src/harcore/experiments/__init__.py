"""harcore.experiments: the ``harcore bench`` runner over models x datasets x variants x seeds (resumable,
sequential or through Ray) and its report. It needs harcore.quant (the int8 macro-F1 column), so it sits
above quant, at the job level. See ``docs/hpo.md``."""

from .report import write_report
from .runner import BenchSpec, Run, execute, finished_result, run_bench, summarize

__all__ = ["BenchSpec", "Run", "execute", "finished_result", "run_bench", "summarize", "write_report"]
