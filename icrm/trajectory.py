"""Agent trajectories as judgeable turns.

Trainers hand a reward function the policy's prompt and completion as chat messages that a
judge's conversation format does not allow as they are: an assistant turn whose
``content`` is None because it only calls tools, ``tool`` turns with the tools' results,
content given as typed parts. `judgeable_turns` renders such messages as text — a tool
call as ``[tool call] name(arguments)``, a result as ``[tool result: name] content`` —
and merges what follows a user turn into one assistant turn, so the judge sees the whole
trajectory as the response. Nothing is dropped.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from .errors import InputError

__all__ = ["judgeable_turns", "message_text"]

AGENT_ROLES = ("assistant", "tool", "function", "ipython")


def judgeable_turns(prompt: Any, completion: Any, where: str = "sample") -> list[dict[str, str]]:
    """The conversation of a prompt and a completion, ending with the completion as one
    assistant turn.

    Args:
        prompt: a string (one user turn) or a list of chat messages.
        completion: a string or a list of chat messages (assistant turns, tool calls,
            tool results).
        where: names the sample in errors.

    Returns:
        ``[{"role", "content"}]`` turns: an optional leading system turn, then user and
        assistant turns alternating, the last the completion.

    Raises:
        InputError: a prompt or completion that is neither a string nor a list of
            messages, or a message that is not a dict with a role; names `where`.

    >>> judgeable_turns("Weather in Paris?", [
    ...     {"role": "assistant", "content": None,
    ...      "tool_calls": [{"type": "function", "function": {"name": "weather", "arguments": {"city": "Paris"}}}]},
    ...     {"role": "tool", "name": "weather", "content": "18°C"},
    ...     {"role": "assistant", "content": "It is 18°C."}])[-1]["content"]
    '[tool call] weather({"city": "Paris"})\\n\\n[tool result: weather] 18°C\\n\\nIt is 18°C.'
    """
    turns = [*_messages(prompt, "user", f"{where}: prompt"), *_messages(completion, "assistant", f"{where}: completion")]
    merged: list[dict[str, str]] = []
    for i, message in enumerate(turns):
        role = message["role"]
        if role == "system" and i > 0:
            role, text = "user", f"[system] {message['content']}"
        else:
            role, text = ("assistant" if role in AGENT_ROLES else role), message["content"]
        if merged and merged[-1]["role"] == role:
            merged[-1]["content"] = "\n\n".join(t for t in (merged[-1]["content"], text) if t)
        else:
            merged.append({"role": role, "content": text})
    if not merged or merged[-1]["role"] != "assistant":
        merged.append({"role": "assistant", "content": ""})  # an empty completion is judged as such
    return merged


def _messages(value: Any, role: str, where: str) -> list[dict[str, str]]:
    if isinstance(value, str):
        return [{"role": role, "content": value}]
    if not isinstance(value, Sequence) or isinstance(value, (bytes, bytearray)):
        raise InputError(f"{where}: expected a string or a list of chat messages, got {type(value).__name__}")
    out = []
    for i, message in enumerate(value):
        if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
            raise InputError(f"{where} message {i}: expected a {{'role', 'content'}} dict, got {message!r:.80}")
        out.append({"role": message["role"], "content": message_text(message)})
    return out


def message_text(message: Mapping[str, Any]) -> str:
    """One chat message's text: its content (typed parts joined, non-text parts named),
    its tool calls, and — for a tool's message — which tool answered.

    >>> message_text({"role": "tool", "name": "search", "content": [{"type": "text", "text": "3 results"}]})
    '[tool result: search] 3 results'
    """
    content = message.get("content")
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    elif isinstance(content, Sequence):
        text = "".join(p.get("text", "") if isinstance(p, Mapping) and p.get("type") == "text"
                       else f"[{p.get('type', 'part') if isinstance(p, Mapping) else 'part'}]" for p in content)
    else:
        text = str(content)
    if message.get("role") in AGENT_ROLES[1:]:
        name = message.get("name") or message.get("tool_call_id") or "tool"
        text = f"[tool result: {name}] {text}"
    calls = [_call_text(call) for call in message.get("tool_calls") or []]
    return "\n\n".join(t for t in (text, *calls) if t)


def _call_text(call: Any) -> str:
    function = call.get("function", call) if isinstance(call, Mapping) else {}
    name = function.get("name", "tool") if isinstance(function, Mapping) else "tool"
    arguments = function.get("arguments", "") if isinstance(function, Mapping) else call
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments, ensure_ascii=False)
    return f"[tool call] {name}({arguments})"
