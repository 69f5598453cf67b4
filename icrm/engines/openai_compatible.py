"""The engine for every OpenAI-compatible server, through the official `openai` SDK.

Hosted APIs (openai, together, mistral, ...) and local workers (llama.cpp, vLLM, SGLang)
all speak ``/v1/completions`` and ``/v1/chat/completions``; only the base URL, the key
and how structured output is requested differ.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any, Literal

import openai

from ..errors import (
    EngineConnectionError,
    EngineError,
    EngineStatusError,
    EngineTimeoutError,
)
from .base import DEFAULT_TIMEOUT_S, Engine, GenerationRequest, GenerationResult, Usage, elapsed_since
from .worker import Worker

__all__ = ["OpenAICompatibleEngine", "StructuredOutput"]

logger = logging.getLogger(__name__)

# How a server is asked for schema-constrained JSON:
# "json_schema": the OpenAI standard response_format (OpenAI, vLLM, SGLang);
# "json_object_schema": llama-cpp-python's {"type": "json_object", "schema": ...}, which it
#   enforces in chat mode (its json_schema type answers HTTP 500; DESIGN.md).
StructuredOutput = Literal["json_schema", "json_object_schema"]

# Generation kwargs the SDK's create() takes by name; any other (top_k, min_p, grammar,
# repetition_penalty, ...) goes in extra_body, where servers like vLLM read it.
_SDK_PARAMS = frozenset({
    "temperature", "top_p", "max_tokens", "stop", "n", "seed", "logprobs", "top_logprobs",
    "presence_penalty", "frequency_penalty", "logit_bias", "user", "response_format",
})


class OpenAICompatibleEngine(Engine):
    """Talks to one or more OpenAI-compatible servers.

    Args:
        name: registry name, reported in results.
        model: model name sent with each request.
        base_urls: one base URL per server (``.../v1``); requests go to the server with
            the fewest requests in flight.
        api_key: the key sent as a bearer token (local servers accept any).
        completion: True for completion mode, False for chat mode.
        structured_output: how to ask for JSON constrained to a schema, or None when
            this server cannot.
        workers: workers this engine started and stops on `aclose()`.
        timeout_s: per-request timeout in seconds.
        max_retries: retries the SDK makes on connection errors, 429 and 5xx.
    """

    def __init__(
        self,
        name: str,
        model: str,
        *,
        base_urls: Sequence[str],
        api_key: str,
        completion: bool,
        structured_output: StructuredOutput | None = "json_schema",
        workers: Sequence[Worker] = (),
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_retries: int = 2,
    ) -> None:
        self.name = name
        self.model = model
        self.completion = completion
        self.structured_output = structured_output
        self.json_schema_supported = structured_output is not None
        self.workers = list(workers)
        self._clients = [
            openai.AsyncOpenAI(base_url=url, api_key=api_key, timeout=timeout_s, max_retries=max_retries)
            for url in base_urls
        ]
        self._in_flight = [0] * len(self._clients)

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """Send one request to the least busy server.

        Raises:
            EngineConnectionError / EngineTimeoutError: the server could not be reached
                or did not answer in time (after a dead worker check).
            EngineStatusError: the server answered an HTTP error.
            EngineError: the response had no choices.
        """
        index = min(range(len(self._clients)), key=self._in_flight.__getitem__)
        client = self._clients[index]
        body: dict[str, Any] = {"model": self.model}
        extra_body: dict[str, Any] = {}
        for key, value in request.kwargs.items():
            (body if key in _SDK_PARAMS else extra_body)[key] = value
        if request.json_schema is not None and self.structured_output is not None:
            extra_body["response_format"] = _response_format(self.structured_output, request.json_schema)
        if extra_body:
            body["extra_body"] = extra_body
        self._in_flight[index] += 1
        start = time.perf_counter()
        try:
            if request.prompt is not None:
                response = await client.completions.create(prompt=request.prompt, **body)
                texts = [c.text for c in response.choices]
            else:
                response = await client.chat.completions.create(messages=request.messages, **body)
                texts = [c.message.content or "" for c in response.choices]
        except openai.OpenAIError as e:
            self._check_workers()
            raise _map_openai_error(e, self.name) from e
        finally:
            self._in_flight[index] -= 1
        if not texts:
            raise EngineError(f"{self.name} returned no choices for model {self.model!r}")
        return GenerationResult(
            texts=tuple(texts),
            finish_reasons=tuple(c.finish_reason for c in response.choices),
            usage=_usage(response.usage),
            latency_s=elapsed_since(start),
            engine=self.name,
            model=self.model,
        )

    async def aclose(self) -> None:
        """Close the HTTP clients and stop the workers this engine started."""
        for client in self._clients:
            await client.close()
        for worker in self.workers:
            worker.close()

    def _check_workers(self) -> None:
        # A failed request to a dead worker should say so, with its log, not "connection refused".
        for worker in self.workers:
            worker.check_alive()


def _response_format(kind: StructuredOutput, schema: dict[str, Any]) -> dict[str, Any]:
    if kind == "json_object_schema":
        return {"type": "json_object", "schema": schema}
    return {"type": "json_schema", "json_schema": {"name": "feedback", "schema": schema, "strict": True}}


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    details = getattr(usage, "prompt_tokens_details", None)
    return Usage(
        prompt_tokens=usage.prompt_tokens or 0,
        completion_tokens=usage.completion_tokens or 0,
        cached_tokens=getattr(details, "cached_tokens", None),
    )


def _map_openai_error(error: openai.OpenAIError, engine: str) -> EngineError:
    """Map an `openai` SDK exception into icrm's error tree (never includes the key)."""
    if isinstance(error, openai.APITimeoutError):
        return EngineTimeoutError(f"{engine}: the request timed out")
    if isinstance(error, openai.APIConnectionError):
        return EngineConnectionError(f"{engine}: cannot connect to the server ({error})")
    if isinstance(error, openai.APIStatusError):
        return EngineStatusError(
            f"{engine}: the server answered HTTP {error.status_code}: {error.message}",
            status_code=error.status_code,
            body=error.body,
        )
    return EngineError(f"{engine}: {type(error).__name__}: {error}")
