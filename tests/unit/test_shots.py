"""Shots pools: the default pools' coverage, validation of custom pools, sampling."""

import json
import random

import pytest

from icrm import ICRM, ConfigError, ShotsPool
from icrm.feedback import PAIRWISE_CHOICES
from tests.conftest import user_assistant

UNUSED_SERVER = ["http://127.0.0.1:9/v1"]


def test_default_individual_pool_covers_scores_and_multi_turn():
    pool = ShotsPool.load(None, "individual")
    assert len(pool) >= 16
    assert {s.feedback["score"] for s in pool.shots} == set(range(1, 11))
    assert sum(len(s.conversations[0].turns) > 2 for s in pool.shots) >= 3


def test_default_pairwise_pool_has_every_choice_and_multi_turn():
    pool = ShotsPool.load(None, "pairwise")
    assert len(pool) >= 16
    assert {s.feedback["choice"] for s in pool.shots} == set(PAIRWISE_CHOICES)
    assert sum(len(s.conversations[0].turns) > 2 for s in pool.shots) >= 3


def good_shot(score=7):
    return {"conversation": user_assistant("q", "a"),
            "feedback": {"intent": "i", "checklist": "c", "strengths": "s", "weaknesses": "w", "score": score}}


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda s: s.pop("feedback"), "shot 1: missing field 'feedback'"),
        (lambda s: s.pop("conversation"), "shot 1: missing field 'conversation'"),
        (lambda s: s["feedback"].pop("weaknesses"), "shot 1: feedback lacks 'weaknesses'"),
        (lambda s: s["feedback"].update(score=11), "shot 1: feedback 'score' must be an integer from 1 to 10"),
        (lambda s: s["feedback"].update(score="8"), "shot 1: feedback 'score' must be an integer"),
        (lambda s: s["feedback"].update(intent=["x"]), "shot 1: feedback 'intent' must be a string"),
        (lambda s: s.update(conversation=user_assistant("q", "a")[:1]), "shot 1: conversation: expected at least 2 turns"),
    ],
)
def test_invalid_shot_names_index_and_field(tmp_path, mutate, expected):
    bad = good_shot()
    mutate(bad)
    path = tmp_path / "pool.json"
    path.write_text(json.dumps([good_shot(), bad]))
    with pytest.raises(ConfigError) as info:
        ShotsPool.load(path, "individual")
    assert expected in str(info.value)
    assert str(path) in str(info.value)


def test_pairwise_shot_validation():
    shot = {"conversation_A": user_assistant("q", "a"), "conversation_B": user_assistant("other", "b"),
            "feedback": {"analysis of A": "", "analysis of B": "", "reason of A=B": "", "reason of A>B": "",
                         "reason of B>A": "", "choice": "A+"}}
    with pytest.raises(ConfigError, match="shot 0: conversation_A and conversation_B must share"):
        ShotsPool.from_records([shot], "pairwise")
    shot["conversation_B"] = user_assistant("q", "b")
    shot["feedback"]["choice"] = "A>B"
    with pytest.raises(ConfigError, match="shot 0: feedback 'choice' must be one of"):
        ShotsPool.from_records([shot], "pairwise")


def test_jsonl_pool_loads_and_bad_lines_are_named(tmp_path):
    path = tmp_path / "pool.jsonl"
    path.write_text("\n".join(json.dumps(good_shot(s)) for s in (2, 9)) + "\n")
    assert [s.feedback["score"] for s in ShotsPool.load(path, "individual").shots] == [2, 9]
    path.write_text(json.dumps(good_shot()) + "\n{oops\n")
    with pytest.raises(ConfigError, match="line 2 is not valid JSON"):
        ShotsPool.load(path, "individual")


def test_custom_pool_is_used_in_the_prompt(tmp_path):
    path = tmp_path / "pool.json"
    shot = good_shot(2)
    shot["conversation"] = user_assistant("What is 2+2?", "5")
    path.write_text(json.dumps([shot]))
    with ICRM(shots_pool_path=path, num_shots=1, worker_addrs=UNUSED_SERVER) as icrm:
        assert "<|begin_of_query|>\nWhat is 2+2?\n<|end_of_query|>" in icrm.render_prompt(conversation=user_assistant("q", "a"))


def test_fixed_sampling_takes_the_first_shots():
    pool = ShotsPool.load(None, "individual")
    assert pool.sample(3, "fixed", random.Random(0)) == pool.shots[:3]
    assert pool.sample(0, "fixed", random.Random(0)) == []


def test_random_sampling_is_reproducible_per_instance_and_ignores_global_random():
    def draws(seed):
        with ICRM(shot_sampling_mode="random", seed=seed, worker_addrs=UNUSED_SERVER) as icrm:
            random.seed(12345)  # the global generator must not matter
            return [[s["id"] for s in icrm.sample_shots()] for _ in range(3)]

    first = draws(7)
    assert first == draws(7)
    assert first != draws(8)
    assert len({tuple(d) for d in first}) > 1  # successive draws differ


def test_explicit_shots_override_the_pool():
    with ICRM(worker_addrs=UNUSED_SERVER) as icrm:
        prompt = icrm.render_prompt(conversation=user_assistant("another question", "another answer"), shots=[good_shot(6)])
    assert prompt.count("## Example") == 1 and '"score": 6' in prompt


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"num_shots": 99}, "num_shots=99 but the default individual shots pool has only 18 shots"),
        ({"num_shots": -1}, "num_shots must be a whole number >= 0"),
        ({"shot_sampling_mode": "first"}, "shot_sampling_mode must be one of fixed, random"),
        ({"rm_type": "unknown"}, "rm_type must be one of individual, pairwise"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs, expected):
    with pytest.raises(ConfigError) as info:
        ICRM(worker_addrs=UNUSED_SERVER, **kwargs)
    assert expected in str(info.value)
