"""The reward service's work, behind its routes (`icrm.service.app`): one `ICRM`, every
request admitted before any work (`icrm.service.limits`), the judge's health, and each
contract's answer.

Trust rules (DESIGN.md): a refused request does no work — not admitted, asking what the
judge cannot serve (``method: logprob`` on a judge started without logprobs), or the
judge down; a judge that could not answer is an error by the surface's policy
(`icrm.rewards.POLICIES`), never a plausible reward.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import httpx

from ..errors import ConfigError, EngineError, InputError
from ..feedback import FeedbackBase
from ..groups import judge_group, strategy_for
from ..integrations import openrlhf, slime
from ..reward_model import ICRM
from ..rewards import judge_down, result_fields, reward, trainer_extras
from ..rm_types import LISTWISE
from .contracts import GenerationOverrides, GroupRequest, OffchainItem, RewardRequest
from .limits import RETRY_AFTER_S, Admission, Refused
from .options import ServiceOptions

__all__ = ["RewardService", "server_fault", "HEALTH_PROBE_S"]

logger = logging.getLogger(__name__)

# A judge behind --base_url is probed at most this often by /health, with this timeout.
HEALTH_PROBE_S = 5.0
HEALTH_TIMEOUT_S = 2.0
T = TypeVar("T")


def server_fault(kind: str | None, request_id: str) -> Refused:
    """The answer for a fault on the server's side: 503 the judge is unavailable, 502
    it answered an error, 500 anything else; no internals, the request id instead."""
    if kind == "engine_unavailable":
        return Refused(503, "Service Unavailable", f"the judge is unavailable; retry later (request id {request_id})",
                       {"Retry-After": str(RETRY_AFTER_S)})
    if kind in ("engine", "engine_status"):
        return Refused(502, "Bad Gateway",
                       f"the judge failed to answer; details in the server log under request id {request_id}")
    return Refused(500, "Internal Server Error", f"internal error; details in the server log under request id {request_id}")


class RewardService:
    """One judge served to many requests.

    Args:
        judge: the `ICRM` (started by the app's lifespan).
        options: how the service runs.
    """

    def __init__(self, judge: ICRM, options: ServiceOptions) -> None:
        self.judge, self.options = judge, options
        self.admission = Admission(options.max_concurrency, options.max_queue)
        self._probed: tuple[float, str | None] = (0.0, None)

    # -- health ----------------------------------------------------------------------------

    def check_workers(self) -> None:
        """Refuse (503) when a local worker of the judge has died."""
        try:
            for worker in getattr(self.judge.engine, "workers", []):
                worker.check_alive()
        except EngineError as e:
            logger.error("the judge is down: %s", e)
            raise Refused(503, "Service Unavailable", "the judge is unavailable; retry later",
                          {"Retry-After": str(RETRY_AFTER_S)}) from None

    async def health(self) -> dict[str, Any]:
        """The judge's health: its local workers alive, and the server behind
        ``--base_url`` / ``--worker_addrs`` answering (probed at most every
        `HEALTH_PROBE_S` seconds; any HTTP answer counts, a refused or silent one does not).

        Raises:
            Refused: 503 when the judge is down.
        """
        self.check_workers()
        down = await self._probe()
        if down is not None:
            raise Refused(503, "Service Unavailable", f"the judge's server does not answer ({down}); retry later",
                          {"Retry-After": str(RETRY_AFTER_S)})
        return {"status": "ok", "model": self.judge.model_name, "engine": self.judge.engine.name,
                "rm_type": self.judge.rm_type.name}

    async def _probe(self) -> str | None:
        config = self.judge.config
        urls = [config.base_url] if config.base_url else list(config.worker_addrs or ())
        if not urls or getattr(self.judge.engine, "workers", []):
            return None
        checked, result = self._probed
        if time.monotonic() - checked < HEALTH_PROBE_S:
            return result
        result = None
        async with httpx.AsyncClient(timeout=HEALTH_TIMEOUT_S) as client:
            for url in urls:
                try:
                    await client.get(url.rstrip("/") + "/models")
                except httpx.HTTPError as e:
                    result = f"{type(e).__name__} from {url}"
                    break
        self._probed = (time.monotonic(), result)
        return result

    # -- judging ---------------------------------------------------------------------------

    async def judged(self, items: Sequence[dict[str, Any] | InputError],
                     overrides: GenerationOverrides) -> list[FeedbackBase]:
        """Admit ``len(items)`` judgements, then run them: nothing starts before
        admission, and nothing is admitted that the judge cannot serve. An `InputError`
        in place of an item is that item's feedback.

        Raises:
            Refused: 422 for a request option the judge cannot serve (its ``method``,
                ``num_shots``); 503 the judge is down or the queue full; 504 too slow.
        """
        judge = self._judge_one(overrides)

        async def one(item: dict[str, Any] | InputError) -> FeedbackBase:
            return self.judge.rm_type.failed(item) if isinstance(item, InputError) else await judge(item, None)

        return await self._admitted(len(items), "items", lambda: asyncio.gather(*(one(item) for item in items)))

    def _judge_one(self, overrides: GenerationOverrides) -> Callable[[dict[str, Any], str | None],
                                                                      Awaitable[FeedbackBase]]:
        """``async (item, key) -> Feedback`` with the request's overrides, each judgement
        in one of the running slots; refuses (before any work) what the judge cannot serve."""
        self.check_workers()
        why = self.judge.serves(overrides.method)
        if why is not None:
            raise Refused(422, "Unprocessable Entity", f"method: {why}")
        shots, kwargs, judge = self._shots(overrides), overrides.kwargs(), self.judge

        async def one(item: dict[str, Any], key: str | None) -> FeedbackBase:
            return await self.admission.run(lambda: judge.ajudge_item(item, shots, kwargs, key=key,
                                                                      method=overrides.method,
                                                                      position=overrides.position))
        return one

    async def _admitted(self, cost: int, what: str, work: Callable[[], Awaitable[T]]) -> T:
        """Start `work()` only once `cost` judgements are admitted (a refused request
        starts nothing: `asyncio.gather` would schedule its tasks at once), and await it
        within the request timeout."""
        async with self.admission.admit(cost, what):
            try:
                return await asyncio.wait_for(work(), self.options.request_timeout_s)
            except asyncio.TimeoutError:
                raise Refused(504, "Gateway Timeout",
                              f"the judgement took longer than {self.options.request_timeout_s:g} s") from None
            except ConfigError as e:  # a fault of the request's own options, found while judging
                raise Refused(422, "Unprocessable Entity", str(e)) from None

    def _shots(self, overrides: GenerationOverrides) -> list[dict[str, Any]] | None:
        if overrides.num_shots is None:
            return None
        try:
            return self.judge.sample_shots(overrides.num_shots)
        except ConfigError as e:  # the request's own option
            raise Refused(422, "Unprocessable Entity", f"num_shots: {e}") from None

    def _fail_if_down(self, feedbacks: Sequence[FeedbackBase], surface: str, request_id: str) -> None:
        down = judge_down(feedbacks, surface)
        if down is not None:
            logger.error("request %s: the judge could not answer: %s", request_id, down.error)
            raise server_fault(down.error_kind, request_id)

    def _fail_if_unjudged(self, feedbacks: Sequence[FeedbackBase], request_id: str) -> None:
        """With ``--unjudged fail``: 502 when a sample's answer held no verdict."""
        unjudged = [f for f in feedbacks if not f.ok]
        if unjudged and self.options.unjudged == "fail":
            first = unjudged[0]
            logger.warning("request %s: %d sample(s) without a verdict: %s", request_id, len(unjudged),
                           first.parse_error or first.error)
            raise Refused(502, "Bad Gateway", f"{len(unjudged)} of {len(feedbacks)} sample(s) got no verdict "
                          f"({first.parse_error_reason or first.error_kind}); --unjudged fail refuses a stand-in "
                          f"reward (request id {request_id})")

    # -- the contracts ---------------------------------------------------------------------

    async def service_output(self, item: dict[str, Any], overrides: OffchainItem | Any,
                             request_id: str) -> dict[str, Any]:
        """Infernet's ``/service_output``: the feedback of one item.

        Raises:
            Refused: 400 a bad item, 502 an answer without a verdict, 5xx the judge.
        """
        feedback = (await self.judged([item], overrides))[0]
        self._fail_if_down([feedback], "service_output", request_id)
        if feedback.error:
            raise Refused(400, "Bad Request", feedback.error)
        if feedback.parse_error:
            logger.warning("request %s: no verdict (%s): %r", request_id, feedback.parse_error, feedback.raw_text[:2000])
            raise Refused(502, "Bad Gateway", f"the judge's answer held no verdict ({feedback.parse_error_reason}); "
                          f"request id {request_id}")
        return feedback.to_dict()

    async def reward_batch(self, body: RewardRequest, request_id: str) -> dict[str, Any]:
        """icrm's ``/v1/reward``: one result per item, in order, and the summed usage.

        Raises:
            Refused: 400 another rm type; 5xx when the judge answered none of the items.
        """
        if body.rm_type is not None and body.rm_type != self.judge.rm_type.name:
            raise Refused(400, "Bad Request",
                          f"rm_type: this server judges {self.judge.rm_type.name!r}, not {body.rm_type!r}")
        feedbacks = await self.judged([item.inputs() for item in body.items], body)
        self._fail_if_down(feedbacks, "reward_batch", request_id)
        usages = [f.usage for f in feedbacks if f.usage is not None]
        usage = sum(usages[1:], usages[0]) if usages else None
        results = [{k: v for k, v in result_fields(f, self.judge.rm_type).items()
                    if k not in ("raw_text", "finish_reason", "usage", "latency_s", "cache_hit") and
                    (v is not None or k in ("feedback", "reward", "error", "error_kind", self.judge.rm_type.verdict_key))}
                   for f in feedbacks]
        return {"results": results, "usage": {"prompt_tokens": usage.prompt_tokens if usage else 0,
                                              "completion_tokens": usage.completion_tokens if usage else 0}}

    async def get_reward(self, body: openrlhf.OpenRLHFRequest, request_id: str) -> dict[str, Any]:
        """OpenRLHF's ``/get_reward`` (`icrm.integrations.openrlhf`).

        Raises:
            Refused: 400 a pairwise server, 422 mismatched prompts, 5xx the judge.
        """
        if not self.judge.rm_type.single:
            raise Refused(400, "Bad Request", "get_reward needs a server started with --rm_type individual")
        try:
            samples = openrlhf.items(body)
        except InputError as e:
            raise Refused(422, "Unprocessable Entity", str(e)) from None
        feedbacks = await self.judged(samples, GenerationOverrides()) if samples else []
        self._fail_if_down(feedbacks, "openrlhf", request_id)
        self._fail_if_unjudged(feedbacks, request_id)
        return openrlhf.answer(feedbacks, self.judge.rm_type, self.options.failure_reward)

    async def reward_group(self, body: GroupRequest, request_id: str) -> dict[str, Any]:
        """``/v1/reward/group``: one group judged with the group strategy
        (`icrm.groups.GroupResult.to_dict`, plus each judgement's result fields).

        Raises:
            Refused: 422 a group that is not one or a strategy of another rm type
                (before any work); 5xx when the judge answered none of its judgements.
        """
        try:
            conversations = body.group()
            LISTWISE.conversations({"conversations": conversations})  # a group, checked before any work
            strategy = strategy_for(self.judge.rm_type, body.group_strategy) if body.group_strategy \
                else self.judge.group_strategy
        except (InputError, ConfigError) as e:
            raise Refused(422, "Unprocessable Entity", str(e)) from None
        judge = self._judge_one(body)
        config = self.judge.config
        def group() -> Awaitable[Any]:
            return judge_group(judge, self.judge.rm_type, strategy, conversations, key=body.id, seed=config.seed,
                               position=body.position or config.position,
                               inconsistent_pairs=body.inconsistent_pairs or config.inconsistent_pairs,
                               concurrency=self.options.max_concurrency, context=body.context())
        result = await self._admitted(strategy.judgements(len(conversations)), "conversations", group)
        self._fail_if_down(result.feedbacks, "reward_group", request_id)
        rm_type = self.judge.rm_type.for_item({"conversations": conversations})
        judgements = [{k: v for k, v in result_fields(f, rm_type).items() if k != "raw_text"} for f in result.feedbacks]
        return {**result.to_dict(), "judgements": judgements}

    async def slime_reward(self, body: slime.SlimeRequest, reward_key: str | None,
                           request_id: str) -> float | dict[str, float]:
        """slime's ``remote_rm`` (`icrm.integrations.slime`): one sample's reward, or
        with `reward_key` the dict slime's ``--reward-key`` reads.

        Raises:
            Refused: 400 a server of another rm type; 5xx the judge.
        """
        if not self.judge.rm_type.single:
            raise Refused(400, "Bad Request", "slime's remote_rm judges one sample: start the server with "
                          "--rm_type individual (for groups, use --custom-rm-path icrm.integrations.slime.reward)")
        [feedback] = await self.judged([slime.item(body)], GenerationOverrides())
        self._fail_if_down([feedback], "slime", request_id)
        self._fail_if_unjudged([feedback], request_id)
        rm_type = self.judge.rm_type
        return slime.answer(reward(rm_type, feedback), trainer_extras(rm_type, feedback), self.options.failure_reward,
                            reward_key)
