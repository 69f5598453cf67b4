"""The fast methods as a group asks them (`icrm.rm_types.listwise`): ``verdict`` is the
scores alone, one JSON object; ``logprob`` is "which response is best", one label per
response (``1`` … ``9``) read as a distribution — P(best = i), each response's reward.
``critique`` needs no variant: its answer is the whole listwise feedback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..engines.base import GenerationResult
from ..errors import ConfigError, FeedbackParseError, InputError
from ..feedback import Feedback
from ..rm_types import RMType
from .critique import Critique
from .logprob import LOGPROB_ENGINES, Logprob, label_distribution

__all__ = ["ListwiseVerdict", "ListwiseBest", "LISTWISE_VERDICT", "LISTWISE_BEST", "LISTWISE_VERDICT_MAX_TOKENS"]

# {"scores": {"1": 7, ...}} is ~5 tokens per response: room for a group of 32 and spaces.
LISTWISE_VERDICT_MAX_TOKENS = 320


class ListwiseVerdict(Critique):
    """The scores alone: ``{"scores": {"1": 7, "2": 4, ...}}``."""

    name = "verdict"

    def default_kwargs(self, rm_type: RMType) -> dict[str, Any]:
        return {"max_tokens": LISTWISE_VERDICT_MAX_TOKENS}

    def answer_keys(self, rm_type: RMType) -> list[str]:
        return [rm_type.verdict_key]

    def shot_feedback(self, rm_type: RMType, feedback: dict[str, Any]) -> dict[str, Any]:
        return {rm_type.verdict_key: feedback[rm_type.verdict_key]}

    def default_templates(self, rm_type: RMType) -> tuple[str, str, str]:
        return "listwise_verdict", "listwise_shot", "listwise_verdict_feedback"


class ListwiseBest(Logprob):
    """Which response is best: the first token's distribution over the labels."""

    def check_item(self, rm_type: RMType) -> None:
        from ..rm_types.listwise import MAX_LOGPROB_GROUP_SIZE

        if len(rm_type.labels) > MAX_LOGPROB_GROUP_SIZE:
            raise InputError(f"method 'logprob' reads one single-token label per response, so a group holds at most "
                             f"{MAX_LOGPROB_GROUP_SIZE} responses; this one has {len(rm_type.labels)}: use method "
                             "'verdict' or 'critique', or a pairwise group strategy")

    def answer_keys(self, rm_type: RMType) -> list[str]:
        return ["best"]

    def shot_feedback(self, rm_type: RMType, feedback: dict[str, Any]) -> dict[str, Any]:
        scores = feedback[rm_type.verdict_key]
        return {"best": int(max(scores, key=lambda label: (scores[label], -int(label))))}

    def default_templates(self, rm_type: RMType) -> tuple[str, str, str]:
        return "listwise_best", "listwise_best_shot", "listwise_best_feedback"

    def read_all(self, result: GenerationResult, rm_type: RMType, examples: Sequence[Mapping[str, Any]] = (),
                 **envelope: Any) -> list[Feedback]:
        if result.logprobs is None or all(lp is None for lp in result.logprobs):
            raise ConfigError(f"method 'logprob' needs token logprobs, but the {result.engine} server returned none; "
                              f"use an engine that gives them ({LOGPROB_ENGINES}), or another method", fatal=True)
        feedbacks = []
        for index, (text, finish, logprobs) in enumerate(zip(result.texts, result.finish_reasons, result.logprobs)):
            common = {"raw_text": text, "finish_reason": finish, "cache_hit": result.cache_hit,
                      "latency_s": result.latency_s, "method": self.name,
                      "usage": result.usage if index == 0 else None, **envelope}
            try:
                distribution, mass = label_distribution(logprobs, rm_type, text, result.engine)
            except FeedbackParseError as e:
                feedbacks.append(rm_type.feedback_class(parse_error=str(e), parse_error_reason=e.reason, **common))
                continue
            feedbacks.append(rm_type.feedback_class(p_best=[distribution[label] for label in rm_type.labels],
                                                    probabilities=distribution, label_mass=mass, **common))
        return feedbacks


LISTWISE_VERDICT = ListwiseVerdict()
LISTWISE_BEST = ListwiseBest()
