"""icrm as a verifiers judge plugin, resolved and run by verifiers' own code
(``verifiers`` 0.4.0 from PyPI, `--no-deps` plus what ``verifiers.v1`` imports): its
loader finds the plugin by id, its config type validates the entry, and the judge scores
a rollout recorded on a verifiers ``Trace``."""

from __future__ import annotations

import asyncio

import pytest

from icrm import MockServer
from icrm.errors import EngineError
from tests.integration.helpers import feedback

pytest.importorskip("verifiers.v1.judge", reason="verifiers is not installed (scripts/setup_tests.sh installs it)")

from verifiers.v1.configs.judge import resolve_judges  # noqa: E402
from verifiers.v1.task import TaskData  # noqa: E402
from verifiers.v1.trace import Trace  # noqa: E402
from verifiers.v1.utils.loaders import judge_class  # noqa: E402

from icrm.integrations.verifiers import PLUGIN_ID, UnjudgedError  # noqa: E402

RULES = {"matches": [
    {"contains": ["<|begin_of_response|>\n4\n"], "response": feedback(10)},
    {"contains": ["UNJUDGEABLE"], "response": "no verdict"},
    {"response": feedback(4)},
]}


def plugged(url, **icrm):
    """The judge as a task config plugs it: an entry resolved by verifiers' loader."""
    [config] = resolve_judges([{"id": PLUGIN_ID, "name": "icrm", "icrm": {
        "engine": "mock", "base_url": url, "num_shots": 0, "max_retries": 0, **icrm}}])
    return judge_class(PLUGIN_ID)(config)


def rollout(reply):
    return Trace.model_construct(root_reply=reply, info={}, extra_usage=[])


def test_verifiers_loads_the_plugin_by_id_and_it_scores_a_rollout():
    task = TaskData(prompt="What is 2+2?")
    with MockServer(RULES) as url:
        judge = plugged(url)
        trace = rollout("4")
        assert type(judge).__name__ == "ICRMJudge" and judge.reward_name == "icrm"
        assert asyncio.run(judge.score(task, trace)) == 1.0
        assert asyncio.run(judge.score(task, rollout("5"))) == pytest.approx(3 / 9)
        assert asyncio.run(judge.score(task, rollout("   "))) == 0.0  # nothing said: nothing sent
        with pytest.raises(UnjudgedError, match="no verdict"):
            asyncio.run(judge.score(TaskData(prompt="UNJUDGEABLE"), rollout("x")))
    [call] = trace.info["judge_calls"]
    assert call["name"] == "icrm" and trace.extra_usage[0].completion_tokens > 0


def test_a_judge_that_is_down_errors_the_rollout_never_a_reward():
    with MockServer({"matches": [{"status": 503, "error": "overloaded"}]}) as url:
        with pytest.raises(EngineError, match="could not answer 1 of 1"):
            asyncio.run(plugged(url).score(TaskData(prompt="q"), rollout("a")))


def test_a_bad_setting_fails_when_the_config_loads_naming_it():
    for bad, field in [({"temperture": 1}, "temperture"), ({"rm_type": "pairwise"}, "individual")]:
        with pytest.raises(Exception, match=field):
            plugged("http://127.0.0.1:9/v1", **bad)
