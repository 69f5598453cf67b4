"""Combining several samples of one judgement (self-consistency, ``num_samples``), and
the distributions of the ``logprob`` method. Pure functions over feedback; the two
orders of a pair are combined in `icrm.position`.

Sources: self-consistency as in inspect_ai's and verdict's sample voting (majority
choice, mean score); for the ``logprob`` method the mean of the distributions, as
AlpacaEval's weighted judges average probabilities.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ..engines.base import Usage
from ..feedback import Feedback
from ..rm_types import RMType

__all__ = ["vote", "summed_usage", "from_distribution", "mean_distribution"]


def summed_usage(feedbacks: Sequence[Feedback]) -> Usage | None:
    """The total token usage of several requests (None when none reported any)."""
    usages = [f.usage for f in feedbacks if f.usage is not None]
    return sum(usages[1:], usages[0]) if usages else None


def mean_distribution(rm_type: RMType, feedbacks: Sequence[Feedback]) -> dict[str, float]:
    """The mean of the judgements' distributions over the verdicts (``logprob``)."""
    keys = [str(v) for v in rm_type.verdicts]
    return {k: statistics.fmean(f.probabilities.get(k, 0.0) for f in feedbacks) for k in keys}  # type: ignore[union-attr]


def from_distribution(rm_type: RMType, distribution: dict[str, float]) -> dict[str, Any]:
    """The verdict (argmax) and the summaries of a distribution over the verdicts."""
    best = max(rm_type.verdicts, key=lambda v: distribution[str(v)])
    out: dict[str, Any] = {rm_type.verdict_key: best, "probabilities": distribution}
    if rm_type.single:
        out["expected_score"] = sum(float(v) * distribution[str(v)] for v in rm_type.verdicts)
    else:
        out["p_a_better"] = sum(rm_type.reward(v) * distribution[str(v)] for v in rm_type.verdicts)
    return out


def vote(rm_type: RMType, samples: Sequence[Feedback]) -> Feedback:
    """One feedback from several samples of the same judgement.

    Individual: the mean score (``expected_score``), rounded for ``score``; pairwise:
    the most common choice, a tie between choices going to the one nearest the mean
    preference. With distributions (``logprob``): their mean, and its argmax. Samples
    without a verdict do not vote; with none at all, the first sample's error stands.

    Returns:
        The feedback of a sample that gave the final verdict, with ``num_samples``,
        ``agreement`` (share of the voting samples that gave it), ``sample_verdicts``
        and the summed usage.
    """
    verdicts = [rm_type.verdict(s) if s.ok else None for s in samples]
    voting = [s for s, v in zip(samples, verdicts) if v is not None]
    common: dict[str, Any] = {"num_samples": len(samples), "sample_verdicts": verdicts, "usage": summed_usage(samples)}
    if not voting:
        return samples[0].model_copy(update=common)
    if rm_type.combines_own:  # a group, a rubric: the mean per response or criterion
        return rm_type.vote(voting, **common)  # type: ignore[attr-defined,no-any-return]
    if all(s.probabilities is not None for s in voting):
        update = from_distribution(rm_type, mean_distribution(rm_type, voting))
    elif rm_type.single:
        mean = statistics.fmean(float(rm_type.verdict(s)) for s in voting)
        update = {rm_type.verdict_key: int(mean + 0.5), "expected_score": mean}
    else:
        counts = Counter(v for v in verdicts if v is not None)
        top = max(counts.values())
        mean = statistics.fmean(rm_type.reward(v) for v in verdicts if v is not None)
        tied = [v for v in rm_type.verdicts if counts.get(v) == top]
        update = {rm_type.verdict_key: min(tied, key=lambda v: abs(rm_type.reward(v) - mean))}
    final = update[rm_type.verdict_key]
    agreeing = [s for s in voting if rm_type.verdict(s) == final]
    base = agreeing[0] if agreeing else voting[0]
    return base.model_copy(update={**update, **common, "agreement": len(agreeing) / len(voting)})
