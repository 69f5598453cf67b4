"""`JudgeSpec`: a judge's configuration made concrete — its rm type and judging method
resolved once, its templates and shots pool loaded and checked — with no engine, no
worker and no event loop.

Everything that decides a run before the first request lives here: the prompt of an
item, the shots it sees, the generation kwargs it is sent with, the run's fingerprint
fields. `icrm.core.ICRMCore` (an `ICRM`) is a `JudgeSpec` with an engine; the Ray
driver and a run being prepared (`icrm.scoring.ScoreRun`) need only the spec.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from .config import ICRMConfig
from .conversation import Conversation
from .engines.base import check_generation_kwargs, estimate_tokens
from .groups import GroupStrategy, strategy_for
from .methods import JudgingMethod, get_method
from .prompt import PromptBuilder
from .provenance import engine_choice, generation_kwargs, run_fields
from .rm_types import RMType, judged_rm_type
from .shot_selection import SHOT_SELECTION_MODES, check_no_leak, check_num_shots, ordered, select_shots
from .shot_selection.budget import within_budget
from .shots import Shot, ShotsPool

__all__ = ["JudgeSpec", "ShotsArg", "item_fields"]

ShotsArg = Sequence[Mapping[str, Any] | Shot] | None


class JudgeSpec:
    """A judge without its engine (see the module docstring).

    Args:
        config: the configuration.

    Attributes:
        config: the configuration.
        rm_type: the rm type (`icrm.rm_types.RMType`), resolved once.
        method: the judging method, resolved once (`icrm.methods.JudgingMethod`).
        group_strategy: how `judge_group` judges a group (`icrm.groups`).
        prompts: the prompt builder of `method` (templates and shots pool).
        engine_name, model_name: what will judge (`icrm.provenance.engine_choice`).

    Raises:
        ConfigError: a bad template or shots pool, or more shots than the pool holds.
    """

    def __init__(self, config: ICRMConfig) -> None:
        self._load_spec(config)

    def _load_spec(self, config: ICRMConfig) -> None:
        self.config = config
        self.rm_type: RMType = judged_rm_type(config.rm_type, config.rubric, config.max_criteria)
        self.method: JudgingMethod = self.rm_type.method_variant(get_method(config.method))
        self.group_strategy: GroupStrategy = strategy_for(self.rm_type, config.group_strategy)
        self._builders: dict[tuple[str, tuple[str, ...] | None], PromptBuilder] = {}  # (method, rubric part)
        self.prompts = self.builder(self.method)
        self._rng = random.Random(config.seed)
        self._shot_tokens: dict[bytes, int] = {}  # a rendered shot's tokens by its digest, counted once
        # Check num_shots, the mode and the pool's fit to the method now, not at the first call.
        SHOT_SELECTION_MODES.canonical(config.shot_sampling_mode)
        check_num_shots(config.num_shots, len(self.shots_pool), self.shots_pool.source)
        self.shots_pool.check_method(self.method.answer_keys(self.rm_type), self.method.name, config.num_shots)
        choice = engine_choice(config, self.method)
        self.engine_name: str = choice.name
        self.model_name: str | None = choice.model

    num_shots = property(lambda self: self.config.num_shots, doc="Shots shown per judgement.")
    shot_sampling_mode = property(lambda self: self.config.shot_sampling_mode,
                                  doc="How shots are chosen (`icrm.shot_selection`).")
    seed = property(lambda self: self.config.seed, doc="The seed of shot sampling, placement and sampled generation.")
    verbose = property(lambda self: self.config.verbose, doc="Whether each prompt is logged.")
    template_hash = property(lambda self: self.prompts.template_hash, doc="12 hex digits of the templates' SHA-256.")

    @property
    def shots_pool(self) -> ShotsPool:
        """The shots pool."""
        return self.prompts.pool

    def method_for(self, method: str | JudgingMethod | None) -> JudgingMethod:
        """`method` resolved (None: this judge's own, resolved once at start).

        Raises:
            ConfigError: an unknown method name.
        """
        return self.method if method is None else self.rm_type.method_variant(get_method(method))

    def builder(self, method: JudgingMethod, rm_type: RMType | None = None) -> PromptBuilder:
        """The prompt builder of `method` for `rm_type` (default: this judge's; a rubric's
        part asks its own criteria), loaded once each.

        Raises:
            ConfigError: a bad template or shots pool.
        """
        rm_type = rm_type or self.rm_type
        key = (method.name, getattr(rm_type, "part", None))
        found = self._builders.get(key)
        if found is None:
            config = self.config
            found = self._builders[key] = PromptBuilder.load(
                rm_type, method, config.template_path, config.shot_template_path, config.feedback_template_path,
                config.shots_pool_path)
        return found

    def run_fields(self, generation_kwargs: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
        """What defines this judge's runs (`icrm.provenance.run_fields`: the fingerprint
        fields) with the caller's `generation_kwargs` and a surface's `extra` fields."""
        return run_fields(self.config, generation_kwargs, self.prompts, **extra)

    provenance = run_fields

    def check_generation_kwargs(self, kwargs: Mapping[str, Any], also: Sequence[str] = ()) -> dict[str, Any]:
        """Validate a caller's generation kwargs (`icrm.engines.base.check_generation_kwargs`).

        Raises:
            ConfigError: an unknown name (hinting at `also`, the caller's other options)
                or a bad value.
        """
        return check_generation_kwargs(dict(kwargs), also)

    def generation_kwargs(self, method: JudgingMethod, given: Mapping[str, Any]) -> dict[str, Any]:
        """The generation kwargs one judgement is sent with (`icrm.provenance.generation_kwargs`)."""
        return generation_kwargs(self.config, method, self.rm_type, given)

    def sample_shots(self, num_shots: int | None = None, mode: str | None = None) -> list[dict[str, Any]]:
        """Pick shots from the pool, as the shot dicts it was loaded from.

        Args:
            num_shots: how many (default: this judge's `num_shots`).
            mode: ``fixed`` or ``random`` (default: this judge's mode). ``random`` draws
                from this judge's generator seeded with `seed`, so two judges with the
                same seed draw the same sequence.

        Raises:
            ConfigError: unknown mode, or more shots than the pool holds.
        """
        return [s.record for s in self.sample(num_shots, mode)]

    def sample(self, num_shots: int | None = None, mode: str | None = None) -> list[Shot]:
        """`sample_shots` as `Shot` objects."""
        return self.prompts.sample(self.num_shots if num_shots is None else num_shots,
                                   mode or self.shot_sampling_mode, self._rng)

    def item_rng(self, key: str | None, purpose: str = "") -> random.Random:
        """The random generator of one item's shots: seeded by the seed, the item's id and
        `purpose` (a resumed or retried item draws the same); this judge's own without an id."""
        return self._rng if key is None else random.Random(f"{self.seed}:{key}{purpose}")

    def item_shots(self, fields: Mapping[str, Any], shots: ShotsArg = None, key: str | None = None,
                   method: JudgingMethod | None = None) -> list[Shot]:
        """The shots one item sees, most wanted first, before the budget and the order:
        chosen by the selection mode, or the caller's `shots` checked.

        Args:
            fields: the item's conversations by field name.
            shots: shot dicts or `Shot` objects; None = chosen from the pool.
            key: the item's id (seeds ``random`` / ``balanced`` choices).
            method: the judging method whose prompt shows them (default: this judge's).

        Raises:
            InputError: a bad conversation, too few shots left once the item's own are left
                out, or a caller's shot that shows the item itself.
            ConfigError: an invalid caller shot, naming its index and field.
        """
        conversations = self.rm_type.conversations(fields)
        if shots is None:
            return self.choose_shots(conversations, key)
        chosen = self.builder(method or self.method).shots(shots)
        check_no_leak(chosen, conversations, self.config.exclude_same_prompt)
        return chosen

    def choose_shots(self, conversations: Sequence[Conversation], key: str | None = None) -> list[Shot]:
        """The pool's shots for the item (or row, or group) made of `conversations`, by
        the selection mode, none of them sharing a conversation with it
        (`icrm.shot_selection.select_shots`).

        Raises:
            InputError: too few shots left once those are left out.
        """
        return select_shots(self.shots_pool, self.num_shots, self.shot_sampling_mode, conversations,
                            self.item_rng(key), self.config.exclude_same_prompt)

    async def shots_shown(self, chosen: Sequence[Shot], method: JudgingMethod, key: str | None,
                          count_tokens: Callable[[str], Awaitable[int | None]]) -> list[list[Shot]]:
        """`chosen` within ``max_shot_tokens`` (dropped from the end, least wanted first),
        in ``shot_order``: one list of shots, or with ``shuffled`` and ``num_samples`` one
        per sample.

        Args:
            chosen: `item_shots`' answer.
            method: the judging method (its shot template is what is counted).
            key: the item's id (seeds the shuffle).
            count_tokens: the engine's counter (None = no tokenizer: `estimate_tokens`).

        Raises:
            EngineError: the server's tokenizer could not be asked.
        """
        budget = self.config.max_shot_tokens
        if budget is not None:
            builder = self.builder(method)

            async def tokens(shot: Shot) -> int:
                text = builder.shot_text(shot)
                key = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()
                if key not in self._shot_tokens:
                    counted = await count_tokens(text)
                    self._shot_tokens[key] = estimate_tokens(text) if counted is None else counted
                return self._shot_tokens[key]

            chosen = await within_budget(chosen, budget, tokens)
        order, rng = self.config.shot_order, self.item_rng(key, ":order")
        samples = self.config.num_samples if order == "shuffled" else 1
        return [ordered(chosen, order, self.shots_pool, rng) for _ in range(samples)]

    def render_prompt(self, conversation: Any = None, conversation_A: Any = None, conversation_B: Any = None,
                      shots: ShotsArg = None, method: str | None = None, conversations: Any = None,
                      **context: Any) -> str:
        """The full prompt for one judgement: instruction, rules, shots, then the example.

        Args:
            conversation: individual mode: the conversation to judge.
            conversation_A, conversation_B: pairwise mode: the two conversations.
            conversations: listwise mode: the group (2 to 32 conversations).
            shots: shot dicts (or `Shot` objects) to show; None = sample from the pool.
            method: the judging method (default: this judge's).
            **context: the item's other fields (``reference``, ``rubric``, ...).

        Returns:
            The prompt text, ending where the judge's answer begins.

        Raises:
            InputError: an invalid conversation, naming the turn.
            ConfigError: an invalid shot, naming its index and field.
        """
        judging = self.method_for(method)
        fields = item_fields(conversation, conversation_A, conversation_B, conversations)
        chosen = self.item_shots(fields, shots, method=judging)
        return self.builder(judging).render(fields, ordered(chosen, self.config.shot_order, self.shots_pool,
                                                            self.item_rng(None)), context)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(engine={self.engine_name!r}, model_name={self.model_name!r}, "
                f"rm_type={self.rm_type.name!r}, num_shots={self.num_shots})")


def item_fields(conversation: Any = None, conversation_A: Any = None, conversation_B: Any = None,
                conversations: Any = None) -> dict[str, Any]:
    """The conversations given, by field name (None values left out)."""
    given = {"conversation": conversation, "conversation_A": conversation_A, "conversation_B": conversation_B,
             "conversations": conversations}
    return {k: v for k, v in given.items() if v is not None}
