"""Trust, class 6: the reward service. A refused request does no work; a dead judge is
not a reward; every extra_logs value is a finite float; the trainer's own client loses
no sample at its concurrency; docs and error bodies hold no internals; the body cap
holds for chunked bodies; the seed's Infernet request shape is understood."""

import asyncio
import importlib.util
import json
import math
import threading

import httpx
import pytest

from icrm import MockServer
from tests.conftest import user_assistant
from tests.integration.helpers import Service, feedback

QUERY = user_assistant("I want to book a flight", "Where to?")
RULES = {"strict": True, "matches": [
    {"contains": ["UNJUDGEABLE"], "response": "I cannot rate this."},
    {"contains": ["ENGINE-FAILS"], "status": 500, "error": "boom: /secret/path/worker.log"},
    {"response": feedback(7), "delay_s": 0.05},
]}


@pytest.fixture
def services():
    started = []
    yield lambda *flags, **kw: started.append(Service(*flags, **kw)) or started[-1]
    for service in started:
        service.stop()


def mock_flags(mock):
    return ("--engine", "mock", "--base_url", mock.base_url, "--num_shots", "0", "--max_retries", "0")


def judged(mock):
    """The judge requests the mock saw (not /health's probes of its models)."""
    return [r for r in mock.requests() if r["path"].endswith("/completions")]


def assert_error(response, status, text=""):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "name", "description"} and body["code"] == str(status) and text in body["description"]
    return body["description"]


@pytest.mark.mock_llm({"strict": True, "matches": [{"response": feedback(7), "delay_s": 0.2}]})
def test_a_refused_request_does_no_work(mock_llm, services):
    service = services(*mock_flags(mock_llm), "--max_concurrency", "2", "--max_queue", "2")
    body = {"items": [{"conversation": QUERY}] * 4}

    async def load():
        async with httpx.AsyncClient(timeout=60) as client:
            gate = asyncio.Semaphore(50)

            async def one():
                async with gate:
                    return (await client.post(f"{service.url}/v1/reward", json=body)).status_code
            return await asyncio.gather(*(one() for _ in range(100)))

    statuses = asyncio.run(load())
    admitted = statuses.count(200)
    assert admitted >= 1 and statuses.count(503) == 100 - admitted
    assert len(judged(mock_llm)) == 4 * admitted  # the judge saw only admitted items
    too_big = service.post("/v1/reward", {"items": [{"conversation": QUERY}] * 30})
    assert_error(too_big, 422, "exceed this server's capacity")
    assert len(judged(mock_llm)) == 4 * admitted


def test_a_dead_judge_is_503_never_a_reward(services):
    judge = MockServer({"strict": True, "matches": [{"response": feedback(7)}]})
    judge.start()
    service = services("--engine", "mock", "--base_url", judge.base_url, "--num_shots", "0", "--max_retries", "0")
    openrlhf = {"query": ["q a"], "prompts": ["q"], "labels": [""]}
    assert service.post("/get_reward", openrlhf).json()["rewards"] == [pytest.approx(6 / 9)]
    judge.stop()  # the judge goes down
    assert_error(service.post("/get_reward", openrlhf), 503, "the judge is unavailable")
    assert_error(service.post("/v1/reward", {"items": [{"conversation": QUERY}]}), 503, "unavailable")
    assert_error(service.post("/service_output", {"source": 1, "data": {"conversation": QUERY}}), 503, "unavailable")


@pytest.mark.mock_llm(RULES)
def test_extra_logs_are_finite_floats_and_failures_flagged(mock_llm, services):
    service = services(*mock_flags(mock_llm), "--failure_reward", "-1")
    response = service.post("/get_reward", {"query": ["q fine", "UNJUDGEABLE x"], "prompts": ["q", "UNJUDGEABLE"]})
    assert response.status_code == 200, response.text

    def no_nan(constant):
        raise AssertionError(f"{constant} is not JSON")
    body = json.loads(response.text, parse_constant=no_nan)
    assert body["rewards"] == [pytest.approx(6 / 9), -1.0]
    for name, values in body["extra_logs"].items():
        assert all(isinstance(v, float) and math.isfinite(v) for v in values), name
    assert body["extra_logs"]["icrm_failed"] == [0.0, 1.0] and body["extra_logs"]["icrm_score"] == [7.0, 0.0]
    empty = service.post("/get_reward", {"query": [], "prompts": [], "labels": []})
    assert empty.json() == {"rewards": [], "scores": [], "extra_logs": {"icrm_score": [], "icrm_failed": []}}


@pytest.mark.mock_llm(RULES)
def test_docs_need_the_key_and_error_bodies_hold_no_internals(mock_llm, services):
    service = services(*mock_flags(mock_llm), "--api_key", "s3cret")
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert httpx.get(f"{service.url}{path}").status_code == 401, path
        assert httpx.get(f"{service.url}{path}", headers={"Authorization": "Bearer s3cret"}).status_code == 200, path
    failing = service.post("/service_output", {"source": 1, "data": {"conversation": user_assistant("ENGINE-FAILS", "a")}},
                           headers={"Authorization": "Bearer s3cret"})
    description = assert_error(failing, 502, "request id")
    assert failing.headers["x-request-id"] in description
    for leak in ("/secret/path", "boom", "Error", "Traceback", "log"):
        assert leak not in description.replace("server log", ""), leak
    stderr = service.stop()
    assert failing.headers["x-request-id"] in stderr and "boom" in stderr  # the details are in the server log


@pytest.mark.mock_llm(RULES)
def test_a_chunked_body_over_the_cap_is_413(mock_llm, services):
    service = services(*mock_flags(mock_llm), "--max_body_mb", "1")

    def chunks():
        yield b'{"items": [{"conversation": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"x" * (1024 * 1024)
        yield b'"}]}]}'

    response = httpx.post(f"{service.url}/v1/reward", content=chunks(), headers={"content-type": "application/json"},
                          timeout=60)
    assert_error(response, 413, "exceeds")
    assert mock_llm.requests() == []


@pytest.mark.mock_llm(RULES)
def test_the_seeds_infernet_request_is_understood(mock_llm, services):
    service = services(*mock_flags(mock_llm))
    seed = {"source": 1, "data": {"text": "Sure, where do you want to go?", "key": "123", "messageId": "123456",
                                  "history": []}}
    description = assert_error(service.post("/service_output", seed), 422, "data.history")
    assert "player" in description and "OffchainData" not in description
    seed["data"]["history"] = [{"player": "I want to book a flight"}]
    answer = service.post("/service_output", seed)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["score"], answer.json()["key"], answer.json()["messageId"]) == (7, "123", "123456")
    prompt = mock_llm.requests()[-1]["body"]["prompt"]
    assert "I want to book a flight" in prompt and "Sure, where do you want to go?" in prompt


OPENRLHF = importlib.util.find_spec("openrlhf") is not None


@pytest.mark.skipif(not OPENRLHF, reason="OpenRLHF is not installed (.ci/run installs openrlhf==0.11.0 --no-deps)")
# A judge at 1.5 s per answer behind 32 slots serves ~21 samples/s: 200 at once outlast
# the client's 5 tries 1 s apart unless the queue holds the whole wave.
@pytest.mark.mock_llm({"strict": True, "matches": [
    {"contains": ["UNJUDGEABLE"], "response": "I cannot rate this."}, {"response": feedback(7), "delay_s": 1.5}]})
def test_openrlhf_own_client_at_200_concurrent_samples_loses_none(mock_llm, services):
    from openrlhf.utils.agent import SingleTurnAgentExecutor

    # The README's OpenRLHF settings.
    service = services(*mock_flags(mock_llm), "--max_concurrency", "32")
    client = SingleTurnAgentExecutor(f"{service.url}/get_reward")

    async def samples():
        return await asyncio.gather(*(client._fetch_rewards_via_http([f"Question {i}? Answer {i}."], [f"Question {i}?"], [""])
                                      for i in range(200)))

    results = asyncio.run(samples())
    assert len(results) == 200 and all(r[0]["rewards"] == [pytest.approx(6 / 9)] for r in results)
    failed = asyncio.run(client._fetch_rewards_via_http(["UNJUDGEABLE x"], ["UNJUDGEABLE"], [""]))[0]
    assert failed["rewards"] == [0.0] and failed["extra_logs"]["icrm_failed"] == [1.0]


@pytest.mark.skipif(not OPENRLHF, reason="OpenRLHF is not installed (.ci/run installs openrlhf==0.11.0 --no-deps)")
def test_openrlhf_own_client_gets_no_reward_from_a_dead_judge(services):
    from openrlhf.utils.agent import SingleTurnAgentExecutor

    judge = MockServer({"strict": True, "matches": [{"response": feedback(7)}]})
    judge.start()
    service = services("--engine", "mock", "--base_url", judge.base_url, "--num_shots", "0", "--max_retries", "0")
    judge.stop()
    client = SingleTurnAgentExecutor(f"{service.url}/get_reward")
    done = threading.Event()

    async def fetch():
        try:
            return await client._fetch_rewards_via_http(["q a"], ["q"], [""])
        finally:
            done.set()

    with pytest.raises(RuntimeError, match="Request error for 5 times"):
        asyncio.run(fetch())  # no plausible reward: the trainer's client gives up loudly


@pytest.mark.llamacpp
def test_a_killed_llamacpp_worker_makes_the_service_503(services):
    import os
    import signal

    from tests.integration.test_trust_processes import descendants

    service = services("--num_shots", "0", "--max_retries", "0")
    openrlhf = {"query": ["I want to book a flight. Where to?"], "prompts": ["I want to book a flight."]}
    assert service.post("/get_reward", openrlhf).status_code == 200
    for pid in descendants(service.process.pid):  # the worker's guard and server
        os.kill(pid, signal.SIGKILL)
    assert_error(service.post("/get_reward", openrlhf), 503, "the judge is unavailable")
    assert_error(httpx.get(f"{service.url}/health"), 503, "the judge is unavailable")
