"""Scoring past one machine: a Ray Data pipeline whose actors each hold one `ICRM`.

    read (JSONL / JSON / Parquet / 🤗 dataset / a ray.data.Dataset)
      -> ids and items, as `icrm score` makes them; finished ids of the output left out
      -> map_batches on an actor pool: each actor (async) judges several batches at once,
         at most `concurrency` requests in flight
      -> result rows streamed back to the driver, appended to the output file

The output is the file `icrm score` writes — same rows, same run fingerprint, same
resume: a re-run (after a crash, a killed node, Ctrl-C) leaves out the ids already
final and redoes the rest, so every id ends up in it once. icrm owns the resume; Ray's
own checkpointing is not used. Every fault of an item is that item's row; actors that
die are restarted and their batches retried by Ray, and a dataset that fails anyway
keeps every row written so far.

Actors call OpenAI-compatible endpoints (a fleet of vLLM / SGLang servers given as
``worker_addrs``, a router's ``base_url``, a hosted API), or — with a local engine and no
``worker_addrs`` — each launches its own worker on the resources Ray gives it
(``gpus_per_actor``).

Differences from a single-process run, both only for faulty input: a repeated id is
recorded as ``<id>@dup:<n>`` (not ``<id>@line:<n>``: lines are not numbered across
blocks), and a JSONL line that is not JSON as ``line:<sha>`` (its text's hash).

Needs ``pip install 'icrm[ray]'``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from icrm.batch import RowTally, check_same_run, is_finished, read_results, run_fingerprint
from icrm.batch.progress import BatchProgress
from icrm.batch.results import ResultWriter, check_output_path
from icrm.config import ICRMConfig
from icrm.errors import ConfigError, EngineError, ICRMError, InputError
from icrm.scoring import INPUT_FORMATS, SCORE_OPTIONS, ScoreSummary, item_id, result_row, row_items

__all__ = ["RayBackend", "score", "judge_entries", "judge_on_ray", "driver_judge", "write_rows", "RAY_REMOTE_ARGS"]

logger = logging.getLogger(__name__)

# Actors that die are restarted and their tasks retried, so one lost process does not fail the dataset.
RAY_REMOTE_ARGS = {"max_restarts": -1, "max_task_retries": -1}
PLACEHOLDER_ADDR = "http://127.0.0.1:9/v1"  # the driver's judge never sends a request
# Batches (of `concurrency` entries) an actor holds at once: the next ones are ready when
# one's last request is still out.
BATCHES_IN_FLIGHT = 3


@dataclass(frozen=True)
class RayBackend:
    """Where and how to judge on Ray.

    Attributes:
        config: the judge each actor builds (local engines launch their own worker).
        address: the cluster (``ray start --head`` prints it); None = the one this
            process is connected to, else a new local one.
        num_actors: actors judging in parallel (each holds one `ICRM`).
        concurrency: requests in flight per actor at most (also its batch size).
        gpus_per_actor: GPUs Ray gives each actor, for its own local worker.
        cpus_per_actor: CPUs Ray reserves for each actor. None = 0 for actors that call
            endpoints (async HTTP clients, nearly idle: reserving a CPU each would leave
            none for reading the input on a small cluster, and Ray Data would wait
            forever) and 1 for actors that launch their own local worker.
    """

    config: ICRMConfig
    address: str | None = None
    num_actors: int = 2
    concurrency: int = 32
    gpus_per_actor: float = 0.0
    cpus_per_actor: float | None = None

    def __post_init__(self) -> None:
        for name in ("num_actors", "concurrency"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a whole number >= 1, got {value!r}")
        for name in ("gpus_per_actor", "cpus_per_actor"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0):
                raise ConfigError(f"{name} must be a number >= 0, got {value!r}")

    @property
    def launches_workers(self) -> bool:
        """Whether each actor launches its own local worker (a local engine, no worker_addrs)."""
        from icrm.engines.registry import ENGINES

        spec = ENGINES.get(self.config.engine_name)
        return spec is not None and spec.local and not self.config.worker_addrs

    @property
    def actor_cpus(self) -> float:
        """CPUs reserved per actor (see ``cpus_per_actor``)."""
        if self.cpus_per_actor is not None:
            return float(self.cpus_per_actor)
        return 1.0 if self.launches_workers else 0.0

    def connect(self) -> Any:
        """Ray, connected to the cluster."""
        ray = _require_ray()
        if not ray.is_initialized():
            _check_reachable(self.address)
            try:
                ray.init(address=self.address, ignore_reinit_error=True, log_to_driver=False)
            except ray.exceptions.AuthenticationError as e:
                raise ConfigError(
                    f"the Ray cluster at {self.address or 'this machine'} wants its auth token "
                    f"(Ray 2.60 starts clusters with token authentication): set RAY_AUTH_MODE=token and put "
                    f"the head's token in ~/.ray/auth_token or RAY_AUTH_TOKEN ({str(e)[:200]})") from None
        return ray


def _check_reachable(address: str | None) -> None:
    """A ``host:port`` address that refuses connections is a clear error at once (Ray
    itself retries for minutes)."""
    import socket

    host, sep, port = (address or "").removeprefix("ray://").rpartition(":")
    if not sep or not host or not port.isdigit():
        return  # None, "auto", "local": Ray's own
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise ConfigError(f"no Ray cluster answers at --ray_address {address} ({e}); start one with `ray start "
                          "--head` (it prints the address), or leave ray_address unset for a local one") from None


def _require_ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise ConfigError("the Ray backend needs Ray: pip install 'icrm[ray]'") from None
    return ray


def driver_judge(config: ICRMConfig) -> Any:
    """An `ICRM` for the driver's bookkeeping (run fields, generation kwargs), which
    launches nothing: a local engine is pointed at a placeholder address, since only the
    actors judge."""
    from icrm.reward_model import ICRM

    if RayBackend(config).launches_workers:
        config = config.model_copy(update={"worker_addrs": (PLACEHOLDER_ADDR,)})
    return ICRM.from_config(config)


class _Judge:
    """One Ray actor: one `ICRM`, at most `concurrency` requests in flight.

    Async, so Ray runs several of its batches at once (`BATCHES_IN_FLIGHT`): a batch's
    slowest request no longer leaves the actor idle, and the semaphore, not the batch
    size, bounds what the actor sends."""

    def __init__(self, config: dict[str, Any], generation_kwargs: dict[str, Any], provenance: dict[str, Any],
                 concurrency: int) -> None:
        from icrm.reward_model import ICRM

        self.icrm = ICRM.from_config(ICRMConfig(**config))
        self.generation_kwargs = generation_kwargs
        self.provenance = provenance
        self.shots = {shot.id: shot for shot in self.icrm.shots_pool.shots}
        self.concurrency = concurrency
        self.gate: asyncio.Semaphore | None = None  # made on the actor's loop, at its first batch

    async def __call__(self, batch: dict[str, Any]) -> dict[str, list[str]]:
        if self.gate is None:
            self.gate = asyncio.Semaphore(self.concurrency)
        entries = [json.loads(e) for e in batch["entry"]]
        rows = await asyncio.gather(*(self._one(e) for e in entries))
        return {"line": [json.dumps(r, ensure_ascii=False) for r in rows]}

    async def _one(self, entry: dict[str, Any]) -> dict[str, Any]:
        rm_type = self.icrm.rm_type
        if entry.get("error") is not None:
            feedback = rm_type.failed(InputError(entry["error"]))
        else:
            shots = None if entry.get("shot_ids") is None else [self.shots[i] for i in entry["shot_ids"]]
            assert self.gate is not None
            async with self.gate:  # the ICRM runs the request on its own loop; this one only waits
                feedback = await self.icrm.ajudge_item(entry["item"], shots, self.generation_kwargs,
                                                       key=entry.get("key"), position=entry.get("position"))
        return {**result_row(entry["id"], feedback, self.provenance, rm_type), **(entry.get("extra") or {})}


def judge_entries(entries: Any, backend: RayBackend, generation_kwargs: dict[str, Any],
                  provenance: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Judge a Ray dataset of entries on an actor pool; yield result rows as they arrive.

    Args:
        entries: a ``ray.data.Dataset`` with one column ``entry``: JSON text of
            ``{"id", "item"}`` (or ``"error"`` for an item that cannot be built), plus
            optional ``key`` and ``position`` (pairwise placement), ``shot_ids`` (shots
            of the pool by id) and ``extra`` (fields added to the result row).
        backend: the judge's configuration and the actor pool.
        generation_kwargs, provenance: as `icrm.scoring.result_row` records them.

    Yields:
        Result rows (dicts), in completion order.
    """
    from ray.data import ActorPoolStrategy

    # One block per batch: a read gives a few big blocks, and an actor task returns its
    # rows only when its whole block is done (no streaming, no second actor busy).
    judged = entries.repartition(target_num_rows_per_block=backend.concurrency).map_batches(
        _Judge, fn_constructor_kwargs={"config": backend.config.model_dump(mode="json"), "concurrency": backend.concurrency,
                                       "generation_kwargs": generation_kwargs, "provenance": provenance},
        batch_size=backend.concurrency, batch_format="numpy",
        compute=ActorPoolStrategy(size=backend.num_actors, max_tasks_in_flight_per_actor=BATCHES_IN_FLIGHT,
                                  max_concurrent_calls_per_actor=BATCHES_IN_FLIGHT),
        num_cpus=backend.actor_cpus, num_gpus=backend.gpus_per_actor or None, **RAY_REMOTE_ARGS)
    for batch in judged.iter_batches(batch_size=None, batch_format="numpy"):
        for line in batch["line"]:
            yield json.loads(line)


def _entries(source: Any, split: str, rm_type: Any, id_field: str, input_format: str, done: frozenset[str],
             limit: int | None) -> Any:
    """The input as a Ray dataset of entries (see `judge_entries`), read where Ray runs
    it; finished ids are left out."""
    import ray.data

    path = Path(source) if isinstance(source, (str, Path)) else None
    if path is not None and path.suffix.lower() == ".jsonl":
        rows, text = ray.data.read_text(str(path)), True
    elif path is not None and path.suffix.lower() == ".parquet":
        rows, text = ray.data.read_parquet(str(path)), False
    elif path is not None and path.suffix.lower() == ".json":
        from icrm.batch import BadRow, read_rows

        rows, text = ray.data.from_items([{"text": r.message if isinstance(r, BadRow) else json.dumps(r)}
                                          for r in read_rows(path)]), True  # one JSON list: read whole
    elif isinstance(source, (str, Path)):
        import datasets

        dataset = (datasets.load_from_disk(str(path)) if path is not None and path.is_dir()
                   else datasets.load_dataset(str(source), split=split))
        if isinstance(dataset, datasets.DatasetDict):
            dataset = dataset[split]
        rows, text = ray.data.from_huggingface(dataset), False
    else:
        rows, text = source, False  # a ray.data.Dataset
    if limit is not None:
        rows = rows.limit(limit)

    def to_entries(batch: Any) -> dict[str, list[str]]:
        out = []
        records = batch.column("text").to_pylist() if text else batch.to_pylist()
        for record in records:
            if text:
                try:
                    record = json.loads(record)
                except json.JSONDecodeError as e:
                    record = f"not JSON ({e.msg}): {record[:80]!r}"
                if not isinstance(record, dict):
                    bad = record if isinstance(record, str) else f"expected a JSON object, got {type(record).__name__}"
                    out.append({"id": f"line:{hashlib.sha256(bad.encode()).hexdigest()[:16]}", "error": bad})
                    continue
            rid = item_id(record, id_field)
            for iid, item in row_items(record, rid, rm_type, input_format, f"row {rid}"):
                if iid not in done:
                    out.append({"id": iid, "error": str(item)} if isinstance(item, ICRMError) else {"id": iid, "item": item})
        return {"entry": [json.dumps(e, ensure_ascii=False, default=str) for e in out]}

    return rows.map_batches(to_entries, batch_format="pyarrow")


def score(
    source: Any,
    output: str | Path,
    config: ICRMConfig | dict[str, Any] | None = None,
    *,
    ray_address: str | None = None,
    num_actors: int = 2,
    concurrency: int = 32,
    gpus_per_actor: float = 0.0,
    cpus_per_actor: float | None = None,
    limit: int | None = None,
    id_field: str = "id",
    input_format: str = "conversations",
    split: str = "train",
    overwrite: bool = False,
    progress: bool | None = None,
    **generation_kwargs: Any,
) -> ScoreSummary:
    """`icrm.scoring.score_file` on a Ray cluster.

    Args:
        source: a JSONL / JSON / Parquet file, a saved 🤗 dataset directory, a hub
            dataset name, or a ``ray.data.Dataset`` of input rows.
        output: the JSONL results file (appended to; resumed).
        config: the judge (`ICRMConfig` or its fields); default the embedded model.
        ray_address: the cluster (``ray start --head`` prints it); None = the one this
            process is connected to, else a new local one.
        num_actors: actors judging in parallel (each holds one `ICRM`).
        concurrency: requests in flight per actor.
        gpus_per_actor: GPUs per actor, for actors that launch their own local worker.
        cpus_per_actor: CPUs Ray reserves per actor (see `RayBackend`).
        limit, id_field, input_format, split, overwrite, progress, generation_kwargs:
            as `score_file`.

    Returns:
        The `ScoreSummary` of this run.

    Raises:
        ConfigError: Ray is missing; bad arguments; an output holding another run's
            results (naming the fields that differ).
        InputError: an unreadable source.
        EngineError: the dataset failed (every row finished until then is kept; re-run
            to resume).
    """
    _require_ray()
    config = config if isinstance(config, ICRMConfig) else ICRMConfig.build(**(config or {}))
    backend = RayBackend(config, ray_address, num_actors, concurrency, gpus_per_actor, cpus_per_actor)
    if input_format not in INPUT_FORMATS:
        raise ConfigError(f"input_format must be one of {', '.join(INPUT_FORMATS)}, got {input_format!r}")
    with driver_judge(config) as judge:
        generation_kwargs = judge.check_generation_kwargs(generation_kwargs, also=SCORE_OPTIONS)
        fields = {**judge.run_fields(generation_kwargs), "input_format": input_format, "id_field": id_field}
        rm_type = judge.rm_type
    output = check_output_path(output, source if isinstance(source, (str, Path)) else None)
    if overwrite and output.exists():
        output.unlink()
    records = read_results(output)
    check_same_run(records, fields, output, "pass --overwrite True (overwrite=True) to start over")
    done = frozenset(i for i, r in records.items() if is_finished(r))
    provenance = {**fields, "fingerprint": run_fingerprint(fields)}
    backend.connect()
    entries = _entries(source, split, rm_type, id_field, input_format, done, limit)
    summary = ScoreSummary()
    if done:  # how many of the input's items an earlier run finished (a second, cheap pass over the input)
        finished = _entries(source, split, rm_type, id_field, input_format, frozenset(), limit)
        for batch in finished.iter_batches(batch_size=None, batch_format="numpy"):
            for entry in map(json.loads, batch["entry"]):
                if entry["id"] in done:
                    summary.skipped += 1
                    summary.failed += records[entry["id"]].get("error_kind") is not None
    start = time.perf_counter()
    try:
        tally = write_rows(judge_entries(entries, backend, generation_kwargs, provenance), output, done, progress)
    finally:
        summary.seconds = time.perf_counter() - start
    summary.scored, summary.errors, summary.parse_failures = tally.rows, tally.errors, tally.parse_failures
    summary.failed += tally.failed
    summary.usage = tally.usage
    return summary


def judge_on_ray(entries: list[dict[str, Any]], backend: RayBackend, generation_kwargs: dict[str, Any],
                 provenance: dict[str, Any], output: Path, progress: bool | None = None) -> RowTally:
    """Judge a list of entries (see `judge_entries`) on Ray and append their rows to
    `output` (`write_rows`): how ``icrm eval --backend ray`` runs a benchmark's judgements."""
    import ray.data

    if not entries:
        return RowTally()
    backend.connect()
    dataset = ray.data.from_items([{"entry": json.dumps(e, ensure_ascii=False, default=str)} for e in entries])
    return write_rows(judge_entries(dataset, backend, generation_kwargs, provenance), output, progress=progress,
                      total=len(entries))


def write_rows(rows: Iterable[dict[str, Any]], output: Path, done: frozenset[str] = frozenset(),
               progress: bool | None = None, total: int | None = None) -> RowTally:
    """Append result rows to `output` as they arrive, flushed; an id seen before in
    this run (a repeated input id) becomes an error row ``<id>@dup:<n>``.

    Raises:
        EngineError: the Ray dataset failed; the rows written so far are kept.
    """
    tally = RowTally()
    seen: dict[str, int] = {}
    bar = BatchProgress(total, progress, tally)
    try:
        with ResultWriter(output) as writer:
            try:
                for row in rows:
                    if row["id"] in seen or row["id"] in done:
                        seen[row["id"]] = seen.get(row["id"], 1) + 1
                        row = {**row, "id": f"{row['id']}@dup:{seen[row['id']]}", "feedback": None,
                               **{k: None for k in ("score", "choice") if k in row},
                               "error": f"duplicate id {row['id']!r}: another input row has it", "error_kind": "input"}
                    else:
                        seen[row["id"]] = 1
                    writer.write(row)
                    tally.add(row)
                    bar.update()
            except ICRMError:
                raise
            except Exception as error:  # Ray's own failure: what finished is written
                raise EngineError(f"the Ray dataset failed after {tally.rows} rows ({type(error).__name__}: "
                                  f"{str(error)[:300]}); they are kept in {output}: re-run to resume") from error
    finally:
        bar.close()
    return tally
