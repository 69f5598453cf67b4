"""``critique`` (the default, as the original IC-RM): the judge writes the whole feedback
object — intent, checklist, strengths and weaknesses (individual) or an analysis of
each response and the case for each verdict (pairwise) — then the score or choice.

Cost: the prompt's prefill plus the ~90–200 tokens of the critique. With constrained
output the server keeps the object to the feedback schema.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..engines.base import GenerationRequest, GenerationResult
from ..feedback import Feedback
from ..rm_types import RMType
from .base import JudgingMethod

__all__ = ["Critique", "CRITIQUE"]


class Critique(JudgingMethod):
    """The full critique, then the verdict."""

    name = "critique"

    def request(self, prompt: str, rm_type: RMType, *, completion: bool, constrain: bool,
                kwargs: dict[str, Any]) -> GenerationRequest:
        schema = self.schema(rm_type) if constrain else None
        if completion:
            return GenerationRequest(prompt=prompt, kwargs=kwargs, json_schema=schema)
        return GenerationRequest(messages=[{"role": "user", "content": prompt}], kwargs=kwargs, json_schema=schema)

    def schema(self, rm_type: RMType) -> dict[str, Any]:
        """The JSON schema the answer is constrained to: the method's answer keys."""
        return rm_type.json_schema(self.answer_keys(rm_type))

    def read_all(self, result: GenerationResult, rm_type: RMType, examples: Sequence[Mapping[str, Any]] = (),
                 **envelope: Any) -> list[Feedback]:
        keys = self.answer_keys(rm_type)
        return [rm_type.build(text, result.usage if i == 0 else None, keys, examples, finish_reason=finish,
                              method=self.name,
                              cache_hit=result.cache_hit, latency_s=result.latency_s, **envelope)
                for i, (text, finish) in enumerate(zip(result.texts, result.finish_reasons))]


CRITIQUE = Critique()
