"""Trust, classes 1 and 3: a verdict only when the judge gave exactly one; the exit status
and the summary say how many items have none. Real `icrm score` runs against the mock."""

import json

import pytest

from tests.integration.helpers import feedback, icrm_cli, one_line_error, pair_feedback, read_jsonl, write_jsonl

ECHO_THEN_REAL = feedback(5) + "\n\nNow my own feedback:\n" + feedback(9)
PROSE_THEN_REAL = 'a score of {"score": 2} would be unfair. ' + feedback(9)
CUT_TEN = feedback(10)[: feedback(10).rindex("0")]  # '..."score": 1' — a cut 10
RULES = {"strict": True, "matches": [
    {"contains": ["ECHO"], "response": ECHO_THEN_REAL},
    {"contains": ["PROSE"], "response": PROSE_THEN_REAL},
    {"contains": ["CUT-TEN"], "response": CUT_TEN, "finish_reason": "length"},
    {"contains": ["CUT-WHOLE"], "response": feedback(8) + "\nand then the model rambled", "finish_reason": "length"},
    {"contains": ["SHAPELESS"], "response": '{"score": 6}'},
    {"contains": ["response_A"], "response": pair_feedback("A+")[:-2], "finish_reason": "length"},  # '"choice": "A+
    {"response": feedback(7)},
]}


def rows(*queries):
    return [{"id": q, "conversation": [{"role": "user", "content": q}, {"role": "assistant", "content": "a"}]}
            for q in queries]


@pytest.mark.mock_llm(RULES)
def test_no_invented_score_from_echoes_prose_cuts_or_shapeless_objects(mock_llm, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", rows("ECHO", "PROSE", "CUT-TEN", "CUT-WHOLE", "SHAPELESS", "fine"))
    out = tmp_path / "out.jsonl"
    result = icrm_cli("score", source, "--output", out, "--engine", "mock", "--base_url", mock_llm.base_url,
                      "--num_shots", "0")
    assert result.returncode == 1, result.stderr  # some items have no verdict
    by_id = {r["id"]: r for r in read_jsonl(out)}
    expected = {"ECHO": "ambiguous", "PROSE": "ambiguous", "CUT-TEN": "truncated", "CUT-WHOLE": "truncated",
                "SHAPELESS": "missing_keys"}
    for row_id, reason in expected.items():
        row = by_id[row_id]
        assert (row["score"], row["feedback"], row["error_kind"], row["error_reason"]) == (None, None, "parse", reason)
        assert row["raw_text"]  # the answer is kept
    assert by_id["fine"]["score"] == 7 and by_id["fine"]["error"] is None
    summary = json.loads(result.stdout)
    assert (summary["parse_failures"], summary["failed"], summary["errors"]) == (5, 5, 0)


@pytest.mark.mock_llm(RULES)
def test_a_cut_pairwise_choice_is_not_accepted(mock_llm, tmp_path):
    example = tmp_path / "pair.json"
    conversation = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    example.write_text(json.dumps({"conversation_A": conversation, "conversation_B": conversation}))
    result = icrm_cli("test", example, "--rm_type", "pairwise", "--engine", "mock", "--base_url", mock_llm.base_url,
                      "--num_shots", "0")
    assert result.returncode == 1
    out = json.loads(result.stdout)
    assert out["reason"] == "truncated" and out["raw"].endswith('"A+')


@pytest.mark.mock_llm({"strict": True, "matches": [{"response": "I would give it an eight."}]})
def test_all_rows_unparseable_is_never_exit_0(mock_llm, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", rows("a", "b", "c"))
    out = tmp_path / "out.jsonl"
    args = (source, "--output", out, "--engine", "mock", "--base_url", mock_llm.base_url, "--num_shots", "0")
    first = icrm_cli("score", *args)
    assert first.returncode == 1 and json.loads(first.stdout)["failed"] == 3
    assert "3 item(s) have no verdict" in first.stderr
    # Resumed: nothing to redo (the answers are final), and still not "all judged".
    again = icrm_cli("score", *args)
    summary = json.loads(again.stdout)
    assert again.returncode == 1 and (summary["skipped"], summary["failed"]) == (3, 3)


@pytest.mark.mock_llm({"strict": True, "matches": [{"response": feedback(7)}]})
def test_outputs_that_cannot_hold_results_are_one_line_exit_2(mock_llm, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", rows("a"))
    common = ("--engine", "mock", "--base_url", mock_llm.base_url, "--num_shots", "0")
    assert "is the input file" in one_line_error(icrm_cli("score", source, "--output", source, *common))
    assert "is a directory" in one_line_error(icrm_cli("score", source, "--output", tmp_path, *common))
    assert "not a regular file" in one_line_error(icrm_cli("score", source, "--output", "/dev/full", *common,
                                                           timeout=60))
    assert mock_llm.requests() == []  # refused before any work
