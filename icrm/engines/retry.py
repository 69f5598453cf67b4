"""Retries with exponential backoff and jitter (tenacity), the only retry layer: the
SDK clients are built with ``max_retries=0``.

Retried: connection errors, timeouts, HTTP 429 and 5xx (waiting what ``Retry-After``
asks when the server sends it). Never retried: other 4xx (bad request, bad key, unknown
model) and configuration errors.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_random_exponential

from .. import settings
from ..errors import ConfigError, EngineConnectionError, EngineStatusError

__all__ = ["RetryPolicy", "is_retryable", "call_with_retries"]

logger = logging.getLogger(__name__)
T = TypeVar("T")

# A server's Retry-After is honoured up to this many seconds (or wait_max_s if larger).
RETRY_AFTER_CAP_S = 60.0


def is_retryable(error: BaseException) -> bool:
    """True for connection errors, timeouts, HTTP 429 and 5xx; False for a worker
    process that exited (retrying cannot bring it back)."""
    if isinstance(error, EngineConnectionError):
        return error.retryable
    return isinstance(error, EngineStatusError) and (error.status_code == 429 or error.status_code >= 500)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a failed request.

    Attributes:
        max_retries: retries after the first try (0 = try once).
        wait_min_s: backoff scale in seconds: before retry k the wait is drawn
            uniformly from [0, min(wait_max_s, wait_min_s * 2**k)] ("full jitter").
        wait_max_s: the longest backoff in seconds.
    """

    max_retries: int = 3
    wait_min_s: float = 1.0
    wait_max_s: float = 30.0

    @classmethod
    def from_env(cls, max_retries: int | None = None) -> RetryPolicy:
        """The policy from arguments, then ``ICRM_RETRY_ATTEMPTS`` (total tries, so
        retries + 1), ``ICRM_RETRY_WAIT_MIN`` and ``ICRM_RETRY_WAIT_MAX`` (seconds), then
        the defaults (3 retries, 1 s to 30 s)."""
        attempts = settings.retry_attempts()
        if max_retries is None:
            max_retries = cls.max_retries if attempts is None else attempts - 1
        if not isinstance(max_retries, int) or isinstance(max_retries, bool) or max_retries < 0:
            raise ConfigError(f"max_retries must be a whole number >= 0, got {max_retries!r}")
        return cls(max_retries, settings.retry_wait_min_s(cls.wait_min_s), settings.retry_wait_max_s(cls.wait_max_s))

    def wait(self, state: RetryCallState) -> float:
        """Seconds before the next try: the server's Retry-After (capped at
        max(60 s, wait_max_s)), else exponential backoff with full jitter."""
        error = state.outcome.exception() if state.outcome else None
        retry_after = getattr(error, "retry_after_s", None)
        if retry_after is not None:
            return min(retry_after, max(RETRY_AFTER_CAP_S, self.wait_max_s))
        # "Full jitter" (AWS architecture blog): uniform in [0, min(max, min * 2^try)].
        return wait_random_exponential(multiplier=self.wait_min_s, max=self.wait_max_s)(state)


async def call_with_retries(call: Callable[[], Awaitable[T]], policy: RetryPolicy, what: str) -> T:
    """Await `call()`, retrying retryable errors per `policy`.

    Returns:
        The first successful result.

    Raises:
        The last error once retries are spent, or the first non-retryable one.
    """
    def log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        logger.debug("%s: try %d failed (%s); retrying in %.2f s", what, state.attempt_number, error,
                     state.next_action.sleep if state.next_action else 0.0)

    async for attempt in AsyncRetrying(
        stop=stop_after_attempt(policy.max_retries + 1),
        wait=policy.wait,
        retry=retry_if_exception(is_retryable),
        before_sleep=log_retry,
        reraise=True,
    ):
        with attempt:
            return await call()
    raise AssertionError("unreachable: tenacity reraises the last error")
