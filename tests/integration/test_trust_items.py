"""Trust round 2, class 2: one bad item never stops the rest. Generated hostile input
lines (`tests.hostile.input_lines`: lone surrogates in ids and texts, lines nested
100,000 deep, bytes that are not UTF-8, user ids of icrm's own forms, torn lines) sit
among good ones in a real ``icrm score`` run: each is its own row, every good line is
judged, icrm's ids never equal a user's; a whole file that cannot be decoded is one
line and exit 2."""

import json
import random

import pytest

from icrm import ICRM
from tests.conftest import ROOT, user_assistant
from tests.hostile import input_lines
from tests.integration.helpers import feedback, icrm_cli, one_line_error, read_jsonl

# A body whose answer text decodes to a lone surrogate (a JSON escape no UTF-8 can carry).
SURROGATE_BODY = json.dumps({"id": "x", "object": "text_completion", "created": 0, "model": "mock", "choices": [
    {"index": 0, "text": feedback(5)[:-1] + ', "note": "SURROGATE"}', "finish_reason": "stop", "logprobs": None}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1}}).replace("SURROGATE", "\\ud800")
RULES = {"matches": [{"contains": ["SURROGATE-ANSWER"], "body": SURROGATE_BODY}, {"response": feedback(7)}]}


def good(i):
    return json.dumps({"id": f"g{i}", "conversation": user_assistant(f"good {i}", "a")}).encode()


@pytest.mark.mock_llm(RULES)
@pytest.mark.parametrize("seed", [1, 2])
def test_every_bad_line_is_its_own_row_and_every_good_line_is_judged(mock_llm, tmp_path, seed):
    rng = random.Random(seed)
    cases = input_lines(rng, 21)
    lines = []
    for i, case in enumerate(cases):
        lines += [good(i), case.data]
    lines.append(good(len(cases)))
    # a user id equal to the id icrm gives a bad line elsewhere in the file
    lines.append(json.dumps({"id": "line:4", "conversation": user_assistant("q", "a")}).encode())
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out.jsonl"
    result = icrm_cli("score", source, "--output", out, "--engine", "mock", "--base_url", mock_llm.base_url,
                      "--num_shots", "0", "--max_retries", "0", timeout=300)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    rows = read_jsonl(out)
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids))  # no id twice: icrm's ids never collide with a user's
    by_id = {r["id"]: r for r in rows}
    assert all(by_id[f"g{i}"]["score"] == 7 for i in range(len(cases) + 1))  # every good line judged
    for number, (case, line) in enumerate(zip(cases, lines[1::2]), 1):
        line_no = 2 * number
        if case.expect == "line":
            row = by_id[f"line:{line_no}"]
            assert row["error_kind"] == "input" and row["score"] is None, (case.cls, row)
        else:  # judged (or refused by the judge's server) on its own row, under its own id
            assert case.expect in by_id, case.cls
            assert by_id[case.expect]["error_kind"] in (None, "input"), by_id[case.expect]
    assert by_id[f"line:{len(lines)}"]["error_kind"] == "input"  # the user's "line:4" is refused, not merged
    summary = json.loads(result.stdout)
    assert summary["scored"] == len(rows)


@pytest.mark.mock_llm(RULES)
def test_a_lone_surrogate_in_an_answer_and_an_id_reaches_the_row_intact(mock_llm, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "odd\\udfff", "conversation": ' + json.dumps(user_assistant("SURROGATE-ANSWER", "a"))
                      + "}\n" + good(1).decode() + "\n")
    out = tmp_path / "out.jsonl"
    result = icrm_cli("score", source, "--output", out, "--engine", "mock", "--base_url", mock_llm.base_url,
                      "--num_shots", "0")
    assert result.returncode == 0, result.stderr[-2000:]
    by_id = {r["id"]: r for r in read_jsonl(out)}
    assert by_id["odd\udfff"]["score"] == 5 and "\ud800" in by_id["odd\udfff"]["raw_text"]
    assert by_id["g1"]["score"] == 7
    again = icrm_cli("score", source, "--output", out, "--engine", "mock", "--base_url", mock_llm.base_url,
                     "--num_shots", "0")
    assert json.loads(again.stdout)["skipped"] == 2  # read back under the same id: nothing redone


@pytest.mark.mock_llm(RULES)
def test_a_surrogate_answer_survives_the_python_api_and_the_service(mock_llm):
    from tests.integration.helpers import Service

    with ICRM(engine="mock", base_url=mock_llm.base_url, num_shots=0) as icrm:
        assert icrm.judge(conversation=user_assistant("SURROGATE-ANSWER", "a")).score == 5
    service = Service("--engine", "mock", "--base_url", mock_llm.base_url, "--num_shots", "0")
    try:
        answer = service.post("/v1/reward", {"items": [{"conversation": user_assistant("SURROGATE-ANSWER", "a")}]})
        assert answer.status_code == 200 and answer.json()["results"][0]["score"] == 5
    finally:
        service.stop()


@pytest.mark.parametrize("content, expected", [
    (b'[{"id": "a", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}]", "nested too deeply"),
    (b'[{"id": "a"}, \xff\xfe]', "not UTF-8 text"),
    (b"\x00\x01garbage", "not valid JSON"),
])
def test_a_json_file_that_cannot_be_decoded_is_one_line_exit_2(tmp_path, content, expected):
    source = tmp_path / "in.json"
    source.write_bytes(content)
    line = one_line_error(icrm_cli("score", source, "--output", tmp_path / "out.jsonl", "--engine", "mock",
                                   "--base_url", "http://127.0.0.1:9/v1", "--num_shots", "0"))
    assert expected in line
    assert not (tmp_path / "out.jsonl").exists()  # refused before the results file was made
    data = ROOT.parent / "shared" / "data" / "pairwise" / "hhh.jsonl"
    evaluated = one_line_error(icrm_cli("eval", "rewardbench", "--data", source, "--engine", "mock",
                                        "--base_url", "http://127.0.0.1:9/v1", "--results_dir", tmp_path / "r"))
    assert expected in evaluated or "row" in evaluated, (evaluated, data)
