"""Helpers for tests that run the real `icrm` command and `icrm serve` as subprocesses."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from icrm.engines.worker import free_port
from tests.conftest import ROOT

INDIVIDUAL = {"intent": "i", "checklist": "c", "strengths": "s", "weaknesses": "w"}
PAIRWISE = {"analysis of A": "a", "analysis of B": "b", "reason of A=B": "", "reason of A>B": "", "reason of B>A": ""}


def feedback(score: object = 7) -> str:
    """A full individual feedback object, as a judge writes it."""
    return json.dumps({**INDIVIDUAL, "score": score})


def pair_feedback(choice: str = "B+") -> str:
    """A full pairwise feedback object."""
    return json.dumps({**PAIRWISE, "choice": choice})


def icrm_cli(*args: object, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``python -m icrm.cli ARGS`` and return the finished process."""
    return subprocess.run([sys.executable, "-m", "icrm.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout, env={**os.environ, **(env or {})})


def write_jsonl(path: Path, records: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def one_line_error(result: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """Assert the command failed with `code` and exactly one ``icrm: error:`` line; return it."""
    assert result.returncode == code, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.strip().splitlines() if line.startswith("icrm:")]
    assert len(lines) == 1 and lines[0].startswith("icrm: error: "), result.stderr
    return lines[0]


class Service:
    """``icrm serve`` as a subprocess on a free port, polled until /health answers."""

    def __init__(self, *flags: object, env: dict[str, str] | None = None, ready: bool = True) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([sys.executable, "-m", "icrm.cli", "serve", "--port", str(self.port),
                                         *map(str, flags)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        text=True, env={**os.environ, **(env or {})})
        deadline = time.monotonic() + 60
        while ready:
            assert self.process.poll() is None, self.process.stderr.read()
            try:
                httpx.get(f"{self.url}/health", timeout=2)
                return
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "service did not start"
                time.sleep(0.05)

    def post(self, path: str, body: object, **kwargs: object) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", json=body, timeout=60, **kwargs)

    def stop(self) -> str:
        """Stop the service; returns its stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            _, stderr = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate()
        return stderr
