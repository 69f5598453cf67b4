"""Feedback: the typed result of one judgement.

`IndividualFeedback` (a ``score``) and `PairwiseFeedback` (a ``choice``) hold the
judge's fields under their JSON keys, plus an envelope: the raw text, usage, timing,
the shot ids, and — when there is no verdict — why (``parse_error`` with its reason, or
``error`` with its kind). Which class, keys and schema an rm type uses is its
`icrm.rm_types.RMType`'s business; parsing is `icrm.parsing`'s.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator

from .engines.base import Usage

__all__ = [
    "PAIRWISE_CHOICES",
    "END_OF_FEEDBACK",
    "MIN_SCORE",
    "MAX_SCORE",
    "TEXT_FIELD_MAX_CHARS",
    "FeedbackBase",
    "IndividualFeedback",
    "PairwiseFeedback",
    "ListwiseFeedback",
    "RubricFeedback",
    "Feedback",
    "ENVELOPE_FIELDS",
    "JUDGEMENT_FIELDS",
    "answer_keys",
    "ranking",
]

PAIRWISE_CHOICES = ("A++", "A+", "A=B", "B+", "B++")
END_OF_FEEDBACK = "<|end_of_feedback|>"
MIN_SCORE, MAX_SCORE = 1, 10
# Bound on every free-text field in the structured-output schema. Small models under
# grammar-constrained decoding can repeat a phrase until max_tokens cuts the object open
# (DESIGN.md, measured on SmolLM2-135M); llama.cpp compiles maxLength into its grammar.
TEXT_FIELD_MAX_CHARS = 240


class FeedbackBase(BaseModel):
    """What every feedback carries besides the judge's own fields (the envelope)."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    raw_text: str = ""
    """The model's text exactly as generated."""
    usage: Usage | None = None
    """Tokens used by the request that produced this feedback (None when unknown)."""
    parse_error: str | None = None
    """Why the text holds no valid feedback; None when it parsed. When set, the score
    or choice is None."""
    parse_error_reason: str | None = None
    """With ``parse_error``: one of `icrm.errors.PARSE_REASONS` (``truncated``,
    ``ambiguous``, ``missing_keys``, ...)."""
    finish_reason: str | None = None
    """Why the server stopped generating (``stop``, ``length``, ...), when it said."""
    error: str | None = None
    """Why there is no answer at all (an invalid input or an engine failure in a batch);
    None otherwise. When set, ``raw_text`` is empty."""
    error_kind: str | None = None
    """With ``error``: the error's kind (``input``, ``engine``, ``engine_unavailable``,
    ``engine_status``, ``config``, ``internal``), see `icrm.errors`."""
    cache_hit: bool = False
    """True when the text came from the generation cache, not a new request."""
    shot_ids: list[str] | None = None
    """Ids of the shots shown, in order."""
    latency_s: float | None = None
    """Seconds the request took (for a cache hit: the request that filled the cache)."""
    method: str | None = None
    """The judging method (``critique``, ``verdict``, ``logprob``)."""
    probabilities: dict[str, float] | None = None
    """``logprob``: the distribution over the verdicts (keys are the verdicts as text:
    ``"1"`` … ``"10"`` or ``"A++"`` … ``"B++"``), renormalised over the labels."""
    label_mass: float | None = None
    """``logprob``: the probability mass the labels held among the top logprobs,
    before renormalising (low = the judge wanted to write something else)."""
    position: str | None = None
    """Pairwise: the order judged, ``AB`` (as given), ``BA`` (swapped) or ``both``."""
    position_consistent: bool | None = None
    """``position="both"``: whether the two orders agreed on the side (A, B or a tie)."""
    order_verdicts: dict[str, Any] | None = None
    """``position="both"``: each order's verdict, in the caller's orientation."""
    num_samples: int | None = None
    """Self-consistency: samples drawn (None for one)."""
    agreement: float | None = None
    """Self-consistency: share of the parsed samples that gave the final verdict."""
    sample_verdicts: list[Any] | None = None
    """Self-consistency: every sample's verdict (None where it held none)."""

    @property
    def ok(self) -> bool:
        """True when there is an answer and it parsed."""
        return self.parse_error is None and self.error is None

    def to_dict(self) -> dict[str, Any]:
        """The feedback fields under their JSON keys (e.g. ``"analysis of A"``), without
        raw text, usage or error."""
        return self.model_dump(by_alias=True, exclude=set(ENVELOPE_FIELDS))

    @field_validator("*", mode="before")
    @classmethod
    def _text_fields_as_strings(cls, value: Any, info: Any) -> Any:
        # Models write lists or objects into text fields (e.g. a checklist as a list);
        # keep their content rather than reject the whole feedback for it.
        if info.field_name in _TEXT_FIELDS and value is not None and not isinstance(value, str):
            if isinstance(value, list):
                return "\n".join(v if isinstance(v, str) else json.dumps(v) for v in value)
            return json.dumps(value, ensure_ascii=False)
        return value


class IndividualFeedback(FeedbackBase):
    """Feedback on one response (individual mode).

    JSON keys: ``intent``, ``checklist``, ``strengths``, ``weaknesses``, ``score``.
    """

    intent: str | None = None
    """What the user wants, in the judge's words."""
    checklist: str | None = None
    """What a good response must do."""
    strengths: str | None = None
    """What the response does well."""
    weaknesses: str | None = None
    """What the response does badly."""
    score: int | None = Field(default=None, ge=MIN_SCORE, le=MAX_SCORE)
    """Integer 1–10: 1–2 very poor, 3–4 poor, 5–6 fair with issues, 7–8 good, 9–10 perfect."""
    expected_score: float | None = None
    """The mean score: over the ``logprob`` distribution (G-Eval's expected score), or
    over the samples with ``num_samples`` > 1."""


class PairwiseFeedback(FeedbackBase):
    """Feedback comparing two responses to the same query (pairwise mode).

    JSON keys: ``analysis of A``, ``analysis of B``, ``reason of A=B``,
    ``reason of A>B``, ``reason of B>A``, ``choice``.
    """

    analysis_of_A: str | None = Field(default=None, alias="analysis of A")
    """What response A does well and badly."""
    analysis_of_B: str | None = Field(default=None, alias="analysis of B")
    """What response B does well and badly."""
    reason_of_A_eq_B: str | None = Field(default=None, alias="reason of A=B")
    """The case for a tie."""
    reason_of_A_gt_B: str | None = Field(default=None, alias="reason of A>B")
    """The case for A."""
    reason_of_B_gt_A: str | None = Field(default=None, alias="reason of B>A")
    """The case for B."""
    choice: Literal["A++", "A+", "A=B", "B+", "B++"] | None = None
    """``A++`` A is much better, ``A+`` A is better, ``A=B`` as good, ``B+`` B is better,
    ``B++`` B is much better."""
    p_a_better: float | None = None
    """``logprob``: P(A++) + P(A+) + ½·P(A=B), so that P(A better) + P(B better) = 1."""


def ranking(values: Sequence[float]) -> list[int]:
    """Indexes best first; equal values keep their given order.

    >>> ranking([3, 9, 3, 7])
    [1, 3, 0, 2]
    """
    return sorted(range(len(values)), key=lambda i: (-values[i], i))


class ListwiseFeedback(FeedbackBase):
    """Feedback on a group of k responses to the same conversation (listwise mode),
    labelled ``1`` … ``k`` in the order judged and told back in the order given.

    JSON keys: ``analysis`` (label → a short analysis) and ``scores`` (label → 1–10).
    """

    analysis: dict[str, str] | None = None
    """A short analysis of each response, by label (``"1"`` … ``"k"``)."""
    scores: list[int | float] | None = None
    """One score 1–10 per response, in the order given (a mean where orders or samples
    were combined)."""
    p_best: list[float] | None = None
    """``logprob``: P(response i is the best of the group), per response; sums to 1."""
    @computed_field  # type: ignore[prop-decorator]
    @property
    def ranking(self) -> list[int] | None:
        """The responses' indexes (0-based, in the order given), best first, from the
        scores (or P(best)); equal values keep their given order. None without either."""
        values = self.scores if self.scores is not None else self.p_best
        return None if values is None else ranking(values)

    @field_validator("analysis", mode="before")
    @classmethod
    def _analysis_as_text(cls, value: Any) -> Any:
        # Like every text field: keep what the judge wrote, as text.
        if isinstance(value, dict):
            return {str(k): v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for k, v in value.items()}
        return value


class RubricFeedback(FeedbackBase):
    """Feedback against a rubric's criteria (`icrm.rubric`): one verdict per criterion,
    each with a short reason, judging one response or a pair.

    JSON key: ``criteria`` (criterion name → ``{"reason": ..., "verdict": ...}``).
    """

    criteria: dict[str, dict[str, Any]] | None = None
    """Per criterion, in rubric order: ``reason`` (text, None for the ``verdict``
    method) and ``verdict`` (one of its choices, a scale integer, or for a pair
    ``A++`` … ``B++``)."""
    values: dict[str, float] | None = None
    """Per criterion, its verdict's value in [0, 1] (for a pair: how much A is
    preferred); a mean where orders or samples were combined."""
    failed_gates: list[str] | None = None
    """The required criteria that failed (the reward is then 0)."""


Feedback = Union[IndividualFeedback, PairwiseFeedback, ListwiseFeedback, RubricFeedback]
ENVELOPE_FIELDS = ("raw_text", "usage", "parse_error", "parse_error_reason", "finish_reason", "error", "error_kind",
                   "cache_hit", "latency_s", "shot_ids", "method", "probabilities", "label_mass", "position",
                   "position_consistent", "order_verdicts", "num_samples", "agreement", "sample_verdicts",
                   "expected_score", "p_a_better")
# What a judgement adds to its verdict (kept apart from the judge's own fields).
JUDGEMENT_FIELDS = ENVELOPE_FIELDS[ENVELOPE_FIELDS.index("method"):]
_TEXT_FIELDS = {
    name
    for cls in (IndividualFeedback, PairwiseFeedback)
    for name in cls.model_fields
    if name not in (*ENVELOPE_FIELDS, "score", "choice")
}


def answer_keys(cls: type[FeedbackBase]) -> list[str]:
    """The JSON keys of a feedback class, in template order (verdict last).

    >>> answer_keys(IndividualFeedback)
    ['intent', 'checklist', 'strengths', 'weaknesses', 'score']
    """
    return [f.alias or name for name, f in cls.model_fields.items() if name not in ENVELOPE_FIELDS]
