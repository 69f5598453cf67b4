"""icrm's RewardBench 2 scoring against the `rewardbench` package's own functions on
identical per-row ratings.

Row scores: the package's `run_judge_ratings_multi` (rewardbench/generative_v2.py) is
compiled from its source with its rating call replaced by the ratings under test; the
two lines `scripts/run_generative_v2.py` applies to its answer (0.25 for "error", else
``(0 in winners) / len(winners)``) are copied from that script, which the package does
not ship. Ties: `process_single_model` and `sample_stats` (rewardbench/utils.py),
compiled from source. No RewardBench 2 data is available offline; rows are built in its
schema.
"""

import math
import random

import numpy as np
import pytest

from icrm.evaluation.rewardbench2 import SUBSETS, RewardBench2, ratings_score, ties_score
from icrm.evaluation.stats import subset_report
from icrm.rm_types import INDIVIDUAL, PAIRWISE
from tests.official import needs_rewardbench, package_definitions

pytestmark = needs_rewardbench
BENCHMARK = RewardBench2()


def package_row_score(ratings):
    """The official score of one row from its answers' ratings (-1 = did not parse)."""
    given = iter(ratings)
    functions = package_definitions(
        "generative_v2.py", ("run_judge_ratings_multi", "API_ERROR_OUTPUT", "ratings_prompt", "ratings_prompt_ties"),
        _get_single_rating=lambda *args: (next(given), "judgement"))
    answers = [[{"role": "user", "content": "q"}, {"role": "assistant", "content": f"a{i}"}] for i in range(len(ratings))]
    winners, _, _ = functions["run_judge_ratings_multi"]("q", answers, "model")
    # scripts/run_generative_v2.py, get_judgement (API models, --score_w_ratings):
    if winners == "error":
        return 0.25
    return (0 in winners) / len(winners)


def package_ties_score(rows):
    class Dataset:  # the package returns its rows as a datasets.Dataset too; only the score matters here
        from_dict = staticmethod(lambda columns: columns)

    functions = package_definitions("utils.py", ("process_single_model", "sample_stats"), np=np, math=math,
                                    Dataset=Dataset)
    _, score = functions["process_single_model"](rows)
    return score


def rb2_row(rid, subset, chosen, rejected, num_correct=None):
    return {"id": rid, "prompt": "Name a prime number.", "chosen": chosen, "rejected": rejected,
            "num_correct": len(chosen) if num_correct is None else num_correct, "subset": subset}


def records_of(ratings, distributions=None):
    return {str(i): {"score": None if r == -1 else r, "probabilities": (distributions or {}).get(i)}
            for i, r in enumerate(ratings)}


def test_row_scores_equal_the_official_ratings_protocol():
    rng = random.Random(0)
    cases = [[8, 3, 5, 2], [8, 8, 5, 2], [8, 8, 8, 8], [3, 8, 5, 2], [-1, 4, -1, -1], [-1, -1, -1, -1],
             [7, -1, -1, -1], [5, 5, -1, 9]]
    cases += [[rng.choice([-1, 1, 2, 5, 7, 9, 10]) for _ in range(rng.randint(2, 6))] for _ in range(300)]
    for ratings in cases:
        row = rb2_row("1", "Focus", ["a0"], [f"a{i}" for i in range(1, len(ratings))])
        ours = BENCHMARK.score(row, records_of(ratings), INDIVIDUAL)
        assert ours.score == pytest.approx(package_row_score(ratings)), ratings
        assert ratings_score(ratings) == ours.score
        assert ours.parse_failure == (-1 in ratings)


def ties_rows(rng, prompts):
    """Ties rows in RewardBench 2's shape: per prompt a ``ref`` variant (one correct
    answer) and, mostly, a ``tied`` variant (several correct answers)."""
    rows = []
    for pid in range(prompts):
        variants = ["ref", "tied"] if rng.random() < 0.8 else [rng.choice(["ref", "tied"])]
        for kind in variants:
            correct = 1 if kind == "ref" else rng.randint(1, 4)
            incorrect = rng.randint(1, 4)
            ratings = [rng.choice([-1, 1, 3, 5, 6, 7, 8, 9, 10]) for _ in range(correct + incorrect)]
            rows.append((f"{kind}:{pid}", ratings, correct))
    return rows


@pytest.mark.parametrize("seed", range(20))
def test_ties_score_equals_process_single_model(seed):
    rows = ties_rows(random.Random(seed), prompts=random.Random(seed).randint(1, 30))
    official = package_ties_score([{"id": i, "scores": r, "num_correct": n} for i, r, n in rows])
    ours = ties_score(rows)
    assert (math.isnan(ours) and math.isnan(official)) or ours == pytest.approx(official, abs=1e-12)


def test_ties_subset_goes_through_the_benchmark_and_the_report():
    rows = ties_rows(random.Random(7), prompts=25)
    scored = []
    for rid, ratings, correct in rows:
        row = rb2_row(rid, "Ties", [f"c{i}" for i in range(correct)], [f"w{i}" for i in range(len(ratings) - correct)])
        scored.append(BENCHMARK.score(row, records_of(ratings), INDIVIDUAL))
    report = subset_report(scored, random.Random(0), lambda r: BENCHMARK.subset_accuracy("Ties", r, INDIVIDUAL))
    assert report.accuracy == pytest.approx(package_ties_score([{"id": i, "scores": r, "num_correct": n}
                                                                for i, r, n in rows]))
    assert report.accuracy_ci[0] <= report.accuracy <= report.accuracy_ci[1]


def test_overall_is_the_mean_of_the_six_subsets():
    reports = {}
    rng = random.Random(3)
    for subset in SUBSETS:
        scored = [BENCHMARK.score(rb2_row(str(i), subset, ["a"], ["b", "c", "d"]),
                                  records_of([rng.randint(1, 10) for _ in range(4)]), INDIVIDUAL) for i in range(9)]
        reports[subset] = subset_report(scored, rng)
    overall = BENCHMARK.aggregate(reports, INDIVIDUAL)["overall"]
    assert overall == pytest.approx(sum(r.accuracy for r in reports.values()) / 6)


def test_pairwise_counts_a_row_only_when_the_correct_answer_wins_every_comparison():
    row = rb2_row("5", "Math", ["right"], ["w1", "w2", "w3"])
    tags = [j.tag for j in BENCHMARK.judgements(row, PAIRWISE)]
    assert tags == ["0-1", "0-2", "0-3"]
    first = BENCHMARK.judgements(row, PAIRWISE)[0].item
    assert first["conversation_A"][-1]["content"] == "right" and first["conversation_B"][-1]["content"] == "w1"
    win_all = BENCHMARK.score(row, {t: {"choice": "A+"} for t in tags}, PAIRWISE)
    one_tie = BENCHMARK.score(row, {**{t: {"choice": "A++"} for t in tags}, "0-2": {"choice": "A=B"}}, PAIRWISE)
    one_missing = BENCHMARK.score(row, {**{t: {"choice": "A+"} for t in tags}, "0-3": {"choice": None}}, PAIRWISE)
    assert (win_all.score, one_tie.score, one_missing.score) == (1.0, 0.0, 0.0)
    assert one_tie.tie and one_missing.parse_failure


def test_rows_in_another_shape_are_refused_naming_the_field():
    from icrm.errors import InputError

    good = rb2_row("tied:3", "Ties", ["2", "3"], ["4"])
    assert BENCHMARK.check(dict(good), "row 0", "f.jsonl") == good
    for bad, field in (({**good, "chosen": "2"}, "'chosen'"), ({**good, "rejected": [None]}, "'rejected'"),
                       ({**good, "num_correct": 9}, "'num_correct'"), ({**good, "id": "7"}, "Ties row's id"),
                       ({k: v for k, v in good.items() if k != "num_correct"}, "num_correct")):
        with pytest.raises(InputError, match=field):
            BENCHMARK.check(bad, "row 0", "f.jsonl")


def listwise_record(scores=None, p_best=None):
    feedback = None if scores is None and p_best is None else {"scores": scores, "p_best": p_best}
    return {"scores": scores or p_best, "feedback": feedback}


def test_listwise_four_way_rows_score_as_the_official_generative_script():
    from icrm.rm_types import LISTWISE
    from tests.official import script_function

    process_shuffled = script_function("run_generative_v2.py", "process_shuffled")
    rng = random.Random(11)
    letters = "ABCD"
    slots = set()
    for n in range(300):
        row = rb2_row(f"id-{n}", rng.choice(SUBSETS[:5]), ["right"], ["w1", "w2", "w3"])
        [judgement] = BENCHMARK.judgements(row, LISTWISE)
        shown = [c[-1]["content"] for c in judgement.item["conversations"]]
        slot = shown.index("right")
        slots.add(slot)
        assert sorted(shown) == ["right", "w1", "w2", "w3"]
        assert BENCHMARK.judgements(row, LISTWISE) == [judgement]  # the same slot every run
        kind = rng.choice(["pick", "tie", "none", "p_best"])
        scores = [rng.randint(1, 5) for _ in range(4)]
        if kind == "pick":
            scores[rng.randrange(4)] = 9
            record, decision = listwise_record(scores), letters[scores.index(9)]
        elif kind == "tie":
            a, b = rng.sample(range(4), 2)
            scores[a] = scores[b] = 9
            record, decision = listwise_record(scores), "error"  # no single pick: what the script calls an error
        elif kind == "none":
            record, decision = listwise_record(), "error"
        else:
            weights = [rng.random() for _ in range(4)]
            p_best = [w / sum(weights) for w in weights]
            record, decision = listwise_record(p_best=p_best), letters[p_best.index(max(p_best))]
        ours = BENCHMARK.score(row, {"four": record}, LISTWISE)
        assert ours.score == process_shuffled(decision, slot), (kind, scores, slot)
    assert slots == {0, 1, 2, 3}


def test_listwise_ties_rows_are_rated_from_one_group_and_scored_by_process_single_model():
    from icrm.rm_types import LISTWISE

    rows = ties_rows(random.Random(5), prompts=20)
    scored = []
    for rid, ratings, correct in rows:
        row = rb2_row(rid, "Ties", [f"c{i}" for i in range(correct)], [f"w{i}" for i in range(len(ratings) - correct)])
        [judgement] = BENCHMARK.judgements(row, LISTWISE)
        assert len(judgement.item["conversations"]) == len(ratings)
        record = listwise_record(None if -1 in ratings else ratings)
        scored.append(BENCHMARK.score(row, {"all": record}, LISTWISE))
    expected = [(rid, [-1] * len(r) if -1 in r else r, n) for rid, r, n in rows]
    assert BENCHMARK.subset_accuracy("Ties", scored, LISTWISE) == pytest.approx(
        package_ties_score([{"id": i, "scores": r, "num_correct": n} for i, r, n in expected]))
