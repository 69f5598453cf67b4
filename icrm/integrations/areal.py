"""icrm as AReaL's reward function (``areal.api.reward_api``).

AReaL's workflows call ``reward_fn(prompt, completions, prompt_ids, completion_ids,
**fields)`` per sample through ``AsyncRewardWrapper``, which runs it in a
``ProcessPoolExecutor``: the function and its arguments are pickled to a worker process,
each call has ``timeout_seconds`` (default 15 s), and an error is retried up to
``max_retries`` (3) times and then raised — but a timeout on the last try returns 0
(areal 1.0.4). `ICRMReward` is picklable (it carries its settings, not a judge) and opens
one judge per worker process on first use::

    from areal.api.reward_api import AsyncRewardWrapper
    from icrm.integrations.areal import ICRMReward

    reward = ICRMReward(engine="vllm", base_url="http://127.0.0.1:8000/v1",
                        model_name="Qwen/Qwen2.5-7B-Instruct", method="logprob", timeout=10)
    workflow = RLVRWorkflow(reward_fn=reward, ...)      # AReaL wraps it in AsyncRewardWrapper
    # or directly: AsyncRewardWrapper(reward, timeout_seconds=60)

What an unjudged sample becomes:

- the judge could not answer: raised (`icrm.rewards.POLICIES`, ``areal``) — AReaL retries
  and then raises: never a reward. Give icrm's ``timeout`` (seconds per request) less
  than AReaL's ``timeout_seconds``, so icrm reports the slow judge before AReaL's last
  timeout turns it into 0;
- the answer held no verdict, or the sample is not a conversation: ``failure_reward``
  (default 0.0) with a warning naming the reason — or, with ``on_unjudged="raise"``, an
  `UnjudgedError` that AReaL retries and then raises, for a run that must not train on
  a stand-in.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from ..config import ICRMConfig
from ..errors import ConfigError, ICRMError, InputError
from ..rewards import raise_if_judge_down, reward
from .shared import prompt_response_turns, shared_judge

__all__ = ["ICRMReward", "UnjudgedError", "ON_UNJUDGED"]

logger = logging.getLogger(__name__)

ON_UNJUDGED = ("reward", "raise")


class UnjudgedError(ICRMError):
    """A sample the judge answered without a verdict (``on_unjudged="raise"``)."""

    kind = "parse"


class ICRMReward:
    """A picklable AReaL reward function: one sample's reward in [0, 1] —
    (score − 1) / 9, or from the expected score with ``method="logprob"``.

    Args:
        failure_reward: the reward of a sample without a verdict (``on_unjudged="reward"``).
        on_unjudged: ``reward`` (`failure_reward`, with a warning) or ``raise``.
        **config: `icrm.ICRMConfig` fields (rm_type must be individual); validated here.

    Raises:
        ConfigError: a bad setting (naming it), an rm type other than individual, a
            `failure_reward` that is not a finite number, an unknown `on_unjudged`.
    """

    def __init__(self, failure_reward: float = 0.0, on_unjudged: str = "reward", **config: Any) -> None:
        built = ICRMConfig.build(**config)
        if built.rm_type != "individual":
            raise ConfigError("AReaL's reward_fn scores one completion: rm_type must be individual")
        if isinstance(failure_reward, bool) or not isinstance(failure_reward, (int, float)) \
                or not math.isfinite(failure_reward):
            raise ConfigError(f"failure_reward must be a finite number, got {failure_reward!r}")
        if on_unjudged not in ON_UNJUDGED:
            raise ConfigError(f"on_unjudged must be one of {', '.join(ON_UNJUDGED)}, got {on_unjudged!r}")
        self.config, self.failure_reward, self.on_unjudged = dict(config), float(failure_reward), on_unjudged

    def __call__(self, prompt: Any, completions: Any, prompt_ids: Any = None, completion_ids: Any = None,
                 **fields: Any) -> float:
        """AReaL's ``reward_fn``: `prompt` (text, templated text or messages) and
        `completions` (the completion's text or messages); the ids and dataset fields
        are not used.

        Raises:
            EngineError: the judge could not answer.
            UnjudgedError: no verdict, with ``on_unjudged="raise"``.
        """
        icrm = shared_judge(ICRMConfig.build(**self.config))
        try:
            item: dict[str, Any] = {"conversation": prompt_response_turns(prompt, completions)}
        except InputError as error:
            return self._unjudged(str(error))
        feedback = icrm.judge_item(item)
        raise_if_judge_down([feedback], "areal")
        value = reward(icrm.rm_type, feedback)
        if value is None:
            return self._unjudged(f"{feedback.error_kind or 'parse'}: {feedback.error or feedback.parse_error}")
        return value

    def _unjudged(self, why: str) -> float:
        if self.on_unjudged == "raise":
            raise UnjudgedError(f"icrm gave this sample no verdict ({why})")
        logger.warning("icrm: a sample got no verdict (%s); its reward is failure_reward %g", why[:300],
                       self.failure_reward)
        return self.failure_reward

    def __repr__(self) -> str:
        return f"ICRMReward({', '.join(f'{k}={v!r}' for k, v in self.config.items() if 'key' not in k)})"
