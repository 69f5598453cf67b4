"""OpenRLHF's remote reward contract, as ``icrm serve`` answers it on ``POST /get_reward``.

OpenRLHF (``--reward.remote_url http://HOST:3000/get_reward``; its client is
``openrlhf/utils/agent.py``, v0.11) sends ``{"query": [...], "prompts": [...],
"labels": [...]}`` — each query the prompt as its chat template rendered it, plus the
response — and reads ``rewards`` (or ``scores``) and ``extra_logs``, one number per
sample, every ``extra_logs`` value a list of floats.

What an unjudged sample becomes (`icrm.rewards.POLICIES`, ``openrlhf``): a judge that
could not answer fails the whole request (503 / 502, and OpenRLHF retries it; after its
last try it stops the step) — never a reward. A sample whose answer held no verdict, or
that is not a judgeable conversation (no prompt and no chat template to split the query
by), gets ``failure_reward`` (``--failure_reward``, default 0.0) with
``extra_logs.icrm_failed`` 1.0, so a trainer can mask it: OpenRLHF's contract has no way
to skip one sample. Pick ``failure_reward`` where it does the least harm (e.g. the
group's mean reward scale's middle, 0.5), or watch ``icrm_failed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel

from ..chat_templates import split_templated
from ..errors import InputError
from ..feedback import FeedbackBase
from ..rewards import extra_keys, reward, trainer_extras
from ..rm_types import RMType

__all__ = ["OpenRLHFRequest", "split_query", "items", "answer"]


class OpenRLHFRequest(BaseModel):
    """OpenRLHF's remote reward request (``openrlhf/utils/agent.py``, v0.11:
    ``{"query", "prompts", "labels"}``; an extra server of several gets ``query: []``)."""

    query: list[str]
    """Prompt + response texts, one per sample (may be empty)."""
    prompts: list[str] | None = None
    """The prompt texts; the response is ``query`` with its prompt prefix removed."""
    labels: list[Any] | None = None
    """Reference labels (unused by an in-context reward model)."""


def split_query(query: str, prompt: str) -> list[dict[str, str]]:
    """OpenRLHF's ``query`` (prompt + response) as a conversation.

    A prompt rendered by a common chat template (`icrm.chat_templates`: ChatML, Llama 3,
    Mistral, Gemma, DeepSeek) becomes its turns without the template's special tokens;
    with no prompt, a templated query is split alone. A plain prompt is the user turn,
    and the response is the query with its prompt prefix removed (the whole query when it
    does not start so).

    Raises:
        InputError: no prompt, and no chat template in the query to tell the question
            from the response — judging it would judge an empty question.

    >>> split_query("2+2? 4", "2+2?")[-1]
    {'role': 'assistant', 'content': ' 4'}
    """
    templated = split_templated(prompt or query, query)  # no prompt: the query's own turns
    if templated is not None:
        return templated
    if not prompt:
        raise InputError("the sample has no prompt and its query no chat template to split it by: send 'prompts' "
                         "(OpenRLHF does), or render queries with the model's chat template")
    response = query[len(prompt):] if query.startswith(prompt) else query
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


def items(body: OpenRLHFRequest) -> list[dict[str, Any] | InputError]:
    """One judge item per sample, or the `InputError` of a sample that is not one.

    Raises:
        InputError: ``prompts`` and ``query`` of different lengths (the whole request).
    """
    prompts = body.prompts if body.prompts is not None else [""] * len(body.query)
    if len(prompts) != len(body.query):
        raise InputError(f"prompts: {len(prompts)} prompts for {len(body.query)} queries")
    out: list[dict[str, Any] | InputError] = []
    for query, prompt in zip(body.query, prompts):
        try:
            out.append({"conversation": split_query(query, prompt)})
        except InputError as error:
            out.append(error)
    return out


def answer(feedbacks: Sequence[FeedbackBase], rm_type: RMType, failure_reward: float) -> dict[str, Any]:
    """OpenRLHF's answer: ``rewards`` and ``scores`` (the same list: reward, or
    `failure_reward` for a sample without a verdict) and ``extra_logs`` (``icrm_score``,
    ``icrm_failed`` and, with a rubric, ``icrm_<criterion>``: lists of finite floats,
    `icrm.rewards.trainer_extras`). The judge must have answered every
    sample (`icrm.rewards.judge_down` first)."""
    rewards = [failure_reward if (r := reward(rm_type, f)) is None else r for f in feedbacks]
    extras = [trainer_extras(rm_type, f) for f in feedbacks]
    return {"rewards": rewards, "scores": rewards,
            "extra_logs": {key: [e[key] for e in extras] for key in extra_keys(rm_type)}}
