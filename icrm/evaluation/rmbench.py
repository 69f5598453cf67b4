"""RM-Bench: the same chosen and rejected content in three styles, scored as
THU-KEG/RM-Bench ``scripts/utils.py`` ``compute_accuracy`` scores it.

Rows (``data/*.json`` of the repository, JSON lists): ``id``, ``prompt``, ``chosen`` and
``rejected`` (3 responses each: concise, detailed plain, detailed markdown), and
``domain`` (``chat``, ``math``, ``code``, ``safety-refuse``, ``safety-response``); a
file without ``domain`` takes it from its name (``chat_filtered.json`` → chat).

Per prompt, a 3×3 matrix: cell (i, j) is 1 when chosen style i beats rejected style j
strictly — pairwise, the judge prefers chosen (9 judgements, chosen in A as given, placed
by the run's position; a tie or no verdict is 0); individual, chosen's score is higher (6
scores, each reused three times; equal or missing is 0); listwise (icrm's addition), the
six responses judged as one group, shown in an order seeded by the row's id, and cell
(i, j) read from the group's scores (``logprob``: P(best)). Per domain (``chat``, ``math``,
``code``, ``safety``: the domain's prefix), the matrix is averaged over prompts: hard =
the mean of the upper triangle (a plainer chosen against a fancier rejected), normal =
the diagonal, easy = the lower triangle; the domain's score is the mean of the three.
Overall: hard, normal, easy and the total averaged over the domains present.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..inputs import prompt_turns
from ..rm_types import RMType
from .base import Benchmark, Judgement, Records, require_fields, texts
from .rewardbench import p_chosen_higher
from .stats import RowScore, SubsetReport

__all__ = ["RMBench", "DOMAINS", "LEVELS", "REQUIRED_FIELDS", "levels"]

DOMAINS = ("chat", "math", "code", "safety")
LEVELS = ("hard", "normal", "easy")
STYLES = 3
REQUIRED_FIELDS = ("id", "prompt", "chosen", "rejected")


class RMBench(Benchmark):
    """RM-Bench (THU-KEG/RM-Bench): chat, math, code and safety, in three styles."""

    name = "rmbench"
    title = "RM-Bench"
    hub_dataset = "THU-KEG/RM-Bench"
    hub_split = "train"
    overall_label = "Overall (mean of domains)"

    def check(self, row: dict[str, Any], where: str, source: str) -> dict[str, Any]:
        require_fields(row, REQUIRED_FIELDS, where, "RM-Bench")
        prompt_turns(row["prompt"], where)
        texts(row, "chosen", where, STYLES)
        texts(row, "rejected", where, STYLES)
        domain = row.get("domain") or Path(source).name
        family = next((d for d in DOMAINS if str(domain).startswith(d)), None)
        if family is None:
            raise InputError(f"{where}: cannot tell the domain ({', '.join(DOMAINS)}) from 'domain' or the file name "
                             f"{Path(source).name!r}; add a 'domain' field")
        return {**row, "domain": family}

    def subset(self, row: Mapping[str, Any]) -> str:
        return str(row["domain"])

    def judgements(self, row: Mapping[str, Any], rm_type: RMType) -> list[Judgement]:
        turns = prompt_turns(row["prompt"], f"row {row['id']}")

        def answer(response: str) -> list[dict[str, Any]]:
            return [*turns, {"role": "assistant", "content": response}]

        if rm_type.single:
            field = rm_type.input_fields[0]
            return [Judgement(f"{side}{i}", {field: answer(row[side][i])})
                    for side in ("chosen", "rejected") for i in range(STYLES)]
        if rm_type.group:
            responses = [*row["chosen"], *row["rejected"]]
            return [Judgement("group", {"conversations": [answer(responses[k]) for k in shown_order(row["id"])]})]
        a, b = rm_type.input_fields
        return [Judgement(f"chosen{i}-rejected{j}", {a: answer(row["chosen"][i]), b: answer(row["rejected"][j])})
                for i in range(STYLES) for j in range(STYLES)]

    def score(self, row: Mapping[str, Any], records: Records, rm_type: RMType) -> RowScore:
        key = rm_type.verdict_key
        matrix, p_correct, ties, failures = [], [], False, False
        values = _group_values(records["group"], row["id"]) if rm_type.group else None
        for i in range(STYLES):
            cells = []
            for j in range(STYLES):
                if values is not None:
                    c, r = values[i], values[STYLES + j]
                    preference = None if c is None or r is None else 0.5 if c == r else float(c > r)
                    p = None
                elif rm_type.single:
                    chosen, rejected = records[f"chosen{i}"], records[f"rejected{j}"]
                    preference = rm_type.prefers_chosen({"chosen": chosen.get(key), "rejected": rejected.get(key)})[0]
                    p = p_chosen_higher(chosen.get("probabilities"), rejected.get("probabilities"))
                else:
                    record = records[f"chosen{i}-rejected{j}"]
                    preference = rm_type.prefers_chosen({"AB": record.get(key)})[0]
                    p = record.get("p_a_better")
                cells.append(float(preference == 1.0))  # strictly better, as `score_chosen > score_rejected`
                ties |= preference == 0.5
                failures |= preference is None
                if p is not None:
                    p_correct.append(p)
            matrix.append(cells)
        longer_matrix = [[float(len(c) > len(r)) for r in row["rejected"]] for c in row["chosen"]]
        baseline = statistics.fmean(c for cells in longer_matrix for c in cells)
        return RowScore(str(row["id"]), str(row["domain"]), statistics.fmean(c for cells in matrix for c in cells),
                        tie=ties, parse_failure=failures, baseline=baseline, p_correct=p_correct,
                        values={**levels(matrix), "matrix": matrix, "longer": levels(longer_matrix)})

    def aggregate(self, reports: Mapping[str, SubsetReport], rm_type: RMType) -> dict[str, float]:
        sections: dict[str, float] = {}
        for domain, report in reports.items():
            for level in LEVELS:
                sections[f"{domain} {level}"] = statistics.fmean(r.values[level] for r in report.rows)
        for level in LEVELS:
            if reports:
                sections[level] = statistics.fmean(sections[f"{d} {level}"] for d in reports)
        if reports:
            sections["overall"] = statistics.fmean(r.accuracy for r in reports.values())
        return sections

    def sections(self, rm_type: RMType | str) -> list[tuple[str, list[str] | None]]:
        return [("overall", list(DOMAINS))]


def shown_order(row_id: Any) -> list[int]:
    """The order a listwise judge sees a row's six responses in (indexes into chosen +
    rejected), seeded by the row's id so that chosen is not always shown first."""
    order = list(range(2 * STYLES))
    random.Random(f"rmbench:{row_id}").shuffle(order)
    return order


def _group_values(record: Mapping[str, Any], row_id: Any) -> list[float | None]:
    """Each response's score (or P(best)) from a listwise judgement, in chosen +
    rejected order; None for all without a verdict."""
    feedback = record.get("feedback") or {}
    shown = feedback.get("p_best") or feedback.get("scores")
    values: list[float | None] = [None] * (2 * STYLES)
    if shown and len(shown) == 2 * STYLES:
        for place, index in enumerate(shown_order(row_id)):
            values[index] = shown[place]
    return values


def levels(matrix: Sequence[Sequence[float]]) -> dict[str, float]:
    """hard (upper triangle: chosen plainer than rejected), normal (diagonal) and easy
    (lower triangle) means of a 3×3 chosen-vs-rejected matrix.

    >>> levels([[1, 0, 0], [1, 1, 0], [1, 1, 1]])
    {'hard': 0.0, 'normal': 1.0, 'easy': 1.0}
    """
    n = len(matrix)
    cells = [(i, j) for i in range(n) for j in range(n)]
    return {"hard": statistics.fmean(matrix[i][j] for i, j in cells if i < j),
            "normal": statistics.fmean(matrix[i][j] for i, j in cells if i == j),
            "easy": statistics.fmean(matrix[i][j] for i, j in cells if i > j)}
