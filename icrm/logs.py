"""icrm's loggers live under ``icrm``; a stderr handler is added only on request
(``ICRM_LOG=debug|info|warning``, ``verbose=True``, or the CLI)."""

from __future__ import annotations

import logging
import sys

from . import settings
from .safe_text import printable

__all__ = ["enable_stderr_logging"]

_HANDLER_NAME = "icrm-stderr"


class _Printable(logging.Formatter):
    """Log lines with terminal controls from data (ids, answers) shown escaped."""

    def format(self, record: logging.LogRecord) -> str:
        return printable(super().format(record))


def enable_stderr_logging(level: str | int | None = None) -> None:
    """Log icrm's messages to stderr at `level` (default: ``ICRM_LOG``, else INFO).

    Idempotent: a second call only changes the level.
    """
    level = level or settings.log_level() or "INFO"  # ICRM_LOG, checked there
    logger = logging.getLogger("icrm")
    logger.setLevel(level)
    if not any(h.get_name() == _HANDLER_NAME for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(_Printable("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
        logger.addHandler(handler)
