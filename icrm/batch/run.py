"""Running async work over many items with bounded concurrency."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any, TypeVar

from ..errors import ConfigError

__all__ = ["run_batch", "DEFAULT_CONCURRENCY"]

# Judgements in flight at most, unless told otherwise (every surface's default).
DEFAULT_CONCURRENCY = 8

T = TypeVar("T")
R = TypeVar("R")


async def run_batch(
    items: Iterable[T],
    work: Callable[[T], Awaitable[R]],
    concurrency: int,
    warmup: int = 1,
) -> AsyncIterator[tuple[T, R]]:
    """Run `work` on every item with at most `concurrency` in flight; yield as they finish.

    `concurrency` worker tasks pull items from one shared iterator, so a streamed input
    is never loaded whole and each item costs O(1) scheduling. The first `warmup` items
    run alone before the rest fan out, so a server with automatic prefix caching has the
    shared prefix (instruction + shots) cached before the parallel requests arrive.

    Args:
        items: any iterable, consumed lazily.
        work: an async function of one item; it should return its errors, not raise
            them. A raised exception, or one from `items`, stops the intake of new
            items; the items in flight still finish and are yielded; then the first
            exception is re-raised here, so nothing finished is lost.
        concurrency: maximum items in flight (>= 1).
        warmup: items to run alone first (0 = none).

    Yields:
        ``(item, result)`` in completion order.

    Raises:
        ConfigError: `concurrency` < 1.
    """
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
        raise ConfigError(f"concurrency must be a whole number >= 1, got {concurrency!r}")
    iterator = iter(items)
    failures: list[BaseException] = []  # the first error stops intake; in-flight work still finishes

    def next_item() -> tuple[bool, Any]:
        if failures:
            return False, None
        try:
            return True, next(iterator)  # runs to completion between awaits: safe to share
        except StopIteration:
            return False, None
        except Exception as error:  # a broken source: stop pulling, keep what is in flight
            failures.append(error)
            return False, None

    for _ in range(warmup):
        more, item = next_item()
        if not more:
            break
        yield item, await work(item)
    else:
        # Bounded, so finished results wait for the consumer instead of piling up.
        queue: asyncio.Queue[tuple[T, R] | object] = asyncio.Queue(maxsize=concurrency)

        async def worker() -> None:
            try:
                while True:
                    more, item = next_item()
                    if not more:
                        break
                    await queue.put((item, await work(item)))
            except Exception as error:  # work should return its errors; one that raises
                failures.append(error)  # stops intake, and the others drain. Not
            await queue.put(_WORKER_DONE)  # CancelledError: then the consumer is gone.

        workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
        try:
            running = len(workers)
            while running:
                entry = await queue.get()
                if entry is _WORKER_DONE:
                    running -= 1
                else:
                    yield entry  # type: ignore[misc]
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
    if failures:
        raise failures[0]


_WORKER_DONE = object()
