"""Runs one worker server and takes it down with the process that launched it.

Usage (by `icrm.engines.worker.Worker`, never by hand):
``python -I guard.py PARENT_PID -- SERVER ARGV...``

The guard leads the worker's process group and starts the server in it. It polls its
parent every `POLL_S` seconds: when the parent is gone — killed with SIGKILL, crashed,
or exited without closing its workers — it SIGKILLs the whole group (the server and any
processes the server started, such as vLLM's engine core). A kernel parent-death signal
cannot do this on every launch path: it fires when the launching *thread* exits, and a
server that handles SIGTERM gracefully keeps generating for minutes.

The server itself gets a parent-death signal (Linux ``PR_SET_PDEATHSIG``, SIGKILL) set
before it starts: the guard is single-threaded, so the signal fires when the guard dies,
even by ``kill -9``, and the server goes with it.

It exits with the server's exit status (128 + N for a server killed by signal N).
Standard library only, run by path, so it starts in milliseconds without importing icrm.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import time

POLL_S = 0.2
PR_SET_PDEATHSIG = 1


def _die_with_the_guard() -> None:
    """In the server, before it starts: SIGKILL when the guard (its parent) dies."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the guard's own watch still applies
        pass


def main(argv: list[str]) -> int:
    parent, separator, command = int(argv[0]), argv[1], argv[2:]
    if separator != "--" or not command:
        print("usage: guard.py PARENT_PID -- ARGV...", file=sys.stderr)
        return 2
    # SIGTERM/SIGINT reach the whole group (the server gets them too): wait for it to exit.
    signal.signal(signal.SIGTERM, lambda *_: None)
    signal.signal(signal.SIGINT, lambda *_: None)
    server = subprocess.Popen(command, preexec_fn=_die_with_the_guard)
    while True:
        code = server.poll()
        if code is not None:
            return code if code >= 0 else 128 - code
        if os.getppid() != parent:  # reparented: the launching process is gone
            os.killpg(0, signal.SIGKILL)
        time.sleep(POLL_S)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
