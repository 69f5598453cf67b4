"""A mock OpenAI- and Anthropic-compatible LLM server with programmed answers, for tests."""

from .app import create_mock_app
from .config import MockConfig, MockRule, MockUsage
from .server import MockServer, serve_mock

__all__ = ["MockServer", "MockConfig", "MockRule", "MockUsage", "create_mock_app", "serve_mock"]
