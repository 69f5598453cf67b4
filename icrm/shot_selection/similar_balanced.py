"""``similar_balanced``: ``balanced``'s classes, each class's shots nearest the item
first (``similar``'s BM25); the class holding the nearest shot goes first."""

from __future__ import annotations

from collections.abc import Set

import numpy as np

from .balanced import class_members, round_robin
from .base import PoolIndex, ShotQuery, ShotSelector
from .similar import best_first, similarity

__all__ = ["SIMILAR_BALANCED"]


class SimilarBalanced(ShotSelector):
    """Verdict classes in turn, the most similar of each first."""

    name = "similar_balanced"

    def rank(self, index: PoolIndex, excluded: Set[int], query: ShotQuery, n: int) -> list[int]:
        scores = similarity(index, query, excluded)
        queues = []
        for members in index.cache("class_arrays", lambda ix: [np.asarray(m) for m in class_members(ix).values()]):
            nearest = best_first(scores, min(n, len(members)), members)
            queues.append([int(i) for i in nearest if scores[i] != -np.inf])
        queues.sort(key=lambda q: (-scores[q[0]], q[0]) if q else (np.inf, 0))
        return round_robin(queues, n)


SIMILAR_BALANCED = SimilarBalanced()
