"""The reward model's core: an `ICRMConfig` wired to an engine, judging asynchronously,
with synchronous twins of the same names.

| async | sync |
| --- | --- |
| `ajudge` | `judge` |
| `ajudge_item` | `judge_item` |
| `ajudge_many` | `judge_many` |
| `ajudge_stream` | `judge_stream` |
| `ascore` | `score` |
| `aclose`, ``async with`` | `close`, ``with`` |

Every engine client lives on a private event loop (`icrm._loop.LoopThread`): the sync
methods run work there from any thread, the async ones hand it there from any event
loop (an RL trainer's, ``asyncio.run`` called repeatedly) — so an instance is never
bound to the loop that first used it. In a forked child (``datasets.map(num_proc=N)``
with the instance as a global) the loop, clients and cache connection are rebuilt before
the first call, against the parent's running workers; a pickled copy does the same.

`icrm.reward_model.ICRM` adds the original IC-RM's signature and call shapes on top.

The module is long because every operation comes as an async method, its sync twin and
their docstrings; the logic lives in `icrm.prompt`, `icrm.methods`, `icrm.engines` and
`icrm.batch`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import random
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from . import settings
from ._loop import LoopThread
from .batch import run_batch
from .config import ICRMConfig
from .engines import Engine, GenerationResult, create_engine
from .engines.base import check_generation_kwargs
from .engines.cache import GenerationCache
from .engines.registry import ALIASES, ENGINES, resolve_api_key
from .engines.retry import RetryPolicy
from .engines.runner import RequestRunner
from .engines.usage import UsageTotals
from .errors import ConfigError, ICRMError, InputError
from .feedback import END_OF_FEEDBACK, Feedback
from .logs import enable_stderr_logging
from .methods import METHODS, JudgingMethod, get_method
from .methods.combine import combine_orders, vote
from .prompt import PromptBuilder
from .rm_types import RM_TYPES, RMType, get_rm_type
from .scoring import ScoreSummary, score_file
from .shots import Shot

__all__ = ["ICRMCore", "DEFAULT_GENERATION_KWARGS", "DEFAULT_CONCURRENCY"]

T = TypeVar("T")

logger = logging.getLogger(__name__)

# The original IC-RM's defaults; a caller's generation kwargs override them key by key.
DEFAULT_GENERATION_KWARGS: dict[str, Any] = {
    "stop": [END_OF_FEEDBACK],
    "temperature": 0.0,
    "max_tokens": 3072,
    "top_p": 1.0,
}
DEFAULT_CONCURRENCY = 8

ShotsArg = Sequence[dict[str, Any] | Shot] | None


class ICRMCore:
    """An in-context reward model built from an `ICRMConfig` (see `from_config`).

    Attributes:
        config: the configuration.
        rm_type: the rm type's spec (`icrm.rm_types.RMType`); ``rm_type.name`` is
            ``individual`` or ``pairwise``.
        method: the judging method.
        prompts: the prompt builder (templates and shots pool).
        engine: the engine; ``model_name`` is its model.
        runner: the engine with cache, retries and usage totals.

    Use as a context manager (``with`` or ``async with``), or call `close()`, to stop
    the workers it started.
    """

    config: ICRMConfig

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

    def _setup(self, config: ICRMConfig) -> None:
        self.config = config
        self.rm_type: RMType = get_rm_type(config.rm_type)
        self.method: JudgingMethod = get_method(config.method)
        self._builders: dict[str, PromptBuilder] = {}
        self.prompts = self._builder(self.method)
        self._rng = random.Random(config.seed)
        # Check num_shots and the mode now, not at the first call.
        self.prompts.sample(config.num_shots, config.shot_sampling_mode, random.Random(config.seed))
        if config.verbose:
            enable_stderr_logging("INFO")
        elif settings.log_level():  # ICRM_LOG: the user opted in to icrm's own handler
            enable_stderr_logging()
        self._start_engine(config)

    def _start_engine(self, config: ICRMConfig) -> None:
        # The loop, the engine (its clients and workers) and the runner: what a forked
        # child must rebuild, the rest being plain data.
        retry = RetryPolicy.from_env(config.max_retries)
        cache = GenerationCache(config.cache_dir) if (config.use_cache or config.overwrite_cache) else None
        if cache is not None:
            cache.open()
        engine_name = config.engine_name
        completion = config.completion
        if completion is None and self.method.prefers_completion and _has_completion(engine_name):
            completion = True
        self._loop = LoopThread()
        self._pid = os.getpid()
        try:
            self.engine: Engine = create_engine(
                engine_name, config.model_name,
                completion=completion, base_url=config.base_url, api_key=config.api_key,
                api_version=config.api_version, num_workers=config.num_workers,
                num_gpu_per_worker=config.num_gpu_per_worker, worker_addrs=config.worker_addrs,
                worker_args=config.worker_args, timeout_s=config.timeout, logprobs=self.method.needs_logprobs,
            )
        except BaseException:
            self._loop.close()
            raise
        self.constrain_output = (self.engine.constrain_by_default if config.constrain_output is None
                                 else config.constrain_output)
        self.runner = RequestRunner(
            self.engine, retry, cache=cache, overwrite_cache=config.overwrite_cache, log_file=config.log_file,
            secrets=[k for k in (resolve_api_key(engine_name, config.api_key),) if k],
        )
        if self.constrain_output and not self.engine.json_schema_supported:
            self.close()
            raise ConfigError(f"constrain_output=True, but engine '{self.engine.name}' cannot constrain output to a JSON schema"
                              + (" in completion mode: pass completion=False" if self.engine.completion else ""))
        self.model_name = self.engine.model

    # -- plain values --------------------------------------------------------------------

    num_shots = property(lambda self: self.config.num_shots, doc="Shots shown per judgement.")
    shot_sampling_mode = property(lambda self: self.config.shot_sampling_mode, doc="``fixed`` or ``random``.")
    seed = property(lambda self: self.config.seed, doc="The shot-sampling seed.")
    verbose = property(lambda self: self.config.verbose, doc="Whether each prompt is logged.")
    template_hash = property(lambda self: self.prompts.template_hash, doc="12 hex digits of the templates' SHA-256.")
    shots_pool = property(lambda self: self.prompts.pool, doc="The shots pool.")

    @property
    def usage(self) -> UsageTotals:
        """Totals over every request of this instance: requests, prompt / completion /
        cached tokens, errors and cache hits."""
        return self.runner.usage

    def run_fields(self, generation_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
        """What defines this instance's judgements (a run's fingerprint fields): model,
        engine, rm type, method, mode (completion / chat), constrained output, template
        hash, shots (pool hash, number, sampling mode, seed) and the generation kwargs in
        effect (defaults merged with `generation_kwargs`)."""
        return {
            "model": self.model_name,
            "engine": self.engine.name,
            "rm_type": self.rm_type.name,
            "method": self.method.name,
            "position": None if self.rm_type.single else self.config.position,
            "num_samples": self.config.num_samples,
            "mode": "completion" if self.engine.completion else "chat",
            "constrain_output": self.constrain_output,
            "template_hash": self.template_hash,
            "shots_hash": self.shots_pool.hash,
            "seed": self.seed,
            "num_shots": self.num_shots,
            "shot_sampling_mode": self.shot_sampling_mode,
            "generation_kwargs": self._kwargs(self.method, generation_kwargs or {}),
        }

    provenance = run_fields

    def check_generation_kwargs(self, kwargs: dict[str, Any], also: Sequence[str] = ()) -> dict[str, Any]:
        """Validate a caller's generation kwargs (`icrm.engines.base.check_generation_kwargs`).

        Raises:
            ConfigError: an unknown name (hinting at `also`, the caller's other options)
                or a bad value.
        """
        return check_generation_kwargs(kwargs, also)

    # -- shots and prompts ---------------------------------------------------------------

    def sample_shots(self, num_shots: int | None = None, mode: str | None = None) -> list[dict[str, Any]]:
        """Pick shots from the pool, as the shot dicts it was loaded from.

        Args:
            num_shots: how many (default: this instance's `num_shots`).
            mode: ``fixed`` or ``random`` (default: this instance's mode). ``random``
                draws from this instance's generator seeded with `seed`, so two
                instances with the same seed draw the same sequence.

        Raises:
            ConfigError: unknown mode, or more shots than the pool holds.
        """
        return [s.record for s in self._sample(num_shots, mode)]

    def _sample(self, num_shots: int | None = None, mode: str | None = None) -> list[Shot]:
        return self.prompts.sample(self.num_shots if num_shots is None else num_shots,
                                   mode or self.shot_sampling_mode, self._rng)

    def render_prompt(self, conversation: Any = None, conversation_A: Any = None, conversation_B: Any = None,
                      shots: ShotsArg = None, method: str | None = None, **context: Any) -> str:
        """The full prompt for one judgement: instruction, rules, shots, then the example.

        Args:
            conversation: individual mode: the conversation to judge.
            conversation_A, conversation_B: pairwise mode: the two conversations.
            shots: shot dicts (or `Shot` objects) to show; None = sample from the pool.
            method: the judging method (default: this instance's).
            **context: the item's other fields (``reference``, ``rubric``, ...).

        Returns:
            The prompt text, ending where the judge's answer begins.

        Raises:
            InputError: an invalid conversation, naming the turn.
            ConfigError: an invalid shot, naming its index and field.
        """
        builder = self._builder(self._method(method))
        chosen = self._sample() if shots is None else builder.shots(shots)
        return builder.render(_fields(conversation, conversation_A, conversation_B), chosen, context)

    def _method(self, method: str | JudgingMethod | None) -> JudgingMethod:
        return self.method if method is None else get_method(method)

    def _builder(self, method: JudgingMethod) -> PromptBuilder:
        builder = self._builders.get(method.name)
        if builder is None:
            config = self.config
            builder = self._builders[method.name] = PromptBuilder.load(
                self.rm_type, method, config.template_path, config.shot_template_path, config.feedback_template_path,
                config.shots_pool_path)
        return builder

    def _kwargs(self, method: JudgingMethod, generation_kwargs: dict[str, Any]) -> dict[str, Any]:
        return {**DEFAULT_GENERATION_KWARGS, **method.default_kwargs(self.rm_type), **generation_kwargs}

    # -- judging ---------------------------------------------------------------------------

    async def _agenerate(self, fields: dict[str, Any], shots: Sequence[Shot], generation_kwargs: dict[str, Any],
                         method: JudgingMethod, context: dict[str, Any] | None = None,
                         samples: int = 1) -> GenerationResult:
        prompt = self._builder(method).render(fields, shots, context)
        if self.verbose:
            logger.info("prompt:\n%s", prompt)
        kwargs = check_generation_kwargs(self._kwargs(method, generation_kwargs))
        if samples > 1:
            if not kwargs.get("temperature"):
                raise ConfigError(f"num_samples={samples} needs a temperature > 0 (the samples would all be the "
                                  "same): pass --temperature, e.g. 0.7", fatal=True)
            kwargs["n"] = samples
        request = method.request(prompt, self.rm_type, completion=self.engine.completion,
                                 constrain=self.constrain_output, kwargs=kwargs)
        return await self.runner.generate(request)

    async def ajudge(self, conversation: Any = None, conversation_A: Any = None, conversation_B: Any = None,
                     shots: ShotsArg = None, **generation_kwargs: Any) -> Feedback:
        """Judge one conversation (individual) or a pair (pairwise), from any event loop.

        Args:
            conversation / conversation_A, conversation_B: as in `render_prompt`.
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
        return await self._async(self._ajudge(_fields(conversation, conversation_A, conversation_B), shots,
                                              generation_kwargs))

    def judge(self, conversation: Any = None, conversation_A: Any = None, conversation_B: Any = None,
              shots: ShotsArg = None, **generation_kwargs: Any) -> Feedback:
        """The synchronous `ajudge`: same arguments, returns, and errors."""
        return self._sync(self._ajudge(_fields(conversation, conversation_A, conversation_B), shots, generation_kwargs))

    async def _ajudge(self, fields: dict[str, Any], shots: ShotsArg, generation_kwargs: dict[str, Any],
                      method: str | None = None, position: str | None = None, key: str | None = None,
                      context: dict[str, Any] | None = None) -> Feedback:
        """One judgement: the method's request(s) in the position's order(s), samples
        voted, the swapped order told back in the given orientation."""
        judging = self._method(method)
        builder = self._builder(judging)
        chosen = self._sample() if shots is None else builder.shots(shots)
        self.rm_type.conversations(fields)  # a bad item fails before any request
        orders = self._orders(position or self.config.position, fields, key)

        async def one(order: str) -> Feedback:
            given = fields if order == "AB" else _swapped(self.rm_type, fields)
            result = await self._agenerate(given, chosen, generation_kwargs, judging, context, self.config.num_samples)
            samples = judging.read_all(result, self.rm_type, shot_ids=[s.id for s in chosen])
            feedback = vote(self.rm_type, samples) if len(samples) > 1 else samples[0]
            if order == "BA":
                feedback = self.rm_type.flip(feedback)
            return feedback if self.rm_type.single else feedback.model_copy(update={"position": order})

        judged = await asyncio.gather(*(one(order) for order in orders))
        return combine_orders(self.rm_type, *judged) if len(judged) == 2 else judged[0]

    def _orders(self, position: str, fields: dict[str, Any], key: str | None) -> tuple[str, ...]:
        if self.rm_type.single or position == "as_given":
            return ("AB",)
        if position == "both":
            return ("AB", "BA")
        if position == "random":
            return (random_order(self.config.seed, key if key is not None else _content_key(fields)),)
        raise ConfigError(f"position must be 'as_given', 'random' or 'both', got {position!r}")

    async def ajudge_item(self, item: Any, shots: ShotsArg = None, generation_kwargs: dict[str, Any] | None = None,
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
        return await self._async(self._ajudge_item(item, shots, generation_kwargs, key, method, position))

    def judge_item(self, item: Any, shots: ShotsArg = None, generation_kwargs: dict[str, Any] | None = None,
                   key: str | None = None, method: str | None = None, position: str | None = None) -> Feedback:
        """The synchronous `ajudge_item`."""
        return self._sync(self._ajudge_item(item, shots, generation_kwargs, key, method, position))

    async def _ajudge_item(self, item: Any, shots: ShotsArg, generation_kwargs: dict[str, Any] | None,
                           key: str | None = None, method: str | None = None, position: str | None = None) -> Feedback:
        judging = self._method(method) if method is None or method in METHODS else None
        try:
            if judging is None:
                raise ConfigError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
            if not isinstance(item, dict):
                raise InputError(f"expected an item dict with {' and '.join(self.rm_type.input_fields)}, "
                                 f"got {type(item).__name__}")
            others = sorted(f for t in RM_TYPES.values() for f in t.input_fields
                            if f in item and f not in self.rm_type.input_fields)
            if others:
                raise InputError(f"unexpected field(s) {', '.join(others)} for rm_type={self.rm_type.name!r}")
            fields = {f: item.get(f) for f in self.rm_type.input_fields}
            context = {k: v for k, v in item.items() if k not in self.rm_type.input_fields}
            feedback = await self._ajudge(fields, shots, generation_kwargs or {}, judging.name, position, key, context)
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

    # -- many at once ----------------------------------------------------------------------

    async def ajudge_stream(self, items: Iterable[dict[str, Any]], concurrency: int = DEFAULT_CONCURRENCY,
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
        async for entry in self._loop.aiterate(self._ajudge_stream(items, concurrency, shots, generation_kwargs)):
            yield entry

    def judge_stream(self, items: Iterable[dict[str, Any]], concurrency: int = DEFAULT_CONCURRENCY,
                     shots: ShotsArg = None, **generation_kwargs: Any) -> Iterator[tuple[int, Feedback]]:
        """The synchronous `ajudge_stream`: ``(index, feedback)`` as each finishes."""
        self._check_process()
        return self._loop.iterate(self._ajudge_stream(items, concurrency, shots, generation_kwargs))

    judge_iter = judge_stream  # its first name

    async def _ajudge_stream(self, items: Iterable[dict[str, Any]], concurrency: int, shots: ShotsArg,
                             generation_kwargs: dict[str, Any]) -> AsyncIterator[tuple[int, Feedback]]:
        check_generation_kwargs(generation_kwargs)
        chosen = None if shots is None else self.prompts.shots(shots)

        async def work(indexed: tuple[int, dict[str, Any]]) -> Feedback:
            return await self._ajudge_item(indexed[1], chosen, generation_kwargs)

        async for (index, _), feedback in run_batch(enumerate(items), work, concurrency):
            yield index, feedback

    async def ajudge_many(self, items: Iterable[dict[str, Any]], concurrency: int = DEFAULT_CONCURRENCY,
                          shots: ShotsArg = None, **generation_kwargs: Any) -> list[Feedback]:
        """`ajudge_stream`, collected: one feedback per item, in input order."""
        return await self._async(self._ajudge_many(items, concurrency, shots, generation_kwargs))

    def judge_many(self, items: Iterable[dict[str, Any]], concurrency: int = DEFAULT_CONCURRENCY,
                   shots: ShotsArg = None, **generation_kwargs: Any) -> list[Feedback]:
        """The synchronous `ajudge_many`."""
        return self._sync(self._ajudge_many(items, concurrency, shots, generation_kwargs))

    async def _ajudge_many(self, items: Iterable[dict[str, Any]], concurrency: int, shots: ShotsArg,
                           generation_kwargs: dict[str, Any]) -> list[Feedback]:
        results: dict[int, Feedback] = {}
        async for index, feedback in self._ajudge_stream(items, concurrency, shots, generation_kwargs):
            results[index] = feedback
        return [results[i] for i in range(len(results))]

    def score(self, source: str | Path, output: str | Path, **options: Any) -> ScoreSummary:
        """Score a dataset file into a resumable JSONL results file.

        See `icrm.scoring.score_file` for `source`, `output`, the options (concurrency,
        limit, id_field, input_format, progress, split, overwrite, generation kwargs),
        the row format and the errors.
        """
        return self._sync(score_file(self, source, output, **options))

    async def ascore(self, source: str | Path, output: str | Path, **options: Any) -> ScoreSummary:
        """`score`, awaited from any event loop."""
        return await self._async(score_file(self, source, output, **options))

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

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(engine={self.engine.name!r}, model_name={self.model_name!r}, "
                f"rm_type={self.rm_type.name!r}, num_shots={self.num_shots})")


def _has_completion(engine: str) -> bool:
    spec = ENGINES.get(ALIASES.get(engine, engine))
    return spec is not None and spec.has_completion


def random_order(seed: int, key: str) -> str:
    """The order a pair is judged in with ``position="random"``: ``AB`` or ``BA`` from a
    bit of SHA-256(seed:key) — the same in every run and process, whatever the
    concurrency or the cache."""
    return "AB" if hashlib.sha256(f"{seed}:{key}".encode()).digest()[0] & 1 else "BA"


def _content_key(fields: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _swapped(rm_type: RMType, fields: dict[str, Any]) -> dict[str, Any]:
    a, b = rm_type.input_fields
    return {**fields, a: fields[b], b: fields[a]}


def _fields(conversation: Any, conversation_A: Any, conversation_B: Any) -> dict[str, Any]:
    given = {"conversation": conversation, "conversation_A": conversation_A, "conversation_B": conversation_B}
    return {k: v for k, v in given.items() if v is not None}
