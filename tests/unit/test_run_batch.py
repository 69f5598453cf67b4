"""`run_batch` scheduling, without sockets."""

import asyncio

import pytest

from icrm.batch import run_batch


async def _collect(agen, stop_after=None):
    out = []
    async for entry in agen:
        out.append(entry)
        if stop_after is not None and len(out) >= stop_after:
            break
    return out


def test_every_item_once_with_bounded_concurrency():
    in_flight = peak = 0

    async def work(x):
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.001 * (x % 3))
        in_flight -= 1
        return x * 2

    results = asyncio.run(_collect(run_batch(range(50), work, concurrency=4)))
    assert sorted(results) == [(x, 2 * x) for x in range(50)]
    assert peak == 4


def test_items_are_pulled_lazily():
    pulled = []

    def items():
        for x in range(1000):
            pulled.append(x)
            yield x

    async def work(x):
        return x

    asyncio.run(_collect(run_batch(items(), work, concurrency=3), stop_after=5))
    assert len(pulled) < 20  # not the whole input


def test_stopping_early_does_not_hang():
    async def work(x):
        return x  # finishes at once, so the result queue fills up

    async def main():
        return await asyncio.wait_for(_collect(run_batch(range(10_000), work, concurrency=8), stop_after=3), 5)

    assert len(asyncio.run(main())) == 3


def test_a_raised_error_stops_the_batch_and_surfaces():
    async def work(x):
        if x == 7:
            raise RuntimeError("item 7 broke")
        await asyncio.sleep(0)
        return x

    with pytest.raises(RuntimeError, match="item 7 broke"):
        asyncio.run(_collect(run_batch(range(100), work, concurrency=3)))
