"""What defines a run, from its configuration alone: the fingerprint fields every result
row records, and the generation kwargs every judgement is sent with.

Both are known before any worker is launched or request sent, so a run that cannot
resume into its output is refused before it costs anything, and the Ray driver needs
no judge of its own to keep the books.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .config import ICRMConfig
from .engines.base import check_generation_kwargs
from .engines.registry import choose_engine
from .methods import DEFAULT_GENERATION_KWARGS, JudgingMethod, get_method
from .rm_types import RMType, judged_rm_type

if TYPE_CHECKING:
    from .prompt import PromptBuilder

__all__ = ["run_fields", "generation_kwargs", "engine_choice", "worker_tuning"]


def engine_choice(config: ICRMConfig, method: JudgingMethod | None = None) -> Any:
    """The `icrm.engines.registry.EngineChoice` of `config` (its method may prefer
    completion mode).

    Raises:
        ConfigError: an unknown engine name.
    """
    method = method or get_method(config.method)
    return choose_engine(config.engine_name, config.model_name, completion=config.completion,
                         constrain_output=config.constrain_output, base_url=config.base_url,
                         worker_addrs=config.worker_addrs, prefers_completion=method.prefers_completion)


def generation_kwargs(config: ICRMConfig, method: JudgingMethod, rm_type: RMType,
                      given: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The generation kwargs of one judgement: the defaults
    (`icrm.methods.DEFAULT_GENERATION_KWARGS`), the method's own, the run's ``seed``
    when it samples (``temperature`` > 0: a greedy answer needs no seed), then the
    caller's `given`, key by key.

    Raises:
        ConfigError: an unknown kwarg or a bad value, naming it.
    """
    given = check_generation_kwargs(dict(given or {}))
    kwargs = {**DEFAULT_GENERATION_KWARGS, **method.default_kwargs(rm_type), **given}
    if kwargs.get("temperature") and "seed" not in given:
        kwargs["seed"] = config.seed
    return kwargs


def run_fields(config: ICRMConfig, given: Mapping[str, Any] | None = None, builder: PromptBuilder | None = None,
               **extra: Any) -> dict[str, Any]:
    """The fingerprint fields of a run: model, engine, server, rm type, method, position,
    samples, mode (completion / chat), constrained output, templates' and shots' hashes,
    shots (number, sampling mode, seed), the generation kwargs in effect, what icrm chose
    for its own workers on this machine (``worker``: a vLLM CPU worker's dtype and why),
    and `extra` (a surface's own: input format, benchmark, ...).

    Args:
        config: the judge's configuration.
        given: the caller's generation kwargs.
        builder: the prompt builder, when one is loaded already (else it is loaded).

    Raises:
        ConfigError: a bad option, template, shots pool or generation kwarg.
    """
    from .prompt import PromptBuilder

    rm_type = judged_rm_type(config.rm_type, config.rubric, config.max_criteria)
    method = rm_type.method_variant(get_method(config.method))
    builder = builder or PromptBuilder.load(rm_type, method, config.template_path, config.shot_template_path,
                                            config.feedback_template_path, config.shots_pool_path)
    choice = engine_choice(config, method)
    return {
        "model": choice.model,
        "engine": choice.name,
        "server": choice.server,
        "rm_type": rm_type.name,
        "method": method.name,
        "position": None if rm_type.single else config.position,
        "num_samples": config.num_samples,
        "mode": "completion" if choice.completion else "chat",
        "constrain_output": choice.constrain_output,
        "template_hash": builder.template_hash,
        "shots_hash": builder.pool.hash,
        "seed": config.seed,
        "num_shots": config.num_shots,
        "shot_sampling_mode": config.shot_sampling_mode,
        # Recorded when set, so the fingerprints of runs made before they existed still hold.
        **{k: v for k, v in (("shot_order", config.shot_order), ("max_shot_tokens", config.max_shot_tokens),
                             ("exclude_same_prompt", config.exclude_same_prompt))
           if v != ICRMConfig.model_fields[k].default},
        "generation_kwargs": generation_kwargs(config, method, rm_type, given),
        "worker": worker_tuning(config, choice),
        **({"rubric_hash": rm_type.rubric.hash, "max_criteria": config.max_criteria}  # type: ignore[attr-defined]
           if config.rubric is not None else {}),
        **extra,
    }


def worker_tuning(config: ICRMConfig, choice: Any) -> dict[str, str] | None:
    """What icrm chose for the workers it launches for `config`, and why
    (`icrm.engines.machine`): a vLLM CPU worker's dtype; None when icrm launches no
    worker whose settings depend on the machine."""
    if choice.name != "vllm" or choice.server is not None:
        return None
    from .engines.machine import vllm_cpu_tuning, vllm_is_cpu_build

    return vllm_cpu_tuning(worker_args=config.worker_args).provenance() if vllm_is_cpu_build() else None
