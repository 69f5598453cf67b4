"""Trust round 2, class 1: parsing never guesses, whatever the judge or its server sends.

Generated variants (`tests.hostile`) of each class — an echoed format example or shot
then the real feedback across a marker or a heading, the template's placeholders, the
verdict key twice, repaired junk, cut answers, answers of megabytes — are served by the
mock to a real ``icrm score`` run: no hostile answer becomes a verdict, every clean one
keeps its verdict, the raw text is kept, and nothing is ``internal``. Broken bodies
(logprobs, usage, choice counts, lone surrogates) are served verbatim."""

import json
import random
import time

import pytest

from icrm import ICRM
from icrm.mock import MockServer
from tests.conftest import user_assistant
from tests.hostile import answer_bodies, answers, logprob_bodies
from tests.integration.helpers import icrm_cli, read_jsonl, write_jsonl


def rules_for(cases, strict=True):
    return {"strict": strict, "matches": [
        {"contains": [f"CASE-{i}-END"], "response": case.data,
         **({"finish_reason": case.finish_reason} if case.finish_reason in ("stop", "length") else {})}
        for i, case in enumerate(cases)]}


@pytest.mark.parametrize("rm_type", ["individual", "pairwise"])
def test_no_hostile_answer_becomes_a_verdict_in_a_real_run(tmp_path, rm_type):
    cases = [c for c in answers(random.Random(23), 160) if c.rm_type.name == rm_type]
    rows = []
    for i, _ in enumerate(cases):
        if rm_type == "individual":
            rows.append({"id": f"c{i}", "conversation": user_assistant(f"CASE-{i}-END", "a")})
        else:
            rows.append({"id": f"c{i}", "conversation_A": user_assistant(f"CASE-{i}-END", "a"),
                         "conversation_B": user_assistant(f"CASE-{i}-END", "b")})
    source, out = write_jsonl(tmp_path / "in.jsonl", rows), tmp_path / "out.jsonl"
    with MockServer(rules_for(cases, strict=False)) as base_url:
        result = icrm_cli("score", source, "--output", out, "--engine", "mock", "--base_url", base_url,
                          "--num_shots", "0", "--rm_type", rm_type, "--max_retries", "0", "--concurrency", "8",
                          timeout=600)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    by_id = {r["id"]: r for r in read_jsonl(out)}
    verdict = "score" if rm_type == "individual" else "choice"
    wrong = [(c.cls, c.name, by_id[f"c{i}"][verdict], c.expect) for i, c in enumerate(cases)
             if by_id[f"c{i}"][verdict] != c.expect]
    assert wrong == []
    for i, case in enumerate(cases):
        row = by_id[f"c{i}"]
        assert row["error_kind"] in (None, "parse"), (case.cls, row["error"])  # never internal, never engine
        assert row["raw_text"] == case.data  # the answer is kept as it came


@pytest.mark.parametrize("size", [40_000, 2_000_000])
def test_a_huge_answer_is_refused_fast_and_does_not_stall_the_others(size):
    hostile = "{" * size if size < 100_000 else "".join(random.Random(size).choices('{}[]":ab \\', k=size))
    rules = {"matches": [{"contains": ["HUGE"], "response": hostile},
                         {"response": json.dumps({"intent": "i", "checklist": "c", "strengths": "s",
                                                  "weaknesses": "w", "score": 6}), "delay_s": 0.05}]}
    items = [{"conversation": user_assistant("HUGE", "a")}] * 3 + [{"conversation": user_assistant(f"q{i}", "a")}
                                                                   for i in range(12)]
    with MockServer(rules) as base_url, ICRM(engine="mock", base_url=base_url, num_shots=0, max_retries=0) as icrm:
        start = time.perf_counter()
        results = icrm.judge_many(items, concurrency=15)
        elapsed = time.perf_counter() - start
    assert [r.score for r in results[3:]] == [6] * 12
    assert all(r.score is None and r.parse_error_reason in ("truncated", "too_long", "ambiguous", "no_object")
               and len(r.raw_text) == size for r in results[:3])
    assert elapsed < 5, elapsed


@pytest.mark.parametrize("case", logprob_bodies(random.Random(5), 16), ids=lambda c: c.name)
def test_broken_logprobs_are_an_engine_error_never_a_verdict_or_internal(case):
    with MockServer({"matches": [{"body": case.data}]}) as base_url, \
            ICRM(engine="mock", base_url=base_url, rm_type="pairwise", method="logprob", num_shots=0,
                 max_retries=0, completion=False) as icrm:
        feedback = icrm.judge_item({"conversation_A": user_assistant("q", "a"),
                                    "conversation_B": user_assistant("q", "b")})
    assert feedback.error_kind != "internal", feedback.error
    if case.expect is None:
        assert feedback.choice is None and feedback.p_a_better is None
        assert feedback.error_kind == "engine" or feedback.parse_error_reason == "no_label", feedback


@pytest.mark.parametrize("case", answer_bodies(random.Random(9), 18), ids=lambda c: f"{c.cls}:{c.name}")
def test_broken_usage_counts_and_choices_never_stop_or_bend_a_judgement(case, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "conversation": user_assistant("q", "a")}])
    out = tmp_path / "out.jsonl"
    with MockServer({"matches": [{"body": case.data}]}) as base_url:
        result = icrm_cli("score", source, "--output", out, "--engine", "mock", "--base_url", base_url,
                          "--num_shots", "0", "--max_retries", "0", "--completion", "false")
    assert "Traceback" not in result.stderr and result.returncode in (0, 1), result.stderr[-1500:]
    row = read_jsonl(out)[0]
    assert row["error_kind"] != "internal", row["error"]
    if case.cls == "server.usage":
        assert row["score"] == 7 and result.returncode == 0
    elif case.cls == "server.choices":
        assert row["score"] is None and row["error_kind"] == "engine" and "choice" in row["error"]
    else:  # a lone surrogate in the answer: a row either way, written and read back
        assert row["id"] == "a"
