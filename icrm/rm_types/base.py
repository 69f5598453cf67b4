"""`RMType`: the spec of an rm type — what it means to judge its items.

An `RMType` is the one place that knows an rm type's input fields, template keys and
default templates, feedback class, verdict (``score`` 1–10 or ``choice`` A++ … B++),
JSON schema, reward mapping, and how a RewardBench pair becomes its judgements. Code
elsewhere asks the spec (``rm_type.verdict_key``, ``rm_type.reward(verdict)``) instead
of comparing names; each rm type is one module of this package (`icrm.rm_types`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..conversation import Conversation, check_same_context
from ..engines.base import Usage
from ..errors import ConfigError, FeedbackParseError, InputError
from ..feedback import (
    MAX_SCORE,
    MIN_SCORE,
    TEXT_FIELD_MAX_CHARS,
    Feedback,
    FeedbackBase,
    answer_keys,
)
from ..parsing import parse_object

__all__ = ["RMType"]

# The values a template receives for the example(s) it shows.
_EXAMPLE_KEYS = ("history", "user_query")


@dataclass(frozen=True, eq=False)
class RMType:
    """One rm type's spec.

    Attributes:
        name: ``individual`` or ``pairwise``.
        input_fields: the item fields holding its conversation(s).
        outputs: the template keys of the response(s) judged, one per input field.
        feedback_class: its typed feedback.
        verdict_key: ``score`` or ``choice``.
        verdicts: every valid verdict, in order (the schema's enum).
        normalizer: ``(value, text) -> verdict``, raising `FeedbackParseError`.
        rewards: the reward in [0, 1] of each verdict (individual: (score − 1) / 9;
            pairwise: how much A is preferred, 1.0 for A++ down to 0.0 for B++).
        labels: one single-token label per verdict, in order, for the ``logprob``
            method: digits, one token in every common tokenizer (individual ``0``–``9``
            for scores 1–10; pairwise ``1``–``5`` for A++ … B++).
        mirrored: the fields that swap when A and B swap places (pairwise), as pairs.
    """

    name: str
    input_fields: tuple[str, ...]
    outputs: tuple[str, ...]
    feedback_class: type[FeedbackBase]
    verdict_key: str
    verdicts: tuple[Any, ...]
    normalizer: Callable[[Any, str], Any] = field(repr=False)
    rewards: Mapping[Any, float] = field(repr=False)
    labels: tuple[str, ...] = ()
    mirrored: tuple[tuple[str, str], ...] = ()

    @property
    def single(self) -> bool:
        """True when one judgement judges one response (individual)."""
        return len(self.input_fields) == 1

    @property
    def group(self) -> bool:
        """True when one judgement judges a group of any size (listwise)."""
        return False

    def method_variant(self, method: Any) -> Any:
        """The judging method as this rm type asks it (a listwise ``verdict`` answers
        with scores, not one label); the method itself by default."""
        return method

    @property
    def template_name(self) -> str:
        """The stem of its default templates (``icrm/templates/<stem>.txt``)."""
        return self.name

    @property
    def combines_own(self) -> bool:
        """True when it tells a swapped judgement back and combines several judgements
        of one item itself (``flip``, ``combine_orders``, ``combine``: listwise, rubrics);
        otherwise `icrm.position` and `icrm.methods.combine` do, by the verdict."""
        return False

    def default_shots(self) -> tuple[list[Any], str]:
        """Its default shots pool (records, and a name for messages)."""
        import importlib.resources
        import json

        text = (importlib.resources.files("icrm") / "shots_pool" / f"{self.name}.json").read_text(encoding="utf-8")
        return json.loads(text), f"default {self.name} shots pool"

    def specialise(self, template: Any, method: Any) -> Any:
        """The overall template as this spec asks it (a rubric writes its criteria in);
        the template itself by default."""
        return template

    def shot_feedback(self, feedback: Mapping[str, Any], reasons: bool = True) -> Mapping[str, Any]:
        """What a shot shows of its feedback (a rubric part: its criteria); all of it by
        default."""
        return feedback

    def verdict_only_filled(self, feedback: Mapping[str, Any]) -> dict[str, Any]:
        """A verdict-only shot's feedback with every other key present and empty, so the
        verdict is checked as a whole shot's would be."""
        return {**{key: "" for key in self.keys()}, **feedback}

    def shot_class(self, feedback: Mapping[str, Any]) -> str:
        """A shot's verdict class, which ``balanced`` shot selection balances: pairwise
        ``A`` / ``tie`` / ``B`` (the preferred side); individual ``low`` (1–3) /
        ``middle`` (4–7) / ``high`` (8–10); ``all`` for a verdict of another kind.

        >>> from icrm.rm_types import INDIVIDUAL, PAIRWISE
        >>> PAIRWISE.shot_class({"choice": "B++"}), INDIVIDUAL.shot_class({"score": 8})
        ('B', 'high')
        """
        verdict = feedback.get(self.verdict_key)
        if self.verdict_key == "choice" and isinstance(verdict, str):
            return "tie" if verdict == "A=B" else verdict[0]
        if self.verdict_key == "score" and isinstance(verdict, int):
            return "low" if verdict <= 3 else "middle" if verdict <= 7 else "high"
        return "all"

    def parts(self, max_criteria: int | None) -> list[RMType]:
        """The specs of the requests one item is judged with: itself (a rubric may split
        its criteria, `icrm.rm_types.rubric`)."""
        return [self]

    def for_item(self, fields: Mapping[str, Any]) -> RMType:
        """The spec an item is judged with: this one, or for a group its size's
        (`icrm.rm_types.listwise`)."""
        return self

    def __eq__(self, other: object) -> bool:
        # A spec equals its name, so `icrm.rm_type == "pairwise"` reads as it always did.
        if isinstance(other, str):
            return other == self.name
        return isinstance(other, RMType) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __str__(self) -> str:
        return self.name

    # -- the answer ----------------------------------------------------------------------

    def keys(self) -> list[str]:
        """The feedback's JSON keys in template order, the verdict last.

        >>> from icrm.rm_types import INDIVIDUAL
        >>> INDIVIDUAL.keys()
        ['intent', 'checklist', 'strengths', 'weaknesses', 'score']
        """
        return answer_keys(self.feedback_class)

    def json_schema(self, keys: Sequence[str] | None = None) -> dict[str, Any]:
        """A JSON schema for structured output (llama.cpp ``response_format``, vLLM
        ``structured_outputs``, OpenAI ``json_schema``) of `keys` (default: all).

        Every key is required and in order; free-text fields are bounded by
        `TEXT_FIELD_MAX_CHARS` so constrained decoding always closes the object; the
        verdict is an enum of `verdicts`.
        """
        properties: dict[str, Any] = {}
        for key in keys or self.keys():
            if key == self.verdict_key:
                kind = "integer" if isinstance(self.verdicts[0], int) else "string"
                properties[key] = {"type": kind, "enum": list(self.verdicts)}
            else:
                properties[key] = {"type": "string", "maxLength": TEXT_FIELD_MAX_CHARS}
        return {"type": "object", "properties": properties, "required": list(properties)}

    def normalize(self, value: Any, text: str = "") -> Any:
        """The verdict `value` normalised (``"7/10"`` → 7, ``"A +"`` → ``A+``).

        Raises:
            FeedbackParseError: (``invalid_verdict``) not a verdict.
        """
        return self.normalizer(value, text)

    def parse(self, text: str, finish_reason: str | None = None, keys: Sequence[str] | None = None,
              examples: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
        """The one feedback object of `keys` (default: all) in `text` (`icrm.parsing`);
        an object repeating one of `examples` (the prompt's format examples) is an echo.

        Raises:
            FeedbackParseError: no verdict, with the reason.
        """
        return parse_object(text, self.verdict_key, list(keys or self.keys()), self.normalizer, finish_reason,
                            examples)

    def build(self, text: str, usage: Usage | None = None, keys: Sequence[str] | None = None,
              examples: Sequence[Mapping[str, Any]] = (), **envelope: Any) -> Feedback:
        """Typed feedback for an answer; never raises for a bad answer.

        Args:
            text: the model's answer.
            usage: the request's token counts.
            keys: the answer's expected shape (default: every feedback key).
            examples: the prompt's format examples (an answer repeating one is an echo).
            **envelope: ``finish_reason``, ``cache_hit``, ``latency_s`` (seconds),
                ``shot_ids``, ... or ``error`` + ``error_kind`` (no answer at all: no
                parse is attempted).

        Returns:
            The feedback; when the text holds no verdict its ``parse_error`` and
            ``parse_error_reason`` say why and the verdict is None.
        """
        cls = self.feedback_class
        if envelope.get("error") is not None:
            return cls(raw_text=text, usage=usage, **envelope)  # type: ignore[return-value]
        try:
            obj = self.parse(text, envelope.get("finish_reason"), keys, examples)
        except FeedbackParseError as e:
            return cls(raw_text=text, usage=usage, parse_error=str(e), parse_error_reason=e.reason,  # type: ignore[return-value]
                       **envelope)
        fields = {k: obj.get(k) for k in self.keys()}
        return cls.model_validate({**fields, "raw_text": text, "usage": usage, **envelope})  # type: ignore[return-value]

    def failed(self, error: BaseException | str, kind: str | None = None, **envelope: Any) -> Feedback:
        """Feedback for an item with no answer at all (a bad input, an engine failure)."""
        return self.feedback_class(error=str(error), error_kind=kind or getattr(error, "kind", "internal"),  # type: ignore[return-value]
                                   **envelope)

    def verdict(self, feedback: FeedbackBase) -> Any:
        """The feedback's score or choice (None when it has none)."""
        return getattr(feedback, self.verdict_key)

    def reward(self, verdict: Any) -> float:
        """The verdict as a reward in [0, 1] (see `rewards`).

        >>> from icrm.rm_types import INDIVIDUAL, PAIRWISE
        >>> INDIVIDUAL.reward(10), PAIRWISE.reward("B+")
        (1.0, 0.25)
        """
        return self.rewards[verdict]

    def rating(self, record: Mapping[str, Any]) -> Any:
        """What a results row rates its response with, for benchmarks that compare
        ratings (RewardBench 2's best-of-4): the verdict; a rubric's reward."""
        return record.get(self.verdict_key)

    def feedback_reward(self, feedback: FeedbackBase) -> float | None:
        """The reward in [0, 1] of a judgement, None when it has no verdict: from the
        distribution where there is one (``logprob``: (expected score − 1) / 9, or
        ``p_a_better``), else from the verdict (`reward`)."""
        if not feedback.ok:
            return None
        expected = getattr(feedback, "expected_score", None)
        if expected is not None and feedback.probabilities is not None:
            low, high = self.verdicts[0], self.verdicts[-1]
            return (expected - low) / (high - low)
        p_a_better = getattr(feedback, "p_a_better", None)
        if p_a_better is not None:
            return p_a_better
        return self.reward(self.verdict(feedback))

    # -- the input -----------------------------------------------------------------------

    def conversations(self, fields: Mapping[str, Any]) -> tuple[Conversation, ...]:
        """Validate an item's conversations (given as `input_fields`).

        Raises:
            InputError: a field is missing, another rm type's field is given, or a
                conversation is invalid (naming the turn); pairwise conversations must
                share everything but their last turn.
        """
        given = {k for k, v in fields.items() if v is not None}
        missing = [f for f in self.input_fields if f not in given]
        extra = sorted(given - set(self.input_fields))
        if missing or extra:
            from . import RM_TYPES

            other = next((t for t in RM_TYPES.values() if t is not self and given & set(t.input_fields)), None)
            hint = f" (for {' and '.join(other.input_fields)} use rm_type='{other.name}')" if other else ""
            what = f"needs {' and '.join(repr(f) for f in self.input_fields)}" if missing else \
                f"takes {' and '.join(self.input_fields)}, not {', '.join(extra)}"
            raise InputError(f"{self.name} mode {what}{hint}")
        conversations = tuple(Conversation.from_messages(fields[f], f) for f in self.input_fields)
        if len(conversations) == 2:
            check_same_context(*conversations)
        return conversations

    def example_values(self, conversations: Sequence[Conversation],
                       clean: Callable[[str], str] = str) -> dict[str, str]:
        """The template values of one example: history, user query and response(s),
        each passed through `clean` (the prompt builder's neutraliser)."""
        first = conversations[0]
        values = {"history": clean(first.history), "user_query": clean(first.user_query)}
        values.update({key: clean(c.model_output) for key, c in zip(self.outputs, conversations)})
        return values

    def template_keys(self, role: str) -> tuple[str, ...]:
        """The keys a template of `role` (``overall`` or ``shot``) must use."""
        keys = (*_EXAMPLE_KEYS, *self.outputs)
        return ("shots", *keys) if role == "overall" else ("index", *keys, "feedback")

    def check_shot_feedback(self, feedback: Any, where: str) -> None:
        """Check a shot's feedback: every key, a valid verdict, text fields as text.

        Raises:
            ConfigError: naming `where` and the field.
        """
        if not isinstance(feedback, dict):
            raise ConfigError(f"{where}: 'feedback' must be an object, got {type(feedback).__name__}")
        for key in self.keys():
            if key not in feedback:
                raise ConfigError(f"{where}: feedback lacks '{key}'")
        verdict = feedback[self.verdict_key]
        if type(verdict) is not type(self.verdicts[0]) or verdict not in self.verdicts:
            shown = f"an integer from {MIN_SCORE} to {MAX_SCORE}" if self.verdict_key == "score" else \
                f"one of {', '.join(self.verdicts)}"
            raise ConfigError(f"{where}: feedback '{self.verdict_key}' must be {shown}, got {verdict!r}")
        for key in self.keys():
            if key != self.verdict_key and not isinstance(feedback[key], str):
                raise ConfigError(f"{where}: feedback '{key}' must be a string, got {type(feedback[key]).__name__}")

    # -- RewardBench pairs ---------------------------------------------------------------

    def pair_judgements(self, chosen: list[dict[str, Any]], rejected: list[dict[str, Any]],
                        orders: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
        """The judgements that compare `chosen` with `rejected` (two conversations), as
        ``(tag, item)``: individual scores each (tags ``chosen`` and ``rejected``);
        pairwise judges the pair once per order in `orders` (``AB`` = chosen in A).
        """
        if self.single:
            field_name = self.input_fields[0]
            return [("chosen", {field_name: chosen}), ("rejected", {field_name: rejected})]
        a, b = self.input_fields
        return [(tag, {a: chosen, b: rejected} if tag == "AB" else {a: rejected, b: chosen}) for tag in orders]

    def prefers_chosen(self, verdicts: Mapping[str, Any]) -> list[float | None]:
        """How each judgement of a pair (verdicts by tag, None = unparsed) ranks chosen
        over rejected: 1.0 chosen, 0.0 rejected, 0.5 a tie, None no verdict. One value
        for individual (both scores compared), one per order for pairwise."""
        if self.single:
            chosen, rejected = verdicts.get("chosen"), verdicts.get("rejected")
            if chosen is None or rejected is None:
                return [None]
            return [0.5 if chosen == rejected else float(chosen > rejected)]
        out: list[float | None] = []
        for tag, choice in verdicts.items():
            if choice is None:
                out.append(None)
                continue
            a_better = self.reward(choice)
            out.append(0.5 if a_better == 0.5 else float((a_better > 0.5) == (tag == "AB")))
        return out
