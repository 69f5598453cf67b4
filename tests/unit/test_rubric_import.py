"""OpenAI grader configs (the Graders API's documented shapes) imported as icrm rubrics:
what each type becomes, that the rubric's reward equals the grader's value wherever the
grader's own formula is defined, and what is refused with its reason."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import pytest

from icrm.rubric import load_rubric
from icrm.rubric_import import GraderImportError, import_grader, rubric_from_grader

PROMPT = [{"role": "system", "content": "You grade answers."},
          {"role": "user", "content": [{"type": "input_text",
                                        "text": "Answer: {{sample.output_text}}\nReference: {{ item.reference }}"}]}]
SCORE = {"type": "score_model", "name": "accuracy", "model": "o4-mini", "input": PROMPT, "range": [1, 7],
         "sampling_params": {"temperature": 0}}
SCORE_FLOAT = {"type": "score_model", "name": "relevance score", "model": "o4-mini", "input": PROMPT}  # range [0, 1]
LABEL = {"type": "label_model", "name": "tone", "model": "gpt-4o", "input": PROMPT,
         "labels": ["polite", "neutral", "rude"], "passing_labels": ["polite", "neutral"]}
MULTI = {"type": "multi", "name": "qa", "graders": {"accuracy": SCORE, "tone": LABEL},
         "calculate_output": "0.5 * (accuracy - 1) / 6 + 0.5 * tone"}


def openai_value(grader, verdicts):
    """What OpenAI's grader would output for these verdicts (its documented semantics)."""
    kind = grader["type"]
    if kind == "score_model":
        return verdicts[grader["name"]]
    if kind == "label_model":
        return 1.0 if verdicts[grader["name"]] in grader["passing_labels"] else 0.0
    names = {key: openai_value(sub, {sub["name"]: verdicts[key]}) for key, sub in grader["graders"].items()}
    return eval(grader["calculate_output"].replace("^", "**"), {}, names)  # the test's own reading of the formula


def test_score_model_becomes_a_scale_criterion_with_the_prompt_as_description():
    rubric, notes = rubric_from_grader(SCORE)
    [criterion] = rubric["criteria"]
    assert criterion["scale"] == [1, 7] and criterion["name"] == "accuracy"
    assert "Answer: the response" in criterion["description"] and "the item's reference" in criterion["description"]
    assert "You grade answers." in criterion["description"]
    rubric, notes = rubric_from_grader(SCORE_FLOAT)
    assert rubric["criteria"][0]["scale"] == [0, 10] and rubric["criteria"][0]["name"] == "relevance_score"
    assert any("tenths" in n for n in notes) and any("relevance_score" in n for n in notes)


def test_label_model_passes_exactly_on_its_passing_labels():
    rubric = load_rubric(rubric_from_grader(LABEL)[0])
    criterion = rubric.criteria[0]
    assert criterion.choices == ("rude", "polite", "neutral")
    for label in LABEL["labels"]:
        assert rubric.reward({"tone": criterion.value(label)}) == openai_value(LABEL, {"tone": label})


def test_multi_formula_gives_the_graders_value_on_every_combination():
    rubric = load_rubric(rubric_from_grader(MULTI)[0])
    accuracy, tone = rubric.criterion("accuracy"), rubric.criterion("tone")
    for score, label in itertools.product(range(1, 8), LABEL["labels"]):
        values = {"accuracy": accuracy.value(score), "tone": tone.value(label)}
        assert rubric.reward(values) == pytest.approx(openai_value(MULTI, {"accuracy": score, "tone": label}))


@pytest.mark.parametrize("grader,words", [
    ({"type": "string_check", "name": "exact", "input": "{{sample.output_text}}", "reference": "{{item.label}}",
      "operation": "eq"}, ["string_check", "computed"]),
    ({"type": "text_similarity", "name": "sim", "input": "{{sample.output_text}}", "reference": "{{item.label}}",
      "evaluation_metric": "fuzzy_match"}, ["text_similarity"]),
    ({"type": "python", "name": "py", "source": "def grade(sample, item): return 1.0"}, ["python"]),
    ({"type": "endpoint", "name": "e"}, ["'endpoint'"]),
    ({**MULTI, "graders": {"inner": MULTI}}, ["multi grader inside"]),
    ({**MULTI, "graders": {"accuracy": SCORE, "exact": {"type": "string_check", "name": "exact"}}}, ["'exact'",
                                                                                                        "string_check"]),
    ({**MULTI, "calculate_output": "accuracy + tone"}, ["[0, 1]"]),  # a raw 1-7 score: leaves [0, 1]
    ({**MULTI, "calculate_output": "accuracy + nope"}, ["nope"]),
    ({**MULTI, "calculate_output": ""}, ["calculate_output"]),
    ({**LABEL, "passing_labels": ["angry"]}, ["passing_labels"]),
    ({**LABEL, "passing_labels": LABEL["labels"]}, ["every label passes"]),
    ({**LABEL, "labels": ["only"]}, ["labels"]),
    ({**SCORE, "range": [5, 1]}, ["range"]), ({**SCORE, "range": "0-1"}, ["range"]),
    ({**SCORE, "input": []}, ["input"]), ({**SCORE, "input": [{"role": "user", "content": 3}]}, ["text content"]),
    ([SCORE], ["JSON object"]),
])
def test_what_cannot_be_carried_is_refused_with_the_reason(grader, words):
    with pytest.raises(GraderImportError) as caught:
        rubric_from_grader(grader)
    assert all(w in str(caught.value) for w in words), str(caught.value)


def test_the_command_writes_a_rubric_icrm_loads_and_refuses_with_exit_2(tmp_path):
    (tmp_path / "multi.json").write_text(json.dumps(MULTI))
    (tmp_path / "check.json").write_text(json.dumps({"type": "string_check", "name": "x"}))
    out = tmp_path / "rubric.yaml"
    done = subprocess.run([sys.executable, "-m", "icrm.cli", "rubric", "import", str(tmp_path / "multi.json"),
                           "--output", str(out)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert out.read_text().startswith("# icrm rubric imported") and load_rubric(out).names == ["accuracy", "tone"]
    assert import_grader(tmp_path / "multi.json") == out.read_text()
    refused = subprocess.run([sys.executable, "-m", "icrm.cli", "rubric", "import", str(tmp_path / "check.json")],
                             capture_output=True, text=True)
    assert refused.returncode == 2 and refused.stderr.startswith("icrm: error: grader 'x' is a string_check")
    assert refused.stdout == ""


def test_a_grader_key_that_is_reserved_or_not_an_identifier_is_renamed_and_its_formula_follows():
    grader = {**MULTI, "graders": {"score": SCORE, "tone": LABEL}, "calculate_output": "0.5 * (score - 1) / 6 + 0.5 * tone"}
    rubric, notes = rubric_from_grader(grader)
    loaded = load_rubric(rubric)
    assert loaded.names == ["score_grade", "tone"] and any("score_grade" in n for n in notes)
    assert loaded.reward({"score_grade": 1.0, "tone": 0.0}) == pytest.approx(0.5)
