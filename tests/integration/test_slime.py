"""icrm as slime's reward model, called by slime's own reward code: ``remote_rm``,
``async_rm`` and ``batched_async_rm`` of ``slime/rollout/rm_hub/__init__.py`` (a verbatim
copy at a pinned commit, `tests/third_party`), against ``icrm serve`` over loopback and
through ``--custom-rm-path icrm.integrations.slime.reward``."""

from __future__ import annotations

import asyncio
import functools
import importlib
import json
import logging
import random
from types import SimpleNamespace

import aiohttp
import pytest

from icrm import MockServer
from icrm.errors import EngineError
from tests.integration.helpers import Service, feedback
from tests.third_party import functions

QUESTION = "What is 2+2?"
RULES = {"matches": [
    {"contains": ["<|begin_of_response|>\n4\n"], "response": feedback(10)},
    {"contains": ["UNJUDGEABLE"], "response": "no verdict"},
    {"contains": ["<|begin_of_response_3|>"],
     "response": json.dumps({"analysis": {"1": "a", "2": "b", "3": "c"}, "scores": {"1": 4, "2": 10, "3": 7}})},
    {"contains": ["<|begin_of_response_2|>"], "response": "no verdict"},
    {"response": feedback(4)},
]}


def slime_rm_hub() -> dict:
    """slime's reward functions, compiled from its file unchanged."""
    misc = functions("slime/utils_misc.py.txt", ("load_function",), importlib=importlib, cache=functools.cache)
    return functions("slime/rm_hub__init__.py.txt", ("_get_shared_session", "remote_rm", "async_rm", "batched_async_rm"),
                     asyncio=asyncio, random=random, aiohttp=aiohttp, logger=logging.getLogger("slime"),
                     load_function=misc["load_function"], _shared_session=None)


def sample(prompt, response, label=None):
    """What slime's ``Sample`` carries into its reward functions."""
    return SimpleNamespace(prompt=prompt, response=response, label=label, metadata={}, custom_rm_path=None)


def slime_args(**fields):
    return SimpleNamespace(**{"rm_type": "remote_rm", "rm_url": None, "custom_rm_path": None, "reward_key": None,
                              **fields})


def test_slimes_remote_rm_gets_a_number_or_its_reward_key_from_icrm_serve():
    rm_hub = slime_rm_hub()
    with MockServer(RULES) as url:
        service = Service("--engine", "mock", "--base_url", url, "--num_shots", "0", "--max_retries", "0",
                          "--failure_reward", "0.25")
        try:
            async def run():
                plain = slime_args(rm_url=f"{service.url}/slime/reward")
                keyed = slime_args(rm_url=f"{service.url}/slime/reward?reward_key=reward", reward_key="reward")
                chat = [{"role": "user", "content": QUESTION}]
                got = [await rm_hub["async_rm"](plain, sample(QUESTION, "4", label="4")),
                       await rm_hub["async_rm"](plain, sample(chat, "5")),
                       await rm_hub["async_rm"](keyed, sample(QUESTION, "4")),
                       await rm_hub["async_rm"](keyed, sample("UNJUDGEABLE", "x")),
                       await rm_hub["remote_rm"](plain, sample("UNJUDGEABLE", "x"))]
                await rm_hub["_get_shared_session"]().close()
                return got
            number, chat, keyed, unjudged, unjudged_number = asyncio.run(run())
        finally:
            service.stop()
    assert number == 1.0 and chat == pytest.approx(3 / 9) and unjudged_number == 0.25
    assert keyed == {"reward": 1.0, "icrm_score": 10.0, "icrm_failed": 0.0}
    assert unjudged == {"reward": 0.25, "icrm_score": 0.0, "icrm_failed": 1.0}


def test_a_judge_that_is_down_fails_slimes_request_never_a_reward():
    rm_hub = slime_rm_hub()
    with MockServer({"matches": [{"status": 503, "error": "overloaded"}]}) as url:
        service = Service("--engine", "mock", "--base_url", url, "--num_shots", "0", "--max_retries", "0")
        try:
            async def run():
                try:
                    return await rm_hub["remote_rm"](slime_args(rm_url=f"{service.url}/slime/reward"),
                                                     sample(QUESTION, "4"), max_retries=2)
                finally:
                    await rm_hub["_get_shared_session"]().close()
            with pytest.raises(aiohttp.ClientResponseError) as raised:
                asyncio.run(run())
        finally:
            service.stop()
    assert raised.value.status in (502, 503)


def in_process(monkeypatch, url, **settings):
    for name, value in {"engine": "mock", "base_url": url, "num_shots": "0", "max_retries": "0", **settings}.items():
        monkeypatch.setenv(f"ICRM_{name.upper()}", str(value))
    return slime_args(rm_type=None, custom_rm_path="icrm.integrations.slime.reward")


def test_slimes_custom_rm_path_judges_a_sample_and_a_group(monkeypatch):
    rm_hub = slime_rm_hub()
    with MockServer(RULES) as url:
        args = in_process(monkeypatch, url)
        one = sample(QUESTION, "4")
        assert asyncio.run(rm_hub["async_rm"](args, one)) == 1.0
        assert one.metadata == {"icrm_score": 10.0, "icrm_failed": 0.0}

        args = in_process(monkeypatch, url, rm_type="listwise", failure_reward="0.5")
        args.reward_key = "reward"
        group = [sample("Q1", "r1"), sample("Q1", "r2"), sample("Q1", "r3")]
        rewards = asyncio.run(rm_hub["batched_async_rm"](args, group))  # what slime's --group-rm calls
        assert [r["reward"] for r in rewards] == pytest.approx([3 / 9, 1.0, 6 / 9])
        unjudged = asyncio.run(rm_hub["batched_async_rm"](args, [sample("Q2", "s1"), sample("Q2", "s2")]))
        assert unjudged == [{"reward": 0.5, "icrm_score": 0.0, "icrm_failed": 1.0}] * 2


def test_slimes_custom_rm_path_raises_when_the_judge_is_down(monkeypatch):
    rm_hub = slime_rm_hub()
    with MockServer({"matches": [{"status": 503, "error": "overloaded"}]}) as url:
        args = in_process(monkeypatch, url)
        with pytest.raises(EngineError, match="could not answer 1 of 1"):
            asyncio.run(rm_hub["async_rm"](args, sample(QUESTION, "4")))


def test_unjudged_fail_makes_a_sample_without_a_verdict_fail_the_request():
    rm_hub = slime_rm_hub()
    with MockServer(RULES) as url:
        service = Service("--engine", "mock", "--base_url", url, "--num_shots", "0", "--max_retries", "0",
                          "--unjudged", "fail")
        try:
            refused = service.post("/slime/reward", {"prompt": "UNJUDGEABLE", "response": "x", "label": None})
            assert refused.status_code == 502 and "no verdict" in refused.json()["description"]
            openrlhf = service.post("/get_reward", {"query": ["UNJUDGEABLE x", "What is 2+2? 4"],
                                                    "prompts": ["UNJUDGEABLE", "What is 2+2?"]})
            assert openrlhf.status_code == 502

            async def run():
                try:
                    return await rm_hub["remote_rm"](slime_args(rm_url=f"{service.url}/slime/reward"),
                                                     sample(QUESTION, "4"), max_retries=1)
                finally:
                    await rm_hub["_get_shared_session"]().close()
            assert asyncio.run(run()) == 1.0
        finally:
            service.stop()
