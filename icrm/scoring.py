"""Scoring a dataset into a resumable JSONL file of result rows.

Each output line is one result row: ``id``, ``feedback`` (dict or null), ``score`` or
``choice``, ``raw_text``, ``error``, ``error_kind``, ``error_reason``, ``usage``,
``latency_s``, ``cache_hit``, the judgement's fields (``method``; ``probabilities``,
``label_mass``, ``expected_score`` / ``p_a_better`` for ``logprob``; ``position``,
``position_consistent``, ``order_verdicts``; ``num_samples``, ``agreement``,
``sample_verdicts``) and ``provenance`` (the run's fields — model, engine, rm
type, method, templates, shots, generation kwargs — with their ``fingerprint``, and the
shot ids). Rows are appended and flushed as they finish. A re-run skips ids whose last
row is final (a verdict, or an answer with none) and redoes the others; it refuses to
resume a file written with other run fields, so a results file always describes one run.

Every per-item fault is that item's row: an input line that is not JSON (id
``line:<n>``), a row the judge cannot take, a duplicate id (id ``<id>@line:<n>``), an
engine failure. The run goes on.

The judge is any object with the `ItemJudge` shape (an `ICRM`): this module depends on
the batch layer only.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .batch import (
    BadRow,
    check_output_path,
    check_same_run,
    is_finished,
    read_results,
    read_rows,
    row_id,
    run_fingerprint,
    write_results,
)
from .engines.usage import UsageTotals
from .errors import ConfigError, ICRMError, InputError
from .feedback import JUDGEMENT_FIELDS, Feedback
from .inputs import rewardbench_pair
from .rm_types import RMType

__all__ = ["INPUT_FORMATS", "SCORE_OPTIONS", "ScoreSummary", "ItemJudge", "score_file", "rows_to_items", "item_id",
           "row_items", "result_row"]

logger = logging.getLogger(__name__)

# "conversations": rows hold conversation (individual) or conversation_A/B (pairwise).
# "rewardbench": rows hold prompt, chosen, rejected (RewardBench's schema); pairwise puts
#   chosen in A and rejected in B; individual scores each, as ids "<id>:chosen" / ":rejected".
INPUT_FORMATS = ("conversations", "rewardbench")
# The options of `score_file` besides generation kwargs (for "did you mean" hints).
SCORE_OPTIONS = ("concurrency", "limit", "id_field", "input_format", "progress", "split", "overwrite")


class ItemJudge(Protocol):
    """What `score_file` needs of a judge (an `ICRM` has it)."""

    rm_type: RMType

    def check_generation_kwargs(self, kwargs: dict[str, Any], also: Sequence[str] = ()) -> dict[str, Any]: ...

    def run_fields(self, generation_kwargs: dict[str, Any] | None = None) -> dict[str, Any]: ...

    async def ajudge_item(self, item: Any, shots: Any = None, generation_kwargs: dict[str, Any] | None = None) -> Feedback: ...


@dataclass
class ScoreSummary:
    """What one `score_file` run did.

    Attributes:
        scored: rows judged in this run (errors included).
        skipped: rows already final in the output file.
        errors: rows of this run with no answer (engine, input or internal error;
            redone on a re-run).
        parse_failures: rows of this run whose answer held no verdict.
        failed: items of the input without a verdict after this run: this run's errors
            and parse failures, plus skipped rows whose final answer held none.
        seconds: wall time of the run.
        usage: tokens the servers reported and cache hits, over this run's rows.
    """

    scored: int = 0
    skipped: int = 0
    errors: int = 0
    parse_failures: int = 0
    failed: int = 0
    seconds: float = 0.0
    usage: UsageTotals = field(default_factory=UsageTotals)

    prompt_tokens = property(lambda self: self.usage.prompt_tokens, doc="Prompt tokens of this run.")
    completion_tokens = property(lambda self: self.usage.completion_tokens, doc="Generated tokens of this run.")
    cached_tokens = property(lambda self: self.usage.cached_tokens, doc="Prompt tokens served from prefix caches.")
    cache_hits = property(lambda self: self.usage.cache_hits, doc="Rows answered from the generation cache.")
    prefix_cache_hit_rate = property(lambda self: self.usage.prefix_cache_hit_rate,
                                     doc="Share of prompt tokens served from the servers' prefix caches, or None.")

    @property
    def all_judged(self) -> bool:
        """True when every item of the input has a verdict."""
        return self.failed == 0

    def as_dict(self) -> dict[str, Any]:
        """A flat JSON-ready dict (the CLI prints it)."""
        counts = {k: getattr(self, k) for k in ("scored", "skipped", "errors", "parse_failures", "failed", "seconds")}
        usage = {k: v for k, v in self.usage.as_dict().items() if k not in ("requests", "errors")}
        return {**counts, **usage, "prefix_cache_hit_rate": self.prefix_cache_hit_rate}


def rows_to_items(rows: Iterator[dict[str, Any] | BadRow], rm_type: RMType, id_field: str = "id",
                  input_format: str = "conversations") -> Iterator[tuple[str, dict[str, Any] | InputError]]:
    """Turn input rows into ``(id, item)`` pairs; a row that cannot become an item gives
    ``(id, InputError)`` instead, to be recorded as that item's error.

    The id is the row's `id_field` value as text, else `icrm.batch.row_id` of the row.
    Ids compare as text, so ``1`` and ``"1"`` are the same id: a repeated id is an error
    row ``<id>@line:<n>`` naming the first occurrence, never a silent overwrite.

    Raises:
        ConfigError: unknown `input_format`.
    """
    if input_format not in INPUT_FORMATS:
        raise ConfigError(f"input_format must be one of {', '.join(INPUT_FORMATS)}, got {input_format!r}")
    first_seen: dict[str, int] = {}
    for number, row in enumerate(rows, 1):
        if isinstance(row, BadRow):
            yield row.id, InputError(row.message, line=row.line)
            continue
        rid = item_id(row, id_field)
        if rid in first_seen:
            yield f"{rid}@line:{number}", InputError(
                f"row {number}: duplicate id {rid!r} (first on row {first_seen[rid]}); ids compare as text, "
                f"so 1 and \"1\" are one id", line=number)
            continue
        first_seen[rid] = number
        yield from row_items(row, rid, rm_type, input_format, f"row {number} (id {rid})")


def item_id(row: dict[str, Any], id_field: str = "id") -> str:
    """A row's id: its `id_field` value as text, else `icrm.batch.row_id` of the row."""
    return str(row[id_field]) if row.get(id_field) is not None else row_id(row)


def row_items(row: dict[str, Any], rid: str, rm_type: RMType, input_format: str,
              where: str) -> Iterator[tuple[str, dict[str, Any] | InputError]]:
    """The ``(id, item)`` pairs of one input row (two for a RewardBench row scored in
    individual mode: ``<id>:chosen`` and ``<id>:rejected``); an `InputError` in place of
    an item that cannot be built."""
    if input_format == "conversations":
        yield rid, {f: row.get(f) for f in rm_type.input_fields}
        return
    try:
        chosen, rejected = rewardbench_pair(row, where)
    except InputError as error:
        for tag, _ in rm_type.pair_judgements([], [], ("AB",)):
            yield _tagged(rid, tag), error
        return
    for tag, item in rm_type.pair_judgements(chosen, rejected, ("AB",)):  # chosen in A
        yield _tagged(rid, tag), item


def _tagged(rid: str, tag: str) -> str:
    return rid if tag == "AB" else f"{rid}:{tag}"


def result_row(item_id: str, feedback: Feedback, provenance: dict[str, Any], rm_type: RMType) -> dict[str, Any]:
    """One output row for `feedback` (see the module docstring for the fields)."""
    return {
        "id": item_id,
        "feedback": feedback.to_dict() if feedback.ok else None,
        rm_type.verdict_key: rm_type.verdict(feedback),
        "raw_text": feedback.raw_text,
        "error": feedback.error or feedback.parse_error,
        "error_kind": feedback.error_kind if feedback.error else ("parse" if feedback.parse_error else None),
        "error_reason": feedback.parse_error_reason,
        "finish_reason": feedback.finish_reason,
        "usage": feedback.usage.model_dump() if feedback.usage else None,
        "latency_s": feedback.latency_s,
        "cache_hit": feedback.cache_hit,
        **{name: getattr(feedback, name, None) for name in JUDGEMENT_FIELDS},
        "provenance": {**provenance, "shot_ids": feedback.shot_ids},
    }


async def score_file(
    judge: ItemJudge,
    source: str | Path,
    output: str | Path,
    concurrency: int = 8,
    limit: int | None = None,
    id_field: str = "id",
    input_format: str = "conversations",
    progress: bool | None = None,
    split: str = "train",
    overwrite: bool = False,
    **generation_kwargs: Any,
) -> ScoreSummary:
    """Score every row of `source` into `output`, resuming where an earlier run stopped.

    Args:
        judge: the reward model (an `ICRM`).
        source: JSONL / JSON / Parquet file, saved 🤗 dataset directory, or hub name.
        output: the JSONL results file (appended to); a regular file, not the input.
        concurrency: requests in flight at most.
        limit: score at most this many input rows (None = all).
        id_field: the column holding row ids.
        input_format: ``conversations`` or ``rewardbench`` (see `INPUT_FORMATS`).
        progress: show the tqdm bar (None = only on a TTY).
        split: the split of a dataset directory or hub dataset.
        overwrite: delete `output` first instead of resuming it.
        **generation_kwargs: as `ICRM.ajudge`; unknown names are an error.

    Returns:
        A `ScoreSummary` of this run.

    Raises:
        InputError: an unreadable source (a missing, garbage or non-UTF-8 file).
        ConfigError: bad arguments or options; an output that is a directory, a device or
            the input; an output holding another run's results (naming the fields that
            differ); a failed write.
    """
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
        raise ConfigError(f"limit must be a whole number >= 0, got {limit!r}")
    if input_format not in INPUT_FORMATS:
        raise ConfigError(f"input_format must be one of {', '.join(INPUT_FORMATS)}, got {input_format!r}")
    generation_kwargs = judge.check_generation_kwargs(generation_kwargs, also=SCORE_OPTIONS)
    output = check_output_path(output, source)
    fields = {**judge.run_fields(generation_kwargs), "input_format": input_format, "id_field": id_field}
    provenance = {**fields, "fingerprint": run_fingerprint(fields)}
    if overwrite and output.exists():
        output.unlink()
    records = read_results(output)
    check_same_run(records, fields, output, "pass --overwrite True (overwrite=True) to start over")
    done = {i: r for i, r in records.items() if is_finished(r)}
    rows = read_rows(source, split)  # an unreadable source fails here, before any work
    items = rows_to_items(itertools.islice(rows, limit), judge.rm_type, id_field, input_format)
    summary = ScoreSummary()

    def pending() -> Iterator[tuple[str, dict[str, Any] | InputError]]:
        for item_id, item in items:
            if item_id in done:
                summary.skipped += 1
                summary.failed += done[item_id].get("error_kind") is not None
                continue
            yield item_id, item

    async def work(entry: tuple[str, dict[str, Any] | ICRMError]) -> dict[str, Any]:
        item_id, item = entry
        if isinstance(item, ICRMError):
            feedback = judge.rm_type.failed(item)
        else:
            feedback = await judge.ajudge_item(item, None, generation_kwargs)
        return result_row(item_id, feedback, provenance, judge.rm_type)

    start = time.perf_counter()
    try:
        tally = await write_results(pending(), work, output, concurrency, progress)
    finally:
        summary.seconds = time.perf_counter() - start
    summary.scored, summary.errors, summary.parse_failures = tally.rows, tally.errors, tally.parse_failures
    summary.failed += tally.failed
    summary.usage = tally.usage
    if summary.scored + summary.skipped == 0:
        logger.warning("%s: no rows to score", source)
    return summary
