"""``listwise``: a group of k responses to the same conversation judged in one request —
the shared context shown once, the responses labelled ``1`` … ``k``, and one score
(1–10) per response, each with a short analysis.

An item holds ``conversations``: k ≥ 2 conversations sharing everything but their last
(assistant) turn, as pairwise's two do. The answer is a verdict only when its
``scores`` give exactly the k labels, each once, each a valid score: fewer is
``missing_keys``, an unknown or extra label ``wrong_count``, a label twice
``ambiguous`` — never a partial ranking.

The spec of a group of k (`ListwiseRMType.sized`) knows its labels, its schema and its
normaliser; `RMType.for_item` gives it for an item. Position works as for a pair: ``BA``
is the group reversed (the last response shown first), told back in the given order.

Sources: listwise judging as in OpenPipe ART's RULER (a whole group in one call, one
score per response) and RewardBench 2's 4-way generative protocol.
"""

from __future__ import annotations

import functools
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..conversation import Conversation
from ..errors import ConfigError, FeedbackParseError, InputError
from ..feedback import MAX_SCORE, MIN_SCORE, TEXT_FIELD_MAX_CHARS, FeedbackBase, ListwiseFeedback
from ..parsing import normalize_score
from ..registry import Registry
from .base import RMType

__all__ = ["LISTWISE", "ListwiseRMType", "MAX_GROUP_SIZE", "MAX_LOGPROB_GROUP_SIZE", "normalize_scores"]

MAX_GROUP_SIZE = 32  # responses per group: a prompt of 32 responses is already ~20k tokens
MAX_LOGPROB_GROUP_SIZE = 9  # ``logprob`` reads one single-token label per response: 1-9


@dataclass(frozen=True, eq=False)
class ListwiseRMType(RMType):
    """The listwise spec; ``size`` is None for the rm type, k for a group of k."""

    size: int | None = None

    @property
    def single(self) -> bool:
        return False

    @property
    def group(self) -> bool:
        return True

    def method_variant(self, method: Any) -> Any:
        """``verdict`` answers with the scores alone, ``logprob`` reads which response
        is best (`icrm.methods.listwise`); ``critique`` is itself."""
        return _METHODS.get(method.name) if method.name in _METHODS else method

    def sized(self, k: int) -> ListwiseRMType:
        """The spec of a group of `k` (its labels ``1`` … ``k``)."""
        return _sized(self, k)

    def for_item(self, fields: Mapping[str, Any]) -> RMType:
        group = fields.get(self.input_fields[0])
        return self.sized(len(group)) if isinstance(group, (list, tuple)) and len(group) >= 2 else self

    # -- the answer ----------------------------------------------------------------------

    def keys(self) -> list[str]:
        return ["analysis", "scores"]

    def json_schema(self, keys: Sequence[str] | None = None) -> dict[str, Any]:
        """The answer's schema: every label of the group under each key, in order."""
        labels = self.labels or ("1", "2")
        shapes = {"analysis": {"type": "string", "maxLength": TEXT_FIELD_MAX_CHARS},
                  "scores": {"type": "integer", "enum": list(range(MIN_SCORE, MAX_SCORE + 1))}}
        properties = {key: {"type": "object", "properties": {label: shapes[key] for label in labels},
                            "required": list(labels), "additionalProperties": False}
                      for key in keys or self.keys()}
        return {"type": "object", "properties": properties, "required": list(properties)}

    def verdict(self, feedback: FeedbackBase) -> Any:
        """The scores, or for ``logprob`` the P(best) per response (None without)."""
        return getattr(feedback, "scores", None) or getattr(feedback, "p_best", None)

    def reward(self, verdict: Any) -> list[float]:  # type: ignore[override]
        """Each response's reward in [0, 1]: (score − 1) / 9."""
        return [(s - MIN_SCORE) / (MAX_SCORE - MIN_SCORE) for s in verdict]

    def feedback_reward(self, feedback: FeedbackBase) -> list[float] | None:  # type: ignore[override]
        """One reward per response: P(best) for ``logprob``, else (score − 1) / 9."""
        if not feedback.ok:
            return None
        p_best = getattr(feedback, "p_best", None)
        return list(p_best) if p_best is not None else self.reward(getattr(feedback, "scores"))

    # -- the input -----------------------------------------------------------------------

    def conversations(self, fields: Mapping[str, Any]) -> tuple[Conversation, ...]:
        """The group's conversations, checked.

        Raises:
            InputError: no ``conversations`` list, fewer than 2 or more than
                `MAX_GROUP_SIZE`, an invalid conversation (naming its index and turn),
                or conversations that differ before their last turn.
        """
        field_name = self.input_fields[0]
        others = sorted(k for k, v in fields.items() if k != field_name and v is not None)
        if others:
            raise InputError(f"listwise mode takes 'conversations' (a list of conversations), not "
                             f"{', '.join(others)}")
        group = fields.get(field_name)
        if not isinstance(group, (list, tuple)):
            raise InputError(f"listwise mode needs 'conversations': a list of 2 to {MAX_GROUP_SIZE} conversations, "
                             f"got {type(group).__name__}")
        if not 2 <= len(group) <= MAX_GROUP_SIZE:
            raise InputError(f"'conversations' must hold 2 to {MAX_GROUP_SIZE} conversations, got {len(group)}")
        found = tuple(Conversation.from_messages(c, f"conversations[{i}]") for i, c in enumerate(group))
        first = found[0]
        for index, other in enumerate(found[1:], 1):
            if len(other.turns) != len(first.turns) or other.turns[:-1] != first.turns[:-1]:
                raise InputError(f"the conversations of a group must share history and query: conversations[{index}] "
                                 "differs from conversations[0] before its last turn")
        return found

    def example_values(self, conversations: Sequence[Conversation],
                       clean: Callable[[str], str] = str) -> dict[str, str]:
        """History, query, and the responses as one labelled block (each response
        cleaned before it is framed, so the frame itself stays intact)."""
        first = conversations[0]
        block = "\n\n".join(f"<|begin_of_response_{i}|>\n{clean(c.model_output)}\n<|end_of_response_{i}|>"
                            for i, c in enumerate(conversations, 1))
        return {"history": clean(first.history), "user_query": clean(first.user_query), self.outputs[0]: block}

    def verdict_only_filled(self, feedback: Mapping[str, Any]) -> dict[str, Any]:
        """Scores alone, with an empty analysis per label."""
        return {"analysis": {label: "" for label in self.labels}, **feedback}

    def shot_class(self, feedback: Mapping[str, Any]) -> str:
        """The label of the best-scored response (``tie`` when several share the top)."""
        scores = feedback.get("scores")
        if not isinstance(scores, Mapping) or not scores:
            return "all"
        top = max(scores.values())
        best = [label for label, score in scores.items() if score == top]
        return best[0] if len(best) == 1 else "tie"

    def check_shot_feedback(self, feedback: Any, where: str) -> None:
        """A listwise shot's feedback: ``analysis`` and ``scores`` for exactly its labels.

        Raises:
            ConfigError: naming `where`, the field and the labels expected.
        """
        if not isinstance(feedback, dict):
            raise ConfigError(f"{where}: 'feedback' must be an object, got {type(feedback).__name__}")
        for key in self.keys():
            value = feedback.get(key)
            if not isinstance(value, dict) or sorted(value) != sorted(self.labels):
                raise ConfigError(f"{where}: feedback '{key}' must be an object with one entry per response, "
                                  f"labelled {', '.join(self.labels)}")
        for label in self.labels:
            score = feedback["scores"][label]
            if type(score) is not int or not MIN_SCORE <= score <= MAX_SCORE:
                raise ConfigError(f"{where}: feedback 'scores' of {label} must be an integer from {MIN_SCORE} to "
                                  f"{MAX_SCORE}, got {score!r}")
            if not isinstance(feedback["analysis"][label], str):
                raise ConfigError(f"{where}: feedback 'analysis' of {label} must be a string")

    def pair_judgements(self, chosen: list[dict[str, Any]], rejected: list[dict[str, Any]],
                        orders: Sequence[str]) -> list[tuple[str, dict[str, Any]]]:
        """A RewardBench pair as a group of two, chosen first (``AB``) or second (``BA``)."""
        key = self.input_fields[0]
        return [(tag, {key: [chosen, rejected] if tag == "AB" else [rejected, chosen]}) for tag in orders]

    def prefers_chosen(self, verdicts: Mapping[str, Any]) -> list[float | None]:
        """How each judgement of a pair (scores by tag, None = unparsed) ranks chosen
        over rejected: 1.0, 0.0, 0.5 for equal scores, None without scores."""
        out: list[float | None] = []
        for tag, scores in verdicts.items():
            if scores is None:
                out.append(None)
                continue
            chosen, rejected = scores if tag == "AB" else scores[::-1]
            out.append(0.5 if chosen == rejected else float(chosen > rejected))
        return out

    # -- position: BA is the group reversed ----------------------------------------------

    def swapped(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """The item with its responses in reverse order."""
        key = self.input_fields[0]
        return {**fields, key: list(reversed(fields[key]))}

    def flip(self, feedback: FeedbackBase) -> FeedbackBase:
        """A judgement of the reversed group, told in the given order."""
        k = len(self.labels)
        update: dict[str, Any] = {}
        for name in ("scores", "p_best"):
            value = getattr(feedback, name)
            if value is not None:
                update[name] = list(reversed(value))
        if getattr(feedback, "analysis") is not None:
            update["analysis"] = {str(k + 1 - int(label)) if label.isdigit() else label: text
                                  for label, text in feedback.analysis.items()}  # type: ignore[attr-defined]
        return feedback.model_copy(update=update)

    @property
    def combines_own(self) -> bool:
        return True

    def combine_orders(self, as_given: Any, swapped: Any, **common: Any) -> FeedbackBase:
        """Both orders of a group: the mean score per response; consistent when both
        orders rank the same response best."""
        return self.combine([as_given, swapped], position_consistent=as_given.ranking[0] == swapped.ranking[0],
                            **common)

    def vote(self, samples: Sequence[Any], **common: Any) -> FeedbackBase:
        """Samples of a group: the mean score per response; ``agreement`` is the share
        of samples that ranked the combined best first."""
        combined: Any = self.combine(samples, **common)
        best = [s.ranking[0] for s in samples]
        return combined.model_copy(update={"agreement": best.count(combined.ranking[0]) / len(samples)})

    def combine(self, feedbacks: Sequence[FeedbackBase], **common: Any) -> FeedbackBase:
        """One judgement from several of the same group (two orders, or samples): the
        mean score (and P(best)) per response. Without a verdict in any, the first one's
        reason stands; `common` fields are set on the result."""
        voting = [f for f in feedbacks if f.ok]
        if not voting:
            return feedbacks[0].model_copy(update=common)
        update: dict[str, Any] = dict(common)
        for name in ("scores", "p_best"):
            values = [getattr(f, name) for f in voting]
            if all(v is not None for v in values):
                update[name] = [statistics.fmean(column) for column in zip(*values)]
        return voting[0].model_copy(update=update)


def normalize_scores(value: Any, text: str, labels: Sequence[str]) -> list[int]:
    """The scores of a group's answer, in label order.

    Raises:
        FeedbackParseError: ``ambiguous`` (a label twice), ``missing_keys`` (a label
            without a score), ``wrong_count`` (labels the group does not have),
            ``invalid_verdict`` (not an object, or a score that is not 1–10).
    """
    duplicates = getattr(value, "duplicates", None)
    if duplicates:
        raise FeedbackParseError(f"ambiguous answer: 'scores' gives {', '.join(sorted(duplicates))} twice", text,
                                 "ambiguous")
    if not isinstance(value, dict):
        raise FeedbackParseError(f"'scores' must be an object of label -> score, got {type(value).__name__}", text,
                                 "invalid_verdict")
    given: dict[str, Any] = {}
    for key, score in value.items():
        label = str(key).strip()
        if label in given:
            raise FeedbackParseError(f"ambiguous answer: 'scores' gives {label} twice", text, "ambiguous")
        given[label] = score
    extra = [label for label in given if label not in labels]
    if extra:
        raise FeedbackParseError(f"'scores' names {', '.join(repr(e) for e in extra[:5])}, not a label of this "
                                 f"group of {len(labels)} ({', '.join(labels)}); it gives {len(given)} score(s)", text,
                                 "wrong_count")
    missing = [label for label in labels if label not in given]
    if missing:
        raise FeedbackParseError(f"'scores' lacks response(s) {', '.join(missing)} of {len(labels)}", text,
                                 "missing_keys")
    return [normalize_score(given[label], text) for label in labels]


def _unsized(value: Any, text: str) -> Any:
    raise FeedbackParseError("a listwise answer is read against its group's size", text, "invalid_verdict")


@functools.lru_cache(maxsize=MAX_GROUP_SIZE)
def _sized(spec: ListwiseRMType, k: int) -> ListwiseRMType:
    labels = tuple(str(i) for i in range(1, k + 1))
    return replace(spec, size=k, labels=labels, verdicts=labels,
                   normalizer=functools.partial(normalize_scores, labels=labels))


_METHODS: Registry[Any] = Registry("listwise method", {
    "verdict": "icrm.methods.listwise:LISTWISE_VERDICT",
    "logprob": "icrm.methods.listwise:LISTWISE_BEST",
})

LISTWISE = ListwiseRMType(
    name="listwise",
    input_fields=("conversations",),
    outputs=("responses",),
    feedback_class=ListwiseFeedback,
    verdict_key="scores",
    verdicts=(),
    normalizer=_unsized,
    rewards={},
)
