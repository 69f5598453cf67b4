"""Shot selection (`icrm.shot_selection`) on generated pools: each mode's choice, the
leakage rule on generated variants of an item, the order, the budget; no server."""

from __future__ import annotations

import asyncio
import itertools
import random
import unicodedata
from collections import Counter

import pytest

from icrm.conversation import Conversation
from icrm.errors import ConfigError, InputError
from icrm.shot_selection import SHOT_SELECTION_MODES, check_no_leak, ordered, select_shots
from icrm.shot_selection.budget import within_budget
from icrm.shots import ShotsPool

MODES = SHOT_SELECTION_MODES.names()
CHOICES = ("A++", "A+", "A=B", "B+", "B++")


def turns(prompt, answer):
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


def topic_words(t, n=6):
    """Words only topic `t` uses (and a shared filler), so BM25 has one true neighbour."""
    return " ".join(f"topic{t}word{i}" for i in range(n))


def pairwise_pool(size, rng, choices=CHOICES):
    shots = [{"id": f"s{t}", "conversation_A": turns(f"Question about {topic_words(t)}", f"first {t} answer"),
              "conversation_B": turns(f"Question about {topic_words(t)}", f"second {t} reply"),
              "feedback": {"choice": rng.choice(choices)}} for t in range(size)]
    return ShotsPool.from_records(shots, "pairwise", "generated pool")


def individual_pool(size, rng):
    shots = [{"id": f"s{t}", "conversation": turns(f"Tell me about {topic_words(t)}", f"answer {t}"),
              "feedback": {"score": rng.randint(1, 10)}} for t in range(size)]
    return ShotsPool.from_records(shots, "individual", "generated pool")


def item_of(pool, t):
    """A new item about topic `t` (other words around the topic's), for pool's rm type."""
    prompt = f"Please explain {topic_words(t, 4)} in plain words"
    if pool.rm_type.name == "pairwise":
        return [Conversation.from_messages(turns(prompt, "one")), Conversation.from_messages(turns(prompt, "two"))]
    return [Conversation.from_messages(turns(prompt, "an answer"))]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("kind", ["pairwise", "individual"])
def test_similar_returns_the_planted_neighbour_first(seed, kind):
    rng = random.Random(seed)
    pool = pairwise_pool(40, rng) if kind == "pairwise" else individual_pool(40, rng)
    for t in rng.sample(range(40), 5):
        chosen = select_shots(pool, 3, "similar", item_of(pool, t), random.Random(0))
        assert chosen[0].id == f"s{t}"
        both = select_shots(pool, 3, "similar_balanced", item_of(pool, t), random.Random(0))
        assert both[0].id == f"s{t}"


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("mode", ["balanced", "similar_balanced"])
def test_balanced_modes_balance_the_verdict_classes_of_a_skewed_pool(seed, mode):
    rng = random.Random(seed)
    # 80 % of the pool prefers A: a draw would be mostly A.
    skew = ["A+"] * 8 + ["B++"] + ["A=B"]
    pool = pairwise_pool(60, rng, choices=skew)
    available = Counter(pool.rm_type.shot_class(s.feedback) for s in pool.shots)
    for n in (1, 2, 3, 4, 6):
        chosen = select_shots(pool, n, mode, item_of(pool, rng.randrange(60)), random.Random(seed * 7 + n))
        counts = Counter(pool.rm_type.shot_class(s.feedback) for s in chosen)
        assert len(chosen) == n == len({s.id for s in chosen})
        capped = [c for c in available if available[c] > max(counts.values(), default=0)]
        # Every class with shots to spare is within one of the others.
        assert max(counts.values()) - min(counts.get(c, 0) for c in capped or counts) <= 1


def test_balanced_individual_classes_and_listwise_best_label():
    from icrm.rm_types import INDIVIDUAL, LISTWISE, PAIRWISE

    assert [INDIVIDUAL.shot_class({"score": s}) for s in range(1, 11)] == ["low"] * 3 + ["middle"] * 4 + ["high"] * 3
    assert [PAIRWISE.shot_class({"choice": c}) for c in CHOICES] == ["A", "A", "tie", "B", "B"]
    assert LISTWISE.shot_class({"scores": {"1": 3, "2": 9, "3": 4}}) == "2"
    assert LISTWISE.shot_class({"scores": {"1": 9, "2": 9}}) == "tie"


def variants(text):
    """The same text as a user may write it again: case, spacing, width, a no-break space."""
    yield text.upper()
    yield "  " + text.replace(" ", "   ") + "\n"
    yield unicodedata.normalize("NFKC", text).replace("a", "\uff41")  # fullwidth a: NFKC maps it back
    yield text.replace(" ", "\u00a0")


@pytest.mark.parametrize("mode", MODES)
def test_an_item_never_sees_itself_in_any_spelling_or_order(mode):
    rng = random.Random(1)
    base = pairwise_pool(12, rng)
    prompt, a, b = "What is the capital of France?", "Paris is the capital.", "It is Lyon."
    records = [s.record for s in base.shots]
    leaks = []
    for i, (p, x, y) in enumerate(itertools.product(variants(prompt), variants(a), variants(b))):
        if i % 7:  # a sample of the 64 spellings keeps the pool small
            continue
        first, second = (turns(p, x), turns(p, y)) if i % 2 else (turns(p, y), turns(p, x))  # both orders
        leaks.append({"id": f"leak{i}", "conversation_A": first, "conversation_B": second, "feedback": {"choice": "A+"}})
    # The item's answer inside another pair leaks too.
    leaks.append({"id": "leak-in-other-pair", "conversation_A": turns(prompt, a),
                  "conversation_B": turns(prompt, "Marseille."), "feedback": {"choice": "A+"}})
    pool = ShotsPool.from_records(leaks + records, "pairwise", "pool")
    item = [Conversation.from_messages(turns(prompt, a)), Conversation.from_messages(turns(prompt, b))]
    for seed in range(5):
        chosen = select_shots(pool, 10, mode, item, random.Random(seed))
        assert not [s.id for s in chosen if s.id.startswith("leak")]
    with pytest.raises(InputError, match=r"only 12 shots .* may be shown to this item: \d+ share a conversation"):
        select_shots(pool, 13, mode, item, random.Random(0))


def test_exclude_same_prompt_leaves_out_other_answers_to_the_prompt():
    pool = ShotsPool.from_records(
        [{"id": "same", "conversation": turns("Q  one?", "another answer"), "feedback": {"score": 5}},
         {"id": "other", "conversation": turns("Q two?", "x"), "feedback": {"score": 5}}], "individual", "pool")
    item = [Conversation.from_messages(turns("q one?", "mine"))]
    assert [s.id for s in select_shots(pool, 2, "fixed", item, random.Random(0))] == ["same", "other"]
    assert [s.id for s in select_shots(pool, 1, "fixed", item, random.Random(0), exclude_same_prompt=True)] == ["other"]
    shot = pool.shots[0]
    check_no_leak([shot], item)
    with pytest.raises(InputError, match="has this item's prompt"):
        check_no_leak([shot], item, exclude_same_prompt=True)


def test_fixed_is_the_pool_head_and_random_is_seeded_per_item():
    pool = individual_pool(30, random.Random(0))
    item = item_of(pool, 3)
    assert [s.id for s in select_shots(pool, 4, "fixed", item, random.Random(9))] == ["s0", "s1", "s2", "s3"]
    draw = [s.id for s in select_shots(pool, 4, "random", item, random.Random("42:row-1"))]
    assert draw == [s.id for s in select_shots(pool, 4, "random", item, random.Random("42:row-1"))]
    # Without exclusions, the same draw as sampling the pool itself (earlier runs' shots).
    assert draw == [s.id for s in random.Random("42:row-1").sample(pool.shots, 4)]
    seen = Counter(s.id for k in range(300) for s in select_shots(pool, 3, "random", item, random.Random(k)))
    assert len(seen) == 30 and max(seen.values()) < 3 * min(seen.values())


def test_order_fixed_is_pool_order_and_shuffled_varies():
    pool = individual_pool(20, random.Random(0))
    picked = [pool.shots[i] for i in (9, 2, 14, 5)]
    assert [s.id for s in ordered(picked, "fixed", pool, random.Random(0))] == ["s2", "s5", "s9", "s14"]
    orders = {tuple(s.id for s in ordered(picked, "shuffled", pool, random.Random(k))) for k in range(30)}
    assert len(orders) > 5 and all(sorted(o) == sorted(s.id for s in picked) for o in orders)
    with pytest.raises(ConfigError, match="shot_order must be one of fixed, shuffled"):
        ordered(picked, "reverse", pool, random.Random(0))


@pytest.mark.parametrize("seed", range(5))
def test_the_budget_keeps_the_longest_head_that_fits(seed):
    rng = random.Random(seed)
    sizes = [rng.randint(1, 50) for _ in range(8)]

    async def tokens(i):
        return sizes[i]
    for budget in (1, 25, 60, 400):
        kept = asyncio.run(within_budget(list(range(8)), budget, tokens))
        assert sum(sizes[i] for i in kept) <= budget
        assert kept == list(range(len(kept)))  # a head of the ranking: the least wanted go first
        assert len(kept) == 8 or sum(sizes[: len(kept) + 1]) > budget


def test_per_item_modes_cannot_sample_without_an_item_and_unknown_modes_name_the_choices():
    pool = individual_pool(5, random.Random(0))
    with pytest.raises(ConfigError, match="chooses shots for each item"):
        pool.sample(2, "similar", random.Random(0))
    with pytest.raises(ConfigError, match="shot_sampling_mode must be one of fixed, random, similar, balanced"):
        pool.sample(2, "nearest", random.Random(0))


def test_a_pool_with_two_shots_of_one_id_is_refused():
    shot = {"id": "x", "conversation": turns("q", "a"), "feedback": {"score": 3}}
    with pytest.raises(ConfigError, match="shot 1: id 'x' is also shot 0's"):
        ShotsPool.from_records([shot, {**shot, "conversation": turns("q", "b")}], "individual", "pool")


def test_pool_order_holds_in_a_pickled_copy_and_not_for_a_callers_lookalike():
    import pickle

    pool = pickle.loads(pickle.dumps(individual_pool(10, random.Random(0))))
    picked = [pool.shots[i] for i in (7, 1, 4)]
    assert [s.id for s in ordered(picked, "fixed", pool, random.Random(0))] == ["s1", "s4", "s7"]
    lookalike = ShotsPool.from_records([pool.shots[0].record | {"id": "s0"}], "individual").shots[0]
    assert pool.position(lookalike) is None and pool.position(pool.shots[0]) == 0
