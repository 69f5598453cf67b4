"""A rubric judged criterion by criterion (`icrm.rubric`): the ``individual`` or
``pairwise`` rm type asked for one verdict per criterion instead of one holistic score.

The answer is ``{"criteria": {"<name>": {"reason": "...", "verdict": ...}, ...}}`` — every
criterion of the rubric (or of the part asked, with ``max_criteria``), each once, each
verdict valid for its criterion. Anything less is no verdict: criteria left out are
``missing_keys`` (named), an unknown criterion ``wrong_count``, a criterion twice
``ambiguous``, a verdict outside its choices ``invalid_verdict`` — never a reward from
some of the criteria. The reward is the rubric's aggregate of the criteria's values, 0
when a gate fails (`icrm.rubric.Rubric.reward`).

`rubric_rm_type` wraps an rm type's spec; `RubricRMType.parts` splits the criteria into
requests of at most ``max_criteria`` and `RubricRMType.merge` makes their answers one
judgement (one failed part and the item has no verdict, the part's criteria named).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from typing import Any

from ..engines.base import Usage
from ..errors import ConfigError, FeedbackParseError
from ..feedback import PAIRWISE_CHOICES, TEXT_FIELD_MAX_CHARS, FeedbackBase, RubricFeedback
from ..neutralize import heading_pattern, neutralize
from ..parsing import parse_object
from ..registry import Registry
from ..rubric import Rubric
from ..template import Template
from .base import RMType

__all__ = ["RubricRMType", "rubric_rm_type", "CRITERIA_KEY"]

CRITERIA_KEY = "criteria"
_PAIR_VALUES = {c: 1.0 - i / 4 for i, c in enumerate(PAIRWISE_CHOICES)}  # A++ 1.0 … B++ 0.0


@dataclass(frozen=True, eq=False)
class RubricRMType(RMType):
    """An rm type's spec with a rubric (its name stays the rm type's: ``individual`` or
    ``pairwise``); ``part`` is the criteria one request asks (None = all)."""

    base: RMType | None = None
    rubric: Rubric | None = None
    part: tuple[str, ...] | None = None

    @property
    def names(self) -> tuple[str, ...]:
        """The criteria this spec asks, in rubric order."""
        return self.part or tuple(self.rubric.names)  # type: ignore[union-attr]

    @property
    def template_name(self) -> str:
        return "rubric" if self.single else "rubric_pairwise"

    @property
    def combines_own(self) -> bool:
        return True

    def method_variant(self, method: Any) -> Any:
        """``critique`` writes a reason per criterion, ``verdict`` the verdicts alone;
        ``logprob`` is refused (one label per criterion is not built yet)."""
        if method.name == "logprob":
            raise ConfigError("method 'logprob' with a rubric is not supported yet (it would read one distribution "
                              "per criterion): use method 'critique' or 'verdict'")
        return _METHODS.get(method.name) if method.name in _METHODS else method

    def default_shots(self) -> tuple[list[Any], str]:
        return list(self.rubric.shots), "rubric's shots (per-criterion feedback)"  # type: ignore[union-attr]

    # -- the prompt ----------------------------------------------------------------------

    def template_keys(self, role: str) -> tuple[str, ...]:
        keys = self.base.template_keys(role)  # type: ignore[union-attr]
        return (*keys, "criteria", "answer_format") if role == "overall" else keys

    def specialise(self, template: Template, method: Any) -> Template:
        """The overall template with the rubric written in: ``{$criteria}`` (each
        criterion and its verdicts) and ``{$answer_format}`` (the object to write)."""
        if template.jinja:
            raise ConfigError(f"template {template.source}: a rubric writes its criteria into a {{$key}} template "
                              "({$criteria}, {$answer_format}); Jinja templates cannot take it: use a {$key} template")
        reasons = method.name != "verdict"
        example = {name: ({"reason": f"why, for {name}", "verdict": "its verdict"} if reasons else "its verdict")
                   for name in self.names}
        # The rubric's text (a user's, or an imported grader's prompt) is written in once: a "{$" in it must never
        # read as a placeholder, nor a marker or one of the template's headings as the prompt's own.
        criteria = neutralize(self._rubric_part().prompt_text(not self.single), heading_pattern([template.text]))
        criteria = criteria.replace("{$", "{ $")
        answer = json.dumps({CRITERIA_KEY: example}, indent=4, ensure_ascii=False).replace("{$", "{ $")
        text = template.text.replace("{$criteria}", criteria).replace("{$answer_format}", answer)
        return Template(text, f"{template.source}:rubric")

    def _rubric_part(self) -> Rubric:
        rubric = self.rubric
        if self.part is None:
            return rubric  # type: ignore[return-value]
        return rubric.model_copy(update={"criteria": tuple(c for c in rubric.criteria if c.name in self.part)})  # type: ignore[union-attr]

    # -- the answer ----------------------------------------------------------------------

    def keys(self) -> list[str]:
        return [CRITERIA_KEY]

    def _verdicts_of(self, name: str) -> tuple[Any, ...]:
        return PAIRWISE_CHOICES if not self.single else self.rubric.criterion(name).verdicts  # type: ignore[union-attr]

    def json_schema(self, keys: Sequence[str] | None = None, reasons: bool = True) -> dict[str, Any]:
        """Every criterion asked, in order: a bounded reason and its verdict's enum."""
        properties = {}
        for name in self.names:
            verdicts = list(self._verdicts_of(name))
            verdict = {"type": "integer" if isinstance(verdicts[0], int) else "string", "enum": verdicts}
            properties[name] = {"type": "object", "properties": {"reason": {"type": "string",
                                                                            "maxLength": TEXT_FIELD_MAX_CHARS},
                                                                 "verdict": verdict},
                                "required": ["reason", "verdict"], "additionalProperties": False} if reasons else verdict
        criteria = {"type": "object", "properties": properties, "required": list(self.names),
                    "additionalProperties": False}
        return {"type": "object", "properties": {CRITERIA_KEY: criteria}, "required": [CRITERIA_KEY]}

    def normalize(self, value: Any, text: str = "") -> Any:
        """The criteria of an answer, in rubric order: ``{name: {"reason", "verdict"}}``.

        Raises:
            FeedbackParseError: ``ambiguous`` (a criterion twice), ``wrong_count`` (a
                name not asked), ``missing_keys`` (criteria left out, named),
                ``invalid_verdict`` (a verdict its criterion does not allow).
        """
        duplicates = getattr(value, "duplicates", None)
        if duplicates:
            raise FeedbackParseError(f"ambiguous answer: 'criteria' gives {', '.join(sorted(duplicates))} twice", text,
                                     "ambiguous")
        if not isinstance(value, dict):
            raise FeedbackParseError(f"'criteria' must be an object of criterion -> verdict, got "
                                     f"{type(value).__name__}", text, "invalid_verdict")
        given = {str(k).strip(): v for k, v in value.items()}
        if len(given) < len(value):
            raise FeedbackParseError("ambiguous answer: 'criteria' names a criterion twice", text, "ambiguous")
        extra = [n for n in given if n not in self.names]
        if extra:
            raise FeedbackParseError(f"'criteria' names {', '.join(repr(e) for e in extra[:5])}, not a criterion "
                                     f"asked ({', '.join(self.names)})", text, "wrong_count")
        missing = [n for n in self.names if n not in given]
        if missing:
            raise FeedbackParseError(f"no verdict for criteria {', '.join(missing)}", text, "missing_keys")
        out = {}
        for name in self.names:
            entry = given[name]
            twice = getattr(entry, "duplicates", None)
            if twice:
                raise FeedbackParseError(f"ambiguous answer: criterion {name!r} gives {', '.join(sorted(twice))} twice",
                                         text, "ambiguous")
            reason, written = (entry.get("reason"), entry.get("verdict")) if isinstance(entry, dict) else (None, entry)
            verdict = self._read_verdict(name, written)
            if verdict is None:
                raise FeedbackParseError(f"criterion {name!r}: {written!r} is not one of its verdicts "
                                         f"({', '.join(map(str, self._verdicts_of(name)))})", text, "invalid_verdict")
            out[name] = {"reason": reason if isinstance(reason, str) or reason is None else str(reason),
                         "verdict": verdict}
        return out

    def _read_verdict(self, name: str, written: Any) -> Any:
        if self.single:
            return self.rubric.criterion(name).normalize(written)  # type: ignore[union-attr]
        if isinstance(written, str):
            compact = written.replace(" ", "").upper()
            return next((c for c in PAIRWISE_CHOICES if c == compact), None)
        return None

    def parse(self, text: str, finish_reason: str | None = None, keys: Sequence[str] | None = None,
              examples: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
        return parse_object(text, CRITERIA_KEY, [CRITERIA_KEY], self.normalize, finish_reason, examples)

    def build(self, text: str, usage: Usage | None = None, keys: Sequence[str] | None = None,
              examples: Sequence[Mapping[str, Any]] = (), **envelope: Any) -> Any:
        """Typed feedback with each criterion's value and the gates; a complete rubric
        whose aggregate fails (a formula dividing by zero) is ``invalid_verdict``."""
        feedback = super().build(text, usage, keys, examples, **envelope)
        return self.valued(feedback) if feedback.ok else feedback

    def valued(self, feedback: Any, values: Mapping[str, float] | None = None) -> Any:
        """`feedback` with ``values`` (default: from its verdicts) and, for the whole
        rubric, ``failed_gates``; a reward the rubric cannot compute is ``invalid_verdict``."""
        if values is None:
            values = {name: self._value(name, entry["verdict"]) for name, entry in feedback.criteria.items()}
        update: dict[str, Any] = {"values": values}
        if self.part is None:
            try:
                self.rubric.reward(values)  # type: ignore[union-attr]
            except ValueError as e:
                return feedback.model_copy(update={**update, "parse_error": str(e), "parse_error_reason": "invalid_verdict"})
            update["failed_gates"] = self.rubric.failed_gates(values) if self.single else []  # type: ignore[union-attr]
        return feedback.model_copy(update=update)

    def _value(self, name: str, verdict: Any) -> float:
        return self.rubric.criterion(name).value(verdict) if self.single else _PAIR_VALUES[verdict]  # type: ignore[union-attr]

    def verdict(self, feedback: FeedbackBase) -> Any:
        """Each criterion's verdict by name (None without a verdict)."""
        criteria = getattr(feedback, CRITERIA_KEY, None)
        return None if criteria is None or not feedback.ok else {n: e["verdict"] for n, e in criteria.items()}

    def reward(self, verdict: Any) -> float:
        """The rubric's reward in [0, 1] for verdicts by criterion (`Rubric.reward`)."""
        return self.rubric.reward({n: self._value(n, v) for n, v in verdict.items()})  # type: ignore[union-attr]

    def feedback_reward(self, feedback: FeedbackBase) -> float | None:
        """The rubric's reward from the judgement's values (a mean where orders or
        samples were combined); None without a verdict."""
        values = getattr(feedback, "values", None)
        return self.rubric.reward(values) if feedback.ok and values is not None else None  # type: ignore[union-attr]

    def rating(self, record: Mapping[str, Any]) -> Any:
        """The row's reward (the rubric's aggregate, orders and samples combined)."""
        return record.get("reward")

    def check_shot_feedback(self, feedback: Any, where: str) -> None:
        """A shot's feedback: ``criteria`` with a valid verdict for each criterion asked.

        Raises:
            ConfigError: naming `where`, the criterion and what it must be.
        """
        if not isinstance(feedback, dict) or not isinstance(feedback.get(CRITERIA_KEY), dict):
            raise ConfigError(f"{where}: a rubric shot's 'feedback' must be {{\"criteria\": {{<criterion>: "
                              f"{{\"reason\": ..., \"verdict\": ...}}}}}} with criteria {', '.join(self.names)}")
        shown = {k: v for k, v in feedback[CRITERIA_KEY].items() if k in self.names}
        unknown = sorted(set(feedback[CRITERIA_KEY]) - set(self.rubric.names))  # type: ignore[union-attr]
        if unknown:
            raise ConfigError(f"{where}: feedback names {', '.join(unknown)}, not criteria of the rubric")
        try:
            self.normalize(shown)
        except FeedbackParseError as e:
            raise ConfigError(f"{where}: feedback {e}") from None

    def shot_feedback(self, feedback: Mapping[str, Any], reasons: bool = True) -> dict[str, Any]:
        """What a shot shows: the criteria asked, with or without their reasons."""
        criteria = feedback[CRITERIA_KEY]
        shown = {n: (criteria[n] if reasons else criteria[n]["verdict"] if isinstance(criteria[n], dict)
                     else criteria[n]) for n in self.names}
        return {CRITERIA_KEY: shown}

    def prefers_chosen(self, verdicts: Mapping[str, Any]) -> list[float | None]:
        """As the rm type's, comparing the rubric's rewards."""
        rewards = {tag: None if v is None else self.reward(v) for tag, v in verdicts.items()}
        if self.single:
            chosen, rejected = rewards.get("chosen"), rewards.get("rejected")
            return [None] if chosen is None or rejected is None else [0.5 if chosen == rejected else float(chosen > rejected)]
        return [None if r is None else 0.5 if r == 0.5 else float((r > 0.5) == (tag == "AB")) for tag, r in rewards.items()]

    # -- several requests, one judgement -------------------------------------------------

    def parts(self, max_criteria: int | None) -> list[RubricRMType]:
        """The specs of the requests one item is judged with: all criteria at once, or
        groups of at most `max_criteria` in rubric order."""
        names = self.rubric.names  # type: ignore[union-attr]
        if not max_criteria or max_criteria >= len(names):
            return [self]
        return [replace(self, part=tuple(names[i:i + max_criteria])) for i in range(0, len(names), max_criteria)]

    def merge(self, parts: Sequence[RubricRMType], feedbacks: Sequence[Any]) -> Any:
        """One judgement from the `parts`' `feedbacks` (each for its own criteria)."""
        usages = [f.usage for f in feedbacks if f.usage is not None]
        usage = sum(usages[1:], usages[0]) if usages else None
        failed = [f for f in feedbacks if not f.ok]
        if failed:
            missing = [n for f, p in zip(feedbacks, parts) if not f.ok for n in p.names]
            first = failed[0]
            if first.error is not None:
                return first.model_copy(update={"usage": usage})
            return first.model_copy(update={"usage": usage, "parse_error": f"no verdict for criteria "
                                            f"{', '.join(missing)}: {first.parse_error}"})
        criteria = {n: e for f in feedbacks for n, e in f.criteria.items()}
        values = {n: v for f in feedbacks for n, v in f.values.items()}  # each part's, orders already combined
        both = [f for f in feedbacks if f.order_verdicts is not None]  # position "both": every part's orders
        orders = {"order_verdicts": {o: {n: v for f in both for n, v in f.order_verdicts[o].items()} for o in ("AB", "BA")},
                  "position_consistent": all(f.position_consistent for f in both)} if both else {}
        merged = feedbacks[0].model_copy(update={
            **orders, "criteria": {n: criteria[n] for n in self.names}, "usage": usage,
            "raw_text": "\n".join(f.raw_text for f in feedbacks),
            "latency_s": max((f.latency_s or 0.0 for f in feedbacks), default=None)})
        return self.valued(merged, {n: values[n] for n in self.names})

    # -- position (pairwise): a swapped judgement told back, two orders combined ----------

    def flip(self, feedback: Any) -> Any:
        """A judgement of the swapped pair told in the given order: each criterion's
        verdict mirrored (``A+`` ↔ ``B+``), its value 1 − v."""
        if feedback.criteria is None:
            return feedback
        mirror = dict(zip(PAIRWISE_CHOICES, reversed(PAIRWISE_CHOICES)))
        criteria = {n: {**e, "verdict": mirror[e["verdict"]]} for n, e in feedback.criteria.items()}
        values = None if feedback.values is None else {n: 1.0 - v for n, v in feedback.values.items()}
        return feedback.model_copy(update={"criteria": criteria, "values": values})

    def combine_orders(self, as_given: Any, swapped: Any, **common: Any) -> Any:
        """Both orders of a pair: the mean value per criterion; consistent when, on
        every criterion asked, both orders favour the same side (a part of the rubric
        can tell that without the others)."""
        def side(value: float) -> int:
            return 0 if value == 0.5 else (1 if value > 0.5 else -1)

        consistent = all(side(as_given.values[n]) == side(swapped.values[n]) for n in self.names)
        return self.combine([as_given, swapped], position_consistent=consistent, **common)

    def vote(self, samples: Sequence[Any], **common: Any) -> Any:
        """Samples of one item: the mean value per criterion; ``agreement`` is the
        share of samples whose verdicts on every criterion are the most common ones."""
        combined = self.combine(samples, **common)
        verdicts = [json.dumps(self.verdict(s), sort_keys=True) for s in samples]
        return combined.model_copy(update={"agreement": max(map(verdicts.count, verdicts)) / len(samples)})

    def combine(self, feedbacks: Sequence[Any], **common: Any) -> Any:
        """One judgement from several of the same item (orders, samples): the mean
        value per criterion. Without a verdict in any, the first one's reason stands."""
        voting = [f for f in feedbacks if f.ok]
        if not voting:
            return feedbacks[0].model_copy(update=common)
        values = {n: statistics.fmean(f.values[n] for f in voting) for n in self.names}
        update = {**common, "values": values}
        if self.single:
            update["failed_gates"] = self.rubric.failed_gates(values)  # type: ignore[union-attr]
        return voting[0].model_copy(update=update)


_METHODS: Registry[Any] = Registry("rubric method", {"verdict": "icrm.methods.rubric:RUBRIC_VERDICT"})


def rubric_rm_type(base: RMType, rubric: Rubric) -> RubricRMType:
    """`base` (``individual`` or ``pairwise``) judged against `rubric`.

    Raises:
        ConfigError: a listwise base, or gates with a pair (a gate is one response's).
    """
    if base.group:
        raise ConfigError("a rubric judges one response (rm_type individual) or a pair (pairwise), not a group: "
                          "use rm_type individual with group_strategy individual")
    if not base.single and any(c.required for c in rubric.criteria):
        gated = ", ".join(c.name for c in rubric.criteria if c.required)
        raise ConfigError(f"rubric criteria {gated} are required (gates), which apply to one response's reward, not "
                          "to a pair's preference: use rm_type individual, or drop 'required'")
    common = {f.name: getattr(base, f.name) for f in fields(RMType)}
    common.update(feedback_class=RubricFeedback, verdict_key=CRITERIA_KEY, verdicts=(), rewards={}, labels=(),
                  mirrored=())
    return RubricRMType(**common, base=base, rubric=rubric)
