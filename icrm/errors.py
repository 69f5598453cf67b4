"""The errors icrm raises, as one tree.

```
ICRMError
├─ ConfigError            bad arguments, templates, shots pools, missing extras (never retried)
├─ InputError             bad conversations / dataset rows (names the row and field)
├─ OutputError            a results file that vanished or was replaced during a run
├─ EngineError            the LLM could not answer (worker start-up, a malformed reply)
│  ├─ EngineConnectionError ─ EngineTimeoutError     (retryable; the judge is unreachable)
│  └─ EngineStatusError(status_code, body)           (429/5xx retryable)
└─ FeedbackParseError(raw_text, reason)              the answer held no verdict
```

Every error carries its ``kind`` (a short stable name: ``config``, ``input``,
``output``, ``engine``, ``engine_unavailable``, ``engine_status``, ``parse``) and a ``context``
dict (item id, engine, status, ...), so the CLI, the batch layer and the reward
service map errors by type, never by parsing their text. Every message names the field
at fault and, where there is one, the fix. Errors pickle with their attributes, so they
cross process boundaries (``multiprocessing``, ``datasets.map(num_proc=N)``).

The CLI prints an `ICRMError` as one line: exit 2 for `ConfigError` / `InputError`, 1
otherwise. The reward service answers 4xx for `ConfigError` raised by a request's own
options and `InputError`, 5xx for everything else (a server-side fault).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ICRMError",
    "ConfigError",
    "InputError",
    "OutputError",
    "EngineError",
    "EngineConnectionError",
    "EngineTimeoutError",
    "EngineStatusError",
    "FeedbackParseError",
    "PARSE_REASONS",
]

# Why an answer holds no verdict (`FeedbackParseError.reason`):
# truncated: cut by max_tokens (finish_reason "length") or ends inside the object;
# ambiguous: two candidate feedback objects whose verdicts disagree;
# missing_keys: an object with the verdict key but not every key of the method's shape;
# no_verdict: objects, but none carries the verdict key;
# invalid_verdict: the verdict value is not a score 1-10 / one of the five choices;
# no_object: no JSON object at all; empty: no text at all;
# no_label: (logprob method) no verdict label among the first token's top logprobs;
# too_long: an answer too long to be one feedback object, refused unread;
# wrong_count: (listwise) scores for other responses than the group's, or for more.
PARSE_REASONS = ("truncated", "ambiguous", "missing_keys", "no_verdict", "invalid_verdict", "no_object", "empty",
                 "no_label", "too_long", "wrong_count")


def _rebuild(cls: type[ICRMError], message: str, state: dict[str, Any]) -> ICRMError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class ICRMError(Exception):
    """Base class of every error icrm raises on purpose.

    Args:
        message: what went wrong and how to fix it.
        **context: facts for logs and rows (``item_id``, ``engine``, ``line``, ...).

    Attributes:
        kind: a short stable name of the error class, for rows and HTTP mapping.
        context: the keyword arguments given.
    """

    kind = "error"

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.context = dict(context)

    def __reduce__(self) -> tuple[Any, ...]:
        # Subclasses take extra constructor arguments; rebuild from the message and the
        # instance's attributes instead, so every error survives pickling.
        return (_rebuild, (type(self), str(self), dict(self.__dict__)))


class ConfigError(ICRMError):
    """A bad argument, template or shots pool or a missing optional dependency."""

    kind = "config"


class InputError(ICRMError):
    """A bad conversation or input row; the message names the turn, row or field."""

    kind = "input"


class OutputError(ICRMError):
    """A run's results file vanished or was replaced while the run wrote to it: what
    this run wrote there is lost (the CLI exits 1)."""

    kind = "output"


class EngineError(ICRMError):
    """Talking to the LLM failed (worker start-up, or an unusable response)."""

    kind = "engine"


class EngineConnectionError(EngineError):
    """The server could not be reached, or a local worker died: the judge is unavailable.

    Attributes:
        retryable: True for a network fault or a timeout (retried); False for a worker
            process that exited (retrying cannot bring it back).
    """

    kind = "engine_unavailable"

    def __init__(self, message: str, retryable: bool = True, **context: Any) -> None:
        super().__init__(message, **context)
        self.retryable = retryable


class EngineTimeoutError(EngineConnectionError):
    """The server did not answer in time. Retryable."""


class EngineStatusError(EngineError):
    """The server answered with an HTTP error status.

    Attributes:
        status_code: the HTTP status (429 and 5xx are retryable, other 4xx are not).
        body: the response body as the server sent it (may be `None`).
        retry_after_s: seconds the server asked to wait (``Retry-After``), or None.
    """

    kind = "engine_status"

    def __init__(self, message: str, status_code: int, body: object = None, retry_after_s: float | None = None,
                 **context: Any) -> None:
        super().__init__(message, **context)
        self.status_code = status_code
        self.body = body
        self.retry_after_s = retry_after_s


class FeedbackParseError(ICRMError):
    """The model's answer holds no verdict.

    Attributes:
        raw_text: the model's text exactly as generated, so nothing computed is lost.
        reason: one of `PARSE_REASONS` (``truncated``, ``ambiguous``, ...).
    """

    kind = "parse"

    def __init__(self, message: str, raw_text: str, reason: str = "no_object", **context: Any) -> None:
        super().__init__(message, **context)
        self.raw_text = raw_text
        self.reason = reason
