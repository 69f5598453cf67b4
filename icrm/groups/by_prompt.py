"""A trainer's batch as groups: samples of the same prompt (GRPO's rollouts) judged
together, one reward per sample — the home of what TRL's and verl's group rewards share.

Samples are grouped by their prompt's content, wherever they sit in the batch (TRL puts a
prompt's ``num_generations`` rollouts next to each other; verl's batches need not). A
prompt with a single sample in the batch cannot be ranked: it gets no reward, and the
caller's contract says what that becomes (TRL: None; verl: ``failure_reward`` flagged).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..feedback import FeedbackBase

__all__ = ["PromptGroups", "judge_by_prompt", "ALONE"]

ALONE = "the only sample of its prompt in this batch: a group needs 2 or more"


@dataclass(frozen=True)
class PromptGroups:
    """A batch judged as groups.

    Attributes:
        rewards: one per sample, in [0, 1]; None where the sample got none.
        scores: one per sample: the judge's score of it (listwise, individual), else
            its reward; None where none.
        errors: one per sample: why it has no reward (None when it has one).
        feedbacks: every judgement made, for the caller's judge-down policy.
        alone: samples that were the only one of their prompt.
    """

    rewards: list[float | None]
    scores: list[float | None]
    errors: list[str | None]
    feedbacks: list[FeedbackBase]
    alone: int


async def judge_by_prompt(icrm: Any, prompts: Sequence[Any], conversations: Sequence[Any],
                          concurrency: int) -> PromptGroups:
    """Judge `conversations` (one per sample) in groups of equal `prompts` with
    `icrm`'s group strategy (`ICRM.ajudge_group`), the groups concurrently and at most
    `concurrency` judgements in flight in all.

    >>> [len(m) for m in _members(["a", "b", "a", "c", "b"])]
    [2, 2, 1]
    """
    members = _members(prompts)
    groups = [m for m in members if len(m) >= 2]
    per_group = max(1, concurrency // max(len(groups), 1))
    results = await asyncio.gather(*(icrm.ajudge_group([conversations[i] for i in m], concurrency=per_group)
                                     for m in groups))
    n = len(prompts)
    rewards: list[float | None] = [None] * n
    scores: list[float | None] = [None] * n
    errors: list[str | None] = [ALONE] * n
    feedbacks: list[FeedbackBase] = []
    for m, result in zip(groups, results):
        feedbacks += result.feedbacks
        for place, i in enumerate(m):
            rewards[i], errors[i] = result.rewards[place], result.errors[place]
            scores[i] = result.scores[place] if result.scores is not None else result.rewards[place]
    return PromptGroups(rewards, scores, errors, feedbacks, sum(len(m) for m in members if len(m) == 1))


def _members(prompts: Sequence[Any]) -> list[list[int]]:
    """The samples' indexes per distinct prompt, in order of first appearance."""
    by_prompt: dict[str, list[int]] = {}
    for i, prompt in enumerate(prompts):
        by_prompt.setdefault(json.dumps(prompt, sort_keys=True, default=str), []).append(i)
    return list(by_prompt.values())
