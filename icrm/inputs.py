"""What users ask icrm to judge, read from files and dataset rows.

`load_example` reads one example file (``icrm test``); `rewardbench_pair` turns a
RewardBench-style row (``prompt``, ``chosen``, ``rejected``) into the two conversations
compared, for scoring (``--input_format rewardbench``) and every evaluation.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import InputError
from .rm_types import RM_TYPES, RMType, get_rm_type

__all__ = ["load_example", "rewardbench_pair", "prompt_turns", "prompt_responses", "INPUT_FORMATS"]

# The row shapes `icrm score --input_format` reads (`icrm.scoring.row_items`):
# "conversations": rows hold conversation (individual), conversation_A/B (pairwise) or
#   conversations (listwise: a group).
# "rewardbench": rows hold prompt, chosen, rejected (RewardBench's schema); pairwise puts
#   chosen in A and rejected in B; individual scores each, as ids "<id>:chosen" / ":rejected";
#   listwise judges [chosen, rejected] as a group.
# "responses": rows hold prompt and responses (a list of strings): listwise judges them as
#   one group; individual scores each, as ids "<id>:<index>".
INPUT_FORMATS = ("conversations", "rewardbench", "responses")


def load_example(path: str | Path, rm_type: str | RMType) -> dict[str, Any]:
    """Read one example to judge from a JSON file.

    Args:
        path: a JSON object with ``conversation`` (individual), ``conversation_A`` and
            ``conversation_B`` (pairwise), or ``conversations`` (listwise: a list), each
            conversation an OpenAI-style message list.
        rm_type: ``individual``, ``pairwise`` or ``listwise``.

    Returns:
        The fields as keyword arguments for `ICRM.judge`, already validated, so a bad
        file fails before any worker starts.

    Raises:
        InputError: the file is missing or unreadable, not valid JSON, not an object,
            lacks a field (with a hint when it holds the other rm_type's fields), or
            holds an invalid conversation (naming the turn).
    """
    spec = get_rm_type(rm_type)
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
        raise InputError(f"{path}: expected a JSON object with {' and '.join(spec.input_fields)}, got {type(data).__name__}")
    missing = [f for f in spec.input_fields if f not in data]
    if missing:
        others = [t for t in RM_TYPES.values() if t is not spec and all(f in data for f in t.input_fields)]
        hint = f"; it holds {others[0].name} fields: pass --rm_type {others[0].name}" if others else ""
        raise InputError(f"{path}: missing field {', '.join(repr(f) for f in missing)} for rm_type={spec.name!r}{hint}")
    fields = {f: data[f] for f in spec.input_fields}
    spec.conversations(fields)
    return fields


def prompt_turns(prompt: Any, where: str) -> list[dict[str, Any]]:
    """A RewardBench ``prompt`` (a string, or a list of turns ending with a user turn)
    as turns.

    Raises:
        InputError: anything else, naming `where`.
    """
    turns = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
    if not isinstance(prompt, (str, list)) or not turns or not isinstance(turns[-1], dict) \
            or turns[-1].get("role") != "user":
        raise InputError(f"{where}: 'prompt' must be a string or a list of turns ending with a user turn")
    return turns


def rewardbench_pair(row: Mapping[str, Any], where: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The chosen and rejected conversations of a RewardBench row.

    Raises:
        InputError: ``prompt``, ``chosen`` or ``rejected`` is missing, or ``prompt`` is
            not a string or a list of turns ending with a user turn; names `where`.

    >>> chosen, rejected = rewardbench_pair({"prompt": "2+2?", "chosen": "4", "rejected": "5"}, "row 1")
    >>> chosen[-1], rejected[0]
    ({'role': 'assistant', 'content': '4'}, {'role': 'user', 'content': '2+2?'})
    """
    missing = [f for f in ("prompt", "chosen", "rejected") if f not in row]
    if missing:
        raise InputError(f"{where}: a RewardBench row needs {', '.join(missing)}")
    turns = prompt_turns(row["prompt"], where)
    return ([*turns, {"role": "assistant", "content": row["chosen"]}],
            [*turns, {"role": "assistant", "content": row["rejected"]}])


def prompt_responses(row: Mapping[str, Any], where: str) -> list[list[dict[str, Any]]]:
    """The conversations of a group row: ``prompt`` (a string, or turns ending with a
    user turn) and ``responses`` (a list of strings), one conversation per response.

    Raises:
        InputError: ``prompt`` or ``responses`` is missing or of the wrong shape; names
            `where`.

    >>> [c[-1]["content"] for c in prompt_responses({"prompt": "2+2?", "responses": ["4", "5"]}, "row 1")]
    ['4', '5']
    """
    missing = [f for f in ("prompt", "responses") if f not in row]
    if missing:
        raise InputError(f"{where}: a group row needs {' and '.join(missing)} (a prompt and a list of responses)")
    turns = prompt_turns(row["prompt"], where)
    responses = row["responses"]
    if not isinstance(responses, list) or not all(isinstance(r, str) for r in responses):
        raise InputError(f"{where}: 'responses' must be a list of strings")
    return [[*turns, {"role": "assistant", "content": r}] for r in responses]
