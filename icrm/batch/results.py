"""Results files: one run's results, held by that run from its start to its end.

A results file is JSONL, one result row per line (as `icrm.rewards.result_row` makes
them), appended and flushed as rows finish; the last row per id wins. Every row carries
its run's fields and their fingerprint in ``provenance``. `ResultsFile.open` is where a
run starts, before any judgement and before any worker is launched:

- the output is a regular file or a new path: not a directory, a device, or any input
  the run reads;
- it is locked (``flock``) for the whole run, so a second run on the same file is
  refused at once, naming the process that holds it;
- an existing file must be an icrm results file: every line a result row, except rows
  torn by a killed writer;
- every row's fingerprint must be this run's (not only the last row per id): resuming
  another run's file is refused, naming the fields that differ;
- rows already final (`is_finished`) are done; every other id is judged (again).

While the run writes, the file is watched: if it vanishes or is replaced (its directory
removed, another file moved over it), the run stops with an `OutputError` — never a
summary of rows written to a file that no longer exists.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ..errors import ConfigError, OutputError
from ..safe_text import dumps

__all__ = ["ResultsFile", "read_results", "is_finished", "check_output_path", "run_fingerprint", "check_same_run",
           "FINGERPRINT_CHARS"]

FINGERPRINT_CHARS = 16
_ROW_START = '{"id": '  # how every result row's line starts (a torn one too)


def run_fingerprint(fields: Mapping[str, Any]) -> str:
    """A short hash of what defines a run (model, engine, server, rm type, method,
    templates, shots, generation kwargs, ...): 16 hex digits of the SHA-256 of their
    canonical JSON."""
    return hashlib.sha256(dumps(dict(fields), sort_keys=True).encode("utf-8")).hexdigest()[:FINGERPRINT_CHARS]


def is_finished(record: Mapping[str, Any]) -> bool:
    """Whether a result row is final: it has a verdict, or the judge's answer held none
    (``error_kind`` ``parse``: asking again at temperature 0 gives the same answer).
    Rows that failed for any other reason (the engine, the input, a bug) are redone."""
    if record.get("error_kind") == "parse":
        return True
    return record.get("error") is None and record.get("error_kind") is None


def check_output_path(output: str | Path, inputs: Iterable[Any] = ()) -> Path:
    """Check that `output` can hold a results file: a regular file or a new path, and
    none of `inputs` (paths the run reads; other values are ignored).

    Raises:
        ConfigError: `output` is a directory, a device (``/dev/full``), a FIFO, or one
            of the inputs; the message names the fix.
    """
    output = Path(output)
    if output.exists() and not output.is_file():
        kind = "a directory" if output.is_dir() else "not a regular file"
        raise ConfigError(f"output {output} is {kind}: give the path of a results file, e.g. scores.jsonl")
    for source in inputs:
        if isinstance(source, (str, Path)) and _same_file(output, Path(source)):
            raise ConfigError(f"output {output} is the input file {source}: give another output path")
    return output


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def read_results(path: str | Path) -> dict[str, dict[str, Any]]:
    """The last record per ``id`` of a JSONL results file, for reading a finished run
    (a missing file gives {}; lines that are not rows are skipped).

    Raises:
        ConfigError: `path` exists but is not a regular file.
    """
    path = check_output_path(path)
    if not path.exists():
        return {}
    last: dict[str, dict[str, Any]] = {}
    for _, record in _rows(path):
        if isinstance(record, dict) and "id" in record:
            last[str(record["id"])] = record
    return last


def _rows(path: Path) -> Iterable[tuple[str, Any]]:
    """``(line, decoded or None)`` for every non-blank line."""
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            if not line.strip():
                continue
            try:
                yield line, json.loads(line)
            except (json.JSONDecodeError, RecursionError, UnicodeEncodeError):
                yield line, None


def check_same_run(provenances: Iterable[Mapping[str, Any]], fields: Mapping[str, Any], path: str | Path,
                   restart: str) -> None:
    """Refuse to resume into results written by a different run.

    Args:
        provenances: the ``provenance`` of the existing rows (one per fingerprint is
            enough).
        fields: this run's fingerprint fields.
        path: the results file, for the message.
        restart: how the user starts over, e.g. ``pass --overwrite True``.

    Raises:
        ConfigError: naming every differing field with both values, and the ways out.
    """
    expected = run_fingerprint(fields)
    for provenance in provenances:
        if provenance.get("fingerprint") == expected:
            continue
        stored = _flat({k: v for k, v in provenance.items() if k not in ("shot_ids", "fingerprint")})
        current = _flat(fields)
        differing = sorted(k for k in set(stored) | set(current)
                           if dumps(stored.get(k), sort_keys=True) != dumps(current.get(k), sort_keys=True))
        if not differing:
            continue
        shown = "; ".join(f"{k}: {dumps(stored.get(k))} there, {dumps(current.get(k))} now" for k in differing[:8])
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


class ResultsFile:
    """A results file held by one run (see the module docstring). Open it with
    `ResultsFile.open`; close it (or leave its ``with`` block) to release it.

    Attributes:
        path: the file.
        fields: this run's fingerprint fields.
        provenance: ``fields`` with their ``fingerprint``, for every row of this run.
        records: the last existing row per id.
        done: the ids whose last row is final (`is_finished`).
    """

    def __init__(self, path: Path, fields: Mapping[str, Any], records: dict[str, dict[str, Any]], lock: Any,
                 created: bool) -> None:
        self.path, self.fields, self.records = path, dict(fields), records
        self.provenance = {**self.fields, "fingerprint": run_fingerprint(fields)}
        self.done = {i for i, record in records.items() if is_finished(record)}
        self._lock, self._created = lock, created
        self._file: Any = None
        self._identity: tuple[int, int] | None = None
        self.written = 0

    @classmethod
    def open(cls, path: str | Path, fields: Mapping[str, Any], restart: str, inputs: Sequence[Any] = (),
             overwrite: bool = False) -> ResultsFile:
        """Check, lock and read back the results file of a run that is about to start.

        Args:
            path: the results file (created if missing, with its directories).
            fields: the run's fingerprint fields.
            restart: how the user starts over, for messages (``pass --overwrite True``).
            inputs: the paths the run reads (the output may be none of them).
            overwrite: empty the file first instead of resuming it.

        Raises:
            ConfigError: a bad path, a file another process is writing (naming it), a
                file that is not an icrm results file, or one holding another run's
                results (naming the fields that differ).
        """
        path = check_output_path(path, inputs)
        created = not path.exists()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            lock = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise ConfigError(f"cannot write {path}: {e.strerror}") from None
        try:
            _acquire(lock, path)
            if overwrite:
                os.ftruncate(lock, 0)
            records, provenances = _read_back(path, restart)
            check_same_run(provenances, fields, path, restart)
        except BaseException:
            os.close(lock)
            if created:
                with contextlib.suppress(OSError):
                    if path.stat().st_size == 0:
                        path.unlink()
            raise
        return cls(path, fields, records, lock, created)

    def write(self, row: Mapping[str, Any]) -> None:
        """Append `row` as one JSON line and flush it to the OS.

        Raises:
            OutputError: the file vanished or was replaced since the run opened it.
            ConfigError: the write failed (disk full), naming the file and the cause.
        """
        if self._file is None:
            self._open_for_append()
        self._check_still_there()
        try:
            self._file.write(dumps(row) + "\n")
            self._file.flush()
        except OSError as e:
            raise ConfigError(f"cannot write {self.path}: {e.strerror}") from None
        self.written += 1

    def _open_for_append(self) -> None:
        try:
            needs_newline = self.path.stat().st_size > 0 and not _ends_with_newline(self.path)
            self._file = open(self.path, "a", encoding="utf-8")
            if needs_newline:  # a torn last row from an earlier crash: end it first
                self._file.write("\n")
        except OSError as e:
            raise ConfigError(f"cannot write {self.path}: {e.strerror}") from None
        status = os.fstat(self._file.fileno())
        self._identity = (status.st_dev, status.st_ino)

    def _check_still_there(self) -> None:
        try:
            status = os.stat(self.path)
            here = (status.st_dev, status.st_ino)
        except OSError:
            here = None
        if here != self._identity or os.fstat(self._file.fileno()).st_nlink == 0:
            what = "was removed (or its directory was)" if here is None else "was replaced by another file"
            raise OutputError(f"the results file {self.path} {what} during the run; the {self.written} row(s) this "
                              "run wrote there are lost: re-run the same command to redo them")

    def check(self) -> None:
        """Raise `OutputError` if the file vanished or was replaced since rows were
        written to it (the end-of-run check)."""
        if self._file is not None:
            self._check_still_there()

    def close(self) -> None:
        """Close the file and release the lock. Idempotent."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        if self._lock is not None:
            with contextlib.suppress(OSError):
                os.close(self._lock)
            self._lock = None

    def __enter__(self) -> ResultsFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _acquire(fd: int, path: Path) -> None:
    """An exclusive, non-blocking ``flock`` on the open results file.

    Raises:
        ConfigError: another process holds it, named by pid and command line.
    """
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _lock_holder(os.fstat(fd).st_ino)
        raise ConfigError(f"{path} is being written by another icrm run ({holder}); wait for it to end, or give "
                          "another output") from None


def _lock_holder(inode: int) -> str:
    """Who holds a flock on `inode`, from /proc/locks (Linux): ``pid N: command``."""
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return "another process"
    for line in lines:
        parts = line.split()
        if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5].rsplit(":", 1)[-1] == str(inode):
            pid = parts[4]
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                command = "?"
            return f"pid {pid}: {command.strip()[:200]}"
    return "another process"


def _read_back(path: Path, restart: str) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """The last row per id and one provenance per fingerprint, from every line.

    Raises:
        ConfigError: a line that is neither a result row nor a torn one: the file is not
            an icrm results file.
    """
    last: dict[str, dict[str, Any]] = {}
    provenances: dict[Any, dict[str, Any]] = {}
    for number, (line, record) in enumerate(_rows(path), 1):
        if record is None and line.startswith(_ROW_START):
            continue  # a row torn by a killed writer
        provenance = record.get("provenance") if isinstance(record, dict) and "id" in record else None
        if not isinstance(provenance, dict):
            raise ConfigError(f"{path} is not an icrm results file (line {number} is not a result row with run "
                              f"provenance): {restart}, or give another output")
        last[str(record["id"])] = record  # type: ignore[index]
        provenances.setdefault(provenance.get("fingerprint"), provenance)
    return last, list(provenances.values())


def _ends_with_newline(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(-1, 2)
        return f.read(1) == b"\n"
