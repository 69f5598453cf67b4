"""Combining several answers to one judgement: samples (self-consistency) and the two
orders of a pair (``position="both"``). Pure functions over feedback.

Sources: self-consistency as in inspect_ai's and verdict's sample voting (majority
choice, mean score); both orders as in Arena-Hard and JudgeBench (the swapped verdict
told in the original orientation, then combined); for the ``logprob`` method the mean
of the distributions, as AlpacaEval's weighted judges average probabilities.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from ..engines.base import Usage
from ..feedback import Feedback
from ..rm_types import RMType

__all__ = ["vote", "combine_orders", "summed_usage", "side", "from_distribution"]


def summed_usage(feedbacks: Sequence[Feedback]) -> Usage | None:
    """The total token usage of several requests (None when none reported any)."""
    usages = [f.usage for f in feedbacks if f.usage is not None]
    if not usages:
        return None
    cached = [u.cached_tokens for u in usages]
    return Usage(prompt_tokens=sum(u.prompt_tokens for u in usages),
                 completion_tokens=sum(u.completion_tokens for u in usages),
                 cached_tokens=None if all(c is None for c in cached) else sum(c or 0 for c in cached))


def side(rm_type: RMType, verdict: Any) -> int:
    """Which response a pairwise verdict favours: 1 A, -1 B, 0 a tie.

    >>> from icrm.rm_types import PAIRWISE
    >>> side(PAIRWISE, "A+"), side(PAIRWISE, "A=B"), side(PAIRWISE, "B++")
    (1, 0, -1)
    """
    reward = rm_type.reward(verdict)
    return 0 if reward == 0.5 else (1 if reward > 0.5 else -1)


def _mean_distribution(rm_type: RMType, feedbacks: Sequence[Feedback]) -> dict[str, float]:
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
    if all(s.probabilities is not None for s in voting):
        update = from_distribution(rm_type, _mean_distribution(rm_type, voting))
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


def combine_orders(rm_type: RMType, as_given: Feedback, swapped: Feedback) -> Feedback:
    """One pairwise feedback from the two orders of a pair.

    Args:
        rm_type: the pairwise spec.
        as_given: the judgement of A, B as given.
        swapped: the judgement of the swapped pair, already told in the given
            orientation (`RMType.flip`).

    Returns:
        Both verdicts equal: that verdict. With distributions (``logprob``): the mean
        distribution's argmax. Otherwise the same side at different strengths gives the
        weaker verdict, and opposite sides (or one tie) give ``A=B``. ``order_verdicts``
        holds both, ``position_consistent`` whether they favour the same side. When an
        order has no verdict, neither does the pair (its reason is kept).
    """
    common: dict[str, Any] = {"position": "both", "usage": summed_usage([as_given, swapped]),
                              "order_verdicts": {"AB": rm_type.verdict(as_given), "BA": rm_type.verdict(swapped)}}
    if not as_given.ok or not swapped.ok:
        failed = as_given if not as_given.ok else swapped
        return failed.model_copy(update=common)
    first, second = rm_type.verdict(as_given), rm_type.verdict(swapped)
    common["position_consistent"] = side(rm_type, first) == side(rm_type, second)
    if as_given.probabilities is not None and swapped.probabilities is not None:
        update = from_distribution(rm_type, _mean_distribution(rm_type, [as_given, swapped]))
    elif first == second:
        update = {rm_type.verdict_key: first}
    elif common["position_consistent"]:
        update = {rm_type.verdict_key: min((first, second), key=lambda v: abs(rm_type.reward(v) - 0.5))}
    else:
        update = {rm_type.verdict_key: rm_type.verdicts[len(rm_type.verdicts) // 2]}  # the tie
    return as_given.model_copy(update={**update, **common})
