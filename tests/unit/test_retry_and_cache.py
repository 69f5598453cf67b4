"""Retry decisions, Retry-After parsing and cache keys (no sockets)."""

import email.utils
import time

import pytest

from icrm.engines.base import Engine, GenerationRequest
from icrm.engines.cache import GenerationCache, cache_key
from icrm.engines.openai_compatible import retry_after_seconds
from icrm.engines.retry import RetryPolicy, is_retryable
from icrm.errors import ConfigError, EngineConnectionError, EngineStatusError, EngineTimeoutError


@pytest.mark.parametrize(("error", "retry"), [
    (EngineConnectionError("x"), True), (EngineTimeoutError("x"), True),
    (EngineStatusError("x", 429), True), (EngineStatusError("x", 500), True), (EngineStatusError("x", 503), True),
    (EngineStatusError("x", 400), False), (EngineStatusError("x", 401), False), (EngineStatusError("x", 404), False),
    (ConfigError("x"), False),
])
def test_what_is_retried(error, retry):
    assert is_retryable(error) is retry


def test_retry_after_headers():
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    date = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < retry_after_seconds({"retry-after": date}) <= 30
    assert retry_after_seconds({}) is None


def test_policy_from_environment(monkeypatch):
    monkeypatch.setenv("ICRM_RETRY_ATTEMPTS", "5")
    monkeypatch.setenv("ICRM_RETRY_WAIT_MIN", "0.5")
    monkeypatch.setenv("ICRM_RETRY_WAIT_MAX", "4")
    assert RetryPolicy.from_env() == RetryPolicy(4, 0.5, 4.0)
    assert RetryPolicy.from_env(max_retries=0).max_retries == 0  # the argument wins
    monkeypatch.setenv("ICRM_RETRY_ATTEMPTS", "lots")
    with pytest.raises(ConfigError, match="ICRM_RETRY_ATTEMPTS"):
        RetryPolicy.from_env()


class _Engine(Engine):
    """Only its identity matters to the cache key; it is never called."""

    def __init__(self, name="openai", model="m"):
        self.name, self.model, self.completion = name, model, True

    async def generate(self, request):
        raise AssertionError("not called")


def test_cache_key_covers_everything_that_changes_the_answer():
    request = GenerationRequest(prompt="p", kwargs={"temperature": 0.0, "max_tokens": 10})
    base = cache_key(_Engine(), request)
    assert base == cache_key(_Engine(), GenerationRequest(prompt="p", kwargs={"max_tokens": 10, "temperature": 0.0}))
    assert base != cache_key(_Engine(), GenerationRequest(prompt="p", kwargs={"temperature": 0.1, "max_tokens": 10}))
    assert base != cache_key(_Engine(), GenerationRequest(prompt="p2", kwargs=request.kwargs))
    assert base != cache_key(_Engine(model="m2"), request)
    assert base != cache_key(_Engine(name="together"), request)
    assert base != cache_key(_Engine(), GenerationRequest(messages=[{"role": "user", "content": "p"}], kwargs=request.kwargs))


def test_unwritable_cache_dir_is_a_config_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="cannot open the generation cache"):
        GenerationCache(blocker / "sub").get("k")
