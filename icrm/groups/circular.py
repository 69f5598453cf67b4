"""``circular``: each response against the next, the last against the first — k
judgements (one for a pair), as NeMo Gym's GenRM compares a cohort in a circle. Every
response is compared twice, once as A and once as B, so position bias cancels out
even as given; Bradley–Terry orders the whole circle from its k outcomes."""

from __future__ import annotations

from .tournament import Tournament

__all__ = ["Circular", "CIRCULAR"]


class Circular(Tournament):
    """Each response against the next."""

    name = "circular"
    summary = "each response against the next, in a circle: k judgements"

    def pairs(self, k: int) -> list[tuple[int, int]]:
        return [(0, 1)] if k == 2 else [(i, (i + 1) % k) for i in range(k)]


CIRCULAR = Circular()
