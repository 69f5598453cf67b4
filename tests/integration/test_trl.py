"""icrm as a TRL reward function: called as TRL's `_calculate_rewards` calls it, and by a
real `GRPOTrainer` training the embedded model's weights for two steps on CPU."""

import asyncio
import json
import logging
import math

import pytest

from icrm import ICRM
from icrm.errors import ConfigError, EngineError
from icrm.integrations.trl import async_reward_function, reward_function
from tests.integration.helpers import feedback, pair_feedback

TOOL_TRAJECTORY = [
    {"role": "assistant", "content": None,
     "tool_calls": [{"type": "function", "function": {"name": "calculator", "arguments": '{"expr": "2+2"}'}}]},
    {"role": "tool", "name": "calculator", "content": "4"},
    {"role": "assistant", "content": "It is 4."},
]
RULES = {"strict": True, "matches": [
    {"contains": ["[tool call] calculator", "[tool result: calculator] 4", "It is 4."], "response": feedback(10)},
    {"contains": ["UNJUDGEABLE"], "response": "no verdict here"},
    {"response": feedback(4)},
]}


def judge(mock, **options):
    return ICRM(engine="mock", base_url=mock.base_url, num_shots=0, max_retries=0, **options)


@pytest.mark.mock_llm(RULES)
@pytest.mark.parametrize("make", [reward_function, async_reward_function], ids=["sync", "async"])
def test_rewards_for_text_chat_and_tool_call_completions(mock_llm, make, caplog):
    metrics = []
    with judge(mock_llm) as icrm:
        reward = make(icrm)
        prompts = ["What is 2+2?", [{"role": "user", "content": "What is 2+2?"}],
                   [{"role": "user", "content": "What is 2+2?"}], "UNJUDGEABLE"]
        completions = ["4", [{"role": "assistant", "content": "4"}], TOOL_TRAJECTORY, "x"]
        call = reward(prompts=prompts, completions=completions, completion_ids=[[1]] * 4,
                      trainer_state=None, log_metric=lambda name, value: metrics.append((name, value)))
        with caplog.at_level(logging.WARNING, logger="icrm"):
            rewards = asyncio.run(call) if make is async_reward_function else call
    assert rewards == [pytest.approx(3 / 9), pytest.approx(3 / 9), 1.0, None]
    assert metrics == [("icrm/unjudged", 1.0)]
    assert "1 of 4 samples got no reward" in caplog.text
    assert reward.__name__ == "icrm_individual"


@pytest.mark.mock_llm({"strict": True, "matches": [
    {"regex": r"<\|begin_of_response_A\|>\nGOOD", "response": pair_feedback("A+")},
    {"response": pair_feedback("B++")},
]})
def test_pairwise_judges_the_completion_against_the_reference_column(mock_llm):
    with judge(mock_llm, rm_type="pairwise") as icrm:
        with pytest.raises(ConfigError, match="reference_column"):
            reward_function(icrm)
        reward = reward_function(icrm, reference_column="reference")
        rewards = reward(prompts=["Q1", "Q2"], completions=["GOOD answer", "bad answer"],
                         reference=["the reference", "the reference"])
        assert rewards == [0.75, 0.0]
        with pytest.raises(ConfigError, match="'reference' is not a dataset column; the columns are answer"):
            reward(prompts=["Q"], completions=["A"], answer=["x"])


LISTWISE_SCORES = {"1": 9, "2": 3, "3": 6, "4": 6}
GROUP_RULES = {"strict": True, "matches": [
    {"contains": ["<|begin_of_response_1|>"],
     "response": json.dumps({"analysis": {k: "ok" for k in LISTWISE_SCORES}, "scores": LISTWISE_SCORES})},
    {"regex": r"<\|begin_of_response_A\|>\nGOOD", "response": pair_feedback("A++")},
    {"contains": ["<|begin_of_response_A|>"], "response": pair_feedback("B+")},
    {"response": feedback(5)},
]}


@pytest.mark.mock_llm(GROUP_RULES)
@pytest.mark.parametrize("make", [reward_function, async_reward_function], ids=["sync", "async"])
def test_group_rewards_judge_each_prompts_completions_together(mock_llm, make):
    # two prompts' rollouts interleaved, as TRL may hand them; a third prompt alone
    prompts = ["P1", "P2", "P1", "P2", "P1", "P2", "P1", "P2", "P3"]
    completions = [f"c{i}" for i in range(9)]
    metrics = []
    with judge(mock_llm, rm_type="listwise") as icrm:
        reward = make(icrm)
        call = reward(prompts=prompts, completions=completions, log_metric=lambda n, v: metrics.append((n, v)))
        rewards = asyncio.run(call) if make is async_reward_function else call
    by_label = [(LISTWISE_SCORES[str(n)] - 1) / 9 for n in range(1, 5)]
    assert rewards[0:8:2] == pytest.approx(by_label) and rewards[1:8:2] == pytest.approx(by_label)
    assert rewards[8] is None and metrics == [("icrm/unjudged", 1.0)]
    bodies = [json.dumps(r["body"]) for r in mock_llm.requests()]
    assert len(bodies) == 2 and all("<|begin_of_response_4|>" in b for b in bodies)
    assert reward.__name__ == "icrm_listwise"


@pytest.mark.mock_llm(GROUP_RULES)
def test_a_pairwise_judge_ranks_a_group_by_tournament_without_a_reference(mock_llm):
    with judge(mock_llm, rm_type="pairwise", group_strategy="all_pairs") as icrm:
        with pytest.raises(ConfigError, match="group=True"):
            reward_function(icrm)
        reward = reward_function(icrm, group=True)
        rewards = reward(prompts=["Q"] * 3, completions=["bad one", "GOOD one", "fine one"])
    assert rewards[1] == max(rewards) and len(mock_llm.requests()) == 3


def test_a_dead_judge_stops_training_instead_of_rewarding_nothing():
    from icrm import MockServer

    with MockServer({"strict": True, "matches": [{"response": feedback(7)}]}) as url:
        pass  # started and stopped: nothing listens there now
    with ICRM(engine="mock", base_url=url, num_shots=0, max_retries=0) as icrm:
        with pytest.raises(EngineError, match="could not answer 2 of 2 sample"):
            reward_function(icrm)(prompts=["a", "b"], completions=["c", "d"])
    with ICRM(engine="mock", base_url=url, num_shots=0, max_retries=0, rm_type="listwise") as icrm:
        with pytest.raises(EngineError, match="could not answer 2 of 2 sample"):
            reward_function(icrm)(prompts=["a", "a", "b", "b"], completions=["c", "d", "e", "f"])


trl = pytest.importorskip("trl", reason="TRL is a test extra: pip install -e '.[test]'")


@pytest.mark.slow
@pytest.mark.mock_llm({"strict": True, "matches": [GROUP_RULES["matches"][0], {"response": feedback(8)}]})
def test_grpo_trainer_trains_two_steps_on_icrm_rewards(mock_llm, tmp_path, embedded_hf_dir):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    policy = str(embedded_hf_dir)  # the embedded SmolLM2-135M, as Hugging Face weights
    dataset = Dataset.from_dict({"prompt": [[{"role": "user", "content": f"Name a colour ({i})."}] for i in range(8)]})
    config = GRPOConfig(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=4, num_generations=4,
                        max_completion_length=8, logging_steps=1, report_to=[], use_cpu=True, bf16=False,
                        learning_rate=1e-6, save_strategy="no", seed=0)
    with judge(mock_llm) as icrm, judge(mock_llm, rm_type="listwise") as groups:
        trainer = GRPOTrainer(model=policy, reward_funcs=[reward_function(icrm), reward_function(groups)],
                              args=config, train_dataset=dataset)
        trainer.train()
    logs = [entry for entry in trainer.state.log_history if "rewards/icrm_individual/mean" in entry]
    assert trainer.state.global_step == 2 and len(logs) == 2
    assert all(entry["rewards/icrm_individual/mean"] == pytest.approx(7 / 9) for entry in logs)
    # each prompt's 4 rollouts judged as one group: the listwise scores by label, mean 20/36
    assert all(entry["rewards/icrm_listwise/mean"] == pytest.approx(20 / 36) for entry in logs)
    judged = [json.dumps(r["body"]) for r in mock_llm.requests()]
    single = [body for body in judged if "<|begin_of_response_1|>" not in body]
    grouped = [body for body in judged if "<|begin_of_response_1|>" in body]
    assert len(single) == 8 and all("Name a colour" in body for body in single)  # 2 steps x 4 completions
    assert len(grouped) == 2 and all("<|begin_of_response_4|>" in b and "<|begin_of_response_5|>" not in b
                                     for b in grouped)
    assert not any(math.isnan(entry.get("loss", 0.0)) for entry in trainer.state.log_history)
