"""``random``: a uniform draw without replacement, from the item's own generator
(seeded by the judge's seed and the item's id), so a resumed or retried item sees the
same shots."""

from __future__ import annotations

from collections.abc import Set

from .base import PoolIndex, ShotQuery, ShotSelector

__all__ = ["RANDOM"]


class RandomDraw(ShotSelector):
    """`n` shots drawn uniformly from those the item may see."""

    name = "random"

    def rank(self, index: PoolIndex, excluded: Set[int], query: ShotQuery, n: int) -> list[int]:
        # Draw n + |excluded| and drop the excluded ones: still uniform over the allowed
        # shots, and without exclusions the same draw as `rng.sample(pool, n)`.
        drawn = query.rng.sample(range(len(index.shots)), min(len(index.shots), n + len(excluded)))
        return [i for i in drawn if i not in excluded][:n]


RANDOM = RandomDraw()
