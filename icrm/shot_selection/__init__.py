"""Shot selection: which shots of a pool an item sees, in which order, within which
token budget.

Modes (`SHOT_SELECTION_MODES`, one module each; ``shot_sampling_mode``):

| mode | an item sees | per item |
| --- | --- | --- |
| ``fixed`` | the first `num_shots` of the pool | no |
| ``random`` | a seeded uniform draw | yes |
| ``similar`` | the nearest by BM25 over prompt and responses | yes |
| ``balanced`` | equal numbers per verdict class | yes |
| ``similar_balanced`` | the nearest of each verdict class | yes |

Every mode leaves out the shots that would leak the item to itself
(`icrm.shot_selection.base`). Then ``shot_order`` (`SHOT_ORDERS`) places them: ``fixed``
= pool order, so items that share shots share the longest prompt prefix a server can
cache; ``shuffled`` = a new order per sample. ``max_shot_tokens`` drops shots from the
end of the mode's ranking (least similar first) until the rest fit
(`icrm.shot_selection.budget`).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from ..conversation import Conversation
from ..errors import ConfigError, InputError
from ..registry import Registry
from .base import Shot, ShotQuery, ShotSelector, ShotsPool, conversation_key, pool_index, prompt_key

__all__ = ["SHOT_SELECTION_MODES", "SHOT_ORDERS", "ShotQuery", "ShotSelector", "select_shots", "ordered",
           "check_no_leak", "check_num_shots"]

SHOT_SELECTION_MODES: Registry[ShotSelector] = Registry("shot_sampling_mode", {
    "fixed": "icrm.shot_selection.fixed:FIXED",
    "random": "icrm.shot_selection.random_draw:RANDOM",
    "similar": "icrm.shot_selection.similar:SIMILAR",
    "balanced": "icrm.shot_selection.balanced:BALANCED",
    "similar_balanced": "icrm.shot_selection.similar_balanced:SIMILAR_BALANCED",
}, summaries={
    "fixed": "the first num_shots of the pool, the same for every item",
    "random": "a uniform draw per item, seeded by the seed and the item's id",
    "similar": "the nearest shots by BM25 over the prompt and responses",
    "balanced": "equal numbers per verdict class (pairwise: A / tie / B preferred)",
    "similar_balanced": "the nearest shots of each verdict class, classes in turn",
})
SHOT_ORDERS = ("fixed", "shuffled")


def check_num_shots(num_shots: int, pool_size: int, source: str) -> None:
    """Refuse a `num_shots` the pool cannot give.

    Raises:
        ConfigError: negative, not whole, or more than the pool holds.
    """
    if not isinstance(num_shots, int) or isinstance(num_shots, bool) or num_shots < 0:
        raise ConfigError(f"num_shots must be a whole number >= 0, got {num_shots!r}")
    if num_shots > pool_size:
        raise ConfigError(f"num_shots={num_shots} but the {source} has only {pool_size} shots; "
                          f"pass --num_shots {pool_size} or fewer, or a larger --shots_pool_path")


def select_shots(pool: ShotsPool, num_shots: int, mode: str, conversations: Sequence[Conversation],
                 rng: random.Random, exclude_same_prompt: bool = False) -> list[Shot]:
    """The shots of `pool` an item sees, most wanted first (before order and budget).

    Args:
        pool: the `icrm.shots.ShotsPool`.
        num_shots: how many.
        mode: a name in `SHOT_SELECTION_MODES`.
        conversations: the item's validated conversations (every one it is judged on).
        rng: the item's random generator.
        exclude_same_prompt: also leave out every shot with the item's prompt.

    Returns:
        `num_shots` `icrm.shots.Shot` objects.

    Raises:
        ConfigError: an unknown mode, or more shots than the pool holds.
        InputError: fewer than `num_shots` shots left once the item's own conversations
            (and with `exclude_same_prompt` its prompt) are left out.
    """
    selector = SHOT_SELECTION_MODES.get(mode)
    check_num_shots(num_shots, len(pool), pool.source)
    if num_shots == 0:
        return []
    index = pool_index(pool)
    query = ShotQuery.of(conversations, rng)
    excluded = index.excluded(query, exclude_same_prompt)
    left = len(index.shots) - len(excluded)
    if left < num_shots:
        why = "share a conversation with this item" + (" or its prompt" if exclude_same_prompt else "")
        raise InputError(f"num_shots={num_shots} but only {left} shots of the {pool.source} may be shown to this "
                         f"item: {len(excluded)} {why}; pass --num_shots {left} or a larger pool")
    return [index.shots[i] for i in selector.rank(index, excluded, query, num_shots)]


def check_no_leak(shots: Sequence[Shot], conversations: Sequence[Conversation], exclude_same_prompt: bool = False) -> None:
    """Refuse caller-given shots that would show an item itself.

    Raises:
        InputError: naming the shot and what it shares with the item.
    """
    keys = {conversation_key(c) for c in conversations}
    own_prompt = prompt_key(conversations[0])
    for shot in shots:
        if keys & {conversation_key(c) for c in shot.conversations}:
            raise InputError(f"shot {shot.id!r} shares a conversation with the item it would be shown to: "
                             "a shot must not show the item itself")
        if exclude_same_prompt and prompt_key(shot.conversations[0]) == own_prompt:
            raise InputError(f"shot {shot.id!r} has this item's prompt, and exclude_same_prompt is set")


def ordered(shots: Sequence[Shot], order: str, pool: ShotsPool, rng: random.Random) -> list[Shot]:
    """`shots` placed by `order`: ``fixed`` = pool order (shots not from the pool after,
    as given); ``shuffled`` = drawn from `rng`.

    Raises:
        ConfigError: an unknown order.
    """
    if order not in SHOT_ORDERS:
        raise ConfigError(f"shot_order must be one of {', '.join(SHOT_ORDERS)}, got {order!r}")
    if order == "shuffled":
        placed = list(shots)
        rng.shuffle(placed)
        return placed
    position = pool.position
    return sorted(shots, key=lambda s: (position(s) is None, position(s) or 0))
