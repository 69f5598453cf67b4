"""`create_engine(name, model, ...)`: the registry of engine names.

Names follow the original IC-RM (via llm-engines): local workers ``llamacpp`` (the
embedded default), ``vllm``, ``sglang``; hosted OpenAI-compatible APIs ``openai``,
``together``, ``mistral``, ``deepseek``, ``grok``, ``fireworks``, ``gemini``; and ``mock``,
icrm's own mock server (`icrm.mock`), for tests.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .. import settings
from ..errors import ConfigError
from .base import DEFAULT_TIMEOUT_S, Engine
from .local import (
    EMBEDDED_MODEL_NAME,
    embedded_model_path,
    gpu_slices,
    llamacpp_argv,
    require_module,
    sglang_argv,
    vllm_argv,
)
from .worker import Worker

__all__ = ["ENGINE_NAMES", "LOCAL_ENGINES", "API_ENGINES", "create_engine"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class APIEngine:
    """A hosted OpenAI-compatible API.

    Attributes:
        base_url: the API's base URL (None: the `openai` SDK default / ``OPENAI_BASE_URL``).
        key_env: the vendor's environment variable holding the key (None: no key needed,
            and `base_url` must be given: icrm's mock server).
        has_completion: whether the API serves ``/v1/completions``.
    """

    base_url: str | None
    key_env: str | None
    has_completion: bool


API_ENGINES: dict[str, APIEngine] = {
    "openai": APIEngine(None, "OPENAI_API_KEY", True),
    "together": APIEngine("https://api.together.xyz/v1", "TOGETHER_API_KEY", True),
    "fireworks": APIEngine("https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY", True),
    "grok": APIEngine("https://api.x.ai/v1", "XAI_API_KEY", True),
    "mistral": APIEngine("https://api.mistral.ai/v1", "MISTRAL_API_KEY", False),
    "deepseek": APIEngine("https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", False),
    "gemini": APIEngine("https://generativelanguage.googleapis.com/v1beta/openai/", "GEMINI_API_KEY", False),
    "mock": APIEngine(None, None, True),  # icrm's mock server (`icrm mock`): pass its base_url
}
MOCK_MODEL = "mock"
LOCAL_ENGINES = ("llamacpp", "vllm", "sglang")
ENGINE_NAMES = tuple(sorted((*LOCAL_ENGINES, *API_ENGINES)))
# Local servers take any key; the SDK insists on one.
_LOCAL_API_KEY = "icrm-local"


def create_engine(
    name: str,
    model: str | None = None,
    *,
    completion: bool | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    num_workers: int = 1,
    num_gpu_per_worker: int = 1,
    worker_addrs: Sequence[str] | None = None,
    worker_args: Sequence[str] = (),
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Engine:
    """Build an engine by name; local engines launch their workers here.

    Args:
        name: one of `ENGINE_NAMES`.
        model: the model name; for ``llamacpp`` a path to a ``.gguf`` file, None for the
            embedded SmolLM2-135M-Instruct. Required for every other engine.
        completion: True for completion mode, False for chat mode, None for the engine's
            default (completion where the engine has it; chat for ``llamacpp``, whose
            server constrains JSON output only in chat mode).
        base_url: an OpenAI-compatible server to use instead of the engine's default URL.
        api_key: the key; defaults to the vendor's environment variable.
        num_workers: local engines: how many servers to launch.
        num_gpu_per_worker: vllm / sglang: GPUs per server (tensor parallel size).
        worker_addrs: local engines: base URLs of servers that already run (no launch).
        worker_args: extra command-line arguments for launched servers.
        timeout_s: per-request timeout in seconds.

    Returns:
        A ready `Engine` (workers answered ``/v1/models``).

    Raises:
        ConfigError: unknown name (listing the known ones), missing model, key or
            package (with the install hint), completion mode on a chat-only API,
            too few GPUs.
        EngineError: a worker failed to start (with its log tail).
    """
    if name not in ENGINE_NAMES:
        raise ConfigError(f"unknown engine {name!r}; known engines: {', '.join(ENGINE_NAMES)}")
    if name in API_ENGINES:
        return _api_engine(name, model, completion, base_url, api_key, timeout_s)
    return _local_engine(
        name, model, completion, num_workers, num_gpu_per_worker,
        list(worker_addrs or ([base_url] if base_url else [])), worker_args, timeout_s,
    )


def _api_engine(
    name: str, model: str | None, completion: bool | None, base_url: str | None,
    api_key: str | None, timeout_s: float,
) -> Engine:
    from .openai_compatible import OpenAICompatibleEngine  # lazily: `openai` takes ~0.8 s to import

    spec = API_ENGINES[name]
    if spec.key_env is None:
        if not base_url:
            raise ConfigError(f"engine '{name}' needs base_url: the mock server's URL, e.g. http://127.0.0.1:11434/v1")
        model, api_key = model or MOCK_MODEL, api_key or "unused"
    if not model:
        raise ConfigError(f"engine '{name}' needs a model: pass --model_name")
    if completion and not spec.has_completion and base_url is None:
        raise ConfigError(f"engine '{name}' has no completion mode: drop --completion or pass --completion False")
    key = api_key or (os.environ.get(spec.key_env) if spec.key_env else None)
    if not key:
        raise ConfigError(f"engine '{name}' needs an API key: set {spec.key_env} or pass api_key")
    return OpenAICompatibleEngine(
        name, model,
        base_urls=[base_url or spec.base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1"],
        api_key=key,
        completion=spec.has_completion if completion is None else completion,
        structured_output=None,
        timeout_s=timeout_s,
    )


def _local_engine(
    name: str, model: str | None, completion: bool | None, num_workers: int,
    num_gpu_per_worker: int, worker_addrs: list[str], worker_args: Sequence[str], timeout_s: float,
) -> Engine:
    from .openai_compatible import OpenAICompatibleEngine  # lazily: `openai` takes ~0.8 s to import

    if num_workers < 1 or num_gpu_per_worker < 1:
        raise ConfigError("num_workers and num_gpu_per_worker must be at least 1")
    if name == "llamacpp":
        if model is None:
            model_path, alias = embedded_model_path(), EMBEDDED_MODEL_NAME
        else:
            model_path, alias = Path(model), Path(model).stem
            if not worker_addrs and (model_path.suffix != ".gguf" or not model_path.is_file()):
                raise ConfigError(f"engine 'llamacpp' needs a local .gguf file as --model_name; {model!r} is not one")
        if not worker_addrs:
            require_module("llama_cpp", name, "pip install 'llama-cpp-python[server]'")
            require_module("sse_starlette", name, "pip install 'llama-cpp-python[server]'")
        builds = [(llamacpp_argv(model_path, alias, worker_args), {})] * num_workers
        model_name, structured = alias, "json_object_schema"
        default_completion = False
    else:
        if not model:
            raise ConfigError(f"engine '{name}' needs a model: pass --model_name")
        if not worker_addrs:
            hint = f"pip install 'icrm[{name}]' (needs NVIDIA GPUs; without one use the embedded default or an API engine)"
            require_module(name, name, hint)
            argv = vllm_argv if name == "vllm" else sglang_argv
            builds = [
                (argv(model, num_gpu_per_worker, worker_args), {"CUDA_VISIBLE_DEVICES": devices})
                for devices in gpu_slices(name, num_workers, num_gpu_per_worker)
            ]
        model_name, structured, default_completion = model, "json_schema", True
    if worker_addrs:
        workers: list[Worker] = []
        base_urls = worker_addrs
    else:
        workers = [Worker(name, build, env=env, startup_timeout_s=settings.worker_startup_timeout_s())
                   for build, env in builds]
        try:
            base_urls = [w.start() for w in workers]
        except BaseException:
            for w in workers:
                w.close()
            raise
    return OpenAICompatibleEngine(
        name, model_name,
        base_urls=base_urls,
        api_key=_LOCAL_API_KEY,
        completion=default_completion if completion is None else completion,
        structured_output=structured,
        workers=workers,
        timeout_s=timeout_s,
    )
