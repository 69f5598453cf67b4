"""RewardBench (v1): chosen vs rejected pairs, scored as RewardBench's generative script
scores them, aggregated into its official sections.

Rows: ``id``, ``prompt`` (a string or a list of turns), ``chosen``, ``rejected``,
``subset``. Pairwise: one judgement with chosen as A, placed by the run's position
(``random``: seeded per row; ``both``: both orders, the row scored as their mean).
Individual: chosen and rejected scored with the same shots. A row scores 1 when the
judge prefers chosen, 0 rejected, 0.5 for a tie or an unparseable answer (allenai/
reward-bench ``scripts/run_generative.py``).

Sections follow ``rewardbench.utils.calculate_scores_per_section``: each section is the
mean of its subsets' accuracies weighted by ``EXAMPLE_COUNTS`` (where ``math-prm`` is
up-weighted to equal the code subsets together); the overall score is the mean of the
sections present. Subsets outside ``SUBSET_MAPPING`` are reported apart ("Other"),
never mixed in.
"""

from __future__ import annotations

import importlib.resources
import json
import statistics
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..position import random_order
from ..inputs import prompt_turns, rewardbench_pair
from ..rm_types import RMType
from .base import Benchmark, Judgement, Records, longer, order_preferences, require_fields, text
from .runner import evaluate as run_evaluation
from .runner import format_table as table
from .runner import load_rows as load
from .stats import RowScore, SubsetReport

if TYPE_CHECKING:
    from ..reward_model import ICRM

__all__ = ["RewardBench", "REQUIRED_FIELDS", "rewardbench_constants", "section_scores", "official_subsets",
           "preference_score", "p_chosen_higher", "load_rows", "chosen_in_a", "evaluate", "format_table"]

REQUIRED_FIELDS = ("id", "prompt", "chosen", "rejected", "subset")


class RewardBench(Benchmark):
    """RewardBench v1 (allenai/reward-bench, split ``filtered``)."""

    name = "rewardbench"
    title = "RewardBench"
    hub_dataset = "allenai/reward-bench"
    hub_split = "filtered"
    overall_label = "Overall (mean of sections)"

    def check(self, row: dict[str, Any], where: str, source: str) -> dict[str, Any]:
        require_fields(row, REQUIRED_FIELDS, where, "RewardBench")
        prompt_turns(row["prompt"], where)
        text(row, "chosen", where)
        text(row, "rejected", where)
        return row

    def judgements(self, row: Mapping[str, Any], rm_type: RMType) -> list[Judgement]:
        chosen, rejected = rewardbench_pair(row, f"row {row['id']}")
        return [Judgement("pair" if tag == "AB" else tag, item) for tag, item in rm_type.pair_judgements(chosen, rejected, ("AB",))]

    def score(self, row: Mapping[str, Any], records: Records, rm_type: RMType) -> RowScore:
        if rm_type.single:
            preferences = rm_type.prefers_chosen({tag: r.get(rm_type.verdict_key) for tag, r in records.items()})
            p = p_chosen_higher(records["chosen"].get("probabilities"), records["rejected"].get("probabilities"))
        else:
            preferences = order_preferences(rm_type, records["pair"])
            p = records["pair"].get("p_a_better")
        scores = [preference_score(v) for v in preferences]
        return RowScore(str(row["id"]), str(row["subset"]), statistics.fmean(scores),
                        tie=0.5 in preferences, parse_failure=None in preferences,
                        consistent=scores[0] == scores[1] if len(scores) == 2 else None,
                        baseline=longer(row["chosen"], row["rejected"]), p_correct=[] if p is None else [p])

    def is_official(self, subset: str) -> bool:
        return subset in official_subsets()

    def aggregate(self, reports: Mapping[str, SubsetReport], rm_type: RMType) -> dict[str, float]:
        return section_scores({n: r.accuracy for n, r in reports.items()})

    def sections(self, rm_type: RMType | str) -> list[tuple[str, list[str] | None]]:
        return list(rewardbench_constants()[1].items())


def preference_score(prefers_chosen: float | None) -> float:
    """A judgement's row score from how it ranks chosen over rejected
    (`icrm.rm_types.RMType.prefers_chosen`): 1 chosen, 0 rejected, 0.5 a tie or no
    verdict (``scripts/run_generative.py`` counts an unparseable answer as a tie).

    >>> [preference_score(v) for v in (1.0, 0.0, 0.5, None)]
    [1.0, 0.0, 0.5, 0.5]
    """
    return 0.5 if prefers_chosen is None else prefers_chosen


@cache
def rewardbench_constants() -> tuple[dict[str, int], dict[str, list[str]]]:
    """RewardBench's ``EXAMPLE_COUNTS`` and ``SUBSET_MAPPING``, as generated from the
    ``rewardbench`` package by ``scripts/sync_rewardbench_constants.py``."""
    data = json.loads((importlib.resources.files("icrm") / "evaluation" / "rewardbench_constants.json").read_text())
    return data["EXAMPLE_COUNTS"], data["SUBSET_MAPPING"]


def official_subsets() -> set[str]:
    """Every subset named in RewardBench's ``SUBSET_MAPPING``."""
    return {s for subsets in rewardbench_constants()[1].values() for s in subsets}


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


def p_chosen_higher(chosen: Mapping[str, float] | None, rejected: Mapping[str, float] | None) -> float | None:
    """P(chosen's score > rejected's) + ½·P(equal) from two independent ``logprob``
    score distributions; None without both.

    >>> p_chosen_higher({"8": 1.0}, {"6": 0.5, "8": 0.5})
    0.75
    """
    if not chosen or not rejected:
        return None
    return sum(pc * pr * (1.0 if float(c) > float(r) else 0.5 if float(c) == float(r) else 0.0)
               for c, pc in chosen.items() for r, pr in rejected.items())


def load_rows(data: str | Path | None = None, dataset: str | None = None, split: str = "filtered",
              subsets: Sequence[str] | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """RewardBench rows from a file (JSON, JSONL, Parquet) or the 🤗 hub (`runner.load_rows`)."""
    return load(RewardBench(), data, dataset, split, subsets, limit)


def chosen_in_a(row_id: str, seed: int) -> bool:
    """Whether ``chosen`` is judged in position A for this row with ``position="random"``
    (`icrm.position.random_order` of the seed and the row id), the same in every run."""
    return random_order(seed, row_id) == "AB"


async def evaluate(icrm: ICRM, **options: Any) -> tuple[dict[str, Any], Path]:
    """`icrm.evaluation.runner.evaluate` on RewardBench (same options)."""
    return await run_evaluation(icrm, RewardBench(), **options)


def format_table(summary: dict[str, Any]) -> str:
    """The RewardBench summary as a text table."""
    return table(summary, RewardBench())
