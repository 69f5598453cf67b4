"""RM types: what it means to judge one response (``individual``), two (``pairwise``) or
a group of k (``listwise``).

Each rm type is one module holding its `RMType` spec (`icrm.rm_types.base`), named in
`RM_TYPES`; everything else asks the spec. A new rm type is one new module plus its
line in `RM_TYPES`.
"""

from __future__ import annotations

from typing import Any

from ..engines.base import Usage
from ..errors import ConfigError
from ..feedback import Feedback
from ..registry import Registry
from .base import RMType
from .individual import INDIVIDUAL
from .listwise import LISTWISE
from .pairwise import PAIRWISE

__all__ = [
    "RMType",
    "INDIVIDUAL",
    "PAIRWISE",
    "LISTWISE",
    "RM_TYPES",
    "get_rm_type",
    "judged_rm_type",
    "parse_feedback",
    "build_feedback",
    "feedback_keys",
    "feedback_json_schema",
]

RM_TYPES: Registry[RMType] = Registry("rm_type", {
    "individual": "icrm.rm_types.individual:INDIVIDUAL",
    "pairwise": "icrm.rm_types.pairwise:PAIRWISE",
    "listwise": "icrm.rm_types.listwise:LISTWISE",
})


def get_rm_type(rm_type: str | RMType) -> RMType:
    """The spec of an rm type name (a spec is returned as it is).

    Raises:
        ConfigError: an unknown name, listing the known ones.
    """
    return rm_type if isinstance(rm_type, RMType) else RM_TYPES.get(rm_type)


def judged_rm_type(rm_type: str | RMType, rubric: Any = None, max_criteria: int | None = None) -> RMType:
    """The spec a judge asks with: `rm_type`, judged against `rubric` (a path, dict or
    `icrm.rubric.Rubric`) when one is given (`icrm.rm_types.rubric`).

    Raises:
        ConfigError: an unknown rm type, an invalid rubric (naming the criterion and
            field), or `max_criteria` without a rubric.
    """
    spec = get_rm_type(rm_type)
    if rubric is None:
        if max_criteria is not None:
            raise ConfigError("max_criteria applies to a rubric's criteria: give a rubric (--rubric FILE), or leave "
                              "max_criteria unset")
        return spec
    from ..rubric import load_rubric
    from .rubric import rubric_rm_type

    return rubric_rm_type(spec, load_rubric(rubric))


def feedback_keys(rm_type: str | RMType) -> list[str]:
    """`RMType.keys` by name."""
    return get_rm_type(rm_type).keys()


def feedback_json_schema(rm_type: str | RMType) -> dict[str, Any]:
    """`RMType.json_schema` by name."""
    return get_rm_type(rm_type).json_schema()


def parse_feedback(text: str, rm_type: str | RMType, finish_reason: str | None = None) -> dict[str, Any]:
    """Parse a model's answer into a feedback dict (the rule is in `icrm.parsing`).

    Args:
        text: the generated text (the model's continuation after ``<|begin_of_feedback|>``).
        rm_type: ``individual`` or ``pairwise``.
        finish_reason: the server's finish reason; ``length`` means the answer was cut.

    Returns:
        The one feedback object in `text`, with ``score`` an int in 1–10 (individual) or
        ``choice`` one of `PAIRWISE_CHOICES` (pairwise). Other keys as the model wrote them.

    Raises:
        FeedbackParseError: no verdict; ``raw_text`` is `text`, ``reason`` says why.

    >>> parse_feedback('{"intent": "i", "checklist": "c", "strengths": "s", "weaknesses": "w", "score": "7/10"}'
    ...                '<|end_of_feedback|>', "individual")["score"]
    7
    >>> parse_feedback('{"choice": "B+", "analysis of A": "ok"', "pairwise")
    Traceback (most recent call last):
    ...
    icrm.errors.FeedbackParseError: truncated answer: the feedback object is still open where the answer ends
    """
    return get_rm_type(rm_type).parse(text, finish_reason)


def build_feedback(text: str, rm_type: str | RMType, usage: Usage | None = None, **envelope: Any) -> Feedback:
    """`RMType.build` by name: typed feedback for an answer; never raises for a bad one."""
    return get_rm_type(rm_type).build(text, usage, **envelope)
