"""`LoopThread`: shutting down what still runs on its loop."""

import asyncio
import threading

from icrm._loop import LoopThread


def test_close_cancels_tasks_still_running_and_lets_them_unwind():
    loop = LoopThread()
    unwound = threading.Event()

    async def forever():
        try:
            await asyncio.sleep(3600)
        finally:
            unwound.set()  # a writer would close its file here

    async def start():
        asyncio.ensure_future(forever())  # left behind, like an abandoned judge_iter's workers

    loop.run(start())
    loop.close()
    assert unwound.is_set()
    assert loop.closed


def test_close_finalizes_a_suspended_async_generator():
    loop = LoopThread()
    finalized = threading.Event()

    async def stream():
        try:
            for i in range(10):
                yield i
        finally:
            finalized.set()

    items = loop.iterate(stream())
    assert next(items) == 0  # suspended mid-way, never closed by its user
    loop.close()
    assert finalized.is_set()
