"""What keeps the reward service up under load: admission before work, and a body cap.

`Admission` decides before any judgement starts: a request that cannot be served (too
many items, or the queue is full) is refused at once and does no work. `BodyLimit`
reads at most ``max_bytes`` of a body, declared or chunked, and answers 413 past it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

__all__ = ["Admission", "Refused", "BodyLimit"]

RETRY_AFTER_S = 1


class Refused(Exception):
    """A request the service will not start: its status, name and description."""

    def __init__(self, status: int, name: str, description: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(description)
        self.status, self.name, self.description, self.headers = status, name, description, headers or {}


class Admission:
    """Bounded concurrency with a bounded queue, counted in judgements.

    Args:
        max_concurrency: judgements running at once.
        max_queue: judgements allowed to wait for a slot.
    """

    def __init__(self, max_concurrency: int, max_queue: int) -> None:
        self._slots = asyncio.Semaphore(max_concurrency)
        self.capacity = max_concurrency + max_queue
        self.admitted = 0

    @contextlib.asynccontextmanager
    async def admit(self, cost: int, what: str = "items") -> AsyncIterator[None]:
        """Hold `cost` judgements' places for the duration of a request (`what`: the
        request field that asks for them, named when refused).

        Raises:
            Refused: 422 when `cost` exceeds the whole capacity, 503 + Retry-After when
                the places are taken — in both cases before any work starts.
        """
        if cost > self.capacity:
            raise Refused(422, "Unprocessable Entity",
                          f"{what}: {cost} judgements exceed this server's capacity of {self.capacity} per request "
                          "(max_concurrency + max_queue); split the request")
        if self.admitted + cost > self.capacity:
            raise Refused(503, "Service Unavailable", "the server is at capacity; retry later",
                          {"Retry-After": str(RETRY_AFTER_S)})
        self.admitted += cost
        try:
            yield
        finally:
            self.admitted -= cost

    async def run(self, work: Callable[[], Awaitable[Any]]) -> Any:
        """Await `work()` inside one of the running slots."""
        async with self._slots:
            return await work()


class BodyLimit:
    """ASGI middleware: 413 for a body over `max_bytes`, declared (Content-Length) or
    streamed (chunked). The body is read here, up to the cap, then replayed to the app,
    so the app never sees a partial body."""

    def __init__(self, app: Any, max_bytes: int, too_large: Callable[[int], Any]) -> None:
        self.app, self.max_bytes, self.too_large = app, max_bytes, too_large

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self.too_large(self.max_bytes)(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message]), send)
                return
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                await self.too_large(self.max_bytes)(scope, receive, send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        await self.app(scope, _replay([{"type": "http.request", "body": b"".join(chunks), "more_body": False}],
                                      receive), send)


def _replay(messages: list[dict[str, Any]], receive: Any = None) -> Callable[[], Awaitable[dict[str, Any]]]:
    queue = list(messages)

    async def replayed() -> dict[str, Any]:
        if queue:
            return queue.pop(0)
        if receive is not None:  # after the body: wait for a disconnect, as the server would
            return await receive()
        return {"type": "http.disconnect"}
    return replayed
