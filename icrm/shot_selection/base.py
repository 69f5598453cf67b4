"""What every shot selection mode shares: the item as a query, the leakage rule, the
pool's precomputed keys and verdict classes, and the `ShotSelector` seam.

Leakage (issue 28): an item never sees a shot that shares one of its conversations —
the same turns after normalisation (Unicode NFKC, case folded, whitespace collapsed),
whatever the order of a pair — and with ``exclude_same_prompt`` no shot whose prompt
(every turn but the last) is the item's own.
"""

from __future__ import annotations

import hashlib
import random
import re
import unicodedata
from abc import ABC, abstractmethod
from collections.abc import Sequence, Set
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

from ..conversation import Conversation
from ..rm_types import RMType

__all__ = ["ShotQuery", "ShotSelector", "PoolIndex", "Shot", "ShotsPool", "normalized", "conversation_key",
           "prompt_key", "pool_index"]


class Shot(Protocol):
    """What selection reads of a shot (`icrm.shots.Shot`)."""

    id: str
    conversations: tuple[Conversation, ...]
    feedback: dict[str, Any]


class ShotsPool(Protocol):
    """What selection reads of a pool (`icrm.shots.ShotsPool`)."""

    shots: list[Any]
    rm_type: RMType
    source: str

    def __len__(self) -> int: ...

    def position(self, shot: Any) -> int | None: ...

_SPACE = re.compile(r"\s+")


def normalized(text: str) -> str:
    """`text` as compared for leakage: NFKC, case folded, whitespace runs as one space.

    >>> normalized("  Hello\\u00a0 WORLD\\n")
    'hello world'
    """
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def _digest(turns: Sequence[Any]) -> bytes:
    # 16 bytes per key, not the text: a 100,000-shot pool's keys stay a few MB.
    text = "\x1e".join(f"{t.role}\x1f{normalized(t.content)}" for t in turns)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def conversation_key(conversation: Conversation) -> bytes:
    """A conversation's identity for leakage: its turns, roles kept, normalised (a digest)."""
    return _digest(conversation.turns)


def prompt_key(conversation: Conversation) -> bytes:
    """A conversation's prompt for leakage: every turn but the response, normalised (a digest)."""
    return _digest(conversation.turns[:-1])


def _query_text(conversations: Sequence[Conversation]) -> str:
    # The prompt once, then every response: what similarity is measured on.
    first = conversations[0]
    return "\n".join([*(t.content for t in first.turns[:-1]), *(c.model_output for c in conversations)])


@dataclass(frozen=True)
class ShotQuery:
    """One item, as selection sees it.

    Attributes:
        text: the prompt and the responses, for similarity.
        conversation_keys: `conversation_key` of each conversation judged.
        prompt_key: `prompt_key` of the item (its conversations share it).
        rng: the item's own random generator (seeded by the judge's seed and the item).
    """

    text: str
    conversation_keys: frozenset[bytes]
    prompt_key: bytes
    rng: random.Random

    @classmethod
    def of(cls, conversations: Sequence[Conversation], rng: random.Random) -> ShotQuery:
        """The query of an item's validated conversations."""
        return cls(_query_text(conversations), frozenset(map(conversation_key, conversations)),
                   prompt_key(conversations[0]), rng)


class PoolIndex:
    """A pool's shots precomputed once for selection: their keys, verdict classes and
    (built when a mode first asks) a BM25 index.

    Args:
        pool: the shots pool.
    """

    def __init__(self, pool: ShotsPool) -> None:
        self.pool = pool
        self.shots: list[Shot] = pool.shots
        self.by_conversation: dict[bytes, list[int]] = {}
        self.by_prompt: dict[bytes, list[int]] = {}
        for i, shot in enumerate(self.shots):
            for key in {conversation_key(c) for c in shot.conversations}:
                self.by_conversation.setdefault(key, []).append(i)
            self.by_prompt.setdefault(prompt_key(shot.conversations[0]), []).append(i)
        self.classes = [pool.rm_type.shot_class(s.feedback) for s in self.shots]

    def excluded(self, query: ShotQuery, same_prompt: bool) -> set[int]:
        """The shots `query` may not see (see the module docstring)."""
        out = {i for key in query.conversation_keys for i in self.by_conversation.get(key, ())}
        if same_prompt:
            out.update(self.by_prompt.get(query.prompt_key, ()))
        return out

    @cached_property
    def texts(self) -> list[str]:
        """Each shot's prompt and responses, as an item's query is written."""
        return [_query_text(s.conversations) for s in self.shots]

    def cache(self, name: str, build: Any) -> Any:
        """A mode's own per-pool structure (e.g. the BM25 index), built once."""
        store = self.__dict__.setdefault("_built", {})
        if name not in store:
            store[name] = build(self)
        return store[name]


def pool_index(pool: ShotsPool) -> PoolIndex:
    """The pool's `PoolIndex`, built on first use and kept with the pool."""
    index = getattr(pool, "_selection_index", None)
    if index is None:
        index = PoolIndex(pool)
        pool._selection_index = index  # type: ignore[attr-defined]
    return index


class ShotSelector(ABC):
    """A shot selection mode: which shots of a pool an item sees, most wanted first.

    A mode is one module of `icrm.shot_selection` plus its line in
    `SHOT_SELECTION_MODES`. The token budget and the order are applied after it
    (`icrm.spec.JudgeSpec.shots_shown`): the budget drops from the end of the ranking.

    Attributes:
        name: the mode's name (``shot_sampling_mode``).
    """

    name: str

    @abstractmethod
    def rank(self, index: PoolIndex, excluded: Set[int], query: ShotQuery, n: int) -> list[int]:
        """`n` pool positions, none in `excluded` (the leakage rule's), most wanted
        first. At least `n` positions are not excluded."""
