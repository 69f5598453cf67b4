"""OpenAI grader configs as icrm rubrics: ``icrm rubric import grader.json``.

OpenAI's hosted Evals closed on 2026-11-30; their grader JSON (the Graders API shapes:
``score_model``, ``label_model``, ``multi`` with ``calculate_output``) still describes
what a judge should check. Each model grader becomes one criterion:

- ``score_model`` (``range`` [min, max], default [0, 1]): a criterion on an integer
  scale — the range itself when it is integers at least 2 apart (``[1, 7]``), else 0–10
  standing for the range in tenths (``[0, 1]``, noted);
- ``label_model`` (``labels``, ``passing_labels``): a criterion whose choices are the
  labels, failing ones first (worst → best), passing when a passing label is given;
- ``multi``: its graders as criteria, and ``calculate_output`` as the rubric's formula —
  each name standing for what OpenAI's formula reads (a score in its own range, a
  label grader's pass as 1 or 0). A formula that can leave [0, 1] is refused: icrm's
  rewards are in [0, 1].

Refused, with the reason: ``string_check``, ``text_similarity`` and ``python`` graders
(computed, not judged: icrm's criteria are the judge's verdicts — compute them in the
reward function beside icrm), nested ``multi``, unknown types, and anything the rubric
cannot validate. The grader's prompt becomes the criterion's description, its
``{{sample.output_text}}`` read as "the response" and ``{{item.<field>}}`` as "the
item's <field>" (give rows a ``reference`` when the prompt compares with one).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .rubric import NAME, RESERVED_NAMES, RubricError, load_rubric

__all__ = ["GraderImportError", "rubric_from_grader", "import_grader", "COMPUTED_GRADERS"]

COMPUTED_GRADERS = ("string_check", "text_similarity", "python")
_FLOAT_SCALE = 10  # a non-integer score range is read on 0-10, its tenths


class GraderImportError(ConfigError):
    """A grader config icrm cannot carry as a rubric, with the reason."""


def rubric_from_grader(grader: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A rubric dict for an OpenAI grader config, and notes on what was approximated.

    Raises:
        GraderImportError: a grader type or formula icrm cannot carry (see the module
            docstring), naming the grader and why.

    >>> rubric, notes = rubric_from_grader({"type": "label_model", "name": "tone", "model": "gpt-4o",
    ...     "input": [{"role": "user", "content": "Is {{sample.output_text}} polite?"}],
    ...     "labels": ["polite", "rude"], "passing_labels": ["polite"]})
    >>> [c["choices"] for c in rubric["criteria"]], rubric["formula"]
    ([['rude', 'polite']], '(1 if tone >= 1.0 else 0)')
    """
    if not isinstance(grader, Mapping):
        raise GraderImportError(f"a grader config is a JSON object, got {type(grader).__name__}")
    notes: list[str] = []
    kind = grader.get("type")
    if kind == "multi":
        graders = grader.get("graders")
        formula = grader.get("calculate_output")
        if not isinstance(graders, Mapping) or not graders:
            raise GraderImportError("multi grader: 'graders' must be an object of name -> grader")
        if not isinstance(formula, str) or not formula.strip():
            raise GraderImportError("multi grader: 'calculate_output' must be a formula over the graders' names")
        criteria, raw = [], {}
        for key, sub in graders.items():
            criterion, expression = _criterion(sub, str(key), notes)
            criteria.append(criterion)
            raw[str(key)] = expression  # the formula names graders by their keys
        rubric = {"name": grader.get("name"), "criteria": criteria, "aggregate": "formula",
                  "formula": _substitute(formula, raw)}
    else:
        criterion, expression = _criterion(grader, str(grader.get("name") or "grade"), notes)
        rubric = {"name": grader.get("name"), "criteria": [criterion]}
        if grader.get("type") == "label_model":
            rubric.update(aggregate="formula", formula=expression)
    rubric = {k: v for k, v in rubric.items() if v is not None}
    try:
        load_rubric(rubric)
    except RubricError as e:
        raise GraderImportError(f"the grader cannot be an icrm rubric: {str(e).removeprefix('rubric: ')}") from None
    return rubric, notes


def _criterion(grader: Any, key: str, notes: list[str]) -> tuple[dict[str, Any], str]:
    """One criterion and the expression that gives its OpenAI value from its icrm value."""
    if not isinstance(grader, Mapping):
        raise GraderImportError(f"grader {key!r}: expected an object, got {type(grader).__name__}")
    kind = grader.get("type")
    name = _name(key)
    if name != key:
        notes.append(f"grader {key!r} is criterion {name!r} (criterion names are identifiers)")
    if kind in COMPUTED_GRADERS:
        raise GraderImportError(f"grader {key!r} is a {kind} grader: it is computed from the text, not judged, and "
                                "icrm's criteria are the judge's verdicts — compute it in your reward function beside "
                                "icrm, or drop it")
    if kind == "multi":
        raise GraderImportError(f"grader {key!r}: a multi grader inside a multi grader cannot be one rubric")
    if kind not in ("score_model", "label_model"):
        raise GraderImportError(f"grader {key!r} has type {kind!r}; icrm imports score_model, label_model and multi")
    description = _description(grader.get("input"), key)
    if kind == "label_model":
        labels, passing = grader.get("labels"), grader.get("passing_labels")
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels) or len(labels) < 2:
            raise GraderImportError(f"grader {key!r}: 'labels' must be a list of at least 2 texts")
        if not isinstance(passing, list) or not passing or any(p not in labels for p in passing):
            raise GraderImportError(f"grader {key!r}: 'passing_labels' must be a non-empty list of its labels")
        if len(passing) == len(labels):
            raise GraderImportError(f"grader {key!r}: every label passes, so it judges nothing")
        choices = [x for x in labels if x not in passing] + [x for x in labels if x in passing]
        threshold = (len(labels) - len(passing)) / (len(labels) - 1)
        notes.append(f"{name}: labels ordered failing first ({', '.join(choices)}); it passes from "
                     f"{choices[len(labels) - len(passing)]!r} on")
        return ({"name": name, "description": description, "choices": choices},
                f"(1 if {name} >= {threshold!r} else 0)")
    span = grader.get("range", [0, 1])
    if not (isinstance(span, list) and len(span) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                              for v in span) and span[0] < span[1]):
        raise GraderImportError(f"grader {key!r}: 'range' must be [min, max] numbers with min < max, got {span!r}")
    low, high = span
    if float(low).is_integer() and float(high).is_integer() and 2 <= high - low <= 100:  # [0, 1] is continuous
        scale = [int(low), int(high)]
    else:
        scale = [0, _FLOAT_SCALE]
        notes.append(f"{name}: the score range [{low}, {high}] is judged on an integer scale 0-{_FLOAT_SCALE} "
                     f"(its tenths)")
    if "pass_threshold" in grader:
        notes.append(f"{name}: pass_threshold {grader['pass_threshold']} is an eval's pass mark, not a reward: "
                     "not carried")
    return ({"name": name, "description": description, "scale": scale}, f"({low!r} + {high - low!r} * {name})")


def _name(key: str) -> str:
    """A criterion name for a grader key: an identifier, never a reserved name."""
    name = re.sub(r"\W+", "_", key.strip()).strip("_") or "grade"
    name = name if not name[0].isdigit() else f"g_{name}"
    name = f"{name}_grade" if name in RESERVED_NAMES else name
    return name[:64] if NAME.match(name[:64]) else "grade"


def _description(messages: Any, key: str) -> str:
    """The grader's prompt as one text, its template variables read as words."""
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    if not isinstance(messages, list) or not messages:
        raise GraderImportError(f"grader {key!r}: 'input' must be the grader's messages (a list of role/content)")
    parts = []
    for message in messages:
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, Mapping):
            content = [content]
        if isinstance(content, list):  # input_text parts
            content = "\n".join(str(c.get("text", "")) for c in content if isinstance(c, Mapping))
        if not isinstance(content, str):
            raise GraderImportError(f"grader {key!r}: a message of 'input' has no text content")
        parts.append(content.strip())
    text = "\n\n".join(p for p in parts if p)
    text = re.sub(r"\{\{\s*sample\.output_(text|json)\s*\}\}", "the response", text)
    text = re.sub(r"\{\{\s*item\.([\w.]+)\s*\}\}", lambda m: f"the item's {m.group(1)}", text)
    if not text:
        raise GraderImportError(f"grader {key!r}: its prompt is empty")
    return text


def _substitute(formula: str, raw: Mapping[str, str]) -> str:
    """`formula` with each grader name replaced by its OpenAI value's expression."""
    keys = sorted(raw, key=len, reverse=True)
    if not keys:
        return formula
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, keys)) + r")\b")
    return pattern.sub(lambda m: raw[m.group(1)], formula)


def import_grader(path: str | Path, output: str | Path | None = None) -> str:
    """Read an OpenAI grader config (JSON) and write its rubric as YAML, the notes as
    comments at the top; returns the YAML text (and writes `output` when given).

    Raises:
        GraderImportError: an unreadable file or a grader icrm cannot carry.
    """
    import yaml

    try:
        grader = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise GraderImportError(f"cannot read grader config {path}: {getattr(e, 'strerror', None) or e}") from None
    except json.JSONDecodeError as e:
        raise GraderImportError(f"grader config {path} is not valid JSON: {e}") from None
    rubric, notes = rubric_from_grader(grader)
    header = [f"# icrm rubric imported from the OpenAI grader config {Path(path).name}"]
    header += [f"# note: {n}" for n in notes]
    text = "\n".join(header) + "\n" + yaml.safe_dump(rubric, sort_keys=False, allow_unicode=True, width=100)
    if output is not None:
        Path(output).write_text(text, encoding="utf-8")
    return text
