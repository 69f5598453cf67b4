"""Rubrics with criteria: what a judge checks one by one, and how the checks make a reward.

A rubric is a YAML or JSON file (``rubric=`` on `icrm.ICRM`, ``--rubric FILE`` on every
command)::

    criteria:
      - name: correct                  # an identifier: formulas and log keys use it
        description: The answer is factually correct.
        weight: 2                      # > 0, default 1
        choices: [wrong, partly correct, correct]   # ordered worst -> best
        required: true                 # a gate: failing it makes the reward 0
      - name: clear
        description: Easy to follow, no padding.
        scale: [1, 5]                  # or an integer scale, min and max
    aggregate: weighted_mean           # or min, or formula
    # formula: "min(correct, 0.5 * correct + 0.5 * clear)"
    shots: []                          # optional in-context shots with per-criterion feedback

Each criterion's verdict becomes a value in [0, 1]: choice i of n is i / (n − 1), a scale
value v is (v − min) / (max − min), and — judging a pair — a choice ``A++`` … ``B++`` is
how much A is preferred (1.0 … 0.0). The reward is the aggregate of the values
(``weighted_mean``, ``min``, or a ``formula`` over the criteria's names with ``+ - * /
^``, ``min max abs floor ceil exp sqrt log``, OpenAI's ``calculate_output`` operators,
evaluated by `simpleeval`), then the gates: a ``required`` criterion passes when its
value reaches ``pass_at`` (default: anything above the worst verdict); one that fails
makes the reward 0.

Sources: weighted criteria with ordered choices as verifiers' rubric judge and
Rubrics-as-Rewards (Gunjal et al., 2025); gates as OpenRubrics' hard rules; formulas as
OpenAI's ``multi`` grader.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import operator
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError

__all__ = ["Criterion", "Rubric", "load_rubric", "RubricError", "AGGREGATES", "MAX_CRITERIA", "FORMULA_FUNCTIONS",
           "RESERVED_NAMES"]

AGGREGATES = ("weighted_mean", "min", "formula")
MAX_CRITERIA = 64  # a rubric of more is a list of tasks, not one judgement
MAX_SCALE_STEPS = 100
RESERVED_NAMES = ("score", "failed")
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
FORMULA_FUNCTIONS = {"min": min, "max": max, "abs": abs, "floor": math.floor, "ceil": math.ceil, "exp": math.exp,
                     "sqrt": math.sqrt, "log": math.log}
# OpenAI's calculate_output writes powers with ^; Python's ** is kept too.
_OPERATORS: dict[Any, Any] | None = None
_FORMULA_CORNERS = 12  # check every corner of [0, 1]^n up to this many criteria


class RubricError(ConfigError):
    """A rubric that cannot be used, naming the criterion and field."""


class Criterion(BaseModel):
    """One criterion of a rubric.

    Attributes:
        name: an identifier (letters, digits, ``_``; not starting with a digit).
        description: what the judge checks.
        weight: its weight in ``weighted_mean`` (> 0).
        choices: ordered verdicts, worst first (2 to 10, distinct) — or None with `scale`.
        scale: ``(min, max)`` integers, min < max — or None with `choices`.
        required: a gate: when this criterion fails the reward is 0.
        pass_at: the value in [0, 1] a required criterion must reach to pass; None =
            anything above the worst verdict.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = Field(min_length=1)
    weight: float = Field(1.0, gt=0, allow_inf_nan=False)
    choices: tuple[str, ...] | None = None
    scale: tuple[int, int] | None = None
    required: bool = False
    pass_at: float | None = Field(None, ge=0, le=1, allow_inf_nan=False)

    @field_validator("name")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if value in RESERVED_NAMES:
            raise ValueError(f"{value!r} is reserved (trainers log icrm_score and icrm_failed beside each criterion's "
                             "icrm_<name>): choose another name")
        if not NAME.match(value):
            raise ValueError("must be an identifier (letters, digits and _, not starting with a digit, at most 64 "
                             f"characters), got {value!r}")
        return value

    @field_validator("scale", mode="before")
    @classmethod
    def _scale_forms(cls, value: Any) -> Any:
        if isinstance(value, Mapping):  # {min: 1, max: 5}
            return (value.get("min"), value.get("max"))
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> Criterion:
        if (self.choices is None) == (self.scale is None):
            raise ValueError("give either 'choices' (ordered worst -> best) or 'scale' ([min, max]), not both or neither")
        if self.choices is not None:
            if not 2 <= len(self.choices) <= 10:
                raise ValueError(f"'choices' must hold 2 to 10 verdicts, got {len(self.choices)}")
            if any(not c.strip() for c in self.choices) or len({c.strip().lower() for c in self.choices}) < len(self.choices):
                raise ValueError("'choices' must be distinct, non-empty texts (compared without case)")
        if self.scale is not None:
            low, high = self.scale
            if not 0 < high - low <= MAX_SCALE_STEPS:
                raise ValueError(f"'scale' must be [min, max] integers with min < max and at most {MAX_SCALE_STEPS} "
                                 f"steps, got {list(self.scale)}")
        if self.pass_at is not None and not self.required:
            raise ValueError("'pass_at' applies to a required criterion: add 'required: true'")
        return self

    @property
    def verdicts(self) -> tuple[Any, ...]:
        """Every valid verdict, worst first (texts, or the scale's integers)."""
        if self.choices is not None:
            return self.choices
        low, high = self.scale  # type: ignore[misc]
        return tuple(range(low, high + 1))

    def value(self, verdict: Any) -> float:
        """The verdict's value in [0, 1] (worst 0, best 1).

        >>> Criterion(name="c", description="d", choices=("no", "partly", "yes")).value("partly")
        0.5
        """
        verdicts = self.verdicts
        return verdicts.index(verdict) / (len(verdicts) - 1)

    def passes(self, value: float) -> bool:
        """Whether a value passes this criterion's gate (always, when not required)."""
        if not self.required:
            return True
        return value > 0 if self.pass_at is None else value >= self.pass_at - 1e-9

    def normalize(self, value: Any) -> Any:
        """A written verdict as one of `verdicts` (choices compared without case and
        surrounding space; a scale's integers also as ``"4"``), or None."""
        if self.choices is not None:
            if not isinstance(value, str):
                return None
            wanted = value.strip().lower()
            return next((c for c in self.choices if c.strip().lower() == wanted), None)
        if isinstance(value, bool):
            return None
        if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            value = int(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return value if isinstance(value, int) and value in self.verdicts else None


class Rubric(BaseModel):
    """A rubric: criteria, how their values aggregate, and optional shots.

    Build it with `load_rubric` (a file, a dict or a `Rubric`), which names the
    criterion and field of any error.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    criteria: tuple[Criterion, ...] = Field(min_length=1, max_length=MAX_CRITERIA)
    aggregate: str = "weighted_mean"
    formula: str | None = None
    shots: tuple[dict[str, Any], ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Rubric:
        names = [c.name for c in self.criteria]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"criterion name(s) {', '.join(twice)} appear more than once: names must be unique")
        if self.aggregate not in AGGREGATES:
            raise ValueError(f"'aggregate' must be one of {', '.join(AGGREGATES)}, got {self.aggregate!r}")
        if (self.aggregate == "formula") != (self.formula is not None):
            raise ValueError("'formula' goes with 'aggregate: formula' (and that aggregate needs a formula)")
        if self.formula is not None:
            _check_formula(self.formula, names)
        return self

    @property
    def names(self) -> list[str]:
        """The criteria's names, in order."""
        return [c.name for c in self.criteria]

    def criterion(self, name: str) -> Criterion:
        """The criterion called `name` (KeyError when there is none)."""
        return next(c for c in self.criteria if c.name == name)

    @property
    def hash(self) -> str:
        """12 hex digits of the SHA-256 of the rubric's content (a run's fingerprint)."""
        return hashlib.sha256(json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:12]

    def values(self, verdicts: Mapping[str, Any]) -> dict[str, float]:
        """Each criterion's value in [0, 1] from its verdict, in rubric order."""
        return {c.name: c.value(verdicts[c.name]) for c in self.criteria}

    def failed_gates(self, values: Mapping[str, float]) -> list[str]:
        """The required criteria whose values do not pass."""
        return [c.name for c in self.criteria if not c.passes(values[c.name])]

    def reward(self, values: Mapping[str, float]) -> float:
        """The reward in [0, 1]: the aggregate of `values`, 0 when a gate fails.

        Raises:
            ValueError: the formula failed on these values (division by zero, ...) or
                gave a number outside [0, 1].

        >>> r = load_rubric({"criteria": [{"name": "a", "description": "x", "choices": ["no", "yes"], "weight": 3},
        ...                               {"name": "b", "description": "y", "scale": [1, 5]}]})
        >>> r.reward({"a": 1.0, "b": 0.5})
        0.875
        """
        if self.failed_gates(values):
            return 0.0
        if self.aggregate == "min":
            return min(values[n] for n in self.names)
        if self.aggregate == "weighted_mean":
            total = sum(c.weight for c in self.criteria)
            return sum(c.weight * values[c.name] for c in self.criteria) / total
        result = _evaluate(self.formula or "", values)
        if not 0.0 <= result <= 1.0:
            raise ValueError(f"the rubric's formula {self.formula!r} gave {result:g}, outside [0, 1]")
        return result

    def prompt_text(self, pairwise: bool = False) -> str:
        """The criteria as the judge reads them: name, description, and the verdicts
        allowed (for a pair, every criterion is judged ``A++`` … ``B++``)."""
        lines = []
        for index, c in enumerate(self.criteria, 1):
            if pairwise:
                allowed = "A++, A+, A=B, B+ or B++"
            elif c.choices is not None:
                allowed = "one of " + ", ".join(json.dumps(choice, ensure_ascii=False) for choice in c.choices) + \
                    " (worst to best)"
            else:
                allowed = f"an integer from {c.scale[0]} (worst) to {c.scale[1]} (best)"  # type: ignore[index]
            lines.append(f"{index}. {c.name}: {c.description}\n   Verdict: {allowed}.")
        return "\n".join(lines)


def load_rubric(source: str | Path | Mapping[str, Any] | Rubric) -> Rubric:
    """A validated rubric from a YAML / JSON file, a dict or a `Rubric`.

    Raises:
        RubricError: an unreadable file, or an invalid rubric — the message names the
            criterion (by name or index) and the field, and what it must be.
    """
    if isinstance(source, Rubric):
        return source
    where = "rubric"
    if isinstance(source, (str, Path)):
        where = f"rubric {source}"
        data = _read(Path(source), where)
    else:
        data = source
    if not isinstance(data, Mapping):
        raise RubricError(f"{where}: expected a mapping with 'criteria', got {type(data).__name__}")
    try:
        return Rubric.model_validate(dict(data))
    except ValidationError as e:
        raise RubricError(f"{where}: {_explain(e, data)}") from None


def _read(path: Path, where: str) -> Any:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise RubricError(f"cannot read {where}: {getattr(e, 'strerror', None) or e}") from None
    try:
        return json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as e:
        raise RubricError(f"{where} is not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: "
                          f"{str(e).splitlines()[0]}") from None


def _explain(error: ValidationError, data: Mapping[str, Any]) -> str:
    """The first error, with the criterion named: ``criterion 'clear' (criteria[1]) field
    'scale': ...``."""
    first = error.errors()[0]
    loc = list(first["loc"])
    message = first["msg"].removeprefix("Value error, ")
    if loc[:1] == ["criteria"] and len(loc) >= 2 and isinstance(loc[1], int):
        index = loc[1]
        criteria = data.get("criteria")
        name = criteria[index].get("name") if isinstance(criteria, list) and index < len(criteria) and \
            isinstance(criteria[index], Mapping) else None
        who = f"criterion {name!r} (criteria[{index}])" if isinstance(name, str) else f"criteria[{index}]"
        field = f" field {loc[2]!r}" if len(loc) > 2 else ""
        return f"{who}{field}: {message}"
    return f"field {'.'.join(map(str, loc))!r}: {message}" if loc else message


def _operators() -> dict[Any, Any]:
    global _OPERATORS
    if _OPERATORS is None:
        import ast

        import simpleeval

        _OPERATORS = {**simpleeval.DEFAULT_OPERATORS, ast.BitXor: operator.pow}
    return _OPERATORS


def _evaluate(formula: str, values: Mapping[str, float]) -> float:
    """The formula's value (a float), or ValueError naming what failed."""
    import simpleeval

    try:
        result = simpleeval.simple_eval(formula, names=dict(values), functions=FORMULA_FUNCTIONS,
                                        operators=_operators())
    except ZeroDivisionError:
        raise ValueError(f"the rubric's formula {formula!r} divided by zero") from None
    except simpleeval.NameNotDefined as e:
        raise ValueError(f"the rubric's formula {formula!r} names {e.name!r}, which is not a criterion") from None
    except (simpleeval.InvalidExpression, SyntaxError, TypeError, ValueError, OverflowError) as e:
        raise ValueError(f"the rubric's formula {formula!r} failed: {type(e).__name__}: {e}") from None
    if isinstance(result, bool) or not isinstance(result, (int, float)) or not math.isfinite(result):
        raise ValueError(f"the rubric's formula {formula!r} gave {result!r}, not a finite number")
    return float(result)


def _check_formula(formula: str, names: Sequence[str]) -> None:
    """A formula icrm can use: it reads only criteria, and every corner of [0, 1]^n (n ≤
    12) and the middle give a number in [0, 1]."""
    points: list[dict[str, float]] = [{n: 0.5 for n in names}]
    if len(names) <= _FORMULA_CORNERS:
        points += [dict(zip(names, corner)) for corner in itertools.product((0.0, 1.0), repeat=len(names))]
    for point in points:
        result = _evaluate(formula, point)
        if not 0.0 <= result <= 1.0:
            raise ValueError(f"'formula' must give a reward in [0, 1] when every criterion is in [0, 1]; it gives "
                             f"{result:g} at {point}")
