"""The batch layer: bounded async concurrency, progress, resumable JSONL output, and
streamed input. It knows nothing of reward models: callers pass the async work to run.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from tqdm.auto import tqdm

from .errors import ConfigError, InputError

__all__ = ["run_batch", "read_rows", "BadRow", "row_id", "ResultWriter", "read_results", "load_done_ids",
           "is_finished", "check_output_path", "run_fingerprint", "check_same_run", "BatchProgress"]

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
            them. A raised exception, or one from `items`, stops the intake of new
            items; the items in flight still finish and are yielded; then the first
            exception is re-raised here, so nothing finished is lost.
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
    failures: list[BaseException] = []  # the first error stops intake; in-flight work still finishes

    def next_item() -> tuple[bool, Any]:
        if failures:
            return False, None
        try:
            return True, next(iterator)  # runs to completion between awaits: safe to share
        except StopIteration:
            return False, None
        except Exception as error:  # a broken source: stop pulling, keep what is in flight
            failures.append(error)
            return False, None

    for _ in range(warmup):
        more, item = next_item()
        if not more:
            break
        yield item, await work(item)
    else:
        # Bounded, so finished results wait for the consumer instead of piling up.
        queue: asyncio.Queue[tuple[T, R] | object] = asyncio.Queue(maxsize=concurrency)

        async def worker() -> None:
            try:
                while True:
                    more, item = next_item()
                    if not more:
                        break
                    await queue.put((item, await work(item)))
            except Exception as error:  # work should return its errors; one that raises
                failures.append(error)  # stops intake, and the others drain. Not
            await queue.put(_WORKER_DONE)  # CancelledError: then the consumer is gone.

        workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
        try:
            running = len(workers)
            while running:
                entry = await queue.get()
                if entry is _WORKER_DONE:
                    running -= 1
                else:
                    yield entry  # type: ignore[misc]
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
    if failures:
        raise failures[0]


_WORKER_DONE = object()


def row_id(row: dict[str, Any]) -> str:
    """A stable id for a row without one: the first 16 hex digits of the SHA-256 of its
    canonical JSON (sorted keys), the same in every run and process."""
    canonical = json.dumps(row, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:ROW_ID_CHARS]


@dataclass(frozen=True)
class BadRow:
    """An input row that could not be read (malformed JSON, not an object).

    It becomes that row's error in the results, never the end of the batch.

    Attributes:
        line: the 1-based line (JSONL) or item (JSON list, Parquet row) number.
        message: what is wrong, naming the file and line.
    """

    line: int
    message: str

    @property
    def id(self) -> str:
        """The id its error row is recorded under: ``line:<n>``."""
        return f"line:{self.line}"


def read_rows(source: str | Path, split: str = "train") -> Iterator[dict[str, Any] | BadRow]:
    """Stream rows from a JSONL, JSON, or Parquet file, a saved 🤗 dataset directory, or
    a hub dataset name (``split``; needs the network).

    JSONL and Parquet are streamed (Parquet in batches of 1,024 rows); a JSON file holds
    one list and is read whole; a saved dataset is memory-mapped by `datasets`. The
    source is opened before the first row is yielded, so an unreadable source fails at
    once.

    Yields:
        Each row as a dict, or a `BadRow` for a JSONL line that is not a JSON object (or
        a JSON list item that is not an object): a bad row never stops the others.

    Raises:
        InputError: the source does not exist (and is not a hub name), is not a file of
            its kind (a garbage Parquet file, a JSON file that does not parse), or is
            not readable as UTF-8 text; names the file.
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
        return iter(dataset)
    if not path.exists():
        if "/" in str(source) and not str(source).startswith((".", "/")) and path.suffix == "":
            return _hub_rows(str(source), split)
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file; give a JSONL, JSON or Parquet file or a dataset directory")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return _parquet_rows(path)
    if suffix == ".json":
        return _json_rows(path)
    return _jsonl_rows(path)


def _parquet_rows(path: Path) -> Iterator[dict[str, Any]]:
    import pyarrow
    import pyarrow.parquet as pq

    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=PARQUET_BATCH_ROWS)
    except (pyarrow.ArrowException, OSError) as e:
        raise InputError(f"{path}: not a readable Parquet file ({e})") from None

    def rows() -> Iterator[dict[str, Any]]:
        try:
            for batch in batches:
                yield from batch.to_pylist()
        except (pyarrow.ArrowException, OSError) as e:
            raise InputError(f"{path}: the Parquet file is corrupt past the rows already read ({e})") from None
    return rows()


def _json_rows(path: Path) -> Iterator[dict[str, Any] | BadRow]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(f"{path} is not valid JSON: line {e.lineno} column {e.colno}: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise InputError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start})") from None
    rows = data if isinstance(data, list) else [data]
    return (row if isinstance(row, dict) else BadRow(i + 1, f"{path} item {i + 1}: expected an object, got "
                                                           f"{type(row).__name__}")
            for i, row in enumerate(rows))


def _jsonl_rows(path: Path) -> Iterator[dict[str, Any] | BadRow]:
    try:
        f = open(path, encoding="utf-8", errors="surrogateescape")
    except OSError as e:
        raise InputError(f"{path}: cannot read it ({e.strerror})") from None

    def rows() -> Iterator[dict[str, Any] | BadRow]:
        with f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    yield BadRow(line_no, f"{path} line {line_no} is not valid JSON: {e.msg} (column {e.colno})")
                    continue
                except UnicodeEncodeError:  # undecodable bytes, kept as surrogates by the reader
                    yield BadRow(line_no, f"{path} line {line_no} is not UTF-8 text")
                    continue
                if not isinstance(row, dict):
                    yield BadRow(line_no, f"{path} line {line_no}: expected a JSON object, got {type(row).__name__}")
                    continue
                yield row
    return rows()


def _hub_rows(name: str, split: str) -> Iterator[dict[str, Any]]:
    import datasets

    try:
        yield from datasets.load_dataset(name, split=split, streaming=True)
    except Exception as e:  # the hub client raises many types; all mean "cannot load it"
        raise InputError(f"{name}: not a local file, and loading it from the 🤗 hub failed: {e}") from None


def read_results(path: str | Path) -> dict[str, dict[str, Any]]:
    """The last record per ``id`` in a JSONL results file (a missing file gives {}).

    A torn line (a killed writer) is skipped.

    Raises:
        ConfigError: `path` exists but is not a regular file (a directory, a device).
    """
    path = Path(path)
    if not path.exists():
        return {}
    check_output_path(path)
    last: dict[str, dict[str, Any]] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
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
        is_done: decides from a record; default: `is_finished`.
    """
    is_done = is_done or is_finished
    return {i for i, record in read_results(path).items() if is_done(record)}


def is_finished(record: dict[str, Any]) -> bool:
    """Whether a result row is final: it has a verdict, or the judge's answer held none
    (``error_kind`` ``parse``: asking again at temperature 0 gives the same answer).
    Rows that failed for any other reason (the engine, the input, a bug) are redone."""
    if record.get("error_kind") == "parse":
        return True
    return record.get("error") is None and record.get("error_kind") is None


def check_output_path(output: str | Path, source: str | Path | None = None) -> Path:
    """Check that `output` can hold a results file: a regular file or a new path, and
    not the input itself.

    Raises:
        ConfigError: `output` is a directory, a device (``/dev/full``), a FIFO, or the
            same file as `source`; the message names the fix.
    """
    output = Path(output)
    if output.exists() and not output.is_file():
        kind = "a directory" if output.is_dir() else "not a regular file"
        raise ConfigError(f"output {output} is {kind}: give the path of a results file, e.g. scores.jsonl")
    if source is not None and output.exists() and Path(source).exists():
        try:
            same = os.path.samefile(output, source)
        except OSError:
            same = False
        if same:
            raise ConfigError(f"output {output} is the input file: give another output path")
    return output


def run_fingerprint(fields: Mapping[str, Any]) -> str:
    """A short hash of what defines a run (model, engine, rm type, method, templates,
    shots, generation kwargs, ...): 16 hex digits of the SHA-256 of their canonical JSON."""
    canonical = json.dumps(dict(fields), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:ROW_ID_CHARS]


def check_same_run(records: Mapping[str, dict[str, Any]], fields: Mapping[str, Any], path: str | Path,
                   restart: str) -> None:
    """Refuse to resume into results written by a different run.

    Each result row carries its run's fields in ``provenance`` (with their
    ``fingerprint``); resuming with other fields would mix two runs in one file.

    Args:
        records: the existing rows (`read_results`).
        fields: this run's fingerprint fields.
        path: the results file, for the message.
        restart: how the user starts over, e.g. ``pass --overwrite True``.

    Raises:
        ConfigError: naming every differing field with both values, and the ways out.
    """
    expected = run_fingerprint(fields)
    for record in records.values():
        provenance = record.get("provenance")
        if not isinstance(provenance, dict):
            raise ConfigError(f"{path} holds rows without run provenance (not written by icrm score/eval): "
                              f"{restart}, or give another output")
        if provenance.get("fingerprint") == expected:
            continue
        stored = _flat({k: v for k, v in provenance.items() if k not in ("shot_ids", "fingerprint")})
        current = _flat(fields)
        differing = sorted(k for k in set(stored) | set(current)
                           if json.dumps(stored.get(k), sort_keys=True, default=str)
                           != json.dumps(current.get(k), sort_keys=True, default=str))
        if not differing:
            continue
        shown = "; ".join(f"{k}: {json.dumps(stored.get(k), default=str)} there, "
                          f"{json.dumps(current.get(k), default=str)} now" for k in differing)
        raise ConfigError(f"{path} holds results of another run ({shown}); resuming would mix two runs: "
                          f"{restart}, or give another output")


def _flat(fields: Mapping[str, Any]) -> dict[str, Any]:
    # {"generation_kwargs": {"temperature": 0}} -> {"generation_kwargs.temperature": 0}
    flat: dict[str, Any] = {}
    for key, value in fields.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


class ResultWriter:
    """Appends result rows to a JSONL file, one line each, flushed as written, so a
    killed process loses no finished row. A torn last line from an earlier crash is
    terminated before the first new row.

    Raises:
        ConfigError: the path is not a regular file, the file cannot be opened for
            appending, or a write fails (disk full): naming the file and the cause.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = check_output_path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            needs_newline = self.path.exists() and self.path.stat().st_size > 0 and not _ends_with_newline(self.path)
            self._file = open(self.path, "a", encoding="utf-8")
            if needs_newline:
                self._file.write("\n")
        except OSError as e:
            raise ConfigError(f"cannot write {self.path}: {e.strerror}") from None

    def write(self, row: dict[str, Any]) -> None:
        """Append `row` as one JSON line and flush it to the OS."""
        try:
            self._file.write(json.dumps(row, ensure_ascii=False) + "\n")
            self._file.flush()
        except OSError as e:
            raise ConfigError(f"cannot write {self.path}: {e.strerror}") from None

    def close(self) -> None:
        """Close the file."""
        with contextlib.suppress(OSError):
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
