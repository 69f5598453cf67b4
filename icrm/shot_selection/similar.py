"""``similar``: the shots nearest the item — Okapi BM25 (Robertson & Zaragoza, 2009)
between the item's prompt and responses and each shot's, through `bm25s` (English stop
words removed, the index built once per pool, each query's distinct words scored).
Nearest-neighbour selection of in-context examples follows Liu et al. (2022), "What
Makes Good In-Context Examples for GPT-3?"."""

from __future__ import annotations

import functools
import re
from collections.abc import Set
from typing import Any

import numpy as np

from .base import PoolIndex, ShotQuery, ShotSelector

__all__ = ["SIMILAR", "similarity"]


# Query words scored at most: past this the common words add little to the ranking and
# most of the cost (measured on a 100,000-shot pool: benchmarks/shots.py --selection_only).
MAX_QUERY_WORDS = 48
_WORD = re.compile(r"(?u)\b\w\w+\b")  # bm25s.tokenize's default pattern, as the index was built


def _bm25(index: PoolIndex) -> Any:
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(index.texts, stopwords="en", show_progress=False), show_progress=False)
    return retriever


@functools.cache
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def similarity(index: PoolIndex, query: ShotQuery, excluded: Set[int] = frozenset()) -> np.ndarray:
    """BM25 scores of every shot of the pool for `query`, shape ``(len(pool),)``: a new
    array the caller may change, ``-inf`` at the `excluded` positions. The query is split
    as the index was (lower case, bm25s's word pattern and English stop words); each
    distinct word scores once, and of a long query only the `MAX_QUERY_WORDS` rarest words
    in the pool (the highest IDF, which carry most of the score; the common ones cost the
    most to score)."""
    retriever = index.cache("bm25", _bm25)
    vocabulary, stop = retriever.vocab_dict, _stopwords()
    ids = [vocabulary[w] for w in dict.fromkeys(_WORD.findall(query.text.lower())) if w not in stop and w in vocabulary]
    if len(ids) > MAX_QUERY_WORDS:
        indptr = retriever.scores["indptr"]  # word i's postings: indptr[i] to indptr[i + 1]
        ids = sorted(ids, key=lambda i: indptr[i + 1] - indptr[i])[:MAX_QUERY_WORDS]
    scores = retriever.get_scores_from_ids(ids) if ids else np.zeros(len(index.shots), dtype=np.float32)
    if excluded:
        scores[list(excluded)] = -np.inf
    return scores


def best_first(scores: np.ndarray, n: int, positions: np.ndarray | None = None) -> np.ndarray:
    """The `n` positions (of the pool, or of `positions`) with the highest scores, best
    first, ties in pool order."""
    values = scores if positions is None else scores[positions]
    chosen = np.argpartition(-values, n - 1)[:n] if n < len(values) else np.arange(len(values))
    chosen = chosen[np.lexsort((chosen, -values[chosen]))]
    return chosen if positions is None else positions[chosen]


class Similar(ShotSelector):
    """The `n` most similar shots the item may see, most similar first."""

    name = "similar"

    def rank(self, index: PoolIndex, excluded: Set[int], query: ShotQuery, n: int) -> list[int]:
        return best_first(similarity(index, query, excluded), n).tolist()


SIMILAR = Similar()
