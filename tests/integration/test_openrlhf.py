"""OpenRLHF's own reward client (``openrlhf/utils/agent.py``, v0.11, installed as `.ci/run`
installs it) against ``icrm serve``: one sample per request, the empty list an extra
server gets, a chat-templated query, and a judge that fails."""

import asyncio
import importlib.util

import pytest

from tests.integration.helpers import Service, feedback

pytestmark = pytest.mark.skipif(importlib.util.find_spec("openrlhf") is None,
                                reason="OpenRLHF is not installed (.ci/run installs openrlhf==0.11.0 --no-deps)")

# The judge gives 9 only when it sees the user's question as the query and the response
# as the response, with no template tokens around them.
CLEAN = ["<|begin_of_query|>\nWhat is 2+2?\n<|end_of_query|>", "<|begin_of_response|>\n4\n<|end_of_response|>"]
RULES = {"strict": True, "matches": [
    {"contains": CLEAN, "response": feedback(9)},
    {"contains": ["JUDGE-FAILS"], "status": 500, "error": "the judge broke"},
    {"contains": ["UNJUDGEABLE"], "response": "I cannot rate this."},
    {"response": feedback(3)},
]}


@pytest.fixture
def service(mock_llm):
    started = Service("--engine", "mock", "--base_url", mock_llm.base_url, "--num_shots", "0", "--max_retries", "0")
    yield started
    started.stop()


def client(*urls):
    from openrlhf.utils.agent import SingleTurnAgentExecutor

    return SingleTurnAgentExecutor(list(urls) if len(urls) > 1 else urls[0])


def fetch(executor, queries, prompts):
    return asyncio.run(executor._fetch_rewards_via_http(queries, prompts, [""] * len(queries)))


@pytest.mark.mock_llm(RULES)
def test_one_sample_per_request(service):
    [answer] = fetch(client(f"{service.url}/get_reward"), ["What is 2+2? 5"], ["What is 2+2?"])
    assert answer["rewards"] == [pytest.approx(2 / 9)] and answer["scores"] == answer["rewards"]
    assert answer["extra_logs"] == {"icrm_score": [3.0], "icrm_failed": [0.0]}


@pytest.mark.mock_llm(RULES)
def test_an_extra_server_gets_an_empty_list_and_answers_it(service, mock_llm):
    url = f"{service.url}/get_reward"
    first, second = fetch(client(url, url), ["What is 2+2? 5"], ["What is 2+2?"])
    assert first["rewards"] == [pytest.approx(2 / 9)]
    assert second == {"rewards": [], "scores": [], "extra_logs": {"icrm_score": [], "icrm_failed": []}}
    assert len(mock_llm.requests()) == 1  # the empty request judged nothing


@pytest.mark.mock_llm(RULES)
def test_a_chat_templated_query_is_judged_as_its_turns(service):
    # As OpenRLHF builds them: the prompt through the policy's own chat template (the
    # embedded model's, ChatML), the query = prompt and response tokens decoded with
    # their special tokens.
    transformers = pytest.importorskip("transformers")
    from icrm.engines.local import embedded_model_hf_dir

    tokenizer = transformers.AutoTokenizer.from_pretrained(embedded_model_hf_dir())
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is 2+2?"}], tokenize=False,
                                           add_generation_prompt=True)
    tokens = tokenizer(prompt, add_special_tokens=False)["input_ids"] + tokenizer("4")["input_ids"]
    query = tokenizer.decode(tokens + [tokenizer.eos_token_id], skip_special_tokens=False)
    assert "<|im_start|>" in prompt and query.startswith(prompt)
    [answer] = fetch(client(f"{service.url}/get_reward"), [query], [prompt])
    assert answer["rewards"] == [pytest.approx(8 / 9)]  # the judge saw the clean turns


@pytest.mark.mock_llm(RULES)
def test_a_failing_judge_is_no_reward_and_an_unjudgeable_answer_is_flagged(service):
    executor = client(f"{service.url}/get_reward")
    with pytest.raises(RuntimeError, match="Request error for 5 times"):
        fetch(executor, ["JUDGE-FAILS a"], ["JUDGE-FAILS"])  # the trainer's client gives up loudly
    [flagged] = fetch(executor, ["UNJUDGEABLE a"], ["UNJUDGEABLE"])
    assert flagged["rewards"] == [0.0] and flagged["extra_logs"]["icrm_failed"] == [1.0]
