"""The prompt the fast methods share: written for a verdict only, answered with one
label.

`verdict` and `logprob` show the same prompt — the instruction and the verdict's scale,
then the shots (each with its label), then the item, ending where the label goes — so a
server's prefix cache holds the shared part for both, and only the item is new. The
labels are single digits, one token in every common tokenizer (`RMType.labels`):
individual ``0``–``9`` for scores 1–10, pairwise ``1``–``5`` for A++ … B++.

`verdict` reads the label the judge wrote (`parse_label`: the whole answer must be one
label, nothing else); `logprob` reads the distribution over the labels.
"""

from __future__ import annotations

from typing import Any

from ..errors import FeedbackParseError
from ..rm_types import RMType
from .base import JudgingMethod

__all__ = ["LabelMethod", "parse_label", "LABEL_QUOTES"]

# What may surround a label the judge wrote: whitespace, quotes, backticks, one period.
LABEL_QUOTES = " \t\r\n\"'`*"


class LabelMethod(JudgingMethod):
    """A method answered with one label (see the module docstring)."""

    # The label is the prompt's next token in completion mode; in chat mode a small
    # model's first token is often not a label (measured on SmolLM2-135M: label mass
    # 0.96 in completion mode, 0.11 in chat mode).
    prefers_completion = True

    def answer_keys(self, rm_type: RMType) -> list[str]:
        return [rm_type.verdict_key]

    def shot_feedback(self, rm_type: RMType, feedback: dict[str, Any]) -> dict[str, Any]:
        verdict = feedback[rm_type.verdict_key]
        return {rm_type.verdict_key: int(rm_type.labels[rm_type.verdicts.index(verdict)])}

    def default_templates(self, rm_type: RMType) -> tuple[str, str, str]:
        return f"{rm_type.name}_label", f"{rm_type.name}_label_shot", f"{rm_type.name}_label_feedback"


def parse_label(text: str, rm_type: RMType, finish_reason: str | None = None) -> Any:
    """The verdict of an answer that must be exactly one label.

    Raises:
        FeedbackParseError: ``empty``; ``truncated`` (cut before a label was whole);
            ``invalid_verdict`` (anything but one label: ``12``, ``3 because``, ``A+``).

    >>> from icrm.rm_types import PAIRWISE
    >>> parse_label(" 2\\n", PAIRWISE), parse_label('"5"', PAIRWISE)
    ('A+', 'B++')
    >>> parse_label("2 or 3", PAIRWISE)
    Traceback (most recent call last):
    ...
    icrm.errors.FeedbackParseError: the answer is not one label (1, 2, 3, 4, 5): '2 or 3'
    """
    if not text or not text.strip():
        raise FeedbackParseError("the model's answer is empty", text or "", "empty")
    word = text.strip(LABEL_QUOTES).removesuffix(".").strip(LABEL_QUOTES)
    if word in rm_type.labels:
        return rm_type.verdicts[rm_type.labels.index(word)]
    if finish_reason == "length" and any(label.startswith(word) for label in rm_type.labels):
        raise FeedbackParseError("truncated answer: cut before the label was whole", text, "truncated")
    shown = text if len(text) <= 40 else text[:37] + "..."
    raise FeedbackParseError(f"the answer is not one label ({', '.join(rm_type.labels)}): {shown!r}", text,
                             "invalid_verdict")
