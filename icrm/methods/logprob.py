"""``logprob``: one generated token and its top logprobs. The prompt ends where the
verdict goes; the judge's distribution over the verdict labels is read from the first
token's top logprobs, renormalised over the labels, and reported with its argmax.

Labels are single digits, one token in every common tokenizer (`RMType.labels`):
individual ``0``–``9`` stand for scores 1–10 (the rubric's bands, shifted by one),
pairwise ``1``–``5`` for A++, A+, A=B, B+, B++. A top-logprob token counts for a label
when it is the label with surrounding spaces or quotes (``" 7"``, ``'7"'``): their
probabilities add up. ``label_mass`` records the mass the labels held before
renormalising; a first token far from any label is a parse error (``no_label``).

Sources: AlpacaEval's logprob judges (``weighted_alpaca_eval_gpt4_turbo``: one token,
top logprobs over the label set) and G-Eval's probability-weighted expected score.
An engine that returns no logprobs is an error at the first request, naming the engines
that give them — never a silent argmax.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ..engines.base import GenerationRequest, GenerationResult
from ..errors import ConfigError, EngineError, FeedbackParseError
from ..feedback import Feedback
from ..rm_types import RMType
from .labels import LabelMethod
from .combine import from_distribution

__all__ = ["Logprob", "LOGPROB", "label_distribution", "TOP_LOGPROBS", "LOGPROB_ENGINES"]

TOP_LOGPROBS = 20  # the most OpenAI's API returns
MAX_TOP_ENTRIES = 100  # more per position than this (5x what is asked) is a broken server
LOGPROB_TOLERANCE = 1e-4  # servers round log(1) to a hair above 0
LOGPROB_ENGINES = "vllm, sglang, llamacpp, or an OpenAI-compatible API that returns top_logprobs"
_STRIP = " \t\n\r\"'`▁Ġ"  # spaces, quotes, and the space markers of SentencePiece / byte-level BPE


class Logprob(LabelMethod):
    """One token, read as a distribution over the verdicts (the prompt `verdict` shares)."""

    name = "logprob"
    needs_logprobs = True

    def default_kwargs(self, rm_type: RMType) -> dict[str, Any]:
        return {"max_tokens": 1, "stop": []}

    def request(self, prompt: str, rm_type: RMType, *, completion: bool, constrain: bool,
                kwargs: dict[str, Any]) -> GenerationRequest:
        # No output constraint: the distribution is read over the labels, whatever is sampled.
        if completion:
            return GenerationRequest(prompt=prompt, kwargs={**kwargs, "logprobs": TOP_LOGPROBS})
        return GenerationRequest(messages=[{"role": "user", "content": prompt}],
                                 kwargs={**kwargs, "logprobs": True, "top_logprobs": TOP_LOGPROBS})

    def read_all(self, result: GenerationResult, rm_type: RMType, examples: Sequence[Mapping[str, Any]] = (),
                 **envelope: Any) -> list[Feedback]:
        if result.logprobs is None or all(lp is None for lp in result.logprobs):
            raise ConfigError(f"method 'logprob' needs token logprobs, but the {result.engine} server returned none; "
                              f"use an engine that gives them ({LOGPROB_ENGINES}), or another method", fatal=True)
        feedbacks = []
        for text, finish, logprobs in zip(result.texts, result.finish_reasons, result.logprobs):
            common = {"raw_text": text, "finish_reason": finish, "cache_hit": result.cache_hit,
                      "latency_s": result.latency_s, "method": self.name, **envelope}
            try:
                distribution, mass = label_distribution(logprobs, rm_type, text, result.engine)
            except FeedbackParseError as e:
                feedbacks.append(rm_type.feedback_class(parse_error=str(e), parse_error_reason=e.reason, **common))
                continue
            feedbacks.append(rm_type.feedback_class(**from_distribution(rm_type, distribution), label_mass=mass,
                                                    **common))
        return _with_usage(feedbacks, result)


LOGPROB = Logprob()


def _with_usage(feedbacks: list[Feedback], result: GenerationResult) -> list[Feedback]:
    # The request's usage belongs to the judgement once, not to each sample.
    return [f.model_copy(update={"usage": result.usage if i == 0 else None}) for i, f in enumerate(feedbacks)]


def label_distribution(logprobs: Any, rm_type: RMType, text: str = "",
                       engine: str = "the server") -> tuple[dict[str, float], float]:
    """The distribution over `rm_type`'s verdicts from a choice's logprobs (the server's
    completions or chat shape), and the mass its labels held before renormalising.

    Raises:
        FeedbackParseError: (``no_label``) no label among the first token's top logprobs.
        EngineError: logprobs that are not logprobs: a wrong shape, a token that is not
            text, a value that is not a finite number <= 0 (`malformed_logprobs`).

    >>> from icrm.rm_types import PAIRWISE
    >>> chat = {"content": [{"token": "2", "logprob": -0.1,
    ...                      "top_logprobs": [{"token": "2", "logprob": math.log(0.6)},
    ...                                       {"token": " 3", "logprob": math.log(0.2)},
    ...                                       {"token": "The", "logprob": math.log(0.2)}]}]}
    >>> distribution, mass = label_distribution(chat, PAIRWISE)
    >>> round(distribution["A+"], 3), round(distribution["A=B"], 3), round(mass, 3)
    (0.75, 0.25, 0.8)
    """
    top = _first_top_logprobs(logprobs if logprobs is not None else {}, engine)
    labels = dict(zip(rm_type.labels, rm_type.verdicts))
    mass_by_verdict = {str(v): 0.0 for v in rm_type.verdicts}
    for token, logprob in top:
        verdict = labels.get(token.strip(_STRIP))
        if verdict is not None:
            mass_by_verdict[str(verdict)] += math.exp(logprob)
    mass = sum(mass_by_verdict.values())
    if mass <= 0:
        shown = ", ".join(repr(t[:20]) for t, _ in top[:5]) or "none"
        raise FeedbackParseError(f"no verdict label ({', '.join(rm_type.labels)}) among the first token's top "
                                 f"logprobs (top: {shown})", text, "no_label")
    return {k: p / mass for k, p in mass_by_verdict.items()}, min(mass, 1.0)


def _first_top_logprobs(logprobs: Any, engine: str) -> list[tuple[str, float]]:
    """``(token, logprob)`` pairs of the first generated token, from either API shape,
    each token once (its first entry), at most `MAX_TOP_ENTRIES`.

    Raises:
        EngineError: a shape or value that logprobs cannot have.
    """
    def malformed(what: str) -> EngineError:
        return EngineError(f"{engine}: malformed logprobs from the server: {what}", engine=engine)

    if not isinstance(logprobs, dict):
        raise malformed(f"expected an object, got {type(logprobs).__name__}")
    pairs: list[tuple[Any, Any]] = []
    if "content" in logprobs:  # chat: [{"token", "logprob", "top_logprobs": [{"token", "logprob"}]}]
        content = logprobs.get("content") or []
        if not isinstance(content, list):
            raise malformed("'content' is not a list")
        if not content:
            return []
        first = content[0]
        if not isinstance(first, dict):
            raise malformed("a 'content' entry is not an object")
        entries = first.get("top_logprobs") or []
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries[:MAX_TOP_ENTRIES]):
            raise malformed("'top_logprobs' is not a list of objects")
        if len(entries) > MAX_TOP_ENTRIES:
            raise malformed(f"{len(entries):,} top logprobs where at most {TOP_LOGPROBS} were asked")
        for entry in [*entries[:MAX_TOP_ENTRIES], first]:
            if "token" not in entry or "logprob" not in entry:
                raise malformed("an entry lacks 'token' or 'logprob'")
            pairs.append((entry["token"], entry["logprob"]))
    else:  # completions: top_logprobs is a list of {token: logprob}
        tops = logprobs.get("top_logprobs") or []
        if not isinstance(tops, list):
            raise malformed("'top_logprobs' is not a list")
        if tops and tops[0] is not None:
            if not isinstance(tops[0], dict):
                raise malformed("a 'top_logprobs' entry is not a {token: logprob} object")
            if len(tops[0]) > MAX_TOP_ENTRIES:
                raise malformed(f"{len(tops[0]):,} top logprobs where at most {TOP_LOGPROBS} were asked")
            pairs += list(tops[0].items())
        tokens, values = logprobs.get("tokens") or [], logprobs.get("token_logprobs") or []
        if isinstance(tokens, list) and isinstance(values, list) and tokens and values:
            pairs.append((tokens[0], values[0]))
    out: dict[str, float] = {}
    for token, logprob in pairs:
        if not isinstance(token, str):
            raise malformed(f"a token is {type(token).__name__}, not text")
        if logprob is None:  # some servers give no logprob for the sampled token
            continue
        if isinstance(logprob, bool) or not isinstance(logprob, (int, float)) or not math.isfinite(logprob) \
                or logprob > LOGPROB_TOLERANCE:
            raise malformed(f"the logprob of {token[:20]!r} is {logprob!r:.40}, not a finite number <= 0")
        out.setdefault(token, min(float(logprob), 0.0))
    return list(out.items())
