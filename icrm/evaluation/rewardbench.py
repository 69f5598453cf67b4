"""RewardBench evaluation: judge every row, resumably, then score it the official way.

Rows follow RewardBench's schema (``id``, ``prompt``, ``chosen``, ``rejected``,
``subset``; ``prompt`` a string or a list of turns). Pairwise mode places ``chosen`` in A
or B from a hash of the row id and the seed (``position="random"``), so placement is the
same in every run whatever the concurrency, process count or cache; ``position="both"``
judges both orders. Individual mode scores ``chosen`` and ``rejected`` with the same
shots. With ``shot_sampling_mode="random"`` each row's shots come from a generator seeded
by the row id and the seed, for the same reason.

Outputs go to ``results_dir/<rm_type>/<model>/<num_shots>_shots/``: ``rows.jsonl`` (one
line per judgement, appended as they finish; a re-run skips finished ones),
``summary.json``, and ``accuracy.png`` when matplotlib is installed (``icrm[plot]``).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..batch import BadRow, check_same_run, is_finished, read_results, read_rows, run_fingerprint, write_results
from ..core import random_order
from ..inputs import rewardbench_pair
from ..errors import ConfigError, InputError
from ..scoring import result_row
from ..shots import Shot
from .aggregate import (
    Outcome,
    bootstrap_sections,
    combine_orders,
    length_baseline,
    official_subsets,
    preference_outcome,
    rewardbench_constants,
    section_scores,
    subset_report,
)

if TYPE_CHECKING:
    from ..reward_model import ICRM

__all__ = ["POSITIONS", "load_rows", "chosen_in_a", "evaluate", "format_table", "output_dir"]

logger = logging.getLogger(__name__)

POSITIONS = ("random", "both", "as_given")
REQUIRED_FIELDS = ("id", "prompt", "chosen", "rejected", "subset")
HUB_DATASET = "allenai/reward-bench"


def load_rows(data: str | Path | None = None, dataset: str | None = None, split: str = "filtered",
              subsets: Sequence[str] | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Read RewardBench rows from a file (JSON, JSONL, Parquet) or the 🤗 hub.

    Args:
        data: a local file in RewardBench's schema.
        dataset: a hub dataset name (e.g. ``allenai/reward-bench``), when `data` is None.
        split: the hub split (``filtered`` is the official one).
        subsets: keep only these subsets.
        limit: keep the first `limit` rows (after the subset filter).

    Raises:
        ConfigError: neither or both of `data` and `dataset`.
        InputError: unreadable input, or a row missing a field (naming the row).
    """
    if (data is None) == (dataset is None):
        raise ConfigError("pass exactly one of --data PATH or --dataset NAME (e.g. --dataset allenai/reward-bench)")
    source = data if data is not None else dataset
    wanted = set(subsets) if subsets else None
    rows: list[dict[str, Any]] = []
    for number, row in enumerate(read_rows(source, split)):
        if isinstance(row, BadRow):  # a benchmark must be whole: stop before any judgement
            raise InputError(row.message)
        missing = [f for f in REQUIRED_FIELDS if f not in row]
        if missing:
            raise InputError(f"{source} row {number}: missing {', '.join(missing)} (RewardBench rows need "
                             f"{', '.join(REQUIRED_FIELDS)})")
        if wanted is None or row["subset"] in wanted:
            rows.append(row)
            if limit is not None and len(rows) >= limit:
                break
    if wanted is not None and not rows:
        raise InputError(f"{source}: no rows in subsets {', '.join(sorted(wanted))}")
    return rows


def chosen_in_a(row_id: str, seed: int) -> bool:
    """Whether ``chosen`` is judged in position A for this row with ``position="random"``
    (`icrm.core.random_order` of the seed and the row id), the same in every run."""
    return random_order(seed, row_id) == "AB"


def output_dir(results_dir: str | Path, rm_type: str, model: str, num_shots: int) -> Path:
    """``results_dir/<rm_type>/<model>/<num_shots>_shots`` (the model name made path-safe)."""
    safe_model = re.sub(r"[^A-Za-z0-9._-]+", "_", model).strip("_") or "model"
    return Path(results_dir) / rm_type / safe_model / f"{num_shots}_shots"


@dataclass(frozen=True)
class _Judgement:
    id: str
    row_id: str
    tag: str  # "pair" (chosen in A, placed by the judge's position), or "chosen" / "rejected"
    item: dict[str, Any]
    shots: list[Shot] | None


def _judgements(icrm: ICRM, rows: Sequence[dict[str, Any]], seed: int) -> Iterator[_Judgement]:
    for row in rows:
        rid = str(row["id"])
        shots = None
        if icrm.shot_sampling_mode == "random":
            shots = icrm.shots_pool.sample(icrm.num_shots, "random", random.Random(f"{seed}:{rid}"))
        chosen, rejected = rewardbench_pair(row, f"row {rid}")
        for tag, item in icrm.rm_type.pair_judgements(chosen, rejected, ("AB",)):
            tag = "pair" if tag == "AB" else tag
            yield _Judgement(rid if tag == "pair" else f"{rid}:{tag}", rid, tag, item, shots)


async def run_judgements(icrm: ICRM, rows: Sequence[dict[str, Any]], rows_path: Path, seed: int,
                         concurrency: int, progress: bool | None, position: str,
                         **generation_kwargs: Any) -> tuple[int, int]:
    """Judge every row not yet finished in `rows_path`, appending one line per judgement.

    Pairwise rows are judged with chosen as A and the judge's position (``random``:
    seeded by the row id; ``both``: both orders), told back with chosen as A.

    Returns:
        (judgements run now, judgements skipped as already done).

    Raises:
        ConfigError: `rows_path` holds judgements of another run (another model,
            temperature, shots, ...), naming the fields that differ.
    """
    fields = {**icrm.run_fields(generation_kwargs), "position": None if icrm.rm_type.single else position}
    provenance = {**fields, "fingerprint": run_fingerprint(fields)}
    records = read_results(rows_path)
    check_same_run(records, fields, rows_path, "pass --overwrite_results True to start over")
    done = {i for i, record in records.items() if is_finished(record)}
    todo = [j for j in _judgements(icrm, rows, seed) if j.id not in done]
    skipped = sum(1 for _ in _judgements(icrm, rows, seed)) - len(todo)

    async def work(judgement: _Judgement) -> dict[str, Any]:
        feedback = await icrm.ajudge_item(judgement.item, judgement.shots, generation_kwargs, key=judgement.row_id,
                                          position=position)
        return {**result_row(judgement.id, feedback, provenance, icrm.rm_type), "row_id": judgement.row_id,
                "tag": judgement.tag}

    await write_results(todo, work, rows_path, concurrency, progress, total=len(todo))
    return len(todo), skipped


def row_outcome(icrm: ICRM, judged: dict[str, dict[str, Any]]) -> Outcome:
    """A row's outcome from its judgement records (by tag), chosen being A."""
    key = icrm.rm_type.verdict_key
    if icrm.rm_type.single:
        verdicts = {tag: r.get(key) for tag, r in judged.items()}
        return preference_outcome(icrm.rm_type.prefers_chosen(verdicts)[0])
    record = judged["pair"]
    orders = record.get("order_verdicts") or {"AB": record.get(key)}
    per_order = [preference_outcome(icrm.rm_type.prefers_chosen({"AB": v})[0]) for v in orders.values()]
    return combine_orders(*per_order) if len(per_order) == 2 else per_order[0]


def summarize(icrm: ICRM, rows: Sequence[dict[str, Any]], rows_path: Path, seed: int,
              meta: dict[str, Any]) -> dict[str, Any]:
    """Score the judgements in `rows_path` for `rows`: per-subset and section figures."""
    records = read_results(rows_path)
    rng = random.Random(seed)
    by_subset: dict[str, list[tuple[Outcome, float]]] = defaultdict(list)
    distribution: Counter[str] = Counter()
    errors = missing = 0
    for row in rows:
        judged = {j.tag: records.get(j.id) for j in _judgements(icrm, [row], seed)}
        if any(r is None for r in judged.values()):
            missing += 1
            continue
        errors += sum(r.get("error_kind") not in (None, "parse") for r in judged.values())
        distribution.update(str(r.get(icrm.rm_type.verdict_key)) for r in judged.values())
        outcome = row_outcome(icrm, judged)  # type: ignore[arg-type]
        by_subset[row["subset"]].append((outcome, length_baseline(row["chosen"], row["rejected"])))
    reports = {name: subset_report([o for o, _ in pairs], [b for _, b in pairs], rng)
               for name, pairs in sorted(by_subset.items())}
    official = official_subsets()
    sections = section_scores({n: r.accuracy for n, r in reports.items() if n in official})
    intervals = bootstrap_sections(reports, rng)
    consistency = [r.position_consistency * r.n for r in reports.values() if r.position_consistency is not None]
    return {
        "meta": meta,
        "sections": {name: {"score": score, "ci": intervals.get(name)} for name, score in sections.items()},
        "subsets": {n: r.as_dict() for n, r in reports.items() if n in official},
        "other": {n: r.as_dict() for n, r in reports.items() if n not in official},
        "counts": {
            "rows": len(rows), "rows_scored": sum(r.n for r in reports.values()), "rows_missing": missing,
            "ties": sum(r.ties for r in reports.values()),
            "parse_failures": sum(r.parse_failures for r in reports.values()), "request_errors": errors,
        },
        "position_consistency": sum(consistency) / sum(r.n for r in reports.values()
                                                        if r.position_consistency is not None) if consistency else None,
        "distribution": dict(sorted(distribution.items())),
    }


async def evaluate(
    icrm: ICRM,
    data: str | Path | None = None,
    dataset: str | None = None,
    split: str = "filtered",
    results_dir: str | Path = "results",
    position: str | None = None,
    overwrite_results: bool = False,
    limit: int | None = None,
    subsets: Sequence[str] | None = None,
    concurrency: int = 8,
    progress: bool | None = None,
    **generation_kwargs: Any,
) -> tuple[dict[str, Any], Path]:
    """Run (or resume) a RewardBench evaluation and write its outputs.

    Args:
        icrm: the judge; its rm_type, shots and seed define the run.
        data, dataset, split, subsets, limit: as `load_rows`.
        results_dir: the root of the outputs (see the module docstring).
        position: pairwise placement, ``random`` (seeded per row), ``both`` or
            ``as_given`` (chosen always in A); None = the judge's own.
        overwrite_results: start over instead of resuming.
        concurrency: judgements in flight at most (does not change any result).
        progress: show the tqdm bar (None = only on a TTY).
        **generation_kwargs: as `ICRM.ajudge`.

    Returns:
        (the summary dict, the output directory).

    Raises:
        ConfigError: bad arguments. InputError: unreadable or malformed data.
    """
    position = position or icrm.config.position
    if position not in POSITIONS:
        raise ConfigError(f"position must be one of {', '.join(POSITIONS)}, got {position!r}")
    rows = load_rows(data, dataset, split, subsets, limit)
    ids = Counter(str(r["id"]) for r in rows)
    duplicated = [i for i, n in ids.items() if n > 1]
    if duplicated:
        raise InputError(f"row ids must be unique; repeated: {', '.join(duplicated[:5])}")
    out = output_dir(results_dir, icrm.rm_type.name, icrm.model_name, icrm.num_shots)
    out.mkdir(parents=True, exist_ok=True)
    rows_path = out / "rows.jsonl"
    if overwrite_results and rows_path.exists():
        rows_path.unlink()
    start = time.perf_counter()
    ran, skipped = await run_judgements(icrm, rows, rows_path, icrm.seed, concurrency, progress, position,
                                        **generation_kwargs)
    from .. import __version__

    meta = {
        "model": icrm.model_name, "engine": icrm.engine.name, "rm_type": icrm.rm_type.name,
        "num_shots": icrm.num_shots, "shot_sampling_mode": icrm.shot_sampling_mode, "seed": icrm.seed,
        "position": None if icrm.rm_type.single else position, "method": icrm.method.name,
        "template_hash": icrm.template_hash,
        "icrm_version": __version__, "data": str(data or f"{dataset}:{split}"), "subsets": list(subsets or []),
        "limit": limit, "generation_kwargs": icrm.run_fields(generation_kwargs)["generation_kwargs"],
        "judgements_run": ran, "judgements_skipped": skipped, "seconds": time.perf_counter() - start,
    }
    summary = summarize(icrm, rows, rows_path, icrm.seed, meta)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    _plot(summary, out / "accuracy.png")
    return summary, out


def format_table(summary: dict[str, Any]) -> str:
    """The summary as a text table: sections with their subsets, then "Other"."""
    meta = summary["meta"]
    lines = [f"RewardBench ({meta['rm_type']}) — {meta['model']} on {meta['engine']}, {meta['num_shots']} shots, "
             f"seed {meta['seed']}" + (f", position {meta['position']}" if meta.get("position") else ""),
             f"{'':<28}{'n':>6}{'score':>8}{'95% CI':>16}{'strict':>8}{'ties':>6}{'unparsed':>9}{'longer':>8}"]

    def subset_line(name: str, r: dict[str, Any]) -> str:
        low, high = r["accuracy_ci"]
        return (f"  {name:<26}{r['n']:>6}{r['accuracy']:>8.3f}{f'[{low:.2f}, {high:.2f}]':>16}"
                f"{r['strict_accuracy']:>8.3f}{r['ties']:>6}{r['parse_failures']:>9}{r['length_baseline']:>8.3f}")

    _, mapping = rewardbench_constants()
    for section, subsets in mapping.items():
        if section not in summary["sections"]:
            continue
        entry = summary["sections"][section]
        ci = entry["ci"]
        n = sum(summary["subsets"][s]["n"] for s in subsets if s in summary["subsets"])
        lines.append(f"{section:<28}{n:>6}{entry['score']:>8.3f}" + (f"{f'[{ci[0]:.2f}, {ci[1]:.2f}]':>16}" if ci else ""))
        lines += [subset_line(s, summary["subsets"][s]) for s in subsets if s in summary["subsets"]]
    if summary["other"]:
        lines.append("Other (not in RewardBench's sections)")
        lines += [subset_line(name, r) for name, r in summary["other"].items()]
    if "overall" in summary["sections"]:
        entry = summary["sections"]["overall"]
        ci = entry["ci"]
        lines.append(f"{'Overall (mean of sections)':<28}{'':>6}{entry['score']:>8.3f}"
                     + (f"{f'[{ci[0]:.2f}, {ci[1]:.2f}]':>16}" if ci else ""))
    counts = summary["counts"]
    lines.append(f"rows {counts['rows_scored']}/{counts['rows']}, ties {counts['ties']}, unparsed "
                 f"{counts['parse_failures']}, request errors {counts['request_errors']}"
                 + (f", position consistency {summary['position_consistency']:.3f}"
                    if summary["position_consistency"] is not None else ""))
    return "\n".join(lines)


def _plot(summary: dict[str, Any], path: Path) -> None:
    if importlib.util.find_spec("matplotlib") is None:
        logger.info("no accuracy.png: matplotlib is not installed (pip install 'icrm[plot]')")
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    subsets = {**summary["subsets"], **summary["other"]}
    names = list(subsets)
    accuracy = [subsets[n]["accuracy"] for n in names]
    errors = [[a - subsets[n]["accuracy_ci"][0] for n, a in zip(names, accuracy)],
              [subsets[n]["accuracy_ci"][1] - a for n, a in zip(names, accuracy)]]
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(names)), 4))
    ax.bar(names, accuracy, yerr=errors, capsize=3, color=["C0" if n in summary["subsets"] else "C7" for n in names])
    ax.scatter(names, [subsets[n]["length_baseline"] for n in names], marker="_", s=300, color="C3",
               label="always pick the longer response", zorder=3)
    ax.axhline(0.5, color="grey", linewidth=0.8, linestyle="--")
    ax.set_ylim(0, 1)
    ax.set_ylabel("accuracy (95% bootstrap CI)")
    ax.set_title(f"RewardBench subsets — {summary['meta']['model']} ({summary['meta']['rm_type']})")
    ax.tick_params(axis="x", rotation=60)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

