"""``knockout``: single elimination — the responses paired in a bracket seeded by the
run's seed and the group's key, each winner on to the next round, until one is left:
k − 1 judgements (twice that with ``position="both"``) in ⌈log2 k⌉ rounds. The
fewest judgements for the best response; the order below it is coarse (Bradley–Terry
over the matches played).

A tie goes on by a seeded coin; a match without a verdict sends both on (the bracket
shrinks by the matches that were decided), and a round in which none was decided ends
the tournament.
"""

from __future__ import annotations

import random

from ..feedback import FeedbackBase
from .base import Comparison, GroupResult, GroupRun, GroupStrategy
from .tournament import aggregate, judge_pairs

__all__ = ["Knockout", "KNOCKOUT"]


class Knockout(GroupStrategy):
    """Single elimination."""

    name = "knockout"
    rm_type = "pairwise"
    summary = "single elimination: k-1 judgements"

    def judgements(self, k: int) -> int:
        return k - 1

    async def judge(self, run: GroupRun) -> GroupResult:
        rng = random.Random(f"{run.seed}:{run.key}")
        alive = list(range(run.size))
        rng.shuffle(alive)
        comparisons: list[Comparison] = []
        feedbacks: list[FeedbackBase] = []
        while len(alive) > 1:
            pairs = [(alive[a], alive[a + 1]) for a in range(0, len(alive) - 1, 2)]
            played, judged = await judge_pairs(run, pairs)
            comparisons += played
            feedbacks += judged
            if all(c.p_i is None for c in played):
                break
            winners: list[int] = []
            for c in played:
                if c.p_i is None:
                    winners += [c.i, c.j]
                elif c.p_i == 0.5:
                    winners.append(c.i if rng.random() < 0.5 else c.j)
                else:
                    winners.append(c.i if c.p_i > 0.5 else c.j)
            alive = winners + alive[len(pairs) * 2:]  # the bye, if any, plays next round
        return aggregate(run, self.name, comparisons, feedbacks)


KNOCKOUT = Knockout()
