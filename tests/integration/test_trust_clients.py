"""Trust round 2, classes 7 and 8: a worker dies with its guard, and what real clients
showed — each tested with the client's own code where it has one: verl's legacy PRIME
reward manager, the Anthropic SDK's message stream, OpenRLHF's request without prompts,
inference-mock's own configs, ``/health`` of a judge whose server is gone, and a
request asking what the judge cannot serve."""

import importlib.util
import json
import os
import signal
import sys
import time
from pathlib import Path

import httpx
import pytest

from icrm.engines.worker import Worker, free_port
from icrm.mock import MockServer
from tests.conftest import ROOT, user_assistant
from tests.integration.helpers import Service, feedback


def test_kill_9_of_a_workers_guard_takes_its_server_down(tmp_path):
    config = tmp_path / "mock.yaml"
    config.write_text("matches:\n  - response: hi\n")
    worker = Worker("mock", lambda port: [sys.executable, "-m", "icrm.cli", "mock", "--config", str(config), "--port",
                                          str(port)], startup_timeout_s=60)
    worker.start()
    server = worker.pid
    try:
        guard = worker._process.pid
        assert server != guard
        os.kill(guard, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and Path(f"/proc/{server}").exists() and \
                Path(f"/proc/{server}/stat").read_text().split()[2] != "Z":
            time.sleep(0.1)
        assert not Path(f"/proc/{server}").exists() or Path(f"/proc/{server}/stat").read_text().split()[2] == "Z"
        with pytest.raises(Exception, match="exited"):
            worker.check_alive()
    finally:
        worker.close()


@pytest.mark.skipif(importlib.util.find_spec("verl") is None, reason="verl is not installed (.ci/run installs it)")
@pytest.mark.mock_llm({"strict": True, "matches": [
    {"contains": ["<|begin_of_response|>\n4\n"], "response": feedback(10)},
    {"contains": ["UNJUDGEABLE"], "response": "no verdict"},
    {"response": feedback(4)}]})
def test_verls_legacy_prime_manager_reads_icrms_rewards(mock_llm, embedded_hf_dir):
    from omegaconf import OmegaConf
    from transformers import AutoTokenizer
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.workers.reward_manager.prime import PrimeRewardManager

    from tests.integration.test_verl import SAMPLES, reward_kwargs, rollout_batch

    config = OmegaConf.create({"reward": {"custom_reward_function": {
        "path": "pkg://icrm.integrations.verl", "name": "compute_score", "reward_kwargs": reward_kwargs(mock_llm)}}})
    tokenizer = AutoTokenizer.from_pretrained(str(embedded_hf_dir))
    manager = PrimeRewardManager(tokenizer, num_examine=0, compute_score=get_custom_reward_fn(config))
    batch = rollout_batch(tokenizer, SAMPLES)
    rewards = manager(batch).sum(dim=-1).tolist()
    assert [round(r, 4) for r in rewards] == [1.0, round(3 / 9, 4), 0.0]  # 10, 4, and the failure reward


def test_the_mocks_anthropic_stream_gives_the_text():
    import anthropic

    with MockServer({"matches": [{"response": feedback(8)}]}) as base_url:
        client = anthropic.Anthropic(base_url=base_url.removesuffix("/v1"), api_key="x")
        with client.messages.stream(model="claude-x", max_tokens=100,
                                    messages=[{"role": "user", "content": "hello"}]) as stream:
            text = stream.get_final_text()
            final = stream.get_final_message()
    assert json.loads(text)["score"] == 8 and final.stop_reason == "end_turn" and final.usage.output_tokens > 0


@pytest.mark.parametrize("rule, expected", [
    ({"response": 42}, "42"),
    ({"response": {"score": 7, "intent": "x"}}, '{"score": 7, "intent": "x"}'),
    ({"response": [1, 2]}, "[1, 2]"),
    ({"response": True}, "true"),
    ({"contains": "hello", "response": "matched"}, "matched"),
])
def test_every_config_inference_mock_accepts_is_accepted(tmp_path, rule, expected):
    import yaml

    config = tmp_path / "mock.yaml"
    config.write_text(yaml.safe_dump({"debug": False, "matches": [rule]}))
    port = free_port()
    process = __import__("subprocess").Popen([sys.executable, "-m", "icrm.cli", "mock", "--config", str(config),
                                              "--port", str(port)], cwd=ROOT, stderr=-1, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stderr.read()
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/completions",
                            json={"model": "m", "prompt": "hello there"}).json()
    finally:
        process.terminate()
        process.wait(10)
    text = answer["choices"][0]["text"]
    assert (json.loads(text) == json.loads(expected) if expected.startswith("{") else text == expected)
    assert answer["choices"][0]["content"] == text
    assert {"id", "object", "created", "model", "system_fingerprint", "choices", "usage"} <= set(answer)


def test_health_is_503_when_the_judge_behind_base_url_is_gone():
    with MockServer({"matches": [{"response": feedback(7)}]}) as base_url:
        service = Service("--engine", "mock", "--base_url", base_url, "--num_shots", "0")
        try:
            assert httpx.get(f"{service.url}/health").status_code == 200
        finally:
            pass
    time.sleep(5.5)  # past the probe's cache
    try:
        down = httpx.get(f"{service.url}/health", timeout=10)
        assert down.status_code == 503 and "does not answer" in down.json()["description"]
    finally:
        service.stop()


@pytest.mark.mock_llm({"matches": [{"response": feedback(7)}]})
def test_openrlhf_queries_without_prompts_or_template_are_that_samples_input_error(mock_llm):
    service = Service("--engine", "mock", "--base_url", mock_llm.base_url, "--num_shots", "0")
    try:
        answer = service.post("/get_reward", {"query": ["just some text", "<|im_start|>user\nq<|im_end|>\n"
                                                        "<|im_start|>assistant\na<|im_end|>"]})
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["extra_logs"]["icrm_failed"] == [1.0, 0.0] and body["rewards"][1] == 6 / 9
        assert len(mock_llm.requests()) == 1  # the text without a question was not judged
    finally:
        service.stop()


@pytest.mark.mock_llm({"matches": [{"response": feedback(7)}]})
def test_a_request_for_what_the_judge_cannot_serve_is_a_4xx_naming_it(mock_llm):
    service = Service("--engine", "claude", "--model_name", "claude-x", "--base_url", mock_llm.base_url,
                      "--num_shots", "0", env={"ANTHROPIC_API_KEY": "k"})
    try:
        answer = service.post("/v1/reward", {"method": "logprob", "items": [{"conversation": user_assistant("q", "a")}]})
        assert answer.status_code == 422 and "logprob" in answer.json()["description"], answer.text
        assert mock_llm.requests() == []  # refused before any work
    finally:
        service.stop()
