"""icrm as verl's custom reward function, called by verl's own code: its reward-loop
worker (`RewardLoopWorker`, the default reward path, which loads the function with
`get_custom_reward_fn` and calls it through the `naive` reward manager) and its batch
reward manager. verl 0.9.1 is installed with --no-deps plus the few packages this code
path imports (`.ci/run`); the policy's tokenizer is the embedded model's."""

import asyncio
import importlib.util

import pytest

from icrm.errors import ConfigError
from icrm.integrations import verl as icrm_verl
from tests.integration.helpers import feedback

pytestmark = pytest.mark.skipif(importlib.util.find_spec("verl") is None,
                                reason="verl is not installed (.ci/run: pip install --no-deps verl==0.9.1 ...)")
RULES = {"strict": True, "matches": [
    {"contains": ["<|begin_of_query|>\nWhat is 2+2?\n<|end_of_query|>", "<|begin_of_response|>\n4\n"],
     "response": feedback(10)},
    {"contains": ["UNJUDGEABLE"], "response": "no verdict"},
    {"response": feedback(4)},
]}
SAMPLES = [("What is 2+2?", "4"), ("What is 2+2?", "5"), ("UNJUDGEABLE question", "x")]


def reward_kwargs(mock):
    return {"engine": "mock", "base_url": mock.base_url, "num_shots": 0, "max_retries": 0}


def verl_config(mock, name):
    from omegaconf import OmegaConf

    from icrm.engines.local import embedded_model_hf_dir

    return OmegaConf.create({
        "actor_rollout_ref": {"model": {"path": str(embedded_model_hf_dir()), "tokenizer_path": None}},
        "reward": {"reward_model": {"enable": False}, "reward_manager": {"source": "register", "name": "naive"},
                   "custom_reward_function": {"path": "pkg://icrm.integrations.verl", "name": name,
                                              "reward_kwargs": reward_kwargs(mock)}},
    })


def rollout_batch(tokenizer, samples, with_prompt=True):
    """A `DataProto` as verl's rollout leaves it: prompt and response ids (left / right
    padded), the attention mask over both, and the dataset's non-tensor fields."""
    import numpy as np
    import torch
    from verl import DataProto

    def padded(texts, left):
        ids = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        width = max(len(i) for i in ids)
        pad = tokenizer.pad_token_id or 0
        rows = [([pad] * (width - len(i)) + i) if left else (i + [pad] * (width - len(i))) for i in ids]
        mask = [([0] * (width - len(i)) + [1] * len(i)) if left else ([1] * len(i) + [0] * (width - len(i))) for i in ids]
        return torch.tensor(rows), torch.tensor(mask)

    prompts, prompt_mask = padded([p for p, _ in samples], left=True)
    responses, response_mask = padded([r for _, r in samples], left=False)
    extra = [{"prompt": p} if with_prompt else {"index": i} for i, (p, _) in enumerate(samples)]
    return DataProto.from_dict(
        tensors={"prompts": prompts, "responses": responses,
                 "attention_mask": torch.cat([prompt_mask, response_mask], dim=1)},
        non_tensors={"data_source": np.array(["mine"] * len(samples), dtype=object),
                     "reward_model": np.array([{"ground_truth": ""} for _ in samples], dtype=object),
                     "extra_info": np.array(extra, dtype=object)})


@pytest.mark.mock_llm(RULES)
@pytest.mark.parametrize("name", ["compute_score", "compute_score_async"])
def test_verls_reward_loop_worker_calls_compute_score(mock_llm, name):
    from verl.experimental.reward_loop.reward_loop import RewardLoopWorker

    config = verl_config(mock_llm, name)

    async def run():
        worker = RewardLoopWorker(config)  # built on the running loop, as Ray builds it in its actor
        return await worker.compute_score_batch(rollout_batch(worker.input_tokenizer, SAMPLES))

    outputs = asyncio.run(run())
    assert [o["reward_score"] for o in outputs] == [1.0, pytest.approx(3 / 9), 0.0]
    assert [o["reward_extra_info"]["icrm_score"] for o in outputs] == [10.0, 4.0, 0.0]
    assert [o["reward_extra_info"]["icrm_failed"] for o in outputs] == [0.0, 0.0, 1.0]
    from icrm.integrations.shared import _SHARED

    judges = [key for key in _SHARED if mock_llm.base_url in key[1]]
    assert len(judges) == 1 and len(mock_llm.requests()) == 3  # one ICRM for the process, each sample judged once


@pytest.mark.mock_llm(RULES)
def test_verls_batch_reward_manager_calls_compute_score_batch(mock_llm):
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.workers.reward_manager.batch import BatchRewardManager

    from icrm.engines.local import embedded_model_hf_dir

    config = verl_config(mock_llm, "compute_score_batch")
    tokenizer = pytest.importorskip("transformers").AutoTokenizer.from_pretrained(embedded_model_hf_dir())
    manager = BatchRewardManager(tokenizer, num_examine=0, compute_score=get_custom_reward_fn(config))
    result = manager(rollout_batch(tokenizer, SAMPLES), return_dict=True)
    assert result["reward_extra_info"]["score"] == [1.0, pytest.approx(3 / 9), 0.0]
    assert result["reward_extra_info"]["icrm_failed"] == [0.0, 0.0, 1.0]
    assert result["reward_tensor"].sum().item() == pytest.approx(1 + 3 / 9)


@pytest.mark.mock_llm(RULES)
def test_a_missing_prompt_is_a_clear_error_and_the_process_shares_one_judge(mock_llm):
    kwargs = reward_kwargs(mock_llm)
    with pytest.raises(ConfigError, match=r"extra_info\['prompt'\].*preprocessing"):
        icrm_verl.compute_score("mine", "4", "", extra_info={"index": 0}, **kwargs)
    first = icrm_verl.compute_score("mine", "4", "", extra_info={"prompt": "What is 2+2?"}, **kwargs)
    again = icrm_verl.compute_score("mine", "5", "", extra_info={"prompt": "What is 2+2?"}, failure_reward=0.5,
                                    **kwargs)
    assert (first["score"], again["score"]) == (1.0, pytest.approx(3 / 9))
    assert icrm_verl.shared_icrm(kwargs) is icrm_verl.shared_icrm(dict(kwargs))
    assert icrm_verl.compute_score("mine", "x", "", {"prompt": "UNJUDGEABLE"}, failure_reward=0.5, **kwargs)["score"] == 0.5
    with pytest.raises(ConfigError, match="rm_type to individual"):
        icrm_verl.compute_score("mine", "4", "", {"prompt": "q"}, rm_type="pairwise", **kwargs)


GROUP_RULES = {"strict": True, "matches": [
    {"contains": ["<|begin_of_response_3|>"],
     "response": '{"analysis": {"1": "a", "2": "b", "3": "c"}, "scores": {"1": 2, "2": 10, "3": 6}}'},
    {"contains": ["<|begin_of_response_2|>"], "response": "no verdict"},
]}


@pytest.mark.mock_llm(GROUP_RULES)
def test_verls_batch_reward_manager_judges_each_prompts_responses_as_a_group(mock_llm):
    from verl.trainer.ppo.reward import get_custom_reward_fn
    from verl.workers.reward_manager.batch import BatchRewardManager

    from icrm.engines.local import embedded_model_hf_dir

    config = verl_config(mock_llm, "compute_score_batch")
    config.reward.custom_reward_function.reward_kwargs.rm_type = "listwise"
    tokenizer = pytest.importorskip("transformers").AutoTokenizer.from_pretrained(embedded_model_hf_dir())
    manager = BatchRewardManager(tokenizer, num_examine=0, compute_score=get_custom_reward_fn(config))
    # three rollouts of Q1 (interleaved with Q2's two, whose answer has no verdict), and Q3 alone
    samples = [("Q1", "r1"), ("Q2", "s1"), ("Q1", "r2"), ("Q2", "s2"), ("Q1", "r3"), ("Q3", "t1")]
    result = manager(rollout_batch(tokenizer, samples), return_dict=True)
    assert result["reward_extra_info"]["score"] == [pytest.approx(1 / 9), 0.0, 1.0, 0.0, pytest.approx(5 / 9), 0.0]
    assert result["reward_extra_info"]["icrm_failed"] == [0.0, 1.0, 0.0, 1.0, 0.0, 1.0]
    assert result["reward_extra_info"]["icrm_score"][:5:2] == [2.0, 10.0, 6.0]
    assert len(mock_llm.requests()) == 2  # one request per group of two or more; Q3 alone is not sent
