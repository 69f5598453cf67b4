"""The mock server's configuration: rules that map prompts to programmed answers.

The YAML format is inference-mock's (``debug``, ``port``, ``matches`` with ``contains``
and ``response``), plus per-rule ``regex``, ``model``, ``status`` + ``error``,
``body``, ``headers``, ``delay_s``, ``times`` and ``usage``, and the top-level
``strict``. Rules are tried in order; the first that matches answers.

By default the server behaves as the original inference-mock
(instructlab/ci-actions ``actions/inference-mock``), so its configs and the tests
written against it run unchanged: a prompt no rule matches gets HTTP 200 with an empty
text, and a programmed response is returned whole whatever ``max_tokens`` and ``stop``
say. ``strict: true`` is for tests that want to catch mistakes: no match is a 404
quoting the prompt, and ``max_tokens`` / ``stop`` cut the response as a real server
would (``finish_reason`` ``length`` / ``stop``).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import ConfigError

__all__ = ["MockRule", "MockUsage", "MockConfig", "DEFAULT_MOCK_PORT"]

DEFAULT_MOCK_PORT = 11434  # inference-mock's default


class MockUsage(BaseModel):
    """Token counts a rule reports instead of counting whitespace-separated words."""

    model_config = ConfigDict(extra="forbid")

    prompt_tokens: int = Field(ge=0)
    """Reported prompt tokens (Anthropic: ``input_tokens``)."""
    completion_tokens: int = Field(ge=0)
    """Reported completion tokens per choice (Anthropic: ``output_tokens``)."""


class MockRule(BaseModel):
    """One rule. It matches a request when every condition it sets holds.

    A rule with no ``contains``, ``regex`` or ``model`` matches every request (the
    default response); put it last.
    """

    model_config = ConfigDict(extra="forbid")

    contains: list[str] | None = None
    """Substrings that must all occur in the prompt (one string is a list of one)."""
    regex: str | None = None
    """A Python regular expression searched for in the prompt."""
    model: str | None = None
    """Only requests naming this model match."""
    response: str | None = None
    """The text to answer with (required unless ``status`` is an error or ``body`` is set).
    As in inference-mock, any YAML value is accepted: a number or a boolean is sent as
    its text (``42``), a mapping or a list as its JSON (a feedback object written as YAML)."""
    body: str | None = None
    """An exact HTTP body to send instead of an API response (e.g. malformed JSON, to
    test a client's handling of broken servers), with ``status``."""
    status: int = Field(default=200, ge=200, le=599)
    """HTTP status; 4xx/5xx answer with an OpenAI-style error body holding ``error``."""
    error: str | None = None
    """The error message for an error ``status``."""
    headers: dict[str, str] = Field(default_factory=dict)
    """Extra response headers, e.g. ``{"Retry-After": "1"}`` on a 429."""
    delay_s: float = Field(default=0.0, ge=0)
    """Seconds to wait before answering."""
    times: int | None = Field(default=None, ge=1)
    """Match only the first N requests that meet the conditions, then step aside."""
    usage: MockUsage | None = None
    """Fixed token counts for the answer."""
    logprobs: list[dict[str, float]] | None = None
    """Token logprobs to report when a request asks for them (OpenAI's ``logprobs`` /
    ``top_logprobs``, completions and chat): one ``{token: logprob}`` map per generated
    token, its top candidates; the most likely is the token reported as generated."""
    finish_reason: Literal["stop", "length"] | None = None
    """The finish reason to report (e.g. ``length``: the answer was cut by max_tokens),
    whatever the text; None = ``stop``, or ``length`` when strict mode cut it."""

    @model_validator(mode="before")
    @classmethod
    def _inference_mock_values(cls, data: Any) -> Any:
        # inference-mock takes any YAML value as a response, and a string as `contains`.
        if not isinstance(data, Mapping):
            return data
        data = dict(data)
        response = data.get("response")
        if response is not None and not isinstance(response, str):
            data["response"] = json.dumps(response, ensure_ascii=False) if isinstance(response, (dict, list)) \
                else json.dumps(response)
        contains = data.get("contains")
        if isinstance(contains, str):
            data["contains"] = [contains]
        elif isinstance(contains, list):
            data["contains"] = [c if isinstance(c, str) else json.dumps(c) for c in contains]
        return data

    @model_validator(mode="after")
    def _check(self) -> MockRule:
        if self.contains is not None:
            if not self.contains:
                raise ValueError("'contains' is empty: list at least one substring, or drop the key")
            if any(not isinstance(s, str) or not s for s in self.contains):
                raise ValueError("'contains' holds an empty substring")
        if self.regex is not None:
            try:
                re.compile(self.regex)
            except re.error as e:
                raise ValueError(f"'regex' is not a valid regular expression: {e}") from None
        if self.body is not None:
            if self.response is not None or self.error is not None:
                raise ValueError("a 'body' rule sends that body as it is: drop 'response' and 'error'")
        elif self.status >= 400:
            if self.response is not None:
                raise ValueError(f"an error rule (status {self.status}) takes 'error', not 'response'")
        elif not self.response:
            raise ValueError("'response' is missing or empty")
        elif self.error is not None:
            raise ValueError(f"'error' needs an error 'status' (4xx or 5xx), got {self.status}")
        if self.logprobs is not None and (not self.logprobs or any(not position for position in self.logprobs)):
            raise ValueError("'logprobs' needs at least one position, each with at least one token")
        return self


class MockConfig(BaseModel):
    """A whole mock configuration."""

    model_config = ConfigDict(extra="forbid")

    debug: bool = False
    """Log every request and its response (at INFO, to stderr)."""
    strict: bool = False
    """False (inference-mock's behaviour): no match answers 200 with an empty text, and
    responses are returned whole. True: no match is a 404, and ``max_tokens`` and
    ``stop`` are honoured."""
    port: int = Field(default=DEFAULT_MOCK_PORT, ge=0, le=65535)
    """Port for ``icrm mock`` (MockServer always picks a free one)."""
    matches: list[MockRule]
    """The rules, tried in order."""

    @classmethod
    def load(cls, source: str | Path | Mapping[str, Any] | MockConfig) -> MockConfig:
        """Load and validate a configuration.

        Args:
            source: a YAML file path, a dict of the same shape, or a `MockConfig`.

        Raises:
            ConfigError: the file cannot be read or parsed, or a rule is invalid; the
                message names the rule index (``matches[2]``) and the key.
        """
        if isinstance(source, MockConfig):
            return source
        where = "mock config"
        if isinstance(source, (str, Path)):
            where = f"mock config {source}"
            try:
                data = yaml.safe_load(Path(source).read_text(encoding="utf-8"))
            except OSError as e:
                raise ConfigError(f"cannot read {where}: {e.strerror}") from None
            except yaml.YAMLError as e:
                raise ConfigError(f"{where} is not valid YAML: {e}") from None
        else:
            data = source
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a mapping with a 'matches' list")
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            raise ConfigError(f"{where}: {_describe(e)}") from None


def _describe(error: ValidationError) -> str:
    """The first validation problem as ``matches[i]: key: message``."""
    first = error.errors()[0]
    loc = list(first["loc"])
    path = ""
    if loc[:1] == ["matches"] and len(loc) > 1 and isinstance(loc[1], int):
        path, loc = f"matches[{loc[1]}]", loc[2:]
    key = ".".join(str(part) for part in loc)
    message = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        message = "unknown key"
    elif first["type"] == "missing":
        message = "missing"
    return ": ".join(part for part in (path, f"'{key}'" if key else "", message) if part)


class RuleBook:
    """The rules with their ``times`` counters; thread-safe."""

    def __init__(self, rules: list[MockRule]) -> None:
        self.rules = rules
        self._compiled = [re.compile(r.regex) if r.regex else None for r in rules]
        self._used = [0] * len(rules)
        self._lock = threading.Lock()

    def match(self, prompt: str, model: str | None) -> MockRule | None:
        """The first rule that matches `prompt` and `model` and has uses left (counted)."""
        with self._lock:
            for i, rule in enumerate(self.rules):
                if rule.times is not None and self._used[i] >= rule.times:
                    continue
                if rule.model is not None and rule.model != model:
                    continue
                if rule.contains and not all(s in prompt for s in rule.contains):
                    continue
                if not prompt and rule.contains is None and rule.regex is None:
                    continue  # as inference-mock's Always: an empty prompt matches no default rule
                if self._compiled[i] is not None and not self._compiled[i].search(prompt):
                    continue
                self._used[i] += 1
                return rule
        return None
