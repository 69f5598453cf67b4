"""Running a run's judgements in this process: the local executor (`LocalExecutor`) of
the resumable run (`icrm.batch.resume`), and `judge_entry`, which every executor —
this one and each Ray actor (`icrm.integrations.ray`) — uses to turn an entry into its
result row.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from typing import Any

from .batch import Entry, run_batch
from .errors import InputError
from .rewards import result_row

__all__ = ["LocalExecutor", "judge_entry"]


async def judge_entry(judge: Any, entry: Entry, generation_kwargs: Mapping[str, Any], provenance: Mapping[str, Any],
                      shots: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The result row of one entry; every fault is recorded on the row.

    Args:
        judge: the `icrm.ICRM`.
        entry: what to judge (an entry with ``error`` is recorded as that input error).
        generation_kwargs: the caller's generation kwargs.
        provenance: the run's fields and fingerprint.
        shots: the pool's shots by id, for entries that name theirs.
    """
    rm_type = judge.rm_type
    if entry.item is None:
        feedback = rm_type.failed(InputError(entry.error or "no item"))
    else:
        chosen = None
        if entry.shot_ids is not None:
            pool = shots if shots is not None else {shot.id: shot for shot in judge.shots_pool.shots}
            chosen = [pool[i] for i in entry.shot_ids]
        feedback = await judge.ajudge_item(entry.item, chosen, dict(generation_kwargs), key=entry.key,
                                           position=entry.position)
    return result_row(entry.id, feedback, provenance, rm_type, **entry.extra)


class LocalExecutor:
    """Judges entries in this process with at most `concurrency` in flight
    (`icrm.batch.run_batch`), yielding rows as they finish.

    Args:
        judge: the `icrm.ICRM`.
        generation_kwargs: the caller's generation kwargs.
        provenance: the run's fields and fingerprint.
        concurrency: judgements in flight at most.
    """

    def __init__(self, judge: Any, generation_kwargs: Mapping[str, Any], provenance: Mapping[str, Any],
                 concurrency: int) -> None:
        self.judge, self.generation_kwargs, self.provenance = judge, dict(generation_kwargs), dict(provenance)
        self.concurrency = concurrency
        self._shots = {shot.id: shot for shot in judge.shots_pool.shots}

    async def __call__(self, entries: Iterable[Entry], total: int | None = None) -> AsyncIterator[dict[str, Any]]:
        async def work(entry: Entry) -> dict[str, Any]:
            return await judge_entry(self.judge, entry, self.generation_kwargs, self.provenance, self._shots)

        async for _, row in run_batch(entries, work, self.concurrency):
            yield row
