"""The group-strategy seam: what judging a group returns (`GroupResult`), what a
strategy is (`GroupStrategy`), and the context it runs in (`GroupRun`).

A group is k ≥ 2 responses to one prompt (GRPO's rollouts): conversations sharing
everything but their last, assistant turn. A strategy turns it into one reward per
response — in one listwise request, one request per response, or a tournament of
pairwise judgements aggregated with Bradley–Terry (`icrm.groups.outcomes`).

A response's reward exists only when the judge really judged it: a response whose
judgements all failed gets None and the reason, never a middle value.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ..engines.base import Usage
from ..feedback import FeedbackBase, ranking
from ..methods.combine import summed_usage

__all__ = ["Comparison", "GroupResult", "GroupRun", "GroupStrategy", "INCONSISTENT_PAIRS", "judged_result", "why",
           "requests_of"]

# What a pair whose two orders disagree (position="both") counts as.
INCONSISTENT_PAIRS = ("tie", "abstain")


@dataclass(frozen=True)
class Comparison:
    """One pairwise judgement of a tournament, told as ``i`` against ``j``.

    Attributes:
        i, j: the responses' indexes in the group (``i`` shown as A when as given).
        choice: the verdict (``A++`` … ``B++``, A being ``i``), None without one.
        p_i: how much ``i`` won, in [0, 1] (the choice's pairwise reward, or
            ``p_a_better`` from ``logprob``); None when there is no verdict or the pair
            abstained.
        consistent: with both orders, whether they agreed (None otherwise).
        error: why there is no outcome (None when there is one).
        abstained: the two orders disagreed and ``inconsistent_pairs="abstain"``.
    """

    i: int
    j: int
    choice: str | None
    p_i: float | None
    consistent: bool | None = None
    error: str | None = None
    abstained: bool = False


@dataclass(frozen=True)
class GroupResult:
    """One group judged.

    Attributes:
        strategy: the group strategy (``listwise``, ``all_pairs``, ...).
        rewards: one per response in [0, 1], in the order given; None for a response
            the judge did not judge (its ``errors`` entry says why).
        stderr: each reward's standard error (Bradley–Terry strategies), else None.
        ranking: the judged responses' indexes, best first.
        scores: the judge's 1–10 score per response (listwise and individual).
        win_rates: each response's share of its comparisons won (tournaments).
        strengths: Bradley–Terry strengths θ, mean 0 (tournaments).
        comparisons: every pairwise judgement (tournaments).
        feedbacks: every judgement made, in the order asked.
        errors: per response, why it has no reward (None when it has one).
        error_kinds: per response, the error's kind (``parse``, ``engine``, ``input``, ...).
        requests: judgements asked of the judge (both orders of a pair count two).
        usage: the tokens of all of them.
    """

    strategy: str
    rewards: list[float | None]
    stderr: list[float | None]
    ranking: list[int]
    errors: list[str | None]
    error_kinds: list[str | None]
    scores: list[float | None] | None = None
    win_rates: list[float | None] | None = None
    strengths: list[float] | None = None
    comparisons: list[Comparison] = field(default_factory=list)
    feedbacks: list[FeedbackBase] = field(default_factory=list, repr=False)
    requests: int = 0
    usage: Usage | None = None

    @property
    def size(self) -> int:
        """Responses in the group."""
        return len(self.rewards)

    @property
    def ok(self) -> bool:
        """True when every response has a reward."""
        return all(r is not None for r in self.rewards)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (feedbacks as their result fields are left to the caller)."""
        return {"strategy": self.strategy, "rewards": self.rewards, "stderr": self.stderr, "ranking": self.ranking,
                "scores": self.scores, "win_rates": self.win_rates, "strengths": self.strengths,
                "comparisons": [c.__dict__ for c in self.comparisons], "errors": self.errors,
                "error_kinds": self.error_kinds, "requests": self.requests,
                "usage": self.usage.model_dump() if self.usage else None}

    @classmethod
    def failed(cls, strategy: str, k: int, error: str, kind: str) -> GroupResult:
        """A group none of whose responses could be judged (a bad group, a fatal fault)."""
        return cls(strategy, [None] * k, [None] * k, [], [error] * k, [kind] * k)


@dataclass
class GroupRun:
    """What a strategy judges with.

    Attributes:
        judge: ``async (item, key) -> Feedback``: one judgement of an item dict
            (``conversation``, ``conversation_A``/``conversation_B`` or
            ``conversations``), every fault recorded on the feedback (`ICRM.ajudge_item`
            with the group's shots, generation kwargs, method and position).
        rm_type: the judge's rm type spec.
        conversations: the group, in the order given.
        key: the group's key (its id, or its content's hash): seeds ``random`` placement
            and any strategy choice, so a group is judged the same way in every run.
        seed: the run's seed.
        position: the judge's position (pairwise: ``as_given``, ``random``, ``both``).
        inconsistent_pairs: what a pair whose orders disagree counts as (``tie`` or
            ``abstain``).
        concurrency: judgements of this group in flight at most.
        context: the group's other fields (``reference``, ...), given to each item.
    """

    judge: Callable[[dict[str, Any], str], Awaitable[FeedbackBase]]
    rm_type: Any
    conversations: Sequence[Any]
    key: str
    seed: int = 0
    position: str = "as_given"
    inconsistent_pairs: str = "tie"
    concurrency: int = 16
    context: Mapping[str, Any] = field(default_factory=dict)

    @property
    def size(self) -> int:
        return len(self.conversations)

    async def judge_all(self, items: Sequence[tuple[dict[str, Any], str]]) -> list[FeedbackBase]:
        """Judge `items` (``(item, key)``) with at most `concurrency` in flight, in order."""
        gate = asyncio.Semaphore(self.concurrency)

        async def one(item: dict[str, Any], key: str) -> FeedbackBase:
            async with gate:
                return await self.judge({**self.context, **item}, key)
        return list(await asyncio.gather(*(one(item, key) for item, key in items)))


class GroupStrategy(ABC):
    """How a group becomes one reward per response.

    Attributes:
        name: the strategy's name.
        rm_type: the rm type its judgements use (``individual``, ``pairwise`` or
            ``listwise``).
        summary: one line for help texts: what it asks and what it costs.
    """

    name: ClassVar[str]
    rm_type: ClassVar[str]
    summary: ClassVar[str]

    @abstractmethod
    async def judge(self, run: GroupRun) -> GroupResult:
        """Judge one group (checked: 2 or more conversations sharing their context)."""

    @abstractmethod
    def judgements(self, k: int) -> int:
        """The judgements a group of `k` takes when each gives a verdict (what a
        service admits before any work; a knockout match without one is replayed in a
        later round). Each is two requests with ``position="both"``."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def why(feedback: FeedbackBase) -> tuple[str | None, str | None]:
    """Why a judgement has no verdict, and the kind (``parse`` for an answer without
    one); ``(None, None)`` when it has one."""
    if feedback.error:
        return feedback.error, feedback.error_kind
    if feedback.parse_error:
        return feedback.parse_error, "parse"
    return None, None


def requests_of(feedback: FeedbackBase) -> int:
    """Requests one judgement took (both orders of a pair: two)."""
    return 2 if feedback.position == "both" else 1


def judged_result(strategy: str, rewards: Sequence[float | None], feedbacks: Sequence[FeedbackBase],
                  per_response: Sequence[Sequence[FeedbackBase]], **fields: Any) -> GroupResult:
    """A `GroupResult` from the rewards, with each unrewarded response's reason taken
    from the first of its judgements (`per_response`) that failed."""
    errors: list[str | None] = []
    kinds: list[str | None] = []
    for reward, judgements in zip(rewards, per_response):
        failed = next((why(f) for f in judgements if why(f)[0] is not None), None) if reward is None else None
        if reward is None and failed is None:
            failed = ("no judgement of this response gave a verdict", "parse")
        errors.append(failed[0] if failed else None)
        kinds.append(failed[1] if failed else None)
    judged = [i for i, r in enumerate(rewards) if r is not None]
    order = [judged[i] for i in ranking([rewards[i] for i in judged])]  # type: ignore[misc]
    return GroupResult(strategy, list(rewards), fields.pop("stderr", [None] * len(rewards)), order, errors, kinds,
                       feedbacks=list(feedbacks), requests=sum(requests_of(f) for f in feedbacks),
                       usage=summed_usage(feedbacks), **fields)  # type: ignore[arg-type]
