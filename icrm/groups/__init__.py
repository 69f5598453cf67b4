"""Judging a group: k responses to one prompt, one reward per response.

Strategies (`GROUP_STRATEGIES`, one module each):

| strategy | rm type | judgements per group |
| --- | --- | --- |
| ``listwise`` | listwise | 1 |
| ``individual`` | individual | k |
| ``circular`` | pairwise | k |
| ``knockout`` | pairwise | k − 1 |
| ``all_pairs`` | pairwise | k(k−1)/2 |

(pairwise strategies: twice that with ``position="both"``). `judge_group` checks the
group and runs the strategy; `ICRM.judge_group` is the way in.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from ..errors import ConfigError, InputError
from ..feedback import FeedbackBase
from ..registry import Registry
from ..rm_types import LISTWISE, RMType
from .base import INCONSISTENT_PAIRS, Comparison, GroupResult, GroupRun, GroupStrategy

__all__ = ["GROUP_STRATEGIES", "DEFAULT_STRATEGY", "GroupResult", "GroupRun", "GroupStrategy", "Comparison",
           "INCONSISTENT_PAIRS", "judge_group", "strategy_for", "group_key"]

GROUP_STRATEGIES: Registry[GroupStrategy] = Registry("group_strategy", {
    "listwise": "icrm.groups.listwise:LISTWISE_STRATEGY",
    "individual": "icrm.groups.individual:INDIVIDUAL",
    "all_pairs": "icrm.groups.all_pairs:ALL_PAIRS",
    "circular": "icrm.groups.circular:CIRCULAR",
    "knockout": "icrm.groups.knockout:KNOCKOUT",
}, summaries={
    "listwise": "the whole group in one request (rm_type listwise)",
    "individual": "each response judged alone: k requests (rm_type individual)",
    "all_pairs": "every pair: k(k-1)/2 judgements (rm_type pairwise)",
    "circular": "each response against the next, in a circle: k judgements (rm_type pairwise)",
    "knockout": "single elimination: k-1 judgements (rm_type pairwise)",
})
# The strategy of each rm type when none is named.
DEFAULT_STRATEGY = {"listwise": "listwise", "individual": "individual", "pairwise": "all_pairs"}


def strategy_for(rm_type: RMType | str, name: str | None) -> GroupStrategy:
    """The group strategy `name` (None: `rm_type`'s default), checked against the judge's
    rm type.

    Raises:
        ConfigError: an unknown strategy, or one whose judgements another rm type makes.
    """
    rm_name = str(rm_type)
    strategy = GROUP_STRATEGIES.get(name or DEFAULT_STRATEGY[rm_name])
    if strategy.rm_type != rm_name:
        raise ConfigError(f"group_strategy {strategy.name!r} makes {strategy.rm_type} judgements, but this judge's "
                          f"rm_type is {rm_name!r}: use rm_type={strategy.rm_type!r}, or a strategy of "
                          f"{rm_name}: {', '.join(n for n in GROUP_STRATEGIES if GROUP_STRATEGIES.get(n).rm_type == rm_name)}")
    return strategy


def group_key(conversations: Any) -> str:
    """16 hex digits of the SHA-256 of a group's content (its key when it has no id)."""
    return hashlib.sha256(json.dumps(conversations, sort_keys=True, default=str).encode("utf-8", "surrogatepass")
                          ).hexdigest()[:16]


async def judge_group(judge: Callable[[dict[str, Any], str], Awaitable[FeedbackBase]], rm_type: RMType,
                      strategy: GroupStrategy, conversations: Sequence[Any], *, key: str | None = None, seed: int = 0,
                      position: str = "as_given", inconsistent_pairs: str = "tie", concurrency: int = 16,
                      context: Mapping[str, Any] | None = None) -> GroupResult:
    """Judge one group with `strategy` (see `GroupRun` for the arguments).

    A group that is not one — not a list, fewer than 2 or more than 32 conversations,
    an invalid conversation, conversations that differ before their last turn — is
    returned failed (``input``) on every response, with nothing sent to the judge.

    Raises:
        ConfigError: `inconsistent_pairs` is not ``tie`` or ``abstain``.
    """
    if inconsistent_pairs not in INCONSISTENT_PAIRS:
        raise ConfigError(f"inconsistent_pairs must be one of {', '.join(INCONSISTENT_PAIRS)}, "
                          f"got {inconsistent_pairs!r}")
    size = len(conversations) if isinstance(conversations, (list, tuple)) else 1
    try:
        LISTWISE.conversations({"conversations": conversations})
    except InputError as error:
        return GroupResult.failed(strategy.name, max(size, 1), str(error), "input")
    run = GroupRun(judge, rm_type, list(conversations), key if key is not None else group_key(conversations), seed,
                   position, inconsistent_pairs, concurrency, dict(context or {}))
    return await strategy.judge(run)
