"""The reward service (`icrm serve`): rewards over HTTP for pipelines and RL trainers.

One app serves three contracts from one `ICRM` started at startup and shared by every
request:

- ``POST /service_output`` — Infernet's ``InfernetInput`` (``source`` 0 = CHAIN, 1 =
  OFFCHAIN; only OFFCHAIN is supported, as Infernet's LLM service did); errors in
  Infernet's body ``{"code": "<status>", "name": ..., "description": ...}``, which every
  endpoint here uses.
- ``POST /v1/reward`` — icrm's batch contract: items in, one result per item out.
- ``POST /get_reward`` — OpenRLHF's remote reward model contract (``--remote_rm_url``):
  ``{"query": [...], "prompts": [...], "labels": [...]}`` in, ``{"rewards": [...]}`` out.

Limits: a body cap (413), a per-request timeout (504), bounded concurrency with a
waiting queue (503 + ``Retry-After`` when full), an optional bearer key (401), and
validation errors as 422 naming the field. A failing request never stops the server;
shutdown drains in-flight requests, then stops the workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from .errors import ConfigError, EngineError, ICRMError, InputError
from .feedback import Feedback
from .reward_model import ICRM

__all__ = ["ServiceOptions", "create_app", "score_to_reward"]

logger = logging.getLogger(__name__)

INFERNET_CHAIN, INFERNET_OFFCHAIN = 0, 1
RETRY_AFTER_S = 1


class ServiceOptions(BaseModel):
    """How the service runs (the ICRM's own arguments are passed separately).

    Every field is also an ``icrm serve`` flag and an ``ICRM_<FIELD>`` variable.
    """

    model_config = ConfigDict(frozen=True)

    api_key: str | None = None
    """When set, every request but ``GET /health`` needs ``Authorization: Bearer <key>``."""
    max_concurrency: int = Field(default=8, ge=1)
    """Judgements running at once (a ``/v1/reward`` batch counts each item)."""
    max_queue: int = Field(default=64, ge=0)
    """Requests allowed to wait for a slot; beyond it the answer is 503 + Retry-After."""
    max_body_mb: float = Field(default=8.0, gt=0)
    """Largest request body in MiB (413 beyond)."""
    request_timeout_s: float = Field(default=600.0, gt=0)
    """Seconds a request may take (504 beyond)."""
    failure_reward: float = 0.0
    """``/get_reward``: the reward for a sample that could not be judged (it is also
    listed in ``extra_logs``)."""


class Message(BaseModel):
    """One OpenAI-style turn."""

    role: str
    """``system``, ``user`` or ``assistant``."""
    content: str | list[dict[str, Any]]
    """The text (or text parts)."""


class GenerationOverrides(BaseModel):
    """Per-request generation kwargs (all optional)."""

    model_config = ConfigDict(extra="forbid")

    temperature: float | None = None
    """Sampling temperature."""
    top_p: float | None = None
    """Nucleus sampling mass."""
    max_tokens: int | None = None
    """Upper bound on generated tokens."""
    seed: int | None = None
    """Sampling seed."""
    num_shots: int | None = None
    """Shots to show for this request (default: the server's)."""

    def kwargs(self) -> dict[str, Any]:
        """The generation kwargs that were given."""
        names = GenerationOverrides.model_fields.keys() - {"num_shots"}
        return {k: v for k in names if (v := getattr(self, k)) is not None}


class Item(BaseModel):
    """One thing to judge: ``conversation``, or ``conversation_A`` and ``conversation_B``."""

    model_config = ConfigDict(extra="forbid")

    conversation: list[Message] | None = None
    """Individual mode: the conversation whose last (assistant) turn is judged."""
    conversation_A: list[Message] | None = None
    """Pairwise mode: the first conversation."""
    conversation_B: list[Message] | None = None
    """Pairwise mode: the second conversation (same history and query as A)."""

    def inputs(self) -> dict[str, Any]:
        """The conversations that were given, as plain message lists."""
        return {k: [m.model_dump() for m in v] for k in ("conversation", "conversation_A", "conversation_B")
                if (v := getattr(self, k)) is not None}


class OffchainData(Item, GenerationOverrides):
    """Infernet OFFCHAIN ``data``: an item plus optional generation overrides."""


class InfernetInput(BaseModel):
    """Infernet's job input: ``source`` 0 (CHAIN) or 1 (OFFCHAIN) and its ``data``."""

    source: Literal[0, 1]
    """0 = CHAIN (hex-encoded data; not supported), 1 = OFFCHAIN (a JSON object)."""
    data: OffchainData | str
    """The job data."""


class RewardRequest(GenerationOverrides):
    """``POST /v1/reward``."""

    rm_type: Literal["individual", "pairwise"] | None = None
    """Must match the server's rm_type when given."""
    items: list[Item] = Field(min_length=1)
    """What to judge; run concurrently."""


class OpenRLHFRequest(BaseModel):
    """OpenRLHF's remote reward request (``openrlhf/utils/remote_rm_utils.py``)."""

    query: list[str]
    """Prompt + response texts, one per sample."""
    prompts: list[str] | None = None
    """The prompt texts; the response is ``query`` with its prompt prefix removed."""
    labels: list[Any] | None = None
    """Reference labels (unused by an in-context reward model)."""


class ServiceError(Exception):
    """An error answer in Infernet's shape."""

    def __init__(self, status: int, name: str, description: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.status, self.name, self.description, self.headers = status, name, description, headers or {}


def score_to_reward(score: int) -> float:
    """Map an individual score (1–10) to a reward in [0, 1]: ``(score - 1) / 9``."""
    return (score - 1) / 9


class _Admission:
    """Bounded concurrency with a bounded queue: a slot, a place in line, or 503."""

    def __init__(self, max_concurrency: int, max_queue: int) -> None:
        self._slots = asyncio.Semaphore(max_concurrency)
        self._capacity = max_concurrency + max_queue
        self._admitted = 0

    @contextlib.asynccontextmanager
    async def admit(self, cost: int = 1) -> AsyncIterator[None]:
        if cost > self._capacity:
            raise ServiceError(422, "Unprocessable Entity",
                               f"items: {cost} items exceed this server's capacity of {self._capacity} per request")
        if self._admitted + cost > self._capacity:
            raise ServiceError(503, "Service Unavailable", "the server is at capacity; retry later",
                               {"Retry-After": str(RETRY_AFTER_S)})
        self._admitted += cost
        try:
            yield
        finally:
            self._admitted -= cost

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._slots:
            yield


def create_app(icrm_factory: Callable[[], ICRM], options: ServiceOptions) -> FastAPI:
    """Build the service app. `icrm_factory` runs at startup (launching any workers);
    the ICRM is closed at shutdown, after in-flight requests finish.

    Raises (at startup):
        ConfigError / EngineError: the ICRM could not be built.
    """
    state: dict[str, Any] = {}
    admission = _Admission(options.max_concurrency, options.max_queue)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state["icrm"] = await asyncio.to_thread(icrm_factory)
        logger.info("reward service ready: %r", state["icrm"])
        try:
            yield
        finally:
            await state["icrm"].aclose()

    app = FastAPI(title="icrm reward service", lifespan=lifespan,
                  description="In-context reward model over HTTP: Infernet, icrm batch and OpenRLHF contracts.")
    app.add_middleware(_BodyLimit, max_bytes=int(options.max_body_mb * 1024 * 1024))

    def icrm() -> ICRM:
        return state["icrm"]

    async def authorized(request: Request) -> None:
        if options.api_key is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {options.api_key}".encode()):
            raise ServiceError(401, "Unauthorized", "missing or wrong bearer key: send 'Authorization: Bearer <key>'",
                               {"WWW-Authenticate": "Bearer"})

    async def run(work: Awaitable[Any], cost: int = 1) -> Any:
        async with admission.admit(cost):
            try:
                return await asyncio.wait_for(work, options.request_timeout_s)
            except asyncio.TimeoutError:
                raise ServiceError(504, "Gateway Timeout",
                                   f"the judgement took longer than {options.request_timeout_s:g} s") from None

    async def judge_one(model: ICRM, item: dict[str, Any], overrides: GenerationOverrides) -> Feedback:
        shots = None if overrides.num_shots is None else model.sample_shots(overrides.num_shots)
        async with admission.slot():
            return await model.ajudge_item(item, shots, overrides.kwargs())

    @app.exception_handler(ServiceError)
    async def service_error(request: Request, error: ServiceError) -> JSONResponse:
        return _infernet_error(error.status, error.name, error.description, error.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        first = error.errors()[0]
        field = ".".join(str(p) for p in first["loc"] if p != "body")
        return _infernet_error(422, "Unprocessable Entity", f"{field or 'body'}: {first['msg']}")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        return _infernet_error(error.status_code, _REASONS.get(error.status_code, "Error"), str(error.detail))

    @app.exception_handler(ICRMError)
    async def icrm_error(request: Request, error: ICRMError) -> JSONResponse:
        status = 400 if isinstance(error, (InputError, ConfigError)) else 502
        return _infernet_error(status, "Bad Request" if status == 400 else "Bad Gateway", str(error))

    @app.exception_handler(Exception)
    async def bug(request: Request, error: Exception) -> JSONResponse:
        logger.exception("bug while serving %s", request.url.path)
        return _infernet_error(500, "Internal Server Error", f"{type(error).__name__}: {error}")

    @app.post("/service_output", dependencies=[Depends(authorized)])
    async def service_output(job: InfernetInput, model: ICRM = Depends(icrm)) -> dict[str, Any]:
        """Infernet: judge OFFCHAIN ``data`` (an item plus optional overrides); returns the
        feedback JSON. CHAIN input is refused with 400."""
        if job.source == INFERNET_CHAIN or isinstance(job.data, str):
            raise ServiceError(400, "Bad Request", "only OFFCHAIN input is supported (source 1 with a JSON object)")
        feedback = await run(judge_one(model, job.data.inputs(), job.data))
        if feedback.error:  # "<ErrorClass>: message", as ICRM.ajudge_item records it
            if feedback.error.startswith(InputError.__name__):
                raise ServiceError(400, "Bad Request", feedback.error)
            raise ServiceError(502, "Bad Gateway", feedback.error)
        if feedback.parse_error:
            raise ServiceError(502, "Bad Gateway", f"the model's answer held no valid feedback: {feedback.parse_error}; "
                               f"raw answer: {feedback.raw_text[:500]!r}")
        return feedback.to_dict()

    @app.post("/v1/reward", dependencies=[Depends(authorized)])
    async def reward(request: RewardRequest, model: ICRM = Depends(icrm)) -> dict[str, Any]:
        """Judge a batch of items concurrently; one result per item, in order, with the
        summed token usage. A failed item has ``error`` set; the others are unaffected."""
        if request.rm_type is not None and request.rm_type != model.rm_type:
            raise ServiceError(400, "Bad Request", f"rm_type: this server judges {model.rm_type!r}, not {request.rm_type!r}")
        feedbacks = await run(asyncio.gather(*(judge_one(model, item.inputs(), request) for item in request.items)),
                              cost=len(request.items))
        verdict = "score" if model.rm_type == "individual" else "choice"
        usage = {"prompt_tokens": 0, "completion_tokens": 0}
        for f in feedbacks:
            if f.usage is not None:
                usage["prompt_tokens"] += f.usage.prompt_tokens
                usage["completion_tokens"] += f.usage.completion_tokens
        return {
            "results": [{"feedback": f.to_dict() if f.ok else None, verdict: getattr(f, verdict),
                         "error": f.error or f.parse_error} for f in feedbacks],
            "usage": usage,
        }

    @app.post("/get_reward", dependencies=[Depends(authorized)])
    async def get_reward(request: OpenRLHFRequest, model: ICRM = Depends(icrm)) -> dict[str, Any]:
        """OpenRLHF's remote reward model: one float per query, in order. Each query is
        split into prompt and response (``query`` minus its ``prompts`` prefix) and
        judged in individual mode; reward = (score - 1) / 9, or ``failure_reward``."""
        if model.rm_type != "individual":
            raise ServiceError(400, "Bad Request", "get_reward needs a server started with --rm_type individual")
        prompts = request.prompts or [""] * len(request.query)
        if len(prompts) != len(request.query):
            raise ServiceError(422, "Unprocessable Entity",
                               f"prompts: {len(prompts)} prompts for {len(request.query)} queries")
        items = [{"conversation": [{"role": "user", "content": p},
                                   {"role": "assistant", "content": q[len(p):] if q.startswith(p) else q}]}
                 for q, p in zip(request.query, prompts)]
        feedbacks = await run(asyncio.gather(*(judge_one(model, item, GenerationOverrides()) for item in items)),
                              cost=len(items))
        rewards = [score_to_reward(f.score) if f.ok and f.score is not None else options.failure_reward for f in feedbacks]
        return {
            "rewards": rewards,
            "scores": rewards,
            "extra_logs": {
                "icrm_score": [float(f.score) if f.score is not None else float("nan") for f in feedbacks],
                "icrm_failed": [0.0 if f.ok else 1.0 for f in feedbacks],
            },
        }

    @app.get("/health")
    async def health() -> JSONResponse:
        """200 once the ICRM is up and its workers answer; 503 otherwise."""
        model = state.get("icrm")
        if model is None:
            return _infernet_error(503, "Service Unavailable", "starting")
        try:
            for worker in getattr(model.engine, "workers", []):
                worker.check_alive()
        except EngineError as e:
            return _infernet_error(503, "Service Unavailable", str(e).partition("\n")[0])
        return JSONResponse({"status": "ok", "model": model.model_name, "engine": model.engine.name,
                             "rm_type": model.rm_type})

    @app.get("/v1/models", dependencies=[Depends(authorized)])
    async def models(model: ICRM = Depends(icrm)) -> dict[str, Any]:
        """The judge model, OpenAI-style."""
        return {"object": "list", "data": [{"id": model.model_name, "object": "model", "owned_by": "icrm",
                                            "engine": model.engine.name, "rm_type": model.rm_type}]}

    return app


_REASONS = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
            413: "Payload Too Large", 422: "Unprocessable Entity", 500: "Internal Server Error"}


def _infernet_error(status: int, name: str, description: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"code": str(status), "name": name, "description": description},
                        status_code=status, headers=headers)


class _BodyLimit:
    """ASGI middleware: 413 for a body over `max_bytes` (declared or streamed)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        too_large = _infernet_error(413, "Payload Too Large", f"the request body exceeds {self.max_bytes} bytes")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await too_large(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise _BodyTooLarge
            return message

        try:
            await self.app(scope, limited_receive, send)
        except _BodyTooLarge:
            await too_large(scope, receive, send)


class _BodyTooLarge(Exception):
    pass


class ServeConfig(BaseModel):
    """Everything ``icrm serve`` takes: the ICRM's arguments and the service's options.

    Each field comes from its flag, else the ``ICRM_<FIELD>`` environment variable (e.g.
    ``ICRM_MODEL_NAME``, ``ICRM_ENGINE``, ``ICRM_RM_TYPE``, ``ICRM_NUM_SHOTS``), else an
    env file (``--env_file``), else the default — the way Infernet services are
    configured.
    """

    model_config = ConfigDict(extra="forbid")

    model_name: str | None = None
    """The judge model (None: the embedded default)."""
    engine: str | None = None
    """The engine name."""
    rm_type: Literal["individual", "pairwise"] = "individual"
    """What the server judges."""
    num_shots: int = 3
    """Shots per judgement (a request may ask for fewer or more)."""
    shots_pool_path: str | None = None
    """A custom shots pool."""
    template_path: str | None = None
    """A custom overall template."""
    shot_template_path: str | None = None
    """A custom shot template."""
    feedback_template_path: str | None = None
    """A custom feedback template."""
    completion: bool | None = None
    """Completion (True) or chat (False) mode; None = the engine's default."""
    seed: int = 42
    """Shot sampling seed."""
    shot_sampling_mode: Literal["fixed", "random"] = "fixed"
    """How shots are picked."""
    base_url: str | None = None
    """A server for the engine to talk to."""
    num_workers: int = 1
    """Local engines: servers to launch."""
    use_cache: bool = False
    """Answer repeated requests from the generation cache."""
    max_retries: int | None = None
    """Retries per engine request."""
    timeout: float = 600.0
    """Seconds per engine request."""
    host: str = "127.0.0.1"
    """Address to bind (loopback unless told otherwise)."""
    port: int = 3000
    """Port to bind."""
    api_key: str | None = None
    """The service's own bearer key (not a provider key)."""
    max_concurrency: int = 8
    """See `ServiceOptions`."""
    max_queue: int = 64
    """See `ServiceOptions`."""
    max_body_mb: float = 8.0
    """See `ServiceOptions`."""
    request_timeout_s: float = 600.0
    """See `ServiceOptions`."""
    failure_reward: float = 0.0
    """See `ServiceOptions`."""

    @classmethod
    def resolve(cls, flags: dict[str, Any], env_file: str | None = None) -> ServeConfig:
        """Merge flags (None = not given) over ``ICRM_*`` variables over `env_file`.

        Raises:
            ConfigError: an unreadable env file or a value of the wrong type, naming it.
        """
        import os

        from dotenv import dotenv_values

        file_values: dict[str, Any] = {}
        if env_file is not None:
            if not os.path.isfile(env_file):
                raise ConfigError(f"env file {env_file}: no such file")
            file_values = {k: v for k, v in dotenv_values(env_file).items() if v is not None}
        environment = {**file_values, **os.environ}
        values: dict[str, Any] = {}
        for name in cls.model_fields:
            if flags.get(name) is not None:
                values[name] = flags[name]
            elif (env := environment.get(f"ICRM_{name.upper()}")) not in (None, ""):
                values[name] = env
        try:
            return cls.model_validate(values)
        except ValidationError as e:  # reworded to name both the flag and the variable
            first = e.errors()[0]
            name = str(first["loc"][0])
            raise ConfigError(f"{name} (flag --{name} or ICRM_{name.upper()}): {first['msg']}") from None

    def icrm_kwargs(self) -> dict[str, Any]:
        """The arguments for `ICRM`."""
        service_fields = set(ServiceOptions.model_fields) | {"host", "port"}
        return {k: v for k, v in self.model_dump().items() if k not in service_fields}

    def options(self) -> ServiceOptions:
        """The service's options."""
        return ServiceOptions(**{k: getattr(self, k) for k in ServiceOptions.model_fields})


def serve(config: ServeConfig) -> None:
    """Run the service in the foreground until Ctrl-C / SIGTERM; in-flight requests
    finish (up to 30 s) before the workers stop.

    Raises:
        ConfigError / EngineError: the ICRM could not be built at startup.
    """
    import uvicorn

    icrm = ICRM(**config.icrm_kwargs())  # before uvicorn: a bad config is one clean error
    app = create_app(lambda: icrm, config.options())
    uvicorn.run(app, host=config.host, port=config.port, log_level="info", timeout_graceful_shutdown=30)
