"""`ICRM`: an LLM made into a reward model by a rubric and a few scored shots.

The call semantics follow the original IC-RM: ``icrm(conversation=[...])`` (individual)
or ``icrm(conversation_A=[...], conversation_B=[...])`` (pairwise) returns the feedback
text, or a dict with ``parse_json=True``. `ICRM.judge` / `ICRM.ajudge` return typed
feedback with the raw text, usage and any parse error.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import re
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from . import settings
from ._loop import LoopThread
from .config import ICRMConfig
from .batch import run_batch
from .conversation import Conversation, check_same_context
from .engines import Engine, GenerationRequest, GenerationResult, create_engine
from .engines.base import DEFAULT_TIMEOUT_S, check_generation_kwargs
from .engines.cache import GenerationCache
from .engines.registry import resolve_api_key
from .engines.retry import RetryPolicy
from .engines.runner import RequestRunner, UsageTotals
from .errors import ConfigError, ICRMError, InputError
from .feedback import (
    END_OF_FEEDBACK,
    Feedback,
    build_feedback,
    check_rm_type,
    feedback_json_schema,
    feedback_keys,
    parse_feedback,
)
from .inputs import INPUT_FIELDS
from .logs import enable_stderr_logging
from .scoring import ScoreSummary, score_file
from .shots import Shot, ShotsPool
from .neutralize import heading_pattern, neutralize
from .template import TEMPLATE_KEYS, Template, feedback_template_keys, render_feedback

if TYPE_CHECKING:
    import datasets

__all__ = ["ICRM", "DEFAULT_GENERATION_KWARGS", "DEFAULT_CONCURRENCY"]

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
RENDERED_SHOTS_CACHE_SIZE = 256  # distinct shot sets kept rendered (random mode makes many)


class ICRM:
    """An in-context reward model.

    Args:
        model_name: the judge model. None with ``engine=None`` = the embedded
            SmolLM2-135M-Instruct on the ``llamacpp`` engine (CPU, no key, no network).
            For ``llamacpp`` a path to a ``.gguf`` file.
        shots_pool_path: a JSON list / JSONL file of shots; None = icrm's default pool
            for `rm_type`.
        rm_type: ``individual`` (score 1–10) or ``pairwise`` (choice A++ … B++).
        engine: an engine name (see `icrm.engines.ENGINE_NAMES`); None = ``llamacpp``
            when `model_name` is None, else ``vllm`` (the original default).
        num_workers: local engines: servers to launch.
        num_gpu_per_worker: vllm / sglang: GPUs per server.
        use_cache: answer identical requests (same engine, model, mode, prompt and
            generation kwargs) from a persistent SQLite cache; only successes are stored.
        overwrite_cache: call the engine even when the cache has an answer, and store
            the new one.
        completion: True = completion mode (raw prompt), False = chat mode (the whole
            prompt is the user message), None = the engine's default.
        num_shots: shots shown before each conversation (0 allowed).
        template_path, shot_template_path, feedback_template_path: custom templates
            (``{$key}`` text, or Jinja2 when the file ends in ``.j2``).
        verbose: log each full prompt to stderr.
        seed: seeds this instance's shot sampler (``random`` mode).
        shot_sampling_mode: ``fixed`` (the first `num_shots`) or ``random``.
        base_url: a server to send requests to instead of the engine's default.
        api_key: the API key; defaults to the vendor's environment variable.
        api_version: ``azure`` only.
        worker_addrs: local engines: base URLs of servers that already run.
        worker_args: extra command-line arguments for launched servers.
        timeout: per-request timeout in seconds.
        max_retries: retries after a failed try (429, 5xx, timeouts, connection
            errors; never other 4xx); default ``ICRM_RETRY_ATTEMPTS`` - 1, else 3.
        cache_dir: where the generation cache lives (default ``ICRM_CACHE_DIR`` or the
            user cache directory).
        log_file: a JSONL file to append every request and response to (keys redacted).
        constrain_output: ask the server for JSON constrained to the feedback schema;
            None = the engine's default (on for ``llamacpp`` only).

    Raises:
        ConfigError: a bad argument, template or shots pool, or a missing package/key.
        EngineError: a worker failed to start.

    Use as a context manager, or call `close()`, to stop the workers it started.
    """

    def __init__(
        self,
        model_name: str | None = None,
        shots_pool_path: str | Path | None = None,
        rm_type: str = "individual",
        engine: str | None = None,
        num_workers: int = 1,
        num_gpu_per_worker: int = 1,
        use_cache: bool = False,
        overwrite_cache: bool = False,
        completion: bool | None = None,
        num_shots: int = 3,
        template_path: str | Path | None = None,
        shot_template_path: str | Path | None = None,
        feedback_template_path: str | Path | None = None,
        verbose: bool = False,
        seed: int = 42,
        shot_sampling_mode: str = "fixed",
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        api_version: str | None = None,
        worker_addrs: Sequence[str] | None = None,
        worker_args: Sequence[str] = (),
        timeout: float = DEFAULT_TIMEOUT_S,
        max_retries: int | None = None,
        cache_dir: str | Path | None = None,
        log_file: str | Path | None = None,
        constrain_output: bool | None = None,
    ) -> None:
        options = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        self._setup(ICRMConfig.build(**options))

    @classmethod
    def from_config(cls, config: ICRMConfig) -> ICRM:
        """An `ICRM` from a validated `ICRMConfig` (launching its workers).

        Raises:
            ConfigError / EngineError: as `ICRM`.
        """
        icrm = cls.__new__(cls)
        icrm._setup(config)
        return icrm

    def _setup(self, config: ICRMConfig) -> None:
        self.config = config
        rm_type = self.rm_type = config.rm_type
        self.num_shots = config.num_shots
        self.shot_sampling_mode = config.shot_sampling_mode
        self.seed = config.seed
        self.verbose = config.verbose
        self._rng = random.Random(config.seed)
        self.template = _load_template(config.template_path, rm_type, "overall", rm_type)
        self.shot_template = _load_template(config.shot_template_path, rm_type, "shot", f"{rm_type}_shot")
        self.feedback_template = _load_feedback_template(config.feedback_template_path, rm_type)
        self.shots_pool = ShotsPool.load(config.shots_pool_path, rm_type)
        self._rendered_shots: dict[tuple[int, ...], str] = {}
        # Inserted text may not repeat a section heading of these templates.
        self._headings = heading_pattern(t.text for t in (self.template, self.shot_template))
        self.template_hash = hashlib.sha256(
            "\0".join(t.text for t in (self.template, self.shot_template, self.feedback_template)).encode()
        ).hexdigest()[:12]
        # Check num_shots and the mode now, not at the first call.
        self.shots_pool.sample(config.num_shots, config.shot_sampling_mode, random.Random(config.seed))
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
        engine_name = config.engine or ("llamacpp" if config.model_name is None else "vllm")
        self._loop = LoopThread()
        self._pid = os.getpid()
        try:
            self.engine: Engine = create_engine(
                engine_name, config.model_name,
                completion=config.completion, base_url=config.base_url, api_key=config.api_key,
                api_version=config.api_version, num_workers=config.num_workers,
                num_gpu_per_worker=config.num_gpu_per_worker, worker_addrs=config.worker_addrs,
                worker_args=config.worker_args, timeout_s=config.timeout,
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

    # -- shots and prompts ------------------------------------------------------------

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
        return self.shots_pool.sample(
            self.num_shots if num_shots is None else num_shots, mode or self.shot_sampling_mode, self._rng
        )

    def render_prompt(
        self,
        conversation: Any = None,
        conversation_A: Any = None,
        conversation_B: Any = None,
        shots: Sequence[dict[str, Any] | Shot] | None = None,
    ) -> str:
        """The full prompt for one judgement: instruction, rules, shots, then the example.

        Args:
            conversation: individual mode: the conversation to judge.
            conversation_A, conversation_B: pairwise mode: the two conversations.
            shots: shot dicts (or `Shot` objects) to show; None = sample from the pool.

        Returns:
            The prompt text, ending with ``### Feedback\\n<|begin_of_feedback|>``.

        Raises:
            InputError: an invalid conversation, naming the turn.
            ConfigError: an invalid shot, naming its index and field.
        """
        return self._build_prompt(conversation, conversation_A, conversation_B, shots)[0]

    def _build_prompt(self, conversation: Any, conversation_A: Any, conversation_B: Any,
                      shots: Sequence[dict[str, Any] | Shot] | None) -> tuple[str, list[Shot]]:
        conversations = self._conversations(conversation, conversation_A, conversation_B)
        if shots is None:
            chosen = self._sample()
            # Pool shots live as long as the pool, so their identities key the rendered
            # block: with fixed shots it is rendered once per instance, not per item.
            key = tuple(id(s) for s in chosen)
            rendered_shots = self._rendered_shots.get(key)
            if rendered_shots is None:
                if len(self._rendered_shots) >= RENDERED_SHOTS_CACHE_SIZE:
                    self._rendered_shots.clear()
                rendered_shots = self._rendered_shots[key] = self._render_shots(chosen)
        else:
            chosen = ShotsPool.from_records(shots, self.rm_type, "shots argument").shots
            rendered_shots = self._render_shots(chosen)
        return self.template.render({"shots": rendered_shots, **_example_values(conversations, self._headings)}), chosen

    def _render_shots(self, shots: Sequence[Shot]) -> str:
        return "\n\n".join(
            self.shot_template.render({
                "index": i,
                **_example_values(s.conversations, self._headings),
                "feedback": render_feedback(self.feedback_template, _neutralize_feedback(s.feedback, self._headings)),
            })
            for i, s in enumerate(shots, 1)
        )

    def _conversations(self, conversation: Any, conversation_A: Any, conversation_B: Any) -> tuple[Conversation, ...]:
        if self.rm_type == "individual":
            if conversation is None:
                raise InputError("individual mode needs 'conversation' (for two conversations use rm_type='pairwise')")
            if conversation_A is not None or conversation_B is not None:
                raise InputError("individual mode takes 'conversation', not conversation_A / conversation_B")
            return (Conversation.from_messages(conversation),)
        if conversation_A is None or conversation_B is None:
            raise InputError("pairwise mode needs both 'conversation_A' and 'conversation_B'")
        if conversation is not None:
            raise InputError("pairwise mode takes conversation_A and conversation_B, not 'conversation'")
        pair = (Conversation.from_messages(conversation_A, "conversation_A"),
                Conversation.from_messages(conversation_B, "conversation_B"))
        check_same_context(*pair)
        return pair

    @property
    def usage(self) -> UsageTotals:
        """Totals over every request of this instance: requests, prompt / completion /
        cached tokens, errors and cache hits."""
        return self.runner.usage

    def _request(self, prompt: str, generation_kwargs: dict[str, Any]) -> GenerationRequest:
        kwargs = check_generation_kwargs({**DEFAULT_GENERATION_KWARGS, **generation_kwargs})
        schema = feedback_json_schema(self.rm_type) if self.constrain_output else None
        if self.engine.completion:
            return GenerationRequest(prompt=prompt, kwargs=kwargs, json_schema=schema)
        return GenerationRequest(messages=[{"role": "user", "content": prompt}], kwargs=kwargs, json_schema=schema)

    # -- judging ---------------------------------------------------------------------

    async def _agenerate(self, conversation: Any, conversation_A: Any, conversation_B: Any,
                         shots: Any, generation_kwargs: dict[str, Any]) -> tuple[GenerationResult, list[Shot]]:
        prompt, chosen = self._build_prompt(conversation, conversation_A, conversation_B, shots)
        if self.verbose:
            logger.info("prompt:\n%s", prompt)
        return await self.runner.generate(self._request(prompt, generation_kwargs)), chosen

    async def ajudge(
        self,
        conversation: Any = None,
        conversation_A: Any = None,
        conversation_B: Any = None,
        shots: Sequence[dict[str, Any] | Shot] | None = None,
        **generation_kwargs: Any,
    ) -> Feedback:
        """Judge one conversation (individual) or a pair (pairwise), asynchronously.

        Args:
            conversation / conversation_A, conversation_B: as in `render_prompt`.
            shots: shots to show; None = sample from the pool.
            **generation_kwargs: override `DEFAULT_GENERATION_KWARGS` (``temperature``,
                ``max_tokens`` in tokens, ``top_p``, ``stop``, ``seed``, ...).

        Returns:
            `IndividualFeedback` (``score`` 1–10) or `PairwiseFeedback` (``choice``),
            with ``raw_text`` and ``usage``. An unparseable answer is not raised: its
            ``parse_error`` says why and the score/choice is None.

        Raises:
            InputError / ConfigError: bad conversations or shots.
            EngineError: the engine failed.
        """
        return await self._async(self._ajudge(conversation, conversation_A, conversation_B, shots, generation_kwargs))

    async def _ajudge(self, conversation: Any, conversation_A: Any, conversation_B: Any, shots: Any,
                      generation_kwargs: dict[str, Any]) -> Feedback:
        result, chosen = await self._agenerate(conversation, conversation_A, conversation_B, shots, generation_kwargs)
        return build_feedback(result.text, self.rm_type, result.usage, finish_reason=result.finish_reasons[0],
                              cache_hit=result.cache_hit, latency_s=result.latency_s, shot_ids=[s.id for s in chosen])

    def judge(
        self,
        conversation: Any = None,
        conversation_A: Any = None,
        conversation_B: Any = None,
        shots: Sequence[dict[str, Any] | Shot] | None = None,
        **generation_kwargs: Any,
    ) -> Feedback:
        """The synchronous `ajudge`: same arguments, returns, and errors."""
        return self._sync(self._ajudge(conversation, conversation_A, conversation_B, shots, generation_kwargs))

    # -- many at once ----------------------------------------------------------------

    async def ajudge_stream(
        self,
        items: Iterable[dict[str, Any]],
        concurrency: int = DEFAULT_CONCURRENCY,
        shots: Sequence[dict[str, Any] | Shot] | None = None,
        **generation_kwargs: Any,
    ) -> AsyncIterator[tuple[int, Feedback]]:
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

    async def _ajudge_stream(self, items: Iterable[dict[str, Any]], concurrency: int, shots: Any,
                             generation_kwargs: dict[str, Any]) -> AsyncIterator[tuple[int, Feedback]]:
        check_generation_kwargs(generation_kwargs)
        if shots is not None:
            shots = ShotsPool.from_records(shots, self.rm_type, "shots argument").shots

        async def work(indexed: tuple[int, dict[str, Any]]) -> Feedback:
            return await self._ajudge_item(indexed[1], shots, generation_kwargs)

        async for (index, _), feedback in run_batch(enumerate(items), work, concurrency):
            yield index, feedback

    async def ajudge_item(self, item: Any, shots: Any = None, generation_kwargs: dict[str, Any] | None = None) -> Feedback:
        """`ajudge` for one item dict (``conversation``, or ``conversation_A`` and
        ``conversation_B``) that records input and engine errors on the feedback's
        ``error`` instead of raising them — for batches and services.

        Every fault while judging this item becomes its ``error`` with an
        ``error_kind`` (``input``, ``engine``, ``engine_unavailable``, ``engine_status``,
        ``config``; ``internal`` for a bug, logged with its traceback), so one item never
        stops the others. Check the caller's shots and generation kwargs before a batch
        (`check_generation_kwargs`): they apply to every item.
        """
        return await self._async(self._ajudge_item(item, shots, generation_kwargs))

    async def _ajudge_item(self, item: Any, shots: Any, generation_kwargs: dict[str, Any] | None) -> Feedback:
        generation_kwargs = generation_kwargs or {}
        try:
            if not isinstance(item, dict):
                raise InputError(f"expected an item dict with {' and '.join(INPUT_FIELDS[self.rm_type])}, got {type(item).__name__}")
            extra = sorted(set(item) - set(INPUT_FIELDS[self.rm_type]))
            if extra:
                raise InputError(f"unexpected field(s) {', '.join(extra)} for rm_type={self.rm_type!r}")
            return await self._ajudge(item.get("conversation"), item.get("conversation_A"), item.get("conversation_B"),
                                      shots, generation_kwargs)
        except ICRMError as error:
            return build_feedback("", self.rm_type, error=str(error), error_kind=error.kind)
        except Exception as error:  # a bug: logged in full, recorded on this item only
            logger.exception("internal error while judging an item")
            return build_feedback("", self.rm_type, error=f"internal error: {type(error).__name__}: {error}",
                                  error_kind="internal")

    async def ajudge_many(
        self,
        items: Iterable[dict[str, Any]],
        concurrency: int = DEFAULT_CONCURRENCY,
        shots: Sequence[dict[str, Any] | Shot] | None = None,
        **generation_kwargs: Any,
    ) -> list[Feedback]:
        """`ajudge_stream`, collected: one feedback per item, in input order."""
        return await self._async(self._ajudge_many(items, concurrency, shots, generation_kwargs))

    async def _ajudge_many(self, items: Iterable[dict[str, Any]], concurrency: int, shots: Any,
                           generation_kwargs: dict[str, Any]) -> list[Feedback]:
        results: dict[int, Feedback] = {}
        async for index, feedback in self._ajudge_stream(items, concurrency, shots, generation_kwargs):
            results[index] = feedback
        return [results[i] for i in range(len(results))]

    def judge_many(
        self,
        items: Iterable[dict[str, Any]],
        concurrency: int = DEFAULT_CONCURRENCY,
        shots: Sequence[dict[str, Any] | Shot] | None = None,
        **generation_kwargs: Any,
    ) -> list[Feedback]:
        """The synchronous `ajudge_many`."""
        return self._sync(self._ajudge_many(items, concurrency, shots, generation_kwargs))

    def judge_stream(
        self,
        items: Iterable[dict[str, Any]],
        concurrency: int = DEFAULT_CONCURRENCY,
        shots: Sequence[dict[str, Any] | Shot] | None = None,
        **generation_kwargs: Any,
    ) -> Iterator[tuple[int, Feedback]]:
        """The synchronous `ajudge_stream`: ``(index, feedback)`` as each finishes."""
        self._check_process()
        return self._loop.iterate(self._ajudge_stream(items, concurrency, shots, generation_kwargs))

    judge_iter = judge_stream  # its first name

    def rm_multi(
        self,
        conversations: Sequence[Any] | None = None,
        conversations_A: Sequence[Any] | None = None,
        conversations_B: Sequence[Any] | None = None,
        shots: Sequence[dict[str, Any] | Shot] | None = None,
        parse_json: bool = False,
        concurrency: int = DEFAULT_CONCURRENCY,
        **generation_kwargs: Any,
    ) -> datasets.Dataset:
        """Judge many conversations, as the original IC-RM's ``*_rm_multi``.

        Args:
            conversations: individual mode: the conversations.
            conversations_A, conversations_B: pairwise mode: equal-length lists.
            parse_json: return parsed feedback dicts instead of the raw text.
            concurrency, shots, **generation_kwargs: as `ajudge_stream`.

        Returns:
            A `datasets.Dataset` with the input column(s), ``feedback`` (the text, or the
            dict with ``parse_json=True``; None when unparseable or failed) and ``error``.

        Raises:
            InputError: pairwise lists of different lengths.
        """
        import datasets

        if self.rm_type == "individual":
            columns = {"conversation": list(conversations or [])}
        else:
            a, b = list(conversations_A or []), list(conversations_B or [])
            if len(a) != len(b):
                raise InputError(f"conversations_A has {len(a)} items but conversations_B has {len(b)}")
            columns = {"conversation_A": a, "conversation_B": b}
        items = [dict(zip(columns, values)) for values in zip(*columns.values())]
        results = self.judge_many(items, concurrency, shots, **generation_kwargs)
        if parse_json:
            feedback: list[Any] = [r.to_dict() if r.ok else None for r in results]
        else:
            feedback = [r.raw_text if r.error is None else None for r in results]
        return datasets.Dataset.from_dict({**columns, "feedback": feedback, "error": [r.error or r.parse_error for r in results]})

    def individual_rm_multi(self, conversations: Sequence[Any], shots: Any = None, parse_json: bool = False,
                            **kwargs: Any) -> datasets.Dataset:
        """`rm_multi` for individual mode."""
        self._require_rm_type("individual")
        return self.rm_multi(conversations=conversations, shots=shots, parse_json=parse_json, **kwargs)

    def pairwise_rm_multi(self, conversations_A: Sequence[Any], conversations_B: Sequence[Any], shots: Any = None,
                          parse_json: bool = False, **kwargs: Any) -> datasets.Dataset:
        """`rm_multi` for pairwise mode."""
        self._require_rm_type("pairwise")
        return self.rm_multi(conversations_A=conversations_A, conversations_B=conversations_B, shots=shots,
                             parse_json=parse_json, **kwargs)

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
        """Run a coroutine that uses this ICRM (e.g. `icrm.evaluation.evaluate`) on its
        private event loop, from synchronous code; returns its result or raises its error."""
        return self._sync(awaitable)

    # -- where work runs -----------------------------------------------------------------

    def _check_process(self) -> None:
        # After a fork (datasets.map(num_proc=N) with a global ICRM), the loop thread and
        # the clients are the parent's: rebuild them before the child's first call.
        if self._pid != os.getpid():
            self._after_fork_in_child()

    def _sync(self, coro: Coroutine[Any, Any, T]) -> T:
        self._check_process()
        return self._loop.run(coro)

    async def _async(self, coro: Coroutine[Any, Any, T]) -> T:
        self._check_process()
        return await self._loop.arun(coro)

    def run_fields(self, generation_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
        """What defines this instance's judgements (a run's fingerprint fields): model,
        engine, rm type, mode (completion / chat), constrained output, template hash,
        shots (pool hash, number, sampling mode, seed) and the generation kwargs in
        effect (defaults merged with `generation_kwargs`)."""
        return {
            "model": self.model_name,
            "engine": self.engine.name,
            "rm_type": self.rm_type,
            "mode": "completion" if self.engine.completion else "chat",
            "constrain_output": self.constrain_output,
            "template_hash": self.template_hash,
            "shots_hash": self.shots_pool.hash,
            "seed": self.seed,
            "num_shots": self.num_shots,
            "shot_sampling_mode": self.shot_sampling_mode,
            "generation_kwargs": {**DEFAULT_GENERATION_KWARGS, **(generation_kwargs or {})},
        }

    provenance = run_fields

    def check_generation_kwargs(self, kwargs: dict[str, Any], also: Sequence[str] = ()) -> dict[str, Any]:
        """Validate a caller's generation kwargs (see `icrm.engines.base.check_generation_kwargs`).

        Raises:
            ConfigError: an unknown name (hinting at `also`, the caller's other options)
                or a bad value.
        """
        return check_generation_kwargs(kwargs, also)

    def rm(
        self,
        conversation: Any = None,
        conversation_A: Any = None,
        conversation_B: Any = None,
        shots: Sequence[dict[str, Any] | Shot] | None = None,
        parse_json: bool = False,
        **generation_kwargs: Any,
    ) -> str | dict[str, Any]:
        """Judge, returning the original IC-RM's shapes.

        The original README's ``datasets.map`` recipe calls ``model(**row)`` on rows of
        an ``inputs`` column: ``icrm(inputs={...})`` (one item) or ``icrm(inputs=[...])``
        (``batched=True``: the items are judged concurrently) returns the column dict
        ``{"feedback": ..., "error": ...}`` that ``datasets.map`` merges into the dataset
        (one value, or one per item; a failed item's feedback is None and its error set).

        Returns:
            The model's feedback text; with ``parse_json=True`` the feedback as a dict
            (``score`` an int 1–10, or ``choice`` one of A++, A+, A=B, B+, B++).

        Raises:
            FeedbackParseError: ``parse_json=True`` and the text holds no valid
                feedback; its ``raw_text`` keeps the answer.
            InputError / ConfigError / EngineError: as `ajudge`.
        """
        if "inputs" in generation_kwargs:
            return self._rm_inputs(generation_kwargs.pop("inputs"), shots, parse_json, generation_kwargs)
        result = self._sync(self._agenerate(conversation, conversation_A, conversation_B, shots, generation_kwargs))[0]
        return parse_feedback(result.text, self.rm_type, result.finish_reasons[0]) if parse_json else result.text

    __call__ = rm

    def _rm_inputs(self, inputs: Any, shots: Any, parse_json: bool, generation_kwargs: dict[str, Any]) -> dict[str, Any]:
        batched = isinstance(inputs, (list, tuple))
        items = list(inputs) if batched else [inputs]
        if not all(isinstance(item, dict) for item in items):
            raise InputError("inputs must be an item dict (conversation, or conversation_A and conversation_B) or a "
                             "list of them, as datasets.map passes an 'inputs' column")
        feedbacks = self.judge_many(items, shots=shots, **generation_kwargs)
        if parse_json:
            values: list[Any] = [f.to_dict() if f.ok else None for f in feedbacks]
        else:  # the text, as the original returned it, whenever the judge answered
            values = [f.raw_text if f.error is None else None for f in feedbacks]
        errors = [f.error or f.parse_error for f in feedbacks]
        return {"feedback": values, "error": errors} if batched else {"feedback": values[0], "error": errors[0]}

    def individual_rm(self, conversation: Any, shots: Any = None, parse_json: bool = False,
                      **generation_kwargs: Any) -> str | dict[str, Any]:
        """`rm` for one conversation; needs ``rm_type='individual'``."""
        self._require_rm_type("individual")
        return self.rm(conversation=conversation, shots=shots, parse_json=parse_json, **generation_kwargs)

    def pairwise_rm(self, conversation_A: Any, conversation_B: Any, shots: Any = None,
                    parse_json: bool = False, **generation_kwargs: Any) -> str | dict[str, Any]:
        """`rm` for two conversations; needs ``rm_type='pairwise'``."""
        self._require_rm_type("pairwise")
        return self.rm(conversation_A=conversation_A, conversation_B=conversation_B, shots=shots,
                       parse_json=parse_json, **generation_kwargs)

    def _require_rm_type(self, rm_type: str) -> None:
        if self.rm_type != rm_type:
            raise ConfigError(f"this ICRM was built with rm_type={self.rm_type!r}; build one with rm_type={rm_type!r}")

    # -- lifecycle -------------------------------------------------------------------

    def close(self) -> None:
        """Close the engine and stop every worker this instance started. Idempotent."""
        if self._pid != os.getpid():  # a forked copy: the parent's loop and workers are not ours
            return
        if self._loop.closed:
            return
        try:
            self._loop.run(self.runner.aclose() if hasattr(self, "runner") else self.engine.aclose())
        finally:
            self._loop.close()

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

    async def aclose(self) -> None:
        """`close`, awaited from any event loop."""
        if self._pid != os.getpid() or self._loop.closed:
            return
        await asyncio.to_thread(self.close)

    async def __aenter__(self) -> ICRM:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> ICRM:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"ICRM(engine={self.engine.name!r}, model_name={self.model_name!r}, "
                f"rm_type={self.rm_type!r}, num_shots={self.num_shots})")


def _example_values(conversations: Sequence[Conversation], headings: re.Pattern[str] | None) -> dict[str, str]:
    """Template values for one example; conversation text has its markers neutralised."""
    first = conversations[0]
    values = {"history": first.history, "user_query": first.user_query}
    if len(conversations) == 1:
        values["model_output"] = first.model_output
    else:
        values["model_output_A"] = conversations[0].model_output
        values["model_output_B"] = conversations[1].model_output
    return {k: neutralize(v, headings) for k, v in values.items()}


def _neutralize_feedback(feedback: dict[str, Any], headings: re.Pattern[str] | None) -> dict[str, Any]:
    return {k: neutralize(v, headings) if isinstance(v, str) else v for k, v in feedback.items()}


def _load_template(path: str | Path | None, rm_type: str, role: str, default: str) -> Template:
    required = TEMPLATE_KEYS[(rm_type, role)]
    if path is None:
        return Template.default(default)
    return Template.load(path, required)


def _load_feedback_template(path: str | Path | None, rm_type: str) -> Template:
    if path is None:
        return Template.default(f"{rm_type}_feedback")
    template = Template.load(path, None)  # its keys depend on its syntax
    template.check_keys(feedback_template_keys(template, feedback_keys(rm_type)))
    return template
