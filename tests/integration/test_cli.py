"""The `icrm` command as users run it: real subprocesses, real exit codes."""

import json
import subprocess
import sys

import pytest

from tests.conftest import EXAMPLES, ROOT, user_assistant

ICRM = [sys.executable, "-m", "icrm.cli"]


def run(*args, env=None):
    return subprocess.run([*ICRM, *map(str, args)], capture_output=True, text=True, cwd=ROOT, timeout=600, env=env)


@pytest.mark.llamacpp
def test_icrm_test_individual_prints_only_feedback_json_on_stdout():
    result = run("test", EXAMPLES / "test_individual.json")
    assert result.returncode == 0, result.stderr
    feedback = json.loads(result.stdout)
    assert isinstance(feedback["score"], int) and 1 <= feedback["score"] <= 10
    assert "llamacpp worker ready" in result.stderr  # logs go to stderr


@pytest.mark.llamacpp
def test_icrm_test_pairwise_prints_a_choice():
    result = run("test", "--rm_type", "pairwise", EXAMPLES / "test_pairwise.json", "--num_shots", "1")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["choice"] in ("A++", "A+", "A=B", "B+", "B++")


@pytest.mark.llamacpp
def test_unparseable_answer_prints_error_and_raw_text_and_exits_1():
    result = run("test", EXAMPLES / "test_individual.json", "--num_shots", "0", "--max_tokens", "3")
    assert result.returncode == 1, result.stderr
    out = json.loads(result.stdout)
    assert set(out) == {"error", "error_kind", "reason", "raw"} and out["raw"]
    assert (out["error_kind"], out["reason"]) == ("parse", "truncated")  # cut by max_tokens 3


@pytest.mark.llamacpp
def test_verbose_prints_the_full_prompt_on_stderr():
    result = run("test", EXAMPLES / "test_individual.json", "--num_shots", "0", "--verbose")
    assert result.returncode == 0, result.stderr
    assert "# Output Format" in result.stderr and "<|begin_of_feedback|>" in result.stderr
    assert "# Output Format" not in result.stdout


ORIGINAL_LINES = [
    "test ./examples/test_individual.json --rm_type individual --model_name meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo --engine together",
    "test ./examples/test_individual.json --rm_type individual --model_name meta-llama/Meta-Llama-3-8B-Instruct --engine sglang",
    "test ./examples/test_pairwise.json   --rm_type pairwise   --model_name meta-llama/Meta-Llama-3.1-70B-Instruct-Turbo --engine together",
    "test ./examples/test_pairwise.json   --rm_type pairwise   --model_name meta-llama/Meta-Llama-3-8B-Instruct --engine sglang",
]


@pytest.mark.parametrize("line", ORIGINAL_LINES)
def test_original_lines_end_with_one_clear_line_and_exit_2(line):
    result = run(*line.split())
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    expected = "set TOGETHER_API_KEY" if "together" in line else "pip install 'icrm[sglang]'"
    assert expected in lines[0]


def write(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def bad_inputs(tmp_path):
    pool = [{"conversation": user_assistant("q", "a"), "feedback": {"intent": "", "checklist": "", "strengths": "", "weaknesses": ""}}]
    return {
        "missing file": ([tmp_path / "nope.json"], "no such file"),
        "invalid JSON": ([write(tmp_path, "bad.json", "{conversation: ")], "is not valid JSON: line 1"),
        "one turn": ([write(tmp_path, "one.json", {"conversation": user_assistant("q", "a")[:1]})], "expected at least 2 turns"),
        "wrong role order": ([write(tmp_path, "order.json", {"conversation": [
            {"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}]})], "turn 0: expected role 'user'"),
        "last turn not assistant": ([write(tmp_path, "last.json", {"conversation": user_assistant("q", "a") + [
            {"role": "user", "content": "and?"}]})], "turn 2: the last turn must be the assistant"),
        "pairwise different queries": (["--rm_type", "pairwise", write(tmp_path, "pair.json", {
            "conversation_A": user_assistant("q1", "a"), "conversation_B": user_assistant("q2", "b")})], "differ at turn 0"),
        "unknown rm_type": ([EXAMPLES / "test_individual.json", "--rm_type", "ranking"], "rm_type must be one of individual, pairwise, listwise, got 'ranking'"),
        "unknown engine": ([EXAMPLES / "test_individual.json", "--engine", "gpt5"], "engine must be one of llamacpp, vllm, sglang"),
        "num_shots too large": ([EXAMPLES / "test_individual.json", "--num_shots", "50"], "num_shots=50 but the default individual shots pool has only"),
        "pool missing a field": ([EXAMPLES / "test_individual.json", "--shots_pool_path", write(tmp_path, "pool.json", pool)], "shot 0: feedback lacks 'score'"),
        "unknown flag": ([EXAMPLES / "test_individual.json", "--temprature", "0.5"], "unknown flag --temprature"),
        "bad kwarg type": ([EXAMPLES / "test_individual.json", "--max_tokens", "lots"], "max_tokens must be a whole number"),
    }


@pytest.mark.parametrize("case", [
    "missing file", "invalid JSON", "one turn", "wrong role order", "last turn not assistant",
    "pairwise different queries", "unknown rm_type", "unknown engine", "num_shots too large",
    "pool missing a field", "unknown flag", "bad kwarg type",
])
def test_bad_input_is_one_line_exit_2_no_traceback(tmp_path, case):
    args, expected = bad_inputs(tmp_path)[case]
    result = run("test", *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("icrm: error: ") and expected in lines[0]
    assert result.stdout == ""
