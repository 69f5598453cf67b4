"""`Registry`: the one shape of every plug-in table — rm types, judging methods, engines,
benchmarks. A name maps to ``"module:attribute"`` (imported when first asked for, so a
table costs nothing until used) or to a value; an unknown name is one `ConfigError`
naming the choices. A new rm type, method, engine or benchmark is one new module plus
its line in its table.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any, Generic, TypeVar

from .errors import ConfigError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Named plug-ins of one kind.

    Args:
        kind: what they are, for messages (``rm_type``, ``method``, ``engine``, ...).
        entries: name -> ``"module:attribute"`` (imported when first asked for) or the
            plug-in itself.
        aliases: other names for some entries (``anthropic`` -> ``claude``).
        summaries: one line per name, for help texts (no import needed).

    >>> colours = Registry("colour", {"red": 1, "blue": 2})
    >>> colours.get("red"), colours.names()
    (1, ('red', 'blue'))
    >>> colours.get("green")
    Traceback (most recent call last):
    ...
    icrm.errors.ConfigError: colour must be one of red, blue, got 'green'
    """

    def __init__(self, kind: str, entries: Mapping[str, str | T], aliases: Mapping[str, str] | None = None,
                 summaries: Mapping[str, str] | None = None) -> None:
        self.kind = kind
        self._entries: dict[str, Any] = dict(entries)
        self.aliases = dict(aliases or {})
        self.summaries = dict(summaries or {})

    def names(self) -> tuple[str, ...]:
        """Every name, in table order (aliases left out)."""
        return tuple(self._entries)

    def canonical(self, name: Any) -> str:
        """`name` with its alias resolved, checked without importing anything.

        Raises:
            ConfigError: an unknown name, naming the choices.
        """
        resolved = self.aliases.get(name, name) if isinstance(name, str) else name
        if not isinstance(resolved, str) or resolved not in self._entries:
            raise ConfigError(f"{self.kind} must be one of {', '.join(self._entries)}, got {name!r}")
        return resolved

    def get(self, name: Any) -> T:
        """The plug-in called `name` (imported on first use).

        Raises:
            ConfigError: an unknown name, naming the choices.
        """
        key = self.canonical(name)
        entry = self._entries[key]
        if isinstance(entry, str) and ":" in entry:
            module, _, attribute = entry.partition(":")
            entry = self._entries[key] = getattr(importlib.import_module(module), attribute)
        return entry  # type: ignore[no-any-return]

    def values(self) -> Iterator[T]:
        """Every plug-in (each imported)."""
        return (self.get(name) for name in self._entries)

    def __contains__(self, name: object) -> bool:
        return self.aliases.get(name, name) in self._entries if isinstance(name, str) else False

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
