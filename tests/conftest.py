"""Shared fixtures: a clean environment for every test, and paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["icrm.testing"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
PROVIDER_KEYS = (
    "OPENAI_API_KEY", "OPENAI_BASE_URL", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT",
    "TOGETHER_API_KEY", "MISTRAL_API_KEY", "DEEPSEEK_API_KEY", "XAI_API_KEY",
    "FIREWORKS_API_KEY", "GEMINI_API_KEY", "ANTHROPIC_API_KEY",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's ICRM_* settings or provider keys."""
    for name in list(os.environ):
        if name.startswith("ICRM_") or name in PROVIDER_KEYS:
            monkeypatch.delenv(name)


def user_assistant(query: str, response: str, *earlier: str) -> list[dict[str, str]]:
    """A conversation: `earlier` user/assistant turns, then `query` and `response`."""
    turns = [*earlier, query, response]
    return [{"role": ("user", "assistant")[i % 2], "content": t} for i, t in enumerate(turns)]
