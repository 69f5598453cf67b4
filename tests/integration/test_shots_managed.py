"""Managed shots end to end on the project's mock server: pools built from labelled rows
(`icrm shots build`, with and without a critique judge), per-item selection recorded in
every row, leakage refused in score and eval, the token budget counted by the server's
tokenize route, an order per sample, one choice per group, and resumes refused when the
selection changes."""

from __future__ import annotations

import json

import pytest

from icrm import ICRM, MockServer
from icrm.errors import ConfigError
from tests.conftest import ROOT
from tests.integration.helpers import icrm_cli, one_line_error, pair_feedback, read_jsonl, write_jsonl

DATA = ROOT.parent / "shared" / "data" / "pairwise"
# The verdict method's answer is one label: "6" is score 7, "2" is A+.
SCORE_7 = {"matches": [{"response": "6"}]}


def turns(prompt, answer):
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


def topic(t):
    return " ".join(f"topic{t}word{i}" for i in range(5))


def scored_rows(n):
    return [{"id": f"r{t}", "prompt": f"Explain {topic(t)} to me", "response": f"It is about {topic(t)}.",
             "score": 1 + t % 10} for t in range(n)]


def build(tmp_path, data, *flags):
    pool = tmp_path / "pool.jsonl"
    result = icrm_cli("shots", "build", data, "--output", pool, *flags)
    assert result.returncode == 0, result.stderr
    return pool, result.stderr


def test_build_pairwise_pool_from_rewardbench_rows_is_balanced_and_loads(tmp_path):
    rows = [{"id": f"p{i}", "prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(11)]
    rows += [{"id": "same", "prompt": "q", "chosen": "x", "rejected": " X "}]  # no preference: skipped
    pool, stderr = build(tmp_path, write_jsonl(tmp_path / "pairs.jsonl", rows), "--rm_type", "pairwise")
    shots = read_jsonl(pool)
    sides = [s["feedback"]["choice"] for s in shots]
    assert len(shots) == 11 and abs(sides.count("A+") - sides.count("B+")) == 1
    for s in shots:  # the chosen answer sits where the verdict says
        good = s["conversation_A" if s["feedback"]["choice"] == "A+" else "conversation_B"][-1]["content"]
        assert good.startswith("good")
    assert "shots: 11" in stderr and "1 with the same answer twice" in stderr
    # A second build without --overwrite leaves the pool alone.
    assert "exists: pass --overwrite" in one_line_error(icrm_cli("shots", "build", tmp_path / "pairs.jsonl",
                                                                 "--output", pool))


def test_build_refuses_bad_rows_naming_line_and_field_and_writes_nothing(tmp_path):
    rows = [*scored_rows(3), {"prompt": "q", "response": "a", "score": 11}, {"prompt": "q", "response": "a"}]
    data = write_jsonl(tmp_path / "rows.jsonl", rows)
    error = one_line_error(icrm_cli("shots", "build", data, "--rm_type", "individual", "--output", tmp_path / "p.jsonl"))
    assert "2 of 5 rows" in error and not (tmp_path / "p.jsonl").exists()
    result = icrm_cli("shots", "build", data, "--rm_type", "individual", "--output", tmp_path / "p.jsonl")
    assert "line 4: 'score' must be an integer from 1 to 10, got 11" in result.stderr
    assert "line 5: an individual row needs 'score'" in result.stderr
    # Another scale, rescaled onto 1-10.
    pool, _ = build(tmp_path, write_jsonl(tmp_path / "r.jsonl", [{**r, "score": t % 5} for t, r in enumerate(scored_rows(5))]),
                    "--rm_type", "individual", "--score_range", "0,4")
    assert [s["feedback"]["score"] for s in read_jsonl(pool)] == [1, 3, 6, 8, 10]


def test_score_with_similar_shots_records_the_nearest_and_never_the_item_itself(tmp_path):
    pool, _ = build(tmp_path, write_jsonl(tmp_path / "rows.jsonl", scored_rows(30)), "--rm_type", "individual")
    # The items: new answers about topics 3 and 17, and row r5's own conversation (in the pool).
    items = [{"id": "new3", "conversation": turns(f"Tell me about {topic(3)}", "a new answer")},
             {"id": "new17", "conversation": turns(f"What is {topic(17)}?", "another")},
             {"id": "copy5", "conversation": turns(f"Explain {topic(5)} to me", f"It is about {topic(5)}.")}]
    data, out = write_jsonl(tmp_path / "items.jsonl", items), tmp_path / "scores.jsonl"
    with MockServer(SCORE_7) as url:
        flags = ("--engine", "mock", "--base_url", url, "--method", "verdict", "--shots_pool_path", pool,
                 "--num_shots", "3", "--shot_sampling_mode", "similar")
        result = icrm_cli("score", data, "--output", out, *flags)
        assert result.returncode == 0, result.stderr
        rows = {r["id"]: r for r in read_jsonl(out)}
        assert all(r["score"] == 7 for r in rows.values())
        shown = {rid: r["provenance"]["shot_ids"] for rid, r in rows.items()}
        assert "r3" in shown["new3"] and "r17" in shown["new17"]
        assert "r5" not in shown["copy5"]  # its own conversation is in the pool, never shown to it
        assert all(len(ids) == 3 for ids in shown.values())
        # The same file resumed with another selection mode is another run: refused.
        refused = icrm_cli("score", data, "--output", out, *flags[:-1], "balanced")
        assert refused.returncode == 2 and "shot_sampling_mode" in refused.stderr


def test_budget_counts_shots_with_the_servers_tokenizer(tmp_path):
    # Three shots of 40 words each (the mock counts words); a 100-token budget keeps two.
    shots = [{"id": f"s{i}", "conversation": turns(f"question {i} " + "w " * 20, "a " * 10 + f"end{i}"),
              "feedback": {"score": 5}} for i in range(3)]
    pool = write_jsonl(tmp_path / "pool.jsonl", shots)
    server = MockServer(SCORE_7)
    with server as url, ICRM(engine="mock", base_url=url, method="verdict", shots_pool_path=pool, num_shots=3,
                             max_shot_tokens=100, max_retries=0) as judge:
        feedback = judge.judge_item({"conversation": turns("hello", "hi")})
        again = judge.judge_item({"conversation": turns("hello again", "hi")})
        tokenized = [r["body"]["prompt"] for r in server.requests() if r["path"] == "/tokenize"]
    assert feedback.ok and feedback.shot_ids == again.shot_ids == ["s0", "s1"]
    # The three shots counted once each (the third did not fit), by the server, as rendered.
    assert len(tokenized) == 3 and all(t.startswith("## Example 1") and "end" in t for t in tokenized)
    assert sum(len(t.split()) for t in tokenized[:2]) <= 100 < sum(len(t.split()) for t in tokenized)


def test_each_sample_sees_its_own_order(tmp_path):
    pool, _ = build(tmp_path, write_jsonl(tmp_path / "rows.jsonl", scored_rows(12)), "--rm_type", "individual")
    server = MockServer(SCORE_7)
    with server as url, ICRM(engine="mock", base_url=url, method="verdict", shots_pool_path=pool, num_shots=4,
                             shot_sampling_mode="random", shot_order="shuffled", num_samples=5,
                             max_retries=0) as judge:
        feedback = judge.judge_item({"conversation": turns("q", "a")}, key="item-1",
                                    generation_kwargs={"temperature": 0.7})
        prompts = [r["body"]["prompt"] for r in server.requests() if r["path"] == "/v1/completions"]
    assert feedback.ok and len(prompts) == 5
    positions = [tuple(p.index(f"topic{t}word0") for t in range(12) if f"topic{t}word0" in p) for p in prompts]
    assert len({len(p) for p in positions}) == 1 and len(set(positions)) > 1  # same 4 shots, other orders


def test_a_group_is_judged_with_one_choice_of_shots(tmp_path):
    rows = [{"id": f"p{i}", "prompt": f"Explain {topic(i)}", "chosen": f"good {i}", "rejected": f"bad {i}"}
            for i in range(10)]
    pool, _ = build(tmp_path, write_jsonl(tmp_path / "pairs.jsonl", rows), "--rm_type", "pairwise")
    server = MockServer({"matches": [{"response": "2"}]})
    group = [turns(f"Explain {topic(4)} please", answer) for answer in ("x", "y", "z", "w")]
    with server as url, ICRM(engine="mock", base_url=url, rm_type="pairwise", method="verdict", shots_pool_path=pool,
                             num_shots=2, shot_sampling_mode="similar", max_retries=0) as judge:
        result = judge.judge_group(group)
        prompts = [r["body"]["prompt"] for r in server.requests() if r["path"] == "/v1/completions"]
    assert len(prompts) == 6 and all(j.shot_ids == result.feedbacks[0].shot_ids for j in result.feedbacks)
    assert "p4" in result.feedbacks[0].shot_ids
    assert len({p[: p.index("## Example 2")] for p in prompts}) == 1


def test_critique_judge_keeps_only_shots_whose_critique_agrees(tmp_path):
    rows = [{"id": f"p{i}", "prompt": f"q{i}", "chosen": f"good {i}", "rejected": f"bad {i}"} for i in range(8)]
    # The critique judge prefers whichever answer says "good": always right.
    mock = {"matches": [{"regex": r"Response A:\n(?:[^\n]*\n)*?good", "response": pair_feedback("A+")},
                        {"response": pair_feedback("B++")}]}
    with MockServer(mock) as url:
        pool, stderr = build(tmp_path, write_jsonl(tmp_path / "pairs.jsonl", rows), "--rm_type", "pairwise",
                             "--critiques_from", "mock", "--base_url", url)
    shots = read_jsonl(pool)
    assert "critiques agreeing with the label: " in stderr
    assert shots and all(set(s["feedback"]) > {"analysis of A", "choice"} for s in shots)
    assert all(s["feedback"]["choice"] in ("A+", "B+") for s in shots)  # the label's verdict, not the judge's


def test_critique_method_refuses_a_verdict_only_pool_before_any_request(tmp_path):
    pool, _ = build(tmp_path, write_jsonl(tmp_path / "rows.jsonl", scored_rows(4)), "--rm_type", "individual")
    with pytest.raises(ConfigError, match="4 verdict-only shots .* method 'critique'.*--method verdict"):
        ICRM(engine="mock", base_url="http://127.0.0.1:9/v1", shots_pool_path=pool, num_shots=2)
    ICRM(engine="mock", base_url="http://127.0.0.1:9/v1", shots_pool_path=pool, num_shots=0).close()


@pytest.mark.skipif(not DATA.exists(), reason="../shared/data is not beside the checkout")
@pytest.mark.parametrize("mode", ["similar", "balanced"])
def test_eval_with_a_pool_of_the_same_data_never_shows_a_row_itself(tmp_path, mode):
    data = DATA / "hhh.jsonl"
    pool, _ = build(tmp_path, data, "--rm_type", "pairwise")
    with MockServer({"matches": [{"response": "2"}]}) as url:
        result = icrm_cli("eval", "rewardbench", "--data", data, "--limit", "40", "--engine", "mock", "--base_url", url,
                          "--method", "verdict", "--shots_pool_path", pool, "--num_shots", "3",
                          "--shot_sampling_mode", mode, "--results_dir", tmp_path / "results")
    assert result.returncode == 0, result.stderr
    [rows_file] = (tmp_path / "results").rglob("rows.jsonl")
    rows = read_jsonl(rows_file)
    assert len(rows) == 40
    for row in rows:
        ids = row["provenance"]["shot_ids"]
        assert len(ids) == 3 and row["row_id"] not in ids


@pytest.mark.parametrize("changed", [("--shot_order", "fixed"), ("--max_shot_tokens", "400"),
                                     ("--exclude_same_prompt", "false"), ("--num_shots", "1")])
def test_every_selection_setting_is_in_the_rows_and_a_resume_that_changes_one_is_refused(tmp_path, changed):
    pool, _ = build(tmp_path, write_jsonl(tmp_path / "rows.jsonl", scored_rows(8)), "--rm_type", "individual")
    data, out = write_jsonl(tmp_path / "items.jsonl", scored_rows(3)), tmp_path / "scores.jsonl"
    settings = {"--shot_order": "shuffled", "--max_shot_tokens": "300", "--exclude_same_prompt": "true",
                "--num_shots": "2", "--shot_sampling_mode": "similar_balanced"}
    with MockServer(SCORE_7) as url:
        common = ("score", data, "--output", out, "--engine", "mock", "--base_url", url, "--method", "verdict",
                  "--shots_pool_path", pool, "--input_format", "conversations")
        rows_in = [{"id": r["id"], "conversation": turns(r["prompt"], r["response"])} for r in scored_rows(3)]
        write_jsonl(data, rows_in)
        first = icrm_cli(*common, *[x for kv in settings.items() for x in kv])
        assert first.returncode == 0, first.stderr
        rows = read_jsonl(out)
        for row in rows:
            provenance = row["provenance"]
            assert provenance["shot_order"] == "shuffled" and provenance["max_shot_tokens"] == 300
            assert provenance["exclude_same_prompt"] is True and provenance["shot_sampling_mode"] == "similar_balanced"
            assert row["id"] not in provenance["shot_ids"] and len(provenance["shot_ids"]) <= 2
        refused = icrm_cli(*common, *[x for kv in {**settings, changed[0]: changed[1]}.items() for x in kv])
    assert refused.returncode == 2 and changed[0].lstrip("-") in refused.stderr, refused.stderr
    assert read_jsonl(out) == rows  # nothing of the first run lost or mixed


class _Tokenizer:
    """A tokenize route on 127.0.0.1 that answers each request with the next of `replies`
    (status, body), then a count of 5."""

    def __init__(self, replies):
        import http.server
        import threading

        queue = list(replies)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (the stdlib's name)
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, body = queue.pop(0) if queue else (200, b'{"count": 5}')
                self.send_response(status)
                self.send_header("Content-Type", "text/html" if body.startswith(b"<") else "application/json")
                self.send_header("Retry-After", "0")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()


@pytest.mark.parametrize("replies,expected", [
    ([(429, b'{"error": {"message": "slow down"}}'), (500, b'{"error": {"message": "oops"}}')], 5),  # retried
    ([(404, b'{"detail": "Not Found"}')], None),  # no tokenizer here: the documented estimate
    ([(200, b"<html>502 Bad Gateway</html>")], "without a token count"),
    ([(200, b'{"count": -3}')], "without a token count"),
    ([(200, b'{"tokens": [1, 2]}')], "without a token count"),
    ([(503, b"{}")] * 3, "HTTP 503|503"),
])
def test_the_tokenize_route_is_retried_and_a_bad_answer_is_an_engine_error(replies, expected):
    import asyncio
    import re

    import openai

    from icrm.engines.openai_compatible import OpenAICompatibleEngine
    from icrm.engines.retry import RetryPolicy
    from icrm.engines.runner import RequestRunner
    from icrm.errors import EngineError

    server = _Tokenizer(replies)
    try:
        client = openai.AsyncOpenAI(api_key="x", base_url=server.base_url, max_retries=0)
        engine = OpenAICompatibleEngine("mock", "m", clients=[client], completion=True, tokenize_path="/tokenize")
        runner = RequestRunner(engine, RetryPolicy(max_retries=2, wait_min_s=0.0, wait_max_s=0.0))
        if isinstance(expected, str):
            with pytest.raises(EngineError) as info:
                asyncio.run(runner.count_tokens("some text"))
            assert re.search(expected, str(info.value)), str(info.value)
        else:
            assert asyncio.run(runner.count_tokens("some text")) == expected
    finally:
        server.close()
