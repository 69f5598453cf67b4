"""The options of ``icrm`` commands besides `ICRMConfig`'s: generation flags, and
``score``'s, ``eval``'s and the Ray backend's own. Pydantic models, so every value is
parsed and bounded once, and a bad one is one line naming the flag."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from ..batch import DEFAULT_CONCURRENCY
from ..config import ChoiceError, ICRMConfig, OptionalBool
from ..inputs import INPUT_FORMATS

__all__ = ["GenerationFlags", "ScoreOptions", "BackendOptions", "EvalOptions", "MAX_CONCURRENCY", "MAX_TOKENS"]

# Upper bounds: past them a value is a typo, not a plan.
MAX_CONCURRENCY = 4_096
MAX_TOKENS = 1_048_576
MAX_ACTORS = 1_024


def _input_format(value: Any) -> Any:
    if value not in INPUT_FORMATS:
        raise ChoiceError(f"input_format must be one of {', '.join(INPUT_FORMATS)}, got {value!r}")
    return value


class GenerationFlags(BaseModel):
    """Generation kwargs as flags of ``test``, ``score`` and ``eval`` (unset = the
    defaults of `icrm.methods.DEFAULT_GENERATION_KWARGS`)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    temperature: float | None = Field(None, ge=0, le=100, allow_inf_nan=False)
    """Sampling temperature (default 0.0; with temperature > 0, generation is seeded by --seed)."""
    max_tokens: int | None = Field(None, ge=1, le=MAX_TOKENS)
    """Upper bound on generated tokens per judgement (default 3072)."""
    top_p: float | None = Field(None, gt=0, le=1, allow_inf_nan=False)
    """Nucleus sampling mass (default 1.0)."""

    def kwargs(self) -> dict[str, Any]:
        """The generation kwargs given."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class ScoreOptions(BaseModel):
    """``icrm score``'s own options (see `icrm.scoring.score_file`)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, coerce_numbers_to_str=True)

    concurrency: int = Field(DEFAULT_CONCURRENCY, ge=1, le=MAX_CONCURRENCY)
    """Requests in flight at most."""
    limit: int | None = Field(None, ge=0)
    """Score at most this many input rows."""
    id_field: str = "id"
    """The column holding row ids (else a stable hash of the row)."""
    input_format: Annotated[str, BeforeValidator(_input_format)] = "conversations"
    """``conversations`` (conversation, conversation_A + conversation_B, or
    conversations), ``rewardbench`` (prompt, chosen, rejected) or ``responses`` (prompt,
    responses)."""
    split: str = "train"
    """The split of a saved dataset directory or hub dataset."""
    progress: OptionalBool = None
    """Show the progress bar (default: only on a terminal)."""
    overwrite: OptionalBool = False
    """Start the output over instead of resuming it."""


class BackendOptions(BaseModel):
    """Where ``score`` and ``eval`` judge: this process, or a Ray cluster
    (`icrm.integrations.ray`; ``pip install 'icrm[ray]'``)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, coerce_numbers_to_str=True)

    backend: Literal["local", "ray"] = "local"
    """``local`` (this process) or ``ray`` (actors on a Ray cluster; --concurrency is then per actor)."""
    ray_address: str | None = None
    """The Ray cluster's address (default: a new local one); with --backend ray."""
    num_actors: int = Field(2, ge=1, le=MAX_ACTORS)
    """Ray actors judging in parallel, each with its own judge; with --backend ray."""
    gpus_per_actor: float = Field(0.0, ge=0, le=64, allow_inf_nan=False)
    """GPUs per Ray actor, for actors that launch their own vLLM / llama.cpp worker."""
    cpus_per_actor: float | None = Field(None, ge=0, le=1024, allow_inf_nan=False)
    """CPUs Ray reserves per actor (default: 0 for actors calling endpoints, 1 for actors with their own worker)."""

    def ray(self, config: ICRMConfig, concurrency: int) -> Any:
        """The `icrm.integrations.ray.RayBackend`, or None for ``local``."""
        if self.backend == "local":
            return None
        from ..integrations.ray import RayBackend

        return RayBackend(config, self.ray_address, self.num_actors, concurrency, self.gpus_per_actor,
                          self.cpus_per_actor)


class EvalOptions(BaseModel):
    """``icrm eval NAME``'s own options (see `icrm.evaluation.runner.evaluate`)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, coerce_numbers_to_str=True)

    data: str | None = None
    """A local file in the benchmark's schema (JSON, JSONL, Parquet)."""
    dataset: str | None = None
    """A hub dataset name (e.g. allenai/reward-bench-2), when online."""
    split: str | None = None
    """The hub split (default: the benchmark's official one)."""
    results_dir: str = "results"
    """Where outputs go: RESULTS_DIR/<benchmark>/<rm_type>/<model>/<method>/<num_shots>_shots/."""
    overwrite_results: OptionalBool = False
    """Start over instead of resuming."""
    limit: int | None = Field(None, ge=0)
    """Evaluate the first N rows (after --subsets)."""
    subsets: Any = None
    """Comma-separated subsets to keep (JudgeBench: families; RM-Bench: domains)."""
    concurrency: int = Field(DEFAULT_CONCURRENCY, ge=1, le=MAX_CONCURRENCY)
    """Judgements in flight at most (changes no result)."""
    progress: OptionalBool = None
    """Show the progress bar (default: only on a terminal)."""
