"""Feedback: the typed result of a judgement, its JSON schema, and the parser that turns
model text into it.

Parsing is strict about the one field that matters (``score`` or ``choice``) and
forgiving about JSON syntax: broken JSON is repaired with `json_repair`, the first
complete object wins (a model that runs on into another example cannot overwrite its
answer), and a missing or invalid score/choice is a `FeedbackParseError` carrying the
raw text — never an invented value.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal, Union

import json_repair
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .engines.base import Usage
from .errors import ConfigError, FeedbackParseError

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

# Where a model that runs on past its answer starts another block; a broken first
# object is cut here before repair so a later example's feedback cannot leak into it.
_RUN_ON = re.compile(r"<\||\n#{2,3} |\n\s*\n\s*\{")
_SCORE_TEXT = re.compile(r"^\s*(\d+)(?:\.0+)?\s*(?:/\s*10\s*)?$")


class _FeedbackBase(BaseModel):
    model_config = ConfigDict(populate_by_name=True, frozen=True)

    raw_text: str = ""
    """The model's text exactly as generated."""
    usage: Usage | None = None
    """Tokens used by the request that produced this feedback (None when unknown)."""
    parse_error: str | None = None
    """Why the text holds no valid feedback; None when it parsed. When set, the score
    or choice is None."""
    error: str | None = None
    """Why there is no answer at all (an invalid input or an engine failure in a batch);
    None otherwise. When set, ``raw_text`` is empty."""
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
_ENVELOPE_FIELDS = ("raw_text", "usage", "parse_error", "error", "cache_hit", "latency_s", "shot_ids")
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


def parse_feedback(text: str, rm_type: str) -> dict[str, Any]:
    """Parse a model's answer into a feedback dict.

    Args:
        text: the generated text (the model's continuation after ``<|begin_of_feedback|>``).
        rm_type: ``individual`` or ``pairwise``.

    Returns:
        The first JSON object in `text`, with ``score`` normalised to an int in 1–10
        (individual) or ``choice`` to one of `PAIRWISE_CHOICES` (pairwise). Other keys are
        kept as the model wrote them.

    Raises:
        FeedbackParseError: no JSON object, or a missing/invalid score or choice. Its
            ``raw_text`` is `text`.

    >>> parse_feedback('{"intent": "x", "score": "7/10"} <|end_of_feedback|> {"score": 1}', "individual")["score"]
    7
    >>> parse_feedback('{"choice": "B+", "analysis of A": "ok"', "pairwise")["choice"]
    'B+'
    >>> parse_feedback('{"score": 11}', "individual")
    Traceback (most recent call last):
    ...
    icrm.errors.FeedbackParseError: score 11 is outside 1-10
    """
    obj = _first_object(text)
    if check_rm_type(rm_type) == "individual":
        obj["score"] = _parse_score(obj.get("score"), text)
    else:
        obj["choice"] = _parse_choice(obj.get("choice"), text)
    return obj


def build_feedback(text: str, rm_type: str, usage: Usage | None = None, **envelope: Any) -> Feedback:
    """Parse `text` into typed feedback; never raises for a bad answer.

    Args:
        text: the model's answer.
        rm_type: ``individual`` or ``pairwise``.
        usage: the request's token counts.
        **envelope: ``cache_hit``, ``latency_s`` (seconds), ``shot_ids``, or ``error``
            (no answer at all: then `text` is empty and no parse is attempted).

    Returns:
        `IndividualFeedback` or `PairwiseFeedback` carrying `text`, `usage` and the
        envelope; when the text holds no valid feedback its ``parse_error`` says why and
        score/choice is None.
    """
    cls = _FEEDBACK_CLASSES[check_rm_type(rm_type)]
    if envelope.get("error") is not None:
        return cls(raw_text=text, usage=usage, **envelope)
    try:
        obj = parse_feedback(text, rm_type)
    except FeedbackParseError as e:
        return cls(raw_text=text, usage=usage, parse_error=str(e), **envelope)
    fields = {k: obj.get(k) for k in feedback_keys(rm_type)}
    return cls.model_validate({**fields, "raw_text": text, "usage": usage, **envelope})


def _first_object(text: str) -> dict[str, Any]:
    body = text.split(END_OF_FEEDBACK, 1)[0]
    start = body.find("{")
    if start < 0:
        raise FeedbackParseError("no JSON object in the model's answer", text)
    try:
        obj, _ = json.JSONDecoder().raw_decode(body, start)
    except json.JSONDecodeError:
        fragment = body[start:]
        run_on = _RUN_ON.search(fragment, 1)
        if run_on:
            fragment = fragment[: run_on.start()]
        obj = json_repair.loads(fragment)
        if isinstance(obj, list):
            obj = next((o for o in obj if isinstance(o, dict)), None)
    if not isinstance(obj, dict) or not obj:
        raise FeedbackParseError("no JSON object in the model's answer", text)
    return obj


def _parse_score(value: Any, text: str) -> int:
    if value is None:
        raise FeedbackParseError("the feedback has no 'score'", text)
    score: int | None = None
    if isinstance(value, bool):
        score = None
    elif isinstance(value, int):
        score = value
    elif isinstance(value, float) and value.is_integer():
        score = int(value)
    elif isinstance(value, str) and (m := _SCORE_TEXT.match(value)):
        score = int(m.group(1))
    if score is None:
        raise FeedbackParseError(f"score {value!r} is not an integer", text)
    if not MIN_SCORE <= score <= MAX_SCORE:
        raise FeedbackParseError(f"score {score} is outside {MIN_SCORE}-{MAX_SCORE}", text)
    return score


def _parse_choice(value: Any, text: str) -> str:
    if value is None:
        raise FeedbackParseError("the feedback has no 'choice'", text)
    choice = "".join(value.split()) if isinstance(value, str) else value
    if choice not in PAIRWISE_CHOICES:
        raise FeedbackParseError(
            f"choice {value!r} is not one of {', '.join(PAIRWISE_CHOICES)}", text
        )
    return choice
