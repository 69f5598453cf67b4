"""One self-contained HTML page of one run, or of two side by side: the summary, the
scores with their intervals, the distributions, and an item browser.

Everything is in the file: the items as JSON in a ``<script type="application/json">``
block, the style and the browser's script inline, bars drawn with CSS. Opening it makes
no network request, so a report can be mailed, archived or opened on a machine without
a connection. The page is rendered with `jinja2` (autoescaped); the item browser builds
its rows from the JSON block when the page loads.
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from ..safe_text import dumps
from .run import Run, number

__all__ = ["render_report", "write_report", "subset_rows", "compare_subsets"]


def subset_rows(run: Run) -> list[dict[str, Any]]:
    """The score table of an evaluation: its sections, then each subset (official, then
    "other"), each a dict with ``kind`` (section | subset | other), ``name`` and the
    figures of ``summary.json`` (None where the run has none)."""
    summary = run.summary or {}
    rows = [{"kind": "section", "name": name, "accuracy": s["score"], "accuracy_ci": s.get("ci"),
             "length_baseline": s.get("length_baseline")} for name, s in (summary.get("sections") or {}).items()]
    for kind in ("subsets", "other"):
        for name, s in (summary.get(kind) or {}).items():
            rows.append({"kind": "subset" if kind == "subsets" else "other", "name": name, **s})
    return rows


def compare_subsets(a: Run, b: Run) -> list[dict[str, Any]]:
    """Per section and subset: the two runs' scores and B − A (None where one run lacks it)."""
    first = {(r["kind"], r["name"]): r for r in subset_rows(a)}
    second = {(r["kind"], r["name"]): r for r in subset_rows(b)}
    out = []
    for key in list(first) + [k for k in second if k not in first]:
        x, y = number(first.get(key, {}).get("accuracy")), number(second.get(key, {}).get("accuracy"))
        out.append({"kind": key[0], "name": key[1], "a": x, "b": y,
                    "delta": None if x is None or y is None else y - x,
                    "n_a": first.get(key, {}).get("n"), "n_b": second.get(key, {}).get("n")})
    return out


def render_report(runs: list[Run]) -> str:
    """The page for one run, or two side by side (A = the first).

    Raises:
        ConfigError: not one or two runs.
    """
    from ..errors import ConfigError

    if len(runs) not in (1, 2):
        raise ConfigError(f"a report shows one run or two side by side, got {len(runs)}")
    # Optional summary fields (position, data, ...) are tested in the template: missing ones are plain Undefined.
    environment = jinja2.Environment(autoescape=True, loader=jinja2.FunctionLoader(_template))
    environment.filters["num"] = _num
    environment.filters["percent"] = lambda value: "–" if number(value) is None else f"{100 * value:.1f}%"
    environment.filters["json"] = lambda value: dumps(value, sort_keys=True, nan=False)
    payload = {"runs": [{"name": run.name, "kind": run.kind, "rm_type": run.meta.get("rm_type"),
                         "verdict_key": run.verdict_key,
                         "items": [item.as_dict() for item in run.items]} for run in runs]}
    return environment.get_template("report.html.j2").render(
        runs=runs, tables=[subset_rows(run) for run in runs],
        comparison=compare_subsets(*runs) if len(runs) == 2 else None,
        data=_script_json(payload))


def write_report(runs: list[Run], output: str | Path) -> Path:
    """Render `runs` (see `render_report`) to `output` (UTF-8); returns its path."""
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_report(runs), encoding="utf-8")
    return output


def _template(name: str) -> str:
    return resources.files("icrm.report").joinpath(name).read_text(encoding="utf-8")


def _num(value: Any, digits: int = 3) -> str:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return f"[{_num(value[0], 2)}, {_num(value[1], 2)}]"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else "–"
    return "–" if value is None else str(value)


def _script_json(payload: Any) -> str:
    """JSON safe inside a <script> element: no "</" or "<!--" can end or open anything,
    and strict (NaN is null), so the browser's JSON.parse takes it."""
    text = dumps(payload, nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") \
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
