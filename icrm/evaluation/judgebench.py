"""JudgeBench: objective pairs (one response correct, the other not), scored as
ScalerLab/JudgeBench ``utils/metrics.py`` ``compute_final_metrics`` scores them.

Rows (``data/*.jsonl`` of the repository, or ``ScalerLab/JudgeBench`` split ``gpt`` /
``claude``): ``pair_id``, ``question``, ``response_A``, ``response_B``, ``label``
(``A>B`` or ``B>A``), ``source``.

Pairwise (the official protocol, ``reverse_order=True``): every pair is judged in both
orders, whatever the run's position. Each order's verdict becomes a decision (``A>B``,
``B>A``, ``A=B``, or none), the second told back in the given orientation; the pair
counts +1 per decision equal to the label and −1 per decision opposite to it, and is
correct when the count is positive (a tie or a split is not). A pair is inconsistent
when its two decisions differ. Individual (JudgeBench's single game for reward models):
both responses scored, the higher one wins, equal scores are a tie (not correct).

Reported per source family — knowledge (``mmlu-pro*``), reasoning
(``livebench-reasoning*``), math (``livebench-math*``), coding (``livecodebench*``) —
and overall, the share of all pairs correct (as ``run_judge.py`` prints them).
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping
from typing import Any

from ..errors import InputError
from ..rm_types import RMType
from .base import Benchmark, Judgement, Records, longer, require_fields, text
from .rewardbench import p_chosen_higher
from .stats import RowScore, SubsetReport

__all__ = ["JudgeBench", "FAMILIES", "REQUIRED_FIELDS", "decision", "pair_correct"]

# (family, source prefix), in run_judge.py's order.
FAMILIES = (("knowledge", "mmlu-pro"), ("reasoning", "livebench-reasoning"), ("math", "livebench-math"),
            ("coding", "livecodebench"))
REQUIRED_FIELDS = ("pair_id", "question", "response_A", "response_B", "label", "source")
LABELS = ("A>B", "B>A")


class JudgeBench(Benchmark):
    """JudgeBench (ScalerLab/JudgeBench, split ``gpt``: the GPT-4o response pairs)."""

    name = "judgebench"
    title = "JudgeBench"
    hub_dataset = "ScalerLab/JudgeBench"
    hub_split = "gpt"
    overall_label = "Overall (all pairs)"
    fixed_position = "both"

    def check(self, row: dict[str, Any], where: str, source: str) -> dict[str, Any]:
        require_fields(row, REQUIRED_FIELDS, where, "JudgeBench")
        for field in ("question", "response_A", "response_B", "source"):
            text(row, field, where)
        if row["label"] not in LABELS:
            raise InputError(f"{where}: 'label' must be 'A>B' or 'B>A', got {row['label']!r}")
        return row

    def row_id(self, row: Mapping[str, Any]) -> str:
        return str(row["pair_id"])

    def subset(self, row: Mapping[str, Any]) -> str:
        source = str(row["source"])
        return next((family for family, prefix in FAMILIES if source.startswith(prefix)), source)

    def judgements(self, row: Mapping[str, Any], rm_type: RMType) -> list[Judgement]:
        question = {"role": "user", "content": row["question"]}
        a = [question, {"role": "assistant", "content": row["response_A"]}]
        b = [question, {"role": "assistant", "content": row["response_B"]}]
        if rm_type.single:
            return [Judgement("A", {rm_type.input_fields[0]: a}), Judgement("B", {rm_type.input_fields[0]: b})]
        return [Judgement("pair", dict(zip(rm_type.input_fields, (a, b))))]

    def score(self, row: Mapping[str, Any], records: Records, rm_type: RMType) -> RowScore:
        label = row["label"]
        if rm_type.single:
            prefers_a = rm_type.prefers_chosen({"chosen": records["A"].get(rm_type.verdict_key),
                                                "rejected": records["B"].get(rm_type.verdict_key)})
            decisions = [decision(prefers_a[0])]
            a, b = records["A"].get("probabilities"), records["B"].get("probabilities")
            p_a = p_chosen_higher(a, b)
        else:
            orders = records["pair"].get("order_verdicts") or {"AB": records["pair"].get(rm_type.verdict_key)}
            decisions = [decision(rm_type.prefers_chosen({"AB": v})[0]) for v in orders.values()]
            p_a = records["pair"].get("p_a_better")
        correct, tie = pair_correct(decisions, label)
        p_correct = [] if p_a is None else [p_a if label == "A>B" else 1 - p_a]
        return RowScore(self.row_id(row), self.subset(row), float(correct), tie=tie, parse_failure=None in decisions,
                        consistent=decisions[0] == decisions[1] if len(decisions) == 2 else None,
                        baseline=longer(row["response_A"], row["response_B"]) if label == "A>B"
                        else longer(row["response_B"], row["response_A"]),
                        p_correct=p_correct, values={"decisions": decisions})

    def aggregate(self, reports: Mapping[str, SubsetReport], rm_type: RMType) -> dict[str, float]:
        scores = [r.score for report in reports.values() for r in report.rows]
        return {"overall": statistics.fmean(scores)} if scores else {}

    def sections(self, rm_type: RMType | str) -> list[tuple[str, list[str] | None]]:
        return [("overall", [family for family, _ in FAMILIES])]


def decision(prefers_a: float | None) -> str | None:
    """A verdict as a JudgeBench decision, from how it ranks A over B (1.0, 0.0, 0.5 a
    tie, None no verdict).

    >>> [decision(v) for v in (1.0, 0.0, 0.5, None)]
    ['A>B', 'B>A', 'A=B', None]
    """
    if prefers_a is None:
        return None
    return "A=B" if prefers_a == 0.5 else ("A>B" if prefers_a == 1.0 else "B>A")


def pair_correct(decisions: list[str | None], label: str) -> tuple[bool, bool]:
    """(correct, tie) of a pair from its decisions in the given orientation: one
    (single game: correct iff it equals the label) or two (each +1 when it equals the
    label, −1 when opposite; correct iff the sum is positive, a tie iff it is zero).

    >>> pair_correct(["A>B", "A=B"], "A>B"), pair_correct(["A>B", "B>A"], "A>B")
    ((True, False), (False, True))
    """
    opposite = "B>A" if label == "A>B" else "A>B"
    count = sum((d == label) - (d == opposite) for d in decisions)
    if len(decisions) == 1:
        return decisions[0] == label, decisions[0] == "A=B"
    return count > 0, count == 0
