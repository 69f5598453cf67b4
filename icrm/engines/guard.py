"""Runs one worker server and takes it down with the process that launched it.

Usage (by `icrm.engines.worker.Worker`, never by hand):
``python -I guard.py PARENT_PID -- SERVER ARGV...``

The guard leads the worker's process group and starts the server in it. It polls its
parent every `POLL_S` seconds: when the parent is gone — killed with SIGKILL, crashed,
or exited without closing its workers — it SIGKILLs the whole group (the server and any
processes the server started, such as vLLM's engine core). A kernel parent-death signal
cannot do this on every launch path: it fires when the launching *thread* exits, and a
server that handles SIGTERM gracefully keeps generating for minutes.

It exits with the server's exit status (128 + N for a server killed by signal N).
Standard library only, run by path, so it starts in milliseconds without importing icrm.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

POLL_S = 0.2


def main(argv: list[str]) -> int:
    parent, separator, command = int(argv[0]), argv[1], argv[2:]
    if separator != "--" or not command:
        print("usage: guard.py PARENT_PID -- ARGV...", file=sys.stderr)
        return 2
    # SIGTERM/SIGINT reach the whole group (the server gets them too): wait for it to exit.
    signal.signal(signal.SIGTERM, lambda *_: None)
    signal.signal(signal.SIGINT, lambda *_: None)
    server = subprocess.Popen(command)
    while True:
        code = server.poll()
        if code is not None:
            return code if code >= 0 else 128 - code
        if os.getppid() != parent:  # reparented: the launching process is gone
            os.killpg(0, signal.SIGKILL)
        time.sleep(POLL_S)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
