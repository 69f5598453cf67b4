"""What each ``icrm`` command does, given its parsed flags (`icrm.cli.flags.command`
builds the commands from these functions; ``report`` and ``show`` live in
`icrm.report.commands`)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

from ..config import ICRMConfig
from ..errors import ConfigError
from ..safe_text import dumps, printable
from .options import BackendOptions, EvalOptions, GenerationFlags, ScoreOptions

__all__ = ["run_test", "run_score", "run_eval", "run_serve", "mock", "shots_build", "print_json", "EXIT_FAILED"]

EXIT_FAILED = 1


def print_json(value: Any) -> None:
    """`value` as indented JSON on stdout, terminal controls escaped."""
    print(printable(dumps(value, indent=2)))


def run_test(file: str, config: ICRMConfig, generation: GenerationFlags) -> None:
    """``icrm test``: judge one example file, print the feedback (exit 1 without a verdict)."""
    from ..inputs import load_example
    from ..reward_model import ICRM

    example = load_example(file, config.rm_type)  # a bad file fails before any worker starts
    with ICRM.from_config(config) as icrm:
        feedback = icrm.judge(**example, **generation.kwargs())
    if feedback.ok:
        print_json(feedback.to_dict())
        return
    print_json({"error": feedback.error or feedback.parse_error, "error_kind": feedback.error_kind or "parse",
                "reason": feedback.parse_error_reason, "raw": feedback.raw_text})
    sys.exit(EXIT_FAILED)


def run_score(input: str, output: str | None, config: ICRMConfig, generation: GenerationFlags,
              options: ScoreOptions, backend: BackendOptions) -> None:
    """``icrm score``: every check first, then the judge, then the rows; prints the
    summary (exit 1 when an item has no verdict)."""
    from ..scoring import ScoreRun

    if output is None:
        raise ConfigError("give the results file: icrm score INPUT --output scores.jsonl")
    ray = backend.ray(config, options.concurrency)
    # Every check (input, options, output, its lock and run) before a worker is launched.
    with ScoreRun.prepare(config, input, output, limit=options.limit, id_field=options.id_field,
                          input_format=options.input_format, split=options.split, overwrite=bool(options.overwrite),
                          generation_kwargs=generation.kwargs()) as run:
        if ray is not None:
            from ..integrations.ray import run_on_ray

            summary = run_on_ray(run, ray, options.progress)
        else:
            from ..reward_model import ICRM

            with ICRM.from_config(config) as icrm:
                summary = asyncio.run(run.run(icrm, options.concurrency, options.progress))
    print_json({**summary.as_dict(), "output": str(output)})
    if not summary.all_judged:
        print(printable(f"icrm: {summary.failed} item(s) have no verdict (errors {summary.errors}, unparseable "
                        f"{summary.parse_failures} this run); see 'error' in {output}"), file=sys.stderr)
        sys.exit(EXIT_FAILED)


def run_eval(benchmark: str, config: ICRMConfig, generation: GenerationFlags, options: EvalOptions,
             backend: BackendOptions) -> None:
    """``icrm eval NAME``: the benchmark judged and scored the official way; prints the
    table (exit 1 when a judgement failed or an answer held no verdict)."""
    from ..evaluation import evaluate, format_table
    from ..spec import JudgeSpec

    subsets = options.subsets
    wanted = [s.strip() for s in subsets.split(",")] if isinstance(subsets, str) else (list(subsets) if subsets else None)
    # The judge is launched by the evaluation once the data and the results directory pass.
    summary, out = asyncio.run(evaluate(
        JudgeSpec(config), benchmark, data=options.data, dataset=options.dataset, split=options.split,
        results_dir=options.results_dir, overwrite_results=bool(options.overwrite_results), limit=options.limit,
        subsets=wanted, concurrency=options.concurrency, progress=options.progress,
        ray=backend.ray(config, options.concurrency), **generation.kwargs(),
    ))
    print(printable(format_table(summary, benchmark)))
    print(printable(f"results: {out}"), file=sys.stderr)
    counts = summary["counts"]
    if counts["request_errors"] or counts["parse_failures"]:
        print(f"icrm: {counts['request_errors']} judgement(s) failed ({counts['rows_failed']} row(s) not scored; "
              f"a re-run redoes them) and {counts['parse_failures']} row(s) had an unparseable answer", file=sys.stderr)
        sys.exit(EXIT_FAILED)


def run_serve(config: ICRMConfig, options: Any) -> None:
    """``icrm serve``: the reward service in the foreground."""
    from ..service import serve

    serve(config, options)


def mock(config: str, port: int | None = None, host: str = "127.0.0.1", debug: bool | None = None) -> None:
    """Serve the mock LLM server in the foreground until Ctrl-C.

    CONFIG is a YAML file of rules (inference-mock's format plus regex, model, status,
    error, headers, delay_s, times, usage, strict). --port overrides the config's port
    (default 11434); --debug logs every request and response.
    """
    from ..mock import serve_mock
    from ..settings import parse_bool

    serve_mock(config, host=host, port=port, debug=None if debug is None else parse_bool(debug, "--debug"))


def rubric_import(grader: str, output: str | None = None) -> None:
    """Turn an OpenAI grader config (JSON: score_model, label_model, multi) into an icrm
    rubric (YAML), printed or written to OUTPUT; a grader icrm cannot carry is an error
    naming why (exit 2)."""
    from ..rubric_import import import_grader

    text = import_grader(grader, output)
    if output is None:
        print(text, end="")
    else:
        print(f"icrm: wrote the rubric to {output}", file=sys.stderr)


def shots_build(data: str, output: str | None = None, rm_type: str = "pairwise", seed: int = 42,
                score_range: Any = None, overwrite: bool = False, critiques_from: str | None = None,
                model_name: str | None = None, base_url: str | None = None, concurrency: int = 8) -> None:
    """Build a shots pool (JSONL) from labelled rows: RewardBench prompt/chosen/rejected
    (pairwise, the chosen answer in A for half the shots), rows with a score (individual;
    --score_range LOW,HIGH rescales to 1-10), or groups with scores (listwise). Shots hold
    the verdict alone; with --critiques_from ENGINE (and --model_name, --base_url) that
    judge writes each critique, and only shots whose critique agrees with the label are
    kept. Prints what was read, kept and skipped."""
    from ..batch.sources import read_rows
    from ..shots_build import add_critiques, build_shots, write_pool

    if output is None:
        raise ConfigError("give the pool file: icrm shots build DATA --rm_type pairwise --output pool.jsonl")
    if Path(output).exists() and not overwrite:  # before any row is read or judge started
        raise ConfigError(f"{output} exists: pass --overwrite to replace it, or another --output")
    shots, report = build_shots(read_rows(data), rm_type, seed=int(seed), score_range=_pair_of_numbers(score_range),
                                source=str(data))
    if critiques_from is not None:
        from ..reward_model import ICRM

        with ICRM(model_name, rm_type=rm_type, engine=critiques_from, base_url=base_url, method="critique") as judge:
            shots = asyncio.run(add_critiques(shots, judge, int(concurrency), report))
        if not shots:
            raise ConfigError(f"no critique agreed with its label ({report.critiqued} asked): nothing written")
    write_pool(shots, output, overwrite=bool(overwrite))
    for line in report.lines():
        print(f"icrm: {line}", file=sys.stderr)
    print(f"icrm: wrote {len(shots)} shots to {output}", file=sys.stderr)


def _pair_of_numbers(value: Any) -> tuple[float, float] | None:
    # Fire reads "0,4" as a tuple, "0.5" as a number; a string is split here.
    if value is None:
        return None
    parts = value.split(",") if isinstance(value, str) else value if isinstance(value, (list, tuple)) else [value]
    try:
        low, high = (float(p) for p in parts)
    except (TypeError, ValueError):
        raise ConfigError(f"--score_range must be LOW,HIGH (e.g. 0,4), got {value!r}") from None
    return low, high
