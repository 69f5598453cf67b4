"""Batch scoring: `icrm score`, resume, kill-safety, inputs, streaming API, datasets.map."""

import json
import os
import pickle
import signal
import subprocess
import sys
import time

import datasets
import pytest

from icrm import ICRM
from icrm.batch import row_id
from tests.conftest import ROOT, user_assistant

FEEDBACK = json.dumps({"intent": "i", "checklist": "c", "strengths": "s", "weaknesses": "w", "score": 7})
LLMBAR = ROOT.parent / "shared" / "data" / "pairwise" / "llmbar.jsonl"


def rows(n, start=0):
    return [{"id": f"r{i}", "conversation": user_assistant(f"question {i}", f"answer {i}")} for i in range(start, start + n)]


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def icrm_score(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "icrm.cli", "score", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout)


@pytest.mark.mock_llm({"matches": [{"response": FEEDBACK}]})
def test_score_writes_one_complete_row_per_input(mock_llm, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", rows(12))
    out = tmp_path / "out.jsonl"
    result = icrm_score(source, "--output", out, "--engine", "mock", "--base_url", mock_llm.base_url,
                        "--num_shots", "2", "--concurrency", "4")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["scored"], summary["skipped"], summary["errors"]) == (12, 0, 0)
    written = read_jsonl(out)
    assert sorted(r["id"] for r in written) == sorted(f"r{i}" for i in range(12))
    row = written[0]
    assert row["score"] == 7 and row["feedback"]["score"] == 7 and row["raw_text"] == FEEDBACK
    assert row["error"] is None and row["cache_hit"] is False and row["latency_s"] > 0
    assert row["usage"]["prompt_tokens"] > 0
    provenance = row["provenance"]
    assert provenance["model"] == "mock" and provenance["engine"] == "mock" and provenance["seed"] == 42
    assert provenance["shot_ids"] == ["chat-puppy-name", "math-percent-wrong"]
    assert len(provenance["template_hash"]) == 12
    assert provenance["generation_kwargs"]["stop"] == ["<|end_of_feedback|>"]


@pytest.mark.mock_llm({"matches": [{"contains": ["question 3"], "status": 500, "error": "flaky", "times": 1},
                                   {"response": FEEDBACK}]})
def test_rerun_skips_done_rows_and_retries_failed_ones(mock_llm, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", rows(6))
    out = tmp_path / "out.jsonl"
    args = (source, "--output", out, "--engine", "mock", "--base_url", mock_llm.base_url, "--num_shots", "0",
            "--max_retries", "0")
    first = icrm_score(*args)
    assert first.returncode == 1  # a row failed
    assert json.loads(first.stdout)["errors"] == 1
    failed = [r for r in read_jsonl(out) if r["error"]]
    assert [r["id"] for r in failed] == ["r3"] and "flaky" in failed[0]["error"]
    second = icrm_score(*args)
    assert second.returncode == 0, second.stderr
    assert (json.loads(second.stdout)["scored"], json.loads(second.stdout)["skipped"]) == (1, 5)
    assert len(mock_llm.requests()) == 7  # 6 + the one retried
    last = {r["id"]: r for r in read_jsonl(out)}
    assert all(r["error"] is None and r["score"] == 7 for r in last.values())


@pytest.mark.mock_llm({"matches": [{"response": FEEDBACK, "delay_s": 0.05}]})
def test_a_killed_run_loses_no_finished_row(mock_llm, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", rows(150))
    out = tmp_path / "out.jsonl"
    args = ["--output", out, "--engine", "mock", "--base_url", mock_llm.base_url, "--num_shots", "0", "--concurrency", "2"]
    process = subprocess.Popen([sys.executable, "-m", "icrm.cli", "score", source, *map(str, args)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    deadline = time.monotonic() + 60
    while (not out.exists() or len(out.read_text().splitlines()) < 20) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(10)
    finished = {r["id"] for r in read_jsonl(out)}  # every line written is a whole row
    assert 20 <= len(finished) < 150
    requests_before = len(mock_llm.requests())
    result = icrm_score(source, *args)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["skipped"] == len(finished)
    assert len(mock_llm.requests()) - requests_before == 150 - len(finished)  # finished rows not redone
    assert {r["id"] for r in read_jsonl(out)} == {f"r{i}" for i in range(150)}


@pytest.mark.mock_llm({"matches": [{"response": FEEDBACK, "delay_s": 0.05}]})
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_unwinds_quietly_and_resumes(mock_llm, tmp_path, signum):
    source = write_jsonl(tmp_path / "in.jsonl", rows(100))
    out = tmp_path / "out.jsonl"
    args = ["--output", out, "--engine", "mock", "--base_url", mock_llm.base_url, "--num_shots", "0", "--concurrency", "4"]
    # A shell starts background jobs with SIGINT ignored, and Python keeps it ignored;
    # the child gets the default disposition so the test means the same however CI runs.
    process = subprocess.Popen([sys.executable, "-m", "icrm.cli", "score", source, *map(str, args)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while (not out.exists() or len(out.read_text().splitlines()) < 10) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 128 + signum
    # The in-flight judgements are cancelled before the clients close: no tracebacks, no
    # half-dead tasks, and no row recorded as a request error by the shutdown itself.
    for noise in ("Traceback", "Task was destroyed", "Exception ignored"):
        assert noise not in stderr, stderr
    written = read_jsonl(out)
    assert 10 <= len(written) < 100 and all(r["error"] is None for r in written)
    result = icrm_score(source, *args)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["skipped"] == len(written)
    assert {r["id"] for r in read_jsonl(out)} == {f"r{i}" for i in range(100)}


@pytest.mark.mock_llm({"matches": [{"response": FEEDBACK}]})
@pytest.mark.parametrize("kind", ["json", "parquet", "dataset_dir"])
def test_other_input_kinds_and_stable_hash_ids(mock_llm, tmp_path, kind):
    records = [{"conversation": r["conversation"]} for r in rows(3)]  # no id column
    if kind == "json":
        source = tmp_path / "in.json"
        source.write_text(json.dumps(records))
    else:
        dataset = datasets.Dataset.from_list(records)
        source = tmp_path / ("in.parquet" if kind == "parquet" else "in_dir")
        dataset.to_parquet(str(source)) if kind == "parquet" else dataset.save_to_disk(str(source))
    out = tmp_path / "out.jsonl"
    with ICRM(engine="mock", base_url=mock_llm.base_url, num_shots=0) as icrm:
        assert icrm.score(source, out).scored == 3
        assert icrm.score(source, out).skipped == 3  # same ids on the second run
    assert {r["id"] for r in read_jsonl(out)} == {row_id(r) for r in records}


@pytest.mark.mock_llm({"matches": [{"response": '{"analysis of A": "", "analysis of B": "", "reason of A=B": "", '
                                                 '"reason of A>B": "", "reason of B>A": "", "choice": "B+"}'}]})
@pytest.mark.skipif(not LLMBAR.exists(), reason="../shared/data is not beside the checkout")
def test_rewardbench_rows_score_pairwise_and_individual(mock_llm, tmp_path):
    out = tmp_path / "pairwise.jsonl"
    result = icrm_score(LLMBAR, "--output", out, "--rm_type", "pairwise", "--input_format", "rewardbench", "--limit", "5",
                        "--engine", "mock", "--base_url", mock_llm.base_url)
    assert result.returncode == 0, result.stderr
    assert [r["choice"] for r in read_jsonl(out)] == ["B+"] * 5
    first = json.loads(LLMBAR.read_text().splitlines()[0])
    body = mock_llm.requests()[0]["body"]["prompt"]
    assert first["chosen"][:100] in body and first["rejected"][:100] in body


@pytest.mark.mock_llm({"matches": [{"contains": ["REJECT-ME"], "status": 400, "error": "rejected"}, {"response": FEEDBACK}]})
def test_streaming_api_records_errors_per_item(mock_llm):
    items = [{"conversation": user_assistant("good", "a")}, {"conversation": user_assistant("REJECT-ME", "a")},
             {"conversation": user_assistant("only one turn", "a")[:1]}, {"conversation_A": []}]
    with ICRM(engine="mock", base_url=mock_llm.base_url, num_shots=0) as icrm:
        results = icrm.judge_many(items, concurrency=2)
        streamed = sorted(i for i, _ in icrm.judge_iter(items, concurrency=2))
        dataset = icrm.individual_rm_multi([user_assistant("good", "a")] * 3, parse_json=True)
    assert results[0].score == 7
    assert "rejected" in results[1].error and "at least 2 turns" in results[2].error
    assert "unexpected field(s) conversation_A" in results[3].error
    assert streamed == [0, 1, 2, 3]
    assert dataset.column_names == ["conversation", "feedback", "error"]
    assert [f["score"] for f in dataset["feedback"]] == [7, 7, 7]


def _judge_in_child(row, icrm, parent_urls):
    # Runs in a datasets.map worker process: the unpickled ICRM must reuse the parent's worker.
    assert icrm.engine.workers == [] and [str(c.base_url) for c in icrm.engine.clients] == parent_urls
    feedback = icrm.judge(conversation=row["conversation"], max_tokens=8)
    return {"pid": os.getpid(), "raw": feedback.raw_text}


@pytest.mark.llamacpp
def test_datasets_map_with_num_proc_reuses_the_parents_worker(tmp_path):
    with ICRM(num_shots=0, use_cache=True, cache_dir=tmp_path) as icrm:
        parent_urls = [f"{w.base_url}/" for w in icrm.engine.workers]
        dataset = datasets.Dataset.from_list([{"conversation": user_assistant(f"q{i}", "a")} for i in range(4)])
        mapped = dataset.map(_judge_in_child, fn_kwargs={"icrm": icrm, "parent_urls": parent_urls}, num_proc=4)
        assert len(set(mapped["pid"]) - {os.getpid()}) >= 2 and all(mapped["raw"])
        # The children filled the shared cache: the parent now answers from it.
        assert all(icrm.judge(conversation=r["conversation"], max_tokens=8).cache_hit for r in dataset)


@pytest.mark.mock_llm({"matches": [{"response": FEEDBACK}]})
def test_pickled_icrm_keeps_its_random_shot_stream(mock_llm):
    with ICRM(engine="mock", base_url=mock_llm.base_url, shot_sampling_mode="random", seed=5) as icrm:
        icrm.sample_shots()
        copy = pickle.loads(pickle.dumps(icrm))
        try:
            assert copy.sample_shots() == icrm.sample_shots()
        finally:
            copy.close()
