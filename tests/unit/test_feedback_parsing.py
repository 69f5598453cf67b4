"""The parser on recorded answers of the embedded model and on hand-made edge cases."""

from pathlib import Path

import pytest

from icrm import FeedbackParseError, IndividualFeedback, PairwiseFeedback, parse_feedback
from icrm.feedback import build_feedback, feedback_json_schema, feedback_keys

RECORDED = Path(__file__).parent / "recorded"


@pytest.mark.parametrize(("value", "score"), [(8, 8), ("8", 8), ("7/10", 7), (" 9 / 10 ", 9), (6.0, 6), ("10", 10), (1, 1)])
def test_accepted_score_forms(value, score):
    assert parse_feedback(f'{{"score": {value!r}}}'.replace("'", '"'), "individual")["score"] == score


@pytest.mark.parametrize("value", ["0", "11", "-3", 7.5, '"7.5"', '"eight"', "true", "null", '"8/5"', "[8]"])
def test_invalid_scores_are_errors_never_scores(value):
    text = f'{{"intent": "x", "score": {value}}}'
    with pytest.raises(FeedbackParseError) as info:
        parse_feedback(text, "individual")
    assert info.value.raw_text == text


def test_missing_score_is_an_error():
    with pytest.raises(FeedbackParseError, match="no 'score'"):
        parse_feedback('{"intent": "x", "strengths": "good"}', "individual")


def test_no_json_at_all_is_an_error():
    with pytest.raises(FeedbackParseError, match="no JSON object"):
        parse_feedback("I think this response is quite good, maybe an 8.", "individual")


def test_truncated_json_is_repaired_when_the_score_survived():
    text = '{"intent": "book a flight", "score": 7, "strengths": "asks where to go, and the'
    assert parse_feedback(text, "individual")["score"] == 7


def test_truncated_json_before_the_score_is_an_error():
    with pytest.raises(FeedbackParseError, match="no 'score'"):
        parse_feedback('{"intent": "book a flight", "strengths": "asks where', "individual")


def test_run_on_into_another_example_keeps_the_first_answer():
    text = ('{"intent": "x", "score": 8}\n\n## Example 4\n<|begin_of_history|>\nN/A\n'
            '<|end_of_history|>\n### Feedback\n<|begin_of_feedback|>\n{"intent": "y", "score": 2}')
    assert parse_feedback(text, "individual")["score"] == 8


def test_broken_first_object_does_not_take_a_later_examples_score():
    # The first object never closes; the model runs on into a new example with its own score.
    text = '{"intent": "x", "strengths": "fine\n\n## Example 5\n### Feedback\n{"intent": "y", "score": 2}'
    with pytest.raises(FeedbackParseError):
        parse_feedback(text, "individual")


def test_end_of_feedback_marker_ends_the_answer():
    text = '{"intent": "x", "score": 4}<|end_of_feedback|>{"score": 9}'
    assert parse_feedback(text, "individual")["score"] == 4


@pytest.mark.parametrize(("value", "choice"), [("A++", "A++"), ("B+", "B+"), ("A = B", "A=B"), (" B++ ", "B++")])
def test_accepted_choices(value, choice):
    assert parse_feedback(f'{{"choice": "{value}"}}', "pairwise")["choice"] == choice


@pytest.mark.parametrize("value", ['"A"', '"A+++"', '"C+"', '"A>B"', "1", "null"])
def test_invalid_choices_are_errors(value):
    with pytest.raises(FeedbackParseError):
        parse_feedback(f'{{"analysis of A": "ok", "choice": {value}}}', "pairwise")


def test_typed_feedback_keeps_text_and_records_errors_instead_of_raising():
    bad = build_feedback('{"score": 42}', "individual")
    assert isinstance(bad, IndividualFeedback)
    assert (bad.ok, bad.score, bad.raw_text) == (False, None, '{"score": 42}')
    assert "outside 1-10" in bad.parse_error
    good = build_feedback('{"analysis of A": ["short", "polite"], "choice": "B++"}', "pairwise")
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
        ("completion_individual_runon.txt", "individual", 4),
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
