"""The resumable run: a run's entries judged by an executor, each result row written to
the run's results file (`icrm.batch.results.ResultsFile`) as it finishes.

`resume` skips the entries the file already holds a final row for and hands the rest to
an `Executor` — this process (`icrm.executors.LocalExecutor`) or a Ray cluster
(`icrm.integrations.ray.RayExecutor`) — which yields one row per entry; `RowRecorder`
writes, counts and shows them. ``icrm score``, ``icrm eval`` and ``--backend ray`` all
run this way.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .progress import BatchProgress, RowTally
from .results import ResultsFile

__all__ = ["Entry", "Executor", "RunTally", "RowRecorder", "record_rows", "resume"]


class RowRecorder:
    """Writes result rows to a `ResultsFile` as they arrive, counts them (`tally`) and
    shows progress. `finish` checks the file once more at the end.

    Args:
        results: the run's results file.
        progress: show the tqdm bar (None = only on a terminal).
        total: rows expected, for the bar (None = unknown).
    """

    def __init__(self, results: ResultsFile, progress: bool | None = None, total: int | None = None) -> None:
        self.results, self.tally = results, RowTally()
        self._bar = BatchProgress(total, progress, self.tally)

    def add(self, row: Mapping[str, Any]) -> None:
        """Write and count one row.

        Raises:
            OutputError / ConfigError: as `ResultsFile.write`.
        """
        self.results.write(row)
        self.tally.add(row)
        self._bar.update()

    def finish(self) -> RowTally:
        """Check the file once more; returns the tally.

        Raises:
            OutputError: the file vanished or was replaced.
        """
        self.close()
        self.results.check()
        return self.tally

    def close(self) -> None:
        """Close the progress bar."""
        self._bar.close()


async def record_rows(rows: AsyncIterable[Mapping[str, Any]], results: ResultsFile, progress: bool | None = None,
                      total: int | None = None) -> RowTally:
    """Write every row of `rows` to `results` (`RowRecorder`); returns the tally.

    Raises:
        OutputError / ConfigError: as `ResultsFile.write`.
    """
    recorder = RowRecorder(results, progress, total)
    try:
        async for row in rows:
            recorder.add(row)
    finally:
        recorder.close()
    return recorder.finish()


@dataclass(frozen=True)
class Entry:
    """One judgement of a run, as an executor receives it.

    Attributes:
        id: its result row's id.
        item: what the judge gets (conversations and context), or None with `error`.
        error: why the item cannot be judged (an input fault: its row records it).
        key: what a ``random`` position is seeded with (default: the item's content).
        position: the pairwise placement for this judgement (None: the judge's own).
        shot_ids: the pool's shots to show, by id (None: the judge samples them).
        extra: fields added to its result row (a benchmark's ``row_id`` and ``tag``).
    """

    id: str
    item: dict[str, Any] | None = None
    error: str | None = None
    key: str | None = None
    position: str | None = None
    shot_ids: tuple[str, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Executor(Protocol):
    """Where a run's judgements run: this process (`icrm.executors.LocalExecutor`) or a
    cluster (`icrm.integrations.ray.RayExecutor`). Given the pending entries, it yields
    one result row per entry as each finishes, recording every fault on its row."""

    def __call__(self, entries: Iterable[Entry], total: int | None) -> AsyncIterator[dict[str, Any]]: ...


@dataclass
class RunTally:
    """What one resumable run did.

    Attributes:
        rows: the tally of the rows this run wrote (`RowTally`).
        skipped: entries already final in the results file.
        skipped_failed: those of them without a verdict (an answer that held none).
        seconds: wall time of the judging.
    """

    rows: RowTally = field(default_factory=RowTally)
    skipped: int = 0
    skipped_failed: int = 0
    seconds: float = 0.0


async def resume(results: ResultsFile, entries: Iterable[Entry], executor: Executor, progress: bool | None = None,
                 total: int | None = None) -> RunTally:
    """Run the entries `results` has no final row for, on `executor`, writing each
    row as it finishes (`RowRecorder`).

    Args:
        results: the run's results file (`ResultsFile.open`).
        entries: every judgement of the run, consumed lazily.
        executor: where they run.
        progress: show the tqdm bar (None = only on a terminal).
        total: entries expected, for the bar (None = unknown).

    Returns:
        The `RunTally`.

    Raises:
        OutputError / ConfigError: the results file vanished, or a write failed.
    """
    tally = RunTally()

    def pending() -> Iterator[Entry]:
        for entry in entries:
            if entry.id in results.done:
                tally.skipped += 1
                tally.skipped_failed += results.records[entry.id].get("error_kind") is not None
                continue
            yield entry

    start = time.perf_counter()
    try:
        tally.rows = await record_rows(executor(pending(), total), results, progress, total)
    finally:
        tally.seconds = time.perf_counter() - start
    return tally
