"""The batch layer: bounded async concurrency, progress, resumable JSONL output, and
streamed input. It knows nothing of reward models: callers pass the async work to run.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from tqdm.auto import tqdm

from .errors import ConfigError, InputError

__all__ = ["run_batch", "read_rows", "row_id", "ResultWriter", "read_results", "load_done_ids", "BatchProgress"]

logger = logging.getLogger(__name__)
T = TypeVar("T")
R = TypeVar("R")

ROW_ID_CHARS = 16
PARQUET_BATCH_ROWS = 1024


async def run_batch(
    items: Iterable[T],
    work: Callable[[T], Awaitable[R]],
    concurrency: int,
    warmup: int = 1,
) -> AsyncIterator[tuple[T, R]]:
    """Run `work` on every item with at most `concurrency` in flight; yield as they finish.

    `concurrency` worker tasks pull items from one shared iterator, so a streamed input
    is never loaded whole and each item costs O(1) scheduling. The first `warmup` items
    run alone before the rest fan out, so a server with automatic prefix caching has the
    shared prefix (instruction + shots) cached before the parallel requests arrive.

    Args:
        items: any iterable, consumed lazily.
        work: an async function of one item; it should return its errors, not raise
            them (a raised exception stops the batch and is re-raised here).
        concurrency: maximum items in flight (>= 1).
        warmup: items to run alone first (0 = none).

    Yields:
        ``(item, result)`` in completion order.

    Raises:
        ConfigError: `concurrency` < 1.
    """
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise ConfigError(f"concurrency must be a whole number >= 1, got {concurrency!r}")
    iterator = iter(items)
    for _ in range(warmup):
        try:
            item = next(iterator)
        except StopIteration:
            return
        yield item, await work(item)

    # Bounded, so finished results wait for the consumer instead of piling up.
    queue: asyncio.Queue[tuple[T, R] | object] = asyncio.Queue(maxsize=concurrency)

    async def worker() -> None:
        try:
            for item in iterator:  # next() runs to completion between awaits: safe to share
                await queue.put((item, await work(item)))
        except Exception as error:  # handed to the consumer, which re-raises it. Not
            # CancelledError: then the consumer is gone and the queue may be full.
            await queue.put(_Failure(error))
            return
        await queue.put(_WORKER_DONE)

    workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
    try:
        running = len(workers)
        while running:
            entry = await queue.get()
            if entry is _WORKER_DONE:
                running -= 1
            elif isinstance(entry, _Failure):
                raise entry.error
            else:
                yield entry  # type: ignore[misc]
    finally:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)


class _Failure:
    def __init__(self, error: Exception) -> None:
        self.error = error


_WORKER_DONE = object()


def row_id(row: dict[str, Any]) -> str:
    """A stable id for a row without one: the first 16 hex digits of the SHA-256 of its
    canonical JSON (sorted keys), the same in every run and process."""
    canonical = json.dumps(row, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:ROW_ID_CHARS]


def read_rows(source: str | Path, split: str = "train") -> Iterator[dict[str, Any]]:
    """Stream rows from a JSONL, JSON, or Parquet file, a saved 🤗 dataset directory, or
    a hub dataset name (``split``; needs the network).

    JSONL and Parquet are streamed (Parquet in batches of 1,024 rows); a JSON file holds
    one list and is read whole; a saved dataset is memory-mapped by `datasets`.

    Raises:
        InputError: the source does not exist (and is not a hub name), a line or file is
            not valid JSON, or a row is not an object; names the file and line.
    """
    path = Path(source)
    if path.is_dir():
        import datasets

        try:
            dataset = datasets.load_from_disk(str(path))
        except (FileNotFoundError, ValueError) as e:
            raise InputError(f"{path}: not a saved 🤗 dataset directory ({e})") from None
        if isinstance(dataset, datasets.DatasetDict):
            if split not in dataset:
                raise InputError(f"{path}: no split {split!r}; it has {', '.join(dataset)}")
            dataset = dataset[split]
        yield from dataset
        return
    if not path.exists():
        if "/" in str(source) and not str(source).startswith((".", "/")) and path.suffix == "":
            yield from _hub_rows(str(source), split)
            return
        raise InputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=PARQUET_BATCH_ROWS):
            yield from batch.to_pylist()
    elif suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise InputError(f"{path} is not valid JSON: line {e.lineno} column {e.colno}: {e.msg}") from None
        rows = data if isinstance(data, list) else [data]
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise InputError(f"{path} item {i}: expected an object, got {type(row).__name__}")
            yield row
    else:
        with open(path, encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise InputError(f"{path} line {line_no} is not valid JSON: {e.msg}") from None
                if not isinstance(row, dict):
                    raise InputError(f"{path} line {line_no}: expected an object, got {type(row).__name__}")
                yield row


def _hub_rows(name: str, split: str) -> Iterator[dict[str, Any]]:
    import datasets

    try:
        yield from datasets.load_dataset(name, split=split, streaming=True)
    except Exception as e:  # the hub client raises many types; all mean "cannot load it"
        raise InputError(f"{name}: not a local file, and loading it from the 🤗 hub failed: {e}") from None


def read_results(path: str | Path) -> dict[str, dict[str, Any]]:
    """The last record per ``id`` in a JSONL results file (a missing file gives {}).

    A torn line (a killed writer) is skipped.
    """
    path = Path(path)
    if not path.exists():
        return {}
    last: dict[str, dict[str, Any]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict) and "id" in record:
                last[str(record["id"])] = record
    return last


def load_done_ids(path: str | Path, is_done: Callable[[dict[str, Any]], bool] | None = None) -> set[str]:
    """Ids of rows in a JSONL results file whose last record is done.

    Args:
        path: the results file; a missing file gives an empty set.
        is_done: decides from a record; default: its ``error`` is null.
    """
    is_done = is_done or (lambda record: record.get("error") is None)
    return {i for i, record in read_results(path).items() if is_done(record)}


class ResultWriter:
    """Appends result rows to a JSONL file, one line each, flushed as written, so a
    killed process loses no finished row. A torn last line from an earlier crash is
    terminated before the first new row.

    Raises:
        ConfigError: the file cannot be opened for appending.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            needs_newline = self.path.exists() and self.path.stat().st_size > 0 and not _ends_with_newline(self.path)
            self._file = open(self.path, "a", encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot write {self.path}: {e.strerror}") from None
        if needs_newline:
            self._file.write("\n")

    def write(self, row: dict[str, Any]) -> None:
        """Append `row` as one JSON line and flush it to the OS."""
        self._file.write(json.dumps(row, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        self._file.close()

    def __enter__(self) -> ResultWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, 2)
        return f.read(1) == b"\n"


class BatchProgress:
    """A tqdm bar for a batch: items/s, prompt and generated tokens/s, cache hits, errors.

    Args:
        total: items expected, or None when unknown (a streamed input).
        enabled: True = always show, False = never, None = only on a TTY (tqdm's rule).
    """

    def __init__(self, total: int | None, enabled: bool | None = None) -> None:
        self.bar = tqdm(total=total, unit="item", disable=None if enabled is None else not enabled, dynamic_ncols=True)
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.cache_hits = 0
        self.errors = 0
        self.done = 0

    def update(self, prompt_tokens: int, completion_tokens: int, cache_hit: bool, error: bool) -> None:
        """Count one finished item."""
        self.done += 1
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.cache_hits += cache_hit
        self.errors += error
        elapsed = max(self.bar.format_dict.get("elapsed", 0.0), 1e-9)
        self.bar.set_postfix(
            prompt_tok_s=f"{self.prompt_tokens / elapsed:.0f}", gen_tok_s=f"{self.completion_tokens / elapsed:.0f}",
            cache_hits=self.cache_hits, errors=self.errors, refresh=False,
        )
        self.bar.update(1)

    def close(self) -> None:
        """Close the bar."""
        self.bar.close()
