"""The mock server's FastAPI app: OpenAI completions and chat, Anthropic messages.

Bodies follow the official SDKs' types (integer ``created``, ``object``
``text_completion`` / ``chat.completion``, ``finish_reason``), so the real `openai` and
`anthropic` clients parse them. Nothing matched is an empty 200 (inference-mock's
behaviour), or with ``strict: true`` a loud 404 quoting the prompt; a request without
``prompt`` / ``messages`` is a 400 naming the field, never a 500.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import json
import logging
import time
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from .config import MockConfig, MockRule, RuleBook

__all__ = ["create_mock_app"]

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "mock"
SYSTEM_FINGERPRINT = "fp_icrm_mock"  # inference-mock's answers carry one
PROMPT_QUOTE_CHARS = 200
DEBUG_CHARS = 4000  # of each request / response body logged with debug: true
REQUEST_LOG_MAX = 10_000


class _RawBody(Exception):
    """A rule's exact body, sent as it is."""

    def __init__(self, rule: MockRule) -> None:
        super().__init__(rule.body)
        self.rule = rule


class _RequestError(Exception):
    """A request the mock refuses: becomes an error response of the right dialect."""

    def __init__(self, status: int, message: str, kind: str, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.param = status, message, kind, param
        self.headers = headers or {}


def create_mock_app(config: MockConfig) -> FastAPI:
    """Build the app for `config`. Its state (rules, counters, request log) is its own.

    Endpoints: ``POST /v1/completions``, ``POST /v1/chat/completions`` (``stream``
    supported; both also under Azure's ``/openai/deployments/{name}/``),
    ``POST /v1/messages``, ``GET /v1/models``, ``GET /health``,
    ``GET /mock/requests`` (the last 10,000 requests received, oldest first: path,
    query, headers, body) and
    ``DELETE /mock/requests`` (clear that log).
    """
    app = FastAPI(title="icrm mock LLM server")
    rules = RuleBook(config.matches)
    # The newest requests only, so a long benchmark run cannot exhaust memory.
    received: collections.deque[dict[str, Any]] = collections.deque(maxlen=REQUEST_LOG_MAX)
    ids = itertools.count(1)
    models = sorted({DEFAULT_MODEL, *(r.model for r in config.matches if r.model)})

    async def read_body(request: Request) -> dict[str, Any]:
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise _RequestError(400, "the request body is not valid JSON", "invalid_request_error") from None
        if not isinstance(body, dict):
            raise _RequestError(400, "the request body must be a JSON object", "invalid_request_error")
        received.append({"path": request.url.path, "query": dict(request.query_params),
                         "headers": dict(request.headers), "body": body, "time": time.time()})
        if config.debug:
            logger.info("request %s %s", request.url.path, json.dumps(body, ensure_ascii=False)[:DEBUG_CHARS])
        return body

    def respond(payload: dict[str, Any], headers: dict[str, str] | None) -> JSONResponse:
        if config.debug:
            logger.info("response %s", json.dumps(payload, ensure_ascii=False)[:DEBUG_CHARS])
        return JSONResponse(payload, headers=headers)

    def finish(rule: MockRule | None, text: str, stop: Any, max_tokens: Any) -> tuple[str, str]:
        text, reason = _finish(text, stop, max_tokens) if config.strict else (text, "stop")
        return text, (rule.finish_reason if rule is not None and rule.finish_reason else reason)

    async def answer(prompt: str, body: dict[str, Any]) -> tuple[MockRule | None, str]:
        rule = rules.match(prompt, body.get("model"))
        if rule is None:
            if not config.strict:  # inference-mock answers an empty completion
                return None, ""
            raise _RequestError(404, f"no mock rule matches the prompt: {prompt[:PROMPT_QUOTE_CHARS]!r}", "not_found_error")
        if rule.delay_s:
            await asyncio.sleep(rule.delay_s)
        if rule.body is not None:
            raise _RawBody(rule)
        if rule.status >= 400:
            raise _RequestError(rule.status, rule.error or f"mock error {rule.status}", "mock_error", headers=rule.headers)
        return rule, rule.response or ""

    @app.exception_handler(_RequestError)
    async def request_error(request: Request, error: _RequestError) -> JSONResponse:
        if request.url.path.endswith("/messages"):  # Anthropic's error shape
            content: dict[str, Any] = {"type": "error", "error": {"type": error.kind, "message": error.message}}
        else:
            content = {"error": {"message": error.message, "type": error.kind, "param": error.param, "code": error.status}}
        return JSONResponse(content, status_code=error.status, headers=error.headers)

    @app.exception_handler(_RawBody)
    async def raw_body(request: Request, raw: _RawBody) -> Response:
        return Response(raw.rule.body, status_code=raw.rule.status, headers=raw.rule.headers,
                        media_type="application/json")

    @app.post("/tokenize")
    async def tokenize(request: Request) -> Response:
        """vLLM's tokenize route: the prompt's tokens counted as the mock counts usage
        (whitespace-separated words)."""
        body = await read_body(request)
        prompt = _require(body, "prompt", (str,))
        count = len(prompt.split())
        return respond({"count": count, "max_model_len": 8192, "tokens": list(range(count))}, None)

    # Azure OpenAI puts the deployment in the path: /openai/deployments/{name}/...
    @app.post("/v1/completions")
    @app.post("/openai/deployments/{deployment}/completions")
    async def completions(request: Request) -> Response:
        """OpenAI completions: each prompt (string or list) answered by the first matching rule."""
        body = await read_body(request)
        prompts = _require(body, "prompt", (str, list))
        if isinstance(prompts, str):
            prompts = [prompts]
        if not prompts or not all(isinstance(p, str) for p in prompts):
            raise _RequestError(400, "'prompt' must be a string or a non-empty list of strings", "invalid_request_error", "prompt")
        n = _n(body)
        choices, prompt_tokens, completion_tokens, rule = [], 0, 0, None
        for prompt in prompts:
            rule, text = await answer(prompt, body)
            text, reason = finish(rule, text, body.get("stop"), body.get("max_tokens"))
            for _ in range(n):  # "content" too: inference-mock's choices carry both
                choices.append({"index": len(choices), "text": text, "content": text, "finish_reason": reason,
                                "logprobs": _completion_logprobs(rule, body.get("logprobs"))})
            usage = _usage(rule, prompt, text)
            prompt_tokens += usage[0]
            completion_tokens += usage[1] * n
        payload = {
            "id": f"cmpl-mock-{next(ids)}", "object": "text_completion", "created": int(time.time()),
            "model": body.get("model") or DEFAULT_MODEL, "system_fingerprint": SYSTEM_FINGERPRINT, "choices": choices,
            "usage": _openai_usage(prompt_tokens, completion_tokens),
        }
        if body.get("stream"):
            return _stream_completion(payload)
        return respond(payload, rule.headers if rule else None)

    @app.post("/v1/chat/completions")
    @app.post("/openai/deployments/{deployment}/chat/completions")
    async def chat_completions(request: Request) -> Response:
        """OpenAI chat completions, matched on the message contents joined by newlines;
        ``stream: true`` answers with server-sent events."""
        body = await read_body(request)
        prompt = _messages_text(_require(body, "messages", list), "messages")
        rule, text = await answer(prompt, body)
        text, reason = finish(rule, text, body.get("stop"), body.get("max_tokens") or body.get("max_completion_tokens"))
        n = _n(body)
        prompt_tokens, completion_tokens = _usage(rule, prompt, text)
        payload = {
            "id": f"chatcmpl-mock-{next(ids)}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model") or DEFAULT_MODEL, "system_fingerprint": SYSTEM_FINGERPRINT,
            "choices": [{"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": reason,
                         "logprobs": _chat_logprobs(rule, body.get("logprobs"), body.get("top_logprobs"))}
                        for i in range(n)],
            "usage": _openai_usage(prompt_tokens, completion_tokens * n),
        }
        if body.get("stream"):
            return _stream_chat(payload)
        return respond(payload, rule.headers if rule else None)

    @app.post("/v1/messages")
    async def messages(request: Request) -> Response:
        """Anthropic Messages, matched on the system text and message contents;
        ``stream: true`` answers with the Messages API's server-sent events."""
        body = await read_body(request)
        system = body.get("system") or ""
        prompt = _messages_text(_require(body, "messages", list), "messages")
        if system:
            prompt = f"{_content_text(system, 'system')}\n{prompt}"
        rule, text = await answer(prompt, body)
        stops = body.get("stop_sequences") or []
        cut, reason = finish(rule, text, stops, body.get("max_tokens"))
        hit = next((s for s in stops if s in text), None) if cut != text and reason == "stop" else None
        prompt_tokens, completion_tokens = _usage(rule, prompt, cut)
        payload = {
            "id": f"msg_mock_{next(ids)}", "type": "message", "role": "assistant",
            "model": body.get("model") or DEFAULT_MODEL,
            "content": [{"type": "text", "text": cut}],
            "stop_reason": "max_tokens" if reason == "length" else ("stop_sequence" if hit else "end_turn"),
            "stop_sequence": hit,
            "usage": {"input_tokens": prompt_tokens, "output_tokens": completion_tokens},
        }
        if body.get("stream"):
            return _stream_message(payload)
        return respond(payload, rule.headers if rule else None)

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        """``mock`` and every model a rule names."""
        return {"object": "list", "data": [{"id": m, "object": "model", "created": 0, "owned_by": "icrm-mock"} for m in models]}

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Always ``{"status": "ok"}`` once serving."""
        return {"status": "ok"}

    @app.get("/mock/requests")
    async def list_requests() -> dict[str, Any]:
        """The last 10,000 requests received, oldest first."""
        return {"requests": list(received)}

    @app.delete("/mock/requests")
    async def clear_requests() -> dict[str, int]:
        """Empty the request log; returns how many were cleared."""
        count = len(received)
        received.clear()
        return {"cleared": count}

    return app


def _require(body: dict[str, Any], field: str, kinds: type | tuple[type, ...]) -> Any:
    if field not in body:
        raise _RequestError(400, f"missing required field '{field}'", "invalid_request_error", field)
    if not isinstance(body[field], kinds):
        raise _RequestError(400, f"field '{field}' has the wrong type", "invalid_request_error", field)
    return body[field]


def _n(body: dict[str, Any]) -> int:
    n = body.get("n") or 1
    if not isinstance(n, int) or n < 1:
        raise _RequestError(400, "'n' must be a whole number >= 1", "invalid_request_error", "n")
    return n


def _content_text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep the text ones
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    raise _RequestError(400, f"'{where}' content must be a string or a list of parts", "invalid_request_error", where)


def _messages_text(messages: list[Any], field: str) -> str:
    """Rules match on the message contents joined by newlines."""
    if not messages:
        raise _RequestError(400, f"'{field}' is empty", "invalid_request_error", field)
    if not all(isinstance(m, dict) and "content" in m for m in messages):
        raise _RequestError(400, f"every item of '{field}' needs 'content'", "invalid_request_error", field)
    return "\n".join(_content_text(m["content"], field) for m in messages)


def _finish(text: str, stop: Any, max_tokens: Any) -> tuple[str, str]:
    """Cut `text` at the first stop string, then to `max_tokens` whitespace tokens."""
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    cuts = [text.find(s) for s in stops if s and s in text]
    if cuts:
        text = text[: min(cuts)]
    if isinstance(max_tokens, int) and max_tokens >= 0 and len(text.split()) > max_tokens:
        return " ".join(text.split()[:max_tokens]), "length"
    return text, "stop"


def _top(position: dict[str, float], k: int) -> list[tuple[str, float]]:
    return sorted(position.items(), key=lambda kv: kv[1], reverse=True)[:max(k, 1)]


def _completion_logprobs(rule: MockRule | None, asked: Any) -> dict[str, Any] | None:
    """The completions API's logprobs object, when asked (``logprobs`` = how many top)."""
    if rule is None or rule.logprobs is None or asked in (None, False) or isinstance(asked, bool):
        return None
    tops = [_top(p, int(asked)) for p in rule.logprobs]
    tokens = [top[0][0] for top in tops]
    offsets = [sum(len(t) for t in tokens[:i]) for i in range(len(tokens))]
    return {"tokens": tokens, "token_logprobs": [top[0][1] for top in tops],
            "top_logprobs": [dict(top) for top in tops], "text_offset": offsets}


def _chat_logprobs(rule: MockRule | None, asked: Any, top_k: Any) -> dict[str, Any] | None:
    """The chat API's logprobs object, when asked (``logprobs: true``, ``top_logprobs`` k)."""
    if rule is None or rule.logprobs is None or not asked:
        return None

    def entry(token: str, logprob: float) -> dict[str, Any]:
        return {"token": token, "logprob": logprob, "bytes": list(token.encode())}

    content = []
    for position in rule.logprobs:
        top = _top(position, int(top_k or 0))
        content.append({**entry(*top[0]), "top_logprobs": [entry(t, lp) for t, lp in top] if top_k else []})
    return {"content": content}


def _usage(rule: MockRule | None, prompt: str, text: str) -> tuple[int, int]:
    """(prompt, completion) tokens: the rule's fixed counts, else a whitespace count."""
    if rule is not None and rule.usage is not None:
        return rule.usage.prompt_tokens, rule.usage.completion_tokens
    return len(prompt.split()), len(text.split())


def _openai_usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def _sse(events: Iterator[dict[str, Any]]) -> StreamingResponse:
    def lines() -> Iterator[str]:
        for event in events:
            yield f"data: {json.dumps(event)}\n\n"
        yield "data: [DONE]\n\n"
    return StreamingResponse(lines(), media_type="text/event-stream")


def _stream_chat(payload: dict[str, Any]) -> StreamingResponse:
    """One role chunk, one content chunk and one finish chunk per choice, then usage."""
    def events() -> Iterator[dict[str, Any]]:
        base = {"id": payload["id"], "object": "chat.completion.chunk", "created": payload["created"], "model": payload["model"]}
        for choice in payload["choices"]:
            i = choice["index"]
            for delta, finish in (({"role": "assistant", "content": ""}, None),
                                  ({"content": choice["message"]["content"]}, None), ({}, choice["finish_reason"])):
                yield {**base, "choices": [{"index": i, "delta": delta, "finish_reason": finish, "logprobs": None}]}
        yield {**base, "choices": [], "usage": payload["usage"]}
    return _sse(events())


def _stream_completion(payload: dict[str, Any]) -> StreamingResponse:
    def events() -> Iterator[dict[str, Any]]:
        base = {"id": payload["id"], "object": "text_completion", "created": payload["created"], "model": payload["model"]}
        for choice in payload["choices"]:
            yield {**base, "choices": [choice]}
    return _sse(events())


def _stream_message(payload: dict[str, Any]) -> StreamingResponse:
    """Anthropic's Messages stream: message_start, the text block (start, one delta,
    stop), message_delta with the stop reason and usage, message_stop."""
    text = payload["content"][0]["text"]
    usage = payload["usage"]
    events = [
        ("message_start", {"type": "message_start", "message": {**payload, "content": [], "stop_reason": None,
                                                                "stop_sequence": None,
                                                                "usage": {**usage, "output_tokens": 0}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("ping", {"type": "ping"}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": text}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": payload["stop_reason"],
                                                              "stop_sequence": payload["stop_sequence"]},
                           "usage": {"output_tokens": usage["output_tokens"]}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return StreamingResponse((f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events),
                             media_type="text/event-stream")
