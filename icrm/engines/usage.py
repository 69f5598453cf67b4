"""`UsageTotals`: the one counter of requests, tokens, errors and cache hits.

The engine runner counts every request with it; the batch layer counts every result
row with it (and shows it on the progress bar); a scoring run's summary carries it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields
from typing import Any

from .base import Usage

__all__ = ["UsageTotals"]


@dataclass
class UsageTotals:
    """Running totals; `add` is thread-safe.

    Attributes:
        requests: requests (or result rows) counted, cache hits included.
        prompt_tokens, completion_tokens, cached_tokens: tokens the servers reported
            (cache hits add nothing: no server was called).
        errors: requests (or rows) that failed.
        cache_hits: answered from the generation cache.
    """

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    errors: int = 0
    cache_hits: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, usage: Usage | dict[str, Any] | None, cache_hit: bool = False, error: bool = False) -> None:
        """Count one request (or row): its token usage (a `Usage`, its dict, or None)."""
        if isinstance(usage, dict):
            usage = Usage.model_validate(usage)
        with self._lock:
            self.requests += 1
            self.errors += bool(error)
            if cache_hit:
                self.cache_hits += 1
                return
            if usage is not None:
                self.prompt_tokens += usage.prompt_tokens
                self.completion_tokens += usage.completion_tokens
                self.cached_tokens += usage.cached_tokens or 0

    @property
    def prefix_cache_hit_rate(self) -> float | None:
        """Share of prompt tokens the servers served from their prefix cache (None when
        no server reported cached tokens)."""
        return self.cached_tokens / self.prompt_tokens if self.cached_tokens and self.prompt_tokens else None

    def as_dict(self) -> dict[str, int]:
        """The totals as a plain dict."""
        return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}

    def __getstate__(self) -> dict[str, Any]:
        return self.as_dict()

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()
