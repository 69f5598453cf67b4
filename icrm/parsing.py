"""Turning a judge's answer into exactly one feedback object — or a reasoned refusal.

The rule (DESIGN.md, "Trust"): a verdict exists only when the answer holds exactly one
feedback object of the expected shape. Concretely, for an answer `text`:

1. Every top-level JSON object in the answer is a candidate; one that holds the verdict
   key is a *feedback candidate*. A closed candidate that is not strict JSON is repaired
   with `json_repair` (trailing commas, single quotes), but its verdict must be a clean
   JSON value as written (``"score": 7 8`` is not a 7); an object still open where the
   answer ends is never repaired into a verdict.
2. A *run-on marker* is a ``<|...|>`` marker (``<|end_of_feedback|>``, a chat template's
   token) or a Markdown heading line (``## Example 4``, ``### Feedback``): where a
   model that runs on starts another block.
3. ``truncated``: the server cut the answer (``finish_reason == "length"``) before any
   run-on marker, or a feedback candidate is still open where the answer ends. A cut
   "10" is not a 1; a cut ``"A+`` is not an A+.
4. ``ambiguous``: feedback candidates on both sides of a run-on marker (an echoed format
   example or shot, then the model's own feedback — whichever comes first, it is never
   taken); candidates that disagree on the verdict (a score quoted in prose, then the
   feedback); a candidate that repeats the prompt's own format example (its values are
   the template's placeholders); an object that holds the verdict key twice. A
   structured verdict (listwise ``scores``, an object) counts only as strict JSON, so
   that a label given twice inside it is seen.
5. ``no_verdict`` / ``invalid_verdict`` / ``missing_keys``: no candidate holds the
   verdict key; its value is not a verdict; the object lacks a key of the shape.
6. ``too_long``: an answer over `MAX_ANSWER_CHARS` is refused unread; one holding more
   than `MAX_CANDIDATES` objects is ``ambiguous``.

Parsing is bounded: one linear scan of the answer, objects nested deeper than
`MAX_DEPTH` are never decoded, and only closed objects up to `MAX_REPAIR_CHARS` are
repaired. Every refusal is a `FeedbackParseError` carrying the raw text and one of
`icrm.errors.PARSE_REASONS`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import json_repair

from .errors import FeedbackParseError

__all__ = ["parse_object", "normalize_score", "normalize_choice", "template_examples", "RUN_ON",
           "MAX_ANSWER_CHARS", "MAX_DEPTH"]

# Where an answer that runs on starts another block: any <|marker|> (icrm's own, a chat
# template's) or a Markdown heading line.
RUN_ON = re.compile(r"<\||<｜|(?:^|\n)[ \t]*#{1,6}[ \t]")
# A judge's answer is at most a few thousand tokens; 512k characters is ~128k tokens, far
# past any max_tokens a judge is given. Longer answers are refused unread.
MAX_ANSWER_CHARS = 512_000
# A feedback object is flat (depth 1, a list in a field makes 2); nothing deeper is decoded.
MAX_DEPTH = 16
# json_repair is pure Python and slow on junk: it repairs at most this many characters
# per answer, in closed objects; past it an object that is not strict JSON is undecodable.
MAX_REPAIR_CHARS = 32_768
# An answer with more closed objects than this is not one feedback object (nor a few).
MAX_CANDIDATES = 64
_SCORE_TEXT = re.compile(r"^\s*(\d+)(?:\.0+)?\s*(?:/\s*10\s*)?$")
_STRUCTURE = re.compile(r'[{}\[\]"\\]')
# A JSON value as written, then what may follow it inside an object.
_CLEAN_VALUE = r'(-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|true|false|null)\s*(?:[,}]|["\']|$)'


@dataclass(frozen=True)
class _Candidate:
    start: int
    end: int | None  # index after the closing brace; None when still open at the end
    value: Any  # what the object decoded to (a dict for a usable candidate), or None
    mentions_verdict: bool  # the verdict key appears as a key in its text
    duplicate_verdict: bool  # the verdict key appears twice at its top level
    clean_verdict: bool  # the verdict value is a plain JSON value as written

    @property
    def closed(self) -> bool:
        return self.end is not None


def parse_object(
    text: str,
    verdict_key: str,
    keys: Sequence[str],
    normalize: Callable[[Any, str], Any],
    finish_reason: str | None = None,
    examples: Sequence[Mapping[str, Any]] = (),
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
        examples: the format examples the prompt showed (`template_examples`): an object
            repeating one is an echo, never a verdict.

    Returns:
        The object, with its verdict normalised; other keys as the model wrote them.

    Raises:
        FeedbackParseError: with ``reason`` one of ``empty``, ``too_long``,
            ``no_object``, ``truncated``, ``ambiguous``, ``no_verdict``,
            ``invalid_verdict``, ``missing_keys``.

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
    if len(text) > MAX_ANSWER_CHARS:
        raise FeedbackParseError(f"the answer is {len(text):,} characters, over the {MAX_ANSWER_CHARS:,} a feedback "
                                 "object can take; it was not read", text, "too_long")
    start = text.find("{")
    if start < 0:
        raise FeedbackParseError("no JSON object in the model's answer", text, "no_object")
    first_marker = RUN_ON.search(text, start)
    if finish_reason == "length" and first_marker is None:
        raise FeedbackParseError(
            "truncated answer: the server stopped at max_tokens (finish_reason 'length') before the answer "
            "ended; raise max_tokens", text, "truncated")
    markers = [m.start() for m in RUN_ON.finditer(text, start)] if first_marker else []
    candidates = _candidates(text, start, verdict_key)
    feedback = [c for c in candidates if c.mentions_verdict]
    open_first = [c for c in candidates if not c.closed and (first_marker is None or c.start < first_marker.start())]
    if open_first or any(not c.closed for c in feedback):
        raise FeedbackParseError("truncated answer: the feedback object is still open where the answer ends",
                                 text, "truncated")
    if not feedback:
        if not any(isinstance(c.value, dict) for c in candidates):
            raise FeedbackParseError("no JSON object in the model's answer", text, "no_object")
        raise FeedbackParseError(f"the feedback has no {verdict_key!r}", text, "no_verdict")
    if len(feedback) > 1 and any(_between(markers, a.end, b.start) for a, b in zip(feedback, feedback[1:])):
        raise FeedbackParseError(
            f"ambiguous answer: {len(feedback)} feedback objects on either side of a run-on marker (an echoed "
            "example or shot, then another answer)", text, "ambiguous")
    if any(c.duplicate_verdict for c in feedback):
        raise FeedbackParseError(f"ambiguous answer: an object gives {verdict_key!r} twice", text, "ambiguous")
    usable = [c for c in feedback if isinstance(c.value, dict) and verdict_key in c.value]
    if len(usable) < len(feedback):
        raise FeedbackParseError(f"a feedback object with {verdict_key!r} cannot be decoded (nested deeper than "
                                 f"{MAX_DEPTH} or not JSON)", text, "invalid_verdict")
    echoed = [c for c in usable if any(_repeats(c.value, example, verdict_key, normalize) for example in examples)]
    if echoed:
        raise FeedbackParseError("ambiguous answer: it repeats the prompt's format example (the template's own "
                                 "placeholder values), not a judgement", text, "ambiguous")
    raw_verdicts = [c.value[verdict_key] for c in usable]
    if len({_comparable(v, normalize) for v in raw_verdicts}) > 1:
        shown = ", ".join(json.dumps(v, ensure_ascii=False) for v in raw_verdicts)
        raise FeedbackParseError(
            f"ambiguous answer: {len(usable)} feedback objects disagree on {verdict_key!r} ({shown})",
            text, "ambiguous")
    if not all(c.clean_verdict for c in usable):
        what = "strict JSON (it needed repair)" if isinstance(raw_verdicts[0], (dict, list)) else \
            "a plain JSON value as written (repaired junk such as '7 8')"
        raise FeedbackParseError(f"{verdict_key!r} is not {what}", text, "invalid_verdict")
    verdict = normalize(raw_verdicts[0], text)
    complete = [c.value for c in usable if all(k in c.value for k in keys)]
    if not complete:
        missing = [k for k in keys if k not in usable[0].value]
        raise FeedbackParseError(f"the feedback lacks {', '.join(repr(k) for k in missing)}", text, "missing_keys")
    return {**complete[0], verdict_key: verdict}


def template_examples(texts: Iterable[str], verdict_key: str) -> list[dict[str, Any]]:
    """The format examples a template shows: its objects that hold `verdict_key`,
    decoded (``{"choice": "A++, A+, A=B, B+ or B++"}``). An answer repeating one is an echo.

    >>> template_examples(['Write {"score": N, "why": "a reason"} then stop.'], "score")
    [{'score': 'N', 'why': 'a reason'}]
    """
    found = []
    for text in texts:
        start = text.find("{")
        if start >= 0:
            found += [c.value for c in _candidates(text, start, verdict_key)
                      if isinstance(c.value, dict) and verdict_key in c.value]
    return found


def _between(markers: Sequence[int], end: int | None, start: int) -> bool:
    return end is not None and any(end <= m < start for m in markers)


def _repeats(value: Mapping[str, Any], example: Mapping[str, Any], verdict_key: str,
             normalize: Callable[[Any, str], Any]) -> bool:
    # An echo: every key the two share holds the template's own value (the verdict is
    # compared normalised, so "5" and 5 are one).
    shared = [k for k in example if k in value]
    if not shared:
        return False
    for key in shared:
        mine, theirs = value[key], example[key]
        if key == verdict_key:
            if _comparable(mine, normalize) != _comparable(theirs, normalize):
                return False
        elif not _same_text(mine, theirs):
            return False
    return True


def _same_text(mine: Any, theirs: Any) -> bool:
    # The template's placeholder text, as written (nested objects compared key by key).
    if isinstance(mine, dict) and isinstance(theirs, dict):
        return bool(theirs) and mine.keys() == theirs.keys() and all(_same_text(mine[k], theirs[k]) for k in theirs)
    return isinstance(mine, str) and isinstance(theirs, str) and mine.strip() == theirs.strip()


def _comparable(value: Any, normalize: Callable[[Any, str], Any]) -> str:
    # "7" and 7 are one verdict; an invalid value is compared as written.
    try:
        value = normalize(value, "")
    except FeedbackParseError:
        pass
    return json.dumps(value, sort_keys=True, default=str)


def _candidates(text: str, start: int, verdict_key: str) -> list[_Candidate]:
    """Every top-level ``{...}`` of `text` from `start`, decoded where that is safe.

    One pass over the structural characters: braces, brackets, quotes and backslashes;
    braces inside JSON strings do not count. A candidate deeper than `MAX_DEPTH` is not
    decoded; one still open where the text ends is the last.
    """
    budget = [MAX_REPAIR_CHARS]  # characters json_repair may still read
    key_pattern = re.compile(r'(?<![\\\w])["\']' + re.escape(verdict_key) + r'["\']\s*:')
    found: list[_Candidate] = []
    depth = nesting = deepest = 0
    in_string = False
    skip = -1
    begin = -1
    for match in _STRUCTURE.finditer(text, start):
        index = match.start()
        if index == skip:
            continue
        char = match.group()
        if in_string:
            if char == "\\":
                skip = index + 1
            elif char == '"':
                in_string = False
            continue
        if depth == 0:
            if char != "{":
                continue
            begin, nesting, deepest = index, 0, 0
        if char == '"':
            in_string = True
        elif char in "{[":
            nesting += 1
            deepest = max(deepest, nesting)
            depth += char == "{"
        elif char in "}]":
            nesting = max(nesting - 1, 0)
            if char == "}":
                depth -= 1
                if depth == 0:
                    if len(found) == MAX_CANDIDATES:
                        raise FeedbackParseError(f"ambiguous answer: more than {MAX_CANDIDATES} JSON objects", text,
                                                 "ambiguous")
                    found.append(_decode(text[begin:index + 1], begin, index + 1, deepest, key_pattern, verdict_key,
                                         budget))
    if depth > 0:
        fragment = text[begin:]
        found.append(_Candidate(begin, None, None, bool(key_pattern.search(fragment)), False, False))
    return found


def _decode(fragment: str, start: int, end: int, deepest: int, key_pattern: re.Pattern[str],
            verdict_key: str, budget: list[int]) -> _Candidate:
    mentions = [m.end() for m in key_pattern.finditer(fragment)]
    value: Any = None
    duplicate = strict = False
    if deepest <= MAX_DEPTH:
        try:
            value = json.loads(fragment, object_pairs_hook=_pairs)
            duplicate = isinstance(value, _Duplicated) and verdict_key in value.duplicates
            strict = True
        except (json.JSONDecodeError, RecursionError):
            if len(fragment) <= budget[0]:
                budget[0] -= len(fragment)
                try:
                    value = json_repair.loads(fragment)
                except (RecursionError, ValueError, TypeError):
                    value = None
                if isinstance(value, list):  # json_repair returns a list for several values
                    value = next((v for v in value if isinstance(v, dict)), None)
                duplicate = len(mentions) > 1 and len(_top_level(fragment, mentions)) > 1
    if isinstance(value, _Duplicated):
        value = dict(value)
    value = value if isinstance(value, dict) else None
    # A decoded object is a feedback candidate when it holds the key at its top level; an
    # undecodable one when its text gives the key.
    mentions_verdict = verdict_key in value if value is not None else bool(mentions)
    clean = bool(mentions) and re.match(_CLEAN_VALUE, fragment[mentions[0]:].lstrip()) is not None
    if strict and value is not None and isinstance(value.get(verdict_key), (dict, list)):
        clean = True  # a structured verdict (listwise scores) counts only as strict JSON, its duplicates seen
    return _Candidate(start, end, value, mentions_verdict, duplicate, clean)


class _Duplicated(dict):
    """A decoded object that saw some keys twice (`duplicates`)."""

    duplicates: frozenset[str] = frozenset()


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) == len(keys):
        return dict(pairs)
    value = _Duplicated(pairs)
    value.duplicates = frozenset(k for k in keys if keys.count(k) > 1)
    return value


def _top_level(fragment: str, positions: Sequence[int]) -> list[int]:
    """The `positions` (ends of key matches) that lie at the object's top level."""
    depth, in_string, skip, level = 0, False, -1, {}
    wanted = set(positions)
    for index, char in enumerate(fragment):
        if index in wanted:
            level[index] = depth
        if index == skip:
            continue
        if in_string:
            if char == "\\":
                skip = index + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            depth += 1
        elif char in "}]":
            depth -= 1
    return [p for p in positions if level.get(p) == 1]


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
    elif isinstance(value, str) and len(value) < 32 and (m := _SCORE_TEXT.match(value)):
        score = int(m.group(1))
    if score is None:
        raise FeedbackParseError(f"score {_short(value)} is not an integer", text, "invalid_verdict")
    if not low <= score <= high:
        raise FeedbackParseError(f"score {score} is outside {low}-{high}", text, "invalid_verdict")
    return score


def normalize_choice(value: Any, text: str, choices: Sequence[str]) -> str:
    """A pairwise choice, whitespace removed (``"A +"`` is ``A+``).

    Raises:
        FeedbackParseError: (``invalid_verdict``) not one of `choices`.
    """
    choice = "".join(value.split()) if isinstance(value, str) and len(value) < 32 else value
    if not isinstance(choice, str) or choice not in choices:
        raise FeedbackParseError(f"choice {_short(value)} is not one of {', '.join(choices)}", text, "invalid_verdict")
    return choice


def _short(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."
