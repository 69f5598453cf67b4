"""Trust, classes 7 and 8: an ICRM works in forked children (the seed's datasets.map
recipe, with the ICRM as a global), its errors cross processes, and workers die with
the process that launched them, from any thread."""

import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from icrm import EngineStatusError, FeedbackParseError, InputError
from icrm.errors import EngineConnectionError
from tests.conftest import EXAMPLES, ROOT
from tests.integration.helpers import feedback

# The IC-RM README's parallel recipe, as users write it: the model is a module-level
# global and the function calls it with the row's "inputs".
SEED_RECIPE = """
import datasets
from icrm import ICRM

conversation = [{{"role": "user", "content": "I want to book a flight"}},
                {{"role": "assistant", "content": "Sure, where do you want to go?"}}]
inputs = [{{"conversation": conversation}} for _ in range(8)]
dataset = datasets.Dataset.from_dict({{"inputs": inputs}})
model = ICRM({icrm_args})

def inference_fn(inputs):
    return model(**inputs, max_tokens=3072, temperature=0.7, top_p=0.9)

results = dataset.map(inference_fn, batched={batched}, num_proc=2)
print("FEEDBACKS", sum(f is not None for f in results["feedback"]))
model.close()
"""


def run_recipe(tmp_path, icrm_args, batched, timeout=60):
    script = tmp_path / "recipe.py"
    script.write_text(SEED_RECIPE.format(icrm_args=icrm_args, batched=batched))
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path, timeout=timeout,
                          env={**os.environ, "HF_DATASETS_CACHE": str(tmp_path / "hf"), "ICRM_LOG": "info"})


@pytest.mark.mock_llm({"strict": True, "matches": [{"response": feedback(7)}]})
@pytest.mark.parametrize("batched", [False, True])
def test_the_seeds_datasets_map_recipe_with_a_global_icrm_finishes(mock_llm, tmp_path, batched):
    start = time.monotonic()
    result = run_recipe(tmp_path, f"engine='mock', base_url='{mock_llm.base_url}', num_shots=1", batched)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "FEEDBACKS 8" in result.stdout
    assert time.monotonic() - start < 60
    assert len(mock_llm.requests()) == 8


@pytest.mark.llamacpp
def test_the_seeds_recipe_on_the_embedded_model_uses_the_parents_worker(tmp_path):
    result = run_recipe(tmp_path, "num_shots=0", batched=False, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "FEEDBACKS 8" in result.stdout
    assert result.stderr.count("starting llamacpp worker") == 1  # children launched none


def test_errors_survive_pickling():
    errors = [EngineStatusError("busy", status_code=429, body={"e": 1}, retry_after_s=2.0, engine="mock"),
              FeedbackParseError("cut", raw_text='{"score": 1', reason="truncated"),
              InputError("row 3: bad", line=3), EngineConnectionError("worker died", retryable=False)]
    for error in errors:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error) and copy.__dict__ == error.__dict__


def descendants(pid):
    """Every process below `pid`, read from /proc."""
    found, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
        except OSError:
            continue
        found += map(int, children)
        frontier += map(int, children)
    return found


def alive(pid):
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def wait_gone(pids, seconds):
    deadline = time.monotonic() + seconds
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


LAUNCHER = """
import sys, threading, time
from icrm.engines.worker import Worker

def launch():
    Worker("mock", lambda port: [sys.executable, "-m", "icrm.cli", "mock", "--config", {config!r},
                                 "--port", str(port)]).start()
    print("READY", flush=True)

if {in_thread}:
    thread = threading.Thread(target=launch)
    thread.start()
    thread.join()   # the launching thread is gone; the process lives on
else:
    launch()
time.sleep(600)
"""


@pytest.mark.parametrize("in_thread", [False, True])
def test_a_worker_dies_within_seconds_of_its_killed_parent(tmp_path, in_thread):
    config = tmp_path / "mock.yml"
    config.write_text("matches:\n  - response: hi\n")
    script = tmp_path / "launch.py"
    script.write_text(LAUNCHER.format(config=str(config), in_thread=in_thread))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert parent.stdout.readline().strip() == "READY"
        below = descendants(parent.pid)
        assert len(below) >= 2  # the guard and the server
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        assert wait_gone(below, 5) == []
    finally:
        for pid in descendants(parent.pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.llamacpp
def test_killing_icrm_test_mid_judgement_takes_the_llamacpp_worker_down():
    process = subprocess.Popen([sys.executable, "-m", "icrm.cli", "test", str(EXAMPLES / "test_individual.json"),
                                "--constrain_output", "false", "--max_tokens", "3000"], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for line in process.stderr:
            if "worker ready" in line:
                break
        time.sleep(1)  # generating
        below = descendants(process.pid)
        assert below
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
        assert wait_gone(below, 5) == []
    finally:
        for pid in descendants(process.pid):
            os.kill(pid, signal.SIGKILL)
