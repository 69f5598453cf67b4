"""ICRM construction and argument handling that needs no model."""

import pytest

from icrm import ICRM, ConfigError, InputError
from tests.conftest import user_assistant

UNUSED_SERVER = ["http://127.0.0.1:9/v1"]


def test_default_engine_is_the_embedded_model_and_named_models_default_to_vllm():
    with ICRM(worker_addrs=UNUSED_SERVER) as icrm:
        assert (icrm.engine.name, icrm.model_name, icrm.engine.completion) == ("llamacpp", "SmolLM2-135M-Instruct-Q4_1", False)
    with ICRM(model_name="org/some-model", worker_addrs=UNUSED_SERVER) as icrm:
        assert (icrm.engine.name, icrm.engine.completion) == ("vllm", True)


def test_closed_icrm_refuses_work():
    icrm = ICRM(worker_addrs=UNUSED_SERVER)
    icrm.close()
    with pytest.raises(ConfigError, match="closed"):
        icrm.judge(conversation=user_assistant("q", "a"))


def test_wrong_mode_calls_are_clear_errors():
    with ICRM(worker_addrs=UNUSED_SERVER) as icrm:
        with pytest.raises(ConfigError, match="rm_type='individual'; build one with rm_type='pairwise'"):
            icrm.pairwise_rm(user_assistant("q", "a"), user_assistant("q", "b"))
        with pytest.raises(InputError, match="individual mode needs 'conversation'"):
            icrm.judge(conversation_A=user_assistant("q", "a"))


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"engine": "together", "model_name": "m"}, "set TOGETHER_API_KEY"),
        ({"engine": "mistral", "model_name": "m", "api_key": "k", "completion": True}, "'mistral' has no completion mode"),
        ({"engine": "openai"}, "needs a model"),
        ({"engine": "llamacpp", "model_name": "missing.gguf"}, "needs a local .gguf file"),
        ({"engine": "sglang", "model_name": "m"}, "pip install 'icrm[sglang]'"),
        ({"max_retries": -1}, "max_retries must be a whole number >= 0"),
        ({"engine": "claude", "model_name": "m", "api_key": "k", "constrain_output": True}, "cannot constrain output"),
        ({"engine": "anthropic", "model_name": "m", "completion": True}, "'claude' has no completion mode"),
        ({"engine": "azure", "model_name": "m", "api_key": "k"}, "set AZURE_OPENAI_ENDPOINT or pass base_url"),
        ({"completion": "maybe"}, "completion must be a boolean"),
        ({"timeout": "abc"}, "timeout must be a finite number, got 'abc'"),
        ({"timeout": -5}, "timeout must be a number > 0, got -5"),
        ({"use_cache": "maybe"}, "use_cache must be a boolean"),
    ],
)
def test_engine_configuration_errors_name_the_fix(kwargs, expected):
    with pytest.raises(ConfigError) as info:
        ICRM(**kwargs)
    assert expected in str(info.value)

