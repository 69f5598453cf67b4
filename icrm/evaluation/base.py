"""The benchmark seam: what a benchmark is to the shared runner.

A `Benchmark` reads and checks its rows, says which judgements a row needs, scores a
row from those judgements the official way, and aggregates subsets into its sections
and overall score. The runner (`icrm.evaluation.runner`) does the rest for every
benchmark: resumable rows, the run fingerprint, progress, bootstrap intervals,
calibration, ``summary.json``, the printed table and the plot. A new benchmark is one
new module with one `Benchmark` subclass, registered in `icrm.evaluation.BENCHMARKS`.
"""

from __future__ import annotations

import random
import statistics
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from ..batch import BadRow, read_rows
from ..errors import InputError
from ..rm_types import RMType
from .stats import BOOTSTRAP_SAMPLES, RowScore, SubsetReport, percentile_interval

__all__ = ["Benchmark", "Judgement", "Records", "order_preferences", "require_fields", "texts", "text", "longer"]

# The judgements of one row, by tag: each a result row as `icrm.scoring.result_row` writes it.
Records = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Judgement:
    """One judgement a row needs.

    Attributes:
        tag: unique within the row (the result row's id is ``<row id>:<tag>``).
        item: what the judge gets: its conversation(s) (pairwise: the correct or chosen
            response in A, as given; the run's position places it), and any context.
    """

    tag: str
    item: dict[str, Any]


class Benchmark(ABC):
    """One benchmark, scored as its official code scores it.

    Attributes:
        name: the ``icrm eval NAME`` name.
        title: how reports name it.
        hub_dataset, hub_split: where ``--dataset`` loads it from by default.
        official: the rm types whose protocol here is the benchmark's official one
            (reports label the others as icrm's addition).
        overall_label: how the table names the overall score.
        fixed_position: the pairwise placement the benchmark's protocol fixes
            (JudgeBench: ``both``), else None for the run's own.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    hub_dataset: ClassVar[str | None] = None
    hub_split: ClassVar[str] = "test"
    official: ClassVar[tuple[str, ...]] = ("individual", "pairwise")
    overall_label: ClassVar[str] = "Overall"
    fixed_position: ClassVar[str | None] = None

    def is_official(self, subset: str) -> bool:
        """Whether a subset counts toward the benchmark's sections (else "Other")."""
        return True

    # -- rows ----------------------------------------------------------------------------

    def read(self, source: str, split: str) -> Iterator[dict[str, Any]]:
        """The raw rows of a file or hub dataset (JSON, JSONL, Parquet)."""
        for row in read_rows(source, split):
            if isinstance(row, BadRow):  # a benchmark must be whole: stop before any judgement
                raise InputError(row.message)
            yield row

    @abstractmethod
    def check(self, row: dict[str, Any], where: str, source: str) -> dict[str, Any]:
        """The row, checked (and completed, e.g. with its domain), or an `InputError`
        naming `where` and the field."""

    def row_id(self, row: Mapping[str, Any]) -> str:
        """The row's id."""
        return str(row["id"])

    def subset(self, row: Mapping[str, Any]) -> str:
        """The subset a row is reported under."""
        return str(row["subset"])

    # -- judging and scoring -------------------------------------------------------------

    @abstractmethod
    def judgements(self, row: Mapping[str, Any], rm_type: RMType) -> list[Judgement]:
        """The judgements `row` needs from a judge of `rm_type`."""

    @abstractmethod
    def score(self, row: Mapping[str, Any], records: Records, rm_type: RMType) -> RowScore:
        """The row's score from its judgements' records, the official way."""

    def aggregate(self, reports: Mapping[str, SubsetReport], rm_type: RMType) -> dict[str, float]:
        """Section scores and ``overall`` from the subsets (default: overall = the mean
        of the subsets, as RewardBench 2 and RM-Bench report it)."""
        return {"overall": statistics.fmean(r.accuracy for r in reports.values())} if reports else {}

    def subset_accuracy(self, name: str, rows: Sequence[RowScore], rm_type: RMType) -> float:
        """A subset's official accuracy from its rows (default: the mean row score)."""
        return statistics.fmean(r.score for r in rows)

    def section_intervals(self, reports: Mapping[str, SubsetReport], rm_type: RMType,
                          rng: random.Random) -> dict[str, tuple[float, float]]:
        """95% bootstrap intervals of every section score, resampling rows within each
        subset (1,000 resamples, the percentile interval)."""
        draws = []
        for _ in range(BOOTSTRAP_SAMPLES):
            resampled = {}
            for name, report in reports.items():
                rows = rng.choices(report.rows, k=len(report.rows))
                accuracy = self.subset_accuracy(name, rows, rm_type)
                resampled[name] = SubsetReport(len(rows), accuracy, (accuracy, accuracy), 0.0, 0, 0, None, rows=rows)
            draws.append(self.aggregate(resampled, rm_type))
        return {section: percentile_interval([d[section] for d in draws]) for section in (draws[0] if draws else {})}

    def sections(self, rm_type: RMType) -> list[tuple[str, list[str] | None]]:
        """How the table groups subsets: (section, its subsets or None for all)."""
        return [("overall", None)]


def order_preferences(rm_type: RMType, record: Mapping[str, Any]) -> list[float | None]:
    """How each order of a pairwise judgement (the preferred response in A as given)
    ranks A over B: 1.0 A, 0.0 B, 0.5 a tie, None no verdict — one value, or two when
    both orders were judged (``order_verdicts``, each told in the given orientation)."""
    orders = record.get("order_verdicts") or {"AB": record.get(rm_type.verdict_key)}
    return [rm_type.prefers_chosen({"AB": verdict})[0] for verdict in orders.values()]


def texts(row: Mapping[str, Any], field: str, where: str, count: int | None = None) -> list[str]:
    """``row[field]`` as a non-empty list of strings (`count` of them when given).

    Raises:
        InputError: otherwise, naming `where` and the field.
    """
    value = row.get(field)
    if not isinstance(value, list) or not value or not all(isinstance(t, str) for t in value) \
            or (count is not None and len(value) != count):
        size = f"{count} " if count is not None else "a non-empty list of "
        raise InputError(f"{where}: {field!r} must be {size}response strings, got {_describe(value)}")
    return value


def require_fields(row: Mapping[str, Any], fields: Sequence[str], where: str, title: str) -> None:
    """Check that `row` has every one of `fields`.

    Raises:
        InputError: naming the row (`where`), the missing fields and all that `title`'s rows need.
    """
    missing = [f for f in fields if f not in row]
    if missing:
        raise InputError(f"{where}: missing {', '.join(missing)} ({title} rows need {', '.join(fields)})")


def text(row: Mapping[str, Any], field: str, where: str) -> str:
    """``row[field]`` as a string.

    Raises:
        InputError: missing or not a string, naming `where` and the field.
    """
    value = row.get(field)
    if not isinstance(value, str):
        raise InputError(f"{where}: {field!r} must be a string, got {_describe(value)}")
    return value


def _describe(value: Any) -> str:
    if isinstance(value, list):
        return f"a list of {len(value)}"
    return "nothing" if value is None else type(value).__name__


def longer(first: str, second: str) -> float:
    """The "always pick the longer response" baseline for two responses: 1.0 when the
    first is longer, 0.0 when shorter, 0.5 for equal lengths."""
    if len(first) == len(second):
        return 0.5
    return float(len(first) > len(second))
