"""Feedback: the typed result of a judgement, its JSON schema, and the parser entry point.

Parsing (`icrm.parsing`) is strict about the verdict and forgiving only about JSON
syntax: an answer yields a ``score`` or ``choice`` only when it holds exactly one
feedback object of the expected shape; a truncated, ambiguous or shape-less answer is a
`FeedbackParseError` carrying the raw text and a reason — never an invented value.
"""

from __future__ import annotations

import json
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .engines.base import Usage
from .errors import ConfigError, FeedbackParseError
from .parsing import normalize_choice, normalize_score, parse_object

__all__ = [
    "RM_TYPES",
    "PAIRWISE_CHOICES",
    "END_OF_FEEDBACK",
    "IndividualFeedback",
    "PairwiseFeedback",
    "Feedback",
    "feedback_keys",
    "feedback_json_schema",
    "parse_feedback",
    "check_rm_type",
]

RM_TYPES = ("individual", "pairwise")
PAIRWISE_CHOICES = ("A++", "A+", "A=B", "B+", "B++")
END_OF_FEEDBACK = "<|end_of_feedback|>"
MIN_SCORE, MAX_SCORE = 1, 10
# Bound on every free-text field in the structured-output schema. Small models under
# grammar-constrained decoding can repeat a phrase until max_tokens cuts the object open
# (DESIGN.md, measured on SmolLM2-135M); llama.cpp compiles maxLength into its grammar.
TEXT_FIELD_MAX_CHARS = 240



class _FeedbackBase(BaseModel):
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

    @property
    def ok(self) -> bool:
        """True when there is an answer and it parsed."""
        return self.parse_error is None and self.error is None

    def to_dict(self) -> dict[str, Any]:
        """The feedback fields under their JSON keys (e.g. ``"analysis of A"``), without
        raw text, usage or error."""
        return self.model_dump(by_alias=True, exclude=set(_ENVELOPE_FIELDS))

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


class IndividualFeedback(_FeedbackBase):
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


class PairwiseFeedback(_FeedbackBase):
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


Feedback = Union[IndividualFeedback, PairwiseFeedback]
_FEEDBACK_CLASSES: dict[str, type[_FeedbackBase]] = {
    "individual": IndividualFeedback,
    "pairwise": PairwiseFeedback,
}
_ENVELOPE_FIELDS = ("raw_text", "usage", "parse_error", "parse_error_reason", "finish_reason", "error", "error_kind",
                    "cache_hit", "latency_s", "shot_ids")
_TEXT_FIELDS = {
    name
    for cls in _FEEDBACK_CLASSES.values()
    for name in cls.model_fields
    if name not in (*_ENVELOPE_FIELDS, "score", "choice")
}


def check_rm_type(rm_type: Any) -> str:
    """Return `rm_type` if it is ``individual`` or ``pairwise``.

    Raises:
        ConfigError: naming the accepted values.
    """
    if rm_type not in RM_TYPES:
        raise ConfigError(f"rm_type must be 'individual' or 'pairwise', got {rm_type!r}")
    return rm_type


def feedback_keys(rm_type: str) -> list[str]:
    """The JSON keys of a feedback object, in template order, ``score``/``choice`` last.

    >>> feedback_keys("individual")
    ['intent', 'checklist', 'strengths', 'weaknesses', 'score']
    """
    cls = _FEEDBACK_CLASSES[check_rm_type(rm_type)]
    return [f.alias or name for name, f in cls.model_fields.items() if name not in _ENVELOPE_FIELDS]


def feedback_json_schema(rm_type: str) -> dict[str, Any]:
    """A JSON schema for structured output (llama.cpp ``response_format``, vLLM ``json``).

    Every key is required and in template order; free-text fields are bounded by
    `TEXT_FIELD_MAX_CHARS` characters so constrained decoding always closes the object;
    ``score`` is an integer 1–10, ``choice`` one of `PAIRWISE_CHOICES`.
    """
    properties: dict[str, Any] = {}
    for key in feedback_keys(rm_type):
        if key == "score":
            properties[key] = {"type": "integer", "enum": list(range(MIN_SCORE, MAX_SCORE + 1))}
        elif key == "choice":
            properties[key] = {"type": "string", "enum": list(PAIRWISE_CHOICES)}
        else:
            properties[key] = {"type": "string", "maxLength": TEXT_FIELD_MAX_CHARS}
    return {"type": "object", "properties": properties, "required": list(properties)}


def parse_feedback(text: str, rm_type: str, finish_reason: str | None = None) -> dict[str, Any]:
    """Parse a model's answer into a feedback dict (the rule is in `icrm.parsing`).

    Args:
        text: the generated text (the model's continuation after ``<|begin_of_feedback|>``).
        rm_type: ``individual`` or ``pairwise``.
        finish_reason: the server's finish reason; ``length`` means the answer was cut.

    Returns:
        The one feedback object in `text`, with ``score`` an int in 1–10 (individual) or
        ``choice`` one of `PAIRWISE_CHOICES` (pairwise). Other keys as the model wrote them.

    Raises:
        FeedbackParseError: no verdict; ``raw_text`` is `text`, ``reason`` says why.

    >>> parse_feedback('{"intent": "i", "checklist": "c", "strengths": "s", "weaknesses": "w", "score": "7/10"}'
    ...                '<|end_of_feedback|> {"score": 1}', "individual")["score"]
    7
    >>> parse_feedback('{"choice": "B+", "analysis of A": "ok"', "pairwise")
    Traceback (most recent call last):
    ...
    icrm.errors.FeedbackParseError: truncated answer: the feedback object is still open where the answer ends
    """
    keys = feedback_keys(rm_type)
    if rm_type == "individual":
        return parse_object(text, "score", keys, normalize_score, finish_reason)
    return parse_object(text, "choice", keys, lambda v, t: normalize_choice(v, t, PAIRWISE_CHOICES), finish_reason)


def build_feedback(text: str, rm_type: str, usage: Usage | None = None, **envelope: Any) -> Feedback:
    """Parse `text` into typed feedback; never raises for a bad answer.

    Args:
        text: the model's answer.
        rm_type: ``individual`` or ``pairwise``.
        usage: the request's token counts.
        **envelope: ``finish_reason``, ``cache_hit``, ``latency_s`` (seconds),
            ``shot_ids``, or ``error`` + ``error_kind`` (no answer at all: then `text` is
            empty and no parse is attempted).

    Returns:
        `IndividualFeedback` or `PairwiseFeedback` carrying `text`, `usage` and the
        envelope; when the text holds no valid feedback its ``parse_error`` and
        ``parse_error_reason`` say why and score/choice is None.
    """
    cls = _FEEDBACK_CLASSES[check_rm_type(rm_type)]
    if envelope.get("error") is not None:
        return cls(raw_text=text, usage=usage, **envelope)
    try:
        obj = parse_feedback(text, rm_type, envelope.get("finish_reason"))
    except FeedbackParseError as e:
        return cls(raw_text=text, usage=usage, parse_error=str(e), parse_error_reason=e.reason, **envelope)
    fields = {k: obj.get(k) for k in feedback_keys(rm_type)}
    return cls.model_validate({**fields, "raw_text": text, "usage": usage, **envelope})
