"""The HTTP side of every SDK engine: a bounded response body and a deadline per request.

The SDKs' own ``timeout`` bounds each read, not the request: a server that drips one byte
every half second never trips it. `within` bounds the whole request (connect, wait,
body). `bounded_http_client` gives an SDK an HTTP client whose response bodies stop at
`MAX_RESPONSE_BYTES`, declared or streamed, so a runaway server cannot fill memory.
Both are engine errors of their own kind, never a hang or an ``internal`` error.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

from ..errors import EngineError, EngineTimeoutError

__all__ = ["MAX_RESPONSE_BYTES", "ResponseTooLarge", "bounded_http_client", "within"]

T = TypeVar("T")

# A judge's answer, even with logprobs and n samples, is a few hundred KB at most.
MAX_RESPONSE_BYTES = 32 * 1024 * 1024


class ResponseTooLarge(Exception):
    """A response body over the bound (raised inside the SDK's HTTP client)."""


async def within(awaitable: Awaitable[T], timeout_s: float, engine: str) -> T:
    """Await `awaitable` for at most `timeout_s` seconds in all.

    Raises:
        EngineTimeoutError: the request took longer (retryable, like any timeout).
        EngineError: the response body was over `MAX_RESPONSE_BYTES`.
    """
    try:
        return await asyncio.wait_for(awaitable, timeout_s)
    except asyncio.TimeoutError:
        raise EngineTimeoutError(f"{engine}: no complete answer within {timeout_s:g} s (the whole request: connect, "
                                 "wait and body; --timeout)", engine=engine) from None
    except ResponseTooLarge as e:
        raise EngineError(f"{engine}: {e}", engine=engine) from None


def bounded_http_client(default_client: type, max_bytes: int = MAX_RESPONSE_BYTES) -> Any:
    """An instance of an SDK's ``DefaultAsyncHttpxClient`` (its httpx flavour, its
    connection limits) whose response bodies are cut at `max_bytes`: a larger declared
    ``Content-Length``, or more bytes streamed, raise `ResponseTooLarge`."""
    stream_class = _bounded_stream_class(_httpx_module(default_client))

    async def bound(response: Any) -> None:
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise ResponseTooLarge(f"the server's answer declares {int(declared):,} bytes, over the "
                                   f"{max_bytes:,}-byte bound")
        response.stream = stream_class(response.stream, max_bytes)

    return default_client(event_hooks={"response": [bound]})


def _httpx_module(client_class: type) -> Any:
    base = next(c for c in client_class.__mro__ if c.__name__ == "AsyncClient")
    return importlib.import_module(base.__module__.split(".")[0])


@functools.cache
def _bounded_stream_class(httpx: Any) -> type:
    class BoundedStream(httpx.AsyncByteStream):  # type: ignore[misc,name-defined]
        def __init__(self, inner: Any, limit: int) -> None:
            self._inner, self._limit = inner, limit

        async def __aiter__(self) -> AsyncIterator[bytes]:
            total = 0
            async for chunk in self._inner:
                total += len(chunk)
                if total > self._limit:
                    raise ResponseTooLarge(f"the server's answer passed the {self._limit:,}-byte bound")
                yield chunk

        async def aclose(self) -> None:
            await self._inner.aclose()

    return BoundedStream
