import pytest

from icrm import Conversation, InputError
from icrm.conversation import check_same_context
from tests.conftest import user_assistant


def test_split_single_turn_has_no_history():
    c = Conversation.from_messages(user_assistant("I want to book a flight", "Where to?"))
    assert (c.history, c.user_query, c.model_output) == ("N/A", "I want to book a flight", "Where to?")


def test_split_multi_turn_renders_history_with_roles():
    messages = [{"role": "system", "content": "Be brief."}, *user_assistant("q2", "a2", "q1", "a1")]
    c = Conversation.from_messages(messages)
    assert c.history == "SYSTEM: Be brief.\n\nUSER: q1\n\nASSISTANT: a1"
    assert (c.user_query, c.model_output) == ("q2", "a2")


def test_text_parts_content_is_joined():
    c = Conversation.from_messages([
        {"role": "user", "content": [{"type": "text", "text": "he"}, {"type": "text", "text": "llo"}]},
        {"role": "assistant", "content": "hi"},
    ])
    assert c.user_query == "hello"


@pytest.mark.parametrize(
    ("messages", "expected"),
    [
        ("hello", "expected a list"),
        ([{"role": "assistant", "content": "hi"}], "at least 2 turns"),
        ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "turn 1: expected role 'assistant', got 'user'"),
        ([{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}], "turn 0: expected role 'user', got 'assistant'"),
        (user_assistant("q", "a") + [{"role": "user", "content": "more"}], "turn 2: the last turn must be the assistant"),
        ([{"role": "user", "content": "q"}, {"role": "system", "content": "s"}], "turn 1: expected role 'assistant', got 'system'"),
        ([{"role": "user", "content": "q"}, {"role": "bot", "content": "a"}], "turn 1: 'role' must be one of"),
        ([{"role": "user"}, {"role": "assistant", "content": "a"}], "turn 0: missing 'content'"),
        ([{"role": "user", "content": 3}, {"role": "assistant", "content": "a"}], "turn 0: 'content' must be a string"),
        (["user: hi", {"role": "assistant", "content": "a"}], "turn 0: expected a {'role', 'content'} dict"),
    ],
)
def test_invalid_conversations_name_the_turn(messages, expected):
    with pytest.raises(InputError, match=None) as info:
        Conversation.from_messages(messages)
    assert expected in str(info.value)


def test_pairwise_conversations_must_share_history_and_query():
    a = Conversation.from_messages(user_assistant("q", "A"))
    check_same_context(a, Conversation.from_messages(user_assistant("q", "B")))  # same query: fine
    with pytest.raises(InputError, match="differ at turn 0"):
        check_same_context(a, Conversation.from_messages(user_assistant("other query", "B")))
    with pytest.raises(InputError, match="4 and 2 turns"):
        check_same_context(Conversation.from_messages(user_assistant("q", "A", "q0", "a0")), a)
