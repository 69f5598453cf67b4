"""icrm as verl's custom reward function.

verl loads ``custom_reward_function.path`` / ``.name`` and calls it per sample as
``compute_score(data_source, solution_str, ground_truth, extra_info=None, **reward_kwargs)``
with ``reward_kwargs`` from the config (``verl/trainer/ppo/reward.py``); its reward loop
awaits an ``async def`` and runs a plain function in a thread
(``verl/experimental/reward_loop/reward_manager/naive.py``). ``solution_str`` is the
response alone, so the prompt comes from ``extra_info["prompt"]`` (a string or chat
messages), which the dataset's preprocessing must put there::

    custom_reward_function:
      path: pkg://icrm.integrations.verl
      name: compute_score            # or compute_score_async, compute_score_batch
      reward_kwargs: {engine: vllm, base_url: http://127.0.0.1:8000/v1, model_name: Qwen/Qwen2.5-7B-Instruct,
                      method: logprob}

``reward_kwargs`` are `icrm.ICRMConfig` fields (rm_type must be individual) plus
``failure_reward``; every call with the same ones in a process shares one `ICRM`. The
result is a dict — ``score`` (the reward in [0, 1]: (score − 1) / 9, or from the
expected score with ``logprob``), ``icrm_score`` (the judge's 1–10, 0 when none) and
``icrm_failed`` (1.0 when the judge gave no verdict: then ``score`` is ``failure_reward``,
default 0.0) — so verl logs all three; it also answers ``result[0]`` with the reward, as
the legacy PRIME manager reads results (`ScoreDict`).

A judge that could not answer is raised (`icrm.rewards.POLICIES`, ``verl``), never a
reward. verl's reward loop then fails the step; the legacy PRIME manager, which runs
``compute_score`` in a process pool, turns any raised error into 0.0 for that sample
(``verl/workers/reward_manager/prime.py``) — with PRIME, watch the judge's health
(``icrm serve`` ``/health``) rather than rely on the raise.

This module uses absolute imports, so verl can also load it by file path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from icrm.config import ICRMConfig
from icrm.errors import ConfigError
from icrm.groups.by_prompt import judge_by_prompt
from icrm.integrations.shared import shared_judge
from icrm.rewards import raise_if_judge_down, reward, trainer_extras
from icrm.trajectory import judgeable_turns

__all__ = ["compute_score", "compute_score_async", "compute_score_batch", "shared_icrm", "ScoreDict", "PROMPT_KEY"]

PROMPT_KEY = "prompt"
# Keyword arguments verl's reward loop adds itself when a reward-model router is set up.
VERL_KWARGS = ("reward_router_address", "reward_model_tokenizer")


def shared_icrm(reward_kwargs: dict[str, Any], groups: bool = False) -> Any:
    """The process's `ICRM` for these settings, started on first use and closed at exit.

    Raises:
        ConfigError: a setting that is not an `ICRMConfig` field or is invalid (naming
            it), or an rm type other than individual where one response is scored
            (`groups` False).
    """
    config = ICRMConfig.build(**reward_kwargs)
    if config.rm_type != "individual" and not groups:
        raise ConfigError("verl's compute_score scores one response: set reward_kwargs.rm_type to individual "
                          "(compute_score_batch with reward_kwargs.group: true judges each prompt's responses "
                          "as a group, with any rm type)")
    return shared_judge(config)


def _split(reward_kwargs: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    options = {k: v for k, v in reward_kwargs.items() if k not in VERL_KWARGS}
    failure = options.pop("failure_reward", 0.0)
    if not isinstance(failure, (int, float)) or isinstance(failure, bool):
        raise ConfigError(f"reward_kwargs.failure_reward must be a number, got {failure!r}")
    return float(failure), options


def _item(solution_str: Any, extra_info: Any) -> dict[str, Any]:
    if not isinstance(extra_info, dict) or extra_info.get(PROMPT_KEY) is None:
        raise ConfigError(f"icrm needs the prompt in extra_info[{PROMPT_KEY!r}] (verl passes only the response as "
                          "solution_str): add it in the dataset's preprocessing, e.g. "
                          f"extra_info={{{PROMPT_KEY!r}: question, ...}}")
    return {"conversation": judgeable_turns(extra_info[PROMPT_KEY], solution_str)}


class ScoreDict(dict):  # type: ignore[type-arg]
    """verl's result for one sample: a dict (``score``, ``icrm_score``, ``icrm_failed``:
    what verl's reward loop and its naive, batch and DAPO managers read and log) that
    also answers ``result[0]`` with the reward, as the legacy PRIME manager reads its
    results (``float(result[0])`` for anything not a number). Pickles as a dict."""

    def __getitem__(self, key: Any) -> Any:
        return dict.__getitem__(self, "score") if key == 0 else dict.__getitem__(self, key)

    def __reduce__(self) -> tuple[Any, ...]:
        return (ScoreDict, (dict(self),))


def _result(icrm: Any, feedback: Any, failure_reward: float) -> ScoreDict:
    raise_if_judge_down([feedback], "verl")  # never a reward from an outage
    value = reward(icrm.rm_type, feedback)
    return ScoreDict(score=failure_reward if value is None else value, **trainer_extras(icrm.rm_type, feedback))


def compute_score(data_source: Any, solution_str: str, ground_truth: Any, extra_info: dict[str, Any] | None = None,
                  **reward_kwargs: Any) -> dict[str, float]:
    """One response's reward (verl's signature); `data_source` and `ground_truth` are
    not used (an in-context judge needs no reference answer).

    Returns:
        ``{"score", "icrm_score", "icrm_failed"}`` (see the module docstring).

    Raises:
        ConfigError: no ``extra_info["prompt"]``, or bad ``reward_kwargs``.
        EngineError: the judge could not answer (a failed request, not a missing verdict).
    """
    failure, options = _split(reward_kwargs)
    icrm = shared_icrm(options)
    return _result(icrm, icrm.judge_item(_item(solution_str, extra_info)), failure)


async def compute_score_async(data_source: Any, solution_str: str, ground_truth: Any,
                              extra_info: dict[str, Any] | None = None, **reward_kwargs: Any) -> dict[str, float]:
    """`compute_score` as an ``async def`` (awaited on verl's reward-loop event loop)."""
    failure, options = _split(reward_kwargs)
    icrm = shared_icrm(options)
    return _result(icrm, await icrm.ajudge_item(_item(solution_str, extra_info)), failure)


def compute_score_batch(data_sources: Sequence[Any], solution_strs: Sequence[str], ground_truths: Sequence[Any],
                        extra_infos: Sequence[dict[str, Any] | None], **reward_kwargs: Any) -> list[dict[str, float]]:
    """The batch variant (verl's ``BatchRewardManager``): lists in, one result per
    sample, judged concurrently (``reward_kwargs.concurrency``, default 64).

    With ``reward_kwargs.group: true`` (always with ``rm_type: listwise``) the responses
    of the same ``extra_info["prompt"]`` are judged as one group by the ``group_strategy``
    (`icrm.groups.by_prompt`); a response without a reward — alone with its prompt in
    the batch, or its group's answer without a verdict — is ``failure_reward`` with
    ``icrm_failed`` 1.0 (verl cannot skip a sample).

    Raises:
        ConfigError / EngineError: as `compute_score` (the judge down on any judgement).
    """
    failure, options = _split(reward_kwargs)
    concurrency = int(options.pop("concurrency", 64))
    groups = bool(options.pop("group", False)) or options.get("rm_type") == "listwise"
    icrm = shared_icrm(options, groups=groups)
    items = [_item(s, e) for s, e in zip(solution_strs, extra_infos)]
    if not groups:
        return [_result(icrm, f, failure) for f in icrm.judge_many(items, concurrency=concurrency)]
    prompts = [e[PROMPT_KEY] for e in extra_infos]  # type: ignore[index]  # _item checked each
    judged = icrm.run_sync(judge_by_prompt(icrm, prompts, [i["conversation"] for i in items], concurrency))
    raise_if_judge_down(judged.feedbacks, "verl")
    return [ScoreDict(score=failure if r is None else r, icrm_score=0.0 if s is None else float(s),
                      icrm_failed=0.0 if r is not None else 1.0) for r, s in zip(judged.rewards, judged.scores)]
