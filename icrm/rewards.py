"""From one judgement to what a surface hands on: a result row, a reward, or a failure.

A reward exists only when the judge gave a verdict (DESIGN.md, "Trust"). A judgement
without one is one of three things, and each surface's contract decides what it becomes:

- the answer held no verdict (``parse``): the judge answered; asking again at
  temperature 0 gives the same answer;
- the item cannot be judged (``input``): the caller's data, not the judge;
- the judge could not answer (``engine``, ``engine_unavailable``, ``engine_status``,
  ``config``, ``internal``): `judge_failed` — never a reward, anywhere.

What a surface does when the judge could not answer is its `JudgeDownPolicy`, named in
`POLICIES` with the reason its contract gives:

| surface | the request / call fails when | else a sample without a verdict gets |
| --- | --- | --- |
| ``icrm score`` / ``eval`` | never: the row records it, a re-run redoes it | its row (error, kind, reason) |
| ``/v1/reward`` | every item, the judge unavailable (503) | its result's ``error`` |
| ``/v1/reward/group`` | every judgement of the group (503) | a None reward and its ``errors`` entry |
| ``/service_output`` | any item (503 / 502) | a 4xx (no verdict: 502) |
| OpenRLHF ``/get_reward`` | any sample (503 / 502) | ``failure_reward`` + ``icrm_failed`` 1.0 |
| TRL reward function | every sample of the call | None (TRL skips it) |
| verl ``compute_score`` | the sample (raised) | ``failure_reward`` + ``icrm_failed`` 1.0 |
| slime ``/slime/reward``, ``reward`` | any sample (503 / 502; raised) | ``failure_reward`` + ``icrm_failed`` 1.0 |
| AReaL ``ICRMReward`` | the sample (raised) | ``failure_reward`` and a warning, or raised |
| verifiers ``ICRMJudge`` | the rollout (raised) | raised (``UnjudgedError``) |
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import EngineError
from .feedback import JUDGEMENT_FIELDS, FeedbackBase
from .rm_types import RMType

__all__ = ["result_fields", "result_row", "reward", "judge_failed", "JudgeDownPolicy", "POLICIES", "judge_down",
           "raise_if_judge_down", "trainer_extras", "extra_keys"]

# Kinds of error that mean the judge did not answer (see the module docstring).
_NOT_THE_JUDGE = (None, "input")


def judge_failed(feedback: FeedbackBase) -> bool:
    """True when the judge could not answer (not a missing verdict, not a bad item)."""
    return feedback.error_kind not in _NOT_THE_JUDGE


def reward(rm_type: RMType, feedback: FeedbackBase) -> float | None:
    """The reward in [0, 1] of a judgement, None when it has no verdict
    (`icrm.rm_types.RMType.feedback_reward`: from the distribution where the method
    gives one, else from the verdict)."""
    return rm_type.feedback_reward(feedback)


def result_fields(feedback: FeedbackBase, rm_type: RMType) -> dict[str, Any]:
    """What a judgement's result says, for rows and API answers: ``feedback`` (the
    judge's fields, or null), the verdict, ``reward``, ``raw_text``, ``error``,
    ``error_kind`` (``parse`` for an answer without a verdict), ``error_reason``,
    ``finish_reason``, ``usage``, ``latency_s``, ``cache_hit`` and the judgement's own
    fields (`icrm.feedback.JUDGEMENT_FIELDS`)."""
    return {
        "feedback": feedback.to_dict() if feedback.ok else None,
        rm_type.verdict_key: rm_type.verdict(feedback),
        "reward": reward(rm_type, feedback),
        "raw_text": feedback.raw_text,
        "error": feedback.error or feedback.parse_error,
        "error_kind": feedback.error_kind if feedback.error else ("parse" if feedback.parse_error else None),
        "error_reason": feedback.parse_error_reason,
        "finish_reason": feedback.finish_reason,
        "usage": feedback.usage.model_dump() if feedback.usage else None,
        "latency_s": feedback.latency_s,
        "cache_hit": feedback.cache_hit,
        **{name: getattr(feedback, name, None) for name in JUDGEMENT_FIELDS},
    }


def result_row(item_id: str, feedback: FeedbackBase, provenance: Mapping[str, Any], rm_type: RMType,
               **extra: Any) -> dict[str, Any]:
    """One results-file row: ``id``, `result_fields`, `extra` (a benchmark's
    ``row_id`` and ``tag``) and ``provenance`` (the run's fields, fingerprint and the
    shot ids shown)."""
    return {"id": item_id, **result_fields(feedback, rm_type), **extra,
            "provenance": {**provenance, "shot_ids": feedback.shot_ids}}


@dataclass(frozen=True)
class JudgeDownPolicy:
    """What a surface does with judgements the judge could not answer.

    Attributes:
        fail_when: ``any`` (one such judgement fails the request) or ``all`` (only when
            every judgement of the request / call is one).
        why: the reason, from the surface's contract.
    """

    fail_when: str
    why: str


POLICIES: dict[str, JudgeDownPolicy] = {
    "service_output": JudgeDownPolicy("any", "Infernet's /service_output judges one item: without the judge there "
                                             "is no answer to give"),
    "reward_batch": JudgeDownPolicy("all", "/v1/reward answers per item, each failed item with its error; only a "
                                           "request none of whose items the judge could answer is a 503"),
    "reward_group": JudgeDownPolicy("all", "/v1/reward/group gives each response its reward or its error; only a "
                                           "group none of whose judgements the judge could answer is a 503"),
    "openrlhf": JudgeDownPolicy("any", "OpenRLHF takes one number per sample and cannot skip one; it retries a "
                                       "failed request, so failing beats a failure_reward that would train on an "
                                       "outage"),
    "trl": JudgeDownPolicy("all", "TRL skips a None reward; a call with no reward at all would train on nothing, "
                                  "so it is raised"),
    "slime": JudgeDownPolicy("any", "slime takes a number per sample and cannot skip one; its client retries a "
                                    "failed request, then stops the rollout"),
    "areal": JudgeDownPolicy("any", "AReaL's reward wrapper retries a raised error and then raises it; a number "
                                    "would train on the outage"),
    "verifiers": JudgeDownPolicy("any", "verifiers' judges raise so that a judge failure errors the rollout "
                                        "instead of scoring the model"),
    "verl": JudgeDownPolicy("any", "verl takes a number per sample and cannot skip one: an outage is raised"),
}


def judge_down(feedbacks: Sequence[FeedbackBase], surface: str) -> FeedbackBase | None:
    """The judgement that fails a request under `surface`'s `JudgeDownPolicy` (the
    first the judge could not answer), or None when the request stands.

    >>> from icrm.feedback import IndividualFeedback
    >>> down, fine = IndividualFeedback(error="refused", error_kind="engine_unavailable"), IndividualFeedback(score=3)
    >>> judge_down([down, fine], "trl") is None, judge_down([down, fine], "openrlhf") is down
    (True, True)
    """
    failed = [f for f in feedbacks if judge_failed(f)]
    if not failed:
        return None
    policy = POLICIES[surface]
    if policy.fail_when == "any" or len(failed) == len(feedbacks):
        return failed[0]
    return None


def raise_if_judge_down(feedbacks: Sequence[FeedbackBase], surface: str) -> None:
    """Raise when `judge_down` fails the request (for trainer integrations).

    Raises:
        EngineError: naming how many judgements the judge could not answer, and why.
    """
    down = judge_down(feedbacks, surface)
    if down is not None:
        failed = sum(judge_failed(f) for f in feedbacks)
        raise EngineError(f"icrm: the judge could not answer {failed} of {len(feedbacks)} sample(s) "
                          f"({down.error_kind}: {down.error}); {POLICIES[surface].why}")


def trainer_extras(rm_type: RMType, feedback: FeedbackBase) -> dict[str, float]:
    """The numbers a trainer logs beside a reward: ``icrm_score`` (the verdict as a
    number: the score, or the choice's or rubric's reward; 0 when none),
    ``icrm_failed`` (1.0 when the judgement has no verdict) and, with a rubric, each
    criterion's value in [0, 1] as ``icrm_<criterion>`` (0 when none)."""
    verdict = rm_type.verdict(feedback) if feedback.ok else None
    value = 0.0 if verdict is None else float(verdict) if isinstance(verdict, (int, float)) else \
        rm_type.feedback_reward(feedback)
    values = (getattr(feedback, "values", None) if feedback.ok else None) or {}  # a rubric's, by criterion
    return {"icrm_score": value, "icrm_failed": 0.0 if feedback.ok else 1.0,
            **{key: float(values.get(key.removeprefix("icrm_"), 0.0)) for key in extra_keys(rm_type)[2:]}}


def extra_keys(rm_type: RMType) -> tuple[str, ...]:
    """The keys of `trainer_extras` for `rm_type`, the same for every sample:
    ``icrm_score``, ``icrm_failed``, then ``icrm_<criterion>`` per rubric criterion."""
    rubric = getattr(rm_type, "rubric", None)
    return ("icrm_score", "icrm_failed", *(f"icrm_{name}" for name in (rubric.names if rubric else ())))
