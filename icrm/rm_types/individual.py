"""``individual``: one response, judged with a score from 1 to 10 (intent, checklist,
strengths, weaknesses, then the score), as the original IC-RM's individual mode."""

from __future__ import annotations

from ..feedback import MAX_SCORE, MIN_SCORE, IndividualFeedback
from ..parsing import normalize_score
from .base import RMType

__all__ = ["INDIVIDUAL"]

INDIVIDUAL = RMType(
    name="individual",
    input_fields=("conversation",),
    outputs=("model_output",),
    feedback_class=IndividualFeedback,
    verdict_key="score",
    verdicts=tuple(range(MIN_SCORE, MAX_SCORE + 1)),
    normalizer=normalize_score,
    rewards={s: (s - MIN_SCORE) / (MAX_SCORE - MIN_SCORE) for s in range(MIN_SCORE, MAX_SCORE + 1)},
    labels=tuple(str(d) for d in range(10)),
)
