"""pytest fixtures for code that calls an LLM, backed by icrm's mock server.

Enable them in ``conftest.py``::

    pytest_plugins = ["icrm.testing"]

then give each test its rules with the ``mock_llm`` marker (a dict or a YAML path)::

    @pytest.mark.mock_llm({"matches": [{"contains": ["hello"], "response": "hi"}]})
    def test_greeting(mock_llm):
        client = openai.OpenAI(base_url=mock_llm.base_url, api_key="unused")
        ...
        assert mock_llm.requests()[0]["body"]["model"] == "my-model"

Without the marker the server answers every prompt with `DEFAULT_RESPONSE`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .mock import MockServer

__all__ = ["mock_llm", "DEFAULT_RESPONSE"]

DEFAULT_RESPONSE = "mock response"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "mock_llm(config): rules for the mock_llm fixture (a dict or a YAML path)"
    )


@pytest.fixture
def mock_llm(request: pytest.FixtureRequest) -> Iterator[MockServer]:
    """A running `MockServer` on a free 127.0.0.1 port, stopped after the test.

    Its config comes from the test's ``mock_llm`` marker, else one rule answering
    `DEFAULT_RESPONSE` to everything.
    """
    marker = request.node.get_closest_marker("mock_llm")
    config = marker.args[0] if marker and marker.args else {"matches": [{"response": DEFAULT_RESPONSE}]}
    server = MockServer(config)
    server.start()
    try:
        yield server
    finally:
        server.stop()
