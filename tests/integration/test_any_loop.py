"""An ICRM works from any thread and any event loop, repeatedly: RL trainers call reward
functions from their own loops and threads."""

import asyncio
import threading

import pytest

from icrm import ICRM
from tests.conftest import user_assistant
from tests.integration.helpers import feedback

FLIGHT = user_assistant("I want to book a flight", "Where to?")
RULES = {"strict": True, "matches": [{"response": feedback(7), "delay_s": 0.05}]}


@pytest.fixture
def icrm(mock_llm):
    with ICRM(engine="mock", base_url=mock_llm.base_url, num_shots=0) as model:
        yield model


@pytest.mark.mock_llm(RULES)
def test_ajudge_then_judge(icrm):
    assert asyncio.run(icrm.ajudge(conversation=FLIGHT)).score == 7
    assert icrm.judge(conversation=FLIGHT).score == 7


@pytest.mark.mock_llm(RULES)
def test_asyncio_run_again_and_again(icrm):
    for _ in range(3):
        assert asyncio.run(icrm.ajudge(conversation=FLIGHT)).score == 7
    assert [f.score for f in asyncio.run(icrm.ajudge_many([{"conversation": FLIGHT}] * 4))] == [7] * 4


@pytest.mark.mock_llm(RULES)
def test_two_threads_at_once_one_sync_one_with_its_own_loop(icrm):
    results, errors = [], []
    barrier = threading.Barrier(2)

    def sync_caller():
        barrier.wait()
        results.extend(f.score for f in icrm.judge_many([{"conversation": FLIGHT}] * 5, concurrency=5))

    def async_caller():
        async def main():
            barrier.wait()
            out = await asyncio.gather(*(icrm.ajudge(conversation=FLIGHT) for _ in range(5)))
            async for _, f in icrm.ajudge_stream([{"conversation": FLIGHT}] * 3):
                out.append(f)
            return out
        results.extend(f.score for f in asyncio.run(main()))

    threads = [threading.Thread(target=t) for t in (sync_caller, async_caller)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and results == [7] * 13


@pytest.mark.mock_llm(RULES)
def test_async_context_manager_and_aclose(mock_llm):
    async def main():
        async with ICRM(engine="mock", base_url=mock_llm.base_url, num_shots=0) as model:
            return (await model.ajudge(conversation=FLIGHT)).score, model
    score, model = asyncio.run(main())
    assert score == 7 and model._loop.closed
