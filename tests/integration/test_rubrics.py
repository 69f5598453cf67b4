"""Rubrics end to end on the project's mock server: one request or one per criterion,
the row's per-criterion verdicts and values, a failed part failing only its item,
the run's fingerprint, ``icrm score/test --rubric``, and the trainers' logged extras."""

from __future__ import annotations

import json

import pytest
import yaml

from icrm import ICRM, MockServer
from tests.integration.helpers import Service, icrm_cli, read_jsonl, write_jsonl

RUBRIC = {"criteria": [
    {"name": "correct", "description": "The answer is correct.", "weight": 2, "choices": ["wrong", "partly", "right"],
     "required": True},
    {"name": "clear", "description": "Easy to follow.", "scale": [1, 5]},
    {"name": "safe", "description": "Nothing harmful.", "choices": ["no", "yes"]},
]}


def conversation(answer):
    return [{"role": "user", "content": "What is 2+2?"}, {"role": "assistant", "content": answer}]


def criteria(**verdicts):
    return json.dumps({"criteria": {n: {"reason": f"on {n}", "verdict": v} for n, v in verdicts.items()}})


def part_rules(verdicts_by_answer):
    """One rule per (answer, criterion): a request asking only that criterion gets its verdict."""
    rules = []
    for answer, verdicts in verdicts_by_answer.items():
        for name, verdict in verdicts.items():
            rules.append({"regex": rf"# Rubric\n\n1\. {name}:[^\n]*\n[^\n]*\n\nJudge each",  # this criterion alone
                          "contains": [f"<|begin_of_response|>\n{answer}\n"], "response": criteria(**{name: verdict})})
    return rules


def judge(url, **options):
    return ICRM(engine="mock", base_url=url, rubric=RUBRIC, num_shots=0, max_retries=0, **options)


def test_all_in_one_and_one_request_per_criterion_give_the_same_judgement():
    verdicts = {"correct": "partly", "clear": 5, "safe": "yes"}
    one = [{"contains": ["<|begin_of_response|>\n4\n"], "response": criteria(**verdicts)}]
    with MockServer({"strict": True, "matches": part_rules({"4": verdicts}) + one}) as url:
        with judge(url) as whole, judge(url, max_criteria=1) as split:
            a, b = whole.judge(conversation=conversation("4")), split.judge(conversation=conversation("4"))
    assert a.ok and b.ok and a.values == b.values == {"correct": 0.5, "clear": 1.0, "safe": 1.0}
    assert a.usage.completion_tokens < b.usage.completion_tokens  # three answers summed
    assert b.raw_text.count('"criteria"') == 3


def test_a_failed_part_fails_its_item_only_naming_the_criteria(tmp_path):
    good = {"correct": "right", "clear": 4, "safe": "yes"}
    rules = part_rules({"4": good, "5": {"correct": "wrong", "clear": 4}})
    rules.append({"regex": r"# Rubric\n\n1\. safe:", "contains": ["<|begin_of_response|>\n5\n"],
                  "response": "fine, I guess"})
    rows = write_jsonl(tmp_path / "in.jsonl", [{"id": "good", "conversation": conversation("4")},
                                               {"id": "bad", "conversation": conversation("5")}])
    with MockServer({"strict": True, "matches": rules}) as url, judge(url, max_criteria=1) as icrm:
        summary = icrm.score(rows, tmp_path / "out.jsonl")
    assert (summary.scored, summary.parse_failures, summary.failed) == (2, 1, 1)
    by_id = {r["id"]: r for r in read_jsonl(tmp_path / "out.jsonl")}
    assert by_id["good"]["criteria"] == good and by_id["good"]["reward"] == pytest.approx((2 + 0.75 + 1) / 4)
    assert by_id["good"]["feedback"]["values"] == {"correct": 1.0, "clear": 0.75, "safe": 1.0}
    assert by_id["good"]["provenance"]["rubric_hash"] and by_id["good"]["provenance"]["max_criteria"] == 1
    bad = by_id["bad"]
    assert bad["reward"] is None and bad["criteria"] is None and bad["error_kind"] == "parse"
    assert "no verdict for criteria safe" in bad["error"]


def test_a_gate_zeroes_the_reward_and_is_recorded():
    rules = [{"response": criteria(correct="wrong", clear=5, safe="yes")}]
    with MockServer({"matches": rules}) as url, judge(url) as icrm:
        feedback = icrm.judge(conversation=conversation("5"))
    assert feedback.ok and feedback.failed_gates == ["correct"] and icrm.rm_type.feedback_reward(feedback) == 0.0


def test_cli_score_with_a_rubric_file_and_a_resume_with_another_rubric_is_refused(tmp_path):
    path = tmp_path / "rubric.yaml"
    path.write_text(yaml.safe_dump(RUBRIC))
    rows = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "conversation": conversation("4")}])
    with MockServer({"matches": [{"response": criteria(correct="right", clear=3, safe="yes")}]}) as url:
        common = ["--engine", "mock", "--base_url", url, "--num_shots", "0"]
        done = icrm_cli("score", rows, tmp_path / "out.jsonl", "--rubric", path, *common)
        assert done.returncode == 0, done.stderr
        [row] = read_jsonl(tmp_path / "out.jsonl")
        assert row["criteria"] == {"correct": "right", "clear": 3, "safe": "yes"}
        other = tmp_path / "other.yaml"
        other.write_text(yaml.safe_dump({**RUBRIC, "aggregate": "min"}))
        again = icrm_cli("score", rows, tmp_path / "out.jsonl", "--rubric", other, *common)
        assert again.returncode == 2 and "rubric_hash" in again.stderr, again.stderr
        example = tmp_path / "one.json"
        example.write_text(json.dumps({"conversation": conversation("4")}))
        shown = icrm_cli("test", example, "--rubric", path, *common)
        assert shown.returncode == 0 and json.loads(shown.stdout)["criteria"]["clear"]["verdict"] == 3
        broken = tmp_path / "broken.yaml"
        broken.write_text(yaml.safe_dump({"criteria": [{**RUBRIC["criteria"][1], "scale": [5, 1]}]}))
        refused = icrm_cli("test", example, "--rubric", broken, *common)
        assert refused.returncode == 2 and "criterion 'clear'" in refused.stderr and "scale" in refused.stderr


def test_openrlhf_and_verl_log_each_criterion_beside_the_reward(tmp_path):
    path = tmp_path / "rubric.yaml"
    path.write_text(yaml.safe_dump(RUBRIC))
    rules = [{"contains": ["UNJUDGEABLE"], "response": "no verdict"},
             {"response": criteria(correct="right", clear=2, safe="yes")}]
    with MockServer({"matches": rules}) as url:
        service = Service("--engine", "mock", "--base_url", url, "--num_shots", "0", "--rubric", path)
        try:
            answer = service.post("/get_reward", {"query": ["Q: 2+2? A: 4", "UNJUDGEABLE"],
                                                  "prompts": ["Q: 2+2?", "UNJUDGEABLE"]}).json()
        finally:
            service.stop()
        from icrm.integrations import verl as icrm_verl

        score = icrm_verl.compute_score("d", "4", None, {"prompt": "What is 2+2?"},
                                        engine="mock", base_url=url, num_shots=0, rubric=str(path))
    logs = answer["extra_logs"]
    assert logs["icrm_clear"] == [0.25, 0.0] and logs["icrm_correct"] == [1.0, 0.0] and logs["icrm_failed"] == [0.0, 1.0]
    assert score["icrm_clear"] == 0.25 and score["score"] == pytest.approx((2 + 0.25 + 1) / 4)


def test_trl_reward_function_logs_each_criterions_mean():
    from icrm.integrations.trl import reward_function

    rules = [{"contains": ["<|begin_of_response|>\n4\n"], "response": criteria(correct="right", clear=5, safe="yes")},
             {"response": criteria(correct="partly", clear=1, safe="yes")}]
    metrics = []
    with MockServer({"matches": rules}) as url, judge(url) as icrm:
        rewards = reward_function(icrm)(prompts=["What is 2+2?"] * 2, completions=["4", "5"], completion_ids=None,
                                        log_metric=lambda name, value: metrics.append((name, value)))
    assert rewards == pytest.approx([1.0, (2 * 0.5 + 0 + 1) / 4])
    assert dict(metrics) == {"icrm/unjudged": 0.0, "icrm/correct": 0.75, "icrm/clear": 0.5, "icrm/safe": 1.0}


def test_eval_rewardbench_with_a_pairwise_rubric_scores_by_the_rubrics_preference(tmp_path):
    from icrm.evaluation.rewardbench import chosen_in_a, load_rows
    from tests.conftest import ROOT

    data = ROOT.parent / "shared" / "data" / "pairwise" / "hhh.jsonl"
    path = tmp_path / "rubric.yaml"
    path.write_text(yaml.safe_dump({"criteria": RUBRIC["criteria"][1:]}))  # no gates: a pair has none
    always_a = json.dumps({"criteria": {"clear": {"reason": "A", "verdict": "A+"}, "safe": {"reason": "A", "verdict": "A=B"}}})
    with MockServer({"matches": [{"response": always_a}]}) as url:
        done = icrm_cli("eval", "rewardbench", "--engine", "mock", "--base_url", url, "--data", data, "--limit", 40,
                        "--rubric", path, "--num_shots", 0, "--results_dir", tmp_path / "results")
    assert done.returncode == 0, done.stderr
    [summary_path] = (tmp_path / "results").rglob("summary.json")
    summary = json.loads(summary_path.read_text())
    rows = load_rows(data, limit=40)
    expected = sum(chosen_in_a(str(r["id"]), 42) for r in rows) / len(rows)  # A preferred: right when chosen is A
    assert summary["other"]["hhh-harmless"]["accuracy"] == pytest.approx(expected) and 0.2 < expected < 0.8
    assert summary["counts"]["parse_failures"] == 0


def test_a_pair_in_both_orders_per_criterion_keeps_every_parts_orders():
    plain = {"criteria": RUBRIC["criteria"][1:]}  # no gates: a pair has none
    # on "clear" the judge always prefers whatever stands in A (a position bias); on "safe" it prefers "4" wherever
    # it stands
    def rule(name, verdict, a_first):
        first, second = ("4", "5") if a_first else ("5", "4")
        return {"regex": rf"# Rubric\n\n1\. {name}:[^\n]*\n[^\n]*\n\nJudge each",
                "contains": [f"<|begin_of_response_A|>\n{first}\n", f"<|begin_of_response_B|>\n{second}\n"],
                "response": criteria(**{name: verdict})}
    rules = [rule("clear", "A+", True), rule("clear", "A+", False), rule("safe", "A+", True), rule("safe", "B+", False)]
    with MockServer({"strict": True, "matches": rules}) as url:
        with ICRM(engine="mock", base_url=url, rubric=plain, rm_type="pairwise", position="both", max_criteria=1,
                  num_shots=0, max_retries=0) as icrm:
            feedback = icrm.judge(conversation_A=conversation("4"), conversation_B=conversation("5"))
    assert feedback.ok and feedback.values == {"clear": 0.5, "safe": 0.75}
    assert feedback.order_verdicts == {"AB": {"clear": "A+", "safe": "A+"}, "BA": {"clear": "B+", "safe": "A+"}}
    assert feedback.position_consistent is False  # "clear" flipped with the order
    assert icrm.rm_type.feedback_reward(feedback) == pytest.approx((0.5 + 0.75) / 2)
