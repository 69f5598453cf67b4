"""Pairwise position: the one home of which orders a pair is judged in, how a pair is
swapped and a swapped judgement told back in the caller's orientation, and how the two
orders of a pair combine into one judgement.

``position`` is ``as_given`` (A, B as the caller gives them), ``random`` (one order per
item, from a bit of SHA-256 of the seed and the item's key: the same in every run and
process, whatever the concurrency or the cache) or ``both`` (each order judged, then
combined, with ``position_consistent``).

Sources: both orders as in Arena-Hard and JudgeBench (the swapped verdict told in the
original orientation, then combined); for the ``logprob`` method the mean of the two
distributions, as AlpacaEval's weighted judges average probabilities.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from .errors import ConfigError
from .feedback import Feedback
from .methods.combine import from_distribution, mean_distribution, summed_usage
from .rm_types import RMType

__all__ = ["POSITIONS", "orders", "random_order", "content_key", "swapped", "flip", "side", "combine_orders"]

POSITIONS = ("as_given", "random", "both")


def orders(rm_type: RMType, position: str, seed: int, key: str | None, fields: Mapping[str, Any]) -> tuple[str, ...]:
    """The orders an item is judged in: ``("AB",)``, ``("BA",)`` or ``("AB", "BA")``.

    Args:
        rm_type: the rm type (one response: always as given).
        position: ``as_given``, ``random`` or ``both``.
        seed: the run's seed.
        key: what ``random`` is seeded with (the item's id); None = its content.
        fields: the item's conversations (for the content key).

    Raises:
        ConfigError: an unknown position.
    """
    if position not in POSITIONS:
        raise ConfigError(f"position must be one of {', '.join(POSITIONS)}, got {position!r}")
    if rm_type.single or position == "as_given":
        return ("AB",)
    if position == "both":
        return ("AB", "BA")
    return (random_order(seed, key if key is not None else content_key(fields)),)


def random_order(seed: int, key: str) -> str:
    """The order a pair is judged in with ``position="random"``: ``AB`` or ``BA`` from a
    bit of SHA-256(seed:key) — the same in every run and process, whatever the
    concurrency or the cache.

    >>> random_order(42, "row-1") in ("AB", "BA")
    True
    """
    return "AB" if hashlib.sha256(f"{seed}:{key}".encode("utf-8", "surrogatepass")).digest()[0] & 1 else "BA"


def content_key(fields: Mapping[str, Any]) -> str:
    """16 hex digits of the SHA-256 of an item's conversations (a key for items without an id)."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]


def swapped(rm_type: RMType, fields: Mapping[str, Any]) -> dict[str, Any]:
    """An item with its two conversations exchanged (A is B, B is A); a group reversed."""
    if rm_type.group:
        return rm_type.swapped(fields)  # type: ignore[attr-defined,no-any-return]
    a, b = rm_type.input_fields
    return {**fields, a: fields[b], b: fields[a]}


def flip(rm_type: RMType, feedback: Feedback) -> Feedback:
    """`feedback` for the swapped order, told in the original one: A's fields are B's
    and the verdict mirrored (``A+`` ↔ ``B+``); individual feedback is unchanged.

    >>> from icrm.feedback import PairwiseFeedback
    >>> from icrm.rm_types import PAIRWISE
    >>> flip(PAIRWISE, PairwiseFeedback(choice="A++", p_a_better=0.9)).choice
    'B++'
    """
    if rm_type.single:
        return feedback
    if rm_type.combines_own:
        return rm_type.flip(feedback)  # type: ignore[attr-defined,no-any-return]
    update: dict[str, Any] = {}
    fields = type(feedback).model_fields
    for a, b in rm_type.mirrored:
        name_a = next(n for n, f in fields.items() if (f.alias or n) == a)
        name_b = next(n for n, f in fields.items() if (f.alias or n) == b)
        update[name_a], update[name_b] = getattr(feedback, name_b), getattr(feedback, name_a)
    verdict = rm_type.verdict(feedback)
    if verdict is not None:
        update[rm_type.verdict_key] = rm_type.verdicts[len(rm_type.verdicts) - 1 - rm_type.verdicts.index(verdict)]
    if feedback.probabilities is not None:
        update["probabilities"] = {str(rm_type.verdicts[len(rm_type.verdicts) - 1 - rm_type.verdicts.index(v)]): p
                                   for v, p in ((rm_type.normalize(k), p) for k, p in feedback.probabilities.items())}
    if getattr(feedback, "p_a_better", None) is not None:
        update["p_a_better"] = 1.0 - feedback.p_a_better  # type: ignore[union-attr]
    return feedback.model_copy(update=update)


def side(rm_type: RMType, verdict: Any) -> int:
    """Which response a pairwise verdict favours: 1 A, -1 B, 0 a tie.

    >>> from icrm.rm_types import PAIRWISE
    >>> side(PAIRWISE, "A+"), side(PAIRWISE, "A=B"), side(PAIRWISE, "B++")
    (1, 0, -1)
    """
    reward = rm_type.reward(verdict)
    return 0 if reward == 0.5 else (1 if reward > 0.5 else -1)



def combine_orders(rm_type: RMType, as_given: Feedback, swapped: Feedback) -> Feedback:
    """One pairwise feedback from the two orders of a pair.

    Args:
        rm_type: the pairwise spec.
        as_given: the judgement of A, B as given.
        swapped: the judgement of the swapped pair, already told in the given
            orientation (`flip`).

    Returns:
        Both verdicts equal: that verdict. With distributions (``logprob``): the mean
        distribution's argmax. Otherwise the same side at different strengths gives the
        weaker verdict, and opposite sides (or one tie) give ``A=B``. ``order_verdicts``
        holds both, ``position_consistent`` whether they favour the same side. When an
        order has no verdict, neither does the pair (its reason is kept).
    """
    common: dict[str, Any] = {"position": "both", "usage": summed_usage([as_given, swapped]),
                              "order_verdicts": {"AB": rm_type.verdict(as_given), "BA": rm_type.verdict(swapped)}}
    if not as_given.ok or not swapped.ok:  # a group too: half the evidence is not a verdict
        failed = as_given if not as_given.ok else swapped
        return failed.model_copy(update=common)
    if rm_type.combines_own:  # a group, a rubric: its own combination and consistency
        return rm_type.combine_orders(as_given, swapped, **common)  # type: ignore[attr-defined,no-any-return]
    first, second = rm_type.verdict(as_given), rm_type.verdict(swapped)
    common["position_consistent"] = side(rm_type, first) == side(rm_type, second)
    if as_given.probabilities is not None and swapped.probabilities is not None:
        update = from_distribution(rm_type, mean_distribution(rm_type, [as_given, swapped]))
    elif first == second:
        update = {rm_type.verdict_key: first}
    elif common["position_consistent"]:
        update = {rm_type.verdict_key: min((first, second), key=lambda v: abs(rm_type.reward(v) - 0.5))}
    else:
        update = {rm_type.verdict_key: rm_type.verdicts[len(rm_type.verdicts) // 2]}  # the tie
    return as_given.model_copy(update={**update, **common})
