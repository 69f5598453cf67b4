"""``balanced``: as many shots of each verdict class as can be (their counts differ by
at most one), drawn at random within a class — pairwise: A preferred / tie / B
preferred, so the preferred side is balanced; individual: low (1–3) / middle (4–7) /
high (8–10) scores; listwise: which response is best (`RMType.shot_class`). Label
imbalance in the shots biases the answer toward the majority label (Zhao et al., 2021,
"Calibrate Before Use")."""

from __future__ import annotations

from collections.abc import Sequence, Set

from .base import PoolIndex, ShotQuery, ShotSelector

__all__ = ["BALANCED", "round_robin"]


def round_robin(queues: Sequence[Sequence[int]], n: int) -> list[int]:
    """Take one from each queue in turn, skipping empty ones, until `n` are taken.

    >>> round_robin([[1, 2, 3], [7], [9, 8]], 5)
    [1, 7, 9, 2, 8]
    """
    taken: list[int] = []
    depth = 0
    while len(taken) < n and any(depth < len(q) for q in queues):
        taken.extend(q[depth] for q in queues if depth < len(q))
        depth += 1
    return taken[:n]


def class_members(index: PoolIndex) -> dict[str, list[int]]:
    """Pool positions of each verdict class, classes in sorted order."""
    def build(ix: PoolIndex) -> dict[str, list[int]]:
        members: dict[str, list[int]] = {}
        for i, name in enumerate(ix.classes):
            members.setdefault(name, []).append(i)
        return dict(sorted(members.items()))
    return index.cache("classes", build)  # type: ignore[no-any-return]


class Balanced(ShotSelector):
    """Verdict classes in turn (their order drawn per item), a random shot of each."""

    name = "balanced"

    def rank(self, index: PoolIndex, excluded: Set[int], query: ShotQuery, n: int) -> list[int]:
        queues = []
        for members in class_members(index).values():
            # Only the first few of each class can be taken: draw those (and as many more
            # as may be excluded), not a full shuffle.
            drawn = query.rng.sample(members, min(len(members), n + len(excluded)))
            queues.append([i for i in drawn if i not in excluded][:n])
        query.rng.shuffle(queues)
        return round_robin(queues, n)


BALANCED = Balanced()
