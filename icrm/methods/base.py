"""The judging-method seam: `JudgingMethod`, and the registry of methods by name."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ..engines.base import GenerationRequest, GenerationResult
from ..feedback import END_OF_FEEDBACK, Feedback
from ..registry import Registry
from ..rm_types import RMType

__all__ = ["JudgingMethod", "get_method", "method_names", "METHODS", "DEFAULT_GENERATION_KWARGS"]

# The original IC-RM's generation defaults; a method's own, then a caller's, override
# them key by key (`icrm.provenance.generation_kwargs`).
DEFAULT_GENERATION_KWARGS: dict[str, Any] = {
    "stop": [END_OF_FEEDBACK],
    "temperature": 0.0,
    "max_tokens": 3072,
    "top_p": 1.0,
}

class JudgingMethod(ABC):
    """How one judgement is asked and read.

    Attributes:
        name: the method's name (``critique``, ...).
        needs_logprobs: whether the engine must return token logprobs.
        prefers_completion: whether completion mode (the prompt continued as written)
            suits it better than chat, where the engine has both and the caller did
            not choose.
    """

    name: ClassVar[str]
    needs_logprobs: ClassVar[bool] = False
    prefers_completion: ClassVar[bool] = False

    def default_kwargs(self, rm_type: RMType) -> dict[str, Any]:
        """Generation kwargs this method sets over the defaults (a caller's still win)."""
        return {}

    def answer_keys(self, rm_type: RMType) -> list[str]:
        """The keys of the object the judge writes (default: the whole feedback)."""
        return rm_type.keys()

    def shot_feedback(self, rm_type: RMType, feedback: dict[str, Any]) -> dict[str, Any]:
        """What a shot shows as its feedback (default: what the rm type shows, all of it
        but for a rubric's part)."""
        return dict(rm_type.shot_feedback(feedback))

    def check_item(self, rm_type: RMType) -> None:
        """Refuse an item this method cannot judge (its group's size spec given).

        Raises:
            InputError: naming the limit.
        """

    def default_templates(self, rm_type: RMType) -> tuple[str, str, str]:
        """The names of the default overall, shot and feedback templates (in
        ``icrm/templates``) for `rm_type`."""
        stem = rm_type.template_name
        return stem, f"{stem}_shot", f"{stem}_feedback"

    @abstractmethod
    def request(self, prompt: str, rm_type: RMType, *, completion: bool, constrain: bool,
                kwargs: dict[str, Any]) -> GenerationRequest:
        """The engine request for a rendered prompt.

        Args:
            prompt: the prompt text, ending where the judge's answer begins.
            rm_type: the rm type judged.
            completion: True for completion mode (a raw prompt), False for chat mode.
            constrain: ask the server to constrain the answer to the method's schema.
            kwargs: the generation kwargs in effect (defaults merged with the caller's).
        """

    @abstractmethod
    def read_all(self, result: GenerationResult, rm_type: RMType, examples: Sequence[Mapping[str, Any]] = (),
                 **envelope: Any) -> list[Feedback]:
        """One feedback per choice of an engine result (``n`` samples give ``n``), the
        request's usage on the first. An unusable answer is not raised: its
        ``parse_error`` says why. `examples` are the prompt's format examples
        (`icrm.parsing.template_examples`): an answer repeating one is never a verdict.

        Raises:
            ConfigError: (with ``fatal`` in its context) the engine cannot serve this
                method at all — every item would fail the same way.
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def method_names() -> Sequence[str]:
    """Every method name."""
    return METHODS.names()


def get_method(name: str | JudgingMethod) -> JudgingMethod:
    """The method called `name` (a method is returned as it is): one instance per
    method, shared (methods hold no state).

    Raises:
        ConfigError: an unknown name, listing the known ones.
    """
    return name if isinstance(name, JudgingMethod) else METHODS.get(name)


# name -> "module:INSTANCE", imported when first chosen.
METHODS: Registry[JudgingMethod] = Registry("method", {
    "critique": "icrm.methods.critique:CRITIQUE",
    "verdict": "icrm.methods.verdict:VERDICT",
    "logprob": "icrm.methods.logprob:LOGPROB",
})
