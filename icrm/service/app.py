"""The reward service's app: rewards over HTTP for pipelines and RL trainers.

One `ICRM`, started with the app and shared by every request, serves three contracts:

- ``POST /service_output`` — Infernet's ``InfernetInput`` (``source`` 0 = CHAIN, 1 =
  OFFCHAIN; only OFFCHAIN is supported, as Infernet's LLM service did), with ``data``
  in icrm's item shape or the LLM service's ``{text, history, key, messageId}``.
- ``POST /v1/reward`` — icrm's batch contract: items in, one result per item out.
- ``POST /v1/reward/group`` — one group (k responses to one prompt) in, one reward per
  response out, by the group strategy (`icrm.groups`).
- ``POST /get_reward`` — OpenRLHF's remote reward model (``--reward.remote_url``).
- ``POST /slime/reward`` — slime's remote reward model (``--rm-url``).

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

from ..errors import ICRMError, InputError
from ..integrations.openrlhf import OpenRLHFRequest
from ..integrations.slime import SlimeRequest
from ..reward_model import ICRM
from ..rm_types import INDIVIDUAL
from ..safe_text import dumps
from .contracts import GenerationOverrides, GroupRequest, InfernetInput, LLMRequestData, OffchainItem, RewardRequest
from .limits import BodyLimit, Refused
from .options import ServiceOptions
from .serving import RewardService, server_fault

__all__ = ["create_app", "score_to_reward", "SafeJSONResponse"]

logger = logging.getLogger(__name__)

INFERNET_CHAIN = 0
_REASONS = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
            413: "Payload Too Large", 422: "Unprocessable Entity", 500: "Internal Server Error",
            502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


def score_to_reward(score: int) -> float:
    """Map an individual score (1–10) to a reward in [0, 1]: ``(score - 1) / 9``."""
    return INDIVIDUAL.reward(score)


class SafeJSONResponse(JSONResponse):
    """JSON that always encodes (`icrm.safe_text.dumps`): a lone surrogate in an answer
    or an id is sent escaped, never a 500."""

    def render(self, content: Any) -> bytes:
        return dumps(content).encode("utf-8")


def create_app(icrm_factory: Callable[[], ICRM], options: ServiceOptions) -> FastAPI:
    """Build the service app: routes, middleware and error handlers over a
    `RewardService`. `icrm_factory` runs at startup (launching any workers); the ICRM
    is closed at shutdown, after in-flight requests finish.

    Raises (at startup):
        ConfigError / EngineError: the ICRM could not be built.
    """
    state: dict[str, RewardService] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        judge = await asyncio.to_thread(icrm_factory)
        state["service"] = RewardService(judge, options)
        logger.info("reward service ready: %r", judge)
        try:
            yield
        finally:
            await judge.aclose()

    app = FastAPI(title="icrm reward service", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None,
                  default_response_class=SafeJSONResponse,
                  description="In-context reward model over HTTP: Infernet, icrm batch and OpenRLHF contracts.")
    app.add_middleware(BodyLimit, max_bytes=int(options.max_body_mb * 1024 * 1024),
                       too_large=lambda n: _error(413, f"the request body exceeds {n} bytes"))
    app.add_middleware(_RequestId)

    def service() -> RewardService:
        return state["service"]

    async def authorized(request: Request) -> None:
        if options.bearer_key is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {options.bearer_key}".encode()):
            raise Refused(401, "Unauthorized", "missing or wrong bearer key: send 'Authorization: Bearer <key>'",
                          {"WWW-Authenticate": "Bearer"})

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
        fault = server_fault(error.kind, _request_id(request))
        return _error(fault.status, fault.description, fault.headers, fault.name)

    @app.exception_handler(RecursionError)
    async def too_deep(request: Request, error: RecursionError) -> JSONResponse:
        return _error(400, "the request body is nested too deeply to read")

    @app.exception_handler(Exception)
    async def bug(request: Request, error: Exception) -> JSONResponse:
        logger.exception("request %s: bug while serving %s", _request_id(request), request.url.path)
        return _error(500, f"internal error; details in the server log under request id {_request_id(request)}")

    @app.post("/service_output", dependencies=[Depends(authorized)])
    async def service_output(job: InfernetInput, request: Request,
                             work: RewardService = Depends(service)) -> dict[str, Any]:
        """Infernet: judge OFFCHAIN ``data`` — an item (``conversation``, or
        ``conversation_A`` + ``conversation_B``) with optional overrides, or the LLM
        service's ``{text, history, key, messageId}`` — and return the feedback JSON
        (with ``key`` and ``messageId`` echoed). CHAIN input is refused with 400."""
        if job.source == INFERNET_CHAIN or isinstance(job.data, str):
            raise Refused(400, "Bad Request", "only OFFCHAIN input is supported (source 1 with a JSON object)")
        item, overrides, echo = _offchain_item(job.data)
        return {**await work.service_output(item, overrides, _request_id(request)), **echo}

    @app.post("/v1/reward", dependencies=[Depends(authorized)])
    async def reward(body: RewardRequest, request: Request, work: RewardService = Depends(service)) -> dict[str, Any]:
        """Judge a batch of items concurrently; one result per item, in order, with the
        summed token usage. A failed item has ``error`` and ``error_kind`` set; the
        others are unaffected. 503 / 502 when the judge answered none of them."""
        return await work.reward_batch(body, _request_id(request))

    @app.post("/v1/reward/group", dependencies=[Depends(authorized)])
    async def reward_group(body: GroupRequest, request: Request,
                           work: RewardService = Depends(service)) -> dict[str, Any]:
        """Judge one group — k ≥ 2 responses to one prompt (``conversations``, or
        ``prompt`` + ``responses``) — with the server's group strategy (or the
        request's ``group_strategy``): one reward per response in [0, 1] (None with
        its ``errors`` entry for a response the judge did not judge), the ranking, and
        every judgement. 422 a group that is not one; 503 / 502 when the judge answered
        none of its judgements."""
        return await work.reward_group(body, _request_id(request))

    @app.post("/get_reward", dependencies=[Depends(authorized)])
    async def get_reward(body: OpenRLHFRequest, request: Request,
                         work: RewardService = Depends(service)) -> dict[str, Any]:
        """OpenRLHF's remote reward model (`icrm.integrations.openrlhf`): one reward per
        query, in order; a judge that could not answer fails the request (503 / 502)."""
        return await work.get_reward(body, _request_id(request))

    @app.post("/slime/reward", dependencies=[Depends(authorized)])
    async def slime_reward(body: SlimeRequest, request: Request, reward_key: str | None = None,
                           work: RewardService = Depends(service)) -> Any:
        """slime's remote reward model (``--rm-type remote_rm --rm-url .../slime/reward``,
        `icrm.integrations.slime`): the sample's reward as a number, or with
        ``?reward_key=K`` ``{K: reward, "icrm_score", "icrm_failed"}`` for ``--reward-key
        K``; a judge that could not answer fails the request (503 / 502)."""
        return await work.slime_reward(body, reward_key, _request_id(request))

    @app.get("/health")
    async def health() -> JSONResponse:
        """200 once the judge is up: its workers alive, its server (``--base_url``)
        answering; 503 otherwise."""
        work = state.get("service")
        if work is None:
            return _error(503, "starting")
        try:
            return SafeJSONResponse(await work.health())
        except Refused as e:
            return _error(e.status, e.description, e.headers)

    @app.get("/v1/models", dependencies=[Depends(authorized)])
    async def models(work: RewardService = Depends(service)) -> dict[str, Any]:
        """The judge model, OpenAI-style."""
        judge = work.judge
        return {"object": "list", "data": [{"id": judge.model_name, "object": "model", "owned_by": "icrm",
                                            "engine": judge.engine.name, "rm_type": judge.rm_type.name}]}

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


def _describe(errors: Sequence[Any], prefix: tuple[str, ...] = ()) -> str:
    """The first validation problem as ``field.path: message``, without internals."""
    first = errors[0]
    loc = [*prefix, *(p for p in first["loc"] if p != "body")]
    field = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")
    message = "unknown field" if first["type"] == "extra_forbidden" else first["msg"].removeprefix("Value error, ")
    return f"{field or 'body'}: {message}"


def _error(status: int, description: str, headers: dict[str, str] | None = None,
           name: str | None = None) -> JSONResponse:
    return SafeJSONResponse({"code": str(status), "name": name or _REASONS.get(status, "Error"),
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
