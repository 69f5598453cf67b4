"""`create_engine(name, model, ...)`: the table of engine names and their factories.

Names follow the original IC-RM (via llm-engines): local workers ``llamacpp`` (the
embedded default), ``vllm``, ``sglang``; hosted OpenAI-compatible APIs ``openai``,
``azure``, ``together``, ``mistral``, ``deepseek``, ``grok``, ``fireworks``, ``gemini``;
``claude`` (alias ``anthropic``) through the anthropic SDK; and ``mock``, icrm's own mock
server (`icrm.mock`), for tests. Each name maps to an `EngineSpec` naming its factory as
``"module:function"``: the module (and its SDK) is imported only when that engine is
built, and a new engine is one new row.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError
from ..registry import Registry
from .base import DEFAULT_TIMEOUT_S, Engine

__all__ = ["EngineSpec", "EngineOptions", "EngineChoice", "ENGINES", "ENGINE_NAMES", "LOCAL_ENGINES", "API_ENGINES",
           "ALIASES", "create_engine", "choose_engine", "resolve_api_key", "UNUSED_KEY", "EMBEDDED_MODEL_NAME"]

# Servers of the caller's own take any key; the SDKs insist on one.
UNUSED_KEY = "icrm-unused"
# The embedded default model's name in results (SmolLM2-135M-Instruct, Q4_1 GGUF).
EMBEDDED_MODEL_NAME = "SmolLM2-135M-Instruct-Q4_1"


@dataclass(frozen=True)
class EngineSpec:
    """One engine name's row.

    Attributes:
        factory: ``"module:function"`` building the engine from `EngineOptions`.
        local: True for workers icrm launches (or finds at ``worker_addrs``).
        base_url: a hosted API's base URL (None: the SDK's default, or required).
        key_env: the vendor's environment variable holding the key (None: no key).
        has_completion: whether the API serves ``/v1/completions`` (else chat only).
        default_completion: the mode used when ``completion=None``.
        chat_schema: how the API constrains chat answers to a JSON schema (see
            `icrm.engines.openai_compatible.StructuredOutput`), or None.
        needs_model: whether a model name is required.
        logprobs: whether the engine can return token logprobs.
        constrain_by_default: whether judges ask for schema-constrained answers unless
            told otherwise (llama.cpp: the embedded model writes valid JSON only so).
        default_model: the model reported when none is given (llama.cpp: the embedded
            one; the mock: ``mock``).
        tokenize_path: the server's route that counts a text's tokens, from its root
            (None: none; ``max_shot_tokens`` then estimates).
    """

    factory: str
    local: bool = False
    base_url: str | None = None
    key_env: str | None = None
    has_completion: bool = True
    default_completion: bool = True
    chat_schema: str | None = None
    needs_model: bool = True
    logprobs: bool = True
    constrain_by_default: bool = False
    default_model: str | None = None
    tokenize_path: str | None = None

    def reported_model(self, model: str | None) -> str | None:
        """The model name results report for `model`: a llama.cpp ``.gguf`` path gives
        its file name without the suffix; None gives `default_model`."""
        if model is None:
            return self.default_model
        if self.factory.endswith(":build_llamacpp"):
            return Path(model).stem
        return model


@dataclass(frozen=True)
class EngineOptions:
    """Everything `create_engine` was given, checked, for a factory to build from.

    Attributes:
        name: the engine name (aliases resolved).
        spec: its row.
        model: the model name (None only where the engine has a default).
        completion: the mode (the engine's default applied for API engines; None for
            local ones, whose default depends on the server).
        api_key: the key to send (a placeholder for keyless servers).
        base_url, api_version, num_workers, num_gpu_per_worker, worker_addrs,
        worker_args, timeout_s, logprobs: as `create_engine`.
    """

    name: str
    spec: EngineSpec
    model: str | None
    completion: bool | None
    api_key: str | None
    base_url: str | None
    api_version: str | None
    num_workers: int
    num_gpu_per_worker: int
    worker_addrs: tuple[str, ...]
    worker_args: tuple[str, ...]
    timeout_s: float
    logprobs: bool = False


_OPENAI = "icrm.engines.openai_compatible:build_api"
_ROWS: dict[str, EngineSpec] = {
    "llamacpp": EngineSpec("icrm.engines.local:build_llamacpp", local=True, needs_model=False, default_completion=False,
                           constrain_by_default=True, default_model=EMBEDDED_MODEL_NAME,
                           tokenize_path="/extras/tokenize/count"),
    "vllm": EngineSpec("icrm.engines.local:build_vllm", local=True, tokenize_path="/tokenize"),
    "sglang": EngineSpec("icrm.engines.local:build_sglang", local=True),
    "openai": EngineSpec(_OPENAI, key_env="OPENAI_API_KEY", chat_schema="json_schema"),
    "together": EngineSpec(_OPENAI, base_url="https://api.together.xyz/v1", key_env="TOGETHER_API_KEY"),
    "fireworks": EngineSpec(_OPENAI, base_url="https://api.fireworks.ai/inference/v1", key_env="FIREWORKS_API_KEY"),
    "grok": EngineSpec(_OPENAI, base_url="https://api.x.ai/v1", key_env="XAI_API_KEY"),
    "azure": EngineSpec("icrm.engines.openai_compatible:build_azure", key_env="AZURE_OPENAI_API_KEY",
                        default_completion=False, chat_schema="json_schema"),
    "mistral": EngineSpec(_OPENAI, base_url="https://api.mistral.ai/v1", key_env="MISTRAL_API_KEY",
                          has_completion=False, default_completion=False),
    "deepseek": EngineSpec(_OPENAI, base_url="https://api.deepseek.com/v1", key_env="DEEPSEEK_API_KEY",
                           has_completion=False, default_completion=False),
    "gemini": EngineSpec(_OPENAI, base_url="https://generativelanguage.googleapis.com/v1beta/openai/",
                         key_env="GEMINI_API_KEY", has_completion=False, default_completion=False),
    "claude": EngineSpec("icrm.engines.anthropic_engine:build", key_env="ANTHROPIC_API_KEY", has_completion=False,
                         default_completion=False, logprobs=False),
    "mock": EngineSpec("icrm.engines.openai_compatible:build_mock", needs_model=False, default_model="mock",
                       tokenize_path="/tokenize"),
}
ALIASES = {"anthropic": "claude"}
ENGINES: Registry[EngineSpec] = Registry("engine", _ROWS, ALIASES)
LOCAL_ENGINES = tuple(n for n, spec in _ROWS.items() if spec.local)
API_ENGINES = {n: spec for n, spec in _ROWS.items() if not spec.local}
ENGINE_NAMES = tuple(sorted((*_ROWS, *ALIASES)))


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
    logprobs: bool = False,
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
            endpoint; ``claude``: the API root, a trailing ``/v1`` is dropped; local
            engines: a server that already runs). With it, an API key is optional.
        api_key: the key; defaults to the vendor's environment variable.
        api_version: ``azure`` only; default ``OPENAI_API_VERSION`` or 2024-10-21.
        num_workers: local engines: how many servers to launch.
        num_gpu_per_worker: vllm / sglang: GPUs per server (tensor parallel size).
        worker_addrs: local engines: base URLs of servers that already run (no launch).
        worker_args: extra command-line arguments for launched servers.
        timeout_s: per-request timeout in seconds.
        logprobs: token logprobs will be asked for (llama.cpp workers then keep the
            logits of every position: ``--logits_all True``, about 1.6 GB more for the
            embedded model's 8,192-token context).

    Returns:
        A ready `Engine` (launched workers answered ``/v1/models``). Its SDK clients do
        not retry: `RequestRunner` does.

    Raises:
        ConfigError: unknown name (listing the known ones), missing model, key or
            package (with the install hint), completion mode on a chat-only API, too
            few GPUs.
        EngineError: a worker failed to start (with its log tail).
    """
    spec = ENGINES.get(name)
    name = ENGINES.canonical(name)
    if spec.local and (num_workers < 1 or num_gpu_per_worker < 1):
        raise ConfigError("num_workers and num_gpu_per_worker must be at least 1")
    if spec.needs_model and not model:
        raise ConfigError(f"engine '{name}' needs a model: pass --model_name")
    if logprobs and not spec.logprobs:
        raise ConfigError(f"engine '{name}' returns no token logprobs, which method 'logprob' needs: use vllm, sglang, "
                          "llamacpp or an OpenAI-compatible API, or --method critique / verdict")
    key = None
    if not spec.local:
        if completion and not spec.has_completion:
            raise ConfigError(f"engine '{name}' has no completion mode: drop --completion or pass --completion False")
        key = resolve_api_key(name, api_key) or (UNUSED_KEY if base_url or spec.key_env is None else None)
        if key is None:
            raise ConfigError(f"engine '{name}' needs an API key: set {spec.key_env} or pass api_key "
                              "(or point base_url at a server that needs none)")
        completion = spec.default_completion if completion is None else completion
    addrs = tuple(worker_addrs or ([base_url] if base_url and spec.local else []))
    options = EngineOptions(name, spec, model, completion, key, base_url, api_version, num_workers,
                            num_gpu_per_worker, addrs, tuple(worker_args), timeout_s, logprobs)
    module, _, function = spec.factory.partition(":")
    try:
        factory: Callable[[EngineOptions], Engine] = getattr(importlib.import_module(module), function)
    except ImportError as e:  # the engine's SDK
        raise ConfigError(f"engine '{name}' needs the '{e.name}' package: pip install {e.name}") from None
    return factory(options)


@dataclass(frozen=True)
class EngineChoice:
    """What a configuration will run, known before anything is launched or called.

    Attributes:
        name: the engine name (aliases resolved).
        spec: its row.
        model: the model name results report.
        completion: True for completion mode, False for chat mode.
        constrain_output: whether answers are asked for constrained to a JSON schema.
        server: the server that judges: ``base_url``, else the ``worker_addrs``
            (comma-separated), else a hosted API's default URL; None for workers icrm
            launches itself (their port changes every run).
    """

    name: str
    spec: EngineSpec
    model: str | None
    completion: bool
    constrain_output: bool
    server: str | None


def choose_engine(name: str, model: str | None = None, *, completion: bool | None = None,
                  constrain_output: bool | None = None, base_url: str | None = None,
                  worker_addrs: Sequence[str] | None = None, prefers_completion: bool = False) -> EngineChoice:
    """Resolve what an engine configuration runs (see `EngineChoice`).

    Args:
        name: an engine name or alias.
        model, base_url, worker_addrs: as `create_engine`.
        completion: True / False, or None for the engine's default — completion mode
            where the engine has it and `prefers_completion` (the ``logprob`` method),
            else the engine's own default.
        constrain_output: True / False, or None for the engine's default.

    Raises:
        ConfigError: an unknown engine name, listing the known ones.
    """
    spec = ENGINES.get(name)
    if completion is None:
        completion = True if prefers_completion and spec.has_completion else spec.default_completion
    server = base_url or (",".join(worker_addrs) if worker_addrs else None) or (None if spec.local else spec.base_url)
    return EngineChoice(ENGINES.canonical(name), spec, spec.reported_model(model), completion,
                        spec.constrain_by_default if constrain_output is None else constrain_output, server)


def resolve_api_key(name: str, api_key: str | None) -> str | None:
    """The key `create_engine` would use for engine `name`: `api_key`, else the
    vendor's variable (None for keyless engines)."""
    spec = ENGINES.get(name) if name in ENGINES else None
    if spec is None or spec.key_env is None:
        return api_key
    return api_key or os.environ.get(spec.key_env) or None
