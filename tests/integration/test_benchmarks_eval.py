"""`icrm eval judgebench | rmbench | rewardbench2` end to end: the real command against the
mock server with a deterministic rule, on the shared data (RewardBench 2: rows built in
its schema). Each expected score is derived here from the data and the rule, row by row.
"""

import json
import math
import random
import re

import pytest

from icrm.position import random_order
from icrm.evaluation.judgebench import FAMILIES
from icrm.evaluation.rewardbench2 import SUBSETS
from tests.conftest import ROOT
from tests.integration.helpers import feedback, icrm_cli, pair_feedback, read_jsonl, write_jsonl
from tests.official import needs_rewardbench
from tests.unit.test_rewardbench2_scoring import package_row_score, package_ties_score

DATA = ROOT.parent / "shared" / "data"
JUDGEBENCH = DATA / "judgebench" / "judgebench_gpt-4o-2024-05-13.jsonl"
RMBENCH_CHAT = DATA / "rmbench" / "chat_filtered.json"
pytestmark = pytest.mark.skipif(not DATA.exists(), reason="../shared/data is not beside the checkout")

# A judge that prefers response A exactly when A contains a "7" (0 shots: one A section).
A_HAS_7 = r"(?s)<\|begin_of_response_A\|>(?:(?!<\|end_of_response_A\|>).)*7"
SEVEN_RULE = {"matches": [{"regex": A_HAS_7, "response": pair_feedback("A+")}, {"response": pair_feedback("B+")}]}


def run(mock, tmp_path, name, *flags):
    result = icrm_cli("eval", name, "--engine", "mock", "--base_url", mock.base_url, "--results_dir", tmp_path,
                      "--num_shots", "0", *flags)
    return result, tmp_path / name


def summary_of(root, rm_type, method="critique"):
    return json.loads((root / rm_type / "mock" / method / "0_shots" / "summary.json").read_text())


@pytest.mark.mock_llm(SEVEN_RULE)
def test_judgebench_judges_both_orders_and_scores_families_as_compute_final_metrics(mock_llm, tmp_path):
    result, root = run(mock_llm, tmp_path, "judgebench", "--data", JUDGEBENCH, "--limit", "40")
    assert result.returncode == 0, result.stderr
    assert len(mock_llm.requests()) == 80  # both orders of every pair, whatever --position says
    pairs = [json.loads(line) for line in JUDGEBENCH.read_text().splitlines()[:40]]
    expected, inconsistent = {}, 0
    for pair in pairs:
        # As given: A+ iff response_A has a 7. Swapped (B shown as A): A+ iff response_B has one.
        first = "A>B" if "7" in pair["response_A"] else "B>A"
        second = "B>A" if "7" in pair["response_B"] else "A>B"  # told back in the given orientation
        votes = sum((d == pair["label"]) - (d != pair["label"]) for d in (first, second))
        family = next((f for f, prefix in FAMILIES if pair["source"].startswith(prefix)), pair["source"])
        expected.setdefault(family, []).append(votes > 0)
        inconsistent += first != second
    summary = summary_of(root, "pairwise")
    assert summary["meta"]["position"] == "both"
    for family, correct in expected.items():
        assert summary["subsets"][family]["accuracy"] == pytest.approx(sum(correct) / len(correct))
    every = [c for correct in expected.values() for c in correct]
    assert summary["sections"]["overall"]["score"] == pytest.approx(sum(every) / len(every))
    assert summary["inconsistency_rate"] == pytest.approx(inconsistent / 40)
    assert 0 < inconsistent < 40 and 0 < sum(every) < 40  # the rule is neither always right nor always wrong
    assert "knowledge" in result.stdout and "inconsistent" in result.stdout


# Individual: 9 for a response with markdown bold, else 4 — a judge that rewards style.
BOLD_RULE = {"matches": [{"regex": r"(?s)<\|begin_of_response\|>(?:(?!<\|end_of_response\|>).)*\*\*",
                          "response": feedback(9)}, {"response": feedback(4)}]}


@pytest.mark.mock_llm(BOLD_RULE)
def test_rmbench_levels_show_a_style_biased_judge(mock_llm, tmp_path):
    result, root = run(mock_llm, tmp_path, "rmbench", "--data", RMBENCH_CHAT, "--rm_type", "individual", "--limit", "20")
    assert result.returncode == 0, result.stderr
    assert len(mock_llm.requests()) == 120  # 6 scores per prompt, each reused three times
    rows = json.loads(RMBENCH_CHAT.read_text())[:20]
    cells = {"hard": [], "normal": [], "easy": []}
    for row in rows:
        chosen = [9 if "**" in t else 4 for t in row["chosen"]]
        rejected = [9 if "**" in t else 4 for t in row["rejected"]]
        for i in range(3):
            for j in range(3):
                level = "hard" if i < j else "normal" if i == j else "easy"
                cells[level].append(chosen[i] > rejected[j])
    summary = summary_of(root, "individual")
    for level, values in cells.items():
        assert summary["sections"][f"chat {level}"]["score"] == pytest.approx(sum(values) / len(values))
    assert summary["sections"]["easy"]["score"] > summary["sections"]["hard"]["score"]  # the bias shows
    assert summary["sections"]["overall"]["score"] == pytest.approx(
        sum(len(v) and sum(v) / len(v) for v in cells.values()) / 3)
    assert set(summary["subsets"]) == {"chat"} and "chat hard" in result.stdout


@pytest.mark.mock_llm({"matches": [{"response": pair_feedback("A+")}]})
def test_rmbench_pairwise_places_each_of_the_nine_judgements_by_its_own_id(mock_llm, tmp_path):
    result, root = run(mock_llm, tmp_path, "rmbench", "--data", RMBENCH_CHAT, "--limit", "5")
    assert result.returncode == 0, result.stderr
    rows = json.loads(RMBENCH_CHAT.read_text())[:5]
    # Always "A+": a cell is correct exactly when chosen was placed in A.
    placed = [random_order(42, f"{row['id']}:chosen{i}-rejected{j}") == "AB"
              for row in rows for i in range(3) for j in range(3)]
    summary = summary_of(root, "pairwise")
    assert summary["sections"]["overall"]["score"] == pytest.approx(sum(placed) / 45)
    assert 0 < sum(placed) < 45


def rb2_rows():
    """RewardBench 2 rows in its schema: every subset, and Ties prompts in both variants."""
    rng = random.Random(5)
    rows = []
    for subset in SUBSETS[:-1]:
        for n in range(6):
            answers = [rng.choice(["RIGHT", "wrong", "GARBAGE"]) + f" answer {k}" for k in range(4)]
            rows.append({"id": f"{subset}-{n}", "prompt": f"{subset} question {n}?", "chosen": answers[:1],
                         "rejected": answers[1:], "num_correct": 1, "subset": subset})
    for pid in range(5):
        for kind, correct in (("ref", 1), ("tied", 3)):
            chosen = [rng.choice(["RIGHT", "wrong"]) + f" correct {k}" for k in range(correct)]
            rejected = [rng.choice(["RIGHT", "wrong", "GARBAGE"]) + f" incorrect {k}" for k in range(3)]
            rows.append({"id": f"{kind}:{pid}", "prompt": f"Ties question {pid}?", "chosen": chosen,
                         "rejected": rejected, "num_correct": correct, "subset": "Ties"})
    return rows


RATINGS_RULE = {"matches": [
    {"regex": r"<\|begin_of_response\|>\s*RIGHT", "response": feedback(9)},
    {"regex": r"<\|begin_of_response\|>\s*GARBAGE", "response": "no verdict here"},
    {"response": feedback(3)},
]}


def rating(answer):
    return 9 if answer.startswith("RIGHT") else -1 if answer.startswith("GARBAGE") else 3


@needs_rewardbench
@pytest.mark.mock_llm(RATINGS_RULE)
def test_rewardbench2_subsets_and_overall_equal_the_packages_functions(mock_llm, tmp_path):
    data = write_jsonl(tmp_path / "rb2.jsonl", rb2_rows())
    result, root = run(mock_llm, tmp_path, "rewardbench2", "--data", data, "--rm_type", "individual")
    assert result.returncode == 1  # GARBAGE answers did not parse: reported, and the exit says so
    summary = summary_of(root, "individual")
    judged = {r["id"]: r.get("score") for r in read_jsonl(root / "individual" / "mock" / "critique" / "0_shots" / "rows.jsonl")}
    expected = {}
    for subset in SUBSETS:
        rows = [r for r in rb2_rows() if r["subset"] == subset]
        ratings = {r["id"]: [rating(a) for a in r["chosen"] + r["rejected"]] for r in rows}
        for r in rows:  # the judge's recorded ratings are the rule's
            assert [judged[f"{r['id']}:{i}"] if judged[f"{r['id']}:{i}"] is not None else -1
                    for i in range(len(ratings[r["id"]]))] == ratings[r["id"]]
        if subset == "Ties":
            expected[subset] = package_ties_score([{"id": r["id"], "scores": ratings[r["id"]],
                                                    "num_correct": r["num_correct"]} for r in rows])
        else:
            expected[subset] = sum(package_row_score(ratings[r["id"]]) for r in rows) / len(rows)
        assert summary["subsets"][subset]["accuracy"] == pytest.approx(expected[subset], abs=1e-12)
    assert summary["sections"]["overall"]["score"] == pytest.approx(sum(expected.values()) / 6, abs=1e-12)
    assert summary["counts"]["parse_failures"] > 0 and summary["counts"]["request_errors"] == 0


def test_a_malformed_row_stops_the_run_before_any_judgement(tmp_path):
    rows = [json.loads(line) for line in JUDGEBENCH.read_text().splitlines()[:3]]
    rows[2]["label"] = "A>>B"
    data = write_jsonl(tmp_path / "jb.jsonl", rows)
    result = icrm_cli("eval", "judgebench", "--engine", "mock", "--base_url", "http://127.0.0.1:9", "--data", data,
                      "--results_dir", tmp_path)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert re.search(r"row 2: 'label' must be 'A>B' or 'B>A', got 'A>>B'", result.stderr), result.stderr
    assert not (tmp_path / "judgebench").exists()


def log(p):
    return math.log(p)


# logprob: A-leaning labels when response A has a 7 (P(A better) 0.8), else B-leaning (0.2).
SEVEN_LOGPROBS = {"matches": [
    {"regex": A_HAS_7, "response": "1", "logprobs": [{"1": log(0.7), "2": log(0.1), "4": log(0.2)}]},
    {"response": "4", "logprobs": [{"2": log(0.2), "4": log(0.6), "5": log(0.2)}]},
]}


@pytest.mark.mock_llm(SEVEN_LOGPROBS)
def test_judgebench_with_probabilities_reports_calibration(mock_llm, tmp_path):
    result, root = run(mock_llm, tmp_path, "judgebench", "--data", JUDGEBENCH, "--limit", "30", "--method", "logprob")
    assert result.returncode == 0, result.stderr
    pairs = [json.loads(line) for line in JUDGEBENCH.read_text().splitlines()[:30]]
    recorded = {r["row_id"]: r["p_a_better"] for r in
                read_jsonl(root / "pairwise" / "mock" / "logprob" / "0_shots" / "rows.jsonl")}
    p_correct = [recorded[p["pair_id"]] if p["label"] == "A>B" else 1 - recorded[p["pair_id"]] for p in pairs]
    assert all(0 < p < 1 for p in p_correct)
    calibration = summary_of(root, "pairwise", "logprob")["calibration"]
    assert calibration["n"] == 30
    assert calibration["brier"] == pytest.approx(sum((1 - p) ** 2 for p in p_correct) / 30)
    # Confidence is 0.8 or 0.5 here: the ECE is |confidence - accuracy| weighted per bin.
    bins = {}
    for p in p_correct:
        bins.setdefault(round(max(p, 1 - p), 6), []).append(p > 0.5)
    ece = sum(abs(c - sum(hits) / len(hits)) * len(hits) / 30 for c, hits in bins.items())
    assert calibration["ece"] == pytest.approx(ece)
    assert "ECE" in result.stdout
    png = root / "pairwise" / "mock" / "logprob" / "0_shots" / "accuracy.png"
    assert png.stat().st_size > 1000
