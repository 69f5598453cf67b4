"""icrm as OpenPipe ART's group scorer: `ruler_score_group`, with the call shape and the
result of ``art.rewards.ruler_score_group`` (openpipe-art 0.5), judged by icrm's group
strategies and shots instead of RULER's prompt::

    import art
    from icrm import ICRM
    from icrm.integrations.art import ruler_score_group

    judge = ICRM(rm_type="listwise", engine="vllm", base_url="http://127.0.0.1:8000/v1",
                 model_name="Qwen/Qwen2.5-7B-Instruct")     # or rm_type="pairwise", group_strategy="all_pairs"
    groups = await art.gather_trajectory_groups(
        (art.TrajectoryGroup(rollout(model, scenario) for _ in range(8)) for scenario in scenarios),
        after_each=lambda group: ruler_score_group(group, judge, swallow_exceptions=True))

As ART's: the trajectories are copied, each copy's original reward kept in
``metrics["independent_reward"]``, its new reward set, and a new ``TrajectoryGroup``
returned; a trajectory with ``additional_histories`` is a ``ValueError``; with
``swallow_exceptions=True`` a group that cannot be scored is ``None`` (ART skips it)
instead of an exception. icrm adds ``metrics["icrm_reward"]`` (and ``icrm_stderr`` for a
tournament) and logs each response's analysis.

A group is scored only when every trajectory got a reward: a trajectory the judge did
not judge (no verdict, an engine error) fails the whole group — never a stand-in reward
inside a group whose rewards are relative to each other.

The trajectories are judged from their shared beginning: the longest common prefix of
their messages that ends before an assistant turn is the conversation, and each
trajectory's remainder (its answers, tool calls and tool results) is its response,
rendered as text (`icrm.trajectory.judgeable_turns`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ..errors import EngineError, ICRMError, InputError
from ..trajectory import judgeable_turns

__all__ = ["ruler_score_group", "group_conversations", "GroupNotScored"]

logger = logging.getLogger(__name__)


class GroupNotScored(ICRMError):
    """The judge answered, but not every trajectory of the group got a verdict."""

    kind = "parse"


def group_conversations(message_lists: Sequence[Sequence[dict[str, Any]]]) -> list[list[dict[str, Any]]]:
    """The conversations of a group of trajectories: their common prefix (up to the
    first turn where they differ, and not past the last user turn before it), then each
    trajectory's remainder as one assistant turn.

    Raises:
        InputError: a trajectory with nothing after the common prefix, or messages
            `judgeable_turns` cannot read.

    >>> q = {"role": "user", "content": "2+2?"}
    >>> [c[-1]["content"] for c in group_conversations([[q, {"role": "assistant", "content": "4"}],
    ...                                                 [q, {"role": "assistant", "content": "5"}]])]
    ['4', '5']
    """
    shortest = min(len(m) for m in message_lists)
    common = 0
    while common < shortest and all(m[common] == message_lists[0][common] for m in message_lists):
        common += 1
    while common > 0 and message_lists[0][common - 1].get("role") != "user":  # the response starts after a user turn
        common -= 1
    if common == 0:
        raise InputError("the trajectories share no user turn to judge them against")
    prefix = [dict(m) for m in message_lists[0][:common]]
    conversations = []
    for index, messages in enumerate(message_lists):
        rest = [dict(m) for m in messages[common:]]
        if not rest:
            raise InputError(f"trajectory {index} has no answer after the shared conversation")
        conversations.append(judgeable_turns(prefix, rest, f"trajectory {index}"))
    return conversations


async def ruler_score_group(group: Any, judge: Any, rubric: str | None = None, *, swallow_exceptions: bool = False,
                            debug: bool = False, key: str | None = None) -> Any:
    """Score an ART ``TrajectoryGroup`` with icrm (see the module docstring).

    Args:
        group: an ``art.TrajectoryGroup``.
        judge: the `icrm.ICRM` (its rm type, group strategy, method, position and shots).
        rubric: a rubric for templates that use ``{$rubric}`` (the judge's own otherwise).
        swallow_exceptions: return None instead of raising when the group cannot be scored.
        debug: log each trajectory's reward and the judge's analysis at INFO.
        key: the group's id (seeds placement; default: a hash of its content).

    Returns:
        A new ``art.TrajectoryGroup`` with the rewards set, or None (`swallow_exceptions`).

    Raises:
        ValueError: a trajectory with additional histories (as ART's).
        InputError: trajectories that are not one group.
        EngineError: the judge could not answer; GroupNotScored: it gave a trajectory
            no verdict.
    """
    import art

    for trajectory in group.trajectories:
        if len(trajectory.additional_histories) > 0:
            raise ValueError("Additional histories are not supported by RULER yet.")
    copies = [t.__class__(messages_and_choices=t.messages_and_choices.copy(), tools=t.tools.copy() if t.tools else None,
                          additional_histories=[], reward=t.reward, metrics=t.metrics.copy(),
                          metadata=t.metadata.copy(), logs=t.logs.copy()) for t in group.trajectories]
    for trajectory in copies:
        trajectory.metrics["independent_reward"] = trajectory.reward
    try:
        conversations = group_conversations([t.messages() for t in copies])
        result = await judge.ajudge_group(conversations, key=key, context={"rubric": rubric} if rubric else None)
        missing = [i for i, r in enumerate(result.rewards) if r is None]
        if missing:
            why = f"{result.error_kinds[missing[0]]}: {result.errors[missing[0]]}"
            down = any(result.error_kinds[i] not in ("parse", "input", "abstained", "not_judged") for i in missing)
            raise (EngineError if down else GroupNotScored)(
                f"icrm gave {len(missing)} of {len(copies)} trajectories no reward ({why})")
    except (InputError, EngineError, GroupNotScored) as error:
        if swallow_exceptions:
            logger.warning("icrm: the group was not scored: %s", error)
            return None
        raise
    analyses = _analyses(result)
    for index, (trajectory, value) in enumerate(zip(copies, result.rewards)):
        trajectory.reward = value
        trajectory.metrics["icrm_reward"] = value
        if result.stderr[index] is not None:
            trajectory.metrics["icrm_stderr"] = result.stderr[index]
        if analyses[index]:
            trajectory.log(f"icrm: {analyses[index]}")
        if debug:
            logger.info("trajectory %d: reward %.3f %s", index, value, analyses[index] or "")
    return art.TrajectoryGroup(copies)


def _analyses(result: Any) -> list[str | None]:
    """Each response's analysis from a listwise judgement, else None."""
    feedback = result.feedbacks[0] if len(result.feedbacks) == 1 else None
    analysis = getattr(feedback, "analysis", None)
    if not isinstance(analysis, dict):
        return [None] * len(result.rewards)
    return [analysis.get(str(i + 1)) for i in range(len(result.rewards))]
