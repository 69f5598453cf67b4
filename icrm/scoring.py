"""Scoring a dataset with an `ICRM` into a resumable JSONL file of result rows.

Each output line is one result row: ``id``, ``feedback`` (dict or null), ``score`` or
``choice``, ``raw_text``, ``error``, ``error_kind``, ``error_reason``, ``usage``,
``latency_s``, ``cache_hit`` and ``provenance`` (the run's fields — model, engine, rm
type, templates, shots, generation kwargs — with their ``fingerprint``, and the shot
ids). Rows are appended and flushed as they finish. A re-run skips ids whose last row is
final (a verdict, or an answer with none) and redoes the others; it refuses to resume a
file written with other run fields, so a results file always describes one run.

Every per-item fault is that item's row: an input line that is not JSON (id
``line:<n>``), a row the judge cannot take, a duplicate id (id ``<id>@line:<n>``), an
engine failure. The run goes on.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .batch import (
    BadRow,
    BatchProgress,
    ResultWriter,
    check_output_path,
    check_same_run,
    is_finished,
    read_results,
    read_rows,
    row_id,
    run_batch,
    run_fingerprint,
)
from .errors import ConfigError, ICRMError, InputError
from .feedback import Feedback, build_feedback
from .inputs import INPUT_FIELDS

if TYPE_CHECKING:
    from .reward_model import ICRM

__all__ = ["INPUT_FORMATS", "ScoreSummary", "score_file", "rows_to_items", "result_row", "SCORE_OPTIONS"]

logger = logging.getLogger(__name__)

# "conversations": rows hold conversation (individual) or conversation_A/B (pairwise).
# "rewardbench": rows hold prompt, chosen, rejected (RewardBench's schema); pairwise puts
#   chosen in A and rejected in B; individual scores each, as ids "<id>:chosen" / ":rejected".
INPUT_FORMATS = ("conversations", "rewardbench")
# The options of `score_file` besides generation kwargs (for "did you mean" hints).
SCORE_OPTIONS = ("concurrency", "limit", "id_field", "input_format", "progress", "split", "overwrite")


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
        prompt_tokens, completion_tokens, cached_tokens: totals the servers reported.
        cache_hits: rows answered from the generation cache.
    """

    scored: int = 0
    skipped: int = 0
    errors: int = 0
    parse_failures: int = 0
    failed: int = 0
    seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_hits: int = 0

    @property
    def prefix_cache_hit_rate(self) -> float | None:
        """Share of prompt tokens the servers served from their prefix cache (None when
        no server reported cached tokens)."""
        return self.cached_tokens / self.prompt_tokens if self.cached_tokens and self.prompt_tokens else None

    @property
    def all_judged(self) -> bool:
        """True when every item of the input has a verdict."""
        return self.failed == 0


def rows_to_items(rows: Iterator[dict[str, Any] | BadRow], rm_type: str, id_field: str = "id",
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
    fields = INPUT_FIELDS[rm_type]
    first_seen: dict[str, int] = {}
    for number, row in enumerate(rows, 1):
        if isinstance(row, BadRow):
            yield row.id, InputError(row.message, line=row.line)
            continue
        rid = str(row[id_field]) if row.get(id_field) is not None else row_id(row)
        if rid in first_seen:
            yield f"{rid}@line:{number}", InputError(
                f"row {number}: duplicate id {rid!r} (first on row {first_seen[rid]}); ids compare as text, "
                f"so 1 and \"1\" are one id", line=number)
            continue
        first_seen[rid] = number
        if input_format == "conversations":
            yield rid, {f: row.get(f) for f in fields}
            continue
        missing = [f for f in ("prompt", "chosen", "rejected") if f not in row]
        if missing:
            error = InputError(f"row {number} (id {rid}): a RewardBench row needs {', '.join(missing)}", line=number)
            yield from ([(rid, error)] if rm_type == "pairwise" else [(f"{rid}:chosen", error), (f"{rid}:rejected", error)])
            continue
        prompt = row["prompt"] if isinstance(row["prompt"], list) else [{"role": "user", "content": row["prompt"]}]
        chosen = [*prompt, {"role": "assistant", "content": row["chosen"]}]
        rejected = [*prompt, {"role": "assistant", "content": row["rejected"]}]
        if rm_type == "pairwise":
            yield rid, {"conversation_A": chosen, "conversation_B": rejected}
        else:
            yield f"{rid}:chosen", {"conversation": chosen}
            yield f"{rid}:rejected", {"conversation": rejected}


def result_row(item_id: str, feedback: Feedback, provenance: dict[str, Any]) -> dict[str, Any]:
    """One output row for `feedback` (see the module docstring for the fields)."""
    verdict = "score" if "score" in type(feedback).model_fields else "choice"
    return {
        "id": item_id,
        "feedback": feedback.to_dict() if feedback.ok else None,
        verdict: getattr(feedback, verdict),
        "raw_text": feedback.raw_text,
        "error": feedback.error or feedback.parse_error,
        "error_kind": feedback.error_kind if feedback.error else ("parse" if feedback.parse_error else None),
        "error_reason": feedback.parse_error_reason,
        "finish_reason": feedback.finish_reason,
        "usage": feedback.usage.model_dump() if feedback.usage else None,
        "latency_s": feedback.latency_s,
        "cache_hit": feedback.cache_hit,
        "provenance": {**provenance, "shot_ids": feedback.shot_ids},
    }


async def score_file(
    icrm: ICRM,
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
        icrm: the reward model.
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
    generation_kwargs = icrm.check_generation_kwargs(generation_kwargs, also=SCORE_OPTIONS)
    output = check_output_path(output, source)
    fields = {**icrm.run_fields(generation_kwargs), "input_format": input_format, "id_field": id_field}
    provenance = {**fields, "fingerprint": run_fingerprint(fields)}
    if overwrite and output.exists():
        output.unlink()
    records = read_results(output)
    check_same_run(records, fields, output, "pass --overwrite True (overwrite=True) to start over")
    done = {i: r for i, r in records.items() if is_finished(r)}
    rows = read_rows(source, split)  # an unreadable source fails here, before any work
    items = rows_to_items(itertools.islice(rows, limit), icrm.rm_type, id_field, input_format)
    summary = ScoreSummary()

    def pending() -> Iterator[tuple[str, dict[str, Any] | InputError]]:
        for item_id, item in items:
            if item_id in done:
                summary.skipped += 1
                summary.failed += done[item_id].get("error_kind") is not None
                continue
            yield item_id, item

    async def work(entry: tuple[str, dict[str, Any] | ICRMError]) -> Feedback:
        item_id, item = entry
        if isinstance(item, ICRMError):
            return build_feedback("", icrm.rm_type, error=str(item), error_kind=item.kind)
        return await icrm.ajudge_item(item, None, generation_kwargs)

    start = time.perf_counter()
    bar = BatchProgress(None, progress)
    try:
        with ResultWriter(output) as writer:
            async for (item_id, _), feedback in run_batch(pending(), work, concurrency):
                writer.write(result_row(item_id, feedback, provenance))
                _count(summary, feedback)
                bar.update(feedback.usage.prompt_tokens if feedback.usage else 0,
                           feedback.usage.completion_tokens if feedback.usage else 0,
                           feedback.cache_hit, not feedback.ok)
    finally:
        bar.close()
        summary.seconds = time.perf_counter() - start
    if summary.scored + summary.skipped == 0:
        logger.warning("%s: no rows to score", source)
    return summary


def _count(summary: ScoreSummary, feedback: Feedback) -> None:
    summary.scored += 1
    summary.errors += feedback.error is not None
    summary.parse_failures += feedback.parse_error is not None
    summary.failed += not feedback.ok
    summary.cache_hits += feedback.cache_hit
    usage = feedback.usage
    if usage is not None and not feedback.cache_hit:
        summary.prompt_tokens += usage.prompt_tokens
        summary.completion_tokens += usage.completion_tokens
        summary.cached_tokens += usage.cached_tokens or 0
