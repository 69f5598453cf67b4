"""``pairwise``: two responses to the same conversation, judged with a choice from
``A++`` (A much better) to ``B++`` (B much better), as the original IC-RM's pairwise mode."""

from __future__ import annotations

from ..feedback import PAIRWISE_CHOICES, PairwiseFeedback
from ..parsing import normalize_choice
from .base import RMType

__all__ = ["PAIRWISE"]

PAIRWISE = RMType(
    name="pairwise",
    input_fields=("conversation_A", "conversation_B"),
    outputs=("model_output_A", "model_output_B"),
    feedback_class=PairwiseFeedback,
    verdict_key="choice",
    verdicts=PAIRWISE_CHOICES,
    normalizer=lambda value, text: normalize_choice(value, text, PAIRWISE_CHOICES),
    rewards=dict(zip(PAIRWISE_CHOICES, (1.0, 0.75, 0.5, 0.25, 0.0))),
    labels=("1", "2", "3", "4", "5"),
    mirrored=(("analysis of A", "analysis of B"), ("reason of A>B", "reason of B>A")),
)
