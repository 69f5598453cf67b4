"""The ``icrm`` command line (python-fire), a thin layer over the Python API.

Each command's flags are generated: its own options (a pydantic model below, or the
service's `ServeSettings`), every `ICRMConfig` field whose surfaces name the command,
and the generation flags. fire reads the generated ``__signature__``; every value is
then parsed by the same models as the Python API (one boolean parser: ``--use_cache
false`` is False), so a bad flag is one line naming it.

stdout holds only results (pretty JSON); logs go to stderr. Exit status: 0 when every
item got a verdict; 1 when some did not (an unparseable answer, a failed request; the
counts are printed) or on an internal error; 2 for a user or configuration error, as
one line ``icrm: error: ...``; 130 on Ctrl-C. A traceback means a bug.

The module is long because every command's help text and flag models live here, where
fire reads them; what a command does lives in the modules it calls (``report`` and
``show`` in `icrm.report.commands`).
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import signal
import sys
from collections.abc import Callable
from functools import partial
from typing import Any, Literal

import fire
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .config import ICRMConfig, OptionalBool, config_error, option_default, option_surfaces
from .engines.base import check_generation_kwargs
from .errors import ConfigError, ICRMError, InputError
from .logs import enable_stderr_logging
from .report.commands import report, show

__all__ = ["main", "COMMANDS", "command_options", "GenerationFlags", "ScoreOptions", "EvalOptions", "BackendOptions"]

logger = logging.getLogger(__name__)

EXIT_USER_ERROR = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


class GenerationFlags(BaseModel):
    """Generation kwargs as flags of ``test``, ``score`` and ``eval`` (unset = the defaults
    of `icrm.reward_model.DEFAULT_GENERATION_KWARGS`)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    temperature: float | None = Field(None, ge=0, allow_inf_nan=False)
    """Sampling temperature (default 0.0)."""
    max_tokens: int | None = Field(None, ge=1)
    """Upper bound on generated tokens per judgement (default 3072)."""
    top_p: float | None = Field(None, gt=0, le=1)
    """Nucleus sampling mass (default 1.0)."""


class ScoreOptions(BaseModel):
    """``icrm score``'s own options (see `icrm.scoring.score_file`)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True, coerce_numbers_to_str=True)

    concurrency: int = Field(8, ge=1)
    """Requests in flight at most."""
    limit: int | None = Field(None, ge=0)
    """Score at most this many input rows."""
    id_field: str = "id"
    """The column holding row ids (else a stable hash of the row)."""
    input_format: Literal["conversations", "rewardbench"] = "conversations"
    """``conversations`` (conversation, or conversation_A + conversation_B) or
    ``rewardbench`` (prompt, chosen, rejected)."""
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
    num_actors: int = Field(2, ge=1)
    """Ray actors judging in parallel, each with its own judge; with --backend ray."""
    gpus_per_actor: float = Field(0.0, ge=0, allow_inf_nan=False)
    """GPUs per Ray actor, for actors that launch their own vLLM / llama.cpp worker."""
    cpus_per_actor: float | None = Field(None, ge=0, allow_inf_nan=False)
    """CPUs Ray reserves per actor (default: 0 for actors calling endpoints, 1 for actors with their own worker)."""

    def ray(self, config: ICRMConfig, concurrency: int) -> Any:
        """The `icrm.integrations.ray.RayBackend`, or None for ``local``."""
        if self.backend == "local":
            return None
        from .integrations.ray import RayBackend

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
    concurrency: int = Field(8, ge=1)
    """Judgements in flight at most (changes no result)."""
    progress: OptionalBool = None
    """Show the progress bar (default: only on a terminal)."""


def command_options(command: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    """The flags of a generated command, by name, with their defaults."""
    return dict(inspect.signature(command).parameters)


def _flags(name: str, models: tuple[type[BaseModel], ...], unset: bool = False
           ) -> tuple[list[inspect.Parameter], list[str], list[str]]:
    """The keyword flags of command `name`: every `ICRMConfig` field on its surface, then
    the fields of `models`. With `unset`, every default is None (= not given), for a
    command that merges flags with the environment.

    Returns:
        (parameters, the config field names among them, one help line per flag).
    """
    config_fields = [f for f in ICRMConfig.model_fields if name in option_surfaces(f, ICRMConfig)]
    fields = [(f, ICRMConfig.model_fields[f], option_default(f, name, ICRMConfig)) for f in config_fields]
    fields += [(f, field, field.default) for model in models for f, field in model.model_fields.items()
               if f not in config_fields]
    params, docs = [], []
    for field_name, field, field_default in fields:
        params.append(inspect.Parameter(field_name, inspect.Parameter.KEYWORD_ONLY,
                                        default=None if unset else field_default))
        default = "" if field_default in (None, "") else f" (default {field_default})"
        docs.append(f"  --{field_name}: {' '.join((field.description or '').split())}{default}")
    return params, config_fields, docs


def _command(name: str, positional: tuple[str, ...], models: tuple[type[BaseModel], ...],
             run: Callable[..., None], doc: str, surface: str | None = None) -> Callable[..., None]:
    """A fire command whose flags are `positional`, every `ICRMConfig` field on its
    `surface` (default: `name`), and the fields of `models`; `run` gets the parsed values."""
    params, config_fields, docs = _flags(surface or name, models)
    signature = inspect.Signature([inspect.Parameter(p, inspect.Parameter.POSITIONAL_OR_KEYWORD)
                                   for p in positional] + params)

    def command(*args: Any, **kwargs: Any) -> None:
        bound = signature.bind(*args, **kwargs)
        bound.apply_defaults()  # the command's own defaults (eval's rm_type), not the config's
        values = bound.arguments
        given = {k: v for k, v in values.items() if k not in positional}
        config = ICRMConfig.build(**{k: v for k, v in given.items() if k in config_fields and v is not None})
        parsed = [_parse(model, {k: v for k, v in given.items() if k in model.model_fields and k not in config_fields})
                  for model in models]
        run(*(values.get(p) for p in positional), config, *parsed)

    return _named(command, name, signature, doc, docs)


def _named(command: Callable[..., None], name: str, signature: inspect.Signature, doc: str,
           flag_docs: list[str]) -> Callable[..., None]:
    command.__signature__ = signature  # type: ignore[attr-defined]
    command.__name__ = command.__qualname__ = name
    command.__doc__ = f"{doc}\n\nFlags:\n" + "\n".join(flag_docs)
    return command


def _parse(model: type[BaseModel], values: dict[str, Any]) -> Any:
    try:
        return model(**values)
    except ValidationError as e:
        error = config_error(e)
        raise ConfigError(f"--{error}") from None


def _generation_kwargs(flags: GenerationFlags, seed: int | None) -> dict[str, Any]:
    given = {k: v for k, v in flags.model_dump().items() if v is not None}
    if seed is not None:
        given["seed"] = seed
    return check_generation_kwargs(given)


def _run_test(file: str, config: ICRMConfig, generation: GenerationFlags) -> None:
    from .inputs import load_example
    from .reward_model import ICRM

    example = load_example(file, config.rm_type)
    with ICRM.from_config(config) as icrm:
        feedback = icrm.judge(**example, **_generation_kwargs(generation, config.seed))
    if feedback.ok:
        _print_json(feedback.to_dict())
        return
    _print_json({"error": feedback.error or feedback.parse_error, "error_kind": feedback.error_kind or "parse",
                 "reason": feedback.parse_error_reason, "raw": feedback.raw_text})
    sys.exit(EXIT_FAILED)


def _run_score(input: str, output: str, config: ICRMConfig, generation: GenerationFlags,
               options: ScoreOptions, backend: BackendOptions) -> None:
    from .reward_model import ICRM

    if output is None:
        raise ConfigError("give the results file: icrm score INPUT --output scores.jsonl")
    ray = backend.ray(config, options.concurrency)
    if ray is not None:
        from .integrations.ray import score as score_on_ray

        summary = score_on_ray(input, output, config, ray_address=ray.address, num_actors=ray.num_actors,
                               concurrency=ray.concurrency, gpus_per_actor=ray.gpus_per_actor,
                               cpus_per_actor=ray.cpus_per_actor,
                               **options.model_dump(exclude={"concurrency"}),
                               **_generation_kwargs(generation, config.seed))
    else:
        with ICRM.from_config(config) as icrm:
            summary = icrm.score(input, output, **options.model_dump(), **_generation_kwargs(generation, config.seed))
    _print_json({**summary.as_dict(), "output": str(output)})
    if not summary.all_judged:
        print(f"icrm: {summary.failed} item(s) have no verdict (errors {summary.errors}, unparseable "
              f"{summary.parse_failures} this run); see 'error' in {output}", file=sys.stderr)
        sys.exit(EXIT_FAILED)


def _run_eval(benchmark: str, config: ICRMConfig, generation: GenerationFlags, options: EvalOptions,
              backend: BackendOptions) -> None:
    from .evaluation import evaluate, format_table
    from .reward_model import ICRM

    subsets = options.subsets
    wanted = [s.strip() for s in subsets.split(",")] if isinstance(subsets, str) else (list(subsets) if subsets else None)
    # The seed places rows and samples shots; generation stays greedy unless asked otherwise.
    generation_kwargs = _generation_kwargs(generation, None)
    ray = backend.ray(config, options.concurrency)
    if ray is not None:  # the actors judge; this process keeps the books
        from .integrations.ray import driver_judge

        judge = driver_judge(config)
    else:
        judge = ICRM.from_config(config)
    with judge as icrm:
        summary, out = icrm.run_sync(evaluate(
            icrm, benchmark, data=options.data, dataset=options.dataset, split=options.split,
            results_dir=options.results_dir, overwrite_results=bool(options.overwrite_results), limit=options.limit,
            subsets=wanted, concurrency=options.concurrency, progress=options.progress, ray=ray, **generation_kwargs,
        ))
    print(format_table(summary, benchmark))
    print(f"results: {out}", file=sys.stderr)
    counts = summary["counts"]
    if counts["request_errors"] or counts["parse_failures"]:
        print(f"icrm: {counts['request_errors']} judgement(s) failed ({counts['rows_failed']} row(s) not scored; "
              f"a re-run redoes them) and {counts['parse_failures']} row(s) had an unparseable answer", file=sys.stderr)
        sys.exit(EXIT_FAILED)


def _serve_command() -> Callable[..., None]:
    from .service import ServiceOptions, resolve_serve_options, serve

    params, _, docs = _flags("serve", (ServiceOptions,), unset=True)
    signature = inspect.Signature(params)

    def command(**kwargs: Any) -> None:
        serve(*resolve_serve_options(signature.bind(**kwargs).arguments))

    return _named(command, "serve", signature, serve_doc, docs)


def mock(config: str, port: int | None = None, host: str = "127.0.0.1", debug: Any = None) -> None:
    """Serve the mock LLM server in the foreground until Ctrl-C.

    CONFIG is a YAML file of rules (inference-mock's format plus regex, model, status,
    error, headers, delay_s, times, usage, strict). --port overrides the config's port
    (default 11434); --debug logs every request and response.
    """
    from .mock import serve_mock
    from .settings import parse_bool

    serve_mock(config, host=host, port=port, debug=None if debug is None else parse_bool(debug, "--debug"))


serve_doc = """Serve rewards over HTTP (Infernet /service_output, /v1/reward, OpenRLHF /get_reward).

Every flag can also come from ICRM_<FLAG> (e.g. ICRM_MODEL_NAME, ICRM_RM_TYPE) or an
--env_file of such lines; a flag beats the environment, which beats the file. Binds
127.0.0.1:3000 unless told otherwise; --api_key requires 'Authorization: Bearer <key>'."""

test = _command("test", ("file",), (GenerationFlags,), _run_test, """Judge one example file and print the feedback as JSON.

FILE holds {"conversation": [...]} (individual) or {"conversation_A": [...],
"conversation_B": [...]} (pairwise). With no --model_name and no --engine, the embedded
SmolLM2-135M model runs on CPU. When the answer holds no verdict, prints {"error",
"reason", "raw"} and exits 1.""")

score = _command("score", ("input", "output"), (GenerationFlags, ScoreOptions, BackendOptions), _run_score,
                 """Score a dataset into a resumable JSONL file and print a summary as JSON.

INPUT is JSONL, JSON, Parquet, a saved 🤗 dataset directory or a hub dataset name;
rows hold conversation (individual) or conversation_A + conversation_B (pairwise), or
prompt/chosen/rejected with --input_format rewardbench. Re-running the same command
skips final rows and redoes failed ones; another model, rm type, shots, templates or
generation flags into the same OUTPUT is an error (--overwrite True starts over).
Exits 0 when every row got a verdict, 1 when some did not (the counts are printed).""")

EVAL_DOC = """{line}: evaluate, scored as its official code scores it, and print the table.

--data PATH (JSON, JSONL, Parquet in the benchmark's schema) or --dataset NAME (a hub
dataset; --split defaults to the benchmark's official split; see README). Pairwise
--position random|both|as_given places the preferred response by a seeded hash of the
row id, or judges both orders. Results go to RESULTS_DIR/{name}/<rm_type>/<model>/
<method>/<num_shots>_shots/ (rows.jsonl, summary.json, accuracy.png); a re-run resumes (with the
same run settings) and redoes judgements that failed. Exits 1 when a judgement failed
or an answer did not parse."""


def _eval_commands() -> dict[str, Callable[..., None]]:
    from .evaluation import BENCHMARKS

    commands = {}
    for name, (_, _, line) in BENCHMARKS.items():
        doc = EVAL_DOC.format(name=name, line=line)
        commands[name] = _command(name, (), (GenerationFlags, EvalOptions, BackendOptions), partial(_run_eval, name), doc,
                                  surface="eval")
    return commands


COMMANDS: dict[str, Any] = {"test": test, "score": score, "mock": mock, "eval": _eval_commands(), "report": report,
                            "show": show}


def _commands() -> dict[str, Any]:
    # serve's flags come from the service module, imported only when needed.
    return {**COMMANDS, "serve": _serve_command()}


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``icrm`` console script."""
    enable_stderr_logging()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    argv = sys.argv[1:] if argv is None else argv
    try:
        commands = _commands() if argv[:1] == ["serve"] else COMMANDS
        _check_flags(argv, commands)
        fire.Fire(commands, command=argv, name="icrm")
    except (ConfigError, InputError) as e:
        _fail(e, EXIT_USER_ERROR)
    except ICRMError as e:
        _fail(e, EXIT_FAILED)
    except KeyboardInterrupt:
        print("icrm: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:  # the reader left (`icrm show ... | head`): nothing more to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except Exception as e:  # a bug: one line here, the traceback with ICRM_LOG=debug
        logger.debug("internal error", exc_info=True)
        print(f"icrm: internal error: {type(e).__name__}: {e} (a bug in icrm; ICRM_LOG=debug shows the traceback)",
              file=sys.stderr)
        sys.exit(EXIT_FAILED)


def _check_flags(argv: list[str], commands: dict[str, Any]) -> None:
    """Reject unknown flags before the command runs (fire would run it first, then
    complain about the flags it could not use)."""
    if not argv or argv[0] not in commands:
        return
    command: Any = commands[argv[0]]
    name, rest = argv[0], argv[1:]
    if isinstance(command, dict):  # a group, e.g. `icrm eval rewardbench`
        if not rest or rest[0] not in command:
            return
        name, command, rest = f"{name} {rest[0]}", command[rest[0]], rest[1:]
    params = set(inspect.signature(command).parameters)
    for token in rest:
        if token == "--":
            break
        if not token.startswith("--") or token in ("--help",):
            continue
        flag = token[2:].split("=", 1)[0].replace("-", "_")
        if flag not in params and not (flag.startswith("no") and flag[2:] in params):
            import difflib

            close = difflib.get_close_matches(flag, params, n=1)
            raise ConfigError(
                f"unknown flag --{flag} for 'icrm {name}'" + (f" (did you mean --{close[0]}?)" if close else "")
                + "; known flags: " + ", ".join(f"--{p}" for p in inspect.signature(command).parameters)
            )


def _fail(error: ICRMError, code: int) -> None:
    # One line: the first line of the message; multi-line details (a worker's log tail)
    # follow only when they exist, indented, so the first line stays greppable.
    first, _, rest = str(error).partition("\n")
    print(f"icrm: error: {first}", file=sys.stderr)
    if rest:
        print("  " + rest.replace("\n", "\n  "), file=sys.stderr)
    sys.exit(code)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False))


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    # Turn SIGTERM into SystemExit so context managers and atexit stop the workers.
    sys.exit(128 + signum)


if __name__ == "__main__":
    main()
