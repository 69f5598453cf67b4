"""icrm as slime's reward model (THUDM/slime, ``slime/rollout/rm_hub/__init__.py``).

slime asks for a sample's reward in one of two ways; icrm answers both.

**Remote** (``--rm-type remote_rm --rm-url http://HOST:PORT/slime/reward``): slime's
``remote_rm`` posts ``{"prompt", "response", "label"}`` per sample and takes the JSON
answer as the reward — a number, or with ``--reward-key K`` the answer's ``K``. ``icrm
serve --rm_type individual`` answers the number; ``/slime/reward?reward_key=K`` answers
``{K: reward, "icrm_score", "icrm_failed"}`` for ``--reward-key K``.

**In process** (``--custom-rm-path icrm.integrations.slime.reward``): slime awaits
``reward(args, sample)`` per sample, and with ``--group-rm`` ``reward(args, samples)``
with a prompt's whole group (``batched_async_rm``). The judge is configured by
``ICRM_*`` variables (`icrm.ICRMConfig`: ``ICRM_ENGINE``, ``ICRM_BASE_URL``,
``ICRM_MODEL_NAME``, ``ICRM_METHOD``, ``ICRM_RM_TYPE``, ``ICRM_GROUP_STRATEGY``, ...),
one `ICRM` per process. A group is judged by the group strategy (`icrm.groups`), one
reward per sample; the answer is a number, or with ``args.reward_key`` a dict as above.

What an unjudged sample becomes (`icrm.rewards.POLICIES`, ``slime``): a judge that could
not answer is never a reward — the endpoint answers 503 / 502, which slime's client
retries (10 tries, ~3 min of back-off) and then raises, and the custom function raises
at once; either way slime stops the rollout. A sample whose answer held no verdict (or
that is not a conversation) gets ``failure_reward`` (``--failure_reward`` of the server,
``ICRM_FAILURE_REWARD`` in process; default 0.0) with ``icrm_failed`` 1.0 in the dict
answer and in ``sample.metadata``: slime has no way to skip one sample.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from ..config import ICRMConfig, from_sources
from ..errors import ConfigError, InputError
from ..feedback import FeedbackBase
from ..groups.by_prompt import judge_by_prompt
from ..rewards import raise_if_judge_down, reward as reward_of, trainer_extras
from .shared import prompt_response_turns, shared_judge

__all__ = ["SlimeRequest", "item", "answer", "reward", "FAILURE_REWARD_ENV"]

FAILURE_REWARD_ENV = "ICRM_FAILURE_REWARD"


class SlimeRequest(BaseModel):
    """slime's ``remote_rm`` payload (``slime/rollout/rm_hub/__init__.py``)."""

    model_config = ConfigDict(extra="forbid")

    prompt: str | list[dict[str, Any]]
    """The sample's prompt: text (rendered by the chat template when slime applies it) or
    chat messages."""
    response: str
    """The generated response."""
    label: Any = None
    """The dataset's label (unused by an in-context judge)."""


def item(body: SlimeRequest) -> dict[str, Any] | InputError:
    """The judge item of a request, or the `InputError` that makes it none."""
    try:
        return {"conversation": prompt_response_turns(body.prompt, body.response)}
    except InputError as error:
        return error


def answer(value: float | None, extras: dict[str, float], failure_reward: float,
           reward_key: str | None) -> float | dict[str, float]:
    """What slime reads: the reward (`failure_reward` without one), or with `reward_key`
    ``{reward_key: reward, "icrm_score", "icrm_failed"}``."""
    number = failure_reward if value is None else value
    if reward_key is None:
        return number
    return {**extras, reward_key: number}


def _failure_reward() -> float:
    raw = os.environ.get(FAILURE_REWARD_ENV, "") or "0"
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ConfigError(f"{FAILURE_REWARD_ENV} must be a finite number, got {raw!r}")
    return value


def _judge() -> Any:
    return shared_judge(from_sources(ICRMConfig, {}, os.environ))


async def reward(args: Any, sample: Any, **kwargs: Any) -> Any:
    """slime's custom reward function (``--custom-rm-path
    icrm.integrations.slime.reward``): one sample's reward, or one per sample of a list
    (``--group-rm`` hands a prompt's group) — each judged alone by an individual judge,
    or as groups of the same prompt by a pairwise or listwise judge's group strategy.

    Args:
        args: slime's arguments (``reward_key`` read when present).
        sample: a slime ``Sample`` (``prompt``, ``response``, ``metadata``), or a list.

    Returns:
        A number per sample (or a dict with ``args.reward_key``); see the module docstring.

    Raises:
        ConfigError: bad ``ICRM_*`` settings or ``ICRM_FAILURE_REWARD``.
        EngineError: the judge could not answer.
    """
    icrm = _judge()
    failure, key = _failure_reward(), getattr(args, "reward_key", None) or None
    samples: Sequence[Any] = sample if isinstance(sample, list) else [sample]
    conversations: list[Any] = []
    for index, one in enumerate(samples):
        try:
            conversations.append(prompt_response_turns(one.prompt, one.response, f"sample {index}"))
        except InputError as error:
            conversations.append(error)
    if icrm.rm_type.single:
        feedbacks = await asyncio.gather(*(_one(icrm, c) for c in conversations))
        raise_if_judge_down(feedbacks, "slime")
        results = [(reward_of(icrm.rm_type, f), trainer_extras(icrm.rm_type, f)) for f in feedbacks]
    else:
        results = await _grouped(icrm, samples, conversations)
    out = []
    for one, (value, extras) in zip(samples, results):
        metadata = getattr(one, "metadata", None)
        if isinstance(metadata, dict):
            metadata.update(extras)
        out.append(answer(value, extras, failure, key))
    return out if isinstance(sample, list) else out[0]


async def _one(icrm: Any, conversation: Any) -> FeedbackBase:
    if isinstance(conversation, InputError):
        return icrm.rm_type.failed(conversation)
    return await icrm.ajudge_item({"conversation": conversation})


async def _grouped(icrm: Any, samples: Sequence[Any],
                   conversations: list[Any]) -> list[tuple[float | None, dict[str, float]]]:
    """Each sample's reward and extras, judged in groups of the same prompt
    (`icrm.groups.by_prompt`); an unreadable sample is left out of its group and has none."""
    usable = [i for i, c in enumerate(conversations) if not isinstance(c, InputError)]
    judged = await judge_by_prompt(icrm, [samples[i].prompt for i in usable], [conversations[i] for i in usable],
                                   concurrency=64)
    raise_if_judge_down(judged.feedbacks, "slime")
    results: list[tuple[float | None, dict[str, float]]] = [(None, {"icrm_score": 0.0, "icrm_failed": 1.0})] * len(samples)
    for place, i in enumerate(usable):
        value, score = judged.rewards[place], judged.scores[place]
        results[i] = (value, {"icrm_score": 0.0 if score is None else float(score), "icrm_failed": float(value is None)})
    return results
