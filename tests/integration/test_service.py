"""`icrm serve` over real HTTP: a subprocess on a free port, backed by the mock server."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from icrm.engines.worker import free_port
from tests.conftest import ROOT, user_assistant

INDIVIDUAL = json.dumps({"intent": "i", "checklist": "c", "strengths": "s", "weaknesses": "w", "score": 7})
PAIRWISE = json.dumps({"analysis of A": "a", "analysis of B": "b", "reason of A=B": "", "reason of A>B": "",
                       "reason of B>A": "", "choice": "B+"})
RULES = {"matches": [
    {"contains": ["ENGINE-FAILS"], "status": 500, "error": "boom"},
    {"contains": ["SLOW"], "response": INDIVIDUAL, "delay_s": 1.5},
    {"contains": ["response_A"], "response": PAIRWISE},
    {"response": INDIVIDUAL},
]}
FLIGHT = user_assistant("I want to book a flight", "Where to?")


class Service:
    def __init__(self, mock, *flags, env=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = ["--engine", "mock", "--base_url", mock.base_url, "--num_shots", "0", "--max_retries", "0",
                "--port", str(self.port), *map(str, flags)]
        self.process = subprocess.Popen([sys.executable, "-m", "icrm.cli", "serve", *args], cwd=ROOT,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        env={**os.environ, **(env or {})})
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, self.process.stderr.read()
            try:
                if httpx.get(f"{self.url}/health").status_code == 200:
                    return
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "service did not start"
                time.sleep(0.05)

    def post(self, path, body, **kwargs):
        return httpx.post(f"{self.url}{path}", json=body, timeout=30, **kwargs)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(30)


@pytest.fixture
def service_factory(mock_llm):
    started = []

    def start(*flags, env=None):
        started.append(Service(mock_llm, *flags, env=env))
        return started[-1]

    yield start
    for s in started:
        s.stop()


def assert_infernet_error(response, status, text):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"code", "name", "description"} and body["code"] == str(status)
    assert text in body["description"]


@pytest.mark.mock_llm(RULES)
def test_service_output_offchain_individual_and_pairwise(service_factory):
    individual = service_factory()
    response = individual.post("/service_output", {"source": 1, "data": {"conversation": FLIGHT, "temperature": 0.2}})
    assert response.status_code == 200, response.text
    assert response.json()["score"] == 7 and set(response.json()) >= {"intent", "strengths", "weaknesses"}
    pairwise = service_factory("--rm_type", "pairwise")
    response = pairwise.post("/service_output", {"source": 1, "data": {
        "conversation_A": FLIGHT, "conversation_B": user_assistant("I want to book a flight", "From where?")}})
    assert response.status_code == 200, response.text
    assert response.json()["choice"] == "B+"


@pytest.mark.mock_llm(RULES)
def test_chain_input_and_bad_items_are_400_in_infernet_shape(service_factory):
    service = service_factory()
    assert_infernet_error(service.post("/service_output", {"source": 0, "data": "0xdeadbeef"}), 400,
                          "only OFFCHAIN input is supported")
    assert_infernet_error(service.post("/service_output", {"source": 1, "data": {"conversation": FLIGHT[:1]}}), 400,
                          "at least 2 turns")
    assert_infernet_error(service.post("/service_output", {"source": 1, "data": {"conversation": FLIGHT, "bogus": 1}}),
                          422, "data.bogus: unknown field")
    assert_infernet_error(service.post("/v1/reward", {"rm_type": "individual"}), 422, "items")
    assert_infernet_error(service.post("/v1/reward", {"rm_type": "pairwise", "items": [{"conversation": FLIGHT}]}),
                          400, "this server judges 'individual'")


@pytest.mark.mock_llm(RULES)
def test_v1_reward_batch_records_per_item_errors(service_factory):
    service = service_factory()
    items = [{"conversation": FLIGHT}, {"conversation": user_assistant("ENGINE-FAILS", "x")},
             {"conversation": FLIGHT[:1]}, {"conversation": user_assistant("q", "a")}]
    response = service.post("/v1/reward", {"items": items, "max_tokens": 100})
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["score"] for r in results] == [7, None, None, 7]
    assert "boom" in results[1]["error"] and "at least 2 turns" in results[2]["error"]
    assert response.json()["usage"]["prompt_tokens"] > 0


@pytest.mark.mock_llm(RULES)
def test_openrlhf_get_reward_contract(service_factory):
    service = service_factory()
    prompts = ["<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n", "What is 2+2?"]
    queries = [prompts[0] + "Hello! How can I help?<|im_end|>", prompts[1] + " 4"]
    response = service.post("/get_reward", {"query": queries, "prompts": prompts, "labels": ["", ""]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["rewards"] == pytest.approx([6 / 9, 6 / 9]) and body["scores"] == body["rewards"]
    assert body["extra_logs"]["icrm_failed"] == [0.0, 0.0]
    # A judge that answers an error is not a reward: the request fails (OpenRLHF retries it).
    failing = service.post("/get_reward", {"query": ["ENGINE-FAILS now"], "prompts": ["ENGINE-FAILS"], "labels": [""]})
    assert_infernet_error(failing, 502, "the judge failed to answer")
    assert_infernet_error(service.post("/get_reward", {"query": ["a", "b"], "prompts": ["a"]}), 422, "prompts")


@pytest.mark.mock_llm(RULES)
def test_health_models_and_openapi(service_factory):
    service = service_factory()
    health = httpx.get(f"{service.url}/health").json()
    assert health["status"] == "ok" and health["engine"] == "mock"
    assert httpx.get(f"{service.url}/v1/models").json()["data"][0]["id"] == "mock"
    paths = httpx.get(f"{service.url}/openapi.json").json()["paths"]
    assert {"/service_output", "/v1/reward", "/get_reward", "/health", "/v1/models"} <= set(paths)


@pytest.mark.mock_llm(RULES)
def test_bearer_key_when_configured(service_factory):
    service = service_factory("--api_key", "s3cret")
    body = {"source": 1, "data": {"conversation": FLIGHT}}
    assert_infernet_error(service.post("/service_output", body), 401, "bearer")
    assert_infernet_error(service.post("/service_output", body, headers={"Authorization": "Bearer wrong"}), 401, "bearer")
    assert service.post("/service_output", body, headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert httpx.get(f"{service.url}/health").status_code == 200  # health stays open for probes


@pytest.mark.mock_llm(RULES)
def test_body_cap_timeout_and_engine_failure(service_factory):
    service = service_factory("--max_body_mb", "0.01", "--request_timeout_s", "0.5")
    big = {"source": 1, "data": {"conversation": user_assistant("x" * 20_000, "y")}}
    assert_infernet_error(service.post("/service_output", big), 413, "exceeds")
    slow = {"source": 1, "data": {"conversation": user_assistant("SLOW please", "y")}}
    assert_infernet_error(service.post("/service_output", slow), 504, "longer than 0.5 s")
    failing = {"source": 1, "data": {"conversation": user_assistant("ENGINE-FAILS", "y")}}
    assert_infernet_error(service.post("/service_output", failing), 502, "request id")
    # None of that took the server down.
    assert service.post("/service_output", {"source": 1, "data": {"conversation": FLIGHT}}).json()["score"] == 7


@pytest.mark.mock_llm(RULES)
def test_full_queue_answers_503_with_retry_after(service_factory):
    service = service_factory("--max_concurrency", "1", "--max_queue", "0")
    slow = {"source": 1, "data": {"conversation": user_assistant("SLOW please", "y")}}
    first = []
    thread = threading.Thread(target=lambda: first.append(service.post("/service_output", slow)))
    thread.start()
    time.sleep(0.5)  # the slow request holds the only slot
    rejected = service.post("/service_output", slow)
    thread.join()
    assert_infernet_error(rejected, 503, "at capacity")
    assert rejected.headers["retry-after"] == "1"
    assert first[0].status_code == 200


@pytest.mark.mock_llm(RULES)
def test_configuration_from_environment_and_env_file(service_factory, mock_llm, tmp_path):
    env_file = tmp_path / "service.env"
    env_file.write_text("ICRM_RM_TYPE=pairwise\nICRM_API_KEY=from-file\n")
    service = service_factory("--env_file", env_file, env={"ICRM_API_KEY": "from-env"})
    assert httpx.get(f"{service.url}/health").json()["rm_type"] == "pairwise"  # from the file
    headers = {"Authorization": "Bearer from-env"}  # the variable beats the file
    assert httpx.get(f"{service.url}/v1/models", headers=headers).status_code == 200


@pytest.mark.mock_llm(RULES)
def test_shutdown_drains_in_flight_requests(service_factory):
    service = service_factory()
    slow = {"source": 1, "data": {"conversation": user_assistant("SLOW please", "y")}}
    result = []
    thread = threading.Thread(target=lambda: result.append(service.post("/service_output", slow)))
    thread.start()
    time.sleep(0.4)
    service.process.send_signal(signal.SIGTERM)
    thread.join()
    assert result[0].status_code == 200 and result[0].json()["score"] == 7
    assert service.process.wait(30) == 128 + signal.SIGTERM  # drained, then exited as SIGTERM asks


def test_bad_configuration_is_one_line_and_exit_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "icrm.cli", "serve", "--engine", "mock"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, env={**os.environ, "ICRM_NUM_SHOTS": "many"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "icrm: error: num_shots (flag --num_shots or ICRM_NUM_SHOTS) must be a whole number, got 'many'"]
