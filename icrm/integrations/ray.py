"""Judging past one machine: the Ray executor of the resumable run, whose actors each
hold one `ICRM`.

    read (JSONL / JSON / Parquet / 🤗 dataset / a ray.data.Dataset), on the cluster
      -> entries, as `icrm score` makes them; finished ids of the output left out
      -> map_batches on an actor pool: each actor (async) judges several batches at once,
         at most `concurrency` requests in flight
      -> result rows streamed back to the driver, appended to the output file

The output is the file `icrm score` writes — same rows, same run fingerprint, same
resume, the same results file held by one run (`icrm.batch.resume`): a re-run (after a
crash, a killed node, Ctrl-C) leaves out the ids already final and redoes the rest.
icrm owns the resume; Ray's own checkpointing is not used. Every fault of an item is
that item's row; actors that die are restarted and their batches retried by Ray, and a
dataset that fails anyway keeps every row written so far. The driver holds no judge: it
keeps the books from the configuration alone (`icrm.provenance`).

Actors call OpenAI-compatible endpoints (a fleet of vLLM / SGLang servers given as
``worker_addrs``, a router's ``base_url``, a hosted API), or — with a local engine and no
``worker_addrs`` — each launches its own worker on the resources Ray gives it
(``gpus_per_actor``). The provider key goes to the actors through the job's runtime
environment (the vendor's variable), never in the configuration they are sent.

A JSONL or JSON input gives exactly a single-process run's entries and ids. A Parquet
file or a dataset is read in blocks, whose rows are not numbered across blocks: there a
repeated id is recorded as ``<id>@dup:<n>`` and a row icrm cannot take as
``line:<sha>`` (its text's hash). User ids of these forms are refused on their row.

Needs ``pip install 'icrm[ray]'``.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import itertools
import json
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from icrm.batch import Entry, RowRecorder, read_rows
from icrm.batch.sources import bad_row_id, is_reserved_id, jsonl_rows, repeated_id
from icrm.config import ICRMConfig
from icrm.engines.registry import ENGINES, choose_engine, resolve_api_key
from icrm.errors import ConfigError, EngineError, ICRMError, InputError
from icrm.executors import judge_entry
from icrm.scoring import SCORE_OPTIONS, ScoreRun, ScoreSummary, item_id, row_items, score_entries
from icrm.spec import JudgeSpec

__all__ = ["RayBackend", "RayExecutor", "score", "RAY_REMOTE_ARGS"]

# Actors that die are restarted and their tasks retried, so one lost process does not fail the dataset.
RAY_REMOTE_ARGS = {"max_restarts": -1, "max_task_retries": -1}
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
        name = self.config.engine_name
        return name in ENGINES and ENGINES.get(name).local and not self.config.worker_addrs

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

    def executor(self, generation_kwargs: dict[str, Any], provenance: dict[str, Any]) -> RayExecutor:
        """The executor that judges a run's entries on this backend."""
        return RayExecutor(self, generation_kwargs, provenance)

    def actor_settings(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The configuration the actors are sent (without the provider key) and the
        environment variables their runtime environment sets (the key, under the
        vendor's variable)."""
        choice = choose_engine(self.config.engine_name)
        key = resolve_api_key(choice.name, self.config.api_key)
        env = {choice.spec.key_env: key} if key and choice.spec.key_env else {}
        return self.config.model_dump(mode="json", exclude={"api_key"}), env


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


def _wire(value: Any) -> str:
    # ASCII JSON between processes: Arrow refuses lone surrogates, and these are not read by people.
    return json.dumps(value, ensure_ascii=True, default=str)


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
        entries = [Entry(**json.loads(e)) for e in batch["entry"]]
        rows = await asyncio.gather(*(self._one(e) for e in entries))
        return {"line": [_wire(r) for r in rows]}

    async def _one(self, entry: Entry) -> dict[str, Any]:
        assert self.gate is not None
        async with self.gate:  # the ICRM runs the request on its own loop; this one only waits
            return await judge_entry(self.icrm, entry, self.generation_kwargs, self.provenance, self.shots)


class RayExecutor:
    """Judges entries on an actor pool (see the module docstring), yielding rows as
    they arrive; a repeated id among them becomes an error row ``<id>@dup:<n>``.

    Args:
        backend: the cluster, the actor pool and the judge's configuration.
        generation_kwargs: the caller's generation kwargs.
        provenance: the run's fields and fingerprint.
    """

    def __init__(self, backend: RayBackend, generation_kwargs: dict[str, Any], provenance: dict[str, Any]) -> None:
        self.backend, self.generation_kwargs, self.provenance = backend, generation_kwargs, provenance

    async def __call__(self, entries: Iterable[Entry], total: int | None = None) -> AsyncIterator[dict[str, Any]]:
        entries = list(entries)
        if not entries:
            return
        ray = self.backend.connect()
        dataset = ray.data.from_items([{"entry": _wire(asdict(e))} for e in entries])
        async for row in _in_thread(lambda: self.rows(dataset)):
            yield row

    def rows(self, entries: Any, done: frozenset[str] = frozenset()) -> Iterator[dict[str, Any]]:
        """Judge a Ray dataset of entries (one column ``entry``: `Entry` as JSON); yield
        result rows as they arrive.

        Raises:
            EngineError: the Ray dataset failed (rows yielded until then are kept).
        """
        from ray.data import ActorPoolStrategy

        backend = self.backend
        config, env = backend.actor_settings()
        # One block per batch: a read gives a few big blocks, and an actor task returns its
        # rows only when its whole block is done (no streaming, no second actor busy).
        judged = entries.repartition(target_num_rows_per_block=backend.concurrency).map_batches(
            _Judge, fn_constructor_kwargs={"config": config, "concurrency": backend.concurrency,
                                           "generation_kwargs": self.generation_kwargs, "provenance": self.provenance},
            batch_size=backend.concurrency, batch_format="numpy",
            compute=ActorPoolStrategy(size=backend.num_actors, max_tasks_in_flight_per_actor=BATCHES_IN_FLIGHT,
                                      max_concurrent_calls_per_actor=BATCHES_IN_FLIGHT),
            num_cpus=backend.actor_cpus, num_gpus=backend.gpus_per_actor or None,
            runtime_env={"env_vars": env} if env else None, **RAY_REMOTE_ARGS)
        seen: dict[str, int] = {}
        count = 0
        try:
            for batch in judged.iter_batches(batch_size=None, batch_format="numpy"):
                for line in batch["line"]:
                    row = json.loads(line)
                    count += 1
                    if row["id"] in seen or row["id"] in done:
                        seen[row["id"]] = seen.get(row["id"], 1) + 1
                        row = {**row, "id": repeated_id(row["id"], seen[row["id"]], "dup"), "feedback": None,
                               **{k: None for k in ("score", "choice", "reward") if k in row},
                               "error": f"duplicate id {row['id']!r}: another input row has it", "error_kind": "input"}
                    else:
                        seen[row["id"]] = 1
                    yield row
        except ICRMError:
            raise
        except Exception as error:  # Ray's own failure: what finished is kept
            raise EngineError(f"the Ray dataset failed after {count} rows ({type(error).__name__}: "
                              f"{str(error)[:300]}); re-run to resume") from error


async def _in_thread(rows: Any) -> AsyncIterator[dict[str, Any]]:
    """Iterate a blocking iterator (Ray's) on a thread, yielding on this event loop."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=256)
    done = object()
    stop = threading.Event()

    def pump() -> None:
        try:
            for row in rows():
                if stop.is_set():
                    return
                asyncio.run_coroutine_threadsafe(queue.put(row), loop).result()
        except BaseException as error:  # handed over to the loop, raised there
            asyncio.run_coroutine_threadsafe(queue.put(error), loop).result()
        else:
            asyncio.run_coroutine_threadsafe(queue.put(done), loop).result()

    thread = threading.Thread(target=pump, name="icrm-ray-rows", daemon=True)
    thread.start()
    try:
        while (item := await queue.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def _entries(source: Any, split: str, rm_type: Any, id_field: str, input_format: str, done: frozenset[str],
             limit: int | None) -> Any:
    """The input as a Ray dataset of entries (see `RayExecutor.rows`), finished ids left
    out. A JSONL file is split into lines by a Ray task with the single-process reader
    (`icrm.batch.sources.jsonl_rows`), so its entries and ids are a local run's; a JSON
    file is read here; Parquet and 🤗 datasets are read in blocks on the cluster."""
    import ray.data

    path = Path(source) if isinstance(source, (str, Path)) else None
    if path is not None and path.suffix.lower() in (".jsonl", ".json"):
        if path.suffix.lower() == ".json":
            return ray.data.from_items([{"entry": _wire(asdict(e))} for e in _local_entries(
                read_rows(path), rm_type, id_field, input_format, done, limit)])

        def split_file(row: dict[str, Any]) -> list[dict[str, str]]:
            lines = io.TextIOWrapper(io.BytesIO(row["bytes"]), encoding="utf-8", errors="surrogateescape")
            return [{"entry": _wire(asdict(e))}
                    for e in _local_entries(jsonl_rows(lines, str(path)), rm_type, id_field, input_format, done, limit)]

        return ray.data.read_binary_files(str(path)).flat_map(split_file)
    if isinstance(source, (str, Path)):
        import datasets

        dataset = (datasets.load_from_disk(str(path)) if path is not None and path.is_dir()
                   else datasets.load_dataset(str(source), split=split))
        if isinstance(dataset, datasets.DatasetDict):
            dataset = dataset[split]
        rows = ray.data.read_parquet(str(path)) if path is not None and path.suffix.lower() == ".parquet" \
            else ray.data.from_huggingface(dataset)
    else:
        rows = source  # a ray.data.Dataset
    if limit is not None:
        rows = rows.limit(limit)

    def to_entries(batch: Any) -> dict[str, list[str]]:
        out = [e for record in batch.to_pylist() for e in _record_entries(record, rm_type, id_field, input_format)]
        return {"entry": [_wire(asdict(e)) for e in out if e.id not in done]}

    return rows.map_batches(to_entries, batch_format="pyarrow")


def _local_entries(rows: Iterator[Any], rm_type: Any, id_field: str, input_format: str, done: frozenset[str],
                   limit: int | None) -> Iterator[Entry]:
    entries = score_entries(itertools.islice(rows, limit), rm_type, id_field, input_format)
    return (e for e in entries if e.id not in done)


def _record_entries(record: dict[str, Any], rm_type: Any, id_field: str, input_format: str) -> list[Entry]:
    """The entries of one row of a Parquet file or dataset (rows are not numbered across
    blocks: a row icrm cannot take is ``line:<sha>``, a repeated id ``<id>@dup:<n>``)."""
    rid = item_id(record, id_field)
    if is_reserved_id(rid):
        return [Entry(_line_id(_wire(record)), error=f"id {rid!r} has the form of icrm's own ids for rows it cannot "
                                                     "take (line:<n>, <id>@line:<n>, <id>@dup:<n>); rename it")]
    return [Entry(iid, error=str(item)) if isinstance(item, InputError) else Entry(iid, item)
            for iid, item in row_items(record, rid, rm_type, input_format, f"row {rid}")]


def _line_id(text: str) -> str:
    return bad_row_id(hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16])


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
        ConfigError: Ray is missing; bad arguments; an output that cannot take this run
            (see `icrm.batch.ResultsFile.open`).
        InputError: an unreadable source.
        OutputError: the output vanished or was replaced during the run.
        EngineError: the dataset failed (every row finished until then is kept; re-run
            to resume).
    """
    _require_ray()
    config = config if isinstance(config, ICRMConfig) else ICRMConfig.build(**(config or {}))
    backend = RayBackend(config, ray_address, num_actors, concurrency, gpus_per_actor, cpus_per_actor)
    spec = JudgeSpec(config)
    generation_kwargs = spec.check_generation_kwargs(generation_kwargs, also=SCORE_OPTIONS)
    local = isinstance(source, (str, Path))
    with ScoreRun.prepare(config, source, output, limit=limit, id_field=id_field, input_format=input_format,
                          split=split, overwrite=overwrite, generation_kwargs=generation_kwargs, builder=spec.prompts,
                          open_input=local) as run:
        return run_on_ray(run, backend, progress)


def run_on_ray(run: ScoreRun, backend: RayBackend, progress: bool | None = None) -> ScoreSummary:
    """Judge a prepared `ScoreRun` on `backend`: the input read on the cluster, rows
    written by this process as they arrive.

    Raises:
        OutputError / ConfigError / EngineError: as `score`.
    """
    backend.connect()
    results, options = run.results, run.options
    done = frozenset(results.done)
    read = (run.source, options["split"], run.rm_type, options["id_field"], options["input_format"])
    summary = ScoreSummary()
    if done:  # how many of the input's items an earlier run finished (a second, cheap pass over the input)
        for batch in _entries(*read, frozenset(), options["limit"]).iter_batches(batch_size=None,
                                                                                  batch_format="numpy"):
            for entry in map(json.loads, batch["entry"]):
                if entry["id"] in done:
                    summary.skipped += 1
                    summary.failed += results.records[entry["id"]].get("error_kind") is not None
    executor = backend.executor(run.generation_kwargs, results.provenance)
    recorder = RowRecorder(results, progress)
    start = time.perf_counter()
    try:
        for row in executor.rows(_entries(*read, done, options["limit"]), done):
            recorder.add(row)
    finally:
        recorder.close()
        summary.seconds = time.perf_counter() - start
    tally = recorder.finish()
    summary.scored, summary.errors, summary.parse_failures = tally.rows, tally.errors, tally.parse_failures
    summary.failed += tally.failed
    summary.usage = tally.usage
    return summary
