"""The request bodies the reward service accepts: Infernet's and icrm's batch (OpenRLHF's
is `icrm.integrations.openrlhf.OpenRLHFRequest`).

Pydantic models, so FastAPI validates them and documents them in ``/openapi.json``;
each field has its docstring. Numbers are finite (``"temperature": Infinity`` is a 422).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..config import GroupStrategyName, InconsistentPairs, MethodName, PositionName, RMTypeName
from ..errors import InputError
from ..inputs import prompt_responses

__all__ = [
    "Message",
    "GenerationOverrides",
    "Item",
    "OffchainItem",
    "LLMRequestData",
    "InfernetInput",
    "RewardRequest",
    "GroupRequest",
]


class Message(BaseModel):
    """One OpenAI-style turn."""

    role: str
    """``system``, ``user`` or ``assistant``."""
    content: str | list[dict[str, Any]]
    """The text (or text parts)."""


class GenerationOverrides(BaseModel):
    """Per-request generation kwargs (all optional)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    temperature: float | None = Field(None, ge=0, allow_inf_nan=False)
    """Sampling temperature."""
    top_p: float | None = Field(None, gt=0, le=1, allow_inf_nan=False)
    """Nucleus sampling mass."""
    max_tokens: int | None = Field(None, ge=1)
    """Upper bound on generated tokens."""
    seed: int | None = None
    """Sampling seed."""
    num_shots: int | None = Field(None, ge=0)
    """Shots to show for this request (default: the server's)."""
    method: MethodName | None = None
    """The judging method for this request (default: the server's). ``logprob`` needs a
    server whose engine returns logprobs (a llama.cpp judge started with --method logprob)."""
    position: PositionName | None = None
    """Pairwise placement for this request (default: the server's)."""

    def kwargs(self) -> dict[str, Any]:
        """The generation kwargs that were given."""
        names = GenerationOverrides.model_fields.keys() - {"num_shots", "method", "position"}
        return {k: v for k in names if (v := getattr(self, k)) is not None}


class Item(BaseModel):
    """One thing to judge: ``conversation``, or ``conversation_A`` and ``conversation_B``."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    conversation: list[Message] | None = None
    """Individual mode: the conversation whose last (assistant) turn is judged."""
    conversation_A: list[Message] | None = None
    """Pairwise mode: the first conversation."""
    conversation_B: list[Message] | None = None
    """Pairwise mode: the second conversation (same history and query as A)."""
    reference: str | None = None
    """A reference answer: the judge grades against it (the reference-guided templates)."""
    rubric: str | None = None
    """A rubric or criteria, for templates that use ``{$rubric}``."""

    def inputs(self) -> dict[str, Any]:
        """The conversations and context fields that were given, as plain values."""
        out: dict[str, Any] = {k: [m.model_dump() for m in v] for k in ("conversation", "conversation_A", "conversation_B")
                               if (v := getattr(self, k)) is not None}
        out.update({k: v for k in ("reference", "rubric") if (v := getattr(self, k)) is not None})
        return out


class OffchainItem(Item, GenerationOverrides):
    """Infernet OFFCHAIN ``data`` in icrm's shape: an item plus optional overrides."""


class LLMRequestData(GenerationOverrides):
    """Infernet OFFCHAIN ``data`` in the shape of Infernet's LLM service request:
    ``text`` is judged as the final (assistant) message, ``history`` holds the earlier
    turns, ``{"player": ...}`` a user turn and ``{"bot": ...}`` an assistant turn, ending
    with the player's message the text answers. ``key`` and ``messageId`` are echoed."""

    text: str
    """The message to judge."""
    history: list[dict[str, str]] = Field(default_factory=list)
    """Earlier turns, oldest first: ``{"player": text}`` or ``{"bot": text}``."""
    key: str | None = None
    """The caller's key, echoed in the answer."""
    messageId: str | None = None  # noqa: N815 - the field's name in the contract
    """The caller's message id, echoed in the answer."""


class InfernetInput(BaseModel):
    """Infernet's job input: ``source`` 0 (CHAIN) or 1 (OFFCHAIN) and its ``data``."""

    source: Literal[0, 1]
    """0 = CHAIN (hex-encoded data; not supported), 1 = OFFCHAIN (a JSON object)."""
    data: dict[str, Any] | str
    """The job data: an `OffchainItem` or an `LLMRequestData` (told apart by ``text``)."""


class RewardRequest(GenerationOverrides):
    """``POST /v1/reward``."""

    rm_type: RMTypeName | None = None
    """Must match the server's rm_type when given."""
    items: list[Item] = Field(min_length=1)
    """What to judge; run concurrently."""


class GroupRequest(GenerationOverrides):
    """``POST /v1/reward/group``: one group — k ≥ 2 responses to one prompt — judged
    with the server's group strategy (or this request's), one reward per response."""

    id: str | None = None
    """The group's id: seeds ``random`` placement and the knockout bracket, so a group
    is judged the same way on every request (default: a hash of its content)."""
    conversations: list[list[Message]] | None = None
    """The group as conversations sharing everything but their last, assistant turn."""
    prompt: str | list[Message] | None = None
    """Or: the prompt (a string, or turns ending with the user's) ..."""
    responses: list[str] | None = None
    """... and the responses to it, one per member of the group."""
    reference: str | None = None
    """A reference answer, for every judgement of the group."""
    rubric: str | None = None
    """A rubric, for templates that use ``{$rubric}``."""
    group_strategy: GroupStrategyName = None
    """The group strategy for this request (default: the server's; it must make
    judgements of the server's rm type)."""
    inconsistent_pairs: InconsistentPairs | None = None
    """With ``position: both``: a pair whose orders disagree is a ``tie`` or ``abstain``s."""

    def group(self) -> list[list[dict[str, Any]]]:
        """The group as conversations (plain values).

        Raises:
            InputError: neither or both of ``conversations`` and ``prompt`` +
                ``responses`` were given, or those are of the wrong shape.
        """
        given = self.conversations is not None, self.prompt is not None or self.responses is not None
        if given[0] == given[1]:
            raise InputError("send either conversations, or prompt and responses")
        if self.conversations is not None:
            return [[m.model_dump() for m in c] for c in self.conversations]
        prompt = self.prompt if isinstance(self.prompt, str) or self.prompt is None else \
            [m.model_dump() for m in self.prompt]
        row = {k: v for k, v in (("prompt", prompt), ("responses", self.responses)) if v is not None}
        return prompt_responses(row, "body")

    def context(self) -> dict[str, Any]:
        """The group's other fields, for every judgement."""
        return {k: v for k in ("reference", "rubric") if (v := getattr(self, k)) is not None}
