"""A private event loop on a daemon thread, so the sync API can drive async engines
from any caller, including one that already runs a loop (Jupyter)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class LoopThread:
    """Runs coroutines on one event loop in a background thread."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="icrm-loop", daemon=True)
        self._thread.start()

    @property
    def closed(self) -> bool:
        """True once `close()` has run."""
        return self._loop.is_closed()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run `coro` on the loop and return its result (or raise its exception).

        Raises:
            ConfigError: the loop is closed (its owner was closed).
        """
        if self.closed:
            coro.close()
            raise ConfigError("this object is closed; create a new one")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def iterate(self, agen: AsyncIterator[T]) -> Iterator[T]:
        """Iterate an async generator on the loop from synchronous code, item by item.

        Closing the returned iterator early closes `agen` on the loop.
        """
        async def next_item() -> T:
            return await agen.__anext__()

        async def close() -> None:
            await agen.aclose()

        try:
            while True:
                try:
                    yield self.run(next_item())
                except StopAsyncIteration:
                    return
        finally:
            if not self.closed:
                self.run(close())

    def close(self) -> None:
        """Stop the loop and join its thread. Idempotent."""
        if self.closed:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
