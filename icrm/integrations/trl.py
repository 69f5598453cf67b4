"""icrm as a TRL reward function (``GRPOTrainer(reward_funcs=...)`` and TRL's other
online trainers).

TRL calls a reward function as ``f(prompts, completions, completion_ids, **kwargs)`` and
takes one ``float | None`` per sample (None: the sample is skipped); ``kwargs`` hold
every dataset column, ``trainer_state`` and ``log_metric``. It runs an ``async def``
function on its own event loop, concurrently with its other reward functions
(``trl/trainer/grpo_trainer.py``, ``_calculate_rewards``).

    from icrm import ICRM
    from icrm.integrations.trl import reward_function

    judge = ICRM(engine="vllm", model_name="Qwen/Qwen2.5-7B-Instruct", method="logprob")
    trainer = GRPOTrainer(model=..., reward_funcs=reward_function(judge), ...)

Rewards: individual, (score − 1) / 9, or (expected score − 1) / 9 with ``method="logprob"``;
pairwise, the completion (A) against the dataset's reference answer (B, the column named
by `reference_column`): A++ 1, A+ 0.75, A=B 0.5, B+ 0.25, B++ 0, or P(A better) with
``logprob`` (judge with ``position="both"`` or ``"random"`` against position bias).

With ``group=True`` (always for a ``listwise`` judge) a call's completions of the same
prompt — GRPO's ``num_generations`` rollouts — are judged as one group by the judge's
``group_strategy`` (`icrm.groups`: one listwise request, or a pairwise tournament with
Bradley–Terry rewards), one reward per completion. A prompt with a single completion in
the call (its group split across processes) cannot be ranked: None, and a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import ConfigError
from ..feedback import Feedback
from ..groups.by_prompt import judge_by_prompt
from ..rewards import raise_if_judge_down, reward
from ..trajectory import judgeable_turns

__all__ = ["reward_function", "async_reward_function", "RewardBatch"]

logger = logging.getLogger(__name__)

RewardFunc = Callable[..., list[float | None]]


class RewardBatch:
    """Judging one call's samples: the items, then the rewards from the feedback.

    Args:
        icrm: the judge.
        reference_column: pairwise: the dataset column holding each prompt's reference
            answer (a string or chat messages).
        concurrency: judge requests in flight at most per call.
        group: judge each prompt's completions as a group (None: only for a listwise judge).
    """

    def __init__(self, icrm: Any, reference_column: str | None, concurrency: int, group: bool | None = None) -> None:
        self.group = icrm.rm_type.group or bool(group)
        if group is False and icrm.rm_type.group:
            raise ConfigError("a listwise judge judges groups: leave group=None (or True)")
        if not icrm.rm_type.single and not self.group and not reference_column:
            raise ConfigError("a pairwise judge needs reference_column: the dataset column with each prompt's "
                              "reference answer, judged as B against the completion as A (or group=True to rank "
                              "each prompt's completions against each other)")
        self.icrm, self.reference_column, self.concurrency = icrm, reference_column, concurrency

    async def judged_groups(self, prompts: Sequence[Any], completions: Sequence[Any],
                            log_metric: Callable[[str, float], None] | None) -> list[float | None]:
        """One reward per sample, each prompt's completions judged as one group
        (`ICRM.ajudge_group`), concurrently.

        Raises:
            ConfigError: prompts and completions differ in number.
            EngineError: the judge answered none of the call's judgements.
        """
        if len(prompts) != len(completions):
            raise ConfigError(f"TRL passed {len(prompts)} prompts for {len(completions)} completions")
        conversations = [judgeable_turns(p, c, f"sample {i}") for i, (p, c) in enumerate(zip(prompts, completions))]
        judged = await judge_by_prompt(self.icrm, prompts, conversations, self.concurrency)
        rewards, feedbacks = judged.rewards, judged.feedbacks
        unjudged = sum(r is None for r in rewards)
        if unjudged:
            logger.warning("icrm: %d of %d samples got no reward (%d alone with their prompt in this call); TRL skips "
                           "them", unjudged, len(prompts), judged.alone)
        raise_if_judge_down(feedbacks, "trl")
        if log_metric is not None:
            log_metric("icrm/unjudged", float(unjudged))
        return rewards

    def items(self, prompts: Sequence[Any], completions: Sequence[Any], columns: dict[str, Any]) -> list[dict[str, Any]]:
        """One judge item per sample."""
        if len(prompts) != len(completions):
            raise ConfigError(f"TRL passed {len(prompts)} prompts for {len(completions)} completions")
        if self.icrm.rm_type.single:
            return [{"conversation": judgeable_turns(p, c, f"sample {i}")}
                    for i, (p, c) in enumerate(zip(prompts, completions))]
        if self.reference_column not in columns:
            raise ConfigError(f"reference_column {self.reference_column!r} is not a dataset column; "
                              f"the columns are {', '.join(sorted(k for k in columns if k != 'trainer_state'))}")
        references = columns[self.reference_column]
        return [{"conversation_A": judgeable_turns(p, c, f"sample {i}"),
                 "conversation_B": judgeable_turns(p, r, f"sample {i} reference")}
                for i, (p, c, r) in enumerate(zip(prompts, completions, references))]

    def rewards(self, feedbacks: Sequence[Feedback], log_metric: Callable[[str, float], None] | None) -> list[float | None]:
        """One reward per feedback, None where it holds no verdict; the count of those is
        logged (and reported to TRL as ``icrm/unjudged`` when it passes ``log_metric``,
        with a rubric also each criterion's mean value over the judged samples as
        ``icrm/<criterion>``).

        Raises:
            EngineError: the judge answered none of the call's samples (`icrm.rewards.POLICIES`, ``trl``).
        """
        unjudged = [f for f in feedbacks if not f.ok]
        if unjudged:
            reasons = sorted({f.error_kind or f.parse_error_reason or "parse" for f in unjudged})
            logger.warning("icrm: %d of %d samples got no reward (%s); TRL skips them", len(unjudged), len(feedbacks),
                           ", ".join(reasons))
        raise_if_judge_down(feedbacks, "trl")
        if log_metric is not None:
            log_metric("icrm/unjudged", float(len(unjudged)))
            rubric = getattr(self.icrm.rm_type, "rubric", None)
            judged = [f.values for f in feedbacks if f.ok and getattr(f, "values", None)]
            for name in rubric.names if rubric is not None and judged else ():  # each criterion's mean value
                log_metric(f"icrm/{name}", sum(v[name] for v in judged) / len(judged))
        return [reward(self.icrm.rm_type, f) for f in feedbacks]


def reward_function(icrm: Any, reference_column: str | None = None, concurrency: int = 64,
                    name: str | None = None, group: bool | None = None) -> RewardFunc:
    """A synchronous TRL reward function that judges a call's samples concurrently.

    Args:
        icrm: the `icrm.ICRM` judge (its rm type, method, position and shots apply).
        reference_column: pairwise judges: the dataset column with the reference answer.
        concurrency: judge requests in flight at most.
        name: the function's name in TRL's logs (default ``icrm_<rm_type>``).
        group: judge each prompt's completions as one group with the judge's
            ``group_strategy`` (None: only for a listwise judge; see the module docstring).

    Returns:
        ``f(prompts, completions, completion_ids=None, **kwargs) -> list[float | None]``:
        rewards in [0, 1], None for a sample the judge gave no verdict (TRL skips it).

    Raises:
        ConfigError: a pairwise judge without `reference_column` (at once), or a call
            whose dataset lacks that column.
        EngineError: when the judge answered none of a call's samples (it is down):
            training stops instead of running on no reward.
    """
    batch = RewardBatch(icrm, reference_column, concurrency, group)

    def reward(prompts: Sequence[Any], completions: Sequence[Any], completion_ids: Any = None,
               **kwargs: Any) -> list[float | None]:
        if batch.group:
            return icrm.run_sync(batch.judged_groups(prompts, completions, kwargs.get("log_metric")))
        items = batch.items(prompts, completions, kwargs)
        return batch.rewards(icrm.judge_many(items, concurrency=concurrency), kwargs.get("log_metric"))

    reward.__name__ = reward.__qualname__ = name or f"icrm_{icrm.rm_type.name}"
    return reward


def async_reward_function(icrm: Any, reference_column: str | None = None, concurrency: int = 64,
                          name: str | None = None, group: bool | None = None) -> Callable[..., Any]:
    """`reward_function` as an ``async def``: TRL awaits it on its own event loop,
    concurrently with its other async reward functions. Same arguments, result and
    errors."""
    batch = RewardBatch(icrm, reference_column, concurrency, group)

    async def reward(prompts: Sequence[Any], completions: Sequence[Any], completion_ids: Any = None,
                     **kwargs: Any) -> list[float | None]:
        if batch.group:
            return await batch.judged_groups(prompts, completions, kwargs.get("log_metric"))
        items = batch.items(prompts, completions, kwargs)
        return batch.rewards(await icrm.ajudge_many(items, concurrency=concurrency), kwargs.get("log_metric"))

    reward.__name__ = reward.__qualname__ = name or f"icrm_{icrm.rm_type.name}"
    return reward
