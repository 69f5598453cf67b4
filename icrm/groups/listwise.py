"""``listwise``: the whole group in one request (`icrm.rm_types.listwise`): the shared
context once, the responses labelled, one score per response (or, with ``logprob``,
P(best = i)). The cheapest strategy in requests and in prompt tokens; its answer scores
every response or none."""

from __future__ import annotations

from .base import GroupResult, GroupRun, GroupStrategy, judged_result

__all__ = ["Listwise", "LISTWISE_STRATEGY"]


class Listwise(GroupStrategy):
    """The group in one request."""

    name = "listwise"
    rm_type = "listwise"
    summary = "the whole group in one request: 1 request"

    def judgements(self, k: int) -> int:
        return 1

    async def judge(self, run: GroupRun) -> GroupResult:
        [feedback] = await run.judge_all([({"conversations": list(run.conversations)}, run.key)])
        rewards = run.rm_type.feedback_reward(feedback) or [None] * run.size
        scores = getattr(feedback, "scores", None) if feedback.ok else None
        return judged_result(self.name, rewards, [feedback], [[feedback]] * run.size, scores=scores)


LISTWISE_STRATEGY = Listwise()
