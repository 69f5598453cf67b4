"""The reward model's core: a `JudgeSpec` wired to an engine, judging asynchronously,
with synchronous twins of the same names.

| async | sync |
| --- | --- |
| `ajudge` | `judge` |
| `ajudge_item` | `judge_item` |
| `ajudge_many` | `judge_many` |
| `ajudge_stream` | `judge_stream` |
| `ascore` | `score` |
| `aclose`, ``async with`` | `close`, ``with`` |

Every engine client lives on a private event loop (`icrm._loop.LoopThread`): each async
method runs its work there from any event loop (an RL trainer's, ``asyncio.run`` called
repeatedly) and its sync twin (`_twin`, generated) from any thread — so an instance is
never bound to the loop that first used it. In a forked child (``datasets.map(num_proc=N)``
with the instance as a global) the loop, clients and cache connection are rebuilt before
the first call, against the parent's running workers; a pickled copy does the same.

`icrm.reward_model.ICRM` adds the original IC-RM's signature and call shapes on top.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import os
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from . import settings
from ._loop import LoopThread
from .batch import DEFAULT_CONCURRENCY, run_batch
from .config import ICRMConfig
from .engines import Engine, GenerationResult, create_engine
from .engines.base import check_generation_kwargs
from .engines.cache import GenerationCache
from .engines.registry import resolve_api_key
from .engines.retry import RetryPolicy
from .engines.runner import RequestRunner
from .engines.usage import UsageTotals
from .errors import ConfigError, ICRMError, InputError
from .feedback import Feedback
from .logs import enable_stderr_logging
from .methods import DEFAULT_GENERATION_KWARGS, JudgingMethod
from .methods.combine import vote
from .position import combine_orders, flip, orders, swapped
from .provenance import engine_choice
from .rm_types import RM_TYPES, RMType
from .scoring import ScoreSummary, score_file
from .shots import Shot
from .spec import JudgeSpec, ShotsArg, item_fields

__all__ = ["ICRMCore", "DEFAULT_GENERATION_KWARGS", "DEFAULT_CONCURRENCY", "INLINE_PARSE_CHARS"]

T = TypeVar("T")

logger = logging.getLogger(__name__)

# Answers up to this many characters are parsed on the event loop (well under 1 ms);
# longer ones on a thread, so they cannot stall the loop that carries other judgements.
INLINE_PARSE_CHARS = 16_384


def _on_private_loop(method: Callable[..., Coroutine[Any, Any, T]]) -> Callable[..., Coroutine[Any, Any, T]]:
    """An async method that runs on the instance's private loop, awaited from any loop."""
    @functools.wraps(method)
    async def run(self: ICRMCore, *args: Any, **kwargs: Any) -> T:
        return await self._async(method(self, *args, **kwargs))
    return run


def _twin(method: Callable[..., Coroutine[Any, Any, T]], name: str) -> Callable[..., T]:
    """The synchronous twin of an `_on_private_loop` method: same arguments, returns and
    errors, called from any thread."""
    implementation = method.__wrapped__  # type: ignore[attr-defined]

    def run(self: ICRMCore, *args: Any, **kwargs: Any) -> T:
        return self._sync(implementation(self, *args, **kwargs))

    run.__name__ = run.__qualname__ = name
    run.__doc__ = f"The synchronous `{method.__name__}`: same arguments, returns and errors."
    run.__signature__ = inspect.signature(method)  # type: ignore[attr-defined]
    return run


class ICRMCore(JudgeSpec):
    """An in-context reward model built from an `ICRMConfig` (see `from_config`).

    Attributes:
        config, rm_type, method, prompts: as `icrm.spec.JudgeSpec`.
        engine: the engine; ``model_name`` is its model.
        runner: the engine with cache, retries and usage totals.
        constrain_output: whether answers are asked for constrained to the method's schema.

    Use as a context manager (``with`` or ``async with``), or call `close()`, to stop
    the workers it started.
    """

    @classmethod
    def from_config(cls, config: ICRMConfig) -> Any:
        """An instance from a validated `ICRMConfig` (launching its workers).

        Raises:
            ConfigError: a bad template or shots pool, or a missing package/key.
            EngineError: a worker failed to start.
        """
        instance = cls.__new__(cls)
        instance._setup(config)
        return instance

    def __init__(self, config: ICRMConfig) -> None:
        self._setup(config)

    def _setup(self, config: ICRMConfig) -> None:
        self._load_spec(config)
        if config.verbose:
            enable_stderr_logging("INFO")
        elif settings.log_level():  # ICRM_LOG: the user opted in to icrm's own handler
            enable_stderr_logging()
        self._start_engine(config)

    def _start_engine(self, config: ICRMConfig) -> None:
        # The loop, the engine (its clients and workers) and the runner: what a forked
        # child must rebuild, the rest being plain data.
        retry = RetryPolicy.from_env(config.max_retries)
        choice = engine_choice(config, self.method)
        self._loop = LoopThread()
        self._pid = os.getpid()
        cache = None
        try:
            cache = GenerationCache(config.cache_dir) if (config.use_cache or config.overwrite_cache) else None
            if cache is not None:
                cache.open()
            self.engine: Engine = create_engine(
                choice.name, config.model_name,
                completion=choice.completion, base_url=config.base_url, api_key=config.api_key,
                api_version=config.api_version, num_workers=config.num_workers,
                num_gpu_per_worker=config.num_gpu_per_worker, worker_addrs=config.worker_addrs,
                worker_args=config.worker_args, timeout_s=config.timeout, logprobs=self.method.needs_logprobs,
            )
        except BaseException:
            if cache is not None:
                cache.close()
            self._loop.close()
            raise
        self.constrain_output = choice.constrain_output
        self.runner = RequestRunner(
            self.engine, retry, cache=cache, overwrite_cache=config.overwrite_cache, log_file=config.log_file,
            secrets=[k for k in (resolve_api_key(choice.name, config.api_key),) if k],
        )
        if self.constrain_output and not self.engine.json_schema_supported:
            self.close()
            raise ConfigError(f"constrain_output=True, but engine '{self.engine.name}' cannot constrain output to a JSON schema"
                              + (" in completion mode: pass completion=False" if self.engine.completion else ""))
        self.model_name = self.engine.model

    @property
    def usage(self) -> UsageTotals:
        """Totals over every request of this instance: requests, prompt / completion /
        cached tokens, errors and cache hits."""
        return self.runner.usage

    def serves(self, method: str | JudgingMethod | None) -> str | None:
        """Why this judge's engine cannot serve `method` (None when it can): the
        ``logprob`` method needs an engine started to return token logprobs."""
        judging = self.method_for(method)
        if judging.needs_logprobs and not self.engine.logprobs:
            return (f"method {judging.name!r} needs token logprobs, which this judge's engine ({self.engine.name}) was "
                    f"not started to return: start it with method={judging.name!r}")
        return None

    # -- one judgement -----------------------------------------------------------------

    async def _agenerate(self, fields: dict[str, Any], shown: Sequence[Sequence[Shot]], generation_kwargs: dict[str, Any],
                         method: JudgingMethod, context: dict[str, Any] | None = None,
                         rm_type: RMType | None = None) -> GenerationResult:
        # `shown`: the shots in one order, or one order per sample (one request each).
        prompts = [self.builder(method, rm_type).render(fields, shots, context) for shots in shown]
        if self.verbose:
            logger.info("prompt:\n%s", prompts[0])
        kwargs = self.generation_kwargs(method, generation_kwargs)
        samples = self.config.num_samples
        if samples > 1:
            if not kwargs.get("temperature"):
                raise ConfigError(f"num_samples={samples} needs a temperature > 0 (the samples would all be the "
                                  "same): pass --temperature, e.g. 0.7", fatal=True)
            kwargs["n"] = samples // len(prompts)
        seed = kwargs.get("seed")
        requests = [method.request(p, rm_type or self.rm_type, completion=self.engine.completion,
                                   constrain=self.constrain_output,
                                   kwargs={**kwargs, **({"seed": seed + i} if seed is not None and i else {})})
                    for i, p in enumerate(prompts)]
        if len(requests) == 1:
            return await self.runner.generate(requests[0])
        return GenerationResult.concat(await asyncio.gather(*map(self.runner.generate, requests)))

    async def _judgement(self, fields: dict[str, Any], shots: ShotsArg, generation_kwargs: dict[str, Any],
                         method: str | None = None, position: str | None = None, key: str | None = None,
                         context: dict[str, Any] | None = None) -> Feedback:
        """One judgement: the method's request(s) in the position's order(s), samples
        voted, a swapped order told back in the given orientation; a rubric's parts
        (``max_criteria``) each asked so, then merged."""
        judging = self.method_for(method)
        chosen = self.item_shots(fields, shots, key, judging)  # a bad item fails before any request
        shown = await self.shots_shown(chosen, judging, key, self.runner.count_tokens)
        rm_type = self.rm_type.for_item(fields)  # a group: its size's spec
        judging.check_item(rm_type)
        placed = orders(rm_type, position or self.config.position, self.config.seed, key, fields)

        async def one(part: RMType, order: str) -> Feedback:
            given = fields if order == "AB" else swapped(part, fields)
            result = await self._agenerate(given, shown, generation_kwargs, judging, context, part)
            read = functools.partial(judging.read_all, result, part, self.builder(judging, part).answer_examples,
                                     shot_ids=[s.id for s in shown[0]])
            samples = await asyncio.to_thread(read) if sum(map(len, result.texts)) > INLINE_PARSE_CHARS else read()
            feedback = vote(part, samples) if len(samples) > 1 else samples[0]
            if order == "BA":
                feedback = flip(part, feedback)
            return feedback if part.single else feedback.model_copy(update={"position": order})

        async def in_orders(part: RMType) -> Feedback:
            judged = await asyncio.gather(*(one(part, order) for order in placed))
            return combine_orders(part, *judged) if len(judged) == 2 else judged[0]

        parts = rm_type.parts(self.config.max_criteria)
        if len(parts) == 1:
            return await in_orders(rm_type)
        return rm_type.merge(parts, await asyncio.gather(*(in_orders(p) for p in parts)))  # type: ignore[attr-defined,no-any-return]

    @_on_private_loop
    async def ajudge(self, conversation: Any = None, conversation_A: Any = None, conversation_B: Any = None,
                     shots: ShotsArg = None, conversations: Any = None, **generation_kwargs: Any) -> Feedback:
        """Judge one conversation (individual), a pair (pairwise) or a group in one
        request (listwise), from any event loop.

        Args:
            conversation / conversation_A, conversation_B / conversations: as `render_prompt`.
            shots: shots to show; None = sample from the pool.
            **generation_kwargs: override `DEFAULT_GENERATION_KWARGS` (``temperature``,
                ``max_tokens`` in tokens, ``top_p``, ``stop``, ``seed``, ...).

        Returns:
            `IndividualFeedback` (``score`` 1–10) or `PairwiseFeedback` (``choice``),
            with ``raw_text`` and ``usage``. An answer without a verdict is not raised:
            its ``parse_error`` says why and the score/choice is None.

        Raises:
            InputError / ConfigError: bad conversations, shots or generation kwargs.
            EngineError: the engine failed.
        """
        return await self._judgement(item_fields(conversation, conversation_A, conversation_B, conversations), shots,
                                     generation_kwargs)

    judge = _twin(ajudge, "judge")

    @_on_private_loop
    async def ajudge_item(self, item: Any, shots: ShotsArg = None, generation_kwargs: Mapping[str, Any] | None = None,
                          key: str | None = None, method: str | None = None, position: str | None = None) -> Feedback:
        """`ajudge` for one item dict (``conversation``, or ``conversation_A`` and
        ``conversation_B``, plus any context fields such as ``reference``) that records
        every fault on the feedback instead of raising. `key` (the item's id) seeds the
        ``random`` position; `method` and `position` override this instance's.

        Every fault while judging this item becomes its ``error`` with an
        ``error_kind`` (``input``, ``engine``, ``engine_unavailable``, ``engine_status``,
        ``config``; ``internal`` for a bug, logged with its traceback), so one item never
        stops the others. Check the caller's shots and generation kwargs before a batch
        (`check_generation_kwargs`): they apply to every item. A fault no item can escape
        (an engine that returns no logprobs to the ``logprob`` method) is raised.

        Raises:
            ConfigError: such a fault, with ``fatal`` in its context.
        """
        judging = None
        try:
            judging = self.method_for(method)
            if not isinstance(item, Mapping):
                raise InputError(f"expected an item dict with {' and '.join(self.rm_type.input_fields)}, "
                                 f"got {type(item).__name__}")
            others = sorted(f for t in RM_TYPES.values() for f in t.input_fields
                            if f in item and f not in self.rm_type.input_fields)
            if others:
                raise InputError(f"unexpected field(s) {', '.join(others)} for rm_type={self.rm_type.name!r}")
            fields = {f: item.get(f) for f in self.rm_type.input_fields}
            context = {k: v for k, v in item.items() if k not in self.rm_type.input_fields}
            feedback = await self._judgement(fields, shots, dict(generation_kwargs or {}), judging.name, position, key,
                                             context)
            return feedback if feedback.method else feedback.model_copy(update={"method": judging.name})
        except ConfigError as error:
            if error.context.get("fatal"):
                raise
            return self.rm_type.failed(error, method=getattr(judging, "name", None))
        except ICRMError as error:
            return self.rm_type.failed(error, method=getattr(judging, "name", None))
        except Exception as error:  # a bug: logged in full, recorded on this item only
            logger.exception("internal error while judging an item")
            return self.rm_type.failed(f"internal error: {type(error).__name__}: {error}", "internal")

    judge_item = _twin(ajudge_item, "judge_item")

    # -- many at once ----------------------------------------------------------------------

    async def ajudge_stream(self, items: Iterable[Mapping[str, Any]], concurrency: int = DEFAULT_CONCURRENCY,
                            shots: ShotsArg = None, **generation_kwargs: Any) -> AsyncIterator[tuple[int, Feedback]]:
        """Judge many items with at most `concurrency` requests in flight, yielding each
        result as it finishes.

        Args:
            items: dicts with ``conversation`` (individual) or ``conversation_A`` and
                ``conversation_B`` (pairwise); consumed lazily.
            concurrency: requests in flight at most. The first item runs alone so a
                server's prefix cache holds the shared instruction + shots first.
            shots: shots for every item; None = sample per item from the pool.
            **generation_kwargs: as `ajudge`.

        Yields:
            ``(index, feedback)`` in completion order; `index` is the item's position.
            A bad conversation or an engine failure does not stop the batch: that
            item's feedback has ``error`` set (and no score/choice).

        Raises:
            ConfigError: bad `shots`, generation kwargs or `concurrency` (they apply to
                every item, so nothing runs).
        """
        self._check_process()
        async for entry in self._loop.aiterate(self._stream(items, concurrency, shots, generation_kwargs)):
            yield entry

    def judge_stream(self, items: Iterable[Mapping[str, Any]], concurrency: int = DEFAULT_CONCURRENCY,
                     shots: ShotsArg = None, **generation_kwargs: Any) -> Iterator[tuple[int, Feedback]]:
        """The synchronous `ajudge_stream`: ``(index, feedback)`` as each finishes."""
        self._check_process()
        return self._loop.iterate(self._stream(items, concurrency, shots, generation_kwargs))

    judge_iter = judge_stream  # its first name

    async def _stream(self, items: Iterable[Mapping[str, Any]], concurrency: int, shots: ShotsArg,
                      generation_kwargs: dict[str, Any]) -> AsyncIterator[tuple[int, Feedback]]:
        check_generation_kwargs(generation_kwargs)
        chosen = None if shots is None else self.prompts.shots(shots)

        async def work(indexed: tuple[int, Mapping[str, Any]]) -> Feedback:
            return await self.ajudge_item(indexed[1], chosen, generation_kwargs)

        async for (index, _), feedback in run_batch(enumerate(items), work, concurrency):
            yield index, feedback

    @_on_private_loop
    async def ajudge_many(self, items: Iterable[Mapping[str, Any]], concurrency: int = DEFAULT_CONCURRENCY,
                          shots: ShotsArg = None, **generation_kwargs: Any) -> list[Feedback]:
        """`ajudge_stream`, collected: one feedback per item, in input order."""
        results: dict[int, Feedback] = {}
        async for index, feedback in self._stream(items, concurrency, shots, generation_kwargs):
            results[index] = feedback
        return [results[i] for i in range(len(results))]

    judge_many = _twin(ajudge_many, "judge_many")

    @_on_private_loop
    async def ascore(self, source: str | Path, output: str | Path, **options: Any) -> ScoreSummary:
        """Score a dataset file into a resumable JSONL results file.

        See `icrm.scoring.score_file` for `source`, `output`, the options (concurrency,
        limit, id_field, input_format, progress, split, overwrite, generation kwargs),
        the row format and the errors.
        """
        return await score_file(self, source, output, **options)

    score = _twin(ascore, "score")

    def run_sync(self, awaitable: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine that uses this instance (e.g. `icrm.evaluation.evaluate`) on
        its private event loop, from synchronous code; returns its result or raises."""
        return self._sync(awaitable)

    # -- where work runs -------------------------------------------------------------------

    def _check_process(self) -> None:
        # After a fork the loop thread and the clients are the parent's: rebuild them.
        if self._pid != os.getpid():
            self._after_fork_in_child()

    def _sync(self, coro: Coroutine[Any, Any, T]) -> T:
        self._check_process()
        return self._loop.run(coro)

    async def _async(self, coro: Coroutine[Any, Any, T]) -> T:
        self._check_process()
        return await self._loop.arun(coro)

    def _after_fork_in_child(self) -> None:
        """In a forked child the loop thread, the HTTP clients and the SQLite connection
        are the parent's and unusable: rebuild them against the parent's running workers
        (which stay the parent's to stop)."""
        if self._loop.closed:
            raise ConfigError("this object is closed; create a new one")
        config = self._config_for_copies()
        for worker in getattr(self.engine, "workers", []):
            worker.disown()
        self._start_engine(config)

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the engine and stop every worker this instance started. Idempotent."""
        if self._pid != os.getpid() or self._loop.closed:  # a forked copy: the parent's to stop
            return
        try:
            self._loop.run(self.runner.aclose() if hasattr(self, "runner") else self.engine.aclose())
        finally:
            self._loop.close()

    async def aclose(self) -> None:
        """`close`, awaited from any event loop."""
        if self._pid != os.getpid() or self._loop.closed:
            return
        await asyncio.to_thread(self.close)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Any:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle as configuration, not as live clients: a copy in another process (e.g.
        a `datasets.map(num_proc=N)` worker) reconnects to this instance's running
        workers by address, never launching its own, and shares its cache directory."""
        return {"config": self._config_for_copies(), "rng_state": self._rng.getstate()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        config = state["config"]
        self._setup(config if isinstance(config, ICRMConfig) else ICRMConfig.build(**config))
        self._rng.setstate(state["rng_state"])

    def _config_for_copies(self) -> ICRMConfig:
        worker_urls = [w.base_url for w in getattr(self.engine, "workers", [])]
        return self.config.model_copy(update={"worker_addrs": tuple(worker_urls)}) if worker_urls else self.config
