"""Engines: talking to LLMs. Nothing here knows about shots or templates."""

from .base import Engine, GenerationKwargs, GenerationRequest, GenerationResult, Usage
from .registry import API_ENGINES, ENGINE_NAMES, LOCAL_ENGINES, create_engine
from .usage import UsageTotals
from .worker import Worker

__all__ = [
    "Engine",
    "GenerationKwargs",
    "GenerationRequest",
    "GenerationResult",
    "Usage",
    "API_ENGINES",
    "ENGINE_NAMES",
    "LOCAL_ENGINES",
    "create_engine",
    "UsageTotals",
    "Worker",
]
