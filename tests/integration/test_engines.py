"""Engines, retries, cache and usage against the project's mock server on 127.0.0.1."""

import asyncio
import json
import subprocess
import sys
import time

import pytest

from icrm import ICRM, EngineError, EngineStatusError, EngineTimeoutError, MockServer
from icrm.engines import GenerationRequest, create_engine
from tests.conftest import ROOT, user_assistant

FEEDBACK = json.dumps({"intent": "i", "checklist": "c", "strengths": "s", "weaknesses": "w", "score": 7})
FLIGHT = user_assistant("I want to book a flight", "Where to?")


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    monkeypatch.setenv("ICRM_RETRY_WAIT_MIN", "0.01")
    monkeypatch.setenv("ICRM_RETRY_WAIT_MAX", "0.05")


def icrm_for(server, **kwargs):
    return ICRM(engine="mock", base_url=server.base_url, num_shots=0, **kwargs)


@pytest.mark.mock_llm({"matches": [{"status": 429, "error": "busy", "times": 1}, {"response": FEEDBACK}]})
def test_429_is_retried_then_succeeds(mock_llm):
    with icrm_for(mock_llm, max_retries=2) as icrm:
        assert icrm.judge(conversation=FLIGHT).score == 7
        assert (icrm.usage.requests, icrm.usage.errors) == (1, 0)
    assert len(mock_llm.requests()) == 2


@pytest.mark.mock_llm({"matches": [{"status": 500, "error": "boom"}]})
def test_500_every_time_is_an_error_after_the_last_try(mock_llm):
    with icrm_for(mock_llm, max_retries=2) as icrm:
        with pytest.raises(EngineStatusError) as info:
            icrm.judge(conversation=FLIGHT)
        assert info.value.status_code == 500 and "boom" in str(info.value)
        assert (icrm.usage.requests, icrm.usage.errors) == (1, 1)
    assert len(mock_llm.requests()) == 3


@pytest.mark.mock_llm({"matches": [{"status": 401, "error": "bad key"}]})
def test_401_is_not_retried(mock_llm):
    with icrm_for(mock_llm, max_retries=3) as icrm, pytest.raises(EngineStatusError, match="401"):
        icrm.judge(conversation=FLIGHT)
    assert len(mock_llm.requests()) == 1


@pytest.mark.mock_llm({"matches": [{"response": FEEDBACK, "delay_s": 3}]})
def test_timeout_is_retried_then_reported(mock_llm):
    start = time.perf_counter()
    with icrm_for(mock_llm, max_retries=1, timeout=0.3) as icrm, pytest.raises(EngineTimeoutError):
        icrm.judge(conversation=FLIGHT)
    assert time.perf_counter() - start < 3  # gave up on its own timeout, not the server's delay
    assert len(mock_llm.requests()) == 2


@pytest.mark.mock_llm({"matches": [{"status": 429, "error": "wait", "times": 1, "headers": {"Retry-After": "1"}},
                                   {"response": FEEDBACK}]})
def test_retry_after_is_honoured(mock_llm):
    start = time.perf_counter()
    with icrm_for(mock_llm, max_retries=1) as icrm:
        assert icrm.judge(conversation=FLIGHT).ok
    assert time.perf_counter() - start >= 1.0  # backoff alone would be <= 0.05 s


@pytest.mark.parametrize(("body", "expected"), [("{not json", "malformed response"), ('{"id": "x"}', "no choices")])
def test_malformed_response_body_is_a_clear_error(body, expected):
    with MockServer({"matches": [{"body": body}]}) as url:
        with ICRM(engine="mock", base_url=url, num_shots=0, max_retries=2) as icrm:
            with pytest.raises(EngineError, match=expected):
                icrm.judge(conversation=FLIGHT)


@pytest.mark.mock_llm({"matches": [{"response": FEEDBACK}]})
def test_cache_hit_makes_no_request_and_any_kwarg_change_misses(mock_llm, tmp_path):
    with icrm_for(mock_llm, use_cache=True, cache_dir=tmp_path) as icrm:
        first = icrm.judge(conversation=FLIGHT)
        second = icrm.judge(conversation=FLIGHT)
        assert (first.cache_hit, second.cache_hit, second.score) == (False, True, 7)
        assert len(mock_llm.requests()) == 1
        icrm.judge(conversation=FLIGHT, temperature=0.5)
        icrm.judge(conversation=FLIGHT, max_tokens=100)
        assert len(mock_llm.requests()) == 3
        assert (icrm.usage.requests, icrm.usage.cache_hits) == (4, 1)
    with icrm_for(mock_llm, use_cache=True, overwrite_cache=True, cache_dir=tmp_path) as icrm:
        assert not icrm.judge(conversation=FLIGHT).cache_hit
    assert len(mock_llm.requests()) == 4


@pytest.mark.mock_llm({"matches": [{"status": 500, "error": "once", "times": 1}, {"response": FEEDBACK}]})
def test_failures_are_not_cached(mock_llm, tmp_path):
    with icrm_for(mock_llm, use_cache=True, cache_dir=tmp_path, max_retries=0) as icrm:
        with pytest.raises(EngineStatusError):
            icrm.judge(conversation=FLIGHT)
        assert not icrm.judge(conversation=FLIGHT).cache_hit
        assert icrm.judge(conversation=FLIGHT).cache_hit
    assert len(mock_llm.requests()) == 2


CHILD = """
import sys
from icrm import ICRM
url, cache_dir, worker = sys.argv[1:]
with ICRM(engine="mock", base_url=url, num_shots=0, use_cache=True, cache_dir=cache_dir) as icrm:
    for i in range(10):
        conversation = [{"role": "user", "content": f"q{worker}-{i}"}, {"role": "assistant", "content": "a"}]
        assert icrm.judge(conversation=conversation).score == 7
"""


@pytest.mark.mock_llm({"matches": [{"response": FEEDBACK}]})
def test_two_processes_share_one_cache(mock_llm, tmp_path):
    children = [subprocess.Popen([sys.executable, "-c", CHILD, mock_llm.base_url, str(tmp_path), str(w)], cwd=ROOT)
                for w in range(2)]
    assert [c.wait(120) for c in children] == [0, 0]
    assert len(mock_llm.requests()) == 20
    with icrm_for(mock_llm, use_cache=True, cache_dir=tmp_path) as icrm:
        for w in range(2):
            for i in range(10):
                conversation = [{"role": "user", "content": f"q{w}-{i}"}, {"role": "assistant", "content": "a"}]
                assert icrm.judge(conversation=conversation).cache_hit
    assert len(mock_llm.requests()) == 20


@pytest.mark.mock_llm({"matches": [{"response": FEEDBACK}]})
def test_request_log_records_requests_without_the_key(mock_llm, tmp_path):
    log = tmp_path / "requests.jsonl"
    with ICRM(engine="openai", model_name="m", base_url=mock_llm.base_url, api_key="sk-secret-42",
              num_shots=0, log_file=log) as icrm:
        icrm.judge(conversation=FLIGHT)
    assert mock_llm.requests()[0]["headers"]["authorization"] == "Bearer sk-secret-42"  # the key was sent
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) == 1 and records[0]["response"]["texts"] == [FEEDBACK]
    assert records[0]["request"]["prompt"].endswith("<|begin_of_feedback|>\n")
    assert "sk-secret-42" not in log.read_text()


COMPLETION_ENGINES = ["openai", "together", "fireworks", "grok"]
CHAT_ENGINES = ["mistral", "deepseek", "gemini"]


@pytest.mark.mock_llm({"matches": [{"response": FEEDBACK}]})
@pytest.mark.parametrize("engine", COMPLETION_ENGINES + CHAT_ENGINES)
def test_each_openai_compatible_api_engine_sends_the_right_shape(mock_llm, engine):
    with ICRM(engine=engine, model_name="judge-model", base_url=mock_llm.base_url, api_key="k", num_shots=1) as icrm:
        assert icrm.judge(conversation=FLIGHT, seed=3).score == 7
        prompt = icrm.render_prompt(conversation=FLIGHT)
    request = mock_llm.requests()[0]
    body = request["body"]
    assert (body["model"], body["temperature"], body["max_tokens"], body["top_p"], body["seed"]) == ("judge-model", 0.0, 3072, 1.0, 3)
    assert body["stop"] == ["<|end_of_feedback|>"]
    if engine in COMPLETION_ENGINES:
        assert (request["path"], body["prompt"]) == ("/v1/completions", prompt)
    else:  # chat mode: the whole prompt is the user message
        assert (request["path"], body["messages"]) == ("/v1/chat/completions", [{"role": "user", "content": prompt}])


def test_api_keys_come_from_the_vendor_variables(monkeypatch):
    with MockServer({"matches": [{"response": FEEDBACK}]}) as url:
        monkeypatch.setenv("TOGETHER_API_KEY", "from-env")
        with ICRM(engine="together", model_name="m", base_url=url, num_shots=0) as icrm:
            icrm.judge(conversation=FLIGHT)


@pytest.mark.mock_llm({"matches": [{"response": FEEDBACK}]})
def test_azure_uses_the_deployment_path_and_api_version(mock_llm):
    with ICRM(engine="azure", model_name="my-deployment", base_url=mock_llm.url, api_key="k",
              api_version="2024-10-21", num_shots=0) as icrm:
        assert icrm.judge(conversation=FLIGHT).score == 7
    request = mock_llm.requests()[0]
    assert request["path"] == "/openai/deployments/my-deployment/chat/completions"
    assert request["query"] == {"api-version": "2024-10-21"}
    assert request["headers"]["api-key"] == "k"


@pytest.mark.mock_llm({"matches": [{"response": FEEDBACK}]})
@pytest.mark.parametrize("name", ["claude", "anthropic"])
def test_claude_sends_messages_with_system_apart_and_stop_sequences(mock_llm, name):
    with ICRM(engine=name, model_name="claude-x", base_url=mock_llm.base_url, api_key="k", num_shots=0) as icrm:
        assert icrm.judge(conversation=FLIGHT, seed=1).score == 7
    body = mock_llm.requests()[0]["body"]
    assert mock_llm.requests()[0]["path"] == "/v1/messages"
    assert body["stop_sequences"] == ["<|end_of_feedback|>"] and "stop" not in body and "seed" not in body
    assert (body["temperature"], body["max_tokens"], body["model"]) == (0.0, 3072, "claude-x")
    assert [m["role"] for m in body["messages"]] == ["user"] and "system" not in body

    async def with_system_turn():
        engine = create_engine("claude", "claude-x", base_url=mock_llm.base_url, api_key="k")
        try:
            return await engine.generate(GenerationRequest(
                messages=[{"role": "system", "content": "Be strict."}, {"role": "user", "content": "hi"}],
                kwargs={"max_tokens": 50}))
        finally:
            await engine.aclose()

    result = asyncio.run(with_system_turn())
    assert result.text == FEEDBACK and result.usage.prompt_tokens == 3
    body = mock_llm.requests()[1]["body"]
    assert body["system"] == "Be strict." and body["messages"] == [{"role": "user", "content": "hi"}]


@pytest.mark.mock_llm({"matches": [{"response": FEEDBACK}]})
def test_servers_that_ignore_n_get_one_request_per_choice(mock_llm):
    # llama.cpp answers one choice whatever n is; icrm sends n requests with seed + i.
    async def run():
        engine = create_engine("llamacpp", worker_addrs=[mock_llm.base_url])
        try:
            return await engine.generate(GenerationRequest(messages=[{"role": "user", "content": "x"}], kwargs={"n": 3, "seed": 10}))
        finally:
            await engine.aclose()

    result = asyncio.run(run())
    assert len(result.texts) == 3
    assert sorted(r["body"]["seed"] for r in mock_llm.requests()) == [10, 11, 12]
    assert {r["body"]["n"] for r in mock_llm.requests()} == {1}


@pytest.mark.mock_llm({"matches": [{"response": FEEDBACK}]})
def test_cache_files_never_hold_the_api_key(mock_llm, tmp_path):
    with ICRM(engine="openai", model_name="m", base_url=mock_llm.base_url, api_key="sk-cache-secret",
              num_shots=0, use_cache=True, cache_dir=tmp_path) as icrm:
        icrm.judge(conversation=FLIGHT)
        assert icrm.judge(conversation=FLIGHT).cache_hit
    files = [p for p in tmp_path.iterdir() if p.is_file()]
    assert files and all(b"sk-cache-secret" not in p.read_bytes() for p in files)
