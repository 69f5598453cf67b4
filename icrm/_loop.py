"""A private event loop on a daemon thread. Every engine client lives on it, so the
sync API works from any thread (including one that runs a loop: Jupyter) and the async
API from any event loop (an RL trainer's, ``asyncio.run`` called repeatedly): work is
handed to this loop and awaited from the caller's."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar

from .errors import ConfigError

T = TypeVar("T")

# How long an interrupted call may take to unwind (close its files, its HTTP requests).
CANCEL_TIMEOUT_S = 10.0


async def _cancel_pending() -> None:
    current = asyncio.current_task()
    tasks = [t for t in asyncio.all_tasks() if t is not current]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


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
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except BaseException:
            # Ctrl-C or SIGTERM (SystemExit) while waiting: the coroutine still runs on
            # the loop. Cancel it and let it unwind before the caller closes the clients
            # it uses, so it neither records spurious request errors nor dies mid-write.
            if not future.done():
                self._cancel_all()
            raise

    def is_current(self) -> bool:
        """True when called from this loop's own thread (inside its coroutines)."""
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False

    async def arun(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await `coro` on this loop from any other event loop (or directly when
        already on it), so clients bound to this loop work from every caller.

        Cancelling the awaiting task cancels `coro` on this loop.

        Raises:
            ConfigError: the loop is closed.
        """
        if self.is_current():
            return await coro
        if self.closed:
            coro.close()
            raise ConfigError("this object is closed; create a new one")
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self._loop))

    async def aiterate(self, agen: AsyncIterator[T]) -> AsyncIterator[T]:
        """Iterate an async generator that lives on this loop from any other loop."""
        if self.is_current():
            async for item in agen:
                yield item
            return

        async def next_item() -> T:
            return await agen.__anext__()

        try:
            while True:
                try:
                    yield await self.arun(next_item())
                except StopAsyncIteration:
                    return
        finally:
            if not self.closed:
                await self.arun(agen.aclose())

    def _cancel_all(self) -> None:
        # Cancel every task on the loop and wait (at most CANCEL_TIMEOUT_S) for them to unwind.
        if not self.closed:
            self._run_briefly(_cancel_pending())

    def _run_briefly(self, coro: Coroutine[Any, Any, None]) -> None:
        # Shutdown steps: a coroutine that will not finish must not hang the caller,
        # and close() stops the loop regardless.
        try:
            asyncio.run_coroutine_threadsafe(coro, self._loop).result(CANCEL_TIMEOUT_S)
        except concurrent.futures.TimeoutError:  # the builtin TimeoutError only from 3.11 on
            pass

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
        """Cancel what still runs, finalize async generators, stop the loop and join its
        thread. Idempotent."""
        if self.closed:
            return
        self._cancel_all()
        self._run_briefly(self._loop.shutdown_asyncgens())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
