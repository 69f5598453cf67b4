"""Trust round 2, class 3: nothing finished is lost, nothing is mixed. A results file is
held by one run (a second is refused at once, naming the first), every row's fingerprint
is checked on resume, another server is another run, a file that is not icrm's is never
appended to, an output that vanishes mid-run is an error (exit 1), and ``icrm report``
never writes over what it reads."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from icrm.mock import MockServer
from tests.conftest import ROOT, user_assistant
from tests.integration.helpers import feedback, icrm_cli, one_line_error, read_jsonl, write_jsonl

SLOW = {"matches": [{"response": feedback(7), "delay_s": 0.2}]}


def rows(n):
    return [{"id": f"r{i}", "conversation": user_assistant(f"q{i}", "a")} for i in range(n)]


def score_args(base_url, source, out, *more):
    return [sys.executable, "-m", "icrm.cli", "score", str(source), "--output", str(out), "--engine", "mock",
            "--base_url", base_url, "--num_shots", "0", "--concurrency", "2", *map(str, more)]


def wait_for_rows(path, count, process, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        assert process.poll() is None, process.communicate()
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached {count} rows")


@pytest.mark.parametrize("same_path", ["as given", "through a symlink"])
def test_a_second_run_on_the_same_output_is_refused_naming_the_first(tmp_path, same_path):
    source, out = write_jsonl(tmp_path / "in.jsonl", rows(40)), tmp_path / "out.jsonl"
    with MockServer(SLOW) as base_url:
        first = subprocess.Popen(score_args(base_url, source, out), cwd=ROOT, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        try:
            wait_for_rows(out, 2, first)
            other = out if same_path == "as given" else tmp_path / "link.jsonl"
            if other != out:
                other.symlink_to(out)
            second = icrm_cli("score", source, "--output", other, "--engine", "mock", "--base_url", base_url,
                              "--num_shots", "0")
            line = one_line_error(second)
            assert "is being written by another icrm run" in line and f"pid {first.pid}" in line
        finally:
            first.send_signal(signal.SIGINT)
            first.communicate(timeout=60)
    ids = [r["id"] for r in read_jsonl(out)]
    assert len(ids) == len(set(ids))  # nothing the second run wrote


@pytest.mark.mock_llm({"matches": [{"response": feedback(7)}]})
def test_resume_checks_every_rows_fingerprint_not_only_the_last(mock_llm, tmp_path):
    source, out = write_jsonl(tmp_path / "in.jsonl", rows(3)), tmp_path / "out.jsonl"
    base = ("score", source, "--output", out, "--engine", "mock", "--base_url", mock_llm.base_url, "--num_shots", "0")
    assert icrm_cli(*base).returncode == 0
    records = read_jsonl(out)
    foreign = {**records[0], "provenance": {**records[0]["provenance"], "fingerprint": "0" * 16, "num_shots": 2}}
    # an earlier row of another run, shadowed by this run's later row for the same id
    out.write_text(json.dumps(foreign) + "\n" + "".join(json.dumps(r) + "\n" for r in records))
    line = one_line_error(icrm_cli(*base))
    assert "holds results of another run" in line and "num_shots: 2 there, 0 now" in line


@pytest.mark.mock_llm({"matches": [{"response": feedback(7)}]})
def test_another_server_is_another_run(mock_llm, tmp_path):
    source, out = write_jsonl(tmp_path / "in.jsonl", rows(3)), tmp_path / "out.jsonl"
    assert icrm_cli("score", source, "--output", out, "--engine", "mock", "--base_url", mock_llm.base_url,
                    "--num_shots", "0").returncode == 0
    with MockServer({"matches": [{"response": feedback(2)}]}) as other:
        line = one_line_error(icrm_cli("score", source, "--output", out, "--engine", "mock", "--base_url", other,
                                       "--num_shots", "0"))
    assert "server:" in line and mock_llm.base_url in line and other in line
    assert {r["score"] for r in read_jsonl(out)} == {7}


@pytest.mark.parametrize("content", [b"id,score\na,7\n", b"\x89PNG\r\n\x1a\n\x00\x00", b'{"id": "a", "score": 7}\n',
                                     b"[]\n", b"not json at all\n"])
def test_a_file_that_is_not_an_icrm_results_file_is_never_appended_to(tmp_path, content):
    source, out = write_jsonl(tmp_path / "in.jsonl", rows(2)), tmp_path / "out.jsonl"
    out.write_bytes(content)
    line = one_line_error(icrm_cli("score", source, "--output", out, "--engine", "mock", "--base_url",
                                   "http://127.0.0.1:9/v1", "--num_shots", "0"))
    assert "not an icrm results file" in line or "without run provenance" in line
    assert out.read_bytes() == content


@pytest.mark.parametrize("how", ["directory removed", "file replaced", "file removed"])
def test_an_output_that_vanishes_mid_run_is_an_error_not_a_summary(tmp_path, how):
    source, out_dir = write_jsonl(tmp_path / "in.jsonl", rows(60)), tmp_path / "results"
    out = out_dir / "out.jsonl"
    with MockServer(SLOW) as base_url:
        run = subprocess.Popen(score_args(base_url, source, out), cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        wait_for_rows(out, 2, run)
        if how == "directory removed":
            shutil.rmtree(out_dir)
        elif how == "file replaced":
            (out_dir / "other").write_text("x\n")
            os.replace(out_dir / "other", out)
        else:
            out.unlink()
        stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 1, stderr[-2000:]
    assert "Traceback" not in stderr and "during the run" in stderr and '"scored"' not in stdout


def test_report_never_writes_over_what_it_reads(tmp_path):
    source, out = write_jsonl(tmp_path / "in.jsonl", rows(2)), tmp_path / "out.jsonl"
    with MockServer({"matches": [{"response": feedback(7)}]}) as base_url:
        assert icrm_cli("score", source, "--output", out, "--engine", "mock", "--base_url", base_url,
                        "--num_shots", "0").returncode == 0
    before = out.read_bytes(), source.read_bytes()
    for target in (out, source, tmp_path):
        line = one_line_error(icrm_cli("report", out, "--data", source, "--output", target))
        assert "--output" in line
    assert (out.read_bytes(), source.read_bytes()) == before
    assert icrm_cli("report", out, "--data", source, "--output", tmp_path / "page.html").returncode == 0
