"""icrm as a verifiers judge plugin (``verifiers`` 0.4, ``verifiers.v1``; used by prime-rl).

verifiers resolves a task's judges by id (``verifiers.v1.utils.loaders.judge_class``):
the id is imported as a top-level module that exports one ``Judge`` subclass in
``__all__``. icrm's plugin id is ``icrm-judge`` (the module ``icrm_judge``, installed with
icrm, re-exports this module's `ICRMJudge`); its config's ``icrm`` holds `icrm.ICRMConfig`
fields::

    [[taskset.task.judges]]
    id = "icrm-judge"
    name = "icrm"                       # the reward's key
    weight = 1.0
    icrm = { engine = "vllm", base_url = "http://127.0.0.1:8000/v1",
             model_name = "Qwen/Qwen2.5-7B-Instruct", method = "logprob" }

The judge scores the rollout's reply (``view = "last_reply"``, or ``"full_trace"`` for
the transcript) to the task's question (its prompt, or ``question_field``) with the
individual rm type: (score − 1) / 9, or from the expected score with ``logprob``. As
verifiers' own judges: an empty reply scores 0.0 (the model said nothing), and a judge
failure raises — verifiers' contract is that "a judge failure must error the rollout,
not score the model 0": a judge that could not answer raises `icrm.errors.EngineError`,
an answer without a verdict `UnjudgedError`. Each call is recorded on the trace
(``judge_calls``, with its tokens in ``extra_usage``).

Importing this module needs ``verifiers`` installed; icrm itself never imports it.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator
from verifiers.v1.configs.judge import JudgeConfig
from verifiers.v1.judge import Judge, JudgeResponse, JudgeView, judge_question, judge_response
from verifiers.v1.types import ID, Usage

from ..config import ICRMConfig
from ..errors import ICRMError
from ..rewards import raise_if_judge_down, reward
from .shared import shared_judge

__all__ = ["ICRMJudge", "ICRMJudgeConfig", "UnjudgedError", "PLUGIN_ID"]

PLUGIN_ID = "icrm-judge"  # the top-level module icrm_judge: verifiers imports an id as one


class UnjudgedError(ICRMError):
    """The judge answered without a verdict: the rollout errors (verifiers' contract)."""

    kind = "parse"


class ICRMJudgeConfig(JudgeConfig):
    """The plugin's config: verifiers' judge fields plus ``icrm`` (the judge's settings)."""

    id: ID = PLUGIN_ID
    icrm: dict[str, Any] = Field(default_factory=dict)
    """`icrm.ICRMConfig` fields (``engine``, ``base_url``, ``model_name``, ``method``, ...);
    rm_type must be individual."""
    question_field: str = ""
    """The task field holding the question; empty = the task's prompt as text."""
    view: JudgeView = "last_reply"
    """What is judged: the final reply, or the whole transcript (``full_trace``)."""

    @field_validator("icrm")
    @classmethod
    def _valid(cls, value: dict[str, Any]) -> dict[str, Any]:
        built = ICRMConfig.build(**value)  # a bad setting fails when the config loads, naming it
        if built.rm_type != "individual":
            raise ValueError("icrm.rm_type must be individual: a verifiers judge scores one rollout")
        return value


class ICRMJudge(Judge[float, ICRMJudgeConfig]):
    """icrm's in-context reward model as a verifiers judge (see the module docstring)."""

    async def score(self, task: Any, trace: Any) -> float:
        """The rollout's reward in [0, 1].

        Raises:
            EngineError: the judge could not answer.
            UnjudgedError: its answer held no verdict.
        """
        response = judge_response(trace, self.config.view)
        if not response.strip():
            return 0.0
        question = judge_question(task, self.config.question_field)
        icrm = shared_judge(ICRMConfig.build(**self.config.icrm))
        conversation = [{"role": "user", "content": question}, {"role": "assistant", "content": response}]
        feedback = await icrm.ajudge_item({"conversation": conversation})
        value = reward(icrm.rm_type, feedback)
        if trace is not None and hasattr(trace, "record_judge_call"):
            usage = feedback.usage
            trace.record_judge_call(
                name=self.reward_name, request={"model": icrm.model_name, "messages": conversation},
                response=JudgeResponse[float](text=feedback.raw_text or "", parsed=value, usage=Usage(
                    prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens) if usage else None))
        raise_if_judge_down([feedback], "verifiers")
        if value is None:
            raise UnjudgedError(f"icrm gave this rollout no verdict ({feedback.parse_error_reason or feedback.error_kind}: "
                                f"{feedback.parse_error or feedback.error})")
        return value
