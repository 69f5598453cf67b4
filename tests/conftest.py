"""Shared fixtures: a clean environment for every test, and paths."""

from __future__ import annotations

import importlib.util
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


@pytest.fixture(scope="session")
def embedded_hf_dir() -> Path:
    """The embedded model as Hugging Face weights (a policy or tokenizer for the trainers'
    tests); skips, saying why, where torch, transformers or gguf is missing."""
    for module in ("torch", "transformers", "gguf"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (scripts/setup_tests.sh installs it)")
    from icrm.engines.local import embedded_model_hf_dir

    return embedded_model_hf_dir()
