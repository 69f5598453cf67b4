"""The generation cache: successful generations in SQLite, shared safely by processes.

The key is a SHA-256 over everything that determines the answer: engine, model, mode,
the exact prompt or messages, every generation kwarg and the output schema. API keys
and base URLs are never part of it, nor stored. Only successes are stored.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from .. import settings
from ..errors import ConfigError
from .base import Engine, GenerationRequest, GenerationResult, Usage

__all__ = ["GenerationCache", "cache_key"]

logger = logging.getLogger(__name__)

_SCHEMA = "CREATE TABLE IF NOT EXISTS generations (key TEXT PRIMARY KEY, result TEXT NOT NULL, created REAL NOT NULL)"
BUSY_TIMEOUT_S = 30.0


def cache_key(engine: Engine, request: GenerationRequest) -> str:
    """SHA-256 hex digest identifying `request` on `engine` (see the module docstring)."""
    payload = {
        "engine": engine.name,
        "model": engine.model,
        "mode": "completion" if request.prompt is not None else "chat",
        "prompt": request.prompt,
        "messages": request.messages,
        "kwargs": request.kwargs,
        "json_schema": request.json_schema if engine.json_schema_supported else None,
        **({"choices": list(request.choices)} if request.choices and engine.json_schema_supported else {}),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def _decode(stored: str) -> GenerationResult:
    data = json.loads(stored)
    texts, finish_reasons = data["texts"], data["finish_reasons"]
    if not (isinstance(texts, list) and texts and all(isinstance(t, str) for t in texts)):
        raise ValueError("'texts' is not a non-empty list of strings")
    if not (isinstance(finish_reasons, list) and len(finish_reasons) == len(texts)):
        raise ValueError("'finish_reasons' does not match 'texts'")
    logprobs = data.get("logprobs")
    if logprobs is not None and not (isinstance(logprobs, list) and len(logprobs) == len(texts)):
        raise ValueError("'logprobs' does not match 'texts'")
    return GenerationResult(
        texts=tuple(texts), finish_reasons=tuple(finish_reasons),
        usage=Usage.model_validate(data["usage"]), latency_s=float(data["latency_s"]),
        engine=str(data["engine"]), model=str(data["model"]), cache_hit=True,
        logprobs=None if logprobs is None else tuple(logprobs),
    )


class GenerationCache:
    """A SQLite file of generations (WAL mode: many readers, one writer at a time, safe
    across threads and processes).

    Args:
        directory: where ``generations.sqlite3`` lives; default ``ICRM_CACHE_DIR`` or
            the user cache directory (`icrm.settings.cache_dir`).

    The connection opens on first use, so a pickled copy reopens it in its process.

    Raises:
        ConfigError: the directory cannot be created or the file opened.
    """

    def __init__(self, directory: str | Path | None = None) -> None:
        self.path = Path(directory or settings.cache_dir()) / "generations.sqlite3"
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def open(self) -> None:
        """Open the file now, so a bad cache directory fails before any work.

        Raises:
            ConfigError: the directory cannot be created or the file opened.
        """
        with self._lock:
            self._connect()

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None)
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute(_SCHEMA)
            except (OSError, sqlite3.Error) as e:
                raise ConfigError(f"cannot open the generation cache {self.path}: {e}; set cache_dir or ICRM_CACHE_DIR") from None
            self._connection = connection
        return self._connection

    def get(self, key: str) -> GenerationResult | None:
        """The stored result for `key`, marked ``cache_hit=True``, or None.

        A row that cannot be read back (corrupt, or written by another program) is a
        miss, logged at warning level; the next successful `put` replaces it.
        """
        try:
            with self._lock:
                row = self._connect().execute("SELECT result FROM generations WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error as e:
            logger.warning("generation cache %s: read failed, treated as a miss (%s)", self.path, e)
            return None
        if row is None:
            return None
        try:
            return _decode(row[0])
        except (ValueError, TypeError, KeyError, ValidationError) as e:
            logger.warning("generation cache %s: unreadable row %s… treated as a miss (%s: %s)",
                           self.path, key[:12], type(e).__name__, str(e).partition("\n")[0])
            return None

    def put(self, key: str, result: GenerationResult) -> None:
        """Store a successful `result` under `key` (replacing any older one)."""
        data: dict[str, Any] = {
            "texts": list(result.texts), "finish_reasons": list(result.finish_reasons),
            "usage": result.usage.model_dump(), "latency_s": result.latency_s,
            "engine": result.engine, "model": result.model,
            "logprobs": None if result.logprobs is None else list(result.logprobs),
        }
        try:
            with self._lock:
                self._connect().execute(
                    "INSERT OR REPLACE INTO generations (key, result, created) VALUES (?, ?, ?)",
                    (key, json.dumps(data, ensure_ascii=False), time.time()),
                )
        except sqlite3.Error as e:  # the answer is still returned; only its caching failed
            logger.warning("generation cache %s: write failed (%s)", self.path, e)

    def close(self) -> None:
        """Close the connection (it reopens on next use)."""
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.path = state["path"]
        self._connection = None
        self._lock = threading.Lock()
