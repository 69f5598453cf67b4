"""Evaluation of reward models on the benchmarks the field reports: RewardBench,
RewardBench 2, JudgeBench and RM-Bench, each scored as its official code scores it.

One module per benchmark (a `Benchmark` subclass, `icrm.evaluation.base`), one runner
for all (`icrm.evaluation.runner`). `BENCHMARKS` names them without importing them, so
the CLI lists them cheaply.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..registry import Registry

if TYPE_CHECKING:
    from ..spec import JudgeSpec as ICRM
    from .base import Benchmark

__all__ = ["BENCHMARKS", "get_benchmark", "evaluate", "format_table", "load_rows"]

# name -> "module:Class"; each with one line for `icrm eval --help`.
BENCHMARKS: Registry[type[Benchmark]] = Registry("benchmark", {
    "rewardbench": "icrm.evaluation.rewardbench:RewardBench",
    "rewardbench2": "icrm.evaluation.rewardbench2:RewardBench2",
    "judgebench": "icrm.evaluation.judgebench:JudgeBench",
    "rmbench": "icrm.evaluation.rmbench:RMBench",
}, summaries={
    "rewardbench": "RewardBench v1: chosen vs rejected, official sections",
    "rewardbench2": "RewardBench 2: one correct answer among several, ratings protocol",
    "judgebench": "JudgeBench: objective pairs, both orders, per source family",
    "rmbench": "RM-Bench: three styles per side, hard / normal / easy per domain",
})


def get_benchmark(name: str | Benchmark) -> Benchmark:
    """The benchmark called `name` (a `Benchmark` is returned as is).

    Raises:
        ConfigError: an unknown name, listing the known ones.
    """
    return name if not isinstance(name, str) else BENCHMARKS.get(name)()


async def evaluate(icrm: ICRM, benchmark: str | Benchmark = "rewardbench", **options: Any) -> tuple[dict[str, Any], Path]:
    """Run (or resume) an evaluation; see `icrm.evaluation.runner.evaluate` for the
    options, outputs and errors."""
    from .runner import evaluate as run

    return await run(icrm, get_benchmark(benchmark), **options)


def format_table(summary: dict[str, Any], benchmark: str | Benchmark | None = None) -> str:
    """A summary as its benchmark's text table (the benchmark read from the summary
    when not given)."""
    from .runner import format_table as table

    return table(summary, get_benchmark(benchmark or summary["meta"]["benchmark"]))


def load_rows(benchmark: str | Benchmark, **options: Any) -> list[dict[str, Any]]:
    """A benchmark's rows, checked; see `icrm.evaluation.runner.load_rows`."""
    from .runner import load_rows as load

    return load(get_benchmark(benchmark), **options)
