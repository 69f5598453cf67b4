"""A finished run read back for reading by people: an ``icrm eval`` results directory or
an ``icrm score`` output file, as items that each hold their judgements.

An item is what a person checks at once: a benchmark row with every judgement it needed
(RewardBench 2 rates four completions; JudgeBench judges one pair in both orders), or
one row of a scored file. The judgements come from ``rows.jsonl`` (the last record per
id, as resume reads it); the conversations from the data the run read (``meta.data`` of
the summary, or ``--data`` for a scored file), when that is still readable.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..batch import read_results
from ..errors import ConfigError, ICRMError
from ..safe_text import finite

__all__ = ["Run", "Item", "load_run", "STATUSES", "number"]

# How an item ended, for filtering: correct / incorrect / partial (a fraction, e.g. a
# RewardBench tie scores 0.5) only for benchmark rows that were scored.
STATUSES = ("correct", "incorrect", "partial", "failed", "missing", "scored", "unparsed")


@dataclass
class Item:
    """One item of a run.

    Attributes:
        id: the benchmark row's id, or the scored row's id.
        subset: its subset (None for a scored file).
        status: one of `STATUSES`: ``failed`` = a judgement had a request error,
            ``missing`` = not all judged; for a scored file's row: ``scored`` (a
            verdict), ``unparsed`` (an answer without one) or ``failed``.
        score: the row's score in the benchmark (1 correct, 0 wrong, fractions), or
            the scored row's verdict (individual score, pairwise choice).
        tie, parse_failure: the judge called a tie / gave no verdict somewhere.
        consistent: with both orders judged, whether they agreed (None otherwise).
        judgements: the records (``icrm.scoring.result_row``), each with ``tag`` and,
            when the data was readable, ``item`` (the conversations the judge saw).
    """

    id: str
    subset: str | None
    status: str
    score: Any = None
    tie: bool = False
    parse_failure: bool = False
    consistent: bool | None = None
    judgements: list[dict[str, Any]] = field(default_factory=list)

    @property
    def error_kinds(self) -> list[str]:
        """The error kinds of its judgements, each once, in order."""
        return list(dict.fromkeys(j["error_kind"] for j in self.judgements if j.get("error_kind")))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"id": self.id, "subset": self.subset, "status": self.status, "score": self.score, "tie": self.tie,
                "parse_failure": self.parse_failure, "consistent": self.consistent, "error_kinds": self.error_kinds,
                "judgements": self.judgements}


@dataclass
class Run:
    """A run read back.

    Attributes:
        path: the results directory or file.
        kind: ``eval`` or ``score``.
        meta: what ran (benchmark, model, engine, method, shots, fingerprint, seconds,
            tokens, ...); for a scored file, read from its rows' provenance.
        summary: ``summary.json`` of an evaluation (None for a scored file).
        items: in the data's order.
        data_note: why conversations are absent, when they are (else None).
    """

    path: Path
    kind: str
    meta: dict[str, Any]
    summary: dict[str, Any] | None
    items: list[Item]
    data_note: str | None = None

    @property
    def name(self) -> str:
        """A short label: model, method and shots (and benchmark)."""
        m = self.meta
        parts = [m.get("benchmark"), m.get("model"), m.get("method"),
                 None if m.get("num_shots") is None else f"{m['num_shots']} shots"]
        return " · ".join(str(p) for p in parts if p is not None) or self.path.name

    def inputs(self) -> list[Path]:
        """The files this run was read from: the results file (a scored run) or the
        results directory's files, and the data it judged."""
        files = [self.path] if self.path.is_file() else [self.path / "rows.jsonl", self.path / "summary.json"]
        data = self.meta.get("data") if self.kind == "eval" else self.meta.get("data_path")
        return files + ([Path(str(data))] if data else [])

    def counts(self) -> dict[str, int]:
        """Items per status, and judgements per error kind (``error:<kind>``)."""
        counts = Counter(item.status for item in self.items)
        counts.update(f"error:{kind}" for item in self.items for j in item.judgements
                      if (kind := j.get("error_kind")))
        return dict(counts)

    @property
    def verdict_key(self) -> str:
        """The rows' verdict field (``score``, ``choice``, ``scores``) by the run's rm type."""
        from ..rm_types import RM_TYPES

        rm_type = RM_TYPES.get(self.meta.get("rm_type")) if self.meta.get("rm_type") in RM_TYPES else None
        return rm_type.verdict_key if rm_type is not None else "score"

    def distribution(self) -> dict[str, int]:
        """Judgements per verdict (score, choice or a group's scores; ``None`` = no verdict)."""
        key = self.verdict_key
        return dict(sorted(Counter(str(j.get(key)) for item in self.items for j in item.judgements).items()))


def load_run(path: str | Path, data: str | Path | None = None) -> Run:
    """Read a run.

    Args:
        path: an ``icrm eval`` results directory (holding ``summary.json`` and
            ``rows.jsonl``; a parent with exactly one such directory below it is
            accepted) or an ``icrm score`` output (JSONL).
        data: the input the run read, for its conversations (default: the evaluation's
            ``meta.data``; a scored file has none recorded).

    Raises:
        ConfigError: `path` is neither; a directory with several runs below it (naming them).
    """
    path = Path(path)
    if path.is_dir():
        run = _load_eval(_results_dir(path), data)
        if data is not None:
            run.meta["data"] = str(data)
        return run
    if path.is_file():
        return _load_scored(path, data)
    raise ConfigError(f"no run at {path}: give an `icrm eval` results directory or an `icrm score` output file")


def _results_dir(path: Path) -> Path:
    if (path / "summary.json").is_file():
        return path
    found = sorted(p.parent for p in path.rglob("summary.json"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise ConfigError(f"{path} holds no summary.json: give a directory `icrm eval` wrote "
                          f"(results_dir/<benchmark>/<rm_type>/<model>/<method>/<n>_shots)")
    listing = "\n  ".join(str(p) for p in found[:20])
    raise ConfigError(f"{path} holds {len(found)} runs; give one of them:\n  {listing}")


def _load_eval(out: Path, data: str | Path | None) -> Run:
    from ..evaluation import get_benchmark, load_rows
    from ..rm_types import get_rm_type

    try:
        summary = json.loads((out / "summary.json").read_text())
    except (OSError, ValueError, RecursionError) as e:
        raise ConfigError(f"{out / 'summary.json'} is not readable JSON ({e}): re-run `icrm eval` to rewrite it") from None
    summary = _clean_summary(summary)
    meta = summary["meta"]
    records = read_results(out / "rows.jsonl")
    try:
        benchmark, rm_type = get_benchmark(meta.get("benchmark")), get_rm_type(meta.get("rm_type"))
    except ConfigError as e:
        raise ConfigError(f"{out / 'summary.json'}: {e}: re-run `icrm eval` to rewrite it") from None
    source = data or meta.get("data")
    rows, note = None, None
    try:
        if source is None or ":" in str(source) and not Path(str(source)).exists():
            raise ConfigError(f"the run read {source or 'a hub dataset'}, not a local file")
        rows = load_rows(benchmark, data=source, subsets=meta.get("subsets") or None, limit=meta.get("limit"))
    except ICRMError as e:
        note = f"conversations not shown: {e} (pass --data FILE)"
    row_scores = summary.get("row_scores") or {}
    items: list[Item] = []
    if rows is not None:
        for row in rows:
            rid = benchmark.row_id(row)
            judged = []
            for judgement in benchmark.judgements(row, rm_type):
                record = records.get(f"{rid}:{judgement.tag}")
                judged.append({**(record or {"id": f"{rid}:{judgement.tag}", "missing": True}),
                               "tag": judgement.tag, "item": judgement.item})
            items.append(_eval_item(rid, benchmark.subset(row), judged, row_scores.get(rid)))
    else:
        grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for rid, record in records.items():
            grouped[str(record.get("row_id", rid.rsplit(":", 1)[0]))].append(record)
        for rid, judged in grouped.items():
            scored = row_scores.get(rid)
            items.append(_eval_item(rid, scored and scored.get("subset"), judged, scored))
    return Run(out, "eval", meta, summary, items, note)


def _eval_item(rid: str, subset: str | None, judged: list[dict[str, Any]], scored: dict[str, Any] | None) -> Item:
    if scored is not None and number(scored.get("score")) is not None:
        score = scored["score"]
        status = "correct" if score >= 1 else "incorrect" if score <= 0 else "partial"
        return Item(rid, scored.get("subset", subset), status, score, bool(scored.get("tie")),
                    bool(scored.get("parse_failure")), scored.get("consistent"), judged)
    if any(j.get("missing") for j in judged):
        status = "missing"
    else:
        status = "failed"  # the runner leaves a row unscored only for a request error
    return Item(rid, subset, status, None, False, any(j.get("error_kind") == "parse" for j in judged), None, judged)


def _load_scored(path: Path, data: str | Path | None) -> Run:
    records = read_results(path)
    if not records:
        raise ConfigError(f"{path} holds no result rows: give an `icrm score` output (JSONL, one row per id)")
    fingerprints = Counter(str(_dict(r.get("provenance")).get("fingerprint")) for r in records.values())
    first = _dict(next(iter(records.values())).get("provenance"))
    meta = {k: first.get(k) for k in ("model", "engine", "rm_type", "method", "num_shots", "shot_sampling_mode",
                                      "seed", "position", "template_hash", "generation_kwargs", "input_format")}
    meta.update({"fingerprint": first.get("fingerprint"), "fingerprints": len(fingerprints),
                 "seconds": None, "tokens": _token_totals(records.values())})
    inputs = _input_rows(data, first.get("id_field") or "id") if data is not None else {}
    items = []
    for rid, record in records.items():
        verdict = record.get("choice", record.get("score"))
        verdict = verdict if isinstance(verdict, (str, int, float)) and not isinstance(verdict, bool) else None
        kind = record.get("error_kind")
        status = "scored" if kind is None else "unparsed" if kind == "parse" else "failed"
        judgement = {**record, "tag": "", **({"item": inputs[rid]} if rid in inputs else {})}
        items.append(Item(rid, None, status, verdict, verdict == "A=B", record.get("error_kind") == "parse",
                          record.get("position_consistent") if isinstance(record.get("position_consistent"), bool)
                          else None, [judgement]))
    note = None if data is not None else "conversations not shown: pass --data INPUT (the file that was scored)"
    meta["data_path"] = str(data) if data is not None else None
    return Run(path, "score", meta, None, items, note)


def _token_totals(records: Any) -> dict[str, int]:
    tokens: Counter[str] = Counter()
    for record in records:
        tokens.update({k: v for k, v in _dict(record.get("usage")).items() if number(v) is not None})
    return dict(tokens)


def number(value: Any) -> float | None:
    """`value` when it is a finite number (not a bool), else None: fields of a results
    file or summary may hold anything."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return value
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _clean_summary(summary: Any) -> dict[str, Any]:
    """A summary read back, whatever it holds: non-finite numbers are None, and every
    part that should be an object (meta, sections, subsets, counts, row scores) is one,
    its entries objects."""
    summary = finite(_dict(summary))
    for key in ("sections", "subsets", "other", "row_scores"):
        summary[key] = {str(k): v for k, v in _dict(summary.get(key)).items() if isinstance(v, dict)}
    for key in ("meta", "counts", "calibration"):
        summary[key] = _dict(summary.get(key))
    return summary


def _input_rows(data: str | Path, id_field: str) -> dict[str, dict[str, Any]]:
    """The scored file's input rows by id (JSON / JSONL / Parquet, as `icrm score` reads them)."""
    from ..batch import BadRow, read_rows

    rows = {}
    for row in read_rows(Path(data)):
        if not isinstance(row, BadRow) and row.get(id_field) is not None:
            rows[str(row[id_field])] = {k: v for k, v in row.items() if k != id_field}
    return rows
