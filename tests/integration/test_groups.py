"""Judging a group (`icrm.groups`, the ``listwise`` rm type) against the project's mock
server: generated groups with a hidden order, a judge that answers each ordered pair
(or the whole list) by that order, and the faults a group can meet — a judge biased to
one side, a pair that fails, answers that do not score exactly the group."""

from __future__ import annotations

import itertools
import json
import random

import pytest

from icrm import ICRM, MockServer
from icrm.groups import GROUP_STRATEGIES
from icrm.groups.outcomes import kendall_tau
from tests.conftest import EXAMPLES
from tests.integration.helpers import Service, icrm_cli, pair_feedback, read_jsonl


def group(k: int) -> list[list[dict[str, str]]]:
    return [[{"role": "user", "content": "Which city is the capital of France?"},
             {"role": "assistant", "content": f"response R{i}."}] for i in range(k)]


def pair_rule(a: int, b: int, answer: str) -> dict:
    """The mock's answer when response a is shown as A and b as B."""
    return {"contains": [f"<|begin_of_response_A|>\nresponse R{a}.", f"<|begin_of_response_B|>\nresponse R{b}."],
            "response": answer}


def listwise_answer(scores: dict[str, object]) -> str:
    return json.dumps({"analysis": {label: "fine" for label in scores}, "scores": scores})


def hidden_order_rules(quality: list[int], fail: set[tuple[int, int]] = frozenset()) -> dict:
    """A judge that prefers the better response of every ordered pair (a failing pair:
    HTTP 500) and scores the list by `quality`."""
    rules = []
    for a, b in itertools.permutations(range(len(quality)), 2):
        if (a, b) in fail or (b, a) in fail:
            rules.append({"contains": pair_rule(a, b, "")["contains"], "status": 500, "error": "boom"})
        else:
            rules.append(pair_rule(a, b, pair_feedback("A+" if quality[a] > quality[b] else "B+")))
    scores = {str(i + 1): q for i, q in enumerate(quality)}
    rules.append({"contains": ["<|begin_of_response_1|>"], "response": listwise_answer(scores)})
    return {"strict": True, "matches": rules}


def judge(url: str, rm_type: str, strategy: str, **options) -> ICRM:
    return ICRM(engine="openai", model_name="m", base_url=url, rm_type=rm_type, group_strategy=strategy,
                num_shots=0, max_retries=0, **options)


@pytest.mark.parametrize("seed", range(4))
def test_each_strategy_ranks_a_hidden_order(seed):
    rng = random.Random(seed)
    k = rng.randint(2, 7)
    quality = rng.sample(range(1, 11), k)
    truth = sorted(range(k), key=lambda r: -quality[r])
    with MockServer(hidden_order_rules(quality)) as url:
        for name, rm_type in [("all_pairs", "pairwise"), ("circular", "pairwise"), ("knockout", "pairwise"),
                              ("listwise", "listwise")]:
            for position in ("as_given", "both") if rm_type == "pairwise" else ("as_given",):
                with judge(url, rm_type, name, position=position) as icrm:
                    result = icrm.judge_group(group(k))
                assert result.ok and result.errors == [None] * k, (name, result.errors)
                expected = GROUP_STRATEGIES.get(name).judgements(k) * (2 if position == "both" else 1)
                assert result.requests == expected, (name, position)
                assert all(0.0 <= r <= 1.0 for r in result.rewards)
                if name in ("all_pairs", "listwise"):  # every response compared with every other
                    assert result.ranking == truth, (name, quality, result.rewards)
                if name == "knockout":
                    assert result.ranking[0] == truth[0]
                if name == "circular":  # each response's two comparisons: more won, more reward
                    wins = [sum(c.p_i if c.i == r else 1 - c.p_i for c in result.comparisons if r in (c.i, c.j))
                            for r in range(k)]
                    for a, b in itertools.permutations(range(k), 2):
                        if wins[a] > wins[b] and len({c for c in result.comparisons if a in (c.i, c.j)}) == 2:
                            assert result.rewards[a] >= result.rewards[b] - 1e-9 or k == 2
                    assert kendall_tau(result.ranking, truth) > 0


@pytest.mark.parametrize("inconsistent, expected_kind", [("tie", None), ("abstain", "abstained")])
def test_a_judge_that_always_picks_a_is_inconsistent_on_every_pair(inconsistent, expected_kind):
    rules = {"matches": [{"contains": ["<|begin_of_response_A|>"], "response": pair_feedback("A+")}]}
    with MockServer(rules) as url, judge(url, "pairwise", "all_pairs", position="both",
                                         inconsistent_pairs=inconsistent) as icrm:
        result = icrm.judge_group(group(4))
    assert all(c.consistent is False for c in result.comparisons) and result.requests == 12
    if inconsistent == "tie":
        assert result.rewards == pytest.approx([0.5] * 4)
    else:
        assert result.rewards == [None] * 4 and result.error_kinds == [expected_kind] * 4


def test_a_failing_pair_costs_only_its_outcome():
    quality = [2, 9, 5, 7]
    with MockServer(hidden_order_rules(quality, fail={(1, 3)})) as url, judge(url, "pairwise", "all_pairs") as icrm:
        result = icrm.judge_group(group(4))
    assert result.ok and result.ranking[0] == 1 and result.ranking[-1] == 0
    failed = [c for c in result.comparisons if c.p_i is None]
    assert [(c.i, c.j) for c in failed] == [(1, 3)] and failed[0].error
    # a response whose only comparison failed has no reward, and says why
    with MockServer(hidden_order_rules([2, 9], fail={(0, 1)})) as url, judge(url, "pairwise", "all_pairs") as icrm:
        result = icrm.judge_group(group(2))
    assert result.rewards == [None, None] and result.error_kinds == ["engine_status"] * 2, result.error_kinds


def listwise_variants(k: int, rng: random.Random) -> list[tuple[str, str]]:
    """Answers to a group of k that must not be a verdict, with the reason expected."""
    labels = [str(i + 1) for i in range(k)]
    scores = {label: rng.randint(1, 10) for label in labels}
    dropped = dict(list(scores.items())[:-1])
    body = ", ".join(f'"{label}": {score}' for label, score in scores.items())
    again = rng.choice(labels)
    other = listwise_answer({label: 11 - s for label, s in scores.items()})
    return [
        (listwise_answer(dropped), "missing_keys"),
        (listwise_answer({**scores, str(k + 1): 5}), "wrong_count"),
        (listwise_answer({chr(65 + i): s for i, s in enumerate(scores.values())}), "wrong_count"),
        ('{"analysis": {}, "scores": {' + body + f', "{again}": {scores[again] % 10 + 1}' + "}}", "ambiguous"),
        (listwise_answer(scores) + "\n### Feedback\n" + other, "ambiguous"),
        (listwise_answer({**scores, labels[0]: 11}), "invalid_verdict"),
        (listwise_answer({**scores, labels[-1]: "great"}), "invalid_verdict"),
        (json.dumps({"analysis": {}, "scores": list(scores.values())}), "invalid_verdict"),
    ]


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("method", ["critique", "verdict"])
def test_a_listwise_answer_scores_exactly_the_group_or_is_no_verdict(seed, method):
    rng = random.Random(seed)
    k = rng.randint(2, 6)
    for answer, reason in listwise_variants(k, rng):
        with MockServer({"matches": [{"response": answer}]}) as url, \
                judge(url, "listwise", "listwise", method=method) as icrm:
            feedback = icrm.judge(conversations=group(k))
            result = icrm.judge_group(group(k))
        assert not feedback.ok and feedback.parse_error_reason == reason, (answer, feedback.parse_error)
        assert result.rewards == [None] * k and result.error_kinds == ["parse"] * k


def test_bad_groups_are_input_errors_with_nothing_sent():
    with MockServer({"strict": True, "matches": []}) as url, judge(url, "pairwise", "circular") as icrm:
        one = icrm.judge_group(group(1))
        mixed = icrm.judge_group([group(2)[0], [{"role": "user", "content": "other"},
                                                {"role": "assistant", "content": "x"}]])
        too_many = icrm.judge_group(group(33))
        assert icrm.usage.requests == 0
    assert one.error_kinds == ["input"] and "2 to 32" in one.errors[0]
    assert mixed.error_kinds == ["input"] * 2 and "share history and query" in mixed.errors[0]
    assert too_many.error_kinds == ["input"] * 33


def test_the_group_endpoint_answers_one_reward_per_response_and_refuses_before_any_work():
    quality = [4, 9, 6]
    with MockServer(hidden_order_rules(quality)) as url:
        service = Service("--engine", "openai", "--model_name", "m", "--base_url", url, "--num_shots", "0",
                          "--max_retries", "0", "--rm_type", "pairwise", "--group_strategy", "circular")
        try:
            answer = service.post("/v1/reward/group", {"conversations": group(3), "id": "g1"})
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["strategy"] == "circular" and body["ranking"][0] == 1 and body["requests"] == 3
            assert len(body["rewards"]) == 3 and len(body["judgements"]) == 3
            assert all(j["choice"] in ("A+", "B+") for j in body["judgements"])
            prompt = {"prompt": group(1)[0][0]["content"], "responses": ["response R0.", "response R1."],
                      "group_strategy": "all_pairs", "position": "both"}
            answer = service.post("/v1/reward/group", prompt)
            assert answer.status_code == 200 and answer.json()["rewards"][1] > answer.json()["rewards"][0]
            assert answer.json()["requests"] == 2
            for bad, field in [({"conversations": group(1)}, "2 to 32"),
                               ({"conversations": group(2), "prompt": "q", "responses": ["a"]}, "either"),
                               ({"prompt": "q"}, "responses"),
                               ({"conversations": group(2), "group_strategy": "listwise"}, "rm_type"),
                               ({"conversations": group(2), "group_strategy": "swiss"}, "group_strategy"),
                               ({"conversations": group(40)}, "2 to 32")]:
                refused = service.post("/v1/reward/group", bad)
                assert refused.status_code == 422 and field in refused.json()["description"], refused.text
        finally:
            service.stop()
    mock = MockServer(hidden_order_rules([1, 2, 3, 4, 5, 6]))
    with mock as url:
        small = Service("--engine", "mock", "--base_url", url, "--num_shots", "0", "--rm_type", "pairwise",
                        "--max_concurrency", "2", "--max_queue", "2")
        try:  # all_pairs of 6 takes 15 judgements: more than the server holds, refused before any work
            refused = small.post("/v1/reward/group", {"conversations": group(6)})
            assert refused.status_code == 422 and "15 judgements exceed" in refused.json()["description"]
            assert [r for r in mock.requests() if r["path"].endswith("/completions")] == []
        finally:
            small.stop()
    with MockServer({"matches": [{"status": 503, "error": "overloaded"}]}) as url:
        service = Service("--engine", "openai", "--model_name", "m", "--base_url", url, "--num_shots", "0",
                          "--max_retries", "0", "--rm_type", "pairwise")
        try:
            down = service.post("/v1/reward/group", {"conversations": group(3)})
            assert down.status_code in (502, 503) and "reward" not in down.json(), down.text
        finally:
            service.stop()


def test_icrm_test_and_score_take_listwise_rows(tmp_path):
    answer = listwise_answer({"1": 7, "2": 2, "3": 9})
    rows = tmp_path / "groups.jsonl"
    rows.write_text(json.dumps({"id": "g1", "prompt": "Q?", "responses": ["a", "b", "c"]}) + "\n"
                    + json.dumps({"id": "g2", "prompt": "Q?", "responses": ["only one"]}) + "\n"
                    + json.dumps({"id": "g3", "prompt": "Q?", "responses": "not a list"}) + "\n")
    with MockServer({"matches": [{"response": answer}]}) as url:
        flags = ["--rm_type", "listwise", "--engine", "mock", "--base_url", url, "--num_shots", "0"]
        shown = icrm_cli("test", EXAMPLES / "test_listwise.json", *flags)
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["scores"] == [7, 2, 9] and json.loads(shown.stdout)["ranking"] == [2, 0, 1]
        scored = icrm_cli("score", rows, "--output", tmp_path / "out.jsonl", "--input_format", "responses", *flags)
    assert scored.returncode == 1 and "Traceback" not in scored.stderr  # two rows without a verdict
    out = {r["id"]: r for r in read_jsonl(tmp_path / "out.jsonl")}
    assert out["g1"]["scores"] == [7, 2, 9] and out["g1"]["reward"] == pytest.approx([6 / 9, 1 / 9, 8 / 9])
    assert out["g1"]["feedback"]["ranking"] == [2, 0, 1]
    assert out["g2"]["error_kind"] == "input" and "2 to 32" in out["g2"]["error"]
    assert out["g3"]["error_kind"] == "input" and "'responses' must be a list" in out["g3"]["error"]


def test_a_listwise_group_judged_in_both_orders_needs_both_answers():
    scores = {"1": 3, "2": 9, "3": 5}
    given = {"contains": ["<|begin_of_response_1|>\nresponse R0."], "response": listwise_answer(scores)}
    reversed_order = {"contains": ["<|begin_of_response_1|>\nresponse R2."],
                      "response": listwise_answer({"1": 5, "2": 9, "3": 3})}
    broken = {"contains": ["<|begin_of_response_1|>\nresponse R2."], "response": "no verdict"}
    with MockServer({"strict": True, "matches": [given, reversed_order]}) as url, \
            judge(url, "listwise", "listwise", position="both") as icrm:
        both = icrm.judge(conversations=group(3))
    assert both.ok and both.scores == [3, 9, 5] and both.ranking == [1, 2, 0] and both.position_consistent
    with MockServer({"strict": True, "matches": [given, broken]}) as url, \
            judge(url, "listwise", "listwise", position="both") as icrm:
        half = icrm.judge(conversations=group(3))
        result = icrm.judge_group(group(3))
    assert not half.ok and half.scores is None and half.ranking is None  # never a verdict from one order
    assert result.rewards == [None] * 3 and result.error_kinds == ["parse"] * 3
