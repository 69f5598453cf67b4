"""Turning a judge's answer into exactly one feedback object — or a reasoned refusal.

The rule (DESIGN.md, "Trust"): a verdict exists only when the answer holds exactly one
feedback object of the expected shape. Concretely, for an answer `text`:

1. The answer is cut at the first run-on marker after its first ``{``: a template
   marker (``<|...|>``, e.g. ``<|end_of_feedback|>``) or a Markdown heading line (a
   completion-mode model that runs on into ``## Example 4``). What follows belongs to
   no answer.
2. Every top-level JSON object in what remains is a candidate. A closed object that is
   not strict JSON is repaired with `json_repair` (trailing commas, single quotes); an
   object still open where the answer ends is never repaired into a verdict.
3. ``truncated``: the server cut the answer (``finish_reason == "length"``) before a
   run-on marker, or an object is still open where the answer ends.
   A cut "10" is not a 1; a cut ``"A+`` is not an A+.
4. ``ambiguous``: two candidates hold the verdict key with different values (a model
   that echoes the prompt's format example, then gives its own; a score quoted in
   prose, then the feedback).
5. ``no_verdict`` / ``invalid_verdict`` / ``missing_keys``: no candidate holds the
   verdict key; its value is not a verdict; the object lacks a key of the shape.

Anything else is a verdict. Every refusal is a `FeedbackParseError` carrying the raw
text and one of `icrm.errors.PARSE_REASONS`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import json_repair

from .errors import FeedbackParseError

__all__ = ["parse_object", "normalize_score", "normalize_choice", "RUN_ON"]

# Where an answer that runs on starts another block: any <|marker|> (icrm's own, a chat
# template's) or a Markdown heading line.
RUN_ON = re.compile(r"<\||<｜|\n[ \t]*#{1,6}[ \t]")
_SCORE_TEXT = re.compile(r"^\s*(\d+)(?:\.0+)?\s*(?:/\s*10\s*)?$")


@dataclass(frozen=True)
class _Candidate:
    value: Any  # what the object decoded to (a dict for a usable candidate)
    closed: bool


def parse_object(
    text: str,
    verdict_key: str,
    keys: Sequence[str],
    normalize: Callable[[Any, str], Any],
    finish_reason: str | None = None,
) -> dict[str, Any]:
    """Find the one feedback object in `text` (see the module docstring for the rule).

    Args:
        text: the model's answer as generated.
        verdict_key: ``score`` or ``choice``.
        keys: every key the object must hold (the method's shape), verdict included.
        normalize: ``(value, text) -> verdict``; raises `FeedbackParseError`
            (``invalid_verdict``) for a value that is not a verdict.
        finish_reason: the server's finish reason (``length`` = cut by max_tokens), or
            None when unknown.

    Returns:
        The object, with its verdict normalised; other keys as the model wrote them.

    Raises:
        FeedbackParseError: with ``reason`` one of ``empty``, ``no_object``,
            ``truncated``, ``ambiguous``, ``no_verdict``, ``invalid_verdict``,
            ``missing_keys``.

    >>> norm = lambda value, text: normalize_score(value, text)
    >>> parse_object('{"score": 7}', "score", ["score"], norm)["score"]
    7
    >>> parse_object('{"score": 5} then {"score": 9}', "score", ["score"], norm)
    Traceback (most recent call last):
    ...
    icrm.errors.FeedbackParseError: ambiguous answer: 2 feedback objects disagree on 'score' (5, 9)
    >>> parse_object('{"score": 1', "score", ["score"], norm)
    Traceback (most recent call last):
    ...
    icrm.errors.FeedbackParseError: truncated answer: the feedback object is still open where the answer ends
    """
    if not text or not text.strip():
        raise FeedbackParseError("the model's answer is empty", text or "", "empty")
    start = text.find("{")
    if start < 0:
        raise FeedbackParseError("no JSON object in the model's answer", text, "no_object")
    run_on = RUN_ON.search(text, start)
    body = text[: run_on.start()] if run_on else text
    if finish_reason == "length" and run_on is None:
        raise FeedbackParseError(
            "truncated answer: the server stopped at max_tokens (finish_reason 'length') before the answer "
            "ended; raise max_tokens", text, "truncated")
    candidates = _candidates(body, start)
    with_verdict = [c for c in candidates if isinstance(c.value, dict) and verdict_key in c.value]
    if candidates and not candidates[-1].closed:
        raise FeedbackParseError("truncated answer: the feedback object is still open where the answer ends",
                                 text, "truncated")
    if not with_verdict:
        if not any(isinstance(c.value, dict) for c in candidates):
            raise FeedbackParseError("no JSON object in the model's answer", text, "no_object")
        raise FeedbackParseError(f"the feedback has no {verdict_key!r}", text, "no_verdict")
    raw_verdicts = [c.value[verdict_key] for c in with_verdict]
    if len({_comparable(v, normalize) for v in raw_verdicts}) > 1:
        shown = ", ".join(json.dumps(v, ensure_ascii=False) for v in raw_verdicts)
        raise FeedbackParseError(
            f"ambiguous answer: {len(with_verdict)} feedback objects disagree on {verdict_key!r} ({shown})",
            text, "ambiguous")
    verdict = normalize(raw_verdicts[0], text)
    complete = [c.value for c in with_verdict if all(k in c.value for k in keys)]
    if not complete:
        missing = [k for k in keys if k not in with_verdict[0].value]
        raise FeedbackParseError(f"the feedback lacks {', '.join(repr(k) for k in missing)}", text, "missing_keys")
    return {**complete[0], verdict_key: verdict}


def _comparable(value: Any, normalize: Callable[[Any, str], Any]) -> str:
    # "7" and 7 are one verdict; an invalid value is compared as written.
    try:
        value = normalize(value, "")
    except FeedbackParseError:
        pass
    return json.dumps(value, sort_keys=True, default=str)


def _candidates(body: str, start: int) -> list[_Candidate]:
    """Every top-level ``{...}`` in `body` from `start`, decoded (repaired when closed)."""
    found: list[_Candidate] = []
    position: int | None = start
    while position is not None and position >= 0:
        end = _object_end(body, position)
        fragment = body[position:] if end is None else body[position:end]
        try:
            value = json.loads(fragment)
        except json.JSONDecodeError:
            value = json_repair.loads(fragment)
            if isinstance(value, list):  # json_repair returns a list for several values
                value = next((v for v in value if isinstance(v, dict)), None)
        found.append(_Candidate(value, end is not None))
        if end is None:
            break
        position = body.find("{", end)
    return found


def _object_end(text: str, start: int) -> int | None:
    """The index just after the ``}`` closing the object opened at `start`, or None
    when the text ends first. Braces inside JSON strings do not count."""
    depth, in_string, escaped = 0, False, False
    for index in range(start, len(text)):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index + 1
    return None


def normalize_score(value: Any, text: str, low: int = 1, high: int = 10) -> int:
    """A score as an int in [`low`, `high`]: ``8``, ``"8"``, ``"7/10"``, ``6.0``.

    Raises:
        FeedbackParseError: (``invalid_verdict``) anything else, or out of range.

    >>> normalize_score("7/10", "")
    7
    >>> normalize_score(11, "")
    Traceback (most recent call last):
    ...
    icrm.errors.FeedbackParseError: score 11 is outside 1-10
    """
    score: int | None = None
    if isinstance(value, bool):
        score = None
    elif isinstance(value, int):
        score = value
    elif isinstance(value, float) and value.is_integer():
        score = int(value)
    elif isinstance(value, str) and (m := _SCORE_TEXT.match(value)):
        score = int(m.group(1))
    if score is None:
        raise FeedbackParseError(f"score {value!r} is not an integer", text, "invalid_verdict")
    if not low <= score <= high:
        raise FeedbackParseError(f"score {score} is outside {low}-{high}", text, "invalid_verdict")
    return score


def normalize_choice(value: Any, text: str, choices: Sequence[str]) -> str:
    """A pairwise choice, whitespace removed (``"A +"`` is ``A+``).

    Raises:
        FeedbackParseError: (``invalid_verdict``) not one of `choices`.
    """
    choice = "".join(value.split()) if isinstance(value, str) else value
    if choice not in choices:
        raise FeedbackParseError(f"choice {value!r} is not one of {', '.join(choices)}", text, "invalid_verdict")
    return choice
