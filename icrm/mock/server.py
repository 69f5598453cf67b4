"""Running the mock server: in a background thread (`MockServer`) or in the foreground
(`serve_mock`, behind ``icrm mock``)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from ..errors import ConfigError
from ..logs import enable_stderr_logging
from .app import create_mock_app
from .config import MockConfig

__all__ = ["MockServer", "serve_mock"]

STARTUP_TIMEOUT_S = 10.0


class MockServer:
    """The mock LLM server on a free 127.0.0.1 port, in a background thread.

    Args:
        config: a YAML path, a dict of the same shape, or a `MockConfig`.
        host: the address to bind (loopback by default).

    Use as ``with MockServer(config) as base_url:`` — entering starts it and returns
    once ``/health`` answers, with the OpenAI base URL (``http://127.0.0.1:P/v1``);
    leaving stops it. `requests()` returns the request log.

    Raises:
        ConfigError: an invalid config (naming the rule index and key).
    """

    def __init__(self, config: str | Path | Mapping[str, Any] | MockConfig, host: str = "127.0.0.1") -> None:
        self.config = MockConfig.load(config)
        self.host = host
        self.port: int | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL, ``http://HOST:PORT/v1`` (for the anthropic SDK, drop ``/v1``)."""
        if self.port is None:
            raise ConfigError("the mock server is not running: use it as a context manager or call start()")
        return f"http://{self.host}:{self.port}/v1"

    @property
    def url(self) -> str:
        """The server root, ``http://HOST:PORT``."""
        return self.base_url.removesuffix("/v1")

    def start(self) -> str:
        """Start serving and wait until ``/health`` answers; returns `base_url`.

        Raises:
            RuntimeError: the server did not answer within 10 s.
        """
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        if self.config.debug:
            enable_stderr_logging("INFO")
        level = "debug" if self.config.debug else "warning"
        self._server = uvicorn.Server(uvicorn.Config(create_mock_app(self.config), log_level=level, access_log=False))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, name="icrm-mock", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return self.base_url
            except httpx.HTTPError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"the mock server did not answer /health within {STARTUP_TIMEOUT_S:.0f} s")

    def requests(self) -> list[dict[str, Any]]:
        """The requests received so far, oldest first: ``{"path", "query", "headers",
        "body", "time"}`` each."""
        return httpx.get(f"{self.url}/mock/requests", timeout=10).json()["requests"]

    def stop(self) -> None:
        """Stop serving and join the thread. Idempotent."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve_mock(config: str | Path | Mapping[str, Any] | MockConfig, host: str = "127.0.0.1",
               port: int | None = None, debug: bool | None = None) -> None:
    """Serve in the foreground until Ctrl-C / SIGTERM (then shut down cleanly).

    Args:
        config: as `MockServer`.
        host: the address to bind.
        port: overrides the config's ``port`` (default 11434).
        debug: overrides the config's ``debug``.

    Raises:
        ConfigError: an invalid config.
    """
    cfg = MockConfig.load(config)
    if debug is not None:
        cfg = cfg.model_copy(update={"debug": debug})
    if cfg.debug:
        enable_stderr_logging("INFO")
    level = "debug" if cfg.debug else "info"
    uvicorn.run(create_mock_app(cfg), host=host, port=cfg.port if port is None else port, log_level=level)
