"""Scoring a dataset with an `ICRM` into a resumable JSONL file of result rows.

Each output line is one result row: ``id``, ``feedback`` (dict or null), ``score`` or
``choice``, ``raw_text``, ``error``, ``usage``, ``latency_s``, ``cache_hit`` and
``provenance`` (model, engine, shot ids, template hash, seed, generation kwargs). Rows
are appended and flushed as they finish; a re-run skips ids whose last row has no error
and retries the others (readers take the last row per id).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .batch import BatchProgress, ResultWriter, load_done_ids, read_rows, row_id
from .errors import ConfigError, InputError
from .feedback import Feedback
from .inputs import INPUT_FIELDS

if TYPE_CHECKING:
    from .reward_model import ICRM

__all__ = ["INPUT_FORMATS", "ScoreSummary", "score_file", "rows_to_items", "result_row"]

# "conversations": rows hold conversation (individual) or conversation_A/B (pairwise).
# "rewardbench": rows hold prompt, chosen, rejected (RewardBench's schema); pairwise puts
#   chosen in A and rejected in B; individual scores each, as ids "<id>:chosen" / ":rejected".
INPUT_FORMATS = ("conversations", "rewardbench")


@dataclass
class ScoreSummary:
    """What one `score_file` run did.

    Attributes:
        scored: rows judged in this run (errors included).
        skipped: rows already done in the output file.
        errors: rows of this run whose request or input failed (retried on a re-run).
        parse_failures: rows whose answer held no valid feedback.
        seconds: wall time of the run.
        prompt_tokens, completion_tokens, cached_tokens: totals the servers reported.
        cache_hits: rows answered from the generation cache.
    """

    scored: int = 0
    skipped: int = 0
    errors: int = 0
    parse_failures: int = 0
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


def rows_to_items(rows: Iterator[dict[str, Any]], rm_type: str, id_field: str = "id",
                  input_format: str = "conversations") -> Iterator[tuple[str, dict[str, Any]]]:
    """Turn input rows into ``(id, item)`` pairs for `ICRM.ajudge_stream`.

    The id is the row's `id_field` value, else `icrm.batch.row_id` of the row.

    Raises:
        ConfigError: unknown `input_format`.
        InputError: a RewardBench row lacks ``prompt``, ``chosen`` or ``rejected``.
    """
    if input_format not in INPUT_FORMATS:
        raise ConfigError(f"input format must be one of {', '.join(INPUT_FORMATS)}, got {input_format!r}")
    fields = INPUT_FIELDS[rm_type]
    for number, row in enumerate(rows):
        rid = str(row[id_field]) if row.get(id_field) is not None else row_id(row)
        if input_format == "conversations":
            yield rid, {f: row.get(f) for f in fields}
            continue
        missing = [f for f in ("prompt", "chosen", "rejected") if f not in row]
        if missing:
            raise InputError(f"row {number} (id {rid}): a RewardBench row needs {', '.join(missing)}")
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
        "error_kind": "request" if feedback.error else ("parse" if feedback.parse_error else None),
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
    **generation_kwargs: Any,
) -> ScoreSummary:
    """Score every row of `source` into `output`, resuming where an earlier run stopped.

    Args:
        icrm: the reward model.
        source: JSONL / JSON / Parquet file, saved 🤗 dataset directory, or hub name.
        output: the JSONL results file (appended to).
        concurrency: requests in flight at most.
        limit: score at most this many input rows (None = all).
        id_field: the column holding row ids.
        input_format: ``conversations`` or ``rewardbench`` (see `INPUT_FORMATS`).
        progress: show the tqdm bar (None = only on a TTY).
        split: the split of a dataset directory or hub dataset.
        **generation_kwargs: as `ICRM.ajudge`.

    Returns:
        A `ScoreSummary` of this run.

    Raises:
        InputError: unreadable input, or a row that cannot become an item.
        ConfigError: bad arguments, or an unwritable output.

    A parse failure is a finished row (re-running would give the same answer at
    temperature 0); only request/input errors are retried on a re-run.
    """
    if limit is not None and (not isinstance(limit, int) or limit < 0):
        raise ConfigError(f"limit must be a whole number >= 0, got {limit!r}")
    # A parse failure is a finished row; only request / input errors are retried.
    done = load_done_ids(output, lambda record: record.get("error_kind") != "request")
    summary = ScoreSummary()
    rows = itertools.islice(read_rows(source, split), limit)
    items = rows_to_items(rows, icrm.rm_type, id_field, input_format)

    def pending() -> Iterator[dict[str, Any]]:
        for item_id, item in items:
            if item_id in done:
                summary.skipped += 1
                continue
            ids.append(item_id)
            yield item

    ids: list[str] = []
    provenance = icrm.provenance(generation_kwargs)
    start = time.perf_counter()
    bar = BatchProgress(None, progress)
    try:
        with ResultWriter(output) as writer:
            async for index, feedback in icrm.ajudge_stream(pending(), concurrency, **generation_kwargs):
                writer.write(result_row(ids[index], feedback, provenance))
                usage = feedback.usage
                summary.scored += 1
                summary.errors += feedback.error is not None
                summary.parse_failures += feedback.parse_error is not None
                summary.cache_hits += feedback.cache_hit
                if usage is not None and not feedback.cache_hit:
                    summary.prompt_tokens += usage.prompt_tokens
                    summary.completion_tokens += usage.completion_tokens
                    summary.cached_tokens += usage.cached_tokens or 0
                bar.update(usage.prompt_tokens if usage else 0, usage.completion_tokens if usage else 0,
                           feedback.cache_hit, feedback.error is not None)
    finally:
        bar.close()
        summary.seconds = time.perf_counter() - start
    return summary
