"""Agent trajectories (tool calls, tool results, typed content) rendered as judgeable
turns, in the shapes TRL passes them (OpenAI-style messages; arguments as a JSON string
or a dict)."""

import pytest

from icrm.conversation import Conversation
from icrm.errors import InputError
from icrm.trajectory import judgeable_turns

TOOL_CALL = {"role": "assistant", "content": None, "tool_calls": [
    {"id": "call_1", "type": "function", "function": {"name": "search", "arguments": '{"q": "capital of France"}'}}]}
TOOL_RESULT = {"role": "tool", "tool_call_id": "call_1", "name": "search", "content": "Paris is the capital."}
ANSWER = {"role": "assistant", "content": "Paris."}


def test_a_tool_trajectory_is_one_assistant_turn_with_everything_in_it():
    turns = judgeable_turns([{"role": "system", "content": "Use tools."}, {"role": "user", "content": "Capital?"}],
                            [TOOL_CALL, TOOL_RESULT, ANSWER])
    assert [t["role"] for t in turns] == ["system", "user", "assistant"]
    response = turns[-1]["content"]
    assert response == ('[tool call] search({"q": "capital of France"})\n\n'
                        "[tool result: search] Paris is the capital.\n\nParis.")
    Conversation.from_messages(turns)  # what the judge accepts


def test_tool_turns_in_the_prompt_history_keep_the_alternation():
    prompt = [{"role": "user", "content": "Capital?"}, TOOL_CALL, TOOL_RESULT, ANSWER,
              {"role": "user", "content": "And Spain?"}]
    turns = judgeable_turns(prompt, [{"role": "assistant", "content": "Madrid."}])
    assert [t["role"] for t in turns] == ["user", "assistant", "user", "assistant"]
    assert turns[1]["content"].endswith("Paris.") and turns[-1]["content"] == "Madrid."
    Conversation.from_messages(turns)


def test_plain_text_typed_parts_and_empty_completions():
    assert judgeable_turns("2+2?", "4") == [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    parts = judgeable_turns([{"role": "user", "content": [{"type": "text", "text": "What is "},
                                                          {"type": "image"}, {"type": "text", "text": "this?"}]}], "")
    assert parts == [{"role": "user", "content": "What is [image]this?"}, {"role": "assistant", "content": ""}]
    assert judgeable_turns("Q", [])[-1] == {"role": "assistant", "content": ""}
    dict_arguments = {"role": "assistant", "tool_calls": [{"function": {"name": "add", "arguments": {"a": 1}}}]}
    assert judgeable_turns("Q", [dict_arguments])[-1]["content"] == '[tool call] add({"a": 1})'


@pytest.mark.parametrize("prompt, completion, field", [
    (None, "x", "prompt"), ("q", 7, "completion"), ("q", [{"content": "no role"}], "completion message 0"),
])
def test_what_is_not_a_message_is_an_input_error_naming_it(prompt, completion, field):
    with pytest.raises(InputError, match=f"sample 3: {field}"):
        judgeable_turns(prompt, completion, "sample 3")
