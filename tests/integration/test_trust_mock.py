"""Trust, class 10: `icrm mock` is a drop-in for the original inference-mock.

The expected answers below are worked cases computed by running the original server
(instructlab/ci-actions, ``actions/inference-mock/app.py`` at d87bd40, Flask) with the
same two configs — its README's example and instructlab/examples' CI config
(``notebooks/instructlab-knowledge/ci-config.yml`` at 5382c9e) — and sending the same
requests: a prompt no rule matches got HTTP 200 with text ``""``; a programmed response
came back whole whatever ``max_tokens`` and ``stop`` asked; ``debug: True`` logged each
request and its response. ``strict: true`` is icrm's opt-in for its own tests.
"""

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from icrm.engines.worker import free_port
from tests.conftest import ROOT

FACT = '{"fact_single": "What are some common ways to assign rewards to partial answers?"}'
PASSAGE_PROMPT = ("I need you to generate three questions that must be answered only with information contained in "
                  "this passage, and nothing else. Passage: x")
README_EXAMPLE = f"""debug: True
port: 11343
matches:
  - contains:
      - 'I need you to generate three questions that must be answered only with information contained in this passage, and nothing else.'
    response: '{FACT}'
  - response: "hi I am the default response"
"""
INSTRUCTLAB_CI = f"""# Inference Mock Config

debug: False
matches:
  - contains:
    - 'I need you to generate three questions that must be answered only with information contained in this passage, and nothing else.'
    response: '{FACT}'
"""


class MockProcess:
    def __init__(self, config_path, port):
        self.url = f"http://127.0.0.1:{port}/v1"
        self.process = subprocess.Popen([sys.executable, "-m", "icrm.cli", "mock", "--config", str(config_path),
                                         "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True)
        deadline = time.monotonic() + 30
        while True:
            assert self.process.poll() is None, self.process.stderr.read()
            try:
                httpx.get(f"{self.url.removesuffix('/v1')}/health", timeout=1)
                return
            except httpx.HTTPError:
                assert time.monotonic() < deadline
                time.sleep(0.05)

    def complete(self, prompt, **extra):
        return httpx.post(f"{self.url}/completions", json={"model": "m", "prompt": prompt, **extra}, timeout=10)

    def stop(self):
        self.process.send_signal(signal.SIGINT)
        return self.process.communicate(timeout=20)[1]


@pytest.fixture
def mock_from(tmp_path):
    started = []

    def start(text):
        path = tmp_path / f"config{len(started)}.yml"
        path.write_text(text)
        started.append(MockProcess(path, free_port()))
        return started[-1]

    yield start
    for process in started:
        if process.process.poll() is None:
            process.stop()


def test_instructlab_ci_config_answers_unmatched_prompts_with_an_empty_200(mock_from):
    mock = mock_from(INSTRUCTLAB_CI)
    unmatched = mock.complete("unrelated prompt", max_tokens=1, stop=["default"])
    assert unmatched.status_code == 200 and unmatched.json()["choices"][0]["text"] == ""
    matched = mock.complete(PASSAGE_PROMPT, max_tokens=2, stop=["What"])
    assert matched.json()["choices"][0]["text"] == FACT  # whole, as the original returns it


def test_readme_example_config_returns_fixtures_whole_and_debug_logs_each_exchange(mock_from):
    mock = mock_from(README_EXAMPLE)
    default = mock.complete("unrelated prompt", max_tokens=1, stop=["default"])
    assert default.json()["choices"][0]["text"] == "hi I am the default response"
    stderr = mock.stop()
    assert "request /v1/completions" in stderr and '"prompt": "unrelated prompt"' in stderr
    assert "response" in stderr and "hi I am the default response" in stderr


def test_strict_mode_is_the_opt_in_for_loud_tests(mock_from):
    mock = mock_from("strict: true\n" + README_EXAMPLE.replace("debug: True\n", "").replace(
        '  - response: "hi I am the default response"\n', ""))
    unmatched = mock.complete("unrelated prompt")
    assert unmatched.status_code == 404 and "no mock rule matches" in unmatched.json()["error"]["message"]
    cut = mock.complete(PASSAGE_PROMPT, stop=["common"])
    assert cut.json()["choices"][0]["text"] == '{"fact_single": "What are some '


def test_icrm_against_the_lenient_mock_records_an_empty_answer_not_a_score(tmp_path, mock_from):
    mock = mock_from(INSTRUCTLAB_CI)
    example = ROOT / "examples" / "test_individual.json"
    result = subprocess.run([sys.executable, "-m", "icrm.cli", "test", str(example), "--engine", "mock",
                             "--base_url", mock.url], capture_output=True, text=True, cwd=ROOT, timeout=120,
                            env={**os.environ})
    assert result.returncode == 1 and '"reason": "empty"' in result.stdout
