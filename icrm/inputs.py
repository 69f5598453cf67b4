"""Reading what users ask icrm to judge from files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .conversation import Conversation, check_same_context
from .errors import InputError
from .feedback import check_rm_type

__all__ = ["INPUT_FIELDS", "load_example"]

# The fields one judgement needs, by rm_type.
INPUT_FIELDS = {"individual": ("conversation",), "pairwise": ("conversation_A", "conversation_B")}


def load_example(path: str | Path, rm_type: str) -> dict[str, Any]:
    """Read one example to judge from a JSON file.

    Args:
        path: a JSON object with ``conversation`` (individual) or ``conversation_A`` and
            ``conversation_B`` (pairwise), each an OpenAI-style message list.
        rm_type: ``individual`` or ``pairwise``.

    Returns:
        The fields as keyword arguments for `ICRM.judge`, already validated, so a bad
        file fails before any worker starts.

    Raises:
        InputError: the file is missing or unreadable, not valid JSON, not an object,
            lacks a field (with a hint when it holds the other rm_type's fields), or
            holds an invalid conversation (naming the turn).
    """
    check_rm_type(rm_type)
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read it ({e})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{path} is not valid JSON: line {e.lineno} column {e.colno}: {e.msg}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a JSON object with {' and '.join(INPUT_FIELDS[rm_type])}, got {type(data).__name__}")
    missing = [f for f in INPUT_FIELDS[rm_type] if f not in data]
    if missing:
        other = "pairwise" if rm_type == "individual" else "individual"
        hint = (f"; it holds {other} fields: pass --rm_type {other}"
                if all(f in data for f in INPUT_FIELDS[other]) else "")
        raise InputError(f"{path}: missing field {', '.join(repr(f) for f in missing)} for rm_type={rm_type!r}{hint}")
    conversations = [Conversation.from_messages(data[f], field=f) for f in INPUT_FIELDS[rm_type]]
    if rm_type == "pairwise":
        check_same_context(*conversations)
    return {f: data[f] for f in INPUT_FIELDS[rm_type]}
