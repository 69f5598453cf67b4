"""The ``claude`` engine (alias ``anthropic``), through the official `anthropic` SDK.

Chat mode only. System turns go in the ``system`` parameter, never in ``messages``;
``stop`` becomes ``stop_sequences``; ``n > 1`` is ``n`` requests (the Messages API has no
``n``); ``seed`` is not part of the API and is dropped (logged at debug).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from typing import Any

import anthropic

from ..errors import ConfigError, EngineConnectionError, EngineError, EngineStatusError, EngineTimeoutError
from .base import Engine, GenerationRequest, GenerationResult, Usage, elapsed_since
from .openai_compatible import retry_after_seconds
from .registry import EngineOptions

__all__ = ["AnthropicEngine", "build", "map_anthropic_error"]

logger = logging.getLogger(__name__)

# Kwargs the Messages API takes under another name, or not at all.
_RENAMED = {"stop": "stop_sequences"}
_DROPPED = frozenset({"seed", "n", "logprobs", "top_logprobs"})


class AnthropicEngine(Engine):
    """Claude through the Messages API.

    Args:
        name: registry name reported in results (``claude``).
        model: the Claude model name.
        client: an `anthropic.AsyncAnthropic` built with ``max_retries=0``.
    """

    def __init__(self, name: str, model: str, *, client: anthropic.AsyncAnthropic) -> None:
        self.name = name
        self.model = model
        self.completion = False
        self.client = client
        self._sdk_params = frozenset(inspect.signature(client.messages.create).parameters)

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """Send ``n`` (default 1) Messages requests for `request`.

        Raises:
            EngineConnectionError / EngineTimeoutError / EngineStatusError / EngineError:
                as the SDK failed, mapped into icrm's tree.
        """
        if request.messages is None:
            raise EngineError(f"{self.name} has no completion mode")
        system = "\n\n".join(m["content"] for m in request.messages if m["role"] == "system")
        messages = [m for m in request.messages if m["role"] != "system"]
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        if system:
            body["system"] = system
        extra_body: dict[str, Any] = {}
        for key, value in request.kwargs.items():
            key = _RENAMED.get(key, key)
            if key == "extra_body":
                extra_body.update(value)
            elif key in _DROPPED:
                logger.debug("%s: the Messages API has no %r; not sent", self.name, key)
            elif value is not None:
                # Newer SDKs drop some API fields (temperature, top_p) from create()'s
                # signature; those still go to the API, in the body.
                (body if key in self._sdk_params else extra_body)[key] = value
        if extra_body:
            body["extra_body"] = extra_body
        start = time.perf_counter()
        responses = await asyncio.gather(*(self._create(body) for _ in range(request.kwargs.get("n") or 1)))
        usage = Usage(
            prompt_tokens=sum(r.usage.input_tokens for r in responses),
            completion_tokens=sum(r.usage.output_tokens for r in responses),
            cached_tokens=sum(getattr(r.usage, "cache_read_input_tokens", 0) or 0 for r in responses),
        )
        return GenerationResult(
            texts=tuple("".join(b.text for b in r.content if getattr(b, "type", None) == "text") for r in responses),
            finish_reasons=tuple(r.stop_reason for r in responses),
            usage=usage,
            latency_s=elapsed_since(start),
            engine=self.name,
            model=self.model,
        )

    async def _create(self, body: dict[str, Any]) -> Any:
        try:
            return await self.client.messages.create(**body)
        except (anthropic.AnthropicError, ValueError) as e:
            raise map_anthropic_error(e, self.name) from e

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.client.close()


def build(options: EngineOptions) -> AnthropicEngine:
    """Claude through the Messages API; ``base_url`` is the API root (a trailing ``/v1``
    is dropped).

    Raises:
        ConfigError: no model given.
    """
    if not options.model:
        raise ConfigError(f"engine '{options.name}' needs a model: pass --model_name")
    root = options.base_url.rstrip("/").removesuffix("/v1") if options.base_url else None
    client = anthropic.AsyncAnthropic(api_key=options.api_key, base_url=root, timeout=options.timeout_s, max_retries=0)
    return AnthropicEngine(options.name, options.model, client=client)


def map_anthropic_error(error: Exception, engine: str) -> EngineError:
    """Map an `anthropic` SDK exception into icrm's error tree (never includes the key)."""
    if isinstance(error, anthropic.APITimeoutError):
        return EngineTimeoutError(f"{engine}: the request timed out")
    if isinstance(error, anthropic.APIConnectionError):
        return EngineConnectionError(f"{engine}: cannot connect to the server ({error})")
    if isinstance(error, anthropic.APIStatusError):
        return EngineStatusError(
            f"{engine}: the server answered HTTP {error.status_code}: {error.message}",
            status_code=error.status_code,
            body=error.body,
            retry_after_s=retry_after_seconds(error.response.headers),
        )
    return EngineError(f"{engine}: malformed response or client error: {type(error).__name__}: {error}")
