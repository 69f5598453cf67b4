"""icrm's RM-Bench scoring against worked cases computed with RM-Bench's own code.

Every expected number here was computed by running THU-KEG/RM-Bench ``scripts/utils.py``
``compute_accuracy`` (with ``split_dataset_by_domain``; commit
73c52d7b27b361621361ec959ac6c0eb9bb7a689) on `seeded_results()` and copied in. icrm
gets the same scores as individual judgements (6 per prompt), and as the 9 pairwise
verdicts they imply (chosen higher: A+, lower: B+, equal: A=B).
"""

import random

import pytest

from icrm.errors import InputError
from icrm.evaluation.rmbench import LEVELS, RMBench
from icrm.evaluation.stats import subset_report
from icrm.rm_types import INDIVIDUAL, LISTWISE, PAIRWISE

BENCHMARK = RMBench()
# compute_accuracy(seeded_results()) (the total_dataset.json path, split by domain):
TOTAL = {"chat": 0.4052287581699347, "math": 0.37222222222222223, "code": 0.49206349206349204,
         "safety": 0.456989247311828, "hard_acc": 0.4547988012409265, "normal_acc": 0.4475320773470679,
         "easy_acc": 0.39254691123761337, "total_avg_acc": 0.43162592994186927}
# compute_accuracy(the 17 chat results without their domain key):
CHAT = {"hard_acc": 0.37254901960784315, "normal_acc": 0.43137254901960786, "easy_acc": 0.411764705882353}


def seeded_results():
    rng = random.Random(11)
    domains = ["chat", "math", "code", "safety-refuse", "safety-response"]
    return [{"id": i, "domain": rng.choice(domains), "score_chosen": [rng.randint(1, 10) for _ in range(3)],
             "score_rejected": [rng.randint(1, 10) for _ in range(3)]} for i in range(120)]


def rm_row(result, source="total_dataset.json"):
    row = {"id": result["id"], "prompt": "p", "chosen": ["c", "cc", "ccc"], "rejected": ["r", "rr", "rrr"]}
    if "domain" in result:
        row["domain"] = result["domain"]
    return BENCHMARK.check(row, "row", source)


def individual_records(result):
    return {**{f"chosen{i}": {"score": s} for i, s in enumerate(result["score_chosen"])},
            **{f"rejected{j}": {"score": s} for j, s in enumerate(result["score_rejected"])}}


def pairwise_records(result):
    def choice(c, r):
        return "A+" if c > r else "B+" if c < r else "A=B"

    return {f"chosen{i}-rejected{j}": {"choice": choice(c, r)}
            for i, c in enumerate(result["score_chosen"]) for j, r in enumerate(result["score_rejected"])}


def sections(results, rm_type, source="total_dataset.json"):
    by_domain = {}
    for result in results:
        row = rm_row(result, source)
        records = individual_records(result) if rm_type.single else \
            listwise_records(result, row) if rm_type.group else pairwise_records(result)
        scored = BENCHMARK.score(row, records, rm_type)
        by_domain.setdefault(scored.subset, []).append(scored)
    reports = {d: subset_report(rows, random.Random(0)) for d, rows in by_domain.items()}
    return reports, BENCHMARK.aggregate(reports, rm_type)


def listwise_records(result, row):
    """The listwise judgement a judge scoring each response as `result` does would give:
    its scores in the order the group was shown."""
    [judgement] = BENCHMARK.judgements(row, LISTWISE)
    by_text = dict(zip(row["chosen"] + row["rejected"], result["score_chosen"] + result["score_rejected"]))
    scores = [by_text[c[-1]["content"]] for c in judgement.item["conversations"]]
    return {"group": {"scores": scores, "feedback": {"scores": scores}}}


@pytest.mark.parametrize("rm_type", [INDIVIDUAL, PAIRWISE, LISTWISE], ids=["individual", "pairwise", "listwise"])
def test_domains_levels_and_total_equal_compute_accuracy(rm_type):
    reports, scores = sections(seeded_results(), rm_type)
    for domain in ("chat", "math", "code", "safety"):
        assert reports[domain].accuracy == pytest.approx(TOTAL[domain], abs=1e-12)
    for level in LEVELS:
        assert scores[level] == pytest.approx(TOTAL[f"{level}_acc"], abs=1e-12)
    assert scores["overall"] == pytest.approx(TOTAL["total_avg_acc"], abs=1e-12)


def test_one_file_takes_its_domain_from_its_name():
    chat = [{k: v for k, v in r.items() if k != "domain"} for r in seeded_results() if r["domain"] == "chat"]
    reports, scores = sections(chat, INDIVIDUAL, source="../shared/data/rmbench/chat_filtered.json")
    assert list(reports) == ["chat"] and reports["chat"].n == 17
    for level in LEVELS:
        assert scores[f"chat {level}"] == pytest.approx(CHAT[f"{level}_acc"], abs=1e-12)
    assert scores["overall"] == pytest.approx(sum(CHAT.values()) / 3, abs=1e-12)


def test_ties_and_missing_verdicts_are_not_correct():
    result = {"id": 1, "domain": "chat", "score_chosen": [5, 5, 5], "score_rejected": [5, 5, 5]}
    tied = BENCHMARK.score(rm_row(result), individual_records(result), INDIVIDUAL)
    assert tied.score == 0 and tied.tie
    missing = individual_records({**result, "score_chosen": [9, 9, 9], "score_rejected": [1, 1, 1]})
    missing["chosen0"] = {"score": None}
    scored = BENCHMARK.score(rm_row(result), missing, INDIVIDUAL)
    assert scored.parse_failure and scored.values["matrix"][0] == [0.0, 0.0, 0.0] and scored.score == 6 / 9


def test_pairwise_places_chosen_style_i_against_rejected_style_j():
    row = rm_row({"id": 3, "domain": "code"})
    judgements = {j.tag: j.item for j in BENCHMARK.judgements(row, PAIRWISE)}
    assert len(judgements) == 9
    item = judgements["chosen0-rejected2"]
    assert item["conversation_A"][-1]["content"] == "c" and item["conversation_B"][-1]["content"] == "rrr"


def test_rows_in_another_shape_are_refused_naming_the_field():
    with pytest.raises(InputError, match="'chosen' must be 3 response strings"):
        BENCHMARK.check({"id": 1, "prompt": "p", "chosen": ["a", "b"], "rejected": ["a", "b", "c"]}, "row 4", "chat.json")
    with pytest.raises(InputError, match="add a 'domain' field"):
        BENCHMARK.check({"id": 1, "prompt": "p", "chosen": ["a"] * 3, "rejected": ["b"] * 3}, "row 4", "mine.json")


def test_listwise_shows_the_six_responses_in_a_seeded_order_and_no_verdict_is_not_correct():
    row = rm_row({"id": 5, "domain": "chat"})
    [judgement] = BENCHMARK.judgements(row, LISTWISE)
    shown = [c[-1]["content"] for c in judgement.item["conversations"]]
    assert sorted(shown) == sorted(row["chosen"] + row["rejected"]) and shown != row["chosen"] + row["rejected"]
    assert BENCHMARK.judgements(row, LISTWISE) == [judgement]
    orders = {tuple(c[-1]["content"] for c in BENCHMARK.judgements(rm_row({"id": i, "domain": "chat"}), LISTWISE)[0]
                    .item["conversations"]) for i in range(20)}
    assert len(orders) > 10
    failed = BENCHMARK.score(row, {"group": {"scores": None, "feedback": None}}, LISTWISE)
    assert failed.score == 0.0 and failed.parse_failure
