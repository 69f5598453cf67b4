"""``verdict``: the same rubric and shots as ``critique``, but the shots show only their
verdict and the judge writes only ``{"score": N}`` or ``{"choice": "..."}`` — a few
generated tokens instead of a critique, constrained to that object where the server can.
"""

from __future__ import annotations

from typing import Any

from ..rm_types import RMType
from .critique import Critique

__all__ = ["Verdict", "VERDICT"]

# Enough for '{"choice": "A++"}' in any tokenizer, with room for a space or a newline.
VERDICT_MAX_TOKENS = 24


class Verdict(Critique):
    """The verdict alone."""

    name = "verdict"

    def answer_keys(self, rm_type: RMType) -> list[str]:
        return [rm_type.verdict_key]

    def shot_feedback(self, rm_type: RMType, feedback: dict[str, Any]) -> dict[str, Any]:
        return {rm_type.verdict_key: feedback[rm_type.verdict_key]}

    def default_templates(self, rm_type: RMType) -> tuple[str, str, str]:
        return f"{rm_type.name}_verdict", f"{rm_type.name}_shot", f"{rm_type.name}_verdict_feedback"

    def default_kwargs(self, rm_type: RMType) -> dict[str, Any]:
        return {"max_tokens": VERDICT_MAX_TOKENS}


VERDICT = Verdict()
