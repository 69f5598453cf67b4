"""Trust, class 11: keys and keyword arguments. A local server needs no key; an unknown
option is refused naming it (before any request); server extras go in ``extra_body``."""

import pytest

from icrm import ICRM, ConfigError
from tests.conftest import user_assistant
from tests.integration.helpers import feedback, write_jsonl

FLIGHT = user_assistant("I want to book a flight", "Where to?")


@pytest.mark.mock_llm({"strict": True, "matches": [{"response": feedback(7)}]})
def test_an_explicit_base_url_needs_no_api_key(mock_llm):
    with ICRM(engine="openai", model_name="judge", base_url=mock_llm.base_url, num_shots=0) as icrm:
        assert icrm.judge(conversation=FLIGHT).score == 7
    assert mock_llm.requests()[0]["headers"]["authorization"] == "Bearer icrm-unused"


def test_without_base_url_the_missing_key_is_still_named():
    with pytest.raises(ConfigError, match="set OPENAI_API_KEY"):
        ICRM(engine="openai", model_name="judge")


@pytest.mark.mock_llm({"strict": True, "matches": [{"response": feedback(7)}]})
def test_unknown_options_are_refused_naming_them_and_nothing_is_sent(mock_llm, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "conversation": FLIGHT}])
    with ICRM(engine="mock", base_url=mock_llm.base_url, num_shots=0) as icrm:
        with pytest.raises(ConfigError, match=r"unknown option 'format' \(did you mean 'input_format'\?\)"):
            icrm.score(source, tmp_path / "out.jsonl", format="rewardbench")
        with pytest.raises(ConfigError, match="unknown option 'temprature'.*did you mean 'temperature'"):
            icrm(conversation=FLIGHT, temprature=0.5)
        with pytest.raises(ConfigError, match="extra_body"):
            icrm.judge(conversation=FLIGHT, guided_choice=["1"])
    assert mock_llm.requests() == []
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.mock_llm({"strict": True, "matches": [{"response": feedback(7)}]})
def test_known_server_kwargs_and_extra_body_reach_the_server(mock_llm):
    with ICRM(engine="mock", base_url=mock_llm.base_url, num_shots=0) as icrm:
        icrm.judge(conversation=FLIGHT, top_k=5, extra_body={"repetition_penalty": 1.1, "guided_choice": ["1"]})
    body = mock_llm.requests()[0]["body"]
    assert (body["top_k"], body["repetition_penalty"], body["guided_choice"]) == (5, 1.1, ["1"])
