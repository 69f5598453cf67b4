"""Reading a server's answer, whatever the server sends: the texts of the choices asked
for, their finish reasons, and token usage.

A server may answer fewer or more choices than asked, text that is not a string, usage
counts that are strings, negative or NaN. Texts and choices decide the verdict, so a
fault there is an `EngineError` naming it (never a vote over what came back); usage is
bookkeeping, so a count that is not a whole number >= 0 is recorded as unknown and
logged, and the judgement stands.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ..errors import EngineError
from .base import Usage

__all__ = ["checked_texts", "finish_reason", "read_usage", "count"]

logger = logging.getLogger(__name__)


def checked_texts(texts: Sequence[Any], asked: int, engine: str) -> tuple[str, ...]:
    """The choices' texts, exactly `asked` of them, each a string.

    Raises:
        EngineError: another number of choices, or a text that is not a string.

    >>> checked_texts(["a", "b"], 2, "mock")
    ('a', 'b')
    >>> checked_texts(["a"], 3, "mock")
    Traceback (most recent call last):
    ...
    icrm.errors.EngineError: mock: malformed response from the server: 1 choice(s) where 3 were asked (n=3)
    """
    if len(texts) != asked:
        raise EngineError(f"{engine}: malformed response from the server: {len(texts)} choice(s) where {asked} were "
                          f"asked (n={asked})", engine=engine)
    for text in texts:
        if not isinstance(text, str):
            raise EngineError(f"{engine}: malformed response from the server: a choice's text is "
                              f"{type(text).__name__}, not a string", engine=engine)
    return tuple(texts)


def finish_reason(value: Any) -> str | None:
    """A finish reason as text (None when absent; anything else is shown as text, cut)."""
    if value is None or isinstance(value, str):
        return value if value is None or len(value) <= 64 else value[:64]
    return repr(value)[:64]


def count(value: Any) -> int | None:
    """A token count: a whole number >= 0, else None (unknown).

    >>> count(12), count("12"), count(float("nan")), count(-1), count(True)
    (12, None, None, None, None)
    """
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None


def read_usage(prompt_tokens: Any, completion_tokens: Any, cached_tokens: Any = None) -> Usage:
    """`Usage` from a server's counts; a count that is not a whole number >= 0 counts as
    0 (prompt, completion) or unknown (cached), and is logged once per answer."""
    prompt, completion, cached = count(prompt_tokens), count(completion_tokens), count(cached_tokens)
    bad = [name for name, raw, read in (("prompt_tokens", prompt_tokens, prompt),
                                        ("completion_tokens", completion_tokens, completion),
                                        ("cached_tokens", cached_tokens, cached))
           if raw is not None and read is None]
    if bad:
        logger.warning("the server's usage holds %s that %s not a token count; recorded as unknown",
                       ", ".join(bad), "is" if len(bad) == 1 else "are")
    return Usage(prompt_tokens=prompt or 0, completion_tokens=completion or 0, cached_tokens=cached)
