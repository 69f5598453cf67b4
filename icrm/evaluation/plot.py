"""The evaluation plot: per-subset and per-section scores with 95% intervals and the
"always the longer response" baseline, and — when the judge gave probabilities — its reliability curve.
matplotlib is optional (``pip install 'icrm[plot]'``)."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from typing import Any

__all__ = ["plot_summary"]

logger = logging.getLogger(__name__)


def plot_summary(summary: dict[str, Any], path: Path) -> bool:
    """Draw `summary` into the PNG at `path`; False (logged) without matplotlib."""
    if importlib.util.find_spec("matplotlib") is None:
        logger.info("no %s: matplotlib is not installed (pip install 'icrm[plot]')", path.name)
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # Subsets (blue; "Other" grey), then the benchmark's sections and overall (orange).
    bars = {**summary["subsets"], **summary["other"]}
    bars.update({name: {"accuracy": entry["score"], "accuracy_ci": entry["ci"] or (entry["score"], entry["score"]),
                        "length_baseline": entry.get("length_baseline")}
                 for name, entry in summary["sections"].items() if name not in bars})
    names = list(bars)
    colors = ["C0" if n in summary["subsets"] else "C7" if n in summary["other"] else "C1" for n in names]
    reliability = (summary.get("calibration") or {}).get("bins")
    columns = 2 if reliability else 1
    fig, axes = plt.subplots(1, columns, figsize=(max(6, 0.6 * len(names)) + 4 * (columns - 1), 4), squeeze=False)
    ax = axes[0][0]
    accuracy = [bars[n]["accuracy"] for n in names]
    errors = [[max(a - bars[n]["accuracy_ci"][0], 0) for n, a in zip(names, accuracy)],
              [max(bars[n]["accuracy_ci"][1] - a, 0) for n, a in zip(names, accuracy)]]
    ax.bar(names, accuracy, yerr=errors, capsize=3, color=colors)
    baselines = [(n, bars[n]["length_baseline"]) for n in names if bars[n].get("length_baseline") is not None]
    if baselines:
        ax.scatter([n for n, _ in baselines], [b for _, b in baselines], marker="_", s=300, color="C3",
                   label="always pick the longer response", zorder=3)
        ax.legend(loc="lower right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("score (95% bootstrap CI)")
    meta = summary["meta"]
    ax.set_title(f"{meta.get('title', 'Benchmark')} — {meta['model']} ({meta['rm_type']}, {meta.get('method', '')})")
    ax.tick_params(axis="x", rotation=60)
    if reliability:
        rel = axes[0][1]
        rel.plot([0.5, 1], [0.5, 1], color="grey", linestyle="--", linewidth=0.8, label="perfect calibration")
        rel.plot([b["confidence"] for b in reliability], [b["accuracy"] for b in reliability], marker="o", label="judge")
        rel.set_xlabel("confidence")
        rel.set_ylabel("accuracy")
        rel.set_title(f"reliability (ECE {summary['calibration']['ece']:.3f})")
        rel.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
