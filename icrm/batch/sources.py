"""Reading input rows from files, saved datasets and the 🤗 hub, streamed."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..safe_text import dumps

__all__ = ["read_rows", "jsonl_rows", "BadRow", "row_id", "ROW_ID_CHARS", "bad_row_id", "repeated_id", "is_reserved_id"]

ROW_ID_CHARS = 16
PARQUET_BATCH_ROWS = 1024
# icrm's own ids for rows it cannot take: ``line:<n>`` (an unreadable line), ``<id>@line:<n>``
# (a repeated id), and Ray's ``line:<16 hex>`` and ``<id>@dup:<n>``. A user's id of these
# forms is refused, so an icrm id can never be a user's.
_UNDECODED = re.compile("[\udc80-\udcff]")  # bytes that were not UTF-8, as surrogateescape keeps them
_RESERVED = re.compile(r"(?:^line:(?:\d+|[0-9a-f]{16})|@(?:line|dup):\d+)\Z")


def row_id(row: dict[str, Any]) -> str:
    """A stable id for a row without one: the first 16 hex digits of the SHA-256 of its
    canonical JSON (sorted keys), the same in every run and process."""
    return hashlib.sha256(dumps(row, sort_keys=True).encode("utf-8")).hexdigest()[:ROW_ID_CHARS]


def bad_row_id(line: int | str) -> str:
    """The id of an unreadable row: ``line:<n>`` (Ray: the line's hash)."""
    return f"line:{line}"


def repeated_id(rid: str, where: int | str, mark: str = "line") -> str:
    """The id of a row repeating `rid`: ``<id>@line:<n>`` (Ray: ``<id>@dup:<n>``)."""
    return f"{rid}@{mark}:{where}"


def is_reserved_id(rid: str) -> bool:
    """Whether `rid` has the form of icrm's own ids (`bad_row_id`, `repeated_id`).

    >>> is_reserved_id("line:3"), is_reserved_id("a@line:7"), is_reserved_id("line 3"), is_reserved_id("x@dup:2")
    (True, True, False, True)
    """
    return _RESERVED.search(rid) is not None


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
        return bad_row_id(self.line)


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
    except RecursionError:
        raise InputError(f"{path} is nested too deeply to read as JSON") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read it ({e.strerror})") from None
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
            yield from jsonl_rows(f, str(path))
    return rows()


def jsonl_rows(lines: Iterable[str], where: str) -> Iterator[dict[str, Any] | BadRow]:
    """The rows of JSONL text, one per non-blank line: a dict, or a `BadRow` naming
    `where` and the line (not UTF-8, not JSON, not an object, nested too deeply).

    `lines` come from a text reader with ``errors="surrogateescape"``, so bytes that are
    not UTF-8 reach here and make their line a `BadRow`, never the end of the input.
    """
    for line_no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        undecodable = _UNDECODED.search(line)
        if undecodable:
            byte = ord(undecodable.group()) - 0xDC00
            yield BadRow(line_no, f"{where} line {line_no} is not UTF-8 text (byte 0x{byte:02x} at column "
                                  f"{undecodable.start() + 1})")
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            yield BadRow(line_no, f"{where} line {line_no} is not valid JSON: {e.msg} (column {e.colno})")
            continue
        except RecursionError:
            yield BadRow(line_no, f"{where} line {line_no} is nested too deeply to read as JSON")
            continue
        if not isinstance(row, dict):
            yield BadRow(line_no, f"{where} line {line_no}: expected a JSON object, got {type(row).__name__}")
            continue
        yield row


def _hub_rows(name: str, split: str) -> Iterator[dict[str, Any]]:
    import datasets

    try:
        yield from datasets.load_dataset(name, split=split, streaming=True)
    except Exception as e:  # the hub client raises many types; all mean "cannot load it"
        raise InputError(f"{name}: not a local file, and loading it from the 🤗 hub failed: {e}") from None
