"""`ICRMConfig`: every option of an `ICRM`, defined once.

Each field has its type, default and docstring here, and says on which surfaces it
appears (`Field(json_schema_extra={"surfaces": ...})`):

- ``test``, ``score``, ``eval``, ``serve``: a flag of that ``icrm`` command;
- ``env``: an ``ICRM_<FIELD>`` variable of the reward service (``icrm serve``, and its
  ``--env_file``).

The CLI and the service generate their options from these fields, so adding an option
is one edit here. Values are parsed once, here: booleans with `icrm.settings.parse_bool`
(``"false"`` is False, ``"maybe"`` is an error), numbers by pydantic with bounds, so a
bad value anywhere is one `ConfigError` naming the option.
"""

from __future__ import annotations

from pathlib import Path
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from .engines.base import DEFAULT_TIMEOUT_S
from .errors import ConfigError
from .settings import parse_bool

__all__ = ["ICRMConfig", "SURFACES", "COMMANDS", "option_surfaces", "option_default", "env_name", "config_error",
           "from_sources", "Bool", "OptionalBool", "RMTypeName", "MethodName", "PositionName", "ChoiceError"]

COMMANDS = ("test", "score", "eval", "serve")
# Upper bounds of the size options: past them a value is a typo, not a plan.
MAX_WORKERS = 64
MAX_SHOTS = 1_000
MAX_SHOT_TOKENS = 10_000_000  # a budget beyond any context window is a typo
MAX_SECONDS = 86_400.0
MAX_RETRIES = 100
MAX_SAMPLES = 64
# Options whose values never appear in a message.
SECRET_OPTIONS = ("api_key", "bearer_key")
SURFACES = (*COMMANDS, "env")
_EVERYWHERE = SURFACES
_PYTHON_ONLY: tuple[str, ...] = ()


def _bool(value: Any, info: Any) -> Any:
    return parse_bool(value, info.field_name)


def _optional_bool(value: Any, info: Any) -> Any:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "auto")):
        return None
    return parse_bool(value, info.field_name)


def _path_text(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


class ChoiceError(ConfigError, ValueError):
    """A name not in its table, raised inside validation."""


def _one_of(kind: str, choices: Callable[[], Any]) -> Any:
    """A name checked against its table (a `Registry` or a tuple), read when checked, so
    a new entry needs no edit here."""
    def check(value: Any) -> Any:
        if value is None and kind in _OPTIONAL_NAMES:
            return None
        table = choices()
        try:
            if hasattr(table, "canonical"):
                return table.canonical(value)
            if value not in table:
                raise ConfigError(f"{kind} must be one of {', '.join(table)}, got {value!r}")
        except ConfigError as e:  # a ValueError too, so a request body's field says it (422), not a 500
            raise ChoiceError(str(e)) from None
        return value
    return BeforeValidator(check)


def _rm_types() -> Any:
    from .rm_types import RM_TYPES
    return RM_TYPES


def _methods() -> Any:
    from .methods import METHODS
    return METHODS


def _engines() -> Any:
    from .engines.registry import ENGINES
    return ENGINES


def _positions() -> Any:
    from .position import POSITIONS
    return POSITIONS


def _group_strategies() -> Any:
    from .groups import GROUP_STRATEGIES
    return GROUP_STRATEGIES


def _inconsistent_pairs() -> Any:
    from .groups import INCONSISTENT_PAIRS
    return INCONSISTENT_PAIRS


def _shot_modes() -> Any:
    from .shots import SHOT_SAMPLING_MODES
    return SHOT_SAMPLING_MODES


def _shot_orders() -> Any:
    from .shot_selection import SHOT_ORDERS
    return SHOT_ORDERS


_OPTIONAL_NAMES = ("group_strategy",)
RMTypeName = Annotated[str, _one_of("rm_type", _rm_types)]
GroupStrategyName = Annotated["str | None", _one_of("group_strategy", _group_strategies)]
InconsistentPairs = Annotated[str, _one_of("inconsistent_pairs", _inconsistent_pairs)]
MethodName = Annotated[str, _one_of("method", _methods)]
EngineName = Annotated[str, _one_of("engine", _engines)]
PositionName = Annotated[str, _one_of("position", _positions)]
ShotSamplingMode = Annotated[str, _one_of("shot_sampling_mode", _shot_modes)]
ShotOrder = Annotated[str, _one_of("shot_order", _shot_orders)]
Bool = Annotated[bool, BeforeValidator(_bool)]
OptionalBool = Annotated["bool | None", BeforeValidator(_optional_bool)]
PathText = Annotated["str | None", BeforeValidator(_path_text)]
# A rubric: a file path (every surface), or in Python a dict or `icrm.rubric.Rubric`.
RubricArg = Annotated[Any, BeforeValidator(_path_text)]


def _on(*surfaces: str, **defaults: Any) -> dict[str, Any]:
    # `defaults`: a command whose flag defaults otherwise (eval judges pairs by default).
    return {"json_schema_extra": {"surfaces": list(surfaces), "defaults": defaults}}


class ICRMConfig(BaseModel):
    """The configuration of one `ICRM`: judge model, engine, shots, templates, requests.

    Build it with keyword arguments (``ICRMConfig(model_name=..., num_shots=2)``);
    `ICRM` builds one from its own arguments. Frozen: a copy with changes is
    ``config.model_copy(update={...})`` (validated again by `ICRMConfig.updated`).

    Raises:
        ConfigError: a value of the wrong type or out of bounds, naming the option
            (via `ICRMConfig.build`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True, validate_default=False)

    model_name: Annotated[str | None, BeforeValidator(lambda v: None if v is None else str(v))] = Field(
        None, **_on(*_EVERYWHERE))
    """The judge model. None with no engine: the embedded SmolLM2-135M-Instruct on the
    ``llamacpp`` engine (CPU, no key, no network); for ``llamacpp`` a ``.gguf`` path."""
    shots_pool_path: PathText = Field(None, **_on(*_EVERYWHERE))
    """A JSON list / JSONL file of shots; None = icrm's default pool for the rm type."""
    rm_type: RMTypeName = Field("individual", **_on(*_EVERYWHERE, eval="pairwise"))
    """``individual`` (a score 1–10 for one response) or ``pairwise`` (a choice A++ … B++);
    ``icrm eval`` defaults to ``pairwise``, as RewardBench compares pairs."""
    engine: EngineName | None = Field(None, **_on(*_EVERYWHERE))
    """An engine name (`icrm.engines.ENGINE_NAMES`); None = ``llamacpp`` when
    `model_name` is None, else ``vllm`` (the original IC-RM's default)."""
    num_workers: int = Field(1, ge=1, le=MAX_WORKERS, **_on(*_EVERYWHERE))
    """Local engines: servers to launch."""
    num_gpu_per_worker: int = Field(1, ge=1, le=MAX_WORKERS, **_on(*_EVERYWHERE))
    """vllm / sglang: GPUs per launched server (tensor parallel size)."""
    use_cache: Bool = Field(False, **_on(*_EVERYWHERE))
    """Answer identical requests (engine, model, mode, prompt, generation kwargs) from
    the persistent SQLite generation cache; only successes are stored."""
    overwrite_cache: Bool = Field(False, **_on(*_EVERYWHERE))
    """Call the engine even when the cache has an answer, and store the new one."""
    completion: OptionalBool = Field(None, **_on(*_EVERYWHERE))
    """True = completion mode (raw prompt), False = chat mode (the prompt as the user
    message), None = the engine's default."""
    num_shots: int = Field(3, ge=0, le=MAX_SHOTS, **_on(*_EVERYWHERE))
    """Shots shown before each conversation (0 allowed)."""
    template_path: PathText = Field(None, **_on(*_EVERYWHERE))
    """A custom overall template (``{$key}`` text, or Jinja2 when it ends in ``.j2``)."""
    shot_template_path: PathText = Field(None, **_on(*_EVERYWHERE))
    """A custom shot template."""
    feedback_template_path: PathText = Field(None, **_on(*_EVERYWHERE))
    """A custom feedback template (how a shot's feedback is written out)."""
    verbose: Bool = Field(False, **_on("test", "score", "eval"))
    """Log each full prompt to stderr."""
    seed: int = Field(42, **_on(*_EVERYWHERE))
    """Seeds shot sampling (``random`` mode) and, in ``icrm test`` / ``score``, generation."""
    shot_sampling_mode: ShotSamplingMode = Field("fixed", **_on(*_EVERYWHERE))
    """Which shots an item sees (`icrm.shot_selection`): ``fixed`` (the first
    `num_shots` of the pool), ``random`` (seeded by `seed` and the item), ``similar``
    (nearest by BM25), ``balanced`` (equal per verdict class), ``similar_balanced``."""
    shot_order: ShotOrder = Field("fixed", **_on(*_EVERYWHERE))
    """``fixed`` (pool order: items sharing shots share a cacheable prefix) or
    ``shuffled`` (a new order per item, and per sample with `num_samples`)."""
    max_shot_tokens: int | None = Field(None, ge=1, le=MAX_SHOT_TOKENS, **_on(*_EVERYWHERE))
    """A budget for the shots block, in tokens of the server's tokenizer (vLLM, llama.cpp,
    the mock: their tokenize route; other engines: about 3 characters per token): shots
    are dropped from the end of the selection (least similar first) until the rest fit.
    None = no budget."""
    exclude_same_prompt: Bool = Field(False, **_on(*_EVERYWHERE))
    """Never show an item a shot with its own prompt (another response to it); an item's
    own conversations are never shown whatever this says."""
    base_url: str | None = Field(None, **_on(*_EVERYWHERE))
    """A server to send requests to instead of the engine's default (any
    OpenAI-compatible server); with it, an API key is optional."""
    api_key: str | None = Field(None, repr=False, **_on(*_PYTHON_ONLY))
    """The provider's API key; default: the vendor's environment variable."""
    api_version: str | None = Field(None, **_on(*_PYTHON_ONLY))
    """``azure`` only: the API version (default ``OPENAI_API_VERSION`` or 2024-10-21)."""
    worker_addrs: tuple[str, ...] | None = Field(None, **_on(*_EVERYWHERE))
    """Local engines: base URLs of servers that already run, comma-separated (e.g.
    http://10.0.0.5:8000/v1); nothing is launched."""
    worker_args: tuple[str, ...] = Field((), **_on(*_PYTHON_ONLY))
    """Extra command-line arguments for launched servers."""
    timeout: float = Field(DEFAULT_TIMEOUT_S, gt=0, le=MAX_SECONDS, allow_inf_nan=False, **_on(*_EVERYWHERE))
    """Seconds one request may take in all — connect, wait and body — per try (long
generations on slow local servers take minutes)."""
    max_retries: int | None = Field(None, ge=0, le=MAX_RETRIES, **_on(*_EVERYWHERE))
    """Retries after a failed try (429, 5xx, timeouts, connection errors; never other
    4xx); None = ``ICRM_RETRY_ATTEMPTS`` - 1, else 3."""
    cache_dir: PathText = Field(None, **_on(*_PYTHON_ONLY))
    """Where the generation cache lives; None = ``ICRM_CACHE_DIR``, else the user cache
    directory (``~/.cache/icrm``)."""
    log_file: PathText = Field(None, **_on(*_PYTHON_ONLY))
    """A JSONL file to append every request and response to (keys redacted)."""
    constrain_output: OptionalBool = Field(None, **_on(*_EVERYWHERE))
    """Ask the server for JSON constrained to the method's answer schema; None = the
    engine's default (on for ``llamacpp``)."""
    method: MethodName = Field("critique", **_on(*_EVERYWHERE))
    """The judging method: ``critique`` (the full feedback, then the verdict; the most
    accurate), ``verdict`` (the verdict alone, a few tokens) or ``logprob`` (one token:
    the distribution over the verdicts from its top logprobs)."""
    position: PositionName = Field("as_given", **_on(*_EVERYWHERE, eval="random"))
    """Pairwise: judge A and B ``as_given``, in a ``random`` order (seeded by `seed` and
    the item's id, and told back in the given orientation), or in ``both`` orders
    combined (with ``position_consistent``); ``icrm eval`` defaults to ``random``."""
    num_samples: int = Field(1, ge=1, le=MAX_SAMPLES, **_on(*_EVERYWHERE))
    """Self-consistency: samples per judgement (needs temperature > 0), voted (majority
    choice, mean score) with their ``agreement``."""
    group_strategy: GroupStrategyName = Field(None, **_on(*_EVERYWHERE))
    """How a group of responses to one prompt is judged: ``listwise`` (one request;
    rm_type listwise), ``individual`` (k requests), or a pairwise tournament —
    ``all_pairs`` (k(k−1)/2), ``circular`` (k), ``knockout`` (k − 1) — with
    Bradley–Terry rewards; None = the rm type's own (``listwise``, ``individual``,
    ``all_pairs``)."""
    inconsistent_pairs: InconsistentPairs = Field("tie", **_on(*_EVERYWHERE))
    """Group tournaments with ``position="both"``: a pair whose two orders disagree
    counts as a ``tie`` or ``abstain``s (no outcome)."""

    rubric: RubricArg = Field(None, **_on(*_EVERYWHERE))
    """A rubric with criteria (`icrm.rubric`): a YAML / JSON file (in Python also a dict
    or a ``Rubric``). Each criterion gets its own verdict and reason, and the reward is
    their aggregate, 0 when a required criterion fails; None = one holistic verdict."""
    max_criteria: int | None = Field(None, ge=1, le=64, **_on(*_EVERYWHERE))
    """With a rubric: criteria asked per request (1 = one request per criterion); None =
    all in one request."""

    @field_validator("rubric", mode="before")
    @classmethod
    def _rubric_kind(cls, value: Any) -> Any:
        from .rubric import Rubric

        if value is None or isinstance(value, (str, Path, Mapping, Rubric)):
            return None if isinstance(value, str) and not value.strip() else value
        raise ValueError(f"must be a rubric file path, a dict or a Rubric, got {type(value).__name__}")

    @field_validator("worker_addrs", "worker_args", mode="before")
    @classmethod
    def _sequence(cls, value: Any) -> Any:
        if isinstance(value, str):  # a comma-separated flag or variable
            return tuple(v.strip() for v in value.split(",") if v.strip())
        return tuple(value) if isinstance(value, list) else value

    @classmethod
    def build(cls, **values: Any) -> ICRMConfig:
        """Validate `values` into a config.

        Raises:
            ConfigError: the first invalid value, naming the option and what it must be.
        """
        try:
            return cls(**values)
        except ValidationError as e:
            raise config_error(e) from None

    def updated(self, **changes: Any) -> ICRMConfig:
        """A validated copy with `changes`.

        Raises:
            ConfigError: as `build`.
        """
        return type(self).build(**{**self.model_dump(), **changes})

    @property
    def engine_name(self) -> str:
        """The engine this config runs: ``engine``, else llama.cpp for the embedded
        model (no ``model_name``) and vLLM for a named one."""
        return self.engine or ("llamacpp" if self.model_name is None else "vllm")


def option_surfaces(name: str, model: type[BaseModel] = ICRMConfig) -> tuple[str, ...]:
    """The surfaces an option of `model` appears on (see the module docstring)."""
    extra = model.model_fields[name].json_schema_extra
    return tuple(extra.get("surfaces", ())) if isinstance(extra, dict) else ()


def option_default(name: str, surface: str, model: type[BaseModel] = ICRMConfig) -> Any:
    """An option's default on `surface`: the field's, unless the field names another."""
    field = model.model_fields[name]
    extra = field.json_schema_extra
    defaults = extra.get("defaults", {}) if isinstance(extra, dict) else {}
    return defaults.get(surface, field.default)


def env_name(name: str) -> str:
    """The environment variable of an option: ``ICRM_<NAME>``."""
    return f"ICRM_{name.upper()}"


M = TypeVar("M", bound=BaseModel)


def from_sources(model: type[M], flags: Mapping[str, Any], environ: Mapping[str, str], surface: str | None = None,
                 env_fields: Iterable[str] | None = None) -> M:
    """Build `model` with, for each field, the first of: its flag (in `flags`), its
    ``ICRM_<FIELD>`` variable (in `environ`; empty = unset), the `surface`'s own default
    (`option_default`), the field's default.

    Args:
        model: `ICRMConfig` or a command's options model.
        flags: the flags given (only those given).
        environ: the environment (``os.environ``, merged over an env file).
        surface: the command, for its own defaults.
        env_fields: the fields that have a variable (default: those on the ``env``
            surface, and every field of a model whose fields name no surfaces).

    Raises:
        ConfigError: the first bad value, naming its flag and its variable.
    """
    if env_fields is None:  # a field that names its surfaces has a variable on "env"; an option model's all do
        env_fields = [n for n, f in model.model_fields.items()
                      if not isinstance(f.json_schema_extra, dict) or "env" in option_surfaces(n, model)]
    values: dict[str, Any] = {}
    for name in model.model_fields:
        if name in flags:
            values[name] = flags[name]
        elif name in env_fields and environ.get(env_name(name), "") != "":
            values[name] = environ[env_name(name)]
        elif surface is not None and option_default(name, surface, model) != model.model_fields[name].default:
            values[name] = option_default(name, surface, model)
    env_fields = set(env_fields)

    def sources(name: str) -> str:
        return f" (flag --{name} or {env_name(name)})" if name in env_fields else ""

    try:
        return model(**values)
    except ValidationError as e:
        name = str(e.errors()[0]["loc"][0]) if e.errors()[0]["loc"] else "value"
        error = config_error(e, sources(name))
        raise (error if name in env_fields else ConfigError(f"--{error}")) from None
    except ConfigError as e:  # a boolean that is not one, named by its field
        name = str(e).split()[0]
        raise ConfigError(f"{e}{sources(name)}" if name in env_fields else f"--{e}") from None


def config_error(error: ValidationError, how: str = "") -> ConfigError:
    """One line for the first problem of a pydantic `ValidationError`: the option, what
    it must be, and the value given (`how`: e.g. ``" (flag --x or ICRM_X)"``).

    A `ConfigError` raised inside a validator (a boolean that is not one) keeps its
    own message.
    """
    first = error.errors()[0]
    name = ".".join(str(p) for p in first["loc"]) or "value"
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, ConfigError):
        return cause
    if first["type"] == "extra_forbidden":
        return ConfigError(f"unknown option {name!r}{how}")
    given = first.get("input")
    secret = name in SECRET_OPTIONS
    shown = f", got {given!r}" if first["type"] != "missing" and not secret else ""
    return ConfigError(f"{name}{how} must be {_expected(first)}{shown}")


def _expected(error: dict[str, Any]) -> str:
    """What a value must be, in words, from a pydantic error record."""
    kind, ctx = error["type"], error.get("ctx", {})
    bounds = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}
    if kind in bounds:
        limit = next(iter(v for k, v in ctx.items() if k in ("ge", "gt", "le", "lt")))
        noun = "a whole number" if isinstance(limit, int) and not isinstance(error.get("input"), float) else "a number"
        shown = str(limit) if isinstance(limit, int) else f"{limit:g}"
        return f"{noun} {bounds[kind]} {shown}"
    if kind == "literal_error":
        return ctx.get("expected", "one of the allowed values")
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "a whole number"
    if kind in ("float_parsing", "float_type", "finite_number"):
        return "a finite number"
    if kind in ("string_type", "bool_type", "missing"):
        return {"string_type": "text", "bool_type": "a boolean", "missing": "given"}[kind]
    return error["msg"].removeprefix("Value error, ").lower()
