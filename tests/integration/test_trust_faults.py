"""Trust, class 2: a failure belongs to its item. A server reply, a cache row or an input
row that is broken becomes that item's recorded error; the run goes on and loses nothing."""

import json
import sqlite3

import pytest

from icrm import ICRM
from icrm.engines.cache import GenerationCache
from tests.conftest import user_assistant
from tests.integration.helpers import feedback, icrm_cli, read_jsonl, write_jsonl

NULL_TEXT = json.dumps({"id": "x", "object": "text_completion", "created": 0, "model": "mock",
                        "choices": [{"index": 0, "text": None, "finish_reason": "stop", "logprobs": None}]})
RULES = {"strict": True, "matches": [
    {"contains": ["BUSY"], "status": 429, "error": "slow down", "headers": {"Retry-After": "soon"}},
    {"contains": ["NULL-TEXT"], "body": NULL_TEXT},
    {"response": feedback(7), "delay_s": 0.02},
]}


def rows(*queries):
    return [{"id": q, "conversation": user_assistant(q, "a")} for q in queries]


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setenv("ICRM_RETRY_WAIT_MIN", "0.01")
    monkeypatch.setenv("ICRM_RETRY_WAIT_MAX", "0.05")


@pytest.mark.mock_llm(RULES)
def test_bad_replies_and_bad_lines_are_rows_and_the_run_goes_on(mock_llm, tmp_path):
    source = tmp_path / "in.jsonl"
    lines = [json.dumps(r) for r in rows("q1", "BUSY", "q2")] + ['{"id": "broken", "conversation": [']
    lines += [json.dumps(r) for r in rows("NULL-TEXT", "q3")] + ["[1, 2]"] + [json.dumps(r) for r in rows("q4")]
    source.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.jsonl"
    result = icrm_cli("score", source, "--output", out, "--engine", "mock", "--base_url", mock_llm.base_url,
                      "--num_shots", "0", "--max_retries", "1", "--concurrency", "3")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    by_id = {r["id"]: r for r in read_jsonl(out)}
    assert {i for i in ("q1", "q2", "q3", "q4") if by_id[i]["score"] == 7} == {"q1", "q2", "q3", "q4"}
    assert by_id["BUSY"]["error_kind"] == "engine_status" and "429" in by_id["BUSY"]["error"]
    assert by_id["NULL-TEXT"]["error_kind"] == "engine" and "malformed response" in by_id["NULL-TEXT"]["error"]
    assert by_id["line:4"]["error_kind"] == "input" and "line 4 is not valid JSON" in by_id["line:4"]["error"]
    assert by_id["line:7"]["error_kind"] == "input" and "expected a JSON object" in by_id["line:7"]["error"]
    summary = json.loads(result.stdout)
    assert (summary["scored"], summary["errors"], summary["failed"]) == (8, 4, 4)


@pytest.mark.mock_llm(RULES)
def test_the_same_faults_inside_one_reward_batch_stay_per_item(mock_llm):
    items = [{"conversation": user_assistant(q, "a")} for q in ("ok", "BUSY", "NULL-TEXT", "ok again")]
    with ICRM(engine="mock", base_url=mock_llm.base_url, num_shots=0, max_retries=0) as icrm:
        results = icrm.judge_many(items)
    assert [r.score for r in results] == [7, None, None, 7]
    assert [r.error_kind for r in results] == [None, "engine_status", "engine", None]


@pytest.mark.mock_llm({"strict": True, "matches": [{"response": feedback(7)}]})
@pytest.mark.parametrize("stored", ["{}", "not json", json.dumps({"texts": [None], "finish_reasons": [None]}),
                                    json.dumps({"texts": "abc", "finish_reasons": [], "usage": {}, "latency_s": 0,
                                                "engine": "mock", "model": "mock"})])
def test_a_corrupt_cache_row_is_a_logged_miss(mock_llm, tmp_path, stored, caplog):
    conversation = user_assistant("cached question", "a")
    with ICRM(engine="mock", base_url=mock_llm.base_url, num_shots=0, use_cache=True, cache_dir=tmp_path) as icrm:
        assert icrm.judge(conversation=conversation).score == 7  # fills the cache
    with sqlite3.connect(tmp_path / "generations.sqlite3") as db:
        assert db.execute("UPDATE generations SET result = ?", (stored,)).rowcount == 1
    with ICRM(engine="mock", base_url=mock_llm.base_url, num_shots=0, use_cache=True, cache_dir=tmp_path) as icrm:
        again = icrm.judge(conversation=conversation)
    assert (again.score, again.cache_hit) == (7, False)  # asked the server again
    assert len(mock_llm.requests()) == 2
    assert "treated as a miss" in caplog.text
    assert GenerationCache(tmp_path).get(next(iter(sqlite3.connect(tmp_path / "generations.sqlite3").execute(
        "SELECT key FROM generations")))[0]) is not None  # the good answer replaced the corrupt row


@pytest.mark.mock_llm({"strict": True, "matches": [{"response": feedback(7)}]})
def test_a_bad_row_in_a_rewardbench_file_is_its_own_error(mock_llm, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [
        {"id": "a", "prompt": "q", "chosen": "x", "rejected": "y"},
        {"id": "b", "prompt": "q", "chosen": "x"},  # no rejected
        {"id": "c", "prompt": "q", "chosen": "x", "rejected": "y"},
    ])
    out = tmp_path / "out.jsonl"
    result = icrm_cli("score", source, "--output", out, "--engine", "mock", "--base_url", mock_llm.base_url,
                      "--num_shots", "0", "--input_format", "rewardbench")
    assert result.returncode == 1, result.stderr
    by_id = {r["id"]: r for r in read_jsonl(out)}
    assert by_id["a:chosen"]["score"] == 7 and by_id["c:rejected"]["score"] == 7
    assert by_id["b:chosen"]["error_kind"] == "input" and "needs rejected" in by_id["b:chosen"]["error"]
