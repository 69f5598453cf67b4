"""The engine protocol: one request in, one result out, async first.

Engines know nothing of shots or templates: a request is a finished prompt (completion
mode) or message list (chat mode) plus generation kwargs.
"""

from __future__ import annotations

import difflib
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

from pydantic import BaseModel

from ..errors import ConfigError

__all__ = [
    "GenerationKwargs",
    "GenerationRequest",
    "GenerationResult",
    "Usage",
    "Engine",
    "check_generation_kwargs",
    "GENERATION_KWARGS",
    "estimate_tokens",
]

DEFAULT_TIMEOUT_S = 600.0  # per request; long generations on slow local servers take minutes


class GenerationKwargs(TypedDict, total=False):
    """Sampling parameters, as the OpenAI completions API names them."""

    temperature: float
    top_p: float
    max_tokens: int
    """Upper bound on generated tokens."""
    stop: list[str]
    n: int
    seed: int
    logprobs: int | bool
    top_logprobs: int


# Generation kwargs icrm passes to servers: the OpenAI API's sampling parameters and the
# extra ones vLLM / SGLang / llama.cpp read from the body. Anything else goes in
# ``extra_body={...}``, explicitly, so a typo is an error instead of a failed request.
GENERATION_KWARGS = frozenset({
    "temperature", "top_p", "max_tokens", "stop", "n", "seed", "logprobs", "top_logprobs",
    "presence_penalty", "frequency_penalty", "logit_bias", "user",
    "top_k", "min_p", "repetition_penalty", "min_tokens", "ignore_eos", "skip_special_tokens",
    "extra_body",
})


def check_generation_kwargs(kwargs: dict[str, Any], also: Iterable[str] = ()) -> dict[str, Any]:
    """Check generation kwargs: known names (`GENERATION_KWARGS`) with values of the
    right type; ``extra_body`` (a dict) carries anything a particular server takes.

    Args:
        kwargs: the caller's generation kwargs.
        also: other option names valid where the kwargs were given, for the
            "did you mean" hint of an unknown name.

    Returns:
        `kwargs`, with a single ``stop`` string turned into a list.

    Raises:
        ConfigError: an unknown name (with the closest known one), or a value of the
            wrong type or not finite, naming the kwarg and what it must be.

    >>> check_generation_kwargs({"max_tokens": "many"})
    Traceback (most recent call last):
    ...
    icrm.errors.ConfigError: max_tokens must be a whole number >= 1, got 'many'
    >>> check_generation_kwargs({"temprature": 0.5})
    Traceback (most recent call last):
    ...
    icrm.errors.ConfigError: unknown option 'temprature' (did you mean 'temperature'?); generation kwargs are ...
    """
    unknown = sorted(set(kwargs) - GENERATION_KWARGS)
    if unknown:
        name = unknown[0]
        close = difflib.get_close_matches(name, [*GENERATION_KWARGS, *also], n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"unknown option {name!r}{hint}; generation kwargs are {', '.join(sorted(GENERATION_KWARGS - {'extra_body'}))}; "
            "pass anything else a server takes as extra_body={...}"
        )

    def number(value: Any) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    def whole(value: Any, low: int | None = None) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and (low is None or value >= low)

    checks: dict[str, tuple[Any, str]] = {
        "temperature": (lambda v: number(v) and v >= 0, "a finite number >= 0"),
        "top_p": (lambda v: number(v) and 0 < v <= 1, "a number in (0, 1]"),
        "max_tokens": (lambda v: whole(v, 1), "a whole number >= 1"),
        "n": (lambda v: whole(v, 1), "a whole number >= 1"),
        "seed": (whole, "a whole number"),
        "stop": (lambda v: isinstance(v, list) and all(isinstance(s, str) for s in v), "a string or a list of strings"),
        "presence_penalty": (number, "a finite number"),
        "frequency_penalty": (number, "a finite number"),
        "repetition_penalty": (lambda v: number(v) and v > 0, "a finite number > 0"),
        "min_p": (lambda v: number(v) and 0 <= v <= 1, "a number in [0, 1]"),
        "top_k": (whole, "a whole number"),
        "min_tokens": (lambda v: whole(v, 0), "a whole number >= 0"),
        "top_logprobs": (lambda v: whole(v, 0), "a whole number >= 0"),
        "extra_body": (lambda v: isinstance(v, dict), "a dict of extra request fields"),
    }
    out = dict(kwargs)
    if isinstance(out.get("stop"), str):
        out["stop"] = [out["stop"]]
    for key, (ok, expected) in checks.items():
        if key in out and out[key] is not None and not ok(out[key]):
            raise ConfigError(f"{key} must be {expected}, got {out[key]!r}")
    return out


class Usage(BaseModel):
    """Token counts of one request, as the server reported them."""

    prompt_tokens: int = 0
    """Tokens in the prompt."""
    completion_tokens: int = 0
    """Tokens generated."""
    cached_tokens: int | None = None
    """Prompt tokens served from the server's prefix cache; None when not reported."""

    def __add__(self, other: Usage) -> Usage:
        """The usage of two requests together (cached tokens unknown only when both are).

        >>> (Usage(prompt_tokens=3, cached_tokens=1) + Usage(prompt_tokens=4)).model_dump()
        {'prompt_tokens': 7, 'completion_tokens': 0, 'cached_tokens': 1}
        """
        cached = None if self.cached_tokens is None and other.cached_tokens is None else \
            (self.cached_tokens or 0) + (other.cached_tokens or 0)
        return Usage(prompt_tokens=self.prompt_tokens + other.prompt_tokens,
                     completion_tokens=self.completion_tokens + other.completion_tokens, cached_tokens=cached)


@dataclass(frozen=True)
class GenerationRequest:
    """One generation: exactly one of `prompt` (completion mode) or `messages` (chat mode).

    Attributes:
        prompt: the full prompt text for ``/v1/completions``.
        messages: OpenAI-style ``[{"role", "content"}]`` for ``/v1/chat/completions``.
        kwargs: generation kwargs passed to the server as given.
        json_schema: when set, ask the server to constrain output to this JSON schema.
        choices: when set, ask the server to constrain output to one of these strings
            (where it can: vLLM's ``choice``, llama.cpp's grammar; elsewhere ignored).
    """

    prompt: str | None = None
    messages: list[dict[str, str]] | None = None
    kwargs: GenerationKwargs = field(default_factory=dict)  # type: ignore[assignment]
    json_schema: dict[str, Any] | None = None
    choices: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if (self.prompt is None) == (self.messages is None):
            raise ValueError("GenerationRequest needs exactly one of prompt or messages")


@dataclass(frozen=True)
class GenerationResult:
    """What an engine returns for one request.

    Attributes:
        texts: one generated text per choice (``n`` of them), in order.
        finish_reasons: one per choice (``stop``, ``length``, ...).
        usage: token counts.
        latency_s: wall time of the request in seconds (for a cache hit: of the
            request that filled the cache).
        engine: the registry name of the engine that served it.
        model: the model name sent to the server.
        cache_hit: True when the result came from the generation cache.
        logprobs: per choice, the server's logprobs as a dict (None when not asked).
    """

    texts: tuple[str, ...]
    finish_reasons: tuple[str | None, ...]
    usage: Usage
    latency_s: float
    engine: str
    model: str
    cache_hit: bool = False
    logprobs: tuple[dict[str, Any] | None, ...] | None = None

    @property
    def text(self) -> str:
        """The first choice's text."""
        return self.texts[0]

    @classmethod
    def concat(cls, parts: Sequence[GenerationResult]) -> GenerationResult:
        """The results of requests sent for one (``n`` sent as n requests, or one per
        shot order) as one result: choices in order, usage summed, the longest latency,
        a cache hit only when every part was one."""
        usage = parts[0].usage
        for part in parts[1:]:
            usage = usage + part.usage
        logprobs = None if all(p.logprobs is None for p in parts) else \
            tuple(x for p in parts for x in (p.logprobs or (None,) * len(p.texts)))
        return cls(texts=tuple(t for p in parts for t in p.texts),
                   finish_reasons=tuple(f for p in parts for f in p.finish_reasons), usage=usage,
                   latency_s=max(p.latency_s for p in parts), engine=parts[0].engine, model=parts[0].model,
                   cache_hit=all(p.cache_hit for p in parts), logprobs=logprobs)


class Engine(ABC):
    """Base class of every engine. Subclasses implement `generate` (one try, errors
    mapped into icrm's tree) and `aclose`; retries, cache and usage totals wrap it in
    `icrm.engines.runner.RequestRunner`.

    Attributes:
        name: the registry name (``llamacpp``, ``openai``, ...).
        model: the model name sent with each request.
        completion: True for completion mode (a raw prompt), False for chat mode.
        json_schema_supported: whether `GenerationRequest.json_schema` is honoured.
        constrain_by_default: whether `ICRM` asks for schema-constrained feedback unless
            told otherwise.
        logprobs: whether the engine returns token logprobs when asked (a llama.cpp
            worker only when it was started to).
    """

    name: str
    model: str
    completion: bool
    json_schema_supported: bool = False
    constrain_by_default: bool = False
    logprobs: bool = False

    @abstractmethod
    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """Run one request, once.

        Raises:
            EngineError: any failure, mapped into icrm's error tree
                (`EngineStatusError` carries ``retry_after_s`` when the server sent it).
        """

    async def count_tokens(self, text: str) -> int | None:
        """`text`'s tokens as the server's tokenizer counts them, or None when this
        engine has no tokenize route (callers then estimate: see `estimate_tokens`).

        Raises:
            EngineError: the server could not be asked.
        """
        return None

    async def aclose(self) -> None:
        """Release clients and stop any worker this engine started."""


# Where no tokenizer can be asked: English BPE averages about 4 characters per token;
# 3 overcounts most text, so a budget estimated with it is kept, not overrun.
CHARS_PER_TOKEN_ESTIMATE = 3


def estimate_tokens(text: str) -> int:
    """Tokens of `text` estimated without a tokenizer: one per 3 characters, rounded up.

    >>> estimate_tokens("abcdefg")
    3
    """
    return -(-len(text) // CHARS_PER_TOKEN_ESTIMATE)


def elapsed_since(start: float) -> float:
    """Seconds since `start` (a `time.perf_counter()` value)."""
    return time.perf_counter() - start
