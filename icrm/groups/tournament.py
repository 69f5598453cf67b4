"""What the pairwise group strategies share: judging chosen pairs of a group, reading
each judgement as an outcome, and one reward per response from the outcomes.

A pair's outcome is how much its first response won: the verdict's pairwise reward
(``A++`` 1.0, ``A+`` 0.75, ``A=B`` 0.5, ``B+`` 0.25, ``B++`` 0.0), or ``p_a_better``
where the method gives a probability (``logprob``). With ``position="both"`` a pair
whose two orders disagree on the side counts as a tie (0.5) or abstains, as
``inconsistent_pairs`` says. Rewards: Bradley–Terry strengths fitted to the outcomes,
each response's expected win probability against the rest, with its standard error
(`icrm.groups.outcomes`).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence

from ..feedback import FeedbackBase
from .base import Comparison, GroupResult, GroupRun, GroupStrategy, judged_result, why
from .outcomes import Outcome, group_rewards

__all__ = ["Tournament", "judge_pairs", "comparison", "aggregate"]


def comparison(run: GroupRun, i: int, j: int, feedback: FeedbackBase) -> Comparison:
    """One pairwise judgement of ``i`` (as A) against ``j``, read as an outcome."""
    error, _ = why(feedback)
    choice = getattr(feedback, "choice", None)
    if error is not None or choice is None:
        return Comparison(i, j, None, None, feedback.position_consistent, error or "no verdict")
    consistent = feedback.position_consistent
    p_a_better = getattr(feedback, "p_a_better", None)
    p_i = p_a_better if p_a_better is not None else run.rm_type.reward(choice)
    if consistent is False:
        if run.inconsistent_pairs == "abstain":
            return Comparison(i, j, choice, None, False, "the two orders disagreed: the pair abstains", abstained=True)
        p_i = 0.5
    return Comparison(i, j, choice, p_i, consistent)


async def judge_pairs(run: GroupRun, pairs: Sequence[tuple[int, int]]) -> tuple[list[Comparison], list[FeedbackBase]]:
    """Judge `pairs` of the group (``i`` as A), concurrently."""
    conversations = run.conversations
    feedbacks = await run.judge_all([({"conversation_A": conversations[i], "conversation_B": conversations[j]},
                                      f"{run.key}:{i}:{j}") for i, j in pairs])
    return [comparison(run, i, j, f) for (i, j), f in zip(pairs, feedbacks)], feedbacks


def aggregate(run: GroupRun, strategy: str, comparisons: Sequence[Comparison],
              feedbacks: Sequence[FeedbackBase]) -> GroupResult:
    """One reward per response from a tournament's comparisons. A response with no
    outcome (every comparison of it failed or abstained) gets None, with the reason."""
    k = run.size
    outcomes = [Outcome(c.i, c.j, c.p_i) for c in comparisons if c.p_i is not None]
    fitted = group_rewards(k, outcomes)
    rated = {r for o in outcomes for r in (o.i, o.j)}
    rewards = [fitted.rewards[r] if r in rated else None for r in range(k)]
    stderr = [fitted.stderr[r] if r in rated else None for r in range(k)]
    per_response = [[f for c, f in zip(comparisons, feedbacks) if r in (c.i, c.j)] for r in range(k)]
    result = judged_result(strategy, rewards, feedbacks, per_response, stderr=stderr,
                           win_rates=list(fitted.win_rates), strengths=list(fitted.strengths),
                           comparisons=list(comparisons))
    for r in range(k):  # no outcome without a failure of the judge: say why
        mine = [c for c in comparisons if r in (c.i, c.j)]
        if rewards[r] is None and not mine:
            result.errors[r], result.error_kinds[r] = "the tournament ended before this response was compared", \
                "not_judged"
        elif rewards[r] is None and all(c.abstained for c in mine):
            result.errors[r], result.error_kinds[r] = "every comparison of this response abstained", "abstained"
    return result


class Tournament(GroupStrategy):
    """A pairwise strategy that chooses its pairs up front."""

    rm_type = "pairwise"

    @abstractmethod
    def pairs(self, k: int) -> list[tuple[int, int]]:
        """The pairs ``(i, j)`` to judge, ``i`` shown as A (when as given)."""

    def judgements(self, k: int) -> int:
        return len(self.pairs(k))

    async def judge(self, run: GroupRun) -> GroupResult:
        comparisons, feedbacks = await judge_pairs(run, self.pairs(run.size))
        return aggregate(run, self.name, comparisons, feedbacks)
