"""icrm as AReaL's reward function, run by AReaL's own `AsyncRewardWrapper`
(``areal/api/reward_api.py`` of the installed ``areal`` 1.0.4, compiled from its source:
the package cannot be imported without its training stack): pickled into its process
pool, judged against the mock server, with its retries and timeout."""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import logging
import os
import pickle
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from pathlib import Path

import pytest

from icrm import MockServer
from icrm.errors import ConfigError, EngineError
from icrm.integrations.areal import ICRMReward, UnjudgedError
from tests.integration.helpers import feedback
from tests.third_party import functions

SPEC = importlib.util.find_spec("areal")
pytestmark = pytest.mark.skipif(SPEC is None, reason="areal is not installed: pip install --no-deps areal==1.0.4")
RULES = {"matches": [
    {"contains": ["<|begin_of_response|>\n4\n"], "response": feedback(10)},
    {"contains": ["UNJUDGEABLE"], "response": "no verdict"},
    {"response": feedback(4)},
]}


def async_reward_wrapper() -> type:
    """AReaL's `AsyncRewardWrapper`, compiled unchanged from the installed package."""
    source = Path(next(iter(SPEC.submodule_search_locations))) / "api" / "reward_api.py"
    return functions(source, ("_get_device_count_safely", "AsyncRewardWrapper"), asyncio=asyncio, atexit=atexit,
                     os=os, threading=threading, Callable=Callable, ProcessPoolExecutor=ProcessPoolExecutor,
                     BrokenProcessPool=BrokenProcessPool, partial=partial,
                     logger=logging.getLogger("RewardAPI"))["AsyncRewardWrapper"]


def judge(url, **options):
    return ICRMReward(engine="mock", base_url=url, num_shots=0, max_retries=0, **options)


def test_areals_wrapper_runs_the_reward_in_its_process_pool():
    wrapper_class = async_reward_wrapper()
    with MockServer(RULES) as url:
        reward = judge(url, failure_reward=0.25)
        assert pickle.loads(pickle.dumps(reward)).config == reward.config  # what the pool sends

        async def run():
            wrapper = wrapper_class(reward, timeout_seconds=60, max_workers=1)
            return [await wrapper("What is 2+2?", "4", [1, 2], [3], answer="4"),
                    await wrapper([{"role": "user", "content": "What is 2+2?"}], "5", [1], [2]),
                    await wrapper("UNJUDGEABLE", "x", [1], [2])]
        assert asyncio.run(run()) == [1.0, pytest.approx(3 / 9), 0.25]


def test_a_judge_that_is_down_is_raised_through_the_wrapper_never_a_reward():
    wrapper_class = async_reward_wrapper()
    with MockServer({"matches": [{"status": 503, "error": "overloaded"}]}) as url:
        async def run():
            return await wrapper_class(judge(url), timeout_seconds=60, max_workers=1, max_retries=1)("q", "a", [], [])
        with pytest.raises(EngineError, match="could not answer 1 of 1"):
            asyncio.run(run())


def test_no_verdict_can_be_raised_instead_of_a_stand_in_reward():
    wrapper_class = async_reward_wrapper()
    with MockServer(RULES) as url:
        async def run():
            return await wrapper_class(judge(url, on_unjudged="raise"), timeout_seconds=60, max_workers=1,
                                       max_retries=0)("UNJUDGEABLE", "x", [], [])
        with pytest.raises(UnjudgedError, match="no verdict"):
            asyncio.run(run())
    for bad, field in [({"rm_type": "pairwise"}, "rm_type"), ({"failure_reward": float("nan")}, "failure_reward"),
                       ({"on_unjudged": "zero"}, "on_unjudged"), ({"temperture": 1}, "temperture")]:
        with pytest.raises(ConfigError, match=field):
            ICRMReward(engine="mock", **bad)
