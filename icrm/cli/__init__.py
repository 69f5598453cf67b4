"""The ``icrm`` command line (python-fire), a thin layer over the Python API.

Each command's flags are generated (`icrm.cli.flags`): its positional arguments, every
`ICRMConfig` field whose surfaces name the command, and the fields of its own option
models (`icrm.cli.options`, the service's `ServiceOptions`). Every `ICRMConfig` option
not given as a flag comes from its ``ICRM_<FIELD>`` variable, then its default — on
every command. fire reads the generated ``__signature__``; every value is then parsed
by the same models as the Python API (one boolean parser: ``--use_cache false`` is
False), so a bad flag is one line naming it. The whole command line is checked before
anything runs.

stdout holds only results (pretty JSON); logs go to stderr. Exit status: 0 when every
item got a verdict; 1 when some did not (an unparseable answer, a failed request; the
counts are printed), when a results file vanished during the run, or on an internal
error; 2 for a user or configuration error, as one line ``icrm: error: ...``; 130 on
Ctrl-C. A traceback means a bug.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from functools import partial
from typing import Any

from ..errors import ConfigError, ICRMError, InputError
from ..logs import enable_stderr_logging
from ..report.commands import report, show
from ..safe_text import printable
from .commands import mock, rubric_import, run_eval, run_score, run_serve, run_test, shots_build
from .flags import check_argv, command, one_line_errors
from .options import BackendOptions, EvalOptions, GenerationFlags, ScoreOptions

__all__ = ["main", "COMMANDS", "commands", "command_options", "GenerationFlags", "ScoreOptions", "EvalOptions",
           "BackendOptions"]

logger = logging.getLogger(__name__)

EXIT_USER_ERROR = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130

TEST_DOC = """Judge one example file and print the feedback as JSON.

FILE holds {"conversation": [...]} (individual) or {"conversation_A": [...],
"conversation_B": [...]} (pairwise). With no --model_name and no --engine, the embedded
SmolLM2-135M model runs on CPU. When the answer holds no verdict, prints {"error",
"reason", "raw"} and exits 1."""

SCORE_DOC = """Score a dataset into a resumable JSONL file and print a summary as JSON.

INPUT is JSONL, JSON, Parquet, a saved 🤗 dataset directory or a hub dataset name;
rows hold conversation (individual) or conversation_A + conversation_B (pairwise), or
prompt/chosen/rejected with --input_format rewardbench. Re-running the same command
skips final rows and redoes failed ones; another model, server, rm type, shots,
templates or generation flags into the same OUTPUT is an error (--overwrite True starts
over), and so is an OUTPUT another run is writing. Exits 0 when every row got a
verdict, 1 when some did not (the counts are printed)."""

EVAL_DOC = """{line}: evaluate, scored as its official code scores it, and print the table.

--data PATH (JSON, JSONL, Parquet in the benchmark's schema) or --dataset NAME (a hub
dataset; --split defaults to the benchmark's official split; see the docs). Pairwise
--position random|both|as_given places the preferred response by a seeded hash of the
row id, or judges both orders. Results go to RESULTS_DIR/{name}/<rm_type>/<model>/
<method>/<num_shots>_shots/ (rows.jsonl, summary.json, accuracy.png); a re-run resumes (with the
same run settings) and redoes judgements that failed. Exits 1 when a judgement failed
or an answer did not parse."""

SERVE_DOC = """Serve rewards over HTTP (Infernet /service_output, /v1/reward, OpenRLHF /get_reward).

Every flag can also come from ICRM_<FLAG> (e.g. ICRM_MODEL_NAME, ICRM_RM_TYPE) or an
--env_file of such lines; a flag beats the environment, which beats the file. Binds
127.0.0.1:3000 unless told otherwise; --bearer_key requires 'Authorization: Bearer <key>'."""


def _eval_commands() -> dict[str, Callable[..., None]]:
    from ..evaluation import BENCHMARKS

    return {name: command(name, (), (GenerationFlags, EvalOptions, BackendOptions), partial(run_eval, name),
                          EVAL_DOC.format(name=name, line=BENCHMARKS.summaries[name]), surface="eval")
            for name in BENCHMARKS}


COMMANDS: dict[str, Any] = {
    "test": command("test", ("file",), (GenerationFlags,), run_test, TEST_DOC),
    "score": command("score", ("input", "output"), (GenerationFlags, ScoreOptions, BackendOptions), run_score,
                     SCORE_DOC),
    "mock": mock,
    "eval": _eval_commands(),
    "report": report,
    "show": show,
    "rubric": {"import": rubric_import},
    "shots": {"build": shots_build},
}


def commands(serve: bool = False) -> dict[str, Any]:
    """Every command; `serve` adds ``icrm serve``, whose flags come from the service
    module (imported only when needed)."""
    if not serve:
        return COMMANDS
    from ..service.options import ServiceOptions, service_environ

    return {**COMMANDS, "serve": command("serve", (), (ServiceOptions,), run_serve, SERVE_DOC,
                                         env_models=(ServiceOptions,), environ=service_environ)}


def command_options(function: Callable[..., Any]) -> dict[str, Any]:
    """The flags of a generated command, by name, with their defaults."""
    import inspect

    return {name: getattr(p.default, "value", p.default) for name, p in inspect.signature(function).parameters.items()}


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``icrm`` console script."""
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    argv = sys.argv[1:] if argv is None else argv
    try:
        enable_stderr_logging()  # ICRM_LOG is checked here: a bad value is one line
        table = commands(serve=argv[:1] == ["serve"])
        check_argv(argv, table, others=("serve",))
        one_line_errors()
        import fire

        fire.Fire(table, command=argv, name="icrm")
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
        print(printable(f"icrm: internal error: {type(e).__name__}: {e} (a bug in icrm; ICRM_LOG=debug shows the "
                        "traceback)"), file=sys.stderr)
        sys.exit(EXIT_FAILED)


def _fail(error: ICRMError, code: int) -> None:
    # One line: the first line of the message; multi-line details (a worker's log tail)
    # follow only when they exist, indented, so the first line stays greppable.
    first, _, rest = printable(str(error)).partition("\n")
    print(f"icrm: error: {first}", file=sys.stderr)
    if rest:
        print("  " + rest.replace("\n", "\n  "), file=sys.stderr)
    sys.exit(code)


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    # Turn SIGTERM into SystemExit so context managers and atexit stop the workers.
    sys.exit(128 + signum)
