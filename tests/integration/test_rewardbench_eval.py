"""`icrm eval rewardbench` end to end against the mock server and the shared data."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from icrm import ICRM
from icrm.evaluation.rewardbench import chosen_in_a, evaluate, load_rows
from tests.conftest import ROOT

DATA = ROOT.parent / "shared" / "data" / "pairwise"
pytestmark = pytest.mark.skipif(not DATA.exists(), reason="../shared/data is not beside the checkout")
ALWAYS_A = json.dumps({"analysis of A": "", "analysis of B": "", "reason of A=B": "", "reason of A>B": "",
                       "reason of B>A": "", "choice": "A+"})
# A position-biased judge: every row's result then shows where chosen was placed.
BIASED = {"matches": [{"response": ALWAYS_A}]}


def run_eval(mock, tmp_path, *flags, name="results"):
    return subprocess.run(
        [sys.executable, "-m", "icrm.cli", "eval", "rewardbench", "--engine", "mock", "--base_url", mock.base_url,
         "--results_dir", tmp_path / name, *map(str, flags)],
        capture_output=True, text=True, cwd=ROOT, timeout=600)


def per_row(tmp_path, name="results", rm_type="pairwise"):
    path = tmp_path / name / "rewardbench" / rm_type / "mock" / "critique" / "3_shots" / "rows.jsonl"
    return {r["id"]: (r.get("choice"), r.get("score")) for r in map(json.loads, path.read_text().splitlines())}


@pytest.mark.mock_llm(BIASED)
def test_table_puts_llmbar_in_chat_hard_and_the_rest_under_other(mock_llm, tmp_path):
    result = run_eval(mock_llm, tmp_path, "--data", DATA / "llmbar.jsonl", "--rm_type", "pairwise", "--concurrency", "16")
    assert result.returncode == 0, result.stderr
    table = result.stdout
    chat_hard = table.index("Chat Hard")
    other = table.index("Other")
    for subset in ("llmbar-natural", "llmbar-adver-neighbor", "llmbar-adver-GPTInst", "llmbar-adver-GPTOut",
                   "llmbar-adver-manual"):
        assert chat_hard < table.index(subset) < other
    for subset in ("mt-bench-human", "llmeval2-human", "faireval-human"):
        assert table.index(subset) > other
    summary = json.loads((tmp_path / "results" / "rewardbench" / "pairwise" / "mock" / "critique" / "3_shots" / "summary.json").read_text())
    assert set(summary["sections"]) == {"Chat Hard", "overall"}
    # Always "A+": a row scores 1 exactly when chosen was placed in A.
    rows = load_rows(DATA / "llmbar.jsonl", subsets=["llmbar-natural"])
    expected = sum(chosen_in_a(str(r["id"]), 42) for r in rows) / len(rows)
    assert summary["subsets"]["llmbar-natural"]["accuracy"] == pytest.approx(expected)
    assert 0.3 < expected < 0.7  # placement is balanced, not always A
    assert (tmp_path / "results" / "rewardbench" / "pairwise" / "mock" / "critique" / "3_shots" / "accuracy.png").stat().st_size > 1000


@pytest.mark.mock_llm(BIASED)
def test_same_seed_same_rows_whatever_the_concurrency(mock_llm, tmp_path):
    flags = ("--data", DATA / "hhh.jsonl", "--rm_type", "pairwise", "--limit", "60")
    assert run_eval(mock_llm, tmp_path, *flags, "--concurrency", "1", name="a").returncode == 0
    assert run_eval(mock_llm, tmp_path, *flags, "--concurrency", "16", name="b").returncode == 0
    assert run_eval(mock_llm, tmp_path, *flags, "--concurrency", "4", "--seed", "7", name="c").returncode == 0
    assert per_row(tmp_path, "a") == per_row(tmp_path, "b")
    assert per_row(tmp_path, "a") != per_row(tmp_path, "c")  # another seed places differently


@pytest.mark.mock_llm(BIASED)
def test_position_both_measures_consistency(mock_llm, tmp_path):
    with ICRM(engine="mock", base_url=mock_llm.base_url, rm_type="pairwise") as icrm:
        summary, _ = icrm.run_sync(evaluate(icrm, data=DATA / "hhh.jsonl", results_dir=tmp_path, position="both",
                                             limit=20))
    assert summary["position_consistency"] == 0.0  # "A+" both ways: never the same winner
    assert summary["other"]["hhh-harmless"]["accuracy"] == 0.5
    assert summary["other"]["hhh-harmless"]["strict_accuracy"] == 0.0
    assert summary["counts"]["rows_scored"] == 20


INDIVIDUAL = {"matches": [
    {"regex": "<\\|begin_of_response\\|>\\nSorry", "response": json.dumps(
        {"intent": "", "checklist": "", "strengths": "", "weaknesses": "", "score": 9})},
    {"response": json.dumps({"intent": "", "checklist": "", "strengths": "", "weaknesses": "", "score": 4})},
]}


@pytest.mark.mock_llm(INDIVIDUAL)
def test_individual_mode_scores_both_responses(mock_llm, tmp_path):
    result = run_eval(mock_llm, tmp_path, "--data", DATA / "hhh.jsonl", "--rm_type", "individual", "--limit", "10")
    assert result.returncode == 0, result.stderr
    rows = per_row(tmp_path, rm_type="individual")
    assert len(rows) == 20 and {k.rsplit(":", 1)[1] for k in rows} == {"chosen", "rejected"}
    summary = json.loads((tmp_path / "results" / "rewardbench" / "individual" / "mock" / "critique" / "3_shots" / "summary.json").read_text())
    report = summary["other"]["hhh-harmless"]
    # The first rows' chosen answers start with "Sorry" (9) unless both do (a 9-9 tie).
    assert report["n"] == 10 and report["accuracy"] > 0.5 and report["ties"] + report["parse_failures"] <= 10


@pytest.mark.mock_llm({"matches": [{"response": ALWAYS_A, "delay_s": 0.05}]})
def test_interrupted_run_resumes_without_redoing_rows(mock_llm, tmp_path):
    rows_path = tmp_path / "results" / "rewardbench" / "pairwise" / "mock" / "critique" / "3_shots" / "rows.jsonl"
    args = [sys.executable, "-m", "icrm.cli", "eval", "rewardbench", "--engine", "mock", "--base_url", mock_llm.base_url,
            "--results_dir", str(tmp_path / "results"), "--data", str(DATA / "hhh.jsonl"), "--concurrency", "2"]
    process = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while (not rows_path.exists() or len(rows_path.read_text().splitlines()) < 30) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)
    finished = len({json.loads(line)["id"] for line in rows_path.read_text().splitlines()})
    before = len(mock_llm.requests())
    result = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert len(mock_llm.requests()) - before == 221 - finished
    summary = json.loads(rows_path.with_name("summary.json").read_text())
    assert summary["counts"]["rows_scored"] == 221 and summary["meta"]["judgements_skipped"] == finished
