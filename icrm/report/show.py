"""A run's items in the terminal, one block each, in the spirit of g4k's
``print_response_summary``: what was judged, what the judge answered, what icrm made of
it, and what it cost — and, on request, the prompt icrm sent.
"""

from __future__ import annotations

import random
import shutil
import textwrap
from collections.abc import Sequence
from typing import Any

from ..errors import ConfigError, ICRMError
from ..safe_text import dumps, printable
from .run import Item, Run, number

__all__ = ["select_items", "format_item", "rebuild_prompt"]

RULE = "─"


def select_items(run: Run, ids: Sequence[str] = (), where: Sequence[str] = (), random_n: int | None = None,
                 seed: int = 0) -> list[Item]:
    """The items to show.

    Args:
        run: the run.
        ids: these ids, in this order.
        where: ``field=value`` filters on ``id``, ``subset``, ``status``, ``error_kind``
            or ``consistent`` (``true`` / ``false``), all of which must hold.
        random_n: a random sample of this many of the items left (seeded by `seed`).

    Raises:
        ConfigError: an unknown id (naming a few that exist), a malformed or unknown filter.
    """
    items = run.items
    if ids:
        known = {item.id: item for item in items}
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise ConfigError(f"no item with id {unknown[0]!r} in {run.path} (ids look like "
                              f"{', '.join(repr(i.id) for i in items[:3])})")
        items = [known[i] for i in ids]
    for condition in where:
        name, sep, value = condition.partition("=")
        if not sep or name not in WHERE:
            raise ConfigError(f"--where takes field=value with field one of {', '.join(WHERE)}, got {condition!r}")
        items = [item for item in items if WHERE[name](item, value)]
    if random_n is not None:
        if random_n < 1:
            raise ConfigError(f"--random must be a whole number >= 1, got {random_n}")
        items = random.Random(seed).sample(items, min(random_n, len(items)))
    return items


WHERE = {
    "id": lambda item, v: item.id == v,
    "subset": lambda item, v: item.subset == v,
    "status": lambda item, v: item.status == v,
    "error_kind": lambda item, v: v in item.error_kinds,
    "consistent": lambda item, v: str(item.consistent).lower() == v.lower(),
}


def format_item(run: Run, item: Item, prompt: bool = False, width: int | None = None) -> str:
    """One item as text: id, subset, status, then per judgement the conversations, the
    shots' ids, the raw answer, the parsed feedback, probabilities, latency and tokens
    (and the prompt icrm sent, with `prompt`). Terminal controls in any of it (from the
    data or the judge: ESC, OSC, BEL, ...) are shown escaped, and fields of the wrong
    type are shown as they are."""
    return printable(_format_item(run, item, prompt, width))


def _format_item(run: Run, item: Item, prompt: bool, width: int | None) -> str:
    width = width or min(shutil.get_terminal_size((100, 20)).columns, 120)
    lines = [RULE * width, f"id: {item.id}" + (f"   subset: {item.subset}" if item.subset else ""),
             f"status: {item.status}" + (f"   score: {item.score}" if item.score is not None else "")
             + ("   tie" if item.tie else "") + ("" if item.consistent is None else f"   orders agree: {item.consistent}")]
    for judgement in item.judgements:
        lines.append(RULE * 3 + f" judgement {judgement.get('tag') or ''}".rstrip())
        for field in ("conversation", "conversation_A", "conversation_B"):
            if field in (judgement.get("item") or {}):
                lines.append(f"[{field}]")
                lines += _conversation(judgement["item"][field], width)
        provenance = judgement.get("provenance") if isinstance(judgement.get("provenance"), dict) else {}
        shot_ids = provenance.get("shot_ids") if isinstance(provenance.get("shot_ids"), list) else []
        lines.append(f"[shots] {', '.join(map(str, shot_ids)) or '–'}")
        if prompt:
            lines += ["[prompt icrm sent]", rebuild_prompt(run, judgement)]
        if judgement.get("missing"):
            lines.append("not judged yet")
            continue
        raw = judgement.get("raw_text")
        lines += ["[raw answer]" + (f" (finish: {judgement['finish_reason']})" if judgement.get("finish_reason") else ""),
                  _wrap(raw if isinstance(raw, str) and raw else "(none)" if not raw else str(raw), width)]
        if judgement.get("error"):
            reason = f" ({judgement['error_reason']})" if judgement.get("error_reason") else ""
            lines.append(f"[error] {judgement.get('error_kind')}{reason}: {judgement['error']}")
        if judgement.get("feedback"):
            lines += ["[feedback]", dumps(judgement["feedback"], indent=2)]
        if judgement.get("probabilities"):
            lines.append(f"[probabilities] {dumps(judgement['probabilities'])} (label mass {judgement.get('label_mass')})")
        if judgement.get("order_verdicts"):
            lines.append(f"[orders] {dumps(judgement['order_verdicts'])}")
        usage = judgement.get("usage") if isinstance(judgement.get("usage"), dict) else {}
        latency = number(judgement.get("latency_s"))
        lines.append(f"[timing] latency {'–' if latency is None else f'{latency:.2f} s'}, prompt "
                     f"{usage.get('prompt_tokens', '–')} tokens, generated {usage.get('completion_tokens', '–')}"
                     + (", cache hit" if judgement.get("cache_hit") is True else ""))
    return "\n".join(lines)


def rebuild_prompt(run: Run, judgement: dict[str, Any]) -> str:
    """The prompt of a judgement, rebuilt from the run's settings with icrm's default
    templates and shots pool and the judgement's shot ids (pairwise: A and B as the data
    gives them; ``position`` may have swapped them for the judge — see ``[orders]``).
    Says why instead when it cannot be rebuilt exactly (custom templates or pool, no
    conversations)."""
    from ..prompt import PromptBuilder
    from ..rm_types import get_rm_type

    provenance = judgement.get("provenance") or {}
    item = judgement.get("item")
    if item is None:
        return f"(not rebuilt: {run.data_note or 'the conversations are not available'})"
    try:
        rm_type = get_rm_type(provenance.get("rm_type") or run.meta["rm_type"])
        builder = PromptBuilder.load(rm_type, provenance.get("method") or "critique")
        if builder.template_hash != provenance.get("template_hash") or builder.pool.hash != provenance.get("shots_hash"):
            return ("(not rebuilt: the run used custom templates or a custom shots pool "
                    f"(template {provenance.get('template_hash')}, shots {provenance.get('shots_hash')}))")
        pool = {shot.id: shot for shot in builder.pool.shots}
        shots = [pool[i] for i in provenance.get("shot_ids") or []]
        fields = {k: v for k, v in item.items() if k in rm_type.input_fields}
        context = {k: v for k, v in item.items() if k not in rm_type.input_fields}
        return builder.render(fields, shots, context)
    except (ICRMError, KeyError) as e:
        return f"(not rebuilt: {e})"


def _conversation(turns: Any, width: int) -> list[str]:
    if not isinstance(turns, list):
        return [_wrap(str(turns), width)]
    out = []
    for turn in turns:
        content = turn.get("content") if isinstance(turn, dict) else turn
        if not isinstance(content, str):
            content = dumps(content if content is not None else turn.get("tool_calls"))
        role = turn.get("role", "?") if isinstance(turn, dict) else "?"
        out.append(f"  {role}:")
        out.append(textwrap.indent(_wrap(content, width - 4), "    "))
    return out


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.fill(line, width, replace_whitespace=False) if line else ""
                     for line in text.splitlines())
