"""Conversations: validation and the split into history / user query / model output.

A conversation is an OpenAI-style list of ``{"role": ..., "content": ...}`` turns: an
optional leading ``system`` turn, then ``user`` and ``assistant`` turns alternating,
starting with ``user`` and ending with ``assistant`` (the response being judged).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .errors import InputError

__all__ = ["Turn", "Conversation", "check_same_context"]

ROLES = ("system", "user", "assistant")
_SURROGATE = re.compile("[\ud800-\udfff]")
NO_HISTORY = "N/A"


@dataclass(frozen=True)
class Turn:
    """One turn of a conversation. `role` is one of ``system``, ``user``, ``assistant``."""

    role: str
    content: str


@dataclass(frozen=True)
class Conversation:
    """A validated conversation whose last turn is the response to judge.

    Build it with `Conversation.from_messages`; the constructor does not validate.
    """

    turns: tuple[Turn, ...]

    @classmethod
    def from_messages(cls, messages: Any, field: str = "conversation") -> Conversation:
        """Validate an OpenAI-style message list.

        Args:
            messages: a list of ``{"role": str, "content": str}`` dicts. ``content`` may
                also be a list of ``{"type": "text", "text": str}`` parts (joined).
            field: the name used for this conversation in error messages.

        Returns:
            The validated `Conversation`.

        Raises:
            InputError: naming the turn index and what was expected, when the value is
                not a list of turns, has fewer than 2 turns, a role is unknown or out of
                order, or the last turn is not from the assistant.

        >>> c = Conversation.from_messages([{"role": "user", "content": "hi"},
        ...                                 {"role": "assistant", "content": "hello"}])
        >>> (c.history, c.user_query, c.model_output)
        ('N/A', 'hi', 'hello')
        """
        if not isinstance(messages, (list, tuple)):
            raise InputError(
                f"{field}: expected a list of {{'role', 'content'}} turns, "
                f"got {type(messages).__name__}"
            )
        turns = tuple(_parse_turn(m, f"{field} turn {i}") for i, m in enumerate(messages))
        if len(turns) < 2:
            raise InputError(
                f"{field}: expected at least 2 turns (a user query and the assistant "
                f"response to judge), got {len(turns)}"
            )
        start = 1 if turns[0].role == "system" else 0
        for i, turn in enumerate(turns):
            if i < start:
                continue
            expected = "user" if (i - start) % 2 == 0 else "assistant"
            if turn.role != expected:
                where = "only as turn 0" if turn.role == "system" else "alternating"
                raise InputError(
                    f"{field} turn {i}: expected role '{expected}', got '{turn.role}' "
                    f"(a system turn may come {where}; user and assistant turns alternate, "
                    "starting with user)"
                )
        if turns[-1].role != "assistant":
            raise InputError(
                f"{field} turn {len(turns) - 1}: the last turn must be the assistant "
                f"response to judge, got role '{turns[-1].role}'"
            )
        return cls(turns)

    @property
    def history(self) -> str:
        """All turns but the last two, as ``ROLE: content`` blocks joined by blank lines,
        or ``N/A`` when there are none."""
        earlier = self.turns[:-2]
        if not earlier:
            return NO_HISTORY
        return "\n\n".join(f"{t.role.upper()}: {t.content}" for t in earlier)

    @property
    def user_query(self) -> str:
        """The second-to-last turn: the user message the response answers."""
        return self.turns[-2].content

    @property
    def model_output(self) -> str:
        """The last turn: the assistant response being judged."""
        return self.turns[-1].content

    def to_messages(self) -> list[dict[str, str]]:
        """The turns back as OpenAI-style dicts."""
        return [{"role": t.role, "content": t.content} for t in self.turns]


def check_same_context(a: Conversation, b: Conversation) -> None:
    """Check that two conversations share history and user query (pairwise mode).

    Raises:
        InputError: naming the first turn where ``conversation_A`` and
            ``conversation_B`` differ before their final responses.
    """
    if len(a.turns) != len(b.turns):
        raise InputError(
            "conversation_A and conversation_B must share history and query: they have "
            f"{len(a.turns)} and {len(b.turns)} turns"
        )
    for i, (ta, tb) in enumerate(zip(a.turns[:-1], b.turns[:-1])):
        if ta != tb:
            raise InputError(
                "conversation_A and conversation_B must share history and query: "
                f"they differ at turn {i} (only the last, assistant turn may differ)"
            )


def _valid_unicode(text: str, where: str) -> str:
    # A lone surrogate (from JSON "\ud800") cannot be encoded to send: reject it here,
    # as the input error it is, not later as a failed request.
    match = _SURROGATE.search(text)
    if match:
        raise InputError(f"{where}: 'content' holds a lone surrogate {match.group()!r} at character "
                         f"{match.start()}; it is not valid Unicode text")
    return text


def _parse_turn(message: Any, where: str) -> Turn:
    if not isinstance(message, dict):
        raise InputError(f"{where}: expected a {{'role', 'content'}} dict, got {type(message).__name__}")
    role = message.get("role")
    if role not in ROLES:
        raise InputError(f"{where}: 'role' must be one of {', '.join(ROLES)}; got {role!r}")
    if "content" not in message:
        raise InputError(f"{where}: missing 'content'")
    return Turn(role, _text_content(message["content"], where))


def _text_content(content: Any, where: str) -> str:
    if isinstance(content, str):
        return _valid_unicode(content, where)
    if isinstance(content, Sequence) and all(
        isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        for p in content
    ):
        return _valid_unicode("".join(p["text"] for p in content), where)
    raise InputError(
        f"{where}: 'content' must be a string (or a list of {{'type': 'text', 'text': ...}} "
        f"parts), got {type(content).__name__}"
    )
