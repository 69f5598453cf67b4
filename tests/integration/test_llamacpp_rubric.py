"""A 3-criterion rubric judged by a real llama.cpp server running the embedded model,
its output constrained to the rubric's JSON schema: every criterion gets a verdict its
criterion allows, with both methods, all in one request and one request per criterion."""

import pytest

from icrm import ICRM
from tests.integration.test_rubrics import RUBRIC, conversation

pytestmark = pytest.mark.llamacpp


@pytest.fixture(scope="module")
def judge():
    with ICRM(rubric=RUBRIC, num_shots=0, constrain_output=True) as icrm:
        yield icrm


@pytest.mark.parametrize("method,max_criteria", [("critique", None), ("verdict", None), ("verdict", 1)])
def test_every_criterion_is_parsed_under_the_rubrics_schema(judge, method, max_criteria):
    config = judge.config.updated(method=method, max_criteria=max_criteria, worker_addrs=judge.config.worker_addrs or
                                  (str(judge.engine.clients[0].base_url).rstrip("/"),))
    with ICRM.from_config(config) as icrm:
        for answer in ("4", "I will not answer."):
            feedback = icrm.judge(conversation=conversation(answer))
            assert feedback.ok, (feedback.parse_error, feedback.raw_text)
            assert list(feedback.criteria) == ["correct", "clear", "safe"]
            for criterion in icrm.rm_type.rubric.criteria:
                assert feedback.criteria[criterion.name]["verdict"] in criterion.verdicts
            assert 0.0 <= icrm.rm_type.feedback_reward(feedback) <= 1.0
            assert (feedback.criteria["correct"]["reason"] is None) == (method == "verdict")
            assert feedback.raw_text.count('"criteria"') == (3 if max_criteria == 1 else 1)
