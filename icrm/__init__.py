"""icrm: in-context reward modeling.

A general LLM becomes a reward model when it is shown a rubric and a few scored examples
(shots) before the conversation it must judge. `ICRM` scores one response (1–10) or
compares two (A++ / A+ / A=B / B+ / B++).
"""

from .conversation import Conversation, Turn
from .engines import Engine, GenerationRequest, GenerationResult, Usage, create_engine
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
from .feedback import Feedback, IndividualFeedback, PairwiseFeedback, parse_feedback
from .mock import MockServer
from .reward_model import DEFAULT_GENERATION_KWARGS, ICRM
from .shots import Shot, ShotsPool
from .template import Template

__version__ = "0.1.0"

__all__ = [
    "ICRM",
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
