"""``verdict``: the verdict alone, as one label — the same prompt as ``logprob``
(`icrm.methods.labels`), and an answer of one token, constrained to the labels where
the server can (vLLM's ``choice``, llama.cpp's grammar).

Cost: the prompt's prefill plus one or two generated tokens. The answer must be exactly
one label; anything else is a parse error, never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..engines.base import GenerationRequest, GenerationResult
from ..errors import FeedbackParseError
from ..feedback import Feedback
from ..rm_types import RMType
from .labels import LabelMethod, parse_label

__all__ = ["Verdict", "VERDICT", "VERDICT_MAX_TOKENS"]

# A label, and room for the end of turn a chat server may add before stopping.
VERDICT_MAX_TOKENS = 2


class Verdict(LabelMethod):
    """The verdict alone, one label."""

    name = "verdict"

    def default_kwargs(self, rm_type: RMType) -> dict[str, Any]:
        return {"max_tokens": VERDICT_MAX_TOKENS, "stop": ["\n"]}

    def request(self, prompt: str, rm_type: RMType, *, completion: bool, constrain: bool,
                kwargs: dict[str, Any]) -> GenerationRequest:
        choices = rm_type.labels if constrain else None
        if completion:
            return GenerationRequest(prompt=prompt, kwargs=kwargs, choices=choices)
        return GenerationRequest(messages=[{"role": "user", "content": prompt}], kwargs=kwargs, choices=choices)

    def read_all(self, result: GenerationResult, rm_type: RMType, examples: Sequence[Mapping[str, Any]] = (),
                 **envelope: Any) -> list[Feedback]:
        feedbacks = []
        for index, (text, finish) in enumerate(zip(result.texts, result.finish_reasons)):
            common = {"raw_text": text, "finish_reason": finish, "cache_hit": result.cache_hit,
                      "latency_s": result.latency_s, "method": self.name,
                      "usage": result.usage if index == 0 else None, **envelope}
            try:
                verdict = parse_label(text, rm_type, finish)
            except FeedbackParseError as e:
                feedbacks.append(rm_type.feedback_class(parse_error=str(e), parse_error_reason=e.reason, **common))
                continue
            feedbacks.append(rm_type.feedback_class(**{rm_type.verdict_key: verdict}, **common))
        return feedbacks


VERDICT = Verdict()
