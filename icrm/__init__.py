"""icrm: in-context reward modeling.

A general LLM becomes a reward model when it is shown a rubric and a few scored examples
(shots) before the conversation it must judge. `ICRM` scores one response (1–10) or
compares two (A++ / A+ / A=B / B+ / B++).
"""

import typing as _typing

from .config import ICRMConfig
from .conversation import Conversation, Turn
from .engines import Engine, GenerationRequest, GenerationResult, Usage, UsageTotals, create_engine
from .errors import (
    ConfigError,
    EngineConnectionError,
    EngineError,
    EngineStatusError,
    EngineTimeoutError,
    FeedbackParseError,
    ICRMError,
    InputError,
)
from .feedback import Feedback, IndividualFeedback, PairwiseFeedback
from .reward_model import DEFAULT_GENERATION_KWARGS, ICRM
from .rm_types import INDIVIDUAL, PAIRWISE, RMType, parse_feedback
from .shots import Shot, ShotsPool
from .template import Template

if _typing.TYPE_CHECKING:
    from .mock import MockServer


def __getattr__(name: str) -> _typing.Any:
    # The mock server pulls in FastAPI and uvicorn: imported when first asked for, so
    # `import icrm` starts no HTTP machinery.
    if name == "MockServer":
        from .mock import MockServer

        return MockServer
    raise AttributeError(f"module 'icrm' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), "MockServer"})

__version__ = "0.1.0"

__all__ = [
    "ICRM",
    "ICRMConfig",
    "RMType",
    "INDIVIDUAL",
    "PAIRWISE",
    "DEFAULT_GENERATION_KWARGS",
    "Conversation",
    "Turn",
    "ShotsPool",
    "Shot",
    "Template",
    "Feedback",
    "IndividualFeedback",
    "PairwiseFeedback",
    "parse_feedback",
    "Engine",
    "GenerationRequest",
    "GenerationResult",
    "Usage",
    "UsageTotals",
    "create_engine",
    "MockServer",
    "ICRMError",
    "ConfigError",
    "InputError",
    "EngineError",
    "EngineConnectionError",
    "EngineTimeoutError",
    "EngineStatusError",
    "FeedbackParseError",
]
