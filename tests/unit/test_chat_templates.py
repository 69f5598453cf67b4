"""Chat-templated prompts split back into turns, on text rendered by llama.cpp's own
template code (`llama_chat_apply_template`, the renderer llama-server uses) for each
family, with and without the BOS text 🤗 tokenizers' templates add."""

import ctypes

import pytest

from icrm.chat_templates import END_TOKENS, split_templated
from icrm.integrations.openrlhf import split_query

llama_cpp = pytest.importorskip("llama_cpp")

SYSTEM, FIRST, REPLY, QUESTION, RESPONSE = "Be brief.", "Hi there", "Hello! How can I help?", "What is 2+2?", "4, of course."
# llama.cpp template name -> (family BOS as 🤗 renders it, whether the system prompt keeps its own turn)
FAMILIES = {
    "chatml": ("", True),  # Qwen 2.5 / 3, SmolLM2, Yi
    "llama3": ("<|begin_of_text|>", True),
    "mistral-v1": ("<s>", False),
    "mistral-v3": ("<s>", False),
    "mistral-v7": ("<s>", True),
    "gemma": ("<bos>", False),
    "deepseek3": ("<｜begin▁of▁sentence｜>", True),  # DeepSeek V3 / R1
}


def render(template, messages, add_assistant):
    chat = (llama_cpp.llama_chat_message * len(messages))(
        *[llama_cpp.llama_chat_message(role=m["role"].encode(), content=m["content"].encode()) for m in messages])
    buffer = ctypes.create_string_buffer(1 << 16)
    n = llama_cpp.llama_chat_apply_template(template.encode(), chat, len(messages), add_assistant, buffer, 1 << 16)
    assert n > 0, f"llama.cpp does not know the template {template}"
    return buffer.raw[:n].decode()


def conversation(system=True):
    turns = [{"role": "user", "content": FIRST}, {"role": "assistant", "content": REPLY},
             {"role": "user", "content": QUESTION}]
    return ([{"role": "system", "content": SYSTEM}] if system else []) + turns


@pytest.mark.parametrize("bos", [False, True], ids=["as llama.cpp renders", "with the BOS text"])
@pytest.mark.parametrize("template", FAMILIES)
def test_a_templated_prompt_and_query_become_the_turns(template, bos):
    prefix, own_system = FAMILIES[template]
    prefix = prefix if bos else ""
    prompt = prefix + render(template, conversation(), True)
    query = prefix + render(template, [*conversation(), {"role": "assistant", "content": RESPONSE}], False)
    assert query.startswith(prompt)
    turns = split_templated(prompt, query)
    expected = [("user", FIRST), ("assistant", REPLY), ("user", QUESTION), ("assistant", RESPONSE)]
    if own_system:
        expected.insert(0, ("system", SYSTEM))
    got = [(t["role"], t["content"]) for t in turns]
    if not own_system:  # the template folds the system prompt into the first user turn
        assert got[0][0] == "user" and SYSTEM in got[0][1] and FIRST in got[0][1]
        got[0] = ("user", FIRST)
    assert got == expected
    for turn in turns:
        assert not any(token in turn["content"] for token in (*END_TOKENS, "<|im_start|>", "[INST]", "<｜User｜>"))


@pytest.mark.parametrize("template", FAMILIES)
def test_the_service_splits_openrlhf_queries_and_a_query_alone(template):
    prompt = render(template, conversation(system=False), True)
    query = render(template, [*conversation(system=False), {"role": "assistant", "content": RESPONSE}], False)
    for turns in (split_query(query, prompt), split_query(query, "")):
        assert turns[-1] == {"role": "assistant", "content": RESPONSE}
        assert turns[-2] == {"role": "user", "content": QUESTION}


def test_deepseek_r1_thinking_prefix_stays_with_the_response():
    prompt = "<｜begin▁of▁sentence｜><｜User｜>2+2?<｜Assistant｜><think>\n"
    query = prompt + "add them</think>4<｜end▁of▁sentence｜>"
    assert split_templated(prompt, query)[-1] == {"role": "assistant", "content": "<think>\nadd them</think>4"}


def test_plain_text_is_left_to_the_caller():
    assert split_templated("What is 2+2?", "What is 2+2? 4") is None
    assert split_query("What is 2+2? 4", "What is 2+2?") == [{"role": "user", "content": "What is 2+2?"},
                                                            {"role": "assistant", "content": " 4"}]
    # A literal marker inside plain text does not make it a template.
    assert split_templated("Explain [/INST] tags", "Explain [/INST] tags: they end an instruction") is None
