"""Workers: local OpenAI-compatible servers started as subprocesses.

One launcher serves every local engine (llama.cpp, vLLM, SGLang): a free port on
127.0.0.1, the server's output in a log file, readiness by polling, fast failure with the
log tail when the process dies, and the whole process group killed on `close()` or at
interpreter exit. Each server runs under a small guard process (`icrm.engines.guard`)
that kills the group within a fraction of a second when the launching process dies,
however it dies and from whichever thread it launched the worker.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx

from ..errors import EngineConnectionError, EngineError

__all__ = ["Worker", "free_port", "log_tail"]

logger = logging.getLogger(__name__)

LOG_TAIL_LINES = 50
POLL_INTERVAL_S = 0.25
STOP_GRACE_S = 5.0

_live_workers: set[Worker] = set()
_GUARD = Path(__file__).with_name("guard.py")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def log_tail(path: str, lines: int = LOG_TAIL_LINES) -> str:
    """The last `lines` lines of the file at `path` ('' if it cannot be read)."""
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


class Worker:
    """A local server subprocess that speaks the OpenAI API under ``/v1``.

    Args:
        name: the engine name, used in messages and the log file name.
        build_argv: called with the chosen port, returns the server's command line.
        env: extra environment variables for the server (merged over ``os.environ``).
        startup_timeout_s: seconds to wait for readiness before giving up.
        host: the address the server binds; always loopback unless told otherwise.

    `start()` launches it; `close()` kills its process group. Usable as a context manager.
    """

    def __init__(
        self,
        name: str,
        build_argv: Callable[[int], Sequence[str]],
        *,
        env: Mapping[str, str] | None = None,
        startup_timeout_s: float = 600.0,
        host: str = "127.0.0.1",
    ) -> None:
        self.name = name
        self.host = host
        self.port = free_port(host)
        self.argv = [str(a) for a in build_argv(self.port)]
        self.env = {**os.environ, **(env or {})}
        self.startup_timeout_s = startup_timeout_s
        fd, self.log_path = tempfile.mkstemp(prefix=f"icrm-{name}-", suffix=".log")
        os.close(fd)
        self._process: subprocess.Popen[bytes] | None = None  # the guard, which leads the group
        self._failed = False  # keep the log of a worker that failed: errors point to it

    @property
    def pid(self) -> int | None:
        """The server process's id (None before `start()`), e.g. to read its memory."""
        if self._process is None:
            return None
        try:  # the guard's one child is the server
            children = Path(f"/proc/{self._process.pid}/task/{self._process.pid}/children").read_text().split()
        except OSError:
            children = []
        return int(children[0]) if children else self._process.pid

    @property
    def base_url(self) -> str:
        """The server's OpenAI base URL, e.g. ``http://127.0.0.1:41234/v1``."""
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> str:
        """Launch the server and wait until ``GET /v1/models`` answers 200.

        Returns:
            The base URL.

        Raises:
            EngineError: the process exited during start-up, or was not ready within
                `startup_timeout_s` seconds; the message holds the last 50 log lines.
        """
        logger.info("starting %s worker on port %d (log: %s)", self.name, self.port, self.log_path)
        logger.debug("%s worker command: %s", self.name, " ".join(self.argv))
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-I", str(_GUARD), str(os.getpid()), "--", *self.argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,  # its own process group, so close() kills all of it
            )
        _register_exit_hook()
        _live_workers.add(self)
        deadline = time.monotonic() + self.startup_timeout_s
        with httpx.Client(timeout=2.0) as client:
            while True:
                self.check_alive()
                try:
                    if client.get(f"{self.base_url}/models").status_code == 200:
                        logger.info("%s worker ready at %s", self.name, self.base_url)
                        return self.base_url
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    self._failed = True
                    self.close()
                    raise EngineError(
                        f"{self.name} worker was not ready after {self.startup_timeout_s:.0f} s "
                        f"(log: {self.log_path}); last log lines:\n{log_tail(self.log_path)}"
                    )
                time.sleep(POLL_INTERVAL_S)

    def check_alive(self) -> None:
        """Raise if the process has exited.

        Raises:
            EngineError: with the exit status and the last 50 log lines.
        """
        if self._process is not None and self._process.poll() is not None:
            code = self._process.returncode
            self._failed = True
            _live_workers.discard(self)
            _kill_group(self._process)  # the guard died alone: take down what it led
            raise EngineConnectionError(
                f"{self.name} worker exited with status {code} (log: {self.log_path}); "
                f"last log lines:\n{log_tail(self.log_path)}",
                retryable=False, engine=self.name, exit_status=code, log_path=self.log_path,
            )

    def disown(self) -> None:
        """Forget the server without stopping it: in a forked child, the worker is still
        the parent's to stop (the child only talks to it by address)."""
        self._process = None
        self._failed = True  # keep the log: it is the parent's
        _live_workers.discard(self)

    def close(self) -> None:
        """Stop the server: SIGTERM to its process group, SIGKILL after 5 s. Idempotent.

        The log file is removed unless the worker failed (errors name its path).
        """
        process, self._process = self._process, None
        _live_workers.discard(self)
        if process is not None:  # the group outlives a guard killed alone: stop it either way
            _kill_group(process)
            logger.info("stopped %s worker on port %d", self.name, self.port)
        if not self._failed:
            with contextlib.suppress(OSError):
                os.unlink(self.log_path)

    def __enter__(self) -> Worker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL after `STOP_GRACE_S`, to the group the guard leads — also
    when the guard itself is gone and only its server is left in the group."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        if not _wait_for_group(process, STOP_GRACE_S):
            continue
        return


def _wait_for_group(process: subprocess.Popen[bytes], seconds: float) -> bool:
    """Whether every process of the group is gone within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        process.poll()
        try:
            os.killpg(process.pid, 0)
        except (ProcessLookupError, PermissionError):
            return True
        time.sleep(0.05)
    return False


def _close_live_workers() -> None:
    for worker in list(_live_workers):
        worker.close()


_exit_hook_registered = False


def _register_exit_hook() -> None:
    # At the first launch, not at import: importing icrm registers nothing.
    global _exit_hook_registered
    if not _exit_hook_registered:
        atexit.register(_close_live_workers)
        _exit_hook_registered = True
