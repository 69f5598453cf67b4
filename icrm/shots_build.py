"""`icrm shots build`: a shots pool from the user's own labelled data.

Input rows (JSONL, JSON, Parquet, a saved 🤗 dataset), by rm type:

| rm type | a row holds | a shot's verdict |
| --- | --- | --- |
| pairwise | ``prompt``, ``chosen``, ``rejected`` (RewardBench) | ``A+`` or ``B+``: the chosen answer placed in A for half the shots, in B for the other half (seeded) |
| individual | ``conversation``, or ``prompt`` + ``response``; ``score`` | the score (1–10, or rescaled from ``score_range``) |
| listwise | ``conversations``, or ``prompt`` + ``responses``; ``scores`` | the scores, the responses shuffled (seeded) so the best lands on every label |

A shot's feedback is the verdict alone (a verdict-only shot, shown by the ``verdict`` and
``logprob`` methods). With a critique judge (`add_critiques`, ``--critiques_from``), the
judge writes each shot's critique, not told the label; a shot is kept only when the
critique's own verdict agrees with the label (pairwise and listwise: the same preferred
side / best response; individual: within one point), with the label as its verdict.

Every bad row is an error naming its line and field, and nothing is written; a row whose
two answers are the same, or a shot already in the pool (after normalisation), is
skipped and counted.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .batch.sources import BadRow, read_rows
from .conversation import Conversation
from .errors import ConfigError, InputError
from .inputs import prompt_responses, prompt_turns, rewardbench_pair
from .rm_types import RMType, get_rm_type
from .shot_selection.base import conversation_key
from .shots import ShotsPool

__all__ = ["BuildReport", "build_shots", "add_critiques", "write_pool", "MAX_ROW_ERRORS"]

MAX_ROW_ERRORS = 5  # bad rows quoted in one error; the count says how many in all


@dataclass
class BuildReport:
    """What a build read and wrote.

    Attributes:
        rows: rows read.
        shots: shots in the pool.
        skipped_no_preference: rows whose answers are the same text.
        skipped_duplicates: rows repeating a shot already taken.
        classes: shots per verdict class (`RMType.shot_class`).
        critiqued: shots a critique judge was asked about (0 without one).
        agreed: of those, shots whose critique agreed with the label (kept).
    """

    rows: int = 0
    shots: int = 0
    skipped_no_preference: int = 0
    skipped_duplicates: int = 0
    classes: dict[str, int] = field(default_factory=dict)
    critiqued: int = 0
    agreed: int = 0

    def lines(self) -> list[str]:
        """The report as lines for a terminal."""
        out = [f"rows read: {self.rows}", f"shots: {self.shots}",
               "per verdict class: " + ", ".join(f"{k} {v}" for k, v in sorted(self.classes.items()))]
        if self.skipped_no_preference or self.skipped_duplicates:
            out.append(f"skipped: {self.skipped_no_preference} with the same answer twice, "
                       f"{self.skipped_duplicates} repeating a shot")
        if self.critiqued:
            out.append(f"critiques agreeing with the label: {self.agreed}/{self.critiqued} "
                       f"({self.agreed / self.critiqued:.1%}); only those shots kept")
        return out


def build_shots(rows: Iterable[Mapping[str, Any] | BadRow], rm_type: str | RMType, seed: int = 42,
                score_range: tuple[float, float] | None = None, source: str = "data") -> tuple[list[dict[str, Any]], BuildReport]:
    """Shots (verdict-only) from labelled rows; see the module docstring for the forms.

    Args:
        rows: the rows (a `BadRow` is an unreadable line).
        rm_type: ``pairwise``, ``individual`` or ``listwise``.
        seed: seeds the A/B placement (pairwise) and the response order (listwise).
        score_range: individual: the (low, high) of the data's scores, mapped linearly
            onto 1–10 and rounded; None = the scores are already integers 1–10.
        source: the data's name, for messages.

    Returns:
        (shot dicts, each with an ``id``; the report).

    Raises:
        InputError: bad rows (up to `MAX_ROW_ERRORS` quoted with line and field, and their
            count), repeated ids, or no shot at all.
        ConfigError: an rm type without a build, or a bad `score_range`.
    """
    spec = get_rm_type(rm_type)
    if spec.name not in _READERS:
        raise ConfigError(f"icrm shots build makes pairwise, individual or listwise pools, not rm_type={spec.name!r}")
    if score_range is not None and (len(score_range) != 2 or not score_range[0] < score_range[1]):
        raise ConfigError(f"score_range must be LOW,HIGH with LOW < HIGH, got {score_range!r}")
    report, errors, seen_ids, seen_shots = BuildReport(), [], {}, set()
    taken: list[tuple[str, list[list[dict[str, Any]]], Any]] = []
    for line, row in enumerate(rows, 1):
        report.rows += 1
        where = f"{source} line {line}"
        try:
            if isinstance(row, BadRow):
                raise InputError(row.message)
            rid = str(row.get("id", f"line:{line}"))
            if rid in seen_ids:
                raise InputError(f"{where}: id {rid!r} repeats line {seen_ids[rid]}'s; ids must be unique")
            seen_ids[rid] = line
            conversations, label = _READERS[spec.name](row, where, score_range)
            checked = [Conversation.from_messages(c, f"{where} conversation {i}") for i, c in enumerate(conversations)]
        except InputError as e:
            errors.append(str(e))
            continue
        keys = [conversation_key(c) for c in checked]
        if len(set(keys)) < len(keys):
            report.skipped_no_preference += 1
            continue
        identity = frozenset(keys)
        if identity in seen_shots:
            report.skipped_duplicates += 1
            continue
        seen_shots.add(identity)
        taken.append((rid, conversations, label))
    if errors:
        shown = "\n  ".join(errors[:MAX_ROW_ERRORS])
        more = f"\n  ... and {len(errors) - MAX_ROW_ERRORS} more" if len(errors) > MAX_ROW_ERRORS else ""
        raise InputError(f"{len(errors)} of {report.rows} rows of {source} cannot be shots; nothing was written:\n  "
                         f"{shown}{more}")
    if not taken:
        raise InputError(f"{source}: no row made a shot ({report.rows} rows read)")
    shots = _PLACERS[spec.name](taken, random.Random(seed))
    ShotsPool.from_records(shots, spec, f"shots built from {source}")  # what is written must load
    report.shots = len(shots)
    report.classes = dict(Counter(spec.shot_class(s["feedback"]) for s in shots))
    return shots, report


def _pairwise_row(row: Mapping[str, Any], where: str, _: Any) -> tuple[list[Any], str]:
    chosen, rejected = rewardbench_pair(row, where)
    for name in ("chosen", "rejected"):
        if not isinstance(row[name], str):  # an empty answer is a (bad) answer
            raise InputError(f"{where}: '{name}' must be a string, got {type(row[name]).__name__}")
    return [chosen, rejected], "chosen"


def _individual_row(row: Mapping[str, Any], where: str, score_range: tuple[float, float] | None) -> tuple[list[Any], int]:
    if "conversation" in row:
        conversation = row["conversation"]
    elif "prompt" in row and "response" in row:
        if not isinstance(row["response"], str):
            raise InputError(f"{where}: 'response' must be a string")
        conversation = [*prompt_turns(row["prompt"], where), {"role": "assistant", "content": row["response"]}]
    else:
        raise InputError(f"{where}: an individual row needs 'conversation', or 'prompt' and 'response'")
    if "score" not in row:
        raise InputError(f"{where}: an individual row needs 'score'")
    return [conversation], _score(row["score"], where, score_range)


def _score(value: Any, where: str, score_range: tuple[float, float] | None) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise InputError(f"{where}: 'score' must be a number, got {value!r}")
    if score_range is not None:
        low, high = score_range
        if not low <= value <= high:
            raise InputError(f"{where}: 'score' {value!r} is outside --score_range {low:g},{high:g}")
        return round(1 + 9 * (value - low) / (high - low))
    if value != int(value) or not 1 <= value <= 10:
        raise InputError(f"{where}: 'score' must be an integer from 1 to 10, got {value!r}; pass --score_range "
                         "LOW,HIGH to rescale another scale")
    return int(value)


def _listwise_row(row: Mapping[str, Any], where: str, score_range: tuple[float, float] | None) -> tuple[list[Any], list[int]]:
    conversations = row["conversations"] if "conversations" in row else prompt_responses(row, where)
    scores = row.get("scores")
    if not isinstance(conversations, list) or not isinstance(scores, list) or len(scores) != len(conversations):
        raise InputError(f"{where}: a listwise row needs 'scores', one per response")
    if not 2 <= len(conversations) <= 9:
        raise InputError(f"{where}: a group shot holds 2 to 9 responses, got {len(conversations)}")
    return conversations, [_score(s, where, score_range) for s in scores]


_READERS = {"pairwise": _pairwise_row, "individual": _individual_row, "listwise": _listwise_row}


def _place_pairs(taken: Sequence[tuple[str, list[Any], Any]], rng: random.Random) -> list[dict[str, Any]]:
    # Exactly half (rounded) of the shots have the chosen answer in A: a seeded choice of
    # which, not an alternation a row order could correlate with.
    in_a = set(rng.sample(range(len(taken)), (len(taken) + 1) // 2))
    shots = []
    for i, (rid, (chosen, rejected), _) in enumerate(taken):
        a, b, choice = (chosen, rejected, "A+") if i in in_a else (rejected, chosen, "B+")
        shots.append({"id": rid, "conversation_A": a, "conversation_B": b, "feedback": {"choice": choice}})
    return shots


def _place_singles(taken: Sequence[tuple[str, list[Any], Any]], rng: random.Random) -> list[dict[str, Any]]:
    return [{"id": rid, "conversation": convs[0], "feedback": {"score": score}} for rid, convs, score in taken]


def _place_groups(taken: Sequence[tuple[str, list[Any], Any]], rng: random.Random) -> list[dict[str, Any]]:
    shots = []
    for rid, conversations, scores in taken:
        order = list(range(len(conversations)))
        rng.shuffle(order)
        labels = [str(i) for i in range(1, len(order) + 1)]
        shots.append({"id": rid, "conversations": [conversations[j] for j in order],
                      "feedback": {"scores": {label: scores[j] for label, j in zip(labels, order)}}})
    return shots


_PLACERS = {"pairwise": _place_pairs, "individual": _place_singles, "listwise": _place_groups}


async def add_critiques(shots: Sequence[dict[str, Any]], judge: Any, concurrency: int = 8,
                        report: BuildReport | None = None) -> list[dict[str, Any]]:
    """Shots with a critique each, written by `judge`; only those whose critique agrees
    with the label (see the module docstring).

    Args:
        shots: verdict-only shot dicts (`build_shots`).
        judge: an `icrm.ICRM` of the shots' rm type with the ``critique`` method.
        concurrency: judgements in flight.
        report: updated with ``critiqued`` / ``agreed`` / ``shots`` / ``classes``.

    Returns:
        The kept shots: the critique's text fields, the label's verdict.

    Raises:
        ConfigError: a judge of another rm type or method.
    """
    spec = judge.rm_type
    if judge.method.name != "critique":
        raise ConfigError(f"a critique judge must use method 'critique', not {judge.method.name!r}")
    fields = spec.input_fields
    kept: list[tuple[int, dict[str, Any]]] = []
    async for index, feedback in judge.ajudge_stream([{f: s[f] for f in fields} for s in shots], concurrency):
        shot = shots[index]
        label = shot["feedback"][spec.verdict_key]
        if feedback.ok and _agrees(spec, getattr(feedback, spec.verdict_key), label):
            written = {k: v for k, v in feedback.to_dict().items() if k in spec.keys()}
            kept.append((index, {**shot, "feedback": {**written, spec.verdict_key: label}}))
    result = [shot for _, shot in sorted(kept, key=lambda pair: pair[0])]
    if report is not None:
        report.critiqued, report.agreed, report.shots = len(shots), len(result), len(result)
        report.classes = dict(Counter(spec.shot_class(s["feedback"]) for s in result))
    return result


def _agrees(spec: RMType, verdict: Any, label: Any) -> bool:
    if spec.verdict_key == "score":
        return abs(verdict - label) <= 1
    if isinstance(verdict, list):  # a group's scores come back in label order
        verdict = {str(i): v for i, v in enumerate(verdict, 1)}
    return spec.shot_class({spec.verdict_key: verdict}) == spec.shot_class({spec.verdict_key: label})


def write_pool(shots: Sequence[dict[str, Any]], output: str | Path, overwrite: bool = False) -> Path:
    """Write shots as JSONL, whole or not at all (a temporary file renamed in place).

    Raises:
        InputError: `output` exists and `overwrite` is False, or cannot be written.
    """
    path = Path(output)
    if path.exists() and not overwrite:
        raise InputError(f"{path} exists: pass --overwrite to replace it, or another --output")
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or Path("."))
        with os.fdopen(handle, "w", encoding="utf-8") as f:
            for shot in shots:
                f.write(json.dumps(shot, ensure_ascii=False) + "\n")
        os.replace(temporary, path)
    except OSError as e:
        raise InputError(f"cannot write {path}: {e.strerror}") from None
    return path

