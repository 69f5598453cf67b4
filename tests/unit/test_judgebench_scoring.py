"""icrm's JudgeBench scoring against worked cases computed with JudgeBench's own code.

Every expected number here was computed by running ScalerLab/JudgeBench
``utils/metrics.py`` (``compute_final_metrics`` and ``flip_judgment``, commit
e2c52c284e735e139b3daa61c206ee208f36c461) on the same decisions — with its two closing lines made to also return its
``n_inconsistent`` and ``n_tie`` counters — and copied in. The decisions are JudgeBench's
own (``A>B``, ``B>A``, ``A=B``, or none), the second one as the judge gave it for the
swapped pair; icrm receives it told back in the given orientation (the judge's "A" in
the swapped pair is response B).
"""

import random
import statistics

import pytest

from icrm.evaluation.judgebench import JudgeBench, pair_correct
from icrm.evaluation.stats import subset_report
from icrm.rm_types import INDIVIDUAL, PAIRWISE

BENCHMARK = JudgeBench()
DECISIONS = ["A>B", "B>A", "A=B", None]
TOLD_AS_GIVEN = {"A>B": "A+", "B>A": "B+", "A=B": "A=B", None: None}  # a first-order decision as icrm's choice
TOLD_BACK = {"A>B": "B+", "B>A": "A+", "A=B": "A=B", None: None}  # a swapped-order decision, told back

# (label, decision 1, decision 2 as given for the swapped pair) -> (correct, inconsistent, tie), from their code.
WORKED = [
    ("A>B", "A>B", "A>B", False, 1, 1), ("A>B", "A>B", "B>A", True, 0, 0), ("A>B", "A>B", "A=B", True, 1, 0),
    ("A>B", "A>B", None, True, 1, 0), ("A>B", "B>A", "A>B", False, 0, 0), ("A>B", "B>A", "B>A", False, 1, 1),
    ("A>B", "B>A", "A=B", False, 1, 0), ("A>B", "B>A", None, False, 1, 0), ("A>B", "A=B", "A>B", False, 1, 0),
    ("A>B", "A=B", "B>A", True, 1, 0), ("A>B", "A=B", "A=B", False, 0, 1), ("A>B", "A=B", None, False, 1, 1),
    ("A>B", None, "A>B", False, 1, 0), ("A>B", None, "B>A", True, 1, 0), ("A>B", None, "A=B", False, 1, 1),
    ("A>B", None, None, False, 0, 1), ("B>A", "A>B", "A>B", False, 1, 1), ("B>A", "A>B", "B>A", False, 0, 0),
    ("B>A", "A>B", "A=B", False, 1, 0), ("B>A", "A>B", None, False, 1, 0), ("B>A", "B>A", "A>B", True, 0, 0),
    ("B>A", "B>A", "B>A", False, 1, 1), ("B>A", "B>A", "A=B", True, 1, 0), ("B>A", "B>A", None, True, 1, 0),
    ("B>A", "A=B", "A>B", True, 1, 0), ("B>A", "A=B", "B>A", False, 1, 0), ("B>A", "A=B", "A=B", False, 0, 1),
    ("B>A", "A=B", None, False, 1, 1), ("B>A", None, "A>B", True, 1, 0), ("B>A", None, "B>A", False, 1, 0),
    ("B>A", None, "A=B", False, 1, 1), ("B>A", None, None, False, 0, 1),
]
# compute_final_metrics(pairs, reverse_order=True, include_fn=startswith(prefix)) on `seeded_pairs()`:
# (percent correct, n_inconsistent, n_tie, pairs)
SEEDED = {"mmlu-pro": (28.47682119205298, 112, 55, 151), "livebench-reasoning": (33.333333333333336, 52, 24, 63),
          "livebench-math": (22.727272727272727, 48, 30, 66), "livecodebench": (21.428571428571427, 45, 29, 70),
          "": (26.857142857142858, 257, 138, 350)}
FAMILY = {"mmlu-pro": "knowledge", "livebench-reasoning": "reasoning", "livebench-math": "math", "livecodebench": "coding"}


def row(label, source="mmlu-pro-law", pair_id="p"):
    return {"pair_id": pair_id, "question": "q", "response_A": "a", "response_B": "bb", "label": label, "source": source}


def both_orders(first, second):
    return {"pair": {"choice": None, "order_verdicts": {"AB": TOLD_AS_GIVEN[first], "BA": TOLD_BACK[second]}}}


@pytest.mark.parametrize("label, first, second, correct, inconsistent, tie", WORKED)
def test_each_pair_is_scored_as_compute_final_metrics(label, first, second, correct, inconsistent, tie):
    scored = BENCHMARK.score(row(label), both_orders(first, second), PAIRWISE)
    assert scored.score == float(correct)
    assert scored.consistent == (not inconsistent)
    assert scored.tie == bool(tie)
    assert scored.parse_failure == (first is None or second is None)


def seeded_pairs():
    """The 350 pairs their code scored for `SEEDED` (same generator, same call order)."""
    rng = random.Random(2024)
    sources = ["mmlu-pro-law", "mmlu-pro-math", "livebench-reasoning", "livebench-math", "livecodebench"]
    pairs = []
    for i in range(350):
        label = rng.choice(["A>B", "B>A"])
        first, second = rng.choice(DECISIONS), rng.choice(DECISIONS)
        pairs.append((row(label, rng.choice(sources), str(i)), both_orders(first, second)))
    return pairs


def test_families_overall_and_inconsistency_equal_their_code():
    by_family = {}
    for pair, records in seeded_pairs():
        scored = BENCHMARK.score(pair, records, PAIRWISE)
        by_family.setdefault(scored.subset, []).append(scored)
    reports = {name: subset_report(rows, random.Random(0)) for name, rows in by_family.items()}
    overall = BENCHMARK.aggregate(reports, PAIRWISE)["overall"]
    all_rows = [r for rows in by_family.values() for r in rows]
    for prefix, (percent, inconsistent, ties, n) in SEEDED.items():
        rows = all_rows if not prefix else by_family[FAMILY[prefix]]
        accuracy = overall if not prefix else reports[FAMILY[prefix]].accuracy
        assert len(rows) == n
        assert 100 * accuracy == pytest.approx(percent, abs=1e-9)
        assert sum(not r.consistent for r in rows) == inconsistent
        assert sum(r.tie for r in rows) == ties
    # The overall is over all pairs, not the mean of the families.
    assert overall != pytest.approx(statistics.fmean(r.accuracy for r in reports.values()))


@pytest.mark.parametrize("label", ["A>B", "B>A"])
def test_single_game_counts_only_the_label(label):
    # compute_final_metrics(reverse_order=False): 100 only for decision == label (its
    # code cannot take a missing decision; icrm counts it not correct).
    scores = {d: pair_correct([d], label)[0] for d in DECISIONS}
    assert scores == {"A>B": label == "A>B", "B>A": label == "B>A", "A=B": False, None: False}


def test_individual_mode_scores_both_responses_and_the_higher_wins():
    judgements = BENCHMARK.judgements(row("A>B"), INDIVIDUAL)
    assert [j.tag for j in judgements] == ["A", "B"]
    assert judgements[1].item["conversation"][-1]["content"] == "bb"
    score = lambda a, b, label="A>B": BENCHMARK.score(row(label), {"A": {"score": a}, "B": {"score": b}}, INDIVIDUAL)
    assert [score(8, 3).score, score(3, 8).score, score(3, 8, "B>A").score, score(5, 5).score] == [1, 0, 1, 0]
    assert score(5, 5).tie and score(None, 5).parse_failure and score(None, 5).score == 0
    assert score(8, 3).consistent is None


def test_families_follow_run_judge_prefixes():
    assert [BENCHMARK.subset(row("A>B", s)) for s in ("mmlu-pro-law", "livebench-reasoning", "livebench-math",
                                                      "livecodebench", "other-source")] \
        == ["knowledge", "reasoning", "math", "coding", "other-source"]
