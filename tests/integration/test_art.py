"""icrm as OpenPipe ART's group scorer, on ART's own trajectory classes
(``openpipe-art`` from PyPI, `--no-deps` plus what ``import art`` needs): the scored
group ART gets back, its originals, and ``swallow_exceptions``."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from icrm import ICRM, MockServer
from icrm.errors import EngineError
from icrm.integrations.art import GroupNotScored, ruler_score_group
from tests.integration.helpers import pair_feedback

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # ART imports litellm, which would fetch a price list
masking_utils = pytest.importorskip("transformers.masking_utils")
_unpatched = masking_utils._preprocess_mask_arguments
art = pytest.importorskip("art", reason="openpipe-art is not installed (scripts/setup_tests.sh installs it)")
# `import art` patches transformers process-wide for ART's own training (art/transformers/patches.py); these
# tests train nothing, and later tests in this process (TRL's GRPOTrainer) need transformers as it is.
masking_utils._preprocess_mask_arguments = _unpatched

SYSTEM = {"role": "system", "content": "You are a travel agent."}
USER = {"role": "user", "content": "Find me a flight to Paris."}


def trajectory(answer, reward=0.0, tool=False):
    tail = [{"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "search", "arguments": '{"to": "CDG"}'}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "AF123 at 9:00"}] if tool else []
    return art.Trajectory(messages_and_choices=[SYSTEM, USER, *tail, {"role": "assistant", "content": answer}],
                          reward=reward, metrics={"turns": 1})


def listwise(scores):
    return json.dumps({"analysis": {k: f"answer {k}" for k in scores}, "scores": scores})


def judge(url, **options):
    return ICRM(engine="mock", base_url=url, num_shots=0, max_retries=0, **options)


def test_a_group_comes_back_scored_with_its_originals_kept():
    group = art.TrajectoryGroup([trajectory("AF123 at 9:00.", 0.3, tool=True), trajectory("No idea.", 0.7),
                                 trajectory("Try a search engine.", 0.1)])
    rules = {"strict": True, "matches": [
        {"contains": ["<|begin_of_response_1|>", "[tool call] search", "AF123"], "response": listwise(
            {"1": 10, "2": 1, "3": 4})}]}
    with MockServer(rules) as url, judge(url, rm_type="listwise") as icrm:
        scored = asyncio.run(ruler_score_group(group, icrm))
    assert isinstance(scored, art.TrajectoryGroup) and scored is not group
    assert [t.reward for t in scored.trajectories] == pytest.approx([1.0, 0.0, 3 / 9])
    assert [t.metrics["independent_reward"] for t in scored.trajectories] == [0.3, 0.7, 0.1]
    assert [t.reward for t in group.trajectories] == [0.3, 0.7, 0.1]  # the original is untouched
    assert scored.trajectories[0].logs == ["icrm: answer 1"]


def test_a_pairwise_tournament_scores_the_group_too():
    group = art.TrajectoryGroup([trajectory("GOOD: AF123 at 9:00."), trajectory("bad.")])
    rules = {"strict": True, "matches": [
        {"regex": r"<\|begin_of_response_A\|>\nGOOD", "response": pair_feedback("A++")},
        {"contains": ["<|begin_of_response_A|>"], "response": pair_feedback("B++")}]}
    with MockServer(rules) as url, judge(url, rm_type="pairwise", group_strategy="all_pairs", position="both") as icrm:
        scored = asyncio.run(ruler_score_group(group, icrm))
    first, second = scored.trajectories
    assert first.reward > 0.9 and second.reward < 0.1 and "icrm_stderr" in first.metrics


@pytest.mark.parametrize("swallow", [False, True])
def test_a_group_the_judge_cannot_score_is_raised_or_swallowed(swallow):
    group = art.TrajectoryGroup([trajectory("a"), trajectory("b"), trajectory("c")])
    wrong_count = listwise({"1": 3, "2": 9})
    for rules, error in [({"matches": [{"response": wrong_count}]}, GroupNotScored),
                         ({"matches": [{"status": 503, "error": "overloaded"}]}, EngineError)]:
        with MockServer(rules) as url, judge(url, rm_type="listwise") as icrm:
            if swallow:
                assert asyncio.run(ruler_score_group(group, icrm, swallow_exceptions=True)) is None
            else:
                with pytest.raises(error, match="no reward"):
                    asyncio.run(ruler_score_group(group, icrm))
    with pytest.raises(ValueError, match="Additional histories"):
        extra = trajectory("x")
        extra.additional_histories = [art.trajectories.History(messages_and_choices=[USER])]
        asyncio.run(ruler_score_group(art.TrajectoryGroup([extra, trajectory("y")]), None))
