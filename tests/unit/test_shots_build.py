"""`icrm.shots_build.build_shots` on generated rows: the preferred side balanced, groups'
best response spread over the labels, scores rescaled, bad rows named, repeats skipped."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from icrm.errors import ConfigError, InputError
from icrm.shots import ShotsPool
from icrm.shots_build import MAX_ROW_ERRORS, build_shots


def pairs(n, seed=0):
    rng = random.Random(seed)
    return [{"id": f"r{i}", "prompt": f"q{i} {rng.random()}", "chosen": f"good {i}", "rejected": f"bad {i}"}
            for i in range(n)]


@pytest.mark.parametrize("n", [1, 2, 3, 7, 20, 41])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pairwise_shots_balance_the_preferred_side_and_keep_the_label(n, seed):
    shots, report = build_shots(pairs(n, seed), "pairwise", seed=seed)
    sides = Counter(s["feedback"]["choice"] for s in shots)
    assert len(shots) == report.shots == n and abs(sides["A+"] - sides["B+"]) <= 1
    for shot in shots:
        preferred = shot["conversation_A" if shot["feedback"]["choice"] == "A+" else "conversation_B"]
        assert preferred[-1]["content"].startswith("good")
    ShotsPool.from_records(shots, "pairwise")  # loads as a pool


def test_listwise_groups_put_the_best_response_on_every_label():
    rows = [{"id": f"g{i}", "prompt": f"q{i}", "responses": ["best", "mid", "worst"], "scores": [9, 5, 2]}
            for i in range(60)]
    shots, report = build_shots(rows, "listwise", seed=3)
    best = Counter(report_label for report_label in (max(s["feedback"]["scores"], key=s["feedback"]["scores"].get)
                                                     for s in shots))
    assert set(best) == {"1", "2", "3"} and min(best.values()) >= 10
    for shot in shots:  # the scores follow their responses through the shuffle
        for label, score in shot["feedback"]["scores"].items():
            answer = shot["conversations"][int(label) - 1][-1]["content"]
            assert {"best": 9, "mid": 5, "worst": 2}[answer] == score


def test_individual_scores_rescale_onto_one_to_ten():
    rows = [{"id": str(v), "prompt": "q", "response": f"answer {v}", "score": v} for v in (0, 1, 2, 3, 4)]
    shots, _ = build_shots(rows, "individual", score_range=(0, 4))
    assert [s["feedback"]["score"] for s in shots] == [1, 3, 6, 8, 10]
    with pytest.raises(ConfigError, match="LOW < HIGH"):
        build_shots(rows, "individual", score_range=(4, 0))


def test_repeats_and_rows_without_a_preference_are_skipped_and_counted():
    rows = pairs(5) + [{**pairs(5)[0], "id": "again", "prompt": pairs(5)[0]["prompt"].upper()},
                       {"id": "tie", "prompt": "q", "chosen": "Same  text", "rejected": "same text"}]
    shots, report = build_shots(rows, "pairwise")
    assert len(shots) == 5 and report.skipped_duplicates == 1 and report.skipped_no_preference == 1


def test_bad_rows_are_named_by_line_and_field_and_counted():
    bad = [{"prompt": "q", "chosen": "a"}, {"prompt": 3, "chosen": "a", "rejected": "b"},
           {"prompt": "q", "chosen": ["a"], "rejected": "b"}] * 3
    with pytest.raises(InputError) as info:
        build_shots(pairs(4) + bad, "pairwise")
    message = str(info.value)
    assert message.startswith(f"{len(bad)} of {4 + len(bad)} rows") and f"... and {len(bad) - MAX_ROW_ERRORS} more" in message
    assert "line 5: a RewardBench row needs rejected" in message
    assert "line 6: 'prompt' must be a string" in message and "line 7: 'chosen' must be a string" in message
    with pytest.raises(InputError, match="id 'r1' repeats line 2's"):
        build_shots(pairs(3) + [pairs(3)[1]], "pairwise")
    with pytest.raises(InputError, match="no row made a shot"):
        build_shots([], "pairwise")
    with pytest.raises(InputError, match="'score' must be an integer from 1 to 10, got 7.5"):
        build_shots([{"prompt": "q", "response": "a", "score": 7.5}], "individual")


@pytest.mark.parametrize("feedback,expected", [
    ({"choice": "A+++"}, "feedback 'choice' must be one of A++, A+, A=B, B+, B++"),
    ({"choice": 2}, "feedback 'choice' must be one of"),
    ({"choice": "A+", "analysis of A": "x"}, "feedback lacks"),
])
def test_a_verdict_only_shot_is_checked_like_a_whole_one(feedback, expected):
    shot = {"conversation_A": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}],
            "conversation_B": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "b"}],
            "feedback": feedback}
    with pytest.raises(ConfigError) as info:
        ShotsPool.from_records([shot], "pairwise")
    assert expected in str(info.value) and "shot 0" in str(info.value)


def test_a_critique_agrees_by_side_score_or_best_response():
    from icrm.rm_types import INDIVIDUAL, LISTWISE, PAIRWISE
    from icrm.shots_build import _agrees

    assert _agrees(PAIRWISE, "A++", "A+") and not _agrees(PAIRWISE, "A=B", "A+") and not _agrees(PAIRWISE, "B+", "A+")
    assert _agrees(INDIVIDUAL, 6, 7) and _agrees(INDIVIDUAL, 8, 7) and not _agrees(INDIVIDUAL, 5, 7)
    # A judged group's scores are a list in label order; a shot's label is a mapping.
    assert _agrees(LISTWISE, [3, 9, 4], {"1": 2, "2": 8, "3": 5})
    assert not _agrees(LISTWISE, [9, 3, 4], {"1": 2, "2": 8, "3": 5})
