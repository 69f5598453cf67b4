"""Result files: one JSONL line per result, appended and flushed; the last line per id
wins. A file describes one run: its rows carry the run's fields and fingerprint, and a
run with other fields refuses to resume into it."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["ResultWriter", "read_results", "load_done_ids", "is_finished", "check_output_path", "run_fingerprint",
           "check_same_run"]

FINGERPRINT_CHARS = 16


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
    return hashlib.sha256(canonical.encode()).hexdigest()[:FINGERPRINT_CHARS]


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
