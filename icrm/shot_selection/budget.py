"""``max_shot_tokens``: the shots an item sees, within a token budget.

Shots are taken in the selection's ranking (most wanted first) while their rendered
text — shot and feedback templates filled — fits; the first that does not fit and all
after it are dropped (least similar first). Tokens come from the server's tokenizer
where it has a tokenize route (vLLM, llama.cpp, the mock; `Engine.count_tokens`),
else from `icrm.engines.base.estimate_tokens` (3 characters per token, an overcount
for most text).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

__all__ = ["within_budget"]

S = TypeVar("S")


async def within_budget(shots: Sequence[S], budget: int, tokens: Callable[[S], Awaitable[int]]) -> list[S]:
    """The longest head of `shots` whose tokens sum to at most `budget`.

    Args:
        shots: ranked, most wanted first.
        budget: tokens, ≥ 1.
        tokens: a shot's tokens (awaited once per shot, in order, until one does not fit).

    >>> import asyncio
    >>> async def size(word): return len(word)
    >>> asyncio.run(within_budget(["aa", "bbb", "c"], 5, size))
    ['aa', 'bbb']
    """
    kept: list[S] = []
    total = 0
    for shot in shots:
        total += await tokens(shot)
        if total > budget:
            break
        kept.append(shot)
    return kept
