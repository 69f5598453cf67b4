"""Running any benchmark: judge every row resumably, score it the benchmark's official way,
and write the outputs.

Outputs go to ``results_dir/<benchmark>/<rm_type>/<model>/<method>/<num_shots>_shots/``:
``rows.jsonl`` (one line per judgement, appended as they finish; a re-run skips finished
ones and refuses another run's settings), ``summary.json`` (scores with 95% bootstrap
intervals, counts, distribution, calibration, meta with wall time and tokens), and
``accuracy.png`` when matplotlib is installed (``icrm[plot]``).

With ``shot_sampling_mode="random"`` each row's shots come from a generator seeded by the
row id and the seed, and pairwise ``position="random"`` places each row by the same
seed and id, so every result is the same in every run whatever the concurrency, the
process count or the cache.
"""

from __future__ import annotations

import contextlib
import json
import random
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..batch import Entry, ResultsFile, read_results, resume
from ..errors import ConfigError, InputError
from ..executors import LocalExecutor
from .base import Benchmark
from .plot import plot_summary
from .stats import RowScore, SubsetReport, baseline_rows, calibration, subset_report

if TYPE_CHECKING:
    from ..integrations.ray import RayBackend
    from ..spec import JudgeSpec

__all__ = ["evaluate", "load_rows", "output_dir", "summarize", "format_table", "POSITIONS"]

POSITIONS = ("random", "both", "as_given")


def load_rows(benchmark: Benchmark, data: str | Path | None = None, dataset: str | None = None,
              split: str | None = None, subsets: Sequence[str] | None = None,
              limit: int | None = None) -> list[dict[str, Any]]:
    """A benchmark's rows from a file (JSON, JSONL, Parquet) or the 🤗 hub, checked.

    Args:
        benchmark: the benchmark.
        data: a local file in its schema.
        dataset: a hub dataset name, when `data` is None (default: the benchmark's).
        split: the hub split (default: the benchmark's).
        subsets: keep only these subsets.
        limit: keep the first `limit` rows (after the subset filter).

    Raises:
        ConfigError: neither or both of `data` and `dataset`.
        InputError: unreadable input, a row missing a field (naming it), repeated ids,
            or no row in the asked subsets.
    """
    if (data is None) == (dataset is None):
        hint = f" (e.g. --dataset {benchmark.hub_dataset})" if benchmark.hub_dataset else ""
        raise ConfigError(f"pass exactly one of --data PATH or --dataset NAME{hint}")
    source = str(data if data is not None else dataset)
    wanted = set(subsets) if subsets else None
    rows: list[dict[str, Any]] = []
    for number, raw in enumerate(benchmark.read(source, split or benchmark.hub_split)):
        if not isinstance(raw, dict):
            raise InputError(f"{source} row {number}: expected an object, got {type(raw).__name__}")
        row = benchmark.check(raw, f"{source} row {number}", source)
        if wanted is None or benchmark.subset(row) in wanted:
            rows.append(row)
            if limit is not None and len(rows) >= limit:
                break
    if wanted is not None and not rows:
        raise InputError(f"{source}: no rows in subsets {', '.join(sorted(wanted))}")
    repeated = [i for i, n in Counter(benchmark.row_id(r) for r in rows).items() if n > 1]
    if repeated:
        raise InputError(f"{source}: row ids must be unique; repeated: {', '.join(repeated[:5])}")
    return rows


def output_dir(results_dir: str | Path, benchmark: str, rm_type: str, model: str, method: str, num_shots: int) -> Path:
    """``results_dir/<benchmark>/<rm_type>/<model>/<method>/<num_shots>_shots`` (the
    model made path-safe): runs that differ in these go to their own directories."""
    safe_model = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_") or "model"
    return Path(results_dir) / benchmark / rm_type / safe_model / method / f"{num_shots}_shots"


def _entries(icrm: JudgeSpec, benchmark: Benchmark, rows: Sequence[dict[str, Any]], position: str) -> Iterator[Entry]:
    """Every judgement of `rows`, as entries of the run."""
    for row in rows:
        rid = benchmark.row_id(row)
        judgements = benchmark.judgements(row, icrm.rm_type)
        shot_ids = _row_shot_ids(icrm, rid, [j.item for j in judgements])
        for judgement in judgements:
            # position="random" places by the seed and this key: the row id for a row of one
            # judgement (RewardBench), else each judgement's own id, so a row's judgements
            # (RM-Bench's 9 pairs) are placed independently.
            result_id = f"{rid}:{judgement.tag}"
            yield Entry(result_id, judgement.item, key=rid if len(judgements) == 1 else result_id, position=position,
                        shot_ids=shot_ids, extra={"row_id": rid, "tag": judgement.tag})


def _row_shot_ids(icrm: JudgeSpec, rid: str, items: Sequence[dict[str, Any]]) -> tuple[str, ...] | None:
    """One choice of shots for all of a row's judgements (both of a pair's answers see
    the same), made for every conversation in the row, so none of them is shown; None
    when the row's items are not valid (each then fails on its own)."""
    if not icrm.num_shots:
        return None
    fields = icrm.rm_type.input_fields
    try:
        conversations = [c for item in items for c in icrm.rm_type.conversations({f: item.get(f) for f in fields})]
        return tuple(s.id for s in icrm.choose_shots(conversations, rid))
    except InputError:
        return None


async def evaluate(
    icrm: JudgeSpec,
    benchmark: Benchmark,
    data: str | Path | None = None,
    dataset: str | None = None,
    split: str | None = None,
    results_dir: str | Path = "results",
    position: str | None = None,
    overwrite_results: bool = False,
    limit: int | None = None,
    subsets: Sequence[str] | None = None,
    concurrency: int = 8,
    progress: bool | None = None,
    ray: RayBackend | None = None,
    **generation_kwargs: Any,
) -> tuple[dict[str, Any], Path]:
    """Run (or resume) an evaluation on `benchmark` and write its outputs.

    Args:
        icrm: the judge (an `ICRM`), or its `icrm.spec.JudgeSpec`: then an `ICRM` is
            launched from its configuration once every check has passed (none with
            `ray`), and closed at the end. Its rm type, method, shots and seed define
            the run.
        benchmark: the benchmark (`icrm.evaluation.get_benchmark`).
        data, dataset, split, subsets, limit: as `load_rows`.
        results_dir: the root of the outputs (see the module docstring).
        position: pairwise placement, ``random`` (seeded per row), ``both`` or
            ``as_given``; None = the judge's own. A benchmark whose protocol fixes it
            (JudgeBench: both orders) overrides it, and the summary says so.
        overwrite_results: start over instead of resuming.
        concurrency: judgements in flight at most (does not change any result).
        progress: show the tqdm bar (None = only on a TTY).
        ray: judge on a Ray cluster (`icrm.integrations.ray.RayBackend`).
        **generation_kwargs: as `ICRM.ajudge`.

    Returns:
        (the summary dict, the output directory).

    Raises:
        ConfigError: bad arguments, or a results directory holding another run's
            judgements (naming the settings that differ).
        InputError: unreadable or malformed data.
    """
    position = position or icrm.config.position
    if position not in POSITIONS:
        raise ConfigError(f"position must be one of {', '.join(POSITIONS)}, got {position!r}")
    position = benchmark.fixed_position or position
    generation_kwargs = icrm.check_generation_kwargs(generation_kwargs)
    rows = load_rows(benchmark, data, dataset, split, subsets, limit)
    out = output_dir(results_dir, benchmark.name, icrm.rm_type.name, icrm.model_name, icrm.method.name, icrm.num_shots)
    rows_path = out / "rows.jsonl"
    fields = {**icrm.run_fields(generation_kwargs), "benchmark": benchmark.name,
              "position": None if icrm.rm_type.single else position}
    with ResultsFile.open(rows_path, fields, "pass --overwrite_results True to start over",
                          inputs=[data] if data is not None else [], overwrite=overwrite_results) as results:
        entries = list(_entries(icrm, benchmark, rows, position))
        todo = [e for e in entries if e.id not in results.done]
        if ray is not None:
            tally = await resume(results, todo, ray.executor(generation_kwargs, results.provenance), progress, len(todo))
        else:
            with _live(icrm) as judge:  # launched only now: every check above came first
                executor = LocalExecutor(judge, generation_kwargs, results.provenance, concurrency)
                tally = await resume(results, todo, executor, progress, len(todo))
    provenance = results.provenance
    from .. import __version__

    meta = {
        "benchmark": benchmark.name, "title": benchmark.title, "official_protocol": icrm.rm_type.name in benchmark.official,
        "model": icrm.model_name, "engine": icrm.engine_name, "rm_type": icrm.rm_type.name, "method": icrm.method.name,
        "num_shots": icrm.num_shots, "shot_sampling_mode": icrm.shot_sampling_mode, "seed": icrm.seed,
        "position": fields["position"], "fingerprint": provenance["fingerprint"], "template_hash": icrm.template_hash,
        "icrm_version": __version__, "data": str(data or f"{dataset}:{split or benchmark.hub_split}"),
        "subsets": list(subsets or []), "limit": limit, "generation_kwargs": fields["generation_kwargs"],
        "judgements_run": len(todo), "judgements_skipped": len(entries) - len(todo), "seconds": tally.seconds,
    }
    summary = summarize(icrm, benchmark, rows, rows_path, meta)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    plot_summary(summary, out / "accuracy.png")
    return summary, out


@contextlib.contextmanager
def _live(spec: JudgeSpec) -> Iterator[Any]:
    """A judge that can judge: `spec` itself when it is one (the caller closes it), else
    an `ICRM` launched from its configuration and closed after."""
    if hasattr(spec, "ajudge_item"):
        yield spec
        return
    from ..reward_model import ICRM

    with ICRM.from_config(spec.config) as judge:
        yield judge


def summarize(icrm: JudgeSpec, benchmark: Benchmark, rows: Sequence[dict[str, Any]], rows_path: Path,
              meta: dict[str, Any]) -> dict[str, Any]:
    """Score the judgements in `rows_path` for `rows`: subsets, sections, counts,
    distribution, calibration and token totals.

    A row is scored when each of its judgements has a record and none failed for a
    reason other than an unparseable answer (those count as the benchmark says); rows
    with a request error are counted apart (``rows_failed``) and never scored, so a
    server's outage cannot move a score. A re-run redoes them.
    """
    records = read_results(rows_path)
    rng = random.Random(icrm.seed)
    rm_type = icrm.rm_type
    by_subset: dict[str, list[RowScore]] = defaultdict(list)
    distribution: Counter[str] = Counter()
    tokens: Counter[str] = Counter()
    failed = missing = errors = 0
    for row in rows:
        rid = benchmark.row_id(row)
        judged = {j.tag: records.get(f"{rid}:{j.tag}") for j in benchmark.judgements(row, rm_type)}
        if any(r is None for r in judged.values()):
            missing += 1
            continue
        for record in judged.values():
            distribution[str(record.get(rm_type.verdict_key))] += 1
            tokens.update({k: v or 0 for k, v in (record.get("usage") or {}).items()})
        row_errors = sum(r.get("error_kind") not in (None, "parse") for r in judged.values())
        if row_errors:
            errors += row_errors
            failed += 1
            continue
        score = benchmark.score(row, judged, rm_type)  # type: ignore[arg-type]
        by_subset[score.subset].append(score)
    reports = {}
    for name, scored in sorted(by_subset.items()):
        reports[name] = subset_report(scored, rng, partial(benchmark.subset_accuracy, name, rm_type=rm_type))
    official = {n: r for n, r in reports.items() if benchmark.is_official(n)}
    sections = benchmark.aggregate(official, rm_type)
    intervals = benchmark.section_intervals(official, rm_type, rng) if sections else {}
    baseline = benchmark.aggregate(_baseline_reports(benchmark, official, rm_type), rm_type) \
        if all(r.length_baseline is not None for r in official.values()) else {}
    all_rows = [r for scored in by_subset.values() for r in scored]
    consistency = [r.consistent for r in all_rows if r.consistent is not None]
    return {
        "meta": {**meta, "tokens": dict(tokens)},
        "sections": {name: {"score": score, "ci": intervals.get(name), "length_baseline": baseline.get(name)}
                     for name, score in sections.items()},
        "subsets": {n: r.as_dict() for n, r in official.items()},
        "other": {n: r.as_dict() for n, r in reports.items() if n not in official},
        "counts": {
            "rows": len(rows), "rows_scored": len(all_rows), "rows_missing": missing, "rows_failed": failed,
            "ties": sum(r.tie for r in all_rows), "parse_failures": sum(r.parse_failure for r in all_rows),
            "request_errors": errors,
        },
        "position_consistency": statistics.fmean(consistency) if consistency else None,
        "inconsistency_rate": 1 - statistics.fmean(consistency) if consistency else None,
        "distribution": dict(sorted(distribution.items())),
        "calibration": calibration([p for r in all_rows for p in r.p_correct]),
        "row_scores": {r.id: {"subset": r.subset, "score": r.score, "tie": r.tie, "parse_failure": r.parse_failure,
                              "consistent": r.consistent,
                              **{k: v for k, v in r.values.items() if k != "longer"}} for r in all_rows},
    }


def _baseline_reports(benchmark: Benchmark, reports: dict[str, SubsetReport], rm_type: Any) -> dict[str, SubsetReport]:
    """The subsets as the length baseline scores them, for its section scores."""
    out = {}
    for name, report in reports.items():
        rows = baseline_rows(report.rows)
        out[name] = replace(report, accuracy=benchmark.subset_accuracy(name, rows, rm_type), rows=rows)
    return out


def format_table(summary: dict[str, Any], benchmark: Benchmark) -> str:
    """The summary as a text table: sections with their subsets, "Other", overall."""
    meta = summary["meta"]
    note = "" if meta.get("official_protocol", True) else " (icrm's protocol, not the benchmark's official one)"
    lines = [f"{benchmark.title} ({meta['rm_type']}, {meta['method']}){note} — {meta['model']} on {meta['engine']}, "
             f"{meta['num_shots']} shots, seed {meta['seed']}" + (f", position {meta['position']}" if meta.get("position") else ""),
             f"{'':<30}{'n':>6}{'score':>8}{'95% CI':>16}{'strict':>8}{'ties':>6}{'unparsed':>9}{'longer':>8}"]

    def subset_line(name: str, r: dict[str, Any]) -> str:
        low, high = r["accuracy_ci"]
        baseline = f"{r['length_baseline']:>8.3f}" if r["length_baseline"] is not None else f"{'-':>8}"
        return (f"  {name:<28}{r['n']:>6}{r['accuracy']:>8.3f}{f'[{low:.2f}, {high:.2f}]':>16}"
                f"{r['strict_accuracy']:>8.3f}{r['ties']:>6}{r['parse_failures']:>9}{baseline}")

    def section_line(name: str, label: str, n: int | str = "") -> str:
        entry = summary["sections"][name]
        ci, baseline = entry["ci"], entry.get("length_baseline")
        interval = f"{f'[{ci[0]:.2f}, {ci[1]:.2f}]':>16}" if ci else f"{'':>16}"
        longer = f"{'':>23}{baseline:>8.3f}" if baseline is not None else ""
        return f"{label:<30}{n:>6}{entry['score']:>8.3f}{interval}{longer}"

    shown = set()
    for section, members in benchmark.sections(meta["rm_type"]):
        names = [s for s in (members if members is not None else summary["subsets"]) if s in summary["subsets"]]
        if section == "overall":
            lines += [subset_line(s, summary["subsets"][s]) for s in names if s not in shown]
            shown.update(names)
            continue
        if section in summary["sections"]:
            lines.append(section_line(section, section, sum(summary["subsets"][s]["n"] for s in names) or ""))
        lines += [subset_line(s, summary["subsets"][s]) for s in names]
        shown.update(names)
    if summary["other"]:
        lines.append("Other (not in the benchmark's sections)")
        lines += [subset_line(name, r) for name, r in summary["other"].items()]
    for name in summary["sections"]:
        if name != "overall" and not any(name == s for s, _ in benchmark.sections(meta["rm_type"])):
            lines.append(section_line(name, name))
    if "overall" in summary["sections"]:
        lines.append(section_line("overall", benchmark.overall_label))
    counts = summary["counts"]
    tail = f"rows {counts['rows_scored']}/{counts['rows']}, ties {counts['ties']}, unparsed {counts['parse_failures']}, " \
           f"request errors {counts['request_errors']}"
    if counts.get("rows_failed"):
        tail += f", rows not scored after a request error {counts['rows_failed']}"
    if summary["position_consistency"] is not None:
        tail += (f", position consistency {summary['position_consistency']:.3f} "
                 f"(inconsistent {summary['inconsistency_rate']:.1%})")
    if summary.get("calibration"):
        tail += f", ECE {summary['calibration']['ece']:.3f}, Brier {summary['calibration']['brier']:.3f}"
    lines.append(tail + f", {meta['seconds']:.0f} s")
    return "\n".join(lines)
