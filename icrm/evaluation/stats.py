"""Statistics every benchmark report shares: per-row scores, per-subset reports with 95%
bootstrap intervals, and the calibration of the judge's probabilities.

Bootstrap: 1,000 resamples of the rows (within each subset for section scores), the
percentile interval. Calibration, when the judging method gives probabilities: each
prediction is the probability the judge put on the correct answer; expected
calibration error (10 equal-width bins of confidence, Naeini et al. 2015, as in Guo et
al. 2017), Brier score, and the reliability curve for the plot.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import product
from typing import Any

__all__ = ["RowScore", "SubsetReport", "subset_report", "mean_score", "baseline_rows", "bootstrap", "percentile_interval", "calibration", "p_first_wins",
           "BOOTSTRAP_SAMPLES"]

BOOTSTRAP_SAMPLES = 1000
CONFIDENCE = 0.95
CALIBRATION_BINS = 10


@dataclass
class RowScore:
    """What one benchmark row scored.

    Attributes:
        id: the row's id.
        subset: the subset it is reported under.
        score: its contribution to the subset's accuracy (1 correct, 0 wrong, fractions
            where the benchmark gives them, e.g. 0.5 for a tie in RewardBench).
        tie: the judge called it a tie.
        parse_failure: a judgement of the row had no verdict.
        consistent: with both orders judged, whether they agreed (None otherwise).
        baseline: what "always pick the longer response" scores on it.
        p_correct: the probabilities the judge put on the correct answer (``logprob``).
        values: benchmark-specific figures of the row (RM-Bench: hard, normal, easy;
            under ``longer``, the same figures for the length baseline).
    """

    id: str
    subset: str
    score: float
    tie: bool = False
    parse_failure: bool = False
    consistent: bool | None = None
    baseline: float | None = None
    p_correct: list[float] = field(default_factory=list)
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class SubsetReport:
    """Per-subset figures.

    Attributes:
        n: rows with a score.
        accuracy: the mean row score.
        accuracy_ci: its 95% bootstrap interval.
        strict_accuracy: the share of rows fully correct (score 1).
        ties, parse_failures: row counts.
        length_baseline: the accuracy of always picking the longer response.
        position_consistency: share of rows whose two orders agreed (both orders only).
        rows: the rows, for section scores and their intervals.
    """

    n: int
    accuracy: float
    accuracy_ci: tuple[float, float]
    strict_accuracy: float
    ties: int
    parse_failures: int
    length_baseline: float | None
    position_consistency: float | None = None
    rows: list[RowScore] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, without the rows."""
        return {k: getattr(self, k) for k in ("n", "accuracy", "accuracy_ci", "strict_accuracy", "ties",
                                              "parse_failures", "length_baseline", "position_consistency")}


def subset_report(rows: Sequence[RowScore], rng: random.Random,
                  statistic: Callable[[Sequence[RowScore]], float] | None = None) -> SubsetReport:
    """Aggregate one subset's rows.

    Args:
        rows: the subset's rows (at least one).
        rng: the bootstrap's generator.
        statistic: the subset's accuracy from rows (default: the mean row score; a
            subset with its own official formula, e.g. RewardBench 2's Ties, passes it);
            the interval and the length baseline use it too.
    """
    statistic = statistic or mean_score
    consistency = [r.consistent for r in rows if r.consistent is not None]
    baseline = baseline_rows(rows)
    return SubsetReport(
        n=len(rows),
        accuracy=statistic(rows),
        accuracy_ci=bootstrap(rows, statistic, rng),
        strict_accuracy=statistics.fmean(r.score == 1.0 for r in rows),
        ties=sum(r.tie for r in rows),
        parse_failures=sum(r.parse_failure for r in rows),
        length_baseline=statistic(baseline) if len(baseline) == len(rows) else None,
        position_consistency=statistics.fmean(consistency) if consistency else None,
        rows=list(rows),
    )


def mean_score(rows: Sequence[RowScore]) -> float:
    """The mean row score."""
    return statistics.fmean(r.score for r in rows)


def baseline_rows(rows: Sequence[RowScore]) -> list[RowScore]:
    """The rows as the "always the longer response" baseline scores them: its score,
    and its figures from ``values["longer"]`` where a benchmark needs them (RM-Bench's
    levels, RewardBench 2's ratings)."""
    return [replace(r, score=r.baseline, values=r.values.get("longer", {})) for r in rows if r.baseline is not None]


def bootstrap(values: Sequence[Any], statistic: Callable[[Sequence[Any]], float], rng: random.Random,
              samples: int = BOOTSTRAP_SAMPLES) -> tuple[float, float]:
    """The 95% percentile interval of `statistic` over `samples` resamples of `values`."""
    return percentile_interval([statistic(rng.choices(values, k=len(values))) for _ in range(samples)])


def percentile_interval(estimates: Sequence[float]) -> tuple[float, float]:
    """The central 95% of bootstrap estimates."""
    ordered = sorted(estimates)
    return (ordered[int((1 - CONFIDENCE) / 2 * (len(ordered) - 1))], ordered[int((1 + CONFIDENCE) / 2 * (len(ordered) - 1))])


def calibration(p_correct: Sequence[float]) -> dict[str, Any] | None:
    """Calibration of predictions that each put probability p on the correct answer.

    The predicted answer is the correct one when p > 0.5; its confidence is max(p, 1-p).

    Returns:
        ``n``, ``ece`` (expected calibration error), ``brier`` (mean of (1 - p)²) and
        ``bins`` (per confidence bin: ``confidence``, ``accuracy``, ``n``), or None
        without predictions.

    >>> round(calibration([0.9, 0.8, 0.3, 0.6])["brier"], 4)
    0.175
    """
    if not p_correct:
        return None
    bins: list[list[tuple[float, bool]]] = [[] for _ in range(CALIBRATION_BINS)]
    for p in p_correct:
        confidence, correct = max(p, 1 - p), p > 0.5
        bins[min(int((confidence - 0.5) * 2 * CALIBRATION_BINS), CALIBRATION_BINS - 1)].append((confidence, correct))
    total = len(p_correct)
    table = [{"confidence": statistics.fmean(c for c, _ in b), "accuracy": statistics.fmean(a for _, a in b), "n": len(b)}
             for b in bins if b]
    ece = sum(abs(row["confidence"] - row["accuracy"]) * row["n"] / total for row in table)
    return {"n": total, "ece": ece, "brier": statistics.fmean((1 - p) ** 2 for p in p_correct), "bins": table}


def p_first_wins(distributions: Sequence[Mapping[str, float]]) -> float:
    """The expected RewardBench-2 score of the first answer from independent rating
    distributions: P(it is alone on top) + P(it ties k others on top) / (k + 1).

    >>> p_first_wins([{"9": 1.0}, {"5": 0.5, "9": 0.5}])
    0.75
    """
    support = sorted({float(k) for d in distributions for k in d})
    first, others = distributions[0], distributions[1:]
    expected = 0.0
    for value in support:
        p_first = sum(p for k, p in first.items() if float(k) == value)
        if not p_first:
            continue
        # For each other answer: below `value`, or equal to it.
        below = [sum(p for k, p in d.items() if float(k) < value) for d in others]
        equal = [sum(p for k, p in d.items() if float(k) == value) for d in others]
        for pattern in product((0, 1), repeat=len(others)):
            probability = 1.0
            for j, tied in enumerate(pattern):
                probability *= equal[j] if tied else below[j]
            expected += p_first * probability / (1 + sum(pattern))
    return expected
