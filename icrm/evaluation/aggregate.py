"""RewardBench scoring and aggregation: pure functions over per-row outcomes.

Row outcomes follow RewardBench's generative script (allenai/reward-bench
``scripts/run_generative.py``): 1 when the judge prefers ``chosen``, 0 when it prefers
``rejected``, 0.5 for a tie or an unparseable answer. Section scores follow
``rewardbench.utils.calculate_scores_per_section``: each section is the mean of its
subsets' accuracies weighted by ``EXAMPLE_COUNTS`` (where ``math-prm`` is up-weighted to
equal the code subsets together); the overall score is the mean of the sections present.
Subsets outside ``SUBSET_MAPPING`` are reported apart ("Other"), never mixed in.
"""

from __future__ import annotations

import importlib.resources
import json
import random
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from functools import cache
from typing import Any

__all__ = [
    "Outcome",
    "SubsetReport",
    "rewardbench_constants",
    "pairwise_outcome",
    "preference_outcome",
    "individual_outcome",
    "length_baseline",
    "subset_report",
    "section_scores",
    "bootstrap_sections",
]

BOOTSTRAP_SAMPLES = 1000
CONFIDENCE = 0.95
PREFERS_A = ("A++", "A+")
PREFERS_B = ("B+", "B++")


@cache
def rewardbench_constants() -> tuple[dict[str, int], dict[str, list[str]]]:
    """RewardBench's ``EXAMPLE_COUNTS`` and ``SUBSET_MAPPING``, as generated from the
    ``rewardbench`` package by ``scripts/sync_rewardbench_constants.py``."""
    data = json.loads((importlib.resources.files("icrm") / "evaluation" / "rewardbench_constants.json").read_text())
    return data["EXAMPLE_COUNTS"], data["SUBSET_MAPPING"]


@dataclass(frozen=True)
class Outcome:
    """One row's result.

    Attributes:
        score: 1 chosen preferred, 0 rejected preferred, 0.5 tie or unparseable (the
            mean of both orders with ``--position both``).
        strict: 1 only when chosen was preferred (every judgement, for ``both``).
        tie: the judge called a tie (in any order).
        parse_failure: a judgement had no valid answer.
        consistent: ``--position both`` only: the two orders agreed.
    """

    score: float
    strict: float
    tie: bool
    parse_failure: bool
    consistent: bool | None = None


def preference_outcome(prefers_chosen: float | None) -> Outcome:
    """The outcome of one judgement of a pair, from how it ranks chosen over rejected
    (`icrm.rm_types.RMType.prefers_chosen`: 1.0, 0.0, 0.5 a tie, None unparseable).

    >>> preference_outcome(1.0).score, preference_outcome(0.5).tie, preference_outcome(None).score
    (1.0, True, 0.5)
    """
    if prefers_chosen is None:
        return Outcome(0.5, 0.0, False, True)
    if prefers_chosen == 0.5:
        return Outcome(0.5, 0.0, True, False)
    return Outcome(prefers_chosen, prefers_chosen, False, False)


def pairwise_outcome(choice: str | None, chosen_in_a: bool) -> Outcome:
    """The outcome of one pairwise judgement; `choice` None = unparseable.

    >>> pairwise_outcome("B+", chosen_in_a=False).score
    1.0
    >>> pairwise_outcome("A=B", chosen_in_a=True).score
    0.5
    """
    if choice is None:
        return Outcome(0.5, 0.0, False, True)
    if choice == "A=B":
        return Outcome(0.5, 0.0, True, False)
    prefers_chosen = (choice in PREFERS_A) == chosen_in_a
    return Outcome(float(prefers_chosen), float(prefers_chosen), False, False)


def combine_orders(first: Outcome, second: Outcome) -> Outcome:
    """``--position both``: the mean of the two orders; consistent when they agree."""
    return Outcome(
        score=(first.score + second.score) / 2,
        strict=float(first.strict == 1.0 and second.strict == 1.0),
        tie=first.tie or second.tie,
        parse_failure=first.parse_failure or second.parse_failure,
        consistent=first.score == second.score,
    )


def individual_outcome(chosen_score: int | None, rejected_score: int | None) -> Outcome:
    """The outcome of scoring both responses; a None score = unparseable.

    >>> individual_outcome(7, 7).tie
    True
    """
    if chosen_score is None or rejected_score is None:
        return Outcome(0.5, 0.0, False, True)
    if chosen_score == rejected_score:
        return Outcome(0.5, 0.0, True, False)
    better = chosen_score > rejected_score
    return Outcome(float(better), float(better), False, False)


def length_baseline(chosen: str, rejected: str) -> float:
    """The "always pick the longer response" baseline for one row (0.5 on equal length)."""
    if len(chosen) == len(rejected):
        return 0.5
    return float(len(chosen) > len(rejected))


@dataclass
class SubsetReport:
    """Per-subset figures.

    Attributes:
        n: rows with an outcome.
        accuracy: mean row score (ties and unparseable answers count 0.5).
        accuracy_ci: 95% bootstrap interval of `accuracy` (percentile method).
        strict_accuracy: ties and unparseable answers count 0.
        ties, parse_failures: row counts.
        length_baseline: accuracy of always picking the longer response.
        position_consistency: share of rows whose two orders agreed (``both`` only).
    """

    n: int
    accuracy: float
    accuracy_ci: tuple[float, float]
    strict_accuracy: float
    ties: int
    parse_failures: int
    length_baseline: float
    position_consistency: float | None = None
    scores: list[float] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, without the per-row scores."""
        out = asdict(self)
        out.pop("scores")
        return out


def subset_report(outcomes: Sequence[Outcome], baselines: Sequence[float], rng: random.Random) -> SubsetReport:
    """Aggregate one subset's rows (same order in `outcomes` and `baselines`)."""
    scores = [o.score for o in outcomes]
    consistency = [o.consistent for o in outcomes if o.consistent is not None]
    return SubsetReport(
        n=len(outcomes),
        accuracy=statistics.fmean(scores),
        accuracy_ci=_interval([statistics.fmean(rng.choices(scores, k=len(scores))) for _ in range(BOOTSTRAP_SAMPLES)]),
        strict_accuracy=statistics.fmean(o.strict for o in outcomes),
        ties=sum(o.tie for o in outcomes),
        parse_failures=sum(o.parse_failure for o in outcomes),
        length_baseline=statistics.fmean(baselines),
        position_consistency=statistics.fmean(consistency) if consistency else None,
        scores=scores,
    )


def section_scores(accuracies: Mapping[str, float]) -> dict[str, float]:
    """Official section scores (and ``overall``) from per-subset accuracies.

    Only sections with at least one subset present are reported (RewardBench's own
    helper reports 0 for an absent section; an absent section here is simply absent).
    """
    counts, mapping = rewardbench_constants()
    sections: dict[str, float] = {}
    for section, subsets in mapping.items():
        present = [s for s in subsets if s in accuracies]
        if present:
            total = sum(counts[s] for s in present)
            sections[section] = sum(accuracies[s] * counts[s] for s in present) / total
    if sections:
        sections["overall"] = statistics.fmean(sections.values())
    return sections


def bootstrap_sections(reports: Mapping[str, SubsetReport], rng: random.Random) -> dict[str, tuple[float, float]]:
    """95% intervals of every section score (and ``overall``) by resampling rows within
    each official subset."""
    _, mapping = rewardbench_constants()
    official = {s for subsets in mapping.values() for s in subsets}
    samples: dict[str, list[float]] = {}
    for _ in range(BOOTSTRAP_SAMPLES):
        resampled = {name: statistics.fmean(rng.choices(r.scores, k=len(r.scores)))
                     for name, r in reports.items() if name in official and r.scores}
        for section, value in section_scores(resampled).items():
            samples.setdefault(section, []).append(value)
    return {section: _interval(values) for section, values in samples.items()}


def official_subsets() -> set[str]:
    """Every subset named in RewardBench's ``SUBSET_MAPPING``."""
    return {s for subsets in rewardbench_constants()[1].values() for s in subsets}


def _interval(values: list[float]) -> tuple[float, float]:
    ordered = sorted(values)
    low = ordered[int((1 - CONFIDENCE) / 2 * (len(ordered) - 1))]
    high = ordered[int((1 + CONFIDENCE) / 2 * (len(ordered) - 1))]
    return (low, high)
