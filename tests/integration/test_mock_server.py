"""The mock LLM server, driven by the real openai and anthropic SDKs over 127.0.0.1."""

import json
import os
import signal
import subprocess
import sys
import time

import anthropic
import httpx
import openai
import pytest

from icrm import ICRM, ConfigError, MockServer
from icrm.mock import MockConfig
from tests.conftest import ROOT, user_assistant

INFERENCE_MOCK_EXAMPLE = """\
debug: true          # optional, default false: debug logging
port: 11434          # optional, default 11434
matches:             # tried in order; the first match wins
  - contains:        # every substring must occur in the prompt
      - 'I need you to generate three questions'
    response: '{"fact_single": "..."}'
  - response: "hi I am the default response"   # bare response = always matches
"""


@pytest.fixture
def example_server(tmp_path):
    path = tmp_path / "mock.yml"
    path.write_text(INFERENCE_MOCK_EXAMPLE)
    server = MockServer(path)
    server.start()
    yield server
    server.stop()


def client(server, **kwargs):
    return openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0, **kwargs)


def test_inference_mock_example_config_runs_unchanged(example_server):
    c = client(example_server)
    hit = c.completions.create(model="any", prompt="Please: I need you to generate three questions about cats")
    assert hit.choices[0].text == '{"fact_single": "..."}'
    assert (hit.object, hit.choices[0].finish_reason, type(hit.created)) == ("text_completion", "stop", int)
    assert c.completions.create(model="any", prompt="something else").choices[0].text == "hi I am the default response"
    # Plain HTTP, as curl sends it (no model field: accepted, unlike inference-mock's 500).
    raw = httpx.post(f"{example_server.base_url}/completions", json={"prompt": "I need you to generate three questions"})
    assert raw.status_code == 200 and raw.json()["choices"][0]["text"] == '{"fact_single": "..."}'


def test_chat_completion_matches_on_message_contents_with_usage(mock_llm):
    response = client(mock_llm).chat.completions.create(
        model="m", messages=[{"role": "system", "content": "be nice"}, {"role": "user", "content": "hello there"}])
    assert response.object == "chat.completion"
    assert response.choices[0].message.content == "mock response"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (4, 2)  # whitespace tokens


@pytest.mark.mock_llm({"matches": [{"contains": ["weather"], "response": "It is sunny today."}]})
def test_chat_streaming_is_readable_by_the_sdk(mock_llm):
    stream = client(mock_llm).chat.completions.create(
        model="m", messages=[{"role": "user", "content": "the weather?"}], stream=True)
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "It is sunny today."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


@pytest.mark.mock_llm({"strict": True, "matches": [{"contains": ["Bonjour"], "response": "Hello! How can I help? END more"}]})
def test_anthropic_messages_with_the_anthropic_sdk(mock_llm):
    c = anthropic.Anthropic(base_url=mock_llm.url, api_key="unused", max_retries=0)
    message = c.messages.create(model="claude-x", max_tokens=100, system="Translate.",
                                messages=[{"role": "user", "content": "Bonjour"}], stop_sequences=["END"])
    assert message.content[0].text == "Hello! How can I help? "
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "END")
    assert message.usage.input_tokens == 2
    with pytest.raises(anthropic.NotFoundError, match="no mock rule matches"):
        c.messages.create(model="claude-x", max_tokens=10, messages=[{"role": "user", "content": "Hola"}])


@pytest.mark.mock_llm({"strict": True, "matches": [{"response": "one two <stop> three"}]})
def test_n_and_stop_and_max_tokens(mock_llm):
    c = client(mock_llm)
    many = c.completions.create(model="m", prompt="x", n=3, stop=["<stop>"])
    assert [ch.text for ch in many.choices] == ["one two "] * 3
    assert [ch.index for ch in many.choices] == [0, 1, 2]
    assert many.usage.completion_tokens == 6
    short = c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], max_tokens=1)
    assert (short.choices[0].message.content, short.choices[0].finish_reason) == ("one", "length")
    batch = c.completions.create(model="m", prompt=["a", "b"])
    assert len(batch.choices) == 2


@pytest.mark.mock_llm({"matches": [{"model": "judge-1", "response": "from judge"}, {"response": "default"}]})
def test_models_list_and_model_rules_and_request_log(mock_llm):
    c = client(mock_llm)
    assert {m.id for m in c.models.list()} == {"mock", "judge-1"}
    assert c.completions.create(model="judge-1", prompt="p").choices[0].text == "from judge"
    assert c.completions.create(model="other", prompt="p").choices[0].text == "default"
    log = mock_llm.requests()
    assert [(r["path"], r["body"]["model"]) for r in log] == [("/v1/completions", "judge-1"), ("/v1/completions", "other")]
    assert httpx.delete(f"{mock_llm.url}/mock/requests").json() == {"cleared": 2}
    assert mock_llm.requests() == []


@pytest.mark.mock_llm({"strict": True, "matches": [{"contains": ["known"], "response": "ok"}]})
def test_no_match_is_a_loud_404_quoting_the_prompt(mock_llm):
    prompt = "a different prompt " + "x" * 500
    with pytest.raises(openai.NotFoundError) as info:
        client(mock_llm).completions.create(model="m", prompt=prompt)
    message = info.value.body["message"]
    assert "no mock rule matches the prompt" in message
    assert prompt[:200] in message and prompt[:201] not in message


@pytest.mark.parametrize(("path", "body", "field"), [
    ("/completions", {"model": "m"}, "prompt"),
    ("/chat/completions", {"model": "m"}, "messages"),
    ("/messages", {"model": "m", "max_tokens": 5}, "messages"),
])
def test_missing_prompt_or_messages_is_a_400_naming_the_field(mock_llm, path, body, field):
    response = httpx.post(f"{mock_llm.base_url}{path}", json=body)
    assert response.status_code == 400
    assert f"'{field}'" in json.dumps(response.json())


def test_invalid_json_body_is_a_400(mock_llm):
    response = httpx.post(f"{mock_llm.base_url}/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400


@pytest.mark.mock_llm({"matches": [
    {"status": 429, "error": "slow down", "times": 2, "headers": {"Retry-After": "0"}},
    {"response": "finally", "delay_s": 0.3},
]})
def test_status_times_and_delay_rules(mock_llm):
    c = client(mock_llm)
    for _ in range(2):
        with pytest.raises(openai.RateLimitError) as info:
            c.completions.create(model="m", prompt="p")
        assert info.value.response.headers["retry-after"] == "0"
        assert info.value.body["message"] == "slow down"
    start = time.perf_counter()
    assert c.completions.create(model="m", prompt="p").choices[0].text == "finally"
    assert time.perf_counter() - start >= 0.3


@pytest.mark.parametrize(("rules", "expected"), [
    ([{"contains": [], "response": "x"}], "matches[0]: 'contains' is empty"),
    ([{"response": "ok"}, {"contains": ["a"], "response": ""}], "matches[1]: 'response' is missing or empty"),
    ([{"response": "ok"}, {"response": "ok"}, {"reponse": "typo"}], "matches[2]: 'reponse': unknown key"),
    ([{"regex": "(unclosed", "response": "x"}], "matches[0]: 'regex' is not a valid regular expression"),
    ([{"contains": ["a"]}], "matches[0]: 'response' is missing or empty"),
    ([{"status": 500, "response": "x"}], "matches[0]: an error rule (status 500) takes 'error'"),
])
def test_config_validation_names_the_rule_index(rules, expected):
    with pytest.raises(ConfigError) as info:
        MockConfig.load({"matches": rules})
    assert expected in str(info.value)


def test_icrm_mock_cli_rejects_a_bad_config_with_exit_2(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text("matches:\n  - contains: []\n    response: x\n")
    result = subprocess.run([sys.executable, "-m", "icrm.cli", "mock", "--config", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"icrm: error: mock config {path}: matches[0]: 'contains' is empty: list at least one substring, or drop the key"]


def test_icrm_mock_cli_serves_in_the_foreground_and_stops_on_ctrl_c(tmp_path):
    path = tmp_path / "mock.yml"
    path.write_text(INFERENCE_MOCK_EXAMPLE)
    from icrm.engines.worker import free_port
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "icrm.cli", "mock", "--config", str(path), "--port", str(port)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.stderr.read()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        answer = httpx.post(f"http://127.0.0.1:{port}/v1/completions", json={"prompt": "hello"}).json()
        assert answer["choices"][0]["text"] == "hi I am the default response"
        process.send_signal(signal.SIGINT)
        assert process.wait(15) == 0
    finally:
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)


FEEDBACK = json.dumps({"intent": "book a flight", "checklist": "ask for details", "strengths": "asks where",
                       "weaknesses": "asks little", "score": 6})


@pytest.mark.mock_llm({"matches": [{"contains": ["I want to book a flight"], "response": FEEDBACK}]})
@pytest.mark.parametrize("engine", ["mock", "openai"])
def test_an_icrm_against_the_mock_gives_the_canned_score(mock_llm, engine):
    with ICRM(engine=engine, model_name="mock", base_url=mock_llm.base_url, api_key="unused") as icrm:
        feedback = icrm.judge(conversation=user_assistant("I want to book a flight", "Where to?"))
    assert feedback.ok and feedback.score == 6
    request = mock_llm.requests()[0]
    assert request["path"] == "/v1/completions"  # completion mode: the raw ICRM prompt
    assert request["body"]["prompt"].endswith("<|begin_of_feedback|>\n")
    assert request["body"]["stop"] == ["<|end_of_feedback|>"]


def test_mock_engine_needs_a_base_url():
    with pytest.raises(ConfigError, match="engine 'mock' needs base_url"):
        ICRM(engine="mock")
