"""`create_engine(name, model, ...)`: the registry of engine names.

Names follow the original IC-RM (via llm-engines): local workers ``llamacpp`` (the
embedded default), ``vllm``, ``sglang``; hosted OpenAI-compatible APIs ``openai``,
``azure``, ``together``, ``mistral``, ``deepseek``, ``grok``, ``fireworks``, ``gemini``;
``claude`` (alias ``anthropic``) through the anthropic SDK; and ``mock``, icrm's own mock
server (`icrm.mock`), for tests. SDKs are imported only when their engine is built.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import settings
from ..errors import ConfigError
from .base import DEFAULT_TIMEOUT_S, Engine
from .local import (
    EMBEDDED_MODEL_NAME,
    VLLM_CPU_ARGS,
    embedded_model_path,
    gpu_slices,
    llamacpp_argv,
    require_module,
    sglang_argv,
    vllm_argv,
    vllm_cpu_env,
    vllm_is_cpu_build,
)
from .worker import Worker

__all__ = ["ENGINE_NAMES", "LOCAL_ENGINES", "API_ENGINES", "ALIASES", "create_engine"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class APIEngine:
    """A hosted API.

    Attributes:
        base_url: the API's base URL (None: the SDK's default, or required for ``mock``).
        key_env: the vendor's environment variable holding the key (None: no key).
        has_completion: whether the API serves ``/v1/completions`` (else chat only).
        default_completion: the mode used when ``completion=None``.
    """

    base_url: str | None
    key_env: str | None
    has_completion: bool
    default_completion: bool


API_ENGINES: dict[str, APIEngine] = {
    "openai": APIEngine(None, "OPENAI_API_KEY", True, True),
    "together": APIEngine("https://api.together.xyz/v1", "TOGETHER_API_KEY", True, True),
    "fireworks": APIEngine("https://api.fireworks.ai/inference/v1", "FIREWORKS_API_KEY", True, True),
    "grok": APIEngine("https://api.x.ai/v1", "XAI_API_KEY", True, True),
    "azure": APIEngine(None, "AZURE_OPENAI_API_KEY", True, False),
    "mistral": APIEngine("https://api.mistral.ai/v1", "MISTRAL_API_KEY", False, False),
    "deepseek": APIEngine("https://api.deepseek.com/v1", "DEEPSEEK_API_KEY", False, False),
    "gemini": APIEngine("https://generativelanguage.googleapis.com/v1beta/openai/", "GEMINI_API_KEY", False, False),
    "claude": APIEngine(None, "ANTHROPIC_API_KEY", False, False),
    "mock": APIEngine(None, None, True, True),
}
ALIASES = {"anthropic": "claude"}
LOCAL_ENGINES = ("llamacpp", "vllm", "sglang")
ENGINE_NAMES = tuple(sorted((*LOCAL_ENGINES, *API_ENGINES, *ALIASES)))
MOCK_MODEL = "mock"
AZURE_DEFAULT_API_VERSION = "2024-10-21"
# Local servers take any key; the SDK insists on one.
_UNUSED_KEY = "icrm-unused"


def create_engine(
    name: str,
    model: str | None = None,
    *,
    completion: bool | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    api_version: str | None = None,
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
            embedded SmolLM2-135M-Instruct; for ``azure`` the deployment; optional for
            ``mock``. Required for every other engine.
        completion: True for completion mode, False for chat mode, None for the engine's
            default (completion where the engine has it; chat for ``llamacpp``, whose
            server constrains JSON output only in chat mode, and for chat-only APIs).
        base_url: a server to use instead of the engine's default URL (``azure``: the
            endpoint; ``claude``: the API root, a trailing ``/v1`` is dropped).
        api_key: the key; defaults to the vendor's environment variable.
        api_version: ``azure`` only; default ``OPENAI_API_VERSION`` or 2024-10-21.
        num_workers: local engines: how many servers to launch.
        num_gpu_per_worker: vllm / sglang: GPUs per server (tensor parallel size).
        worker_addrs: local engines: base URLs of servers that already run (no launch).
        worker_args: extra command-line arguments for launched servers.
        timeout_s: per-request timeout in seconds.

    Returns:
        A ready `Engine` (launched workers answered ``/v1/models``). Its SDK clients do
        not retry: `RequestRunner` does.

    Raises:
        ConfigError: unknown name (listing the known ones), missing model, key or
            package (with the install hint), completion mode on a chat-only API, too
            few GPUs.
        EngineError: a worker failed to start (with its log tail).
    """
    name = ALIASES.get(name, name)
    if name not in API_ENGINES and name not in LOCAL_ENGINES:
        raise ConfigError(f"unknown engine {name!r}; known engines: {', '.join(ENGINE_NAMES)}")
    if name in API_ENGINES:
        return _api_engine(name, model, completion, base_url, api_key, api_version, timeout_s)
    return _local_engine(
        name, model, completion, num_workers, num_gpu_per_worker,
        list(worker_addrs or ([base_url] if base_url else [])), worker_args, timeout_s,
    )


def resolve_api_key(name: str, api_key: str | None) -> str | None:
    """The key `create_engine` would use for engine `name` (None for keyless engines)."""
    spec = API_ENGINES.get(ALIASES.get(name, name))
    if spec is None or spec.key_env is None:
        return api_key
    return api_key or os.environ.get(spec.key_env) or None


def _api_engine(
    name: str, model: str | None, completion: bool | None, base_url: str | None,
    api_key: str | None, api_version: str | None, timeout_s: float,
) -> Engine:
    spec = API_ENGINES[name]
    if spec.key_env is None:  # the mock server
        if not base_url:
            raise ConfigError(f"engine '{name}' needs base_url: the mock server's URL, e.g. http://127.0.0.1:11434/v1")
        model, api_key = model or MOCK_MODEL, api_key or _UNUSED_KEY
    if not model:
        raise ConfigError(f"engine '{name}' needs a model: pass --model_name")
    if completion and not spec.has_completion:
        raise ConfigError(f"engine '{name}' has no completion mode: drop --completion or pass --completion False")
    key = resolve_api_key(name, api_key)
    if not key and base_url:
        # A server of the caller's own (a local vLLM, a gateway) may need no key; the
        # SDK insists on one, so send a placeholder. A server that wants one answers 401.
        key = _UNUSED_KEY
    if not key:
        raise ConfigError(f"engine '{name}' needs an API key: set {spec.key_env} or pass api_key "
                          "(or point base_url at a server that needs none)")
    mode = spec.default_completion if completion is None else completion
    if name == "claude":
        anthropic = _import_sdk("anthropic", name)
        from .anthropic_engine import AnthropicEngine

        root = base_url.rstrip("/").removesuffix("/v1") if base_url else None
        client = anthropic.AsyncAnthropic(api_key=key, base_url=root, timeout=timeout_s, max_retries=0)
        return AnthropicEngine(name, model, client=client)
    openai = _import_sdk("openai", name)
    from .openai_compatible import OpenAICompatibleEngine

    client: Any
    if name == "azure":
        endpoint = base_url or os.environ.get("AZURE_OPENAI_ENDPOINT")
        if not endpoint:
            raise ConfigError("engine 'azure' needs an endpoint: set AZURE_OPENAI_ENDPOINT or pass base_url")
        client = openai.AsyncAzureOpenAI(
            api_key=key, azure_endpoint=endpoint, azure_deployment=model,
            api_version=api_version or os.environ.get("OPENAI_API_VERSION") or AZURE_DEFAULT_API_VERSION,
            timeout=timeout_s, max_retries=0,
        )
    else:
        client = openai.AsyncOpenAI(api_key=key, base_url=base_url or spec.base_url, timeout=timeout_s, max_retries=0)
    # OpenAI and Azure take the standard json_schema response_format (chat mode).
    structured = "json_schema" if name in ("openai", "azure") and not mode else None
    return OpenAICompatibleEngine(name, model, clients=[client], completion=mode, structured_output=structured)


def _local_engine(
    name: str, model: str | None, completion: bool | None, num_workers: int,
    num_gpu_per_worker: int, worker_addrs: list[str], worker_args: Sequence[str], timeout_s: float,
) -> Engine:
    if num_workers < 1 or num_gpu_per_worker < 1:
        raise ConfigError("num_workers and num_gpu_per_worker must be at least 1")
    openai = _import_sdk("openai", name)
    from .openai_compatible import OpenAICompatibleEngine

    builds: list[tuple[Any, dict[str, str]]] = []
    if name == "llamacpp":
        if model is None:
            model_path, model_name = embedded_model_path(), EMBEDDED_MODEL_NAME
        else:
            model_path, model_name = Path(model), Path(model).stem
            if not worker_addrs and (model_path.suffix != ".gguf" or not model_path.is_file()):
                raise ConfigError(f"engine 'llamacpp' needs a local .gguf file as --model_name; {model!r} is not one")
        if not worker_addrs:
            require_module("llama_cpp", name, "pip install 'llama-cpp-python[server]'")
            require_module("sse_starlette", name, "pip install 'llama-cpp-python[server]'")
            builds = [(llamacpp_argv(model_path, model_name, worker_args), {})] * num_workers
        structured, default_completion, native_n = "json_object_schema", False, False
        constrain = True
    else:
        if not model:
            raise ConfigError(f"engine '{name}' needs a model: pass --model_name")
        if not worker_addrs:
            hint = f"pip install 'icrm[{name}]' (needs NVIDIA GPUs; without one use the embedded default or an API engine)"
            require_module(name, name, hint)
            if name == "vllm" and vllm_is_cpu_build():
                builds = [(vllm_argv(model, 1, (*VLLM_CPU_ARGS, *worker_args)), vllm_cpu_env())] * num_workers
            else:
                argv = vllm_argv if name == "vllm" else sglang_argv
                builds = [
                    (argv(model, num_gpu_per_worker, worker_args), {"CUDA_VISIBLE_DEVICES": devices})
                    for devices in gpu_slices(name, num_workers, num_gpu_per_worker)
                ]
        structured = "structured_outputs" if name == "vllm" else "json_schema"
        model_name, default_completion, native_n, constrain = model, True, True, False
    workers = [Worker(name, build, env=env, startup_timeout_s=settings.worker_startup_timeout_s()) for build, env in builds]
    try:
        base_urls = [w.start() for w in workers] or worker_addrs
    except BaseException:
        for w in workers:
            w.close()
        raise
    clients = [openai.AsyncOpenAI(base_url=url, api_key=_UNUSED_KEY, timeout=timeout_s, max_retries=0) for url in base_urls]
    return OpenAICompatibleEngine(
        name, model_name,
        clients=clients,
        completion=default_completion if completion is None else completion,
        structured_output=structured,
        constrain_by_default=constrain,
        native_n=native_n,
        workers=workers,
    )


def _import_sdk(module: str, engine: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise ConfigError(f"engine '{engine}' needs the '{module}' package: pip install {module}") from None
