"""``individual``: each response of the group judged alone (k requests, one per
response); its reward is its score's, (score − 1) / 9, or the expected score's with
``logprob``. The baseline the group strategies are measured against."""

from __future__ import annotations

from .base import GroupResult, GroupRun, GroupStrategy, judged_result

__all__ = ["Individual", "INDIVIDUAL"]


class Individual(GroupStrategy):
    """Each response alone."""

    name = "individual"
    rm_type = "individual"
    summary = "each response judged alone: k requests"

    def judgements(self, k: int) -> int:
        return k

    async def judge(self, run: GroupRun) -> GroupResult:
        feedbacks = await run.judge_all([({"conversation": c}, f"{run.key}:{i}")
                                         for i, c in enumerate(run.conversations)])
        rewards = [run.rm_type.feedback_reward(f) for f in feedbacks]
        scores = [getattr(f, "expected_score", None) or getattr(f, "score", None) if f.ok else None
                  for f in feedbacks]
        return judged_result(self.name, rewards, feedbacks, [[f] for f in feedbacks], scores=scores)


INDIVIDUAL = Individual()
