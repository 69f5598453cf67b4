"""Trust, class 5: flags mean what they say. One boolean parser for every flag and
``ICRM_*`` variable; a bad value is one line and exit 2; errors land in the right class."""

import json
import socket

import httpx
import pytest

from tests.conftest import EXAMPLES, user_assistant
from tests.integration.helpers import Service, feedback, icrm_cli, one_line_error, read_jsonl

RULES = {"strict": True, "matches": [{"response": feedback(7)}]}


def mock_flags(mock):
    return ("--engine", "mock", "--base_url", mock.base_url, "--num_shots", "0")


@pytest.mark.mock_llm(RULES)
def test_false_means_false(mock_llm, tmp_path):
    env = {"ICRM_CACHE_DIR": str(tmp_path / "cache")}
    result = icrm_cli("test", EXAMPLES / "test_individual.json", *mock_flags(mock_llm), "--use_cache", "false",
                      "--verbose", "false", env=env)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "cache").exists()  # no cache opened
    assert "# Output Format" not in result.stderr  # no prompt printed
    on = icrm_cli("test", EXAMPLES / "test_individual.json", *mock_flags(mock_llm), "--use_cache", "yes",
                  "--verbose", "1", env=env)
    assert on.returncode == 0 and (tmp_path / "cache" / "generations.sqlite3").exists()
    assert "# Instruction" in on.stderr


@pytest.mark.parametrize(("flags", "expected"), [
    (("--use_cache", "maybe"), "use_cache must be a boolean"),
    (("--timeout", "abc"), "timeout (flag --timeout or ICRM_TIMEOUT) must be a finite number, got 'abc'"),
    (("--timeout", "-5"), "timeout (flag --timeout or ICRM_TIMEOUT) must be a number > 0"),
    (("--num_shots", "-1"), "num_shots (flag --num_shots or ICRM_NUM_SHOTS) must be a whole number >= 0"),
    (("--temperature", "inf"), "--temperature must be"),
])
def test_bad_values_are_one_line_and_exit_2(flags, expected):
    line = one_line_error(icrm_cli("test", EXAMPLES / "test_individual.json", "--engine", "mock",
                                   "--base_url", "http://127.0.0.1:9/v1", *flags))
    assert expected in line


@pytest.mark.parametrize(("flags", "env", "expected"), [
    (("--port", "99999"), {}, "port (flag --port or ICRM_PORT) must be a whole number <= 65535"),
    (("--max_concurrency", "0"), {}, "max_concurrency (flag --max_concurrency or ICRM_MAX_CONCURRENCY) must be"),
    ((), {"ICRM_USE_CACHE": "maybe"}, "use_cache must be a boolean"),
    ((), {"ICRM_TIMEOUT": "soon"}, "timeout (flag --timeout or ICRM_TIMEOUT) must be a finite number"),
])
def test_bad_service_settings_are_one_line_and_exit_2(flags, env, expected):
    line = one_line_error(icrm_cli("serve", "--engine", "mock", "--base_url", "http://127.0.0.1:9/v1", *flags, env=env))
    assert expected in line


def test_service_booleans_from_the_environment_use_the_one_parser(monkeypatch):
    from icrm.service import resolve_serve_options

    monkeypatch.setenv("ICRM_USE_CACHE", "false")
    monkeypatch.setenv("ICRM_CONSTRAIN_OUTPUT", "No")
    config, _ = resolve_serve_options({})
    assert (config.use_cache, config.constrain_output) == (False, False)


def test_a_port_in_use_is_exit_2_before_any_work():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = one_line_error(icrm_cli("serve", "--engine", "mock", "--base_url", "http://127.0.0.1:9/v1",
                                       "--port", port, timeout=60))
    assert f"127.0.0.1:{port} is in use" in line


def test_a_garbage_parquet_file_is_one_line(tmp_path):
    garbage = tmp_path / "in.parquet"
    garbage.write_bytes(b"PAR1 this is not parquet at all")
    line = one_line_error(icrm_cli("score", garbage, "--output", tmp_path / "out.jsonl", "--engine", "mock",
                                   "--base_url", "http://127.0.0.1:9/v1"))
    assert "not a readable Parquet file" in line


@pytest.mark.parametrize(("body", "expected"), [
    ('{% include "other.j2" %}{{ shots }}{{ history }}{{ user_query }}{{ model_output }}', "{% include %} is not allowed"),
    ("{% for i in range(10**8) %}{% endfor %}{{ shots }}{{ history }}{{ user_query }}{{ model_output }}",
     "failed to render"),
])
def test_template_escapes_are_config_errors(mock_llm, tmp_path, body, expected):
    template = tmp_path / "t.j2"
    template.write_text(body)
    line = one_line_error(icrm_cli("test", EXAMPLES / "test_individual.json", *mock_flags(mock_llm),
                                   "--template_path", template))
    assert expected in line


@pytest.mark.mock_llm(RULES)
def test_a_lone_surrogate_is_an_input_error_not_a_server_fault(mock_llm, tmp_path):
    example = tmp_path / "bad.json"
    example.write_text('{"conversation": [{"role": "user", "content": "hi \\ud800"}, {"role": "assistant", "content": "a"}]}')
    assert "lone surrogate" in one_line_error(icrm_cli("test", example, *mock_flags(mock_llm)))
    source = tmp_path / "in.jsonl"
    source.write_text(example.read_text().replace('{"conversation"', '{"id": "bad", "conversation"') + "\n"
                      + json.dumps({"id": "good", "conversation": user_assistant("q", "a")}) + "\n")
    out = tmp_path / "out.jsonl"
    result = icrm_cli("score", source, "--output", out, *mock_flags(mock_llm))
    by_id = {r["id"]: r for r in read_jsonl(out)}
    assert result.returncode == 1 and by_id["bad"]["error_kind"] == "input" and by_id["good"]["score"] == 7
    assert len(mock_llm.requests()) == 1


@pytest.mark.mock_llm(RULES)
def test_service_input_errors_are_4xx(mock_llm):
    service = Service(*mock_flags(mock_llm), "--max_retries", "0")
    try:
        infinite = httpx.post(f"{service.url}/v1/reward", content=b'{"items": [{"conversation": []}], "temperature": Infinity}',
                              headers={"content-type": "application/json"})
        assert infinite.status_code == 422, infinite.text
        def post_escaped(path, body):  # JSON text with "\ud800" escapes, as a client sends it
            return httpx.post(f"{service.url}{path}", content=json.dumps(body).encode(),
                              headers={"content-type": "application/json"})

        surrogate = post_escaped("/v1/reward", {"items": [{"conversation": user_assistant("hi \ud800", "a")}]})
        assert surrogate.status_code == 200 and surrogate.json()["results"][0]["error_kind"] == "input"
        single = post_escaped("/service_output", {"source": 1, "data": {"conversation": user_assistant("\ud800", "a")}})
        assert single.status_code == 400 and "lone surrogate" in single.json()["description"]
    finally:
        service.stop()
    assert mock_llm.requests() == []
