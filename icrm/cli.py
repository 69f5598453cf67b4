"""The ``icrm`` command line (python-fire), a thin layer over the Python API.

stdout holds only results (pretty JSON); logs go to stderr. An `ICRMError` is printed
as one line: exit 2 for user and configuration errors, 1 for engine failures and
unparseable answers, 130 on Ctrl-C. A traceback means a bug.
"""

from __future__ import annotations

import inspect
import json
import signal
import sys
from typing import Any

import fire

from .engines.base import DEFAULT_TIMEOUT_S, check_generation_kwargs
from .errors import ConfigError, ICRMError, InputError
from .inputs import load_example
from .logs import enable_stderr_logging
from .mock import serve_mock
from .reward_model import ICRM
from .service import ServeConfig
from .service import serve as serve_app

__all__ = ["main", "test", "score", "serve", "mock", "eval_rewardbench"]

EXIT_USER_ERROR = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


def test(
    file: str,
    rm_type: str = "individual",
    model_name: str | None = None,
    engine: str | None = None,
    num_shots: int = 3,
    shots_pool_path: str | None = None,
    template_path: str | None = None,
    shot_template_path: str | None = None,
    feedback_template_path: str | None = None,
    completion: bool | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    top_p: float | None = None,
    seed: int = 42,
    shot_sampling_mode: str = "fixed",
    base_url: str | None = None,
    use_cache: bool = False,
    max_retries: int | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    verbose: bool = False,
) -> None:
    """Judge one example file and print the feedback as JSON.

    FILE holds {"conversation": [...]} (individual) or {"conversation_A": [...],
    "conversation_B": [...]} (pairwise). With no --model_name and no --engine, the
    embedded SmolLM2-135M model runs on CPU. --seed seeds shot sampling and generation;
    --base_url points any engine at another server; --use_cache answers repeated
    requests from the generation cache; --timeout is per request, in seconds.
    When the answer cannot be parsed, prints {"error", "raw"} and exits 1.
    """
    flags = dict(locals())
    example = load_example(file, rm_type)
    generation_kwargs = _generation_kwargs(flags)
    with _build_icrm(flags) as icrm:
        feedback = icrm.judge(**example, **generation_kwargs)
    if feedback.ok:
        _print_json(feedback.to_dict())
        return
    _print_json({"error": feedback.parse_error, "raw": feedback.raw_text})
    sys.exit(EXIT_FAILED)


def mock(config: str, port: int | None = None, host: str = "127.0.0.1", debug: bool | None = None) -> None:
    """Serve the mock LLM server in the foreground until Ctrl-C.

    CONFIG is a YAML file of rules (inference-mock's format plus regex, model, status,
    error, headers, delay_s, times, usage). --port overrides the config's port (default
    11434); --debug logs every request.
    """
    serve_mock(config, host=host, port=port, debug=debug)


def score(
    input: str,
    output: str,
    rm_type: str = "individual",
    model_name: str | None = None,
    engine: str | None = None,
    num_shots: int = 3,
    shots_pool_path: str | None = None,
    template_path: str | None = None,
    shot_template_path: str | None = None,
    feedback_template_path: str | None = None,
    completion: bool | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    top_p: float | None = None,
    seed: int = 42,
    shot_sampling_mode: str = "fixed",
    base_url: str | None = None,
    use_cache: bool = False,
    max_retries: int | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    num_workers: int = 1,
    verbose: bool = False,
    concurrency: int = 8,
    limit: int | None = None,
    id_field: str = "id",
    format: str = "conversations",
    split: str = "train",
    progress: bool | None = None,
) -> None:
    """Score a dataset into a resumable JSONL file and print a summary as JSON.

    INPUT is JSONL, JSON, Parquet, a saved 🤗 dataset directory or a hub dataset name;
    rows hold conversation (individual) or conversation_A + conversation_B (pairwise), or
    prompt/chosen/rejected with --format rewardbench. Re-running the same command skips
    rows already done and retries failed ones. --progress shows the bar even when not on
    a TTY. --num_workers starts that many local servers (e.g. 2 llama.cpp workers on a
    2-core machine). Exits 1 when any row failed (its error is in the output).
    """
    flags = dict(locals())
    generation_kwargs = _generation_kwargs(flags)
    with _build_icrm(flags) as icrm:
        summary = icrm.score(input, output, concurrency=concurrency, limit=limit, id_field=id_field,
                             input_format=format, progress=progress, split=split, **generation_kwargs)
    _print_json({**summary.__dict__, "prefix_cache_hit_rate": summary.prefix_cache_hit_rate,
                 "output": str(output)})
    if summary.errors:
        sys.exit(EXIT_FAILED)


def serve(
    model_name: str | None = None,
    engine: str | None = None,
    rm_type: str | None = None,
    num_shots: int | None = None,
    shots_pool_path: str | None = None,
    template_path: str | None = None,
    shot_template_path: str | None = None,
    feedback_template_path: str | None = None,
    completion: bool | None = None,
    seed: int | None = None,
    shot_sampling_mode: str | None = None,
    base_url: str | None = None,
    num_workers: int | None = None,
    use_cache: bool | None = None,
    max_retries: int | None = None,
    timeout: float | None = None,
    host: str | None = None,
    port: int | None = None,
    api_key: str | None = None,
    max_concurrency: int | None = None,
    max_queue: int | None = None,
    max_body_mb: float | None = None,
    request_timeout_s: float | None = None,
    failure_reward: float | None = None,
    env_file: str | None = None,
) -> None:
    """Serve rewards over HTTP (Infernet /service_output, /v1/reward, OpenRLHF /get_reward).

    Every flag can also come from ICRM_<FLAG> (e.g. ICRM_MODEL_NAME, ICRM_RM_TYPE) or an
    --env_file of such lines. Binds 127.0.0.1:3000 unless told otherwise; --api_key
    requires 'Authorization: Bearer <key>'.
    """
    flags = {k: v for k, v in locals().items() if k != "env_file"}
    if flags["model_name"] is not None:  # fire turns a numeric name into an int
        flags["model_name"] = str(flags["model_name"])
    serve_app(ServeConfig.resolve(flags, env_file))


def eval_rewardbench(
    data: str | None = None,
    dataset: str | None = None,
    split: str = "filtered",
    rm_type: str = "pairwise",
    model_name: str | None = None,
    engine: str | None = None,
    num_shots: int = 3,
    shot_sampling_mode: str = "fixed",
    seed: int = 42,
    shots_pool_path: str | None = None,
    template_path: str | None = None,
    shot_template_path: str | None = None,
    feedback_template_path: str | None = None,
    completion: bool | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    top_p: float | None = None,
    base_url: str | None = None,
    use_cache: bool = False,
    max_retries: int | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    num_workers: int = 1,
    results_dir: str = "results",
    overwrite_results: bool = False,
    limit: int | None = None,
    subsets: Any = None,
    position: str = "random",
    concurrency: int = 8,
    progress: bool | None = None,
    verbose: bool = False,
) -> None:
    """Evaluate on RewardBench rows and print the official section table.

    --data PATH (JSON, JSONL, Parquet: id, prompt, chosen, rejected, subset) or --dataset
    allenai/reward-bench --split filtered. --position random|both places chosen in A/B
    by a seeded hash of the row id, or judges both orders. Results go to
    RESULTS_DIR/<rm_type>/<model>/<num_shots>_shots/ (rows.jsonl, summary.json,
    accuracy.png); a re-run resumes. --subsets takes a comma-separated list.
    """
    from .evaluation import evaluate, format_table

    flags = dict(locals())
    generation_kwargs = _generation_kwargs({**flags, "seed": None})  # the seed places rows; sampling stays greedy
    wanted = [s.strip() for s in subsets.split(",")] if isinstance(subsets, str) else (list(subsets) if subsets else None)
    with _build_icrm(flags) as icrm:
        summary, out = icrm.run_sync(evaluate(
            icrm, data=data, dataset=dataset, split=split, results_dir=results_dir, position=position,
            overwrite_results=overwrite_results, limit=limit, subsets=wanted, concurrency=concurrency,
            progress=progress, **generation_kwargs,
        ))
    print(format_table(summary))
    print(f"results: {out}", file=sys.stderr)
    if summary["counts"]["request_errors"]:
        sys.exit(EXIT_FAILED)


COMMANDS = {"test": test, "score": score, "serve": serve, "mock": mock, "eval": {"rewardbench": eval_rewardbench}}


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``icrm`` console script."""
    enable_stderr_logging()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    argv = sys.argv[1:] if argv is None else argv
    try:
        _check_flags(argv)
        fire.Fire(COMMANDS, command=argv, name="icrm")
    except (ConfigError, InputError) as e:
        _fail(e, EXIT_USER_ERROR)
    except ICRMError as e:
        _fail(e, EXIT_FAILED)
    except KeyboardInterrupt:
        print("icrm: interrupted", file=sys.stderr)
        sys.exit(EXIT_INTERRUPTED)


# The flags of test / score / eval that are `ICRM` arguments of the same name.
_ICRM_FLAGS = (
    "model_name", "shots_pool_path", "rm_type", "engine", "completion", "num_shots", "template_path",
    "shot_template_path", "feedback_template_path", "verbose", "seed", "shot_sampling_mode", "base_url",
    "use_cache", "max_retries", "timeout", "num_workers",
)


def _build_icrm(flags: dict[str, Any]) -> ICRM:
    kwargs = {k: flags[k] for k in _ICRM_FLAGS if k in flags}
    if kwargs.get("model_name") is not None:  # fire turns a numeric name into an int
        kwargs["model_name"] = str(kwargs["model_name"])
    return ICRM(**kwargs)


def _generation_kwargs(flags: dict[str, Any]) -> dict[str, Any]:
    given = {k: flags.get(k) for k in ("temperature", "max_tokens", "top_p", "seed")}
    return check_generation_kwargs({k: v for k, v in given.items() if v is not None})


def _check_flags(argv: list[str]) -> None:
    """Reject unknown flags before the command runs (fire would run it first, then
    complain about the flags it could not use)."""
    if not argv or argv[0] not in COMMANDS:
        return
    command: Any = COMMANDS[argv[0]]
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
            raise ConfigError(
                f"unknown flag --{flag} for 'icrm {name}'; known flags: "
                + ", ".join(f"--{p}" for p in inspect.signature(command).parameters)
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
