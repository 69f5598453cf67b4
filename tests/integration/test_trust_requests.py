"""Trust round 2, classes 4 and 5: a timeout bounds a whole request, and refused means
nothing ran.

Small hostile servers (`tests.hostile_servers`) drip their answer, never answer, answer
forever or answer 100 GB: each item fails as that item's error within about the
timeout, with memory bounded, and the rest of the run goes on. A command line that
cannot run — a stray word, a value that looks like a flag, ``None`` where none is
allowed, a bad ``ICRM_*`` variable, a missing input — is one ``icrm: error:`` line
before any request, and before any worker is launched."""

import os
import subprocess
import sys
import time

import pytest

from icrm import ICRM
from tests.conftest import EXAMPLES, ROOT, user_assistant
from tests.hostile_servers import MODES, HostileServer
from tests.integration.helpers import feedback, icrm_cli, one_line_error, read_jsonl, write_jsonl

EXPECTED_KIND = {"drip": "engine_unavailable", "hang": "engine_unavailable", "slow_headers": "engine_unavailable",
                 "endless": "engine", "huge": "engine", "huge_declared": "engine", "html": "engine",
                 "garbage": "engine_unavailable", "hangup": "engine_unavailable"}


@pytest.mark.parametrize("mode", MODES)
def test_a_hostile_server_fails_the_item_within_the_timeout(mode):
    with HostileServer(mode, interval_s=0.5) as server, \
            ICRM(engine="mock", base_url=server.base_url, num_shots=0, max_retries=0, timeout=2) as icrm:
        start = time.perf_counter()
        feedback_ = icrm.judge_item({"conversation": user_assistant("q", "a")})
        elapsed = time.perf_counter() - start
    assert feedback_.score is None and feedback_.error_kind == EXPECTED_KIND[mode], feedback_.error
    assert elapsed < 2 + 1.5, elapsed
    if mode in ("endless", "huge", "huge_declared"):
        assert "byte bound" in feedback_.error


def test_a_dripping_server_does_not_hold_up_the_rest_of_a_run(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": f"r{i}", "conversation": user_assistant(f"q{i}", "a")}
                                                 for i in range(4)])
    with HostileServer("drip", interval_s=0.5) as server:
        start = time.perf_counter()
        result = icrm_cli("score", source, "--output", tmp_path / "out.jsonl", "--engine", "mock", "--base_url",
                          server.base_url, "--num_shots", "0", "--max_retries", "0", "--timeout", "2",
                          "--concurrency", "4", timeout=120)
        elapsed = time.perf_counter() - start
    assert result.returncode == 1 and elapsed < 30, (elapsed, result.stderr[-1000:])
    assert {r["error_kind"] for r in read_jsonl(tmp_path / "out.jsonl")} == {"engine_unavailable"}


@pytest.mark.parametrize("flags, expected", [
    (("--concurrency", "1000000"), "concurrency must be a whole number <= 4096"),
    (("--num_workers", "999"), "num_workers (flag --num_workers or ICRM_NUM_WORKERS) must be a whole number <= 64"),
    (("--max_tokens", "99999999999"), "--max_tokens must be a whole number <= 1048576"),
    (("--timeout", "1e12"), "timeout (flag --timeout or ICRM_TIMEOUT) must be a number <= 86400"),
    (("--num_shots", "100000"), "num_shots (flag --num_shots or ICRM_NUM_SHOTS) must be a whole number <= 1000"),
])
def test_size_flags_have_upper_bounds(tmp_path, flags, expected):
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "conversation": user_assistant("q", "a")}])
    line = one_line_error(icrm_cli("score", source, "--output", tmp_path / "out.jsonl", "--engine", "mock",
                                   "--base_url", "http://127.0.0.1:9/v1", *flags))
    assert expected in line


@pytest.mark.mock_llm({"matches": [{"response": feedback(7)}]})
@pytest.mark.parametrize("args, env, expected", [
    (("test", EXAMPLES / "test_individual.json", "stray"), {}, "unexpected argument 'stray'"),
    (("test", EXAMPLES / "test_individual.json", "--model_name", "-x"), {}, "looks like a flag"),
    (("test", EXAMPLES / "test_individual.json", "--model_name", "--num_shots", "0"), {}, "--model_name needs a value"),
    (("test", EXAMPLES / "test_individual.json", "--use_cache", "None"), {}, "--use_cache cannot be None"),
    (("test", EXAMPLES / "test_individual.json"), {"ICRM_LOG": "garbage"}, "ICRM_LOG must be one of"),
    (("test", EXAMPLES / "test_individual.json"), {"ICRM_RETRY_WAIT_MAX": "inf"}, "ICRM_RETRY_WAIT_MAX must be"),
    (("test", EXAMPLES / "test_individual.json"), {"ICRM_RETRY_WAIT_MAX": "nan"}, "ICRM_RETRY_WAIT_MAX must be"),
    (("test", EXAMPLES / "test_individual.json", "-v"), {}, "flags start with --"),
    (("tset", EXAMPLES / "test_individual.json"), {}, "unknown command 'tset' (did you mean test?)"),
    (("score", "in.jsonl", "out.jsonl", "more"), {}, "unexpected argument 'more'"),
    (("eval", "rewardbench", "extra"), {}, "unexpected argument 'extra'"),
])
def test_a_command_line_that_cannot_run_is_refused_before_any_request(mock_llm, args, env, expected):
    line = one_line_error(icrm_cli(*args, "--engine", "mock", "--base_url", mock_llm.base_url, "--num_shots", "0",
                                   env=env))
    assert expected in line
    assert mock_llm.requests() == []


def test_inputs_and_outputs_are_checked_before_a_worker_is_launched(tmp_path):
    # The embedded engine would launch a llama.cpp worker (seconds); refusals come first.
    good = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "conversation": user_assistant("q", "a")}])
    foreign = tmp_path / "foreign.jsonl"
    foreign.write_text("not a results file\n")
    cases = [
        (("score", tmp_path / "missing.jsonl", "--output", tmp_path / "o.jsonl"), "no such file"),
        (("score", good, "--output", tmp_path), "is a directory"),
        (("score", good, "--output", foreign), "not an icrm results file"),
        (("test", tmp_path / "missing.json"), "no such file"),
        (("eval", "rewardbench", "--data", tmp_path / "missing.jsonl", "--results_dir", tmp_path / "r"), "no such file"),
    ]
    for args, expected in cases:
        start = time.perf_counter()
        result = icrm_cli(*args, env={"ICRM_LOG": "info"})
        assert expected in one_line_error(result) and "starting llamacpp worker" not in result.stderr
        assert time.perf_counter() - start < 20


@pytest.mark.parametrize("args, expected", [(("eval",), "needs one of: rewardbench"),
                                            (("show",), "'icrm show' needs RESULTS"),
                                            (("mock",), "'icrm mock' needs CONFIG")])
def test_a_missing_argument_is_one_line(args, expected):
    assert expected in one_line_error(icrm_cli(*args))


def test_fires_own_refusals_are_one_line():
    result = subprocess.run([sys.executable, "-m", "icrm.cli", "report", "--no_such_flag_value"], cwd=ROOT,
                            capture_output=True, text=True, env=os.environ)
    assert result.returncode == 2 and "Usage:" not in result.stderr and "SYNOPSIS" not in result.stderr
    assert result.stderr.strip().startswith("icrm: error:")
