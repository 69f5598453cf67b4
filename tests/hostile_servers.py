"""Small hostile HTTP servers on 127.0.0.1, for what a judge's server may do that a real
one rarely does: drip its answer a byte at a time, never answer, answer forever, answer
more bytes than any answer needs, answer HTML or garbage, hang up.

`HostileServer(mode)` runs in a thread with its own event loop on a free port; use it
as a context manager. Every request gets the mode's treatment.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

__all__ = ["HostileServer", "MODES"]

MODES = ("drip", "hang", "endless", "huge", "huge_declared", "html", "garbage", "hangup", "slow_headers")
_HTML = b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


class HostileServer:
    """An HTTP server that misbehaves in one way (`MODES`).

    Args:
        mode: ``drip`` (headers, then one byte every `interval_s`), ``hang`` (reads the
            request, never answers), ``endless`` (a chunked body that never ends, fast),
            ``huge`` (a 200 whose chunked body passes 40 MB), ``huge_declared`` (a
            Content-Length of 100 GB, then a trickle), ``html`` (an HTML page, 200),
            ``garbage`` (random bytes, then closed), ``hangup`` (closed at once),
            ``slow_headers`` (the status line, then one header byte every `interval_s`).
        interval_s: seconds between bytes for the slow modes.

    Attributes:
        base_url: ``http://127.0.0.1:<port>/v1``.
        requests: how many requests arrived.
    """

    def __init__(self, mode: str, interval_s: float = 0.5) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        self.mode, self.interval_s = mode, interval_s
        self.requests = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: Any = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> HostileServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the hostile server did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        async def stop() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._loop.stop()

        asyncio.run_coroutine_threadsafe(stop(), self._loop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._server.close()
        with contextlib.suppress(Exception):
            self._loop.run_until_complete(self._server.wait_closed())

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await _read_request(reader)
            self.requests += 1
            await getattr(self, f"_{self.mode}")(writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _drip(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n")
        await writer.drain()
        while True:
            writer.write(b" ")
            await writer.drain()
            await asyncio.sleep(self.interval_s)

    async def _hang(self, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(3600)

    async def _endless(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"x" * 65536
        while True:
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()

    async def _huge(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b'{"choices": [' + b" " * 1_048_000
        for _ in range(41):
            writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async def _huge_declared(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000000000\r\n\r\n")
        await writer.drain()
        while True:
            writer.write(b"x" * 1024)
            await writer.drain()
            await asyncio.sleep(self.interval_s)

    async def _html(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n%s" % (len(_HTML), _HTML))
        await writer.drain()

    async def _garbage(self, writer: asyncio.StreamWriter) -> None:
        writer.write(bytes(range(256)) * 4)
        await writer.drain()

    async def _hangup(self, writer: asyncio.StreamWriter) -> None:
        return

    async def _slow_headers(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\n")
        await writer.drain()
        while True:
            writer.write(b"X")
            await writer.drain()
            await asyncio.sleep(self.interval_s)


async def _read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip() or 0)
    if length:
        await reader.readexactly(length)
