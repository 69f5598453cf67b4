"""The GPU-server path for real: vLLM's CPU build serving the embedded model.

Needs `bash scripts/install_vllm_cpu.sh` (CI runs it); skipped where vLLM is absent.
"""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from icrm import ICRM, IndividualFeedback
from icrm.engines.local import embedded_model_hf_dir
from tests.conftest import EXAMPLES, ROOT, user_assistant

pytestmark = [
    pytest.mark.vllm_cpu,
    pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                       reason="vLLM is not installed: bash scripts/install_vllm_cpu.sh"),
]


@pytest.fixture(scope="module")
def model_dir():
    return embedded_model_hf_dir()


@pytest.fixture
def vllm_tmpdir(tmp_path, monkeypatch):
    # vLLM's CPU backend writes to TMPDIR; keep it inside the test's own directory.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    return tmp_path


def test_icrm_test_prints_feedback_from_a_real_vllm_server(model_dir, vllm_tmpdir):
    result = subprocess.run(
        [sys.executable, "-m", "icrm.cli", "test", EXAMPLES / "test_individual.json", "--engine", "vllm",
         "--model_name", str(model_dir)],
        capture_output=True, text=True, cwd=ROOT, timeout=900, env={**os.environ, "TMPDIR": str(vllm_tmpdir)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    feedback = json.loads(result.stdout)
    assert isinstance(feedback["score"], int) and 1 <= feedback["score"] <= 10
    assert "vllm worker ready" in result.stderr


def test_structured_output_and_usage_on_vllm(model_dir, vllm_tmpdir):
    with ICRM(engine="vllm", model_name=str(model_dir), num_shots=1, constrain_output=True) as icrm:
        conversation = user_assistant("What is 2 + 2?", "4")
        feedback = icrm.judge(conversation=conversation, max_tokens=600)
        assert (icrm.usage.requests, icrm.usage.errors) == (1, 0)
        assert icrm.usage.prompt_tokens == feedback.usage.prompt_tokens > 100
    assert isinstance(feedback, IndividualFeedback) and feedback.ok, feedback.parse_error
    assert 1 <= feedback.score <= 10
    assert feedback.raw_text.lstrip().startswith("{")  # constrained: JSON from the first token
