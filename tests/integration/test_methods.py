"""Judging methods (critique, verdict, logprob), position handling and self-consistency,
against the mock server (exact logprob math), llama.cpp and vLLM's CPU build."""

import importlib.util
import json
import math
import re

import pytest

from icrm import ICRM, ConfigError, MockServer
from tests.conftest import user_assistant
from tests.integration.helpers import feedback, icrm_cli, one_line_error, pair_feedback, read_jsonl, write_jsonl

FLIGHT = user_assistant("I want to book a flight", "Sure, where do you want to go?")
FLIGHT_B = user_assistant("I want to book a flight", "Which cities and dates?")
LOGPROBS = [{"6": math.log(0.5), " 7": math.log(0.25), "The": math.log(0.25)}]


def mock(rules, **kwargs):
    server = MockServer({"strict": True, "matches": rules})
    server.start()
    return server


@pytest.mark.parametrize("completion", [True, False])
def test_logprob_distribution_is_exact_over_the_labels(completion):
    with MockServer({"strict": True, "matches": [{"response": "6", "logprobs": LOGPROBS}]}) as url, \
            ICRM(engine="mock", base_url=url, num_shots=1, method="logprob", completion=completion) as icrm:
        judged = icrm.judge(conversation=FLIGHT)
    # Label "6" is score 7 (p 0.5), " 7" is score 8 (0.25); "The" is no label.
    assert judged.probabilities["7"] == pytest.approx(2 / 3) and judged.probabilities["8"] == pytest.approx(1 / 3)
    assert sum(judged.probabilities.values()) == pytest.approx(1.0)
    assert (judged.score, judged.label_mass, judged.method) == (7, pytest.approx(0.75), "logprob")
    assert judged.expected_score == pytest.approx(7 + 1 / 3)


def test_logprob_pairwise_gives_p_a_better_and_asks_one_token():
    logprobs = [{"2": math.log(0.6), "3": math.log(0.3), "4": math.log(0.1)}]
    server = mock([{"response": "2", "logprobs": logprobs}])
    try:
        with ICRM(engine="mock", base_url=server.base_url, rm_type="pairwise", num_shots=2, method="logprob") as icrm:
            judged = icrm.judge(conversation_A=FLIGHT, conversation_B=FLIGHT_B)
        body = server.requests()[0]["body"]
    finally:
        server.stop()
    assert judged.choice == "A+" and judged.p_a_better == pytest.approx(0.6 * 0.75 + 0.3 * 0.5 + 0.1 * 0.25)
    assert (body["max_tokens"], body["logprobs"]) == (1, 20)
    assert body["prompt"].endswith("### Verdict\n")
    assert re.search(r"### Verdict\n[1-5]\n", body["prompt"])  # the shots show their label


def test_an_engine_without_logprobs_is_a_clear_error_at_the_first_request(tmp_path):
    server = mock([{"response": "6"}])  # answers, but with no logprobs
    try:
        with ICRM(engine="mock", base_url=server.base_url, num_shots=0, method="logprob") as icrm:
            with pytest.raises(ConfigError, match="method 'logprob' needs token logprobs.*vllm, sglang, llamacpp"):
                icrm.judge(conversation=FLIGHT)
        source = write_jsonl(tmp_path / "in.jsonl", [{"id": i, "conversation": FLIGHT} for i in range(20)])
        line = one_line_error(icrm_cli("score", source, "--output", tmp_path / "out.jsonl", "--engine", "mock",
                                       "--base_url", server.base_url, "--num_shots", "0", "--method", "logprob",
                                       "--concurrency", "1"))
        assert "needs token logprobs" in line
        assert len(server.requests()) <= 3  # stopped at the first answer, not after every row
    finally:
        server.stop()
    with pytest.raises(ConfigError, match="engine 'claude' returns no token logprobs"):
        ICRM(engine="claude", model_name="m", api_key="k", method="logprob")


def test_verdict_method_shares_the_logprob_prompt_and_asks_one_label():
    server = mock([{"response": "7"}])
    try:
        with ICRM(engine="mock", base_url=server.base_url, num_shots=2, method="verdict") as icrm:
            judged = icrm.judge(conversation=FLIGHT)
            verdict_body = server.requests()[0]["body"]
        with ICRM(engine="mock", base_url=server.base_url, num_shots=2, method="logprob") as icrm:
            logprob_prompt = icrm.render_prompt(conversation=FLIGHT)
    finally:
        server.stop()
    prompt = verdict_body["prompt"]
    assert (judged.score, judged.method, judged.ok) == (8, "verdict", True)  # label 7 is score 8
    assert prompt == logprob_prompt  # one prompt for both fast methods: one prefix to cache
    assert re.search(r"### Verdict\n\d\n", prompt.split("# Example to judge")[0])  # shots show their label only
    assert '"strengths"' not in prompt and verdict_body["max_tokens"] == 2


@pytest.mark.parametrize("answer, expected", [("7", 8), (" 7\n", 8), ('"0"', 1), ("9.", 10), ("7 because", None),
                                              ("78", None), ('{"score": 7}', None), ("", None), ("seven", None)])
def test_verdict_takes_exactly_one_label(answer, expected):
    server = mock([{"response": answer or " "}])
    try:
        with ICRM(engine="mock", base_url=server.base_url, num_shots=0, method="verdict") as icrm:
            judged = icrm.judge(conversation=FLIGHT)
    finally:
        server.stop()
    assert judged.score == expected and (judged.parse_error_reason is None) == (expected is not None)


ALWAYS_A = pair_feedback("A+")


def test_position_both_swaps_and_combines():
    # The judge prefers whichever response says "Which": it is consistent across orders.
    server = mock([{"regex": r"<\|begin_of_response_A\|>\nWhich", "response": pair_feedback("A++")},
                   {"response": pair_feedback("B+")}])
    try:
        with ICRM(engine="mock", base_url=server.base_url, rm_type="pairwise", num_shots=0, position="both") as icrm:
            judged = icrm.judge(conversation_A=FLIGHT, conversation_B=FLIGHT_B)
        prompts = [r["body"]["prompt"] for r in server.requests()]
    finally:
        server.stop()
    assert len(prompts) == 2 and prompts[0] != prompts[1]
    assert judged.order_verdicts == {"AB": "B+", "BA": "B++"} and judged.position_consistent is True
    assert judged.choice == "B+" and judged.position == "both"


def test_a_judge_that_always_says_a_has_consistency_0_and_a_tie():
    server = mock([{"response": ALWAYS_A}])
    try:
        with ICRM(engine="mock", base_url=server.base_url, rm_type="pairwise", num_shots=0, position="both") as icrm:
            judged = icrm.judge(conversation_A=FLIGHT, conversation_B=FLIGHT_B)
    finally:
        server.stop()
    assert (judged.choice, judged.position_consistent, judged.order_verdicts) == ("A=B", False, {"AB": "A+", "BA": "B+"})


def test_position_random_is_seeded_per_item_and_told_back_in_the_given_orientation():
    server = mock([{"response": ALWAYS_A}])
    try:
        with ICRM(engine="mock", base_url=server.base_url, rm_type="pairwise", num_shots=0, position="random") as icrm:
            items = [{"conversation_A": FLIGHT, "conversation_B": FLIGHT_B}] * 40
            choices = [icrm.judge_item(item, key=str(i)).choice for i, item in enumerate(items)]
            again = [icrm.judge_item(item, key=str(i)).choice for i, item in enumerate(items)]
    finally:
        server.stop()
    assert choices == again and set(choices) == {"A+", "B+"}  # swapped ones are told back as B+


def test_num_samples_votes_and_needs_a_temperature():
    server = mock([{"response": feedback(6)}])
    try:
        with ICRM(engine="mock", base_url=server.base_url, num_shots=0, num_samples=3) as icrm:
            judged = icrm.judge(conversation=FLIGHT, temperature=0.7)
            assert server.requests()[0]["body"]["n"] == 3
            assert (judged.score, judged.num_samples, judged.agreement, judged.sample_verdicts) == (6, 3, 1.0, [6] * 3)
            with pytest.raises(ConfigError, match="num_samples=3 needs a temperature > 0"):
                icrm.judge(conversation=FLIGHT)
    finally:
        server.stop()


def test_rows_record_the_method_and_its_distribution(tmp_path):
    server = mock([{"response": "6", "logprobs": LOGPROBS}])
    try:
        source = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "conversation": FLIGHT}])
        out = tmp_path / "out.jsonl"
        result = icrm_cli("score", source, "--output", out, "--engine", "mock", "--base_url", server.base_url,
                          "--num_shots", "0", "--method", "logprob")
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    row = read_jsonl(out)[0]
    assert (row["method"], row["score"], row["provenance"]["method"]) == ("logprob", 7, "logprob")
    assert row["expected_score"] == pytest.approx(7 + 1 / 3) and row["usage"]["completion_tokens"] == 1


def test_row_context_reaches_templates_and_selects_the_reference_variant(tmp_path):
    server = mock([{"response": feedback(5)}])
    try:
        with ICRM(engine="mock", base_url=server.base_url, num_shots=0) as icrm:
            icrm.judge_item({"conversation": FLIGHT, "reference": "Ask for the cities and dates."})
            icrm.judge_item({"conversation": FLIGHT})
        template = tmp_path / "t.j2"
        template.write_text("{{ shots }}{{ history }}{{ user_query }}{{ model_output }} RUBRIC={{ rubric }} "
                            "META={{ row.topic }}")
        with ICRM(engine="mock", base_url=server.base_url, num_shots=0, template_path=template) as icrm:
            icrm.judge_item({"conversation": FLIGHT, "rubric": "be brief", "topic": "travel"})
            missing = icrm.judge_item({"conversation": FLIGHT})
        prompts = [r["body"]["prompt"] for r in server.requests()]
    finally:
        server.stop()
    assert "<|begin_of_reference|>\nAsk for the cities and dates.\n<|end_of_reference|>" in prompts[0]
    assert "reference answer written by an expert" in prompts[0]
    assert "reference" not in prompts[1]
    assert prompts[2].endswith("RUBRIC=be brief META=travel")
    assert missing.error_kind == "input" and "rubric" in missing.error and len(prompts) == 3


@pytest.mark.parametrize("method", ["verdict", "logprob"])
def test_every_method_serves_both_rm_types_with_a_reference(method):
    logprobs = [{"3": 0.0}]
    server = mock([{"regex": "### Verdict\n$", "response": "3", "logprobs": logprobs}])
    try:
        for rm_type, item in (("individual", {"conversation": FLIGHT}),
                              ("pairwise", {"conversation_A": FLIGHT, "conversation_B": FLIGHT_B})):
            with ICRM(engine="mock", base_url=server.base_url, rm_type=rm_type, num_shots=1, method=method) as icrm:
                judged = icrm.judge_item({**item, "reference": "REF"})
                assert judged.ok, judged
        assert all("Reference answer:\nREF" in r["body"]["prompt"] for r in server.requests())
    finally:
        server.stop()


# -- real servers ---------------------------------------------------------------------------

def check_distribution(icrm, **item):
    """The distribution sums to 1 and its argmax is the token the server generated at
    temperature 0."""
    judged = icrm.judge(**item, temperature=0.0)
    assert judged.ok, judged.parse_error
    assert sum(judged.probabilities.values()) == pytest.approx(1.0)
    verdict = icrm.rm_type.verdict(judged)
    assert max(judged.probabilities, key=judged.probabilities.get) == str(verdict)
    label = icrm.rm_type.labels[icrm.rm_type.verdicts.index(verdict)]
    assert judged.raw_text.strip(" \"'") == label, (judged.raw_text, label)
    return judged


@pytest.mark.llamacpp
def test_llamacpp_logprobs():
    with ICRM(method="logprob", num_shots=2) as icrm:
        judged = check_distribution(icrm, conversation=FLIGHT)
        assert icrm.engine.completion and judged.label_mass > 0.5
        # Streamed (llama-cpp-python's non-streamed logprobs cost a log-softmax of its whole
        # logits buffer): the same distribution, and the prompt's tokens counted as the server counts them.
        icrm.engine.stream_logprobs, counter = None, icrm.engine.stream_logprobs
        plain = icrm.judge(conversation=FLIGHT, temperature=1e-4)  # not from the generation cache
        assert plain.probabilities == pytest.approx(judged.probabilities, abs=1e-6)
        assert plain.usage.prompt_tokens == judged.usage.prompt_tokens > 0 and counter is not None
    with ICRM(method="logprob", rm_type="pairwise", num_shots=1) as icrm:
        check_distribution(icrm, conversation_A=FLIGHT, conversation_B=FLIGHT_B)


@pytest.mark.vllm_cpu
@pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="vLLM is not installed")
def test_vllm_cpu_logprobs(tmp_path, monkeypatch):
    from icrm.engines.local import embedded_model_hf_dir

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    with ICRM(engine="vllm", model_name=str(embedded_model_hf_dir()), method="logprob", num_shots=2) as icrm:
        check_distribution(icrm, conversation=FLIGHT)
        assert json.dumps(icrm.judge(conversation=FLIGHT).probabilities)
