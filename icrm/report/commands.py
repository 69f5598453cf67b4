"""The ``icrm report`` and ``icrm show`` commands (`icrm.cli` lists them)."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import ConfigError
from ..safe_text import dumps, printable

__all__ = ["report", "show"]


def report(*results: str, output: str | None = None, data: str | None = None) -> None:
    """Write one self-contained HTML page of a run, or of two side by side.

    RESULTS is an `icrm eval` results directory or an `icrm score` output file; give two
    to compare them (per-subset deltas, the items where they disagree). --output
    defaults to report.html (comparison.html) inside the results directory, or
    OUT.report.html beside a scored file OUT.jsonl.
    --data is the input a scored file was made from, to show its conversations (an
    evaluation finds its data itself). No network is needed to open the page.
    """
    from . import load_run, write_report

    if not results or len(results) > 2:
        raise ConfigError(f"give one results directory or file, or two to compare, got {len(results)}: "
                          "icrm report RESULTS [RESULTS_B] [--output report.html]")
    runs = [load_run(path, data) for path in results]
    if output is None:  # inside the results directory; beside a scored file, named after it
        first, name = runs[0].path, "report.html" if len(runs) == 1 else "comparison.html"
        output = str(first / name if first.is_dir() else first.with_name(f"{first.stem}.{name}"))
    check_output(output, [path for run in runs for path in run.inputs()])
    print(printable(dumps({"report": str(write_report(runs, output)), "items": [len(run.items) for run in runs]},
                          indent=2)))


def check_output(output: str | Path, inputs: list[Path]) -> None:
    """A report page may be written to `output`: not a directory, and none of the files
    the report read (results, summaries, data).

    Raises:
        ConfigError: naming the file it would overwrite.
    """
    path = Path(output)
    if path.is_dir():
        raise ConfigError(f"--output {output} is a directory: give the page's file name, e.g. report.html")
    for source in inputs:
        if path.exists() and source.exists() and os.path.samefile(path, source):
            raise ConfigError(f"--output {output} is {source}, which the report reads: give another file")


def show(results: str, id: str | None = None, random: int | None = None, where: str | None = None,
         prompt: bool = False, data: str | None = None, seed: int = 0) -> None:
    """Print items of a run in the terminal: conversations, shots, the judge's raw
    answer, the parsed feedback, probabilities, latency and tokens.

    RESULTS is an `icrm eval` results directory or an `icrm score` output file. --id ID
    (comma-separated for several), --random N (a seeded sample, --seed), --where
    field=value[,field=value] on id, subset, status (correct, incorrect, partial,
    failed, missing; scored, unparsed for a scored file), error_kind or consistent;
    --prompt also prints the prompt icrm sent (rebuilt from the run's settings). With
    none of them, the first item.
    """
    from . import format_item, load_run, select_items
    from ..settings import parse_bool

    run = load_run(results, data)
    ids = [] if id is None else [i.strip() for i in str(id).split(",") if i.strip()]
    conditions = [] if where is None else [c.strip() for c in str(where).split(",") if c.strip()]
    items = select_items(run, ids, conditions, random, seed)
    if not (ids or conditions or random):
        items = items[:1]
    if not items:
        raise ConfigError(f"no item of {run.path} matches --where {where}")
    show_prompt = parse_bool(prompt, "--prompt")
    print("\n".join(format_item(run, item, prompt=show_prompt) for item in items))
