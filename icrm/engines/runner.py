"""`RequestRunner`: an engine plus the policies around every call — cache lookup,
retries with backoff, usage totals and an optional JSONL request log."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from dataclasses import replace
from typing import Any

from ..errors import ConfigError, EngineError
from ..safe_text import dumps, redact
from .base import Engine, GenerationRequest, GenerationResult
from .cache import GenerationCache, cache_key
from .retry import RetryPolicy, call_with_retries
from .usage import UsageTotals

__all__ = ["RequestRunner", "UsageTotals"]

logger = logging.getLogger(__name__)



class RequestRunner:
    """Runs requests on an engine with cache, retries, usage totals and a request log.

    Args:
        engine: the engine to call.
        retry: the retry policy (the engine's SDK does not retry).
        cache: a `GenerationCache`, or None for no caching.
        overwrite_cache: call the engine even on a cache hit and store the new result.
        log_file: a JSONL file to append each request and its response or error to.
        secrets: strings (API keys) replaced by ``[REDACTED]`` in the request log.
    """

    def __init__(
        self,
        engine: Engine,
        retry: RetryPolicy,
        cache: GenerationCache | None = None,
        overwrite_cache: bool = False,
        log_file: str | Path | None = None,
        secrets: Sequence[str] = (),
    ) -> None:
        self.engine = engine
        self.retry = retry
        self.cache = cache
        self.overwrite_cache = overwrite_cache
        self.log_file = Path(log_file) if log_file else None
        self._secrets = [s for s in secrets if s]
        self.usage = UsageTotals()
        self._lock = threading.Lock()
        if self.log_file is not None:
            try:
                self.log_file.parent.mkdir(parents=True, exist_ok=True)
                self.log_file.touch()
            except OSError as e:
                raise ConfigError(f"cannot write the request log {self.log_file}: {e.strerror}") from None

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """Answer `request` from the cache, or from the engine with retries.

        Returns:
            The result; ``cache_hit`` tells where it came from.

        Raises:
            EngineError: the last error once retries are spent (counted in
                ``usage.errors`` and logged), or a non-retryable one.
        """
        key = cache_key(self.engine, request) if self.cache is not None else None
        if key is not None and not self.overwrite_cache:
            cached = self.cache.get(key)  # type: ignore[union-attr]
            if cached is not None:
                self._count(cached)
                self._log(request, cached, None)
                return cached
        try:
            result = await call_with_retries(lambda: self.engine.generate(request), self.retry, self.engine.name)
        except EngineError as error:
            self.usage.add(None, error=True)
            self._redact_error(error)
            self._log(request, None, error)
            raise
        if self._secrets:  # a hostile or broken server may echo the key in its answer
            result = replace(result, texts=tuple(redact(t, self._secrets) for t in result.texts))
        if key is not None:
            self.cache.put(key, result)  # type: ignore[union-attr]
        self._count(result)
        self._log(request, result, None)
        return result

    async def count_tokens(self, text: str) -> int | None:
        """`text`'s tokens by the server's tokenizer (`Engine.count_tokens`), retried as
        a generation is (a 429 or 5xx, a dropped connection); None when the engine has
        no tokenizer.

        Raises:
            EngineError: the last error once retries are spent, the key redacted.
        """
        try:
            return await call_with_retries(lambda: self.engine.count_tokens(text), self.retry, self.engine.name)
        except EngineError as error:
            self._redact_error(error)
            raise

    async def aclose(self) -> None:
        """Close the engine (stopping its workers) and the cache."""
        try:
            await self.engine.aclose()
        finally:
            if self.cache is not None:
                self.cache.close()

    def _redact_error(self, error: EngineError) -> None:
        """Remove the provider key from an error a server answered (servers echo keys
        in their error messages): its message, body and context, and the SDK error it
        was raised from (which a traceback would print)."""
        if not self._secrets:
            return
        message = str(error)
        clean = redact(message, self._secrets)
        body = getattr(error, "body", None)
        if body is not None:
            clean_body = json.loads(redact(dumps(body), self._secrets)) if not isinstance(body, str) else \
                redact(body, self._secrets)
            error.body = clean_body  # type: ignore[attr-defined]
        if clean != message:
            error.args = (clean, *error.args[1:])
        error.context = {k: redact(v, self._secrets) if isinstance(v, str) else v for k, v in error.context.items()}
        error.__cause__, error.__suppress_context__ = None, True

    def _count(self, result: GenerationResult) -> None:
        self.usage.add(result.usage, cache_hit=result.cache_hit)

    def _log(self, request: GenerationRequest, result: GenerationResult | None, error: Exception | None) -> None:
        if self.log_file is None:
            return
        record: dict[str, Any] = {
            "time": time.time(),
            "engine": self.engine.name,
            "model": self.engine.model,
            "request": {"prompt": request.prompt, "messages": request.messages, "kwargs": request.kwargs},
        }
        if result is not None:
            record["response"] = {"texts": list(result.texts), "finish_reasons": list(result.finish_reasons),
                                  "usage": result.usage.model_dump(), "latency_s": result.latency_s,
                                  "cache_hit": result.cache_hit}
        else:
            record["error"] = f"{type(error).__name__}: {error}"
        line = redact(dumps(record), self._secrets)
        with self._lock, open(self.log_file, "a", encoding="utf-8") as f:
            f.write(line + "\n")
