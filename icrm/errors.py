"""The errors icrm raises, as one tree.

```
ICRMError
├─ ConfigError            bad arguments, templates, shots pools, missing extras (never retried)
├─ InputError             bad conversations / dataset rows (names the row and field)
├─ EngineError
│  ├─ EngineConnectionError ─ EngineTimeoutError     (retryable)
│  └─ EngineStatusError(status_code, body)           (429/5xx retryable)
└─ FeedbackParseError(raw_text)
```

Every message names the field at fault and, where there is one, the fix. The CLI prints
an `ICRMError` as one line: exit 2 for `ConfigError` / `InputError`, 1 otherwise.
"""

from __future__ import annotations

__all__ = [
    "ICRMError",
    "ConfigError",
    "InputError",
    "EngineError",
    "EngineConnectionError",
    "EngineTimeoutError",
    "EngineStatusError",
    "FeedbackParseError",
]


class ICRMError(Exception):
    """Base class of every error icrm raises on purpose."""


class ConfigError(ICRMError):
    """A bad argument, template, shots pool or a missing optional dependency."""


class InputError(ICRMError):
    """A bad conversation or input row; the message names the turn, row or field."""


class EngineError(ICRMError):
    """Talking to the LLM failed (worker start-up, HTTP, or an unusable response)."""


class EngineConnectionError(EngineError):
    """The server could not be reached. Retryable."""


class EngineTimeoutError(EngineConnectionError):
    """The server did not answer in time. Retryable."""


class EngineStatusError(EngineError):
    """The server answered with an HTTP error status.

    Attributes:
        status_code: the HTTP status (429 and 5xx are retryable, other 4xx are not).
        body: the response body as the server sent it (may be `None`).
        retry_after_s: seconds the server asked to wait (``Retry-After``), or None.
    """

    def __init__(self, message: str, status_code: int, body: object = None, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.retry_after_s = retry_after_s


class FeedbackParseError(ICRMError):
    """The model's answer holds no valid feedback.

    Attributes:
        raw_text: the model's text exactly as generated, so nothing computed is lost.
    """

    def __init__(self, message: str, raw_text: str) -> None:
        super().__init__(message)
        self.raw_text = raw_text
