"""Engine failures against real sockets on 127.0.0.1."""

import pytest

from icrm import ICRM, EngineConnectionError
from tests.conftest import user_assistant


def test_api_key_never_appears_in_errors():
    with ICRM(engine="openai", model_name="m", api_key="sk-secret-123", base_url="http://127.0.0.1:9/v1", timeout=2) as icrm:
        with pytest.raises(EngineConnectionError) as info:
            icrm.judge(conversation=user_assistant("q", "a"))
    assert "sk-secret-123" not in str(info.value)
    assert "cannot connect" in str(info.value)
