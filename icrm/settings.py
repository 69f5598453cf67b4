"""Every ``ICRM_*`` environment variable, with its default, in one place.

Precedence everywhere: explicit argument > CLI flag > environment variable > default.
Values are read when used, never at import time. Provider keys keep their vendors' names
(``OPENAI_API_KEY``, ...) and are read by the engine registry.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from .errors import ConfigError

__all__ = [
    "parse_bool",
    "env_bool",
    "log_level",
    "llamacpp_threads",
    "worker_startup_timeout_s",
    "retry_attempts",
    "retry_wait_min_s",
    "retry_wait_max_s",
    "cache_dir",
]

# ICRM_LOG: log level for icrm's own handler on stderr (debug, info, warning); unset =
# icrm adds no handler and the application's logging config applies.
ICRM_LOG = "ICRM_LOG"
# ICRM_LLAMACPP_THREADS: --n_threads of the embedded llama.cpp worker. Default 1, the
# safer choice on a shared 2-core machine (DESIGN.md).
ICRM_LLAMACPP_THREADS = "ICRM_LLAMACPP_THREADS"
# ICRM_WORKER_STARTUP_TIMEOUT: seconds a local worker may take to answer /v1/models.
ICRM_WORKER_STARTUP_TIMEOUT = "ICRM_WORKER_STARTUP_TIMEOUT"
# ICRM_RETRY_ATTEMPTS: total tries per request (1 = no retry). Default: 4 (3 retries).
ICRM_RETRY_ATTEMPTS = "ICRM_RETRY_ATTEMPTS"
# ICRM_RETRY_WAIT_MIN / ICRM_RETRY_WAIT_MAX: backoff bounds in seconds. Default 1 / 30.
ICRM_RETRY_WAIT_MIN = "ICRM_RETRY_WAIT_MIN"
ICRM_RETRY_WAIT_MAX = "ICRM_RETRY_WAIT_MAX"
# ICRM_CACHE_DIR: where the generation cache lives. Default: $XDG_CACHE_HOME/icrm, else
# ~/.cache/icrm.
ICRM_CACHE_DIR = "ICRM_CACHE_DIR"

# Every numeric ICRM_* variable is a count or seconds: a day is past any sane value.
ENV_NUMBER_MAX = 86_400
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_bool(value: object, name: str) -> bool:
    """The one boolean parser of every flag, option and ``ICRM_*`` variable.

    Accepts a bool, the ints 0 and 1, and (any case) ``true/false``, ``1/0``,
    ``yes/no``, ``on/off``.

    Raises:
        ConfigError: anything else, naming `name` — never a truthy guess.

    >>> parse_bool("False", "--use_cache"), parse_bool("yes", "ICRM_VERBOSE"), parse_bool(0, "x")
    (False, True, False)
    >>> parse_bool("maybe", "--use_cache")
    Traceback (most recent call last):
    ...
    icrm.errors.ConfigError: --use_cache must be a boolean (true/false, 1/0, yes/no, on/off), got 'maybe'
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise ConfigError(f"{name} must be a boolean (true/false, 1/0, yes/no, on/off), got {value!r}")


def env_bool(name: str, default: bool = False) -> bool:
    """A boolean environment variable (`parse_bool`); unset or empty = `default`.

    Raises:
        ConfigError: any other value, naming the variable.
    """
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    return parse_bool(value, name)


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def log_level() -> str | None:
    """``ICRM_LOG`` upper-cased, or None when unset.

    Raises:
        ConfigError: a value that is not a log level, naming the variable and the levels.
    """
    value = os.environ.get(ICRM_LOG, "").strip()
    if value and value.lower() not in LOG_LEVELS:
        raise ConfigError(f"{ICRM_LOG} must be one of {', '.join(LOG_LEVELS)}, got {value!r}")
    return value.upper() or None


def llamacpp_threads() -> int:
    """``ICRM_LLAMACPP_THREADS`` (default 1)."""
    return _env_number(ICRM_LLAMACPP_THREADS, 1, int)


def worker_startup_timeout_s() -> float:
    """``ICRM_WORKER_STARTUP_TIMEOUT`` in seconds (default 600)."""
    return _env_number(ICRM_WORKER_STARTUP_TIMEOUT, 600.0, float)


def retry_attempts() -> int | None:
    """``ICRM_RETRY_ATTEMPTS`` (total tries), or None when unset."""
    value = _env_number(ICRM_RETRY_ATTEMPTS, 0, int)
    return int(value) or None


def retry_wait_min_s(default: float) -> float:
    """``ICRM_RETRY_WAIT_MIN`` in seconds, else `default`."""
    return _env_number(ICRM_RETRY_WAIT_MIN, default, float)


def retry_wait_max_s(default: float) -> float:
    """``ICRM_RETRY_WAIT_MAX`` in seconds, else `default`."""
    return _env_number(ICRM_RETRY_WAIT_MAX, default, float)


def cache_dir() -> Path:
    """``ICRM_CACHE_DIR``, else ``$XDG_CACHE_HOME/icrm``, else ``~/.cache/icrm``."""
    explicit = os.environ.get(ICRM_CACHE_DIR, "").strip()
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache"
    return Path(base) / "icrm"


def _env_number(name: str, default: float, kind: type) -> float:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return default
    noun = "a whole number" if kind is int else "a finite number"
    try:
        number = kind(value)
    except ValueError:
        raise ConfigError(f"{name} must be {noun} > 0, got {value!r}") from None
    if not math.isfinite(number) or number <= 0 or number > ENV_NUMBER_MAX:
        raise ConfigError(f"{name} must be {noun} > 0 and at most {ENV_NUMBER_MAX:g}, got {value!r}")
    return number
