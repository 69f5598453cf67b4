"""Judging methods: how a judgement is asked of the engine and read back.

A method decides how the prompt ends, what the engine is asked for (the full critique,
a few tokens, one token with logprobs) and how its answer becomes a verdict. Each lives
in its own module behind `JudgingMethod`; `get_method` finds one by name.
"""

from __future__ import annotations

from .base import DEFAULT_GENERATION_KWARGS, METHODS, JudgingMethod, get_method, method_names

__all__ = ["JudgingMethod", "get_method", "method_names", "METHODS", "DEFAULT_GENERATION_KWARGS"]
