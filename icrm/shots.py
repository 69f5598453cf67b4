"""Shots pools: the scored examples shown to the model before the conversation to judge.

A pool is a JSON list (or JSONL file) of shots. Individual shots are
``{"conversation": [...], "feedback": {intent, checklist, strengths, weaknesses, score}}``;
pairwise shots are ``{"conversation_A": [...], "conversation_B": [...], "feedback":
{"analysis of A", ..., "choice"}}``. An optional ``id`` names a shot in provenance.

A shot's feedback may hold the verdict alone (``{"choice": "A+"}``, ``{"score": 7}``):
a verdict-only shot, as `icrm shots build` writes from labelled data. The ``verdict`` and
``logprob`` methods show only the verdict anyway; ``critique`` needs the whole feedback,
and refuses a pool with verdict-only shots (`ShotsPool.check_method`).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .conversation import Conversation
from .errors import ConfigError, InputError
from .rm_types import RMType, get_rm_type
from .shot_selection import SHOT_SELECTION_MODES, check_num_shots

__all__ = ["Shot", "ShotsPool", "SHOT_SAMPLING_MODES"]

SHOT_SAMPLING_MODES = SHOT_SELECTION_MODES.names()


@dataclass(frozen=True)
class Shot:
    """One validated shot.

    Attributes:
        id: the shot's ``id`` field, or its index in the pool.
        conversations: one conversation (individual) or A and B (pairwise).
        feedback: the feedback dict, keys as in the templates.
        record: the shot as loaded (a dict), for `ICRM.sample_shots` callers.
        verdict_only: whether its feedback holds the verdict alone.
    """

    id: str
    conversations: tuple[Conversation, ...]
    feedback: dict[str, Any]
    record: dict[str, Any] = field(repr=False, compare=False)
    verdict_only: bool = False


class ShotsPool:
    """A validated list of shots of one rm_type.

    Build it with `ShotsPool.load` (a file or the default pool) or
    `ShotsPool.from_records`.
    """

    def __init__(self, shots: Sequence[Shot], rm_type: str | RMType, source: str) -> None:
        self.shots = list(shots)
        self.rm_type = get_rm_type(rm_type)
        self.source = source
        # What the shots say, not where they came from: a run's fingerprint changes when
        # a pool's content does.
        canonical = json.dumps([s.record for s in self.shots], sort_keys=True, ensure_ascii=False, default=str)
        self.hash = hashlib.sha256(canonical.encode()).hexdigest()[:12]
        self._positions = {s.id: i for i, s in enumerate(self.shots)}

    def position(self, shot: Shot) -> int | None:
        """`shot`'s place in this pool (None: not one of its shots, e.g. a caller's shot
        with a pool shot's id). By id, then identity: it holds in a pickled copy too."""
        i = self._positions.get(shot.id)
        return i if i is not None and self.shots[i] is shot else None

    @property
    def verdict_only(self) -> int:
        """How many shots hold the verdict alone."""
        return sum(s.verdict_only for s in self.shots)

    def check_method(self, answer_keys: Sequence[str], method: str, num_shots: int) -> None:
        """Refuse a method that shows more of a shot's feedback than verdict-only shots hold.

        Raises:
            ConfigError: naming the method, the pool and the ways out.
        """
        if num_shots and self.verdict_only and set(answer_keys) != {self.rm_type.verdict_key}:
            raise ConfigError(
                f"the {self.source} holds {self.verdict_only} verdict-only shots (feedback with "
                f"'{self.rm_type.verdict_key}' alone), but method {method!r} shows each shot's whole feedback: "
                "use --method verdict or logprob, --num_shots 0, or build the pool with critiques "
                "(icrm shots build --critiques_from ENGINE)")

    def __len__(self) -> int:
        return len(self.shots)

    @classmethod
    def load(cls, path: str | Path | None, rm_type: str | RMType) -> ShotsPool:
        """Load and validate a pool: a JSON list or a JSONL file; None = icrm's default.

        Raises:
            ConfigError: the file cannot be read or parsed, or a shot is invalid (the
                message names the shot index and field).
        """
        rm_type = get_rm_type(rm_type)
        if path is None:
            records, source = rm_type.default_shots()
            return cls.from_records(records, rm_type, source)
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot read shots pool {path}: {e.strerror}") from None
        return cls.from_records(_parse_pool(text, path), rm_type, f"shots pool {path}")

    @classmethod
    def from_records(cls, records: Iterable[Any], rm_type: str | RMType, source: str = "shots") -> ShotsPool:
        """Validate shot dicts (or `Shot` objects) into a pool.

        Raises:
            ConfigError: naming `source`, the shot index and the field at fault.
        """
        rm_type = get_rm_type(rm_type)
        records = list(records)
        shots = [r if isinstance(r, Shot) else _parse_shot(r, i, rm_type, source) for i, r in enumerate(records)]
        seen: dict[str, int] = {}
        for i, shot in enumerate(shots):
            if shot.id in seen:  # rows name their shots by id: two shots must not share one
                raise ConfigError(f"{source} shot {i}: id {shot.id!r} is also shot {seen[shot.id]}'s; "
                                  "give every shot its own 'id'")
            seen[shot.id] = i
        return cls(shots, rm_type, source)

    def sample(self, num_shots: int, mode: str, rng: random.Random) -> list[Shot]:
        """Pick `num_shots` shots without an item (per-item modes need one: see
        `icrm.shot_selection.select_shots`).

        Args:
            num_shots: how many, 0 to ``len(self)``.
            mode: ``fixed`` = the first `num_shots` in pool order; ``random`` = a sample
                without replacement drawn from `rng`.
            rng: the caller's random generator (never the global `random`).

        Raises:
            ConfigError: unknown or per-item mode, negative `num_shots`, or more than the
                pool holds.
        """
        selector = SHOT_SELECTION_MODES.get(mode)
        check_num_shots(num_shots, len(self.shots), self.source)
        if selector.name == "fixed":
            return self.shots[:num_shots]
        if selector.name == "random":
            return rng.sample(self.shots, num_shots)
        raise ConfigError(f"shot_sampling_mode {mode!r} chooses shots for each item: judge items, or pass "
                          "mode='fixed' or 'random' to sample without one")


def _parse_pool(text: str, path: Path) -> list[Any]:
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            records = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"shots pool {path} is not valid JSON: {e}") from None
        return records
    records = []
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise ConfigError(f"shots pool {path} line {line_no} is not valid JSON: {e.msg}") from None
    if not records:
        raise ConfigError(f"shots pool {path} is empty: expected a JSON list or JSONL of shots")
    return records


def _parse_shot(record: Any, index: int, rm_type: RMType, source: str) -> Shot:
    where = f"{source} shot {index}"
    if not isinstance(record, dict):
        raise ConfigError(f"{where}: expected an object, got {type(record).__name__}")
    fields = rm_type.input_fields
    for name in (*fields, "feedback"):
        if name not in record:
            raise ConfigError(f"{where}: missing field '{name}' (a {rm_type.name} shot needs {', '.join((*fields, 'feedback'))})")
    try:
        conversations = rm_type.conversations({f: record[f] for f in fields})
    except InputError as e:
        raise ConfigError(f"{where}: {e}") from None
    spec = rm_type.for_item(record)
    feedback = record["feedback"]
    verdict_only = isinstance(feedback, dict) and set(feedback) == {spec.verdict_key} != set(spec.keys())
    spec.check_shot_feedback(spec.verdict_only_filled(feedback) if verdict_only else feedback, where)
    return Shot(str(record.get("id", index)), conversations, feedback, record, verdict_only)
