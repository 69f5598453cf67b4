"""``all_pairs``: every pair of the group, k(k−1)/2 judgements (twice that with
``position="both"``) — the most comparisons and the most accurate ranking, as
OpenJudge's GRPO tournament judges it. Responses are shown in index order (``i`` as A
for ``i < j``), so ``position="random"`` or ``"both"`` is what evens out position bias."""

from __future__ import annotations

from .tournament import Tournament

__all__ = ["AllPairs", "ALL_PAIRS"]


class AllPairs(Tournament):
    """Every pair."""

    name = "all_pairs"
    summary = "every pair: k(k-1)/2 judgements"

    def pairs(self, k: int) -> list[tuple[int, int]]:
        return [(i, j) for i in range(k) for j in range(i + 1, k)]


ALL_PAIRS = AllPairs()
