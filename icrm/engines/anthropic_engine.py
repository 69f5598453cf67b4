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
from .answers import checked_texts, finish_reason, read_usage
from .base import DEFAULT_TIMEOUT_S, Engine, GenerationRequest, GenerationResult, Usage, elapsed_since
from .http import bounded_http_client, within
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
        timeout_s: seconds one request may take in all (connect, wait, body).
    """

    def __init__(self, name: str, model: str, *, client: anthropic.AsyncAnthropic,
                 timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.name = name
        self.timeout_s = timeout_s
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
        asked = request.kwargs.get("n") or 1
        responses = await asyncio.gather(*(self._create(body) for _ in range(asked)))
        usages = [getattr(r, "usage", None) for r in responses]
        counts = [read_usage(getattr(u, "input_tokens", None), getattr(u, "output_tokens", None),
                             getattr(u, "cache_read_input_tokens", None)) for u in usages]
        usage = Usage(prompt_tokens=sum(u.prompt_tokens for u in counts),
                      completion_tokens=sum(u.completion_tokens for u in counts),
                      cached_tokens=sum(u.cached_tokens or 0 for u in counts))
        return GenerationResult(
            texts=checked_texts([_text(r, self.name) for r in responses], asked, self.name),
            finish_reasons=tuple(finish_reason(getattr(r, "stop_reason", None)) for r in responses),
            usage=usage,
            latency_s=elapsed_since(start),
            engine=self.name,
            model=self.model,
        )

    async def _create(self, body: dict[str, Any]) -> Any:
        try:
            return await within(self.client.messages.create(**body), self.timeout_s, self.name)
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
    client = anthropic.AsyncAnthropic(api_key=options.api_key, base_url=root, timeout=options.timeout_s, max_retries=0,
                                      http_client=bounded_http_client(anthropic.DefaultAsyncHttpxClient))
    return AnthropicEngine(options.name, options.model, client=client, timeout_s=options.timeout_s)


def _text(response: Any, engine: str) -> str:
    """The text blocks of a Messages response, joined.

    Raises:
        EngineError: no content list, or a text block whose text is not a string.
    """
    content = getattr(response, "content", None)
    if not isinstance(content, list):
        raise EngineError(f"{engine}: malformed response from the server: no content list")
    texts = [getattr(block, "text", None) for block in content if getattr(block, "type", None) == "text"]
    if not all(isinstance(t, str) for t in texts):
        raise EngineError(f"{engine}: malformed response from the server: a text block without text")
    return "".join(texts)


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
