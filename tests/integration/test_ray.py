"""Scoring on a real local Ray cluster of two nodes (``ray start --head`` and ``ray start
--address`` on 127.0.0.1, started and stopped here): the same rows as a single-process
run, a killed actor process and a re-run giving every id once, a failing judge leaving
error rows, an evaluation through the same path, and actors that launch their own
llama.cpp worker."""

import importlib.util
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time

import pytest

from icrm.engines.worker import free_port
from tests.integration.helpers import feedback, icrm_cli, pair_feedback, read_jsonl, write_jsonl

pytestmark = [pytest.mark.slow, pytest.mark.skipif(importlib.util.find_spec("ray") is None,
                                                  reason="Ray is an extra: pip install 'icrm[ray]'")]
# Ray 2.60 starts a head with token authentication; every process of the test's cluster
# gets the same token (a fresh machine has none in ~/.ray/auth_token).
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
# Deterministic: 8 for an even value, 3 for an odd one, a 500 for FAIL.
RULES = {"matches": [
    {"regex": r"<\|begin_of_response\|>\nFAIL", "status": 500, "error": "the judge broke"},
    {"regex": r"<\|begin_of_response\|>\nvalue \d*[02468]\n", "response": feedback(8), "delay_s": 0.05},
    {"response": feedback(3), "delay_s": 0.05},
]}


def ray_cli(*args, check=True):
    return subprocess.run([shutil.which("ray") or "ray", *args], capture_output=True, text=True, timeout=180,
                          env={**os.environ, **RAY_ENV}, check=check)


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """Two Ray nodes on loopback; yields the head's address (this process joins it too)."""
    saved = {k: os.environ.get(k) for k in RAY_ENV}
    os.environ.update(RAY_ENV)
    port = free_port()
    common = ("--num-cpus=2", "--object-store-memory=150000000", "--node-ip-address=127.0.0.1", "--disable-usage-stats")
    ray_cli("start", "--head", f"--port={port}", "--include-dashboard=false",
            f"--temp-dir={tmp_path_factory.mktemp('ray')}", *common)
    try:
        ray_cli("start", f"--address=127.0.0.1:{port}", *common)
        yield f"127.0.0.1:{port}"
    finally:
        ray_cli("stop", "--force", check=False)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name)
            else:
                os.environ[name] = value


def rows(n, fail=()):
    return [{"id": f"r{i}", "conversation": [{"role": "user", "content": f"Give a number ({i})."},
                                             {"role": "assistant", "content": "FAIL" if i in fail else f"value {i}"}]}
            for i in range(n)]


def score(mock, source, output, *flags, env=None):
    return icrm_cli("score", source, "--output", output, "--engine", "mock", "--base_url", mock.base_url,
                    "--num_shots", "0", "--max_retries", "0", *flags, env={**RAY_ENV, **(env or {})}, timeout=600)


def verdicts(path):
    return {r["id"]: (r["score"], r["error_kind"]) for r in read_jsonl(path)}


@pytest.mark.mock_llm(RULES)
def test_a_file_scored_on_ray_has_the_rows_of_a_single_process_run(mock_llm, ray_cluster, tmp_path):
    import ray

    source = write_jsonl(tmp_path / "in.jsonl", rows(60, fail={7, 31}))
    local = score(mock_llm, source, tmp_path / "local.jsonl")
    on_ray = score(mock_llm, source, tmp_path / "ray.jsonl", "--backend", "ray", "--ray_address", ray_cluster,
                   "--num_actors", "4", "--concurrency", "8")  # as many actors as the cluster's CPUs: none reserved
    assert local.returncode == on_ray.returncode == 1, on_ray.stderr[-2000:]  # the two FAIL rows
    assert verdicts(tmp_path / "ray.jsonl") == verdicts(tmp_path / "local.jsonl")
    got = verdicts(tmp_path / "ray.jsonl")
    assert len(got) == 60 and got["r4"] == (8, None) and got["r5"] == (3, None)
    assert got["r7"] == (None, "engine_status") and got["r31"] == (None, "engine_status")  # error rows, the rest scored
    summary = json.loads(on_ray.stdout)
    assert (summary["scored"], summary["errors"], summary["failed"]) == (60, 2, 2)
    # Both rows carry one run's fingerprint: a resume of either with the other backend is the same run.
    fingerprints = {r["provenance"]["fingerprint"] for p in ("local", "ray") for r in read_jsonl(tmp_path / f"{p}.jsonl")}
    assert len(fingerprints) == 1
    ray.init(address=ray_cluster, **{"logging_level": "ERROR"})
    try:
        assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    finally:
        ray.shutdown()


@pytest.mark.mock_llm({"matches": [{"response": feedback(6), "delay_s": 0.3}]})
def test_a_killed_actor_process_and_a_rerun_give_every_id_once(mock_llm, ray_cluster, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", rows(160))
    output = tmp_path / "out.jsonl"
    args = [sys.executable, "-m", "icrm.cli", "score", str(source), "--output", str(output), "--engine", "mock",
            "--base_url", mock_llm.base_url, "--num_shots", "0", "--backend", "ray", "--ray_address", ray_cluster,
            "--num_actors", "2", "--concurrency", "4"]
    run = subprocess.Popen(args, env={**os.environ, **RAY_ENV}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)
    deadline = time.monotonic() + 300
    while (not output.exists() or len(output.read_text().splitlines()) < 16) and time.monotonic() < deadline:
        time.sleep(0.1)
    actors = [int(line.split()[0]) for line in subprocess.run(["ps", "-eo", "pid,args"], capture_output=True,
                                                                text=True).stdout.splitlines() if "_Judge" in line]
    assert actors, "no judging actor process found"
    os.kill(actors[0], signal.SIGKILL)
    run.communicate(timeout=600)  # Ray restarts the actor and retries its batch, or the run fails: either way
    rerun = subprocess.run(args, env={**os.environ, **RAY_ENV}, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    ids = [r["id"] for r in read_jsonl(output)]
    assert sorted(ids) == sorted(f"r{i}" for i in range(160))  # every id, exactly once
    assert all(r["score"] == 6 for r in read_jsonl(output))


@pytest.mark.mock_llm({"matches": [{"regex": "(?i)boxed|python", "response": pair_feedback("A++")},
                                   {"response": pair_feedback("B+")}]})
def test_an_evaluation_on_ray_matches_the_local_one(mock_llm, ray_cluster, tmp_path):
    from tests.conftest import ROOT

    judgebench = ROOT.parent / "shared" / "data" / "judgebench" / "judgebench_gpt-4o-2024-05-13.jsonl"
    if not judgebench.exists():
        pytest.skip("../shared/data is not beside the checkout")
    flags = ("--data", judgebench, "--limit", "12", "--engine", "mock", "--base_url", mock_llm.base_url, "--num_shots", "0")
    local = icrm_cli("eval", "judgebench", *flags, "--results_dir", tmp_path / "local", env=RAY_ENV)
    on_ray = icrm_cli("eval", "judgebench", *flags, "--results_dir", tmp_path / "ray", "--backend", "ray",
                      "--ray_address", ray_cluster, env=RAY_ENV, timeout=600)
    assert local.returncode == on_ray.returncode == 0, on_ray.stderr[-2000:]
    summaries = [json.loads(next((tmp_path / d).rglob("summary.json")).read_text()) for d in ("local", "ray")]
    assert summaries[0]["subsets"] == summaries[1]["subsets"] and summaries[0]["sections"] == summaries[1]["sections"]
    assert summaries[1]["counts"]["rows_scored"] == 12


@pytest.mark.llamacpp
def test_each_actor_launches_its_own_worker(ray_cluster, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", rows(4))
    result = icrm_cli("score", source, "--output", tmp_path / "out.jsonl", "--method", "verdict", "--backend", "ray",
                      "--ray_address", ray_cluster, "--num_actors", "2", "--concurrency", "2", env=RAY_ENV, timeout=900)
    assert result.returncode in (0, 1), result.stderr[-2000:]  # the 135M model may not give a verdict
    rows_out = read_jsonl(tmp_path / "out.jsonl")
    assert sorted(r["id"] for r in rows_out) == [f"r{i}" for i in range(4)]
    assert all(r["error_kind"] in (None, "parse") for r in rows_out)  # every item reached a llama.cpp worker
    assert {r["provenance"]["engine"] for r in rows_out} == {"llamacpp"}


@pytest.mark.mock_llm({"matches": [{"response": feedback(7)}]})
def test_hostile_input_lines_on_ray_give_a_single_process_runs_rows(mock_llm, ray_cluster, tmp_path):
    import random

    from tests.hostile import input_lines

    cases = input_lines(random.Random(4), 14)
    good = [json.dumps(r).encode() for r in rows(15)]
    lines = [x for pair in zip(good, [c.data for c in cases] + [b""]) for x in pair if x]
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\n".join(lines) + b"\n")
    local = score(mock_llm, source, tmp_path / "local.jsonl")
    on_ray = score(mock_llm, source, tmp_path / "ray.jsonl", "--backend", "ray", "--ray_address", ray_cluster,
                   "--num_actors", "2", "--concurrency", "4")
    assert local.returncode == on_ray.returncode == 1 and "Traceback" not in on_ray.stderr, on_ray.stderr[-2000:]
    assert verdicts(tmp_path / "ray.jsonl") == verdicts(tmp_path / "local.jsonl")
    assert all(verdicts(tmp_path / "ray.jsonl")[f"r{i}"][0] == 7 for i in range(15))


@pytest.mark.mock_llm({"matches": [{"response": feedback(7)}]})
def test_actors_get_the_drivers_provider_key_through_the_runtime_environment(mock_llm, ray_cluster, tmp_path):
    key = "sk-ray-actor-" + "k" * 40
    source = write_jsonl(tmp_path / "in.jsonl", rows(6))
    out = tmp_path / "out.jsonl"
    result = icrm_cli("score", source, "--output", out, "--engine", "openai", "--model_name", "gpt-x",
                      "--base_url", mock_llm.base_url, "--num_shots", "0", "--backend", "ray", "--ray_address",
                      ray_cluster, "--num_actors", "2", env={**RAY_ENV, "OPENAI_API_KEY": key}, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    assert {r["headers"].get("authorization") for r in mock_llm.requests()} == {f"Bearer {key}"}
    assert key not in out.read_text() and key not in result.stderr
