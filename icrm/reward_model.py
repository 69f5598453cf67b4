"""`ICRM`: an LLM made into a reward model by a rubric and a few scored shots.

The original IC-RM's shapes, as a thin layer over the async core (`icrm.core`): its
positional signature, ``icrm(conversation=[...])`` (individual) or
``icrm(conversation_A=[...], conversation_B=[...])`` (pairwise) returning the feedback
text (or a dict with ``parse_json=True``), ``individual_rm`` / ``pairwise_rm``, the
``*_rm_multi`` batch forms returning a `datasets.Dataset`, and the ``inputs=`` form of
the original README's ``datasets.map`` recipe. `ICRM.judge` / `ICRM.ajudge` and the rest
of the typed API come from `icrm.core.ICRMCore`.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import ICRMConfig
from .conversation import Conversation
from .core import DEFAULT_CONCURRENCY, DEFAULT_GENERATION_KWARGS, ICRMCore, _on_private_loop, _twin
from .engines.base import check_generation_kwargs
from .errors import ConfigError, FeedbackParseError, InputError
from .feedback import FeedbackBase
from .groups import GroupResult, judge_group
from .shots import Shot

if TYPE_CHECKING:
    import datasets

__all__ = ["ICRM", "DEFAULT_GENERATION_KWARGS", "DEFAULT_CONCURRENCY"]


class ICRM(ICRMCore):
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
        template_path: a custom overall template (``{$key}`` text, or Jinja2 when the
            file ends in ``.j2``).
        shot_template_path: a custom shot template.
        feedback_template_path: a custom feedback template.
        verbose: log each full prompt to stderr.
        seed: seeds shot sampling (``random`` mode), ``random`` placement, and
            generation when it samples (temperature > 0).
        shot_sampling_mode: ``fixed`` (the first `num_shots`) or ``random``.
        **options: every other `ICRMConfig` option, by keyword: ``base_url`` (a server
            to send requests to), ``api_key`` (default: the vendor's variable),
            ``api_version`` (azure), ``worker_addrs`` (servers that already run),
            ``worker_args``, ``timeout`` (seconds a request may take in all),
            ``max_retries``, ``cache_dir``, ``log_file`` (a JSONL log of every request,
            keys redacted), ``constrain_output``, ``method``, ``position``,
            ``num_samples`` (see the docs' Configuration page).

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
        **options: Any,
    ) -> None:
        given = {k: v for k, v in locals().items() if k not in ("self", "__class__", "options")}
        self._setup(ICRMConfig.build(**given, **options))

    @_on_private_loop
    async def ajudge_group(self, conversations: Sequence[Any], key: str | None = None, shots: Any = None,
                           concurrency: int = DEFAULT_CONCURRENCY, context: dict[str, Any] | None = None,
                           **generation_kwargs: Any) -> GroupResult:
        """Judge a group — k ≥ 2 responses to one prompt, as conversations that share
        everything but their last turn — with this judge's ``group_strategy``
        (`icrm.groups`), from any event loop.

        Args:
            conversations: the group, 2 to 32 conversations (OpenAI-style message lists).
            key: the group's id: seeds ``random`` placement and the knockout bracket
                (default: a hash of its content).
            shots: shots for every judgement; None = sampled from the pool.
            concurrency: judgements of this group in flight at most.
            context: the group's other fields (``reference``, ``rubric``), for every
                judgement.
            **generation_kwargs: as `ajudge`.

        Returns:
            A `GroupResult`: one reward in [0, 1] per response (None for a response the
            judge did not judge, with its ``errors`` entry), the ranking, and every
            judgement made. A group that is not one is failed (``input``) on every
            response, with nothing sent.

        Raises:
            ConfigError: bad shots or generation kwargs (they apply to every judgement).
        """
        check_generation_kwargs(generation_kwargs)
        chosen = None if shots is None else self.prompts.shots(shots)
        if chosen is None:
            # One choice for the whole group, so every judgement in it sees the same shots.
            try:
                chosen = self.choose_shots([Conversation.from_messages(c) for c in conversations], key)
            except (InputError, TypeError):
                pass  # not a valid group: each judgement fails on its own, as it would

        async def judge(item: dict[str, Any], item_key: str) -> FeedbackBase:
            return await self.ajudge_item(item, chosen, generation_kwargs, key=item_key)
        config = self.config
        return await judge_group(judge, self.rm_type, self.group_strategy, conversations, key=key, seed=config.seed,
                                 position=config.position, inconsistent_pairs=config.inconsistent_pairs,
                                 concurrency=concurrency, context=context)

    judge_group = _twin(ajudge_group, "judge_group")

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
        feedback = self.judge(conversation, conversation_A, conversation_B, shots, **generation_kwargs)
        if not parse_json:
            return feedback.raw_text
        if not feedback.ok:
            raise FeedbackParseError(feedback.parse_error or "no feedback", feedback.raw_text,
                                     feedback.parse_error_reason or "no_object")
        return feedback.to_dict()

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

        given = {"conversation": conversations, "conversation_A": conversations_A, "conversation_B": conversations_B}
        columns = {f: list(given[f] or []) for f in self.rm_type.input_fields}
        if len({len(v) for v in columns.values()}) > 1:
            raise InputError(" but ".join(f"{f.replace('conversation', 'conversations')} has {len(v)} items"
                                          for f, v in columns.items()))
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

    def _require_rm_type(self, rm_type: str) -> None:
        if self.rm_type != rm_type:
            raise ConfigError(f"this ICRM was built with rm_type={self.rm_type.name!r}; build one with rm_type={rm_type!r}")


def _signature() -> inspect.Signature:
    # The original positional parameters, then every other `ICRMConfig` option as a
    # keyword, so help() and IDEs show them without a second list to keep.
    original = list(inspect.signature(ICRM.__init__).parameters.values())[:-1]
    names = {p.name for p in original}
    extra = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=field.default)
             for name, field in ICRMConfig.model_fields.items() if name not in names]
    return inspect.Signature([*original, *extra], return_annotation=None)


ICRM.__init__.__signature__ = _signature()  # type: ignore[attr-defined]
