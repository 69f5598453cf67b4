"""The parser on recorded answers of the embedded model and on hand-made edge cases."""

import json
from pathlib import Path

import pytest

from icrm import FeedbackParseError, IndividualFeedback, PairwiseFeedback, parse_feedback
from icrm.rm_types import build_feedback, feedback_json_schema, feedback_keys

RECORDED = Path(__file__).parent / "recorded"


TEXT = {"intent": "i", "checklist": "c", "strengths": "s", "weaknesses": "w"}
PAIR_TEXT = {"analysis of A": "a", "analysis of B": "b", "reason of A=B": "", "reason of A>B": "", "reason of B>A": ""}


def individual(score):
    """A full individual feedback object with `score` written as given (JSON text)."""
    return json.dumps(TEXT)[:-1] + f', "score": {score}}}'


def pairwise(choice):
    return json.dumps(PAIR_TEXT)[:-1] + f', "choice": {choice}}}'


@pytest.mark.parametrize(("value", "score"), [(8, 8), ('"8"', 8), ('"7/10"', 7), ('" 9 / 10 "', 9), (6.0, 6), ('"10"', 10), (1, 1)])
def test_accepted_score_forms(value, score):
    assert parse_feedback(individual(value), "individual")["score"] == score


@pytest.mark.parametrize("value", ["0", "11", "-3", 7.5, '"7.5"', '"eight"', "true", "null", '"8/5"', "[8]"])
def test_invalid_scores_are_errors_never_scores(value):
    text = individual(value)
    with pytest.raises(FeedbackParseError) as info:
        parse_feedback(text, "individual")
    assert info.value.raw_text == text and info.value.reason == "invalid_verdict"


def test_missing_score_is_an_error():
    with pytest.raises(FeedbackParseError, match="no 'score'") as info:
        parse_feedback(json.dumps(TEXT), "individual")
    assert info.value.reason == "no_verdict"


def test_no_json_at_all_is_an_error():
    with pytest.raises(FeedbackParseError, match="no JSON object") as info:
        parse_feedback("I think this response is quite good, maybe an 8.", "individual")
    assert info.value.reason == "no_object"


@pytest.mark.parametrize("text", [
    '{"intent": "book a flight", "score": 7, "strengths": "asks where to go, and the',
    individual(1)[:-1],                     # a cut "10" is not a 1
    '{"intent": "book a flight", "strengths": "asks where',
])
def test_an_answer_still_open_at_its_end_is_truncated_never_repaired_into_a_score(text):
    with pytest.raises(FeedbackParseError) as info:
        parse_feedback(text, "individual")
    assert info.value.reason == "truncated"


def test_a_cut_pairwise_choice_is_truncated():
    with pytest.raises(FeedbackParseError) as info:
        parse_feedback(json.dumps(PAIR_TEXT)[:-1] + ', "choice": "A+', "pairwise")
    assert info.value.reason == "truncated"


def test_finish_reason_length_is_truncated_even_when_the_object_closed():
    with pytest.raises(FeedbackParseError) as info:
        parse_feedback(individual(9) + "\nThe response", "individual", finish_reason="length")
    assert info.value.reason == "truncated"
    # Cut by max_tokens only after the answer ran on into another example: the answer is whole.
    assert parse_feedback(individual(9) + "\n## Example 4\n", "individual", finish_reason="length")["score"] == 9


@pytest.mark.parametrize("text", [
    # The prompt's format example echoed, then the real feedback.
    individual(5) + "\n\nNow my feedback:\n" + individual(9),
    # A score quoted in prose, then the feedback.
    'a score of {"score": 2} would be unfair. ' + individual(9),
])
def test_two_candidates_that_disagree_are_ambiguous(text):
    with pytest.raises(FeedbackParseError) as info:
        parse_feedback(text, "individual")
    assert info.value.reason == "ambiguous"


def test_candidates_that_agree_are_one_verdict():
    assert parse_feedback(individual(7) + " " + individual('"7"'), "individual")["score"] == 7


def test_an_object_without_the_shape_is_missing_keys():
    with pytest.raises(FeedbackParseError, match="lacks 'intent'") as info:
        parse_feedback('{"score": 2}', "individual")
    assert info.value.reason == "missing_keys"


def test_run_on_into_another_example_with_its_own_feedback_is_ambiguous():
    # Whichever object comes first, neither is taken: one of them is not the answer.
    text = (individual(8) + '\n\n## Example 4\n<|begin_of_history|>\nN/A\n'
            '<|end_of_history|>\n### Feedback\n<|begin_of_feedback|>\n' + individual(2))
    with pytest.raises(FeedbackParseError) as info:
        parse_feedback(text, "individual")
    assert info.value.reason == "ambiguous"


def test_broken_first_object_does_not_take_a_later_examples_score():
    # The first object never closes; the model runs on into a new example with its own score.
    text = '{"intent": "x", "strengths": "fine\n\n## Example 5\n### Feedback\n' + individual(2)
    with pytest.raises(FeedbackParseError):
        parse_feedback(text, "individual")


def test_an_object_after_the_end_of_feedback_marker_makes_the_answer_ambiguous():
    text = individual(4) + '<|end_of_feedback|>{"score": 9}'
    with pytest.raises(FeedbackParseError) as info:
        parse_feedback(text, "individual")
    assert info.value.reason == "ambiguous"
    # Text after the marker that holds no feedback object leaves the answer whole.
    assert parse_feedback(individual(4) + "<|end_of_feedback|>\n## Example 5\nThe user asks", "individual")["score"] == 4


def test_repairable_json_syntax_in_a_closed_object_is_accepted():
    text = "{'intent': 'i', 'checklist': 'c', 'strengths': 's', 'weaknesses': 'w', 'score': 6,}"
    assert parse_feedback(text, "individual")["score"] == 6


@pytest.mark.parametrize(("value", "choice"), [("A++", "A++"), ("B+", "B+"), ("A = B", "A=B"), (" B++ ", "B++")])
def test_accepted_choices(value, choice):
    assert parse_feedback(pairwise(f'"{value}"'), "pairwise")["choice"] == choice


@pytest.mark.parametrize("value", ['"A"', '"A+++"', '"C+"', '"A>B"', "1", "null"])
def test_invalid_choices_are_errors(value):
    with pytest.raises(FeedbackParseError):
        parse_feedback(pairwise(value), "pairwise")


def test_typed_feedback_keeps_text_and_records_errors_instead_of_raising():
    bad = build_feedback(individual(42), "individual")
    assert isinstance(bad, IndividualFeedback)
    assert (bad.ok, bad.score, bad.raw_text) == (False, None, individual(42))
    assert "outside 1-10" in bad.parse_error and bad.parse_error_reason == "invalid_verdict"
    good = build_feedback(json.dumps({**PAIR_TEXT, "analysis of A": ["short", "polite"], "choice": "B++"}), "pairwise")
    assert isinstance(good, PairwiseFeedback) and good.ok
    assert good.to_dict()["analysis of A"] == "short\npolite"
    assert good.to_dict()["choice"] == "B++"


def test_schema_lists_every_key_and_bounds_text():
    schema = feedback_json_schema("pairwise")
    assert schema["required"] == feedback_keys("pairwise")
    assert schema["properties"]["choice"]["enum"] == ["A++", "A+", "A=B", "B+", "B++"]
    assert all("maxLength" in p for k, p in schema["properties"].items() if k != "choice")
    assert feedback_json_schema("individual")["properties"]["score"]["enum"] == list(range(1, 11))


# Answers recorded from the embedded SmolLM2-135M (see recorded/README.md): the parser
# must give the score/choice visible in the text, or an error — never an invented value.
@pytest.mark.parametrize(
    ("name", "rm_type", "expected"),
    [
        ("completion_individual_runon.txt", "individual", None),  # runs on into a second feedback object
        ("chat_individual_constrained.txt", "individual", 3),
        ("chat_pairwise_constrained.txt", "pairwise", "A++"),
        ("chat_unconstrained_prose.txt", "individual", None),
    ],
)
def test_recorded_answers(name, rm_type, expected):
    text = (RECORDED / name).read_text()
    feedback = build_feedback(text, rm_type)
    value = feedback.score if rm_type == "individual" else feedback.choice
    assert value == expected
    assert feedback.ok == (expected is not None)
