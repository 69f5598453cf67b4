"""The reward service's app: rewards over HTTP for pipelines and RL trainers.

One `ICRM`, started with the app and shared by every request, serves three contracts:

- ``POST /service_output`` — Infernet's ``InfernetInput`` (``source`` 0 = CHAIN, 1 =
  OFFCHAIN; only OFFCHAIN is supported, as Infernet's LLM service did), with ``data``
  in icrm's item shape or the LLM service's ``{text, history, key, messageId}``.
- ``POST /v1/reward`` — icrm's batch contract: items in, one result per item out.
- ``POST /get_reward`` — OpenRLHF's remote reward model (``--reward.remote_url``).

Trust rules (DESIGN.md): a request is admitted or refused before any work (a refused
request sends nothing to the judge); a dead judge makes ``/health`` and every answer
503, never a plausible reward; an answer without a verdict is an error, or in
``/get_reward`` the documented ``failure_reward`` with a flag. Error bodies use
Infernet's shape ``{"code", "name", "description"}`` and carry no internals: a 5xx
names the request id (also the ``X-Request-ID`` header) under which the server log
holds the details.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..chat_templates import split_templated
from ..errors import ConfigError, EngineError, ICRMError, InputError
from ..feedback import JUDGEMENT_FIELDS, Feedback
from ..reward_model import ICRM
from ..rm_types import INDIVIDUAL
from .contracts import GenerationOverrides, InfernetInput, LLMRequestData, OffchainItem, OpenRLHFRequest, RewardRequest
from .limits import RETRY_AFTER_S, Admission, BodyLimit, Refused
from .options import ServiceOptions

__all__ = ["create_app", "score_to_reward", "split_query"]

logger = logging.getLogger(__name__)

INFERNET_CHAIN = 0
_REASONS = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
            413: "Payload Too Large", 422: "Unprocessable Entity", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


def score_to_reward(score: int) -> float:
    """Map an individual score (1–10) to a reward in [0, 1]: ``(score - 1) / 9``."""
    return INDIVIDUAL.reward(score)


def split_query(query: str, prompt: str) -> list[dict[str, str]]:
    """OpenRLHF's ``query`` (prompt + response) as a conversation. A prompt rendered by a
    common chat template (`icrm.chat_templates`: ChatML, Llama 3, Mistral, Gemma,
    DeepSeek) becomes its turns, without the template's special tokens (with no prompt, a
    templated query is split alone); a plain prompt is the user turn. The response is the query with its prompt prefix removed (the whole
    query when it does not start so)."""
    templated = split_templated(prompt or query, query)  # no prompt: the query's own turns
    if templated is not None:
        return templated
    response = query[len(prompt):] if prompt and query.startswith(prompt) else query
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


def create_app(icrm_factory: Callable[[], ICRM], options: ServiceOptions) -> FastAPI:
    """Build the service app. `icrm_factory` runs at startup (launching any workers);
    the ICRM is closed at shutdown, after in-flight requests finish.

    Raises (at startup):
        ConfigError / EngineError: the ICRM could not be built.
    """
    state: dict[str, Any] = {}
    admission = Admission(options.max_concurrency, options.max_queue)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state["icrm"] = await asyncio.to_thread(icrm_factory)
        logger.info("reward service ready: %r", state["icrm"])
        try:
            yield
        finally:
            await state["icrm"].aclose()

    app = FastAPI(title="icrm reward service", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None,
                  description="In-context reward model over HTTP: Infernet, icrm batch and OpenRLHF contracts.")
    app.add_middleware(BodyLimit, max_bytes=int(options.max_body_mb * 1024 * 1024),
                       too_large=lambda n: _error(413, f"the request body exceeds {n} bytes"))
    app.add_middleware(_RequestId)

    def icrm() -> ICRM:
        return state["icrm"]

    async def authorized(request: Request) -> None:
        if options.bearer_key is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {options.bearer_key}".encode()):
            raise Refused(401, "Unauthorized", "missing or wrong bearer key: send 'Authorization: Bearer <key>'",
                          {"WWW-Authenticate": "Bearer"})

    def judge_is_up(model: ICRM) -> None:
        try:
            for worker in getattr(model.engine, "workers", []):
                worker.check_alive()
        except EngineError as e:
            logger.error("the judge is down: %s", e)
            raise Refused(503, "Service Unavailable", "the judge is unavailable; retry later",
                          {"Retry-After": str(RETRY_AFTER_S)}) from None

    def shots_for(model: ICRM, overrides: GenerationOverrides) -> list[dict[str, Any]] | None:
        if overrides.num_shots is None:
            return None
        try:
            return model.sample_shots(overrides.num_shots)
        except ConfigError as e:  # the request's own option
            raise Refused(422, "Unprocessable Entity", f"num_shots: {e}") from None

    async def judge(model: ICRM, items: Sequence[dict[str, Any]], overrides: GenerationOverrides) -> list[Feedback]:
        """Admit ``len(items)`` judgements, then run them: nothing starts before admission."""
        judge_is_up(model)
        shots, kwargs = shots_for(model, overrides), overrides.kwargs()
        async with admission.admit(len(items)):
            work = asyncio.gather(*(admission.run(lambda item=item: model.ajudge_item(
                item, shots, kwargs, method=overrides.method, position=overrides.position)) for item in items))
            try:
                return await asyncio.wait_for(work, options.request_timeout_s)
            except asyncio.TimeoutError:
                raise Refused(504, "Gateway Timeout",
                              f"the judgement took longer than {options.request_timeout_s:g} s") from None

    @app.exception_handler(Refused)
    async def refused(request: Request, error: Refused) -> JSONResponse:
        if error.status >= 500:
            logger.warning("request %s: %d %s", _request_id(request), error.status, error.description)
        return _error(error.status, error.description, error.headers, error.name)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return _error(422, _describe(error.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return _error(error.status_code, str(error.detail))

    @app.exception_handler(ICRMError)
    async def icrm_error(request: Request, error: ICRMError) -> JSONResponse:
        if isinstance(error, InputError):
            return _error(400, str(error))
        logger.error("request %s: %s: %s", _request_id(request), type(error).__name__, error)
        fault = _server_fault(error.kind, _request_id(request))
        return _error(fault.status, fault.description, fault.headers, fault.name)

    @app.exception_handler(Exception)
    async def bug(request: Request, error: Exception) -> JSONResponse:
        logger.exception("request %s: bug while serving %s", _request_id(request), request.url.path)
        return _error(500, f"internal error; details in the server log under request id {_request_id(request)}")

    def fail_on_judge_faults(request: Request, feedbacks: Sequence[Feedback]) -> None:
        """A judge that could not answer is an error for the whole request, never a reward."""
        for index, feedback in enumerate(feedbacks):
            if feedback.error_kind not in (None, "input"):
                logger.error("request %s: item %d: %s", _request_id(request), index, feedback.error)
                raise _server_fault(feedback.error_kind, _request_id(request))

    @app.post("/service_output", dependencies=[Depends(authorized)])
    async def service_output(job: InfernetInput, request: Request, model: ICRM = Depends(icrm)) -> dict[str, Any]:
        """Infernet: judge OFFCHAIN ``data`` — an item (``conversation``, or
        ``conversation_A`` + ``conversation_B``) with optional overrides, or the LLM
        service's ``{text, history, key, messageId}`` — and return the feedback JSON
        (with ``key`` and ``messageId`` echoed). CHAIN input is refused with 400."""
        if job.source == INFERNET_CHAIN or isinstance(job.data, str):
            raise Refused(400, "Bad Request", "only OFFCHAIN input is supported (source 1 with a JSON object)")
        item, overrides, echo = _offchain_item(job.data)
        feedback = (await judge(model, [item], overrides))[0]
        fail_on_judge_faults(request, [feedback])
        if feedback.error:
            raise Refused(400, "Bad Request", feedback.error)
        if feedback.parse_error:
            logger.warning("request %s: no verdict (%s): %r", _request_id(request), feedback.parse_error,
                           feedback.raw_text[:2000])
            raise Refused(502, "Bad Gateway", f"the judge's answer held no verdict ({feedback.parse_error_reason}); "
                          f"request id {_request_id(request)}")
        return {**feedback.to_dict(), **echo}

    @app.post("/v1/reward", dependencies=[Depends(authorized)])
    async def reward(body: RewardRequest, model: ICRM = Depends(icrm)) -> dict[str, Any]:
        """Judge a batch of items concurrently; one result per item, in order, with the
        summed token usage. A failed item has ``error`` and ``error_kind`` set; the
        others are unaffected. 503 when the judge is down."""
        if body.rm_type is not None and body.rm_type != model.rm_type.name:
            raise Refused(400, "Bad Request", f"rm_type: this server judges {model.rm_type.name!r}, not {body.rm_type!r}")
        feedbacks = await judge(model, [item.inputs() for item in body.items], body)
        if all(f.error_kind == "engine_unavailable" for f in feedbacks):
            raise Refused(503, "Service Unavailable", "the judge is unavailable; retry later",
                          {"Retry-After": str(RETRY_AFTER_S)})
        verdict = model.rm_type.verdict_key
        usage = {"prompt_tokens": 0, "completion_tokens": 0}
        for f in feedbacks:
            if f.usage is not None:
                usage["prompt_tokens"] += f.usage.prompt_tokens
                usage["completion_tokens"] += f.usage.completion_tokens
        return {
            "results": [{"feedback": f.to_dict() if f.ok else None, verdict: getattr(f, verdict),
                         "reward": model.rm_type.feedback_reward(f),
                         "error": f.error or f.parse_error,
                         "error_kind": f.error_kind or ("parse" if f.parse_error else None),
                         **{k: v for k in JUDGEMENT_FIELDS if (v := getattr(f, k, None)) is not None}}
                        for f in feedbacks],
            "usage": usage,
        }

    @app.post("/get_reward", dependencies=[Depends(authorized)])
    async def get_reward(body: OpenRLHFRequest, request: Request, model: ICRM = Depends(icrm)) -> dict[str, Any]:
        """OpenRLHF's remote reward model: one reward per query, in order. Each query is
        split into prompt and response and judged in individual mode; reward =
        (score - 1) / 9, or (expected score - 1) / 9 with ``--method logprob``. A sample whose answer held no verdict (or that is not a
        judgeable conversation) gets ``failure_reward`` and ``icrm_failed`` 1.0; a judge
        that could not answer makes the request 503/502, never a reward. Every
        ``extra_logs`` value is a list of finite floats."""
        if not model.rm_type.single:
            raise Refused(400, "Bad Request", "get_reward needs a server started with --rm_type individual")
        prompts = body.prompts if body.prompts is not None else [""] * len(body.query)
        if len(prompts) != len(body.query):
            raise Refused(422, "Unprocessable Entity", f"prompts: {len(prompts)} prompts for {len(body.query)} queries")
        items = [{"conversation": split_query(q, p)} for q, p in zip(body.query, prompts)]
        feedbacks = await judge(model, items, GenerationOverrides()) if items else []
        fail_on_judge_faults(request, feedbacks)
        verdicts = [model.rm_type.verdict(f) if f.ok else None for f in feedbacks]
        judged = [model.rm_type.feedback_reward(f) for f in feedbacks]
        rewards = [options.failure_reward if r is None else r for r in judged]
        return {
            "rewards": rewards,
            "scores": rewards,
            "extra_logs": {
                "icrm_score": [0.0 if v is None else float(v) for v in verdicts],
                "icrm_failed": [0.0 if f.ok else 1.0 for f in feedbacks],
            },
        }

    @app.get("/health")
    async def health() -> JSONResponse:
        """200 once the ICRM is up and its workers answer; 503 otherwise."""
        model = state.get("icrm")
        if model is None:
            return _error(503, "starting")
        try:
            judge_is_up(model)
        except Refused as e:
            return _error(e.status, e.description, e.headers)
        return JSONResponse({"status": "ok", "model": model.model_name, "engine": model.engine.name,
                             "rm_type": model.rm_type.name})

    @app.get("/v1/models", dependencies=[Depends(authorized)])
    async def models(model: ICRM = Depends(icrm)) -> dict[str, Any]:
        """The judge model, OpenAI-style."""
        return {"object": "list", "data": [{"id": model.model_name, "object": "model", "owned_by": "icrm",
                                            "engine": model.engine.name, "rm_type": model.rm_type.name}]}

    @app.get("/openapi.json", dependencies=[Depends(authorized)], include_in_schema=False)
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", dependencies=[Depends(authorized)], include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=app.title)

    @app.get("/redoc", dependencies=[Depends(authorized)], include_in_schema=False)
    async def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title=app.title)

    return app


def _offchain_item(data: dict[str, Any]) -> tuple[dict[str, Any], GenerationOverrides, dict[str, Any]]:
    """OFFCHAIN ``data`` as (item, overrides, fields to echo). 422 naming the fields."""
    shape: type[BaseModel] = LLMRequestData if "text" in data else OffchainItem
    try:
        parsed = shape.model_validate(data)
    except ValidationError as e:
        hint = ("" if shape is LLMRequestData else
                "; send data.conversation (or conversation_A and conversation_B), or data.text with data.history")
        raise Refused(422, "Unprocessable Entity", _describe(e.errors(), prefix=("data",)) + hint) from None
    if isinstance(parsed, OffchainItem):
        if not parsed.inputs():
            raise Refused(422, "Unprocessable Entity", "data: send data.conversation (or conversation_A and "
                          "conversation_B), or the LLM request fields data.text and data.history")
        return parsed.inputs(), parsed, {}
    turns = []
    for index, entry in enumerate(parsed.history):
        if set(entry) not in ({"player"}, {"bot"}):
            raise Refused(422, "Unprocessable Entity",
                          f"data.history[{index}]: each turn is {{\"player\": text}} or {{\"bot\": text}}")
        role, text = ("user", entry["player"]) if "player" in entry else ("assistant", entry["bot"])
        turns.append({"role": role, "content": text})
    if not turns or turns[-1]["role"] != "user":
        raise Refused(422, "Unprocessable Entity",
                      "data.history: must end with the player's message that data.text answers "
                      "([..., {\"player\": \"<the question>\"}]); the judge needs the query to judge the text")
    echo = {k: v for k in ("key", "messageId") if (v := getattr(parsed, k)) is not None}
    return {"conversation": [*turns, {"role": "assistant", "content": parsed.text}]}, parsed, echo


def _server_fault(kind: str | None, request_id: str) -> Refused:
    """The answer for a fault on the server's side: 503 the judge is unavailable, 502
    it answered an error, 500 anything else; no internals, the request id instead."""
    if kind == "engine_unavailable":
        return Refused(503, "Service Unavailable", f"the judge is unavailable; retry later (request id {request_id})",
                       {"Retry-After": str(RETRY_AFTER_S)})
    if kind in ("engine", "engine_status"):
        return Refused(502, "Bad Gateway",
                       f"the judge failed to answer; details in the server log under request id {request_id}")
    return Refused(500, "Internal Server Error", f"internal error; details in the server log under request id {request_id}")


def _describe(errors: Sequence[Any], prefix: tuple[str, ...] = ()) -> str:
    """The first validation problem as ``field.path: message``, without internals."""
    first = errors[0]
    loc = [*prefix, *(p for p in first["loc"] if p != "body")]
    field = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")
    message = "unknown field" if first["type"] == "extra_forbidden" else first["msg"]
    return f"{field or 'body'}: {message}"


def _error(status: int, description: str, headers: dict[str, str] | None = None,
           name: str | None = None) -> JSONResponse:
    return JSONResponse({"code": str(status), "name": name or _REASONS.get(status, "Error"),
                         "description": description}, status_code=status, headers=headers)


def _request_id(request: Request) -> str:
    return request.scope.get("state", {}).get("request_id", "-")


class _RequestId:
    """ASGI middleware: a short id per request, in ``X-Request-ID`` and the server log."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex[:12]
        scope.setdefault("state", {})["request_id"] = request_id

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        await self.app(scope, receive, send_with_id)
