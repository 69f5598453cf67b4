"""The ``verdict`` method as a rubric asks it (`icrm.rm_types.rubric`): each criterion's
verdict alone, ``{"criteria": {"<name>": <verdict>, ...}}``, constrained to the rubric's
schema where the server can. ``critique`` needs no variant: its answer is the rubric's
whole feedback, a reason per criterion.
"""

from __future__ import annotations

from typing import Any

from ..rm_types import RMType
from .critique import Critique

__all__ = ["RubricVerdict", "RUBRIC_VERDICT", "RUBRIC_VERDICT_TOKENS_PER_CRITERION"]

# {"name": "partly correct", } is ~10 tokens a criterion; room for spaces and long choices.
RUBRIC_VERDICT_TOKENS_PER_CRITERION = 24


class RubricVerdict(Critique):
    """Each criterion's verdict, no reasons."""

    name = "verdict"

    def default_kwargs(self, rm_type: RMType) -> dict[str, Any]:
        return {"max_tokens": 16 + RUBRIC_VERDICT_TOKENS_PER_CRITERION * len(rm_type.names)}  # type: ignore[attr-defined]

    def shot_feedback(self, rm_type: RMType, feedback: dict[str, Any]) -> dict[str, Any]:
        return dict(rm_type.shot_feedback(feedback, reasons=False))

    def default_templates(self, rm_type: RMType) -> tuple[str, str, str]:
        stem = rm_type.template_name
        return f"{stem}_verdict", f"{stem}_shot", f"{stem}_feedback"

    def schema(self, rm_type: RMType) -> dict[str, Any]:
        return rm_type.json_schema(reasons=False)  # type: ignore[call-arg]


RUBRIC_VERDICT = RubricVerdict()
