"""``fixed``: the first shots of the pool, in pool order — every item sees the same
block (the same for all items but those it would leak to), so a server's prefix cache
holds it once."""

from __future__ import annotations

from collections.abc import Set

from .base import PoolIndex, ShotQuery, ShotSelector

__all__ = ["FIXED"]


class Fixed(ShotSelector):
    """The first `n` shots the item may see, in pool order."""

    name = "fixed"

    def rank(self, index: PoolIndex, excluded: Set[int], query: ShotQuery, n: int) -> list[int]:
        chosen: list[int] = []
        for i in range(len(index.shots)):
            if len(chosen) == n:
                break
            if i not in excluded:
                chosen.append(i)
        return chosen


FIXED = Fixed()
