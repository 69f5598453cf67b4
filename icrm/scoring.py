"""Scoring a dataset into a resumable JSONL file of result rows (``icrm score``,
`ICRM.score`).

Each output line is one result row (`icrm.rewards.result_row`): ``id``, ``feedback``
(dict or null), ``score`` or ``choice``, ``reward``, ``raw_text``, ``error``,
``error_kind``, ``error_reason``, ``usage``, ``latency_s``, ``cache_hit``, the
judgement's own fields and ``provenance`` (the run's fields — model, engine, server, rm
type, method, templates, shots, generation kwargs — their ``fingerprint``, and the shot
ids). Rows are appended and flushed as they finish. A re-run skips ids whose last row is
final (a verdict, or an answer with none) and redoes the others; the results file is
held by one run at a time and refuses another run's settings (`icrm.batch.resume`).

A run is prepared before its judge exists (`ScoreRun.prepare`): the input is opened,
the options checked and the results file locked and checked, so nothing is launched for
a run that cannot go ahead. Every per-item fault is that item's row: an input line that
is not JSON (id ``line:<n>``), a row the judge cannot take, a repeated id (id
``<id>@line:<n>``), a user id of those reserved forms, an engine failure. The run goes on.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .batch import BadRow, Entry, ResultsFile, RunTally, read_rows, resume, row_id
from .batch.sources import bad_row_id, is_reserved_id, repeated_id
from .config import ICRMConfig
from .engines.usage import UsageTotals
from .errors import ConfigError, InputError
from .inputs import INPUT_FORMATS, prompt_responses, rewardbench_pair
from .provenance import run_fields
from .rm_types import RMType, get_rm_type

__all__ = ["INPUT_FORMATS", "SCORE_OPTIONS", "ScoreSummary", "ScoreRun", "score_file", "score_entries", "item_id",
           "row_items"]

logger = logging.getLogger(__name__)

# The options of `score_file` besides generation kwargs (for "did you mean" hints).
SCORE_OPTIONS = ("concurrency", "limit", "id_field", "input_format", "progress", "split", "overwrite")
RESTART = "pass --overwrite True (overwrite=True) to start over"


@dataclass
class ScoreSummary:
    """What one scoring run did.

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

    @classmethod
    def of(cls, tally: RunTally) -> ScoreSummary:
        """The summary of a finished resumable run."""
        rows = tally.rows
        return cls(scored=rows.rows, skipped=tally.skipped, errors=rows.errors, parse_failures=rows.parse_failures,
                   failed=rows.failed + tally.skipped_failed, seconds=tally.seconds, usage=rows.usage)

    @property
    def all_judged(self) -> bool:
        """True when every item of the input has a verdict."""
        return self.failed == 0

    def as_dict(self) -> dict[str, Any]:
        """A flat JSON-ready dict (the CLI prints it)."""
        counts = {k: getattr(self, k) for k in ("scored", "skipped", "errors", "parse_failures", "failed", "seconds")}
        usage = {k: v for k, v in self.usage.as_dict().items() if k not in ("requests", "errors")}
        return {**counts, **usage, "prefix_cache_hit_rate": self.prefix_cache_hit_rate}


def item_id(row: Mapping[str, Any], id_field: str = "id") -> str:
    """A row's id: its `id_field` value as text, else `icrm.batch.row_id` of the row."""
    return str(row[id_field]) if row.get(id_field) is not None else row_id(dict(row))


def row_items(row: Mapping[str, Any], rid: str, rm_type: RMType, input_format: str,
              where: str) -> Iterator[tuple[str, dict[str, Any] | InputError]]:
    """The ``(id, item)`` pairs of one input row (two for a RewardBench row scored in
    individual mode: ``<id>:chosen`` and ``<id>:rejected``); an `InputError` in place of
    an item that cannot be built."""
    if input_format == "conversations":
        yield rid, {f: row.get(f) for f in rm_type.input_fields}
        return
    if input_format == "responses":
        yield from _group_items(row, rid, rm_type, where)
        return
    try:
        chosen, rejected = rewardbench_pair(row, where)
    except InputError as error:
        for tag, _ in rm_type.pair_judgements([], [], ("AB",)):
            yield _tagged(rid, tag), error
        return
    for tag, item in rm_type.pair_judgements(chosen, rejected, ("AB",)):  # chosen in A
        yield _tagged(rid, tag), item


def _group_items(row: Mapping[str, Any], rid: str, rm_type: RMType,
                 where: str) -> Iterator[tuple[str, dict[str, Any] | InputError]]:
    if not (rm_type.group or rm_type.single):
        yield rid, InputError(f"{where}: input_format 'responses' holds a group: use rm_type listwise or individual")
        return
    try:
        conversations = prompt_responses(row, where)
    except InputError as error:
        yield rid, error
        return
    if rm_type.group:
        yield rid, {rm_type.input_fields[0]: conversations}
        return
    for index, conversation in enumerate(conversations):
        yield f"{rid}:{index}", {rm_type.input_fields[0]: conversation}


def _tagged(rid: str, tag: str) -> str:
    return rid if tag == "AB" else f"{rid}:{tag}"


def score_entries(rows: Iterator[dict[str, Any] | BadRow], rm_type: RMType, id_field: str = "id",
                  input_format: str = "conversations") -> Iterator[Entry]:
    """The entries of a run from its input rows; a row that cannot become an item gives
    an entry with its `InputError` message, recorded as that item's row.

    The id is the row's `id_field` value as text, else `icrm.batch.row_id` of the row.
    Ids compare as text, so ``1`` and ``"1"`` are the same id: a repeated id is an error
    row ``<id>@line:<n>`` naming the first occurrence, never a silent overwrite. A user
    id that has the form of icrm's own ids is refused on its row (``line:<n>``).
    """
    first_seen: dict[str, int] = {}
    for number, row in enumerate(rows, 1):
        if isinstance(row, BadRow):
            yield Entry(row.id, error=row.message)
            continue
        rid = item_id(row, id_field)
        if is_reserved_id(rid):
            yield Entry(bad_row_id(number), error=f"row {number}: id {rid!r} has the form of icrm's own ids for rows "
                                                  "it cannot take (line:<n>, <id>@line:<n>); rename it")
            continue
        if rid in first_seen:
            yield Entry(repeated_id(rid, number), error=f"row {number}: duplicate id {rid!r} (first on row "
                                                        f"{first_seen[rid]}); ids compare as text, so 1 and \"1\" "
                                                        "are one id")
            continue
        first_seen[rid] = number
        for iid, item in row_items(row, rid, rm_type, input_format, f"row {number} (id {rid})"):
            yield Entry(iid, error=str(item)) if isinstance(item, InputError) else Entry(iid, item)


class ScoreRun:
    """A scoring run, prepared: its options checked, its input opened and its results
    file held (`icrm.batch.ResultsFile`), before its judge exists.

    Build it with `ScoreRun.prepare`; judge it with `run` (this process) or
    `icrm.integrations.ray.score` (a Ray cluster); close it to release the file.

    Attributes:
        config: the judge's configuration.
        source: the input.
        results: the held results file (its ``provenance`` goes on every row).
        generation_kwargs: the caller's generation kwargs, checked.
        rm_type: the rm type judged.
        options: limit, id_field, input_format, split.
    """

    def __init__(self, config: ICRMConfig, source: Any, results: ResultsFile, generation_kwargs: dict[str, Any],
                 rows: Iterator[dict[str, Any] | BadRow] | None, options: dict[str, Any]) -> None:
        self.config, self.source, self.results = config, source, results
        self.generation_kwargs, self.options = generation_kwargs, options
        self.rm_type = get_rm_type(config.rm_type)
        self._rows = rows

    @classmethod
    def prepare(cls, config: ICRMConfig, source: Any, output: str | Path, *, limit: int | None = None,
                id_field: str = "id", input_format: str = "conversations", split: str = "train",
                overwrite: bool = False, generation_kwargs: Mapping[str, Any] | None = None, builder: Any = None,
                open_input: bool = True) -> ScoreRun:
        """Check everything a run needs before it starts.

        Args:
            config: the judge's configuration.
            source: JSONL / JSON / Parquet file, saved 🤗 dataset directory, or hub name
                (or, with ``open_input=False``, anything the caller reads itself).
            output: the JSONL results file.
            limit, id_field, input_format, split, overwrite: as `score_file`.
            generation_kwargs: the caller's generation kwargs.
            builder: the judge's prompt builder, when a judge exists (saves a reload).
            open_input: open the input here (False: Ray reads it on the cluster).

        Raises:
            InputError: an unreadable source.
            ConfigError: a bad option or generation kwarg, or an output that cannot take
                this run (see `icrm.batch.ResultsFile.open`).
        """
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
            raise ConfigError(f"limit must be a whole number >= 0, got {limit!r}")
        if input_format not in INPUT_FORMATS:
            raise ConfigError(f"input_format must be one of {', '.join(INPUT_FORMATS)}, got {input_format!r}")
        fields = run_fields(config, generation_kwargs, builder, input_format=input_format, id_field=id_field)
        rows = read_rows(source, split) if open_input else None  # an unreadable source fails here
        results = ResultsFile.open(output, fields, RESTART, inputs=[source], overwrite=overwrite)
        return cls(config, source, results, dict(generation_kwargs or {}), rows,
                   {"limit": limit, "id_field": id_field, "input_format": input_format, "split": split})

    def entries(self) -> Iterator[Entry]:
        """Every entry of the input (after `limit` rows)."""
        if self._rows is None:
            raise ConfigError("this run's input is read on the cluster")
        rows = itertools.islice(self._rows, self.options["limit"])
        return score_entries(rows, self.rm_type, self.options["id_field"], self.options["input_format"])

    async def run(self, judge: Any, concurrency: int, progress: bool | None = None) -> ScoreSummary:
        """Judge the entries the results file has no final row for, in this process.

        Args:
            judge: the `icrm.ICRM` built from this run's config.
            concurrency: requests in flight at most.
            progress: show the tqdm bar (None = only on a terminal).

        Raises:
            OutputError: the results file vanished or was replaced during the run.
            ConfigError: a write failed.
        """
        from .executors import LocalExecutor

        executor = LocalExecutor(judge, self.generation_kwargs, self.results.provenance, concurrency)
        summary = ScoreSummary.of(await resume(self.results, self.entries(), executor, progress))
        if summary.scored + summary.skipped == 0:
            logger.warning("%s: no rows to score", self.source)
        return summary

    def close(self) -> None:
        """Release the results file."""
        self.results.close()

    def __enter__(self) -> ScoreRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def score_file(
    judge: Any,
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
        overwrite: empty `output` first instead of resuming it.
        **generation_kwargs: as `ICRM.ajudge`; unknown names are an error.

    Returns:
        A `ScoreSummary` of this run.

    Raises:
        InputError: an unreadable source (a missing, garbage or non-UTF-8 file).
        ConfigError: bad arguments or options; an output that is a directory, a device,
            the input, another process's, not an icrm results file, or another run's
            (naming the fields that differ); a failed write.
        OutputError: the output vanished or was replaced during the run.
    """
    generation_kwargs = judge.check_generation_kwargs(generation_kwargs, also=SCORE_OPTIONS)
    with ScoreRun.prepare(judge.config, source, output, limit=limit, id_field=id_field, input_format=input_format,
                          split=split, overwrite=overwrite, generation_kwargs=generation_kwargs,
                          builder=judge.prompts) as run:
        return await run.run(judge, concurrency, progress)

